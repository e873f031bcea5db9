// IRET/IRETD/IRETQ outside real mode against the Intel SDM vol. 2 page: the pops, the return code and stack segment
// checks in order, RFLAGS by CPL and IOPL, the return to an outer privilege level (SS:ESP popped, data segments
// nulled), 64-bit mode (SS:RSP always popped, a null SS below CPL 3), the accessed bits, and what is not emulated.
#include <gtest/gtest.h>

#include "emu/emulator.h"
#include "emu_fixture.h"
#include "fake_physical_memory.h"

using namespace hako::emu;
using namespace hako::emu::test;

namespace {

void push32(FakePhysicalMemory& m, uint64_t& sp, uint32_t v)
{
    sp -= 4;
    m.put32(sp, v);
}

// The 32-bit frame IRETD pops: EIP, CS, EFLAGS (then ESP, SS for an outer level), pushed in reverse.
void frame32(FakePhysicalMemory& m, CpuState& s, uint32_t eip, uint16_t cs, uint32_t eflags,
    std::optional<std::pair<uint32_t, uint16_t>> stack = std::nullopt)
{
    uint64_t sp = s.reg(Gpr::Rsp);
    if (stack) {
        push32(m, sp, stack->second);
        push32(m, sp, stack->first);
    }
    push32(m, sp, eflags);
    push32(m, sp, cs);
    push32(m, sp, eip);
    s.reg(Gpr::Rsp) = sp;
}

const std::vector<uint8_t> IRETD { 0xcf };
const std::vector<uint8_t> IRETQ { 0x48, 0xcf };
const std::vector<uint8_t> IRETW { 0x66, 0xcf };

void expect_fault(Outcome const& o, uint8_t vector, uint32_t code)
{
    ASSERT_EQ(o.kind, Outcome::Kind::Faulted) << o.mnemonic << ": " << o.detail;
    EXPECT_EQ(o.exception->vector, vector);
    EXPECT_EQ(o.exception->error_code, code);
    EXPECT_EQ(o.dirty, 0u);
}

} // namespace

TEST(Iret, SamePrivilege32)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    s.rflags = 2 | RFLAGS_IF;
    frame32(m, s, 0x12345, CODE32_K, 2 | RFLAGS_CF | RFLAGS_RF | (3u << 12));
    auto o = run(s, m, IRETD);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "iretd");
    EXPECT_EQ(s.rip, 0x12345u);
    EXPECT_EQ(s.reg(Gpr::Rsp), STACK);
    // CPL 0: IOPL and IF come from the stack, RF too (IRET does not clear it).
    EXPECT_EQ(s.rflags, 2u | RFLAGS_CF | RFLAGS_RF | (3u << 12));
    EXPECT_EQ(s.segment(Seg::Cs).selector, CODE32_K);
    EXPECT_TRUE(s.segment(Seg::Cs).db);
    EXPECT_EQ(s.segment(Seg::Ss).selector, DATA32_K); // SS unchanged
    EXPECT_TRUE(o.dirty & DIRTY_REGS);
    EXPECT_TRUE(o.dirty & DIRTY_SREGS);
    EXPECT_TRUE(o.dirty & DIRTY_NMI_UNMASK);
    // The code descriptor's accessed bit is set in the GDT.
    EXPECT_EQ((m.get64(GDT + 0x08) >> 40) & 1, 1u);
}

TEST(Iret, SixteenBitOperandSizeKeepsTheUpperFlagsAndEsp)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    s.rflags = 2 | RFLAGS_AC | RFLAGS_ID;
    uint64_t sp = STACK;
    sp -= 2, m.put(sp, { 0x01, 0x02 }); // FLAGS 0x0201: CF, IF
    sp -= 2, m.put(sp, { CODE16_K, 0 });
    sp -= 2, m.put(sp, { 0x34, 0x12 });
    s.reg(Gpr::Rsp) = sp;
    auto o = run(s, m, IRETW);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.rip, 0x1234u);
    EXPECT_EQ(s.rflags, 2u | RFLAGS_CF | RFLAGS_IF | RFLAGS_AC | RFLAGS_ID);
    EXPECT_EQ(s.reg(Gpr::Rsp), STACK);
    EXPECT_FALSE(s.segment(Seg::Cs).db);
}

