#include <gtest/gtest.h>

#include <vector>

#include "block/memory_image.h"
#include "devices/flash/pflash_cfi01.h"

using namespace hako;
using namespace hako::devices::flash;

namespace {

constexpr uint64_t BASE = 0xffe00000;
constexpr uint64_t SIZE = 4 * PFLASH_SECTOR_SIZE;

std::vector<uint8_t> pattern(uint64_t size)
{
    std::vector<uint8_t> v(size);
    for (size_t i = 0; i < size; ++i)
        v[i] = static_cast<uint8_t>(i * 7 + 3);
    return v;
}

struct Rig {
    explicit Rig(FlashAccess access = FlashAccess::ReadWrite, uint64_t size = SIZE)
        : initial(pattern(size))
        , store(std::make_shared<block::MemoryImage>(initial))
    {
        flash = PflashCfi01::create("pflash-test", BASE, initial, access,
            access == FlashAccess::ReadWrite ? store : nullptr)
                    .value();
        flash->set_romd_hook([this](bool romd) { romd_calls.push_back(romd); });
    }
    uint64_t rd(uint64_t off, size_t len = 1)
    {
        uint8_t buf[8] = {};
        flash->read(off, std::span<uint8_t>(buf, len));
        uint64_t v = 0;
        for (size_t i = 0; i < len; ++i)
            v |= uint64_t { buf[i] } << (8 * i);
        return v;
    }
    void wr(uint64_t off, uint64_t v, size_t len = 1)
    {
        uint8_t buf[8] = {};
        for (size_t i = 0; i < len; ++i)
            buf[i] = static_cast<uint8_t>(v >> (8 * i));
        flash->write(off, std::span<uint8_t const>(buf, len));
    }
    std::vector<uint8_t> initial;
    std::shared_ptr<block::MemoryImage> store;
    std::shared_ptr<PflashCfi01> flash;
    std::vector<bool> romd_calls;
};

} // namespace

TEST(PflashCfi01, RejectsBadSizesAndStores)
{
    std::vector<uint8_t> odd(PFLASH_SECTOR_SIZE + 512, 0xff), empty;
    EXPECT_FALSE(PflashCfi01::create("f", BASE, odd, FlashAccess::ReadOnly, nullptr));
    EXPECT_FALSE(PflashCfi01::create("f", BASE, empty, FlashAccess::ReadOnly, nullptr));
    std::vector<uint8_t> ok(SIZE, 0xff);
    EXPECT_FALSE(PflashCfi01::create("f", BASE, ok, FlashAccess::ReadWrite, nullptr));
    auto small = std::make_shared<block::MemoryImage>(std::vector<uint8_t>(SIZE / 2));
    EXPECT_FALSE(PflashCfi01::create("f", BASE, ok, FlashAccess::ReadWrite, small));
    auto ro = std::make_shared<block::MemoryImage>(std::vector<uint8_t>(SIZE), block::ReadOnly::Yes);
    EXPECT_FALSE(PflashCfi01::create("f", BASE, ok, FlashAccess::ReadWrite, ro));
    EXPECT_TRUE(PflashCfi01::create("f", BASE, ok, FlashAccess::ReadOnly, nullptr));
}

TEST(PflashCfi01, ReadArrayAndMemory)
{
    Rig r;
    EXPECT_TRUE(r.flash->romd());
    EXPECT_EQ(r.rd(0), 3u);
    EXPECT_EQ(r.rd(4, 4), uint64_t { r.initial[4] } | uint64_t { r.initial[5] } << 8 | uint64_t { r.initial[6] } << 16
            | uint64_t { r.initial[7] } << 24);
    // The memory the owner maps as the KVM slot holds the same bytes at the flash's base.
    auto span = r.flash->memory().span(memory::GuestAddr(BASE), SIZE);
    ASSERT_TRUE(span);
    EXPECT_TRUE(std::equal(r.initial.begin(), r.initial.end(), span->bytes().begin()));
    EXPECT_EQ(r.flash->memory().regions().front().kind, memory::RegionKind::Rom);
}

