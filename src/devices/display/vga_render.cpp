// The renderer half of Vga (vga.h): the current mode to an Image.
#include <algorithm>

#include "devices/display/font.h"
#include "devices/display/vga.h"

namespace hako::devices::display {

namespace {
constexpr uint32_t BLANK_WIDTH = 640, BLANK_HEIGHT = 480; // what a monitor shows without a usable mode
constexpr uint32_t MAX_LEGACY_LINES = 2048;
constexpr uint32_t MIN_WIDTH = 160, MIN_HEIGHT = 100; // smaller: registers not (yet) programmed for a mode

uint32_t rgb(uint32_t r, uint32_t g, uint32_t b) { return (r << 16) | (g << 8) | b; }
uint8_t six_to_eight(uint8_t v)
{
    v &= 0x3f;
    return static_cast<uint8_t>((v << 2) | (v >> 4));
}
} // namespace

Image Vga::render() const
{
    std::lock_guard lock(m_lock);
    if (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED)
        return render_vbe_locked();
    // The attribute controller's palette address source bit blanks the screen while the palette is programmed;
    // the sequencer can switch the screen off.
    bool const blank = !(m_att_index & VGA_AR_ENABLE_DISPLAY) || (m_seq[VGA_SEQ_CLOCK_MODE] & VGA_SR01_SCREEN_OFF);
    Image img = (m_gfx[VGA_GFX_MISC] & 0x01) ? render_graphics_locked() : render_text_locked();
    if (img.width < MIN_WIDTH || img.height < MIN_HEIGHT)
        return Image(BLANK_WIDTH, BLANK_HEIGHT);
    if (blank)
        std::fill(img.pixels.begin(), img.pixels.end(), 0u);
    return img;
}

uint32_t Vga::dac_rgb_locked(uint8_t index) const
{
    size_t const i = size_t { static_cast<uint8_t>(index & m_pel_mask) } * 3;
    if (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC)
        return rgb(m_dac[i], m_dac[i + 1], m_dac[i + 2]);
    return rgb(six_to_eight(m_dac[i]), six_to_eight(m_dac[i + 1]), six_to_eight(m_dac[i + 2]));
}

uint32_t Vga::attribute_rgb_locked(uint8_t index) const
{
    uint8_t p = m_att[index & 0x0f] & 0x3f;
    uint8_t const page = m_att[VGA_ATC_COLOR_PAGE];
    if (m_att[VGA_ATC_MODE] & 0x80) // P54S: bits 5-4 from the colour select register
        p = static_cast<uint8_t>((p & 0x0f) | ((page & 0x03) << 4));
    p = static_cast<uint8_t>(p | ((page & 0x0c) << 4));
    return dac_rgb_locked(p);
}

uint32_t Vga::vertical_display_lines_locked() const
{
    uint8_t const ov = m_crt[VGA_CRTC_OVERFLOW];
    uint32_t const end = m_crt[VGA_CRTC_V_DISP_END] | ((ov & 0x02u) << 7) | ((ov & 0x40u) << 3);
    return std::min(end + 1, MAX_LEGACY_LINES);
}

Image Vga::render_text_locked() const
{
    uint32_t const cols = m_crt[VGA_CRTC_H_DISP] + 1u;
    uint32_t const cell_h = (m_crt[VGA_CRTC_MAX_SCAN] & 0x1fu) + 1;
    uint32_t const rows = vertical_display_lines_locked() / cell_h;
    uint32_t const cell_w = (m_seq[VGA_SEQ_CLOCK_MODE] & VGA_SR01_CHAR_CLK_8DOTS) ? 8 : 9;
    Image img(cols * cell_w, rows * cell_h);
    if (rows == 0)
        return img;
    bool const tall = cell_h > 8;
    auto const font = tall ? font_8x16().data() : font_8x8().data();
    uint32_t const font_h = tall ? 16 : 8;
    uint32_t const pitch = m_crt[VGA_CRTC_OFFSET] * 2u;
    uint32_t const start = (uint32_t { m_crt[VGA_CRTC_START_HI] } << 8) | m_crt[VGA_CRTC_START_LO];
    uint32_t const cursor = ((uint32_t { m_crt[VGA_CRTC_CURSOR_HI] } << 8) | m_crt[VGA_CRTC_CURSOR_LO]) & (PLANE_SIZE - 1);
    bool const cursor_on = !(m_crt[VGA_CRTC_CURSOR_START] & 0x20);
    uint32_t const cursor_first = m_crt[VGA_CRTC_CURSOR_START] & 0x1fu;
    uint32_t const cursor_last = std::min<uint32_t>(m_crt[VGA_CRTC_CURSOR_END] & 0x1fu, cell_h - 1);
    bool const blink_enabled = m_att[VGA_ATC_MODE] & 0x08;
    bool const line_graphics = m_att[VGA_ATC_MODE] & 0x04;

    for (uint32_t row = 0; row < rows; ++row) {
        for (uint32_t col = 0; col < cols; ++col) {
            uint32_t const addr = (start + row * pitch + col) & (PLANE_SIZE - 1);
            uint8_t const ch = vram_at(size_t { addr } * 4);
            uint8_t const attr = vram_at(size_t { addr } * 4 + 1);
            uint32_t const fg = attribute_rgb_locked(attr & 0x0f);
            uint32_t const bg = attribute_rgb_locked(blink_enabled ? (attr >> 4) & 0x07 : attr >> 4);
            uint8_t const* glyph = font + size_t { ch } * font_h;
            bool const ninth_repeats = cell_w == 9 && line_graphics && ch >= 0xc0 && ch <= 0xdf;
            for (uint32_t y = 0; y < cell_h; ++y) {
                uint8_t const bits = y < font_h ? glyph[y] : 0;
                bool const cursor_row = cursor_on && addr == cursor && y >= cursor_first && y <= cursor_last;
                uint32_t const py = row * cell_h + y;
                for (uint32_t x = 0; x < cell_w; ++x) {
                    bool on = x < 8 ? (bits >> (7 - x)) & 1 : (ninth_repeats && (bits & 1));
                    img.at(col * cell_w + x, py) = (on || cursor_row) ? fg : bg;
                }
            }
        }
    }
    return img;
}

Image Vga::render_graphics_locked() const
{
    bool const colour256 = m_gfx[VGA_GFX_MODE] & 0x40;
    uint32_t const char_clocks = m_crt[VGA_CRTC_H_DISP] + 1u;
    uint32_t const width = colour256 ? char_clocks * 4 : char_clocks * 8;
    uint32_t scan = (m_crt[VGA_CRTC_MAX_SCAN] & 0x1fu) + 1;
    if (m_crt[VGA_CRTC_MAX_SCAN] & 0x80)
        scan *= 2;
    uint32_t const height = vertical_display_lines_locked() / scan;
    Image img(width, height);
    uint32_t const pitch = m_crt[VGA_CRTC_OFFSET] * 2u;
    uint32_t const start = (uint32_t { m_crt[VGA_CRTC_START_HI] } << 8) | m_crt[VGA_CRTC_START_LO];
    uint8_t const plane_enable = m_att[VGA_ATC_PLANE_ENABLE] & 0x0f;
    for (uint32_t y = 0; y < height; ++y) {
        uint32_t const line = start + y * pitch;
        for (uint32_t x = 0; x < width; ++x) {
            if (colour256) {
                // Chain 4: four consecutive pixels are the four planes of one plane address.
                size_t const index = (size_t { line } * 4 + x) & (size_t { PLANE_SIZE } * 4 - 1);
                img.at(x, y) = dac_rgb_locked(vram_at(index));
                continue;
            }
            size_t const addr = (line + x / 8) & (PLANE_SIZE - 1);
            unsigned const shift = 7 - (x & 7);
            uint8_t colour = 0;
            for (unsigned p = 0; p < 4; ++p)
                colour = static_cast<uint8_t>(colour | (((vram_at(addr * 4 + p) >> shift) & 1) << p));
            img.at(x, y) = attribute_rgb_locked(colour & plane_enable);
        }
    }
    return img;
}

Image Vga::render_vbe_locked() const
{
    uint32_t const width = m_vbe[VBE_DISPI_INDEX_XRES];
    uint32_t const height = m_vbe[VBE_DISPI_INDEX_YRES];
    uint32_t const bpp = m_vbe[VBE_DISPI_INDEX_BPP];
    size_t const bytes_pp = (bpp + 7) / 8;
    Image img(width, height);
    size_t const origin = size_t { m_vbe[VBE_DISPI_INDEX_Y_OFFSET] } * m_vbe_line_offset
        + size_t { m_vbe[VBE_DISPI_INDEX_X_OFFSET] } * bytes_pp;
    for (uint32_t y = 0; y < height; ++y) {
        size_t const line = origin + size_t { y } * m_vbe_line_offset;
        if (line + width * bytes_pp > m_bytes.size())
            break; // vbe_fixup keeps this from happening; stay inside video memory regardless
        uint8_t const* p = m_bytes.data() + line;
        for (uint32_t x = 0; x < width; ++x, p += bytes_pp) {
            uint32_t px = 0;
            switch (bpp) {
            case 8:
                px = dac_rgb_locked(p[0]);
                break;
            case 15: {
                uint32_t const v = p[0] | uint32_t { p[1] } << 8;
                auto five = [](uint32_t c) { return ((c & 0x1f) << 3) | ((c & 0x1f) >> 2); };
                px = rgb(five(v >> 10), five(v >> 5), five(v));
                break;
            }
            case 16: {
                uint32_t const v = p[0] | uint32_t { p[1] } << 8;
                auto five = [](uint32_t c) { return ((c & 0x1f) << 3) | ((c & 0x1f) >> 2); };
                uint32_t const g = (v >> 5) & 0x3f;
                px = rgb(five(v >> 11), (g << 2) | (g >> 4), five(v));
                break;
            }
            default: // 24 and 32: blue, green, red (, unused)
                px = rgb(p[2], p[1], p[0]);
                break;
            }
            img.at(x, y) = px;
        }
    }
    return img;
}

} // namespace hako::devices::display
