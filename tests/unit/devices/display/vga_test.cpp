#include <gtest/gtest.h>

#include <png.h>

#include "devices/display/font.h"
#include "devices/display/png.h"
#include "devices/display/std_vga.h"
#include "devices/display/vga.h"
#include "../pci/pci_test_util.h"

using namespace hako;
using namespace hako::devices::display;

namespace {

std::unique_ptr<Vga> make(PowerOnMode mode = PowerOnMode::Text80x25)
{
    auto v = Vga::create(mode);
    EXPECT_TRUE(v.has_value());
    return std::move(*v);
}

void reg(Vga& v, uint16_t index_port, uint8_t index, uint8_t value)
{
    v.port_write(index_port, index);
    v.port_write(static_cast<uint16_t>(index_port + 1), value);
}

uint8_t reg_read(Vga& v, uint16_t index_port, uint8_t index)
{
    v.port_write(index_port, index);
    return v.port_read(static_cast<uint16_t>(index_port + 1));
}

// The text page at 0xB8000: character and attribute of cell i.
void put_cell(Vga& v, uint32_t i, uint8_t ch, uint8_t attr)
{
    v.window_write(0x18000 + 2 * i, ch);
    v.window_write(0x18000 + 2 * i + 1, attr);
}

// The CGA/EGA colours of mode 3, written out independently of the DAC programming: 0x2A and 0x15 in 6-bit DAC units
// are 0xAA and 0x55 in 8 bits.
constexpr uint32_t EGA[16] = { 0x000000, 0x0000aa, 0x00aa00, 0x00aaaa, 0xaa0000, 0xaa00aa, 0xaa5500, 0xaaaaaa,
    0x555555, 0x5555ff, 0x55ff55, 0x55ffff, 0xff5555, 0xff55ff, 0xffff55, 0xffffff };

void dispi(Vga& v, uint16_t index, uint16_t value) { v.dispi_write(index, value); }

// Planar mode: 16-colour graphics (mode 12h's memory set-up).
void planar_mode(Vga& v)
{
    reg(v, VGA_SEQ_I, VGA_SEQ_MEMORY_MODE, 0x06); // odd/even off, no chain 4
    reg(v, VGA_SEQ_I, VGA_SEQ_PLANE_WRITE, 0x0f);
    reg(v, VGA_GFX_I, VGA_GFX_MODE, 0x00);
    reg(v, VGA_GFX_I, VGA_GFX_MISC, 0x05); // graphics, 0xA0000 64 KiB
    reg(v, VGA_GFX_I, VGA_GFX_BIT_MASK, 0xff);
}

} // namespace

TEST(VgaFont, AsciiIsDrawnAndBlocksAreGenerated)
{
    auto f16 = font_8x16();
    auto f8 = font_8x8();
    for (unsigned c = 0x21; c < 0x7f; ++c) {
        unsigned ones = 0;
        for (unsigned r = 0; r < 16; ++r)
            ones += static_cast<unsigned>(__builtin_popcount(f16[c * 16 + r]));
        EXPECT_GT(ones, 0u) << "glyph " << c;
    }
    for (unsigned r = 0; r < 16; ++r) {
        EXPECT_EQ(f16[' ' * 16 + r], 0);
        EXPECT_EQ(f16[0xdb * 16 + r], 0xff);     // full block
        EXPECT_EQ(f16[0xb3 * 16 + r], 0x18);     // single vertical line
        EXPECT_EQ(f16[0xdc * 16 + r], r >= 8 ? 0xff : 0); // lower half block
    }
    EXPECT_EQ(f16[0xc4 * 16 + 7], 0xff); // single horizontal line
    // 8x8: row i = rows 2i and 2i+1 ORed.
    for (unsigned c = 0; c < FONT_GLYPHS; ++c)
        for (unsigned r = 0; r < 8; ++r)
            ASSERT_EQ(f8[c * 8 + r], f16[c * 16 + 2 * r] | f16[c * 16 + 2 * r + 1]);
}

