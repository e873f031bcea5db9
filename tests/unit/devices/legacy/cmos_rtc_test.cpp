#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "arch/x86/layout.h"
#include "base/checked.h"
#include "devices/legacy/cmos_rtc.h"

using namespace hako;
using hako::devices::legacy::CmosRtc;

namespace {

class FakeIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        level = asserted;
        if (asserted)
            ++raises;
    }
    std::atomic<bool> level { false };
    std::atomic<int> raises { 0 };
};

// 2024-02-29 13:45:56 UTC, a Thursday.
constexpr int64_t T0 = 1709214356LL * 1'000'000'000;

struct CmosRtcTest : ::testing::Test {
    std::shared_ptr<FakeIrq> irq = std::make_shared<FakeIrq>();
    int64_t now_ns = T0 + 500'000'000;
    CmosRtc rtc { irq, nullptr, [this] { return now_ns; } };

    uint8_t rd(uint8_t index)
    {
        uint8_t v = index;
        rtc.write(0, std::span<uint8_t const>(&v, 1));
        rtc.read(1, std::span<uint8_t>(&v, 1));
        return v;
    }
    void wr(uint8_t index, uint8_t value)
    {
        rtc.write(0, std::span<uint8_t const>(&index, 1));
        rtc.write(1, std::span<uint8_t const>(&value, 1));
    }
    uint8_t rd_bank1(uint8_t index)
    {
        uint8_t v = index;
        rtc.write(2, std::span<uint8_t const>(&v, 1));
        rtc.read(3, std::span<uint8_t>(&v, 1));
        return v;
    }
};

} // namespace

TEST_F(CmosRtcTest, DefaultsBcd24h)
{
    EXPECT_EQ(rd(CmosRtc::REG_A) & 0x7f, 0x26);
    EXPECT_EQ(rd(CmosRtc::REG_B), 0x02);
    EXPECT_EQ(rd(CmosRtc::REG_D), 0x80);
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x56);
    EXPECT_EQ(rd(CmosRtc::REG_MINUTES), 0x45);
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x13);
    EXPECT_EQ(rd(CmosRtc::REG_DAY_OF_WEEK), 5); // Thursday, Sunday = 1
    EXPECT_EQ(rd(CmosRtc::REG_DAY_OF_MONTH), 0x29);
    EXPECT_EQ(rd(CmosRtc::REG_MONTH), 0x02);
    EXPECT_EQ(rd(CmosRtc::REG_YEAR), 0x24);
    EXPECT_EQ(rd(CmosRtc::REG_CENTURY), 0x20);
}

TEST_F(CmosRtcTest, BinaryAnd12HourModes)
{
    wr(CmosRtc::REG_B, CmosRtc::REG_B_DM); // binary, 12 h
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 56);
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x80 | 1); // 1 PM
    EXPECT_EQ(rd(CmosRtc::REG_YEAR), 24);
    wr(CmosRtc::REG_B, 0); // BCD, 12 h
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x81);
    now_ns -= 13LL * 3600 * 1'000'000'000; // 00:45: 12 AM
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x12);
    now_ns += 12LL * 3600 * 1'000'000'000; // 12:45: 12 PM
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x92);
}

TEST_F(CmosRtcTest, TimeAdvancesWithTheHostClock)
{
    now_ns += 5LL * 1'000'000'000;
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x01);
    EXPECT_EQ(rd(CmosRtc::REG_MINUTES), 0x46);
}

TEST_F(CmosRtcTest, SetTimeWithSetBitThenReadBack)
{
    wr(CmosRtc::REG_B, CmosRtc::REG_B_SET | CmosRtc::REG_B_24_12);
    wr(CmosRtc::REG_SECONDS, 0x30);
    wr(CmosRtc::REG_MINUTES, 0x59);
    wr(CmosRtc::REG_HOURS, 0x23);
    wr(CmosRtc::REG_DAY_OF_MONTH, 0x31);
    wr(CmosRtc::REG_MONTH, 0x12);
    wr(CmosRtc::REG_YEAR, 0x99);
    wr(CmosRtc::REG_CENTURY, 0x19);
    now_ns += 10LL * 1'000'000'000; // frozen while SET
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x30);
    EXPECT_EQ(rd(CmosRtc::REG_A) & CmosRtc::REG_A_UIP, 0);
    wr(CmosRtc::REG_B, CmosRtc::REG_B_24_12);
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x30);
    EXPECT_EQ(rd(CmosRtc::REG_YEAR), 0x99);
    now_ns += 30LL * 1'000'000'000; // rolls over into 2000
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x00);
    EXPECT_EQ(rd(CmosRtc::REG_MINUTES), 0x00);
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x00);
    EXPECT_EQ(rd(CmosRtc::REG_DAY_OF_MONTH), 0x01);
    EXPECT_EQ(rd(CmosRtc::REG_MONTH), 0x01);
    EXPECT_EQ(rd(CmosRtc::REG_YEAR), 0x00);
    EXPECT_EQ(rd(CmosRtc::REG_CENTURY), 0x20);
    EXPECT_EQ(rd(CmosRtc::REG_DAY_OF_WEEK), 7); // 2000-01-01 was a Saturday
}

