/* PCI configuration mechanism #1 on bus 0: what a driver needs to find its device. */
#include "guest.h"

#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA 0xcfc

static void select_reg(const struct pci_dev* d, uint8_t off)
{
    outl(CONFIG_ADDRESS, 0x80000000u | ((uint32_t)d->bus << 16) | ((uint32_t)d->slot << 11) | ((uint32_t)d->fn << 8)
                             | (off & 0xfcu));
}

uint32_t pci_read32(const struct pci_dev* d, uint8_t off)
{
    select_reg(d, off);
    return inl(CONFIG_DATA);
}
uint16_t pci_read16(const struct pci_dev* d, uint8_t off)
{
    select_reg(d, off);
    return inw((uint16_t)(CONFIG_DATA + (off & 2)));
}
uint8_t pci_read8(const struct pci_dev* d, uint8_t off)
{
    select_reg(d, off);
    return inb((uint16_t)(CONFIG_DATA + (off & 3)));
}
void pci_write32(const struct pci_dev* d, uint8_t off, uint32_t v)
{
    select_reg(d, off);
    outl(CONFIG_DATA, v);
}
void pci_write16(const struct pci_dev* d, uint8_t off, uint16_t v)
{
    select_reg(d, off);
    outw((uint16_t)(CONFIG_DATA + (off & 2)), v);
}
void pci_write8(const struct pci_dev* d, uint8_t off, uint8_t v)
{
    select_reg(d, off);
    outb((uint16_t)(CONFIG_DATA + (off & 3)), v);
}

/* ---- What PC firmware does before a driver runs, done here when no firmware did it ----
 * SeaBIOS (and hako, which boots these guests without firmware) assign every BAR, enable I/O and memory decoding and
 * route INTx through the PIIX3's PIRQ registers before the guest starts. A minimal firmware such as QEMU's qboot
 * does none of that, so the drivers here would find unassigned BARs. When not one BAR on bus 0 is assigned, this
 * assigns them as SeaBIOS does: I/O from 0xc000, 32-bit memory from 0xe0000000 (above the RAM of every test's -m),
 * naturally aligned, and PIRQ A-D to IRQ 10, 10, 11, 11 (level-triggered in the ELCR) on a PIIX3 ISA bridge. */
#define PCI_IO_BASE 0xc000u
#define PCI_IO_END 0x10000u
#define PCI_MEM_BASE 0xe0000000u
#define PCI_MEM_END 0xfec00000u
#define PIIX3_PIRQRC 0x60
#define ELCR2 0x4d1

static uint8_t header_type(const struct pci_dev* d) { return pci_read8(d, 0x0e) & 0x7f; }

/* Calls visit() for each function on bus 0 (functions 1-7 only of multi-function devices), its IDs, subsystem and
 * interrupt fields read; stops and returns true as soon as visit() returns true. */
static bool for_each_function(bool (*visit)(struct pci_dev* d, void* ctx), void* ctx)
{
    for (uint8_t slot = 0; slot < 32; slot++) {
        for (uint8_t fn = 0; fn < 8; fn++) {
            struct pci_dev d = { .bus = 0, .slot = slot, .fn = fn };
            uint32_t id = pci_read32(&d, 0);
            if ((id & 0xffff) == 0xffff) {
                if (fn == 0)
                    break;
                continue;
            }
            d.vendor = (uint16_t)id;
            d.device = (uint16_t)(id >> 16);
            uint32_t sub = pci_read32(&d, 0x2c);
            d.subsys_vendor = (uint16_t)sub;
            d.subsys_id = (uint16_t)(sub >> 16);
            d.irq_line = pci_read8(&d, 0x3c);
            d.irq_pin = pci_read8(&d, 0x3d);
            bool multi = pci_read8(&d, 0x0e) & 0x80;
            if (visit(&d, ctx))
                return true;
            if (fn == 0 && !multi)
                break;
        }
    }
    return false;
}

static bool has_assigned_bar(struct pci_dev* d, void* ctx)
{
    (void)ctx;
    if (header_type(d) != 0)
        return false;
    for (int bar = 0; bar < 6; bar++) {
        uint32_t v = pci_read32(d, (uint8_t)(0x10 + 4 * bar));
        if ((v & 1) ? (v & ~3u) != 0 : (v & ~0xfu) != 0)
            return true;
    }
    return false;
}

struct assignment {
    uint32_t io_next, mem_next;
    const uint8_t* pirq_irq; /* IRQ of PIRQ A-D, or NULL */
};

