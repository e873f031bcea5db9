// What a loader hands to the vCPU setup: the CPU mode and registers the boot protocol asks for.
#pragma once

#include <cstdint>

namespace hako::arch::x86 {

enum class CpuMode {
    RealReset,   // the architectural reset state: CS.base 0xFFFF0000, IP 0xFFF0 (firmware boot)
    Protected32, // flat 4 GiB code/data segments, paging off (multiboot, PVH)
    Long64,      // identity-mapped page tables for the first 4 GiB, 64-bit code segment (Linux 64-bit boot)
};

/// The boot CPU's entry state. Registers not named here are zero.
struct BootEntry {
    CpuMode mode { CpuMode::RealReset };
    uint64_t rip { 0xfff0 };
    uint64_t rsp { 0 };
    uint64_t rax { 0 };
    uint64_t rbx { 0 };
    uint64_t rsi { 0 };
};

} // namespace hako::arch::x86
