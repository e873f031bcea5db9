/* IDE guest: drives the PIIX3 IDE function (8086:7010) as a driver would, on the primary master ATA disk that the
 * host filled with a known pattern (ide-pattern.py make): software reset and signature, IDENTIFY DEVICE, reads by
 * PIO (READ SECTORS, READ SECTORS EXT, READ MULTIPLE) and by bus master DMA (READ DMA, READ DMA EXT through a
 * two-entry PRD table), writes of a second pattern by PIO (WRITE SECTORS, WRITE MULTIPLE) and DMA (WRITE DMA EXT),
 * FLUSH CACHE, read-back of everything written by the other method, and an out-of-range read (IDNF). The host then
 * checks the image file (ide-pattern.py check). Polling: interrupts stay off in the CPU; the bus master's interrupt
 * bit and the status register say when a command is done. */
#include "guest.h"

#define CMD 0x1f0
#define CTL 0x3f6
#define REG_ERR (CMD + 1)
#define REG_COUNT (CMD + 2)
#define REG_LBA0 (CMD + 3)
#define REG_LBA1 (CMD + 4)
#define REG_LBA2 (CMD + 5)
#define REG_DEV (CMD + 6)
#define REG_STATUS (CMD + 7)
#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DRDY 0x40
#define ST_BSY 0x80
#define BM_START 0x01
#define BM_TO_MEMORY 0x08
#define BM_ST_ACTIVE 0x01
#define BM_ST_ERROR 0x02
#define BM_ST_INTR 0x04
#define SECTORS 8192 /* the 4 MiB image */

static uint16_t g_bm;
static uint8_t g_buf[16 * 512] __attribute__((aligned(4096)));
static uint8_t g_dma[2][4096] __attribute__((aligned(4096)));
static uint32_t g_prd[4] __attribute__((aligned(64)));

/* The patterns of ide-pattern.py: what the host put in the image, and what this guest writes. */
static uint8_t orig_byte(uint32_t s, uint32_t i) { return (uint8_t)((s * 31 + i * 7 + 0x11) ^ (s >> 8)); }
static uint8_t new_byte(uint32_t s, uint32_t i) { return (uint8_t)(~(s * 5 + i * 3) ^ 0xa5); }

static bool match_ide(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == 0x8086 && d->device == 0x7010;
}

static uint8_t wait_ready(void)
{
    for (uint32_t i = 0; i < 1000000; ++i) {
        uint8_t const s = inb(REG_STATUS);
        if (!(s & ST_BSY))
            return s;
    }
    fail(20, "the disk stays busy");
}

static void set_lba28(uint32_t lba, uint8_t count)
{
    outb(REG_DEV, (uint8_t)(0xe0 | ((lba >> 24) & 0xf)));
    outb(REG_COUNT, count);
    outb(REG_LBA0, (uint8_t)lba);
    outb(REG_LBA1, (uint8_t)(lba >> 8));
    outb(REG_LBA2, (uint8_t)(lba >> 16));
}

static void set_lba48(uint32_t lba, uint16_t count)
{
    outb(REG_DEV, 0x40);
    outb(REG_COUNT, (uint8_t)(count >> 8));
    outb(REG_LBA0, (uint8_t)(lba >> 24));
    outb(REG_LBA1, 0);
    outb(REG_LBA2, 0);
    outb(REG_COUNT, (uint8_t)count);
    outb(REG_LBA0, (uint8_t)lba);
    outb(REG_LBA1, (uint8_t)(lba >> 8));
    outb(REG_LBA2, (uint8_t)(lba >> 16));
}

static void pio_in(void* dst, uint32_t words)
{
    __asm__ volatile("rep insw" : "+D"(dst), "+c"(words) : "d"(CMD) : "memory");
}

static void pio_out(const void* src, uint32_t words)
{
    __asm__ volatile("rep outsw" : "+S"(src), "+c"(words) : "d"(CMD) : "memory");
}

/* A PIO data-in command: `blocks` DRQ blocks of `block_sectors` sectors into g_buf. */
static void pio_read(uint8_t command, uint32_t sectors, uint32_t block_sectors)
{
    outb(REG_STATUS, command);
    for (uint32_t done = 0; done < sectors; done += block_sectors) {
        uint8_t const s = wait_ready();
        if ((s & (ST_ERR | ST_DRQ)) != ST_DRQ)
            fail(21, "read command 0x%x: status 0x%x error 0x%x at sector %u", command, s, inb(REG_ERR), done);
        uint32_t const n = sectors - done < block_sectors ? sectors - done : block_sectors;
        pio_in(g_buf + done * 512, n * 256);
    }
    uint8_t const s = wait_ready();
    check((s & (ST_ERR | ST_DRQ)) == 0, 22, "no DRQ or error after the last block");
}

