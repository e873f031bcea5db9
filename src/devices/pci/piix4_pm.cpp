#include "devices/pci/piix4_pm.h"

namespace hako::devices::pci {

namespace {
constexpr uint32_t CLASS_BRIDGE_OTHER = 0x068000;
constexpr uint8_t IRQ_SCI = 9;

PciIdentity piix4_pm_identity()
{
    PciIdentity id;
    id.vendor_id = Piix4Pm::VENDOR_ID;
    id.device_id = Piix4Pm::DEVICE_ID;
    id.class_code = CLASS_BRIDGE_OTHER;
    id.revision = 0x03;
    return id;
}
} // namespace

Piix4Pm::Piix4Pm() : PciDevice(piix4_pm_identity())
{
    config_store(PMBA, 4, PMBA_IO);
    set_write_mask(PMBA, 4, PMBA_MASK);
    set_write_mask(PMREGMISC, 1, PMREGMISC_PMIOSE);
    config_store(DEVACTB, 4, DEVACTB_APMC_EN); // no SMM: "already initialised" to SeaBIOS (read-only)
    config_store(SMBBA, 4, PMBA_IO);
    set_write_mask(SMBBA, 4, SMBBA_MASK);
    // SMBHSTCFG stays 0 and read-only: no SMBus host.
}

std::optional<uint16_t> Piix4Pm::pm_base() const
{
    if (!(config_load(PMREGMISC, 1) & PMREGMISC_PMIOSE))
        return std::nullopt;
    auto const base = static_cast<uint16_t>(config_load(PMBA, 4) & PMBA_MASK);
    if (base == 0)
        return std::nullopt;
    return base;
}

void Piix4Pm::set_pm_base_listener(std::function<void(std::optional<uint16_t>)> listener)
{
    std::lock_guard lock(m_listener_lock);
    m_listener = std::move(listener);
}

void Piix4Pm::notify()
{
    std::function<void(std::optional<uint16_t>)> listener;
    {
        std::lock_guard lock(m_listener_lock);
        listener = m_listener;
    }
    if (listener)
        listener(pm_base());
}

void Piix4Pm::bios_setup(uint16_t base)
{
    config_store(PMBA, 4, (base & PMBA_MASK) | PMBA_IO);
    config_store(PMREGMISC, 1, PMREGMISC_PMIOSE);
    config_store(PCI_INTERRUPT_LINE, 1, IRQ_SCI);
    notify();
}

void Piix4Pm::config_written(uint16_t offset, size_t size)
{
    bool const pmba = offset < PMBA + 4 && offset + size > PMBA;
    bool const misc = offset <= PMREGMISC && offset + size > PMREGMISC;
    if (pmba || misc)
        notify();
}

void Piix4Pm::reset_device() { notify(); } // configuration space is back at power-on: no block decoded

} // namespace hako::devices::pci
