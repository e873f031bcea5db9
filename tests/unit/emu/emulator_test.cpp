// The userspace instruction emulator against the architectural definitions (Intel SDM vol. 2 for each
// instruction, vol. 3A chapter 4 for paging faults).
#include <gtest/gtest.h>

#include "emu/emulator.h"
#include "emu_fixture.h"
#include "fake_physical_memory.h"

using namespace hako::emu;
using hako::emu::test::FakePhysicalMemory;

using namespace hako::emu::test;

TEST(Emulator, FninitSetsTheDefaultState)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.fpu.fcw = 0;
    s.fpu.fsw = 0xffff;
    s.fpu.ftw = 0xff;
    s.fpu.fop = 0x123, s.fpu.fip = 0x1234, s.fpu.fdp = 0x5678;
    auto o = run(s, m, { 0xdb, 0xe3 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "fninit");
    EXPECT_EQ(s.fpu.fcw, 0x037f);
    EXPECT_EQ(s.fpu.fsw, 0);
    EXPECT_EQ(s.fpu.ftw, 0); // abridged: all registers empty
    EXPECT_EQ(s.fpu.fop, 0);
    EXPECT_EQ(s.fpu.fip, 0u);
    EXPECT_EQ(s.fpu.fdp, 0u);
    EXPECT_EQ(s.rip, CODE + 2);
    EXPECT_TRUE(o.dirty & DIRTY_FPU);
    EXPECT_TRUE(o.dirty & DIRTY_REGS);
    EXPECT_FALSE(o.exception);
}

TEST(Emulator, X87ControlRaisesNmWithEmOrTs)
{
    for (uint64_t bit : { CR0_EM, CR0_TS }) {
        FakePhysicalMemory m(4 << 20);
        CpuState s = long_mode(m);
        s.cr0 |= bit;
        s.fpu.fcw = 0x1234;
        auto o = run(s, m, { 0xdb, 0xe3 });
        ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
        EXPECT_EQ(o.exception->vector, VEC_NM);
        EXPECT_FALSE(o.exception->error_code);
        EXPECT_EQ(s.rip, CODE);     // a fault: RIP stays on the instruction
        EXPECT_EQ(s.fpu.fcw, 0x1234);
        EXPECT_EQ(o.dirty, 0u);
    }
}

TEST(Emulator, FwaitChecksMpTsAndPendingExceptions)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    // TS without MP: WAIT is not affected (SDM table 2-2).
    s.cr0 |= CR0_TS;
    auto o = run(s, m, { 0x9b });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_STREQ(o.mnemonic, "fwait");
    EXPECT_EQ(s.rip, CODE + 1);
    // MP and TS: #NM.
    s = long_mode(m);
    s.cr0 |= CR0_TS | CR0_MP;
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_NM);
    // A pending unmasked exception (ES) with CR0.NE: #MF.
    s = long_mode(m);
    s.fpu.fsw = 0x0081; // IE | ES
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_MF);
    EXPECT_EQ(s.rip, CODE);
    // Without CR0.NE the processor signals FERR# instead, and WAIT completes.
    s.cr0 &= ~CR0_NE;
    o = emulate(s, m);
    EXPECT_EQ(o.kind, Outcome::Kind::Completed);
}

TEST(Emulator, FnclexClearsExceptionFlagsOnly)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.fpu.fsw = 0xffff;
    auto o = run(s, m, { 0xdb, 0xe2 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.fpu.fsw, 0x7f00); // C0-C3 and TOP kept
}

