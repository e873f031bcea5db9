/* The pflash test firmware: runs from pflash unit 0 (this image, read-only) and drives pflash unit 1 (the VARS
 * flash, VARS_SIZE bytes directly below it) the way OVMF's QemuFlashFvbServicesRuntimeDxe and a CFI driver do:
 * OVMF's flash detection sequence, CFI query, read ID, byte/word/dword program, block erase, status register and
 * clear status, then program and erase on its own (read-only) flash, which must fail with the status error bits and
 * change nothing; last, what OVMF does on i440FX before it uses the ACPI PM timer: the PIIX4 PM function's PMBA
 * moved to 0xB000, and the timer read there. Every value is printed on COM1 ("pflash: ...", "check: ...: ok|FAILED"); the exit code through
 * isa-debug-exit (0xf4) is 0 when every check passed, else the number of the first failed check.
 * The host made the VARS file with pflash-vars.py (byte i = (7i + 3) & 0xff, block 1 all 0xff) and checks it
 * afterwards. The sector size is 4 KiB (QEMU's pc machine and hako). */
#include <stdint.h>

#define FW_SIZE 0x10000u
#define VARS_SIZE 0x10000u
#define VARS_BASE (0u - FW_SIZE - VARS_SIZE)
#define SECTOR 0x1000u
#define CODE_PROBE (0u - FW_SIZE + 0x8000u) /* inside this image, in the padding */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %w1" : : "a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static uint32_t pci_read32(uint32_t dev, uint32_t fn, uint32_t reg)
{
    outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
    return inl(0xcfc);
}
static void pci_write32(uint32_t dev, uint32_t fn, uint32_t reg, uint32_t v)
{
    outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
    outl(0xcfc, v);
}

