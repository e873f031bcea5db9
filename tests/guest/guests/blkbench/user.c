/* blkbench, the CPL3 part: the disk read benchmark loop, 64-bit, entered by enter_user64 (lib/usermode.S) with
 * IOPL 3 and interrupts off. Built on its own (gcc -m64, freestanding, linked at BB_USER_BASE by user.ld) into a
 * flat binary that blkbench.c embeds and copies into place. It uses no library code: port I/O for COM1, the ACPI
 * PM timer, the IDE ports and isa-debug-exit works at CPL3 because IOPL is 3.
 *
 * virtio-blk: for each mode it keeps `qd` requests in flight: every request is a pre-built chain of three descriptors
 * (header, data, status) per slot; a completed slot is re-submitted at once with a new sector. Completions are polled
 * in the used ring (VIRTQ_AVAIL_F_NO_INTERRUPT is set); the device is notified with one MMIO write per batch of
 * re-submissions (skipped while the device sets VIRTQ_USED_F_NO_NOTIFY).
 * IDE: one LBA48 READ DMA EXT at a time (IDE has no queue: the qd32 modes are skipped) through a PRD table of 64 KiB
 * entries, completion polled in the bus master status register's interrupt bit (a port read: an exit per poll).
 * AHCI: READ FPDMA QUEUED (NCQ) with one tag and command slot per request in flight, one PRD entry each; PxSACT and
 * PxCI are written together for each batch of re-submissions, completion polled in PxSACT (an MMIO read: an exit per
 * poll), a task file error (PxIS.TFES) fails the run.
 * Time comes from the PM timer, read every 256 completions (32 for 1 MiB requests) and every 2^22 idle polls: a port
 * read exits to the VMM, so it is read rarely. The sum of the 24-bit (or 32-bit) deltas is exact as long as reads are
 * under 4.6 s apart.
 *
 * Prints one line per mode: "blkbench: <mode> qd<N>: <requests> requests in <us> us (...)", then "PASS" and exits
 * through isa-debug-exit with 0. Failure codes: 20 device stalled (no completion for 10 s), 21 bad used entry,
 * 22 request status not OK, 23 data does not carry the image's pattern, 24 bad parameters.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkbench.h"

#define NORETURN __attribute__((noreturn))

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} __attribute__((packed));
struct used_elem {
    uint32_t id;
    uint32_t len;
} __attribute__((packed));

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1
#define BLK_T_IN 0

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void compiler_barrier(void) { __asm__ volatile("" ::: "memory"); }

/* The compiler may emit calls to these. */
void* memset(void* dst, int c, size_t n);
void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n)
{
    uint8_t* d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}
void* memcpy(void* dst, const void* src, size_t n)
{
    uint8_t* d = dst;
    const uint8_t* s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

/* ---- COM1 output ---- */
static void putc_serial(char c)
{
    if (c == '\n')
        putc_serial('\r');
    for (uint32_t i = 0; i < 100000 && !(inb(0x3f8 + 5) & 0x20); i++)
        cpu_relax();
    outb(0x3f8, (uint8_t)c);
}
static void puts_serial(const char* s)
{
    while (*s)
        putc_serial(*s++);
}
static void put_u64(uint64_t v)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_serial(buf[--n]);
}

NORETURN static void finish(uint32_t code)
{
    outl(0xf4, code);
    for (;;)
        cpu_relax();
}

NORETURN static void fail(uint32_t code, const char* what, uint64_t a, uint64_t b)
{
    puts_serial("FAIL: blkbench: ");
    puts_serial(what);
    puts_serial(" (");
    put_u64(a);
    puts_serial(", ");
    put_u64(b);
    puts_serial(")\n");
    finish(code);
}

/* ---- PM timer ---- */
struct clock {
    uint32_t port, mask, last;
    uint64_t ticks; /* since clock_start */
    uint64_t reads;
};
static void clock_start(struct clock* c)
{
    c->last = inl((uint16_t)c->port) & c->mask;
    c->ticks = 0;
    c->reads = 1;
}
static uint64_t clock_read(struct clock* c)
{
    uint32_t now = inl((uint16_t)c->port) & c->mask;
    c->ticks += (now - c->last) & c->mask;
    c->last = now;
    c->reads++;
    return c->ticks;
}

