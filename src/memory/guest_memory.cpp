#include "memory/guest_memory.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <sys/mman.h>

namespace hako::memory {

// memcpy/memset with a null pointer is undefined even for 0 bytes: empty copies return early.
void GuestSpan::copy_to(std::span<uint8_t> out) const
{
    size_t const n = std::min(out.size(), m_size);
    if (n)
        std::memcpy(out.data(), m_host, n);
}

void GuestSpan::copy_from(std::span<uint8_t const> in) const
{
    size_t const n = std::min(in.size(), m_size);
    if (n)
        std::memcpy(m_host, in.data(), n);
}

void GuestSpan::fill(uint8_t value) const
{
    if (m_size)
        std::memset(m_host, value, m_size);
}

static Result<void> check_layout(std::vector<GuestMemory::Region>& regions)
{
    std::sort(regions.begin(), regions.end(), [](auto const& a, auto const& b) { return a.base < b.base; });
    for (size_t i = 0; i < regions.size(); ++i) {
        auto const& r = regions[i];
        auto end = r.base.checked_add(r.size);
        if (r.size == 0 || !end)
            return Error(ErrorKind::InvalidArgument, fmt::format("Bad guest memory region at {}", r.base));
        if (i + 1 < regions.size() && *end > regions[i + 1].base)
            return Error(ErrorKind::InvalidArgument, fmt::format("Guest memory regions overlap at {}", regions[i + 1].base));
    }
    return ok();
}

Result<GuestMemory> GuestMemory::create(std::vector<RegionSpec> const& specs)
{
    std::vector<Region> regions;
    for (auto const& s : specs)
        regions.push_back(Region { s.base, s.size, s.kind, nullptr });
    TRY(check_layout(regions));
    GuestMemory mem(std::move(regions), true);
    for (auto& r : mem.m_regions) {
        if ((r.base.value() | r.size) & 0xfff)
            return Error(ErrorKind::InvalidArgument, fmt::format("Guest memory region at {} is not page-aligned", r.base));
        // SAFETY: a fresh private anonymous mapping owned by this GuestMemory; unmapped in unmap().
        void* p = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return Error::from_errno(ErrorKind::OutOfRange, fmt::format("Cannot map {} MiB of guest memory", r.size >> 20));
        r.host = static_cast<uint8_t*>(p);
    }
    return mem;
}

Result<GuestMemory> GuestMemory::from_buffers(std::vector<std::pair<GuestAddr, std::span<uint8_t>>> buffers)
{
    std::vector<Region> regions;
    for (auto& [base, buf] : buffers)
        regions.push_back(Region { base, buf.size(), RegionKind::Ram, buf.data() });
    TRY(check_layout(regions));
    return GuestMemory(std::move(regions), false);
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : m_regions(std::move(other.m_regions)), m_owned(other.m_owned)
{
    other.m_regions.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept
{
    if (this != &other) {
        unmap();
        m_regions = std::move(other.m_regions);
        m_owned = other.m_owned;
        other.m_regions.clear();
    }
    return *this;
}

GuestMemory::~GuestMemory() { unmap(); }

void GuestMemory::unmap()
{
    if (m_owned) {
        for (auto& r : m_regions) {
            if (r.host)
                ::munmap(r.host, r.size);
        }
    }
    m_regions.clear();
}

uint64_t GuestMemory::ram_size() const
{
    uint64_t total = 0;
    for (auto const& r : m_regions) {
        if (r.kind == RegionKind::Ram)
            total += r.size;
    }
    return total;
}

GuestMemory::Region const* GuestMemory::find(GuestAddr addr, uint64_t len) const
{
    // Regions are few (RAM below and above the PCI hole, firmware): a linear scan is fastest.
    for (auto const& r : m_regions) {
        if (addr < r.base)
            continue;
        uint64_t off = addr.value() - r.base.value();
        if (range_within(off, len, r.size))
            return &r;
    }
    return nullptr;
}

bool GuestMemory::is_valid_range(GuestAddr addr, uint64_t len) const { return find(addr, len) != nullptr; }

bool GuestMemory::is_ram(GuestAddr addr, uint64_t len) const
{
    auto const* r = find(addr, len);
    return r && r->kind == RegionKind::Ram;
}

Result<GuestSpan> GuestMemory::span(GuestAddr addr, uint64_t len) const
{
    auto const* r = find(addr, len);
    if (!r)
        return Error(ErrorKind::OutOfRange, fmt::format("Guest range {}+{:#x} is outside guest memory", addr, len));
    // SAFETY: find() proved [addr, addr+len) lies inside region r, whose mapping is r.size bytes long.
    return GuestSpan(r->host + (addr.value() - r->base.value()), static_cast<size_t>(len));
}

Result<void> GuestMemory::discard(GuestAddr addr, uint64_t len) const
{
    constexpr uint64_t PAGE = 4096;
    if (addr.value() % PAGE != 0 || len % PAGE != 0 || len == 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("Discard of {:#x} bytes at {} is not page-aligned", len, addr));
    Region const* r = find(addr, len);
    if (!r || r->kind != RegionKind::Ram)
        return Error(ErrorKind::OutOfRange, fmt::format("Discard of {:#x} bytes at {} is not inside guest RAM", len, addr));
    uint8_t* host = r->host + (addr.value() - r->base.value());
    if (!m_owned) {
        std::memset(host, 0, len);
        return ok();
    }
    if (::madvise(host, len, MADV_DONTNEED) != 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("madvise(MADV_DONTNEED) at {}", addr));
    return ok();
}

Result<void> GuestMemory::read(GuestAddr addr, std::span<uint8_t> out) const
{
    auto s = TRY(span(addr, out.size()));
    s.copy_to(out);
    return ok();
}

Result<uint16_t> GuestMemory::read_le16_once(GuestAddr addr) const
{
    auto s = TRY(span(addr, sizeof(uint16_t)));
    uint8_t* p = s.bytes().data();
    uint16_t raw = 0;
    if (reinterpret_cast<uintptr_t>(p) % alignof(uint16_t) == 0) {
        // SAFETY: p points to 2 bytes of mapped guest memory (span() checked the range) and is 2-byte aligned; the
        // atomic_ref makes the load a single access, which the guest's concurrent stores cannot tear.
        raw = std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).load(std::memory_order_relaxed);
    } else {
        s.copy_to(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&raw), sizeof(raw)));
    }
    static_assert(std::endian::native == std::endian::little, "guest memory is little-endian (x86)");
    return raw;
}

