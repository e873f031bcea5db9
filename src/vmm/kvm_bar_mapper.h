// KvmBarMapper: the machine's BarMapper. A memory BAR whose device offers plain memory behind it
// (PciDevice::bar_memory(), e.g. the std VGA's framebuffer) becomes a KVM memory slot, so the guest reads and
// writes it without exits; every other BAR goes to the wrapped BusBarMapper (an adapter on the PIO or MMIO bus).
// If KVM refuses the slot (the guest placed the BAR over RAM or another slot), the failure is logged and counted and
// the BAR falls back to the bus mapping, where accesses still work through bar_read/bar_write, one exit each.
//
// Lock order: called with the device's configuration lock held; takes m_lock, then (fallback) the bus mapper's.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "devices/pci/pci_device.h"
#include "kvm/vm.h"

namespace hako::vmm {

class KvmBarMapper final : public devices::pci::BarMapper {
public:
    KvmBarMapper(kvm::Vm& vm, std::shared_ptr<devices::pci::BarMapper> fallback)
        : m_vm(vm), m_fallback(std::move(fallback))
    {
    }
    void map_bar(devices::pci::PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size) override;
    void unmap_bar(devices::pci::PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size) override;

    /// BARs KVM refused as memory slots (served through the bus instead).
    uint64_t failed_count() const { return m_failed.load(std::memory_order_relaxed); }
    /// BARs currently mapped as memory slots.
    size_t slot_count() const;

private:
    using Key = std::pair<devices::pci::PciDevice const*, int>;
    kvm::Vm& m_vm;
    std::shared_ptr<devices::pci::BarMapper> m_fallback;
    mutable std::mutex m_lock;
    std::map<Key, uint32_t> m_slots; // BAR -> KVM slot
    std::vector<uint32_t> m_free;    // slots given back
    uint32_t m_next { kvm::Vm::FIRST_DEVICE_SLOT };
    std::atomic<uint64_t> m_failed { 0 };
};

} // namespace hako::vmm
