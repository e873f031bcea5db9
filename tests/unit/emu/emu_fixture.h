// The CPU states and code placement the emulator's unit tests share: 64-bit kernel mode over an identity-mapped
// first 2 MiB, 32-bit flat protected mode, real mode, and running one instruction from CODE.
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

/// Places `code` at CODE and emulates the instruction there.
inline Outcome run(CpuState& s, FakePhysicalMemory& m, std::vector<uint8_t> const& code)
{
    m.put(CODE, code);
    return emulate(s, m);
}

} // namespace hako::emu::test