TEST(VgaText, KnownBufferRendersToExactPixels)
{
    auto v = make();
    put_cell(*v, 0, 'H', 0x1f);  // white on blue
    put_cell(*v, 1, 'i', 0x4e);  // yellow on red
    put_cell(*v, 81, 0xc4, 0x07); // line graphics: the 9th column repeats the 8th
    put_cell(*v, 82, '-', 0x07);  // not line graphics: the 9th column is background
    reg(*v, VGA_CRT_IC, VGA_CRTC_CURSOR_HI, 0);
    reg(*v, VGA_CRT_IC, VGA_CRTC_CURSOR_LO, 160); // row 2, column 0
    Image img = v->render();
    ASSERT_EQ(img.width, 720u);
    ASSERT_EQ(img.height, 400u);
    auto font = font_8x16();
    auto check_cell = [&](uint32_t col, uint32_t row, uint8_t ch, uint32_t fg, uint32_t bg, bool ninth_repeats) {
        for (uint32_t y = 0; y < 16; ++y) {
            uint8_t const bits = font[ch * 16u + y];
            for (uint32_t x = 0; x < 9; ++x) {
                bool on = x < 8 ? (bits >> (7 - x)) & 1 : ninth_repeats && (bits & 1);
                ASSERT_EQ(img.at(col * 9 + x, row * 16 + y), on ? fg : bg)
                    << "cell " << col << "," << row << " pixel " << x << "," << y;
            }
        }
    };
    check_cell(0, 0, 'H', EGA[15], EGA[1], false);
    check_cell(1, 0, 'i', EGA[14], EGA[4], false);
    check_cell(1, 1, 0xc4, EGA[7], EGA[0], true);
    check_cell(2, 1, '-', EGA[7], EGA[0], false);
    check_cell(79, 24, ' ', EGA[7], EGA[0], false);
    // The cursor: scan lines 13-14 (mode 3's CR0A/CR0B) of cell (0, 2) in the foreground colour.
    for (uint32_t y = 0; y < 16; ++y)
        for (uint32_t x = 0; x < 9; ++x)
            ASSERT_EQ(img.at(x, 32 + y), y == 13 || y == 14 ? EGA[7] : EGA[0]) << x << "," << y;
    // Cursor off (CR0A bit 5).
    reg(*v, VGA_CRT_IC, VGA_CRTC_CURSOR_START, 0x2d);
    EXPECT_EQ(v->render().at(0, 32 + 13), EGA[0]);
}

TEST(VgaText, BlinkBitSelectsBackgroundIntensityWhenBlinkIsOff)
{
    auto v = make();
    put_cell(*v, 0, ' ', 0x9f); // blink set, background 1
    EXPECT_EQ(v->render().at(0, 0), EGA[1]);
    // Attribute mode control bit 3 clear: bit 7 is background intensity.
    v->port_read(VGA_IS1_RC); // reset the flip-flop
    v->port_write(VGA_ATT_W, VGA_ATC_MODE | VGA_AR_ENABLE_DISPLAY);
    v->port_write(VGA_ATT_W, 0x04);
    EXPECT_EQ(v->render().at(0, 0), EGA[9]);
}

TEST(VgaText, EightyByFiftyUsesTheEightByEightFont)
{
    auto v = make();
    reg(*v, VGA_CRT_IC, VGA_CRTC_MAX_SCAN, 0x47); // 8 scan lines per row
    reg(*v, VGA_SEQ_I, VGA_SEQ_CLOCK_MODE, 0x01); // 8-dot characters
    put_cell(*v, 80 * 49 + 79, 'Z', 0x0a);
    Image img = v->render();
    ASSERT_EQ(img.width, 640u);
    ASSERT_EQ(img.height, 400u);
    auto font = font_8x8();
    for (uint32_t y = 0; y < 8; ++y)
        for (uint32_t x = 0; x < 8; ++x)
            ASSERT_EQ(img.at(79 * 8 + x, 49 * 8 + y), ((font['Z' * 8u + y] >> (7 - x)) & 1) ? EGA[10] : EGA[0]);
}

TEST(VgaText, BlankedWhilePaletteIsProgrammedAndUnprogrammedIsBlack)
{
    auto v = make();
    put_cell(*v, 0, 0xdb, 0x0f);
    EXPECT_EQ(v->render().at(0, 0), EGA[15]);
    v->port_read(VGA_IS1_RC);
    v->port_write(VGA_ATT_W, 0x00); // palette address source clear: screen blank
    EXPECT_EQ(v->render().at(0, 0), 0u);
    auto u = make(PowerOnMode::Unprogrammed);
    Image img = u->render();
    EXPECT_EQ(img.width, 640u);
    EXPECT_EQ(img.height, 480u);
    EXPECT_TRUE(std::all_of(img.pixels.begin(), img.pixels.end(), [](uint32_t p) { return p == 0; }));
}

