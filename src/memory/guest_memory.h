// GuestMemory: the guest's physical RAM and ROM, as host mappings, with every access range-checked.
//
// All guest memory access in hako goes through this class (docs/architecture.md, "Guest memory").
// A check always covers the whole [addr, addr+len) range, which must lie inside one region; an access that
// overflows or leaves a region fails instead of touching anything. Guest memory is shared with a running
// guest: callers copy a value in, validate the copy, then use it.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/result.h"
#include "memory/guest_addr.h"

namespace hako::memory {

enum class RegionKind {
    Ram, // read-write RAM
    Rom, // read-only to the guest (writes exit to the VMM as MMIO and are dropped)
};

/// A window of guest memory that a check has already validated. Cheap to copy; never outlives GuestMemory.
class GuestSpan final {
public:
    GuestSpan() = default;
    size_t size() const { return m_size; }
    /// Copies out of guest memory. out.size() must be <= size().
    void copy_to(std::span<uint8_t> out) const;
    /// Copies into guest memory. in.size() must be <= size().
    void copy_from(std::span<uint8_t const> in) const;
    void fill(uint8_t value) const;
    /// The bytes, for bulk host-side work (loaders, block I/O). The guest may change them concurrently.
    std::span<uint8_t> bytes() const { return { m_host, m_size }; }

private:
    friend class GuestMemory;
    GuestSpan(uint8_t* host, size_t size) : m_host(host), m_size(size) {}
    uint8_t* m_host { nullptr };
    size_t m_size { 0 };
};

class GuestMemory final {
public:
    struct Region {
        GuestAddr base;
        uint64_t size;
        RegionKind kind;
        uint8_t* host; // mapping owned by GuestMemory
    };

    struct RegionSpec {
        GuestAddr base;
        uint64_t size;
        RegionKind kind;
    };

    /// Maps anonymous memory for each region. Regions must be page-aligned, non-empty and must not overlap.
    [[nodiscard]] static Result<GuestMemory> create(std::vector<RegionSpec> const& specs);
    /// Guest memory over caller-owned buffers (unit tests and fuzzers). Buffers must outlive the object.
    [[nodiscard]] static Result<GuestMemory> from_buffers(std::vector<std::pair<GuestAddr, std::span<uint8_t>>> buffers);

    GuestMemory(GuestMemory&&) noexcept;
    GuestMemory& operator=(GuestMemory&&) noexcept;
    GuestMemory(GuestMemory const&) = delete;
    GuestMemory& operator=(GuestMemory const&) = delete;
    ~GuestMemory();

    std::vector<Region> const& regions() const { return m_regions; }
    /// Total bytes of RAM regions.
    uint64_t ram_size() const;

    /// Validates [addr, addr+len) and returns it as a span. Fails on overflow or if it leaves a region.
    [[nodiscard]] Result<GuestSpan> span(GuestAddr addr, uint64_t len) const;
    /// True if [addr, addr+len) lies inside one region.
    bool is_valid_range(GuestAddr addr, uint64_t len) const;
    /// True if [addr, addr+len) lies inside one RAM region (not ROM): where a device may DMA.
    bool is_ram(GuestAddr addr, uint64_t len) const;

    /// Gives the host memory behind [addr, addr+len) back to the host (the guest reads zeros there afterwards):
    /// page-aligned RAM only. For memory this object does not own (from_buffers) it zero-fills instead.
    [[nodiscard]] Result<void> discard(GuestAddr addr, uint64_t len) const;

    [[nodiscard]] Result<void> read(GuestAddr addr, std::span<uint8_t> out) const;
    [[nodiscard]] Result<void> write(GuestAddr addr, std::span<uint8_t const> in) const;
    /// A locked compare-exchange on RAM for the instruction emulator (CMPXCHG8B/16B, page-table A/D bits): if the
    /// `expected.size()` bytes at addr (4, 8 or 16, naturally aligned, inside one RAM region) equal `expected`,
    /// stores `desired` and returns true; otherwise copies them into `expected` and returns false. Atomic against
    /// the guest's vCPUs (one host LOCK CMPXCHG/CMPXCHG16B on the mapping). Fails for other sizes, unaligned
    /// addresses and anything that is not RAM.
    [[nodiscard]] Result<bool> compare_exchange(GuestAddr addr, std::span<uint8_t> expected,
        std::span<uint8_t const> desired) const;
    /// Reads the little-endian u16 at addr with one 16-bit load when addr is 2-byte aligned, so a value the guest
    /// changes concurrently (a virtqueue index) is read whole, never half old and half new as read()/read_obj() can
    /// (memcpy may copy 2 bytes in two loads). Unaligned addresses fall back to read().
    [[nodiscard]] Result<uint16_t> read_le16_once(GuestAddr addr) const;

    template<typename T>
        requires std::is_trivially_copyable_v<T>
    [[nodiscard]] Result<T> read_obj(GuestAddr addr) const
    {
        T value;
        std::span<uint8_t> out(static_cast<uint8_t*>(static_cast<void*>(&value)), sizeof(T));
        TRY(read(addr, out));
        return value;
    }

    template<typename T>
        requires std::is_trivially_copyable_v<T>
    [[nodiscard]] Result<void> write_obj(GuestAddr addr, T const& value) const
    {
        std::span<uint8_t const> in(static_cast<uint8_t const*>(static_cast<void const*>(&value)), sizeof(T));
        return write(addr, in);
    }

private:
    GuestMemory(std::vector<Region> regions, bool owned) : m_regions(std::move(regions)), m_owned(owned) {}
    Region const* find(GuestAddr addr, uint64_t len) const;
    void unmap();

    std::vector<Region> m_regions; // sorted by base
    bool m_owned { true };
};

} // namespace hako::memory
