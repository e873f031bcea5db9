// Bus: maps address ranges (port I/O or MMIO) to devices and dispatches accesses to them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <atomic>

#include "base/result.h"
#include "bus/device.h"

namespace hako::bus {

/// A half-open range [base, base+size).
class AddressRange final {
public:
    /// Fails on zero size or if the range wraps past 2^64.
    [[nodiscard]] static Result<AddressRange> create(uint64_t base, uint64_t size);
    uint64_t base() const { return m_base; }
    uint64_t size() const { return m_size; }
    uint64_t last() const { return m_base + (m_size - 1); }
    bool contains(uint64_t addr) const { return addr >= m_base && addr - m_base < m_size; }
    bool overlaps(AddressRange const& o) const { return m_base <= o.last() && o.m_base <= last(); }

private:
    AddressRange(uint64_t base, uint64_t size) : m_base(base), m_size(size) {}
    uint64_t m_base;
    uint64_t m_size;
};

class Bus final {
public:
    enum class Kind { Pio, Mmio };
    explicit Bus(Kind kind) : m_kind(kind) {}

    /// Registers a device over a range. Rejects zero size, overflow and overlap with an existing range.
    [[nodiscard]] Result<void> insert(uint64_t base, uint64_t size, std::shared_ptr<Device> device);
    /// Removes the range starting exactly at base (PCI BAR moves). Returns false if there was none.
    bool remove(uint64_t base);

    /// Dispatches a read. Returns false if no device claims addr (data is then filled with 0xff: open bus).
    bool read(uint64_t addr, std::span<uint8_t> data) const;
    /// Dispatches a write. Returns false if no device claims addr (the write is dropped).
    bool write(uint64_t addr, std::span<uint8_t const> data) const;

    /// Accesses that hit no device.
    uint64_t unclaimed_count() const { return m_unclaimed.load(std::memory_order_relaxed); }

private:
    struct Entry {
        AddressRange range;
        std::shared_ptr<Device> device;
    };
    std::shared_ptr<Device> lookup(uint64_t addr, uint64_t& offset) const;

    Kind m_kind;
    // Lock order: taken shared by vCPU threads for lookup only, exclusive by insert/remove; device locks are
    // taken after it is released (the device pointer is copied out), so this lock never nests with them.
    mutable std::shared_mutex m_lock;
    std::map<uint64_t, Entry> m_entries; // keyed by range base
    mutable std::atomic<uint64_t> m_unclaimed { 0 };
};

} // namespace hako::bus
