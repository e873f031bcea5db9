// ResetControl: the PCI reset control register at port 0xCF9 (Intel PIIX/ICH "Reset Control Register").
//
// One byte. Reads return the last value written. A write with RST_CPU (bit 2) set asks for a machine reset;
// SYS_RST (bit 1) would choose a hard rather than a soft reset, and both mean the same full reset here.
// The FADT's RESET_REG points here with RESET_REG_VALUE (0x06). Deliberately not modelled: FULL_RST (bit 3)
// power cycling, and INIT-only soft resets that keep memory state.
#pragma once

#include <cstdint>
#include <mutex>

#include "bus/device.h"
#include "bus/system_control.h"

namespace hako::devices::legacy {

class ResetControl final : public bus::Device {
public:
    static constexpr uint8_t SYS_RST = 1 << 1;
    static constexpr uint8_t RST_CPU = 1 << 2;

    explicit ResetControl(bus::SystemControl& system) : m_system(system) { }

    std::string_view name() const override { return "reset-control"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    bus::SystemControl& m_system;
    std::mutex m_mutex;
    uint8_t m_value { 0 };
};

} // namespace hako::devices::legacy
