// The x87 instructions of the userspace emulator against the Intel SDM (vol. 1 ch. 8, vol. 2 instruction pages):
// bit-exact results under each rounding and precision control, the stack (TOP, tags, FXSAVE's stack-order
// registers), overflow/underflow (#IS), condition codes and FCOMI's EFLAGS, integer conversions with the integer
// indefinite, masked and unmasked exceptions, #NM/#MF and memory faults. The expected 80-bit values are worked out by
// hand in the comments (significands in hex), not computed by the host.
#include <gtest/gtest.h>

#include <cstring>

#include "emu/emulator.h"
#include "emu_fixture.h"
#include "fake_physical_memory.h"

using namespace hako::emu;
using namespace hako::emu::test;

namespace {

struct F80 {
    uint16_t se;
    uint64_t m;
    friend bool operator==(F80 const&, F80 const&) = default;
};

std::ostream& operator<<(std::ostream& os, F80 const& v)
{
    return os << std::hex << v.se << ":" << v.m << std::dec;
}

constexpr F80 ONE { 0x3fff, 0x8000000000000000ull };
constexpr F80 TWO { 0x4000, 0x8000000000000000ull };
constexpr F80 THREE { 0x4000, 0xc000000000000000ull };
constexpr F80 ZERO { 0, 0 };
constexpr F80 INDEFINITE { 0xffff, 0xc000000000000000ull };

constexpr uint16_t IE = 1, ZE = 4, PE = 0x20, SF = 0x40, ES = 0x80, B = 0x8000;
constexpr uint16_t C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000;

unsigned top(CpuState const& s) { return (s.fpu.fsw >> 11) & 7; }

F80 st(CpuState const& s, size_t i)
{
    F80 v {};
    std::memcpy(&v.m, s.fpu.st[i].data(), 8);
    std::memcpy(&v.se, s.fpu.st[i].data() + 8, 2);
    return v;
}

/// A stack holding `values` (values[0] = ST(0)) with TOP = 8 - n, as if pushed in reverse order.
void set_stack(CpuState& s, std::initializer_list<F80> values)
{
    unsigned const n = static_cast<unsigned>(values.size());
    unsigned const t = (8 - n) & 7;
    s.fpu.fsw = static_cast<uint16_t>((s.fpu.fsw & ~0x3800u) | (t << 11));
    s.fpu.ftw = 0;
    size_t i = 0;
    for (F80 const& v : values) {
        std::memcpy(s.fpu.st[i].data(), &v.m, 8);
        std::memcpy(s.fpu.st[i].data() + 8, &v.se, 2);
        s.fpu.ftw = static_cast<uint8_t>(s.fpu.ftw | (1u << ((t + i) & 7)));
        ++i;
    }
}

CpuState x87_mode(FakePhysicalMemory& m)
{
    CpuState s = long_mode(m);
    s.reg(Gpr::Rdi) = DATA;
    return s;
}

void expect_completed(Outcome const& o, CpuState const& s, size_t length)
{
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.mnemonic << ": " << o.detail;
    EXPECT_FALSE(o.exception);
    EXPECT_EQ(s.rip, CODE + length);
}

uint16_t with_rc_pc(unsigned rc, unsigned pc) { return static_cast<uint16_t>(0x007fu | (rc << 10) | (pc << 8)); }

TEST(X87, FldzPushesAndRecordsTheInstruction)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    auto o = run(s, m, { 0xd9, 0xee }); // fldz
    expect_completed(o, s, 2);
    EXPECT_NE(o.dirty & DIRTY_FPU, 0u);
    EXPECT_EQ(top(s), 7u);
    EXPECT_EQ(s.fpu.ftw, 0x80);
    EXPECT_EQ(st(s, 0), ZERO);
    EXPECT_EQ(s.fpu.fip, CODE);
    EXPECT_EQ(s.fpu.fop, 0x1ee);
}