/* ---- The benchmark ---- */
struct mode {
    const char* name;
    uint32_t block; /* bytes per request */
    uint32_t qd;
    bool random;
};
static const struct mode MODES[BB_MODE_COUNT] = {
    { "randread-4k qd1", 4096, 1, true },
    { "randread-4k qd32", 4096, 32, true },
    { "seqread-1m qd1", 1u << 20, 1, false },
    { "seqread-1m qd32", 1u << 20, 32, false },
};

struct outhdr {
    uint32_t type, reserved;
    uint64_t sector;
} __attribute__((packed));

static const struct bb_params* P;
static volatile struct desc* s_desc;
static volatile uint16_t* s_avail; /* flags, idx, ring[] */
static volatile uint16_t* s_used;  /* flags, idx, then used_elem ring[] */
static volatile struct used_elem* s_used_ring;
static uint16_t s_avail_idx, s_last_used;
static uint64_t s_rng;
static uint64_t s_seq_block;
static uint64_t s_slot_sector[BB_MAX_QD];
static bool s_busy[BB_MAX_QD];

static uint64_t xorshift64(void)
{
    uint64_t x = s_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s_rng = x;
    return x;
}

static volatile struct outhdr* hdr(uint32_t slot) { return (volatile struct outhdr*)(uintptr_t)(BB_HDRS + 16u * slot); }
static volatile uint8_t* status(uint32_t slot) { return (volatile uint8_t*)(uintptr_t)(BB_STATUS + 16u * slot); }
static volatile uint64_t* data(uint32_t slot, uint32_t offset)
{
    return (volatile uint64_t*)(uintptr_t)(BB_DATA + (uint64_t)slot * BB_MAX_BS + offset);
}

static void check_data(const struct mode* m, uint32_t slot)
{
    if (!P->verify)
        return;
    uint64_t off = s_slot_sector[slot] * 512u;
    uint64_t last = off + m->block - 4096u;
    if (*data(slot, 0) != BB_PATTERN(off) || *data(slot, m->block - 4096u) != BB_PATTERN(last))
        fail(23, "data read does not carry the image's pattern (byte offset, value)", off, *data(slot, 0));
}

static uint64_t next_sector(const struct mode* m)
{
    uint64_t sectors_per_block = m->block / 512u;
    uint64_t blocks = P->capacity / sectors_per_block;
    uint64_t block;
    if (m->random) {
        block = xorshift64() % blocks;
    } else {
        block = s_seq_block++;
        if (s_seq_block >= blocks)
            s_seq_block = 0;
    }
    return block * sectors_per_block;
}

static void arm(const struct mode* m, uint32_t slot)
{
    s_slot_sector[slot] = next_sector(m);
    if (P->verify) {
        *data(slot, 0) = 0;
        *data(slot, m->block - 4096u) = 0;
    }
}

/* Puts slot's chain in the available ring (not yet published) with the next sector. */
static void submit(const struct mode* m, uint32_t slot)
{
    arm(m, slot);
    hdr(slot)->sector = s_slot_sector[slot];
    *status(slot) = 0xff;
    s_desc[3 * slot + 1].len = m->block;
    s_avail[2 + s_avail_idx % P->queue_size] = (uint16_t)(3 * slot);
    s_avail_idx++;
    s_busy[slot] = true;
}

static uint64_t s_notifies;
static void publish(void)
{
    compiler_barrier(); /* x86 keeps stores in order: the ring entries are visible before the index */
    s_avail[1] = s_avail_idx;
    __asm__ volatile("mfence" ::: "memory"); /* the index before reading the device's NO_NOTIFY flag */
    if (!(s_used[0] & USED_F_NO_NOTIFY)) {
        *(volatile uint16_t*)(uintptr_t)P->notify = (uint16_t)P->queue_index;
        s_notifies++;
    }
}

