#include <gtest/gtest.h>

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
