// Piix4Pm: function 3 of the Intel 82371AB PIIX4 (8086:7113, class 0x068000, revision 3 as in QEMU's pc machine),
// the power management function, as far as firmware programs it (82371AB datasheet, "Power Management
// Configuration Registers"): PMBA at 0x40 (bit 0 reads 1: I/O space; bits 15:6 the base of the 64-byte ACPI
// register block) and PMREGMISC at 0x80 (bit 0 PMIOSE: the block is decoded at PMBA). The register block itself is
// devices/legacy/acpi_pm.h; this function only says where it is (pm_base() and a listener the machine uses to move
// it on the I/O bus). SeaBIOS programs PMBA to 0x600 and OVMF (on i440FX) to 0xB000; for direct boot hako does what
// a BIOS would (bios_setup()).
// DEVACTB (0x58) reads APMC_EN set and is read-only, as on QEMU without SMM: SeaBIOS then takes SMM as already set
// up and skips its SMM relocation (which would wait forever for an SMI; hako has no SMM).
// Deliberately not modelled: the SMBus host controller (SMBBA at 0x90 is stored, SMBHSTCFG at 0xD2 reads 0 so drivers
// see it disabled), device activity/resume registers (DEVACTA/B, DEVRESA-J), SMI generation, GPO/GPI pins; the SCI
// goes to IRQ 9 from the register block, not through this function's interrupt pin (none).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

class Piix4Pm final : public PciDevice {
public:
    static constexpr uint16_t VENDOR_ID = 0x8086;
    static constexpr uint16_t DEVICE_ID = 0x7113;
    static constexpr uint8_t FUNCTION = 3;
    static constexpr uint16_t PMBA = 0x40;
    static constexpr uint32_t PMBA_IO = 0x01;        // hardwired: an I/O base
    static constexpr uint32_t PMBA_MASK = 0xffc0;    // bits 15:6
    static constexpr uint16_t PMREGMISC = 0x80;
    static constexpr uint8_t PMREGMISC_PMIOSE = 0x01;
    static constexpr uint16_t DEVACTB = 0x58;
    static constexpr uint32_t DEVACTB_APMC_EN = 1u << 25; // SMI on writes to the APM control port 0xB2
    static constexpr uint16_t SMBBA = 0x90;
    static constexpr uint32_t SMBBA_MASK = 0xfff0;   // bits 15:4
    static constexpr uint16_t SMBHSTCFG = 0xd2;
    static constexpr uint16_t PM_IO_SIZE = 64;

    Piix4Pm();

    std::string_view name() const override { return "piix4-pm"; }

    /// The I/O base the register block is decoded at, or nullopt (PMIOSE clear, or PMBA 0).
    std::optional<uint16_t> pm_base() const;
    /// Called (without the function's configuration lock) whenever pm_base() may have changed, with its new value.
    void set_pm_base_listener(std::function<void(std::optional<uint16_t>)> listener);
    /// What a BIOS does before the OS (direct boot): PMBA = base, PMIOSE set, interrupt line 9 (the SCI).
    void bios_setup(uint16_t base);

protected:
    void config_written(uint16_t offset, size_t size) override;
    void reset_device() override;

private:
    void notify();

    std::mutex m_listener_lock; // guards m_listener; taken without the configuration lock
    std::function<void(std::optional<uint16_t>)> m_listener;
};

} // namespace hako::devices::pci