static void check_done(const struct mode* m, uint32_t id, uint32_t len)
{
    uint32_t slot = id / 3;
    if (id % 3 != 0 || slot >= m->qd || !s_busy[slot])
        fail(21, "used entry with an unexpected id", id, len);
    if (len != m->block + 1)
        fail(21, "used length is not the data length + 1", id, len);
    if (*status(slot) != 0)
        fail(22, "request status not OK (status, sector)", *status(slot), s_slot_sector[slot]);
    check_data(m, slot);
    s_busy[slot] = false;
}

static void run_mode(const struct mode* m, struct clock* c)
{
    uint64_t limit_ticks = (uint64_t)P->duration_ms * BB_PM_TIMER_HZ / 1000u;
    uint64_t stall_ticks = 10ull * BB_PM_TIMER_HZ;
    uint64_t clock_period = m->block >= (1u << 20) ? 31 : 255; /* read the timer every 32 MiB or 256 requests */
    for (uint32_t s = 0; s < m->qd; s++)
        s_desc[3 * s + 1].len = m->block;
    s_seq_block = 0;
    uint64_t notifies_before = s_notifies;

    clock_start(c);
    uint64_t submitted = 0, completed = 0, progress_ticks = 0;
    bool stopping = false;
    for (uint32_t s = 0; s < m->qd; s++, submitted++)
        submit(m, s);
    publish();
    uint32_t idle = 0;
    while (completed < submitted) {
        uint16_t used_idx = s_used[1];
        if (used_idx == s_last_used) {
            if (++idle >= (1u << 22)) {
                idle = 0;
                if (clock_read(c) - progress_ticks > stall_ticks)
                    fail(20, "no completion for 10 s (submitted, completed)", submitted, completed);
            }
            cpu_relax();
            continue;
        }
        idle = 0;
        compiler_barrier(); /* x86 keeps loads in order: the entries after the index */
        bool resubmitted = false;
        while (s_last_used != used_idx) {
            volatile struct used_elem* e = &s_used_ring[s_last_used % P->queue_size];
            uint32_t id = e->id, len = e->len;
            s_last_used++;
            check_done(m, id, len);
            completed++;
            if ((completed & clock_period) == 0) {
                progress_ticks = clock_read(c);
                if (P->quick_requests == 0 && progress_ticks >= limit_ticks)
                    stopping = true;
            }
            if (P->quick_requests != 0 && submitted >= P->quick_requests)
                stopping = true;
            if (!stopping) {
                submit(m, id / 3);
                submitted++;
                resubmitted = true;
            }
        }
        if (resubmitted)
            publish();
    }
    uint64_t ticks = clock_read(c);
    uint64_t us = ticks * 1000000u / BB_PM_TIMER_HZ;
    puts_serial("blkbench: ");
    puts_serial(m->name);
    puts_serial(": ");
    put_u64(completed);
    puts_serial(" requests in ");
    put_u64(us);
    puts_serial(" us (");
    put_u64(s_notifies - notifies_before);
    puts_serial(" notifies, ");
    put_u64(c->reads);
    puts_serial(" timer reads)\n");
}


/* ---- IDE: one READ DMA EXT at a time through the bus master (IDE has no command queue) ---- */
#define ATA_ST_ERR 0x01
#define ATA_ST_DRQ 0x08
#define ATA_ST_BSY 0x80
#define BM_START 0x01
#define BM_TO_MEMORY 0x08
#define BM_ST_ACTIVE 0x01
#define BM_ST_ERROR 0x02
#define BM_ST_INTR 0x04
#define ATA_READ_DMA_EXT 0x25
#define ATA_READ_FPDMA_QUEUED 0x60

