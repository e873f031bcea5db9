/* Local APIC (xAPIC MMIO), IOAPIC and 8259 PIC helpers, and the one-call ISA IRQ setup used by the guests. */
#include "guest.h"

#define IA32_APIC_BASE 0x1B
#define IA32_APIC_BASE_ENABLE (1u << 11)

uint32_t g_lapic_base = LAPIC_DEFAULT_BASE;
uint32_t g_ioapic_base = IOAPIC_DEFAULT_BASE;

uint32_t lapic_read(uint32_t reg) { return mmio_read32(g_lapic_base + reg); }
void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(g_lapic_base + reg, v); }

void lapic_enable(void)
{
    uint64_t base = rdmsr(IA32_APIC_BASE);
    if (!(base & IA32_APIC_BASE_ENABLE))
        wrmsr(IA32_APIC_BASE, base | IA32_APIC_BASE_ENABLE);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | SPURIOUS_VECTOR);
}

uint8_t lapic_id(void) { return (uint8_t)(lapic_read(LAPIC_ID) >> 24); }
void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

bool lapic_send_ipi(uint8_t dest_apic_id, uint32_t icr_low)
{
    lapic_write(LAPIC_ICR_HIGH, (uint32_t)dest_apic_id << 24);
    lapic_write(LAPIC_ICR_LOW, icr_low);
    for (uint32_t i = 0; i < 10000; i++) {
        if (!(lapic_read(LAPIC_ICR_LOW) & LAPIC_ICR_DELIVERY_PENDING))
            return true;
        cpu_relax();
    }
    return false;
}

uint32_t ioapic_read(uint32_t reg)
{
    mmio_write32(g_ioapic_base, reg);
    return mmio_read32(g_ioapic_base + 0x10);
}

void ioapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(g_ioapic_base, reg);
    mmio_write32(g_ioapic_base + 0x10, v);
}

uint32_t ioapic_max_redir(void) { return (ioapic_read(IOAPIC_REG_VER) >> 16) & 0xff; }

void ioapic_route(uint32_t gsi, uint8_t vector, uint8_t dest, uint16_t inti_flags)
{
    uint32_t low = vector; /* fixed delivery, physical destination */
    if ((inti_flags & 3) == 3)
        low |= IOAPIC_RTE_ACTIVE_LOW;
    if (((inti_flags >> 2) & 3) == 3)
        low |= IOAPIC_RTE_LEVEL;
    ioapic_write(IOAPIC_REDTBL(gsi) + 1, (uint32_t)dest << 24);
    ioapic_write(IOAPIC_REDTBL(gsi), low);
}

void ioapic_mask(uint32_t gsi)
{
    uint32_t low = ioapic_read(IOAPIC_REDTBL(gsi));
    ioapic_write(IOAPIC_REDTBL(gsi), low | IOAPIC_RTE_MASKED);
}

void pic_remap(uint8_t base1, uint8_t base2)
{
    outb(PIC1_CMD, 0x11); /* ICW1: edge, cascade, ICW4 needed */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, base1); /* ICW2: vector base */
    outb(PIC2_DATA, base2);
    outb(PIC1_DATA, 0x04); /* ICW3: slave on IRQ2 */
    outb(PIC2_DATA, 0x02); /* ICW3: slave identity 2 */
    outb(PIC1_DATA, 0x01); /* ICW4: 8086 mode */
    outb(PIC2_DATA, 0x01);
    pic_mask_all();
}

void pic_mask_all(void)
{
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
}

void pic_unmask(uint8_t irq)
{
    if (irq >= 8) {
        outb(PIC2_DATA, (uint8_t)(inb(PIC2_DATA) & ~(1u << (irq - 8))));
        irq = 2;
    }
    outb(PIC1_DATA, (uint8_t)(inb(PIC1_DATA) & ~(1u << irq)));
}

void pic_eoi(uint8_t irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, 0x20);
    outb(PIC1_CMD, 0x20);
}

enum irq_mode irq_mode_from_cmdline(void)
{
    char buf[16];
    if (cmdline_get("irq", buf, sizeof(buf)) && strcmp(buf, "pic") == 0)
        return IRQ_MODE_PIC;
    return IRQ_MODE_IOAPIC;
}

bool irq_setup(enum irq_mode mode, const struct madt_info* madt, uint8_t irq, uint8_t* vector_out)
{
    uint8_t vector = (uint8_t)(IRQ_VECTOR_BASE + irq);
    /* The PIC is remapped in both modes so a stray 8259 interrupt cannot land on an exception vector. */
    pic_remap(IRQ_VECTOR_BASE, IRQ_VECTOR_BASE + 8);
    lapic_enable();
    if (mode == IRQ_MODE_PIC) {
        lapic_write(LAPIC_LVT_LINT0, LAPIC_DM_EXTINT);
        pic_unmask(irq);
        printf("irq: ISA IRQ %u through the 8259 PIC -> vector %x\n", irq, vector);
    } else {
        lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | LAPIC_DM_EXTINT);
        uint16_t flags = 0;
        uint32_t gsi = madt ? madt_irq_to_gsi(madt, irq, &flags) : irq;
        if (madt && madt->ioapic_count)
            g_ioapic_base = madt->ioapic_addr;
        uint32_t gsi_base = madt ? madt->ioapic_gsi_base : 0;
        if (gsi < gsi_base || gsi - gsi_base > ioapic_max_redir()) {
            printf("irq: GSI %u not on the IOAPIC (base %u, %u entries)\n", gsi, gsi_base, ioapic_max_redir() + 1);
            return false;
        }
        ioapic_route(gsi - gsi_base, vector, lapic_id(), flags);
        printf("irq: ISA IRQ %u -> GSI %u (flags %x) through the IOAPIC at %x -> vector %x\n", irq, gsi, flags,
            g_ioapic_base, vector);
    }
    *vector_out = vector;
    return true;
}

void irq_eoi(enum irq_mode mode, uint8_t irq)
{
    if (mode == IRQ_MODE_PIC)
        pic_eoi(irq);
    lapic_eoi(); /* ExtINT delivery needs no LAPIC EOI, but it is harmless (no ISR bit set: ignored) */
}
