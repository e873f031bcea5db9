// The SSE-family instructions of the userspace emulator against the Intel SDM vol. 2 pages (lane arithmetic,
// shuffles, the moves between XMM, general registers and memory, their #UD/#NM/#GP/#PF cases), and the forms it
// leaves alone (MMX, VEX). The instruction bytes are those GNU as emits for the AT&T form in each comment.
#include <gtest/gtest.h>

#include <cstring>

#include "emu/emulator.h"
#include "emu/sse.h"
#include "emu_fixture.h"
#include "fake_physical_memory.h"

using namespace hako::emu;
using namespace hako::emu::test;

namespace {

Xmm xmm_of(std::initializer_list<uint32_t> dwords)
{
    Xmm v {};
    size_t i = 0;
    for (uint32_t d : dwords) {
        std::memcpy(v.data() + 4 * i, &d, 4);
        ++i;
    }
    return v;
}

Xmm bytes_of(std::initializer_list<uint8_t> b)
{
    Xmm v {};
    std::copy(b.begin(), b.end(), v.begin());
    return v;
}

Xmm get_xmm(CpuState const& s, size_t n)
{
    Xmm v {};
    std::memcpy(v.data(), s.xsave.data() + 160 + 16 * n, 16);
    return v;
}

void set_xmm(CpuState& s, size_t n, Xmm const& v)
{
    std::memcpy(s.xsave.data() + 160 + 16 * n, v.data(), 16);
    s.xsave[512] |= 2;
}

// 64-bit kernel mode with CR4.OSFXSR (as Linux runs).
CpuState sse_mode(FakePhysicalMemory& m)
{
    CpuState s = long_mode(m);
    s.cr4 |= CR4_OSFXSR;
    s.reg(Gpr::Rdi) = DATA;
    return s;
}

void expect_completed(Outcome const& o, CpuState const& s, size_t length)
{
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.mnemonic << ": " << o.detail;
    EXPECT_FALSE(o.exception);
    EXPECT_EQ(s.rip, CODE + length);
}

} // namespace