TEST(PflashCfi01, StatusRegisterAndClearStatus)
{
    Rig r;
    r.wr(0, CMD_READ_STATUS);
    EXPECT_FALSE(r.flash->romd());
    EXPECT_EQ(r.rd(0), SR_READY);      // 0x80 after reset
    EXPECT_EQ(r.rd(0, 2), SR_READY);   // 16-bit: status in byte 0 only
    EXPECT_EQ(r.rd(0, 4), 0x00800080u); // 32-bit: bytes 0 and 2 (QEMU's legacy pairing)
    EXPECT_EQ(r.rd(0x123), SR_READY);   // any address
    r.wr(0, CMD_CLEAR_STATUS);
    EXPECT_TRUE(r.flash->romd());       // clear status goes back to read array
    EXPECT_EQ(r.rd(0), 3u);
    r.wr(0, CMD_READ_STATUS);
    EXPECT_EQ(r.rd(0), 0u);             // every bit cleared, as OVMF's detection expects
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_TRUE(r.flash->romd());
    EXPECT_EQ(r.romd_calls, (std::vector<bool> { false, true, false, true }));
}

TEST(PflashCfi01, OvmfDetectionSequence)
{
    // OvmfPkg's QemuFlashDetected(): clear status must not read back 0x50, status must read 0, a program of the
    // same byte must not set SR.4.
    Rig r;
    uint8_t const orig = static_cast<uint8_t>(r.rd(0));
    r.wr(0, CMD_CLEAR_STATUS);
    EXPECT_EQ(r.rd(0), orig);
    r.wr(0, CMD_READ_STATUS);
    EXPECT_EQ(r.rd(0), 0u);
    r.wr(0, CMD_PROGRAM_ALT);
    r.wr(0, orig);
    r.wr(0, CMD_READ_STATUS);
    EXPECT_EQ(r.rd(0) & SR_PROGRAM_ERROR, 0u);
    r.wr(0, CMD_CLEAR_STATUS);
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(0), orig);
}

TEST(PflashCfi01, CfiQueryTable)
{
    Rig r;
    r.wr(0x55, CMD_CFI_QUERY);
    EXPECT_FALSE(r.flash->romd());
    EXPECT_EQ(r.rd(0x10), 'Q');
    EXPECT_EQ(r.rd(0x11), 'R');
    EXPECT_EQ(r.rd(0x12), 'Y');
    EXPECT_EQ(r.rd(0x13) | r.rd(0x14) << 8, 0x0001u); // Intel command set
    EXPECT_EQ(r.rd(0x15) | r.rd(0x16) << 8, 0x0031u); // primary extended table
    EXPECT_EQ(r.rd(0x27), 14u);                        // 16 KiB = 2^14
    EXPECT_EQ(r.rd(0x28) | r.rd(0x29) << 8, 0x0002u); // x8/x16
    EXPECT_EQ(r.rd(0x2c), 1u);                          // one uniform region
    EXPECT_EQ(r.rd(0x2d) | r.rd(0x2e) << 8, 3u);       // 4 blocks - 1
    EXPECT_EQ(r.rd(0x2f) | r.rd(0x30) << 8, 0x10u);    // 4096 / 256
    EXPECT_EQ(r.rd(0x31), 'P');
    EXPECT_EQ(r.rd(0x32), 'R');
    EXPECT_EQ(r.rd(0x33), 'I');
    EXPECT_EQ(r.rd(0x10, 2), 'Q');                      // ID/CFI data in byte 0 only
    EXPECT_EQ(r.rd(0x10, 4), 'Q');
    EXPECT_EQ(r.rd(0x1010), 'Q');                       // the low 8 address bits select the entry
    EXPECT_EQ(r.rd(0x40), 0u);                          // past the table
    EXPECT_EQ(r.rd(0xff), 0u);
    EXPECT_EQ(r.flash->cfi_table()[0x10], 'Q');
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(0x10), r.initial[0x10]);
}

TEST(PflashCfi01, CfiDeviceSizeAndBlockCountFollowTheImage)
{
    Rig r(FlashAccess::ReadOnly, 0x84000); // OVMF_VARS_4M.fd's 528 KiB
    r.wr(0, CMD_CFI_QUERY);
    EXPECT_EQ(r.rd(0x27), 14u); // lowest set bit, as QEMU
    EXPECT_EQ(r.rd(0x2d) | r.rd(0x2e) << 8, 0x84000u / 4096 - 1);
}