/* Returns the number of status polls it took. */
static uint32_t ide_read(const struct mode* m, uint64_t sector, struct clock* c)
{
    uint16_t const cmd = (uint16_t)P->ide_cmd, bm = (uint16_t)P->ide_bm;
    volatile uint32_t* prd = (volatile uint32_t*)(uintptr_t)BB_PRDT;
    uint32_t const entries = m->block / 65536u ? m->block / 65536u : 1;
    for (uint32_t i = 0; i < entries; i++) {
        uint32_t const len = m->block < 65536u ? m->block : 65536u;
        prd[2 * i] = (uint32_t)(BB_DATA + (uint64_t)i * 65536u);
        prd[2 * i + 1] = (len & 0xffffu) | (i + 1 == entries ? 0x80000000u : 0); /* 0 means 64 KiB */
    }
    uint32_t const count = m->block / 512u;
    outb(bm, 0);
    outb((uint16_t)(bm + 2), BM_ST_ERROR | BM_ST_INTR);
    outl((uint16_t)(bm + 4), BB_PRDT);
    outb(bm, BM_TO_MEMORY);
    outb((uint16_t)(cmd + 6), 0x40); /* LBA, master */
    outb((uint16_t)(cmd + 2), (uint8_t)(count >> 8));
    outb((uint16_t)(cmd + 3), (uint8_t)(sector >> 24));
    outb((uint16_t)(cmd + 4), (uint8_t)(sector >> 32));
    outb((uint16_t)(cmd + 5), (uint8_t)(sector >> 40));
    outb((uint16_t)(cmd + 2), (uint8_t)count);
    outb((uint16_t)(cmd + 3), (uint8_t)sector);
    outb((uint16_t)(cmd + 4), (uint8_t)(sector >> 8));
    outb((uint16_t)(cmd + 5), (uint8_t)(sector >> 16));
    outb((uint16_t)(cmd + 7), ATA_READ_DMA_EXT);
    outb(bm, BM_TO_MEMORY | BM_START);
    uint8_t bs;
    uint64_t const start = c->ticks;
    uint32_t polls = 0;
    while (!((bs = inb((uint16_t)(bm + 2))) & BM_ST_INTR)) {
        if (++polls % 4096u == 0 && clock_read(c) - start > 10ull * BB_PM_TIMER_HZ)
            fail(20, "no DMA completion for 10 s (sector, bus master status << 8 | ATA status)", sector,
                (uint64_t)bs << 8 | inb((uint16_t)(cmd + 7)));
        cpu_relax();
    }
    outb(bm, 0);
    uint8_t const st = inb((uint16_t)(cmd + 7));
    if ((bs & (BM_ST_ERROR | BM_ST_ACTIVE)) || (st & (ATA_ST_ERR | ATA_ST_DRQ | ATA_ST_BSY)))
        fail(22, "READ DMA EXT failed (bus master status, status)", bs, st);
    return polls + 1;
}

/* ---- AHCI: READ FPDMA QUEUED, one tag per slot ---- */
#define PX_IS 0x10
#define PX_TFD 0x20
#define PX_SACT 0x34
#define PX_CI 0x38
#define PX_IS_TFES (1u << 30)

static volatile uint32_t* port_reg(uint32_t off) { return (volatile uint32_t*)(uintptr_t)(P->ahci_port_regs + off); }

static void ahci_prepare(uint32_t tag, uint64_t sector, uint32_t bytes)
{
    uint64_t const table = P->ahci_tables + BB_AHCI_CMD_TABLES + (uint64_t)tag * BB_AHCI_CMD_TABLE_SIZE;
    volatile uint32_t* hdr = (volatile uint32_t*)(uintptr_t)(P->ahci_tables + 32u * tag);
    volatile uint8_t* fis = (volatile uint8_t*)(uintptr_t)table;
    volatile uint32_t* prd = (volatile uint32_t*)(uintptr_t)(table + 0x80);
    uint32_t const count = bytes / 512u;
    hdr[0] = 5u | (1u << 16); /* CFL 5, one PRD entry, a read */
    hdr[1] = 0;
    hdr[2] = (uint32_t)table;
    hdr[3] = (uint32_t)(table >> 32);
    fis[0] = 0x27;
    fis[1] = 0x80;
    fis[2] = ATA_READ_FPDMA_QUEUED;
    fis[3] = (uint8_t)count;          /* FEATURE(7:0): the sector count */
    fis[4] = (uint8_t)sector;
    fis[5] = (uint8_t)(sector >> 8);
    fis[6] = (uint8_t)(sector >> 16);
    fis[7] = 0x40;                    /* DEVICE: FUA 0, bit 6 set */
    fis[8] = (uint8_t)(sector >> 24);
    fis[9] = (uint8_t)(sector >> 32);
    fis[10] = (uint8_t)(sector >> 40);
    fis[11] = (uint8_t)(count >> 8);  /* FEATURE(15:8) */
    fis[12] = (uint8_t)(tag << 3);    /* COUNT(7:3): the tag */
    fis[13] = 0;
    prd[0] = (uint32_t)(BB_DATA + (uint64_t)tag * BB_MAX_BS);
    prd[1] = (uint32_t)((BB_DATA + (uint64_t)tag * BB_MAX_BS) >> 32);
    prd[2] = 0;
    prd[3] = bytes - 1u; /* byte count - 1, no interrupt on completion */
}

