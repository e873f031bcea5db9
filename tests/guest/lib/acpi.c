/* ACPI: RSDP scan, RSDT/XSDT walk with checksum verification, and the MADT parser. */
#include "guest.h"

bool acpi_checksum_ok(const void* p, uint32_t len)
{
    const uint8_t* b = p;
    uint8_t sum = 0;
    for (uint32_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + b[i]);
    return sum == 0;
}

static const struct acpi_rsdp* scan_rsdp(uint32_t start, uint32_t end)
{
    for (uint32_t a = start; a + 20 <= end; a += 16) {
        const struct acpi_rsdp* r = (const struct acpi_rsdp*)(uintptr_t)a;
        if (memcmp(r->signature, "RSD PTR ", 8) != 0)
            continue;
        if (!acpi_checksum_ok(r, 20))
            continue;
        if (r->revision >= 2 && (r->length < 36 || r->length > 4096 || !acpi_checksum_ok(r, r->length)))
            continue;
        return r;
    }
    return NULL;
}

const struct acpi_rsdp* acpi_find_rsdp(void)
{
    /* The EBDA segment is at 0x40E in the BIOS data area. */
    uint32_t ebda = (uint32_t)(*(volatile uint16_t*)0x40E) << 4;
    if (ebda >= 0x80000 && ebda < 0xA0000) {
        const struct acpi_rsdp* r = scan_rsdp(ebda, ebda + 1024);
        if (r)
            return r;
    }
    return scan_rsdp(0xE0000, 0x100000);
}

static const struct acpi_sdt_header* valid_table(uint64_t addr, const char* sig)
{
    if (addr == 0 || addr >= 0x100000000ull)
        return NULL;
    const struct acpi_sdt_header* h = (const struct acpi_sdt_header*)(uintptr_t)addr;
    if (sig && memcmp(h->signature, sig, 4) != 0)
        return NULL;
    if (h->length < sizeof(*h) || h->length > 0x100000 || !acpi_checksum_ok(h, h->length))
        return NULL;
    return h;
}

const struct acpi_sdt_header* acpi_find_table(const char* sig, bool verbose)
{
    const struct acpi_rsdp* rsdp = acpi_find_rsdp();
    if (!rsdp) {
        if (verbose)
            printf("acpi: no RSDP with a valid checksum in the EBDA or 0xE0000-0xFFFFF\n");
        return NULL;
    }
    if (verbose)
        printf("acpi: RSDP at %p rev %u rsdt %x xsdt %llx\n", (const void*)rsdp, rsdp->revision,
            rsdp->rsdt_address, rsdp->revision >= 2 ? rsdp->xsdt_address : 0);
    const struct acpi_sdt_header* root = NULL;
    uint32_t entry_size = 4;
    if (rsdp->revision >= 2 && rsdp->xsdt_address) {
        root = valid_table(rsdp->xsdt_address, "XSDT");
        entry_size = 8;
        if (!root && verbose)
            printf("acpi: XSDT invalid, trying the RSDT\n");
    }
    if (!root) {
        root = valid_table(rsdp->rsdt_address, "RSDT");
        entry_size = 4;
    }
    if (!root) {
        if (verbose)
            printf("acpi: no valid RSDT/XSDT\n");
        return NULL;
    }
    const uint8_t* entries = (const uint8_t*)root + sizeof(*root);
    uint32_t count = (root->length - (uint32_t)sizeof(*root)) / entry_size;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t addr;
        if (entry_size == 8)
            memcpy(&addr, entries + i * 8, 8);
        else {
            uint32_t a32;
            memcpy(&a32, entries + i * 4, 4);
            addr = a32;
        }
        const struct acpi_sdt_header* h = valid_table(addr, NULL);
        if (!h) {
            if (verbose)
                printf("acpi: %s entry %u (%llx) has a bad checksum or length\n", entry_size == 8 ? "XSDT" : "RSDT",
                    i, addr);
            continue;
        }
        if (memcmp(h->signature, sig, 4) == 0) {
            if (verbose)
                printf("acpi: %c%c%c%c at %p, %u bytes, checksum ok\n", sig[0], sig[1], sig[2], sig[3],
                    (const void*)h, h->length);
            return h;
        }
    }
    if (verbose)
        printf("acpi: no %c%c%c%c table\n", sig[0], sig[1], sig[2], sig[3]);
    return NULL;
}

bool madt_parse(struct madt_info* m)
{
    memset(m, 0, sizeof(*m));
    const struct acpi_sdt_header* h = acpi_find_table("APIC", true);
    if (!h)
        return false;
    if (h->length < sizeof(*h) + 8) {
        printf("madt: too short\n");
        return false;
    }
    const uint8_t* base = (const uint8_t*)h;
    memcpy(&m->lapic_addr, base + 36, 4);
    memcpy(&m->flags, base + 40, 4);
    uint32_t off = 44;
    while (off + 2 <= h->length) {
        uint8_t type = base[off];
        uint8_t len = base[off + 1];
        if (len < 2 || off + len > h->length) {
            printf("madt: malformed entry type %u length %u at offset %u\n", type, len, off);
            return false;
        }
        const uint8_t* e = base + off;
        if (type == 0 && len >= 8) { /* Processor Local APIC */
            uint32_t flags;
            memcpy(&flags, e + 4, 4);
            if (flags & 1) {
                if (m->cpu_count < MADT_MAX_CPUS)
                    m->apic_ids[m->cpu_count] = e[3];
                m->cpu_count++;
            }
        } else if (type == 1 && len >= 12) { /* I/O APIC */
            if (m->ioapic_count == 0) {
                memcpy(&m->ioapic_addr, e + 4, 4);
                memcpy(&m->ioapic_gsi_base, e + 8, 4);
            }
            m->ioapic_count++;
        } else if (type == 2 && len >= 10) { /* Interrupt Source Override */
            if (m->override_count < MADT_MAX_OVERRIDES) {
                m->overrides[m->override_count].source_irq = e[3];
                memcpy(&m->overrides[m->override_count].gsi, e + 4, 4);
                memcpy(&m->overrides[m->override_count].flags, e + 8, 2);
                m->override_count++;
            }
        }
        off += len;
    }
    if (m->lapic_addr)
        g_lapic_base = m->lapic_addr;
    if (m->ioapic_count)
        g_ioapic_base = m->ioapic_addr;
    printf("madt: lapic %x, %u enabled cpus, %u ioapic(s) (first at %x gsi base %u), %u overrides\n", m->lapic_addr,
        m->cpu_count, m->ioapic_count, m->ioapic_addr, m->ioapic_gsi_base, m->override_count);
    return true;
}

uint32_t madt_irq_to_gsi(const struct madt_info* m, uint8_t irq, uint16_t* flags)
{
    *flags = 0;
    for (uint32_t i = 0; i < m->override_count; i++) {
        if (m->overrides[i].source_irq == irq) {
            *flags = m->overrides[i].flags;
            return m->overrides[i].gsi;
        }
    }
    return irq;
}