TEST(PflashCfi01, ReadIdentifier)
{
    Rig r;
    r.wr(0, CMD_READ_ID);
    for (uint64_t off : { 0u, 1u, 2u, 3u, 0x100u })
        EXPECT_EQ(r.rd(off), 0u) << off;
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(0), 3u);
}

TEST(PflashCfi01, ProgramOnlyClearsBitsAndWritesThrough)
{
    Rig r;
    uint64_t const off = PFLASH_SECTOR_SIZE + 0x10;
    uint8_t const before = r.initial[off];
    r.wr(off, CMD_PROGRAM);
    r.wr(off, 0x0f);
    EXPECT_FALSE(r.flash->romd());           // status mode after the program
    EXPECT_EQ(r.rd(off), SR_READY);
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(off), uint64_t { before & 0x0fu });
    EXPECT_EQ(r.store->bytes()[off], before & 0x0f);
    EXPECT_GE(r.store->flushes, 1u);         // back to read array: flushed
    // Word and dword programs on erased flash.
    r.wr(0x200, CMD_ERASE_CONFIRM);          // not a command: unknown, stays in read array
    r.wr(0, CMD_BLOCK_ERASE);
    r.wr(0, CMD_ERASE_CONFIRM);
    r.wr(0, CMD_PROGRAM_ALT);
    r.wr(0x10, 0x1234, 2);
    r.wr(0, CMD_PROGRAM);
    r.wr(0x20, 0xdeadbeef, 4);
    r.wr(0, CMD_PROGRAM);
    r.wr(0x30, 0x0123456789abcdefull, 8);
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(0x10, 2), 0x1234u);
    EXPECT_EQ(r.rd(0x20, 4), 0xdeadbeefu);
    EXPECT_EQ(r.rd(0x30, 8), 0x0123456789abcdefull);
    EXPECT_EQ(r.rd(0x12), 0xffu);
    EXPECT_EQ(r.store->bytes()[0x21], 0xbe);
    auto const s = r.flash->stats();
    EXPECT_EQ(s.programs, 4u);
    EXPECT_EQ(s.erases, 1u);
    EXPECT_EQ(s.bad_accesses, 1u);
}

TEST(PflashCfi01, EraseSetsOneBlockToFf)
{
    Rig r;
    r.wr(2 * PFLASH_SECTOR_SIZE + 0x123, CMD_BLOCK_ERASE);
    EXPECT_EQ(r.rd(0), SR_READY); // status while the confirm is pending
    uint64_t flushes = r.store->flushes;
    r.wr(2 * PFLASH_SECTOR_SIZE + 0x123, CMD_ERASE_CONFIRM);
    EXPECT_EQ(r.rd(0), SR_READY);
    EXPECT_GT(r.store->flushes, flushes); // an erase is flushed at once
    r.wr(0, CMD_READ_ARRAY);
    for (uint64_t off = 0; off < SIZE; ++off) {
        uint8_t const want = off / PFLASH_SECTOR_SIZE == 2 ? 0xff : r.initial[off];
        ASSERT_EQ(r.rd(off), want) << off;
        ASSERT_EQ(r.store->bytes()[off], want) << off;
    }
}

TEST(PflashCfi01, EraseAbortAndSequenceError)
{
    Rig r;
    r.wr(0, CMD_BLOCK_ERASE);
    r.wr(0, CMD_READ_ARRAY); // abort: nothing erased
    EXPECT_TRUE(r.flash->romd());
    EXPECT_EQ(r.rd(0), 3u);
    r.wr(0, CMD_BLOCK_ERASE);
    r.wr(0, 0x42); // neither confirm nor read array
    EXPECT_EQ(r.rd(0), SR_READY | SR_ERASE_ERROR | SR_PROGRAM_ERROR);
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(0), 3u);
    EXPECT_EQ(r.flash->stats().erases, 0u);
}

