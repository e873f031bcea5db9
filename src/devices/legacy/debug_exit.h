// DebugExit: QEMU's isa-debug-exit device (iobase 0xf4, iosize 4), which test guests use to end a run with a code.
//
// Any write, of any width, at any of the 4 ports asks the machine to stop with SystemEvent::DebugExit and the
// value written as its code. Reads return all-ones. Deliberately not done here: QEMU's (code << 1) | 1 process
// exit status transform, which is the VMM's business.
#pragma once

#include "bus/device.h"
#include "bus/system_control.h"

namespace hako::devices::legacy {

class DebugExit final : public bus::Device {
public:
    explicit DebugExit(bus::SystemControl& system) : m_system(system) { }

    std::string_view name() const override { return "debug-exit"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    bus::SystemControl& m_system;
};

} // namespace hako::devices::legacy
