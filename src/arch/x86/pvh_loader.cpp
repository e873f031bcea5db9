// PVH direct boot (Xen's "x86/HVM direct boot ABI", used by Linux's CONFIG_PVH entry): an ELF kernel with a
// XEN_ELFNOTE_PHYS32_ENTRY note, entered in 32-bit protected mode with EBX = hvm_start_info.
#include <algorithm>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "base/bytes.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

constexpr uint32_t XEN_ELFNOTE_PHYS32_ENTRY = 18;
constexpr uint32_t HVM_START_MAGIC = 0x336ec578;
constexpr uint64_t START_INFO_ADDR = BOOT_INFO_ADDR;
constexpr uint64_t MEMMAP_ADDR = BOOT_INFO_EXTRA;           // 24 bytes per entry
constexpr uint64_t MODLIST_ADDR = BOOT_INFO_EXTRA + 0xc00;  // 32 bytes per module
constexpr size_t MAX_MEMMAP = 0xc00 / 24;

Result<BootEntry> load_pvh(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    auto const elf = TRY(parse_elf(req.kernel));
    std::optional<uint32_t> entry;
    for (auto const& n : elf.notes) {
        if (n.name == "Xen" && n.type == XEN_ELFNOTE_PHYS32_ENTRY && n.desc.size() >= 4)
            entry = get_le32(n.desc.data());
    }
    if (!entry)
        return Error(ErrorKind::Format, "ELF kernel has no PVH entry note");

    uint64_t kernel_end = 0;
    for (auto const& s : elf.loads) {
        if (s.paddr < HIGH_MEMORY_START)
            return Error(ErrorKind::Format, fmt::format("Bad PVH kernel: segment at {:#x} is below 1 MiB", s.paddr));
        if (!mem.is_valid_range(GuestAddr(s.paddr), s.mem_size))
            return Error(ErrorKind::OutOfRange,
                fmt::format("PVH kernel segment {:#x}+{:#x} is outside guest RAM", s.paddr, s.mem_size));
        TRY(mem.write(GuestAddr(s.paddr), req.kernel.subspan(s.file_offset, s.file_size)));
        TRY(mem.span(GuestAddr(s.paddr + s.file_size), s.mem_size - s.file_size)).fill(0);
        kernel_end = std::max(kernel_end, s.paddr + s.mem_size);
    }

    if (req.cmdline.size() + 1 > CMDLINE_MAX)
        return Error(ErrorKind::OutOfRange,
            fmt::format("Kernel command line too long ({} bytes, at most {})", req.cmdline.size(), CMDLINE_MAX - 1));
    TRY(write_cstring(mem, CMDLINE_ADDR, req.cmdline, CMDLINE_MAX));

    if (req.modules.size() > 1)
        return Error(ErrorKind::InvalidArgument, "A PVH kernel takes one initrd");
    if (!req.modules.empty()) {
        auto const& initrd = req.modules[0].data;
        auto placed = place_high(req.memory_map, initrd.size(), kernel_end, top_of_low_ram(req.memory_map));
        if (!placed)
            return Error(ErrorKind::OutOfRange, fmt::format("Initrd too large for guest memory ({} MiB)", initrd.size() >> 20));
        TRY(mem.write(GuestAddr(*placed), initrd));
        uint8_t mod[32] {};
        put_le64(mod, *placed);
        put_le64(mod + 8, initrd.size());
        TRY(mem.write(GuestAddr(MODLIST_ADDR), mod));
    }

    size_t const n = std::min(req.memory_map.size(), MAX_MEMMAP);
    std::vector<uint8_t> memmap(24 * n);
    for (size_t i = 0; i < n; ++i) {
        put_le64(&memmap[24 * i], req.memory_map[i].addr);
        put_le64(&memmap[24 * i + 8], req.memory_map[i].size);
        put_le32(&memmap[24 * i + 16], req.memory_map[i].type);
    }
    TRY(mem.write(GuestAddr(MEMMAP_ADDR), memmap));

    uint8_t info[56] {};
    put_le32(info, HVM_START_MAGIC);
    put_le32(info + 4, 1); // version 1: has the memory map fields
    put_le32(info + 12, static_cast<uint32_t>(req.modules.size()));
    put_le64(info + 16, req.modules.empty() ? 0 : MODLIST_ADDR);
    put_le64(info + 24, CMDLINE_ADDR);
    put_le64(info + 32, req.rsdp_addr);
    put_le64(info + 40, MEMMAP_ADDR);
    put_le32(info + 48, static_cast<uint32_t>(n));
    TRY(mem.write(GuestAddr(START_INFO_ADDR), info));

    BootEntry boot;
    boot.mode = CpuMode::Protected32;
    boot.rip = *entry;
    boot.rbx = START_INFO_ADDR;
    boot.rsp = BOOT_STACK_TOP;
    return boot;
}

} // namespace hako::arch::x86
