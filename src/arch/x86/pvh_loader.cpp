// PVH loader: Xen's "x86/HVM direct boot ABI" (docs/misc/pvh.pandoc, xen/include/public/arch-x86/hvm/start_info.h),
// which Linux's vmlinux implements through its XEN_ELFNOTE_PHYS32_ENTRY note.
//
// PT_LOAD segments go to their physical addresses; hvm_start_info (version 1) is built at BOOT_INFO_ADDR, its module
// list and memory map in BOOT_INFO_EXTRA, the command line at CMDLINE_ADDR. The CPU enters the 32-bit entry in flat
// protected mode, paging off, with EBX pointing at the start info. Not done: more than one module (the initrd).
#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "base/bytes.h"
#include "base/checked.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

namespace {

constexpr uint32_t XEN_ELFNOTE_PHYS32_ENTRY = 18;
constexpr uint32_t XEN_HVM_START_MAGIC_VALUE = 0x336ec578;
constexpr uint32_t HVM_START_INFO_VERSION = 1;

// struct hvm_start_info (version 1 layout).
constexpr size_t SI_MAGIC = 0;
constexpr size_t SI_VERSION = 4;
constexpr size_t SI_FLAGS = 8;
constexpr size_t SI_NR_MODULES = 12;
constexpr size_t SI_MODLIST_PADDR = 16;
constexpr size_t SI_CMDLINE_PADDR = 24;
constexpr size_t SI_RSDP_PADDR = 32;
constexpr size_t SI_MEMMAP_PADDR = 40;
constexpr size_t SI_MEMMAP_ENTRIES = 48;
constexpr size_t SI_SIZE = 56;

constexpr size_t MODLIST_ENTRY_SIZE = 32; // struct hvm_modlist_entry { paddr, size, cmdline_paddr, reserved }
constexpr size_t MEMMAP_ENTRY_SIZE = 24;  // struct hvm_memmap_table_entry { addr, size, type, reserved }
constexpr uint64_t MODLIST_ADDR = BOOT_INFO_EXTRA;
constexpr uint64_t MEMMAP_ADDR = BOOT_INFO_EXTRA + MODLIST_ENTRY_SIZE;
constexpr size_t MEMMAP_MAX_ENTRIES = (0x1000 - MODLIST_ENTRY_SIZE) / MEMMAP_ENTRY_SIZE;

} // namespace

std::optional<uint64_t> find_pvh_entry(std::span<uint8_t const> image)
{
    auto elf = parse_elf(image);
    if (!elf)
        return std::nullopt;
    for (auto const& note : elf->notes) {
        if (note.name != "Xen" || note.type != XEN_ELFNOTE_PHYS32_ENTRY)
            continue;
        // Linux emits the entry with _ASM_PTR: 8 bytes on x86-64, 4 on i386.
        if (note.desc.size() != 4 && note.desc.size() != 8)
            return std::nullopt;
        return read_le(note.desc, 0, note.desc.size());
    }
    return std::nullopt;
}