TEST_F(CmosRtcTest, SingleRegisterWriteWithoutSet)
{
    wr(CmosRtc::REG_MINUTES, 0x10);
    EXPECT_EQ(rd(CmosRtc::REG_MINUTES), 0x10);
    EXPECT_EQ(rd(CmosRtc::REG_HOURS), 0x13);
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x56);
}

TEST_F(CmosRtcTest, GarbageTimeIsClamped)
{
    wr(CmosRtc::REG_B, CmosRtc::REG_B_SET | CmosRtc::REG_B_24_12);
    for (int r : { 0, 2, 4, 7, 8, 9 })
        wr(static_cast<uint8_t>(r), 0xff);
    wr(CmosRtc::REG_CENTURY, 0xff);
    wr(CmosRtc::REG_B, CmosRtc::REG_B_24_12);
    EXPECT_EQ(rd(CmosRtc::REG_SECONDS), 0x59);
    EXPECT_EQ(rd(CmosRtc::REG_MONTH), 0x12);
}

TEST_F(CmosRtcTest, UipInTheLast244Microseconds)
{
    now_ns = T0 + 999'800'000;
    EXPECT_EQ(rd(CmosRtc::REG_A) & CmosRtc::REG_A_UIP, CmosRtc::REG_A_UIP);
    now_ns = T0 + 999'700'000;
    EXPECT_EQ(rd(CmosRtc::REG_A) & CmosRtc::REG_A_UIP, 0);
}

TEST_F(CmosRtcTest, UpdateFlagRaisesIrqAndRegisterCClearsIt)
{
    rd(CmosRtc::REG_C);
    wr(CmosRtc::REG_B, CmosRtc::REG_B_UIE | CmosRtc::REG_B_24_12);
    EXPECT_FALSE(irq->level);
    now_ns += 1'000'000'000;
    uint8_t const c = rd(CmosRtc::REG_C);
    EXPECT_EQ(c & (CmosRtc::REG_C_IRQF | CmosRtc::REG_C_UF), CmosRtc::REG_C_IRQF | CmosRtc::REG_C_UF);
    EXPECT_FALSE(irq->level); // lowered by the read
    EXPECT_EQ(irq->raises, 1);
    EXPECT_EQ(rd(CmosRtc::REG_C) & CmosRtc::REG_C_UF, 0);
}

TEST_F(CmosRtcTest, EnablingPieWithPfPendingRaisesIrq)
{
    wr(CmosRtc::REG_A, 0x26); // 1024 Hz
    rd(CmosRtc::REG_C);
    now_ns += 5'000'000;
    wr(CmosRtc::REG_B, CmosRtc::REG_B_PIE | CmosRtc::REG_B_24_12);
    EXPECT_TRUE(irq->level);
    EXPECT_EQ(rd(CmosRtc::REG_C) & 0xc0, 0xc0);
    EXPECT_FALSE(irq->level);
    wr(CmosRtc::REG_A, 0x20); // rate 0: no periodic flag
    rd(CmosRtc::REG_C);
    now_ns += 5'000'000;
    EXPECT_EQ(rd(CmosRtc::REG_C) & CmosRtc::REG_C_PF, 0);
}

TEST_F(CmosRtcTest, AlarmWithDontCare)
{
    wr(CmosRtc::REG_SECONDS_ALARM, 0x00);
    wr(CmosRtc::REG_MINUTES_ALARM, 0xc0); // any minute
    wr(CmosRtc::REG_HOURS_ALARM, 0xff);   // any hour
    wr(CmosRtc::REG_B, CmosRtc::REG_B_AIE | CmosRtc::REG_B_24_12);
    rd(CmosRtc::REG_C);
    now_ns += 1'000'000'000; // :57
    EXPECT_EQ(rd(CmosRtc::REG_C) & CmosRtc::REG_C_AF, 0);
    EXPECT_FALSE(irq->level);
    now_ns += 3'000'000'000; // :00
    uint8_t const c = rd(CmosRtc::REG_C);
    EXPECT_EQ(c & CmosRtc::REG_C_AF, CmosRtc::REG_C_AF);
    EXPECT_EQ(c & CmosRtc::REG_C_IRQF, CmosRtc::REG_C_IRQF);
}

