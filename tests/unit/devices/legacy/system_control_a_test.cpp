// System Control Port A (0x92): the A20 gate reads back as written (set at power-on), bit 0 resets the machine and
// reads as 0, other bits and wide accesses are ignored.
#include <gtest/gtest.h>

#include "devices/legacy/system_control_a.h"
#include "fake_system.h"

using namespace hako;
using hako::devices::legacy::SystemControlA;

using FakeSystem = devices::legacy::test::RecordingSystem;
using devices::legacy::test::read_byte;
using devices::legacy::test::write_byte;

TEST(SystemControlA, A20GateReadsBackAndFastResetResets)
{
    FakeSystem sys;
    SystemControlA dev(sys);
    EXPECT_EQ(read_byte(dev), SystemControlA::A20_GATE); // open at power-on: memory is never masked
    write_byte(dev, 0x00);
    EXPECT_EQ(read_byte(dev), 0);
    write_byte(dev, 0xfe); // what iPXE writes: A20 on, the other bits ignored, no reset
    EXPECT_EQ(read_byte(dev), SystemControlA::A20_GATE);
    EXPECT_TRUE(sys.events.empty());
    write_byte(dev, SystemControlA::A20_GATE | SystemControlA::FAST_RESET);
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::Reset);
    EXPECT_EQ(read_byte(dev), SystemControlA::A20_GATE); // the reset bit reads as 0
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
    EXPECT_EQ(read_byte(dev), SystemControlA::A20_GATE);
}
