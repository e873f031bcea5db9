// IRET in protected and IA-32e mode (see iret.h).
#include "emu/iret.h"

#include <array>
#include <optional>

#include "emu/bytes.h"
#include "emu/segmentation.h"

namespace hako::emu {

namespace {

using Result = std::variant<uint32_t, Exception, Unsupported>;

Exception gp(uint32_t code) { return Exception { VEC_GP, code, 0 }; }

uint64_t width_mask(unsigned bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }

/// Reads the stack as IRET pops it: `w`-byte items from SS:RSP upward, the offset wrapping at the stack's width.
class StackReader {
public:
    StackReader(CpuState const& s, LinearMemory& mem, CpuMode mode, unsigned sp_bits)
        : m_s(s), m_mem(mem), m_mode(mode), m_sp_bits(sp_bits), m_sp(s.reg(Gpr::Rsp) & width_mask(sp_bits)) {}

    std::variant<uint64_t, Exception, Unsupported> pop(size_t w)
    {
        auto lin = segment_linear(m_s, m_mode, Seg::Ss, m_sp, w, Access::Read);
        if (auto* e = std::get_if<Exception>(&lin))
            return *e;
        std::array<uint8_t, 8> b {};
        auto r = m_mem.read(std::get<uint64_t>(lin), std::span(b).first(w));
        if (auto* e = std::get_if<Exception>(&r))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&r))
            return *u;
        m_sp = (m_sp + w) & width_mask(m_sp_bits);
        return load_le(std::span(b).first(w));
    }
    uint64_t sp() const { return m_sp; }

private:
    CpuState const& m_s;
    LinearMemory& m_mem;
    CpuMode m_mode;
    unsigned m_sp_bits;
    uint64_t m_sp;
};

/// The RFLAGS IRET leaves: the popped value under the mask of what the CPL, IOPL and operand size let it change.
uint64_t iret_flags(uint64_t current, uint64_t popped, uint8_t cpl, unsigned operand_bits)
{
    uint64_t mask = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF | RFLAGS_DF | RFLAGS_OF
        | RFLAGS_NT;
    if (operand_bits >= 32)
        mask |= RFLAGS_RF | RFLAGS_AC | RFLAGS_ID;
    uint8_t const iopl = static_cast<uint8_t>((current & RFLAGS_IOPL) >> 12);
    if (cpl <= iopl)
        mask |= RFLAGS_IF;
    if (cpl == 0) {
        mask |= RFLAGS_IOPL;
        if (operand_bits >= 32)
            mask |= RFLAGS_VIF | RFLAGS_VIP;
    }
    if (operand_bits == 16)
        mask &= 0xffff;
    return (current & ~mask) | (popped & mask) | 2;
}

} // namespace

