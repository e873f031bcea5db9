#include <gtest/gtest.h>

#include <vector>

#include "devices/legacy/i8042.h"
#include "fake_system.h"

using namespace hako;
using hako::devices::legacy::I8042;
using hako::devices::legacy::I8042Port;

namespace {

class FakeIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        if (asserted && !level)
            ++edges;
        level = asserted;
    }
    bool level { false };
    int edges { 0 };
};

using FakeSystem = devices::legacy::test::RecordingSystem;

struct I8042Test : ::testing::Test {
    FakeSystem sys;
    std::shared_ptr<FakeIrq> kbd_irq = std::make_shared<FakeIrq>();
    std::shared_ptr<FakeIrq> aux_irq = std::make_shared<FakeIrq>();
    std::shared_ptr<I8042> ctl = std::make_shared<I8042>(sys, kbd_irq, aux_irq);
    I8042Port data_port { ctl, I8042Port::Kind::Data };
    I8042Port cmd_port { ctl, I8042Port::Kind::Command };

    uint8_t status()
    {
        uint8_t v = 0;
        cmd_port.read(0, std::span<uint8_t>(&v, 1));
        return v;
    }
    uint8_t data()
    {
        uint8_t v = 0;
        data_port.read(0, std::span<uint8_t>(&v, 1));
        return v;
    }
    void command(uint8_t v) { cmd_port.write(0, std::span<uint8_t const>(&v, 1)); }
    void send(uint8_t v) { data_port.write(0, std::span<uint8_t const>(&v, 1)); }
    // Reads everything in the output buffer.
    std::vector<uint8_t> drain()
    {
        std::vector<uint8_t> out;
        for (int i = 0; i < 300 && (status() & I8042::STATUS_OBF); ++i)
            out.push_back(data());
        return out;
    }
};

using Bytes = std::vector<uint8_t>;

} // namespace

TEST_F(I8042Test, SelfTestAndInterfaceTests)
{
    EXPECT_EQ(status() & I8042::STATUS_OBF, 0);
    command(0xaa);
    EXPECT_EQ(status() & (I8042::STATUS_OBF | I8042::STATUS_A2 | I8042::STATUS_SYS),
        I8042::STATUS_OBF | I8042::STATUS_A2 | I8042::STATUS_SYS);
    EXPECT_EQ(drain(), Bytes { 0x55 });
    command(0xab);
    command(0xa9);
    EXPECT_EQ(drain(), (Bytes { 0x00, 0x00 }));
}

TEST_F(I8042Test, CommandByteReadWrite)
{
    command(0x20);
    EXPECT_EQ(drain(), Bytes { 0x47 });
    EXPECT_TRUE(ctl->translating());
    command(0x60);
    send(0x00); // no IRQs, no translation, SYS clear
    EXPECT_EQ(status() & I8042::STATUS_A2, 0);
    EXPECT_EQ(status() & I8042::STATUS_SYS, 0);
    command(0x20);
    EXPECT_EQ(drain(), Bytes { 0x00 });
    EXPECT_FALSE(ctl->translating());
    EXPECT_FALSE(kbd_irq->level); // IRQ1 disabled: the reply did not raise it
    command(0xad);
    command(0xa7);
    command(0x20);
    EXPECT_EQ(drain(), Bytes { 0x30 });
    command(0xae);
    command(0xa8);
    command(0x20);
    EXPECT_EQ(drain(), Bytes { 0x00 });
    command(0x65); // controller RAM byte 5
    send(0x99);
    command(0x25);
    EXPECT_EQ(drain(), Bytes { 0x99 });
}

TEST_F(I8042Test, KeyboardResetAndIdentify)
{
    send(0xff);
    EXPECT_TRUE(kbd_irq->level);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xaa }));
    EXPECT_FALSE(kbd_irq->level);
    EXPECT_EQ(kbd_irq->edges, 2); // one edge per byte
    send(0xf2);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xab, 0x41 })); // translated
    command(0x60);
    send(0x07);
    send(0xf2);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xab, 0x83 }));
}

TEST_F(I8042Test, KeyboardParameterCommands)
{
    send(0xf0);
    send(0x00);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xfa, 0x41 })); // set 2, translated form
    send(0xf0);
    send(0x01);
    EXPECT_EQ(ctl->scancode_set(), 1);
    send(0xf0);
    send(0x09);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xfa, 0xfa, 0xfe }));
    send(0xed);
    send(0x07);
    send(0xf3);
    send(0x20);
    send(0xee);
    send(0x42); // unknown
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xfa, 0xfa, 0xfa, 0xee, 0xfe }));
}

TEST_F(I8042Test, KeyboardDataAndDisable)
{
    std::vector<uint8_t> const keys { 0x1e, 0x9e };
    ctl->push_keyboard_bytes(keys);
    EXPECT_TRUE(kbd_irq->level);
    EXPECT_EQ(status() & I8042::STATUS_AUXB, 0);
    EXPECT_EQ(drain(), keys);
    send(0xf5); // scanning off: host keys dropped
    drain();
    ctl->push_keyboard_bytes(keys);
    EXPECT_EQ(drain(), Bytes {});
    send(0xf4);
    drain();
    command(0xad); // interface disabled: keys wait
    ctl->push_keyboard_bytes(keys);
    EXPECT_EQ(status() & I8042::STATUS_OBF, 0);
    command(0xae);
    EXPECT_EQ(drain(), keys);
}

