// DebugExit, plus the other two write-only ports (DebugCon, PortSink), which are too small for a file each.
#include <gtest/gtest.h>

#include <vector>

#include "devices/legacy/debug_exit.h"
#include "devices/legacy/debugcon.h"
#include "devices/legacy/port_sink.h"

using namespace hako;
using namespace hako::devices::legacy;

namespace {
class FakeSystem final : public bus::SystemControl {
public:
    void request(bus::SystemEvent event, uint32_t code) override { events.emplace_back(event, code); }
    std::vector<std::pair<bus::SystemEvent, uint32_t>> events;
};
} // namespace

TEST(DebugExit, AnyWriteRequestsExitWithValue)
{
    FakeSystem sys;
    DebugExit dev(sys);
    uint8_t b = 0x21;
    dev.write(0, std::span<uint8_t const>(&b, 1));
    uint8_t w[4] { 0x78, 0x56, 0x34, 0x12 };
    dev.write(0, w);
    uint8_t h[2] { 0x01, 0x02 };
    dev.write(2, h);
    ASSERT_EQ(sys.events.size(), 3u);
    EXPECT_EQ(sys.events[0], std::make_pair(bus::SystemEvent::DebugExit, 0x21u));
    EXPECT_EQ(sys.events[1], std::make_pair(bus::SystemEvent::DebugExit, 0x12345678u));
    EXPECT_EQ(sys.events[2], std::make_pair(bus::SystemEvent::DebugExit, 0x0201u));
}

TEST(DebugExit, ReadsAreAllOnes)
{
    FakeSystem sys;
    DebugExit dev(sys);
    uint8_t r[4] {};
    dev.read(1, r);
    for (auto v : r)
        EXPECT_EQ(v, 0xff);
    EXPECT_TRUE(sys.events.empty());
}

TEST(DebugCon, OutputsLowByteAndReadsBackE9)
{
    std::vector<uint8_t> out;
    DebugCon dev([&](std::span<uint8_t const> b) { out.insert(out.end(), b.begin(), b.end()); });
    uint8_t c = 'A';
    dev.write(0, std::span<uint8_t const>(&c, 1));
    uint8_t w[2] { 'B', 'C' };
    dev.write(0, w);
    EXPECT_EQ(out, (std::vector<uint8_t> { 'A', 'B' }));
    uint8_t r = 0;
    dev.read(0, std::span<uint8_t>(&r, 1));
    EXPECT_EQ(r, 0xe9);
}

TEST(PortSink, AbsorbsWritesAndReadsConfiguredValue)
{
    PortSink post("post", 0x00);
    PortSink open("open", 0xff);
    uint8_t v = 0x42;
    post.write(0, std::span<uint8_t const>(&v, 1));
    EXPECT_EQ(post.last_written(), 0x42);
    uint8_t r[2] { 1, 1 };
    post.read(0, r);
    EXPECT_EQ(r[0], 0x00);
    EXPECT_EQ(r[1], 0x00);
    open.read(0, r);
    EXPECT_EQ(r[0], 0xff);
    EXPECT_EQ(post.name(), "post");
}
