// Linux bzImage loader: the 64-bit boot protocol of Documentation/x86/boot.rst (protocol 2.12+).
//
// The protected-mode kernel goes to 1 MiB; the zero page (struct boot_params) is built at BOOT_INFO_ADDR from the
// image's setup header plus what a boot loader fills in (type_of_loader, cmd_line_ptr, ramdisk, e820 table); the
// CPU enters at the 64-bit entry (load address + 0x200) with RSI pointing at the zero page. Not done: the real-mode
// setup code (never run), the EFI handover, relocating the kernel (it always sits at 1 MiB), setup_data chains.
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

// struct boot_params offsets (Documentation/x86/zero-page.rst) and setup header fields (boot.rst).
constexpr size_t BP_SIZE = 4096;
constexpr size_t BP_EXT_RAMDISK_IMAGE = 0x0c0;
constexpr size_t BP_EXT_RAMDISK_SIZE = 0x0c4;
constexpr size_t BP_EXT_CMD_LINE_PTR = 0x0c8;
constexpr size_t BP_E820_ENTRIES = 0x1e8;
constexpr size_t BP_E820_TABLE = 0x2d0;
constexpr size_t E820_MAX_ENTRIES_ZEROPAGE = 128;
constexpr size_t E820_ENTRY_SIZE = 20;

constexpr size_t HDR_SYSSIZE = 0x1f4;
constexpr size_t HDR_SETUP_SECTS = 0x1f1;
constexpr size_t HDR_VID_MODE = 0x1fa;
constexpr size_t HDR_BOOT_FLAG = 0x1fe;
constexpr size_t HDR_JUMP = 0x200;
constexpr size_t HDR_HEADER = 0x202;
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
constexpr size_t HDR_MIN_END = 0x264; // a 2.12 header reaches at least past init_size

constexpr uint16_t BOOT_FLAG_MAGIC = 0xAA55;
constexpr uint32_t HDRS_MAGIC = 0x53726448; // "HdrS"
constexpr uint16_t MIN_PROTOCOL = 0x020c;   // 2.12: xloadflags
constexpr uint8_t LOADED_HIGH = 1 << 0;
constexpr uint8_t CAN_USE_HEAP = 1 << 7;
constexpr uint16_t XLF_KERNEL_64 = 1 << 0;
constexpr uint8_t TYPE_OF_LOADER_UNDEFINED = 0xff;
constexpr uint16_t VID_MODE_NORMAL = 0xffff;
constexpr uint16_t HEAP_END_PTR = 0xfe00;   // end of a 64 KiB real-mode segment minus 0x200
constexpr uint64_t STARTUP_64_OFFSET = 0x200;
constexpr size_t SECTOR_SIZE = 512;

Error format_error(std::string msg) { return Error(ErrorKind::Format, std::move(msg)); }

} // namespace

bool is_bzimage(std::span<uint8_t const> image)
{
    return read_le(image, HDR_BOOT_FLAG, 2) == BOOT_FLAG_MAGIC && read_le(image, HDR_HEADER, 4) == HDRS_MAGIC;
}

