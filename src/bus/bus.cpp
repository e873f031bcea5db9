#include "bus/bus.h"

#include <cstring>
#include <mutex>

#include "base/checked.h"
#include "base/log.h"

namespace hako::bus {

Result<AddressRange> AddressRange::create(uint64_t base, uint64_t size)
{
    if (size == 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("Empty address range at {:#x}", base));
    if (!checked_add(base, size - 1))
        return Error(ErrorKind::OutOfRange, fmt::format("Address range {:#x}+{:#x} overflows", base, size));
    return AddressRange(base, size);
}

Result<void> Bus::insert(uint64_t base, uint64_t size, std::shared_ptr<Device> device)
{
    if (!device)
        return Error(ErrorKind::InvalidArgument, "No device given");
    auto range = TRY(AddressRange::create(base, size));
    std::unique_lock lock(m_lock);
    auto next = m_entries.lower_bound(base);
    if (next != m_entries.end() && next->second.range.overlaps(range))
        return Error(ErrorKind::Busy, fmt::format("{} at {:#x}+{:#x} overlaps {}", device->name(), base, size,
                                          next->second.device->name()));
    if (next != m_entries.begin()) {
        auto prev = std::prev(next);
        if (prev->second.range.overlaps(range))
            return Error(ErrorKind::Busy, fmt::format("{} at {:#x}+{:#x} overlaps {}", device->name(), base, size,
                                              prev->second.device->name()));
    }
    m_entries.emplace(base, Entry { range, std::move(device) });
    return ok();
}

bool Bus::remove(uint64_t base)
{
    std::unique_lock lock(m_lock);
    return m_entries.erase(base) > 0;
}

std::shared_ptr<Device> Bus::lookup(uint64_t addr, uint64_t& offset) const
{
    std::shared_lock lock(m_lock);
    auto it = m_entries.upper_bound(addr);
    if (it == m_entries.begin())
        return nullptr;
    --it;
    if (!it->second.range.contains(addr))
        return nullptr;
    offset = addr - it->second.range.base();
    return it->second.device;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const
{
    uint64_t offset = 0;
    auto dev = lookup(addr, offset);
    if (!dev) {
        std::memset(data.data(), 0xff, data.size());
        m_unclaimed.fetch_add(1, std::memory_order_relaxed);
        HAKO_DEBUG("{} read of {} bytes at {:#x}: no device", m_kind == Kind::Pio ? "port" : "MMIO", data.size(), addr);
        return false;
    }
    dev->read(offset, data);
    return true;
}

bool Bus::write(uint64_t addr, std::span<uint8_t const> data) const
{
    uint64_t offset = 0;
    auto dev = lookup(addr, offset);
    if (!dev) {
        m_unclaimed.fetch_add(1, std::memory_order_relaxed);
        HAKO_DEBUG("{} write of {} bytes at {:#x}: no device", m_kind == Kind::Pio ? "port" : "MMIO", data.size(), addr);
        return false;
    }
    dev->write(offset, data);
    return true;
}

} // namespace hako::bus
