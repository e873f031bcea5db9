// The XSAVE family of the userspace emulator against Intel SDM vol. 1 ch. 13 (XSAVE area layout, standard and
// compacted formats, init optimization, XRSTOR's header checks) and the vol. 2 pages of XSAVE, XSAVEOPT, XSAVEC,
// XSAVES, XRSTOR and XRSTORS (their #UD, #NM, #GP, #PF cases).
#include <gtest/gtest.h>

#include "emu/emulator.h"
#include "emu/xsave.h"
#include "emu_fixture.h"
#include "fake_physical_memory.h"

using namespace hako::emu;
using hako::emu::test::FakePhysicalMemory;
using namespace hako::emu::test;

namespace {

constexpr uint64_t AREA = DATA; // 64-byte aligned

// Instruction bytes, all with [rdi] as the operand.
const std::vector<uint8_t> XSAVE64 { 0x48, 0x0f, 0xae, 0x27 };
const std::vector<uint8_t> XSAVE { 0x0f, 0xae, 0x27 };
const std::vector<uint8_t> XSAVEOPT64 { 0x48, 0x0f, 0xae, 0x37 };
const std::vector<uint8_t> XSAVEC64 { 0x48, 0x0f, 0xc7, 0x27 };
const std::vector<uint8_t> XSAVES64 { 0x48, 0x0f, 0xc7, 0x2f };
const std::vector<uint8_t> XRSTOR64 { 0x48, 0x0f, 0xae, 0x2f };
const std::vector<uint8_t> XRSTOR { 0x0f, 0xae, 0x2f };
const std::vector<uint8_t> XRSTORS64 { 0x48, 0x0f, 0xc7, 0x1f };

// CPUID leaf 0xD as an AVX processor gives it (component 2 at 576, 256 bytes), plus two made-up components to
// exercise the compacted format: 3 (8 bytes at 832) and 4 (64 bytes at 896, 64-byte aligned when compacted).
XsaveLayout test_layout()
{
    XsaveLayout l;
    l.component[2] = { 576, 256, false, false };
    l.component[3] = { 832, 8, false, false };
    l.component[4] = { 896, 64, true, false };
    l.features = 0xf;
    return l;
}

void put_image64(CpuState& s, size_t off, uint64_t v)
{
    for (size_t i = 0; i < 8; ++i)
        s.xsave[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t image64(CpuState const& s, size_t off)
{
    uint64_t v = 0;
    for (size_t i = 8; i-- > 0;)
        v = (v << 8) | s.xsave[off + i];
    return v;
}

// 64-bit kernel mode with CR4.OSXSAVE and CR0.MP, XCR0 = x87|SSE|AVX, identity-mapped first 2 MiB, RDI = AREA,
// EDX:EAX = all ones.
CpuState xsave_mode(FakePhysicalMemory& m)
{
    CpuState s = long_mode(m);
    s.cr0 |= CR0_MP;
    s.cr4 |= CR4_OSFXSR | CR4_OSXSAVE;
    s.xcr0 = 7;
    s.xsave_layout = test_layout();
    s.reg(Gpr::Rdi) = AREA;
    s.reg(Gpr::Rax) = 0xffffffff;
    s.reg(Gpr::Rdx) = 0xffffffff;
    return s;
}

// A state with every XCR0 component in use and recognisable values.
void fill_state(CpuState& s)
{
    s.fpu.fcw = 0x027f;
    s.fpu.fsw = 0x3800;
    s.fpu.ftw = 0x80;
    s.fpu.fop = 0x5d9;
    s.fpu.fip = 0xffffffff81001234;
    s.fpu.fdp = 0xffff888000005678;
    for (size_t r = 0; r < 8; ++r)
        for (size_t b = 0; b < 10; ++b)
            s.fpu.st[r][b] = static_cast<uint8_t>(0x10 * r + b);
    s.fpu.mxcsr = 0x9fc0;
    for (size_t i = 0; i < 256; ++i)
        s.xsave[160 + i] = static_cast<uint8_t>(i ^ 0xa5); // XMM0-15
    for (size_t i = 0; i < 256; ++i)
        s.xsave[576 + i] = static_cast<uint8_t>(i ^ 0x3c); // YMM0-15 upper halves
    for (size_t i = 0; i < 8; ++i)
        s.xsave[832 + i] = static_cast<uint8_t>(0xc0 + i);
    for (size_t i = 0; i < 64; ++i)
        s.xsave[896 + i] = static_cast<uint8_t>(0x40 + i);
    put_image64(s, 512, s.xcr0);
}


void expect_fault(Outcome const& o, uint8_t vector, std::optional<uint32_t> code = 0u)
{
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted) << o.detail;
    ASSERT_TRUE(o.exception);
    EXPECT_EQ(o.exception->vector, vector);
    EXPECT_EQ(o.exception->error_code, code);
    EXPECT_EQ(o.dirty, 0u);
}

bool same_xstate(CpuState const& a, CpuState const& b)
{
    return a.fpu.fcw == b.fpu.fcw && a.fpu.fsw == b.fpu.fsw && a.fpu.ftw == b.fpu.ftw && a.fpu.fop == b.fpu.fop
        && a.fpu.fip == b.fpu.fip && a.fpu.fdp == b.fpu.fdp && a.fpu.st == b.fpu.st && a.fpu.mxcsr == b.fpu.mxcsr
        && a.xsave == b.xsave;
}

/// Places `code` at CODE and emulates it from there (RIP reset, so one state can run several instructions in turn).
Outcome run_from_code(CpuState& s, FakePhysicalMemory& m, std::vector<uint8_t> const& code)
{
    s.rip = CODE;
    return run(s, m, code);
}

} // namespace

TEST(Xsave, StandardFormatLayoutAndRoundTrip)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    fill_state(s);
    m.put64(AREA + 520, 0);
    m.put64(AREA + 528, 0x5555); // header bytes XSAVE does not write
    m.put64(AREA + 512, 0x80);   // XSTATE_BV bit outside RFBM: kept
    auto o = run_from_code(s, m, XSAVE64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "xsave64");
    EXPECT_EQ(s.rip, CODE + 4);
    EXPECT_EQ(o.dirty, DIRTY_REGS);
    EXPECT_EQ(m.get16(AREA + 0), 0x027f);
    EXPECT_EQ(m.get16(AREA + 2), 0x3800);
    EXPECT_EQ(m.ram[AREA + 4], 0x80);
    EXPECT_EQ(m.get16(AREA + 6), 0x5d9);
    EXPECT_EQ(m.get64(AREA + 8), 0xffffffff81001234);
    EXPECT_EQ(m.get64(AREA + 16), 0xffff888000005678);
    EXPECT_EQ(m.get32(AREA + 24), 0x9fc0u);
    EXPECT_EQ(m.get32(AREA + 28), 0xffffu); // MXCSR_MASK
    EXPECT_EQ(m.ram[AREA + 32 + 16 * 3 + 2], 0x32);
    EXPECT_EQ(m.ram[AREA + 160 + 255], 255 ^ 0xa5);
    EXPECT_EQ(m.ram[AREA + 576 + 100], 100 ^ 0x3c);
    EXPECT_EQ(m.get64(AREA + 512), 0x87u);
    EXPECT_EQ(m.get64(AREA + 528), 0x5555u);
    EXPECT_EQ(m.ram[AREA + 832], 0); // component 3 is not in XCR0: not written

