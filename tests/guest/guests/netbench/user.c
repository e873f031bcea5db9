/* netbench, the CPL3 part: the virtio-net transmit loop, 64-bit, entered by enter_user64 (lib/usermode.S) with
 * IOPL 3 and interrupts off. Built on its own (gcc -m64, freestanding, linked at NB_USER_BASE by user.ld) into a
 * flat binary that netbench.c embeds and copies into place. It uses no library code: port I/O for COM1, the ACPI
 * PM timer and isa-debug-exit works at CPL3 because IOPL is 3.
 *
 * For each mode it sends UDP datagrams from src_ip:src_port to dst_ip:dst_port as fast as the device takes them,
 * for duration_ms (or quick_frames frames): every transmit descriptor has its own buffer (virtio_net_hdr_v1 of zeros,
 * then the frame, one descriptor per frame) with the headers written once per mode; per frame only the sequence
 * number and the payload pattern (netbench.h) are written. Used descriptors are reclaimed by polling the used ring
 * (no interrupts: VIRTQ_AVAIL_F_NO_INTERRUPT, and with EVENT_IDX used_event kept half the index space ahead); free
 * descriptors are queued in batches of at most `batch`, and after each batch the device is notified (one MMIO
 * write, an ioeventfd in both VMMs) only if it asks for it: with EVENT_IDX when the new available index passed
 * avail_event (vring_need_event), otherwise when VIRTQ_USED_F_NO_NOTIFY is clear. Time comes from the PM timer, read
 * every 256 frames and every 2^22 idle polls: a port read exits to the VMM, so it is read rarely.
 *
 * With rekick=1 the loop also notifies again whenever frames are outstanding and nothing moved for 2^16 polls (a
 * driver may notify at any time, VIRTIO 1.2 section 2.9), and counts it: a device that leaves buffers in the
 * available ring without asking for a notification (hako's transmit budget, see bench/RESULTS.md) then still makes
 * progress, and the count shows how often it happened. A driver such as Linux's does not do this; without rekick
 * such a device stalls the loop (failure code 20).
 *
 * Prints one line per mode: "netbench: <mode>: <frames> frames of <len> bytes in <us> us (...)", then "PASS" and
 * exits through isa-debug-exit with 0. Failure codes: 20 device stalled (no used descriptor for 10 s while frames
 * were outstanding), 21 bad used entry, 24 bad parameters.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netbench.h"

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

#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1
#define CLOCK_PERIOD 255 /* read the timer every 256 frames */
#define REKICK_POLLS 0xffffu /* with rekick: notify again after 2^16 polls without progress */

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
    puts_serial("FAIL: netbench: ");
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

/* ---- The queue ---- */
static const struct nb_params* P;
static volatile struct desc* s_desc;
static volatile uint16_t* s_avail; /* flags, idx, ring[size], used_event */
static volatile uint16_t* s_used;  /* flags, idx, then used_elem ring[size], then avail_event */
static volatile struct used_elem* s_used_ring;
static uint16_t s_avail_idx, s_published, s_last_used;
static uint16_t s_free[NB_TX_MAX];
static uint32_t s_nfree;
static bool s_busy[NB_TX_MAX];
static uint64_t s_notifies;

static uint8_t* slot_buf(uint32_t slot) { return (uint8_t*)(uintptr_t)(NB_TX_BUFS + slot * NB_BUF_SIZE + NB_BUF_OFFSET); }
static volatile uint16_t* used_event(void) { return &s_avail[2 + P->queue_size]; }
static volatile uint16_t* avail_event(void) { return (volatile uint16_t*)&s_used_ring[P->queue_size]; }

/* VIRTIO 1.2 section 2.7.10: the driver notifies if the device's avail_event lies in [old, new). */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static void publish(void)
{
    if (s_avail_idx == s_published)
        return;
    compiler_barrier(); /* x86 keeps stores in order: the ring entries are visible before the index */
    s_avail[1] = s_avail_idx;
    __asm__ volatile("mfence" ::: "memory"); /* the index before reading avail_event / NO_NOTIFY */
    bool kick = P->event_idx ? need_event(*avail_event(), s_avail_idx, s_published) : !(s_used[0] & USED_F_NO_NOTIFY);
    s_published = s_avail_idx;
    if (kick) {
        *(volatile uint16_t*)(uintptr_t)P->notify = (uint16_t)P->queue_index;
        s_notifies++;
    }
}

