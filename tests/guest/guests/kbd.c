/* kbd: drives the i8042's keyboard as a polling driver and reports every scan code byte it reads on COM1, for the
 * VNC input test (run-vnc-test.py), which types keys through a VNC client and checks the bytes.
 *
 *   mode=xlate  the controller as firmware leaves it: keyboard in set 2, the controller translating to set 1
 *   mode=set2   translation off (command byte bit 6 clear): raw set 2 codes
 *   mode=set1   translation off and the keyboard switched to set 1 (F0 01)
 *
 * Setup: interrupts off in the command byte (the guest polls), keyboard interface enabled, keyboard reset (FA AA),
 * scan code set selected and read back (F0 00), scanning enabled (F4); the mouse interface enabled (A8) and the
 * mouse set streaming (D4 F4, FA). Then "kbd: ready" and, for every byte, "kbd: byte XX" (keyboard) or
 * "kbd: mouse XX" (mouse), until any byte arrives on COM1 (the harness's "done"), bounded by an iteration count.
 * Exit codes: 2 controller timeout, 3 unexpected reply, 4 no go-ahead, 5 unknown mode.
 */
#include "guest.h"

#define I8042_DATA 0x60
#define I8042_STATUS 0x64
#define STATUS_OBF 0x01
#define STATUS_IBF 0x02
#define STATUS_AUXB 0x20
#define CMD_XLATE 0x40

static void wait_input_empty(void)
{
    for (uint32_t i = 0; i < 100000; i++)
        if (!(inb(I8042_STATUS) & STATUS_IBF))
            return;
    fail(2, "i8042 input buffer stays full");
}

static uint8_t read_byte(void)
{
    for (uint32_t i = 0; i < 100000; i++)
        if (inb(I8042_STATUS) & STATUS_OBF)
            return inb(I8042_DATA);
    fail(2, "i8042: no byte to read");
}

static void command(uint8_t c)
{
    wait_input_empty();
    outb(I8042_STATUS, c);
}

static void data(uint8_t d)
{
    wait_input_empty();
    outb(I8042_DATA, d);
}

static void expect(uint8_t want, const char* what)
{
    uint8_t got = read_byte();
    if (got != want)
        fail(3, "%s: read %x, expected %x", what, got, want);
}

int guest_main(void)
{
    char mode[16] = "xlate";
    cmdline_get("mode", mode, sizeof mode);
    bool xlate = !strcmp(mode, "xlate");
    bool set1 = !strcmp(mode, "set1");
    if (!xlate && !set1 && strcmp(mode, "set2"))
        fail(5, "unknown mode '%s'", mode);

    /* Drain whatever is pending, then the command byte: no IRQs, keyboard enabled, translation per mode. */
    for (int i = 0; i < 64 && (inb(I8042_STATUS) & STATUS_OBF); i++)
        (void)inb(I8042_DATA);
    command(0x20);
    uint8_t cmd = read_byte();
    cmd = (uint8_t)((cmd & ~(0x01 | 0x02 | 0x10 | CMD_XLATE)) | (xlate ? CMD_XLATE : 0));
    command(0x60);
    data(cmd);
    command(0xae);

    data(0xff);
    expect(0xfa, "keyboard reset ACK");
    expect(0xaa, "keyboard self-test passed");
    if (set1) {
        data(0xf0);
        expect(0xfa, "set scan code set ACK");
        data(0x01);
        expect(0xfa, "scan code set 1 ACK");
    }
    data(0xf0);
    expect(0xfa, "get scan code set ACK");
    data(0x00);
    expect(0xfa, "get scan code set parameter ACK");
    uint8_t set = read_byte();
    data(0xf4);
    expect(0xfa, "enable scanning ACK");
    command(0xa8);
    command(0xd4);
    data(0xf4);
    expect(0xfa, "mouse enable streaming ACK");
    printf("kbd: mode %s, command byte %x, keyboard reports set %x\n", mode, cmd, set);
    printf("kbd: ready\n");

    for (uint32_t i = 0; i < 4000000; i++) {
        uint8_t status = inb(I8042_STATUS);
        if ((status & STATUS_OBF) && !(status & STATUS_AUXB))
            printf("kbd: byte %02x\n", inb(I8042_DATA));
        else if (status & STATUS_OBF)
            printf("kbd: mouse %02x\n", inb(I8042_DATA));
        if (inb(COM1 + UART_LSR) & UART_LSR_DR) {
            (void)inb(COM1 + UART_RBR);
            printf("kbd: done\n");
            return 0;
        }
    }
    fail(4, "no go-ahead from the harness on COM1");
}
