// SystemControlA: System Control Port A at port 0x92 (the PS/2 "fast A20 and reset" port, as in the PIIX3 and QEMU's
// port92 device). SeaBIOS and iPXE read and write it to open the A20 gate.
//
// One byte. Bit 1 is the A20 gate: kept as written and read back, but address bit 20 is never masked (guest memory is
// KVM's, as on processors since Haswell, which have no A20M#), so it starts set. Writing bit 0 set asks for a machine
// reset (the "fast reset"); it reads as 0. The other bits read as 0 and ignore writes.
#pragma once

#include <cstdint>
#include <mutex>

#include "bus/device.h"
#include "bus/system_control.h"

namespace hako::devices::legacy {

class SystemControlA final : public bus::Device {
public:
    static constexpr uint8_t FAST_RESET = 1 << 0;
    static constexpr uint8_t A20_GATE = 1 << 1;

    explicit SystemControlA(bus::SystemControl& system) : m_system(system) { }

    std::string_view name() const override { return "system-control-a"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    bus::SystemControl& m_system;
    std::mutex m_mutex;
    uint8_t m_value { A20_GATE };
};

} // namespace hako::devices::legacy