TEST(Emulator, FldcwFnstcwFnstswAs32BitOvmfSec)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = protected32();
    m.put(DATA, { 0x7f, 0x02 });
    // fldcw [0x20000] (d9 2d disp32), as OVMF's SEC does after fninit.
    auto o = run(s, m, { 0xd9, 0x2d, 0x00, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "fldcw");
    EXPECT_EQ(s.fpu.fcw, 0x027f);
    EXPECT_EQ(s.rip, CODE + 6);
    // fnstcw [0x20010] (d9 3d disp32)
    s.rip = CODE;
    o = run(s, m, { 0xd9, 0x3d, 0x10, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(m.get16(DATA + 0x10), 0x027f);
    // fnstsw [0x20020] (dd 3d disp32), fnstsw ax (df e0)
    s.fpu.fsw = 0x3800; // TOP = 7
    s.rip = CODE;
    o = run(s, m, { 0xdd, 0x3d, 0x20, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(m.get16(DATA + 0x20), 0x3800);
    s.rip = CODE;
    s.reg(Gpr::Rax) = 0xaaaabbbb;
    o = run(s, m, { 0xdf, 0xe0 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.reg(Gpr::Rax), 0xaaaa3800u); // only AX changes
}

TEST(Emulator, FldcwUnmaskingAPendingExceptionSetsEsAndB)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = protected32();
    s.fpu.fsw = 0x0001; // IE flagged while masked
    m.put(DATA, { 0x7e, 0x03 }); // unmask IE
    auto o = run(s, m, { 0xd9, 0x2d, 0x00, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.fpu.fsw, 0x8081);
    // Masking it again clears the summary bits.
    m.put(DATA, { 0x7f, 0x03 });
    s.rip = CODE;
    s.cr0 &= ~CR0_NE; // (FLDCW waits: with NE set, the pending exception would raise #MF first)
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.fpu.fsw, 0x0001);
}

TEST(Emulator, FldcwWaitsForAPendingException)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = protected32();
    s.cr0 |= CR0_NE;
    s.fpu.fsw = 0x0081;
    auto o = run(s, m, { 0xd9, 0x2d, 0x00, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_MF);
}

TEST(Emulator, FnstcwToAReadOnlyPageFaults)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    m.put64(PT + (DATA >> 12) * 8, DATA | 1); // present, read-only
    auto o = run(s, m, { 0xd9, 0x3c, 0x25, 0x00, 0x00, 0x02, 0x00 }); // fnstcw [0x20000]
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(*o.exception->error_code, PF_P | PF_W);
    EXPECT_EQ(o.exception->cr2, DATA);
    // Without CR0.WP a supervisor write to a read-only page succeeds.
    s.cr0 &= ~CR0_WP;
    o = emulate(s, m);
    EXPECT_EQ(o.kind, Outcome::Kind::Completed);
}

TEST(Emulator, Int3TrapsWithRipAfterIt)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    auto o = run(s, m, { 0xcc });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    ASSERT_TRUE(o.exception);
    EXPECT_EQ(o.exception->vector, VEC_BP);
    EXPECT_FALSE(o.exception->error_code);
    EXPECT_EQ(s.rip, CODE + 1);
    // Real mode too (delivered through the IVT by KVM).
    s = real_mode();
    o = run(s, m, { 0xcc });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(o.exception->vector, VEC_BP);
    EXPECT_EQ(s.rip, (CODE & 0xffff) + 1);
}

TEST(Emulator, IntoTrapsOnlyWithOverflow)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = protected32();
    auto o = run(s, m, { 0xce });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_FALSE(o.exception);
    s.rip = CODE;
    s.rflags |= RFLAGS_OF;
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(o.exception->vector, 4);
    // INTO does not exist in 64-bit mode: #UD.
    s = long_mode(m);
    o = run(s, m, { 0xce });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_UD);
}

TEST(Emulator, MovbeLoadsAndStoresSwapped)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    m.put(DATA, { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 });
    s.reg(Gpr::Rbx) = DATA;
    s.reg(Gpr::Rax) = 0xffffffffffffffff;
    // movbe eax, [rbx]: zero-extends
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "movbe");
    EXPECT_EQ(s.reg(Gpr::Rax), 0x11223344u);
    EXPECT_EQ(s.rip, CODE + 4);
    // movbe rax, [rbx]
    s.rip = CODE;
    o = run(s, m, { 0x48, 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.reg(Gpr::Rax), 0x1122334455667788u);
    // movbe ax, [rbx]: upper bits kept
    s.rip = CODE;
    s.reg(Gpr::Rax) = 0xdeadbeefcafef00d;
    o = run(s, m, { 0x66, 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.reg(Gpr::Rax), 0xdeadbeefcafe1122u);
    // movbe [rbx+8], r9 (4c 0f 38 f1 4b 08)
    s.rip = CODE;
    s.reg(Gpr::R9) = 0x0102030405060708;
    o = run(s, m, { 0x4c, 0x0f, 0x38, 0xf1, 0x4b, 0x08 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get64(DATA + 8), 0x0807060504030201u);
    // movbe [rbx+16], cx (66 0f 38 f1 4b 10)
    s.rip = CODE;
    s.reg(Gpr::Rcx) = 0xabcd;
    o = run(s, m, { 0x66, 0x0f, 0x38, 0xf1, 0x4b, 0x10 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_EQ(m.get16(DATA + 16), 0xcdab);
    EXPECT_EQ(m.ram[DATA + 18], 0);
}

TEST(Emulator, MovbeRegisterFormIsUndefined)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0xc0 }); // mod = 11
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_UD);
}

