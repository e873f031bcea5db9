// Linux boot through firmware (QEMU's way): SeaBIOS or OVMF run an option ROM (QEMU's linuxboot_dma.bin) that
// fetches the kernel's real-mode setup, the protected-mode kernel, the command line and the initrd from fw_cfg and
// enters the setup code in real mode (16-bit boot protocol). This builds those fw_cfg items from a bzImage.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace hako::arch::x86 {

struct LinuxFwCfgItems {
    uint32_t setup_addr;              // FW_CFG_SETUP_ADDR: where the real-mode setup goes (0x10000)
    std::vector<uint8_t> setup;       // FW_CFG_SETUP_DATA: the setup sectors, header patched for this boot
    uint32_t kernel_addr;             // FW_CFG_KERNEL_ADDR (1 MiB)
    std::vector<uint8_t> kernel;      // FW_CFG_KERNEL_DATA: the protected-mode kernel
    uint32_t cmdline_addr;            // FW_CFG_CMDLINE_ADDR (0x20000)
    std::vector<uint8_t> cmdline;     // FW_CFG_CMDLINE_DATA, NUL-terminated
    uint32_t initrd_addr;             // FW_CFG_INITRD_ADDR (0 if none)
    std::vector<uint8_t> initrd;      // FW_CFG_INITRD_DATA
};

/// Splits and patches a bzImage for firmware boot. low_ram_end bounds where the initrd may go.
[[nodiscard]] Result<LinuxFwCfgItems> linux_fw_cfg_items(std::span<uint8_t const> bzimage, std::string const& cmdline,
    std::vector<uint8_t> initrd, uint64_t low_ram_end);

} // namespace hako::arch::x86
