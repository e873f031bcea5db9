// hako's host-side VGA text fonts, in code page 437 order: the guest's text screen is drawn with these (a font the
// guest loads into plane 2 is not used; see vga.h).
//
// The printable ASCII glyphs are drawn by hand for hako (font_8x16.inc). The rest of CP437 is generated in
// font.cpp: shades, box drawing (single and double lines), blocks, accented letters (base letter plus accent),
// a few symbols (arrows, triangles, bullets, degree, plus-minus, division); code points without a drawing show a
// hollow box. The 8x8 font (80x50 text) is derived from the 8x16 one: row i is rows 2i and 2i+1 ORed.
#pragma once

#include <cstdint>
#include <span>

namespace hako::devices::display {

constexpr unsigned FONT_GLYPHS = 256;
constexpr unsigned FONT_WIDTH = 8;

/// 16 bytes per glyph, one per row, bit 7 the leftmost pixel.
std::span<uint8_t const, FONT_GLYPHS * 16> font_8x16();
/// 8 bytes per glyph, derived from font_8x16().
std::span<uint8_t const, FONT_GLYPHS * 8> font_8x8();

} // namespace hako::devices::display
