/* virtio: drives a virtio-pci device as a driver would (lib/virtio.c) and checks the work it does.
 *
 *   dev=rng   virtio-rng: 8 requests of 64 bytes (each in 1 or 2 buffers); every byte count as asked, the bytes not
 *             all equal, no two requests alike.
 *   dev=blk   virtio-blk: capacity from config space; writes a pattern to sectors 0-7 (one 4 KiB buffer) and
 *             2048-2063 (header, two data buffers, status), FLUSH, reads both back and compares; GET_ID equals
 *             serial=; a read at the capacity fails with IOERR. The harness then checks the pattern in the host file.
 *             stop_after_flush=1: stop (interrupts off, halted) once the FLUSH completed, for the SIGKILL test.
 *             crash=1: the crash test instead (run-qcow2-crash-test.sh): generation after generation (from base=N),
 *             write 16 4-KiB blocks chosen by crash_blocks() (every sector tagged "HAKOGEN!", generation, sector),
 *             FLUSH, print "blk: generation G flushed"; until the harness kills the VMM.
 *   legacy=1  through the transitional device's legacy I/O interface (BAR 0, queue by PFN, INTx), as SeaBIOS,
 *             iPXE and pre-4.0 Linux drivers do.
 *   irq=msix  (default) MSI-X vector per queue to this CPU's LAPIC; irq=intx: INTx through the IOAPIC, the PCI
 *             Interrupt Line register (set by firmware or hako) saying which ISA IRQ, the ISR read in the handler.
 *
 *   reboot=1  first boot: start the device (DRIVER_OK, MSI-X on), leave a marker in CMOS NVRAM and reset the machine
 *             through port 0xCF9; second boot: the function must come back reset (virtio status 0, MSI-X off, the
 *             queue disabled) before the test runs as usual. Needs the VMM to restart the guest on reset.
 *
 * Every completion is waited for with interrupts enabled and must come with an interrupt.
 * Exit codes: 2 device not found, 3 feature negotiation, 4 queue setup, 5 interrupt setup, 6 timeout (no used
 * buffer or no interrupt), 7 rng data wrong, 8 blk status wrong, 9 blk data mismatch, 10 GET_ID wrong,
 * 11 device needs reset, 12 device not reset by the machine reset.
 */
#include "guest.h"

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define QUEUE_VECTOR 0x41
#define CONFIG_VECTOR 0x42
#define WAIT_SPINS 20000000u

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_F_FLUSH 9

static struct virtio_dev s_dev;
static struct virtq s_q;
static bool s_intx;
static uint8_t s_intx_irq;
static volatile uint32_t s_irqs, s_isr_reads;

static uint8_t s_buf[16384] __attribute__((aligned(4096)));
static uint8_t s_buf2[16384] __attribute__((aligned(4096)));
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} PACKED s_hdr __attribute__((aligned(16)));
static volatile uint8_t s_status;

static bool s_legacy;

static void queue_isr(struct int_frame* f)
{
    (void)f;
    if (s_intx) {
        /* Reading the ISR clears it and deasserts INTx (legacy: port BAR 0 + 0x13). */
        uint8_t isr = s_legacy ? inb((uint16_t)(virtio_legacy_port(&s_dev) + 0x13)) : virtio_read_isr(&s_dev);
        if (isr & 1)
            s_isr_reads++;
    }
    s_irqs++;
    lapic_eoi();
}

/* Waits (interrupts on) for the next used entry and for an interrupt since `irqs_before`. */
static void wait_used(uint32_t irqs_before, uint32_t* id, uint32_t* len)
{
    sti();
    uint32_t spins = 0;
    bool got = false;
    while (spins++ < WAIT_SPINS) {
        if (!got)
            got = virtq_next_used(&s_q, id, len);
        if (got && s_irqs != irqs_before)
            break;
        cpu_relax();
    }
    cli();
    uint8_t status = s_legacy ? inb((uint16_t)(virtio_legacy_port(&s_dev) + 0x12)) : virtio_status(&s_dev);
    if (status & VIRTIO_STATUS_NEEDS_RESET)
        fail(11, "device set NEEDS_RESET");
    if (!got)
        fail(6, "no used buffer (used idx %u, irqs %u)", s_q.used->idx, s_irqs);
    if (s_irqs == irqs_before)
        fail(6, "used buffer without an interrupt");
}

