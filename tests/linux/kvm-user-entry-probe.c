/* kvm-user-entry-probe: what this host's /dev/kvm does when guest user mode enters the kernel and returns.
 *
 * Each case builds a tiny 64-bit guest (4 KiB pages, Linux's GDT layout and STAR/LSTAR/CSTAR/SYSENTER MSRs, an IDT
 * whose every vector reports itself on port 0xf0), starts it at CPL 3 through KVM_SET_SREGS, reports the user mode's
 * width on port 0xf3, then executes one kernel entry:
 *   syscall64  SYSCALL from 64-bit mode (LSTAR)       int80_64  int $0x80 from 64-bit mode (a DPL 3 gate)
 *   syscall32  SYSCALL from compatibility mode (CSTAR) int80_32  int $0x80 from compatibility mode
 *   sysenter32 SYSENTER from compatibility mode
 * The entry points lie at 0xffffffff80005000 and up, as a Linux kernel's do (syscall32_low: CSTAR below 4 GiB).
 * The kernel entry points report on port 0xf1 (CSTAR, SYSENTER) or 0xf5 (LSTAR) and return with SYSRETL, or with
 * IRETQ to the 32-bit user code segment (`iret` cases), and the user code reports its mode again on port 0xf2.
 * The mode test: `xor eax,eax; 48; nop; out al` writes 0xff in compatibility mode (48 = dec eax) and 0 in 64-bit
 * mode (48 = REX.W).
 * On hardware with VT-x/AMD-V every entry reaches its kernel entry point and every return resumes in the mode it
 * names (SYSCALL from compatibility mode and SYSENTER from 64-bit mode are refused by Intel and AMD CPUs respectively:
 * #UD). Usage: kvm-user-entry-probe            (all cases, one line each)
 * The results on this project's hosts are in tests/linux/README.md. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

enum { MEM_SIZE = 0x200000, PML4 = 0x1000, PT = 0x4000, KERNEL_CSTAR = 0x5000, KERNEL_LSTAR = 0x5040,
       VECTOR_STUBS = 0x5200, GDT = 0x6000, IDT = 0x7000, TSS = 0x8000, KSTACK_TOP = 0x9ff0, USER_CODE = 0xa000,
       USER_STACK_TOP = 0xbff0, HIGH_PDPT = 0xc000, HIGH_PD = 0xd000 };
/* The first 2 MiB are also mapped (supervisor-only) at KERNEL_BASE, where a Linux kernel's entry points lie. */
static const uint64_t KERNEL_BASE = 0xffffffff80000000ull;

static uint8_t* mem;

static void put64(uint64_t gpa, uint64_t v) { memcpy(mem + gpa, &v, 8); }

static uint64_t code_data_descriptor(unsigned type, unsigned dpl, unsigned l, unsigned db)
{
    return 0xffffull | (0xfull << 48) | ((uint64_t)(type | 0x10 | (dpl << 5) | 0x80) << 40)
        | ((uint64_t)((l << 1) | (db << 2) | 8) << 52);
}

static void segment(struct kvm_segment* s, uint16_t sel, uint8_t type, uint8_t dpl, uint8_t l, uint8_t db)
{
    memset(s, 0, sizeof *s);
    s->selector = sel, s->type = type, s->s = 1, s->dpl = dpl, s->present = 1, s->l = l, s->db = db, s->g = 1;
    s->limit = 0xffffffff;
}