TEST(Sse, ComputeLaneArithmetic)
{
    Xmm const a = xmm_of({ 0xffffffff, 1, 0x80000000, 7 });
    Xmm const b = xmm_of({ 1, 2, 0x80000000, 0xfffffff9 });
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PADDD, a, b, 0), xmm_of({ 0, 3, 0, 0 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSUBD, a, b, 0), xmm_of({ 0xfffffffe, 0xffffffff, 0, 14 }));
    // PADDQ carries across the dword boundary of each quadword, and wraps at its top.
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PADDQ, a, b, 0), xmm_of({ 0, 4, 0, 1 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PXOR, a, b, 0), xmm_of({ 0xfffffffe, 3, 0, 0xfffffffe }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PANDN, a, b, 0), xmm_of({ 0, 2, 0, 0xfffffff8 }));
    // Saturation: signed bytes clamp at 127/-128, unsigned at 255/0.
    Xmm const c = bytes_of({ 0x7f, 0x80, 0xff, 0x10 });
    Xmm const d = bytes_of({ 0x01, 0xff, 0x02, 0x20 });
    EXPECT_EQ((*sse_compute(ZYDIS_MNEMONIC_PADDSB, c, d, 0))[0], 0x7f);
    EXPECT_EQ((*sse_compute(ZYDIS_MNEMONIC_PADDSB, c, d, 0))[1], 0x80);
    EXPECT_EQ((*sse_compute(ZYDIS_MNEMONIC_PADDUSB, c, d, 0))[2], 0xff);
    EXPECT_EQ((*sse_compute(ZYDIS_MNEMONIC_PSUBUSB, c, d, 0))[3], 0x00);
    // Signed and unsigned compares differ on the top bit.
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PCMPGTD, a, b, 0), xmm_of({ 0, 0, 0, 0xffffffff }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PCMPEQD, a, b, 0), xmm_of({ 0, 0, 0xffffffff, 0 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PMAXUD, a, b, 0), xmm_of({ 0xffffffff, 2, 0x80000000, 0xfffffff9 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PMAXSD, a, b, 0), xmm_of({ 1, 2, 0x80000000, 7 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PMULLD, xmm_of({ 0x10000, 3 }), xmm_of({ 0x10000, 5 }), 0), xmm_of({ 0, 15 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PMULUDQ, xmm_of({ 0xffffffff, 9, 2, 9 }), xmm_of({ 0xffffffff, 9, 3, 9 }), 0),
        xmm_of({ 1, 0xfffffffe, 6, 0 }));
    EXPECT_FALSE(sse_compute(ZYDIS_MNEMONIC_ADDPS, a, b, 0)); // floating point is not emulated
    EXPECT_FALSE(sse_computes(ZYDIS_MNEMONIC_MOV));
}

TEST(Sse, ComputeShifts)
{
    Xmm const a = xmm_of({ 0x80000001, 0x12345678, 0xf0000000, 1 });
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSRLD, a, xmm_from_low(12, 8), 0),
        xmm_of({ 0x00080000, 0x00012345, 0x000f0000, 0 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSLLD, a, xmm_from_low(20, 8), 0),
        xmm_of({ 0x00100000, 0x67800000, 0, 0x00100000 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSRAD, a, xmm_from_low(4, 8), 0),
        xmm_of({ 0xf8000000, 0x01234567, 0xff000000, 0 }));
    // Counts beyond the lane width: zero for logical shifts, sign fill for arithmetic ones; the whole low quadword
    // counts.
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSLLD, a, xmm_from_low(32, 8), 0), Xmm {});
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSRLD, a, xmm_of({ 1, 1 }), 0), Xmm {});
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSRAD, a, xmm_from_low(200, 8), 0), xmm_of({ 0xffffffff, 0, 0xffffffff, 0 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSLLQ, xmm_of({ 0x80000000, 0 }), xmm_from_low(1, 8), 0), xmm_of({ 0, 1 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSLLDQ, xmm_of({ 0x04030201 }), xmm_from_low(3, 8), 0),
        bytes_of({ 0, 0, 0, 1, 2, 3, 4 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSRLDQ, bytes_of({ 1, 2, 3, 4 }), xmm_from_low(2, 8), 0), bytes_of({ 3, 4 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSRLDQ, bytes_of({ 1, 2, 3, 4 }), xmm_from_low(16, 8), 0), Xmm {});
}

TEST(Sse, ComputeShuffles)
{
    Xmm const a = xmm_of({ 0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c });
    Xmm const b = xmm_of({ 0x13121110, 0x17161514, 0x1b1a1918, 0x1f1e1d1c });
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSHUFD, a, b, 0x93), xmm_of({ 0x1f1e1d1c, 0x13121110, 0x17161514, 0x1b1a1918 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PUNPCKLDQ, a, b, 0), xmm_of({ 0x03020100, 0x13121110, 0x07060504, 0x17161514 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PUNPCKHQDQ, a, b, 0), xmm_of({ 0x0b0a0908, 0x0f0e0d0c, 0x1b1a1918, 0x1f1e1d1c }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PUNPCKLBW, a, b, 0),
        bytes_of({ 0, 0x10, 1, 0x11, 2, 0x12, 3, 0x13, 4, 0x14, 5, 0x15, 6, 0x16, 7, 0x17 }));
    // PSHUFB: index by the low nibble, zero where the control byte's top bit is set.
    Xmm const control = bytes_of({ 2, 3, 0, 1, 0x80, 0x8f, 15, 0x1e });
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSHUFB, a, control, 0),
        bytes_of({ 2, 3, 0, 1, 0, 0, 15, 14, 0, 0, 0, 0, 0, 0, 0, 0 }));
    // PALIGNR: (dst:src) >> imm bytes.
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PALIGNR, a, b, 4), xmm_of({ 0x17161514, 0x1b1a1918, 0x1f1e1d1c, 0x03020100 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PALIGNR, a, b, 28), xmm_of({ 0x0f0e0d0c }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_SHUFPS, a, b, 0x1b), xmm_of({ 0x0f0e0d0c, 0x0b0a0908, 0x17161514, 0x13121110 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PSHUFLW, a, b, 0x1b), xmm_of({ 0x15141716, 0x11101312, 0x1b1a1918, 0x1f1e1d1c }));
    // PACKSSDW / PACKUSWB saturate each lane.
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PACKSSDW, xmm_of({ 0x12345, 0xfffe0000, 5, 0xffffffff }), Xmm {}, 0),
        xmm_of({ 0x80007fff, 0xffff0005 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PACKUSWB, xmm_of({ 0xff800100, 0x007f0042 }), Xmm {}, 0),
        xmm_of({ 0x7f4200ff }));
}