/* Runs one mode on IDE (queue depth 1) or AHCI (NCQ, queue depth m->qd). */
static void run_mode_ata(const struct mode* m, struct clock* c)
{
    uint64_t limit_ticks = (uint64_t)P->duration_ms * BB_PM_TIMER_HZ / 1000u;
    uint64_t clock_period = m->block >= (1u << 20) ? 31 : 255;
    s_seq_block = 0;
    clock_start(c);
    uint64_t submitted = 0, completed = 0, polls = 0, progress_ticks = 0;
    bool stopping = false;
    if (P->dev == BB_DEV_IDE) {
        while (!stopping) {
            arm(m, 0);
            submitted++;
            polls += ide_read(m, s_slot_sector[0], c);
            check_data(m, 0);
            completed++;
            if ((completed & clock_period) == 0 && P->quick_requests == 0 && clock_read(c) >= limit_ticks)
                stopping = true;
            if (P->quick_requests != 0 && submitted >= P->quick_requests)
                stopping = true;
        }
    } else {
        uint32_t busy = 0;
        for (uint32_t s = 0; s < m->qd; s++, submitted++) {
            arm(m, s);
            ahci_prepare(s, s_slot_sector[s], m->block);
            busy |= 1u << s;
        }
        *port_reg(PX_SACT) = busy; /* SACT before CI, as the spec orders it */
        *port_reg(PX_CI) = busy;
        uint32_t idle = 0;
        while (busy) {
            uint32_t const sact = *port_reg(PX_SACT);
            polls++;
            uint32_t done = busy & ~sact;
            if (!done) {
                if (*port_reg(PX_IS) & PX_IS_TFES)
                    fail(22, "task file error (PxIS, PxTFD)", *port_reg(PX_IS), *port_reg(PX_TFD));
                if (++idle % 4096u == 0 && clock_read(c) - progress_ticks > 10ull * BB_PM_TIMER_HZ)
                    fail(20, "no completion for 10 s (submitted, completed)", submitted, completed);
                cpu_relax();
                continue;
            }
            idle = 0;
            uint32_t again = 0;
            for (uint32_t s = 0; s < m->qd; s++) {
                if (!(done & (1u << s)))
                    continue;
                busy &= ~(1u << s);
                check_data(m, s);
                completed++;
                if ((completed & clock_period) == 0) {
                    progress_ticks = clock_read(c);
                    if (P->quick_requests == 0 && progress_ticks >= limit_ticks)
                        stopping = true;
                }
                if (P->quick_requests != 0 && submitted >= P->quick_requests)
                    stopping = true;
                if (!stopping) {
                    arm(m, s);
                    ahci_prepare(s, s_slot_sector[s], m->block);
                    again |= 1u << s;
                    submitted++;
                }
            }
            if (again) {
                busy |= again;
                *port_reg(PX_SACT) = again;
                *port_reg(PX_CI) = again;
            }
        }
        if (*port_reg(PX_IS) & PX_IS_TFES)
            fail(22, "task file error (PxIS, PxTFD)", *port_reg(PX_IS), *port_reg(PX_TFD));
    }
    uint64_t ticks = clock_read(c);
    uint64_t us = ticks * 1000000u / BB_PM_TIMER_HZ;
    puts_serial("blkbench: ");
    puts_serial(m->name);
    puts_serial(": ");
    put_u64(completed);
    puts_serial(" requests in ");
    put_u64(us);
    puts_serial(" us (");
    put_u64(polls);
    puts_serial(" status polls, ");
    put_u64(c->reads);
    puts_serial(" timer reads)\n");
}

