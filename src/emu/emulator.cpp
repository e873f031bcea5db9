// The userspace instruction emulator: fetch, decode (Zydis), operand access and the instructions of emulator.h.
#include "emu/emulator.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <variant>

#include "emu/bytes.h"
#include "emu/iret.h"
#include "emu/segmentation.h"
#include "emu/sse.h"
#include "emu/x87.h"
#include "emu/xsave.h"

namespace hako::emu {

namespace {

using Fault = std::variant<std::monostate, Exception, Unsupported>;

Exception gp0() { return Exception { VEC_GP, 0u, 0 }; }
Exception ud() { return Exception { VEC_UD, std::nullopt, 0 }; }
Exception nm() { return Exception { VEC_NM, std::nullopt, 0 }; }

Seg seg_of(ZydisRegister r)
{
    switch (r) {
    case ZYDIS_REGISTER_ES: return Seg::Es;
    case ZYDIS_REGISTER_CS: return Seg::Cs;
    case ZYDIS_REGISTER_SS: return Seg::Ss;
    case ZYDIS_REGISTER_FS: return Seg::Fs;
    case ZYDIS_REGISTER_GS: return Seg::Gs;
    default: return Seg::Ds;
    }
}

struct Context {
    CpuState& s;
    LinearMemory mem;
    CpuMode mode;
    ZydisDecodedInstruction insn {};
    std::array<ZydisDecodedOperand, ZYDIS_MAX_OPERAND_COUNT> ops {};
    uint64_t next_rip { 0 };
    Outcome& out;
};

/// The 64-bit register a Zydis GPR lives in, and the shift of its low byte (8 for AH..BH).
struct GprRef {
    size_t index;
    unsigned shift;
    unsigned bits;
};

std::optional<GprRef> gpr_ref(ZydisRegister r)
{
    switch (r) {
    case ZYDIS_REGISTER_AH: return GprRef { 0, 8, 8 };
    case ZYDIS_REGISTER_CH: return GprRef { 1, 8, 8 };
    case ZYDIS_REGISTER_DH: return GprRef { 2, 8, 8 };
    case ZYDIS_REGISTER_BH: return GprRef { 3, 8, 8 };
    default: break;
    }
    ZydisRegisterClass cls = ZydisRegisterGetClass(r);
    unsigned bits = cls == ZYDIS_REGCLASS_GPR8 ? 8 : cls == ZYDIS_REGCLASS_GPR16 ? 16 : cls == ZYDIS_REGCLASS_GPR32 ? 32
        : cls == ZYDIS_REGCLASS_GPR64 ? 64 : 0;
    if (bits == 0)
        return std::nullopt;
    ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
    if (full < ZYDIS_REGISTER_RAX || full > ZYDIS_REGISTER_R15)
        return std::nullopt;
    return GprRef { static_cast<size_t>(full - ZYDIS_REGISTER_RAX), 0, bits };
}

uint64_t mask_of(unsigned bits) { return bits >= 64 ? ~0ull : ((1ull << bits) - 1); }

uint64_t read_gpr(CpuState const& s, GprRef g) { return (s.gpr[g.index] >> g.shift) & mask_of(g.bits); }

void write_gpr(CpuState& s, GprRef g, uint64_t v)
{
    if (g.bits == 32) {
        s.gpr[g.index] = v & 0xffffffffu; // 32-bit writes zero-extend
        return;
    }
    uint64_t m = mask_of(g.bits) << g.shift;
    s.gpr[g.index] = (s.gpr[g.index] & ~m) | ((v << g.shift) & m);
}

/// The effective address (offset within the segment) of a memory operand.
std::optional<uint64_t> effective_address(Context const& c, ZydisDecodedOperand const& op)
{
    uint64_t ea = static_cast<uint64_t>(op.mem.disp.value);
    if (op.mem.base == ZYDIS_REGISTER_RIP || op.mem.base == ZYDIS_REGISTER_EIP) {
        ea += c.next_rip;
    } else if (op.mem.base != ZYDIS_REGISTER_NONE) {
        auto g = gpr_ref(op.mem.base);
        if (!g)
            return std::nullopt;
        ea += read_gpr(c.s, *g);
    }
    if (op.mem.index != ZYDIS_REGISTER_NONE) {
        auto g = gpr_ref(op.mem.index);
        if (!g)
            return std::nullopt;
        ea += read_gpr(c.s, *g) * op.mem.scale;
    }
    return ea & mask_of(c.insn.address_width);
}

Outcome& fault(Context& c, Exception e)
{
    c.out.kind = Outcome::Kind::Faulted;
    c.out.exception = e;
    c.out.dirty = 0;
    return c.out;
}

Outcome& unsupported(Context& c, std::string why)
{
    c.out.kind = Outcome::Kind::Unsupported;
    c.out.detail = std::move(why);
    c.out.dirty = 0;
    return c.out;
}

/// Finishes an instruction: RIP past it (wrapping at the code segment's size), RF cleared.
Outcome& complete(Context& c, uint32_t dirty)
{
    uint64_t rip = c.next_rip;
    if (c.mode != CpuMode::Long64)
        rip &= (c.mode == CpuMode::Protected32 || c.mode == CpuMode::Compat32) ? 0xffffffffu : 0xffffu;
    c.s.rip = rip;
    c.s.rflags &= ~RFLAGS_RF;
    c.out.kind = Outcome::Kind::Completed;
    c.out.dirty = dirty | DIRTY_REGS;
    return c.out;
}

/// Outcome of a failed memory access, if `f` is one.
Outcome* access_failed(Context& c, Fault const& f)
{
    if (auto* e = std::get_if<Exception>(&f))
        return &fault(c, *e);
    if (auto* u = std::get_if<Unsupported>(&f))
        return &unsupported(c, u->what);
    return nullptr;
}

struct MemOperand {
    uint64_t linear;
};

/// The linear address of memory operand `op` for an access of `size` bytes, or the outcome that stops it.
std::variant<MemOperand, Outcome*> memory_operand(Context& c, ZydisDecodedOperand const& op, size_t size, Access access)
{
    auto ea = effective_address(c, op);
    if (!ea)
        return &unsupported(c, "memory operand with an unexpected register");
    auto lin = segment_linear(c.s, c.mode, seg_of(op.mem.segment), *ea, size, access);
    if (auto* e = std::get_if<Exception>(&lin))
        return &fault(c, *e);
    return MemOperand { std::get<uint64_t>(lin) };
}

// --- x87 control instructions (SDM vol. 1 8.1.3-8.1.5, 8.7; vol. 2 FINIT/FNINIT, FCLEX/FNCLEX, FLDCW, FSTCW, FSTSW,
// WAIT/FWAIT) ---

constexpr uint16_t FSW_ES = 1u << 7;
constexpr uint16_t FSW_B = 1u << 15;

bool x87_pending_unmasked(CpuState const& s) { return (s.fpu.fsw & FSW_ES) != 0; }

/// #NM for a non-waiting x87 instruction, or #NM/#MF for a waiting one; nullopt when it may run.
std::optional<Exception> x87_check(CpuState const& s, bool waiting)
{
    if (s.cr0 & (CR0_EM | CR0_TS))
        return nm();
    if (waiting && x87_pending_unmasked(s) && (s.cr0 & CR0_NE))
        return Exception { VEC_MF, std::nullopt, 0 };
    return std::nullopt;
}

/// ES and B follow the exception flags the control word leaves unmasked.
void x87_update_summary(CpuState& s)
{
    if (s.fpu.fsw & ~s.fpu.fcw & 0x3f)
        s.fpu.fsw = static_cast<uint16_t>(s.fpu.fsw | FSW_ES | FSW_B);
    else
        s.fpu.fsw = static_cast<uint16_t>(s.fpu.fsw & ~(FSW_ES | FSW_B));
}

Outcome& op_fwait(Context& c)
{
    if ((c.s.cr0 & CR0_MP) && (c.s.cr0 & CR0_TS))
        return fault(c, nm());
    if (x87_pending_unmasked(c.s) && (c.s.cr0 & CR0_NE))
        return fault(c, Exception { VEC_MF, std::nullopt, 0 });
    // With CR0.NE clear a pending exception would assert FERR# (IRQ 13 through the PIC): not modelled.
    return complete(c, 0);
}

Outcome& op_fninit(Context& c)
{
    if (auto e = x87_check(c.s, false))
        return fault(c, *e);
    c.s.fpu.fcw = 0x037f;
    c.s.fpu.fsw = 0;
    c.s.fpu.ftw = 0; // all empty
    c.s.fpu.fop = 0;
    c.s.fpu.fip = 0;
    c.s.fpu.fdp = 0;
    return complete(c, DIRTY_FPU);
}

Outcome& op_fnclex(Context& c)
{
    if (auto e = x87_check(c.s, false))
        return fault(c, *e);
    c.s.fpu.fsw &= 0x7f00; // clears PE UE OE ZE DE IE SF ES B; keeps C0-C3 and TOP
    return complete(c, DIRTY_FPU);
}

Outcome& op_fldcw(Context& c)
{
    if (auto e = x87_check(c.s, true))
        return fault(c, *e);
    auto m = memory_operand(c, c.ops[0], 2, Access::Read);
    if (auto* o = std::get_if<Outcome*>(&m))
        return **o;
    std::array<uint8_t, 2> b {};
    if (auto* o = access_failed(c, c.mem.read(std::get<MemOperand>(m).linear, b)))
        return *o;
    c.s.fpu.fcw = static_cast<uint16_t>(load_le(b));
    x87_update_summary(c.s);
    return complete(c, DIRTY_FPU);
}

/// FNSTCW m16, FNSTSW m16, FNSTSW AX.
Outcome& op_fnstore(Context& c, uint16_t value)
{
    if (auto e = x87_check(c.s, false))
        return fault(c, *e);
    auto const& op = c.ops[0];
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        auto g = gpr_ref(op.reg.value);
        if (!g)
            return unsupported(c, "unexpected register operand");
        write_gpr(c.s, *g, value);
        return complete(c, 0);
    }
    auto m = memory_operand(c, op, 2, Access::Write);
    if (auto* o = std::get_if<Outcome*>(&m))
        return **o;
    std::array<uint8_t, 2> b {};
    store_le(b, value);
    if (auto* o = access_failed(c, c.mem.write(std::get<MemOperand>(m).linear, b)))
        return *o;
    return complete(c, 0);
}

/// The x87 data, arithmetic, comparison and environment instructions (emu/x87.h): #NM, then #MF for the waiting ones.
Outcome& op_x87(Context& c)
{
    uint8_t const modrm = static_cast<uint8_t>((c.insn.raw.modrm.mod << 6) | (c.insn.raw.modrm.reg << 3)
        | c.insn.raw.modrm.rm);
    if (auto e = x87_check(c.s, x87_waits(c.insn.opcode, modrm)))
        return fault(c, *e);
    X87Insn insn { c.insn.opcode, modrm, c.s.rip, 0, c.insn.operand_width == 16,
        c.mode == CpuMode::Real || c.mode == CpuMode::Virtual8086 };
    SegmentLinear segment = [](size_t, Access) -> std::variant<uint64_t, Exception> { return gp0(); };
    if ((modrm >> 6) != 3) {
        ZydisDecodedOperand const* mop = nullptr;
        for (size_t i = 0; i < c.insn.operand_count; ++i)
            if (c.ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
                mop = &c.ops[i];
        if (!mop)
            return unsupported(c, "x87 memory operand not decoded");
        auto ea = effective_address(c, *mop);
        if (!ea)
            return unsupported(c, "memory operand with an unexpected register");
        insn.data_offset = *ea;
        Seg const sr = seg_of(mop->mem.segment);
        segment = [&c, sr, offset = *ea](size_t size, Access access) {
            return segment_linear(c.s, c.mode, sr, offset, size, access);
        };
    }
    auto r = x87_execute(c.s, c.mem, insn, segment);
    if (auto* e = std::get_if<Exception>(&r))
        return fault(c, *e);
    if (auto* u = std::get_if<Unsupported>(&r))
        return unsupported(c, u->what);
    return complete(c, std::get<uint32_t>(r));
}

// --- LDMXCSR, STMXCSR (SDM vol. 2): #UD without CR4.OSFXSR or with CR0.EM, #NM with CR0.TS, #GP(0) for reserved
// MXCSR bits (31:16; the processors KVM runs on all support DAZ, bit 6) ---

Outcome& op_mxcsr(Context& c, bool load)
{
    if ((c.s.cr0 & CR0_EM) || !(c.s.cr4 & CR4_OSFXSR))
        return fault(c, ud());
    if (c.s.cr0 & CR0_TS)
        return fault(c, nm());
    auto m = memory_operand(c, c.ops[0], 4, load ? Access::Read : Access::Write);
    if (auto* o = std::get_if<Outcome*>(&m))
        return **o;
    std::array<uint8_t, 4> b {};
    if (load) {
        if (auto* o = access_failed(c, c.mem.read(std::get<MemOperand>(m).linear, b)))
            return *o;
        uint64_t v = load_le(b);
        if (v & 0xffff0000u)
            return fault(c, gp0());
        c.s.fpu.mxcsr = static_cast<uint32_t>(v);
        return complete(c, DIRTY_FPU);
    }
    store_le(b, c.s.fpu.mxcsr);
    if (auto* o = access_failed(c, c.mem.write(std::get<MemOperand>(m).linear, b)))
        return *o;
    return complete(c, 0);
}

// --- INT3, INTO, INT1 (SDM vol. 2 "INT n/INTO/INT3/INT1"): traps, delivered with RIP after the instruction ---

Outcome& op_trap(Context& c, uint8_t vector)
{
    complete(c, 0);
    c.out.exception = Exception { vector, std::nullopt, 0 };
    return c.out;
}

// --- MOVBE (SDM vol. 2 "MOVBE") ---

Outcome& op_movbe(Context& c)
{
    auto const& dst = c.ops[0];
    auto const& src = c.ops[1];
    size_t const size = dst.size / 8u;
    if (size != 2 && size != 4 && size != 8)
        return unsupported(c, "operand size");
    std::array<uint8_t, 8> b {};
    auto bytes = std::span(b).first(size);
    if (dst.type == ZYDIS_OPERAND_TYPE_REGISTER && src.type == ZYDIS_OPERAND_TYPE_MEMORY) {
        auto g = gpr_ref(dst.reg.value);
        if (!g)
            return unsupported(c, "unexpected register operand");
        auto m = memory_operand(c, src, size, Access::Read);
        if (auto* o = std::get_if<Outcome*>(&m))
            return **o;
        if (auto* o = access_failed(c, c.mem.read(std::get<MemOperand>(m).linear, bytes)))
            return *o;
        std::reverse(bytes.begin(), bytes.end());
        write_gpr(c.s, *g, load_le(bytes));
        return complete(c, 0);
    }
    if (dst.type == ZYDIS_OPERAND_TYPE_MEMORY && src.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        auto g = gpr_ref(src.reg.value);
        if (!g)
            return unsupported(c, "unexpected register operand");
        auto m = memory_operand(c, dst, size, Access::Write);
        if (auto* o = std::get_if<Outcome*>(&m))
            return **o;
        store_le(bytes, read_gpr(c.s, *g));
        std::reverse(bytes.begin(), bytes.end());
        if (auto* o = access_failed(c, c.mem.write(std::get<MemOperand>(m).linear, bytes)))
            return *o;
        return complete(c, 0);
    }
    return unsupported(c, "operand forms");
}

// --- CMPXCHG8B / CMPXCHG16B (SDM vol. 2 "CMPXCHG8B/CMPXCHG16B") ---

Outcome& op_cmpxchg_wide(Context& c, bool wide)
{
    size_t const half = wide ? 8 : 4;
    auto const& op = c.ops[0];
    if (op.type != ZYDIS_OPERAND_TYPE_MEMORY)
        return fault(c, ud());
    auto m = memory_operand(c, op, 2 * half, Access::Write);
    if (auto* o = std::get_if<Outcome*>(&m))
        return **o;
    uint64_t const lin = std::get<MemOperand>(m).linear;
    if (wide && (lin & 15))
        return fault(c, gp0());
    uint64_t const lo_mask = mask_of(static_cast<unsigned>(half * 8));
    std::array<uint8_t, 16> expected {}, desired {};
    store_le(std::span(expected).first(half), c.s.reg(Gpr::Rax) & lo_mask);
    store_le(std::span(expected).subspan(half, half), c.s.reg(Gpr::Rdx) & lo_mask);
    store_le(std::span(desired).first(half), c.s.reg(Gpr::Rbx) & lo_mask);
    store_le(std::span(desired).subspan(half, half), c.s.reg(Gpr::Rcx) & lo_mask);
    auto r = c.mem.compare_exchange(lin, std::span(expected).first(2 * half),
        std::span<uint8_t const>(desired).first(2 * half));
    if (auto* e = std::get_if<Exception>(&r))
        return fault(c, *e);
    if (auto* u = std::get_if<Unsupported>(&r))
        return unsupported(c, u->what);
    if (std::get<bool>(r)) {
        c.s.rflags |= RFLAGS_ZF;
    } else {
        c.s.rflags &= ~RFLAGS_ZF;
        // EDX:EAX (RDX:RAX) <- the memory operand; 32-bit writes zero-extend in 64-bit mode.
        c.s.reg(Gpr::Rax) = load_le(std::span(expected).first(half));
        c.s.reg(Gpr::Rdx) = load_le(std::span(expected).subspan(half, half));
    }
    return complete(c, 0);
}

// --- INVPCID (SDM vol. 2 "INVPCID"): every type is carried out as a flush of the whole TLB, which the SDM allows
// ("an implementation may invalidate more than required") ---

Outcome& op_invpcid(Context& c)
{
    if (c.mode == CpuMode::Real || c.mode == CpuMode::Virtual8086)
        return fault(c, c.mode == CpuMode::Real ? ud() : gp0());
    if (cpu_cpl(c.s) != 0)
        return fault(c, gp0());
    auto g = gpr_ref(c.ops[0].reg.value);
    if (!g || c.ops[1].type != ZYDIS_OPERAND_TYPE_MEMORY)
        return unsupported(c, "operand forms");
    uint64_t const type = read_gpr(c.s, *g);
    auto m = memory_operand(c, c.ops[1], 16, Access::Read);
    if (auto* o = std::get_if<Outcome*>(&m))
        return **o;
    std::array<uint8_t, 16> desc {};
    if (auto* o = access_failed(c, c.mem.read(std::get<MemOperand>(m).linear, desc)))
        return *o;
    uint64_t const pcid_word = load_le(std::span(desc).first(8));
    uint64_t const address = load_le(std::span(desc).subspan(8, 8));
    if (type > 3)
        return fault(c, gp0());
    if (type <= 1) {
        if (pcid_word > 0xfff)
            return fault(c, gp0());
        if (!(c.s.cr4 & CR4_PCIDE) && pcid_word != 0)
            return fault(c, gp0());
        if (type == 0 && !is_canonical(address))
            return fault(c, gp0());
    }
    return complete(c, DIRTY_TLB);
}

/// The general register a 16-, 32- or 64-bit register destination (operand 0) names; nullopt for other forms.
std::optional<GprRef> gpr_destination(Context const& c)
{
    auto const& dst = c.ops[0];
    size_t const size = dst.size / 8u;
    if (dst.type != ZYDIS_OPERAND_TYPE_REGISTER || (size != 2 && size != 4 && size != 8))
        return std::nullopt;
    return gpr_ref(dst.reg.value);
}

/// The value of a general-register or memory source operand (`size` bytes from memory), or the outcome that ended
/// the instruction (an unsupported form, or the fault of the memory access).
std::variant<uint64_t, Outcome*> read_gpr_or_memory(Context& c, ZydisDecodedOperand const& src, size_t size)
{
    if (src.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        auto g = gpr_ref(src.reg.value);
        if (!g)
            return &unsupported(c, "unexpected register operand");
        return read_gpr(c.s, *g);
    }
    if (src.type != ZYDIS_OPERAND_TYPE_MEMORY)
        return &unsupported(c, "operand forms");
    auto m = memory_operand(c, src, size, Access::Read);
    if (auto* o = std::get_if<Outcome*>(&m))
        return *o;
    std::array<uint8_t, 8> b {};
    if (auto* o = access_failed(c, c.mem.read(std::get<MemOperand>(m).linear, std::span(b).first(size))))
        return o;
    return load_le(std::span(b).first(size));
}

// --- POPCNT (SDM vol. 2 "POPCNT"): the destination gets the number of set bits of the source; ZF = (source == 0),
// OF SF AF CF PF cleared ---

Outcome& op_popcnt(Context& c)
{
    auto const g = gpr_destination(c);
    if (!g)
        return unsupported(c, "operand forms");
    auto const& src = c.ops[1];
    size_t const size = c.ops[0].size / 8u;
    auto source = read_gpr_or_memory(c, src, size);
    if (auto* o = std::get_if<Outcome*>(&source))
        return **o;
    uint64_t const value = std::get<uint64_t>(source);
    write_gpr(c.s, *g, static_cast<uint64_t>(std::popcount(value)));
    c.s.rflags &= ~(RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF);
    if (value == 0)
        c.s.rflags |= RFLAGS_ZF;
    return complete(c, 0);
}

// --- LAR, LSL (SDM vol. 2 "LAR", "LSL"): the access rights or the byte-granular limit of the descriptor a selector
// names, ZF = 1; ZF = 0 and the destination unchanged when the selector is null or beyond its table's limit, the
// descriptor's type is not one the instruction accepts, or (not a conforming code segment) its DPL is below CPL or
// the selector's RPL. Presence is not checked. #UD in real and virtual-8086 mode. Not modelled: in IA-32e mode the
// upper half of a 16-byte system descriptor is neither limit-checked nor read. Linux's paranoid exception entry
// reads its CPU number this way (LSL of the per-CPU GDT entry) ---

Outcome& op_lar_lsl(Context& c, bool lsl)
{
    if (c.mode == CpuMode::Real || c.mode == CpuMode::Virtual8086)
        return fault(c, ud());
    auto const g = gpr_destination(c);
    if (!g)
        return unsupported(c, "operand forms");
    auto const& src = c.ops[1];
    size_t const size = c.ops[0].size / 8u;
    auto source = read_gpr_or_memory(c, src, 2);
    if (auto* o = std::get_if<Outcome*>(&source))
        return **o;
    auto const selector = static_cast<uint16_t>(std::get<uint64_t>(source));
    auto fail = [&c]() -> Outcome& {
        c.s.rflags &= ~RFLAGS_ZF;
        return complete(c, 0);
    };
    if ((selector & 0xfffcu) == 0)
        return fail();
    auto read = read_descriptor(c.s, c.mem, selector);
    if (auto* e = std::get_if<Exception>(&read)) {
        if (e->vector == VEC_GP)
            return fail(); // beyond the GDT's or LDT's limit: not a fault for LAR/LSL
        return fault(c, *e);
    }
    if (auto* u = std::get_if<Unsupported>(&read))
        return unsupported(c, u->what);
    Descriptor const& d = std::get<Descriptor>(read);
    bool const long_mode = (c.s.efer & EFER_LMA) != 0;
    if (!d.s()) {
        bool ok = false;
        switch (d.type()) {
        case 0x2: // LDT
        case 0x9: // available TSS (32-bit; 64-bit in IA-32e mode)
        case 0xb: // busy TSS
            ok = true;
            break;
        case 0x1: // available 16-bit TSS
        case 0x3: // busy 16-bit TSS
            ok = !long_mode;
            break;
        case 0x4: // 16-bit call gate
        case 0x5: // task gate
            ok = !lsl && !long_mode;
            break;
        case 0xc: // 32-bit call gate (64-bit in IA-32e mode)
            ok = !lsl;
            break;
        default: break;
        }
        if (!ok)
            return fail();
    }
    bool const conforming = d.code() && (d.type() & 4) != 0;
    if (!conforming && (d.dpl() < cpu_cpl(c.s) || d.dpl() < (selector & 3)))
        return fail();
    uint32_t value = 0;
    if (lsl) {
        uint32_t limit = uint32_t { d.raw[0] } | uint32_t { d.raw[1] } << 8 | (d.raw[6] & 0xfu) << 16;
        if (d.raw[6] & 0x80) // G: 4 KiB units
            limit = (limit << 12) | 0xfffu;
        value = limit;
    } else {
        uint32_t const dword1 = uint32_t { d.raw[4] } | uint32_t { d.raw[5] } << 8 | uint32_t { d.raw[6] } << 16
            | uint32_t { d.raw[7] } << 24;
        value = dword1 & 0x00f0ff00u;
    }
    if (size == 2)
        value &= 0xffffu;
    write_gpr(c.s, *g, value);
    c.s.rflags |= RFLAGS_ZF;
    return complete(c, 0);
}

// --- CLAC, STAC (SDM vol. 2): clear or set EFLAGS.AC; #UD at CPL > 0 (virtual-8086 mode included) ---

Outcome& op_clac_stac(Context& c, bool set)
{
    if (cpu_cpl(c.s) != 0)
        return fault(c, ud());
    if (set)
        c.s.rflags |= RFLAGS_AC;
    else
        c.s.rflags &= ~RFLAGS_AC;
    return complete(c, 0);
}

// --- XSAVE family (emu/xsave.cpp) ---

Outcome& op_xsave(Context& c, XsaveOp op, bool rex_w)
{
    auto const& mop = c.ops[0];
    if (mop.type != ZYDIS_OPERAND_TYPE_MEMORY)
        return fault(c, ud());
    auto ea = effective_address(c, mop);
    if (!ea)
        return unsupported(c, "memory operand with an unexpected register");
    Seg const sr = seg_of(mop.mem.segment);
    SegmentLinear segment = [&c, sr, offset = *ea](size_t size, Access access) {
        return segment_linear(c.s, c.mode, sr, offset, size, access);
    };
    auto r = xsave_family(c.s, c.mem, op, rex_w, segment);
    if (auto* e = std::get_if<Exception>(&r))
        return fault(c, *e);
    if (auto* u = std::get_if<Unsupported>(&r))
        return unsupported(c, u->what);
    return complete(c, std::get<uint32_t>(r));
}

// --- XGETBV (SDM vol. 2 "XGETBV"): #UD without CR4.OSXSAVE, #GP(0) for an XCR that does not exist; ECX = 1 reads
// XCR0 AND XINUSE where CPUID.(0xD,1):EAX[2] offers it ---

Outcome& op_xgetbv(Context& c)
{
    if (!(c.s.cr4 & CR4_OSXSAVE))
        return fault(c, ud());
    uint64_t value = 0;
    switch (c.s.reg(Gpr::Rcx) & 0xffffffffu) {
    case 0: value = c.s.xcr0; break;
    case 1:
        if (!(c.s.xsave_layout.features & 4))
            return fault(c, gp0());
        value = c.s.xcr0 & xsave_in_use(c.s);
        break;
    default: return fault(c, gp0());
    }
    c.s.reg(Gpr::Rax) = value & 0xffffffffu; // 32-bit results zero-extend in 64-bit mode
    c.s.reg(Gpr::Rdx) = value >> 32;
    return complete(c, 0);
}

// --- SSE-family instructions (emu/sse.h computes; this part reaches the operands) ---
// Legacy (non-VEX) 128-bit forms only. Exceptions (SDM vol. 2 2.4, exception types 4 and 5): #UD with CR0.EM set or
// CR4.OSFXSR clear, #NM with CR0.TS set, segment #GP(0)/#SS(0), #GP(0) for a 16-byte memory operand not 16-byte
// aligned (except the unaligned moves MOVDQU, MOVUPS, MOVUPD, LDDQU), #PF. The XMM registers live in the XSAVE image;
// writing one marks the SSE component in use (XSTATE_BV bit 1), the others already hold their initial zeros.

constexpr size_t XMM_AREA = 160;
constexpr size_t XSTATE_BV_BYTE = 512;

bool is_xmm(ZydisDecodedOperand const& op)
{
    return op.type == ZYDIS_OPERAND_TYPE_REGISTER && ZydisRegisterGetClass(op.reg.value) == ZYDIS_REGCLASS_XMM;
}

size_t xmm_index(ZydisDecodedOperand const& op) { return static_cast<size_t>(op.reg.value - ZYDIS_REGISTER_XMM0); }

Xmm read_xmm(CpuState const& s, size_t n)
{
    Xmm v {};
    std::memcpy(v.data(), s.xsave.data() + XMM_AREA + 16 * n, 16);
    return v;
}

void write_xmm(CpuState& s, size_t n, Xmm const& v)
{
    std::memcpy(s.xsave.data() + XMM_AREA + 16 * n, v.data(), 16);
    s.xsave[XSTATE_BV_BYTE] |= 2;
}

bool unaligned_form(ZydisMnemonic m)
{
    return m == ZYDIS_MNEMONIC_MOVDQU || m == ZYDIS_MNEMONIC_MOVUPS || m == ZYDIS_MNEMONIC_MOVUPD
        || m == ZYDIS_MNEMONIC_LDDQU;
}

/// An SSE instruction's operand as an XMM value: an XMM register, a general register or an immediate (zero-extended),
/// or memory of the operand's size.
std::variant<Xmm, Outcome*> sse_read(Context& c, ZydisDecodedOperand const& op)
{
    if (is_xmm(op))
        return read_xmm(c.s, xmm_index(op));
    if (op.type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        return xmm_from_low(op.imm.value.u, 8);
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        auto g = gpr_ref(op.reg.value);
        if (!g)
            return &unsupported(c, "unexpected register operand");
        return xmm_from_low(read_gpr(c.s, *g), g->bits / 8);
    }
    if (op.type != ZYDIS_OPERAND_TYPE_MEMORY)
        return &unsupported(c, "operand forms");
    size_t const size = op.size / 8u;
    if (size == 0 || size > 16)
        return &unsupported(c, "operand size");
    auto m = memory_operand(c, op, size, Access::Read);
    if (auto* o = std::get_if<Outcome*>(&m))
        return *o;
    uint64_t const lin = std::get<MemOperand>(m).linear;
    if (size == 16 && (lin & 15) && !unaligned_form(c.insn.mnemonic))
        return &fault(c, gp0());
    Xmm v {};
    if (auto* o = access_failed(c, c.mem.read(lin, std::span(v).first(size))))
        return o;
    return v;
}

/// Writes the low bytes of `v` to an SSE instruction's destination: a whole XMM register, a general register
/// (32-bit writes zero-extend) or memory of the operand's size. nullptr when done.
Outcome* sse_write(Context& c, ZydisDecodedOperand const& op, Xmm const& v, uint32_t& dirty)
{
    if (is_xmm(op)) {
        write_xmm(c.s, xmm_index(op), v);
        dirty |= DIRTY_XSTATE;
        return nullptr;
    }
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        auto g = gpr_ref(op.reg.value);
        if (!g)
            return &unsupported(c, "unexpected register operand");
        write_gpr(c.s, *g, xmm_low64(v));
        return nullptr;
    }
    if (op.type != ZYDIS_OPERAND_TYPE_MEMORY)
        return &unsupported(c, "operand forms");
    size_t const size = op.size / 8u;
    if (size == 0 || size > 16)
        return &unsupported(c, "operand size");
    auto m = memory_operand(c, op, size, Access::Write);
    if (auto* o = std::get_if<Outcome*>(&m))
        return *o;
    uint64_t const lin = std::get<MemOperand>(m).linear;
    if (size == 16 && (lin & 15) && !unaligned_form(c.insn.mnemonic))
        return &fault(c, gp0());
    return access_failed(c, c.mem.write(lin, std::span(v).first(size)));
}

/// The checks every SSE instruction makes first, and the forms this emulator leaves alone. nullptr to go on.
Outcome* sse_prologue(Context& c)
{
    if (c.insn.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
        return &unsupported(c, "VEX/EVEX-encoded forms");
    for (size_t i = 0; i < c.insn.operand_count_visible; ++i) {
        auto const& op = c.ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && ZydisRegisterGetClass(op.reg.value) == ZYDIS_REGCLASS_MMX)
            return &unsupported(c, "MMX forms");
        if (is_xmm(op) && xmm_index(op) >= 16)
            return &unsupported(c, "operand forms");
    }
    if ((c.s.cr0 & CR0_EM) || !(c.s.cr4 & CR4_OSFXSR))
        return &fault(c, ud());
    if (c.s.cr0 & CR0_TS)
        return &fault(c, nm());
    return nullptr;
}

uint8_t imm8_operand(Context const& c)
{
    for (size_t i = 0; i < c.insn.operand_count_visible; ++i)
        if (c.ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
            return static_cast<uint8_t>(c.ops[i].imm.value.u);
    return 0;
}

/// MOVD, MOVQ and the 128-bit moves: `width` bytes of the source go to the destination; an XMM destination's
/// other bytes are zeroed.
Outcome& op_sse_move(Context& c, unsigned width)
{
    if (auto* o = sse_prologue(c))
        return *o;
    auto src = sse_read(c, c.ops[1]);
    if (auto* o = std::get_if<Outcome*>(&src))
        return **o;
    Xmm v = std::get<Xmm>(src);
    if (width < 16)
        v = xmm_from_low(xmm_low64(v), width);
    uint32_t dirty = 0;
    if (auto* o = sse_write(c, c.ops[0], v, dirty))
        return *o;
    return complete(c, dirty);
}

/// dst = dst OP src (emu/sse.h).
Outcome& op_sse_compute(Context& c)
{
    if (auto* o = sse_prologue(c))
        return *o;
    if (!is_xmm(c.ops[0]))
        return unsupported(c, "operand forms");
    auto src = sse_read(c, c.ops[1]);
    if (auto* o = std::get_if<Outcome*>(&src))
        return **o;
    auto r = sse_compute(c.insn.mnemonic, read_xmm(c.s, xmm_index(c.ops[0])), std::get<Xmm>(src), imm8_operand(c));
    if (!r)
        return unsupported(c, "instruction not emulated");
    write_xmm(c.s, xmm_index(c.ops[0]), *r);
    return complete(c, DIRTY_XSTATE);
}

/// PTEST: ZF = ((dst AND src) == 0), CF = ((NOT dst AND src) == 0); AF OF PF SF cleared.
Outcome& op_ptest(Context& c)
{
    if (auto* o = sse_prologue(c))
        return *o;
    auto src = sse_read(c, c.ops[1]);
    if (auto* o = std::get_if<Outcome*>(&src))
        return **o;
    Xmm const d = read_xmm(c.s, xmm_index(c.ops[0]));
    Xmm const& s = std::get<Xmm>(src);
    bool zf = true, cf = true;
    for (size_t i = 0; i < 16; ++i) {
        zf = zf && (d[i] & s[i]) == 0;
        cf = cf && (~d[i] & s[i]) == 0;
    }
    c.s.rflags &= ~(RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_CF | RFLAGS_PF);
    c.s.rflags |= (zf ? RFLAGS_ZF : 0) | (cf ? RFLAGS_CF : 0);
    return complete(c, 0);
}

/// PEXTRB/W/D/Q: lane imm8 of the XMM source to a general register (zero-extended) or memory.
Outcome& op_pextr(Context& c, unsigned lane_bytes)
{
    if (auto* o = sse_prologue(c))
        return *o;
    if (!is_xmm(c.ops[1]))
        return unsupported(c, "operand forms");
    Xmm const s = read_xmm(c.s, xmm_index(c.ops[1]));
    size_t const index = imm8_operand(c) & (16 / lane_bytes - 1);
    uint64_t value = 0;
    for (size_t i = 0; i < lane_bytes; ++i)
        value |= uint64_t(s[index * lane_bytes + i]) << (8 * i);
    uint32_t dirty = 0;
    if (auto* o = sse_write(c, c.ops[0], xmm_from_low(value, lane_bytes), dirty))
        return *o;
    return complete(c, dirty);
}

/// PINSRB/W/D/Q: the low lane of a general register or memory into lane imm8 of the XMM destination.
Outcome& op_pinsr(Context& c, unsigned lane_bytes)
{
    if (auto* o = sse_prologue(c))
        return *o;
    if (!is_xmm(c.ops[0]))
        return unsupported(c, "operand forms");
    auto src = sse_read(c, c.ops[1]);
    if (auto* o = std::get_if<Outcome*>(&src))
        return **o;
    Xmm d = read_xmm(c.s, xmm_index(c.ops[0]));
    size_t const index = imm8_operand(c) & (16 / lane_bytes - 1);
    for (size_t i = 0; i < lane_bytes; ++i)
        d[index * lane_bytes + i] = std::get<Xmm>(src)[i];
    write_xmm(c.s, xmm_index(c.ops[0]), d);
    return complete(c, DIRTY_XSTATE);
}

/// PMOVMSKB, MOVMSKPS, MOVMSKPD: the sign bit of each lane to a general register (zero-extended).
Outcome& op_movmsk(Context& c, unsigned lane_bytes)
{
    if (auto* o = sse_prologue(c))
        return *o;
    auto g = c.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? gpr_ref(c.ops[0].reg.value) : std::nullopt;
    if (!g || !is_xmm(c.ops[1]))
        return unsupported(c, "operand forms");
    Xmm const s = read_xmm(c.s, xmm_index(c.ops[1]));
    uint64_t mask = 0;
    for (size_t i = 0; i < 16 / lane_bytes; ++i)
        mask |= uint64_t(s[i * lane_bytes + lane_bytes - 1] >> 7) << i;
    write_gpr(c.s, *g, mask);
    return complete(c, 0);
}

/// CRC32 r32/r64, r/m8/16/32/64 (SSE4.2): CRC-32C of the source bytes continued from the destination's low 32 bits.
/// Flags unchanged.
Outcome& op_crc32(Context& c)
{
    auto g = c.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? gpr_ref(c.ops[0].reg.value) : std::nullopt;
    if (!g)
        return unsupported(c, "operand forms");
    uint64_t data = 0;
    unsigned size = 0;
    auto const& src = c.ops[1];
    if (src.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        auto sg = gpr_ref(src.reg.value);
        if (!sg)
            return unsupported(c, "unexpected register operand");
        data = read_gpr(c.s, *sg);
        size = sg->bits / 8;
    } else if (src.type == ZYDIS_OPERAND_TYPE_MEMORY) {
        size = src.size / 8u;
        if (size == 0 || size > 8)
            return unsupported(c, "operand size");
        auto m = memory_operand(c, src, size, Access::Read);
        if (auto* o = std::get_if<Outcome*>(&m))
            return **o;
        std::array<uint8_t, 8> b {};
        if (auto* o = access_failed(c, c.mem.read(std::get<MemOperand>(m).linear, std::span(b).first(size))))
            return *o;
        data = load_le(std::span(b).first(size));
    } else {
        return unsupported(c, "operand forms");
    }
    uint32_t const crc = crc32c_update(static_cast<uint32_t>(c.s.gpr[g->index]), data, size);
    c.s.gpr[g->index] = crc; // both forms zero-extend the 32-bit result
    return complete(c, 0);
}

// --- IRET, IRETD, IRETQ outside real mode (emu/iret.h): RIP, RFLAGS (RF included) come from the stack, so this
// does not go through complete() ---

Outcome& op_iret(Context& c, unsigned operand_bits)
{
    auto r = iret_protected(c.s, c.mem, operand_bits);
    if (auto* e = std::get_if<Exception>(&r))
        return fault(c, *e);
    if (auto* u = std::get_if<Unsupported>(&r))
        return unsupported(c, u->what);
    c.out.kind = Outcome::Kind::Completed;
    c.out.dirty = std::get<uint32_t>(r);
    return c.out;
}

ZydisMachineMode zydis_mode(CpuMode m)
{
    switch (m) {
    case CpuMode::Real:
    case CpuMode::Virtual8086: return ZYDIS_MACHINE_MODE_REAL_16;
    case CpuMode::Protected16: return ZYDIS_MACHINE_MODE_LEGACY_16;
    case CpuMode::Protected32: return ZYDIS_MACHINE_MODE_LEGACY_32;
    case CpuMode::Compat16: return ZYDIS_MACHINE_MODE_LONG_COMPAT_16;
    case CpuMode::Compat32: return ZYDIS_MACHINE_MODE_LONG_COMPAT_32;
    case CpuMode::Long64: return ZYDIS_MACHINE_MODE_LONG_64;
    }
    return ZYDIS_MACHINE_MODE_LONG_64;
}

ZydisStackWidth zydis_stack(CpuState const& s, CpuMode m)
{
    if (m == CpuMode::Long64)
        return ZYDIS_STACK_WIDTH_64;
    if (m == CpuMode::Real || m == CpuMode::Virtual8086)
        return ZYDIS_STACK_WIDTH_16;
    return s.segment(Seg::Ss).db ? ZYDIS_STACK_WIDTH_32 : ZYDIS_STACK_WIDTH_16;
}

/// Fetches the instruction bytes at CS:RIP: at most 15, fewer where the code segment's limit or the page tables
/// stop the fetch. Returns the fault that stopped it, if any.
Fault fetch(Context& c)
{
    size_t want = c.out.bytes.size();
    Fault stop;
    if (c.mode != CpuMode::Long64) {
        Segment const& cs = c.s.segment(Seg::Cs);
        uint64_t limit_left = c.s.rip <= cs.limit ? cs.limit - c.s.rip + 1 : 0;
        if (limit_left < want) {
            want = static_cast<size_t>(limit_left);
            stop = gp0();
        }
    } else if (!is_canonical(c.s.rip)) {
        return gp0();
    }
    uint64_t lin = c.mode == CpuMode::Long64 ? c.s.rip : ((c.s.segment(Seg::Cs).base + c.s.rip) & 0xffffffffu);
    auto f = c.mem.fetch(lin, std::span(c.out.bytes).first(want));
    c.out.length = static_cast<uint8_t>(f.bytes);
    if (!std::holds_alternative<std::monostate>(f.stop))
        return f.stop;
    return stop;
}

} // namespace

Outcome emulate(CpuState& state, PhysicalMemory& memory)
{
    Outcome out;
    CpuMode mode = cpu_mode(state);
    Context c { state, LinearMemory(state, memory), mode, {}, {}, 0, out };

    Fault const fetch_stop = fetch(c);
    ZydisDecoder decoder;
    if (ZYAN_FAILED(ZydisDecoderInit(&decoder, zydis_mode(mode), zydis_stack(state, mode))))
        return unsupported(c, "decoder initialisation failed");
    ZyanStatus st = ZydisDecoderDecodeFull(&decoder, out.bytes.data(), out.length, &c.insn, c.ops.data());
    if (st == ZYDIS_STATUS_NO_MORE_DATA || (out.length == 0 && ZYAN_FAILED(st))) {
        // The fetch stopped before the instruction's end: that fault is what the processor raises.
        if (auto* o = access_failed(c, fetch_stop))
            return *o;
        return unsupported(c, "instruction bytes unavailable");
    }
    if (ZYAN_FAILED(st)) {
        out.mnemonic = "(invalid)";
        return fault(c, ud());
    }
    out.length = c.insn.length;
    out.mnemonic = ZydisMnemonicGetString(c.insn.mnemonic);
    if (!out.mnemonic)
        out.mnemonic = "(unknown)";
    c.next_rip = state.rip + c.insn.length;

    switch (c.insn.mnemonic) {
    case ZYDIS_MNEMONIC_FWAIT: return op_fwait(c);
    case ZYDIS_MNEMONIC_FNINIT: return op_fninit(c);
    case ZYDIS_MNEMONIC_FNCLEX: return op_fnclex(c);
    case ZYDIS_MNEMONIC_FLDCW: return op_fldcw(c);
    case ZYDIS_MNEMONIC_FNSTCW: return op_fnstore(c, state.fpu.fcw);
    case ZYDIS_MNEMONIC_FNSTSW: return op_fnstore(c, state.fpu.fsw);
    case ZYDIS_MNEMONIC_LDMXCSR: return op_mxcsr(c, true);
    case ZYDIS_MNEMONIC_STMXCSR: return op_mxcsr(c, false);
    case ZYDIS_MNEMONIC_INT3: return op_trap(c, VEC_BP);
    case ZYDIS_MNEMONIC_INT1: return op_trap(c, VEC_DB);
    case ZYDIS_MNEMONIC_INTO:
        if (!(state.rflags & RFLAGS_OF))
            return complete(c, 0);
        return op_trap(c, 4);
    case ZYDIS_MNEMONIC_MOVBE: return op_movbe(c);
    case ZYDIS_MNEMONIC_CMPXCHG8B: return op_cmpxchg_wide(c, false);
    case ZYDIS_MNEMONIC_CMPXCHG16B: return op_cmpxchg_wide(c, true);
    case ZYDIS_MNEMONIC_INVPCID: return op_invpcid(c);
    case ZYDIS_MNEMONIC_POPCNT: return op_popcnt(c);
    case ZYDIS_MNEMONIC_LAR: return op_lar_lsl(c, false);
    case ZYDIS_MNEMONIC_LSL: return op_lar_lsl(c, true);
    case ZYDIS_MNEMONIC_CLAC: return op_clac_stac(c, false);
    case ZYDIS_MNEMONIC_STAC: return op_clac_stac(c, true);
    case ZYDIS_MNEMONIC_XGETBV: return op_xgetbv(c);
    case ZYDIS_MNEMONIC_XSAVE: return op_xsave(c, XsaveOp::Xsave, false);
    case ZYDIS_MNEMONIC_XSAVE64: return op_xsave(c, XsaveOp::Xsave, true);
    case ZYDIS_MNEMONIC_XSAVEOPT: return op_xsave(c, XsaveOp::Xsaveopt, false);
    case ZYDIS_MNEMONIC_XSAVEOPT64: return op_xsave(c, XsaveOp::Xsaveopt, true);
    case ZYDIS_MNEMONIC_XSAVEC: return op_xsave(c, XsaveOp::Xsavec, false);
    case ZYDIS_MNEMONIC_XSAVEC64: return op_xsave(c, XsaveOp::Xsavec, true);
    case ZYDIS_MNEMONIC_XSAVES: return op_xsave(c, XsaveOp::Xsaves, false);
    case ZYDIS_MNEMONIC_XSAVES64: return op_xsave(c, XsaveOp::Xsaves, true);
    case ZYDIS_MNEMONIC_XRSTOR: return op_xsave(c, XsaveOp::Xrstor, false);
    case ZYDIS_MNEMONIC_XRSTOR64: return op_xsave(c, XsaveOp::Xrstor, true);
    case ZYDIS_MNEMONIC_XRSTORS: return op_xsave(c, XsaveOp::Xrstors, false);
    case ZYDIS_MNEMONIC_XRSTORS64: return op_xsave(c, XsaveOp::Xrstors, true);
    case ZYDIS_MNEMONIC_MOVD: return op_sse_move(c, 4);
    case ZYDIS_MNEMONIC_MOVQ: return op_sse_move(c, 8);
    case ZYDIS_MNEMONIC_MOVDQA:
    case ZYDIS_MNEMONIC_MOVDQU:
    case ZYDIS_MNEMONIC_MOVAPS:
    case ZYDIS_MNEMONIC_MOVUPS:
    case ZYDIS_MNEMONIC_MOVAPD:
    case ZYDIS_MNEMONIC_MOVUPD:
    case ZYDIS_MNEMONIC_LDDQU:
    case ZYDIS_MNEMONIC_MOVNTDQ:
    case ZYDIS_MNEMONIC_MOVNTDQA:
    case ZYDIS_MNEMONIC_MOVNTPS:
    case ZYDIS_MNEMONIC_MOVNTPD: return op_sse_move(c, 16);
    case ZYDIS_MNEMONIC_PTEST: return op_ptest(c);
    case ZYDIS_MNEMONIC_PEXTRB: return op_pextr(c, 1);
    case ZYDIS_MNEMONIC_PEXTRW: return op_pextr(c, 2);
    case ZYDIS_MNEMONIC_PEXTRD: return op_pextr(c, 4);
    case ZYDIS_MNEMONIC_PEXTRQ: return op_pextr(c, 8);
    case ZYDIS_MNEMONIC_PINSRB: return op_pinsr(c, 1);
    case ZYDIS_MNEMONIC_PINSRW: return op_pinsr(c, 2);
    case ZYDIS_MNEMONIC_PINSRD: return op_pinsr(c, 4);
    case ZYDIS_MNEMONIC_PINSRQ: return op_pinsr(c, 8);
    case ZYDIS_MNEMONIC_PMOVMSKB: return op_movmsk(c, 1);
    case ZYDIS_MNEMONIC_MOVMSKPS: return op_movmsk(c, 4);
    case ZYDIS_MNEMONIC_MOVMSKPD: return op_movmsk(c, 8);
    case ZYDIS_MNEMONIC_CRC32: return op_crc32(c);
    case ZYDIS_MNEMONIC_IRET: return op_iret(c, 16);
    case ZYDIS_MNEMONIC_IRETD: return op_iret(c, 32);
    case ZYDIS_MNEMONIC_IRETQ: return op_iret(c, 64);
    default: {
        if (c.insn.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && x87_handles(c.insn.opcode, static_cast<uint8_t>(
                (c.insn.raw.modrm.mod << 6) | (c.insn.raw.modrm.reg << 3) | c.insn.raw.modrm.rm)))
            return op_x87(c);
        if (sse_computes(c.insn.mnemonic))
            return op_sse_compute(c);
        return unsupported(c, "instruction not emulated");
    }
    }
}

} // namespace hako::emu