    CpuState saved = s;
    m.put64(AREA + 512, 7);
    m.put64(AREA + 528, 0);
    CpuState t = xsave_mode(m); // everything in its initial configuration
    o = run_from_code(t, m, XRSTOR64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(o.dirty, DIRTY_REGS | DIRTY_FPU | DIRTY_XSTATE);
    t.rip = saved.rip;
    for (size_t i = 832; i < 960; ++i)
        t.xsave[i] = saved.xsave[i]; // outside XCR0: not restored
    EXPECT_TRUE(same_xstate(saved, t));
}

TEST(Xsave, XrstorInitialisesComponentsWithXstateBvClear)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    fill_state(s);
    ASSERT_EQ(run_from_code(s, m, XSAVE64).kind, Outcome::Kind::Completed);
    CpuState t = xsave_mode(m);
    fill_state(t);
    t.fpu.mxcsr = 0x1f80;
    m.put64(AREA + 512, 0); // nothing saved: every requested component gets its initial value
    auto o = run_from_code(t, m, XRSTOR64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(t.fpu.fcw, 0x037f);
    EXPECT_EQ(t.fpu.fsw, 0);
    EXPECT_EQ(t.fpu.ftw, 0);
    EXPECT_EQ(t.fpu.fip, 0u);
    EXPECT_EQ(t.fpu.st[5][3], 0);
    for (size_t i = 160; i < 416; ++i)
        ASSERT_EQ(t.xsave[i], 0) << i;
    for (size_t i = 576; i < 832; ++i)
        ASSERT_EQ(t.xsave[i], 0) << i;
    EXPECT_EQ(t.fpu.mxcsr, 0x9fc0u); // the standard form loads MXCSR with SSE or AVX requested, whatever XSTATE_BV
    EXPECT_EQ(image64(t, 512) & 7, 0u); // XINUSE
}

TEST(Xsave, RfbmLimitsWhatXrstorTouches)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    fill_state(s);
    ASSERT_EQ(run_from_code(s, m, XSAVE64).kind, Outcome::Kind::Completed);
    CpuState t = xsave_mode(m);
    t.reg(Gpr::Rax) = 1; // x87 only
    t.reg(Gpr::Rdx) = 0;
    auto o = run_from_code(t, m, XRSTOR64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(t.fpu.fcw, 0x027f);
    EXPECT_EQ(t.fpu.mxcsr, 0x1f80u); // neither SSE nor AVX requested
    EXPECT_EQ(t.xsave[160], 0);
    EXPECT_EQ(t.xsave[576], 0);
    EXPECT_EQ(image64(t, 512), 1u);

    // AVX alone: the standard form still loads MXCSR.
    CpuState u = xsave_mode(m);
    u.reg(Gpr::Rax) = 4;
    ASSERT_EQ(run_from_code(u, m, XRSTOR64).kind, Outcome::Kind::Completed);
    EXPECT_EQ(u.fpu.mxcsr, 0x9fc0u);
    EXPECT_EQ(u.xsave[160], 0);
    EXPECT_EQ(u.xsave[577], 1 ^ 0x3c);
    EXPECT_EQ(u.fpu.fcw, 0x037f);
}

TEST(Xsave, XrstorHeaderAndMxcsrChecksRaiseGpAndChangeNothing)
{
    struct Case {
        char const* what;
        size_t offset;
        uint64_t value;
    };
    for (Case c : { Case { "XSTATE_BV bit outside XCR0", 512, 0xf }, Case { "XCOMP_BV without bit 63", 520, 4 },
             Case { "header bytes 16-23", 528, 1 }, Case { "MXCSR reserved bits", 24, 0x11f80 } }) {
        FakePhysicalMemory m(4 << 20);
        CpuState s = xsave_mode(m);
        fill_state(s);
        ASSERT_EQ(run_from_code(s, m, XSAVE64).kind, Outcome::Kind::Completed);
        m.put64(AREA + c.offset, c.value);
        CpuState t = xsave_mode(m);
        CpuState const before = t;
        SCOPED_TRACE(c.what);
        expect_fault(run_from_code(t, m, XRSTOR64), VEC_GP);
        EXPECT_TRUE(same_xstate(before, t));
        EXPECT_EQ(t.rip, CODE);
    }
    // Bytes 24-63 of the header are not checked by the standard form.
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    ASSERT_EQ(run_from_code(s, m, XSAVE64).kind, Outcome::Kind::Completed);
    m.put64(AREA + 512 + 40, ~0ull);
    EXPECT_EQ(run_from_code(s, m, XRSTOR64).kind, Outcome::Kind::Completed);
}

TEST(Xsave, CompactedFormatLayoutAndRoundTrip)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    s.xcr0 = 0x1f;
    fill_state(s);
    s.reg(Gpr::Rax) = 0x1b; // x87, SSE, 3, 4: component 3 at 576, component 4 aligned up to 640
    m.put64(AREA + 560, 0x7777);
    auto o = run_from_code(s, m, XSAVEC64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get64(AREA + 512), 0x1bu);
    EXPECT_EQ(m.get64(AREA + 520), 0x800000000000001bu);
    EXPECT_EQ(m.get64(AREA + 560), 0u); // the rest of the header is written as zero
    EXPECT_EQ(m.ram[AREA + 576], 0xc0);
    EXPECT_EQ(m.ram[AREA + 583], 0xc7);
    EXPECT_EQ(m.ram[AREA + 640], 0x40);
    EXPECT_EQ(m.ram[AREA + 703], 0x7f);
    EXPECT_EQ(m.get32(AREA + 24), 0x9fc0u);

