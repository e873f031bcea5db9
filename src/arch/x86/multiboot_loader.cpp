// Multiboot v1 loader (Multiboot Specification 0.6.96): the header in the first 8 KiB, a.out-kludge address fields
// (flags bit 16) or ELF PT_LOAD segments, modules page-aligned after the kernel, and the multiboot information
// structure at BOOT_INFO_ADDR (memory sizes, command line, modules, memory map, boot loader name). The CPU enters in
// flat protected mode with EAX = 0x2BADB002 and EBX pointing at the information. Not done: video mode requests
// (flags bit 2) and any other required feature beyond bits 0-1 are refused; no symbol tables, drives, APM or VBE.
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

constexpr uint32_t MULTIBOOT_HEADER_MAGIC = 0x1BADB002;
constexpr uint32_t MULTIBOOT_BOOTLOADER_MAGIC = 0x2BADB002;
constexpr size_t MULTIBOOT_SEARCH = 8192;
constexpr size_t MULTIBOOT_HEADER_SIZE = 12;
constexpr size_t MULTIBOOT_AOUT_HEADER_SIZE = 32;

constexpr uint32_t MULTIBOOT_PAGE_ALIGN = 1 << 0;
constexpr uint32_t MULTIBOOT_MEMORY_INFO = 1 << 1;
constexpr uint32_t MULTIBOOT_AOUT_KLUDGE = 1 << 16;
constexpr uint32_t MULTIBOOT_REQUIRED_MASK = 0xffff;

// struct multiboot_info.
constexpr uint32_t MULTIBOOT_INFO_MEMORY = 1 << 0;
constexpr uint32_t MULTIBOOT_INFO_CMDLINE = 1 << 2;
constexpr uint32_t MULTIBOOT_INFO_MODS = 1 << 3;
constexpr uint32_t MULTIBOOT_INFO_MEM_MAP = 1 << 6;
constexpr uint32_t MULTIBOOT_INFO_BOOT_LOADER_NAME = 1 << 9;
constexpr size_t MBI_FLAGS = 0;
constexpr size_t MBI_MEM_LOWER = 4;
constexpr size_t MBI_MEM_UPPER = 8;
constexpr size_t MBI_CMDLINE = 16;
constexpr size_t MBI_MODS_COUNT = 20;
constexpr size_t MBI_MODS_ADDR = 24;
constexpr size_t MBI_MMAP_LENGTH = 44;
constexpr size_t MBI_MMAP_ADDR = 48;
constexpr size_t MBI_BOOT_LOADER_NAME = 64;
constexpr size_t MBI_SIZE = 88;
constexpr size_t MBI_LOADER_NAME_OFFSET = 0x100; // "hako" lives in the same page, after the structure

constexpr size_t MOD_ENTRY_SIZE = 16;  // mod_start, mod_end, string, reserved
constexpr size_t MMAP_ENTRY_SIZE = 24; // size (20), base_addr, length, type
constexpr size_t MAX_MODULES = 64;
constexpr size_t MAX_MMAP_ENTRIES = (0x1000 - MAX_MODULES * MOD_ENTRY_SIZE) / MMAP_ENTRY_SIZE;
constexpr uint64_t MODS_ADDR = BOOT_INFO_EXTRA;
constexpr uint64_t MMAP_ADDR = BOOT_INFO_EXTRA + MAX_MODULES * MOD_ENTRY_SIZE;
constexpr uint64_t PAGE_SIZE = 0x1000;

Error format_error(std::string msg) { return Error(ErrorKind::Format, std::move(msg)); }

struct LoadPiece {
    uint64_t paddr;
    std::span<uint8_t const> file;
    uint64_t mem_size;
};

struct KernelLayout {
    std::vector<LoadPiece> pieces;
    uint64_t entry;
};

Result<KernelLayout> aout_layout(std::span<uint8_t const> image, size_t header_off)
{
    if (!range_within(header_off, MULTIBOOT_AOUT_HEADER_SIZE, image.size()))
        return format_error("Multiboot header's address fields are truncated");
    uint64_t header_addr = *read_le(image, header_off + 12, 4);
    uint64_t load_addr = *read_le(image, header_off + 16, 4);
    uint64_t load_end_addr = *read_le(image, header_off + 20, 4);
    uint64_t bss_end_addr = *read_le(image, header_off + 24, 4);
    uint64_t entry_addr = *read_le(image, header_off + 28, 4);
    if (header_addr < load_addr || header_addr - load_addr > header_off)
        return format_error(fmt::format("Multiboot load_addr {:#x} does not fit header_addr {:#x}", load_addr, header_addr));
    uint64_t file_start = header_off - (header_addr - load_addr);
    uint64_t load_size = load_end_addr ? load_end_addr - load_addr : image.size() - file_start;
    if (load_end_addr && load_end_addr <= load_addr)
        return format_error(fmt::format("Multiboot load_end_addr {:#x} is not above load_addr {:#x}", load_end_addr, load_addr));
    if (!range_within(file_start, load_size, image.size()))
        return format_error(fmt::format("Multiboot image is truncated: {:#x} bytes to load from offset {:#x}", load_size,
            file_start));
    uint64_t end = load_addr + load_size;
    uint64_t mem_size = load_size;
    if (bss_end_addr) {
        if (bss_end_addr < end)
            return format_error(fmt::format("Multiboot bss_end_addr {:#x} is below the loaded end {:#x}", bss_end_addr, end));
        mem_size = bss_end_addr - load_addr;
    }
    if (entry_addr < load_addr || entry_addr >= load_addr + mem_size)
        return format_error(fmt::format("Multiboot entry_addr {:#x} is outside the loaded image", entry_addr));
    KernelLayout layout;
    layout.pieces.push_back({ load_addr, image.subspan(static_cast<size_t>(file_start), static_cast<size_t>(load_size)), mem_size });
    layout.entry = entry_addr;
    return layout;
}

