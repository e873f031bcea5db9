#include "ui/ps2_mouse.h"

#include <algorithm>
#include <cstdlib>

namespace hako::ui {

uint8_t Ps2MouseEncoder::ps2_buttons(uint8_t vnc_buttons)
{
    uint8_t b = 0;
    if (vnc_buttons & 0x01)
        b |= BUTTON_LEFT;
    if (vnc_buttons & 0x02)
        b |= BUTTON_MIDDLE;
    if (vnc_buttons & 0x04)
        b |= BUTTON_RIGHT;
    return b;
}

std::array<uint8_t, 3> Ps2MouseEncoder::packet(int dx, int dy, uint8_t ps2_buttons)
{
    uint8_t head = static_cast<uint8_t>(ALWAYS_ONE | (ps2_buttons & (BUTTON_LEFT | BUTTON_RIGHT | BUTTON_MIDDLE)));
    // The 9-bit range is -256..255.
    auto clip = [&head](int v, uint8_t overflow) {
        if (v > 255 || v < -256) {
            head |= overflow;
            v = std::clamp(v, -256, 255);
        }
        return v;
    };
    dx = clip(dx, X_OVERFLOW);
    dy = clip(dy, Y_OVERFLOW);
    if (dx < 0)
        head |= X_SIGN;
    if (dy < 0)
        head |= Y_SIGN;
    return { head, static_cast<uint8_t>(dx & 0xff), static_cast<uint8_t>(dy & 0xff) };
}

std::vector<uint8_t> Ps2MouseEncoder::pointer(int x, int y, uint8_t vnc_buttons)
{
    uint8_t const buttons = ps2_buttons(vnc_buttons);
    std::vector<uint8_t> out;
    if (!m_last) {
        m_last = Position { x, y };
        if (buttons != m_buttons) {
            m_buttons = buttons;
            auto const p = packet(0, 0, buttons);
            out.assign(p.begin(), p.end());
        }
        return out;
    }
    // Positions come from a 16-bit field, so the differences fit an int with room to spare.
    int dx = x - m_last->x;
    int dy = m_last->y - y; // PS/2's Y axis points up
    m_last = Position { x, y };
    if (dx == 0 && dy == 0 && buttons == m_buttons)
        return out;
    m_buttons = buttons;
    for (int i = 0; i < MAX_PACKETS; ++i) {
        bool const last = i == MAX_PACKETS - 1;
        int const px = last ? dx : std::clamp(dx, -MAX_DELTA, MAX_DELTA);
        int const py = last ? dy : std::clamp(dy, -MAX_DELTA, MAX_DELTA);
        auto const p = packet(px, py, buttons);
        out.insert(out.end(), p.begin(), p.end());
        dx -= px;
        dy -= py;
        if (dx == 0 && dy == 0)
            break;
    }
    return out;
}

} // namespace hako::ui
