// Helpers for the x86 loader tests: synthetic ELF images and notes, a small guest memory, a typical memory map,
// and the path of the Debian kernel that scripts/fetch-guests.sh puts in the cache.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "arch/x86/loader.h"
#include "base/bytes.h"
#include "base/file.h"
#include "memory/guest_memory.h"

namespace hako::arch::x86::test {

struct TestSegment {
    uint32_t type; // PT_LOAD or PT_NOTE
    uint64_t paddr;
    std::vector<uint8_t> data;
    uint64_t mem_size;
};

inline void append_le(std::vector<uint8_t>& v, uint64_t value, size_t width)
{
    for (size_t i = 0; i < width; ++i)
        v.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

/// One ELF note: namesz, descsz, type, name (NUL-terminated, padded to 4), desc (padded to 4).
inline std::vector<uint8_t> make_note(std::string const& name, uint32_t type, std::vector<uint8_t> const& desc)
{
    std::vector<uint8_t> n;
    append_le(n, name.size() + 1, 4);
    append_le(n, desc.size(), 4);
    append_le(n, type, 4);
    n.insert(n.end(), name.begin(), name.end());
    n.push_back(0);
    while (n.size() % 4)
        n.push_back(0);
    n.insert(n.end(), desc.begin(), desc.end());
    while (n.size() % 4)
        n.push_back(0);
    return n;
}

/// The PVH entry note Linux emits (8-byte descriptor on x86-64).
inline std::vector<uint8_t> pvh_note(uint64_t entry, size_t width = 8)
{
    std::vector<uint8_t> desc;
    append_le(desc, entry, width);
    return make_note("Xen", 18, desc);
}

constexpr size_t ELF64_EHDR = 64, ELF64_PHDR = 56, ELF32_EHDR = 52, ELF32_PHDR = 32;

/// A little-endian ET_EXEC image: header, program headers, then each segment's data (16-byte aligned).
inline std::vector<uint8_t> build_elf(bool is64, uint64_t entry, std::vector<TestSegment> const& segs,
    size_t data_start = 0)
{
    size_t ehdr = is64 ? ELF64_EHDR : ELF32_EHDR;
    size_t phdr = is64 ? ELF64_PHDR : ELF32_PHDR;
    std::vector<size_t> offsets;
    size_t off = std::max(ehdr + phdr * segs.size(), data_start);
    for (auto const& s : segs) {
        off = (off + 15) & ~size_t { 15 };
        offsets.push_back(off);
        off += s.data.size();
    }
    std::vector<uint8_t> f(off);
    uint8_t* p = f.data();
    p[0] = 0x7f, p[1] = 'E', p[2] = 'L', p[3] = 'F';
    p[4] = is64 ? 2 : 1; // class
    p[5] = 1;            // little-endian
    p[6] = 1;            // version
    put_le16(p + 16, 2); // ET_EXEC
    put_le16(p + 18, is64 ? 62 : 3);
    put_le32(p + 20, 1);
    if (is64) {
        put_le64(p + 24, entry);
        put_le64(p + 32, ELF64_EHDR);
        put_le16(p + 52, ELF64_EHDR);
        put_le16(p + 54, ELF64_PHDR);
        put_le16(p + 56, static_cast<uint16_t>(segs.size()));
    } else {
        put_le32(p + 24, static_cast<uint32_t>(entry));
        put_le32(p + 28, ELF32_EHDR);
        put_le16(p + 40, ELF32_EHDR);
        put_le16(p + 42, ELF32_PHDR);
        put_le16(p + 44, static_cast<uint16_t>(segs.size()));
    }
    for (size_t i = 0; i < segs.size(); ++i) {
        auto const& s = segs[i];
        uint8_t* ph = p + ehdr + i * phdr;
        if (is64) {
            put_le32(ph, s.type);
            put_le64(ph + 8, offsets[i]);
            put_le64(ph + 16, s.paddr);
            put_le64(ph + 24, s.paddr);
            put_le64(ph + 32, s.data.size());
            put_le64(ph + 40, s.mem_size);
        } else {
            put_le32(ph, s.type);
            put_le32(ph + 4, static_cast<uint32_t>(offsets[i]));
            put_le32(ph + 8, static_cast<uint32_t>(s.paddr));
            put_le32(ph + 12, static_cast<uint32_t>(s.paddr));
            put_le32(ph + 16, static_cast<uint32_t>(s.data.size()));
            put_le32(ph + 20, static_cast<uint32_t>(s.mem_size));
        }
        std::copy(s.data.begin(), s.data.end(), f.begin() + static_cast<std::ptrdiff_t>(offsets[i]));
    }
    return f;
}

/// Offset of program header i's field `field` (ELF64 layout).
constexpr size_t phdr64_field(size_t i, size_t field) { return ELF64_EHDR + i * ELF64_PHDR + field; }

inline std::vector<uint8_t> pattern(size_t n, uint8_t seed)
{
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
    return v;
}

/// Guest RAM over a heap buffer at 0 (from_buffers).
struct TestRam {
    std::vector<uint8_t> buf;
    memory::GuestMemory mem;
    explicit TestRam(uint64_t size, uint8_t fill = 0xcc)
        : buf(size, fill), mem(std::move(memory::GuestMemory::from_buffers({ { memory::GuestAddr(0), buf } }).value()))
    {
    }
    uint32_t u32(uint64_t addr) const { return get_le32(&buf[addr]); }
    uint64_t u64(uint64_t addr) const { return get_le64(&buf[addr]); }
    uint16_t u16(uint64_t addr) const { return get_le16(&buf[addr]); }
};

/// The memory map a PC with `ram` bytes below 4 GiB reports: low RAM, EBDA, BIOS area, RAM from 1 MiB.
inline std::vector<BootMemoryMapEntry> pc_memory_map(uint64_t ram)
{
    return {
        { 0, 0x9fc00, 1 },
        { 0x9fc00, 0x400, 2 },
        { 0xe0000, 0x20000, 2 },
        { 0x100000, ram - 0x100000, 1 },
    };
}

inline std::string guest_cache_file(std::string const& rel)
{
    char const* env = std::getenv("HAKO_CACHE");
    return std::string(env && *env ? env : "/var/tmp/hako") + "/" + rel;
}

/// The cached Debian kernel file; fails the test (never skips) when it is missing.
inline std::vector<uint8_t> read_cached_kernel(std::string const& rel)
{
    auto path = guest_cache_file(rel);
    auto data = read_file(path, 512ull << 20);
    if (!data) {
        ADD_FAILURE() << "Cannot read " << path << " (" << data.error().message()
                      << "): run scripts/fetch-guests.sh first (the test suite does)";
        return {};
    }
    return std::move(data).value();
}

} // namespace hako::arch::x86::test
