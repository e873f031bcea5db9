/* blkbench: disk read benchmark over virtio-blk, IDE or AHCI (bench/disk_io.py runs it under hako and QEMU side by
 * side).
 *
 * At CPL0 (32-bit, the library; emulated instruction by instruction on PVM hosts, so only setup happens here) it sets
 * up the disk named by dev= and fills struct bb_params (blkbench/blkbench.h):
 *   dev=virtio (default): finds the virtio-blk device, negotiates VERSION_1 only, sets up queue 0 with up to 256
 *     entries in its own ring memory and no MSI-X vector;
 *   dev=ide: the PIIX3 IDE function's primary master: bus mastering on, nIEN set, IDENTIFY DEVICE for the capacity;
 *   dev=ahci: the first AHCI port with an ATA disk: AHCI mode, the port stopped, pointed at the command list and FIS
 *     area at BB_AHCI_TABLES and started, IDENTIFY DEVICE through slot 0 (the disk must offer NCQ).
 * Then it finds the ACPI PM timer in the FADT, copies the 64-bit CPL3 part (blkbench/user.c) to BB_USER_BASE and
 * enters it in long mode at CPL3 with IOPL 3 (enter_user64, lib/usermode.S). The CPL3 part runs natively on PVM
 * hosts; it polls, prints and exits by itself.
 *
 * Modes, in order: randread-4k qd1, randread-4k qd32, seqread-1m qd1, seqread-1m qd32 (one 1 MiB descriptor per
 * request). Random offsets are 4 KiB-aligned (xorshift64), sequential ones wrap at the end of the disk.
 *
 * Command line:
 *   ms=N        milliseconds per mode (default 1500)
 *   quick=1     a fixed number of requests per mode instead (requests=N, default 300): the CI smoke test
 *   verify=0|1  check the image pattern BB_PATTERN at the start of the first and last 4 KiB of every read (default 1;
 *               bench/disk_io.py writes the image)
 *   modes=MASK  which modes run (bit i = mode i above; default 0xf)
 *   seed=N      xorshift64 seed
 *
 *   dev=virtio|ide|ahci the disk's bus (default virtio)
 *
 * Exit codes (CPL0 part): 2 no such disk controller, 3 feature negotiation, 4 queue or port setup, 5 no PM timer,
 * 6 too little RAM, 7 the CPL3 image is too large, 8 unknown dev=, 9 the IDE disk stays busy; user.c lists the codes of the CPL3 part. PASS = exit code 0.
 */
#include "guest.h"
#include "blkbench/blkbench.h"

#define VIRTIO_ID_BLOCK 2
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FADT_F_TMR_VAL_EXT (1u << 8)

extern const uint8_t blkbench_user_start[], blkbench_user_end[];

static struct virtio_dev s_dev;
static struct virtq s_q;

static uint32_t cmdline_u32(const char* key, uint32_t def)
{
    uint32_t v;
    return cmdline_get_u32(key, &v) ? v : def;
}


/* ---- IDE: the PIIX3 function's primary master ---- */
#define IDE_CMD 0x1f0
#define IDE_CTL 0x3f6
#define ATA_ST_ERR 0x01
#define ATA_ST_DRQ 0x08
#define ATA_ST_BSY 0x80

static bool match_ide(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == 0x8086 && d->device == 0x7010;
}

static uint8_t ide_wait(void)
{
    for (uint32_t i = 0; i < 10000000; ++i) {
        uint8_t const st = inb(IDE_CMD + 7);
        if (!(st & ATA_ST_BSY))
            return st;
    }
    fail(9, "the IDE disk stays busy");
}

/* Capacity in sectors from IDENTIFY data: the LBA48 count when the disk has the feature set, else the LBA28 one. */
static uint64_t identify_capacity(const uint16_t* id)
{
    if (id[83] & (1u << 10))
        return id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48;
    return id[60] | (uint64_t)id[61] << 16;
}