TEST(Emulator, MovbeToANotPresentPage)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    m.put64(PT + (DATA >> 12) * 8, 0);
    s.reg(Gpr::Rbx) = DATA + 0x10;
    auto o = run(s, m, { 0x0f, 0x38, 0xf1, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(*o.exception->error_code, PF_W);
    EXPECT_EQ(o.exception->cr2, DATA + 0x10);
}

TEST(Emulator, LockCmpxchg16bAsTheDebianKernel)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.reg(Gpr::Rbp) = DATA; // f0 48 0f c7 4d 20 = lock cmpxchg16b [rbp+0x20]
    m.put64(DATA + 0x20, 0x1111);
    m.put64(DATA + 0x28, 0x2222);
    s.reg(Gpr::Rax) = 0x1111, s.reg(Gpr::Rdx) = 0x2222;
    s.reg(Gpr::Rbx) = 0x3333, s.reg(Gpr::Rcx) = 0x4444;
    auto o = run(s, m, { 0xf0, 0x48, 0x0f, 0xc7, 0x4d, 0x20 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "cmpxchg16b");
    EXPECT_TRUE(s.rflags & RFLAGS_ZF);
    EXPECT_EQ(m.get64(DATA + 0x20), 0x3333u);
    EXPECT_EQ(m.get64(DATA + 0x28), 0x4444u);
    EXPECT_EQ(s.rip, CODE + 6);
    EXPECT_GE(m.exchanges, 1u);
    // Again: memory no longer matches, RDX:RAX get its value, ZF clear, memory unchanged.
    s.rip = CODE;
    s.rflags |= RFLAGS_CF;
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed);
    EXPECT_FALSE(s.rflags & RFLAGS_ZF);
    EXPECT_TRUE(s.rflags & RFLAGS_CF); // other flags unaffected
    EXPECT_EQ(s.reg(Gpr::Rax), 0x3333u);
    EXPECT_EQ(s.reg(Gpr::Rdx), 0x4444u);
    EXPECT_EQ(m.get64(DATA + 0x20), 0x3333u);
}

TEST(Emulator, Cmpxchg16bUnalignedRaisesGp)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.reg(Gpr::Rbp) = DATA + 8;
    auto o = run(s, m, { 0xf0, 0x48, 0x0f, 0xc7, 0x4d, 0x20 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_GP);
    EXPECT_EQ(*o.exception->error_code, 0u);
    EXPECT_EQ(s.rip, CODE);
}

TEST(Emulator, Cmpxchg16bNeedsWriteAccessEvenWhenTheCompareFails)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    m.put64(PT + (DATA >> 12) * 8, DATA | 1); // read-only
    s.reg(Gpr::Rbp) = DATA;
    s.reg(Gpr::Rax) = 1; // does not match memory (0)
    auto o = run(s, m, { 0x48, 0x0f, 0xc7, 0x4d, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(*o.exception->error_code, PF_P | PF_W);
    EXPECT_EQ(s.reg(Gpr::Rax), 1u);
}

TEST(Emulator, Cmpxchg8bIn32BitMode)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = protected32();
    m.put32(DATA, 0xaaaa);
    m.put32(DATA + 4, 0xbbbb);
    s.reg(Gpr::Rsi) = DATA + 4; // unaligned is fine for CMPXCHG8B
    m.put32(DATA + 4, 0x1);
    m.put32(DATA + 8, 0x2);
    s.reg(Gpr::Rax) = 1, s.reg(Gpr::Rdx) = 2, s.reg(Gpr::Rbx) = 5, s.reg(Gpr::Rcx) = 6;
    auto o = run(s, m, { 0xf0, 0x0f, 0xc7, 0x0e }); // lock cmpxchg8b [esi]
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "cmpxchg8b");
    EXPECT_TRUE(s.rflags & RFLAGS_ZF);
    EXPECT_EQ(m.get32(DATA + 4), 5u);
    EXPECT_EQ(m.get32(DATA + 8), 6u);
}

TEST(Emulator, LockOnANonLockableInstructionIsUndefined)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    auto o = run(s, m, { 0xf0, 0x0f, 0x38, 0xf0, 0x03 }); // lock movbe
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_UD);
    EXPECT_EQ(s.rip, CODE);
}

