// The guest-physical memory map of a hako x86 machine, and where direct boot puts its structures.
//
//   0x0000_0000 - 0x0009_FFFF  RAM (low 640 KiB; 0x9FC00.. is the EBDA, reserved in e820)
//   0x000A_0000 - 0x000B_FFFF  hole: legacy VGA window (MMIO)
//   0x000C_0000 - 0x000F_FFFF  RAM: option ROMs and the BIOS (firmware copies its last 128 KiB to 0xE0000)
//   0x0010_0000 - lowmem_end   RAM (lowmem_end = min(memory, 3 GiB))
//   0xC000_0000 - 0xFFFF_FFFF  PCI hole: 32-bit MMIO, IOAPIC (0xFEC00000), LAPIC (0xFEE00000), firmware at the top
//       0xC000_0000 - 0xDFFF_FFFF  BARs hako assigns for direct boot (firmware may place BARs anywhere in the hole
//                                  outside ECAM: SeaBIOS allocates top-down from 0xFEC00000)
//       0xE000_0000 - 0xEFFF_FFFF  PCI ECAM (MMCONFIG, 256 buses x 1 MiB), reserved in e820, described by MCFG
//   0x1_0000_0000 - ...        RAM above 4 GiB (memory - 3 GiB, when memory > 3 GiB)
#pragma once

#include <cstdint>

#include "base/checked.h"

