#include <gtest/gtest.h>

#include <vector>

#include "arch/x86/layout.h"
#include "base/bytes.h"
#include "devices/legacy/acpi_pm.h"
#include "fake_system.h"

using namespace hako;
using hako::devices::legacy::AcpiPm;

namespace {

class FakeIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        level = asserted;
        ++changes;
    }
    bool level { false };
    int changes { 0 };
};

using FakeSystem = devices::legacy::test::RecordingSystem;

struct AcpiPmTest : ::testing::Test {
    FakeSystem sys;
    std::shared_ptr<FakeIrq> sci = std::make_shared<FakeIrq>();
    int64_t now_ns = 1'000'000'000'000;
    AcpiPm pm { sys, sci, [this] { return now_ns; } };

    uint64_t rd(uint64_t off, size_t size)
    {
        uint8_t b[4] {};
        pm.read(off, std::span<uint8_t>(b, size));
        return load_le(std::span<uint8_t const>(b, size));
    }
    void wr(uint64_t off, size_t size, uint64_t v)
    {
        uint8_t b[4] {};
        store_le(std::span<uint8_t>(b, size), v);
        pm.write(off, std::span<uint8_t const>(b, size));
    }
};

constexpr uint64_t STS = 0, EN = 2, CNT = 4, TMR = 8, GPE_STS = 0x20, GPE_EN = 0x22;

} // namespace

TEST_F(AcpiPmTest, SciEnAlwaysReadsSet)
{
    EXPECT_EQ(rd(CNT, 2) & AcpiPm::SCI_EN, AcpiPm::SCI_EN);
    wr(CNT, 2, 0);
    EXPECT_EQ(rd(CNT, 2) & AcpiPm::SCI_EN, AcpiPm::SCI_EN);
}

TEST_F(AcpiPmTest, S5PowersOff)
{
    wr(CNT, 2, (uint64_t { arch::x86::SLP_TYP_S5 } << 10) | AcpiPm::SLP_EN);
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::PowerOff);
    EXPECT_EQ(rd(CNT, 2) & AcpiPm::SLP_EN, 0u); // write-only
}

TEST_F(AcpiPmTest, S5ByByteWritesPowersOff)
{
    // SLP_TYP is bits 10-12 and SLP_EN bit 13: both in the high byte.
    wr(CNT + 1, 1, (AcpiPm::SLP_EN >> 8) | (arch::x86::SLP_TYP_S5 << 2));
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::PowerOff);
}

TEST_F(AcpiPmTest, OtherSleepTypesAreIgnored)
{
    wr(CNT, 2, (uint64_t { 1 } << 10) | AcpiPm::SLP_EN);
    wr(CNT, 2, (uint64_t { 3 } << 10) | AcpiPm::SLP_EN);
    EXPECT_TRUE(sys.events.empty());
    EXPECT_EQ((rd(CNT, 2) >> 10) & 7, 3u); // SLP_TYP reads back
    wr(CNT, 2, uint64_t { 5 } << 10);      // S5 type without SLP_EN: nothing
    EXPECT_TRUE(sys.events.empty());
}

TEST_F(AcpiPmTest, TimerIsMonotonic24BitAt3579545Hz)
{
    EXPECT_EQ(rd(TMR, 4), 0u);
    now_ns += 1'000'000'000;
    EXPECT_EQ(rd(TMR, 4), 3579545u);
    uint64_t last = rd(TMR, 4);
    for (int i = 0; i < 100; ++i) {
        now_ns += 37'000'000;
        uint64_t const v = rd(TMR, 4);
        EXPECT_LE(v, 0xffffffu);
        EXPECT_TRUE(v > last || v < 0x100000) << "went back from " << last << " to " << v; // only by wrapping
        last = v;
    }
    now_ns += 3600LL * 1'000'000'000; // an hour: the 24-bit value wraps, stays in range
    EXPECT_LE(rd(TMR, 4), 0xffffffu);
    wr(TMR, 4, 0); // read-only
}

