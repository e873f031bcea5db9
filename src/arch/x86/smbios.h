// SMBIOS tables for the firmware (DMTF DSP0134 3.x, structures as of version 2.8, with the 32-bit "_SM_" entry
// point): what `dmidecode` and an OS's DMI code read to learn the machine's maker, model, processors and memory.
// They reach the guest the way QEMU passes them: fw_cfg files "etc/smbios/smbios-anchor" (the 31-byte entry point,
// table address left 0) and "etc/smbios/smbios-tables" (the structures); SeaBIOS copies the tables into memory, adds
// its own type 0 (BIOS information) and fixes the address and checksums.
//
// Structures: type 1 (system: manufacturer "hako", product, version, serial, UUID), type 3 (chassis), type 4 per
// vCPU (processor: CPUID signature, one core and thread each), type 16 (the memory array), type 17 (one memory
// device per 16 GiB, as QEMU), type 19 per RAM range (below 4 GiB, above 4 GiB), type 32 (boot: no errors),
// type 127 (end).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "arch/x86/layout.h"

namespace hako::arch::x86 {

struct SmbiosConfig {
    std::string manufacturer { "hako" };
    std::string product { "hako virtual machine" };
    std::string version;                // e.g. hako's version
    std::string serial;                 // empty: none
    std::array<uint8_t, 16> uuid {};    // in SMBIOS byte order (the first three fields little-endian)
    unsigned cpus { 1 };
    uint32_t cpuid_signature { 0 };     // CPUID.1:EAX
    uint32_t cpuid_features { 0 };      // CPUID.1:EDX
    RamLayout ram { 0, 0 };
};

struct SmbiosBlobs {
    std::vector<uint8_t> anchor; // the 31-byte SMBIOS 2.x entry point ("_SM_" ... "_DMI_")
    std::vector<uint8_t> tables; // the structure table
};

SmbiosBlobs build_smbios(SmbiosConfig const& config);

} // namespace hako::arch::x86