static void setup_ide(struct bb_params* p)
{
    struct pci_dev ide;
    if (!pci_find(match_ide, NULL, 0, &ide))
        fail(2, "no PIIX3 IDE (8086:7010) on PCI bus 0");
    bool io = false;
    uint64_t const bm = pci_bar_address(&ide, 4, &io);
    if (!io || bm == 0 || bm > 0xfff0)
        fail(4, "IDE bus master BAR 4 is not an assigned I/O BAR (%x)", (uint32_t)bm);
    pci_write16(&ide, PCI_COMMAND, PCI_CMD_IO | PCI_CMD_MASTER);
    /* nIEN stays clear: the bus master's interrupt bit follows the drive's INTRQ, which nIEN would hold low. The
     * PICs are masked and the CPU runs with interrupts off, so the polling loop sees the bit and nothing else. */
    outb(IDE_CTL, 0x00);
    outb(IDE_CMD + 6, 0xa0);
    ide_wait();
    outb(IDE_CMD + 7, 0xec); /* IDENTIFY DEVICE */
    uint8_t const st = ide_wait();
    if ((st & (ATA_ST_ERR | ATA_ST_DRQ)) != ATA_ST_DRQ)
        fail(4, "IDENTIFY DEVICE: status %x", st);
    uint16_t id[256];
    for (int i = 0; i < 256; ++i)
        id[i] = inw(IDE_CMD);
    if (!(id[49] & (1u << 8)))
        fail(4, "the IDE disk has no DMA");
    p->dev = BB_DEV_IDE;
    p->ide_cmd = IDE_CMD;
    p->ide_ctl = IDE_CTL;
    p->ide_bm = (uint32_t)bm;
    p->capacity = identify_capacity(id);
    printf("blkbench: IDE at 00:%x.%x, bus master at %x, LBA48 %u\n", ide.slot, ide.fn, (uint32_t)bm,
        (id[83] >> 10) & 1);
}

/* ---- AHCI: the first port with an ATA disk ---- */
#define HBA_CAP 0x00
#define HBA_GHC 0x04
#define HBA_PI 0x0c
#define GHC_AE (1u << 31)
#define CAP_SNCQ (1u << 30)
#define PX_CLB 0x00
#define PX_CLBU 0x04
#define PX_FB 0x08
#define PX_FBU 0x0c
#define PX_IS 0x10
#define PX_IE 0x14
#define PX_CMD 0x18
#define PX_TFD 0x20
#define PX_SIG 0x24
#define PX_SSTS 0x28
#define PX_SERR 0x30
#define PX_SACT 0x34
#define PX_CI 0x38
#define CMD_ST (1u << 0)
#define CMD_FRE (1u << 4)
#define CMD_FR (1u << 14)
#define CMD_CR (1u << 15)
#define SIG_ATA 0x00000101u

static bool match_ahci(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return (pci_read32(d, 0x08) >> 8) == 0x010601;
}

static volatile uint32_t* reg32(uint64_t base, uint32_t off) { return (volatile uint32_t*)(uintptr_t)(base + off); }