TEST(X87, PushRotatesTheStackOrderRegisters)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { TWO, THREE });
    expect_completed(run(s, m, { 0xd9, 0xe8 }), s, 2); // fld1
    EXPECT_EQ(top(s), 5u);
    EXPECT_EQ(s.fpu.ftw, 0xe0);
    EXPECT_EQ(st(s, 0), ONE);
    EXPECT_EQ(st(s, 1), TWO);
    EXPECT_EQ(st(s, 2), THREE);
}

TEST(X87, FldpiRoundsTheInternalConstantPerRc)
{
    // pi = C90FDAA2 2168C234 C4C6...: to nearest rounds up (...C235), down and toward zero do not.
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    expect_completed(run(s, m, { 0xd9, 0xeb }), s, 2);
    EXPECT_EQ(st(s, 0), (F80 { 0x4000, 0xc90fdaa22168c235ull }));
    s = x87_mode(m);
    s.fpu.fcw = with_rc_pc(1, 3);
    expect_completed(run(s, m, { 0xd9, 0xeb }), s, 2);
    EXPECT_EQ(st(s, 0), (F80 { 0x4000, 0xc90fdaa22168c234ull }));
}

struct DivCase {
    unsigned rc, pc;
    F80 result;
    bool c1;
};

TEST(X87, DivideByM32HonoursRoundingAndPrecision)
{
    // 1 / 3 = 0.0101...b: significand AAAA...AAAA|AAAA... at 2^-2 (exponent 0x3ffd).
    DivCase const cases[] = {
        { 0, 3, { 0x3ffd, 0xaaaaaaaaaaaaaaabull }, true },  // nearest, extended: the cut-off bits are > 1/2: up
        { 1, 3, { 0x3ffd, 0xaaaaaaaaaaaaaaaaull }, false }, // down
        { 2, 3, { 0x3ffd, 0xaaaaaaaaaaaaaaabull }, true },  // up
        { 3, 3, { 0x3ffd, 0xaaaaaaaaaaaaaaaaull }, false }, // toward zero
        { 0, 0, { 0x3ffd, 0xaaaaab0000000000ull }, true },  // nearest, single (24 bits): AAAAAA|AA.. rounds up
        { 0, 2, { 0x3ffd, 0xaaaaaaaaaaaaa800ull }, false }, // nearest, double (53 bits): low 11 bits 0x2aa < 0x400
    };
    for (auto const& k : cases) {
        FakePhysicalMemory m(1 << 21);
        CpuState s = x87_mode(m);
        s.fpu.fcw = with_rc_pc(k.rc, k.pc);
        set_stack(s, { ONE });
        m.put32(DATA, 0x40400000u); // 3.0f
        auto o = run(s, m, { 0xd8, 0x37 }); // fdivs (%rdi)
        expect_completed(o, s, 2);
        EXPECT_EQ(st(s, 0), k.result) << "rc " << k.rc << " pc " << k.pc;
        EXPECT_EQ((s.fpu.fsw & C1) != 0, k.c1) << "rc " << k.rc << " pc " << k.pc;
        EXPECT_EQ(s.fpu.fsw & (PE | ES), PE);
        EXPECT_EQ(s.fpu.fdp, DATA);
        EXPECT_EQ(s.fpu.fop, 0x037);
    }
}

TEST(X87, RegisterFormsTakeTheSdmOperandOrder)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { ONE, THREE });
    expect_completed(run(s, m, { 0xdc, 0xe9 }), s, 2); // Intel fsub st(1), st(0): ST(1) = 3 - 1
    EXPECT_EQ(st(s, 1), TWO);
    EXPECT_EQ(st(s, 0), ONE);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xde, 0xf9 }), s, 2); // Intel fdivp st(1), st(0): ST(1) = 2 / 1, pop
    EXPECT_EQ(top(s), 7u);
    EXPECT_EQ(s.fpu.ftw, 0x80);
    EXPECT_EQ(st(s, 0), TWO);
    s.rip = CODE;
    set_stack(s, { ONE, THREE });
    expect_completed(run(s, m, { 0xd8, 0xe9 }), s, 2); // Intel fsubr st(0), st(1): ST(0) = 3 - 1
    EXPECT_EQ(st(s, 0), TWO);
}