TEST(Sse, PclmulqdqAndCrc32c)
{
    // x^63 * x^63 = x^126; (x + 1)^2 = x^2 + 1 (no carries).
    Xmm const a = xmm_of({ 3, 0, 0, 0x80000000 });
    Xmm const b = xmm_of({ 3, 0, 0, 0x80000000 });
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PCLMULQDQ, a, b, 0x00), xmm_of({ 5 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PCLMULQDQ, a, b, 0x11), xmm_of({ 0, 0, 0, 0x40000000 }));
    EXPECT_EQ(*sse_compute(ZYDIS_MNEMONIC_PCLMULQDQ, a, b, 0x01), xmm_of({ 0, 0x80000000, 1, 0 })); // x^63 * (x + 1)
    // CRC-32C check value: "123456789" gives 0xE3069283 with the usual initial and final inversion.
    uint32_t crc = 0xffffffff;
    for (char ch : std::string("123456789"))
        crc = crc32c_update(crc, static_cast<uint8_t>(ch), 1);
    EXPECT_EQ(~crc, 0xe3069283u);
    uint32_t wide = crc32c_update(0xffffffff, 0x3837363534333231ull, 8);
    EXPECT_EQ(~crc32c_update(wide, '9', 1), 0xe3069283u);
}

TEST(Sse, MovdFromGeneralRegisterZeroExtends)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    set_xmm(s, 15, xmm_of({ 1, 2, 3, 4 }));
    s.reg(Gpr::Rcx) = 0xaaaaaaaa12345678;
    auto o = run(s, m, { 0x66, 0x44, 0x0f, 0x6e, 0xf9 }); // movd %ecx,%xmm15
    expect_completed(o, s, 5);
    EXPECT_STREQ(o.mnemonic, "movd");
    EXPECT_EQ(get_xmm(s, 15), xmm_of({ 0x12345678 }));
    EXPECT_TRUE(o.dirty & DIRTY_XSTATE);
}

TEST(Sse, WritingAnXmmRegisterMarksSseInUse)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    s.reg(Gpr::Rcx) = 7;
    ASSERT_EQ(s.xsave[512] & 2, 0);
    expect_completed(run(s, m, { 0x66, 0x44, 0x0f, 0x6e, 0xf9 }), s, 5);
    EXPECT_EQ(s.xsave[512] & 2, 2);
}

TEST(Sse, MovdAndMovqToGeneralRegistersAndMemory)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    set_xmm(s, 0, xmm_of({ 0x11223344, 0x55667788, 9, 9 }));
    set_xmm(s, 1, xmm_of({ 0xaabbccdd, 0x01020304, 9, 9 }));
    s.reg(Gpr::Rax) = ~0ull;
    expect_completed(run(s, m, { 0x66, 0x0f, 0x7e, 0xc0 }), s, 4); // movd %xmm0,%eax
    EXPECT_EQ(s.reg(Gpr::Rax), 0x11223344u);
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x48, 0x0f, 0x7e, 0xc8 }), s, 5); // movq %xmm1,%rax
    EXPECT_EQ(s.reg(Gpr::Rax), 0x01020304aabbccddu);
    s.rip = CODE;
    m.put64(DATA + 8, 0xdeadbeefdeadbeef);
    expect_completed(run(s, m, { 0x66, 0x0f, 0xd6, 0x0f }), s, 4); // movq %xmm1,(%rdi)
    EXPECT_EQ(m.get64(DATA), 0x01020304aabbccddu);
    EXPECT_EQ(m.get64(DATA + 8), 0xdeadbeefdeadbeefu); // eight bytes only
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0x7e, 0x07 }), s, 4); // movd %xmm0,(%rdi)
    EXPECT_EQ(m.get64(DATA), 0x0102030411223344u);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xf3, 0x0f, 0x7e, 0x0f }), s, 4); // movq (%rdi),%xmm1: the upper half zeroed
    EXPECT_EQ(get_xmm(s, 1), xmm_of({ 0x11223344, 0x01020304 }));
}

TEST(Sse, MovdFromMemoryWithScaledIndex)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    s.reg(Gpr::Rsi) = DATA;
    s.reg(Gpr::Rax) = 3;
    m.put64(DATA + 12, 0x00000000cafef00d);
    set_xmm(s, 4, xmm_of({ 9, 9, 9, 9 }));
    expect_completed(run(s, m, { 0x66, 0x0f, 0x6e, 0x24, 0x86 }), s, 5); // movd (%rsi,%rax,4),%xmm4
    EXPECT_EQ(get_xmm(s, 4), xmm_of({ 0xcafef00d }));
}