Result<BootEntry> load_pvh(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    auto elf = TRY(parse_elf(req.kernel));
    auto entry = find_pvh_entry(req.kernel);
    if (!entry)
        return Error(ErrorKind::Format, "ELF kernel has no PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY)");
    if (*entry >= FOUR_GIB)
        return Error(ErrorKind::Format, fmt::format("PVH entry point {:#x} is not a 32-bit address", *entry));
    if (req.cmdline.size() > CMDLINE_MAX - 1)
        return Error(ErrorKind::OutOfRange, fmt::format("Kernel command line too long ({} bytes, the kernel accepts at most {})",
            req.cmdline.size(), CMDLINE_MAX - 1));
    if (req.memory_map.size() > MEMMAP_MAX_ENTRIES)
        return Error(ErrorKind::OutOfRange, fmt::format("Memory map has {} entries, the PVH start info holds at most {}",
            req.memory_map.size(), MEMMAP_MAX_ENTRIES));
    if (req.modules.size() > 1)
        return Error(ErrorKind::InvalidArgument, "A PVH kernel takes at most one initrd");

    // Check every segment before writing any.
    uint64_t kernel_end = 0;
    for (auto const& seg : elf.loads) {
        uint64_t end = seg.paddr + seg.mem_size; // parse_elf checked it does not overflow
        if (seg.paddr < BOOT_AREA_END || !mem.is_valid_range(GuestAddr(seg.paddr), seg.mem_size))
            return Error(ErrorKind::OutOfRange, fmt::format("ELF segment at {:#x}..{:#x} is outside guest RAM", seg.paddr, end));
        kernel_end = std::max(kernel_end, end);
    }

    uint64_t initrd_addr = 0;
    uint64_t initrd_size = 0;
    if (!req.modules.empty() && !req.modules[0].data.empty()) {
        initrd_size = req.modules[0].data.size();
        uint64_t max_end = top_of_low_ram(req.memory_map);
        auto placed = place_high(mem, req.memory_map, initrd_size, kernel_end, max_end);
        if (!placed)
            return Error(ErrorKind::OutOfRange, fmt::format("Initrd too large for guest memory ({} bytes, {} bytes free "
                "between the kernel and {:#x})", initrd_size, max_end > kernel_end ? max_end - kernel_end : 0, max_end));
        initrd_addr = *placed;
    }

    for (auto const& seg : elf.loads) {
        auto file = req.kernel.subspan(static_cast<size_t>(seg.file_offset), static_cast<size_t>(seg.file_size));
        TRY(load_segment(mem, seg.paddr, file, seg.mem_size));
    }
    TRY(write_cstring(mem, CMDLINE_ADDR, req.cmdline, CMDLINE_MAX - 1));
    if (initrd_size) {
        TRY(mem.write(GuestAddr(initrd_addr), req.modules[0].data));
        std::array<uint8_t, MODLIST_ENTRY_SIZE> mod {};
        put_le64(&mod[0], initrd_addr);
        put_le64(&mod[8], initrd_size);
        TRY(mem.write(GuestAddr(MODLIST_ADDR), mod));
    }
    std::vector<uint8_t> memmap(req.memory_map.size() * MEMMAP_ENTRY_SIZE);
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        uint8_t* e = &memmap[i * MEMMAP_ENTRY_SIZE];
        put_le64(e, req.memory_map[i].addr);
        put_le64(e + 8, req.memory_map[i].size);
        put_le32(e + 16, req.memory_map[i].type);
    }
    TRY(mem.write(GuestAddr(MEMMAP_ADDR), memmap));

    std::array<uint8_t, SI_SIZE> si {};
    put_le32(&si[SI_MAGIC], XEN_HVM_START_MAGIC_VALUE);
    put_le32(&si[SI_VERSION], HVM_START_INFO_VERSION);
    put_le32(&si[SI_FLAGS], 0);
    put_le32(&si[SI_NR_MODULES], initrd_size ? 1 : 0);
    put_le64(&si[SI_MODLIST_PADDR], initrd_size ? MODLIST_ADDR : 0);
    put_le64(&si[SI_CMDLINE_PADDR], CMDLINE_ADDR);
    put_le64(&si[SI_RSDP_PADDR], req.rsdp_addr);
    put_le64(&si[SI_MEMMAP_PADDR], req.memory_map.empty() ? 0 : MEMMAP_ADDR);
    put_le32(&si[SI_MEMMAP_ENTRIES], static_cast<uint32_t>(req.memory_map.size()));
    TRY(mem.write(GuestAddr(BOOT_INFO_ADDR), si));

    BootEntry boot;
    boot.mode = CpuMode::Protected32;
    boot.rip = *entry;
    boot.rbx = BOOT_INFO_ADDR;
    return boot;
}

} // namespace hako::arch::x86
