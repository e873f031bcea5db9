#include "arch/x86/loader.h"

#include <algorithm>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "base/bytes.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

constexpr uint32_t XEN_ELFNOTE_PHYS32_ENTRY = 18;

static bool is_bzimage(std::span<uint8_t const> image)
{
    return image.size() >= 0x206 && get_le16(image.data() + 0x1fe) == 0xaa55
        && image[0x202] == 'H' && image[0x203] == 'd' && image[0x204] == 'r' && image[0x205] == 'S';
}

std::optional<size_t> find_multiboot_header(std::span<uint8_t const> image)
{
    constexpr uint32_t MULTIBOOT_MAGIC = 0x1badb002;
    size_t const limit = std::min<size_t>(image.size(), 8192);
    for (size_t off = 0; off + 12 <= limit; off += 4) {
        uint32_t const magic = get_le32(image.data() + off);
        if (magic != MULTIBOOT_MAGIC)
            continue;
        uint32_t const flags = get_le32(image.data() + off + 4);
        uint32_t const checksum = get_le32(image.data() + off + 8);
        if (static_cast<uint32_t>(magic + flags + checksum) == 0)
            return off;
    }
    return std::nullopt;
}

static bool has_pvh_note(ElfImage const& elf)
{
    return std::any_of(elf.notes.begin(), elf.notes.end(),
        [](ElfNote const& n) { return n.name == "Xen" && n.type == XEN_ELFNOTE_PHYS32_ENTRY && n.desc.size() >= 4; });
}

Result<KernelFormat> detect_kernel_format(std::span<uint8_t const> image)
{
    if (image.empty())
        return Error(ErrorKind::Format, "Not a kernel: the file is empty");
    if (is_bzimage(image))
        return KernelFormat::BzImage;
    if (find_multiboot_header(image))
        return KernelFormat::Multiboot;
    if (is_elf(image)) {
        auto elf = parse_elf(image);
        if (!elf)
            return elf.error();
        if (has_pvh_note(*elf))
            return KernelFormat::PvhElf;
        return Error(ErrorKind::Format, "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) and no multiboot header");
    }
    if (image.size() < 0x206)
        return Error(ErrorKind::Format, fmt::format("Not a kernel: too short ({} bytes) and no multiboot header", image.size()));
    return Error(ErrorKind::Format, "Not a kernel: no bzImage header, no multiboot header, no ELF header");
}

Result<BootEntry> load_kernel(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    switch (TRY(detect_kernel_format(req.kernel))) {
    case KernelFormat::BzImage:
        return load_bzimage(mem, req);
    case KernelFormat::PvhElf:
        return load_pvh(mem, req);
    case KernelFormat::Multiboot:
        return load_multiboot(mem, req);
    }
    return Error(ErrorKind::Format, "Unknown kernel format");
}

uint64_t top_of_low_ram(std::vector<BootMemoryMapEntry> const& map)
{
    uint64_t top = 0;
    for (auto const& e : map) {
        if (e.type != 1 || e.addr >= FOUR_GIB)
            continue;
        top = std::max(top, std::min(e.addr + e.size, FOUR_GIB));
    }
    return top;
}

Result<uint64_t> place_high(std::vector<BootMemoryMapEntry> const& map, uint64_t size, uint64_t min_addr, uint64_t max_end)
{
    constexpr uint64_t PAGE = 4096;
    uint64_t best = 0;
    bool found = false;
    for (auto const& e : map) {
        if (e.type != 1)
            continue;
        uint64_t const end = std::min(e.addr + e.size, max_end);
        uint64_t const start = std::max(e.addr, align_up(min_addr, PAGE));
        if (end <= start || end - start < size)
            continue;
        uint64_t const addr = align_down(end - size, PAGE);
        if (addr < start)
            continue;
        if (!found || addr > best) {
            best = addr;
            found = true;
        }
    }
    if (!found)
        return Error(ErrorKind::OutOfRange, fmt::format("{} bytes do not fit in guest memory", size));
    return best;
}

Result<void> write_cstring(memory::GuestMemory const& mem, uint64_t addr, std::string const& s, uint64_t max_len)
{
    if (s.size() + 1 > max_len)
        return Error(ErrorKind::OutOfRange, fmt::format("String of {} bytes does not fit in {}", s.size(), max_len));
    std::vector<uint8_t> bytes(s.begin(), s.end());
    bytes.push_back(0);
    return mem.write(GuestAddr(addr), bytes);
}

Result<void> load_firmware(memory::GuestMemory const& mem, std::span<uint8_t const> rom)
{
    constexpr uint64_t MAX_ROM = 16ull << 20;
    constexpr uint64_t BIOS_WINDOW = 128 * 1024;
    if (rom.empty() || rom.size() % (64 * 1024) != 0 || rom.size() > MAX_ROM)
        return Error(ErrorKind::Format,
            fmt::format("Firmware image must be a multiple of 64 KiB, at most 16 MiB ({} bytes)", rom.size()));
    if (!mem.is_valid_range(GuestAddr(firmware_base(rom.size())), rom.size()))
        return Error(ErrorKind::OutOfRange, "No ROM region for the firmware below 4 GiB");
    TRY(mem.write(GuestAddr(firmware_base(rom.size())), rom));
    uint64_t const low = std::min<uint64_t>(BIOS_WINDOW, rom.size());
    TRY(mem.write(GuestAddr(HIGH_MEMORY_START - low), rom.subspan(rom.size() - low)));
    return ok();
}

} // namespace hako::arch::x86
