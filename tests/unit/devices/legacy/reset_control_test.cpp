#include <gtest/gtest.h>

#include "arch/x86/layout.h"
#include "devices/legacy/reset_control.h"
#include "fake_system.h"

using namespace hako;
using hako::devices::legacy::ResetControl;

using FakeSystem = devices::legacy::test::RecordingSystem;
using devices::legacy::test::read_byte;
using devices::legacy::test::write_byte;

TEST(ResetControl, ReadsBackAndOnlyRstCpuResets)
{
    FakeSystem sys;
    ResetControl dev(sys);
    EXPECT_EQ(read_byte(dev), 0);
    write_byte(dev, 0x02); // SYS_RST alone: no reset yet
    EXPECT_EQ(read_byte(dev), 0x02);
    EXPECT_TRUE(sys.events.empty());
    write_byte(dev, arch::x86::RESET_REG_VALUE);
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::Reset);
    write_byte(dev, 0x04); // soft reset also resets
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