TEST(X87, IntegerLoadsAndArithmetic)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    m.put64(DATA, static_cast<uint64_t>(-3));
    expect_completed(run(s, m, { 0xdf, 0x2f }), s, 2); // fildll (%rdi)
    EXPECT_EQ(st(s, 0), (F80 { 0xc000, 0xc000000000000000ull }));
    s.rip = CODE;
    m.put64(DATA, 0xfffe); // -2 as m16int
    expect_completed(run(s, m, { 0xde, 0x0f }), s, 2); // fimuls (%rdi)
    EXPECT_EQ(st(s, 0), (F80 { 0x4001, 0xc000000000000000ull })); // 6
}

TEST(X87, IntegerStoresRoundAndSaturateToIndefinite)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { { 0x4000, 0xa000000000000000ull } }); // 2.5
    expect_completed(run(s, m, { 0xdb, 0x17 }), s, 2); // fistl (%rdi): to nearest even
    EXPECT_EQ(m.get32(DATA), 2u);
    EXPECT_EQ(top(s), 7u);
    s.rip = CODE;
    s.fpu.fcw = with_rc_pc(2, 3);
    expect_completed(run(s, m, { 0xdb, 0x1f }), s, 2); // fistpl (%rdi): up
    EXPECT_EQ(m.get32(DATA), 3u);
    EXPECT_EQ(s.fpu.ftw, 0);
    EXPECT_EQ(top(s), 0u);
    // FISTTP truncates whatever RC says: -2.75 -> -2.
    s = x87_mode(m);
    set_stack(s, { { 0xc000, 0xb000000000000000ull } });
    expect_completed(run(s, m, { 0xdb, 0x0f }), s, 2); // fisttpl (%rdi)
    EXPECT_EQ(m.get32(DATA), static_cast<uint32_t>(-2));
    // 40000 does not fit a word: #IA, masked: the integer indefinite 0x8000.
    s = x87_mode(m);
    set_stack(s, { { 0x400e, 0x9c40000000000000ull } });
    expect_completed(run(s, m, { 0xdf, 0x1f }), s, 2); // fistps (%rdi)
    EXPECT_EQ(m.get16(DATA), 0x8000);
    EXPECT_EQ(s.fpu.fsw & (IE | ES), IE);
    // Unmasked: nothing stored, nothing popped, ES and B set.
    s = x87_mode(m);
    s.fpu.fcw = 0x037e;
    m.put32(DATA, 0x1234);
    set_stack(s, { { 0x400e, 0x9c40000000000000ull } });
    expect_completed(run(s, m, { 0xdf, 0x1f }), s, 2);
    EXPECT_EQ(m.get16(DATA), 0x1234);
    EXPECT_EQ(top(s), 7u);
    EXPECT_EQ(s.fpu.fsw & (IE | ES | B), IE | ES | B);
}

TEST(X87, FloatStoresConvert)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { THREE });
    expect_completed(run(s, m, { 0xd9, 0x1f }), s, 2); // fstps (%rdi)
    EXPECT_EQ(m.get32(DATA), 0x40400000u);
    s = x87_mode(m);
    set_stack(s, { { 0x3ffd, 0xaaaaaaaaaaaaaaabull } }); // 1/3
    expect_completed(run(s, m, { 0xdd, 0x17 }), s, 2); // fstl (%rdi)
    EXPECT_EQ(m.get64(DATA), 0x3fd5555555555555ull);
    EXPECT_EQ(s.fpu.fsw & PE, PE);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xdb, 0x3f }), s, 2); // fstpt (%rdi)
    EXPECT_EQ(m.get64(DATA), 0xaaaaaaaaaaaaaaabull);
    EXPECT_EQ(m.get16(DATA + 8), 0x3ffd);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xd9, 0x07 }), s, 2); // flds (%rdi): low dword of the significand, a denormal-free
    EXPECT_EQ(top(s), 7u);
}