TEST(VgaRegisters, CrtcProtectAndColourAddressing)
{
    auto v = make();
    reg(*v, VGA_CRT_IC, VGA_CRTC_H_DISP, 0x27);
    EXPECT_EQ(reg_read(*v, VGA_CRT_IC, VGA_CRTC_H_DISP), 0x4f); // CR11 bit 7 protects 0-7
    reg(*v, VGA_CRT_IC, VGA_CRTC_V_SYNC_END, 0x0e);
    reg(*v, VGA_CRT_IC, VGA_CRTC_H_DISP, 0x27);
    EXPECT_EQ(reg_read(*v, VGA_CRT_IC, VGA_CRTC_H_DISP), 0x27);
    // Misc output bit 0 clear: the colour CRTC ports are not decoded.
    v->port_write(VGA_MIS_W, 0x66);
    EXPECT_EQ(v->port_read(VGA_MIS_R), 0x66);
    EXPECT_EQ(v->port_read(VGA_CRT_DC), 0xff);
    // Input status 1 toggles retrace so polling loops end; unknown indices count as bad.
    v->port_write(VGA_MIS_W, 0x67);
    uint8_t const a = v->port_read(VGA_IS1_RC), b = v->port_read(VGA_IS1_RC);
    EXPECT_NE(a & VGA_ST01_V_RETRACE, b & VGA_ST01_V_RETRACE);
    auto const before = v->stats().bad_accesses;
    reg(*v, VGA_SEQ_I, 0x1f, 1);
    EXPECT_EQ(v->stats().bad_accesses, before + 1);
}

TEST(VgaMemory, PlanarWriteModesAndReadModes)
{
    auto v = make(PowerOnMode::Unprogrammed);
    planar_mode(*v);
    // Write mode 0 with set/reset on every plane: planes 0 and 2 get 0xFF, 1 and 3 get 0.
    reg(*v, VGA_GFX_I, VGA_GFX_SR_ENABLE, 0x0f);
    reg(*v, VGA_GFX_I, VGA_GFX_SR_VALUE, 0x05);
    v->window_write(0, 0x00);
    auto plane = [&](unsigned p, uint32_t offset) {
        reg(*v, VGA_GFX_I, VGA_GFX_PLANE_READ, static_cast<uint8_t>(p));
        return v->window_read(offset);
    };
    EXPECT_EQ(plane(0, 0), 0xff);
    EXPECT_EQ(plane(1, 0), 0x00);
    EXPECT_EQ(plane(2, 0), 0xff);
    EXPECT_EQ(plane(3, 0), 0x00);
    // Read mode 1: colour compare 0101 matches every bit; 0001 none (plane 2 differs).
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x08);
    reg(*v, VGA_GFX_I, VGA_GFX_COMPARE_MASK, 0x0f);
    reg(*v, VGA_GFX_I, VGA_GFX_COMPARE_VALUE, 0x05);
    EXPECT_EQ(v->window_read(0), 0xff);
    reg(*v, VGA_GFX_I, VGA_GFX_COMPARE_VALUE, 0x01);
    EXPECT_EQ(v->window_read(0), 0x00);
    reg(*v, VGA_GFX_I, VGA_GFX_COMPARE_MASK, 0x0b); // plane 2 "don't care"
    EXPECT_EQ(v->window_read(0), 0xff);
    // Write mode 0 without set/reset, with a rotate of 4 and a bit mask: only the masked bits change.
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x00);
    reg(*v, VGA_GFX_I, VGA_GFX_SR_ENABLE, 0x00);
    reg(*v, VGA_GFX_I, VGA_GFX_DATA_ROTATE, 0x04);
    reg(*v, VGA_GFX_I, VGA_GFX_BIT_MASK, 0x0f);
    (void)plane(0, 0); // load the latches
    v->window_write(0, 0xa5); // rotated: 0x5A
    EXPECT_EQ(plane(0, 0), 0xfa);
    EXPECT_EQ(plane(1, 0), 0x0a);
    // XOR with the latches (function 3), no rotate, all bits.
    reg(*v, VGA_GFX_I, VGA_GFX_DATA_ROTATE, 0x18);
    reg(*v, VGA_GFX_I, VGA_GFX_BIT_MASK, 0xff);
    (void)plane(0, 0);
    v->window_write(0, 0xff);
    EXPECT_EQ(plane(0, 0), 0x05);
    EXPECT_EQ(plane(1, 0), 0xf5);
    // Write mode 1 copies the latches (here from offset 0) to offset 1.
    reg(*v, VGA_GFX_I, VGA_GFX_DATA_ROTATE, 0x00);
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x01);
    (void)plane(0, 0);
    v->window_write(1, 0x00);
    EXPECT_EQ(plane(0, 1), 0x05);
    EXPECT_EQ(plane(1, 1), 0xf5);
    // Write mode 2: the value's low nibble is the colour of the pixels the bit mask selects.
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x02);
    reg(*v, VGA_GFX_I, VGA_GFX_BIT_MASK, 0x80);
    (void)plane(0, 2);
    v->window_write(2, 0x0c);
    EXPECT_EQ(plane(0, 2), 0x00);
    EXPECT_EQ(plane(2, 2), 0x80);
    EXPECT_EQ(plane(3, 2), 0x80);
    // Write mode 3: set/reset colour, the rotated value ANDed with the bit mask picks the pixels.
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x03);
    reg(*v, VGA_GFX_I, VGA_GFX_BIT_MASK, 0xff);
    reg(*v, VGA_GFX_I, VGA_GFX_SR_VALUE, 0x02);
    (void)plane(0, 3);
    v->window_write(3, 0x3c);
    EXPECT_EQ(plane(1, 3), 0x3c);
    EXPECT_EQ(plane(0, 3), 0x00);
    // The map mask keeps planes out of a write.
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x02);
    reg(*v, VGA_SEQ_I, VGA_SEQ_PLANE_WRITE, 0x01);
    (void)plane(0, 4);
    v->window_write(4, 0x0f);
    EXPECT_EQ(plane(0, 4), 0xff);
    EXPECT_EQ(plane(1, 4), 0x00);
}

