#include <gtest/gtest.h>

#include <vector>

#include "devices/legacy/serial.h"

using namespace hako;
using hako::devices::legacy::Serial;

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

constexpr uint64_t THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

struct SerialTest : ::testing::Test {
    std::shared_ptr<FakeIrq> irq = std::make_shared<FakeIrq>();
    std::vector<uint8_t> out;
    Serial uart { irq, [this](std::span<uint8_t const> b) { out.insert(out.end(), b.begin(), b.end()); } };

    uint8_t rd(uint64_t off)
    {
        uint8_t b = 0;
        uart.read(off, std::span<uint8_t>(&b, 1));
        return b;
    }
    void wr(uint64_t off, uint8_t v) { uart.write(off, std::span<uint8_t const>(&v, 1)); }
    size_t rx(std::vector<uint8_t> const& v) { return uart.receive(v); }
};

} // namespace

TEST_F(SerialTest, TransmitGoesToOutputAndLsrShowsEmpty)
{
    wr(THR, 'h');
    wr(THR, 'i');
    EXPECT_EQ(out, (std::vector<uint8_t> { 'h', 'i' }));
    EXPECT_EQ(rd(LSR) & 0x60, 0x60); // THRE | TEMT
    EXPECT_EQ(rd(LSR) & 0x01, 0);    // no data
}

TEST_F(SerialTest, DlabSelectsDivisorLatch)
{
    wr(IER, 0x05);
    wr(LCR, 0x83);
    wr(0, 0x01);
    wr(1, 0x02);
    EXPECT_EQ(rd(0), 0x01);
    EXPECT_EQ(rd(1), 0x02);
    EXPECT_TRUE(out.empty()); // DLL write is not a transmit
    wr(LCR, 0x03);
    EXPECT_EQ(rd(IER), 0x05);
    EXPECT_EQ(rd(LCR), 0x03);
}

TEST_F(SerialTest, ScratchRegister)
{
    wr(SCR, 0x5a);
    EXPECT_EQ(rd(SCR), 0x5a);
}

TEST_F(SerialTest, ReceiveWithoutFifoTakesOneByte)
{
    EXPECT_TRUE(uart.can_receive());
    EXPECT_EQ(rx({ 1, 2, 3 }), 1u);
    EXPECT_FALSE(uart.can_receive());
    EXPECT_EQ(rx({ 4 }), 0u);
    EXPECT_EQ(rd(LSR) & 0x01, 1);
    EXPECT_EQ(rd(THR), 1);
    EXPECT_EQ(rd(LSR) & 0x01, 0);
    EXPECT_TRUE(uart.can_receive());
}

TEST_F(SerialTest, ReceiveWithFifoIsBoundedTo16)
{
    wr(FCR, 0x01);
    EXPECT_EQ(rd(IIR) & 0xc0, 0xc0);
    std::vector<uint8_t> many(40, 0x41);
    EXPECT_EQ(uart.receive(many), 16u);
    EXPECT_EQ(uart.receive(many), 0u);
    EXPECT_EQ(uart.rx_queued(), 16u);
    for (int i = 0; i < 16; ++i)
        EXPECT_EQ(rd(THR), 0x41);
    EXPECT_EQ(rd(LSR) & 0x01, 0);
    // Disabling the FIFO clears it and reports no FIFO in IIR.
    EXPECT_EQ(rx({ 1, 2 }), 2u);
    wr(FCR, 0x00);
    EXPECT_EQ(uart.rx_queued(), 0u);
    EXPECT_EQ(rd(IIR) & 0xc0, 0);
}

TEST_F(SerialTest, FifoTriggerLevelAndCharacterTimeout)
{
    wr(MCR, 0x08); // OUT2
    wr(FCR, 0x81); // FIFO on, trigger 8
    wr(IER, 0x01); // ERBFI
    EXPECT_EQ(rd(IIR), 0xc1);
    EXPECT_FALSE(irq->level);
    EXPECT_EQ(rx({ 1, 2, 3 }), 3u);
    EXPECT_EQ(rd(IIR), 0xcc); // below trigger: character timeout
    EXPECT_TRUE(irq->level);
    EXPECT_EQ(rx({ 4, 5, 6, 7, 8 }), 5u);
    EXPECT_EQ(rd(IIR), 0xc4); // at trigger: data available
    for (int i = 0; i < 8; ++i)
        rd(THR);
    EXPECT_EQ(rd(IIR), 0xc1);
    EXPECT_FALSE(irq->level);
}