TEST_F(CmosRtcTest, NvramBanksAndSetNvram)
{
    wr(0x40, 0xab);
    EXPECT_EQ(rd(0x40), 0xab);
    EXPECT_EQ(rd(0x80 | 0x40), 0xab); // NMI bit ignored
    rtc.set_nvram(0x90, 0x12);
    EXPECT_EQ(rd_bank1(0x10), 0x12);
    rtc.set_nvram(CmosRtc::REG_B, 0xff); // refused
    EXPECT_EQ(rd(CmosRtc::REG_B), 0x02);
    rtc.set_nvram(0x0f, 0x0a); // shutdown status: plain NVRAM
    EXPECT_EQ(rd(0x0f), 0x0a);
    rtc.set_nvram(0x100, 1);   // out of range: refused, no crash
    wr(CmosRtc::REG_D, 0);
    EXPECT_EQ(rd(CmosRtc::REG_D), 0x80);
}

TEST_F(CmosRtcTest, MemoryLayoutFor2GiB)
{
    auto const l = arch::x86::ram_layout(2 * GiB);
    rtc.set_memory_layout(l.low_end, l.high_size, 4);
    EXPECT_EQ(rd(0x15) | rd(0x16) << 8, 640);
    EXPECT_EQ(rd(0x17) | rd(0x18) << 8, 0xffff);
    EXPECT_EQ(rd(0x30) | rd(0x31) << 8, 0xffff);
    EXPECT_EQ(rd(0x34) | rd(0x35) << 8, (2 * GiB - 16 * MiB) / (64 * KiB));
    EXPECT_EQ(rd(0x5b) | rd(0x5c) << 8 | rd(0x5d) << 16, 0);
    EXPECT_EQ(rd(0x5f), 3);
    EXPECT_EQ(rd(0x14), 0x06);
    EXPECT_EQ(rd(0x10), 0x00);
}

TEST_F(CmosRtcTest, MemoryLayoutFor6GiBAndSmall)
{
    auto const l = arch::x86::ram_layout(6 * GiB);
    rtc.set_memory_layout(l.low_end, l.high_size, 1);
    EXPECT_EQ(rd(0x34) | rd(0x35) << 8, (3 * GiB - 16 * MiB) / (64 * KiB));
    EXPECT_EQ(rd(0x5b) | rd(0x5c) << 8 | rd(0x5d) << 16, 3 * GiB / (64 * KiB));
    EXPECT_EQ(rd(0x5f), 0);
    rtc.set_memory_layout(8 * MiB, 0, 1);
    EXPECT_EQ(rd(0x17) | rd(0x18) << 8, 7 * 1024);
    EXPECT_EQ(rd(0x34) | rd(0x35) << 8, 0);
}

TEST(CmosRtcTimers, PeriodicInterruptFiresFromEventLoop)
{
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    auto irq = std::make_shared<FakeIrq>();
    auto rtc = std::make_unique<CmosRtc>(irq, loop->get(), [] {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::system_clock::now().time_since_epoch()).count();
    });
    std::thread t([&] { (*loop)->run(); });
    auto wr = [&](uint8_t index, uint8_t value) {
        rtc->write(0, std::span<uint8_t const>(&index, 1));
        rtc->write(1, std::span<uint8_t const>(&value, 1));
    };
    wr(CmosRtc::REG_A, 0x2f); // 2 Hz
    wr(CmosRtc::REG_B, CmosRtc::REG_B_PIE | CmosRtc::REG_B_24_12);
    uint8_t c = CmosRtc::REG_C; // clear anything already pending: only the timer may raise IRQ 8 from here on
    rtc->write(0, std::span<uint8_t const>(&c, 1));
    rtc->read(1, std::span<uint8_t>(&c, 1));
    irq->raises = 0;
    // Generous: the first period is 500 ms; wait up to 20 s for the timer (not the guest read path) to raise IRQ 8.
    for (int i = 0; i < 2000 && irq->raises == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GE(irq->raises, 1);
    rtc.reset(); // destroying with a live timer must be safe
    (*loop)->stop();
    t.join();
}
