// Fuzzes the userspace instruction emulator: the input chooses the CPU mode, control registers, flags, general
// registers, x87 state (control, status, tags, registers), XSAVE state (XCR0, IA32_XSS, the CPUID leaf 0xD layout,
// the XSAVE image) and the descriptor tables, the first bytes are the instruction at CS:RIP, and the rest fills a
// small guest-physical memory (with page tables where the mode pages). The emulator must never crash, and must never
// reach memory except through PhysicalMemory (ASan checks the fake's buffer; accesses outside it are counted, not
// performed). The same state then takes an event through the IDT (emu::deliver_event, the interrupts KVM cannot
// deliver on PVM hosts): a fault or a refusal must leave the registers as they were.
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../unit/emu/fake_physical_memory.h"
#include "emu/emulator.h"
#include "emu/interrupt.h"

using namespace hako::emu;

namespace {

struct Reader {
    uint8_t const* data;
    size_t size;
    size_t pos { 0 };
    uint64_t take(size_t n)
    {
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i)
            v |= static_cast<uint64_t>(pos < size ? data[pos++] : 0) << (8 * i);
        return v;
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    Reader in { data, size };
    constexpr size_t MEM = 64 * 1024;
    hako::emu::test::FakePhysicalMemory mem(MEM);
    CpuState s;
    uint64_t const mode = in.take(1);
    uint64_t const ctl = in.take(2);
    s.cr0 = (1u << 4) | ((mode & 7) != 0 ? CR0_PE : 0) | (ctl & (CR0_MP | CR0_EM | CR0_TS | CR0_NE))
        | ((ctl & 0x100) ? CR0_WP : 0);
    bool const long_mode = (mode & 7) == 5 || (mode & 7) == 6;
    bool const paging = long_mode || (ctl & 0x200);
    if (paging)
        s.cr0 |= CR0_PG;
    s.cr4 = ((ctl & 0x400) ? CR4_PSE : 0) | ((long_mode || (ctl & 0x800)) ? CR4_PAE : 0) | ((ctl & 0x1000) ? CR4_SMEP : 0)
        | ((ctl & 0x2000) ? CR4_SMAP : 0) | ((ctl & 0x4000) ? CR4_LA57 : 0) | ((ctl & 0x10) ? CR4_OSXSAVE : 0)
        | ((ctl & 0x40) ? CR4_OSFXSR : 0);
    s.efer = (long_mode ? (EFER_LME | EFER_LMA) : 0) | ((ctl & 0x8000) ? EFER_NXE : 0);
    s.cr3 = in.take(2) & (MEM - 1) & ~0xfffull;
    s.rflags = 2 | (in.take(4) & 0x3f7fd5);
    for (auto& seg : s.seg) {
        seg.base = in.take(1) << 12;
        seg.limit = static_cast<uint32_t>(in.take(2) | ((mode & 8) ? 0xffff0000u : 0));
        uint64_t a = in.take(1);
        seg.type = static_cast<uint8_t>(a & 15);
        seg.db = (a & 16) != 0;
        seg.dpl = static_cast<uint8_t>((a >> 5) & 3);
        seg.present = (a & 0x80) == 0;
    }
    s.segment(Seg::Cs).l = (mode & 7) == 6;
    s.segment(Seg::Ss).dpl = s.segment(Seg::Cs).dpl;
    for (auto& r : s.gpr)
        r = in.take(2) | ((in.take(1) & 1) ? 0xffffffffffff0000ull : 0);
    s.fpu.fcw = static_cast<uint16_t>(in.take(2));
    s.fpu.fsw = static_cast<uint16_t>(in.take(2));
    // x87 registers: tags, and values whose sign/exponent and significand ends come from the input (zeros, denormals,
    // unnormals, infinities, NaNs and ordinary numbers all reachable).
    s.fpu.ftw = static_cast<uint8_t>(in.take(1));
    for (auto& r : s.fpu.st) {
        uint64_t const se = in.take(2);
        uint64_t const m = (in.take(2) << 48) | in.take(1);
        for (size_t i = 0; i < 8; ++i)
            r[i] = static_cast<uint8_t>(m >> (8 * i));
        r[8] = static_cast<uint8_t>(se);
        r[9] = static_cast<uint8_t>(se >> 8);
    }
    s.rip = in.take(2);
    // XSAVE state: XCR0, IA32_XSS and a layout for components 2-9 (offsets and sizes anywhere, even outside the
    // image), XSTATE_BV and some bytes of the image.
    s.xcr0 = in.take(2) | 1;
    s.xss = (in.take(1) & 1) ? (in.take(2) << 8) : 0;
    s.xsave_layout.features = static_cast<uint32_t>(in.take(1) & 0xf);
    for (size_t i = 2; i < 10; ++i) {
        auto& comp = s.xsave_layout.component[i];
        comp.offset = static_cast<uint32_t>(in.take(2));
        comp.size = static_cast<uint32_t>(in.take(2) & 0x1fff);
        uint64_t f = in.take(1);
        comp.align64 = (f & 1) != 0;
        comp.supervisor = (f & 2) != 0;
    }
    for (size_t i = 0; i < 8; ++i)
        s.xsave[512 + i] = static_cast<uint8_t>(in.take(1));
    for (size_t i = 160; i < 176; ++i)
        s.xsave[i] = static_cast<uint8_t>(in.take(1));
    // Descriptor tables (in the small memory or past it) and an event to deliver.
    s.gdt = { in.take(2), static_cast<uint16_t>(in.take(2)) };
    s.idt = { in.take(2), static_cast<uint16_t>(in.take(2)) };
    auto const ev_vector = static_cast<uint8_t>(in.take(1));
    uint64_t const ev_flags = in.take(1);
    auto const ev_code = static_cast<uint32_t>(in.take(2));
    // The rest: guest memory, mirrored at CS:RIP's linear address so the instruction is usually found there.
    std::vector<uint8_t> rest(data + in.pos, data + size);
    for (size_t i = 0; i < rest.size() && i < MEM; ++i)
        mem.ram[i] = rest[i];
    uint64_t const at = (s.segment(Seg::Cs).base + s.rip) & (MEM - 1);
    for (size_t i = 0; i < 15 && i < rest.size() && at + i < MEM; ++i)
        mem.ram[at + i] = rest[i];
    CpuState const before = s;
    Outcome o = emulate(s, mem);
    if (o.kind == Outcome::Kind::Faulted && (!o.exception || o.dirty != 0))
        __builtin_trap(); // a fault changes nothing
    if (o.kind != Outcome::Kind::Completed
        && (s.xsave != before.xsave || s.fpu.st != before.fpu.st || s.fpu.fcw != before.fpu.fcw
            || s.fpu.fsw != before.fpu.fsw || s.fpu.ftw != before.fpu.ftw || s.fpu.fip != before.fpu.fip
            || s.rflags != before.rflags || s.fpu.mxcsr != before.fpu.mxcsr || s.gpr != before.gpr
            || s.rip != before.rip))
        __builtin_trap(); // nor does an instruction the emulator refuses
    if (o.length > 15)
        __builtin_trap();

    CpuState d = before;
    LinearMemory lin(d, mem);
    auto r = deliver_event(d, lin,
        Event { ev_vector, (ev_flags & 1) ? std::optional<uint32_t>(ev_code) : std::nullopt, (ev_flags & 2) != 0 });
    if (!std::holds_alternative<uint32_t>(r)
        && (d.rip != before.rip || d.gpr != before.gpr || d.rflags != before.rflags
            || d.segment(Seg::Cs).selector != before.segment(Seg::Cs).selector
            || d.segment(Seg::Cs).base != before.segment(Seg::Cs).base))
        __builtin_trap(); // an event that is not delivered changes no register
    return 0;
}
