// Event delivery through the IDT in legacy protected mode against the Intel SDM vol. 3A 6.12-6.13: the frame (with and
// without an error code, 16- and 32-bit gates and stacks), interrupt versus trap gates, the gate and code segment
// checks in order with EXT in their error codes, the state left unchanged on a fault, a round trip through IRETD,
// and what is not delivered here.
#include <gtest/gtest.h>

#include "emu/emulator.h"
#include "emu/interrupt.h"
#include "emu_fixture.h"
#include "fake_physical_memory.h"

using namespace hako::emu;
using namespace hako::emu::test;

namespace {

constexpr uint64_t IDT = 0x9000;
constexpr uint8_t INT32 = 0x8e, TRAP32 = 0x8f, INT16 = 0x86, TASK = 0x85, CALL32 = 0x8c;

void set_gate(FakePhysicalMemory& m, uint8_t vector, uint32_t offset, uint16_t selector, uint8_t access)
{
    m.put64(IDT + vector * 8u,
        (offset & 0xffffull) | uint64_t(selector) << 16 | uint64_t(access) << 40 | uint64_t(offset >> 16) << 48);
}

struct Fixture {
    FakePhysicalMemory m { 4 << 20 };
    CpuState s = pm32(m);
    Fixture()
    {
        s.idt = { IDT, 0x7ff };
        s.rip = 0x1234;
        s.rflags = 2 | RFLAGS_IF | RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_CF;
    }
    std::variant<uint32_t, Exception, Unsupported> deliver(uint8_t vector, std::optional<uint32_t> code = {},
        bool external = true)
    {
        LinearMemory mem(s, m);
        return deliver_event(s, mem, Event { vector, code, external });
    }
};

void expect_fault(Fixture& f, std::variant<uint32_t, Exception, Unsupported> const& r, uint8_t vector, uint32_t code)
{
    auto const* e = std::get_if<Exception>(&r);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->vector, vector);
    EXPECT_EQ(e->error_code, code);
    EXPECT_EQ(f.s.rip, 0x1234u) << "state unchanged on a fault";
    EXPECT_EQ(f.s.reg(Gpr::Rsp), STACK);
    EXPECT_EQ(f.s.segment(Seg::Cs).selector, CODE32_K);
}

} // namespace

TEST(InterruptDelivery, InterruptGate32SamePrivilege)
{
    Fixture f;
    set_gate(f.m, 8, 0x00405060, CODE32_K, INT32);
    auto r = f.deliver(8);
    ASSERT_TRUE(std::holds_alternative<uint32_t>(r));
    EXPECT_EQ(std::get<uint32_t>(r), DIRTY_REGS | DIRTY_SREGS);
    EXPECT_EQ(f.s.rip, 0x00405060u);
    EXPECT_EQ(f.s.segment(Seg::Cs).selector, CODE32_K);
    EXPECT_EQ(f.s.reg(Gpr::Rsp), STACK - 12);
    EXPECT_EQ(f.m.get32(STACK - 12), 0x1234u);
    EXPECT_EQ(f.m.get32(STACK - 8), CODE32_K);
    EXPECT_EQ(f.m.get32(STACK - 4), 2u | RFLAGS_IF | RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_CF);
    // An interrupt gate clears IF; every gate clears TF, NT and RF.
    EXPECT_EQ(f.s.rflags, 2u | RFLAGS_CF);
    // The code segment's accessed bit is set in the GDT and in the cache.
    EXPECT_TRUE(f.m.get64(GDT + CODE32_K) & (1ull << 40));
    EXPECT_TRUE(f.s.segment(Seg::Cs).type & 1);
}

TEST(InterruptDelivery, TrapGateKeepsIfAndIretdReturns)
{
    Fixture f;
    set_gate(f.m, 0x20, 0x5000, CODE32_K, TRAP32);
    f.s.rflags = 2 | RFLAGS_IF | RFLAGS_ZF;
    ASSERT_TRUE(std::holds_alternative<uint32_t>(f.deliver(0x20)));
    EXPECT_EQ(f.s.rflags, 2u | RFLAGS_IF | RFLAGS_ZF);
    EXPECT_EQ(f.s.rip, 0x5000u);
    // The handler's IRETD (emulated from 0x10000) returns to where the interrupt came.
    f.s.rip = CODE;
    auto o = run(f.s, f.m, { 0xcf });
    ASSERT_EQ(o.kind, Outcome::Kind::Completed) << o.detail;
    EXPECT_EQ(f.s.rip, 0x1234u);
    EXPECT_EQ(f.s.reg(Gpr::Rsp), STACK);
    EXPECT_EQ(f.s.rflags, 2u | RFLAGS_IF | RFLAGS_ZF);
}

TEST(InterruptDelivery, ErrorCodeBelowTheReturnAddress)
{
    Fixture f;
    set_gate(f.m, VEC_GP, 0x6000, CODE32_K, INT32);
    ASSERT_TRUE(std::holds_alternative<uint32_t>(f.deliver(VEC_GP, 0x43)));
    EXPECT_EQ(f.s.reg(Gpr::Rsp), STACK - 16);
    EXPECT_EQ(f.m.get32(STACK - 16), 0x43u);
    EXPECT_EQ(f.m.get32(STACK - 12), 0x1234u);
    EXPECT_EQ(f.m.get32(STACK - 8), CODE32_K);
}

