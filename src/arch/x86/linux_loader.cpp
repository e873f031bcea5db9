// Linux bzImage, 64-bit boot protocol (Documentation/arch/x86/boot.rst): the protected-mode kernel at 1 MiB, the
// zero page (boot_params) with the setup header, command line, initrd and e820 map, entry at startup_64.
#include <algorithm>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "base/bytes.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

// Setup header fields (offsets in the file and in boot_params).
constexpr size_t HDR_SETUP_SECTS = 0x1f1;
constexpr size_t HDR_SYSSIZE = 0x1f4;
constexpr size_t HDR_VID_MODE = 0x1fa;
constexpr size_t HDR_JUMP = 0x200;        // the byte after it (0x201) is the header's length past 0x202
constexpr size_t HDR_VERSION = 0x206;
constexpr size_t HDR_TYPE_OF_LOADER = 0x210;
constexpr size_t HDR_LOADFLAGS = 0x211;
constexpr size_t HDR_RAMDISK_IMAGE = 0x218;
constexpr size_t HDR_RAMDISK_SIZE = 0x21c;
constexpr size_t HDR_HEAP_END_PTR = 0x224;
constexpr size_t HDR_CMD_LINE_PTR = 0x228;
constexpr size_t HDR_INITRD_ADDR_MAX = 0x22c;
constexpr size_t HDR_XLOADFLAGS = 0x236;
constexpr size_t HDR_CMDLINE_SIZE = 0x238;
constexpr size_t HDR_INIT_SIZE = 0x260;
// boot_params fields outside the header.
constexpr size_t BP_EXT_RAMDISK_IMAGE = 0x0c0;
constexpr size_t BP_EXT_RAMDISK_SIZE = 0x0c4;
constexpr size_t BP_EXT_CMD_LINE_PTR = 0x0c8;
constexpr size_t BP_E820_ENTRIES = 0x1e8;
constexpr size_t BP_E820_TABLE = 0x2d0;
constexpr size_t BP_E820_MAX = 128;

constexpr uint8_t LOADFLAGS_LOADED_HIGH = 1u << 0;
constexpr uint8_t LOADFLAGS_CAN_USE_HEAP = 1u << 7;
constexpr uint16_t XLF_KERNEL_64 = 1u << 0;
constexpr uint16_t MIN_PROTOCOL = 0x020c; // 2.12: xloadflags and the 64-bit entry
constexpr uint64_t KERNEL_LOAD_ADDR = HIGH_MEMORY_START;
constexpr uint64_t STARTUP_64_OFFSET = 0x200;

static Error bad(std::string_view what) { return Error(ErrorKind::Format, fmt::format("Bad bzImage: {}", what)); }