/* Takes the used entries; returns how many. */
static uint32_t reclaim(void)
{
    uint16_t used_idx = s_used[1];
    if (used_idx == s_last_used)
        return 0;
    compiler_barrier(); /* x86 keeps loads in order: the entries after the index */
    uint32_t n = 0;
    while (s_last_used != used_idx) {
        volatile struct used_elem* e = &s_used_ring[s_last_used % P->queue_size];
        uint32_t id = e->id;
        if (id >= P->queue_size || !s_busy[id])
            fail(21, "used entry with an unexpected id (id, used index)", id, s_last_used);
        s_busy[id] = false;
        s_free[s_nfree++] = (uint16_t)id;
        s_last_used++;
        n++;
    }
    if (P->event_idx)
        *used_event() = (uint16_t)(s_last_used + 0x8000u); /* no interrupt wanted */
    return n;
}

/* ---- The benchmark ---- */
static const char* const MODE_NAMES[NB_MODE_COUNT] = { "udp-small", "udp-large" };

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16be(uint8_t* p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Writes the virtio-net header and the Ethernet/IPv4/UDP headers of a frame of `len` bytes into every slot. */
static void build_headers(uint32_t mode, uint32_t len)
{
    uint8_t h[NB_VNET_HDR_LEN + NB_HEADERS_LEN + 8];
    memset(h, 0, sizeof(h));
    uint8_t* f = h + NB_VNET_HDR_LEN;
    memcpy(f, P->dst_mac, 6);
    memcpy(f + 6, P->src_mac, 6);
    f[12] = 0x08, f[13] = 0x00;
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    put16be(ip + 2, (uint16_t)(len - 14));
    put16be(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, P->src_ip, 4);
    memcpy(ip + 16, P->dst_ip, 4);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)ip[i] << 8 | ip[i + 1];
    put16be(ip + 10, csum_fold(sum));
    uint8_t* udp = ip + 20;
    put16be(udp, P->src_port);
    put16be(udp + 2, P->dst_port);
    put16be(udp + 4, (uint16_t)(len - 34)); /* checksum 0: none */
    uint8_t* payload = udp + 8;
    uint32_t magic = NB_MAGIC;
    memcpy(payload, &magic, 4);
    memcpy(payload + 4, &mode, 4);
    for (uint32_t s = 0; s < P->queue_size; s++) {
        memcpy(slot_buf(s), h, sizeof(h));
        s_desc[s] = (struct desc) { (uint64_t)(uintptr_t)slot_buf(s), NB_VNET_HDR_LEN + len, 0, 0 };
    }
}

/* The per-frame part: sequence number and pattern. */
static void fill_payload(uint32_t slot, uint64_t seq, uint32_t words)
{
    volatile uint64_t* w = (volatile uint64_t*)(slot_buf(slot) + NB_VNET_HDR_LEN + NB_HEADERS_LEN + 8);
    w[0] = seq;
    for (uint32_t k = 0; k < words; k++)
        w[1 + k] = NB_WORD(seq, k);
}