Result<void> GuestMemory::write(GuestAddr addr, std::span<uint8_t const> in) const
{
    auto s = TRY(span(addr, in.size()));
    s.copy_from(in);
    return ok();
}

namespace {

template<typename T>
bool compare_exchange_on(uint8_t* host, std::span<uint8_t> expected, std::span<uint8_t const> desired)
{
    T want {}, put {};
    std::memcpy(&want, expected.data(), sizeof(T));
    std::memcpy(&put, desired.data(), sizeof(T));
    // SAFETY: the caller checked that host points to sizeof(T) bytes of mapped guest RAM aligned to sizeof(T); the
    // atomic_ref makes the compare-exchange one locked instruction, so other vCPUs see it whole.
    bool done = std::atomic_ref<T>(*reinterpret_cast<T*>(host)).compare_exchange_strong(want, put,
        std::memory_order_seq_cst);
    if (!done)
        std::memcpy(expected.data(), &want, sizeof(T));
    return done;
}

// The 16-byte memory operand of CMPXCHG16B.
struct alignas(16) Octword {
    uint64_t lo, hi;
};

bool compare_exchange_16(uint8_t* host, std::span<uint8_t> expected, std::span<uint8_t const> desired)
{
    uint64_t lo = 0, hi = 0, new_lo = 0, new_hi = 0;
    std::memcpy(&lo, expected.data(), 8);
    std::memcpy(&hi, expected.data() + 8, 8);
    std::memcpy(&new_lo, desired.data(), 8);
    std::memcpy(&new_hi, desired.data() + 8, 8);
    bool done = false;
    // SAFETY: the caller checked that host points to 16 bytes of mapped guest RAM aligned to 16, which
    // CMPXCHG16B requires; LOCK makes the read-compare-write atomic against the guest's vCPUs. x86-64 hosts
    // only (hako runs on x86 KVM); every x86-64 CPU with KVM support has CMPXCHG16B.
    asm volatile("lock cmpxchg16b %[mem]"
                 : [mem] "+m"(*reinterpret_cast<Octword*>(host)), "+a"(lo), "+d"(hi), "=@ccz"(done)
                 : "b"(new_lo), "c"(new_hi)
                 : "memory");
    if (!done) {
        std::memcpy(expected.data(), &lo, 8);
        std::memcpy(expected.data() + 8, &hi, 8);
    }
    return done;
}

} // namespace

Result<bool> GuestMemory::compare_exchange(GuestAddr addr, std::span<uint8_t> expected,
    std::span<uint8_t const> desired) const
{
    size_t const n = expected.size();
    if ((n != 4 && n != 8 && n != 16) || desired.size() != n || addr.value() % n != 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("Compare-exchange of {} bytes at {}", n, addr));
    Region const* r = find(addr, n);
    if (!r || r->kind != RegionKind::Ram)
        return Error(ErrorKind::OutOfRange, fmt::format("Compare-exchange at {} is not inside guest RAM", addr));
    // SAFETY: find() proved [addr, addr+n) lies inside region r, whose mapping is r->size bytes long.
    uint8_t* host = r->host + (addr.value() - r->base.value());
    // SAFETY: only inspects the pointer's value. Mapped regions are page-aligned; test buffers need not be.
    if (reinterpret_cast<uintptr_t>(host) % n != 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("Compare-exchange at {}: host mapping unaligned", addr));
    if (n == 4)
        return compare_exchange_on<uint32_t>(host, expected, desired);
    if (n == 8)
        return compare_exchange_on<uint64_t>(host, expected, desired);
    return compare_exchange_16(host, expected, desired);
}

} // namespace hako::memory
