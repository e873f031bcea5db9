// I440fxHostBridge: the PCI side of the Intel 82441FX PMC (440FX host bridge, 8086:1237, class 0x060000, rev 2) at
// 00:00.0. SeaBIOS finds the machine type by this ID, then unlocks shadow RAM through the PAM registers.
// Registers: PAM0-PAM6 at 0x59-0x5F (82441FX datasheet 3.2.18: PAM0 bits 5:4 for 0xF0000-0xFFFFF, PAM1-6 bits 1:0 and
// 5:4 for the 16 KiB segments from 0xC0000; RE bit 0/4, WE bit 1/5) and SMRAM at 0x72 (3.2.23: C_BASE_SEG = 010 read
// only, G_SMRAME, D_LCK, D_CLS, D_OPEN; once D_LCK is set D_OPEN is cleared and only D_CLS stays writable).
// The values are stored and reported through a hook; what they mean for guest memory is the machine's business.
// Deliberately not modelled: the DRAM row boundary/attribute registers, PMCCFG, DRAMC, error reporting and the
// arbitration registers (they read as zero and ignore writes).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>

#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

class I440fxHostBridge final : public PciDevice {
public:
    static constexpr uint16_t VENDOR_ID = 0x8086;
    static constexpr uint16_t DEVICE_ID = 0x1237;
    static constexpr uint16_t PAM0 = 0x59;
    static constexpr unsigned NUM_PAM = 7;
    static constexpr uint16_t SMRAM = 0x72;
    static constexpr uint8_t SMRAM_C_BASE_SEG = 0x02;
    static constexpr uint8_t SMRAM_G_SMRAME = 0x08;
    static constexpr uint8_t SMRAM_D_LCK = 0x10;
    static constexpr uint8_t SMRAM_D_CLS = 0x20;
    static constexpr uint8_t SMRAM_D_OPEN = 0x40;

    using PamHook = std::function<void(unsigned pam_index, uint8_t value)>;

    I440fxHostBridge();

    std::string_view name() const override { return "i440fx"; }

    /// Called (without the bridge's configuration lock) when the guest changes PAM<pam_index>.
    void set_pam_hook(PamHook hook);
    uint8_t pam(unsigned index) const;
    uint8_t smram() const;

protected:
    void config_written(uint16_t offset, size_t size) override;

private:
    std::mutex m_hook_lock;
    PamHook m_pam_hook;
    std::array<uint8_t, NUM_PAM> m_reported_pam {};
};

} // namespace hako::devices::pci