TEST(X87, StackOverflowAndUnderflow)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE });
    expect_completed(run(s, m, { 0xd9, 0xee }), s, 2); // fldz: overflow, masked: indefinite pushed
    EXPECT_EQ(s.fpu.fsw & (IE | SF | C1 | ES), IE | SF | C1);
    EXPECT_EQ(st(s, 0), INDEFINITE);
    EXPECT_EQ(top(s), 7u);
    // Underflow: fadd %st(1), %st on an empty stack, masked: ST(0) = indefinite, C1 = 0.
    s = x87_mode(m);
    s.fpu.fsw = C1;
    expect_completed(run(s, m, { 0xd8, 0xc1 }), s, 2);
    EXPECT_EQ(s.fpu.fsw & (IE | SF | C1), IE | SF);
    EXPECT_EQ(st(s, 0), INDEFINITE);
    EXPECT_EQ(s.fpu.ftw, 1u);
    // Unmasked overflow: nothing pushed; the next waiting instruction raises #MF (CR0.NE).
    s = x87_mode(m);
    s.fpu.fcw = 0x037e;
    set_stack(s, { ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE });
    expect_completed(run(s, m, { 0xd9, 0xee }), s, 2);
    EXPECT_EQ(top(s), 0u);
    EXPECT_EQ(st(s, 0), ONE);
    EXPECT_EQ(s.fpu.fsw & (IE | SF | ES | B), IE | SF | ES | B);
    s.rip = CODE;
    auto o = run(s, m, { 0xd9, 0xe8 }); // fld1
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_MF);
    EXPECT_EQ(s.rip, CODE);
}

TEST(X87, ZeroDivideMaskedAndUnmasked)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { ONE, ZERO });
    expect_completed(run(s, m, { 0xd8, 0xf1 }), s, 2); // Intel fdiv st(0), st(1): 1 / 0
    EXPECT_EQ(st(s, 0), (F80 { 0x7fff, 0x8000000000000000ull }));
    EXPECT_EQ(s.fpu.fsw & (ZE | ES), ZE);
    s = x87_mode(m);
    s.fpu.fcw = 0x037b;
    set_stack(s, { ONE, ZERO });
    expect_completed(run(s, m, { 0xd8, 0xf1 }), s, 2);
    EXPECT_EQ(st(s, 0), ONE);
    EXPECT_EQ(s.fpu.fsw & (ZE | ES | B), ZE | ES | B);
}

TEST(X87, ComparisonsSetConditionCodesAndEflags)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { ONE, TWO });
    s.rflags = 2 | RFLAGS_ZF | RFLAGS_PF | RFLAGS_OF;
    expect_completed(run(s, m, { 0xdb, 0xf1 }), s, 2); // fcomi %st(1): 1 < 2
    EXPECT_EQ(s.rflags & (RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF | RFLAGS_OF), RFLAGS_CF);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xd8, 0xd1 }), s, 2); // fcom %st(1)
    EXPECT_EQ(s.fpu.fsw & (C0 | C2 | C3), C0);
    s.rip = CODE;
    set_stack(s, { TWO, TWO });
    expect_completed(run(s, m, { 0xdf, 0xe9 }), s, 2); // fucomip %st(1): equal, pop
    EXPECT_EQ(s.rflags & (RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF), RFLAGS_ZF);
    EXPECT_EQ(top(s), 7u);
    // A QNaN: FUCOM is unordered without #IA, FCOM raises #IA.
    s = x87_mode(m);
    set_stack(s, { INDEFINITE, ONE });
    expect_completed(run(s, m, { 0xdd, 0xe1 }), s, 2); // fucom %st(1)
    EXPECT_EQ(s.fpu.fsw & (C0 | C2 | C3 | IE), C0 | C2 | C3);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xde, 0xd9 }), s, 2); // fcompp
    EXPECT_EQ(s.fpu.fsw & (C0 | C2 | C3 | IE), C0 | C2 | C3 | IE);
    EXPECT_EQ(s.fpu.ftw, 0);
    // FICOM m16int: 2 > 1.
    s = x87_mode(m);
    set_stack(s, { TWO });
    m.put32(DATA, 1);
    expect_completed(run(s, m, { 0xde, 0x17 }), s, 2); // ficoms (%rdi)
    EXPECT_EQ(s.fpu.fsw & (C0 | C2 | C3), 0);
}