static void pio_write(uint8_t command, uint32_t sectors, uint32_t block_sectors)
{
    outb(REG_STATUS, command);
    for (uint32_t done = 0; done < sectors; done += block_sectors) {
        uint8_t const s = wait_ready();
        if ((s & (ST_ERR | ST_DRQ)) != ST_DRQ)
            fail(23, "write command 0x%x: status 0x%x error 0x%x at sector %u", command, s, inb(REG_ERR), done);
        uint32_t const n = sectors - done < block_sectors ? sectors - done : block_sectors;
        pio_out(g_buf + done * 512, n * 256);
    }
    uint8_t const s = wait_ready();
    check((s & (ST_ERR | ST_DRQ)) == 0, 24, "write ends without error");
}

/* A DMA command over g_dma[0] then g_dma[1] (sectors <= 16). */
static void dma(uint8_t command, uint32_t sectors, bool to_memory)
{
    uint32_t const first = sectors * 512 < 4096 ? sectors * 512 : 4096;
    g_prd[0] = (uint32_t)(uintptr_t)g_dma[0];
    g_prd[1] = first | (sectors * 512 > 4096 ? 0 : 0x80000000u);
    g_prd[2] = (uint32_t)(uintptr_t)g_dma[1];
    g_prd[3] = (sectors * 512 - first) | 0x80000000u;
    outb(g_bm, 0);
    outb(g_bm + 2, BM_ST_ERROR | BM_ST_INTR); /* clear */
    outl(g_bm + 4, (uint32_t)(uintptr_t)g_prd);
    outb(g_bm, to_memory ? BM_TO_MEMORY : 0);
    outb(REG_STATUS, command);
    outb(g_bm, (uint8_t)((to_memory ? BM_TO_MEMORY : 0) | BM_START));
    uint8_t bs = 0;
    for (uint32_t i = 0; i < 1000000; ++i) {
        bs = inb(g_bm + 2);
        if (bs & BM_ST_INTR)
            break;
    }
    outb(g_bm, 0);
    uint8_t const s = wait_ready();
    if (!(bs & BM_ST_INTR) || (bs & (BM_ST_ERROR | BM_ST_ACTIVE)) || (s & (ST_ERR | ST_DRQ)))
        fail(25, "DMA command 0x%x: bus master status 0x%x, status 0x%x, error 0x%x", command, bs, s, inb(REG_ERR));
    outb(g_bm + 2, BM_ST_INTR);
}

static void expect(const uint8_t* p, uint32_t lba, uint32_t sectors, bool written, const char* what)
{
    for (uint32_t s = 0; s < sectors; ++s)
        for (uint32_t i = 0; i < 512; ++i) {
            uint8_t const want = written ? new_byte(lba + s, i) : orig_byte(lba + s, i);
            if (p[s * 512 + i] != want)
                fail(26, "%s: sector %u byte %u is 0x%x, expected 0x%x", what, lba + s, i, p[s * 512 + i], want);
        }
    printf("ide: %s: sectors %u-%u hold the %s pattern\n", what, lba, lba + sectors - 1, written ? "written" : "host");
}

static void fill_new(uint8_t* p, uint32_t lba, uint32_t sectors)
{
    for (uint32_t s = 0; s < sectors; ++s)
        for (uint32_t i = 0; i < 512; ++i)
            p[s * 512 + i] = new_byte(lba + s, i);
}