TEST(Emulator, UnsupportedInstructionsChangeNothing)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    CpuState before = s;
    auto o = run(s, m, { 0x0f, 0xa2 }); // cpuid
    ASSERT_EQ(o.kind, Outcome::Kind::Unsupported);
    EXPECT_STREQ(o.mnemonic, "cpuid");
    EXPECT_EQ(o.length, 2);
    EXPECT_EQ(s.rip, before.rip);
    EXPECT_EQ(o.dirty, 0u);
}

TEST(Emulator, SegmentLimitsIn32BitMode)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = protected32();
    s.segment(Seg::Ds).limit = 0x20000; // the word at 0x20000 crosses it
    auto o = run(s, m, { 0xd9, 0x2d, 0x00, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_GP);
    // Through SS (base EBP): #SS.
    s.segment(Seg::Ss).limit = 0x1000;
    s.reg(Gpr::Rbp) = 0x2000;
    o = run(s, m, { 0xd9, 0x7d, 0x00 }); // fnstcw [ebp]
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_SS);
    // A read-only data segment refuses the store.
    s = protected32();
    s.segment(Seg::Ds).type = 1;
    o = run(s, m, { 0xd9, 0x3d, 0x10, 0x00, 0x02, 0x00 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_GP);
}

TEST(Emulator, NonCanonicalAddressRaisesGp)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.reg(Gpr::Rbx) = 0x0000800000000000;
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_GP);
}

TEST(Emulator, FetchFaultsOnANonExecutablePage)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    m.put(CODE, { 0xdb, 0xe3 });
    m.put64(PT + (CODE >> 12) * 8, CODE | 3 | (1ull << 63));
    auto o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(*o.exception->error_code, PF_P | PF_I);
    EXPECT_EQ(o.exception->cr2, CODE);
}

TEST(Emulator, FetchAcrossIntoANotPresentPage)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.rip = CODE + 0xfff; // fldcw's opcode byte ends the page, its ModRM is on the next (not present)
    m.ram[CODE + 0xfff] = 0xd9;
    m.put64(PT + ((CODE + 0x1000) >> 12) * 8, 0);
    auto o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(o.exception->cr2, CODE + 0x1000);
    EXPECT_EQ(*o.exception->error_code, PF_I);
    // A one-byte instruction at the end of the page needs nothing from the next.
    m.ram[CODE + 0xfff] = 0x9b;
    o = emulate(s, m);
    EXPECT_EQ(o.kind, Outcome::Kind::Completed);
}

TEST(Emulator, AccessedAndDirtyBits)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.reg(Gpr::Rbx) = DATA;
    run(s, m, { 0x0f, 0x38, 0xf1, 0x03 }); // movbe [rbx], eax
    uint64_t pte = m.get64(PT + (DATA >> 12) * 8);
    EXPECT_TRUE(pte & (1u << 5));
    EXPECT_TRUE(pte & (1u << 6));
    EXPECT_TRUE(m.get64(0x1000) & (1u << 5));
    uint64_t code_pte = m.get64(PT + (CODE >> 12) * 8);
    EXPECT_TRUE(code_pte & (1u << 5));
    EXPECT_FALSE(code_pte & (1u << 6)); // only read (fetched)
}

TEST(Emulator, UserAccessToASupervisorPage)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    // CPL 3 (user code and stack), pages user-accessible except DATA.
    for (uint64_t i = 0; i < 512; ++i)
        m.put64(PT + i * 8, (i * 4096) | 7);
    for (uint64_t a : { 0x1000ull, 0x2000ull, 0x3000ull })
        m.put64(a, m.get64(a) | 4);
    m.put64(PT + (DATA >> 12) * 8, DATA | 3);
    s.segment(Seg::Cs).dpl = 3;
    s.segment(Seg::Ss).dpl = 3;
    s.reg(Gpr::Rbx) = DATA;
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(*o.exception->error_code, PF_P | PF_U);
}

TEST(Emulator, SmapBlocksSupervisorDataAccessToUserPages)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    for (uint64_t a : { 0x1000ull, 0x2000ull, 0x3000ull })
        m.put64(a, m.get64(a) | 4);
    m.put64(PT + (DATA >> 12) * 8, DATA | 7);
    s.cr4 |= CR4_SMAP;
    s.reg(Gpr::Rbx) = DATA;
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(*o.exception->error_code, PF_P);
    s.rflags |= RFLAGS_AC; // STAC
    o = emulate(s, m);
    EXPECT_EQ(o.kind, Outcome::Kind::Completed);
}

