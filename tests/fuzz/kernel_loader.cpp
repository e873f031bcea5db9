// Fuzzes the x86 kernel loaders: arbitrary bytes as the kernel (bzImage, PVH ELF, multiboot or garbage), with an
// initrd/module and a command line, into 16 MiB of heap-backed guest memory. Any crash, sanitizer report or write
// outside the buffer (ASan catches it) is a bug; errors are the expected outcome for most inputs.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "arch/x86/linux_fw_cfg.h"
#include "arch/x86/loader.h"
#include "memory/guest_memory.h"

using namespace hako;
using namespace hako::arch::x86;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    static std::vector<uint8_t> ram(16 << 20);
    static std::vector<uint8_t> rom(64 << 10);
    auto mem = memory::GuestMemory::from_buffers({ { memory::GuestAddr(0), ram },
        { memory::GuestAddr(firmware_base(rom.size())), rom } });
    if (!mem)
        return 0;
    std::span<uint8_t const> input(data, size);

    KernelLoadRequest req;
    req.kernel = input;
    req.cmdline = "console=ttyS0";
    req.memory_map = { { 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0x100000, (16 << 20) - 0x100000, 1 } };
    req.rsdp_addr = 0xe0000;
    // The first byte picks whether to pass a module, so both paths are explored.
    if (size > 0 && (data[0] & 1))
        req.modules.push_back(Module { std::vector<uint8_t>(size_t { data[0] } * 64, 0x5a), "mod" });

    (void)detect_kernel_format(input);
    (void)load_kernel(*mem, req);
    (void)load_firmware(*mem, input);
    (void)linux_fw_cfg_items(input, "console=ttyS0", std::vector<uint8_t>(size % 8192), 16u << 20);
    return 0;
}
