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
 * SSE (the kernel's blake2s_compress_ssse3 is made of these): MOVD from a register and from memory, PADDD, PADDQ,
 * PXOR, POR, PSHUFB, PSRLD/PSLLD by an immediate, PSHUFD, PUNPCKLDQ, PUNPCKLQDQ, MOVD to a register, PMOVMSKB, PTEST
 * and PEXTRD/PINSRD (SSE4.1, when CPUID offers it), each result checked against the same arithmetic in C; #GP for a
 * misaligned 16-byte operand (the register unchanged).
 *
 * IRETD at CPL0 in 32-bit protected mode (KVM's emulator only returns from interrupts in real mode): to the next
 * instruction with flags from the stack (CF set, IF kept clear), the stack pointer back where it was.
 *
 * x87 arithmetic (the GCC -mgeneral-regs-only build has no floating point, so all in asm): 1/3 from FLD1 and FDIV
 * m64 stored as 80 bits (3FFD:AAAAAAAAAAAAAAAB, rounded to nearest), FILD m32 times FIMUL m16 through FISTP m32 (42),
 * FLDPI through FSTP m64 (the double nearest pi), FSQRT of FILD 2 (the double nearest sqrt 2), FUCOMIP's CF, FXCH and
 * FSUBRP's operand order, and the status word afterwards (TOP 0, only PE raised).
 *
 * Exit codes: 2 x87 state, 3 #NM, 4 INT3, 5 INTO, 6 MOVBE, 7 CMPXCHG8B, 8 XSAVE/XRSTOR, 9 SSE, 10 x87 arithmetic, 11 IRET.
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

/* #GP from the XRSTOR tests (skip the faulting `xrstor (%ebx)`: 0f ae 2b, 3 bytes) and the SSE tests (4 bytes). */
static volatile uint32_t g_gp_skip = 3;
static void on_gp(struct int_frame* f)
{
    g_gp_count++;
    f->eip += g_gp_skip;
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

/* --- SSE: one quarter-round of BLAKE2s as the kernel's SSSE3 code does it, then the SSE4.1 extras. --- */
static uint32_t ror32(uint32_t v, unsigned n) { return (v >> n) | (v << (32 - n)); }

static void sse_tests(void)
{
    /* One block, so that the asm needs one address register: a, b, m, the PSHUFB control, then the results. */
    static struct {
        uint32_t a[4], b[4], m[4];
        uint8_t rot16[16];
        uint32_t out_a[4], out_d[4], out_q[4];
    } blk __attribute__((aligned(16))) = {
        { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a },
        { 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 },
        { 0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c },
        { 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13 },
        { 0 }, { 0 }, { 0 },
    };
    uint32_t* a = blk.a, *b = blk.b, *m = blk.m, *out_a = blk.out_a, *out_d = blk.out_d, *out_q = blk.out_q;
    uint32_t low = 0, mask = 0;

    if (!((cpuid(1, 0).ecx >> 9) & 1)) {
        printf("emu: sse skipped (no SSSE3: CPUID.1:ECX[9])\n");
        return;
    }
    idt_set_handler(13, on_gp);
    uint32_t cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1u << 9))); /* OSFXSR */

    /* The message words come in one dword at a time (movd m32), as blake2s gathers them, and are interleaved. */
    __asm__ volatile(
        "movdqu 0(%[p]), %%xmm0\n\t"
        "movdqu 16(%[p]), %%xmm1\n\t"
        "movd 32(%[p]), %%xmm4\n\t"
        "movd 36(%[p]), %%xmm5\n\t"
        "movd 40(%[p]), %%xmm6\n\t"
        "movd 44(%[p]), %%xmm7\n\t"
        "punpckldq %%xmm5, %%xmm4\n\t"
        "punpckldq %%xmm7, %%xmm6\n\t"
        "punpcklqdq %%xmm6, %%xmm4\n\t"
        "paddd %%xmm4, %%xmm0\n\t"   /* a += m */
        "paddd %%xmm1, %%xmm0\n\t"   /* a += b */
        "movdqa %%xmm1, %%xmm3\n\t"
        "pxor %%xmm0, %%xmm3\n\t"    /* d = b ^ a */
        "pshufb 48(%[p]), %%xmm3\n\t" /* d = ror(d, 16) */
        "movdqa %%xmm3, %%xmm2\n\t"
        "psrld $12, %%xmm3\n\t"
        "pslld $20, %%xmm2\n\t"
        "por %%xmm2, %%xmm3\n\t"     /* d = ror(d, 12) */
        "pshufd $0x93, %%xmm3, %%xmm3\n\t"
        "movdqu %%xmm0, 64(%[p])\n\t"
        "movdqu %%xmm3, 80(%[p])\n\t"
        "movd %[ecx], %%xmm5\n\t"
        "paddq %%xmm5, %%xmm4\n\t"   /* a 64-bit add carrying into the second dword */
        "movdqu %%xmm4, 96(%[p])\n\t"
        "movd %%xmm4, %[low]\n\t"
        "pmovmskb %%xmm3, %[mask]\n\t"
        : [low] "=&r"(low), [mask] "=&r"(mask)
        : [p] "r"(&blk), [ecx] "r"(0xfcfdff01u)
        : "memory");
    uint32_t want_a[4], want_d[4];
    for (int i = 0; i < 4; ++i) {
        want_a[i] = a[i] + m[i] + b[i];
        want_d[(i + 1) & 3] = ror32(ror32(b[i] ^ want_a[i], 16), 12);
    }
    uint32_t want_mask = 0;
    for (int i = 0; i < 16; ++i)
        want_mask |= (uint32_t)((((const uint8_t*)want_d)[i] >> 7) & 1) << i;
    printf("emu: sse a %x %x %x %x d %x %x %x %x mask %x\n", out_a[0], out_a[1], out_a[2], out_a[3], out_d[0],
        out_d[1], out_d[2], out_d[3], mask);
    check(bytes_equal((const uint8_t*)out_a, (const uint8_t*)want_a, 16), 9, "SSE: movd, punpck, paddd");
    check(bytes_equal((const uint8_t*)out_d, (const uint8_t*)want_d, 16), 9, "SSE: pxor, pshufb, psrld/pslld/por, pshufd");
    check(out_q[0] == 1 && out_q[1] == 0x07060505u && out_q[2] == m[2] && out_q[3] == m[3], 9,
        "SSE: paddq carries into the upper dword");
    check(low == 1, 9, "SSE: movd xmm to r32");
    check(mask == want_mask, 9, "SSE: pmovmskb");

    /* #GP: a 16-byte operand that is not 16-byte aligned (pxor (%ebx), %xmm3 is 66 0f ef 1b). */
    uint32_t before = g_gp_count;
    g_gp_skip = 4;
    static uint32_t after_gp[4] __attribute__((aligned(16)));
    __asm__ volatile("pxor (%%ebx), %%xmm3\n\tmovdqu %%xmm3, (%0)" : : "r"(after_gp), "b"((const uint8_t*)b + 4)
        : "memory");
    g_gp_skip = 3;
    check(g_gp_count == before + 1, 9, "SSE: #GP for a misaligned 16-byte operand");
    check(bytes_equal((const uint8_t*)after_gp, (const uint8_t*)want_d, 16), 9, "SSE: the faulting PXOR changed nothing");

    if (!((cpuid(1, 0).ecx >> 19) & 1)) {
        printf("emu: sse4.1 skipped (no CPUID.1:ECX[19])\n");
        printf("emu: sse ok\n");
        return;
    }
    uint32_t third = 0, zf = 0, cf = 0;
    static uint32_t ins[4] __attribute__((aligned(16)));
    __asm__ volatile(
        "movdqu (%[m]), %%xmm1\n\t"
        "pextrd $2, %%xmm1, %[third]\n\t"
        "pinsrd $1, %[val], %%xmm1\n\t"
        "movdqu %%xmm1, (%[ins])\n\t"
        "pxor %%xmm2, %%xmm2\n\t"
        "ptest %%xmm1, %%xmm2\n\t"  /* xmm2 = 0: ZF = 1; CF = (xmm1 & ~0) == 0 = 0 */
        "setz %b[zf]\n\t"
        "setc %b[cf]\n\t"
        : [third] "=&r"(third), [zf] "+q"(zf), [cf] "+q"(cf)
        : [m] "r"(m), [val] "r"(0xabcdef01u), [ins] "r"(ins)
        : "memory", "cc");
    check(third == m[2], 9, "SSE4.1: pextrd");
    check(ins[0] == m[0] && ins[1] == 0xabcdef01u && ins[2] == m[2] && ins[3] == m[3], 9, "SSE4.1: pinsrd");
    check(zf == 1 && cf == 0, 9, "SSE4.1: ptest flags");
    printf("emu: sse ok\n");
}