TEST(InterruptDelivery, SixteenBitGateAndStack)
{
    Fixture f;
    set_gate(f.m, 9, 0xabcd1234, CODE32_K, INT16); // a 16-bit gate uses the low 16 bits of the offset
    f.s.segment(Seg::Ss).db = false;
    f.s.reg(Gpr::Rsp) = 0xdead0004; // SP wraps below 0 inside the 16-bit stack, ESP's top half stays
    ASSERT_TRUE(std::holds_alternative<uint32_t>(f.deliver(9)));
    EXPECT_EQ(f.s.rip, 0x1234u);
    EXPECT_EQ(f.s.reg(Gpr::Rsp), 0xdeadfffeu);
    EXPECT_EQ(f.m.get32(0xfffe) & 0xffff, 0x1234u); // IP at SP
    EXPECT_EQ(f.m.get32(0x0000) & 0xffff, CODE32_K);
    EXPECT_EQ(f.m.get32(0x0002) & 0xffff, 2u | RFLAGS_IF | RFLAGS_TF | RFLAGS_NT | RFLAGS_CF); // FLAGS (RF is bit 16)
}

TEST(InterruptDelivery, IdtEntryFaultsCarryIdtAndExt)
{
    Fixture f;
    f.s.idt.limit = 8 * 8 - 1;
    expect_fault(f, f.deliver(8), VEC_GP, 8 * 8 + 2 + 1); // past the limit
    f.s.idt.limit = 0x7ff;
    set_gate(f.m, 8, 0x5000, CODE32_K, INT32 & 0x7f);
    expect_fault(f, f.deliver(8), VEC_NP, 8 * 8 + 2 + 1); // gate not present
    set_gate(f.m, 8, 0x5000, CODE32_K, CALL32);
    expect_fault(f, f.deliver(8), VEC_GP, 8 * 8 + 2 + 1); // not an interrupt or trap gate
    expect_fault(f, f.deliver(8, {}, false), VEC_GP, 8 * 8 + 2); // a software event: EXT clear
}

TEST(InterruptDelivery, CodeSegmentChecksInOrder)
{
    Fixture f;
    set_gate(f.m, 8, 0x5000, 0, INT32);
    expect_fault(f, f.deliver(8), VEC_GP, 1); // null selector
    set_gate(f.m, 8, 0x5000, 0x60, INT32);
    expect_fault(f, f.deliver(8), VEC_GP, 0x61); // beyond the GDT's limit
    set_gate(f.m, 8, 0x5000, DATA_AS_CODE, INT32);
    expect_fault(f, f.deliver(8), VEC_GP, DATA_AS_CODE | 1); // not code
    set_gate(f.m, 8, 0x5000, CODE32_U & ~3, INT32);
    expect_fault(f, f.deliver(8), VEC_GP, (CODE32_U & ~3) | 1); // DPL 3 above CPL 0
    set_gate(f.m, 8, 0x5000, NOT_PRESENT, INT32);
    expect_fault(f, f.deliver(8), VEC_NP, NOT_PRESENT | 1);
    set_gate(f.m, 8, 0x2000, SMALL_CODE, INT32);
    expect_fault(f, f.deliver(8), VEC_GP, 1); // the offset beyond the segment's limit
}

TEST(InterruptDelivery, StackFaultLeavesStateUnchanged)
{
    Fixture f;
    set_gate(f.m, 8, 0x5000, CODE32_K, INT32);
    f.s.segment(Seg::Ss).limit = 0xfff;
    f.s.segment(Seg::Ss).g = false;
    expect_fault(f, f.deliver(8), VEC_SS, 1);
    EXPECT_EQ(f.s.rflags & RFLAGS_IF, RFLAGS_IF);
}

TEST(InterruptDelivery, ConformingHandlerKeepsCpl)
{
    Fixture f;
    // CPL 3 code (user CS and SS) interrupted into a conforming DPL 0 segment: no stack switch, CPL stays 3.
    f.s.segment(Seg::Cs) = Segment { 0, 0xffffffff, CODE32_U, 0xb, 3, true, true, true, false, true, false };
    f.s.segment(Seg::Ss) = Segment { 0, 0xffffffff, DATA32_U, 3, 3, true, true, true, false, true, false };
    set_gate(f.m, 8, 0x5000, CONFORMING, INT32);
    ASSERT_TRUE(std::holds_alternative<uint32_t>(f.deliver(8)));
    EXPECT_EQ(f.s.segment(Seg::Cs).selector, CONFORMING | 3);
    EXPECT_EQ(cpu_cpl(f.s), 3);
    EXPECT_EQ(f.m.get32(STACK - 8), CODE32_U);
}

TEST(InterruptDelivery, NotDeliveredHere)
{
    Fixture f;
    set_gate(f.m, 8, 0, 0x28, TASK);
    EXPECT_TRUE(std::holds_alternative<Unsupported>(f.deliver(8)));
    // From CPL 3 to a DPL 0 handler: the stack switch through the TSS.
    f.s.segment(Seg::Cs) = Segment { 0, 0xffffffff, CODE32_U, 0xb, 3, true, true, true, false, true, false };
    f.s.segment(Seg::Ss) = Segment { 0, 0xffffffff, DATA32_U, 3, 3, true, true, true, false, true, false };
    set_gate(f.m, 8, 0x5000, CODE32_K, INT32);
    EXPECT_TRUE(std::holds_alternative<Unsupported>(f.deliver(8)));
    // Virtual-8086, real and IA-32e mode.
    Fixture v;
    v.s.rflags |= RFLAGS_VM;
    EXPECT_TRUE(std::holds_alternative<Unsupported>(v.deliver(8)));
    FakePhysicalMemory m(4 << 20);
    CpuState real = real_mode();
    LinearMemory mem(real, m);
    EXPECT_TRUE(std::holds_alternative<Unsupported>(deliver_event(real, mem, Event { 8, {}, true })));
    CpuState lm = long_mode(m);
    LinearMemory mem64(lm, m);
    EXPECT_TRUE(std::holds_alternative<Unsupported>(deliver_event(lm, mem64, Event { 8, {}, true })));
}
