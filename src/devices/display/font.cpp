#include "devices/display/font.h"

#include <array>
#include <string_view>

namespace hako::devices::display {

namespace {

using Glyph = std::array<uint8_t, 16>;
using Font = std::array<Glyph, FONT_GLYPHS>;

constexpr std::string_view ASCII_ART =
#include "devices/display/font_8x16.inc"
    ;

constexpr int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/// Parses font_8x16.inc: "@XX" then 16 rows of '#'/'.'. A malformed table is a compile error (the parse runs in a
/// constant expression and throws).
constexpr Font parse_ascii(std::string_view art)
{
    Font font {};
    size_t pos = 0;
    int code = -1;
    unsigned row = 16;
    while (pos < art.size()) {
        size_t end = art.find('\n', pos);
        if (end == std::string_view::npos)
            end = art.size();
        std::string_view line = art.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty())
            continue;
        if (line[0] == '@') {
            if (line.size() != 3 || hex_digit(line[1]) < 0 || hex_digit(line[2]) < 0 || row != 16)
                throw "font_8x16.inc: bad glyph header or short glyph";
            code = hex_digit(line[1]) * 16 + hex_digit(line[2]);
            row = 0;
            continue;
        }
        if (code < 0 || row >= 16 || line.size() != 8)
            throw "font_8x16.inc: bad row";
        uint8_t bits = 0;
        for (char c : line) {
            if (c != '#' && c != '.')
                throw "font_8x16.inc: rows are '#' and '.'";
            bits = static_cast<uint8_t>((bits << 1) | (c == '#' ? 1 : 0));
        }
        font[static_cast<size_t>(code)][row++] = bits;
    }
    if (row != 16)
        throw "font_8x16.inc: short last glyph";
    return font;
}

constexpr Glyph MISSING { 0, 0, 0xfe, 0x82, 0x82, 0x82, 0x82, 0x82, 0x82, 0x82, 0x82, 0xfe, 0, 0, 0, 0 };

// Box drawing (CP437 0xB3-0xDA): each arm up/down/left/right is 0 (none), 1 (single) or 2 (double).
struct Arms {
    uint8_t up, down, left, right;
};
constexpr std::array<Arms, 0xdb - 0xb3> BOX_ARMS { {
    { 1, 1, 0, 0 }, { 1, 1, 1, 0 }, { 1, 1, 2, 0 }, { 2, 2, 1, 0 }, { 0, 2, 1, 0 }, { 0, 1, 2, 0 }, // B3-B8
    { 2, 2, 2, 0 }, { 2, 2, 0, 0 }, { 0, 2, 2, 0 }, { 2, 0, 2, 0 }, { 2, 0, 1, 0 }, { 1, 0, 2, 0 }, // B9-BE
    { 0, 1, 1, 0 }, { 1, 0, 0, 1 }, { 1, 0, 1, 1 }, { 0, 1, 1, 1 }, { 1, 1, 0, 1 }, { 0, 0, 1, 1 }, // BF-C4
    { 1, 1, 1, 1 }, { 1, 1, 0, 2 }, { 2, 2, 0, 1 }, { 2, 0, 0, 2 }, { 0, 2, 0, 2 }, { 2, 0, 2, 2 }, // C5-CA
    { 0, 2, 2, 2 }, { 2, 2, 0, 2 }, { 0, 0, 2, 2 }, { 2, 2, 2, 2 }, { 1, 0, 2, 2 }, { 2, 0, 1, 1 }, // CB-D0
    { 0, 1, 2, 2 }, { 0, 2, 1, 1 }, { 2, 0, 0, 1 }, { 1, 0, 0, 2 }, { 0, 1, 0, 2 }, { 0, 2, 0, 1 }, // D1-D6
    { 2, 2, 1, 1 }, { 1, 1, 2, 2 }, { 1, 0, 1, 0 }, { 0, 1, 0, 1 },                                 // D7-DA
} };

constexpr Glyph box(Arms a)
{
    Glyph g {};
    // Single lines: columns 3-4, row 7. Double lines: columns 1-2 and 5-6, rows 5 and 9.
    auto vertical = [&g](uint8_t style, unsigned from, unsigned to) {
        uint8_t const bits = style == 1 ? 0x18 : style == 2 ? 0x66 : 0;
        for (unsigned r = from; r <= to; ++r)
            g[r] = static_cast<uint8_t>(g[r] | bits);
    };
    auto horizontal = [&g](uint8_t style, uint8_t bits) {
        if (style == 1)
            g[7] = static_cast<uint8_t>(g[7] | bits);
        if (style == 2) {
            g[5] = static_cast<uint8_t>(g[5] | bits);
            g[9] = static_cast<uint8_t>(g[9] | bits);
        }
    };
    vertical(a.up, 0, a.left == 2 || a.right == 2 ? 9 : 7);
    vertical(a.down, a.left == 2 || a.right == 2 ? 5 : 7, 15);
    uint8_t const left_mask = a.up == 2 || a.down == 2 ? 0xfe : 0xf8;  // to the centre (or the far double line)
    uint8_t const right_mask = a.up == 2 || a.down == 2 ? 0x7f : 0x1f;
    horizontal(a.left, left_mask);
    horizontal(a.right, right_mask);
    return g;
}

constexpr Glyph rows(std::initializer_list<std::pair<unsigned, uint8_t>> set)
{
    Glyph g {};
    for (auto [r, bits] : set)
        g[r] = bits;
    return g;
}

/// A base letter with an accent drawn in the two rows above it (rows 2-3 for lowercase, 0-1 for capitals).
constexpr Glyph accented(Font const& f, char base, uint8_t accent_a, uint8_t accent_b)
{
    Glyph g = f[static_cast<uint8_t>(base)];
    bool const capital = base >= 'A' && base <= 'Z';
    unsigned const r = capital ? 0 : 2;
    if (base == 'i') { // dotless i first
        g[2] = 0;
        g[3] = 0;
    }
    g[r] = static_cast<uint8_t>(g[r] | accent_a);
    g[r + 1] = static_cast<uint8_t>(g[r + 1] | accent_b);
    return g;
}

constexpr Glyph flipped(Glyph g) // upside down within rows 2-11 (for the inverted ? and !)
{
    Glyph out = g;
    for (unsigned r = 2; r <= 11; ++r)
        out[r] = g[13 - r];
    return out;
}

constexpr Font build_font()
{
    Font f = parse_ascii(ASCII_ART);
    for (unsigned c = 0x01; c < 0x20; ++c)
        f[c] = MISSING;
    f[0x7f] = MISSING;
    for (unsigned c = 0x80; c < 0xff; ++c)
        f[c] = MISSING;

    // Symbols in the control range.
    f[0x04] = rows({ { 5, 0x10 }, { 6, 0x38 }, { 7, 0x7c }, { 8, 0xfe }, { 9, 0x7c }, { 10, 0x38 }, { 11, 0x10 } });
    f[0x07] = rows({ { 6, 0x18 }, { 7, 0x3c }, { 8, 0x3c }, { 9, 0x18 } });
    f[0x10] = rows({ { 3, 0x80 }, { 4, 0xc0 }, { 5, 0xe0 }, { 6, 0xf8 }, { 7, 0xfe }, { 8, 0xf8 }, { 9, 0xe0 }, { 10, 0xc0 }, { 11, 0x80 } });
    f[0x11] = rows({ { 3, 0x02 }, { 4, 0x06 }, { 5, 0x0e }, { 6, 0x3e }, { 7, 0xfe }, { 8, 0x3e }, { 9, 0x0e }, { 10, 0x06 }, { 11, 0x02 } });
    f[0x18] = rows({ { 2, 0x18 }, { 3, 0x3c }, { 4, 0x7e }, { 5, 0x18 }, { 6, 0x18 }, { 7, 0x18 }, { 8, 0x18 }, { 9, 0x18 }, { 10, 0x18 }, { 11, 0x18 } });
    f[0x19] = rows({ { 2, 0x18 }, { 3, 0x18 }, { 4, 0x18 }, { 5, 0x18 }, { 6, 0x18 }, { 7, 0x18 }, { 8, 0x18 }, { 9, 0x7e }, { 10, 0x3c }, { 11, 0x18 } });
    f[0x1a] = rows({ { 5, 0x18 }, { 6, 0x0c }, { 7, 0xfe }, { 8, 0x0c }, { 9, 0x18 } });
    f[0x1b] = rows({ { 5, 0x30 }, { 6, 0x60 }, { 7, 0xfe }, { 8, 0x60 }, { 9, 0x30 } });
    f[0x1e] = rows({ { 4, 0x10 }, { 5, 0x38 }, { 6, 0x38 }, { 7, 0x7c }, { 8, 0x7c }, { 9, 0xfe }, { 10, 0xfe } });
    f[0x1f] = rows({ { 4, 0xfe }, { 5, 0xfe }, { 6, 0x7c }, { 7, 0x7c }, { 8, 0x38 }, { 9, 0x38 }, { 10, 0x10 } });

    // Accented letters (0x80-0xA5).
    constexpr uint8_t ACUTE_A = 0x0c, ACUTE_B = 0x18, GRAVE_A = 0x30, GRAVE_B = 0x18, CIRC_A = 0x38, CIRC_B = 0x6c;
    constexpr uint8_t DIA_A = 0x00, DIA_B = 0x6c, RING_A = 0x38, RING_B = 0x38, TILDE_A = 0x76, TILDE_B = 0xdc;
    struct Accent {
        uint8_t code;
        char base;
        uint8_t a, b;
    };
    constexpr Accent ACCENTS[] = {
        { 0x81, 'u', DIA_A, DIA_B }, { 0x82, 'e', ACUTE_A, ACUTE_B }, { 0x83, 'a', CIRC_A, CIRC_B },
        { 0x84, 'a', DIA_A, DIA_B }, { 0x85, 'a', GRAVE_A, GRAVE_B }, { 0x86, 'a', RING_A, RING_B },
        { 0x88, 'e', CIRC_A, CIRC_B }, { 0x89, 'e', DIA_A, DIA_B }, { 0x8a, 'e', GRAVE_A, GRAVE_B },
        { 0x8b, 'i', DIA_A, DIA_B }, { 0x8c, 'i', CIRC_A, CIRC_B }, { 0x8d, 'i', GRAVE_A, GRAVE_B },
        { 0x8e, 'A', DIA_B, 0 }, { 0x8f, 'A', RING_A, 0 }, { 0x90, 'E', ACUTE_A, ACUTE_B },
        { 0x93, 'o', CIRC_A, CIRC_B }, { 0x94, 'o', DIA_A, DIA_B }, { 0x95, 'o', GRAVE_A, GRAVE_B },
        { 0x96, 'u', CIRC_A, CIRC_B }, { 0x97, 'u', GRAVE_A, GRAVE_B }, { 0x98, 'y', DIA_A, DIA_B },
        { 0x99, 'O', DIA_B, 0 }, { 0x9a, 'U', DIA_B, 0 }, { 0xa0, 'a', ACUTE_A, ACUTE_B },
        { 0xa1, 'i', ACUTE_A, ACUTE_B }, { 0xa2, 'o', ACUTE_A, ACUTE_B }, { 0xa3, 'u', ACUTE_A, ACUTE_B },
        { 0xa4, 'n', TILDE_A, TILDE_B }, { 0xa5, 'N', TILDE_A, TILDE_B },
    };
    for (auto const& a : ACCENTS)
        f[a.code] = accented(f, a.base, a.a, a.b);
    f[0x80] = f['C'];
    f[0x80][12] = 0x18;
    f[0x80][13] = 0x30;
    f[0x87] = f['c'];
    f[0x87][12] = 0x18;
    f[0x87][13] = 0x30;
    f[0xa8] = flipped(f['?']);
    f[0xad] = flipped(f['!']);
    f[0xae] = rows({ { 5, 0x36 }, { 6, 0x6c }, { 7, 0xd8 }, { 8, 0x6c }, { 9, 0x36 } });
    f[0xaf] = rows({ { 5, 0xd8 }, { 6, 0x6c }, { 7, 0x36 }, { 8, 0x6c }, { 9, 0xd8 } });

    // Shades, box drawing, blocks.
    for (unsigned r = 0; r < 16; ++r) {
        f[0xb0][r] = r % 4 == 0 ? 0x88 : r % 4 == 2 ? 0x22 : 0x00;
        f[0xb1][r] = r % 2 == 0 ? 0xaa : 0x55;
        f[0xb2][r] = r % 2 == 0 ? 0xdd : 0x77;
        f[0xdb][r] = 0xff;
        f[0xdc][r] = r >= 8 ? 0xff : 0x00;
        f[0xdd][r] = 0xf0;
        f[0xde][r] = 0x0f;
        f[0xdf][r] = r < 8 ? 0xff : 0x00;
    }
    for (unsigned c = 0xb3; c <= 0xda; ++c)
        f[c] = box(BOX_ARMS[c - 0xb3]);

    // Mathematical symbols.
    f[0xf1] = rows({ { 4, 0x18 }, { 5, 0x18 }, { 6, 0x7e }, { 7, 0x18 }, { 8, 0x18 }, { 10, 0x7e } });
    f[0xf6] = rows({ { 5, 0x18 }, { 6, 0x18 }, { 8, 0x7e }, { 10, 0x18 }, { 11, 0x18 } });
    f[0xf8] = rows({ { 2, 0x38 }, { 3, 0x6c }, { 4, 0x6c }, { 5, 0x38 } });
    f[0xf9] = rows({ { 7, 0x18 }, { 8, 0x18 } });
    f[0xfa] = rows({ { 7, 0x18 } });
    f[0xfe] = rows({ { 4, 0x7c }, { 5, 0x7c }, { 6, 0x7c }, { 7, 0x7c }, { 8, 0x7c }, { 9, 0x7c }, { 10, 0x7c } });
    f[0xff] = {};
    return f;
}

constexpr Font FONT = build_font();

template<unsigned ROWS>
constexpr std::array<uint8_t, FONT_GLYPHS * ROWS> flatten()
{
    std::array<uint8_t, FONT_GLYPHS * ROWS> out {};
    for (unsigned c = 0; c < FONT_GLYPHS; ++c) {
        for (unsigned r = 0; r < ROWS; ++r) {
            if constexpr (ROWS == 16)
                out[c * ROWS + r] = FONT[c][r];
            else
                out[c * ROWS + r] = static_cast<uint8_t>(FONT[c][2 * r] | FONT[c][2 * r + 1]);
        }
    }
    return out;
}

constexpr auto FONT_8X16 = flatten<16>();
constexpr auto FONT_8X8 = flatten<8>();

} // namespace

std::span<uint8_t const, FONT_GLYPHS * 16> font_8x16() { return FONT_8X16; }
std::span<uint8_t const, FONT_GLYPHS * 8> font_8x8() { return FONT_8X8; }

} // namespace hako::devices::display