TEST(X87, FxamClassifies)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    expect_completed(run(s, m, { 0xd9, 0xe5 }), s, 2); // empty
    EXPECT_EQ(s.fpu.fsw & (C0 | C1 | C2 | C3), C3 | C0);
    struct Case {
        F80 v;
        uint16_t cc;
    } const cases[] = {
        { ZERO, C3 }, { { 0xbfff, 0x8000000000000000ull }, C2 | C1 }, { { 0x7fff, 0x8000000000000000ull }, C2 | C0 },
        { INDEFINITE, C1 | C0 }, { { 0, 1 }, C3 | C2 }, { { 0x3fff, 0x4000000000000000ull }, 0 },
    };
    for (auto const& k : cases) {
        s = x87_mode(m);
        set_stack(s, { k.v });
        expect_completed(run(s, m, { 0xd9, 0xe5 }), s, 2);
        EXPECT_EQ(s.fpu.fsw & (C0 | C1 | C2 | C3), k.cc) << k.v;
    }
}

TEST(X87, SignSqrtExchangeFree)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { { 0x4001, 0x8000000000000000ull }, ONE }); // 4, 1
    expect_completed(run(s, m, { 0xd9, 0xfa }), s, 2); // fsqrt
    EXPECT_EQ(st(s, 0), TWO);
    EXPECT_EQ(s.fpu.fsw & PE, 0);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xd9, 0xc9 }), s, 2); // fxch %st(1)
    EXPECT_EQ(st(s, 0), ONE);
    EXPECT_EQ(st(s, 1), TWO);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xd9, 0xe0 }), s, 2); // fchs
    EXPECT_EQ(st(s, 0), (F80 { 0xbfff, 0x8000000000000000ull }));
    s.rip = CODE;
    expect_completed(run(s, m, { 0xd9, 0xfa }), s, 2); // fsqrt(-1): #IA, indefinite
    EXPECT_EQ(st(s, 0), INDEFINITE);
    EXPECT_EQ(s.fpu.fsw & IE, IE);
    s.rip = CODE;
    uint8_t const tags = s.fpu.ftw;
    expect_completed(run(s, m, { 0xdd, 0xc1 }), s, 2); // ffree %st(1)
    EXPECT_EQ(s.fpu.ftw, tags & ~(1u << ((top(s) + 1) & 7)));
    s.rip = CODE;
    expect_completed(run(s, m, { 0xd9, 0xf7 }), s, 2); // fincstp: TOP + 1, tags unchanged
    EXPECT_EQ(top(s), 7u);
    EXPECT_EQ(st(s, 7), INDEFINITE);
}

TEST(X87, FaultsLeaveTheStateUnchanged)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    s.cr0 |= CR0_TS;
    auto o = run(s, m, { 0xd9, 0xee });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_NM);
    s = x87_mode(m);
    s.cr0 |= CR0_EM;
    o = run(s, m, { 0xd9, 0xe8 });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_NM);
    // fstpl to an unmapped page: #PF, nothing popped, FIP unchanged.
    s = x87_mode(m);
    set_stack(s, { ONE });
    s.fpu.fip = 0x1234;
    s.reg(Gpr::Rdi) = 0x400000;
    CpuState const before = s;
    o = run(s, m, { 0xdd, 0x1f });
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted);
    EXPECT_EQ(o.exception->vector, VEC_PF);
    EXPECT_EQ(top(s), top(before));
    EXPECT_EQ(s.fpu.ftw, before.fpu.ftw);
    EXPECT_EQ(s.fpu.fip, 0x1234u);
}

