#include "arch/x86/boot_tables.h"

#include "arch/x86/layout.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

BootTables const& boot_tables()
{
    static constexpr BootTables tables {
        .gdt_base = BOOT_GDT_ADDR,
        .gdt_limit = 5 * 8 - 1,
        .idt_base = BOOT_IDT_ADDR,
        .pml4 = PML4_ADDR,
        .code32 = { 0x10, 0xb, 1, 0 },
        .code64 = { 0x10, 0xb, 0, 1 },
        .data = { 0x18, 0x3, 1, 0 },
        .tss_selector = 0x20,
    };
    return tables;
}

// Flat 4 GiB descriptors: G=1, P=1, S=1, DPL 0, limit 0xFFFFF.
constexpr uint64_t GDT_CODE32 = 0x00cf9b000000ffff;
constexpr uint64_t GDT_CODE64 = 0x00af9b000000ffff;
constexpr uint64_t GDT_DATA = 0x00cf93000000ffff;
constexpr uint64_t GDT_TSS = 0x00008b000000ffff; // busy TSS, base 0, limit 0xFFFF (the upper half stays 0)

Result<void> write_boot_tables(memory::GuestMemory const& mem, CpuMode mode)
{
    uint64_t const gdt[5] = { 0, GDT_CODE64, mode == CpuMode::Long64 ? GDT_CODE64 : GDT_CODE32, GDT_DATA, GDT_TSS };
    TRY(mem.write_obj(GuestAddr(BOOT_GDT_ADDR), gdt));
    TRY(mem.write_obj<uint64_t>(GuestAddr(BOOT_IDT_ADDR), 0));
    if (mode != CpuMode::Long64)
        return ok();
    constexpr uint64_t PRESENT_RW = 0x3, PAGE_SIZE_2M = 0x80;
    // PML4 and PDPT pages start clean: after a reset they may hold whatever the guest left there.
    TRY(mem.span(GuestAddr(PML4_ADDR), 0x1000)).fill(0);
    TRY(mem.span(GuestAddr(PDPT_ADDR), 0x1000)).fill(0);
    TRY(mem.write_obj<uint64_t>(GuestAddr(PML4_ADDR), PDPT_ADDR | PRESENT_RW));
    for (uint64_t i = 0; i < 4; ++i)
        TRY(mem.write_obj<uint64_t>(GuestAddr(PDPT_ADDR + i * 8), (PD_ADDR + i * 0x1000) | PRESENT_RW));
    for (uint64_t i = 0; i < 4 * 512; ++i)
        TRY(mem.write_obj<uint64_t>(GuestAddr(PD_ADDR + i * 8), (i << 21) | PRESENT_RW | PAGE_SIZE_2M));
    return ok();
}

} // namespace hako::arch::x86
