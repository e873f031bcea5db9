// Event delivery through the IDT in legacy protected mode (see interrupt.h).
#include "emu/interrupt.h"

#include <array>

#include "emu/bytes.h"
#include "emu/segmentation.h"

namespace hako::emu {

namespace {

using Result = std::variant<uint32_t, Exception, Unsupported>;

// Gate types (SDM vol. 3A table 3-2, system segments in 32-bit mode).
constexpr uint8_t GATE_TASK = 0x5;
constexpr uint8_t GATE_INT16 = 0x6;
constexpr uint8_t GATE_TRAP16 = 0x7;
constexpr uint8_t GATE_INT32 = 0xe;
constexpr uint8_t GATE_TRAP32 = 0xf;

} // namespace

Result deliver_event(CpuState& s, LinearMemory& mem, Event const& e)
{
    CpuMode const mode = cpu_mode(s);
    if (mode != CpuMode::Protected16 && mode != CpuMode::Protected32)
        return Unsupported { mode == CpuMode::Virtual8086 ? "event delivery in virtual-8086 mode"
                : mode == CpuMode::Real                       ? "event delivery in real mode"
                                                              : "event delivery in IA-32e mode" };
    uint32_t const ext = e.external ? 1u : 0u;
    // Error codes about the IDT entry: IDT bit (1) set, EXT as the event.
    uint32_t const idt_error = static_cast<uint32_t>(e.vector) * 8 + 2 + ext;
    if (static_cast<uint32_t>(e.vector) * 8 + 7 > s.idt.limit)
        return Exception { VEC_GP, idt_error, 0 };
    std::array<uint8_t, 8> gate {};
    uint64_t const gate_linear = (s.idt.base + static_cast<uint64_t>(e.vector) * 8) & 0xffffffffu;
    if (auto r = mem.read(gate_linear, gate, Access::Read, true); !std::holds_alternative<std::monostate>(r)) {
        if (auto* x = std::get_if<Exception>(&r))
            return *x;
        return std::get<Unsupported>(r);
    }
    uint8_t const type = gate[5] & 0x1f; // S (bit 4) must be 0: a system descriptor
    if (type == GATE_TASK)
        return Unsupported { "a task gate in the IDT" };
    if (type != GATE_INT16 && type != GATE_TRAP16 && type != GATE_INT32 && type != GATE_TRAP32)
        return Exception { VEC_GP, idt_error, 0 };
    // The gate's DPL is checked for software interrupts only (INT n, INT3, INTO), which do not come this way.
    if (!(gate[5] & 0x80))
        return Exception { VEC_NP, idt_error, 0 };
    bool const gate32 = (type & 8) != 0;
    bool const interrupt_gate = (type & 1) == 0;
    uint16_t const selector = static_cast<uint16_t>(load_le(std::span(gate).subspan(2, 2)));
    uint32_t offset = static_cast<uint32_t>(load_le(std::span(gate).first(2)));
    if (gate32)
        offset |= static_cast<uint32_t>(load_le(std::span(gate).subspan(6, 2))) << 16;

    // The handler's code segment.
    if ((selector & 0xfffc) == 0)
        return Exception { VEC_GP, ext, 0 };
    auto cs_read = read_descriptor(s, mem, selector);
    if (auto* x = std::get_if<Exception>(&cs_read)) {
        x->error_code = x->error_code.value_or(0) | ext;
        return *x;
    }
    if (auto* u = std::get_if<Unsupported>(&cs_read))
        return *u;
    Descriptor cs = std::get<Descriptor>(cs_read);
    uint32_t const cs_error = selector_error(selector) | ext;
    uint8_t const cpl = cpu_cpl(s);
    if (!cs.code() || cs.dpl() > cpl)
        return Exception { VEC_GP, cs_error, 0 };
    if (!cs.present())
        return Exception { VEC_NP, cs_error, 0 };
    bool const conforming = (cs.type() & 4) != 0;
    if (!conforming && cs.dpl() < cpl)
        return Unsupported { "an interrupt handler at a more privileged level (a stack switch through the TSS)" };
    Segment cs_cache = cs.segment(static_cast<uint16_t>((selector & 0xfffc) | cpl));
    if (offset > cs_cache.limit)
        return Exception { VEC_GP, ext, 0 };

    // The frame: EFLAGS, CS, EIP and the error code, pushed in that order with the gate's width through SS, each
    // push wrapping at the stack's width as the processor's do. Every item's segment checks come before any write.
    size_t const w = gate32 ? 4 : 2;
    size_t const n = e.error_code ? 4 : 3;
    uint64_t const items[4] { s.rflags, s.segment(Seg::Cs).selector, s.rip, e.error_code.value_or(0) };
    uint64_t const sp_mask = s.segment(Seg::Ss).db ? 0xffffffffu : 0xffffu;
    std::array<uint64_t, 4> linear {};
    uint64_t sp = s.reg(Gpr::Rsp);
    for (size_t i = 0; i < n; ++i) {
        sp = (sp - w) & sp_mask;
        auto lin = segment_linear(s, mode, Seg::Ss, sp, w, Access::Write);
        if (auto* x = std::get_if<Exception>(&lin)) {
            x->error_code = x->error_code.value_or(0) | ext;
            return *x;
        }
        linear[i] = std::get<uint64_t>(lin);
    }
    for (size_t i = 0; i < n; ++i) {
        std::array<uint8_t, 4> item {};
        store_le(std::span(item).first(w), items[i]);
        if (auto r = mem.write(linear[i], std::span(item).first(w)); !std::holds_alternative<std::monostate>(r)) {
            if (auto* x = std::get_if<Exception>(&r))
                return *x;
            return std::get<Unsupported>(r);
        }
    }
    if (auto r = mark_accessed(mem, cs); !std::holds_alternative<std::monostate>(r)) {
        if (auto* x = std::get_if<Exception>(&r))
            return *x;
        return std::get<Unsupported>(r);
    }
    s.reg(Gpr::Rsp) = (s.reg(Gpr::Rsp) & ~sp_mask) | sp;
    s.segment(Seg::Cs) = cs_cache;
    s.segment(Seg::Cs).type |= 1;
    s.rip = offset;
    s.rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
    if (interrupt_gate)
        s.rflags &= ~RFLAGS_IF;
    return uint32_t { DIRTY_REGS | DIRTY_SREGS };
}

} // namespace hako::emu