TEST(VgaMemory, PlanarPixelsRenderThroughTheAttributePalette)
{
    auto v = make(); // mode 3's palette and DAC
    planar_mode(*v);
    // Clear the first lines (they hold mode 3's empty text page): write mode 0, set/reset 0 on every plane.
    reg(*v, VGA_GFX_I, VGA_GFX_SR_ENABLE, 0x0f);
    for (uint32_t i = 0; i < 160; ++i)
        v->window_write(i, 0);
    reg(*v, VGA_GFX_I, VGA_GFX_SR_ENABLE, 0x00);
    reg(*v, VGA_CRT_IC, VGA_CRTC_MAX_SCAN, 0x40); // one scan line per row: 640 x 400
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x02);       // write mode 2
    reg(*v, VGA_GFX_I, VGA_GFX_BIT_MASK, 0xc0);   // leftmost two pixels
    (void)v->window_read(0);
    v->window_write(0, 0x0e); // yellow
    Image img = v->render();
    ASSERT_EQ(img.width, 640u);
    ASSERT_EQ(img.height, 400u);
    EXPECT_EQ(img.at(0, 0), EGA[14]);
    EXPECT_EQ(img.at(1, 0), EGA[14]);
    EXPECT_EQ(img.at(2, 0), EGA[0]);
    // Colour plane enable masks planes out.
    v->port_read(VGA_IS1_RC);
    v->port_write(VGA_ATT_W, VGA_ATC_PLANE_ENABLE | VGA_AR_ENABLE_DISPLAY);
    v->port_write(VGA_ATT_W, 0x03);
    EXPECT_EQ(v->render().at(0, 0), EGA[2]);
}

TEST(VgaMemory, OddEvenAndChain4Addressing)
{
    auto v = make();
    // Text mode (odd/even): 0xB8000 offset 2k is plane 0, 2k+1 plane 1, both at plane address k.
    v->window_write(0x18000 + 10, 'x');
    v->window_write(0x18000 + 11, 0x1e);
    EXPECT_EQ(v->window_read(0x18000 + 10), 'x');
    EXPECT_EQ(v->window_read(0x18000 + 11), 0x1e);
    std::array<uint8_t, 2> raw {};
    ASSERT_TRUE(v->vram().read(memory::GuestAddr(5 * 4), raw).has_value());
    EXPECT_EQ(raw[0], 'x');
    EXPECT_EQ(raw[1], 0x1e);
    // Outside the memory map (mode 3 maps 0xB8000-0xBFFFF only): open bus, writes dropped.
    v->window_write(0x100, 0x12);
    EXPECT_EQ(v->window_read(0x100), 0xff);
}

