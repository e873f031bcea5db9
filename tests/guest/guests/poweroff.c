/* poweroff: ACPI S5 soft-off. Finds the FADT ("FACP") through the RSDP, takes PM1a_CNT_BLK and the DSDT (X_DSDT if
 * set), checks the DSDT checksum, scans the AML for the "_S5_" NameOp whose value is a Package and decodes its first
 * element (ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix) as SLP_TYPa, then writes SLP_TYPa << 10 | SLP_EN to
 * PM1a_CNT. A working VMM powers off (QEMU/hako exit status 0); still running after a bounded wait exits 99.
 *
 * With button=1 it first acts as an OS waiting for the power button: switches to ACPI mode if needed (ACPI_ENABLE
 * to SMI_CMD), routes the SCI (FADT SCI_INT, through the IOAPIC with the MADT's flags), sets PWRBTN_EN in PM1a_EN,
 * prints "READY" and waits; on the SCI it checks and clears PWRBTN_STS in PM1a_STS ("poweroff: power button
 * pressed") and then powers off as above. The harness presses the button (hako: the API's vm.power-button; QEMU:
 * QMP system_powerdown).
 *
 * Exit codes: 2 no FADT, 3 no PM1a_CNT_BLK, 4 no valid DSDT, 5 no _S5_ package, 6 undecodable SLP_TYP, 7 SCI setup,
 * 8 an SCI without PWRBTN_STS, 99 still on.
 */
#include "guest.h"

#define FADT_DSDT 40
#define FADT_PM1A_CNT_BLK 64
#define FADT_X_DSDT 140
#define AML_NAME_OP 0x08
#define AML_PACKAGE_OP 0x12
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define FADT_SCI_INT 46
#define FADT_SMI_CMD 48
#define FADT_ACPI_ENABLE 52
#define FADT_PM1A_EVT_BLK 56
#define SLP_EN (1u << 13)
#define SCI_EN (1u << 0)
#define PWRBTN_STS (1u << 8)
#define PWRBTN_EN (1u << 8)

static uint16_t s_pm1a_evt;
static volatile uint32_t s_sci_count, s_button_count, s_other_status;
static uint8_t s_sci_irq;

/* Decodes one integer data object at p (within end); returns bytes consumed, 0 if not an integer. */
static uint32_t aml_integer(const uint8_t* p, const uint8_t* end, uint32_t* out)
{
    if (p >= end)
        return 0;
    switch (p[0]) {
    case AML_ZERO_OP: *out = 0; return 1;
    case AML_ONE_OP: *out = 1; return 1;
    case AML_BYTE_PREFIX:
        if (end - p < 2)
            return 0;
        *out = p[1];
        return 2;
    case AML_WORD_PREFIX:
        if (end - p < 3)
            return 0;
        *out = (uint32_t)p[1] | (uint32_t)p[2] << 8;
        return 3;
    case AML_DWORD_PREFIX:
        if (end - p < 5)
            return 0;
        *out = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
        return 5;
    default:
        return 0;
    }
}

/* Finds `NameOp ["\"] "_S5_" PackageOp PkgLength NumElements <SLP_TYPa> ...` and decodes SLP_TYPa. */
static int find_s5(const uint8_t* aml, uint32_t len, uint32_t* slp_typ)
{
    const uint8_t* end = aml + len;
    for (const uint8_t* p = aml; p + 4 <= end; p++) {
        if (memcmp(p, "_S5_", 4) != 0)
            continue;
        bool named = (p > aml && p[-1] == AML_NAME_OP) || (p - aml >= 2 && p[-1] == '\\' && p[-2] == AML_NAME_OP);
        if (!named)
            continue;
        const uint8_t* q = p + 4;
        if (q >= end || *q != AML_PACKAGE_OP)
            continue;
        q++;
        if (q >= end)
            return -1;
        uint32_t pkglen_bytes = (uint32_t)(*q >> 6) + 1; /* PkgLength: lead byte bits 7-6 = extra bytes */
        q += pkglen_bytes;
        if (q >= end)
            return -1;
        uint32_t elements = *q++;
        printf("poweroff: _S5_ package at offset %u, %u elements, first bytes %x %x\n", (uint32_t)(p - aml),
            elements, q < end ? q[0] : 0, q + 1 < end ? q[1] : 0);
        if (elements < 1 || !aml_integer(q, end, slp_typ))
            return -2;
        return 0;
    }
    return -1;
}

static void sci_handler(struct int_frame* f)
{
    (void)f;
    s_sci_count++;
    uint16_t sts = inw(s_pm1a_evt);
    if (sts & PWRBTN_STS) {
        outw(s_pm1a_evt, PWRBTN_STS); /* write 1 to clear: the SCI level drops */
        s_button_count++;
    } else {
        s_other_status = sts;
    }
    irq_eoi(IRQ_MODE_IOAPIC, s_sci_irq);
}