TEST_F(SerialTest, ThreInterruptSetOnEnableClearedByIirReadAndRaisedByWrite)
{
    wr(MCR, 0x08);
    wr(IER, 0x02);
    EXPECT_TRUE(irq->level);
    EXPECT_EQ(rd(IIR), 0x02);
    EXPECT_FALSE(irq->level); // reading IIR with THRE as source clears it
    EXPECT_EQ(rd(IIR), 0x01);
    wr(THR, 'x');
    EXPECT_TRUE(irq->level);
    EXPECT_EQ(rd(IIR), 0x02);
    EXPECT_EQ(rd(IIR), 0x01);
}

TEST_F(SerialTest, ReceiveDataOutranksThre)
{
    wr(MCR, 0x08);
    wr(IER, 0x03);
    rx({ 9 });
    EXPECT_EQ(rd(IIR), 0x04);
    EXPECT_EQ(rd(THR), 9);
    EXPECT_EQ(rd(IIR), 0x02); // THRE still pending underneath
    EXPECT_EQ(rd(IIR), 0x01);
}

TEST_F(SerialTest, Out2GatesTheIrqLine)
{
    wr(IER, 0x01);
    rx({ 1 });
    EXPECT_EQ(rd(IIR), 0x04);
    EXPECT_FALSE(irq->level);
    EXPECT_EQ(irq->changes, 0);
    wr(MCR, 0x08);
    EXPECT_TRUE(irq->level);
    wr(MCR, 0x00);
    EXPECT_FALSE(irq->level);
    EXPECT_EQ(irq->changes, 2); // only changes are driven
}

TEST_F(SerialTest, LoopbackEchoesAndReflectsModemLines)
{
    wr(MCR, 0x10 | 0x01 | 0x02); // LOOP, DTR, RTS
    EXPECT_EQ(rd(MSR) & 0xf0, 0x30); // DSR, CTS
    wr(THR, 0x55);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(rd(LSR) & 0x01, 1);
    EXPECT_EQ(rd(THR), 0x55);
    EXPECT_EQ(uart.receive(std::vector<uint8_t> { 1 }), 0u); // serial input disconnected
    EXPECT_FALSE(uart.can_receive());
    wr(MCR, 0x10 | 0x04 | 0x08); // LOOP, OUT1, OUT2
    uint8_t const msr = rd(MSR);
    EXPECT_EQ(msr & 0xf0, 0xc0); // RI, DCD
    EXPECT_EQ(msr & 0x0b, 0x0b); // DCTS, DDSR, DDCD changed
    EXPECT_EQ(rd(MSR) & 0x0f, 0);  // deltas clear on read
    wr(MCR, 0x00);
    EXPECT_EQ(rd(MSR) & 0xf0, 0xb0); // back to a connected terminal
}

TEST_F(SerialTest, OverrunInLoopbackRaisesLineStatus)
{
    wr(MCR, 0x18);
    wr(IER, 0x04);
    wr(THR, 1);
    wr(THR, 2); // no FIFO: second byte overruns
    EXPECT_EQ(rd(IIR), 0x06);
    EXPECT_TRUE(irq->level);
    EXPECT_EQ(rd(LSR) & 0x02, 0x02);
    EXPECT_EQ(rd(LSR) & 0x02, 0);
    EXPECT_EQ(rd(IIR), 0x01);
    EXPECT_EQ(rd(THR), 1);
}

TEST_F(SerialTest, BadAccessesAreAbsorbed)
{
    uint8_t wide[2] { 0, 0 };
    uart.read(0, wide);
    EXPECT_EQ(wide[0], 0xff);
    EXPECT_EQ(wide[1], 0xff);
    EXPECT_EQ(rd(8), 0xff);
    wr(9, 1);
    uart.write(0, std::span<uint8_t const>(wide, 2));
    EXPECT_TRUE(out.empty());
}
