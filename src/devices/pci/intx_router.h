// IntxRouter: turns the INTx levels of PCI devices into ISA IRQ levels through PIIX3's PIRQ route registers.
//
// Each device pin is wired to a PIRQ by intx_to_pirq(slot, pin). PCI interrupts are level-triggered and shared:
// a PIRQ is asserted while any device on it asserts, and an ISA IRQ is asserted while any PIRQ routed to it is.
// When the guest re-routes a PIRQ, the old IRQ is released and the new one driven. ISA IRQ lines come from a
// factory so tests and the machine decide what an IRQ is; each line is created once, on first use.
// Deliberately not modelled: APIC-mode routing straight to IOAPIC pins 16-23 (a q35/ICH thing), edge triggering.
//
// Lock order: a device's configuration lock -> m_lock -> the PIIX3 configuration lock (pirq_to_irq). PIIX3 calls
// routing_changed() without its own lock held.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "bus/irq_line.h"
#include "devices/pci/piix3.h"

namespace hako::devices::pci {

class IntxRouter final : public std::enable_shared_from_this<IntxRouter> {
public:
    using IrqFactory = std::function<std::shared_ptr<bus::IrqLine>(uint8_t irq)>;
    static constexpr unsigned NUM_ISA_IRQS = 16;

    /// Creates a router and subscribes it to the bridge's PIRQRC changes.
    static std::shared_ptr<IntxRouter> create(std::shared_ptr<Piix3IsaBridge> piix3, IrqFactory isa_irq);

    /// A line for the device at `slot` with interrupt pin `pin` (1-4); nullptr for pin 0 or an invalid pin.
    std::shared_ptr<bus::IrqLine> line_for(uint8_t slot, uint8_t pin);
    /// Re-evaluates every ISA IRQ after a PIRQRC change.
    void routing_changed();

    /// Whether any device asserts this PIRQ (0-3).
    bool pirq_level(unsigned pirq) const;
    /// What the router drives onto ISA IRQ `irq`.
    bool irq_level(uint8_t irq) const;

    IntxRouter(std::shared_ptr<Piix3IsaBridge> piix3, IrqFactory isa_irq)
        : m_piix3(std::move(piix3)), m_factory(std::move(isa_irq))
    {
    }

private:
    class SourceLine;
    struct Source {
        unsigned pirq;
        bool level;
    };
    void set_source(size_t index, bool level);
    void recompute_locked();

    std::shared_ptr<Piix3IsaBridge> m_piix3;
    IrqFactory m_factory;
    mutable std::mutex m_lock;
    std::vector<Source> m_sources;
    std::array<std::shared_ptr<bus::IrqLine>, NUM_ISA_IRQS> m_irq_lines {};
    std::array<bool, NUM_ISA_IRQS> m_irq_levels {};
};

} // namespace hako::devices::pci