TEST(Emulator, ThirtyTwoBitPagingWithA4MiBPage)
{
    FakePhysicalMemory m(16 << 20);
    CpuState s = protected32();
    s.cr0 |= CR0_PG;
    s.cr4 = CR4_PSE;
    s.cr3 = 0x1000;
    // Linear 0 -> 4 KiB page table at 0x2000 (identity for CODE); linear 0x40000000 -> 4 MiB page at 0x800000.
    m.put32(0x1000, 0x2000 | 3);
    m.put32(0x2000 + (CODE >> 12) * 4, static_cast<uint32_t>(CODE | 3));
    m.put32(0x1000 + (0x40000000 >> 22) * 4, 0x800000 | 0x83);
    m.put(0x800000 + 0x1234, { 0x44, 0x33, 0x22, 0x11 });
    s.reg(Gpr::Rbx) = 0x40001234;
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.reg(Gpr::Rax), 0x44332211u);
    EXPECT_TRUE(m.get32(0x1000 + (0x40000000 >> 22) * 4) & (1u << 5));
    // Not mapped: #PF with CR2.
    s.rip = CODE;
    s.reg(Gpr::Rbx) = 0x80000000;
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->cr2, 0x80000000u);
    EXPECT_EQ(*o.exception->error_code, 0u);
}

TEST(Emulator, PaePagingWithA2MiBPage)
{
    FakePhysicalMemory m(16 << 20);
    CpuState s = protected32();
    s.cr0 |= CR0_PG;
    s.cr4 = CR4_PAE;
    s.cr3 = 0x1000; // PDPT
    m.put64(0x1000, 0x2000 | 1);
    m.put64(0x2000, 0x0 | 0x83);        // linear [0, 2 MiB) -> physical [0, 2 MiB)
    m.put64(0x2000 + 8, 0x600000 | 0x83); // linear [2, 4 MiB) -> physical [6, 8 MiB)
    m.put(0x600000 + 0x10, { 1, 2, 3, 4 });
    s.reg(Gpr::Rbx) = 0x200010;
    auto o = run(s, m, { 0x0f, 0x38, 0xf0, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.reg(Gpr::Rax), 0x01020304u);
    // The XD bit without EFER.NXE is a reserved bit.
    m.put64(0x2000 + 8, 0x600000 | 0x83 | (1ull << 63));
    s.rip = CODE;
    o = emulate(s, m);
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(*o.exception->error_code, PF_P | PF_RSVD);
}

TEST(Emulator, FiveLevelPagingIsReportedNotGuessed)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.cr4 |= CR4_LA57;
    auto o = run(s, m, { 0x9b });
    EXPECT_EQ(o.kind, Outcome::Kind::Unsupported);
}

TEST(Emulator, RealModeFnstswWrapsAtTheSegment)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = real_mode();
    s.segment(Seg::Ds).base = 0x20000;
    s.fpu.fsw = 0x4100;
    auto o = run(s, m, { 0xdd, 0x3e, 0x34, 0x12 }); // fnstsw [0x1234]
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get16(0x21234), 0x4100);
    // A word at offset 0xffff crosses the 64 KiB limit: #GP.
    s.rip = CODE & 0xffff;
    o = run(s, m, { 0xdd, 0x3e, 0xff, 0xff });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_GP);
}

TEST(Emulator, InvpcidFlushesAndChecksItsDescriptor)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.cr4 |= CR4_PCIDE;
    s.reg(Gpr::Rbx) = DATA;
    m.put64(DATA, 5);                  // PCID 5
    m.put64(DATA + 8, 0xffffffff81000000); // canonical address
    for (uint64_t type : { 0u, 1u, 2u, 3u }) {
        s.rip = CODE;
        s.reg(Gpr::Rax) = type;
        auto o = run(s, m, { 0x66, 0x0f, 0x38, 0x82, 0x03 }); // invpcid rax, [rbx]
        ASSERT_EQ(o.kind, Outcome::Kind::Completed) << type << " " << o.detail;
        EXPECT_STREQ(o.mnemonic, "invpcid");
        EXPECT_TRUE(o.dirty & DIRTY_TLB);
        EXPECT_EQ(s.rip, CODE + 5);
    }
    auto expect_gp = [&](char const* what) {
        s.rip = CODE;
        auto o = emulate(s, m);
        ASSERT_EQ(o.kind, Outcome::Kind::Faulted) << what;
        EXPECT_EQ(o.exception->vector, VEC_GP) << what;
        EXPECT_EQ(o.dirty, 0u);
    };
    s.reg(Gpr::Rax) = 4;
    expect_gp("type 4");
    s.reg(Gpr::Rax) = 0;
    m.put64(DATA + 8, 0x0000800000000000);
    expect_gp("non-canonical address, type 0");
    m.put64(DATA + 8, 0);
    m.put64(DATA, 0x1000);
    expect_gp("reserved descriptor bits");
    m.put64(DATA, 5);
    s.cr4 &= ~CR4_PCIDE;
    s.reg(Gpr::Rax) = 1;
    expect_gp("PCID 5 without CR4.PCIDE");
    s.cr4 |= CR4_PCIDE;
    // CPL 3 (the code page made user-accessible, or the fetch would fault first): #GP(0).
    for (uint64_t a : { 0x1000ull, 0x2000ull, 0x3000ull })
        m.put64(a, m.get64(a) | 4);
    m.put64(PT + (CODE >> 12) * 8, CODE | 7);
    s.segment(Seg::Cs).dpl = 3;
    s.segment(Seg::Ss).dpl = 3;
    expect_gp("CPL 3");
}

