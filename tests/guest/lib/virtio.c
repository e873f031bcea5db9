/* A small virtio 1.x PCI driver (VIRTIO 1.2 sections 3.1 and 4.1): finds the device through its vendor
 * capabilities, negotiates features, sets up split virtqueues and MSI-X, as Linux's virtio_pci_modern does. */
#include "guest.h"

/* struct virtio_pci_common_cfg */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_NUMQ 0x12
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESC 0x20
#define COMMON_Q_AVAIL 0x28
#define COMMON_Q_USED 0x30

#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

static uint8_t s_rings[4][4096] __attribute__((aligned(4096)));
static uint8_t s_legacy_ring[4 * 4096] __attribute__((aligned(4096))); /* up to 256 entries, legacy layout */

static inline void w8(uintptr_t a, uint8_t v) { *(volatile uint8_t*)a = v; }
static inline void w16(uintptr_t a, uint16_t v) { *(volatile uint16_t*)a = v; }
static inline void w32(uintptr_t a, uint32_t v) { *(volatile uint32_t*)a = v; }
static inline uint8_t r8(uintptr_t a) { return *(volatile uint8_t*)a; }
static inline uint16_t r16(uintptr_t a) { return *(volatile uint16_t*)a; }
static inline uint32_t r32(uintptr_t a) { return *(volatile uint32_t*)a; }

struct type_match {
    uint16_t type;
};
static bool match_type(const struct pci_dev* d, void* ctx)
{
    uint16_t type = ((struct type_match*)ctx)->type;
    if (d->vendor != 0x1af4)
        return false;
    if (d->device == 0x1040 + type)
        return true;
    return d->device >= 0x1000 && d->device <= 0x103f && d->subsys_id == type;
}

bool virtio_find(uint16_t type, unsigned nth, struct virtio_dev* v)
{
    struct type_match m = { type };
    memset(v, 0, sizeof(*v));
    if (!pci_find(match_type, &m, nth, &v->pci)) {
        printf("virtio: no device of type %u (#%u) on bus 0\n", type, nth);
        return false;
    }
    struct pci_dev* d = &v->pci;
    printf("virtio: type %u at 00:%02x.%u, id %04x:%04x, INT pin %u line %u\n", type, d->slot, d->fn, d->vendor,
        d->device, d->irq_pin, d->irq_line);
    pci_write16(d, PCI_COMMAND, (uint16_t)(pci_read16(d, PCI_COMMAND) | PCI_CMD_MEMORY | PCI_CMD_IO | PCI_CMD_MASTER));
    for (uint8_t cap = pci_find_cap(d, PCI_CAP_VENDOR, 0); cap; cap = pci_find_cap(d, PCI_CAP_VENDOR, cap)) {
        uint8_t cfg_type = pci_read8(d, (uint8_t)(cap + 3));
        uint8_t bar = pci_read8(d, (uint8_t)(cap + 4));
        uint32_t offset = pci_read32(d, (uint8_t)(cap + 8));
        if (bar > 5)
            continue;
        bool io;
        uint64_t base = pci_bar_address(d, bar, &io);
        if (io || base == 0 || base >= 0x100000000ull) {
            printf("virtio: capability %u in BAR %u at %llx: not a usable memory BAR\n", cfg_type, bar,
                (unsigned long long)base);
            continue;
        }
        uintptr_t addr = (uintptr_t)base + offset;
        switch (cfg_type) {
        case CAP_COMMON:
            if (!v->common)
                v->common = addr;
            break;
        case CAP_NOTIFY:
            if (!v->notify_base) {
                v->notify_base = addr;
                v->notify_mult = pci_read32(d, (uint8_t)(cap + 16));
            }
            break;
        case CAP_ISR:
            if (!v->isr)
                v->isr = addr;
            break;
        case CAP_DEVICE:
            if (!v->device_cfg)
                v->device_cfg = addr;
            break;
        }
    }
    v->msix_cap = pci_find_cap(d, PCI_CAP_MSIX, 0);
    if (v->msix_cap) {
        uint16_t ctrl = pci_read16(d, (uint8_t)(v->msix_cap + 2));
        uint32_t table = pci_read32(d, (uint8_t)(v->msix_cap + 4));
        bool io;
        uint64_t base = pci_bar_address(d, (int)(table & 7), &io);
        v->msix_entries = (uint16_t)((ctrl & 0x7ff) + 1);
        if (!io && base && base < 0x100000000ull)
            v->msix_table = (uintptr_t)base + (table & ~7u);
    }
    if (!v->common || !v->notify_base || !v->isr) {
        printf("virtio: missing capabilities (common %x notify %x isr %x)\n", v->common, v->notify_base, v->isr);
        return false;
    }
    return true;
}

