#include "vmm/kvm_bar_mapper.h"

#include "base/log.h"

namespace hako::vmm {

void KvmBarMapper::map_bar(devices::pci::PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size)
{
    memory::GuestMemory const* mem = is_io ? nullptr : device.bar_memory(bar);
    if (!mem) {
        m_fallback->map_bar(device, bar, is_io, addr, size);
        return;
    }
    std::lock_guard lock(m_lock);
    Key const key { &device, bar };
    uint32_t slot = 0;
    if (auto it = m_slots.find(key); it != m_slots.end()) {
        slot = it->second; // moved: KVM wants the old slot deleted before it is re-created elsewhere
        if (auto r = m_vm.unmap_device_memory(slot); !r)
            HAKO_WARN_RATELIMITED("pci {}: BAR {}: {}", device.name(), bar, r.error().message());
        m_slots.erase(it);
    } else if (!m_free.empty()) {
        slot = m_free.back();
        m_free.pop_back();
    } else {
        slot = m_next++;
    }
    // A bus mapping from an earlier refused placement goes away first.
    m_fallback->unmap_bar(device, bar, is_io, addr, size);
    if (auto r = m_vm.map_device_memory(slot, addr, size, *mem); !r) {
        m_free.push_back(slot);
        m_failed.fetch_add(1, std::memory_order_relaxed);
        HAKO_WARN_RATELIMITED("pci {}: BAR {} at {:#x} not mapped as memory ({}); accesses will exit",
            device.name(), bar, addr, r.error().message());
        m_fallback->map_bar(device, bar, is_io, addr, size);
        return;
    }
    m_slots.emplace(key, slot);
}

void KvmBarMapper::unmap_bar(devices::pci::PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size)
{
    {
        std::lock_guard lock(m_lock);
        if (auto it = m_slots.find(Key { &device, bar }); it != m_slots.end()) {
            if (auto r = m_vm.unmap_device_memory(it->second); !r)
                HAKO_WARN_RATELIMITED("pci {}: BAR {}: {}", device.name(), bar, r.error().message());
            m_free.push_back(it->second);
            m_slots.erase(it);
            return;
        }
    }
    m_fallback->unmap_bar(device, bar, is_io, addr, size);
}

size_t KvmBarMapper::slot_count() const
{
    std::lock_guard lock(m_lock);
    return m_slots.size();
}

} // namespace hako::vmm