TEST(Sse, BlakeRoundStepsThroughTheEmulator)
{
    // A few steps of the Linux kernel's blake2s_compress_ssse3 (where the Debian kernel stopped), checked against
    // the same arithmetic done here on scalars.
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    Xmm const x0 = xmm_of({ 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a });
    Xmm const x1 = xmm_of({ 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 });
    Xmm const rot16 = bytes_of({ 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13 });
    set_xmm(s, 0, x0);
    set_xmm(s, 1, x1);
    set_xmm(s, 3, x1);
    set_xmm(s, 12, rot16);
    expect_completed(run(s, m, { 0x66, 0x0f, 0xfe, 0xc1 }), s, 4); // paddd %xmm1,%xmm0
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0xef, 0xd8 }), s, 4); // pxor %xmm0,%xmm3
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x41, 0x0f, 0x38, 0x00, 0xdc }), s, 6); // pshufb %xmm12,%xmm3
    s.rip = CODE;
    set_xmm(s, 8, get_xmm(s, 3));
    expect_completed(run(s, m, { 0x66, 0x0f, 0x72, 0xd3, 0x0c }), s, 5); // psrld $0xc,%xmm3
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x41, 0x0f, 0x72, 0xf0, 0x14 }), s, 6); // pslld $0x14,%xmm8
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x41, 0x0f, 0xeb, 0xd8 }), s, 5); // por %xmm8,%xmm3
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0x70, 0xdb, 0x93 }), s, 5); // pshufd $0x93,%xmm3,%xmm3
    std::array<uint32_t, 4> a {}, b {}, want {};
    std::memcpy(a.data(), x0.data(), 16);
    std::memcpy(b.data(), x1.data(), 16);
    for (size_t i = 0; i < 4; ++i) {
        uint32_t const t = (a[i] + b[i]) ^ b[i];
        uint32_t const r16 = (t >> 16) | (t << 16);
        uint32_t const r12 = (r16 >> 12) | (r16 << 20);
        want[(i + 1) & 3] = r12; // pshufd 0x93: lane i+1 gets lane i
    }
    Xmm w {};
    std::memcpy(w.data(), want.data(), 16);
    EXPECT_EQ(get_xmm(s, 3), w);
}

TEST(Sse, ExtractInsertTestAndMask)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    set_xmm(s, 1, xmm_of({ 0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c }));
    expect_completed(run(s, m, { 0x66, 0x0f, 0x3a, 0x16, 0xc8, 0x02 }), s, 6); // pextrd $2,%xmm1,%eax
    EXPECT_EQ(s.reg(Gpr::Rax), 0x0b0a0908u);
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0xc5, 0xc1, 0x03 }), s, 5); // pextrw $3,%xmm1,%eax
    EXPECT_EQ(s.reg(Gpr::Rax), 0x0706u);
    s.rip = CODE;
    m.put64(DATA, ~0ull);
    expect_completed(run(s, m, { 0x66, 0x0f, 0x3a, 0x14, 0x0f, 0x05 }), s, 6); // pextrb $5,%xmm1,(%rdi)
    EXPECT_EQ(m.get64(DATA), 0xffffffffffffff05u);
    s.rip = CODE;
    s.reg(Gpr::Rax) = 0x1122334455667788;
    expect_completed(run(s, m, { 0x66, 0x48, 0x0f, 0x3a, 0x22, 0xc8, 0x01 }), s, 7); // pinsrq $1,%rax,%xmm1
    EXPECT_EQ(get_xmm(s, 1), xmm_of({ 0x03020100, 0x07060504, 0x55667788, 0x11223344 }));

    // PTEST: ZF when dst AND src is zero, CF when src AND NOT dst is zero.
    set_xmm(s, 0, xmm_of({ 0xf0 }));
    set_xmm(s, 1, xmm_of({ 0x0f }));
    s.rip = CODE;
    s.rflags = 2 | RFLAGS_SF | RFLAGS_OF | RFLAGS_CF;
    expect_completed(run(s, m, { 0x66, 0x0f, 0x38, 0x17, 0xc1 }), s, 5); // ptest %xmm1,%xmm0
    EXPECT_EQ(s.rflags, 2u | RFLAGS_ZF);
    set_xmm(s, 1, xmm_of({ 0x30 }));
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0x38, 0x17, 0xc1 }), s, 5);
    EXPECT_EQ(s.rflags, 2u | RFLAGS_CF);

    set_xmm(s, 0, bytes_of({ 0x80, 0x7f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81 }));
    s.reg(Gpr::Rax) = ~0ull;
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0xd7, 0xc0 }), s, 4); // pmovmskb %xmm0,%eax
    EXPECT_EQ(s.reg(Gpr::Rax), 0x8005u);
}

