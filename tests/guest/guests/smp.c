/* smp: multiprocessor start-up. Finds the MADT through the RSDP, counts the enabled LAPIC entries and compares
 * with cpus=N from the command line; starts every AP with INIT-SIPI-SIPI through the LAPIC ICR. Each AP runs a
 * real-mode trampoline copied to 0x70000 that enters protected mode, reads its LAPIC ID, atomically takes a slot,
 * records its ID there and halts. The BSP waits (bounded) for N-1 APs and checks the IDs are distinct, are not the
 * BSP's, and are exactly the MADT's.
 *
 * Exit codes: 2 no cpus=, 3 no MADT, 4 MADT CPU count != cpus=, 5 IPI not delivered, 6 APs did not all arrive,
 * 7 duplicate APIC ID, 8 APIC ID not in the MADT, 9 BSP not in the MADT.
 */
#include "guest.h"

#define TRAMPOLINE_ADDR 0x70000u /* SIPI vector 0x70; below 1 MiB and away from the VMM's boot structures */

volatile uint32_t ap_slot;       /* next free slot, taken with LOCK XADD */
volatile uint32_t ap_done;       /* APs that have written their ID */
volatile uint8_t ap_ids[MADT_MAX_CPUS];

extern const char ap_trampoline[], ap_trampoline_end[];

/* The AP trampoline. Runs at 0x70000 with CS=0x7000, IP=0. Everything in it is addressed either relative to its
 * own start (real mode) or at TRAMPOLINE_ADDR + offset (protected mode); the counters live in the guest image. */
__asm__(
    ".section .rodata\n"
    ".globl ap_trampoline, ap_trampoline_end\n"
    ".code16\n"
    "ap_trampoline:\n"
    "    cli\n"
    "    cld\n"
    "    movw %cs, %ax\n"
    "    movw %ax, %ds\n"
    "    lgdtl %ds:(ap_gdt_desc - ap_trampoline)\n"
    "    movl %cr0, %eax\n"
    "    orl $1, %eax\n"
    "    movl %eax, %cr0\n"
    "    ljmpl $0x08, $(0x70000 + ap_pm32 - ap_trampoline)\n"
    ".code32\n"
    "ap_pm32:\n"
    "    movw $0x10, %ax\n"
    "    movw %ax, %ds\n"
    "    movw %ax, %es\n"
    "    movw %ax, %ss\n"
    "    movl 0xFEE00020, %eax\n" /* LAPIC ID register: the AP's LAPIC is at its reset base */
    "    shrl $24, %eax\n"
    "    movl $1, %ecx\n"
    "    lock xaddl %ecx, ap_slot\n"
    "    cmpl $64, %ecx\n"
    "    jae 1f\n"
    "    movb %al, ap_ids(%ecx)\n"
    "1:  lock incl ap_done\n"
    "2:  cli\n"
    "    hlt\n"
    "    jmp 2b\n"
    "    .align 8\n"
    "ap_gdt:\n"
    "    .quad 0\n"
    "    .quad 0x00CF9A000000FFFF\n"
    "    .quad 0x00CF92000000FFFF\n"
    "ap_gdt_desc:\n"
    "    .word 23\n"
    "    .long 0x70000 + ap_gdt - ap_trampoline\n"
    "ap_trampoline_end:\n"
    ".text\n");

static void short_wait(uint32_t iterations)
{
    for (uint32_t i = 0; i < iterations; i++)
        cpu_relax();
}

int guest_main(void)
{
    uint32_t cpus;
    if (!cmdline_get_u32("cpus", &cpus) || cpus == 0 || cpus > MADT_MAX_CPUS)
        fail(2, "no valid cpus=N on the command line");
    struct madt_info madt;
    if (!madt_parse(&madt))
        fail(3, "no valid MADT");
    printf("smp: MADT APIC IDs:");
    for (uint32_t i = 0; i < madt.cpu_count && i < MADT_MAX_CPUS; i++)
        printf(" %u", madt.apic_ids[i]);
    printf("\n");
    printf("smp: MADT has %u enabled CPUs, cpus=%u\n", madt.cpu_count, cpus);
    check(madt.cpu_count == cpus, 4, "MADT enabled LAPIC count matches cpus=");

    lapic_enable();
    uint8_t bsp = lapic_id();
    printf("smp: BSP APIC ID %u, LAPIC version %x\n", bsp, lapic_read(LAPIC_VERSION));
    bool bsp_in_madt = false;
    for (uint32_t i = 0; i < madt.cpu_count; i++)
        bsp_in_madt |= madt.apic_ids[i] == bsp;
    check(bsp_in_madt, 9, "BSP APIC ID is in the MADT");

    memcpy((void*)(uintptr_t)TRAMPOLINE_ADDR, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
    ap_slot = 0;
    ap_done = 0;
    uint8_t sipi_vector = (uint8_t)(TRAMPOLINE_ADDR >> 12);
    for (uint32_t i = 0; i < madt.cpu_count; i++) {
        uint8_t id = madt.apic_ids[i];
        if (id == bsp)
            continue;
        printf("smp: INIT-SIPI-SIPI to APIC ID %u\n", id);
        lapic_write(LAPIC_ESR, 0);
        if (!lapic_send_ipi(id, LAPIC_DM_INIT | LAPIC_ICR_LEVEL_ASSERT | LAPIC_ICR_TRIGGER_LEVEL))
            fail(5, "INIT IPI to %u stuck pending", id);
        short_wait(1000);
        if (!lapic_send_ipi(id, LAPIC_DM_INIT | LAPIC_ICR_TRIGGER_LEVEL)) /* de-assert */
            fail(5, "INIT de-assert to %u stuck pending", id);
        short_wait(1000);
        for (int s = 0; s < 2; s++) {
            if (!lapic_send_ipi(id, LAPIC_DM_STARTUP | sipi_vector))
                fail(5, "SIPI to %u stuck pending", id);
            short_wait(200);
        }
    }

    uint32_t expected = cpus - 1;
    uint32_t i;
    for (i = 0; i < 5000000 && ap_done < expected; i++)
        cpu_relax();
    printf("smp: %u of %u APs checked in after %u iterations\n", ap_done, expected, i);
    check(ap_done == expected && ap_slot == expected, 6, "every AP ran the trampoline");

    for (uint32_t a = 0; a < expected; a++) {
        uint8_t id = ap_ids[a];
        printf("smp: AP %u reports APIC ID %u\n", a, id);
        if (id == bsp)
            fail(7, "AP reports the BSP's APIC ID %u", id);
        for (uint32_t b = 0; b < a; b++)
            if (ap_ids[b] == id)
                fail(7, "APIC ID %u reported twice", id);
        bool found = false;
        for (uint32_t m = 0; m < madt.cpu_count; m++)
            found |= madt.apic_ids[m] == id;
        if (!found)
            fail(8, "AP APIC ID %u is not in the MADT", id);
    }
    check(true, 0, "AP APIC IDs distinct and match the MADT");
    return 0;
}
