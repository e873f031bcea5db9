// Fuzzes the fw_cfg port interface: guest RAM (64 KiB at 0x10000) is filled from the input, then the rest of
// the input is a sequence of port accesses (selector, data, DMA address registers, stray ports and sizes).
#include <cstdint>
#include <cstring>
#include <vector>

#include "devices/legacy/fw_cfg.h"

using namespace hako;
using namespace hako::devices::legacy;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    constexpr uint64_t RAM_BASE = 0x10000;
    constexpr size_t RAM_SIZE = 0x10000;
    static std::vector<uint8_t> ram(RAM_SIZE);

    // The first byte says how much of the input seeds RAM (in 256-byte units); the rest drives the ports.
    if (size < 1)
        return 0;
    size_t seed = std::min<size_t>(static_cast<size_t>(data[0]) * 256, size - 1);
    std::fill(ram.begin(), ram.end(), 0);
    std::memcpy(ram.data(), data + 1, std::min(seed, RAM_SIZE));
    size_t pos = 1 + seed;

    auto mem = memory::GuestMemory::from_buffers({ { memory::GuestAddr(RAM_BASE), std::span<uint8_t>(ram) } });
    if (!mem)
        return 0;
    FwCfg dev(*mem);
    dev.add_u32(FW_CFG_NB_CPUS, 4);
    (void)dev.add_file("etc/acpi/tables", std::vector<uint8_t>(300, 0x41));
    (void)dev.add_file("etc/e820", std::vector<uint8_t>(40, 0x01));
    (void)dev.add_file("etc/empty", {});

    // Each access: op byte (bit 0 write, bits 1-2 size 1/2/4/8, bits 4-7 port offset 0-15), then 8 value bytes.
    while (pos + 9 <= size) {
        uint8_t op = data[pos];
        size_t len = size_t { 1 } << ((op >> 1) & 3);
        uint64_t offset = (op >> 4) & 0xf;
        uint8_t buf[8];
        std::memcpy(buf, data + pos + 1, 8);
        pos += 9;
        if (op & 1)
            dev.write(offset, std::span<uint8_t const>(buf, len));
        else
            dev.read(offset, std::span<uint8_t>(buf, len));
    }
    return 0;
}