TEST(VgaDac, PaletteReadBackAndMode13h)
{
    auto v = make();
    v->port_write(VGA_PEL_IW, 5);
    v->port_write(VGA_PEL_D, 0x3f);
    v->port_write(VGA_PEL_D, 0x20);
    v->port_write(VGA_PEL_D, 0x00);
    v->port_write(VGA_PEL_D, 0x01); // entry 6 red
    EXPECT_EQ(v->port_read(VGA_PEL_IW), 6); // the write index moved on
    v->port_write(VGA_PEL_IR, 5);
    EXPECT_EQ(v->port_read(VGA_PEL_IR), 3);
    EXPECT_EQ(v->port_read(VGA_PEL_D), 0x3f);
    EXPECT_EQ(v->port_read(VGA_PEL_D), 0x20);
    EXPECT_EQ(v->port_read(VGA_PEL_D), 0x00);
    EXPECT_EQ(v->port_read(VGA_PEL_D), 0x01);
    // Mode 13h: chain 4, 256-colour shift mode, 320x200 from 400 lines scanned twice.
    reg(*v, VGA_SEQ_I, VGA_SEQ_MEMORY_MODE, 0x0e);
    reg(*v, VGA_GFX_I, VGA_GFX_MODE, 0x40);
    reg(*v, VGA_GFX_I, VGA_GFX_MISC, 0x05);
    reg(*v, VGA_CRT_IC, VGA_CRTC_MAX_SCAN, 0x41);
    reg(*v, VGA_SEQ_I, VGA_SEQ_PLANE_WRITE, 0x0f);
    v->window_write(320 * 199 + 319, 5);
    Image img = v->render();
    ASSERT_EQ(img.width, 320u);
    ASSERT_EQ(img.height, 200u);
    EXPECT_EQ(img.at(319, 199), 0xff8200u); // 6-bit 0x3F, 0x20, 0x00 to 8 bits
    EXPECT_EQ(img.at(100, 100), 0u); // index 0
    // The pixel mask applies to the index.
    v->port_write(VGA_PEL_MSK, 0x04);
    EXPECT_EQ(v->render().at(319, 199), 0xaa0000u); // index 5 & 4 = 4: EGA red in mode 3's DAC
}