/* Enables the power button event and waits for it (bounded only by the harness's timeout). */
static void wait_for_power_button(const uint8_t* f, uint32_t fadt_len, uint32_t pm1a_cnt)
{
    uint16_t sci = 0;
    uint32_t smi_cmd = 0, evt = 0;
    uint8_t acpi_enable = 0;
    memcpy(&sci, f + FADT_SCI_INT, 2);
    memcpy(&smi_cmd, f + FADT_SMI_CMD, 4);
    acpi_enable = f[FADT_ACPI_ENABLE];
    if (fadt_len >= FADT_PM1A_EVT_BLK + 4)
        memcpy(&evt, f + FADT_PM1A_EVT_BLK, 4);
    check(evt != 0 && evt <= 0xfffc && sci < 16, 7, "FADT gives PM1a_EVT_BLK and an ISA SCI");
    s_pm1a_evt = (uint16_t)evt;
    s_sci_irq = (uint8_t)sci;
    if (!(inw((uint16_t)pm1a_cnt) & SCI_EN) && smi_cmd && acpi_enable) {
        printf("poweroff: entering ACPI mode (%x to SMI_CMD %x)\n", acpi_enable, smi_cmd);
        outb((uint16_t)smi_cmd, acpi_enable);
        for (uint32_t i = 0; i < 100000 && !(inw((uint16_t)pm1a_cnt) & SCI_EN); i++)
            cpu_relax();
    }
    check(inw((uint16_t)pm1a_cnt) & SCI_EN, 7, "SCI_EN is set (ACPI mode)");
    struct madt_info madt;
    check(madt_parse(&madt), 7, "MADT parsed");
    uint8_t vector;
    check(irq_setup(IRQ_MODE_IOAPIC, &madt, s_sci_irq, &vector), 7, "SCI routed");
    idt_set_handler(vector, sci_handler);
    outw(s_pm1a_evt, 0xffff);                     /* clear stale status */
    outw((uint16_t)(s_pm1a_evt + 2), PWRBTN_EN); /* PM1a_EN */
    printf("poweroff: power button enabled on SCI IRQ %u (PM1a_EVT_BLK %x)\nREADY\n", s_sci_irq, s_pm1a_evt);
    sti();
    while (s_button_count == 0) {
        if (s_other_status)
            fail(8, "SCI with PM1a_STS %x and no PWRBTN_STS", s_other_status);
        hlt();
    }
    cli();
    printf("poweroff: power button pressed (%u SCIs)\n", s_sci_count);
}

int guest_main(void)
{
    const struct acpi_sdt_header* fadt = acpi_find_table("FACP", true);
    if (!fadt)
        fail(2, "no valid FADT");
    const uint8_t* f = (const uint8_t*)fadt;
    uint32_t pm1a_cnt = 0, dsdt32 = 0;
    uint64_t xdsdt = 0;
    if (fadt->length >= FADT_PM1A_CNT_BLK + 4)
        memcpy(&pm1a_cnt, f + FADT_PM1A_CNT_BLK, 4);
    memcpy(&dsdt32, f + FADT_DSDT, 4);
    if (fadt->length >= FADT_X_DSDT + 8)
        memcpy(&xdsdt, f + FADT_X_DSDT, 8);
    printf("poweroff: FADT rev %u, PM1a_CNT_BLK %x, DSDT %x, X_DSDT %llx\n", fadt->revision, pm1a_cnt, dsdt32, xdsdt);
    check(pm1a_cnt != 0 && pm1a_cnt <= 0xfffe, 3, "PM1a_CNT_BLK is an I/O port");
    uint32_t button = 0;
    if (cmdline_get_u32("button", &button) && button)
        wait_for_power_button(f, fadt->length, pm1a_cnt);

    uint64_t dsdt_addr = xdsdt && xdsdt < 0x100000000ull ? xdsdt : dsdt32;
    const struct acpi_sdt_header* dsdt = (const struct acpi_sdt_header*)(uintptr_t)dsdt_addr;
    bool dsdt_ok = dsdt_addr != 0 && memcmp(dsdt->signature, "DSDT", 4) == 0 && dsdt->length >= sizeof(*dsdt)
        && dsdt->length < 0x100000 && acpi_checksum_ok(dsdt, dsdt->length);
    if (dsdt_ok)
        printf("poweroff: DSDT at %x, %u bytes\n", (uint32_t)dsdt_addr, dsdt->length);
    check(dsdt_ok, 4, "DSDT signature and checksum");

    uint32_t slp_typ = 0;
    int r = find_s5((const uint8_t*)dsdt + sizeof(*dsdt), dsdt->length - (uint32_t)sizeof(*dsdt), &slp_typ);
    check(r != -1, 5, "DSDT has a _S5_ package");
    check(r == 0 && slp_typ <= 7, 6, "SLP_TYPa decoded");
    uint16_t value = (uint16_t)((slp_typ << 10) | SLP_EN);
    printf("poweroff: SLP_TYPa %u: writing %x to port %x\n", slp_typ, value, pm1a_cnt);
    for (uint32_t i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_TEMT); i++)
        cpu_relax();
    outw((uint16_t)pm1a_cnt, value);
    for (uint32_t i = 0; i < 3000000; i++)
        cpu_relax();
    fail(99, "still running after the S5 request");
}