__attribute__((section(".text.entry"), noreturn)) void user_main(const struct bb_params* params);
void user_main(const struct bb_params* params)
{
    P = params;
    s_rng = P->seed ? P->seed : 88172645463325252ull;
    if (P->dev != BB_DEV_VIRTIO) {
        if ((P->dev != BB_DEV_IDE && P->dev != BB_DEV_AHCI) || P->capacity < 2 * (BB_MAX_BS / 512u))
            fail(24, "bad parameters (dev, capacity)", P->dev, P->capacity);
        puts_serial(P->dev == BB_DEV_IDE ? "blkbench: IDE" : "blkbench: AHCI");
        puts_serial(", capacity ");
        put_u64(P->capacity);
        puts_serial(" sectors\n");
        struct clock c = { .port = P->pm_port, .mask = P->pm_mask };
        for (uint32_t i = 0; i < BB_MODE_COUNT; i++) {
            if (!(P->mode_mask & (1u << i)))
                continue;
            if (P->dev == BB_DEV_IDE && MODES[i].qd > 1) {
                puts_serial("blkbench: ");
                puts_serial(MODES[i].name);
                puts_serial(": skipped (IDE has no command queue)\n");
                continue;
            }
            run_mode_ata(&MODES[i], &c);
        }
        puts_serial("PASS\n");
        finish(0);
    }
    if (P->queue_size < 3 * BB_MAX_QD || (P->queue_size & (P->queue_size - 1)) || P->capacity < 2 * (BB_MAX_BS / 512u))
        fail(24, "bad parameters (queue size, capacity)", P->queue_size, P->capacity);
    s_desc = (volatile struct desc*)(uintptr_t)P->desc;
    s_avail = (volatile uint16_t*)(uintptr_t)P->avail;
    s_used = (volatile uint16_t*)(uintptr_t)P->used;
    s_used_ring = (volatile struct used_elem*)(uintptr_t)(P->used + 4);
    s_rng = P->seed ? P->seed : 88172645463325252ull;
    s_avail[0] = AVAIL_F_NO_INTERRUPT;

    /* The chains: slot s uses descriptors 3s (header), 3s+1 (data, length per mode), 3s+2 (status). */
    for (uint32_t s = 0; s < BB_MAX_QD; s++) {
        hdr(s)->type = BLK_T_IN;
        hdr(s)->reserved = 0;
        s_desc[3 * s] = (struct desc) { BB_HDRS + 16u * s, 16, DESC_F_NEXT, (uint16_t)(3 * s + 1) };
        s_desc[3 * s + 1] = (struct desc) { BB_DATA + (uint64_t)s * BB_MAX_BS, 4096, DESC_F_WRITE | DESC_F_NEXT,
            (uint16_t)(3 * s + 2) };
        s_desc[3 * s + 2] = (struct desc) { BB_STATUS + 16u * s, 1, DESC_F_WRITE, 0 };
    }
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    puts_serial("blkbench: 64-bit code at CPL");
    put_u64(cs & 3u);
    puts_serial(", queue size ");
    put_u64(P->queue_size);
    puts_serial(", capacity ");
    put_u64(P->capacity);
    puts_serial(" sectors\n");

    struct clock c = { .port = P->pm_port, .mask = P->pm_mask };
    for (uint32_t i = 0; i < BB_MODE_COUNT; i++)
        if (P->mode_mask & (1u << i))
            run_mode(&MODES[i], &c);
    puts_serial("PASS\n");
    finish(0);
}
