// System Control Port A (0x92): the A20 gate reads back as written (set at power-on), bit 0 resets the machine and
// reads as 0, other bits and wide accesses are ignored.
#include <gtest/gtest.h>

#include <vector>

#include "devices/legacy/system_control_a.h"

using namespace hako;
using hako::devices::legacy::SystemControlA;

namespace {
class FakeSystem final : public bus::SystemControl {
public:
    void request(bus::SystemEvent event, uint32_t) override { events.push_back(event); }
    std::vector<bus::SystemEvent> events;
};

uint8_t rd(SystemControlA& d)
{
    uint8_t b = 0;
    d.read(0, std::span<uint8_t>(&b, 1));
    return b;
}
void wr(SystemControlA& d, uint8_t v) { d.write(0, std::span<uint8_t const>(&v, 1)); }
} // namespace

TEST(SystemControlA, A20GateReadsBackAndFastResetResets)
{
    FakeSystem sys;
    SystemControlA dev(sys);
    EXPECT_EQ(rd(dev), SystemControlA::A20_GATE); // open at power-on: memory is never masked
    wr(dev, 0x00);
    EXPECT_EQ(rd(dev), 0);
    wr(dev, 0xfe); // what iPXE writes: A20 on, the other bits ignored, no reset
    EXPECT_EQ(rd(dev), SystemControlA::A20_GATE);
    EXPECT_TRUE(sys.events.empty());
    wr(dev, SystemControlA::A20_GATE | SystemControlA::FAST_RESET);
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::Reset);
    EXPECT_EQ(rd(dev), SystemControlA::A20_GATE); // the reset bit reads as 0
}

TEST(SystemControlA, WideAccessesAreIgnored)
{
    FakeSystem sys;
    SystemControlA dev(sys);
    uint8_t w[2] { 0x01, 0x01 };
    dev.write(0, std::span<uint8_t const>(w, 2));
    EXPECT_TRUE(sys.events.empty());
    uint8_t r[2] {};
    dev.read(0, std::span<uint8_t>(r, 2));
    EXPECT_EQ(r[0], 0xff);
    EXPECT_EQ(rd(dev), SystemControlA::A20_GATE);
}