    CpuState t = xsave_mode(m);
    t.xcr0 = 0x1f;
    o = run_from_code(t, m, XRSTOR64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(t.fpu.fcw, 0x027f);
    EXPECT_EQ(t.fpu.mxcsr, 0x9fc0u);
    EXPECT_EQ(t.xsave[160 + 17], 17 ^ 0xa5);
    EXPECT_EQ(t.xsave[832 + 7], 0xc7);
    EXPECT_EQ(t.xsave[896 + 63], 0x7f);
    EXPECT_EQ(t.xsave[576], 0); // AVX: requested (EDX:EAX all ones), XSTATE_BV[2] = 0: initialised
    EXPECT_EQ(image64(t, 512), 0x1bu);
}

TEST(Xsave, XsavecSkipsComponentsInTheirInitialConfiguration)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    s.xcr0 = 0x1f;
    fill_state(s);
    put_image64(s, 512, 0x17); // component 3 not in use
    for (size_t i = 832; i < 840; ++i)
        s.xsave[i] = 0;
    s.fpu = X87State {};                // x87 in its initial configuration
    for (size_t i = 160; i < 416; ++i)  // SSE too (MXCSR = 1F80H)
        s.xsave[i] = 0;
    put_image64(s, 512, 0x14);
    for (size_t i = 0; i < 1024; ++i)
        m.ram[AREA + i] = 0xee;
    auto o = run_from_code(s, m, XSAVEC64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get64(AREA + 512), 0x14u);
    EXPECT_EQ(m.get64(AREA + 520), 0x800000000000001fu);
    EXPECT_EQ(m.ram[AREA + 0], 0xee);   // x87 not written
    EXPECT_EQ(m.ram[AREA + 24], 0xee);  // nor MXCSR
    EXPECT_EQ(m.ram[AREA + 160], 0xee); // nor the XMM registers
    EXPECT_EQ(m.ram[AREA + 576], 0x3c); // AVX at 576
    EXPECT_EQ(m.ram[AREA + 832], 0xee); // component 3 (space kept at 832) not written
    EXPECT_EQ(m.ram[AREA + 896], 0x40); // component 4 at 896 (840 aligned up)

