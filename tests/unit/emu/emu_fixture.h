// The CPU states and code placement the emulator's unit tests share: 64-bit kernel mode over an identity-mapped
// first 2 MiB, 32-bit flat protected mode (with and without a GDT), real mode, and running one instruction from CODE.
#pragma once

#include <cstdint>
#include <vector>

#include "emu/emulator.h"
#include "fake_physical_memory.h"

namespace hako::emu::test {

inline constexpr uint64_t CODE = 0x10000;
inline constexpr uint64_t DATA = 0x20000;
inline constexpr uint64_t PT = 0x4000; // the 4-level page table mapping the first 2 MiB with 4 KiB pages

inline Segment flat_code64()
{
    Segment s;
    s.base = 0, s.limit = 0xffffffff, s.selector = 0x10, s.type = 0xb, s.l = true, s.g = true;
    return s;
}

inline Segment flat_data(bool big)
{
    Segment s;
    s.base = 0, s.limit = 0xffffffff, s.selector = 0x18, s.type = 3, s.db = big, s.g = true;
    return s;
}

/// 64-bit kernel mode, identity-mapped first 2 MiB (4 KiB pages, supervisor, writable), NXE on, RIP = CODE.
inline CpuState long_mode(FakePhysicalMemory& m)
{
    m.put64(0x1000, 0x2000 | 3);
    m.put64(0x2000, 0x3000 | 3);
    m.put64(0x3000, PT | 3);
    for (uint64_t i = 0; i < 512; ++i)
        m.put64(PT + i * 8, (i * 4096) | 3);
    CpuState s;
    s.cr0 = CR0_PE | CR0_PG | CR0_WP | CR0_NE | (1u << 4);
    s.cr3 = 0x1000;
    s.cr4 = CR4_PAE;
    s.efer = EFER_LME | EFER_LMA | EFER_NXE;
    for (auto& seg : s.seg)
        seg = flat_data(true);
    s.segment(Seg::Cs) = flat_code64();
    s.rip = CODE;
    return s;
}

/// 32-bit flat protected mode without paging (OVMF's SEC phase), RIP = CODE.
inline CpuState protected32()
{
    CpuState s;
    s.cr0 = CR0_PE | (1u << 4);
    for (auto& seg : s.seg)
        seg = flat_data(true);
    s.segment(Seg::Cs) = flat_data(true);
    s.segment(Seg::Cs).type = 0xb;
    s.rip = CODE;
    return s;
}

/// Real mode with CS = DS = 0 and CS:IP at CODE.
inline CpuState real_mode()
{
    CpuState s;
    s.cr0 = 1u << 4;
    s.rip = CODE & 0xffff;
    s.segment(Seg::Cs).base = CODE & ~0xffffull;
    s.segment(Seg::Cs).selector = static_cast<uint16_t>(CODE >> 4);
    return s;
}

// A GDT for protected-mode tests (IRET, event delivery), and 32-bit flat protected mode over it.
inline constexpr uint64_t GDT = 0x8000;
inline constexpr uint64_t STACK = 0x30000;

// GDT entries (selector = index * 8).
inline constexpr uint16_t CODE32_K = 0x08, DATA32_K = 0x10, CODE32_U = 0x18 | 3, DATA32_U = 0x20 | 3, CODE64_K = 0x28,
                   CODE64_U = 0x30 | 3, NOT_PRESENT = 0x38, DATA_AS_CODE = 0x40, CODE16_K = 0x48, SMALL_CODE = 0x50,
                   CONFORMING = 0x58;

inline uint64_t descriptor(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags /* G D/B L AVL */)
{
    return (uint64_t(limit) & 0xffff) | (uint64_t(base) & 0xffffff) << 16 | uint64_t(access) << 40
        | uint64_t((limit >> 16) & 0xf) << 48 | uint64_t(flags & 0xf) << 52 | uint64_t(base >> 24) << 56;
}

inline void write_gdt(FakePhysicalMemory& m)
{
    m.put64(GDT + 0x00, 0);
    m.put64(GDT + 0x08, descriptor(0, 0xfffff, 0x9a, 0xc)); // 32-bit code, DPL 0, not accessed
    m.put64(GDT + 0x10, descriptor(0, 0xfffff, 0x92, 0xc)); // data, DPL 0
    m.put64(GDT + 0x18, descriptor(0, 0xfffff, 0xfa, 0xc)); // 32-bit code, DPL 3
    m.put64(GDT + 0x20, descriptor(0, 0xfffff, 0xf2, 0xc)); // data, DPL 3
    m.put64(GDT + 0x28, descriptor(0, 0xfffff, 0x9b, 0xa)); // 64-bit code, DPL 0
    m.put64(GDT + 0x30, descriptor(0, 0xfffff, 0xfb, 0xa)); // 64-bit code, DPL 3
    m.put64(GDT + 0x38, descriptor(0, 0xfffff, 0x1a, 0xc)); // code, not present
    m.put64(GDT + 0x40, descriptor(0, 0xfffff, 0x92, 0xc)); // data (as a CS)
    m.put64(GDT + 0x48, descriptor(0, 0xffff, 0x9b, 0x0));  // 16-bit code
    m.put64(GDT + 0x50, descriptor(0, 0x1000, 0x9b, 0x4));  // 32-bit code, byte-granular limit 0x1000
    m.put64(GDT + 0x58, descriptor(0, 0xfffff, 0x9e, 0xc)); // conforming code, DPL 0
}

// 32-bit flat protected mode, paging off, at CPL 0 with CS = CODE32_K, SS = DS = ES = DATA32_K, ESP = STACK.
inline CpuState pm32(FakePhysicalMemory& m)
{
    write_gdt(m);
    CpuState s = protected32();
    s.gdt = { GDT, 0x5f };
    s.segment(Seg::Cs).selector = CODE32_K;
    for (Seg r : { Seg::Ss, Seg::Ds, Seg::Es, Seg::Fs, Seg::Gs })
        s.segment(r).selector = DATA32_K;
    s.reg(Gpr::Rsp) = STACK;
    return s;
}

/// Places `code` at CODE and emulates the instruction there.
inline Outcome run(CpuState& s, FakePhysicalMemory& m, std::vector<uint8_t> const& code)
{
    m.put(CODE, code);
    return emulate(s, m);
}

} // namespace hako::emu::test