TEST(Emulator, LdmxcsrStmxcsrAsOvmfPei)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.cr4 |= CR4_OSFXSR;
    m.put32(DATA, 0x9fc0);
    s.reg(Gpr::Rbx) = DATA;
    auto o = run(s, m, { 0x0f, 0xae, 0x13 }); // ldmxcsr [rbx]
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "ldmxcsr");
    EXPECT_EQ(s.fpu.mxcsr, 0x9fc0u);
    EXPECT_TRUE(o.dirty & DIRTY_FPU);
    s.rip = CODE;
    s.fpu.mxcsr = 0x1f80;
    o = run(s, m, { 0x0f, 0xae, 0x5b, 0x08 }); // stmxcsr [rbx+8]
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get32(DATA + 8), 0x1f80u);
    // Reserved bits: #GP(0); without CR4.OSFXSR: #UD; with CR0.TS: #NM.
    m.put32(DATA, 0x10000);
    s.rip = CODE;
    o = run(s, m, { 0x0f, 0xae, 0x13 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_GP);
    EXPECT_EQ(s.fpu.mxcsr, 0x1f80u);
    s.cr0 |= CR0_TS;
    o = emulate(s, m);
    EXPECT_EQ(o.exception->vector, VEC_NM);
    s.cr4 &= ~CR4_OSFXSR;
    o = emulate(s, m);
    EXPECT_EQ(o.exception->vector, VEC_UD);
}

TEST(Emulator, PopcntCountsBitsAndSetsOnlyZf)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    // popcnt rax, rdi (the Debian kernel's hweight64)
    s.reg(Gpr::Rdi) = 0xf0f0000000000001;
    s.reg(Gpr::Rax) = ~0ull;
    s.rflags = 2 | RFLAGS_CF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF | RFLAGS_ZF;
    auto o = run(s, m, { 0xf3, 0x48, 0x0f, 0xb8, 0xc7 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "popcnt");
    EXPECT_EQ(s.reg(Gpr::Rax), 9u);
    EXPECT_EQ(s.rflags, 2u);
    EXPECT_EQ(s.rip, CODE + 5);

    // popcnt eax, [rbx]: zero source sets ZF, the 32-bit result zero-extends.
    s.rip = CODE;
    m.put32(DATA, 0);
    s.reg(Gpr::Rbx) = DATA;
    s.reg(Gpr::Rax) = ~0ull;
    o = run(s, m, { 0xf3, 0x0f, 0xb8, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.reg(Gpr::Rax), 0u);
    EXPECT_EQ(s.rflags, 2u | RFLAGS_ZF);

    // popcnt ax, [rbx] keeps the upper bits of RAX.
    s.rip = CODE;
    m.put32(DATA, 0xffff0007);
    s.reg(Gpr::Rax) = 0x1234567800000000;
    o = run(s, m, { 0x66, 0xf3, 0x0f, 0xb8, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.reg(Gpr::Rax), 0x1234567800000003u);

    // A not-present page: #PF, nothing changed.
    s.rip = CODE;
    m.put64(PT + (DATA >> 12) * 8, 0);
    o = run(s, m, { 0xf3, 0x0f, 0xb8, 0x03 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(s.reg(Gpr::Rax), 0x1234567800000003u);
}

TEST(Emulator, ClacStacChangeOnlyAcAndAreUndefinedAtCpl3)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = long_mode(m);
    s.rflags = 2 | RFLAGS_AC | RFLAGS_CF;
    auto o = run(s, m, { 0x0f, 0x01, 0xca }); // clac, as the Debian kernel's exception entry
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "clac");
    EXPECT_EQ(s.rflags, 2u | RFLAGS_CF);
    EXPECT_EQ(s.rip, CODE + 3);
    s.rip = CODE;
    o = run(s, m, { 0x0f, 0x01, 0xcb }); // stac
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.rflags, 2u | RFLAGS_CF | RFLAGS_AC);

    // CPL 3 (code page user-accessible): #UD, flags unchanged.
    m.put64(0x1000, 0x2000 | 7);
    m.put64(0x2000, 0x3000 | 7);
    m.put64(0x3000, PT | 7);
    m.put64(PT + (CODE >> 12) * 8, CODE | 7);
    s.rip = CODE;
    s.segment(Seg::Cs).dpl = 3;
    s.segment(Seg::Ss).dpl = 3;
    o = run(s, m, { 0x0f, 0x01, 0xca });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted) << o.detail;
    EXPECT_EQ(o.exception->vector, VEC_UD);
    EXPECT_EQ(s.rflags, 2u | RFLAGS_CF | RFLAGS_AC);
}


