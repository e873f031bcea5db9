#include <gtest/gtest.h>

#include <vector>

#include "bus/bus.h"

using namespace hako;
using namespace hako::bus;

namespace {
class Recorder final : public Device {
public:
    std::string_view name() const override { return "recorder"; }
    void read(uint64_t offset, std::span<uint8_t> data) override
    {
        for (auto& b : data)
            b = static_cast<uint8_t>(offset);
    }
    void write(uint64_t offset, std::span<uint8_t const> data) override { writes.emplace_back(offset, data.size()); }
    std::vector<std::pair<uint64_t, size_t>> writes;
};
} // namespace

TEST(Bus, RejectsOverlapZeroSizeAndOverflow)
{
    Bus bus(Bus::Kind::Pio);
    auto dev = std::make_shared<Recorder>();
    ASSERT_TRUE(bus.insert(0x100, 8, dev));
    EXPECT_FALSE(bus.insert(0x104, 8, dev));  // overlaps the tail
    EXPECT_FALSE(bus.insert(0xfc, 8, dev));   // overlaps the head
    EXPECT_FALSE(bus.insert(0x100, 8, dev));  // same range
    EXPECT_FALSE(bus.insert(0x200, 0, dev));  // empty
    EXPECT_FALSE(bus.insert(~0ull - 3, 8, dev)); // wraps
    EXPECT_TRUE(bus.insert(0x108, 8, dev));   // adjacent is fine
    EXPECT_TRUE(bus.insert(0xf8, 8, dev));
    EXPECT_TRUE(bus.insert(~0ull - 7, 8, dev)); // ends exactly at 2^64
}

TEST(Bus, DispatchesWithRelativeOffsetsAndOpenBus)
{
    Bus bus(Bus::Kind::Mmio);
    auto dev = std::make_shared<Recorder>();
    ASSERT_TRUE(bus.insert(0x1000, 0x10, dev));
    uint8_t b[4];
    EXPECT_TRUE(bus.read(0x1003, b));
    EXPECT_EQ(b[0], 3);
    EXPECT_FALSE(bus.read(0x1010, b));
    EXPECT_EQ(b[0], 0xff);
    EXPECT_EQ(b[3], 0xff);
    uint8_t w[2] { 1, 2 };
    EXPECT_TRUE(bus.write(0x100f, w));
    ASSERT_EQ(dev->writes.size(), 1u);
    EXPECT_EQ(dev->writes[0].first, 0xfu);
    EXPECT_FALSE(bus.write(0xfff, w));
    EXPECT_EQ(bus.unclaimed_count(), 2u);
    EXPECT_TRUE(bus.remove(0x1000));
    EXPECT_FALSE(bus.read(0x1000, b));
}
