#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "memory/guest_memory.h"

using namespace hako;
using namespace hako::memory;

TEST(GuestMemory, WholeRangeChecks)
{
    std::vector<uint8_t> low(0x1000), high(0x1000);
    auto mem = GuestMemory::from_buffers({ { GuestAddr(0), low }, { GuestAddr(0x10000), high } });
    ASSERT_TRUE(mem);
    EXPECT_TRUE(mem->write_obj<uint32_t>(GuestAddr(0xffc), 0xdeadbeef));
    EXPECT_EQ(*mem->read_obj<uint32_t>(GuestAddr(0xffc)), 0xdeadbeefu);
    EXPECT_FALSE(mem->read_obj<uint32_t>(GuestAddr(0xffe)));          // crosses the end of a region
    EXPECT_FALSE(mem->read_obj<uint32_t>(GuestAddr(0x2000)));         // in no region
    EXPECT_FALSE(mem->span(GuestAddr(0x10000), 0x1001));
    EXPECT_FALSE(mem->span(GuestAddr(~0ull - 1), 4));                 // wraps
    EXPECT_TRUE(mem->span(GuestAddr(0x10000), 0x1000));
    EXPECT_EQ(mem->ram_size(), 0x2000u);
}

TEST(GuestMemory, ReadLe16Once)
{
    std::vector<uint8_t> ram(0x1000);
    auto mem = GuestMemory::from_buffers({ { GuestAddr(0), ram } });
    ASSERT_TRUE(mem);
    ram[0x10] = 0x34, ram[0x11] = 0x12, ram[0x12] = 0x56;
    EXPECT_EQ(*mem->read_le16_once(GuestAddr(0x10)), 0x1234u);
    EXPECT_EQ(*mem->read_le16_once(GuestAddr(0x11)), 0x5612u); // unaligned: read() fallback
    EXPECT_FALSE(mem->read_le16_once(GuestAddr(0xfff)));       // crosses the end
    EXPECT_FALSE(mem->read_le16_once(GuestAddr(0x2000)));
}

// A driver's avail->idx going 0x12ff -> 0x1300 and back, as another CPU stores it: every read sees one of the two
// values, never a mix of their bytes (0x13ff or 0x1200), which a copy in two parts can produce (read_obj through
// glibc's memcpy showed about 500 torn reads in 20 million on the development machine).
TEST(GuestMemory, ReadLe16OnceIsNotTorn)
{
    std::vector<uint8_t> ram(0x1000);
    auto mem = GuestMemory::from_buffers({ { GuestAddr(0), ram } });
    ASSERT_TRUE(mem);
    auto* word = reinterpret_cast<uint16_t*>(ram.data() + 0x100);
    std::atomic<bool> stop { false };
    std::thread writer([&] {
        std::atomic_ref<uint16_t> w(*word);
        for (uint16_t v = 0x12ff; !stop.load(std::memory_order_relaxed); v = v == 0x12ff ? 0x1300 : 0x12ff)
            w.store(v, std::memory_order_relaxed);
    });
    uint64_t torn = 0;
    for (int i = 0; i < 20000000; i++) {
        uint16_t const v = *mem->read_le16_once(GuestAddr(0x100));
        torn += v != 0x12ff && v != 0x1300 && v != 0;
    }
    stop = true;
    writer.join();
    EXPECT_EQ(torn, 0u);
}

TEST(GuestMemory, RejectsOverlappingRegions)
{
    std::vector<uint8_t> a(0x2000), b(0x1000);
    EXPECT_FALSE(GuestMemory::from_buffers({ { GuestAddr(0), a }, { GuestAddr(0x1000), b } }));
}

TEST(GuestMemory, CreateMapsRegions)
{
    auto mem = GuestMemory::create({ { GuestAddr(0), 0x10000, RegionKind::Ram }, { GuestAddr(0x100000), 0x1000, RegionKind::Rom } });
    ASSERT_TRUE(mem);
    EXPECT_TRUE(mem->write_obj<uint64_t>(GuestAddr(0x100ff8), 7));
    EXPECT_FALSE(GuestMemory::create({ { GuestAddr(0x800), 0x1000, RegionKind::Ram } })); // not page-aligned
}

// The emulator's locked compare-exchange: sizes 4, 8, 16 on aligned RAM; success stores, failure reports the value.
TEST(GuestMemory, CompareExchange)
{
    alignas(16) static std::array<uint8_t, 0x1000> ram {};
    auto mem = GuestMemory::from_buffers({ { GuestAddr(0), ram } });
    ASSERT_TRUE(mem);
    for (size_t i = 0; i < 16; ++i)
        ram[0x100 + i] = static_cast<uint8_t>(i);
    std::array<uint8_t, 16> expected {}, desired {};
    for (size_t i = 0; i < 16; ++i) {
        expected[i] = static_cast<uint8_t>(i);
        desired[i] = static_cast<uint8_t>(0xa0 + i);
    }
    auto r = mem->compare_exchange(GuestAddr(0x100), expected, desired);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    EXPECT_EQ(ram[0x100], 0xa0);
    EXPECT_EQ(ram[0x10f], 0xaf);
    // Now memory holds `desired`: a stale expectation fails and reads the current value back.
    r = mem->compare_exchange(GuestAddr(0x100), expected, desired);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
    EXPECT_EQ(expected[0], 0xa0);
    EXPECT_EQ(expected[15], 0xaf);
    std::array<uint8_t, 4> e4 { 0, 0, 0, 0 }, d4 { 1, 2, 3, 4 };
    r = mem->compare_exchange(GuestAddr(0x200), e4, d4);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    EXPECT_EQ(ram[0x203], 4);
    std::array<uint8_t, 8> e8 {}, d8 {};
    EXPECT_FALSE(mem->compare_exchange(GuestAddr(0x104), e8, d8));             // unaligned
    EXPECT_FALSE(mem->compare_exchange(GuestAddr(0x108), expected, desired));  // 16 bytes need 16-byte alignment
    EXPECT_FALSE(mem->compare_exchange(GuestAddr(0x2000), e8, d8));            // outside guest memory
    std::array<uint8_t, 2> e2 {}, d2 {};
    EXPECT_FALSE(mem->compare_exchange(GuestAddr(0x100), e2, d2));             // size
}

// Two threads incrementing one 16-byte counter through compare-exchange loops never lose an update.
TEST(GuestMemory, CompareExchange16IsAtomic)
{
    alignas(16) static std::array<uint8_t, 0x1000> ram {};
    ram.fill(0);
    auto mem = GuestMemory::from_buffers({ { GuestAddr(0), ram } });
    ASSERT_TRUE(mem);
    constexpr int N = 20000;
    auto worker = [&] {
        for (int i = 0; i < N; ++i) {
            std::array<uint8_t, 16> cur {};
            (void)mem->read(GuestAddr(0x40), cur);
            for (;;) {
                uint64_t lo = 0, hi = 0;
                std::memcpy(&lo, cur.data(), 8);
                std::memcpy(&hi, cur.data() + 8, 8);
                ++lo, ++hi;
                std::array<uint8_t, 16> next {};
                std::memcpy(next.data(), &lo, 8);
                std::memcpy(next.data() + 8, &hi, 8);
                if (*mem->compare_exchange(GuestAddr(0x40), cur, next))
                    break;
            }
        }
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
    uint64_t lo = 0, hi = 0;
    std::memcpy(&lo, ram.data() + 0x40, 8);
    std::memcpy(&hi, ram.data() + 0x48, 8);
    EXPECT_EQ(lo, 2u * N);
    EXPECT_EQ(hi, 2u * N);
}