Result iret_protected(CpuState& s, LinearMemory& mem, unsigned operand_bits)
{
    CpuMode const mode = cpu_mode(s);
    if (mode == CpuMode::Real || mode == CpuMode::Virtual8086)
        return Unsupported { "IRET in real or virtual-8086 mode" };
    bool const ia32e = (s.efer & EFER_LMA) != 0;
    bool const mode64 = mode == CpuMode::Long64;
    if (s.rflags & RFLAGS_NT) {
        if (ia32e)
            return gp(0);
        return Unsupported { "IRET with EFLAGS.NT set (a return to the previous task)" };
    }
    size_t const w = operand_bits / 8;
    if (w != 2 && w != 4 && w != 8)
        return Unsupported { "operand size" };
    uint8_t const cpl = cpu_cpl(s);
    unsigned const sp_bits = mode64 ? 64 : (s.segment(Seg::Ss).db ? 32 : 16);
    StackReader stack(s, mem, mode, sp_bits);

    uint64_t popped[5] {};
    for (size_t i = 0; i < 3; ++i) {
        auto v = stack.pop(w);
        if (auto* e = std::get_if<Exception>(&v))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&v))
            return *u;
        popped[i] = std::get<uint64_t>(v);
    }
    uint64_t rip = popped[0];
    uint16_t const cs_sel = static_cast<uint16_t>(popped[1]);
    uint64_t const flags = popped[2];
    if (operand_bits >= 32 && (flags & RFLAGS_VM) && cpl == 0)
        return Unsupported { "IRET to virtual-8086 mode" };

    // The return code segment.
    if ((cs_sel & 0xfffc) == 0)
        return gp(0);
    auto cs_read = read_descriptor(s, mem, cs_sel);
    if (auto* e = std::get_if<Exception>(&cs_read))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&cs_read))
        return *u;
    Descriptor cs = std::get<Descriptor>(cs_read);
    uint8_t const rpl = cs_sel & 3;
    bool const conforming = (cs.type() & 4) != 0;
    if (!cs.code() || rpl < cpl || (conforming && cs.dpl() > rpl) || (!conforming && cs.dpl() != rpl))
        return gp(selector_error(cs_sel));
    if (!cs.present())
        return Exception { VEC_NP, selector_error(cs_sel), 0 };
    if (ia32e && cs.l() && cs.db())
        return gp(selector_error(cs_sel));
    bool const to64 = ia32e && cs.l();
    Segment const cs_cache = cs.segment(cs_sel);

    // The return stack, on a return to an outer level and always from 64-bit mode.
    bool const with_stack = rpl > cpl || mode64;
    std::optional<Descriptor> ss;
    Segment ss_cache;
    uint64_t new_sp = 0;
    if (with_stack) {
        for (size_t i = 3; i < 5; ++i) {
            auto v = stack.pop(w);
            if (auto* e = std::get_if<Exception>(&v))
                return *e;
            if (auto* u = std::get_if<Unsupported>(&v))
                return *u;
            popped[i] = std::get<uint64_t>(v);
        }
        new_sp = popped[3];
        uint16_t const ss_sel = static_cast<uint16_t>(popped[4]);
        if ((ss_sel & 0xfffc) == 0) {
            // A null SS only on a 64-bit return to 64-bit code below CPL 3.
            if (!(operand_bits == 64 && to64 && rpl != 3))
                return gp(0);
            ss_cache = null_segment(ss_sel, rpl);
        } else {
            if ((ss_sel & 3) != rpl)
                return gp(selector_error(ss_sel));
            auto ss_read = read_descriptor(s, mem, ss_sel);
            if (auto* e = std::get_if<Exception>(&ss_read))
                return *e;
            if (auto* u = std::get_if<Unsupported>(&ss_read))
                return *u;
            ss = std::get<Descriptor>(ss_read);
            if (!ss->s() || ss->code() || !(ss->type() & 2) || ss->dpl() != rpl)
                return gp(selector_error(ss_sel));
            if (!ss->present())
                return Exception { VEC_SS, selector_error(ss_sel), 0 };
            ss_cache = ss->segment(ss_sel);
        }
    }

    // The return address.
    if (to64) {
        if (!is_canonical(rip))
            return gp(0);
    } else {
        rip &= width_mask(operand_bits == 64 ? 32 : operand_bits);
        if (rip > cs_cache.limit)
            return gp(0);
    }

    // Everything checked: set the accessed bits, then load.
    if (auto r = mark_accessed(mem, cs); !std::holds_alternative<std::monostate>(r)) {
        if (auto* e = std::get_if<Exception>(&r))
            return *e;
        return std::get<Unsupported>(r);
    }
    if (ss) {
        if (auto r = mark_accessed(mem, *ss); !std::holds_alternative<std::monostate>(r)) {
            if (auto* e = std::get_if<Exception>(&r))
                return *e;
            return std::get<Unsupported>(r);
        }
        ss_cache.type |= 1;
    }
    s.rflags = iret_flags(s.rflags, flags, cpl, operand_bits);
    s.segment(Seg::Cs) = cs_cache;
    s.segment(Seg::Cs).type |= 1;
    s.rip = rip;
    if (with_stack) {
        s.segment(Seg::Ss) = ss_cache;
        if (operand_bits == 16)
            s.reg(Gpr::Rsp) = (s.reg(Gpr::Rsp) & ~0xffffull) | (new_sp & 0xffff);
        else
            s.reg(Gpr::Rsp) = new_sp & width_mask(operand_bits);
        if (rpl > cpl) {
            // Data segment registers the new CPL may not use are nulled (their hidden DPL is below it).
            for (Seg r : { Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs }) {
                Segment& seg = s.segment(r);
                bool const conforming_code = (seg.type & 8) && (seg.type & 4);
                if (!seg.unusable && seg.s && !conforming_code && seg.dpl < rpl) {
                    seg.selector = 0;
                    seg.unusable = true;
                    seg.present = false;
                }
            }
        }
    } else {
        uint64_t const m = width_mask(sp_bits);
        s.reg(Gpr::Rsp) = (s.reg(Gpr::Rsp) & ~m) | (stack.sp() & m);
    }
    return uint32_t { DIRTY_REGS | DIRTY_SREGS | DIRTY_NMI_UNMASK };
}

} // namespace hako::emu