Result<KernelLayout> elf_layout(std::span<uint8_t const> image)
{
    if (!is_elf(image))
        return format_error("Multiboot image without the a.out kludge (flags bit 16) must be ELF");
    auto elf = TRY(parse_elf(image));
    KernelLayout layout;
    for (auto const& seg : elf.loads) {
        layout.pieces.push_back({ seg.paddr,
            image.subspan(static_cast<size_t>(seg.file_offset), static_cast<size_t>(seg.file_size)), seg.mem_size });
    }
    layout.entry = elf.entry;
    return layout;
}

// KiB of RAM from 0 (capped at 640 KiB) and from 1 MiB up to the first hole, as the map says.
std::pair<uint64_t, uint64_t> memory_sizes(std::vector<BootMemoryMapEntry> const& map)
{
    auto ram_end_from = [&](uint64_t start) {
        uint64_t end = start;
        for (bool grew = true; grew;) { // follow adjacent or overlapping RAM entries
            grew = false;
            for (auto const& e : map) {
                auto e_end = checked_add(e.addr, e.size).value_or(~0ull);
                if (e.type == BOOT_MEMORY_RAM && e.addr <= end && e_end > end) {
                    end = e_end;
                    grew = true;
                }
            }
        }
        return end;
    };
    uint64_t lower = std::min(ram_end_from(0), LOW_RAM_END);
    uint64_t upper = std::min(ram_end_from(HIGH_MEMORY_START), FOUR_GIB) - HIGH_MEMORY_START;
    return { lower / KiB, upper / KiB };
}

} // namespace

std::optional<size_t> find_multiboot_header(std::span<uint8_t const> image)
{
    size_t limit = std::min(image.size(), MULTIBOOT_SEARCH);
    for (size_t off = 0; off + MULTIBOOT_HEADER_SIZE <= limit; off += 4) {
        if (*read_le(image, off, 4) != MULTIBOOT_HEADER_MAGIC)
            continue;
        auto sum = static_cast<uint32_t>(*read_le(image, off, 4) + *read_le(image, off + 4, 4) + *read_le(image, off + 8, 4));
        if (sum == 0)
            return off;
    }
    return std::nullopt;
}

