/* vga: draws on the std VGA (PCI 1234:1111) for the harness (run-vga-test.py) to take a screenshot of, which it
 * compares with the image it computes itself.
 *
 *   mode=text    80x25 text (mode 3, as the firmware or hako's direct boot leaves it): clears the page, writes the
 *                lines of TEXT_LINES, puts the cursor (scan lines 13-14) at row 5, column 10.
 *   mode=text50  the same switched to 80x50 (8 scan lines per row; cursor scan lines 6-7), plus a line on row 49.
 *   mode=vbe32   the Bochs DISPI interface: 640x480 at 32 bpp, linear framebuffer at BAR 0, pattern
 *   mode=vbe16   r = x & 0xff, g = y & 0xff, b = (x ^ y) & 0xff (at 16 bpp packed 5:6:5 from those).
 *
 * Then it prints "vga: ready" and waits for any byte on COM1 (the harness sends one after its screenshot), bounded
 * by an iteration count, and passes.
 * Exit codes: 2 no std VGA, 3 DISPI ID wrong, 4 BAR 0 unassigned, 5 the mode did not take, 6 no go-ahead,
 * 7 unknown mode.
 */
#include "guest.h"

#define TEXT_BASE 0xb8000u
#define CRTC_INDEX 0x3d4
#define DISPI_INDEX 0x1ce
#define DISPI_DATA 0x1cf

struct text_line {
    uint8_t row, col, attr;
    const char* text;
};
/* tests/guest/run-vga-test.py has the same list. */
static const struct text_line TEXT_LINES[] = {
    { 0, 0, 0x1f, "hako VGA text test: the quick brown fox jumps over the lazy dog 0123456789" },
    { 1, 2, 0x4e, "Yellow on red !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" },
    { 2, 0, 0x02, "green" },
    { 2, 6, 0x0b, "cyan" },
    { 2, 11, 0x0d, "magenta" },
    { 2, 19, 0x70, "black on grey" },
    { 2, 33, 0x08, "dark grey" },
    { 2, 43, 0x0c, "light red" },
    { 24, 60, 0x70, "bottom right line" },
};

static void crtc(uint8_t index, uint8_t value)
{
    outb(CRTC_INDEX, index);
    outb(CRTC_INDEX + 1, value);
}

static uint8_t crtc_read(uint8_t index)
{
    outb(CRTC_INDEX, index);
    return inb(CRTC_INDEX + 1);
}

static void put_text(unsigned rows, uint8_t cursor_start, uint8_t cursor_end)
{
    volatile uint16_t* screen = (volatile uint16_t*)TEXT_BASE;
    for (unsigned i = 0; i < 80 * rows; i++)
        screen[i] = 0x0720;
    for (unsigned l = 0; l < ARRAY_SIZE(TEXT_LINES); l++) {
        const struct text_line* t = &TEXT_LINES[l];
        for (unsigned i = 0; t->text[i]; i++)
            screen[t->row * 80 + t->col + i] = (uint16_t)(t->attr << 8 | (uint8_t)t->text[i]);
    }
    if (rows == 50) {
        const char* s = "row 49 of 50";
        for (unsigned i = 0; s[i]; i++)
            screen[49 * 80 + i] = (uint16_t)(0x0a << 8 | (uint8_t)s[i]);
    }
    uint16_t const cursor = 5 * 80 + 10;
    crtc(0x0a, cursor_start);
    crtc(0x0b, cursor_end);
    crtc(0x0e, (uint8_t)(cursor >> 8));
    crtc(0x0f, (uint8_t)cursor);
}

static bool match_vga(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == 0x1234 && d->device == 0x1111;
}

static void dispi(uint16_t index, uint16_t value)
{
    outw(DISPI_INDEX, index);
    outw(DISPI_DATA, value);
}

static uint16_t dispi_read(uint16_t index)
{
    outw(DISPI_INDEX, index);
    return inw(DISPI_DATA);
}

static void draw_vbe(unsigned bpp)
{
    struct pci_dev vga;
    if (!pci_find(match_vga, NULL, 0, &vga))
        fail(2, "no std VGA (1234:1111) on PCI bus 0");
    printf("vga: std VGA at 00:%x.%x\n", vga.slot, vga.fn);
    outw(DISPI_INDEX, 0);
    outw(DISPI_DATA, 0xb0c5);
    uint16_t id = inw(DISPI_DATA);
    if (id < 0xb0c0 || id > 0xb0c5)
        fail(3, "DISPI ID reads %x", id);
    bool is_io = false;
    uint32_t fb = (uint32_t)pci_bar_address(&vga, 0, &is_io);
    if (!fb || is_io)
        fail(4, "BAR 0 is not assigned");
    pci_write16(&vga, PCI_COMMAND, (uint16_t)(pci_read16(&vga, PCI_COMMAND) | PCI_CMD_MEMORY));
    dispi(4, 0); /* ENABLE: off while the mode is set */
    dispi(1, 640);
    dispi(2, 480);
    dispi(3, (uint16_t)bpp);
    dispi(4, 0x41); /* ENABLED | LFB_ENABLED */
    if (dispi_read(1) != 640 || dispi_read(2) != 480 || dispi_read(3) != bpp || !(dispi_read(4) & 1))
        fail(5, "DISPI mode 640x480x%u did not take", bpp);
    printf("vga: 640x480x%u, framebuffer at %x\n", bpp, fb);
    for (uint32_t y = 0; y < 480; y++) {
        for (uint32_t x = 0; x < 640; x++) {
            uint32_t r = x & 0xff, g = y & 0xff, b = (x ^ y) & 0xff;
            if (bpp == 32)
                ((volatile uint32_t*)fb)[y * 640 + x] = r << 16 | g << 8 | b;
            else
                ((volatile uint16_t*)fb)[y * 640 + x] = (uint16_t)((r >> 3) << 11 | (g >> 2) << 5 | (b >> 3));
        }
    }
}

int guest_main(void)
{
    char mode[16] = "text";
    cmdline_get("mode", mode, sizeof mode);
    if (!strcmp(mode, "text")) {
        put_text(25, 0x0d, 0x0e);
    } else if (!strcmp(mode, "text50")) {
        crtc(0x09, (uint8_t)((crtc_read(0x09) & 0xe0) | 7));
        put_text(50, 6, 7);
    } else if (!strcmp(mode, "vbe32")) {
        draw_vbe(32);
    } else if (!strcmp(mode, "vbe16")) {
        draw_vbe(16);
    } else {
        fail(7, "unknown mode '%s'", mode);
    }
    printf("vga: ready\n");
    for (uint32_t i = 0; i < 20000000; i++) {
        if (inb(COM1 + UART_LSR) & UART_LSR_DR) {
            (void)inb(COM1 + UART_RBR);
            return 0;
        }
    }
    fail(6, "no go-ahead from the harness on COM1");
}
