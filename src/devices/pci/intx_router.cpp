#include "devices/pci/intx_router.h"

namespace hako::devices::pci {

class IntxRouter::SourceLine final : public bus::IrqLine {
public:
    SourceLine(std::shared_ptr<IntxRouter> router, size_t index) : m_router(std::move(router)), m_index(index) { }
    void set_level(bool asserted) override { m_router->set_source(m_index, asserted); }

private:
    std::shared_ptr<IntxRouter> m_router;
    size_t m_index;
};

std::shared_ptr<IntxRouter> IntxRouter::create(std::shared_ptr<Piix3IsaBridge> piix3, IrqFactory isa_irq)
{
    auto router = std::make_shared<IntxRouter>(piix3, std::move(isa_irq));
    if (piix3) {
        std::weak_ptr<IntxRouter> weak = router;
        piix3->set_pirq_listener([weak] {
            if (auto r = weak.lock())
                r->routing_changed();
        });
    }
    return router;
}

std::shared_ptr<bus::IrqLine> IntxRouter::line_for(uint8_t slot, uint8_t pin)
{
    auto const pirq = intx_to_pirq(slot, pin);
    if (!pirq)
        return nullptr;
    size_t index;
    {
        std::lock_guard lock(m_lock);
        index = m_sources.size();
        m_sources.push_back(Source { *pirq, false });
    }
    return std::make_shared<SourceLine>(shared_from_this(), index);
}

void IntxRouter::set_source(size_t index, bool level)
{
    std::lock_guard lock(m_lock);
    if (index >= m_sources.size() || m_sources[index].level == level)
        return;
    m_sources[index].level = level;
    recompute_locked();
}

void IntxRouter::routing_changed()
{
    std::lock_guard lock(m_lock);
    recompute_locked();
}

void IntxRouter::recompute_locked()
{
    std::array<bool, NUM_PIRQS> pirq {};
    for (auto const& s : m_sources)
        pirq[s.pirq] = pirq[s.pirq] || s.level;
    std::array<bool, NUM_ISA_IRQS> want {};
    for (unsigned p = 0; p < NUM_PIRQS; ++p) {
        if (!pirq[p] || !m_piix3)
            continue;
        if (auto irq = m_piix3->pirq_to_irq(p); irq && *irq < NUM_ISA_IRQS)
            want[*irq] = true;
    }
    for (uint8_t irq = 0; irq < NUM_ISA_IRQS; ++irq) {
        if (want[irq] == m_irq_levels[irq])
            continue;
        m_irq_levels[irq] = want[irq];
        if (!m_irq_lines[irq] && m_factory)
            m_irq_lines[irq] = m_factory(irq);
        if (m_irq_lines[irq])
            m_irq_lines[irq]->set_level(want[irq]);
    }
}

bool IntxRouter::pirq_level(unsigned pirq) const
{
    std::lock_guard lock(m_lock);
    bool level = false;
    for (auto const& s : m_sources)
        level = level || (s.pirq == pirq && s.level);
    return level;
}

bool IntxRouter::irq_level(uint8_t irq) const
{
    std::lock_guard lock(m_lock);
    return irq < NUM_ISA_IRQS && m_irq_levels[irq];
}

} // namespace hako::devices::pci