static void setup_ahci(struct bb_params* p)
{
    struct pci_dev hba;
    if (!pci_find(match_ahci, NULL, 0, &hba))
        fail(2, "no AHCI controller (class 0x010601) on PCI bus 0");
    bool io = true;
    uint64_t const abar = pci_bar_address(&hba, 5, &io);
    if (io || abar == 0 || abar >= 0x100000000ull)
        fail(4, "AHCI BAR 5 is not an assigned 32-bit memory BAR");
    pci_write16(&hba, PCI_COMMAND, PCI_CMD_MEMORY | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE);
    *reg32(abar, HBA_GHC) |= GHC_AE;
    uint32_t const cap = *reg32(abar, HBA_CAP);
    if (!(cap & CAP_SNCQ) || ((cap >> 8) & 0x1f) != 31)
        fail(4, "the HBA lacks NCQ or 32 command slots (CAP %x)", cap);
    uint32_t const pi = *reg32(abar, HBA_PI);
    uint64_t port = 0;
    uint32_t n = 0;
    for (; n < 32; ++n) {
        if (!(pi & (1u << n)))
            continue;
        uint64_t const r = abar + 0x100 + 0x80u * n;
        if ((*reg32(r, PX_SSTS) & 0xf) == 3 && *reg32(r, PX_SIG) == SIG_ATA) {
            port = r;
            break;
        }
    }
    if (!port)
        fail(4, "no AHCI port with an ATA disk (PI %x)", pi);

    /* Stop the port (firmware may have run it), point it at our command list and FIS area, start it. */
    *reg32(port, PX_CMD) &= ~CMD_ST;
    for (uint32_t i = 0; i < 1000000 && (*reg32(port, PX_CMD) & CMD_CR); ++i)
        ;
    *reg32(port, PX_CMD) &= ~CMD_FRE;
    for (uint32_t i = 0; i < 1000000 && (*reg32(port, PX_CMD) & CMD_FR); ++i)
        ;
    if (*reg32(port, PX_CMD) & (CMD_CR | CMD_FR))
        fail(4, "the AHCI port does not stop (PxCMD %x)", *reg32(port, PX_CMD));
    uint64_t const t = BB_AHCI_TABLES;
    memset((void*)(uintptr_t)t, 0, BB_AHCI_TABLES_SIZE);
    *reg32(port, PX_CLB) = (uint32_t)t;
    *reg32(port, PX_CLBU) = 0;
    *reg32(port, PX_FB) = (uint32_t)(t + BB_AHCI_FIS);
    *reg32(port, PX_FBU) = 0;
    *reg32(port, PX_SERR) = 0xffffffffu;
    *reg32(port, PX_IE) = 0;
    *reg32(port, PX_IS) = 0xffffffffu;
    *reg32(port, PX_CMD) |= CMD_FRE;
    *reg32(port, PX_CMD) |= CMD_ST;

    /* IDENTIFY DEVICE in slot 0: a register FIS and one PRD entry for the 512 bytes. */
    static uint16_t id[256] __attribute__((aligned(16)));
    volatile uint32_t* hdr = (volatile uint32_t*)(uintptr_t)t;
    uint64_t const table = t + BB_AHCI_CMD_TABLES;
    volatile uint8_t* cfis = (volatile uint8_t*)(uintptr_t)table;
    volatile uint32_t* prd = (volatile uint32_t*)(uintptr_t)(table + 0x80);
    hdr[0] = 5u | (1u << 16); /* CFL 5 dwords, one PRD entry, a read */
    hdr[1] = 0;
    hdr[2] = (uint32_t)table;
    hdr[3] = 0;
    cfis[0] = 0x27; /* register FIS, host to device */
    cfis[1] = 0x80; /* C: a command */
    cfis[2] = 0xec; /* IDENTIFY DEVICE */
    cfis[7] = 0;
    prd[0] = (uint32_t)(uintptr_t)id;
    prd[1] = 0;
    prd[2] = 0;
    prd[3] = 511;
    *reg32(port, PX_CI) = 1;
    for (uint32_t i = 0; i < 10000000 && (*reg32(port, PX_CI) & 1); ++i)
        ;
    uint32_t const tfd = *reg32(port, PX_TFD);
    if ((*reg32(port, PX_CI) & 1) || (tfd & (ATA_ST_ERR | ATA_ST_BSY)))
        fail(4, "AHCI IDENTIFY DEVICE: CI %x, TFD %x, IS %x", *reg32(port, PX_CI), tfd, *reg32(port, PX_IS));
    if (!(id[76] & (1u << 8)))
        fail(4, "the AHCI disk has no NCQ (word 76 %x)", id[76]);
    *reg32(port, PX_IS) = 0xffffffffu;
    p->dev = BB_DEV_AHCI;
    p->ahci_port_regs = port;
    p->ahci_tables = t;
    p->capacity = identify_capacity(id);
    printf("blkbench: AHCI at 00:%x.%x, ABAR %x, port %u, NCQ depth %u\n", hba.slot, hba.fn, (uint32_t)abar, n,
        (id[75] & 0x1f) + 1);
}

