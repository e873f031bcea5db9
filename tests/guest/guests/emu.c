/* emu: the instructions that KVM's instruction emulator refuses on PVM hosts (docs/architecture.md, "Instructions
 * KVM cannot emulate"), executed at CPL0 in 32-bit protected mode, each result checked against the SDM. On hako they
 * complete through its userspace emulator (src/emu/); on QEMU with KVM on the same host the VM stops at the first.
 *
 * Covers: FNINIT (state values), FLDCW/FNSTCW, FNSTSW m16 and AX, FNCLEX, FWAIT, #NM from FNINIT with CR0.TS (the
 * handler clears TS and the instruction is retried), INT3 (#BP trap: the handler sees EIP after the int3), INTO with
 * OF set, MOVBE load and store (16 and 32 bits; skipped when CPUID lacks MOVBE or with movbe=0: on the PVM
 * hosts KVM's emulator itself raises #UD for MOVBE although CPUID offers it, without an exit hako could act on), LOCK CMPXCHG8B success and failure (ZF, EDX:EAX).
 * XSAVE/XRSTOR (when CPUID offers XSAVE): CR4.OSXSAVE and XCR0 = x87|SSE through XSETBV, XSAVE's bytes (FCW, MXCSR,
 * XMM0, XSTATE_BV), an XMM0 value through XRSTOR, XRSTOR's init optimization (XSTATE_BV[1] clear zeroes XMM0), and
 * #GP for a reserved header field and for an area not 64-byte aligned (state unchanged).
 *
 * Exit codes: 2 x87 state, 3 #NM, 4 INT3, 5 INTO, 6 MOVBE, 7 CMPXCHG8B, 8 XSAVE/XRSTOR.
 */
#include "guest.h"

static volatile uint32_t g_bp_count, g_bp_eip, g_nm_count, g_of_count;

static void on_bp(struct int_frame* f)
{
    g_bp_count++;
    g_bp_eip = f->eip;
}

static void on_of(struct int_frame* f)
{
    (void)f;
    g_of_count++;
}

static volatile uint32_t g_gp_count;
static uint16_t fnstcw(void);

/* #GP from the XRSTOR tests: skip the faulting `xrstor (%ebx)` (0f ae 2b, 3 bytes). */
static void on_gp(struct int_frame* f)
{
    g_gp_count++;
    f->eip += 3;
}

static uint8_t g_xarea[1024] __attribute__((aligned(64)));
static const uint8_t g_pattern[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76,
    0x54, 0x32, 0x10 };

