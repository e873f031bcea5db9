#include "devices/pci/piix3.h"

#include "arch/x86/pci_irq.h"

namespace hako::devices::pci {

static_assert(NUM_PIRQS == arch::x86::PCI_NUM_PIRQS);

namespace {
constexpr uint32_t CLASS_ISA_BRIDGE = 0x060100;
constexpr uint8_t PIRQRC_WRITABLE = Piix3IsaBridge::PIRQRC_IRQROUTEN | Piix3IsaBridge::PIRQRC_IRQ_MASK;

PciIdentity piix3_identity()
{
    PciIdentity id;
    id.vendor_id = Piix3IsaBridge::VENDOR_ID;
    id.device_id = Piix3IsaBridge::DEVICE_ID;
    id.class_code = CLASS_ISA_BRIDGE;
    id.revision = 0;
    id.header_type = PCI_HEADER_TYPE_MULTI_FUNCTION;
    return id;
}
} // namespace

std::optional<unsigned> intx_to_pirq(uint8_t slot, uint8_t pin)
{
    // The board wiring lives in arch/x86 so the ACPI _PRT uses the same formula.
    return arch::x86::pc_intx_to_pirq(slot, pin);
}

Piix3IsaBridge::Piix3IsaBridge() : PciDevice(piix3_identity())
{
    for (uint16_t i = 0; i < NUM_PIRQS; ++i) {
        config_store(static_cast<uint16_t>(PIRQRC + i), 1, PIRQRC_IRQROUTEN);
        set_write_mask(static_cast<uint16_t>(PIRQRC + i), 1, PIRQRC_WRITABLE);
    }
}

std::optional<uint8_t> Piix3IsaBridge::pirq_to_irq(unsigned pirq) const
{
    if (pirq >= NUM_PIRQS)
        return std::nullopt;
    auto const value = static_cast<uint8_t>(config_load(static_cast<uint16_t>(PIRQRC + pirq), 1));
    if (value & PIRQRC_IRQROUTEN)
        return std::nullopt;
    uint8_t const irq = value & PIRQRC_IRQ_MASK;
    if (irq < 3 || irq == 8 || irq == 13) // reserved encodings
        return std::nullopt;
    return irq;
}

void Piix3IsaBridge::set_pirq_listener(std::function<void()> listener)
{
    std::lock_guard lock(m_listener_lock);
    m_listener = std::move(listener);
}

void Piix3IsaBridge::config_written(uint16_t offset, size_t size)
{
    if (offset + size <= PIRQRC || offset >= PIRQRC + NUM_PIRQS)
        return;
    std::function<void()> listener;
    {
        std::lock_guard lock(m_listener_lock);
        listener = m_listener;
    }
    if (listener)
        listener();
}

} // namespace hako::devices::pci