Result<BootEntry> load_bzimage(memory::GuestMemory const& mem, KernelLoadRequest const& req)
{
    auto image = req.kernel;
    if (!is_bzimage(image))
        return format_error("Not a bzImage: no boot flag 0xAA55 and \"HdrS\" header");
    if (image.size() < HDR_MIN_END)
        return format_error(fmt::format("bzImage setup header is truncated ({} bytes)", image.size()));
    auto version = static_cast<uint16_t>(*read_le(image, HDR_VERSION, 2));
    if (version < MIN_PROTOCOL)
        return Error(ErrorKind::Unsupported, fmt::format("bzImage boot protocol {}.{:02} is older than 2.12", version >> 8,
            version & 0xff));
    uint8_t loadflags = image[HDR_LOADFLAGS];
    if (!(loadflags & LOADED_HIGH))
        return Error(ErrorKind::Unsupported, "bzImage is not a high-loaded (bzImage) kernel: LOADED_HIGH is clear");
    if (!(*read_le(image, HDR_XLOADFLAGS, 2) & XLF_KERNEL_64))
        return Error(ErrorKind::Unsupported, "bzImage has no 64-bit entry point (XLF_KERNEL_64 is clear)");

    // The setup header runs from 0x1f1 to 0x202 + the byte at 0x201 (the jump's displacement).
    size_t header_end = HDR_HEADER + image[HDR_JUMP + 1];
    if (header_end < HDR_MIN_END || header_end > image.size())
        return format_error(fmt::format("bzImage setup header length {:#x} is invalid", header_end - HDR_SETUP_SECTS));

    uint64_t setup_sects = image[HDR_SETUP_SECTS] ? image[HDR_SETUP_SECTS] : 4;
    uint64_t kernel_offset = (setup_sects + 1) * SECTOR_SIZE;
    if (kernel_offset >= image.size())
        return format_error(fmt::format("bzImage is truncated: the setup code ({} sectors) leaves no kernel", setup_sects));
    auto kernel = image.subspan(static_cast<size_t>(kernel_offset));
    // syssize (0x1f4) is the protected-mode kernel's size in 16-byte paragraphs, rounded up (memtest86+'s image
    // ends 8 bytes into its last paragraph): a file shorter than that by a paragraph or more was cut off.
    uint64_t const syssize = *read_le(image, HDR_SYSSIZE, 4) * 16;
    if (syssize > kernel.size() + 15)
        return format_error(fmt::format("bzImage is truncated: the header says {} bytes of kernel, the file has {}",
            syssize, kernel.size()));
    uint64_t init_size = *read_le(image, HDR_INIT_SIZE, 4);
    uint64_t footprint = std::max<uint64_t>(kernel.size(), init_size);
    if (!mem.is_valid_range(GuestAddr(HIGH_MEMORY_START), footprint))
        return Error(ErrorKind::OutOfRange, fmt::format("Kernel needs {} MiB at 1 MiB, more than guest RAM holds",
            (footprint + MiB - 1) / MiB));

    // Command line: cmdline_size excludes the NUL.
    uint64_t cmdline_max = std::min<uint64_t>(*read_le(image, HDR_CMDLINE_SIZE, 4), CMDLINE_MAX - 1);
    if (req.cmdline.size() > cmdline_max)
        return Error(ErrorKind::OutOfRange, fmt::format("Kernel command line too long ({} bytes, the kernel accepts at most {})",
            req.cmdline.size(), cmdline_max));

    if (req.memory_map.size() > E820_MAX_ENTRIES_ZEROPAGE)
        return Error(ErrorKind::OutOfRange, fmt::format("Memory map has {} entries, boot_params holds at most {}",
            req.memory_map.size(), E820_MAX_ENTRIES_ZEROPAGE));
    if (req.modules.size() > 1)
        return Error(ErrorKind::InvalidArgument, "A Linux kernel takes at most one initrd");

    // Initrd: as high as possible below initrd_addr_max and the top of low RAM, above the kernel's footprint.
    uint64_t initrd_addr = 0;
    uint64_t initrd_size = 0;
    if (!req.modules.empty() && !req.modules[0].data.empty()) {
        initrd_size = req.modules[0].data.size();
        uint64_t max_end = std::min(*read_le(image, HDR_INITRD_ADDR_MAX, 4) + 1, top_of_low_ram(req.memory_map));
        uint64_t min_addr = HIGH_MEMORY_START + footprint;
        auto placed = place_high(mem, req.memory_map, initrd_size, min_addr, max_end);
        if (!placed)
            return Error(ErrorKind::OutOfRange, fmt::format("Initrd too large for guest memory ({} bytes, {} bytes free "
                "between the kernel and {:#x})", initrd_size, max_end > min_addr ? max_end - min_addr : 0, max_end));
        initrd_addr = *placed;
    }

    // Everything checked: write the kernel, the command line, the initrd and the zero page.
    TRY(mem.write(GuestAddr(HIGH_MEMORY_START), kernel));
    TRY(write_cstring(mem, CMDLINE_ADDR, req.cmdline, cmdline_max));
    if (initrd_size)
        TRY(mem.write(GuestAddr(initrd_addr), req.modules[0].data));

    std::array<uint8_t, BP_SIZE> bp {};
    std::copy(image.begin() + HDR_SETUP_SECTS, image.begin() + static_cast<std::ptrdiff_t>(header_end),
        bp.begin() + HDR_SETUP_SECTS);
    bp[HDR_TYPE_OF_LOADER] = TYPE_OF_LOADER_UNDEFINED;
    bp[HDR_LOADFLAGS] = static_cast<uint8_t>(loadflags | CAN_USE_HEAP);
    put_le16(&bp[HDR_VID_MODE], VID_MODE_NORMAL);
    put_le16(&bp[HDR_HEAP_END_PTR], HEAP_END_PTR);
    put_le32(&bp[HDR_CMD_LINE_PTR], static_cast<uint32_t>(CMDLINE_ADDR));
    put_le32(&bp[BP_EXT_CMD_LINE_PTR], static_cast<uint32_t>(CMDLINE_ADDR >> 32));
    put_le32(&bp[HDR_RAMDISK_IMAGE], static_cast<uint32_t>(initrd_addr));
    put_le32(&bp[HDR_RAMDISK_SIZE], static_cast<uint32_t>(initrd_size));
    put_le32(&bp[BP_EXT_RAMDISK_IMAGE], static_cast<uint32_t>(initrd_addr >> 32));
    put_le32(&bp[BP_EXT_RAMDISK_SIZE], static_cast<uint32_t>(initrd_size >> 32));
    bp[BP_E820_ENTRIES] = static_cast<uint8_t>(req.memory_map.size());
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        uint8_t* e = &bp[BP_E820_TABLE + i * E820_ENTRY_SIZE];
        put_le64(e, req.memory_map[i].addr);
        put_le64(e + 8, req.memory_map[i].size);
        put_le32(e + 16, req.memory_map[i].type);
    }
    TRY(mem.write(GuestAddr(BOOT_INFO_ADDR), bp));

    BootEntry entry;
    entry.mode = CpuMode::Long64;
    entry.rip = HIGH_MEMORY_START + STARTUP_64_OFFSET;
    entry.rsi = BOOT_INFO_ADDR;
    entry.rsp = BOOT_STACK_TOP;
    return entry;
}

} // namespace hako::arch::x86