TEST(X87, ProtectedModeLoadStoreRoundTrip)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = protected32();
    s.reg(Gpr::Rdi) = DATA;
    m.put64(DATA, 0x400921fb54442d18ull); // pi as a double
    expect_completed(run(s, m, { 0xdd, 0x07 }), s, 2); // fldl (%edi)
    EXPECT_EQ(st(s, 0), (F80 { 0x4000, 0xc90fdaa22168c000ull }));
    s.rip = CODE;
    s.reg(Gpr::Rdi) = DATA + 16;
    expect_completed(run(s, m, { 0xdd, 0x1f }), s, 2); // fstpl (%edi)
    EXPECT_EQ(m.get64(DATA + 16), 0x400921fb54442d18ull);
    EXPECT_EQ(s.fpu.ftw, 0);
}

TEST(X87, RndintScalePremFollowTheSdm)
{
    FakePhysicalMemory m(1 << 21);
    constexpr F80 TWO_AND_HALF { 0x4000, 0xa000000000000000ull };
    struct Case {
        unsigned rc;
        F80 result;
    } const cases[] = { { 0, TWO }, { 1, TWO }, { 2, THREE }, { 3, TWO } }; // 2.5: to even, down, up, toward zero
    for (auto const& k : cases) {
        CpuState s = x87_mode(m);
        s.fpu.fcw = with_rc_pc(k.rc, 3);
        set_stack(s, { TWO_AND_HALF });
        expect_completed(run(s, m, { 0xd9, 0xfc }), s, 2); // frndint
        EXPECT_EQ(st(s, 0), k.result) << "rc " << k.rc;
    }
    // fscale: 3 * 2^2 = 12; ST(1) stays.
    CpuState s = x87_mode(m);
    set_stack(s, { THREE, TWO });
    expect_completed(run(s, m, { 0xd9, 0xfd }), s, 2);
    EXPECT_EQ(st(s, 0), (F80 { 0x4002, 0xc000000000000000ull }));
    EXPECT_EQ(st(s, 1), TWO);
    // fprem: 7 rem 2 = 1, quotient 3 (Q2 Q1 Q0 = 0 1 1 -> C0 = 0, C3 = 1, C1 = 1), complete (C2 = 0).
    s = x87_mode(m);
    set_stack(s, { { 0x4001, 0xe000000000000000ull }, TWO });
    expect_completed(run(s, m, { 0xd9, 0xf8 }), s, 2);
    EXPECT_EQ(st(s, 0), ONE);
    EXPECT_EQ(s.fpu.fsw & (C0 | C1 | C2 | C3), C3 | C1);
}

TEST(X87, FcmovReadsEflags)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { ONE, TWO });
    s.rflags = 2;
    expect_completed(run(s, m, { 0xda, 0xc1 }), s, 2); // fcmovb %st(1): CF clear, no move
    EXPECT_EQ(st(s, 0), ONE);
    s.rip = CODE;
    s.rflags = 2 | RFLAGS_CF;
    expect_completed(run(s, m, { 0xda, 0xc1 }), s, 2); // CF set: ST(0) = ST(1)
    EXPECT_EQ(st(s, 0), TWO);
}

TEST(X87, Int64RoundTripAndFbstpReported)
{
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    m.put64(DATA, 0x8000000000000000ull); // INT64_MIN: exactly -2^63
    expect_completed(run(s, m, { 0xdf, 0x2f }), s, 2); // fildll (%rdi)
    EXPECT_EQ(st(s, 0), (F80 { 0xc03e, 0x8000000000000000ull }));
    s.rip = CODE;
    s.reg(Gpr::Rdi) = DATA + 8;
    expect_completed(run(s, m, { 0xdf, 0x3f }), s, 2); // fistpll 8(%rdi)
    EXPECT_EQ(m.get64(DATA + 8), 0x8000000000000000ull);
    EXPECT_EQ(s.fpu.fsw & IE, 0);
    // FBSTP is not emulated: reported, nothing changed.
    s = x87_mode(m);
    set_stack(s, { ONE });
    auto o = run(s, m, { 0xdf, 0x37 }); // fbstp (%rdi)
    EXPECT_EQ(o.kind, Outcome::Kind::Unsupported);
    EXPECT_EQ(s.rip, CODE);
    EXPECT_EQ(top(s), 7u);
}