static void run_mode(uint32_t mode, struct clock* c)
{
    uint32_t len = P->frame_len[mode];
    uint32_t words = (len - NB_HEADERS_LEN - NB_PAYLOAD_HDR + 7) / 8;
    uint64_t limit_ticks = (uint64_t)P->duration_ms * NB_PM_TIMER_HZ / 1000u;
    uint64_t stall_ticks = 10ull * NB_PM_TIMER_HZ;
    build_headers(mode, len);
    uint64_t notifies_before = s_notifies;

    clock_start(c);
    uint64_t sent = 0, done = 0, done_at_check = 0, progress_ticks = 0, full_polls = 0, rekicks = 0;
    bool stopping = false;
    uint32_t idle = 0;
    while (!stopping || done < sent) {
        uint32_t n = reclaim();
        done += n;
        if (!stopping && s_nfree == 0)
            full_polls++;
        uint32_t added = 0;
        while (!stopping && s_nfree > 0 && added < P->batch) {
            uint32_t slot = s_free[--s_nfree];
            fill_payload(slot, sent, words);
            s_busy[slot] = true;
            s_avail[2 + s_avail_idx % P->queue_size] = (uint16_t)slot;
            s_avail_idx++;
            sent++;
            added++;
            if (P->quick_frames != 0)
                stopping = sent >= P->quick_frames;
            else if ((sent & CLOCK_PERIOD) == 0)
                stopping = clock_read(c) >= limit_ticks;
        }
        publish();
        if (n != 0 || added != 0) {
            idle = 0;
            continue;
        }
        if (P->rekick && done != sent && (idle & REKICK_POLLS) == REKICK_POLLS) {
            /* Frames outstanding and nothing moved: notify again (a driver may notify at any time). */
            *(volatile uint16_t*)(uintptr_t)P->notify = (uint16_t)P->queue_index;
            s_notifies++;
            rekicks++;
        }
        if (++idle >= (1u << 22)) {
            /* Nothing moved for 2^22 polls: look at the clock (the time limit, or a stalled device). */
            idle = 0;
            uint64_t now = clock_read(c);
            if (done != done_at_check) {
                done_at_check = done;
                progress_ticks = now;
            } else if (done != sent && now - progress_ticks > stall_ticks) {
                fail(20, "no used descriptor for 10 s (sent, done)", sent, done);
            }
            if (P->quick_frames == 0 && now >= limit_ticks)
                stopping = true;
        }
        cpu_relax();
    }
    uint64_t ticks = clock_read(c);
    uint64_t us = ticks * 1000000u / NB_PM_TIMER_HZ;
    puts_serial("netbench: ");
    puts_serial(MODE_NAMES[mode]);
    puts_serial(": ");
    put_u64(sent);
    puts_serial(" frames of ");
    put_u64(len);
    puts_serial(" bytes in ");
    put_u64(us);
    puts_serial(" us (");
    put_u64(s_notifies - notifies_before);
    puts_serial(" notifies, ");
    put_u64(full_polls);
    puts_serial(" polls with the queue full, ");
    put_u64(rekicks);
    puts_serial(" rekicks, ");
    put_u64(c->reads);
    puts_serial(" timer reads)\n");
}

__attribute__((section(".text.entry"), noreturn)) void user_main(const struct nb_params* params);
void user_main(const struct nb_params* params)
{
    P = params;
    if (P->queue_size < 16 || P->queue_size > NB_TX_MAX || (P->queue_size & (P->queue_size - 1)) || P->batch == 0)
        fail(24, "bad parameters (queue size, batch)", P->queue_size, P->batch);
    s_desc = (volatile struct desc*)(uintptr_t)P->desc;
    s_avail = (volatile uint16_t*)(uintptr_t)P->avail;
    s_used = (volatile uint16_t*)(uintptr_t)P->used;
    s_used_ring = (volatile struct used_elem*)(uintptr_t)(P->used + 4);
    s_avail_idx = s_published = (uint16_t)P->avail_idx;
    s_last_used = (uint16_t)P->last_used;
    if (s_avail_idx != s_last_used)
        fail(24, "transmit queue not idle (avail index, last used)", s_avail_idx, s_last_used);
    s_avail[0] = AVAIL_F_NO_INTERRUPT;
    if (P->event_idx)
        *used_event() = (uint16_t)(s_last_used + 0x8000u);
    for (uint32_t s = 0; s < P->queue_size; s++)
        s_free[s_nfree++] = (uint16_t)(P->queue_size - 1 - s);

    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    puts_serial("netbench: 64-bit code at CPL");
    put_u64(cs & 3u);
    puts_serial(", transmit queue size ");
    put_u64(P->queue_size);
    puts_serial("\n");

    struct clock c = { .port = P->pm_port, .mask = P->pm_mask };
    for (uint32_t i = 0; i < NB_MODE_COUNT; i++)
        if (P->mode_mask & (1u << i))
            run_mode(i, &c);
    puts_serial("PASS\n");
    finish(0);
}