TEST(Sse, Crc32Instruction)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    s.reg(Gpr::Rsi) = DATA;
    m.put(DATA, std::vector<uint8_t> { '1' });
    s.reg(Gpr::Rax) = 0xaaaaaaaaffffffff;
    s.rflags = 2 | RFLAGS_ZF;
    expect_completed(run(s, m, { 0xf2, 0x0f, 0x38, 0xf0, 0x06 }), s, 5); // crc32b (%rsi),%eax
    EXPECT_EQ(s.reg(Gpr::Rax), crc32c_update(0xffffffff, '1', 1)); // zero-extended
    EXPECT_EQ(s.rflags, 2u | RFLAGS_ZF);                            // flags unchanged
    s.rip = CODE;
    s.reg(Gpr::Rcx) = 0x3938373635343332;
    expect_completed(run(s, m, { 0xf2, 0x48, 0x0f, 0x38, 0xf1, 0xc1 }), s, 6); // crc32q %rcx,%rax
    EXPECT_EQ(~static_cast<uint32_t>(s.reg(Gpr::Rax)), 0xe3069283u);
}

TEST(Sse, MisalignedSixteenByteOperandRaisesGp)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    s.reg(Gpr::Rdi) = DATA + 4;
    set_xmm(s, 3, xmm_of({ 1, 2, 3, 4 }));
    auto o = run(s, m, { 0x66, 0x0f, 0xef, 0x1f }); // pxor (%rdi),%xmm3
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(*o.exception, (Exception { VEC_GP, 0u, 0 }));
    EXPECT_EQ(s.rip, CODE);
    EXPECT_EQ(get_xmm(s, 3), xmm_of({ 1, 2, 3, 4 }));
    // MOVDQU takes any alignment; the 4-byte MOVD too.
    m.put64(DATA + 4, 0x2222222211111111);
    expect_completed(run(s, m, { 0xf3, 0x0f, 0x6f, 0x17 }), s, 4); // movdqu (%rdi),%xmm2
    EXPECT_EQ(get_xmm(s, 2), xmm_of({ 0x11111111, 0x22222222 }));
    s.rip = CODE;
    expect_completed(run(s, m, { 0x66, 0x0f, 0x6e, 0x17 }), s, 4); // movd (%rdi),%xmm2
    EXPECT_EQ(get_xmm(s, 2), xmm_of({ 0x11111111 }));
}

TEST(Sse, UdWithoutOsfxsrOrWithEmAndNmWithTs)
{
    for (int variant = 0; variant < 3; ++variant) {
        FakePhysicalMemory m(4 << 20);
        CpuState s = sse_mode(m);
        if (variant == 0)
            s.cr4 &= ~CR4_OSFXSR;
        else if (variant == 1)
            s.cr0 |= CR0_EM;
        else
            s.cr0 |= CR0_TS;
        auto o = run(s, m, { 0x66, 0x0f, 0xfe, 0xc4 }); // paddd %xmm4,%xmm0
        ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
        EXPECT_EQ(o.exception->vector, variant == 2 ? VEC_NM : VEC_UD);
        EXPECT_EQ(o.dirty, 0u);
    }
}

TEST(Sse, UnmappedOperandRaisesPageFault)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    s.reg(Gpr::Rdi) = 0x400000; // beyond the identity-mapped 2 MiB
    set_xmm(s, 2, xmm_of({ 5 }));
    auto o = run(s, m, { 0x66, 0x0f, 0x7f, 0x17 }); // movdqa %xmm2,(%rdi)
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(o.exception->cr2, 0x400000u);
    EXPECT_EQ(s.rip, CODE);
}

TEST(Sse, MmxAndVexFormsAreReportedUnsupported)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = sse_mode(m);
    auto mmx = run(s, m, { 0x0f, 0x7e, 0xc0 }); // movd %mm0,%eax
    EXPECT_EQ(mmx.kind, Outcome::Kind::Unsupported);
    EXPECT_NE(mmx.detail.find("MMX"), std::string::npos);
    auto vex = run(s, m, { 0xc5, 0xfa, 0x6f, 0x07 }); // vmovdqu (%rdi),%xmm0
    EXPECT_EQ(vex.kind, Outcome::Kind::Unsupported);
    EXPECT_STREQ(vex.mnemonic, "vmovdqu");
    EXPECT_EQ(s.rip, CODE);
}