Result<BootEntry> load_multiboot(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    auto image = req.kernel;
    auto header_off = find_multiboot_header(image);
    if (!header_off)
        return format_error("No multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB");
    auto flags = static_cast<uint32_t>(*read_le(image, *header_off + 4, 4));
    uint32_t unsupported = flags & MULTIBOOT_REQUIRED_MASK & ~(MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO);
    if (unsupported)
        return Error(ErrorKind::Unsupported, fmt::format("Multiboot kernel requires features hako does not provide "
            "(header flags {:#x}; video mode is bit 2)", unsupported));
    auto layout = TRY((flags & MULTIBOOT_AOUT_KLUDGE) ? aout_layout(image, *header_off) : elf_layout(image));
    if (layout.entry >= FOUR_GIB)
        return format_error(fmt::format("Multiboot entry point {:#x} is not a 32-bit address", layout.entry));

    if (req.modules.size() > MAX_MODULES)
        return Error(ErrorKind::OutOfRange, fmt::format("{} multiboot modules given, at most {} are supported",
            req.modules.size(), MAX_MODULES));
    if (req.memory_map.size() > MAX_MMAP_ENTRIES)
        return Error(ErrorKind::OutOfRange, fmt::format("Memory map has {} entries, at most {} are supported",
            req.memory_map.size(), MAX_MMAP_ENTRIES));
    // Command lines: the kernel's, then each module's, NUL-terminated, all within CMDLINE_MAX.
    uint64_t cmdline_bytes = req.cmdline.size() + 1;
    for (auto const& m : req.modules)
        cmdline_bytes += m.cmdline.size() + 1;
    if (cmdline_bytes > CMDLINE_MAX)
        return Error(ErrorKind::OutOfRange, fmt::format("Kernel command line too long ({} bytes with the module command "
            "lines, the kernel accepts at most {})", cmdline_bytes - 1, CMDLINE_MAX - 1));

    uint64_t kernel_end = 0;
    for (auto const& piece : layout.pieces) {
        auto end = checked_add(piece.paddr, piece.mem_size);
        if (!end || *end > FOUR_GIB)
            return Error(ErrorKind::OutOfRange, fmt::format("Segment at {:#x} + {:#x} is beyond 4 GiB", piece.paddr,
                piece.mem_size));
        if (piece.paddr < BOOT_AREA_END || !mem.is_valid_range(GuestAddr(piece.paddr), piece.mem_size))
            return Error(ErrorKind::OutOfRange, fmt::format("Segment at {:#x}..{:#x} is outside guest RAM", piece.paddr, *end));
        kernel_end = std::max(kernel_end, *end);
    }

    // Modules: page-aligned, one after another after the kernel (flags bit 0 asks for page alignment; we always do).
    std::vector<uint64_t> mod_addrs;
    uint64_t next = align_up(kernel_end, PAGE_SIZE);
    uint64_t const ram_top = top_of_low_ram(req.memory_map);
    for (auto const& m : req.modules) {
        auto end = checked_add(next, m.data.size());
        if (!end || *end > ram_top || !mem.is_valid_range(GuestAddr(next), m.data.size()))
            return Error(ErrorKind::OutOfRange, fmt::format("Multiboot modules do not fit in guest memory (module {} of {} "
                "bytes at {:#x})", mod_addrs.size(), m.data.size(), next));
        mod_addrs.push_back(next);
        next = align_up(*end, PAGE_SIZE);
    }

    // Everything checked: write.
    for (auto const& piece : layout.pieces)
        TRY(load_segment(mem, piece.paddr, piece.file, piece.mem_size));
    uint64_t cmd = CMDLINE_ADDR;
    TRY(write_cstring(mem, cmd, req.cmdline, CMDLINE_MAX - 1));
    cmd += req.cmdline.size() + 1;
    std::vector<uint8_t> mods(req.modules.size() * MOD_ENTRY_SIZE);
    for (size_t i = 0; i < req.modules.size(); ++i) {
        auto const& m = req.modules[i];
        TRY(mem.write(GuestAddr(mod_addrs[i]), m.data));
        TRY(write_cstring(mem, cmd, m.cmdline, CMDLINE_MAX - 1));
        put_le32(&mods[i * MOD_ENTRY_SIZE], static_cast<uint32_t>(mod_addrs[i]));
        put_le32(&mods[i * MOD_ENTRY_SIZE + 4], static_cast<uint32_t>(mod_addrs[i] + m.data.size()));
        put_le32(&mods[i * MOD_ENTRY_SIZE + 8], static_cast<uint32_t>(cmd));
        cmd += m.cmdline.size() + 1;
    }
    TRY(mem.write(GuestAddr(MODS_ADDR), mods));
    std::vector<uint8_t> mmap(req.memory_map.size() * MMAP_ENTRY_SIZE);
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        uint8_t* e = &mmap[i * MMAP_ENTRY_SIZE];
        put_le32(e, MMAP_ENTRY_SIZE - 4);
        put_le64(e + 4, req.memory_map[i].addr);
        put_le64(e + 12, req.memory_map[i].size);
        put_le32(e + 20, req.memory_map[i].type);
    }
    TRY(mem.write(GuestAddr(MMAP_ADDR), mmap));

    auto [mem_lower, mem_upper] = memory_sizes(req.memory_map);
    std::array<uint8_t, 0x1000> mbi {};
    put_le32(&mbi[MBI_FLAGS], MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP
            | MULTIBOOT_INFO_BOOT_LOADER_NAME);
    put_le32(&mbi[MBI_MEM_LOWER], static_cast<uint32_t>(mem_lower));
    put_le32(&mbi[MBI_MEM_UPPER], static_cast<uint32_t>(mem_upper));
    put_le32(&mbi[MBI_CMDLINE], static_cast<uint32_t>(CMDLINE_ADDR));
    put_le32(&mbi[MBI_MODS_COUNT], static_cast<uint32_t>(req.modules.size()));
    put_le32(&mbi[MBI_MODS_ADDR], static_cast<uint32_t>(MODS_ADDR));
    put_le32(&mbi[MBI_MMAP_LENGTH], static_cast<uint32_t>(mmap.size()));
    put_le32(&mbi[MBI_MMAP_ADDR], static_cast<uint32_t>(MMAP_ADDR));
    put_le32(&mbi[MBI_BOOT_LOADER_NAME], static_cast<uint32_t>(BOOT_INFO_ADDR + MBI_LOADER_NAME_OFFSET));
    static_assert(MBI_SIZE <= MBI_LOADER_NAME_OFFSET);
    std::string_view const name = "hako";
    std::copy(name.begin(), name.end(), mbi.begin() + MBI_LOADER_NAME_OFFSET);
    TRY(mem.write(GuestAddr(BOOT_INFO_ADDR), mbi));

    BootEntry entry;
    entry.mode = CpuMode::Protected32;
    entry.rip = layout.entry;
    entry.rax = MULTIBOOT_BOOTLOADER_MAGIC;
    entry.rbx = BOOT_INFO_ADDR;
    return entry;
}

} // namespace hako::arch::x86
