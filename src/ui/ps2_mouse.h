// Ps2MouseEncoder: VNC pointer events (absolute position, button mask) to PS/2 mouse stream packets.
//
// A standard PS/2 mouse (ID 0x00) reports 3-byte packets: byte 0 = Y overflow (7), X overflow (6), Y sign (5),
// X sign (4), always 1 (3), middle (2), right (1), left (0); byte 1 = X movement, byte 2 = Y movement, each the low
// 8 bits of a 9-bit two's complement value whose sign is in byte 0. Y grows upwards, unlike screen coordinates.
// The encoder turns each absolute position into the movement since the last one. A movement beyond -256..255 is
// split into several packets (the first carry the button state too), at most MAX_PACKETS per event; whatever still
// does not fit is clipped, and the last packet then has the overflow bit set for that axis, as a mouse does.
// VNC buttons 1-3 are left, middle, right; 4-7 (wheel) have no place in a plain PS/2 packet and are dropped.
// Not done: IntelliMouse wheel packets, the guest's resolution and scaling settings (movement is 1:1 in pixels).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace hako::ui {

class Ps2MouseEncoder final {
public:
    static constexpr int MAX_PACKETS = 8;
    static constexpr int MAX_DELTA = 255;   // a packet's largest movement each way, kept symmetric
    static constexpr uint8_t BUTTON_LEFT = 1 << 0;
    static constexpr uint8_t BUTTON_RIGHT = 1 << 1;
    static constexpr uint8_t BUTTON_MIDDLE = 1 << 2;
    static constexpr uint8_t ALWAYS_ONE = 1 << 3;
    static constexpr uint8_t X_SIGN = 1 << 4;
    static constexpr uint8_t Y_SIGN = 1 << 5;
    static constexpr uint8_t X_OVERFLOW = 1 << 6;
    static constexpr uint8_t Y_OVERFLOW = 1 << 7;

    /// The packets for a pointer event at (x, y) with VNC's button mask (bit 0 left, 1 middle, 2 right). The first
    /// event only sets the position (and reports buttons if any are down). Nothing if nothing changed.
    std::vector<uint8_t> pointer(int x, int y, uint8_t vnc_buttons);

    /// One packet (exposed for tests): dx and dy are clipped to -256..255 with the overflow bits set if they did not fit.
    static std::array<uint8_t, 3> packet(int dx, int dy, uint8_t ps2_buttons);
    /// VNC's button mask to byte 0's button bits.
    static uint8_t ps2_buttons(uint8_t vnc_buttons);

    /// Forget the last position (the next event only sets it), e.g. when a client connects.
    void reset() { m_last.reset(); m_buttons = 0; }

private:
    struct Position {
        int x;
        int y;
    };
    std::optional<Position> m_last;
    uint8_t m_buttons { 0 };
};

} // namespace hako::ui