static void build_guest(const char* entry, int iret_return)
{
    memset(mem, 0, MEM_SIZE);
    put64(PML4, 0x2000 | 7);
    put64(0x2000, 0x3000 | 7);
    put64(0x3000, PT | 7);
    put64(PML4 + 8 * 511, HIGH_PDPT | 3);
    put64(HIGH_PDPT + 8 * 510, HIGH_PD | 3);
    put64(HIGH_PD, PT | 3);
    for (uint64_t page = 0; page < 512; page++) /* pages 5-9 (kernel code, tables, stack) are supervisor-only */
        put64(PT + 8 * page, (page << 12) | (page >= 5 && page <= 9 ? 3 : 7));
    put64(GDT + 0x08, code_data_descriptor(0xb, 0, 0, 1)); /* kernel 32-bit code (unused) */
    put64(GDT + 0x10, code_data_descriptor(0xb, 0, 1, 0)); /* kernel 64-bit code */
    put64(GDT + 0x18, code_data_descriptor(0x3, 0, 0, 1)); /* kernel data */
    put64(GDT + 0x20, code_data_descriptor(0xb, 3, 0, 1)); /* user 32-bit code */
    put64(GDT + 0x28, code_data_descriptor(0x3, 3, 0, 1)); /* user data */
    put64(GDT + 0x30, code_data_descriptor(0xb, 3, 1, 0)); /* user 64-bit code */
    put64(GDT + 0x40, 103 | ((uint64_t)(TSS & 0xffffff) << 16) | (0x89ull << 40)); /* 64-bit TSS */
    put64(TSS + 4, KSTACK_TOP);
    for (unsigned v = 0; v < 256; v++) { /* stub: mov $v, %al; out %al, $0xf0; hlt */
        uint64_t stub = VECTOR_STUBS + 16 * v;
        uint8_t code[] = { 0xb0, (uint8_t)v, 0xe6, 0xf0, 0xf4 };
        memcpy(mem + stub, code, sizeof code);
        unsigned type_attr = 0x8e | (v == 0x80 ? 0x60 : 0); /* int $0x80: DPL 3 */
        put64(IDT + 16 * v, (stub & 0xffff) | (0x10ull << 16) | ((uint64_t)type_attr << 40) | ((stub >> 16) << 48));
    }
    /* Kernel entries: report, then return to the user RIP in RCX (RFLAGS in R11). */
    static const uint8_t sysretl[] = { 0x0f, 0x07 };
    /* push $0x2b; push $USER_STACK_TOP; push %r11; push $0x23; push %rcx; iretq */
    static const uint8_t iretq32[] = { 0x6a, 0x2b, 0x68, 0xf0, 0xbf, 0, 0, 0x41, 0x53, 0x6a, 0x23, 0x51, 0x48, 0xcf };
    for (unsigned i = 0; i < 2; i++) {
        uint64_t at = i == 0 ? KERNEL_CSTAR : KERNEL_LSTAR;
        mem[at] = 0xe6, mem[at + 1] = i == 0 ? 0xf1 : 0xf5; /* out %al, $port */
        if (iret_return)
            memcpy(mem + at + 2, iretq32, sizeof iretq32);
        else
            memcpy(mem + at + 2, sysretl, sizeof sysretl);
    }
    /* User code: mode report, mov $0x42, %eax, the entry instruction, mode report, spin. */
    static const uint8_t mode_report[] = { 0x31, 0xc0, 0x48, 0x90, 0xe6, 0xf3 };
    uint8_t* u = mem + USER_CODE;
    size_t n = 0;
    memcpy(u + n, mode_report, sizeof mode_report), n += sizeof mode_report;
    u[n++] = 0xb8, u[n++] = 0x42, u[n++] = 0, u[n++] = 0, u[n++] = 0;
    if (!strncmp(entry, "int80", 5))
        u[n++] = 0xcd, u[n++] = 0x80;
    else if (!strncmp(entry, "sysenter", 8))
        u[n++] = 0x0f, u[n++] = 0x34;
    else
        u[n++] = 0x0f, u[n++] = 0x05;
    memcpy(u + n, mode_report, sizeof mode_report), n += sizeof mode_report;
    u[n - 1] = 0xf2;
    u[n++] = 0xeb, u[n++] = 0xfe;
}

