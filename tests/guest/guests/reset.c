/* reset: system reset. CMOS NVRAM byte 0x40 is a boot counter. First boot: write 0x5A there, then reset through
 * port 0xCF9 (write 0x06: full reset) or, with method=kbd, through the i8042 (command 0xFE on port 0x64, pulse the
 * reset line); still running after a bounded wait is a failure. Second boot: sees 0x5A, clears it, passes.
 *
 * Exit codes: 2 the reset did nothing, 3 unknown method, 4 the marker has an unexpected value.
 */
#include "guest.h"

#define BOOT_MARKER_REG 0x40
#define BOOT_MARKER 0x5A

int guest_main(void)
{
    char method[16] = "cf9";
    (void)cmdline_get("method", method, sizeof(method));
    uint8_t marker = cmos_read(BOOT_MARKER_REG);
    printf("reset: CMOS[0x40] = %x, method %s\n", marker, method);
    if (marker == BOOT_MARKER) {
        cmos_write(BOOT_MARKER_REG, 0);
        check(cmos_read(BOOT_MARKER_REG) == 0, 4, "second boot: marker found and cleared");
        return 0;
    }
    cmos_write(BOOT_MARKER_REG, BOOT_MARKER);
    check(cmos_read(BOOT_MARKER_REG) == BOOT_MARKER, 4, "first boot: marker written to CMOS NVRAM");
    if (strcmp(method, "cf9") == 0) {
        printf("reset: writing 0x06 to port 0xCF9\n");
        outb(0xCF9, 0x06);
    } else if (strcmp(method, "kbd") == 0) {
        printf("reset: i8042 command 0xFE (pulse reset)\n");
        for (uint32_t i = 0; i < 100000 && (inb(0x64) & 0x02); i++) /* input buffer full: wait */
            cpu_relax();
        outb(0x64, 0xFE);
    } else {
        cmos_write(BOOT_MARKER_REG, 0);
        fail(3, "unknown method=%s (cf9 or kbd)", method);
    }
    for (uint32_t i = 0; i < 3000000; i++)
        cpu_relax();
    cmos_write(BOOT_MARKER_REG, 0);
    fail(2, "still running after the reset request");
}