TEST(Iret, ReturnToCpl3PopsTheStackAndNullsKernelDataSegments)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    s.segment(Seg::Fs).selector = DATA32_U; // a DPL-3 segment survives
    s.segment(Seg::Fs).dpl = 3;
    s.rflags = 2;
    frame32(m, s, 0x401000, CODE32_U, 2 | RFLAGS_IF | (3u << 12), std::make_pair(0x7ff000u, DATA32_U));
    auto o = run(s, m, IRETD);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.rip, 0x401000u);
    EXPECT_EQ(s.reg(Gpr::Rsp), 0x7ff000u);
    EXPECT_EQ(s.segment(Seg::Cs).selector, CODE32_U);
    EXPECT_EQ(s.segment(Seg::Ss).selector, DATA32_U);
    EXPECT_EQ(s.segment(Seg::Ss).dpl, 3);
    EXPECT_EQ(cpu_cpl(s), 3);
    EXPECT_TRUE(s.segment(Seg::Ds).unusable);
    EXPECT_EQ(s.segment(Seg::Ds).selector, 0);
    EXPECT_TRUE(s.segment(Seg::Es).unusable);
    EXPECT_FALSE(s.segment(Seg::Fs).unusable);
    EXPECT_EQ(s.rflags, 2u | RFLAGS_IF | (3u << 12));
}

TEST(Iret, AtCpl3IoplAndIfStayUnlessAllowed)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    s.segment(Seg::Cs) = s.segment(Seg::Ss);
    s.segment(Seg::Cs).type = 0xb;
    s.segment(Seg::Cs).selector = CODE32_U;
    s.segment(Seg::Cs).dpl = 3;
    s.segment(Seg::Ss).selector = DATA32_U;
    s.segment(Seg::Ss).dpl = 3;
    s.rflags = 2; // IOPL 0 < CPL 3
    frame32(m, s, 0x1000, CODE32_U, 2 | RFLAGS_IF | (3u << 12) | RFLAGS_ZF);
    auto o = run(s, m, IRETD);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(s.rflags, 2u | RFLAGS_ZF);
}

TEST(Iret, ReturnCodeSegmentChecks)
{
    struct Case {
        uint16_t cs;
        uint8_t vector;
        uint32_t code;
    };
    for (Case const& c : { Case { 0, VEC_GP, 0 }, Case { 3, VEC_GP, 0 }, Case { 0x400, VEC_GP, 0x400 },
             Case { DATA_AS_CODE, VEC_GP, DATA_AS_CODE }, Case { CODE32_K | 3, VEC_GP, CODE32_K },
             Case { NOT_PRESENT, VEC_NP, NOT_PRESENT }, Case { CODE32_K | 4, VEC_GP, CODE32_K | 4 } }) {
        SCOPED_TRACE(c.cs);
        FakePhysicalMemory m(4 << 20);
        CpuState s = pm32(m);
        frame32(m, s, 0x1000, c.cs, 2);
        CpuState const before = s;
        expect_fault(run(s, m, IRETD), c.vector, c.code);
        EXPECT_EQ(s.rip, CODE);
        EXPECT_EQ(s.reg(Gpr::Rsp), before.reg(Gpr::Rsp));
        EXPECT_EQ(s.segment(Seg::Cs).selector, CODE32_K);
    }
}

TEST(Iret, ConformingCodeAndEipBeyondTheLimit)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    frame32(m, s, 0x2000, CONFORMING, 2);
    ASSERT_EQ(run(s, m, IRETD).kind, Outcome::Kind::Completed);
    EXPECT_TRUE(s.segment(Seg::Cs).type & 4);

    CpuState t = pm32(m);
    frame32(m, t, 0x1001, SMALL_CODE, 2);
    expect_fault(run(t, m, IRETD), VEC_GP, 0);
    t.rip = CODE;
    t.reg(Gpr::Rsp) = STACK;
    frame32(m, t, 0x1000, SMALL_CODE, 2);
    EXPECT_EQ(run(t, m, IRETD).kind, Outcome::Kind::Completed);
}