static void xmm0_load(const uint8_t* p) { __asm__ volatile("movdqu (%0), %%xmm0" : : "r"(p) : "memory"); }
static void xmm0_store(uint8_t* p) { __asm__ volatile("movdqu %%xmm0, (%0)" : : "r"(p) : "memory"); }
static void xsave(void* area, uint32_t mask)
{
    __asm__ volatile("xsave (%0)" : : "r"(area), "a"(mask), "d"(0) : "memory");
}
static void xrstor(void* area, uint32_t mask)
{
    __asm__ volatile("xrstor (%0)" : : "b"(area), "a"(mask), "d"(0) : "memory");
}
static bool bytes_equal(const uint8_t* a, const uint8_t* b, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i)
        if (a[i] != b[i])
            return false;
    return true;
}
static uint32_t get32(const uint8_t* p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void xsave_tests(void)
{
    if (!((cpuid(1, 0).ecx >> 26) & 1)) {
        printf("emu: xsave skipped (no CPUID.1:ECX[26])\n");
        return;
    }
    idt_set_handler(13, on_gp);
    uint32_t cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    cr4 |= (1u << 9) | (1u << 18); /* OSFXSR, OSXSAVE */
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
    __asm__ volatile("xsetbv" : : "c"(0), "a"(3), "d"(0));
    uint32_t xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    printf("emu: xcr0 %x:%x\n", xcr0_hi, xcr0_lo);
    check(xcr0_lo == 3 && xcr0_hi == 0, 8, "XSETBV/XGETBV: XCR0 = x87|SSE");

    uint8_t out[16];
    xmm0_load(g_pattern);
    for (uint32_t i = 0; i < sizeof g_xarea; ++i)
        g_xarea[i] = 0;
    xsave(g_xarea, 3);
    printf("emu: xsave: fcw %x mxcsr %x xstate_bv %x xmm0[0] %x\n", g_xarea[0] | g_xarea[1] << 8, get32(g_xarea + 24),
        get32(g_xarea + 512), g_xarea[160]);
    check((g_xarea[0] | g_xarea[1] << 8) == fnstcw(), 8, "XSAVE: FCW at byte 0");
    check(get32(g_xarea + 24) == 0x1f80, 8, "XSAVE: MXCSR at byte 24");
    check(bytes_equal(g_xarea + 160, g_pattern, 16), 8, "XSAVE: XMM0 at byte 160");
    check((get32(g_xarea + 512) & 2) && get32(g_xarea + 516) == 0, 8, "XSAVE: XSTATE_BV has SSE in use");

    /* XRSTOR loads XMM0 from the area. */
    for (uint32_t i = 0; i < 16; ++i)
        g_xarea[160 + i] = (uint8_t)(0xa0 + i);
    g_xarea[512] |= 2;
    xrstor(g_xarea, 3);
    xmm0_store(out);
    check(bytes_equal(out, g_xarea + 160, 16), 8, "XRSTOR: XMM0 from the area");
    printf("emu: xrstor: xmm0[0] %x\n", out[0]);

    /* #GP: XCOMP_BV without bit 63 must be zero; a misaligned area. XMM0 stays. */
    g_xarea[520] = 1;
    for (uint32_t i = 0; i < 16; ++i)
        g_xarea[160 + i] = 0x55;
    xrstor(g_xarea, 3);
    check(g_gp_count == 1, 8, "XRSTOR: #GP for XCOMP_BV bits in the standard form");
    g_xarea[520] = 0;
    xrstor(g_xarea + 16, 3);
    check(g_gp_count == 2, 8, "XRSTOR: #GP for an area not 64-byte aligned");
    xmm0_store(out);
    check(out[0] == 0xa0 && out[15] == 0xaf, 8, "XRSTOR: a faulting XRSTOR changes nothing");

    /* Init optimization: XSTATE_BV[1] clear puts XMM0 in its initial state (zero). */
    g_xarea[512] = 1;
    xrstor(g_xarea, 3);
    xmm0_store(out);
    static const uint8_t zero[16];
    check(bytes_equal(out, zero, 16), 8, "XRSTOR: XSTATE_BV[1] = 0 initialises XMM0");
    printf("emu: xsave ok\n");
}

static void on_nm(struct int_frame* f)
{
    (void)f;
    g_nm_count++;
    __asm__ volatile("clts");
}

static uint16_t fnstcw(void)
{
    uint16_t v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

static uint16_t fnstsw_ax(void)
{
    uint16_t v;
    __asm__ volatile("fnstsw %%ax" : "=a"(v));
    return v;
}

int guest_main(void)
{
    idt_set_handler(3, on_bp);
    idt_set_handler(4, on_of);
    idt_set_handler(7, on_nm);

    /* x87 control: what OVMF's SEC does first (fwait; fninit; fldcw). */
    uint32_t cr0;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    cr0 &= ~((1u << 2) | (1u << 3)); /* EM, TS off */
    cr0 |= (1u << 1) | (1u << 5);    /* MP, NE on */
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
    uint16_t cw = 0x027f;
    __asm__ volatile("fwait\n\tfninit" ::: "memory");
    uint16_t cw0 = fnstcw(), sw0 = fnstsw_ax();
    printf("emu: after fninit: fcw %x fsw %x\n", cw0, sw0);
    check(cw0 == 0x037f && sw0 == 0, 2, "FNINIT: FCW 0x37f, FSW 0");
    __asm__ volatile("fldcw %0" : : "m"(cw));
    uint16_t cw1 = fnstcw();
    printf("emu: after fldcw 0x27f: fcw %x\n", cw1);
    check(cw1 == 0x027f, 2, "FLDCW/FNSTCW round trip");
    uint16_t sw_mem = 0xffff;
    __asm__ volatile("fnstsw %0" : "=m"(sw_mem));
    check(sw_mem == 0, 2, "FNSTSW m16 after FNINIT");
    __asm__ volatile("fnclex\n\tfwait" ::: "memory");
    check(fnstsw_ax() == 0, 2, "FNCLEX");

    /* #NM: FNINIT with CR0.TS set faults; the handler clears TS and the retried FNINIT completes. */
    __asm__ volatile("fldcw %0" : : "m"(cw));
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0 | (1u << 3)));
    __asm__ volatile("fninit" ::: "memory");
    printf("emu: #NM count %u, fcw %x\n", g_nm_count, fnstcw());
    check(g_nm_count == 1, 3, "one #NM from FNINIT with CR0.TS");
    check(fnstcw() == 0x037f, 3, "FNINIT completed after the #NM handler");

    /* INT3: a trap, EIP after the instruction. */
    uint32_t after;
    __asm__ volatile("int3\n1:\n\tmovl $1b, %0" : "=r"(after));
    printf("emu: #BP count %u, eip %x (expected %x)\n", g_bp_count, g_bp_eip, after);
    check(g_bp_count == 1 && g_bp_eip == after, 4, "INT3 raises #BP with EIP after it");

    /* INTO: nothing without OF, #OF with it. */
    __asm__ volatile("into");
    check(g_of_count == 0, 5, "INTO without OF");
    __asm__ volatile("movl $0x7fffffff, %%eax\n\taddl $1, %%eax\n\tinto" ::: "eax", "cc");
    check(g_of_count == 1, 5, "INTO with OF raises #OF");

    /* MOVBE, if CPUID offers it (without it the processor, and KVM, raise #UD). */
    uint32_t movbe = 1;
    (void)cmdline_get_u32("movbe", &movbe);
    if (!((cpuid(1, 0).ecx >> 22) & 1) || !movbe) {
        printf("emu: movbe skipped (CPUID.1:ECX[22] %u, movbe=%u)\n", (cpuid(1, 0).ecx >> 22) & 1, movbe);
        goto cmpxchg;
    }
    static volatile uint32_t word = 0x11223344;
    uint32_t v32;
    __asm__ volatile("movbe %1, %0" : "=r"(v32) : "m"(word));
    check(v32 == 0x44332211, 6, "MOVBE r32, m32");
    __asm__ volatile("movbe %1, %0" : "=m"(word) : "r"(0xa1b2c3d4u));
    check(word == 0xd4c3b2a1, 6, "MOVBE m32, r32");
    static volatile uint16_t half = 0xb2a1;
    uint32_t v16 = 0xffff0000;
    __asm__ volatile("movbe %1, %w0" : "+r"(v16) : "m"(half));
    check(v16 == 0xffffa1b2, 6, "MOVBE r16, m16 keeps the upper half");
    printf("emu: movbe ok\n");

cmpxchg:;

    /* LOCK CMPXCHG8B */
    static volatile uint64_t q = 0x0000000200000001ull;
    uint32_t a = 1, d = 2;
    uint8_t z = 0;
    __asm__ volatile("lock cmpxchg8b %0\n\tsetz %1" : "+m"(q), "=m"(z), "+a"(a), "+d"(d) : "b"(5), "c"(6) : "cc");
    check(z && q == 0x0000000600000005ull, 7, "CMPXCHG8B stores ECX:EBX and sets ZF when EDX:EAX matches");
    a = 1, d = 2;
    __asm__ volatile("lock cmpxchg8b %0\n\tsetz %1" : "+m"(q), "=m"(z), "+a"(a), "+d"(d) : "b"(7), "c"(8) : "cc");
    check(!z && a == 5 && d == 6 && q == 0x0000000600000005ull, 7,
        "CMPXCHG8B loads EDX:EAX and clears ZF on a mismatch");
    printf("emu: cmpxchg8b ok\n");

    xsave_tests();
    return 0;
}
