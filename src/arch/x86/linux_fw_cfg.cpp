#include "arch/x86/linux_fw_cfg.h"

#include <algorithm>

#include "base/bytes.h"

namespace hako::arch::x86 {

constexpr uint32_t REAL_MODE_ADDR = 0x10000;
constexpr uint32_t CMDLINE_ADDR_FW = 0x20000;
constexpr uint32_t PROTECTED_MODE_ADDR = 0x100000;
constexpr uint64_t FIRMWARE_RESERVED_TOP = 128 * 1024; // keep the top of low RAM for the firmware's tables
constexpr uint8_t LOADER_TYPE = 0xb0;                  // "Qemu" in the boot protocol's loader list: what the ROM is
constexpr uint8_t CAN_USE_HEAP = 0x80;
constexpr uint8_t LOADED_HIGH = 0x01;

Result<LinuxFwCfgItems> linux_fw_cfg_items(std::span<uint8_t const> image, std::string const& cmdline,
    std::vector<uint8_t> initrd, uint64_t low_ram_end)
{
    if (image.size() < 0x264 || get_le16(image.data() + 0x1fe) != 0xaa55 || get_le32(image.data() + 0x202) != 0x53726448)
        return Error(ErrorKind::Format, "With --firmware, --kernel must be a Linux bzImage");
    uint8_t const* p = image.data();
    uint16_t const version = get_le16(p + 0x206);
    if (version < 0x0203 || !(p[0x211] & LOADED_HIGH))
        return Error(ErrorKind::Format, fmt::format("bzImage boot protocol {:#x} is too old for firmware boot (need 2.03)", version));
    uint64_t setup_sects = p[0x1f1] ? p[0x1f1] : 4;
    uint64_t const setup_size = (setup_sects + 1) * 512;
    if (setup_size >= image.size())
        return Error(ErrorKind::Format, "bzImage is truncated: no protected-mode kernel after the setup code");
    uint64_t const syssize = static_cast<uint64_t>(get_le32(p + 0x1f4)) * 16;
    if (syssize > image.size() - setup_size + 15) // syssize rounds up to a 16-byte paragraph
        return Error(ErrorKind::Format, "bzImage is truncated: the header says more kernel than the file has");
    uint32_t const cmdline_size = version >= 0x0206 ? get_le32(p + 0x238) : 255;
    if (cmdline.size() > cmdline_size)
        return Error(ErrorKind::OutOfRange,
            fmt::format("Kernel command line too long ({} bytes, the kernel accepts at most {})", cmdline.size(), cmdline_size));

    LinuxFwCfgItems items;
    items.setup_addr = REAL_MODE_ADDR;
    items.setup.assign(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(setup_size));
    items.kernel_addr = PROTECTED_MODE_ADDR;
    items.kernel.assign(image.begin() + static_cast<std::ptrdiff_t>(setup_size), image.end());
    items.cmdline_addr = CMDLINE_ADDR_FW;
    items.cmdline.assign(cmdline.begin(), cmdline.end());
    items.cmdline.push_back(0);

    uint8_t* s = items.setup.data();
    put_le32(s + 0x228, CMDLINE_ADDR_FW);                                          // cmd_line_ptr
    put_le16(s + 0x224, static_cast<uint16_t>(CMDLINE_ADDR_FW - REAL_MODE_ADDR - 0x200)); // heap_end_ptr
    s[0x211] = static_cast<uint8_t>(s[0x211] | CAN_USE_HEAP);
    s[0x210] = LOADER_TYPE;
    items.initrd_addr = 0;
    if (!initrd.empty()) {
        uint64_t const addr_max = get_le32(p + 0x22c);
        uint64_t const top = std::min<uint64_t>(addr_max + 1, low_ram_end - FIRMWARE_RESERVED_TOP);
        uint64_t const kernel_end = PROTECTED_MODE_ADDR + std::max<uint64_t>(items.kernel.size(), get_le32(p + 0x260));
        if (initrd.size() > top || ((top - initrd.size()) & ~0xfffull) < kernel_end)
            return Error(ErrorKind::OutOfRange, fmt::format("Initrd too large for guest memory ({} MiB)", initrd.size() >> 20));
        items.initrd_addr = static_cast<uint32_t>((top - initrd.size()) & ~0xfffull);
        put_le32(s + 0x218, items.initrd_addr);
        put_le32(s + 0x21c, static_cast<uint32_t>(initrd.size()));
        items.initrd = std::move(initrd);
    }
    return items;
}

} // namespace hako::arch::x86