TEST(X87, FnstenvFnsaveFrstorImages)
{
    // 32-bit protected format (64-bit mode uses it): FCW, FSW, full tag word, FIP, opcode << 16, FDP.
    FakePhysicalMemory m(1 << 21);
    CpuState s = x87_mode(m);
    set_stack(s, { ONE, ZERO, INDEFINITE }); // TOP 5: R5 valid (00), R6 zero (01), R7 special (10), others empty
    s.fpu.fcw = 0x0372;
    s.fpu.fsw |= 0x1 | 0x80 | 0x8000; // a pending unmasked #I: FNSTENV does not wait
    s.fpu.fip = 0x1111;
    s.fpu.fop = 0x5ee;
    s.fpu.fdp = 0x2222;
    uint16_t const fsw = s.fpu.fsw;
    auto o = run(s, m, { 0xd9, 0x37 }); // fnstenv (%rdi)
    expect_completed(o, s, 2);
    EXPECT_EQ(m.get16(DATA), 0x0372);
    EXPECT_EQ(m.get16(DATA + 4), fsw);
    EXPECT_EQ(s.fpu.fsw & (ES | B), 0); // nothing unmasked any more
    EXPECT_EQ(m.get16(DATA + 8), 0x93ff); // R7 10, R6 01, R5 00, R4-R0 11
    EXPECT_EQ(m.get32(DATA + 12), 0x1111u);
    EXPECT_EQ(m.get32(DATA + 16), 0x5eeu << 16);
    EXPECT_EQ(m.get32(DATA + 20), 0x2222u);
    EXPECT_EQ(s.fpu.fcw, 0x037f); // all exceptions masked afterwards
    EXPECT_EQ(s.fpu.fip, 0x1111u); // a control instruction: the pointers stay
    // FNSAVE: environment, ST(0)..ST(7), then FNINIT; FRSTOR brings everything back.
    s = x87_mode(m);
    set_stack(s, { ONE, THREE });
    s.fpu.fcw = 0x0b7f;
    CpuState const saved = s;
    expect_completed(run(s, m, { 0xdd, 0x37 }), s, 2); // fnsave (%rdi)
    EXPECT_EQ(s.fpu.fcw, 0x037f);
    EXPECT_EQ(s.fpu.ftw, 0);
    EXPECT_EQ(top(s), 0u);
    EXPECT_EQ(m.get64(DATA + 28), ONE.m);
    EXPECT_EQ(m.get16(DATA + 28 + 8), ONE.se);
    EXPECT_EQ(m.get64(DATA + 38), THREE.m);
    s.rip = CODE;
    expect_completed(run(s, m, { 0xdd, 0x27 }), s, 2); // frstor (%rdi)
    EXPECT_EQ(s.fpu.fcw, saved.fpu.fcw);
    EXPECT_EQ(s.fpu.fsw, saved.fpu.fsw);
    EXPECT_EQ(s.fpu.ftw, saved.fpu.ftw);
    EXPECT_EQ(st(s, 0), ONE);
    EXPECT_EQ(st(s, 1), THREE);
    // FLDENV of a real-mode 16-bit image (operand size 16 in real mode): FIP bits 19:16 beside the opcode.
    CpuState r = real_mode();
    r.reg(Gpr::Rdi) = DATA & 0xffff;
    r.segment(Seg::Ds).base = DATA & ~0xffffull;
    m.put(DATA, { 0x7f, 0x03, 0x00, 0x38, 0xff, 0x3f, 0x34, 0x12, 0xee, 0x51, 0x78, 0x56, 0x00, 0x20 });
    o = run(r, m, { 0xd9, 0x25 }); // fldenv (%di)
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(r.fpu.fcw, 0x037f);
    EXPECT_EQ(top(r), 7u);
    EXPECT_EQ(r.fpu.ftw, 0x80); // R7's tag 00, the others 11
    EXPECT_EQ(r.fpu.fip, 0x51234u);
    EXPECT_EQ(r.fpu.fop, 0x1ee);
    EXPECT_EQ(r.fpu.fdp, 0x25678u);
}

} // namespace