    // XRSTOR of that area: SSE initialised, MXCSR set to 1F80H by the compacted form.
    CpuState t = xsave_mode(m);
    t.xcr0 = 0x1f;
    t.fpu.mxcsr = 0x1f00;
    t.xsave[160] = 9;
    ASSERT_EQ(run_from_code(t, m, XRSTOR64).kind, Outcome::Kind::Completed);
    EXPECT_EQ(t.fpu.mxcsr, 0x1f80u);
    EXPECT_EQ(t.xsave[160], 0);
    EXPECT_EQ(t.xsave[576], 0x3c);
    EXPECT_EQ(t.xsave[896 + 1], 0x41);
}

TEST(Xsave, XsaveoptSkipsComponentsNotInUse)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    fill_state(s);
    put_image64(s, 512, 3); // AVX not in use
    for (size_t i = 576; i < 832; ++i)
        s.xsave[i] = 0;
    for (size_t i = 0; i < 1024; ++i)
        m.ram[AREA + i] = 0xee;
    m.put64(AREA + 512, 0xff);
    auto o = run_from_code(s, m, XSAVEOPT64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get64(AREA + 512), 0xfbu); // bits 0-2 from XINUSE, the others kept
    EXPECT_EQ(m.ram[AREA + 576], 0xee);
    EXPECT_EQ(m.get16(AREA + 0), 0x027f);
}

TEST(Xsave, CompactedXrstorChecks)
{
    struct Case {
        char const* what;
        uint64_t xstate_bv, xcomp_bv, reserved;
    };
    for (Case c : { Case { "XSTATE_BV outside XCOMP_BV", 7, (1ull << 63) | 3, 0 },
             Case { "XCOMP_BV outside XCR0", 3, (1ull << 63) | 0x23, 0 },
             Case { "header bytes 16-63", 3, (1ull << 63) | 3, 1 } }) {
        FakePhysicalMemory m(4 << 20);
        CpuState s = xsave_mode(m);
        m.put64(AREA + 512, c.xstate_bv);
        m.put64(AREA + 520, c.xcomp_bv);
        m.put64(AREA + 568, c.reserved);
        m.put32(AREA + 24, 0x1f80);
        CpuState const before = s;
        SCOPED_TRACE(c.what);
        expect_fault(run_from_code(s, m, XRSTOR64), VEC_GP);
        EXPECT_TRUE(same_xstate(before, s));
    }
}