TEST(PflashCfi01, ReadOnlyFlashRefusesProgramAndErase)
{
    Rig r(FlashAccess::ReadOnly);
    r.wr(0x40, CMD_PROGRAM);
    r.wr(0x40, 0x00);
    EXPECT_EQ(r.rd(0x40), SR_READY | SR_PROGRAM_ERROR);
    r.wr(0, CMD_CLEAR_STATUS);
    r.wr(0, CMD_BLOCK_ERASE);
    r.wr(0, CMD_ERASE_CONFIRM);
    EXPECT_EQ(r.rd(0), SR_READY | SR_ERASE_ERROR);
    r.wr(0, CMD_READ_ARRAY);
    for (uint64_t off = 0; off < SIZE; ++off)
        ASSERT_EQ(r.rd(off), r.initial[off]) << off;
    EXPECT_EQ(r.flash->stats().refused, 2u);
    EXPECT_EQ(r.store->writes, 0u); // the store was never given to it
}

TEST(PflashCfi01, StoreFailureShowsInStatus)
{
    Rig r;
    r.store->fail_io = true;
    r.wr(0, CMD_PROGRAM);
    r.wr(0, 0x00);
    EXPECT_EQ(r.rd(0) & SR_PROGRAM_ERROR, SR_PROGRAM_ERROR);
    r.wr(0, CMD_CLEAR_STATUS);
    r.wr(0, CMD_BLOCK_ERASE);
    r.wr(0, CMD_ERASE_CONFIRM);
    EXPECT_EQ(r.rd(0) & SR_ERASE_ERROR, SR_ERASE_ERROR);
    EXPECT_GE(r.flash->stats().store_errors, 2u);
}

TEST(PflashCfi01, BadOffsetsAndSizes)
{
    Rig r;
    EXPECT_EQ(r.rd(SIZE - 2, 4), 0xffffffffu); // straddles the end: open bus, counted
    EXPECT_EQ(r.rd(~uint64_t { 0 }, 2), 0xffffu);
    r.wr(SIZE - 1, 0x1111, 2);
    r.wr(~uint64_t { 0 } - 1, CMD_READ_STATUS, 4);
    std::vector<uint8_t> big(16, CMD_READ_STATUS);
    r.flash->write(0, big);
    r.flash->write(0, std::span<uint8_t const>());
    EXPECT_TRUE(r.flash->romd()); // none of them was taken as a command
    EXPECT_EQ(r.flash->stats().bad_accesses, 6u);
    // A program whose data straddles the end is refused before anything changes.
    r.wr(SIZE - 4, CMD_PROGRAM);
    r.wr(SIZE - 2, 0, 4);
    r.wr(0, CMD_READ_ARRAY);
    EXPECT_EQ(r.rd(SIZE - 2, 2), uint64_t { r.initial[SIZE - 2] } | uint64_t { r.initial[SIZE - 1] } << 8);
}

TEST(PflashCfi01, UnknownCommandAndLockCommands)
{
    Rig r;
    r.wr(0, 0xe8); // write-to-buffer: not modelled
    EXPECT_TRUE(r.flash->romd());
    EXPECT_EQ(r.rd(0), 3u);
    r.wr(0, CMD_LOCK_SETUP);
    r.wr(0, CMD_LOCK_BLOCK);
    EXPECT_EQ(r.rd(0), SR_READY);
    r.wr(0, CMD_LOCK_SETUP);
    r.wr(0, CMD_ERASE_CONFIRM); // unlock
    EXPECT_EQ(r.rd(0), SR_READY);
    r.wr(0, CMD_AMD_RESET);
    EXPECT_EQ(r.rd(0), 3u);
    r.wr(0, CMD_READ_STATUS);
    r.wr(0, CMD_READ_ARRAY_ALT);
    EXPECT_EQ(r.rd(0), 3u);
}

TEST(PflashCfi01, ResetReturnsToReadArrayWithStatusReady)
{
    Rig r;
    r.wr(0, CMD_CLEAR_STATUS);
    r.wr(0, CMD_CFI_QUERY);
    EXPECT_FALSE(r.flash->romd());
    r.flash->reset();
    EXPECT_TRUE(r.flash->romd());
    EXPECT_EQ(r.romd_calls.back(), true);
    r.wr(0, CMD_READ_STATUS);
    EXPECT_EQ(r.rd(0), SR_READY);
}