TEST_F(I8042Test, QueuesAreBounded)
{
    std::vector<uint8_t> const many(500, 0x1e);
    ctl->push_keyboard_bytes(many);
    EXPECT_LE(ctl->queued(), I8042::QUEUE_LIMIT);
    EXPECT_EQ(drain().size(), I8042::QUEUE_LIMIT); // the rest were dropped
}

TEST_F(I8042Test, MouseCommandsThroughD4)
{
    command(0xd4);
    send(0xff);
    EXPECT_TRUE(aux_irq->level);
    EXPECT_FALSE(kbd_irq->level);
    EXPECT_EQ(status() & I8042::STATUS_AUXB, I8042::STATUS_AUXB);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xaa, 0x00 }));
    EXPECT_FALSE(aux_irq->level);
    command(0xd4);
    send(0xf2);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0x00 }));
    command(0xd4);
    send(0xf3);
    command(0xd4);
    send(40);
    command(0xd4);
    send(0xe8);
    command(0xd4);
    send(3);
    command(0xd4);
    send(0xe7);
    command(0xd4);
    send(0xf4);
    command(0xd4);
    send(0xe9);
    EXPECT_EQ(drain(), (Bytes { 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x30, 3, 40 }));
    std::vector<uint8_t> const packet { 0x08, 0x01, 0x02 };
    ctl->push_mouse_bytes(packet);
    EXPECT_EQ(drain(), packet);
}

TEST_F(I8042Test, MouseDataNeedsStreamingAndAuxIrqEnable)
{
    std::vector<uint8_t> const packet { 0x08, 0x01, 0x02 };
    ctl->push_mouse_bytes(packet); // not enabled yet: dropped
    EXPECT_EQ(drain(), Bytes {});
    command(0xd4);
    send(0xf4);
    drain();
    command(0x60);
    send(0x45); // IRQ12 off
    ctl->push_mouse_bytes(packet);
    EXPECT_FALSE(aux_irq->level);
    EXPECT_EQ(status() & (I8042::STATUS_OBF | I8042::STATUS_AUXB), I8042::STATUS_OBF | I8042::STATUS_AUXB);
}

TEST_F(I8042Test, WriteOutputBuffersD2D3)
{
    command(0xd2);
    send(0x12);
    EXPECT_TRUE(kbd_irq->level);
    EXPECT_EQ(drain(), Bytes { 0x12 });
    command(0xd3);
    send(0x34);
    EXPECT_TRUE(aux_irq->level);
    EXPECT_EQ(status() & I8042::STATUS_AUXB, I8042::STATUS_AUXB);
    EXPECT_EQ(drain(), Bytes { 0x34 });
}

TEST_F(I8042Test, ResetViaPulseAndOutputPort)
{
    command(0xff); // pulse nothing
    EXPECT_TRUE(sys.events.empty());
    command(0xfe);
    ASSERT_EQ(sys.events.size(), 1u);
    EXPECT_EQ(sys.events[0], bus::SystemEvent::Reset);
    command(0xd0);
    EXPECT_EQ(drain(), Bytes { 0x03 });
    command(0xd1);
    send(0x03); // A20 on, reset high: nothing
    EXPECT_EQ(sys.events.size(), 1u);
    command(0xd1);
    send(0x02);
    EXPECT_EQ(sys.events.size(), 2u);
}

TEST_F(I8042Test, DirectDeviceOffsetsAndBadAccesses)
{
    uint8_t v = 0xaa;
    ctl->write(4, std::span<uint8_t const>(&v, 1));
    ctl->read(4, std::span<uint8_t>(&v, 1));
    EXPECT_EQ(v & I8042::STATUS_OBF, I8042::STATUS_OBF);
    ctl->read(0, std::span<uint8_t>(&v, 1));
    EXPECT_EQ(v, 0x55);
    ctl->read(1, std::span<uint8_t>(&v, 1));
    EXPECT_EQ(v, 0xff);
    uint8_t wide[2] {};
    data_port.read(0, wide);
    EXPECT_EQ(wide[0], 0xff);
    cmd_port.write(0, std::span<uint8_t const>(wide, 2)); // 0x00 0x00 as a word: ignored, not a command
    EXPECT_TRUE(sys.events.empty());
}

TEST_F(I8042Test, RoomTellsHowManyBytesTheQueuesTake)
{
    EXPECT_EQ(ctl->keyboard_room(), I8042::QUEUE_LIMIT);
    EXPECT_EQ(ctl->mouse_room(), I8042::QUEUE_LIMIT);
    std::vector<uint8_t> const ten(10, 0x1e);
    ctl->push_keyboard_bytes(ten); // one goes to the output buffer, nine wait
    EXPECT_EQ(ctl->keyboard_room(), I8042::QUEUE_LIMIT - 9);
    std::vector<uint8_t> const fill(ctl->keyboard_room(), 0x9e);
    ctl->push_keyboard_bytes(fill);
    EXPECT_EQ(ctl->keyboard_room(), 0u);
    EXPECT_EQ(drain().size(), 1 + I8042::QUEUE_LIMIT); // nothing pushed within the room was dropped
    EXPECT_EQ(ctl->keyboard_room(), I8042::QUEUE_LIMIT);
    command(0xd4);
    send(0xf4);
    drain();
    std::vector<uint8_t> const packets(6, 0x08);
    ctl->push_mouse_bytes(packets);
    EXPECT_EQ(ctl->mouse_room(), I8042::QUEUE_LIMIT - 5);
}
