// Kernel and firmware loaders: put a boot image and the structures its boot protocol wants into guest memory, and
// say where the boot CPU starts (BootEntry, applied by the vCPU setup). Formats: Linux bzImage (64-bit boot
// protocol, Documentation/x86/boot.rst), PVH ELF (Xen's "x86/HVM direct boot ABI"), Multiboot v1 (0.6.96), and a
// legacy BIOS image mapped below 4 GiB. Every input byte is hostile: headers are bounds-checked against the file,
// and every write goes through GuestMemory's whole-range checks. Not done: 32-bit-only or pre-2.12 Linux kernels,
// the EFI handover, multiboot video modes and symbol tables, multiboot2.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace hako::arch::x86 {

/// One entry of the memory map the guest is told about (the caller converts from its e820 type).
struct BootMemoryMapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type; // E820 type: 1 RAM, 2 reserved, 3 ACPI, 4 NVS
};

constexpr uint32_t BOOT_MEMORY_RAM = 1;

struct Module {
    std::vector<uint8_t> data;
    std::string cmdline; // multiboot only; ignored for the Linux initrd
};

struct KernelLoadRequest {
    std::span<uint8_t const> kernel;            // the kernel file's bytes
    std::string cmdline;
    std::vector<Module> modules;                // Linux/PVH: at most one (the initrd); multiboot: its modules
    std::vector<BootMemoryMapEntry> memory_map; // the e820 map the guest is told about
    uint64_t rsdp_addr { 0 };                   // where the ACPI RSDP is (PVH start_info), 0 if none
};

enum class KernelFormat { BzImage, PvhElf, Multiboot };

/// Recognises a Linux bzImage, an ELF with a PVH entry note, or a multiboot v1 image.
[[nodiscard]] Result<KernelFormat> detect_kernel_format(std::span<uint8_t const> image);
/// Loads the kernel, its modules and its boot information; returns the boot CPU's entry state.
[[nodiscard]] Result<BootEntry> load_kernel(memory::GuestMemory const& mem, KernelLoadRequest const& req);

constexpr uint64_t FIRMWARE_MIN_SIZE = 0x10000;     // 64 KiB
constexpr uint64_t FIRMWARE_MAX_SIZE = 0x1000000;   // 16 MiB
constexpr uint64_t FIRMWARE_LOW_COPY_MAX = 0x20000; // the last 128 KiB are also at 0xE0000..0xFFFFF

/// Where a firmware image of rom_size bytes is mapped: ending at 4 GiB.
constexpr uint64_t firmware_base(uint64_t rom_size) { return 0x100000000ull - rom_size; }
/// Copies a BIOS image to [firmware_base(size), 4 GiB) (a ROM region the caller created, exactly that size) and its
/// last min(128 KiB, size) bytes to just below 1 MiB (RAM). The boot CPU then starts at the reset vector (BootEntry{}).
[[nodiscard]] Result<void> load_firmware(memory::GuestMemory const& mem, std::span<uint8_t const> rom);
/// Copies the last min(128 KiB, size) bytes of a firmware image to just below 1 MiB (RAM), as load_firmware() does;
/// for firmware in flash, whose top the flash device maps itself (QEMU's isa-bios copy of pflash unit 0).
[[nodiscard]] Result<void> copy_firmware_low(memory::GuestMemory const& mem, std::span<uint8_t const> rom);

// Shared by the loaders (loader.cpp).

/// The exclusive end of the RAM entry of the map that reaches highest below 4 GiB, 0 if none.
uint64_t top_of_low_ram(std::vector<BootMemoryMapEntry> const& map);
/// Places `size` bytes page-aligned as high as possible in [min_addr, max_end), inside one RAM entry of the map and
/// inside guest memory. Fails (OutOfRange) if there is no room.
[[nodiscard]] Result<uint64_t> place_high(memory::GuestMemory const& mem, std::vector<BootMemoryMapEntry> const& map,
    uint64_t size, uint64_t min_addr, uint64_t max_end);
/// Writes s and a NUL at addr; fails if s is longer than max_len bytes (the NUL not counted).
[[nodiscard]] Result<void> write_cstring(memory::GuestMemory const& mem, uint64_t addr, std::string const& s,
    uint64_t max_len);
/// Kernels must not load below this: hako's boot structures (GDT, boot info, page tables, command line) live there.
constexpr uint64_t BOOT_AREA_END = CMDLINE_ADDR + CMDLINE_MAX;
/// Copies a segment's file bytes to paddr and zeroes the rest up to mem_size; checks the whole range (inside guest
/// memory, not below BOOT_AREA_END) before writing anything.
[[nodiscard]] Result<void> load_segment(memory::GuestMemory const& mem, uint64_t paddr, std::span<uint8_t const> file_bytes,
    uint64_t mem_size);

[[nodiscard]] Result<BootEntry> load_bzimage(memory::GuestMemory const& mem, KernelLoadRequest const& req);
[[nodiscard]] Result<BootEntry> load_pvh(memory::GuestMemory const& mem, KernelLoadRequest const& req);
[[nodiscard]] Result<BootEntry> load_multiboot(memory::GuestMemory const& mem, KernelLoadRequest const& req);

/// True if the image carries the Linux boot protocol header (boot flag 0xAA55 and "HdrS").
bool is_bzimage(std::span<uint8_t const> image);
/// Offset of a valid multiboot v1 header (magic and checksum) in the first 8 KiB, 4-byte aligned, or nullopt.
std::optional<size_t> find_multiboot_header(std::span<uint8_t const> image);
/// The 32-bit entry point from a PVH ELF note (name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY), or nullopt.
std::optional<uint64_t> find_pvh_entry(std::span<uint8_t const> image);

} // namespace hako::arch::x86