TEST(VgaVbe, ModeSwitchAndPixelFormats)
{
    auto v = make();
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
    dispi(*v, VBE_DISPI_INDEX_ID, VBE_DISPI_ID0);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID0);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_XRES), 1920);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_YRES), 1080);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_BPP), 32);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 256);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, 0);
    dispi(*v, VBE_DISPI_INDEX_XRES, 640);
    dispi(*v, VBE_DISPI_INDEX_YRES, 480);
    dispi(*v, VBE_DISPI_INDEX_BPP, 32);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_ENABLE), VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_VIRT_WIDTH), 640);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_VIRT_HEIGHT), (16 << 20) / (640 * 4));
    // Pixel (10, 20) = 0x123456, written through the framebuffer.
    std::array<uint8_t, 4> px { 0x56, 0x34, 0x12, 0x00 };
    ASSERT_TRUE(v->vram().write(memory::GuestAddr((20 * 640 + 10) * 4), px).has_value());
    Image img = v->render();
    ASSERT_EQ(img.width, 640u);
    ASSERT_EQ(img.height, 480u);
    EXPECT_EQ(img.at(10, 20), 0x123456u);
    EXPECT_EQ(img.at(11, 20), 0u);
    // Y offset (panning) moves the visible window.
    dispi(*v, VBE_DISPI_INDEX_Y_OFFSET, 20);
    EXPECT_EQ(v->render().at(10, 0), 0x123456u);
    // Too large an offset is clamped to keep the screen in video memory.
    dispi(*v, VBE_DISPI_INDEX_Y_OFFSET, 0xffff);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_Y_OFFSET), (16 << 20) / (640 * 4) - 480);
    dispi(*v, VBE_DISPI_INDEX_Y_OFFSET, 0);
    // 16 bpp (5:6:5) and 15 bpp (5:5:5); enabling clears the screen unless NOCLEARMEM.
    dispi(*v, VBE_DISPI_INDEX_ENABLE, 0);
    dispi(*v, VBE_DISPI_INDEX_BPP, 16);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
    EXPECT_EQ(v->render().at(10, 20), 0u);
    std::array<uint8_t, 2> p16 { 0xe0, 0x07 }; // green 0x3F
    ASSERT_TRUE(v->vram().write(memory::GuestAddr((640 + 2) * 2), p16).has_value());
    EXPECT_EQ(v->render().at(2, 1), 0x00ff00u);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, 0);
    dispi(*v, VBE_DISPI_INDEX_BPP, 15);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_NOCLEARMEM);
    EXPECT_EQ(v->render().at(2, 1), 0x08ff00u); // 0x07E0 as 5:5:5 is r 1, g 31, b 0
    // 24 bpp, and 8 bpp through the DAC (8-bit DAC).
    dispi(*v, VBE_DISPI_INDEX_ENABLE, 0);
    dispi(*v, VBE_DISPI_INDEX_BPP, 24);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
    std::array<uint8_t, 3> p24 { 0x01, 0x02, 0x03 };
    ASSERT_TRUE(v->vram().write(memory::GuestAddr(3 * 3), p24).has_value());
    EXPECT_EQ(v->render().at(3, 0), 0x030201u);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, 0);
    dispi(*v, VBE_DISPI_INDEX_BPP, 8);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_8BIT_DAC);
    v->port_write(VGA_PEL_IW, 7);
    v->port_write(VGA_PEL_D, 0xc8);
    v->port_write(VGA_PEL_D, 0x10);
    v->port_write(VGA_PEL_D, 0xff);
    std::array<uint8_t, 1> p8 { 7 };
    ASSERT_TRUE(v->vram().write(memory::GuestAddr(4), p8).has_value());
    EXPECT_EQ(v->render().at(4, 0), 0xc810ffu);
    // Banked access through 0xA0000: bank 1 is video memory 64 KiB on.
    dispi(*v, VBE_DISPI_INDEX_BANK, 1);
    v->window_write(3, 0x77);
    std::array<uint8_t, 1> back {};
    ASSERT_TRUE(v->vram().read(memory::GuestAddr(0x10003), back).has_value());
    EXPECT_EQ(back[0], 0x77);
    EXPECT_EQ(v->window_read(3), 0x77);
    // Invalid depth falls back to 8, oversized resolutions are clamped; after disabling, the VGA registers (left
    // as a graphics mode by the enable, as on Bochs) are drawn again.
    dispi(*v, VBE_DISPI_INDEX_BPP, 12);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_BPP), 8);
    dispi(*v, VBE_DISPI_INDEX_XRES, 5000);
    EXPECT_EQ(v->dispi_read(VBE_DISPI_INDEX_XRES), 1920);
    dispi(*v, VBE_DISPI_INDEX_ENABLE, 0);
    EXPECT_EQ(v->render().width, 640u);
}

