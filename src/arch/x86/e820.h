// The BIOS e820 memory map of a hako x86 machine (ACPI 6.x chapter 15, "System Address Map Interfaces").
//
// build_e820() is the map a directly booted kernel gets (boot_params.e820_table, PVH memmap): it follows
// layout.h. e820_fw_cfg_blob() is QEMU's fw_cfg file "etc/e820" for firmware boot: there the firmware
// (SeaBIOS, OVMF) builds the guest's map itself and only wants the RAM ranges, as QEMU hands them over.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "arch/x86/layout.h"

namespace hako::arch::x86 {

struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    bool operator==(E820Entry const&) const = default;
};

constexpr uint32_t E820_RAM = 1;
constexpr uint32_t E820_RESERVED = 2;
constexpr uint32_t E820_ACPI = 3;
constexpr uint32_t E820_NVS = 4;

/// Where the top-of-4-GiB reserved range starts: the IOAPIC, LAPIC, the KVM TSS/identity map
/// (QEMU's 0xFEFFC000) and the firmware image at the top all lie in [E820_TOP_RESERVED_START, 4 GiB).
constexpr uint64_t E820_TOP_RESERVED_START = IOAPIC_BASE;

/// The e820 map for direct boot, sorted by address, entries non-overlapping:
///   RAM [0, EBDA_START), reserved [EBDA_START, 0xA0000), reserved [BIOS_AREA_START, 1 MiB) (ACPI/MP tables),
///   RAM [1 MiB, low_end), reserved [0xFEC00000, 4 GiB), RAM [4 GiB, 4 GiB + high_size).
/// Ranges that would be empty (tiny guests) are left out.
std::vector<E820Entry> build_e820(RamLayout ram);

/// The entries QEMU puts in fw_cfg "etc/e820": RAM [0, low_end) and RAM [4 GiB, 4 GiB + high_size). The
/// firmware reserves its own areas (EBDA, BIOS, tables); the caller may append reserved entries (e.g. the KVM
/// TSS/identity-map pages), which SeaBIOS and OVMF also honour.
std::vector<E820Entry> fw_cfg_e820_entries(RamLayout ram);

/// QEMU's wire format of "etc/e820": per entry a packed {le64 address, le64 length, le32 type} (20 bytes).
std::vector<uint8_t> e820_fw_cfg_blob(std::span<E820Entry const> entries);
inline std::vector<uint8_t> e820_fw_cfg_blob(RamLayout ram)
{
    auto entries = fw_cfg_e820_entries(ram);
    return e820_fw_cfg_blob(entries);
}

constexpr size_t E820_FW_CFG_ENTRY_SIZE = 20;

} // namespace hako::arch::x86