namespace hako::arch::x86 {

constexpr uint64_t LOW_RAM_END = 0xA0000;        // end of conventional memory
constexpr uint64_t EBDA_START = 0x9FC00;         // reserved in e820 (MP table lives here for direct boot)
constexpr uint64_t VGA_WINDOW_START = 0xA0000;
constexpr uint64_t VGA_WINDOW_SIZE = 0x20000;
constexpr uint64_t UPPER_RAM_START = 0xC0000;    // option ROM / BIOS area, backed by RAM
constexpr uint64_t BIOS_AREA_START = 0xE0000;    // firmware's last 128 KiB, and ACPI tables for direct boot
constexpr uint64_t HIGH_MEMORY_START = 0x100000; // 1 MiB
constexpr uint64_t PCI_HOLE_START = 0xC0000000;  // 3 GiB
constexpr uint64_t FOUR_GIB = 0x100000000;
constexpr uint64_t IOAPIC_BASE = 0xFEC00000;
constexpr uint64_t LAPIC_BASE = 0xFEE00000;

// PCI address space.
constexpr uint64_t PCI_ECAM_BASE = 0xE0000000;
constexpr uint64_t PCI_ECAM_SIZE = 0x10000000;   // buses 0-255 (only bus 0 is populated)
constexpr uint64_t PCI_MMIO32_ASSIGN_START = 0xC0000000; // direct boot: hako places 32-bit memory BARs here
constexpr uint64_t PCI_MMIO32_ASSIGN_END = PCI_ECAM_BASE;
constexpr uint64_t PCI_MMIO32_TOP_START = PCI_ECAM_BASE + PCI_ECAM_SIZE; // second 32-bit window, up to the IOAPIC
constexpr uint64_t PCI_MMIO64_SIZE = 32ull << 30; // 64-bit window above RAM (QEMU's default pci-hole64 size)
constexpr uint16_t PCI_IO_ASSIGN_START = 0xC000;  // direct boot: hako places I/O BARs in 0xC000-0xFFFF (as SeaBIOS)

// Direct boot (no firmware): where hako puts the structures a kernel is handed.
constexpr uint64_t BOOT_GDT_ADDR = 0x500;
constexpr uint64_t BOOT_IDT_ADDR = 0x520;
constexpr uint64_t BOOT_INFO_ADDR = 0x7000;      // boot_params / hvm_start_info / multiboot info (4 KiB)
constexpr uint64_t BOOT_INFO_EXTRA = 0x8000;     // memory maps, module lists (4 KiB)
constexpr uint64_t BOOT_STACK_TOP = 0x7000;       // grows down into 0x6000-0x6fff
constexpr uint64_t PML4_ADDR = 0x9000;           // identity page tables for 64-bit entry
constexpr uint64_t PDPT_ADDR = 0xA000;
constexpr uint64_t PD_ADDR = 0xB000;             // four page directories: 0xB000-0xEFFF, 2 MiB pages over 4 GiB
constexpr uint64_t CMDLINE_ADDR = 0x20000;
constexpr uint64_t CMDLINE_MAX = 0x10000;        // hako's own limit; the kernel's header may say less
constexpr uint64_t MPTABLE_ADDR = 0xF0000;         // MP floating pointer + table in the BIOS area (Linux scans 0xF0000-0xFFFFF)
constexpr uint64_t ACPI_TABLES_ADDR = BIOS_AREA_START; // RSDP first (found by the 0xE0000-0xFFFFF scan)
constexpr uint64_t ACPI_TABLES_MAX = 0x10000;

// Fixed I/O ports.
constexpr uint16_t PORT_COM1 = 0x3f8;
constexpr uint16_t PORT_COM2 = 0x2f8;
constexpr uint16_t PORT_COM3 = 0x3e8;
constexpr uint16_t PORT_COM4 = 0x2e8;
constexpr uint16_t PORT_I8042_DATA = 0x60;
constexpr uint16_t PORT_I8042_CMD = 0x64;
constexpr uint16_t PORT_CMOS = 0x70;            // 0x70-0x71 (0x72-0x73: extended NVRAM bank)
constexpr uint16_t PORT_DEBUG_EXIT = 0xf4;      // isa-debug-exit, 4 ports (QEMU's iobase=0xf4,iosize=4)
constexpr uint16_t PORT_DEBUGCON = 0xe9;
constexpr uint16_t PORT_FW_DEBUG = 0x402;       // SeaBIOS's debug output port
constexpr uint16_t PORT_FW_CFG = 0x510;         // 0x510 selector, 0x511 data, 0x514-0x51b DMA address
constexpr uint16_t PORT_RESET_CF9 = 0xcf9;
constexpr uint16_t PORT_SYSTEM_CONTROL_A = 0x92; // fast A20 gate and fast reset
constexpr uint16_t PORT_ACPI_PM_BASE = 0x600;   // PM1a event (4), PM1a control (2), PM timer (4): as QEMU's PIIX4
constexpr uint16_t PORT_POST = 0x80;            // POST code port: writes are absorbed

constexpr uint8_t IRQ_COM1 = 4;
constexpr uint8_t IRQ_COM2 = 3;
constexpr uint8_t IRQ_KEYBOARD = 1;
constexpr uint8_t IRQ_RTC = 8;
constexpr uint8_t IRQ_MOUSE = 12;
constexpr uint8_t IRQ_SCI = 9;

/// Where RAM of `memory` bytes lies: below the PCI hole and, for the rest, above 4 GiB.
struct RamLayout {
    uint64_t low_end;     // exclusive end of RAM below 4 GiB (<= PCI_HOLE_START)
    uint64_t high_size;   // bytes of RAM from FOUR_GIB on (0 if none)
};

constexpr RamLayout ram_layout(uint64_t memory)
{
    if (memory <= PCI_HOLE_START)
        return { memory, 0 };
    return { PCI_HOLE_START, memory - PCI_HOLE_START };
}

/// Start of the 64-bit PCI window: the end of RAM above 4 GiB (or 4 GiB), rounded up to 1 GiB.
constexpr uint64_t pci_mmio64_start(RamLayout ram)
{
    uint64_t const end = FOUR_GIB + ram.high_size;
    return (end + (1ull << 30) - 1) & ~((1ull << 30) - 1);
}

} // namespace hako::arch::x86

namespace hako::arch::x86 {

// The ACPI PM register block (FADT), at PORT_ACPI_PM_BASE like QEMU's PIIX4 PM: offsets from the base.
constexpr uint16_t PM1A_EVT_OFFSET = 0x00; // PM1_STS (2) + PM1_EN (2)
constexpr uint16_t PM1A_CNT_OFFSET = 0x04; // PM1_CNT (2): SCI_EN, SLP_TYP (bits 10-12), SLP_EN (bit 13)
constexpr uint16_t PM_TMR_OFFSET = 0x08;   // 24-bit PM timer at 3.579545 MHz (4)
constexpr uint16_t GPE0_OFFSET = 0x20;     // GPE0_STS (2) + GPE0_EN (2)
constexpr uint16_t PM_BLOCK_SIZE = 0x40;
constexpr uint8_t SLP_TYP_S5 = 0;          // the _S5 package in hako's DSDT says SLP_TYP 0 (QEMU's PIIX4 does too)
constexpr uint8_t RESET_REG_VALUE = 0x06;  // FADT RESET_REG: write 6 to port 0xCF9

} // namespace hako::arch::x86