static void setup_virtio(struct bb_params* p)
{
    if (!virtio_find(VIRTIO_ID_BLOCK, 0, &s_dev))
        fail(2, "no virtio-blk device");
    uint64_t features;
    if (!virtio_negotiate(&s_dev, 0, &features))
        fail(3, "feature negotiation failed");
    if (!virtq_setup_mem(&s_dev, &s_q, 0, 256, (void*)BB_RING, VIRTIO_MSI_NO_VECTOR))
        fail(4, "queue setup failed");
    if (s_q.size < 3 * BB_MAX_QD)
        fail(4, "queue size %u: need %u descriptors", s_q.size, 3 * BB_MAX_QD);
    virtio_driver_ok(&s_dev);
    if (virtio_status(&s_dev) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(4, "status %x after DRIVER_OK", virtio_status(&s_dev));

    p->desc = (uintptr_t)s_q.desc;
    p->avail = (uintptr_t)s_q.avail;
    p->used = (uintptr_t)s_q.used;
    p->notify = s_q.notify;
    p->dev = BB_DEV_VIRTIO;
    p->queue_size = s_q.size;
    p->queue_index = s_q.index;
    p->capacity = virtio_cfg_read32(&s_dev, 0) | ((uint64_t)virtio_cfg_read32(&s_dev, 4) << 32);

    printf("blkbench: virtio-blk queue %u entries, notify at %x\n", s_q.size, (uint32_t)s_q.notify);
}

int guest_main(void)
{
    pic_mask_all();
    struct bb_params* p = (struct bb_params*)BB_PARAMS;
    memset(p, 0, sizeof(*p));
    p->duration_ms = cmdline_u32("ms", 1500);
    p->quick_requests = cmdline_u32("quick", 0) ? cmdline_u32("requests", 300) : 0;
    p->verify = cmdline_u32("verify", 1);
    p->mode_mask = cmdline_u32("modes", (1u << BB_MODE_COUNT) - 1);
    p->seed = cmdline_u32("seed", 0x2545f491);

    if (g_mb_info && (g_mb_info->flags & MB_INFO_MEMORY)
        && (uint64_t)g_mb_info->mem_upper * 1024u + 0x100000u < BB_MIN_RAM + 0x100000u)
        fail(6, "blkbench needs %u MiB of RAM, has %u MiB", (BB_MIN_RAM >> 20) + 1, g_mb_info->mem_upper / 1024 + 1);

    const struct acpi_sdt_header* fadt = acpi_find_table("FACP", true);
    if (!fadt || fadt->length < FADT_FLAGS + 4)
        fail(5, "no FADT");
    const uint8_t* f = (const uint8_t*)fadt;
    uint32_t port, flags;
    memcpy(&port, f + FADT_PM_TMR_BLK, 4);
    memcpy(&flags, f + FADT_FLAGS, 4);
    if (port == 0 || port > 0xfffc)
        fail(5, "no PM timer in the FADT (PM_TMR_BLK %x)", port);
    p->pm_port = port;
    p->pm_mask = (flags & FADT_F_TMR_VAL_EXT) ? 0xffffffffu : 0xffffffu;

    char dev[16] = "virtio";
    cmdline_get("dev", dev, sizeof dev);
    if (strcmp(dev, "virtio") == 0)
        setup_virtio(p);
    else if (strcmp(dev, "ide") == 0)
        setup_ide(p);
    else if (strcmp(dev, "ahci") == 0)
        setup_ahci(p);
    else
        fail(8, "unknown dev=%s (virtio, ide or ahci)", dev);

    uint32_t user_size = (uint32_t)(blkbench_user_end - blkbench_user_start);
    if (user_size > BB_USER_MAX)
        fail(7, "CPL3 image of %u bytes", user_size);
    void* dst = (void*)BB_USER_BASE;
    const void* src = blkbench_user_start;
    uint32_t n = user_size;
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");

    printf("blkbench: %s, capacity %u MiB, PM timer port %x (%u-bit), %s\n",
        dev, (uint32_t)(p->capacity >> 11), port, p->pm_mask == 0xffffffu ? 24 : 32,
        p->quick_requests ? "quick" : "timed");
    printf("blkbench: entering 64-bit CPL3 (%u bytes at %x)\n", user_size, BB_USER_BASE);
    enter_user64(BB_USER_BASE, BB_USER_STACK_TOP, BB_PARAMS);
}
