// Fuzz target: arbitrary bytes as a kernel image (bzImage, ELF/PVH, multiboot) loaded into a small guest.
// Every failure must be an Error; nothing may be written outside guest memory (ASan watches the buffers).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"

using namespace hako::arch::x86;
using hako::memory::GuestAddr;
using hako::memory::GuestMemory;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    static std::vector<uint8_t> low(LOW_RAM_END), high((16u << 20) - UPPER_RAM_START);
    static GuestMemory mem = *GuestMemory::from_buffers({ { GuestAddr(0), low }, { GuestAddr(UPPER_RAM_START), high } });
    KernelLoadRequest req;
    req.kernel = std::span<uint8_t const>(data, size);
    req.cmdline = "console=ttyS0";
    req.modules.push_back({ std::vector<uint8_t>(100, 1), "mod" });
    req.memory_map = { { 0, EBDA_START, 1 }, { HIGH_MEMORY_START, (16u << 20) - HIGH_MEMORY_START, 1 } };
    (void)detect_kernel_format(req.kernel);
    (void)load_kernel(mem, req);
    return 0;
}