static void setup_interrupts(void)
{
    lapic_enable();
    pic_remap(IRQ_VECTOR_BASE, IRQ_VECTOR_BASE + 8);
    idt_set_handler(QUEUE_VECTOR, queue_isr);
    if (!s_intx) {
        if (!virtio_msix_setup(&s_dev, 0, CONFIG_VECTOR) || !virtio_msix_setup(&s_dev, 1, QUEUE_VECTOR))
            fail(5, "MSI-X setup failed (cap %x table %x entries %u)", s_dev.msix_cap, s_dev.msix_table,
                s_dev.msix_entries);
        printf("virtio: MSI-X, %u entries, queue vector %x\n", s_dev.msix_entries, QUEUE_VECTOR);
        return;
    }
    struct madt_info madt;
    if (!madt_parse(&madt))
        fail(5, "no MADT");
    if (madt.ioapic_count)
        g_ioapic_base = madt.ioapic_addr;
    s_intx_irq = s_dev.pci.irq_line;
    if (s_dev.pci.irq_pin == 0 || s_intx_irq == 0 || s_intx_irq >= 16)
        fail(5, "no usable INTx (pin %u line %u)", s_dev.pci.irq_pin, s_intx_irq);
    uint16_t flags;
    uint32_t gsi = madt_irq_to_gsi(&madt, s_intx_irq, &flags);
    /* PCI INTx is level-triggered; the chipset presents it active-high to the IOAPIC (as the ACPI _PRT says). */
    ioapic_route(gsi - madt.ioapic_gsi_base, QUEUE_VECTOR, lapic_id(), 0x0d);
    pci_write16(&s_dev.pci, PCI_COMMAND, (uint16_t)(pci_read16(&s_dev.pci, PCI_COMMAND) & ~PCI_CMD_INTX_DISABLE));
    printf("virtio: INTx pin %u -> IRQ %u -> GSI %u, vector %x\n", s_dev.pci.irq_pin, s_intx_irq, gsi, QUEUE_VECTOR);
}

