// BusBarMapper: puts PCI BARs on hako's buses. Each mapped BAR is a small bus::Device (BarWindow) inserted on the
// port I/O or MMIO bus, forwarding accesses to PciDevice::bar_read()/bar_write() with (bar, offset).
//
// A placement the bus refuses (it overlaps another range) is logged, counted and left unmapped: the guest sees
// open bus there, as on hardware with a decode conflict. unmap_bar() only removes ranges this mapper inserted, so a
// refused placement never takes another device's range down. The window holds a weak reference to the device.
// Deliberately not done: checking BARs against RAM (KVM memory slots take precedence over the MMIO bus anyway) and
// mapping BARs as KVM memory slots or ioeventfds (the lead's KVM-side mapper can wrap this one).
//
// Lock order: called with a PciDevice's configuration lock held; takes m_lock, then the bus lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "bus/bus.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

class BusBarMapper final : public BarMapper {
public:
    BusBarMapper(bus::Bus& pio, bus::Bus& mmio) : m_pio(pio), m_mmio(mmio) { }

    void map_bar(PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size) override;
    void unmap_bar(PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size) override;

    /// Placements the bus refused.
    uint64_t failed_count() const { return m_failed.load(std::memory_order_relaxed); }
    /// Ranges currently inserted by this mapper.
    size_t mapped_count() const;

private:
    struct Mapping {
        bool is_io;
        uint64_t addr;
    };
    using Key = std::pair<PciDevice const*, int>;

    bus::Bus& m_pio;
    bus::Bus& m_mmio;
    mutable std::mutex m_lock;
    std::map<Key, Mapping> m_mapped;
    std::atomic<uint64_t> m_failed { 0 };
};

} // namespace hako::devices::pci
