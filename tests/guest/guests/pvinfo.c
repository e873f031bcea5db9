/* pvinfo: the paravirtual CPUID interface. Checks CPUID.1:ECX bit 31 (hypervisor present), the signature
 * "KVMKVMKVM\0\0\0" at leaf 0x40000000, and that leaf 0x40000001 EAX has every bit of features=0x... from the
 * command line (default: CLOCKSOURCE2 3, ASYNC_PF 4, STEAL_TIME 5, PV_EOI 6, PV_UNHALT 7, PV_TLB_FLUSH 9,
 * PV_SEND_IPI 11, PV_SCHED_YIELD 13). Prints the whole feature word and the names of missing bits, so the harness
 * can decide. With cpus=N, checks leaf 0xB: the core level counts N logical processors (one package), the SMT level
 * at least 1, and the x2APIC ID matches CPUID.1 EBX[31:24].
 *
 * Exit codes: 2 hypervisor bit clear, 3 signature, 4 max leaf < 0x40000001, 5 feature bits missing,
 * 6 leaf 0xB missing, 7 leaf 0xB count mismatch, 8 x2APIC ID mismatch.
 */
#include "guest.h"

#define DEFAULT_FEATURES ((1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 9) | (1u << 11) | (1u << 13))

static const char* const FEATURE_NAMES[32] = {
    [0] = "CLOCKSOURCE", [1] = "NOP_IO_DELAY", [2] = "MMU_OP", [3] = "CLOCKSOURCE2", [4] = "ASYNC_PF",
    [5] = "STEAL_TIME", [6] = "PV_EOI", [7] = "PV_UNHALT", [9] = "PV_TLB_FLUSH", [10] = "ASYNC_PF_VMEXIT",
    [11] = "PV_SEND_IPI", [12] = "POLL_CONTROL", [13] = "PV_SCHED_YIELD", [14] = "ASYNC_PF_INT",
    [15] = "MSI_EXT_DEST_ID", [16] = "HC_MAP_GPA_RANGE", [17] = "MIGRATION_CONTROL", [24] = "CLOCKSOURCE_STABLE",
};

int guest_main(void)
{
    uint32_t expected = DEFAULT_FEATURES;
    (void)cmdline_get_u32("features", &expected);

    struct cpuid_regs l1 = cpuid(1, 0);
    printf("pvinfo: CPUID.1 eax %x ebx %x ecx %x edx %x\n", l1.eax, l1.ebx, l1.ecx, l1.edx);
    check((l1.ecx >> 31) & 1, 2, "CPUID.1:ECX[31] hypervisor present");

    struct cpuid_regs h = cpuid(0x40000000, 0);
    char sig[13];
    memcpy(sig, &h.ebx, 4);
    memcpy(sig + 4, &h.ecx, 4);
    memcpy(sig + 8, &h.edx, 4);
    sig[12] = 0;
    printf("pvinfo: CPUID 0x40000000: max leaf %x, signature \"%s\"\n", h.eax, sig);
    check(memcmp(sig, "KVMKVMKVM\0\0\0", 12) == 0, 3, "signature KVMKVMKVM");
    /* KVM reports eax = 0 in old versions, meaning 0x40000001. */
    check(h.eax == 0 || h.eax >= 0x40000001, 4, "leaf 0x40000001 exists");

    struct cpuid_regs f = cpuid(0x40000001, 0);
    printf("pvinfo: features eax %x edx %x (expected mask %x)\n", f.eax, f.edx, expected);
    printf("pvinfo: present:");
    for (int b = 0; b < 32; b++)
        if (f.eax & (1u << b))
            printf(" %s(%d)", FEATURE_NAMES[b] ? FEATURE_NAMES[b] : "?", b);
    printf("\n");
    uint32_t missing = expected & ~f.eax;
    if (missing) {
        printf("pvinfo: MISSING:");
        for (int b = 0; b < 32; b++)
            if (missing & (1u << b))
                printf(" %s(%d)", FEATURE_NAMES[b] ? FEATURE_NAMES[b] : "?", b);
        printf("\n");
    }
    check(missing == 0, 5, "all expected KVM feature bits present");

    uint32_t cpus;
    if (cmdline_get_u32("cpus", &cpus)) {
        uint32_t max_leaf = cpuid(0, 0).eax;
        check(max_leaf >= 0xB && cpuid(0xB, 0).ebx != 0, 6, "CPUID leaf 0xB present");
        uint32_t smt = 0, core = 0;
        uint32_t x2apic_id = cpuid(0xB, 0).edx;
        for (uint32_t sub = 0; sub < 8; sub++) {
            struct cpuid_regs t = cpuid(0xB, sub);
            uint32_t type = (t.ecx >> 8) & 0xff;
            printf("pvinfo: leaf 0xB.%u: level type %u, %u logical processors, shift %u, x2APIC ID %u\n", sub, type,
                t.ebx & 0xffff, t.eax & 0x1f, t.edx);
            if (type == 0)
                break;
            if (type == 1)
                smt = t.ebx & 0xffff;
            if (type == 2)
                core = t.ebx & 0xffff;
        }
        printf("pvinfo: SMT level %u, core level %u, cpus=%u\n", smt, core, cpus);
        check(smt >= 1 && core == cpus && cpus % smt == 0, 7, "leaf 0xB: core level counts cpus= processors");
        check(x2apic_id == (l1.ebx >> 24), 8, "leaf 0xB x2APIC ID matches the initial APIC ID");
    }
    return 0;
}
