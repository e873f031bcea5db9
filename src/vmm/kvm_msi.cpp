#include "vmm/kvm_msi.h"

#include <sys/eventfd.h>

#include "base/log.h"

namespace hako::vmm {

KvmMsiRouter::~KvmMsiRouter()
{
    std::lock_guard lock(m_lock);
    for (auto const& [message, route] : m_routes)
        (void)m_vm.remove_irqfd(route.fd.fd(), route.gsi);
}

KvmMsiRouter::Route const* KvmMsiRouter::route_for_locked(uint64_t address, uint32_t data)
{
    auto const key = std::make_pair(address, data);
    if (auto it = m_routes.find(key); it != m_routes.end())
        return &it->second;
    if (m_routing_broken || m_routes.size() >= MAX_ROUTES)
        return nullptr;

    if (m_table.empty())
        m_table = kvm::Vm::default_irqchip_routes();
    uint32_t const gsi = m_next_gsi;
    m_table.push_back(kvm::GsiRoute { .gsi = gsi, .kind = kvm::GsiRoute::Kind::Msi, .address = address, .data = data });
    auto fd = EventFd::create(EFD_CLOEXEC | EFD_NONBLOCK);
    Result<void> r = fd ? m_vm.set_gsi_routing(m_table) : Result<void>(fd.error());
    if (r)
        r = m_vm.add_irqfd(fd->fd(), gsi);
    if (!r) {
        // Keep working without routes: every message goes through KVM_SIGNAL_MSI from now on.
        m_table.pop_back();
        m_routing_broken = true;
        HAKO_WARN("MSI routing through irqfd failed ({}); using KVM_SIGNAL_MSI", r.error().message());
        return nullptr;
    }
    ++m_next_gsi;
    auto [it, inserted] = m_routes.emplace(key, Route { gsi, std::move(*fd) });
    m_stats.routes = m_routes.size();
    if (m_routes.size() == MAX_ROUTES)
        HAKO_WARN("MSI route table full ({} messages); further new messages use KVM_SIGNAL_MSI", MAX_ROUTES);
    return &it->second;
}

void KvmMsiRouter::deliver(uint64_t address, uint32_t data)
{
    std::lock_guard lock(m_lock);
    if ((address & MSI_ADDRESS_MASK) != MSI_ADDRESS_BASE) {
        ++m_stats.dropped_bad_address;
        HAKO_WARN_RATELIMITED("MSI to {:#x} (data {:#x}) is not an interrupt address: dropped", address, data);
        return;
    }
    if (auto const* route = route_for_locked(address, data)) {
        route->fd.signal();
        ++m_stats.delivered_irqfd;
        return;
    }
    m_vm.signal_msi(address, data);
    ++m_stats.delivered_ioctl;
}

MsiStats KvmMsiRouter::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

} // namespace hako::vmm