// LAR and LSL (SDM vol. 2): Linux's paranoid exception entry reads its CPU number as the limit of a per-CPU GDT entry
// (`lsl rax, eax` with EAX = 0x7b).
namespace {
struct LslFixture {
    FakePhysicalMemory m { 4 << 20 };
    CpuState s = long_mode(m);
    static constexpr uint16_t TSS64 = 0x60, CALL_GATE = 0x70, CPUNODE = 0x78 | 3, TSS16 = 0x80;
    LslFixture()
    {
        write_gdt(m);
        m.put64(GDT + 0x60, descriptor(0, 0x1000, 0x89, 0x0)); // 64-bit TSS (16 bytes), available, DPL 0
        m.put64(GDT + 0x68, 0);
        m.put64(GDT + 0x70, descriptor(0, 0x100, 0x8c, 0x0)); // call gate, DPL 0
        m.put64(GDT + 0x78, descriptor(0, 0x2005, 0xf5, 0x0)); // Linux's CPUNODE: data, DPL 3, limit: node 2, CPU 5
        m.put64(GDT + 0x80, descriptor(0, 0x100, 0x81, 0x0)); // 16-bit TSS
        s.gdt = { GDT, 0x87 };
        s.rflags = 2;
    }
    Outcome exec(std::vector<uint8_t> const& code)
    {
        s.rip = CODE;
        return run(s, m, code);
    }
};
} // namespace

TEST(Emulator, LslLoadsTheByteGranularLimitAndSetsZf)
{
    LslFixture f;
    f.s.reg(Gpr::Rax) = LslFixture::CPUNODE;
    auto o = f.exec({ 0x48, 0x0f, 0x03, 0xc0 }); // lsl rax, eax (the Debian kernel's GET_PERCPU_BASE)
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "lsl");
    EXPECT_EQ(f.s.reg(Gpr::Rax), 0x2005u);
    EXPECT_EQ(f.s.rflags, 2u | RFLAGS_ZF);
    EXPECT_EQ(f.s.rip, CODE + 4);

    // G set: the limit in 4 KiB units, low 12 bits ones. 32-bit destination zero-extends; memory source (m16).
    f.m.put(DATA, { uint8_t(DATA32_K), 0 });
    f.s.reg(Gpr::Rbx) = DATA;
    f.s.reg(Gpr::Rcx) = ~0ull;
    o = f.exec({ 0x0f, 0x03, 0x0b }); // lsl ecx, [rbx]
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(f.s.reg(Gpr::Rcx), 0xffffffffu);
    // 16-bit destination: the low 16 bits of the limit, the rest of the register kept.
    f.s.reg(Gpr::Rdx) = 0x1111222233334444;
    f.s.reg(Gpr::Rax) = SMALL_CODE;
    o = f.exec({ 0x66, 0x0f, 0x03, 0xd0 }); // lsl dx, ax
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(f.s.reg(Gpr::Rdx), 0x1111222233331000u);
    // System descriptors: a 64-bit TSS has a limit; a call gate does not (ZF = 0, destination unchanged); a 16-bit
    // TSS is not valid in IA-32e mode.
    f.s.reg(Gpr::Rax) = LslFixture::TSS64;
    o = f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
    EXPECT_EQ(f.s.reg(Gpr::Rax), 0x1000u);
    EXPECT_TRUE(f.s.rflags & RFLAGS_ZF);
    for (uint16_t sel : { LslFixture::CALL_GATE, LslFixture::TSS16 }) {
        f.s.reg(Gpr::Rax) = sel;
        o = f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
        ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
        EXPECT_EQ(f.s.reg(Gpr::Rax), sel) << sel;
        EXPECT_FALSE(f.s.rflags & RFLAGS_ZF) << sel;
    }
}