/* --- IRETD to the same privilege level: EIP, CS and EFLAGS from a frame built here. --- */
static void iret_tests(void)
{
    uint32_t carry = 0, esp_before = 0, esp_after = 0, flags_after = 0;
    __asm__ volatile(
        "movl %%esp, %[before]\n\t"
        "pushl $0x00000003\n\t" /* EFLAGS: CF and the reserved bit 1; IF clear */
        "pushl %%cs\n\t"
        "pushl $1f\n\t"
        "iretl\n"
        "1:\n\t"
        "setc %b[carry]\n\t"
        "movl %%esp, %[after]\n\t"
        "pushfl\n\t"
        "popl %[flags]\n\t"
        : [carry] "+q"(carry), [before] "=&r"(esp_before), [after] "=&r"(esp_after), [flags] "=r"(flags_after)
        :
        : "memory", "cc");
    printf("emu: iret: cf %u esp %x -> %x eflags %x\n", carry, esp_before, esp_after, flags_after);
    check(carry == 1, 11, "IRETD: CF from the popped EFLAGS");
    check(esp_after == esp_before, 11, "IRETD: ESP past the three dwords");
    check(!(flags_after & (1u << 9)), 11, "IRETD: IF from the popped EFLAGS (clear)");
    printf("emu: iret ok\n");
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

static void x87_tests(void)
{
    static const uint64_t three = 0x4008000000000000ull; /* 3.0 */
    static const int32_t seven = 7, two = 2;
    static const int16_t six = 6;
    static uint8_t third[10];
    static int32_t product;
    static uint64_t pi, root2, diff;
    uint8_t below = 0;
    __asm__ volatile("fninit\n\t"
                     "fld1\n\t"
                     "fdivl %[three]\n\t"
                     "fstpt %[third]\n\t"
                     "fildl %[seven]\n\t"
                     "fimuls %[six]\n\t"
                     "fistpl %[product]\n\t"
                     "fldpi\n\t"
                     "fstpl %[pi]\n\t"
                     "fildl %[two]\n\t"
                     "fsqrt\n\t"
                     "fstpl %[root2]\n\t"
                     "fld1\n\t"
                     "fldz\n\t"
                     "fucomip %%st(1), %%st\n\t"
                     "setb %[below]\n\t"
                     "fildl %[seven]\n\t"
                     "fxch %%st(1)\n\t"
                     "fsubrp %%st, %%st(1)\n\t" /* AT&T fsubrp = Intel fsubp st(1), st: ST(1) = ST(1) - ST(0) */
                     "fstpl %[diff]"
                     : [third] "=m"(third), [product] "=m"(product), [pi] "=m"(pi), [root2] "=m"(root2),
                       [below] "=m"(below), [diff] "=m"(diff)
                     : [three] "m"(three), [seven] "m"(seven), [six] "m"(six), [two] "m"(two)
                     : "memory", "cc");
    uint16_t sw = fnstsw_ax();
    uint64_t third_m = 0;
    for (int i = 7; i >= 0; --i)
        third_m = (third_m << 8) | third[i];
    uint16_t third_e = (uint16_t)(third[8] | third[9] << 8);
    printf("emu: x87 1/3 %x:%x%08x, 7*6 %d, pi %x%08x, sqrt2 %x%08x, below %u, diff %x%08x, fsw %x\n", third_e,
        (uint32_t)(third_m >> 32), (uint32_t)third_m, product, (uint32_t)(pi >> 32), (uint32_t)pi,
        (uint32_t)(root2 >> 32), (uint32_t)root2, below, (uint32_t)(diff >> 32), (uint32_t)diff, sw);
    check(third_e == 0x3ffd && third_m == 0xaaaaaaaaaaaaaaabull, 10, "FLD1 / FDIV m64 = 1/3 to nearest");
    check(product == 42, 10, "FILD m32 * FIMUL m16 through FISTP m32");
    check(pi == 0x400921fb54442d18ull, 10, "FLDPI through FSTP m64");
    check(root2 == 0x3ff6a09e667f3bcdull, 10, "FSQRT 2 through FSTP m64");
    check(below == 1, 10, "FUCOMIP 0 < 1 sets CF");
    check(diff == 0x4018000000000000ull, 10, "FXCH, FSUBRP: 7 - 1 = 6");
    check(((sw >> 11) & 7) == 0 && (sw & 0x7f) == 0x20, 10, "empty stack, only PE raised");
    printf("emu: x87 ok\n");
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

    x87_tests();
    xsave_tests();
    sse_tests();
    iret_tests();
    return 0;
}
