// The GDT and identity page tables that direct boot (Linux, PVH, multiboot) starts the boot CPU on.
#pragma once

#include <cstdint>

#include "arch/x86/boot.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace hako::arch::x86 {

constexpr uint64_t CR0_PE = 1u << 0;
constexpr uint64_t CR0_ET = 1u << 4;
constexpr uint64_t CR0_PG = 1u << 31;
constexpr uint64_t CR4_PAE = 1u << 5;
constexpr uint64_t EFER_LME = 1u << 8;
constexpr uint64_t EFER_LMA = 1u << 10;

/// A flat segment's selector and attributes (base 0, limit 4 GiB).
struct BootSegment {
    uint16_t selector;
    uint8_t type; // descriptor type field
    uint8_t db;   // 32-bit default operand size
    uint8_t l;    // 64-bit code
};

struct BootTables {
    uint64_t gdt_base;
    uint16_t gdt_limit;
    uint64_t idt_base;
    uint64_t pml4;
    BootSegment code32;  // __BOOT_CS (0x10) when entering in 32-bit mode
    BootSegment code64;  // __BOOT_CS (0x10) when entering in 64-bit mode
    BootSegment data;    // __BOOT_DS (0x18)
    uint16_t tss_selector;
};

/// The fixed layout of the boot GDT and page tables (addresses from layout.h).
BootTables const& boot_tables();

/// Writes the GDT for `mode` (the Linux boot protocol wants selector 0x10 to be the code segment of the entry
/// mode) and, for Long64, page tables identity-mapping the first 4 GiB with 2 MiB pages.
[[nodiscard]] Result<void> write_boot_tables(memory::GuestMemory const& mem, CpuMode mode);

} // namespace hako::arch::x86
