// Multiboot v1 (Multiboot Specification 0.6.96): ELF32 or a.out-kludge images, modules, memory map.
#include <algorithm>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "base/bytes.h"
#include "base/log.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

constexpr uint32_t MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
constexpr uint32_t MB_HEADER_PAGE_ALIGN = 1u << 0;
constexpr uint32_t MB_HEADER_MEMORY_INFO = 1u << 1;
constexpr uint32_t MB_HEADER_VIDEO_MODE = 1u << 2;
constexpr uint32_t MB_HEADER_AOUT_KLUDGE = 1u << 16;
constexpr uint32_t MB_INFO_MEMORY = 1u << 0;
constexpr uint32_t MB_INFO_CMDLINE = 1u << 2;
constexpr uint32_t MB_INFO_MODS = 1u << 3;
constexpr uint32_t MB_INFO_MEM_MAP = 1u << 6;
constexpr uint32_t MB_INFO_BOOT_LOADER_NAME = 1u << 9;
constexpr size_t MAX_MODULES = 64;
// Where the pieces of the multiboot information go (layout.h's boot areas).
constexpr uint64_t MBI_ADDR = BOOT_INFO_ADDR;
constexpr uint64_t MMAP_ADDR = BOOT_INFO_EXTRA;            // 20+4 bytes per entry, up to 0x800
constexpr uint64_t MODS_ADDR = BOOT_INFO_EXTRA + 0x800;    // 16 bytes per module
constexpr uint64_t LOADER_NAME_ADDR = BOOT_INFO_EXTRA + 0xf00;

static Error bad(std::string_view what) { return Error(ErrorKind::Format, fmt::format("Bad multiboot image: {}", what)); }

static Result<void> check_target(memory::GuestMemory const& mem, uint64_t addr, uint64_t size)
{
    if (addr < HIGH_MEMORY_START)
        return bad(fmt::format("it loads at {:#x}, below 1 MiB where hako keeps boot structures", addr));
    if (!mem.is_valid_range(GuestAddr(addr), size))
        return Error(ErrorKind::OutOfRange,
            fmt::format("Multiboot image segment {:#x}+{:#x} is outside guest RAM", addr, size));
    return ok();
}