TEST(Xsave, XsavesAndXrstorsAreSupervisorOnlyAndCompacted)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    fill_state(s);
    auto o = run_from_code(s, m, XSAVES64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(m.get64(AREA + 520), 0x8000000000000007u);
    CpuState t = xsave_mode(m);
    o = run_from_code(t, m, XRSTORS64);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(t.fpu.fdp, 0xffff888000005678u);
    EXPECT_EQ(t.xsave[576 + 255], 255 ^ 0x3c);

    // XRSTORS needs the compacted format.
    m.put64(AREA + 520, 0);
    ASSERT_EQ(run_from_code(s, m, XSAVE64).kind, Outcome::Kind::Completed);
    CpuState u = xsave_mode(m);
    expect_fault(run_from_code(u, m, XRSTORS64), VEC_GP);

    // CPL 3 (the code page and its tables user-accessible).
    for (auto const& code : { XSAVES64, XRSTORS64 }) {
        CpuState v = xsave_mode(m);
        m.put64(0x1000, 0x2000 | 7);
        m.put64(0x2000, 0x3000 | 7);
        m.put64(0x3000, PT | 7);
        m.put64(PT + (CODE >> 12) * 8, CODE | 7);
        v.segment(Seg::Cs).dpl = 3;
        v.segment(Seg::Ss).dpl = 3;
        expect_fault(run_from_code(v, m, code), VEC_GP);
    }
    // Supervisor components are not in KVM's image: reported, not guessed.
    CpuState w = xsave_mode(m);
    w.xss = 1ull << 11;
    o = run_from_code(w, m, XSAVES64);
    EXPECT_EQ(o.kind, Outcome::Kind::Unsupported);
}

TEST(Xsave, UdWithoutOsxsaveNmWithTsGpWhenMisaligned)
{
    for (auto const& code : { XSAVE64, XRSTOR64, XSAVEOPT64, XSAVEC64, XSAVES64, XRSTORS64 }) {
        FakePhysicalMemory m(4 << 20);
        CpuState s = xsave_mode(m);
        s.cr4 &= ~CR4_OSXSAVE;
        expect_fault(run_from_code(s, m, code), VEC_UD, std::nullopt);
        s = xsave_mode(m);
        s.cr0 |= CR0_TS;
        expect_fault(run_from_code(s, m, code), VEC_NM, std::nullopt);
        s = xsave_mode(m);
        s.reg(Gpr::Rdi) = AREA + 16; // 16-byte aligned is not enough
        expect_fault(run_from_code(s, m, code), VEC_GP);
        s = xsave_mode(m);
        s.reg(Gpr::Rdi) = 0x0000800000000000; // non-canonical
        expect_fault(run_from_code(s, m, code), VEC_GP);
    }
    // LOCK is undefined.
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    expect_fault(run_from_code(s, m, { 0xf0, 0x48, 0x0f, 0xae, 0x27 }), VEC_UD, std::nullopt);
}

TEST(Xsave, PageFaultsLeaveMemoryAndStateUnchanged)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    fill_state(s);
    uint64_t const area = 0x30000 - 512; // the area's header and AVX state lie on the next page
    m.put64(PT + 0x30 * 8, 0);           // not present
    s.reg(Gpr::Rdi) = area;
    auto o = run_from_code(s, m, XSAVE64);
    expect_fault(o, VEC_PF, PF_W);
    EXPECT_EQ(o.exception->cr2, 0x30000u);
    EXPECT_EQ(m.get16(area), 0); // nothing written on the first page either

    // Read-only page: XSAVE needs write access.
    m.put64(PT + 0x30 * 8, 0x30000 | 1);
    o = run_from_code(s, m, XSAVE64);
    expect_fault(o, VEC_PF, PF_P | PF_W);
    EXPECT_EQ(m.get16(area), 0);

    // XRSTOR reads: an area crossing into a not-present page faults before anything is loaded.
    CpuState t = xsave_mode(m);
    m.put64(PT + 0x30 * 8, 0);
    t.reg(Gpr::Rdi) = area;
    CpuState const before = t;
    o = run_from_code(t, m, XRSTOR64);
    expect_fault(o, VEC_PF, 0u);
    EXPECT_TRUE(same_xstate(before, t));
}