uint8_t virtio_status(struct virtio_dev* v) { return r8(v->common + COMMON_STATUS); }
uint8_t virtio_read_isr(struct virtio_dev* v) { return r8(v->isr); }
uint8_t virtio_cfg_read8(struct virtio_dev* v, uint32_t off) { return r8(v->device_cfg + off); }
uint32_t virtio_cfg_read32(struct virtio_dev* v, uint32_t off) { return r32(v->device_cfg + off); }
void virtio_cfg_write32(struct virtio_dev* v, uint32_t off, uint32_t value) { w32(v->device_cfg + off, value); }

bool virtio_set_config_vector(struct virtio_dev* v, uint16_t entry)
{
    w16(v->common + COMMON_MSIX, entry);
    return r16(v->common + COMMON_MSIX) == entry;
}

bool virtio_negotiate(struct virtio_dev* v, uint64_t wanted, uint64_t* features)
{
    w8(v->common + COMMON_STATUS, 0);
    for (int i = 0; i < 1000 && virtio_status(v) != 0; i++)
        cpu_relax();
    w8(v->common + COMMON_STATUS, VIRTIO_STATUS_ACK);
    w8(v->common + COMMON_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
    w32(v->common + COMMON_DFSELECT, 0);
    uint64_t offered = r32(v->common + COMMON_DF);
    w32(v->common + COMMON_DFSELECT, 1);
    offered |= (uint64_t)r32(v->common + COMMON_DF) << 32;
    uint64_t use = (wanted | (1ull << VIRTIO_F_VERSION_1)) & offered;
    printf("virtio: features offered %llx, using %llx\n", (unsigned long long)offered, (unsigned long long)use);
    if (!(use & (1ull << VIRTIO_F_VERSION_1))) {
        printf("virtio: device does not offer VERSION_1\n");
        return false;
    }
    w32(v->common + COMMON_GFSELECT, 0);
    w32(v->common + COMMON_GF, (uint32_t)use);
    w32(v->common + COMMON_GFSELECT, 1);
    w32(v->common + COMMON_GF, (uint32_t)(use >> 32));
    w8(v->common + COMMON_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(virtio_status(v) & VIRTIO_STATUS_FEATURES_OK)) {
        printf("virtio: FEATURES_OK refused\n");
        return false;
    }
    *features = use;
    return true;
}

size_t virtq_mem_size(uint16_t size)
{
    /* Descriptor table, then the available ring (flags, idx, ring, used_event), then the used ring 4-aligned. */
    size_t used = (16u * size + 6u + 2u * size + 3u) & ~(size_t)3;
    return used + 6u + 8u * size;
}

bool virtq_setup_mem(struct virtio_dev* v, struct virtq* q, uint16_t index, uint16_t size, void* ring_mem,
    uint16_t vector)
{
    if (size == 0 || (size & (size - 1)) || ((uintptr_t)ring_mem & 15))
        return false;
    w16(v->common + COMMON_Q_SELECT, index);
    uint16_t max = r16(v->common + COMMON_Q_SIZE);
    if (max == 0) {
        printf("virtio: queue %u does not exist\n", index);
        return false;
    }
    if (size > max)
        size = max;
    uint8_t* mem = ring_mem;
    memset(mem, 0, virtq_mem_size(size));
    q->index = index;
    q->size = size;
    q->desc = (volatile struct virtq_desc*)mem;
    q->avail = (volatile struct virtq_avail*)(mem + 16u * size);
    q->used = (volatile struct virtq_used*)(mem + ((16u * size + 6u + 2u * size + 3u) & ~3u));
    q->avail_idx = q->last_used = q->next_desc = 0;
    w16(v->common + COMMON_Q_SIZE, size);
    w32(v->common + COMMON_Q_DESC, (uint32_t)(uintptr_t)q->desc);
    w32(v->common + COMMON_Q_DESC + 4, 0);
    w32(v->common + COMMON_Q_AVAIL, (uint32_t)(uintptr_t)q->avail);
    w32(v->common + COMMON_Q_AVAIL + 4, 0);
    w32(v->common + COMMON_Q_USED, (uint32_t)(uintptr_t)q->used);
    w32(v->common + COMMON_Q_USED + 4, 0);
    w16(v->common + COMMON_Q_MSIX, vector);
    if (r16(v->common + COMMON_Q_MSIX) != vector) {
        printf("virtio: queue %u refused MSI-X vector %x\n", index, vector);
        return false;
    }
    uint16_t noff = r16(v->common + COMMON_Q_NOFF);
    q->notify = v->notify_base + (uintptr_t)noff * v->notify_mult;
    q->notify_is_port = false;
    w16(v->common + COMMON_Q_ENABLE, 1);
    return r16(v->common + COMMON_Q_ENABLE) == 1;
}

bool virtq_setup(struct virtio_dev* v, struct virtq* q, uint16_t index, uint16_t size, unsigned slot, uint16_t vector)
{
    if (slot >= 4 || size > VIRTQ_MAX)
        return false;
    return virtq_setup_mem(v, q, index, size, s_rings[slot], vector);
}

void virtio_driver_ok(struct virtio_dev* v)
{
    w8(v->common + COMMON_STATUS,
        VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

uint16_t virtq_add(struct virtq* q, const struct virtq_buf* bufs, unsigned n)
{
    uint16_t head = q->next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = (uint16_t)((head + i) % q->size);
        q->desc[idx].addr = bufs[i].addr;
        q->desc[idx].len = bufs[i].len;
        q->desc[idx].flags = (uint16_t)((bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0)
                                         | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        q->desc[idx].next = (uint16_t)((idx + 1) % q->size);
    }
    q->next_desc = (uint16_t)((head + n) % q->size);
    q->avail->ring[q->avail_idx % q->size] = head;
    __asm__ volatile("" ::: "memory"); /* x86: stores are not reordered with other stores */
    q->avail_idx++;
    q->avail->idx = q->avail_idx;
    return head;
}

void virtq_kick(struct virtq* q)
{
    __asm__ volatile("mfence" ::: "memory");
    if (q->notify_is_port)
        outw((uint16_t)q->notify, q->index);
    else
        w16(q->notify, q->index);
}

/* Legacy header registers (offsets in I/O BAR 0). */
#define LEGACY_HOST_FEATURES 0x00
#define LEGACY_GUEST_FEATURES 0x04
#define LEGACY_QUEUE_PFN 0x08
#define LEGACY_QUEUE_NUM 0x0c
#define LEGACY_QUEUE_SEL 0x0e
#define LEGACY_QUEUE_NOTIFY 0x10
#define LEGACY_STATUS 0x12
#define LEGACY_ISR 0x13

uint16_t virtio_legacy_port(struct virtio_dev* v)
{
    bool io;
    uint64_t base = pci_bar_address(&v->pci, 0, &io);
    return io ? (uint16_t)base : 0;
}

bool virtio_legacy_start(struct virtio_dev* v, uint32_t wanted, struct virtq* q, uint16_t index, unsigned slot)
{
    (void)slot;
    uint16_t port = virtio_legacy_port(v);
    if (!port) {
        printf("virtio: no legacy I/O BAR 0\n");
        return false;
    }
    outb((uint16_t)(port + LEGACY_STATUS), 0);
    outb((uint16_t)(port + LEGACY_STATUS), VIRTIO_STATUS_ACK);
    outb((uint16_t)(port + LEGACY_STATUS), VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
    uint32_t offered = inl((uint16_t)(port + LEGACY_HOST_FEATURES));
    outl((uint16_t)(port + LEGACY_GUEST_FEATURES), offered & wanted);
    outw((uint16_t)(port + LEGACY_QUEUE_SEL), index);
    uint16_t size = inw((uint16_t)(port + LEGACY_QUEUE_NUM));
    printf("virtio: legacy interface at port %x, features %x, queue %u has %u entries\n", port, offered, index, size);
    if (size == 0 || size > 256 || (size & (size - 1)))
        return false;
    uint32_t avail_end = 16u * size + 6u + 2u * size;
    uint32_t used_off = (avail_end + 4095u) & ~4095u;
    if (used_off + 6u + 8u * size > sizeof(s_legacy_ring))
        return false;
    memset(s_legacy_ring, 0, sizeof(s_legacy_ring));
    q->index = index;
    q->size = size;
    q->desc = (volatile struct virtq_desc*)s_legacy_ring;
    q->avail = (volatile struct virtq_avail*)(s_legacy_ring + 16u * size);
    q->used = (volatile struct virtq_used*)(s_legacy_ring + used_off);
    q->avail_idx = q->last_used = q->next_desc = 0;
    q->notify = (uintptr_t)(port + LEGACY_QUEUE_NOTIFY);
    q->notify_is_port = true;
    outl((uint16_t)(port + LEGACY_QUEUE_PFN), (uint32_t)(uintptr_t)s_legacy_ring >> 12);
    outb((uint16_t)(port + LEGACY_STATUS), VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    uint8_t status = inb((uint16_t)(port + LEGACY_STATUS));
    if (status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
        printf("virtio: legacy status %x after DRIVER_OK\n", status);
        return false;
    }
    return true;
}

bool virtq_next_used(struct virtq* q, uint32_t* id, uint32_t* len)
{
    if (q->used->idx == q->last_used)
        return false;
    __asm__ volatile("" ::: "memory");
    volatile struct virtq_used_elem* e = &q->used->ring[q->last_used % q->size];
    *id = e->id;
    *len = e->len;
    q->last_used++;
    return true;
}

bool virtio_msix_setup(struct virtio_dev* v, unsigned entry, uint8_t vector)
{
    if (!v->msix_cap || !v->msix_table || entry >= v->msix_entries)
        return false;
    uintptr_t e = v->msix_table + 16u * entry;
    w32(e + 0, 0xfee00000u | ((uint32_t)lapic_id() << 12));
    w32(e + 4, 0);
    w32(e + 8, vector);
    w32(e + 12, 0); /* unmasked */
    uint8_t ctrl_off = (uint8_t)(v->msix_cap + 2);
    uint16_t ctrl = pci_read16(&v->pci, ctrl_off);
    pci_write16(&v->pci, ctrl_off, (uint16_t)((ctrl | 0x8000) & ~0x4000)); /* enable, function unmasked */
    return (pci_read16(&v->pci, ctrl_off) & 0xc000) == 0x8000;
}

void virtq_set_desc(struct virtq* q, uint16_t idx, uint32_t addr, uint32_t len, bool device_writes)
{
    q->desc[idx].addr = addr;
    q->desc[idx].len = len;
    q->desc[idx].flags = device_writes ? VIRTQ_DESC_F_WRITE : 0;
    q->desc[idx].next = 0;
}

void virtq_publish(struct virtq* q, uint16_t head)
{
    q->avail->ring[q->avail_idx % q->size] = head;
    __asm__ volatile("" ::: "memory"); /* the entry before the index (x86 keeps stores in order) */
    q->avail_idx++;
    q->avail->idx = q->avail_idx;
}

void virtq_set_no_interrupt(struct virtq* q, bool no_interrupt)
{
    q->avail->flags = no_interrupt ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0;
}

bool virtq_kick_needed(struct virtq* q)
{
    __asm__ volatile("mfence" ::: "memory");
    return !(q->used->flags & VIRTQ_USED_F_NO_NOTIFY);
}
