// Kernel and firmware loaders: put a boot image and the structures its boot protocol wants into guest memory,
// and say where the boot CPU starts (BootEntry). Every input byte is treated as hostile: headers are bounds-checked
// against the file, and every write goes through GuestMemory's whole-range checks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arch/x86/boot.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace hako::arch::x86 {

struct BootMemoryMapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type; // E820 type: 1 RAM, 2 reserved, 3 ACPI, 4 NVS
};

struct Module {
    std::vector<uint8_t> data;
    std::string cmdline;
};

struct KernelLoadRequest {
    std::span<uint8_t const> kernel;             // the kernel file's bytes
    std::string cmdline;
    std::vector<Module> modules;                 // Linux/PVH: at most one (the initrd); multiboot: its modules
    std::vector<BootMemoryMapEntry> memory_map;  // the e820 map the guest is told about
    uint64_t rsdp_addr { 0 };                    // where the ACPI RSDP is (PVH start_info), 0 if none
};

enum class KernelFormat { BzImage, PvhElf, Multiboot };

/// Recognises a Linux bzImage, a multiboot v1 image or an ELF with a PVH entry note.
[[nodiscard]] Result<KernelFormat> detect_kernel_format(std::span<uint8_t const> image);
/// Loads the kernel, its modules and boot information; returns the boot CPU's entry state.
[[nodiscard]] Result<BootEntry> load_kernel(memory::GuestMemory const& mem, KernelLoadRequest const& req);

/// Where a firmware image of rom_size bytes is mapped: ending at 4 GiB.
constexpr uint64_t firmware_base(uint64_t rom_size) { return 0x100000000ull - rom_size; }
/// Copies a BIOS image to the top of 4 GiB (a ROM region the caller created) and its last 128 KiB to 0xE0000.
[[nodiscard]] Result<void> load_firmware(memory::GuestMemory const& mem, std::span<uint8_t const> rom);

// Shared by the loaders (loader.cpp).

/// The highest usable RAM address (exclusive) below 4 GiB in the map, 0 if none.
uint64_t top_of_low_ram(std::vector<BootMemoryMapEntry> const& map);
/// Places `size` bytes page-aligned as high as possible in [min_addr, max_end) inside one RAM entry of the map.
[[nodiscard]] Result<uint64_t> place_high(std::vector<BootMemoryMapEntry> const& map, uint64_t size, uint64_t min_addr,
    uint64_t max_end);
/// Writes a NUL-terminated string; fails if it (with the NUL) is longer than max_len.
[[nodiscard]] Result<void> write_cstring(memory::GuestMemory const& mem, uint64_t addr, std::string const& s, uint64_t max_len);

[[nodiscard]] Result<BootEntry> load_bzimage(memory::GuestMemory const& mem, KernelLoadRequest const& req);
[[nodiscard]] Result<BootEntry> load_pvh(memory::GuestMemory const& mem, KernelLoadRequest const& req);
[[nodiscard]] Result<BootEntry> load_multiboot(memory::GuestMemory const& mem, KernelLoadRequest const& req);

/// Offset of a valid multiboot v1 header in the first 8 KiB, or nullopt.
std::optional<size_t> find_multiboot_header(std::span<uint8_t const> image);

} // namespace hako::arch::x86
