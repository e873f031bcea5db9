// ACPI tables for a hako x86 machine (ACPI 6.0): RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT and (with PCI) MCFG.
//
// Two ways to hand them over:
//  - direct boot: build_acpi_direct() lays out one blob (RSDP first, then the tables) with absolute physical
//    pointers, to be copied to guest memory at base_gpa (ACPI_TABLES_ADDR, in the 0xE0000-0xFFFFF area the
//    kernel scans for "RSD PTR ");
//  - firmware boot: build_acpi_fw_cfg() produces QEMU's fw_cfg files "etc/acpi/rsdp", "etc/acpi/tables" and
//    the BIOS linker/loader script "etc/table-loader" (QEMU hw/acpi/bios-linker-loader.c format): SeaBIOS and
//    OVMF allocate the files, relocate the pointers (written in the files as offsets into the pointed-to file)
//    and compute the checksums (left 0 in the files, as the loaders require).
//
// The FADT describes the PIIX4-like PM block at pm_base (layout.h: PM1a event, PM1a control, PM timer, GPE0),
// SCI on IRQ 9, ACPI always enabled (SMI_CMD = 0), the 0xCF9 reset register, a legacy PC (8042, ISA devices).
// The DSDT holds \_S5 (soft-off) and \_SB. With `pci` set it describes the PCI host bridge \_SB.PCI0 (PNP0A03,
// segment 0, bus 0): _CRS with the bus range, the 0xCF8 config ports, the I/O windows around them, the VGA window,
// the two 32-bit MMIO windows around ECAM ([ram_low_end, ecam_base) and [ecam end, IOAPIC_BASE)) and the 64-bit
// window; _PRT mapping every slot 1-31 pin to a PCI interrupt link \_SB.LNKA-LNKD by pc_intx_to_pirq()
// (arch/x86/pci_irq.h); the PIIX3 at 00:01.0 as \_SB.PCI0.ISA with its PIRQRC[A:D] registers (config 0x60-0x63)
// as fields PRQ0-PRQ3; the links (PNP0C0F) with _STA/_PRS/_CRS/_SRS/_DIS on those registers (IRQs 5, 9, 10, 11,
// level, active-high, shared); a motherboard resource device (PNP0C02) reserving ECAM. It adds the MCFG table and
// MADT interrupt source overrides making the link IRQs level/active-high (as QEMU's pc machine does).
// Legacy ISA devices are not described in AML (Linux probes them through IAPC_BOOT_ARCH).
// Not built: HPET, SRAT/NUMA, SSDTs, CPU or PCI hotplug, x2APIC entries.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "arch/x86/layout.h"
#include "base/result.h"

namespace hako::arch::x86 {

/// The PCI host bridge's address space as the machine lays it out (see layout.h).
struct PciAcpiConfig {
    uint64_t ram_low_end;                   // RamLayout::low_end: the first 32-bit window starts here
    uint64_t mmio64_start;                  // pci_mmio64_start(ram): 64-bit window base (>= 4 GiB)
    uint64_t mmio64_size = PCI_MMIO64_SIZE;
    uint64_t ecam_base = PCI_ECAM_BASE;     // MCFG base; the 32-bit windows stop at it and resume after it
    uint64_t ecam_size = PCI_ECAM_SIZE;     // 1 MiB per bus, 1-256 buses
};

/// The PCI description for a machine with this RAM layout, everything else from layout.h.
constexpr PciAcpiConfig pci_acpi_config(RamLayout ram)
{
    return PciAcpiConfig { .ram_low_end = ram.low_end, .mmio64_start = pci_mmio64_start(ram) };
}

struct AcpiConfig {
    unsigned cpus;                    // 1..254: APIC IDs 0..cpus-1, the IOAPIC gets ID `cpus`
    uint16_t pm_base = PORT_ACPI_PM_BASE;
    uint8_t sci_irq = IRQ_SCI;
    std::optional<PciAcpiConfig> pci = std::nullopt; // the i440FX/PIIX3 PCI bus 0; nullopt: no PCI in the tables
};

/// The ISA IRQs the PCI interrupt links offer in _PRS (QEMU's pc machine offers the same).
constexpr uint8_t PCI_LINK_IRQS[] = { 5, 9, 10, 11 };
constexpr size_t MCFG_LENGTH = 60; // header, 8 reserved bytes, one 16-byte allocation entry

constexpr unsigned ACPI_MAX_CPUS = 254;

/// One blob for guest memory at base_gpa (64-byte aligned): the RSDP at offset 0, the tables after it.
/// Fails on a bad CPU count, a misaligned base, a blob past ACPI_TABLES_MAX or past 4 GiB.
[[nodiscard]] Result<std::vector<uint8_t>> build_acpi_direct(AcpiConfig const& cfg, uint64_t base_gpa);

constexpr std::string_view ACPI_RSDP_FILE = "etc/acpi/rsdp";
constexpr std::string_view ACPI_TABLES_FILE = "etc/acpi/tables";
constexpr std::string_view ACPI_TABLE_LOADER_FILE = "etc/table-loader";

struct AcpiFwCfg {
    std::vector<uint8_t> rsdp;         // fw_cfg "etc/acpi/rsdp"
    std::vector<uint8_t> tables;       // fw_cfg "etc/acpi/tables"
    std::vector<uint8_t> table_loader; // fw_cfg "etc/table-loader"
};

/// The fw_cfg files for firmware boot. Fails on a bad CPU count.
[[nodiscard]] Result<AcpiFwCfg> build_acpi_fw_cfg(AcpiConfig const& cfg);

// The BIOS linker/loader script (QEMU's format): 128-byte little-endian entries.
constexpr size_t LOADER_ENTRY_SIZE = 128;
constexpr size_t LOADER_FILE_NAME_SIZE = 56;
constexpr uint32_t LOADER_CMD_ALLOCATE = 1;     // file[56], le32 align, u8 zone
constexpr uint32_t LOADER_CMD_ADD_POINTER = 2;  // dest_file[56], src_file[56], le32 offset, u8 size
constexpr uint32_t LOADER_CMD_ADD_CHECKSUM = 3; // file[56], le32 result offset, le32 start, le32 length
constexpr uint8_t LOADER_ZONE_HIGH = 1;         // anywhere in RAM below 4 GiB
constexpr uint8_t LOADER_ZONE_FSEG = 2;         // the 0xE0000-0xFFFFF BIOS area (RSDP)

// FADT field values hako uses (ACPI 6.0 table 5-34), exposed for tests.
constexpr uint32_t FADT_F_WBINVD = 1u << 0;
constexpr uint32_t FADT_F_PROC_C1 = 1u << 2;
constexpr uint32_t FADT_F_SLP_BUTTON = 1u << 5;
constexpr uint32_t FADT_F_TMR_VAL_EXT = 1u << 8;
constexpr uint32_t FADT_F_RESET_REG_SUP = 1u << 10;
constexpr uint16_t FADT_BOOT_LEGACY_DEVICES = 1u << 0;
constexpr uint16_t FADT_BOOT_8042 = 1u << 1;
constexpr uint8_t FADT_REVISION = 6;
constexpr uint32_t FADT_LENGTH = 276;

} // namespace hako::arch::x86