static void putc_serial(char c)
{
    for (int i = 0; i < 100000 && !(inb(0x3fd) & 0x20); ++i)
        ;
    outb(0x3f8, (uint8_t)c);
}
static void puts_serial(char const* s)
{
    while (*s)
        putc_serial(*s++);
}
static void put_hex(uint32_t v, int digits)
{
    for (int i = digits - 1; i >= 0; --i)
        putc_serial("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}

static volatile uint8_t* const vars8 = (volatile uint8_t*)VARS_BASE;
static int failed_check;
static int check_no;

static void check(char const* what, uint32_t got, uint32_t want)
{
    ++check_no;
    puts_serial("check: ");
    puts_serial(what);
    puts_serial(": ");
    put_hex(got, 8);
    if (got == want) {
        puts_serial(" ok\n");
        return;
    }
    puts_serial(" FAILED (want ");
    put_hex(want, 8);
    puts_serial(")\n");
    if (!failed_check)
        failed_check = check_no;
}

static uint8_t pattern(uint32_t off)
{
    if (off >= SECTOR && off < 2 * SECTOR)
        return 0xff;
    return (uint8_t)(off * 7 + 3);
}

static void cmd(uint32_t off, uint8_t c) { vars8[off] = c; }
static uint32_t rd8(uint32_t off) { return vars8[off]; }
static uint32_t rd16(uint32_t off) { return *(volatile uint16_t*)(VARS_BASE + off); }
static uint32_t rd32(uint32_t off) { return *(volatile uint32_t*)(VARS_BASE + off); }

/* Runs from RAM: its own flash (unit 0) leaves read-array mode in between, so nothing here may fetch from it. */
__attribute__((section(".ramcode"), noinline)) static void code_flash_ops(uint32_t* out)
{
    volatile uint8_t* code = (volatile uint8_t*)CODE_PROBE;
    out[0] = *code;
    *code = 0x10; /* program setup */
    *code = 0x00; /* data: would clear every bit */
    out[1] = *code; /* status */
    *code = 0x50; /* clear status */
    *code = 0x70; /* read status */
    out[2] = *code;
    *code = 0x20; /* block erase setup */
    *code = 0xd0; /* confirm */
    out[3] = *code;
    *code = 0x50;
    *code = 0xff; /* read array */
    out[4] = *code;
}

void fw_main(void)
{
    puts_serial("pflash: firmware running from pflash unit 0\n");

    /* 1. Read array: the whole flash as dwords (on hako these reads hit a KVM memory slot: no exits; the host test
     *    checks hako's MMIO exit count stays far below this loop's 16384 reads). */
    uint32_t sum = 0, want = 0;
    for (uint32_t off = 0; off < VARS_SIZE; off += 4) {
        sum += rd32(off);
        want += pattern(off) | (uint32_t)pattern(off + 1) << 8 | (uint32_t)pattern(off + 2) << 16
            | (uint32_t)pattern(off + 3) << 24;
    }
    check("read array: sum of all dwords", sum, want);
    check("read array byte 0", rd8(0), pattern(0));
    check("read array dword 4", rd32(4),
        pattern(4) | (uint32_t)pattern(5) << 8 | (uint32_t)pattern(6) << 16 | (uint32_t)pattern(7) << 24);
    check("read array last byte", rd8(VARS_SIZE - 1), pattern(VARS_SIZE - 1));

    /* 2. OVMF's QemuFlashDetected(): clear status must not read back as RAM would, status must read 0 after it,
     *    and programming the same byte must not set the program error bit. */
    uint8_t orig = (uint8_t)rd8(0);
    cmd(0, 0x50);
    check("after clear status: read array", rd8(0), orig);
    cmd(0, 0x70);
    check("status after clear", rd8(0), 0x00);
    cmd(0, 0x10);
    cmd(0, orig);
    cmd(0, 0x70);
    check("status after program of the same byte", rd8(0), 0x80);
    cmd(0, 0x50);
    cmd(0, 0xff);
    check("byte 0 unchanged", rd8(0), orig);

    /* 3. CFI query (command at byte address 0x55, as for an x8 part). */
    cmd(0x55, 0x98);
    puts_serial("pflash: cfi");
    for (uint32_t i = 0; i < 0x40; ++i) {
        putc_serial(' ');
        put_hex(rd8(i), 2);
    }
    putc_serial('\n');
    check("cfi Q", rd8(0x10), 'Q');
    check("cfi R", rd8(0x11), 'R');
    check("cfi Y", rd8(0x12), 'Y');
    check("cfi command set (Intel)", rd8(0x13) | rd8(0x14) << 8, 0x0001);
    check("cfi primary table at 0x31", rd8(0x15) | rd8(0x16) << 8, 0x0031);
    check("cfi interface x8/x16", rd8(0x28) | rd8(0x29) << 8, 0x0002);
    check("cfi erase regions", rd8(0x2c), 1);
    check("cfi blocks - 1", rd8(0x2d) | rd8(0x2e) << 8, VARS_SIZE / SECTOR - 1);
    check("cfi block size / 256", rd8(0x2f) | rd8(0x30) << 8, SECTOR / 256);
    check("cfi PRI", rd8(0x31) | rd8(0x32) << 8 | rd8(0x33) << 16, 'P' | 'R' << 8 | 'I' << 16);
    check("cfi word read", rd16(0x10), 'Q');
    check("cfi past the table", rd8(0xf0), 0);
    cmd(0, 0xff);
    check("read array after cfi", rd8(0), orig);

    /* 4. Read identifier. */
    cmd(0, 0x90);
    puts_serial("pflash: id");
    for (uint32_t i = 0; i < 4; ++i) {
        putc_serial(' ');
        put_hex(rd8(i), 2);
    }
    putc_serial('\n');
    check("id beyond 1", rd8(2), 0);
    cmd(0, 0xff);

    /* 5. Program: byte (0x10), byte with 0x40, then word and dword writes, each into erased flash (block 1); a second
     *    program only clears bits (0xa5 -> 0x25 clears bit 7 only). */
    cmd(SECTOR + 0x10, 0x10);
    vars8[SECTOR + 0x10] = 0xa5;
    check("status after program", rd8(SECTOR + 0x10), 0x80);
    check("status read as dword", rd32(SECTOR + 0x10), 0x00800080);
    cmd(0, 0xff);
    check("programmed byte", rd8(SECTOR + 0x10), 0xa5);
    cmd(SECTOR + 0x10, 0x40);
    vars8[SECTOR + 0x10] = 0x25;
    cmd(0, 0xff);
    check("reprogrammed byte (bit cleared)", rd8(SECTOR + 0x10), 0x25);
    cmd(SECTOR + 0x20, 0x40);
    *(volatile uint16_t*)(VARS_BASE + SECTOR + 0x20) = 0x1234;
    cmd(0, 0xff);
    check("programmed word", rd16(SECTOR + 0x20), 0x1234);
    cmd(SECTOR + 0x24, 0x10);
    *(volatile uint32_t*)(VARS_BASE + SECTOR + 0x24) = 0xdeadbeef;
    cmd(0, 0xff);
    check("programmed dword", rd32(SECTOR + 0x24), 0xdeadbeef);
    check("neighbour untouched", rd8(SECTOR + 0x28), 0xff);

    /* 6. Block erase of block 2 (the command and confirm at an address inside the block). */
    cmd(2 * SECTOR + 0x10, 0x20);
    cmd(2 * SECTOR + 0x10, 0xd0);
    check("status after erase", rd8(2 * SECTOR + 0x10), 0x80);
    cmd(0, 0xff);
    check("erased first byte", rd8(2 * SECTOR), 0xff);
    check("erased last dword", rd32(3 * SECTOR - 4), 0xffffffff);
    check("next block kept", rd8(3 * SECTOR), pattern(3 * SECTOR));
    check("block before kept", rd8(SECTOR + 0x10), 0x25);

    /* 7. Clear status returns to read array; the status then reads 0. */
    cmd(0, 0x50);
    check("clear status then read array", rd8(0), orig);
    cmd(0, 0x70);
    check("status cleared", rd8(0), 0x00);
    cmd(0, 0xff);

    /* 8. The firmware's own flash is read-only: program and erase set the error bits and change nothing. */
    uint32_t out[5];
    code_flash_ops(out);
    check("code flash: status after program", out[1], 0x90);
    check("code flash: status after clear", out[2], 0x00);
    check("code flash: status after erase", out[3], 0xa0);
    check("code flash: byte unchanged", out[4], out[0]);

    /* 9. What OVMF's PlatformPei/AcpiTimerLib do on i440FX: host bridge 8086:1237, then the PIIX4 PM function at
     *    00:01.3 (8086:7113): PMBA (0x40) and-then-or to 0xB000, PMREGMISC (0x80) PMIOSE; the 24-bit PM timer at
     *    PMBA + 8 must then run. */
    check("host bridge 00:00.0", pci_read32(0, 0, 0), 0x12378086);
    check("PIIX4 PM 00:01.3", pci_read32(1, 3, 0), 0x71138086);
    check("PMBA at reset", pci_read32(1, 3, 0x40), 0x00000001);
    check("PMREGMISC at reset", pci_read32(1, 3, 0x80) & 0xff, 0x00);
    pci_write32(1, 3, 0x40, (pci_read32(1, 3, 0x40) & ~0xffc0u) | 0xb000);
    pci_write32(1, 3, 0x80, pci_read32(1, 3, 0x80) | 1);
    check("PMBA programmed", pci_read32(1, 3, 0x40), 0x0000b001);
    uint32_t t1 = inl(0xb008);
    for (volatile int i = 0; i < 2000; ++i)
        ;
    uint32_t t2 = inl(0xb008);
    check("PM timer is 24 bits", (t1 | t2) >> 24, 0);
    check("PM timer at 0xB008 runs", t1 != t2, 1);

    if (failed_check) {
        puts_serial("FAIL\n");
        outl(0xf4, (uint32_t)failed_check);
    } else {
        puts_serial("PASS\n");
        outl(0xf4, 0);
    }
    for (;;)
        __asm__ volatile("hlt");
}
