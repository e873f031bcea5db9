#include <gtest/gtest.h>

#include <vector>

#include "arch/x86/layout.h"
#include "devices/legacy/reset_control.h"

using namespace hako;
using hako::devices::legacy::ResetControl;

namespace {
class FakeSystem final : public bus::SystemControl {
public:
    void request(bus::SystemEvent event, uint32_t) override { events.push_back(event); }
    std::vector<bus::SystemEvent> events;
};

uint8_t rd(ResetControl& d)
{
    uint8_t b = 0;
    d.read(0, std::span<uint8_t>(&b, 1));
    return b;
}
void wr(ResetControl& d, uint8_t v) { d.write(0, std::span<uint8_t const>(&v, 1)); }
} // namespace

TEST(ResetControl, ReadsBackAndOnlyRstCpuResets)
{
    FakeSystem sys;
    ResetControl dev(sys);
    EXPECT_EQ(rd(dev), 0);
    wr(dev, 0x02); // SYS_RST alone: no reset yet
    EXPECT_EQ(rd(dev), 0x02);
    EXPECT_TRUE(sys.events.empty());
    wr(dev, arch::x86::RESET_REG_VALUE);
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::Reset);
    wr(dev, 0x04); // soft reset also resets
    EXPECT_EQ(sys.events.size(), 2u);
}

TEST(ResetControl, WideAccessesAreIgnored)
{
    FakeSystem sys;
    ResetControl dev(sys);
    uint8_t w[2] { 0x06, 0x06 };
    dev.write(0, w);
    EXPECT_TRUE(sys.events.empty());
    uint8_t r[2] {};
    dev.read(0, r);
    EXPECT_EQ(r[0], 0xff);
}