int guest_main(void)
{
    struct pci_dev ide;
    if (!pci_find(match_ide, NULL, 0, &ide))
        fail(2, "no PIIX3 IDE (8086:7010) on PCI bus 0");
    check((pci_read32(&ide, 0x08) >> 8) == 0x010180, 3, "class 0x010180 (IDE, bus master, legacy mode)");
    bool io = false;
    g_bm = (uint16_t)pci_bar_address(&ide, 4, &io);
    check(io && g_bm != 0, 4, "BAR 4 is an assigned I/O BAR");
    pci_write16(&ide, PCI_COMMAND, PCI_CMD_IO | PCI_CMD_MASTER);
    check((pci_read16(&ide, 0x40) & 0x8000) && (pci_read16(&ide, 0x42) & 0x8000), 13,
          "IDETIM: both channels' decode enabled (by the firmware, or hako for direct boot)");
    printf("ide: PIIX3 IDE at 00:%x.%x, bus master at 0x%x\n", ide.slot, ide.fn, g_bm);

    /* Software reset: the ATA signature. The host waits at least 2 ms after clearing SRST before it looks at BSY
     * (ATA/ATAPI-6 9.2); a device may finish the reset some time after the write that clears SRST (QEMU's does,
     * from its main loop, so later under load). */
    check(pm_timer_init(), 21, "an ACPI PM timer for the reset delays");
    outb(CTL, 0x04);
    delay_us(10);
    outb(CTL, 0x00);
    /* Then, as Linux's ata_sff_wait_after_reset, poll (bounded: 1 s) until the device shows its signature. */
    bool signature = false;
    for (int tries = 0; tries < 500 && !signature; ++tries) {
        delay_us(2000);
        wait_ready();
        outb(REG_DEV, 0xa0);
        signature = inb(REG_COUNT) == 1 && inb(REG_LBA0) == 1 && inb(REG_LBA1) == 0 && inb(REG_LBA2) == 0;
    }
    check(signature, 5, "ATA signature 01/01/00/00 after SRST");
    check((wait_ready() & ST_DRDY) != 0, 6, "DRDY after reset");

    outb(REG_STATUS, 0xec); /* IDENTIFY DEVICE */
    check((wait_ready() & ST_DRQ) != 0, 7, "IDENTIFY gives data");
    uint16_t id[256];
    pio_in(id, 256);
    uint32_t const lba28 = id[60] | (uint32_t)id[61] << 16;
    char model[41];
    for (int i = 0; i < 20; ++i) {
        model[2 * i] = (char)(id[27 + i] >> 8);
        model[2 * i + 1] = (char)id[27 + i];
    }
    model[40] = 0;
    for (int i = 39; i >= 0 && model[i] == ' '; --i)
        model[i] = 0;
    printf("ide: IDENTIFY: model '%s', %u sectors, LBA48 %s, multiple up to %u\n", model, lba28,
           (id[83] & 0x400) ? "yes" : "no", id[47] & 0xff);
    check(lba28 == SECTORS, 8, "IDENTIFY reports the 4 MiB image");
    check((id[49] & 0x300) == 0x300, 9, "LBA and DMA supported");

    /* Reads of the host's pattern. */
    set_lba28(0, 8);
    pio_read(0x20, 8, 1); /* READ SECTORS */
    expect(g_buf, 0, 8, false, "PIO READ SECTORS");
    set_lba48(4000, 3);
    pio_read(0x24, 3, 1); /* READ SECTORS EXT */
    expect(g_buf, 4000, 3, false, "PIO READ SECTORS EXT");
    set_lba28(8, 10);
    dma(0xc8, 10, true); /* READ DMA, two PRDs */
    expect(g_dma[0], 8, 8, false, "DMA READ DMA (PRD 1)");
    expect(g_dma[1], 16, 2, false, "DMA READ DMA (PRD 2)");
    set_lba48(8191, 1);
    dma(0x25, 1, true); /* READ DMA EXT of the last sector */
    expect(g_dma[0], 8191, 1, false, "DMA READ DMA EXT");

    /* Writes of the guest's pattern. */
    fill_new(g_buf, 100, 4);
    set_lba28(100, 4);
    pio_write(0x30, 4, 1); /* WRITE SECTORS */
    outb(REG_COUNT, 4);
    outb(REG_STATUS, 0xc6); /* SET MULTIPLE MODE 4 */
    check((wait_ready() & ST_ERR) == 0, 10, "SET MULTIPLE MODE 4");
    fill_new(g_buf, 300, 6);
    set_lba28(300, 6);
    pio_write(0xc5, 6, 4); /* WRITE MULTIPLE */
    fill_new(g_dma[0], 200, 8);
    fill_new(g_dma[1], 208, 4);
    set_lba48(200, 12);
    dma(0x35, 12, false); /* WRITE DMA EXT */
    outb(REG_STATUS, 0xe7); /* FLUSH CACHE */
    check((wait_ready() & ST_ERR) == 0, 11, "FLUSH CACHE");
    printf("ide: wrote sectors 100-103 (PIO), 300-305 (WRITE MULTIPLE), 200-211 (DMA), flushed\n");

    /* Read back by the other method. */
    set_lba28(100, 4);
    dma(0xc8, 4, true);
    expect(g_dma[0], 100, 4, true, "DMA read-back of the PIO write");
    set_lba48(200, 12);
    pio_read(0x29, 12, 4); /* READ MULTIPLE EXT */
    expect(g_buf, 200, 12, true, "READ MULTIPLE EXT read-back of the DMA write");
    set_lba28(300, 6);
    pio_read(0xc4, 6, 4); /* READ MULTIPLE */
    expect(g_buf, 300, 6, true, "READ MULTIPLE read-back");

    /* Out of range: an error, nothing transferred (hako reports IDNF|ABRT as ATA/ATAPI-6 says, QEMU ABRT). */
    set_lba28(SECTORS, 1);
    outb(REG_STATUS, 0x20);
    uint8_t const s = wait_ready();
    uint8_t const err = inb(REG_ERR);
    check((s & (ST_ERR | ST_DRQ)) == ST_ERR && (err & 0x14), 12, "a read past the end fails (IDNF or ABRT)");
    printf("ide: read past the end refused (error 0x%x)\n", err);
    return 0;
}
