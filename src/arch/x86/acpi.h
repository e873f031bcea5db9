// ACPI tables for a hako x86 machine (ACPI 6.0): RSDP, RSDT, XSDT, FADT, FACS, DSDT and MADT.
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
// The DSDT holds \_S5 (soft-off) and an empty \_SB; devices are not described in AML yet (Linux probes the
// legacy ones through IAPC_BOOT_ARCH). Not built: HPET, SRAT/NUMA, MCFG, SSDTs, CPU hotplug, x2APIC entries.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "arch/x86/layout.h"
#include "base/result.h"

namespace hako::arch::x86 {

struct AcpiConfig {
    unsigned cpus;                    // 1..254: APIC IDs 0..cpus-1, the IOAPIC gets ID `cpus`
    uint16_t pm_base = PORT_ACPI_PM_BASE;
    uint8_t sci_irq = IRQ_SCI;
    bool pci = false;                 // FIXME: describe a PCI host bridge when there is one.
};

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
