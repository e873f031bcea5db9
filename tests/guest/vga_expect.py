"""Helpers for the VGA tests: a PNG decoder (no third-party modules), hako's font (parsed from
src/devices/display/font_8x16.inc), the mode 3 colours, text screens and OCR of text screens drawn with that font.

The expected images are computed here from first principles (the font bitmaps and the EGA colours), independently of
hako's renderer.
"""
import os
import struct
import zlib

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "devices", "display")

# The 16 text colours of mode 3 (6-bit DAC levels 0x2A and 0x15 are 0xAA and 0x55 in 8 bits).
EGA = [0x000000, 0x0000aa, 0x00aa00, 0x00aaaa, 0xaa0000, 0xaa00aa, 0xaa5500, 0xaaaaaa,
       0x555555, 0x5555ff, 0x55ff55, 0x55ffff, 0xff5555, 0xff55ff, 0xffff55, 0xffffff]


class Image:
    def __init__(self, width, height, pixels):
        self.width, self.height, self.pixels = width, height, pixels  # pixels: list of 0xRRGGBB, row-major

    def at(self, x, y):
        return self.pixels[y * self.width + x]


def decode_png(data):
    """8-bit RGB or RGBA, non-interlaced PNGs (what hako and QEMU write)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth} colour type {ctype} interlace {interlace}")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        pixels.extend(line[i] << 16 | line[i + 1] << 8 | line[i + 2] for i in range(0, stride, bpp))
        prev = line
    return Image(width, height, pixels)


def font_8x16():
    """{code: [16 row bytes]} for the hand-drawn ASCII glyphs; other codes are blank or not used by the tests."""
    text = open(os.path.join(SRC, "font_8x16.inc")).read()
    body = text.split('R"FONT(')[1].split(')FONT"')[0]
    glyphs, code = {}, None
    for line in body.splitlines():
        if line.startswith("@"):
            code = int(line[1:], 16)
            glyphs[code] = []
        elif line:
            glyphs[code].append(int(line.replace("#", "1").replace(".", "0"), 2))
    glyphs[0x20] = [0] * 16
    return glyphs


def font_8x8(f16):
    return {c: [rows[2 * i] | rows[2 * i + 1] for i in range(8)] for c, rows in f16.items()}


def text_screen(cells, rows, cell_h, cursor=None, cursor_lines=(13, 14)):
    """The 720-pixel-wide image of an 80-column text screen with 9-dot characters. cells: {(row, col): (ch, attr)},
    others are spaces in light grey on black; cursor: (row, col) drawn on scan lines cursor_lines."""
    font = font_8x16() if cell_h == 16 else font_8x8(font_8x16())
    width, height = 80 * 9, rows * cell_h
    px = [0] * (width * height)
    for r in range(rows):
        for c in range(80):
            ch, attr = cells.get((r, c), (0x20, 0x07))
            fg, bg = EGA[attr & 15], EGA[(attr >> 4) & 7]  # blink enabled: bit 7 is not intensity
            glyph = font[ch]
            for y in range(cell_h):
                bits = glyph[y]
                on_cursor = cursor == (r, c) and cursor_lines[0] <= y <= cursor_lines[1]
                base = (r * cell_h + y) * width + c * 9
                for x in range(9):
                    on = x < 8 and (bits >> (7 - x)) & 1
                    px[base + x] = fg if on or on_cursor else bg
    return Image(width, height, px)


def ocr_text(img, cell_w=9, cell_h=16):
    """Reads a text screen drawn with hako's font: a list of row strings ('?' for a cell that matches no glyph)."""
    font = font_8x16() if cell_h == 16 else font_8x8(font_8x16())
    by_bits = {}
    for ch, rows in sorted(font.items(), reverse=True):
        by_bits[tuple(rows)] = chr(ch)
    lines = []
    for r in range(img.height // cell_h):
        line = ""
        for c in range(img.width // cell_w):
            colours = {img.at(c * cell_w + x, r * cell_h + y) for y in range(cell_h) for x in range(8)}
            if len(colours) == 1:
                line += " "
                continue
            found = "?"
            for fg in colours:
                bits = tuple(sum(1 << (7 - x) for x in range(8) if img.at(c * cell_w + x, r * cell_h + y) == fg)
                             for y in range(cell_h))
                if bits in by_bits:
                    found = by_bits[bits]
                    break
            line += found
        lines.append(line)
    return lines


def cell_map(img, cell_w=9, cell_h=16):
    """Per text cell: (background colour, foreground colour or None): what a reference with another font shares."""
    out = {}
    for r in range(img.height // cell_h):
        for c in range(img.width // cell_w):
            counts = {}
            for y in range(cell_h):
                for x in range(cell_w):
                    p = img.at(c * cell_w + x, r * cell_h + y)
                    counts[p] = counts.get(p, 0) + 1
            ranked = sorted(counts, key=lambda p: -counts[p])
            out[(r, c)] = (ranked[0], ranked[1] if len(ranked) > 1 else None)
    return out