TEST(StdVgaPci, IdentityBarsAndMmioRegisters)
{
    using namespace hako::devices::pci;
    using namespace hako::devices::pci::test;
    std::shared_ptr<Vga> vga = make();
    std::vector<uint8_t> rom(40000, 0x11);
    rom[0] = 0x55;
    rom[1] = 0xaa;
    auto dev = StdVga::create(vga, rom);
    ASSERT_TRUE(dev.has_value());
    auto& d = **dev;
    EXPECT_EQ(cfg_read(d, PCI_VENDOR_ID, 4), 0x11111234u);
    EXPECT_EQ(cfg_read(d, PCI_REVISION_ID, 4) >> 8, 0x030000u);
    cfg_write(d, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(d, PCI_BASE_ADDRESS_0, 4), 0xff000008u); // 16 MiB, prefetchable
    cfg_write(d, PCI_BASE_ADDRESS_0 + 8, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(d, PCI_BASE_ADDRESS_0 + 8, 4), 0xfffff000u); // 4 KiB
    cfg_write(d, PCI_ROM_ADDRESS, 4, 0xfffff800);
    EXPECT_EQ(cfg_read(d, PCI_ROM_ADDRESS, 4), 0xffff0000u); // 64 KiB for a 40000-byte ROM
    EXPECT_EQ(d.bar_memory(STDVGA_FB_BAR), &vga->vram());
    EXPECT_EQ(d.bar_memory(STDVGA_MMIO_BAR), nullptr);
    std::array<uint8_t, 2> b2 {};
    d.bar_read(ROM_BAR, 0, b2);
    EXPECT_EQ(b2[0], 0x55);
    EXPECT_EQ(b2[1], 0xaa);
    // DISPI through the MMIO BAR: 0x500 + index * 2.
    d.bar_read(STDVGA_MMIO_BAR, STDVGA_MMIO_DISPI + VBE_DISPI_INDEX_ID * 2, b2);
    EXPECT_EQ(b2[0] | b2[1] << 8, VBE_DISPI_ID5);
    std::array<uint8_t, 2> w { 0x20, 0x03 }; // XRES 800
    d.bar_write(STDVGA_MMIO_BAR, STDVGA_MMIO_DISPI + VBE_DISPI_INDEX_XRES * 2, w);
    EXPECT_EQ(vga->dispi_read(VBE_DISPI_INDEX_XRES), 800);
    // VGA ports through the MMIO BAR: 0x400 + port - 0x3C0.
    std::array<uint8_t, 1> b1 {};
    d.bar_read(STDVGA_MMIO_BAR, STDVGA_MMIO_VGA_PORTS + (VGA_MIS_R - VGA_PORT_BASE), b1);
    EXPECT_EQ(b1[0], 0x67);
    std::array<uint8_t, 4> b4 {};
    d.bar_read(STDVGA_MMIO_BAR, STDVGA_MMIO_QEXT + 4, b4);
    EXPECT_EQ(load_le(b4), STDVGA_QEXT_LITTLE_ENDIAN);
    // The framebuffer through a bus mapping (no KVM slot).
    std::array<uint8_t, 4> px { 1, 2, 3, 4 };
    d.bar_write(STDVGA_FB_BAR, 0x100, px);
    d.bar_read(STDVGA_FB_BAR, 0x100, b4);
    EXPECT_EQ(b4, px);
    // Legacy decoders: a word write to 0x3D4 is index + data; DISPI index then data.
    VgaPorts ports(vga);
    std::array<uint8_t, 2> idx_data { VGA_CRTC_CURSOR_LO, 0x42 };
    ports.write(VGA_CRT_IC - VGA_PORT_BASE, idx_data);
    EXPECT_EQ(reg_read(*vga, VGA_CRT_IC, VGA_CRTC_CURSOR_LO), 0x42);
    DispiPorts dp(vga);
    std::array<uint8_t, 2> index { VBE_DISPI_INDEX_YRES, 0 }, value { 0x58, 0x02 };
    dp.write(0, index);
    dp.write(1, value);
    EXPECT_EQ(vga->dispi_read(VBE_DISPI_INDEX_YRES), 600);
    dp.read(1, b2);
    EXPECT_EQ(b2[0] | b2[1] << 8, 600);
    // A reset puts the VGA back in its power-on mode.
    d.reset();
    EXPECT_EQ(vga->dispi_read(VBE_DISPI_INDEX_XRES), 0);
}

TEST(VgaPng, EncodesExactPixels)
{
    Image img(3, 2);
    img.at(0, 0) = 0xff0000;
    img.at(1, 0) = 0x00ff00;
    img.at(2, 1) = 0x123456;
    auto png = encode_png(img);
    ASSERT_TRUE(png.has_value());
    png_image in {};
    in.version = PNG_IMAGE_VERSION;
    ASSERT_TRUE(png_image_begin_read_from_memory(&in, png->data(), png->size()));
    in.format = PNG_FORMAT_RGB;
    std::vector<uint8_t> rgb(PNG_IMAGE_SIZE(in));
    ASSERT_TRUE(png_image_finish_read(&in, nullptr, rgb.data(), 0, nullptr));
    ASSERT_EQ(in.width, 3u);
    ASSERT_EQ(in.height, 2u);
    for (uint32_t y = 0; y < 2; ++y)
        for (uint32_t x = 0; x < 3; ++x) {
            size_t const i = (y * 3 + x) * 3;
            EXPECT_EQ(uint32_t { rgb[i] } << 16 | uint32_t { rgb[i + 1] } << 8 | rgb[i + 2], img.at(x, y));
        }
    EXPECT_FALSE(encode_png(Image()).has_value());
}