Result<BootEntry> load_bzimage(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    auto const image = req.kernel;
    if (image.size() < 0x264)
        return bad("the file is truncated inside the setup header");
    uint8_t const* p = image.data();
    uint16_t const version = get_le16(p + HDR_VERSION);
    if (version < MIN_PROTOCOL)
        return bad(fmt::format("boot protocol {}.{:02} is older than 2.12 (no 64-bit entry)", version >> 8, version & 0xff));
    if (!(p[HDR_LOADFLAGS] & LOADFLAGS_LOADED_HIGH))
        return bad("not a bzImage (zImage loads low)");
    if (!(get_le16(p + HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return bad("the kernel has no 64-bit entry point");
    uint64_t setup_sects = p[HDR_SETUP_SECTS];
    if (setup_sects == 0)
        setup_sects = 4;
    uint64_t const setup_size = (setup_sects + 1) * 512;
    uint64_t const syssize = static_cast<uint64_t>(get_le32(p + HDR_SYSSIZE)) * 16;
    if (setup_size >= image.size())
        return bad("the file is truncated: no protected-mode kernel after the setup code");
    uint64_t const kernel_size = image.size() - setup_size;
    if (syssize > kernel_size)
        return bad(fmt::format("the file is truncated: the header says {} bytes of kernel, the file has {}", syssize, kernel_size));
    uint64_t const init_size = std::max<uint64_t>(get_le32(p + HDR_INIT_SIZE), kernel_size);
    if (!mem.is_valid_range(GuestAddr(KERNEL_LOAD_ADDR), init_size))
        return Error(ErrorKind::OutOfRange,
            fmt::format("The kernel needs {} MiB from 1 MiB on; guest memory is too small", (init_size + (1 << 20) - 1) >> 20));
    TRY(mem.write(GuestAddr(KERNEL_LOAD_ADDR), image.subspan(setup_size)));

    // Command line, within the limit the kernel declares.
    uint64_t const cmdline_limit = std::min<uint64_t>(get_le32(p + HDR_CMDLINE_SIZE), CMDLINE_MAX - 1);
    if (req.cmdline.size() > cmdline_limit)
        return Error(ErrorKind::OutOfRange,
            fmt::format("Kernel command line too long ({} bytes, the kernel accepts at most {})", req.cmdline.size(), cmdline_limit));
    TRY(write_cstring(mem, CMDLINE_ADDR, req.cmdline, CMDLINE_MAX));

    // The zero page: the header copied from the image, then the loader's fields.
    std::vector<uint8_t> bp(4096, 0);
    size_t const header_end = std::min<size_t>(0x202 + p[HDR_JUMP + 1], bp.size());
    if (header_end > image.size())
        return bad("the setup header runs past the end of the file");
    std::copy(p + HDR_SETUP_SECTS, p + header_end, bp.begin() + HDR_SETUP_SECTS);
    put_le16(&bp[HDR_VID_MODE], 0xffff); // "normal"
    bp[HDR_TYPE_OF_LOADER] = 0xff;       // undefined loader
    bp[HDR_LOADFLAGS] = static_cast<uint8_t>(bp[HDR_LOADFLAGS] | LOADFLAGS_CAN_USE_HEAP);
    put_le16(&bp[HDR_HEAP_END_PTR], 0xfe00);
    put_le32(&bp[HDR_CMD_LINE_PTR], static_cast<uint32_t>(CMDLINE_ADDR));
    put_le32(&bp[BP_EXT_CMD_LINE_PTR], 0);

    if (req.modules.size() > 1)
        return Error(ErrorKind::InvalidArgument, "A Linux kernel takes one initrd");
    if (!req.modules.empty()) {
        auto const& initrd = req.modules[0].data;
        uint64_t const addr_max = static_cast<uint64_t>(get_le32(p + HDR_INITRD_ADDR_MAX)) + 1;
        uint64_t const max_end = std::min(addr_max, top_of_low_ram(req.memory_map));
        auto placed = place_high(req.memory_map, initrd.size(), KERNEL_LOAD_ADDR + init_size, max_end);
        if (!placed)
            return Error(ErrorKind::OutOfRange,
                fmt::format("Initrd too large for guest memory ({} MiB; below {:#x} after the kernel)", initrd.size() >> 20, max_end));
        TRY(mem.write(GuestAddr(*placed), initrd));
        put_le32(&bp[HDR_RAMDISK_IMAGE], static_cast<uint32_t>(*placed));
        put_le32(&bp[HDR_RAMDISK_SIZE], static_cast<uint32_t>(initrd.size()));
        put_le32(&bp[BP_EXT_RAMDISK_IMAGE], static_cast<uint32_t>(*placed >> 32));
        put_le32(&bp[BP_EXT_RAMDISK_SIZE], static_cast<uint32_t>(static_cast<uint64_t>(initrd.size()) >> 32));
    }

    size_t const n = std::min(req.memory_map.size(), BP_E820_MAX);
    bp[BP_E820_ENTRIES] = static_cast<uint8_t>(n);
    for (size_t i = 0; i < n; ++i) {
        uint8_t* e = &bp[BP_E820_TABLE + 20 * i];
        put_le64(e, req.memory_map[i].addr);
        put_le64(e + 8, req.memory_map[i].size);
        put_le32(e + 16, req.memory_map[i].type);
    }
    TRY(mem.write(GuestAddr(BOOT_INFO_ADDR), bp));

    BootEntry entry;
    entry.mode = CpuMode::Long64;
    entry.rip = KERNEL_LOAD_ADDR + STARTUP_64_OFFSET;
    entry.rsi = BOOT_INFO_ADDR;
    entry.rsp = BOOT_STACK_TOP;
    return entry;
}

} // namespace hako::arch::x86