static int probe(int kvm, const char* entry, int iret_return, char* out, size_t out_len)
{
    int compat = strstr(entry, "32") != NULL;
    uint64_t const kernel = strstr(entry, "low") ? 0 : KERNEL_BASE; /* where LSTAR, CSTAR and SYSENTER_EIP point */
    build_guest(entry, iret_return);
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return -1;
    struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
                                                  .userspace_addr = (uint64_t)(uintptr_t)mem };
    int cpu = -1;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) || ioctl(vm, KVM_CREATE_IRQCHIP, 0)
        || (cpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0) {
        close(vm);
        return -1;
    }
    long run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run* run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    struct kvm_cpuid2* cpuid = calloc(1, sizeof *cpuid + 128 * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = 128;
    ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid);
    ioctl(cpu, KVM_SET_CPUID2, cpuid);
    free(cpuid);
    struct kvm_sregs sregs;
    ioctl(cpu, KVM_GET_SREGS, &sregs);
    sregs.cr0 = 0x80050033; /* PG WP NE ET MP PE */
    sregs.cr4 = 0x620;      /* PAE OSFXSR OSXMMEXCPT */
    sregs.cr3 = PML4;
    sregs.efer = 0xd01;     /* SCE LME LMA NXE */
    if (compat)
        segment(&sregs.cs, 0x23, 0xb, 3, 0, 1);
    else
        segment(&sregs.cs, 0x33, 0xb, 3, 1, 0);
    segment(&sregs.ss, 0x2b, 0x3, 3, 0, 1);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss;
    sregs.gdt.base = GDT, sregs.gdt.limit = 0x4f;
    sregs.idt.base = IDT, sregs.idt.limit = 0xfff;
    memset(&sregs.tr, 0, sizeof sregs.tr);
    sregs.tr.selector = 0x40, sregs.tr.base = TSS, sregs.tr.limit = 103, sregs.tr.type = 0xb, sregs.tr.present = 1;
    ioctl(cpu, KVM_SET_SREGS, &sregs);
    const struct kvm_msr_entry entries[] = {
        { .index = 0xc0000081, .data = (0x23ull << 48) | (0x10ull << 32) }, /* STAR */
        { .index = 0xc0000082, .data = kernel + KERNEL_LSTAR },
        { .index = 0xc0000083, .data = kernel + KERNEL_CSTAR },
        { .index = 0xc0000084, .data = 0x47700 }, /* SFMASK */
        { .index = 0x174, .data = 0x10 },          /* SYSENTER_CS */
        { .index = 0x175, .data = KSTACK_TOP },
        { .index = 0x176, .data = kernel + KERNEL_CSTAR },
    };
    struct kvm_msrs* msrs = calloc(1, sizeof *msrs + sizeof entries);
    msrs->nmsrs = sizeof entries / sizeof entries[0];
    memcpy(msrs->entries, entries, sizeof entries);
    ioctl(cpu, KVM_SET_MSRS, msrs);
    free(msrs);
    struct kvm_regs regs = { .rip = USER_CODE, .rsp = USER_STACK_TOP, .rflags = 0x3202 }; /* IOPL 3 */
    ioctl(cpu, KVM_SET_REGS, &regs);
    size_t len = 0;
    out[0] = 0;
    for (int step = 0; step < 4; step++) {
        if (ioctl(cpu, KVM_RUN, 0) < 0) {
            len += (size_t)snprintf(out + len, out_len - len, " KVM_RUN failed");
            break;
        }
        if (run->exit_reason != KVM_EXIT_IO) {
            len += (size_t)snprintf(out + len, out_len - len, " exit %u", run->exit_reason);
            break;
        }
        uint8_t value = *((uint8_t*)run + run->io.data_offset);
        ioctl(cpu, KVM_GET_SREGS, &sregs);
        switch (run->io.port) {
        case 0xf3: len += (size_t)snprintf(out + len, out_len - len, " user mode %s;", value ? "compat" : "64-bit"); break;
        case 0xf1:
        case 0xf5:
            ioctl(cpu, KVM_GET_REGS, &regs);
            len += (size_t)snprintf(out + len, out_len - len, " entered %s at CPL %u (RIP %#llx);",
                                    run->io.port == 0xf1 ? "CSTAR/SYSENTER entry" : "LSTAR entry", sregs.cs.dpl,
                                    (unsigned long long)regs.rip);
            break;
        case 0xf0: {
            ioctl(cpu, KVM_GET_REGS, &regs);
            uint64_t frame[2] = { 0, 0 };
            if (regs.rsp < MEM_SIZE - 16)
                memcpy(frame, mem + regs.rsp, sizeof frame);
            len += (size_t)snprintf(out + len, out_len - len, " exception vector %u (first frame words %#llx %#llx)",
                                    value, (unsigned long long)frame[0], (unsigned long long)frame[1]);
            step = 4;
            break;
        }
        case 0xf2:
            len += (size_t)snprintf(out + len, out_len - len, " returned to user mode %s (CS %#x)",
                                    value ? "compat" : "64-bit", sregs.cs.selector);
            step = 4;
            break;
        default: step = 4; break;
        }
    }
    munmap(run, (size_t)run_size);
    close(cpu);
    close(vm);
    return 0;
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        perror("kvm-user-entry-probe: /dev/kvm");
        return 1;
    }
    mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("kvm-user-entry-probe: mmap");
        return 1;
    }
    static const char* const entries[] = { "syscall64", "int80_64", "syscall32", "syscall32_low", "int80_32",
                                           "sysenter32" };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        for (int iret_return = 0; iret_return < 2; iret_return++) {
            char result[512];
            if (probe(kvm, entries[i], iret_return, result, sizeof result)) {
                fprintf(stderr, "kvm-user-entry-probe: could not create a VM\n");
                return 1;
            }
            printf("%-13s return by %-7s:%s\n", entries[i], iret_return ? "IRETQ" : "SYSRETL", result);
        }
    }
    return 0;
}