TEST(Xsave, ThirtyTwoBitModeSavesXmm0To7And32BitPointers)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s;
    s.cr0 = CR0_PE | (1u << 4);
    s.cr4 = CR4_OSFXSR | CR4_OSXSAVE;
    for (auto& seg : s.seg)
        seg.base = 0, seg.limit = 0xffffffff, seg.type = 3, seg.db = true, seg.g = true;
    s.segment(Seg::Cs).type = 0xb;
    s.rip = CODE;
    s.xcr0 = 7;
    s.xsave_layout = test_layout();
    s.reg(Gpr::Rdi) = AREA;
    s.reg(Gpr::Rax) = 7;
    fill_state(s);
    for (size_t i = 0; i < 1024; ++i)
        m.ram[AREA + i] = 0xee;
    for (size_t i = 512; i < 576; ++i)
        m.ram[AREA + i] = 0; // a header XRSTOR accepts
    auto o = run_from_code(s, m, XSAVE);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail << " " << (o.exception ? int { o.exception->vector } : -1);
    EXPECT_EQ(m.get32(AREA + 8), 0x81001234u); // FIP[31:0]
    EXPECT_EQ(m.get16(AREA + 12), 0);          // FCS
    EXPECT_EQ(m.get32(AREA + 16), 0x00005678u);
    EXPECT_EQ(m.ram[AREA + 160 + 127], 127 ^ 0xa5); // XMM7
    EXPECT_EQ(m.ram[AREA + 160 + 128], 0xee);        // XMM8 is not there
    EXPECT_EQ(m.ram[AREA + 576 + 127], 127 ^ 0x3c);
    EXPECT_EQ(m.ram[AREA + 576 + 128], 0xee);

    CpuState t = s;
    t.fpu = X87State {};
    o = run_from_code(t, m, XRSTOR);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(t.fpu.fip, 0x81001234u);
    EXPECT_EQ(t.fpu.fcw, 0x027f);
    EXPECT_EQ(t.xsave[160 + 128], s.xsave[160 + 128]); // XMM8-15 untouched
}

TEST(Xsave, SegmentLimitCoversTheWholeArea)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s;
    s.cr0 = CR0_PE | (1u << 4);
    s.cr4 = CR4_OSFXSR | CR4_OSXSAVE;
    for (auto& seg : s.seg)
        seg.base = 0, seg.limit = 0xffffffff, seg.type = 3, seg.db = true, seg.g = true;
    s.segment(Seg::Cs).type = 0xb;
    s.segment(Seg::Ds).limit = AREA + 700; // covers the legacy region and header, not all of AVX
    s.rip = CODE;
    s.xcr0 = 7;
    s.xsave_layout = test_layout();
    s.reg(Gpr::Rdi) = AREA;
    s.reg(Gpr::Rax) = 7;
    expect_fault(run_from_code(s, m, XSAVE), VEC_GP);
    EXPECT_EQ(m.get64(AREA + 512), 0u);
    s.reg(Gpr::Rax) = 3;
    EXPECT_EQ(run_from_code(s, m, XSAVE).kind, Outcome::Kind::Completed);
}

TEST(Xsave, XgetbvReadsXcr0AndXinuse)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = xsave_mode(m);
    s.reg(Gpr::Rcx) = 0;
    s.reg(Gpr::Rax) = s.reg(Gpr::Rdx) = ~0ull;
    auto o = run_from_code(s, m, { 0x0f, 0x01, 0xd0 });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "xgetbv");
    EXPECT_EQ(s.reg(Gpr::Rax), 7u);
    EXPECT_EQ(s.reg(Gpr::Rdx), 0u);
    EXPECT_EQ(s.rip, CODE + 3);

    s.reg(Gpr::Rcx) = 1; // XINUSE: x87 in use (FCW changed), SSE and AVX not
    s.fpu.fcw = 0x027f;
    ASSERT_EQ(run_from_code(s, m, { 0x0f, 0x01, 0xd0 }).kind, Outcome::Kind::Completed);
    EXPECT_EQ(s.reg(Gpr::Rax), 1u);
    s.xsave_layout.features = 0; // without CPUID.(0xD,1):EAX[2], XCR 1 does not exist
    expect_fault(run_from_code(s, m, { 0x0f, 0x01, 0xd0 }), VEC_GP);
    s.reg(Gpr::Rcx) = 2;
    s.xsave_layout.features = 0xf;
    expect_fault(run_from_code(s, m, { 0x0f, 0x01, 0xd0 }), VEC_GP);
    s.cr4 &= ~CR4_OSXSAVE;
    s.reg(Gpr::Rcx) = 0;
    expect_fault(run_from_code(s, m, { 0x0f, 0x01, 0xd0 }), VEC_UD, std::nullopt);
}