static bool assign_function(struct pci_dev* d, void* ctx)
{
    struct assignment* a = ctx;
    if (header_type(d) != 0)
        return false;
    uint16_t cmd = 0;
    for (int bar = 0; bar < 6; bar++) {
        uint8_t off = (uint8_t)(0x10 + 4 * bar);
        uint32_t old = pci_read32(d, off);
        pci_write32(d, off, 0xffffffffu);
        uint32_t mask = pci_read32(d, off);
        pci_write32(d, off, old);
        if (mask == 0 || mask == 0xffffffffu)
            continue;
        bool io = mask & 1;
        bool is64 = !io && ((mask >> 1) & 3) == 2;
        uint32_t size = io ? (~(mask & ~3u) & 0xffffu) + 1 : ~(mask & ~0xfu) + 1;
        uint32_t* next = io ? &a->io_next : &a->mem_next;
        uint32_t end = io ? PCI_IO_END : PCI_MEM_END;
        uint32_t addr = (*next + size - 1) & ~(size - 1);
        if (size == 0 || addr < *next || addr + size > end || addr + size < addr) {
            printf("pci: %02x.%x BAR %d (%u bytes) does not fit: left unassigned\n", d->slot, d->fn, bar, size);
        } else {
            pci_write32(d, off, addr | (old & (io ? 3u : 0xfu)));
            *next = addr + size;
            cmd |= io ? PCI_CMD_IO : PCI_CMD_MEMORY;
        }
        if (is64) {
            pci_write32(d, (uint8_t)(off + 4), 0);
            bar++;
        }
    }
    if (cmd)
        pci_write16(d, PCI_COMMAND, (uint16_t)(pci_read16(d, PCI_COMMAND) | cmd));
    uint8_t pin = pci_read8(d, 0x3d);
    if (a->pirq_irq && pin >= 1 && pin <= 4)
        pci_write8(d, 0x3c, a->pirq_irq[(pin - 1 + d->slot) & 3]);
    return false;
}

static void firmware_setup_once(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    if (for_each_function(has_assigned_bar, NULL))
        return;
    /* PIIX3 ISA bridge at 00:01.0 (QEMU's -M pc): PIRQ A-D to IRQ 10, 10, 11, 11, level-triggered. */
    static const uint8_t irqs[4] = { 10, 10, 11, 11 };
    const uint8_t* pirq_irq = NULL;
    struct pci_dev isa = { .bus = 0, .slot = 1, .fn = 0 };
    if (pci_read32(&isa, 0) == 0x70008086u) {
        for (int i = 0; i < 4; i++)
            pci_write8(&isa, (uint8_t)(PIIX3_PIRQRC + i), irqs[i]);
        outb(ELCR2, (uint8_t)(inb(ELCR2) | (1u << (10 - 8)) | (1u << (11 - 8))));
        pirq_irq = irqs;
    }
    struct assignment a = { .io_next = PCI_IO_BASE, .mem_next = PCI_MEM_BASE, .pirq_irq = pirq_irq };
    for_each_function(assign_function, &a);
    printf("pci: no firmware had assigned BARs: assigned I/O 0x%x-0x%x, memory 0x%x-0x%x%s\n", PCI_IO_BASE,
           a.io_next, PCI_MEM_BASE, a.mem_next, pirq_irq ? ", PIRQ A-D to IRQ 10, 10, 11, 11" : "");
}

struct find {
    bool (*match)(const struct pci_dev* d, void* ctx);
    void* ctx;
    unsigned nth;
    struct pci_dev* out;
};

static bool find_nth(struct pci_dev* d, void* ctx)
{
    struct find* f = ctx;
    if (f->match && !f->match(d, f->ctx))
        return false;
    if (f->nth > 0) {
        f->nth--;
        return false;
    }
    *f->out = *d;
    return true;
}

bool pci_find(bool (*match)(const struct pci_dev* d, void* ctx), void* ctx, unsigned nth, struct pci_dev* out)
{
    firmware_setup_once();
    struct find f = { .match = match, .ctx = ctx, .nth = nth, .out = out };
    return for_each_function(find_nth, &f);
}

uint64_t pci_bar_address(const struct pci_dev* d, int bar, bool* is_io)
{
    uint8_t off = (uint8_t)(0x10 + 4 * bar);
    uint32_t lo = pci_read32(d, off);
    if (lo & 1) {
        *is_io = true;
        return lo & ~3u;
    }
    *is_io = false;
    uint64_t addr = lo & ~0xfu;
    if (((lo >> 1) & 3) == 2 && bar < 5)
        addr |= (uint64_t)pci_read32(d, (uint8_t)(off + 4)) << 32;
    return addr;
}

uint8_t pci_find_cap(const struct pci_dev* d, uint8_t id, uint8_t after)
{
    if (!(pci_read16(d, 0x06) & (1u << 4)))
        return 0;
    uint8_t off = after ? pci_read8(d, (uint8_t)(after + 1)) : pci_read8(d, 0x34);
    for (int guard = 0; guard < 48 && off >= 0x40; guard++) {
        off &= 0xfc;
        if (pci_read8(d, off) == id)
            return off;
        off = pci_read8(d, (uint8_t)(off + 1));
    }
    return 0;
}