TEST_F(AcpiPmTest, TimerStatusSetOnBit23ChangeAndWriteOneToClear)
{
    EXPECT_EQ(rd(STS, 2) & AcpiPm::TMR_STS, 0u);
    now_ns += 2'500'000'000; // past 2^23 ticks (about 2.34 s)
    EXPECT_EQ(rd(STS, 2) & AcpiPm::TMR_STS, AcpiPm::TMR_STS);
    wr(STS, 2, 0); // writing 0 clears nothing
    EXPECT_EQ(rd(STS, 2) & AcpiPm::TMR_STS, AcpiPm::TMR_STS);
    wr(STS, 2, AcpiPm::TMR_STS);
    EXPECT_EQ(rd(STS, 2) & AcpiPm::TMR_STS, 0u);
}

TEST_F(AcpiPmTest, PowerButtonRaisesSciOnlyWhenEnabledAndW1CLowersIt)
{
    pm.press_power_button();
    EXPECT_EQ(rd(STS, 2) & AcpiPm::PWRBTN_STS, AcpiPm::PWRBTN_STS);
    EXPECT_FALSE(sci->level);
    wr(EN, 2, AcpiPm::PWRBTN_EN);
    EXPECT_TRUE(sci->level);
    EXPECT_EQ(rd(EN, 2), AcpiPm::PWRBTN_EN);
    wr(STS + 1, 1, AcpiPm::PWRBTN_STS >> 8); // byte write of the high half
    EXPECT_FALSE(sci->level);
    EXPECT_EQ(rd(STS, 2) & AcpiPm::PWRBTN_STS, 0u);
    pm.press_power_button();
    EXPECT_TRUE(sci->level);
    wr(STS, 4, AcpiPm::PWRBTN_STS); // dword write covering STS and EN: EN rewritten as 0
    EXPECT_FALSE(sci->level);
    EXPECT_EQ(rd(EN, 2), 0u);
}

TEST_F(AcpiPmTest, Gpe0EnableReadsBackAndStatusIsW1C)
{
    wr(GPE_EN, 2, 0x1234);
    EXPECT_EQ(rd(GPE_EN, 2), 0x1234u);
    EXPECT_EQ(rd(GPE_STS, 2), 0u);
    wr(GPE_STS, 2, 0xffff);
    EXPECT_EQ(rd(GPE_STS, 2), 0u);
    EXPECT_FALSE(sci->level);
}

TEST_F(AcpiPmTest, OutOfBlockAndUnknownAccesses)
{
    EXPECT_EQ(rd(0x10, 1), 0xffu);
    EXPECT_EQ(rd(0x3e, 4), 0xffffffffu); // crosses the end of the block
    wr(0x3f, 2, 0xffff);
    wr(0x40, 1, 0xff);
    EXPECT_TRUE(sys.events.empty());
}

// A dword read samples the timer once: the clock advancing between the bytes of one access (another thread, a slow
// emulator) must not tear the value. Here the clock moves by 0x101 ticks on every sample, so bytes of different
// samples combine into a value the timer never had.
TEST(AcpiPmTimer, ADwordReadSamplesTheTimerOnce)
{
    struct NullIrq final : bus::IrqLine {
        void set_level(bool) override { }
    };
    struct NullSystem final : bus::SystemControl {
        void request(bus::SystemEvent, uint32_t) override { }
    };
    NullSystem sys;
    uint32_t tick = 0x1fc;
    bool first = true;
    std::vector<uint32_t> sampled; // the timer values the device could legitimately return
    auto ns_of = [](uint32_t ticks) { return (static_cast<int64_t>(ticks) * 1'000'000'000 + 3579544) / 3579545; };
    auto ticks_of = [](int64_t ns) {
        return static_cast<uint32_t>(((ns / 1'000'000'000) * 3579545 + (ns % 1'000'000'000) * 3579545 / 1'000'000'000) & 0xffffff);
    };
    AcpiPm pm(sys, std::make_shared<NullIrq>(), [&]() -> int64_t {
        if (first) { // the device's time origin
            first = false;
            return 0;
        }
        int64_t const t = ns_of(tick);
        sampled.push_back(ticks_of(t));
        tick += 0x101;
        return t;
    });
    uint8_t buf[4] {};
    pm.read(arch::x86::PM_TMR_OFFSET, buf);
    uint32_t const v = get_le32(buf);
    EXPECT_NE(std::find(sampled.begin(), sampled.end(), v), sampled.end()) << "torn read: " << std::hex << v;
}