static void start(uint16_t type, uint64_t wanted)
{
    if (!virtio_find(type, 0, &s_dev))
        fail(2, "device not found");
    uint64_t features;
    setup_interrupts();
    if (s_legacy) {
        if (!virtio_legacy_start(&s_dev, (uint32_t)wanted, &s_q, 0, 0))
            fail(4, "legacy interface setup failed");
        return;
    }
    if (!virtio_negotiate(&s_dev, wanted, &features))
        fail(3, "feature negotiation failed");
    if (!virtq_setup(&s_dev, &s_q, 0, 16, 0, s_intx ? VIRTIO_MSI_NO_VECTOR : 1))
        fail(4, "queue setup failed");
    virtio_driver_ok(&s_dev);
    if (virtio_status(&s_dev) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(11, "status %x after DRIVER_OK", virtio_status(&s_dev));
}

static void test_rng(void)
{
    start(VIRTIO_ID_RNG, 0);
    static uint8_t seen[8][64];
    for (unsigned r = 0; r < 8; r++) {
        memset(s_buf, 0, 64);
        struct virtq_buf bufs[2] = { { (uint32_t)(uintptr_t)s_buf, 64, true }, { 0, 0, true } };
        unsigned n = 1;
        if (r & 1) { /* the same 64 bytes as two buffers */
            bufs[0].len = 24;
            bufs[1].addr = (uint32_t)(uintptr_t)(s_buf + 24);
            bufs[1].len = 40;
            n = 2;
        }
        uint32_t before = s_irqs, id, len;
        uint16_t head = virtq_add(&s_q, bufs, n);
        virtq_kick(&s_q);
        wait_used(before, &id, &len);
        if (id != head || len != 64)
            fail(7, "request %u: used id %u len %u, expected %u and 64", r, id, len, head);
        bool all_same = true;
        for (unsigned i = 1; i < 64; i++)
            all_same = all_same && s_buf[i] == s_buf[0];
        if (all_same)
            fail(7, "request %u: 64 equal bytes", r);
        for (unsigned p = 0; p < r; p++)
            if (memcmp(seen[p], s_buf, 64) == 0)
                fail(7, "request %u repeats request %u", r, p);
        memcpy(seen[r], s_buf, 64);
        printf("rng: request %u: %u bytes, first %02x %02x %02x %02x\n", r, len, s_buf[0], s_buf[1], s_buf[2],
            s_buf[3]);
    }
}

/* The byte the test writes at offset i of sector s (the harness computes the same). */
static uint8_t pattern(uint32_t sector, uint32_t i) { return (uint8_t)((sector * 7u + i * 13u + (i >> 9)) ^ 0x5a); }

static uint8_t blk_request(uint32_t type, uint64_t sector, struct virtq_buf* data, unsigned ndata, uint32_t* used_len)
{
    struct virtq_buf bufs[4];
    unsigned n = 0;
    s_hdr.type = type;
    s_hdr.reserved = 0;
    s_hdr.sector = sector;
    bufs[n++] = (struct virtq_buf) { (uint32_t)(uintptr_t)&s_hdr, 16, false };
    for (unsigned i = 0; i < ndata; i++)
        bufs[n++] = data[i];
    s_status = 0xff;
    bufs[n++] = (struct virtq_buf) { (uint32_t)(uintptr_t)&s_status, 1, true };
    uint32_t before = s_irqs, id;
    uint16_t head = virtq_add(&s_q, bufs, n);
    virtq_kick(&s_q);
    wait_used(before, &id, used_len);
    if (id != head)
        fail(8, "used id %u, expected %u", id, head);
    return s_status;
}

static void fill(uint8_t* p, uint32_t first_sector, uint32_t sectors)
{
    for (uint32_t s = 0; s < sectors; s++)
        for (uint32_t i = 0; i < 512; i++)
            p[s * 512 + i] = pattern(first_sector + s, i);
}

/* The crash test's blocks for generation g (crash-check.py computes the same). */
#define CRASH_BLOCKS_PER_GEN 16
static uint32_t crash_block(uint32_t g, uint32_t k, uint32_t nblocks)
{
    uint32_t h = g * 2654435761u ^ (k + 1) * 2246822519u;
    h ^= h >> 15;
    h *= 2654435761u;
    h ^= h >> 13;
    return h % nblocks;
}

static void crash_loop(uint64_t capacity)
{
    uint32_t base = 0, nblocks = (uint32_t)(capacity / 8);
    cmdline_get_u32("base", &base);
    struct virtq_buf one = { (uint32_t)(uintptr_t)s_buf, 4096, false };
    uint32_t len;
    for (uint32_t g = base + 1;; g++) {
        for (uint32_t k = 0; k < CRASH_BLOCKS_PER_GEN; k++) {
            uint32_t b = crash_block(g, k, nblocks);
            for (uint32_t s = 0; s < 8; s++) {
                uint8_t* p = s_buf + s * 512;
                uint32_t sector = b * 8 + s;
                memcpy(p, "HAKOGEN!", 8);
                memcpy(p + 8, &g, 4);
                memcpy(p + 12, &sector, 4);
                for (uint32_t i = 16; i < 512; i++)
                    p[i] = (uint8_t)(g * 31 + sector + i);
            }
            uint8_t st = blk_request(BLK_T_OUT, (uint64_t)b * 8, &one, 1, &len);
            if (st != BLK_S_OK)
                fail(8, "crash: write of block %u: status %u", b, st);
        }
        uint8_t st = blk_request(BLK_T_FLUSH, 0, NULL, 0, &len);
        if (st != BLK_S_OK)
            fail(8, "crash: flush: status %u", st);
        printf("blk: generation %u flushed\n", g);
    }
}

static void test_blk(void)
{
    start(VIRTIO_ID_BLOCK, 1ull << BLK_F_FLUSH);
    uint64_t capacity = virtio_cfg_read32(&s_dev, 0) | ((uint64_t)virtio_cfg_read32(&s_dev, 4) << 32);
    printf("blk: capacity %llu sectors\n", (unsigned long long)capacity);
    if (capacity < 4096)
        fail(8, "capacity %llu: the test needs 2 MiB", (unsigned long long)capacity);
    uint32_t len, crash = 0;
    if (cmdline_get_u32("crash", &crash) && crash)
        crash_loop(capacity);

    /* Write sectors 0-7 from one buffer, sectors 2048-2063 from two. */
    fill(s_buf, 0, 8);
    struct virtq_buf one = { (uint32_t)(uintptr_t)s_buf, 4096, false };
    uint8_t st = blk_request(BLK_T_OUT, 0, &one, 1, &len);
    if (st != BLK_S_OK)
        fail(8, "write at 0: status %u", st);
    fill(s_buf2, 2048, 16);
    struct virtq_buf two[2] = { { (uint32_t)(uintptr_t)s_buf2, 3072, false },
        { (uint32_t)(uintptr_t)(s_buf2 + 3072), 8192 - 3072, false } };
    st = blk_request(BLK_T_OUT, 2048, two, 2, &len);
    if (st != BLK_S_OK)
        fail(8, "write at 2048: status %u", st);
    st = blk_request(BLK_T_FLUSH, 0, NULL, 0, &len);
    if (st != BLK_S_OK)
        fail(8, "flush: status %u", st);
    printf("blk: wrote sectors 0-7 and 2048-2063, flushed\n");
    uint32_t stop = 0;
    if (cmdline_get_u32("stop_after_flush", &stop) && stop) {
        /* Data safety: the harness kills the VMM now; what FLUSH completed must be on the host's disk. */
        printf("blk: flushed, waiting to be killed\n");
        for (;;)
            hlt();
    }

    /* Read back into cleared buffers, the second range split differently. */
    memset(s_buf, 0, 8192);
    struct virtq_buf rd = { (uint32_t)(uintptr_t)s_buf, 4096, true };
    st = blk_request(BLK_T_IN, 0, &rd, 1, &len);
    if (st != BLK_S_OK || len != 4097)
        fail(8, "read at 0: status %u, used length %u (expected 4097)", st, len);
    fill(s_buf2, 0, 8);
    if (memcmp(s_buf, s_buf2, 4096) != 0)
        fail(9, "sectors 0-7 read back differ");
    memset(s_buf, 0, 8192);
    struct virtq_buf rd2[2] = { { (uint32_t)(uintptr_t)s_buf, 512, true },
        { (uint32_t)(uintptr_t)(s_buf + 512), 8192 - 512, true } };
    st = blk_request(BLK_T_IN, 2048, rd2, 2, &len);
    if (st != BLK_S_OK || len != 8193)
        fail(8, "read at 2048: status %u, used length %u", st, len);
    fill(s_buf2, 2048, 16);
    if (memcmp(s_buf, s_buf2, 8192) != 0)
        fail(9, "sectors 2048-2063 read back differ");
    printf("blk: read back both ranges intact\n");

    /* GET_ID: the serial, NUL-padded to 20 bytes. */
    char want[24] = { 0 };
    cmdline_get("serial", want, sizeof(want));
    memset(s_buf, 0, 20);
    struct virtq_buf id = { (uint32_t)(uintptr_t)s_buf, 20, true };
    st = blk_request(BLK_T_GET_ID, 0, &id, 1, &len);
    if (st != BLK_S_OK)
        fail(10, "GET_ID status %u", st);
    if (strncmp((const char*)s_buf, want, 20) != 0)
        fail(10, "GET_ID '%s', expected '%s'", (const char*)s_buf, want);
    printf("blk: serial '%s'\n", want);

    /* A read past the end fails with IOERR and the device carries on. */
    struct virtq_buf past = { (uint32_t)(uintptr_t)s_buf, 512, true };
    st = blk_request(BLK_T_IN, capacity, &past, 1, &len);
    if (st != BLK_S_IOERR)
        fail(8, "read at capacity: status %u, expected IOERR", st);
    st = blk_request(BLK_T_IN, 0, &past, 1, &len);
    if (st != BLK_S_OK || s_buf[0] != pattern(0, 0))
        fail(8, "read after the error: status %u", st);
    printf("blk: read at the capacity gave IOERR, next request fine\n");
}

#define BOOT_MARKER_REG 0x5c /* a CMOS NVRAM byte no other guest uses */
#define BOOT_MARKER 0xb7

static void reboot_test(uint16_t type)
{
    if (cmos_read(BOOT_MARKER_REG) != BOOT_MARKER) {
        start(type, 0);
        printf("virtio: first boot: device started (status %x), resetting the machine\n", virtio_status(&s_dev));
        cmos_write(BOOT_MARKER_REG, BOOT_MARKER);
        outb(0xcf9, 0x02);
        outb(0xcf9, 0x06);
        for (;;)
            hlt();
    }
    cmos_write(BOOT_MARKER_REG, 0);
    printf("virtio: second boot\n");
    if (!virtio_find(type, 0, &s_dev))
        fail(12, "device gone after reset");
    uint16_t msix_ctrl = s_dev.msix_cap ? pci_read16(&s_dev.pci, (uint8_t)(s_dev.msix_cap + 2)) : 0;
    uint8_t status = virtio_status(&s_dev);
    volatile uint16_t* qsel = (volatile uint16_t*)(s_dev.common + 0x16);
    volatile uint16_t* qen = (volatile uint16_t*)(s_dev.common + 0x1c);
    *qsel = 0;
    uint16_t enabled = *qen;
    printf("virtio: after reset: status %x, MSI-X control %x, queue 0 enable %u\n", status, msix_ctrl, enabled);
    if (status != 0 || (msix_ctrl & 0x8000) || enabled != 0)
        fail(12, "the machine reset did not reset the device");
}

int guest_main(void)
{
    char dev[16] = { 0 }, irq[16] = { 0 };
    cmdline_get("dev", dev, sizeof(dev));
    if (cmdline_get("irq", irq, sizeof(irq)) && strcmp(irq, "intx") == 0)
        s_intx = true;
    uint32_t legacy = 0;
    if (cmdline_get_u32("legacy", &legacy) && legacy) {
        s_legacy = true;
        s_intx = true; /* this driver does the legacy interface without MSI-X */
    }
    uint32_t reboot = 0;
    if (cmdline_get_u32("reboot", &reboot) && reboot)
        reboot_test(strcmp(dev, "blk") == 0 ? VIRTIO_ID_BLOCK : VIRTIO_ID_RNG);
    if (strcmp(dev, "rng") == 0)
        test_rng();
    else if (strcmp(dev, "blk") == 0)
        test_blk();
    else
        fail(2, "dev=rng|blk expected, got '%s'", dev);
    printf("virtio: %u interrupts%s\n", s_irqs, s_intx ? " (INTx)" : " (MSI-X)");
    if (s_intx && s_isr_reads == 0)
        fail(6, "INTx handler never saw the queue bit in the ISR");
    return 0;
}
