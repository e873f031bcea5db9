// Fuzzes the CFI flash (devices/flash/pflash_cfi01.h): two flashes, a writable one over an in-memory store and a
// read-only one, driven by 8-byte records (op, offset, size, value...). op % 8: 0-2 write, 3-5 read, 6 reset,
// 7 a write of a likely command at a likely place. Invariants checked after every record: the writable flash's
// memory equals its store (write-through) and bits only ever go 0 -> 1 through an erase of a whole block; the
// read-only flash never changes; read-array mode is what romd() and the hook say.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "block/memory_image.h"
#include "devices/flash/pflash_cfi01.h"

using namespace hako;
using namespace hako::devices::flash;

namespace {
constexpr uint64_t SIZE = 4 * PFLASH_SECTOR_SIZE;
constexpr uint64_t BASE = 0xfff00000;
uint8_t const COMMANDS[] = { 0xff, 0x00, 0xf0, 0x10, 0x40, 0x20, 0x28, 0xd0, 0x50, 0x60, 0x01, 0x70, 0x90, 0x98, 0xe8 };

std::span<uint8_t const> flash_bytes(PflashCfi01 const& f)
{
    return f.memory().span(memory::GuestAddr(f.base()), f.size())->bytes();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    std::vector<uint8_t> initial(SIZE);
    for (size_t i = 0; i < SIZE; ++i)
        initial[i] = static_cast<uint8_t>(i * 13 + 5);
    auto store = std::make_shared<block::MemoryImage>(initial);
    auto rw = PflashCfi01::create("rw", BASE, initial, FlashAccess::ReadWrite, store).value();
    auto ro = PflashCfi01::create("ro", BASE, initial, FlashAccess::ReadOnly, nullptr).value();
    bool hook_romd = true;
    rw->set_romd_hook([&](bool romd) { hook_romd = romd; });
    std::vector<uint8_t> shadow = initial; // the writable flash's previous contents

    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint8_t const* r = data + i;
        uint8_t const op = r[0] % 8;
        PflashCfi01& f = (r[0] & 0x80) ? *ro : *rw;
        uint64_t offset = (uint64_t { r[1] } | uint64_t { r[2] } << 8) % (SIZE + 16);
        if (r[0] & 0x40)
            offset = ~uint64_t { 0 } - r[1]; // near the top of the address space
        size_t const len = size_t { 1 } << (r[3] % 4);
        uint8_t buf[8] = { r[4], r[5], r[6], r[7], r[4], r[5], r[6], r[7] };
        switch (op) {
        case 0:
        case 1:
        case 2:
            f.write(offset, std::span<uint8_t const>(buf, len));
            break;
        case 3:
        case 4:
        case 5:
            f.read(offset, std::span<uint8_t>(buf, len));
            break;
        case 6:
            f.reset();
            break;
        case 7:
            buf[0] = COMMANDS[r[4] % sizeof COMMANDS];
            f.write(offset % SIZE, std::span<uint8_t const>(buf, 1));
            break;
        }
        if (rw->romd() != hook_romd)
            std::abort();
        auto const now = flash_bytes(*rw);
        if (!std::equal(now.begin(), now.end(), store->bytes().begin()))
            std::abort();
        for (size_t b = 0; b < SIZE; ++b) {
            // A bit may go 0 -> 1 only if its whole block is now erased.
            if ((now[b] & ~shadow[b]) != 0) {
                size_t const block = b / PFLASH_SECTOR_SIZE * PFLASH_SECTOR_SIZE;
                for (size_t k = block; k < block + PFLASH_SECTOR_SIZE; ++k)
                    if (now[k] != 0xff)
                        std::abort();
            }
        }
        shadow.assign(now.begin(), now.end());
        auto const ro_now = flash_bytes(*ro);
        if (!std::equal(ro_now.begin(), ro_now.end(), initial.begin()))
            std::abort();
    }
    return 0;
}