Result<BootEntry> load_multiboot(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    auto const image = req.kernel;
    auto const hoff = find_multiboot_header(image);
    if (!hoff)
        return bad("no header");
    uint8_t const* h = image.data() + *hoff;
    uint32_t const flags = get_le32(h + 4);
    uint32_t const unknown_required = flags & 0xffffu & ~(MB_HEADER_PAGE_ALIGN | MB_HEADER_MEMORY_INFO | MB_HEADER_VIDEO_MODE);
    if (unknown_required)
        return bad(fmt::format("it requires features hako does not know ({:#x})", unknown_required));
    if (flags & MB_HEADER_VIDEO_MODE)
        HAKO_INFO("multiboot: the kernel asks for a video mode; hako gives none (text console)");

    uint64_t entry = 0;
    uint64_t kernel_end = 0;
    if (flags & MB_HEADER_AOUT_KLUDGE) {
        if (*hoff + 32 > image.size())
            return bad("truncated a.out address fields");
        uint32_t const header_addr = get_le32(h + 12), load_addr = get_le32(h + 16);
        uint32_t const load_end_addr = get_le32(h + 20), bss_end_addr = get_le32(h + 24);
        entry = get_le32(h + 28);
        if (load_addr > header_addr || header_addr - load_addr > *hoff)
            return bad("load_addr and header_addr do not match the header's place in the file");
        uint64_t const file_start = *hoff - (header_addr - load_addr);
        uint64_t load_size = load_end_addr ? static_cast<uint64_t>(load_end_addr) - load_addr : image.size() - file_start;
        if (load_end_addr && load_end_addr < load_addr)
            return bad("load_end_addr below load_addr");
        if (!range_within(file_start, load_size, image.size()))
            return bad("the image is truncated: load_end_addr lies past the end of the file");
        uint64_t const mem_end = bss_end_addr ? bss_end_addr : load_addr + load_size;
        if (mem_end < load_addr + load_size)
            return bad("bss_end_addr below the loaded image");
        TRY(check_target(mem, load_addr, mem_end - load_addr));
        TRY(mem.write(GuestAddr(load_addr), image.subspan(file_start, load_size)));
        TRY(mem.span(GuestAddr(load_addr + load_size), mem_end - load_addr - load_size)).fill(0);
        kernel_end = mem_end;
    } else {
        auto elf = TRY(parse_elf(image));
        if (elf.is_64bit)
            return bad("multiboot ELF images must be ELF32 (or use the a.out kludge)");
        for (auto const& s : elf.loads) {
            TRY(check_target(mem, s.paddr, s.mem_size));
            TRY(mem.write(GuestAddr(s.paddr), image.subspan(s.file_offset, s.file_size)));
            TRY(mem.span(GuestAddr(s.paddr + s.file_size), s.mem_size - s.file_size)).fill(0);
            kernel_end = std::max(kernel_end, s.paddr + s.mem_size);
        }
        entry = elf.entry;
    }

    // Command lines: the kernel's first, then one per module, packed in the command line area.
    uint64_t strings = CMDLINE_ADDR;
    uint64_t const strings_end = CMDLINE_ADDR + CMDLINE_MAX;
    auto put_string = [&](std::string const& s) -> Result<uint64_t> {
        if (s.size() + 1 > strings_end - strings)
            return Error(ErrorKind::OutOfRange, fmt::format("Kernel command line too long: command lines exceed {} bytes", CMDLINE_MAX));
        uint64_t const at = strings;
        TRY(write_cstring(mem, at, s, strings_end - strings));
        strings += s.size() + 1;
        return at;
    };
    uint64_t const cmdline_addr = TRY(put_string(req.cmdline));

    // Modules, page-aligned after the kernel.
    if (req.modules.size() > MAX_MODULES)
        return Error(ErrorKind::InvalidArgument, fmt::format("At most {} multiboot modules", MAX_MODULES));
    uint64_t next = align_up(kernel_end, 4096);
    std::vector<uint8_t> mods(16 * req.modules.size());
    for (size_t i = 0; i < req.modules.size(); ++i) {
        auto const& m = req.modules[i];
        if (!mem.is_valid_range(GuestAddr(next), std::max<uint64_t>(m.data.size(), 1)) || next + m.data.size() > FOUR_GIB)
            return Error(ErrorKind::OutOfRange, fmt::format("Initrd too large for guest memory: module {} ({} bytes) does not fit", i, m.data.size()));
        TRY(mem.write(GuestAddr(next), m.data));
        put_le32(&mods[16 * i], static_cast<uint32_t>(next));
        put_le32(&mods[16 * i + 4], static_cast<uint32_t>(next + m.data.size()));
        put_le32(&mods[16 * i + 8], static_cast<uint32_t>(TRY(put_string(m.cmdline))));
        next = align_up(next + m.data.size(), 4096);
    }
    TRY(mem.write(GuestAddr(MODS_ADDR), mods));

    // Memory map and the basic memory fields.
    std::vector<uint8_t> mmap;
    uint64_t mem_upper_end = HIGH_MEMORY_START;
    for (auto const& e : req.memory_map) {
        if (mmap.size() + 24 > MODS_ADDR - MMAP_ADDR)
            break;
        uint8_t entry_bytes[24] {};
        put_le32(entry_bytes, 20);
        put_le64(entry_bytes + 4, e.addr);
        put_le64(entry_bytes + 12, e.size);
        put_le32(entry_bytes + 20, e.type);
        mmap.insert(mmap.end(), entry_bytes, entry_bytes + 24);
        if (e.type == 1 && e.addr <= mem_upper_end && e.addr + e.size > mem_upper_end)
            mem_upper_end = e.addr + e.size;
    }
    TRY(mem.write(GuestAddr(MMAP_ADDR), mmap));
    TRY(write_cstring(mem, LOADER_NAME_ADDR, "hako", 64));

    uint8_t mbi[88] {};
    put_le32(mbi + 0, MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MEM_MAP | MB_INFO_BOOT_LOADER_NAME);
    put_le32(mbi + 4, static_cast<uint32_t>(EBDA_START / 1024));
    put_le32(mbi + 8, static_cast<uint32_t>(std::min<uint64_t>((mem_upper_end - HIGH_MEMORY_START) / 1024, 0xffffffffu)));
    put_le32(mbi + 12, 0xffffffffu); // boot_device: none
    put_le32(mbi + 16, static_cast<uint32_t>(cmdline_addr));
    put_le32(mbi + 20, static_cast<uint32_t>(req.modules.size()));
    put_le32(mbi + 24, static_cast<uint32_t>(MODS_ADDR));
    put_le32(mbi + 44, static_cast<uint32_t>(mmap.size()));
    put_le32(mbi + 48, static_cast<uint32_t>(MMAP_ADDR));
    put_le32(mbi + 64, static_cast<uint32_t>(LOADER_NAME_ADDR));
    TRY(mem.write(GuestAddr(MBI_ADDR), mbi));

    if (entry > 0xffffffffu)
        return bad("entry point above 4 GiB");
    BootEntry boot;
    boot.mode = CpuMode::Protected32;
    boot.rip = entry;
    boot.rax = MULTIBOOT_BOOTLOADER_MAGIC;
    boot.rbx = MBI_ADDR;
    boot.rsp = BOOT_STACK_TOP;
    return boot;
}

} // namespace hako::arch::x86
