#include "devices/pci/i440fx.h"

namespace hako::devices::pci {

namespace {
constexpr uint32_t CLASS_HOST_BRIDGE = 0x060000;
constexpr uint8_t PAM0_WRITABLE = 0x30; // HIENABLE only: the 0xF0000 BIOS area
constexpr uint8_t PAM_WRITABLE = 0x33;  // HIENABLE and LOENABLE
constexpr uint8_t SMRAM_WRITABLE = I440fxHostBridge::SMRAM_G_SMRAME | I440fxHostBridge::SMRAM_D_LCK
    | I440fxHostBridge::SMRAM_D_CLS | I440fxHostBridge::SMRAM_D_OPEN;

PciIdentity i440fx_identity()
{
    PciIdentity id;
    id.vendor_id = I440fxHostBridge::VENDOR_ID;
    id.device_id = I440fxHostBridge::DEVICE_ID;
    id.class_code = CLASS_HOST_BRIDGE;
    id.revision = 2;
    return id;
}
} // namespace

I440fxHostBridge::I440fxHostBridge() : PciDevice(i440fx_identity())
{
    set_write_mask(PAM0, 1, PAM0_WRITABLE);
    for (uint16_t i = 1; i < NUM_PAM; ++i)
        set_write_mask(static_cast<uint16_t>(PAM0 + i), 1, PAM_WRITABLE);
    config_store(SMRAM, 1, SMRAM_C_BASE_SEG);
    set_write_mask(SMRAM, 1, SMRAM_WRITABLE);
}

void I440fxHostBridge::set_pam_hook(PamHook hook)
{
    std::lock_guard lock(m_hook_lock);
    m_pam_hook = std::move(hook);
}

uint8_t I440fxHostBridge::pam(unsigned index) const
{
    return index < NUM_PAM ? static_cast<uint8_t>(config_load(static_cast<uint16_t>(PAM0 + index), 1)) : 0xff;
}

uint8_t I440fxHostBridge::smram() const { return static_cast<uint8_t>(config_load(SMRAM, 1)); }

void I440fxHostBridge::config_written(uint16_t offset, size_t size)
{
    auto const end = offset + size;
    if (offset <= SMRAM && end > SMRAM) {
        uint8_t value = smram();
        if (value & SMRAM_D_LCK) {
            // D_LCK: D_OPEN is cleared and everything but D_CLS is read-only until reset.
            value = static_cast<uint8_t>(value & ~SMRAM_D_OPEN);
            config_store(SMRAM, 1, value);
            set_write_mask(SMRAM, 1, SMRAM_D_CLS);
        }
    }
    if (end <= PAM0 || offset >= PAM0 + NUM_PAM)
        return;
    std::lock_guard lock(m_hook_lock);
    for (unsigned i = 0; i < NUM_PAM; ++i) {
        uint8_t const value = pam(i);
        if (value == m_reported_pam[i])
            continue;
        m_reported_pam[i] = value;
        if (m_pam_hook)
            m_pam_hook(i, value);
    }
}

} // namespace hako::devices::pci