TEST(Emulator, LslAndLarFailWithZfClearNotAFault)
{
    LslFixture f;
    // A null selector, one beyond the GDT limit, one into an absent LDT... all clear ZF and leave RAX.
    for (uint16_t sel : { uint16_t(0), uint16_t(3), uint16_t(0x88), uint16_t(0xfff8) }) {
        f.s.rflags = 2 | RFLAGS_ZF;
        f.s.reg(Gpr::Rax) = sel;
        auto o = f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
        ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
        EXPECT_FALSE(o.exception.has_value());
        EXPECT_EQ(f.s.reg(Gpr::Rax), sel);
        EXPECT_FALSE(f.s.rflags & RFLAGS_ZF) << sel;
    }
    // DPL below the RPL: a DPL 0 data segment named with RPL 3 fails, with RPL 0 succeeds.
    f.s.rflags = 2 | RFLAGS_ZF;
    f.s.reg(Gpr::Rax) = DATA32_K | 3;
    f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
    EXPECT_FALSE(f.s.rflags & RFLAGS_ZF);
    f.s.reg(Gpr::Rax) = DATA32_K;
    f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
    EXPECT_TRUE(f.s.rflags & RFLAGS_ZF);
    // DPL below the CPL (CPL 3, user-accessible pages): the same segment fails even with RPL 0; a conforming code
    // segment passes.
    for (uint64_t table : { 0x1000u, 0x2000u, 0x3000u })
        f.m.put64(table, f.m.get64(table) | 4);
    for (uint64_t i = 0; i < 512; ++i)
        f.m.put64(PT + i * 8, (i * 4096) | 7);
    f.s.segment(Seg::Ss).dpl = 3;
    f.s.rflags = 2 | RFLAGS_ZF;
    f.s.reg(Gpr::Rax) = DATA32_K;
    auto o = f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_FALSE(f.s.rflags & RFLAGS_ZF);
    f.s.reg(Gpr::Rax) = CONFORMING | 3;
    o = f.exec({ 0x48, 0x0f, 0x03, 0xc0 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_TRUE(f.s.rflags & RFLAGS_ZF);
    EXPECT_EQ(f.s.reg(Gpr::Rax), 0xffffffffu);
}

TEST(Emulator, LarLoadsAccessRights)
{
    LslFixture f;
    f.s.reg(Gpr::Rax) = CODE64_K;
    f.s.reg(Gpr::Rdx) = ~0ull;
    auto o = f.exec({ 0x0f, 0x02, 0xd0 }); // lar edx, eax
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "lar");
    // Second dword of a 64-bit DPL 0 code descriptor (access 0x9b, flags G|L) masked with 0x00f0ff00.
    EXPECT_EQ(f.s.reg(Gpr::Rdx), 0x00a09b00u);
    EXPECT_TRUE(f.s.rflags & RFLAGS_ZF);
    // LAR accepts a call gate, LSL does not.
    f.s.reg(Gpr::Rax) = LslFixture::CALL_GATE;
    o = f.exec({ 0x0f, 0x02, 0xd0 });
    EXPECT_TRUE(f.s.rflags & RFLAGS_ZF);
    EXPECT_EQ(f.s.reg(Gpr::Rdx), 0x00008c00u);
    // 16-bit operand size: access rights byte only (& 0xff00).
    f.s.reg(Gpr::Rax) = DATA32_U;
    f.s.reg(Gpr::Rdx) = 0x5555;
    o = f.exec({ 0x66, 0x0f, 0x02, 0xd0 });
    EXPECT_EQ(f.s.reg(Gpr::Rdx) & 0xffff, 0xf200u);
}

TEST(Emulator, LslIsUndefinedInRealModeAndFaultsOnItsMemoryOperand)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = real_mode();
    auto o = run(s, m, { 0x0f, 0x03, 0xc0 });
    ASSERT_TRUE(o.exception.has_value());
    EXPECT_EQ(o.exception->vector, VEC_UD);

    LslFixture f;
    f.s.reg(Gpr::Rbx) = 0x7fff00000000; // not mapped: #PF, nothing changed
    f.s.reg(Gpr::Rcx) = 7;
    o = f.exec({ 0x0f, 0x03, 0x0b });
    ASSERT_TRUE(o.exception.has_value());
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(f.s.reg(Gpr::Rcx), 7u);
    EXPECT_EQ(f.s.rip, CODE);
}
