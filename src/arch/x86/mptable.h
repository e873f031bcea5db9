// The Intel MultiProcessor Specification 1.4 table for direct boot: how a kernel without ACPI (or one that
// looks for "_MP_" first) finds the CPUs, the IOAPIC and how ISA IRQs reach it.
//
// Built: the MP Floating Pointer Structure (spec 4.1, "_MP_", 16 bytes, 16-byte aligned), followed directly by
// the MP Configuration Table ("PCMP", 4.2) with processor entries (4.3.1; CPU 0 is the BSP), one ISA bus entry
// (4.3.2), the IOAPIC entry (4.3.3), I/O interrupt assignments for ISA IRQs 0-15 (4.3.4; IRQ0 goes to IOAPIC
// pin 2, IRQ2 is the cascade and is left out, others to pin = IRQ) and local interrupt assignments (4.3.5:
// ExtINT to LINT0, NMI to LINT1 on all local APICs). No extended table entries, no PCI bus (yet).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace hako::arch::x86 {

constexpr unsigned MPTABLE_MAX_CPUS = 254;
constexpr uint8_t MP_APIC_VERSION = 0x14;   // local APIC version reported for each CPU
constexpr uint8_t MP_IOAPIC_VERSION = 0x11; // 82093AA-compatible IOAPIC

/// Bytes the floating pointer plus configuration table take for `cpus` processors.
size_t mptable_size(unsigned cpus);

/// The MP floating pointer at base_gpa (must be 16-byte aligned), the configuration table right after it,
/// with absolute physical pointers. The IOAPIC gets APIC ID `cpus`.
/// Fails if cpus is not in 1..254, base_gpa is misaligned, or the table would not end below 4 GiB or would
/// run from conventional memory into the VGA window at 0xA0000 (at MPTABLE_ADDR, the 1 KiB EBDA, that means
/// at most 40 CPUs; use the BIOS area for more).
[[nodiscard]] Result<std::vector<uint8_t>> build_mptable(unsigned cpus, uint64_t base_gpa);

} // namespace hako::arch::x86
