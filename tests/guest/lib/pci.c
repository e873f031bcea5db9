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

bool pci_find(bool (*match)(const struct pci_dev* d, void* ctx), void* ctx, unsigned nth, struct pci_dev* out)
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
            if (!match || match(&d, ctx)) {
                if (nth == 0) {
                    *out = d;
                    return true;
                }
                nth--;
            }
            if (fn == 0 && !(pci_read8(&d, 0x0e) & 0x80))
                break;
        }
    }
    return false;
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
