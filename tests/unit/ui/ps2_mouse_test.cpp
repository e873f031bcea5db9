#include "ui/ps2_mouse.h"

#include <gtest/gtest.h>

namespace hako::ui {
namespace {

using V = std::vector<uint8_t>;
using E = Ps2MouseEncoder;

// Decodes a packet's 9-bit movement.
int decode(uint8_t head, uint8_t low, uint8_t sign_bit)
{
    return (head & sign_bit) ? static_cast<int>(low) - 256 : static_cast<int>(low);
}

TEST(Ps2Mouse, PacketEncoding)
{
    EXPECT_EQ(E::packet(0, 0, 0), (std::array<uint8_t, 3> { 0x08, 0, 0 }));
    EXPECT_EQ(E::packet(5, 3, E::BUTTON_LEFT), (std::array<uint8_t, 3> { 0x09, 5, 3 }));
    EXPECT_EQ(E::packet(-1, -2, 0), (std::array<uint8_t, 3> { 0x38, 0xff, 0xfe }));
    EXPECT_EQ(E::packet(255, -256, 0), (std::array<uint8_t, 3> { 0x28, 0xff, 0x00 }));
    // Beyond 9 bits: clipped, with the overflow bits.
    EXPECT_EQ(E::packet(300, 0, 0), (std::array<uint8_t, 3> { 0x48, 0xff, 0 }));
    EXPECT_EQ(E::packet(0, -1000, 0), (std::array<uint8_t, 3> { 0xa8, 0, 0x00 }));
    EXPECT_EQ(E::packet(-257, 256, 0), (std::array<uint8_t, 3> { 0xd8, 0x00, 0xff }));
    for (int d = -256; d <= 255; ++d) {
        auto const p = E::packet(d, -d - 1, 0);
        EXPECT_EQ(decode(p[0], p[1], E::X_SIGN), d);
        EXPECT_EQ(decode(p[0], p[2], E::Y_SIGN), -d - 1);
        EXPECT_EQ(p[0] & (E::X_OVERFLOW | E::Y_OVERFLOW), 0);
    }
}

TEST(Ps2Mouse, Buttons)
{
    EXPECT_EQ(E::ps2_buttons(0x01), E::BUTTON_LEFT);
    EXPECT_EQ(E::ps2_buttons(0x02), E::BUTTON_MIDDLE);
    EXPECT_EQ(E::ps2_buttons(0x04), E::BUTTON_RIGHT);
    EXPECT_EQ(E::ps2_buttons(0x07), E::BUTTON_LEFT | E::BUTTON_MIDDLE | E::BUTTON_RIGHT);
    EXPECT_EQ(E::ps2_buttons(0xf8), 0); // wheel and higher buttons: no place in a plain PS/2 packet
}

TEST(Ps2Mouse, AbsoluteToRelative)
{
    E m;
    EXPECT_TRUE(m.pointer(100, 100, 0).empty()); // the first event sets the position
    EXPECT_EQ(m.pointer(110, 90, 0), V({ 0x08, 10, 10 })); // right and up: both positive
    EXPECT_EQ(m.pointer(105, 95, 0), V({ 0x38, 0xfb, 0xfb })); // left and down: both negative
    EXPECT_TRUE(m.pointer(105, 95, 0).empty()); // nothing changed
    EXPECT_EQ(m.pointer(105, 95, 1), V({ 0x09, 0, 0 })); // a press without movement
    EXPECT_EQ(m.pointer(105, 95, 0), V({ 0x08, 0, 0 })); // and its release
    m.reset();
    EXPECT_EQ(m.pointer(0, 0, 4), V({ 0x0a, 0, 0 })); // first event with a button down reports it
}

TEST(Ps2Mouse, BigMovesAreSplit)
{
    E m;
    m.pointer(0, 0, 0);
    auto const out = m.pointer(600, 0, 0);
    ASSERT_EQ(out.size(), 9u);
    int total = 0;
    for (size_t i = 0; i < out.size(); i += 3) {
        EXPECT_EQ(out[i] & (E::X_OVERFLOW | E::Y_OVERFLOW), 0);
        total += decode(out[i], out[i + 1], E::X_SIGN);
    }
    EXPECT_EQ(total, 600);
    // 65535 pixels at once: MAX_PACKETS packets, the last clipped with the overflow bit.
    m.reset();
    m.pointer(0, 65535, 0);
    auto const far = m.pointer(65535, 0, 1);
    ASSERT_EQ(far.size(), 3u * E::MAX_PACKETS);
    for (size_t i = 0; i + 3 < far.size(); i += 3) {
        EXPECT_EQ(far[i] & (E::X_OVERFLOW | E::Y_OVERFLOW), 0);
        EXPECT_EQ(far[i] & E::BUTTON_LEFT, E::BUTTON_LEFT);
    }
    EXPECT_EQ(far[far.size() - 3] & (E::X_OVERFLOW | E::Y_OVERFLOW), E::X_OVERFLOW | E::Y_OVERFLOW);
}

} // namespace
} // namespace hako::ui