TEST(Iret, OuterStackSegmentChecks)
{
    struct Case {
        uint16_t ss;
        uint8_t vector;
        uint32_t code;
    };
    for (Case const& c : { Case { 0 | 3, VEC_GP, 0 }, Case { DATA32_K, VEC_GP, DATA32_K },
             Case { CODE32_U, VEC_GP, CODE32_U & 0xfffc } }) {
        SCOPED_TRACE(c.ss);
        FakePhysicalMemory m(4 << 20);
        CpuState s = pm32(m);
        frame32(m, s, 0x1000, CODE32_U, 2, std::make_pair(0x8000u, c.ss));
        expect_fault(run(s, m, IRETD), c.vector, c.code);
        EXPECT_EQ(cpu_cpl(s), 0);
    }
}

TEST(Iret, StackBeyondSsLimitRaisesSs)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    frame32(m, s, 0x1000, CODE32_K, 2);
    s.segment(Seg::Ss).limit = static_cast<uint32_t>(s.reg(Gpr::Rsp) + 4); // EIP and CS fit, EFLAGS does not
    auto o = run(s, m, IRETD);
    expect_fault(o, VEC_SS, 0);
}

TEST(Iret, Iretq64BitWithNullSsAtCpl0)
{
    FakePhysicalMemory m(4 << 20);
    write_gdt(m);
    CpuState s = long_mode(m);
    s.gdt = { GDT, 0x5f };
    s.segment(Seg::Cs).selector = CODE64_K;
    s.reg(Gpr::Rsp) = STACK;
    uint64_t sp = STACK;
    for (uint64_t v : { uint64_t { 0 }, uint64_t { 0x28000 }, uint64_t { 2 | RFLAGS_IF }, uint64_t { CODE64_K },
             uint64_t { 0xffffffff80001000ull } }) {
        sp -= 8;
        m.put64(sp, v);
    }
    s.reg(Gpr::Rsp) = sp;
    auto o = run(s, m, IRETQ);
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_STREQ(o.mnemonic, "iretq");
    EXPECT_EQ(s.rip, 0xffffffff80001000ull);
    EXPECT_EQ(s.reg(Gpr::Rsp), 0x28000u);
    EXPECT_EQ(s.rflags, 2u | RFLAGS_IF);
    EXPECT_TRUE(s.segment(Seg::Ss).unusable);
    EXPECT_EQ(cpu_cpl(s), 0);
    EXPECT_EQ(cpu_mode(s), CpuMode::Long64);
}

TEST(Iret, Iretq64BitChecksCanonicalRipAndNullSsAtCpl3)
{
    for (int variant = 0; variant < 2; ++variant) {
        FakePhysicalMemory m(4 << 20);
        write_gdt(m);
        CpuState s = long_mode(m);
        s.gdt = { GDT, 0x5f };
        s.segment(Seg::Cs).selector = CODE64_K;
        uint64_t sp = STACK;
        uint64_t const rip = variant == 0 ? 0x0000800000000000ull : 0x1000;
        uint16_t const cs = variant == 0 ? CODE64_K : CODE64_U;
        for (uint64_t v : { uint64_t { 0 } /* null SS */, uint64_t { 0x28000 }, uint64_t { 2 }, uint64_t { cs }, rip }) {
            sp -= 8;
            m.put64(sp, v);
        }
        s.reg(Gpr::Rsp) = sp;
        expect_fault(run(s, m, IRETQ), VEC_GP, 0);
    }
}

TEST(Iret, TaskReturnAndVirtual8086AreNotEmulated)
{
    FakePhysicalMemory m(4 << 20);
    CpuState s = pm32(m);
    s.rflags = 2 | RFLAGS_NT;
    frame32(m, s, 0x1000, CODE32_K, 2);
    auto o = run(s, m, IRETD);
    EXPECT_EQ(o.kind, Outcome::Kind::Unsupported);
    EXPECT_NE(o.detail.find("NT"), std::string::npos);

    CpuState t = pm32(m);
    frame32(m, t, 0x1000, CODE32_K, 2 | RFLAGS_VM);
    auto v = run(t, m, IRETD);
    EXPECT_EQ(v.kind, Outcome::Kind::Unsupported);
    EXPECT_NE(v.detail.find("virtual-8086"), std::string::npos);

    // In IA-32e mode NT set is #GP(0).
    FakePhysicalMemory m64(4 << 20);
    write_gdt(m64);
    CpuState l = long_mode(m64);
    l.gdt = { GDT, 0x5f };
    l.rflags = 2 | RFLAGS_NT;
    expect_fault(run(l, m64, IRETQ), VEC_GP, 0);
}
