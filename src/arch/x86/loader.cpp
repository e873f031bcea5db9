#include "arch/x86/loader.h"

#include <algorithm>

#include <fmt/format.h>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "base/checked.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

namespace {
constexpr uint64_t PAGE_SIZE = 0x1000;
}

Result<KernelFormat> detect_kernel_format(std::span<uint8_t const> image)
{
    if (image.empty())
        return Error(ErrorKind::Format, "Kernel image is empty");
    if (image.size() < 64)
        return Error(ErrorKind::Format, fmt::format("Kernel image is too short ({} bytes)", image.size()));
    if (is_bzimage(image))
        return KernelFormat::BzImage;
    bool const multiboot = find_multiboot_header(image).has_value();
    if (is_elf(image)) {
        if (find_pvh_entry(image))
            return KernelFormat::PvhElf;
        if (multiboot)
            return KernelFormat::Multiboot;
        auto elf = parse_elf(image);
        if (!elf)
            return elf.error();
        return Error(ErrorKind::Format,
            "ELF kernel has neither a PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY) nor a multiboot header");
    }
    if (multiboot)
        return KernelFormat::Multiboot;
    return Error(ErrorKind::Format, "Not a kernel: no bzImage header, no multiboot header, no ELF");
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
        if (e.type != BOOT_MEMORY_RAM || e.addr >= FOUR_GIB)
            continue;
        uint64_t end = std::min(checked_add(e.addr, e.size).value_or(FOUR_GIB), FOUR_GIB);
        top = std::max(top, end);
    }
    return top;
}

Result<uint64_t> place_high(memory::GuestMemory const& mem, std::vector<BootMemoryMapEntry> const& map, uint64_t size,
    uint64_t min_addr, uint64_t max_end)
{
    std::optional<uint64_t> best;
    for (auto const& e : map) {
        if (e.type != BOOT_MEMORY_RAM)
            continue;
        auto e_end = checked_add(e.addr, e.size);
        if (!e_end)
            continue;
        uint64_t lo = align_up(std::max(e.addr, min_addr), PAGE_SIZE);
        uint64_t hi = std::min(*e_end, max_end);
        if (lo < std::max(e.addr, min_addr) || hi < lo || hi - lo < size) // align_up wrapped, or no room
            continue;
        uint64_t addr = align_down(hi - size, PAGE_SIZE);
        if (addr < lo || !mem.is_valid_range(GuestAddr(addr), size))
            continue;
        if (!best || addr > *best)
            best = addr;
    }
    if (!best)
        return Error(ErrorKind::OutOfRange, fmt::format("No room for {:#x} bytes in guest RAM between {:#x} and {:#x}", size,
            min_addr, max_end));
    return *best;
}

Result<void> write_cstring(memory::GuestMemory const& mem, uint64_t addr, std::string const& s, uint64_t max_len)
{
    if (s.size() > max_len)
        return Error(ErrorKind::OutOfRange, fmt::format("String of {} bytes is longer than {} bytes", s.size(), max_len));
    auto span = TRY(mem.span(GuestAddr(addr), s.size() + 1));
    auto bytes = span.bytes();
    std::copy(s.begin(), s.end(), bytes.begin());
    bytes[s.size()] = 0;
    return ok();
}

Result<void> load_segment(memory::GuestMemory const& mem, uint64_t paddr, std::span<uint8_t const> file_bytes,
    uint64_t mem_size)
{
    if (file_bytes.size() > mem_size)
        return Error(ErrorKind::Format, "Segment has more file bytes than memory bytes");
    if (!checked_add(paddr, mem_size))
        return Error(ErrorKind::OutOfRange, fmt::format("Segment at {:#x} + {:#x} overflows", paddr, mem_size));
    if (paddr < BOOT_AREA_END)
        return Error(ErrorKind::OutOfRange, fmt::format("Segment at {:#x} overlaps the boot structures below {:#x}", paddr,
            BOOT_AREA_END));
    auto span = mem.span(GuestAddr(paddr), mem_size);
    if (!span)
        return Error(ErrorKind::OutOfRange,
            fmt::format("Segment at {:#x}..{:#x} is outside guest memory", paddr, paddr + mem_size));
    auto bytes = span->bytes();
    std::copy(file_bytes.begin(), file_bytes.end(), bytes.begin());
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(file_bytes.size()), bytes.end(), uint8_t { 0 });
    return ok();
}

} // namespace hako::arch::x86
