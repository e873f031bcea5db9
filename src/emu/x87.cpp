// The x87 data-transfer, arithmetic and comparison instructions: see x87.h.
#include "emu/x87.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <span>

#include "emu/bytes.h"

namespace hako::emu {

namespace {

// Status word (SDM vol. 1 8.1.3).
constexpr uint16_t IE = 1u << 0, DE = 1u << 1, ZE = 1u << 2, OE = 1u << 3, UE = 1u << 4;
constexpr uint16_t SF = 1u << 6, ES = 1u << 7, B = 1u << 15;
constexpr uint16_t C0 = 1u << 8, C1 = 1u << 9, C2 = 1u << 10, C3 = 1u << 14;
constexpr uint16_t FLAGS = 0x3f;
constexpr unsigned TOP_SHIFT = 11;

/// An 80-bit extended value in the 16-byte slot FXSAVE gives it (bytes 10-15 unused).
struct alignas(16) F80 {
    std::array<uint8_t, 16> b {};
};

F80 make_f80(uint16_t sign_exp, uint64_t mantissa)
{
    F80 v;
    for (size_t i = 0; i < 8; ++i)
        v.b[i] = static_cast<uint8_t>(mantissa >> (8 * i));
    v.b[8] = static_cast<uint8_t>(sign_exp);
    v.b[9] = static_cast<uint8_t>(sign_exp >> 8);
    return v;
}

uint64_t mantissa(F80 const& v)
{
    uint64_t m = 0;
    for (size_t i = 8; i-- > 0;)
        m = (m << 8) | v.b[i];
    return m;
}

uint16_t sign_exp(F80 const& v) { return static_cast<uint16_t>(v.b[8] | (v.b[9] << 8)); }

/// The floating-point indefinite (a negative QNaN, SDM vol. 1 4.8.3.7).
F80 const INDEFINITE = make_f80(0xffff, 0xc000000000000000ull);

/// An integer, converted exactly (every 64-bit integer fits the 64-bit significand).
F80 from_int(int64_t i)
{
    if (i == 0)
        return make_f80(0, 0);
    uint16_t const sign = i < 0 ? uint16_t { 0x8000 } : uint16_t { 0 };
    uint64_t const magnitude = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
    int const shift = std::countl_zero(magnitude);
    return make_f80(static_cast<uint16_t>(sign | (16383 + 63 - shift)), magnitude << shift);
}

// --- The host's x87 unit. Every operation runs with the guest's RC and PC and all exceptions masked, so the host
// never traps; HostX87 saves the host's control word, and restores it (with the status flags cleared) afterwards.
// Each asm statement leaves the host register stack empty, as the x86-64 ABI expects between statements. ---

class HostX87 final {
public:
    explicit HostX87(uint16_t guest_cw)
    {
        asm volatile("fnstcw %0" : "=m"(m_saved));
        uint16_t const cw = static_cast<uint16_t>((guest_cw & 0x0f00) | 0x007f);
        asm volatile("fldcw %0\n\tfnclex" : : "m"(cw) : "memory");
    }
    ~HostX87() { asm volatile("fnclex\n\tfldcw %0" : : "m"(m_saved) : "memory"); }
    HostX87(HostX87 const&) = delete;
    HostX87& operator=(HostX87 const&) = delete;

    /// The status word after the operations so far.
    uint16_t status() const
    {
        uint16_t sw = 0;
        asm volatile("fnstsw %0" : "=m"(sw) : : "memory");
        return sw;
    }

private:
    uint16_t m_saved { 0x037f };
};

enum class Arith : uint8_t { Add, Mul, Sub, Subr, Div, Divr };

/// r = d OP s, all extended.
void host_arith(Arith op, F80 const& d, F80 const& s, F80& r, uint16_t& sw)
{
    switch (op) {
    case Arith::Add:
        asm volatile("fldt %3\n\tfldt %2\n\tfadd %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(d), "m"(s)
            : "memory", "st", "st(1)");
        break;
    case Arith::Mul:
        asm volatile("fldt %3\n\tfldt %2\n\tfmul %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(d), "m"(s)
            : "memory", "st", "st(1)");
        break;
    case Arith::Sub:
        asm volatile("fldt %3\n\tfldt %2\n\tfsub %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(d), "m"(s)
            : "memory", "st", "st(1)");
        break;
    case Arith::Subr:
        asm volatile("fldt %3\n\tfldt %2\n\tfsubr %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(d), "m"(s)
            : "memory", "st", "st(1)");
        break;
    case Arith::Div:
        asm volatile("fldt %3\n\tfldt %2\n\tfdiv %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(d), "m"(s)
            : "memory", "st", "st(1)");
        break;
    case Arith::Divr:
        asm volatile("fldt %3\n\tfldt %2\n\tfdivr %%st(1), %%st\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(d), "m"(s)
            : "memory", "st", "st(1)");
        break;
    }
}

/// r = d OP m32fp.
void host_arith_f32(Arith op, F80 const& d, uint32_t const& s, F80& r, uint16_t& sw)
{
    switch (op) {
    case Arith::Add: asm volatile("fldt %2\n\tfadds %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Mul: asm volatile("fldt %2\n\tfmuls %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Sub: asm volatile("fldt %2\n\tfsubs %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Subr: asm volatile("fldt %2\n\tfsubrs %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Div: asm volatile("fldt %2\n\tfdivs %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Divr: asm volatile("fldt %2\n\tfdivrs %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    }
}

/// r = d OP m64fp.
void host_arith_f64(Arith op, F80 const& d, uint64_t const& s, F80& r, uint16_t& sw)
{
    switch (op) {
    case Arith::Add: asm volatile("fldt %2\n\tfaddl %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Mul: asm volatile("fldt %2\n\tfmull %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Sub: asm volatile("fldt %2\n\tfsubl %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Subr: asm volatile("fldt %2\n\tfsubrl %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Div: asm volatile("fldt %2\n\tfdivl %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    case Arith::Divr: asm volatile("fldt %2\n\tfdivrl %3\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(d), "m"(s) : "memory", "st"); break;
    }
}

enum class Cmp : uint8_t { Ordered, Unordered };

/// Compares a with b (C0, C2, C3 in the status word).
void host_compare(Cmp kind, F80 const& a, F80 const& b)
{
    if (kind == Cmp::Ordered)
        asm volatile("fldt %1\n\tfldt %0\n\tfcompp" : : "m"(a), "m"(b) : "memory", "st", "st(1)");
    else
        asm volatile("fldt %1\n\tfldt %0\n\tfucompp" : : "m"(a), "m"(b) : "memory", "st", "st(1)");
}

void host_compare_f32(F80 const& a, uint32_t const& b)
{
    asm volatile("fldt %0\n\tfcomps %1" : : "m"(a), "m"(b) : "memory", "st");
}

void host_compare_f64(F80 const& a, uint64_t const& b)
{
    asm volatile("fldt %0\n\tfcompl %1" : : "m"(a), "m"(b) : "memory", "st");
}

void host_tst(F80 const& a) { asm volatile("fldt %0\n\tftst\n\tfstp %%st(0)" : : "m"(a) : "memory", "st"); }

void host_load_f32(uint32_t const& m, F80& r) { asm volatile("flds %1\n\tfstpt %0" : "=m"(r) : "m"(m) : "memory", "st"); }
void host_load_f64(uint64_t const& m, F80& r) { asm volatile("fldl %1\n\tfstpt %0" : "=m"(r) : "m"(m) : "memory", "st"); }
void host_store_f32(F80 const& a, uint32_t& m) { asm volatile("fldt %1\n\tfstps %0" : "=m"(m) : "m"(a) : "memory", "st"); }
void host_store_f64(F80 const& a, uint64_t& m) { asm volatile("fldt %1\n\tfstpl %0" : "=m"(m) : "m"(a) : "memory", "st"); }

enum class Round : uint8_t { ControlWord, Truncate };

/// FIST(P)/FISTTP into `bytes` (2, 4 or 8) bytes of `m`.
void host_store_int(F80 const& a, size_t bytes, Round round, uint64_t& m)
{
    uint16_t m16 = 0;
    uint32_t m32 = 0;
    uint64_t m64 = 0;
    bool const t = round == Round::Truncate;
    switch (bytes) {
    case 2:
        if (t)
            asm volatile("fldt %1\n\tfisttps %0" : "=m"(m16) : "m"(a) : "memory", "st");
        else
            asm volatile("fldt %1\n\tfistps %0" : "=m"(m16) : "m"(a) : "memory", "st");
        m = m16;
        break;
    case 4:
        if (t)
            asm volatile("fldt %1\n\tfisttpl %0" : "=m"(m32) : "m"(a) : "memory", "st");
        else
            asm volatile("fldt %1\n\tfistpl %0" : "=m"(m32) : "m"(a) : "memory", "st");
        m = m32;
        break;
    default:
        if (t)
            asm volatile("fldt %1\n\tfisttpll %0" : "=m"(m64) : "m"(a) : "memory", "st");
        else
            asm volatile("fldt %1\n\tfistpll %0" : "=m"(m64) : "m"(a) : "memory", "st");
        m = m64;
        break;
    }
}

enum class Const : uint8_t { L2t, L2e, Pi, Lg2, Ln2 };

void host_constant(Const k, F80& r)
{
    switch (k) {
    case Const::L2t: asm volatile("fldl2t\n\tfstpt %0" : "=m"(r) : : "memory", "st"); break;
    case Const::L2e: asm volatile("fldl2e\n\tfstpt %0" : "=m"(r) : : "memory", "st"); break;
    case Const::Pi: asm volatile("fldpi\n\tfstpt %0" : "=m"(r) : : "memory", "st"); break;
    case Const::Lg2: asm volatile("fldlg2\n\tfstpt %0" : "=m"(r) : : "memory", "st"); break;
    case Const::Ln2: asm volatile("fldln2\n\tfstpt %0" : "=m"(r) : : "memory", "st"); break;
    }
}

enum class Unary : uint8_t { Sqrt, Rndint, F2xm1, Sin, Cos };

/// r = OP a. FSIN/FCOS leave the operand (C2 = 1) when it is out of range.
void host_unary(Unary op, F80 const& a, F80& r, uint16_t& sw)
{
    switch (op) {
    case Unary::Sqrt: asm volatile("fldt %2\n\tfsqrt\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(a) : "memory", "st"); break;
    case Unary::Rndint: asm volatile("fldt %2\n\tfrndint\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(a) : "memory", "st"); break;
    case Unary::F2xm1: asm volatile("fldt %2\n\tf2xm1\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(a) : "memory", "st"); break;
    case Unary::Sin: asm volatile("fldt %2\n\tfsin\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(a) : "memory", "st"); break;
    case Unary::Cos: asm volatile("fldt %2\n\tfcos\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(a) : "memory", "st"); break;
    }
}

enum class Pair : uint8_t { Scale, Prem, Prem1, Yl2x, Yl2xp1, Patan };

/// FSCALE, FPREM, FPREM1: r = OP(st0, st1) replaces ST(0). FYL2X, FYL2XP1, FPATAN: r = OP(st1, st0) replaces ST(1)
/// and the stack pops.
void host_pair(Pair op, F80 const& st0, F80 const& st1, F80& r, uint16_t& sw)
{
    switch (op) {
    case Pair::Scale:
        asm volatile("fldt %3\n\tfldt %2\n\tfscale\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(st0), "m"(st1)
            : "memory", "st", "st(1)");
        break;
    case Pair::Prem:
        asm volatile("fldt %3\n\tfldt %2\n\tfprem\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(st0), "m"(st1)
            : "memory", "st", "st(1)");
        break;
    case Pair::Prem1:
        asm volatile("fldt %3\n\tfldt %2\n\tfprem1\n\tfnstsw %0\n\tfstpt %1\n\tfstp %%st(0)" : "=m"(sw), "=m"(r) : "m"(st0), "m"(st1)
            : "memory", "st", "st(1)");
        break;
    case Pair::Yl2x:
        asm volatile("fldt %3\n\tfldt %2\n\tfyl2x\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(st0), "m"(st1)
            : "memory", "st", "st(1)");
        break;
    case Pair::Yl2xp1:
        asm volatile("fldt %3\n\tfldt %2\n\tfyl2xp1\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(st0), "m"(st1)
            : "memory", "st", "st(1)");
        break;
    case Pair::Patan:
        asm volatile("fldt %3\n\tfldt %2\n\tfpatan\n\tfnstsw %0\n\tfstpt %1" : "=m"(sw), "=m"(r) : "m"(st0), "m"(st1)
            : "memory", "st", "st(1)");
        break;
    }
}

enum class Split : uint8_t { Xtract, Ptan, Sincos };

/// FXTRACT, FPTAN, FSINCOS: `low` replaces ST(0) and `high` is pushed; for FPTAN/FSINCOS out of range (C2 = 1) only
/// `low` (the operand, unchanged) is written.
void host_split(Split op, F80 const& a, F80& low, F80& high, uint16_t& sw)
{
    switch (op) {
    case Split::Xtract:
        asm volatile("fldt %3\n\tfxtract\n\tfnstsw %0\n\tfstpt %2\n\tfstpt %1" : "=m"(sw), "=m"(low), "=m"(high) : "m"(a)
            : "memory", "st", "st(1)");
        break;
    case Split::Ptan:
        asm volatile("fldt %3\n\tfptan\n\tfnstsw %0\n\tfnstsw %%ax\n\ttestw $0x400, %%ax\n\tjnz 1f\n\tfstpt %2\n1:\n\tfstpt %1"
            : "=m"(sw), "=m"(low), "=m"(high) : "m"(a) : "memory", "cc", "ax", "st", "st(1)");
        break;
    case Split::Sincos:
        asm volatile("fldt %3\n\tfsincos\n\tfnstsw %0\n\tfnstsw %%ax\n\ttestw $0x400, %%ax\n\tjnz 1f\n\tfstpt %2\n1:\n\tfstpt %1"
            : "=m"(sw), "=m"(low), "=m"(high) : "m"(a) : "memory", "cc", "ax", "st", "st(1)");
        break;
    }
}

// --- Memory operand formats ---

enum class Fmt : uint8_t { F32, F64, F80, I16, I32, I64 };

size_t size_of(Fmt f)
{
    switch (f) {
    case Fmt::F32:
    case Fmt::I32: return 4;
    case Fmt::F64:
    case Fmt::I64: return 8;
    case Fmt::F80: return 10;
    case Fmt::I16: return 2;
    }
    return 4;
}

int64_t sign_extend(uint64_t v, size_t bytes)
{
    unsigned const shift = static_cast<unsigned>(64 - 8 * bytes);
    return static_cast<int64_t>(v << shift) >> shift;
}

using Status = std::variant<std::monostate, Exception, Unsupported>;

enum class Dest : uint8_t { Register, Memory };

/// One instruction's run: a working copy of the x87 state (and EFLAGS) that is committed only if nothing faults.
class Exec final {
public:
    Exec(CpuState const& s, LinearMemory& mem, X87Insn const& insn, SegmentLinear const& segment)
        : f(s.fpu), rflags(s.rflags), m_mem(mem), m_insn(insn), m_segment(segment)
    {
    }

    Status run();

    X87State f;
    uint64_t rflags;

private:
    // Stack (SDM vol. 1 8.1.2, 8.1.7).
    unsigned top() const { return (f.fsw >> TOP_SHIFT) & 7u; }
    void set_top(unsigned t) { f.fsw = static_cast<uint16_t>((f.fsw & ~(7u << TOP_SHIFT)) | ((t & 7u) << TOP_SHIFT)); }
    unsigned phys(unsigned i) const { return (top() + i) & 7u; }
    bool empty(unsigned i) const { return ((f.ftw >> phys(i)) & 1u) == 0; }
    F80 get(unsigned i) const
    {
        F80 v;
        std::copy_n(f.st[i].begin(), 10, v.b.begin());
        return v;
    }
    void set(unsigned i, F80 const& v)
    {
        std::copy_n(v.b.begin(), 10, f.st[i].begin());
        f.ftw = static_cast<uint8_t>(f.ftw | (1u << phys(i)));
    }
    /// TOP - 1: the registers stay where they are, so ST(i) becomes ST(i+1).
    void decrement_top()
    {
        std::rotate(f.st.begin(), f.st.begin() + 7, f.st.end());
        set_top(top() - 1);
    }
    void increment_top()
    {
        std::rotate(f.st.begin(), f.st.begin() + 1, f.st.end());
        set_top(top() + 1);
    }
    void push(F80 const& v)
    {
        decrement_top();
        set(0, v);
    }
    void pop()
    {
        f.ftw = static_cast<uint8_t>(f.ftw & ~(1u << phys(0)));
        increment_top();
    }
    void set_cc(uint16_t mask, uint16_t value) { f.fsw = static_cast<uint16_t>((f.fsw & ~mask) | (value & mask)); }
    bool masked(uint16_t flag) const { return (f.fcw & flag) != 0; }

    /// A stack fault (#IS): IE and SF, C1 = overflow. True when IE is masked and the masked response goes on.
    bool stack_fault(bool overflow)
    {
        f.fsw = static_cast<uint16_t>(f.fsw | IE | SF);
        set_cc(C1, overflow ? C1 : 0);
        return masked(IE);
    }

    /// Applies a host status word to the guest's FSW for an operation whose result goes to `dest`. True when the
    /// result is to be delivered; false when an unmasked exception suppresses it (flags set, nothing else changes).
    std::variant<bool, Unsupported> numeric(uint16_t host_sw, Dest dest, bool tiny_result)
    {
        uint16_t flags = host_sw & FLAGS;
        // With #U unmasked an exact tiny result still signals it (masked, only an inexact one does).
        if (!masked(UE) && tiny_result)
            flags |= UE;
        uint16_t const unmasked = flags & ~f.fcw & FLAGS;
        if (unmasked & (IE | DE | ZE)) {
            f.fsw = static_cast<uint16_t>(f.fsw | (flags & (IE | DE | ZE)));
            return false;
        }
        if (unmasked & (OE | UE)) {
            if (dest == Dest::Register)
                return Unsupported { "x87 unmasked overflow/underflow with a register destination" };
            f.fsw = static_cast<uint16_t>(f.fsw | (flags & (OE | UE | DE)));
            return false;
        }
        f.fsw = static_cast<uint16_t>(f.fsw | flags);
        set_cc(C1, host_sw);
        return true;
    }

    // Memory.
    Status read(Fmt fmt, std::span<uint8_t> out)
    {
        auto lin = m_segment(size_of(fmt), Access::Read);
        if (auto* e = std::get_if<Exception>(&lin))
            return *e;
        return m_mem.read(std::get<uint64_t>(lin), out.first(size_of(fmt)));
    }
    Status write(Fmt fmt, std::span<uint8_t const> in)
    {
        auto lin = m_segment(size_of(fmt), Access::Write);
        if (auto* e = std::get_if<Exception>(&lin))
            return *e;
        return m_mem.write(std::get<uint64_t>(lin), in.first(size_of(fmt)));
    }

    Status arith_reg(unsigned dst, unsigned src, Arith op, bool pop_after);
    Status arith_mem(Fmt fmt, unsigned reg);
    Status compare_result(uint16_t host_sw, unsigned pops, bool eflags);
    Status compare_reg(unsigned i, Cmp kind, unsigned pops, bool eflags);
    Status load(F80 const& v, uint16_t host_sw, bool from_host);
    Status fld_mem(Fmt fmt);
    Status fld_reg(unsigned i);
    Status fst_mem(Fmt fmt, bool pop_after, Round round);
    Status fst_reg(unsigned i, bool pop_after);
    Status fxch(unsigned i);
    Status constant(F80 const& v, std::optional<Const> host);
    Status sign_op(bool abs);
    Status fxam();
    Status unary(Unary op);
    Status pair(Pair op);
    Status split(Split op);
    Status fcmov(unsigned i, bool condition);
    Status register_form();
    Status memory_form();
    uint16_t full_tag_word() const;
    Status store_environment(bool with_registers);
    Status load_environment(bool with_registers);

    LinearMemory& m_mem;
    X87Insn const& m_insn;
    SegmentLinear const& m_segment;
};

bool is_denormal(F80 const& v) { return (sign_exp(v) & 0x7fff) == 0 && mantissa(v) != 0; }

Status Exec::arith_reg(unsigned dst, unsigned src, Arith op, bool pop_after)
{
    if (empty(dst) || empty(src)) {
        if (!stack_fault(false))
            return {};
        set(dst, INDEFINITE);
    } else {
        F80 r;
        uint16_t sw = 0;
        {
            HostX87 host(f.fcw);
            host_arith(op, get(dst), get(src), r, sw);
        }
        auto d = numeric(sw, Dest::Register, is_denormal(r));
        if (auto* u = std::get_if<Unsupported>(&d))
            return *u;
        if (!std::get<bool>(d))
            return {};
        set(dst, r);
    }
    if (pop_after)
        pop();
    return {};
}

/// D8 (m32fp), DC (m64fp), DA (m32int), DE (m16int) with a memory operand: FADD FMUL FCOM FCOMP FSUB FSUBR FDIV
/// FDIVR and the FI forms.
Status Exec::arith_mem(Fmt fmt, unsigned reg)
{
    std::array<uint8_t, 10> b {};
    if (auto st = read(fmt, b); !std::holds_alternative<std::monostate>(st))
        return st;
    uint64_t const raw = load_le(std::span(b).first(size_of(fmt)));
    bool const is_int = fmt == Fmt::I16 || fmt == Fmt::I32;
    F80 const int_value = is_int ? from_int(sign_extend(raw, size_of(fmt))) : F80 {};
    if (reg == 2 || reg == 3) { // FCOM, FCOMP, FICOM, FICOMP
        unsigned const pops = reg == 3 ? 1 : 0;
        if (empty(0)) {
            if (!stack_fault(false))
                return {};
            set_cc(C0 | C2 | C3, C0 | C2 | C3);
            for (unsigned i = 0; i < pops; ++i)
                pop();
            return {};
        }
        uint16_t sw = 0;
        {
            HostX87 host(f.fcw);
            uint32_t const m32 = static_cast<uint32_t>(raw);
            if (is_int)
                host_compare(Cmp::Ordered, get(0), int_value);
            else if (fmt == Fmt::F32)
                host_compare_f32(get(0), m32);
            else
                host_compare_f64(get(0), raw);
            sw = host.status();
        }
        return compare_result(sw, pops, false);
    }
    static constexpr std::array<Arith, 8> OPS { Arith::Add, Arith::Mul, Arith::Add, Arith::Add, Arith::Sub,
        Arith::Subr, Arith::Div, Arith::Divr };
    Arith const op = OPS[reg];
    if (empty(0)) {
        if (stack_fault(false))
            set(0, INDEFINITE);
        return {};
    }
    F80 r;
    uint16_t sw = 0;
    {
        HostX87 host(f.fcw);
        uint32_t const m32 = static_cast<uint32_t>(raw);
        if (is_int)
            host_arith(op, get(0), int_value, r, sw);
        else if (fmt == Fmt::F32)
            host_arith_f32(op, get(0), m32, r, sw);
        else
            host_arith_f64(op, get(0), raw, r, sw);
    }
    auto d = numeric(sw, Dest::Register, is_denormal(r));
    if (auto* u = std::get_if<Unsupported>(&d))
        return *u;
    if (std::get<bool>(d))
        set(0, r);
    return {};
}

/// The condition codes (or EFLAGS for FCOMI and friends) of a comparison, then `pops` pops.
Status Exec::compare_result(uint16_t host_sw, unsigned pops, bool eflags)
{
    uint16_t const flags = host_sw & (IE | DE);
    f.fsw = static_cast<uint16_t>(f.fsw | flags);
    if (flags & ~f.fcw)
        return {}; // unmasked: condition codes, EFLAGS and the stack unchanged
    set_cc(C1, 0);
    if (eflags) {
        rflags &= ~(RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF);
        rflags |= ((host_sw & C3) ? RFLAGS_ZF : 0) | ((host_sw & C2) ? RFLAGS_PF : 0) | ((host_sw & C0) ? RFLAGS_CF : 0);
    } else {
        set_cc(C0 | C2 | C3, host_sw);
    }
    for (unsigned i = 0; i < pops; ++i)
        pop();
    return {};
}

Status Exec::compare_reg(unsigned i, Cmp kind, unsigned pops, bool eflags)
{
    if (empty(0) || empty(i)) {
        if (!stack_fault(false))
            return {};
        return compare_result(C0 | C2 | C3, pops, eflags); // unordered
    }
    uint16_t sw = 0;
    {
        HostX87 host(f.fcw);
        host_compare(kind, get(0), get(i));
        sw = host.status();
    }
    return compare_result(sw, pops, eflags);
}

/// Pushes a loaded value (the host's status word applies when the value came through a host conversion).
Status Exec::load(F80 const& v, uint16_t host_sw, bool from_host)
{
    if (from_host) {
        auto d = numeric(host_sw, Dest::Register, false);
        if (auto* u = std::get_if<Unsupported>(&d))
            return *u;
        if (!std::get<bool>(d))
            return {};
    } else {
        set_cc(C1, 0);
    }
    push(v);
    return {};
}

Status Exec::fld_mem(Fmt fmt)
{
    std::array<uint8_t, 10> b {};
    if (auto st = read(fmt, b); !std::holds_alternative<std::monostate>(st))
        return st;
    if (!empty(7)) {
        if (stack_fault(true))
            push(INDEFINITE);
        return {};
    }
    uint64_t const raw = load_le(std::span(b).first(std::min<size_t>(size_of(fmt), 8)));
    switch (fmt) {
    case Fmt::F32:
    case Fmt::F64: {
        F80 r;
        uint16_t sw = 0;
        {
            HostX87 host(f.fcw);
            uint32_t const m32 = static_cast<uint32_t>(raw);
            if (fmt == Fmt::F32)
                host_load_f32(m32, r);
            else
                host_load_f64(raw, r);
            sw = host.status();
        }
        return load(r, sw, true);
    }
    case Fmt::F80: {
        F80 v;
        std::copy(b.begin(), b.end(), v.b.begin());
        return load(v, 0, false);
    }
    case Fmt::I16:
    case Fmt::I32:
    case Fmt::I64: return load(from_int(sign_extend(raw, size_of(fmt))), 0, false);
    }
    return {};
}

Status Exec::fld_reg(unsigned i)
{
    if (empty(i)) {
        if (!stack_fault(false))
            return {};
        push(INDEFINITE);
        return {};
    }
    F80 const v = get(i);
    if (!empty(7)) {
        if (stack_fault(true))
            push(INDEFINITE);
        return {};
    }
    set_cc(C1, 0);
    push(v);
    return {};
}

bool tiny_in(Fmt fmt, uint64_t bits)
{
    if (fmt == Fmt::F32)
        return (bits & 0x7f800000u) == 0 && (bits & 0x7fffffu) != 0;
    if (fmt == Fmt::F64)
        return (bits & 0x7ff0000000000000ull) == 0 && (bits & 0xfffffffffffffull) != 0;
    return false;
}

/// FST/FSTP m32fp/m64fp/m80fp, FIST/FISTP m16/m32/m64, FISTTP.
Status Exec::fst_mem(Fmt fmt, bool pop_after, Round round)
{
    std::array<uint8_t, 10> b {};
    if (empty(0)) {
        if (!stack_fault(false))
            return {};
        switch (fmt) {
        case Fmt::F32: store_le(std::span(b).first(4), 0xffc00000u); break;
        case Fmt::F64: store_le(std::span(b).first(8), 0xfff8000000000000ull); break;
        case Fmt::F80: std::copy_n(INDEFINITE.b.begin(), 10, b.begin()); break;
        case Fmt::I16: store_le(std::span(b).first(2), 0x8000u); break;
        case Fmt::I32: store_le(std::span(b).first(4), 0x80000000u); break;
        case Fmt::I64: store_le(std::span(b).first(8), 0x8000000000000000ull); break;
        }
    } else if (fmt == Fmt::F80) {
        std::copy_n(f.st[0].begin(), 10, b.begin());
        set_cc(C1, 0);
    } else {
        uint64_t bits = 0;
        uint16_t sw = 0;
        {
            HostX87 host(f.fcw);
            F80 const a = get(0);
            if (fmt == Fmt::F32) {
                uint32_t m32 = 0;
                host_store_f32(a, m32);
                bits = m32;
            } else if (fmt == Fmt::F64) {
                host_store_f64(a, bits);
            } else {
                host_store_int(a, size_of(fmt), round, bits);
            }
            sw = host.status();
        }
        auto d = numeric(sw, Dest::Memory, tiny_in(fmt, bits));
        if (auto* u = std::get_if<Unsupported>(&d))
            return *u;
        if (!std::get<bool>(d))
            return {};
        store_le(std::span(b).first(size_of(fmt)), bits);
    }
    if (auto st = write(fmt, b); !std::holds_alternative<std::monostate>(st))
        return st;
    if (pop_after)
        pop();
    return {};
}

Status Exec::fst_reg(unsigned i, bool pop_after)
{
    if (empty(0)) {
        if (!stack_fault(false))
            return {};
        set(i, INDEFINITE);
    } else {
        set_cc(C1, 0);
        set(i, get(0));
    }
    if (pop_after)
        pop();
    return {};
}

Status Exec::fxch(unsigned i)
{
    if (empty(0) || empty(i)) {
        if (!stack_fault(false))
            return {};
        if (empty(0))
            set(0, INDEFINITE);
        if (empty(i))
            set(i, INDEFINITE);
    } else {
        set_cc(C1, 0);
    }
    F80 const a = get(0);
    set(0, get(i));
    set(i, a);
    return {};
}

Status Exec::constant(F80 const& v, std::optional<Const> host_const)
{
    if (!empty(7)) {
        if (stack_fault(true))
            push(INDEFINITE);
        return {};
    }
    F80 r = v;
    if (host_const) {
        HostX87 host(f.fcw);
        host_constant(*host_const, r);
    }
    set_cc(C1, 0);
    push(r);
    return {};
}

Status Exec::sign_op(bool abs)
{
    if (empty(0)) {
        if (stack_fault(false))
            set(0, INDEFINITE);
        return {};
    }
    F80 v = get(0);
    v.b[9] = static_cast<uint8_t>(abs ? (v.b[9] & 0x7f) : (v.b[9] ^ 0x80));
    set(0, v);
    set_cc(C1, 0);
    return {};
}

/// FXAM (SDM vol. 2 "FXAM"): the class of ST(0) in C3 C2 C0, its sign in C1.
Status Exec::fxam()
{
    F80 const v = get(0);
    uint16_t const se = sign_exp(v);
    uint64_t const m = mantissa(v);
    uint16_t const e = se & 0x7fff;
    uint16_t cc = (se & 0x8000) ? C1 : 0;
    bool const integer_bit = (m >> 63) != 0;
    if (empty(0))
        cc |= C3 | C0;
    else if (e == 0)
        cc |= m == 0 ? C3 : (C3 | C2); // zero, denormal (pseudo-denormals included)
    else if (!integer_bit)
        cc |= 0; // unsupported (unnormal, pseudo-NaN, pseudo-infinity)
    else if (e == 0x7fff)
        cc |= (m << 1) == 0 ? (C2 | C0) : C0; // infinity, NaN
    else
        cc |= C2; // normal
    set_cc(C0 | C1 | C2 | C3, cc);
    return {};
}

Status Exec::unary(Unary op)
{
    if (empty(0)) {
        if (stack_fault(false))
            set(0, INDEFINITE);
        return {};
    }
    F80 r;
    uint16_t sw = 0;
    {
        HostX87 host(f.fcw);
        host_unary(op, get(0), r, sw);
    }
    bool const trig = op == Unary::Sin || op == Unary::Cos;
    if (trig && (sw & C2)) {
        set_cc(C2, C2); // out of range: the operand stays
        return {};
    }
    auto d = numeric(sw, Dest::Register, is_denormal(r));
    if (auto* u = std::get_if<Unsupported>(&d))
        return *u;
    if (trig)
        set_cc(C2, 0);
    if (std::get<bool>(d))
        set(0, r);
    return {};
}

Status Exec::pair(Pair op)
{
    bool const pops = op == Pair::Yl2x || op == Pair::Yl2xp1 || op == Pair::Patan;
    unsigned const dst = pops ? 1 : 0;
    if (empty(0) || empty(1)) {
        if (!stack_fault(false))
            return {};
        set(dst, INDEFINITE);
        if (pops)
            pop();
        return {};
    }
    F80 r;
    uint16_t sw = 0;
    {
        HostX87 host(f.fcw);
        host_pair(op, get(0), get(1), r, sw);
    }
    bool const prem = op == Pair::Prem || op == Pair::Prem1;
    auto d = numeric(prem ? static_cast<uint16_t>(sw & ~C1) : sw, Dest::Register, is_denormal(r));
    if (auto* u = std::get_if<Unsupported>(&d))
        return *u;
    if (!std::get<bool>(d))
        return {};
    if (prem)
        set_cc(C0 | C1 | C2 | C3, sw); // Q2 Q0 incomplete Q1
    set(dst, r);
    if (pops)
        pop();
    return {};
}

Status Exec::split(Split op)
{
    if (empty(0)) {
        if (!stack_fault(false))
            return {};
        set(0, INDEFINITE);
        push(INDEFINITE);
        return {};
    }
    if (!empty(7)) {
        if (!stack_fault(true))
            return {};
        set(0, INDEFINITE);
        push(INDEFINITE);
        return {};
    }
    F80 low, high;
    uint16_t sw = 0;
    {
        HostX87 host(f.fcw);
        host_split(op, get(0), low, high, sw);
    }
    if (op != Split::Xtract && (sw & C2)) {
        set_cc(C2, C2);
        return {};
    }
    auto d = numeric(sw, Dest::Register, is_denormal(low) || is_denormal(high));
    if (auto* u = std::get_if<Unsupported>(&d))
        return *u;
    if (op != Split::Xtract)
        set_cc(C2, 0);
    if (!std::get<bool>(d))
        return {};
    set(0, low);
    push(high);
    return {};
}

Status Exec::fcmov(unsigned i, bool condition)
{
    if (empty(0) || empty(i)) {
        if (stack_fault(false))
            set(0, INDEFINITE);
        return {};
    }
    set_cc(C1, 0);
    if (condition)
        set(0, get(i));
    return {};
}

/// The full tag word (SDM vol. 1 8.1.7): two bits per physical register, 00 valid, 01 zero, 10 special, 11 empty.
uint16_t Exec::full_tag_word() const
{
    uint16_t tw = 0;
    for (unsigned p = 0; p < 8; ++p) {
        unsigned tag = 3;
        if ((f.ftw >> p) & 1u) {
            F80 const v = get((p - top()) & 7u);
            uint16_t const e = sign_exp(v) & 0x7fff;
            uint64_t const m = mantissa(v);
            if (e == 0)
                tag = m == 0 ? 1 : 2;
            else if (e == 0x7fff || !(m >> 63))
                tag = 2;
            else
                tag = 0;
        }
        tw = static_cast<uint16_t>(tw | (tag << (2 * p)));
    }
    return tw;
}

/// FNSTENV and FNSAVE: the environment (and registers), then FNSTENV masks all exceptions, FNSAVE initialises.
Status Exec::store_environment(bool with_registers)
{
    std::array<uint8_t, 108> b {};
    bool const w16 = m_insn.operand16;
    size_t const env = w16 ? 14 : 28;
    size_t const slot = w16 ? 2 : 4;
    auto put = [&b](size_t off, size_t n, uint64_t v) { store_le(std::span(b).subspan(off, n), v); };
    put(0, 2, f.fcw);
    put(slot, 2, f.fsw);
    put(2 * slot, 2, full_tag_word());
    uint64_t const fop = f.fop & 0x7ffu;
    if (m_insn.real_format) {
        put(3 * slot, 2, f.fip & 0xffff);
        put(5 * slot, 2, f.fdp & 0xffff);
        if (w16) {
            put(8, 2, fop | (((f.fip >> 16) & 0xf) << 12));
            put(12, 2, ((f.fdp >> 16) & 0xf) << 12);
        } else {
            put(16, 4, fop | (((f.fip >> 16) & 0xffff) << 12));
            put(24, 4, ((f.fdp >> 16) & 0xffff) << 12);
        }
    } else {
        put(3 * slot, slot, f.fip);
        put(4 * slot, slot, w16 ? 0 : fop << 16); // FCS 0; the opcode in bits 26:16 of the 32-bit format
        put(5 * slot, slot, f.fdp);               // FDS (6 * slot) 0
    }
    size_t const size = with_registers ? env + 80 : env;
    if (with_registers)
        for (unsigned i = 0; i < 8; ++i)
            std::copy_n(f.st[i].begin(), 10, b.begin() + static_cast<ptrdiff_t>(env + 10 * i));
    auto lin = m_segment(size, Access::Write);
    if (auto* e = std::get_if<Exception>(&lin))
        return *e;
    if (auto st = m_mem.write(std::get<uint64_t>(lin), std::span(b).first(size)); !std::holds_alternative<std::monostate>(st))
        return st;
    if (with_registers) {
        f.fcw = 0x037f;
        f.fsw = 0;
        f.ftw = 0;
        f.fop = 0;
        f.fip = 0;
        f.fdp = 0;
    } else {
        f.fcw = static_cast<uint16_t>(f.fcw | FLAGS);
    }
    return {};
}

/// FLDENV and FRSTOR: a tag of 11 empties a register, anything else marks it valid (the processor reclassifies).
Status Exec::load_environment(bool with_registers)
{
    std::array<uint8_t, 108> b {};
    bool const w16 = m_insn.operand16;
    size_t const env = w16 ? 14 : 28;
    size_t const slot = w16 ? 2 : 4;
    size_t const size = with_registers ? env + 80 : env;
    auto lin = m_segment(size, Access::Read);
    if (auto* e = std::get_if<Exception>(&lin))
        return *e;
    if (auto st = m_mem.read(std::get<uint64_t>(lin), std::span(b).first(size)); !std::holds_alternative<std::monostate>(st))
        return st;
    auto get_le = [&b](size_t off, size_t n) { return load_le(std::span<uint8_t const>(b).subspan(off, n)); };
    f.fcw = static_cast<uint16_t>(get_le(0, 2));
    f.fsw = static_cast<uint16_t>(get_le(slot, 2));
    uint64_t const tw = get_le(2 * slot, 2);
    f.ftw = 0;
    for (unsigned p = 0; p < 8; ++p)
        if (((tw >> (2 * p)) & 3u) != 3u)
            f.ftw = static_cast<uint8_t>(f.ftw | (1u << p));
    if (m_insn.real_format) {
        uint64_t const w = get_le(w16 ? 8 : 16, slot);
        f.fop = static_cast<uint16_t>(w & 0x7ff);
        f.fip = get_le(3 * slot, 2) | (((w >> 12) & (w16 ? 0xfu : 0xffffu)) << 16);
        f.fdp = get_le(5 * slot, 2) | (((get_le(w16 ? 12 : 24, slot) >> 12) & (w16 ? 0xfu : 0xffffu)) << 16);
    } else {
        f.fip = get_le(3 * slot, slot);
        f.fop = w16 ? f.fop : static_cast<uint16_t>((get_le(16, 4) >> 16) & 0x7ff);
        f.fdp = get_le(5 * slot, slot);
    }
    if (with_registers)
        for (unsigned i = 0; i < 8; ++i)
            std::copy_n(b.begin() + static_cast<ptrdiff_t>(env + 10 * i), 10, f.st[i].begin());
    return {};
}

Status Exec::memory_form()
{
    unsigned const reg = (m_insn.modrm >> 3) & 7u;
    switch (m_insn.opcode) {
    case 0xd8: return arith_mem(Fmt::F32, reg);
    case 0xdc: return arith_mem(Fmt::F64, reg);
    case 0xda: return arith_mem(Fmt::I32, reg);
    case 0xde: return arith_mem(Fmt::I16, reg);
    case 0xd9:
        switch (reg) {
        case 0: return fld_mem(Fmt::F32);
        case 2: return fst_mem(Fmt::F32, false, Round::ControlWord);
        case 3: return fst_mem(Fmt::F32, true, Round::ControlWord);
        case 4: return load_environment(false);
        case 6: return store_environment(false);
        default: break;
        }
        break;
    case 0xdb:
        switch (reg) {
        case 0: return fld_mem(Fmt::I32);
        case 1: return fst_mem(Fmt::I32, true, Round::Truncate);
        case 2: return fst_mem(Fmt::I32, false, Round::ControlWord);
        case 3: return fst_mem(Fmt::I32, true, Round::ControlWord);
        case 5: return fld_mem(Fmt::F80);
        case 7: return fst_mem(Fmt::F80, true, Round::ControlWord);
        default: break;
        }
        break;
    case 0xdd:
        switch (reg) {
        case 0: return fld_mem(Fmt::F64);
        case 1: return fst_mem(Fmt::I64, true, Round::Truncate);
        case 2: return fst_mem(Fmt::F64, false, Round::ControlWord);
        case 3: return fst_mem(Fmt::F64, true, Round::ControlWord);
        case 4: return load_environment(true);
        case 6: return store_environment(true);
        default: break;
        }
        break;
    case 0xdf:
        switch (reg) {
        case 0: return fld_mem(Fmt::I16);
        case 1: return fst_mem(Fmt::I16, true, Round::Truncate);
        case 2: return fst_mem(Fmt::I16, false, Round::ControlWord);
        case 3: return fst_mem(Fmt::I16, true, Round::ControlWord);
        case 5: return fld_mem(Fmt::I64);
        case 7: return fst_mem(Fmt::I64, true, Round::ControlWord);
        default: break;
        }
        break;
    default: break;
    }
    return Unsupported { "x87 instruction not emulated" };
}

Status Exec::register_form()
{
    unsigned const reg = (m_insn.modrm >> 3) & 7u;
    unsigned const i = m_insn.modrm & 7u;
    // D8 (ST(0) = ST(0) op ST(i)), DC (ST(i) = ST(i) op ST(0)), DE (the same and pop): FADD FMUL . . FSUB(R) FDIV(R).
    // In DC/DE the reg field for SUB/SUBR and DIV/DIVR is swapped relative to D8 (SDM vol. 2 table A-10).
    static constexpr std::array<Arith, 8> D8_OPS { Arith::Add, Arith::Mul, Arith::Add, Arith::Add, Arith::Sub,
        Arith::Subr, Arith::Div, Arith::Divr };
    static constexpr std::array<Arith, 8> DC_OPS { Arith::Add, Arith::Mul, Arith::Add, Arith::Add, Arith::Subr,
        Arith::Sub, Arith::Divr, Arith::Div };
    uint64_t const fl = rflags;
    bool const cf = fl & RFLAGS_CF, zf = fl & RFLAGS_ZF, pf = fl & RFLAGS_PF;
    switch (m_insn.opcode) {
    case 0xd8:
        if (reg == 2 || reg == 3)
            return compare_reg(i, Cmp::Ordered, reg == 3 ? 1 : 0, false);
        return arith_reg(0, i, D8_OPS[reg], false);
    case 0xdc:
        if (reg == 2 || reg == 3) // FCOM2, FCOMP3 (aliases)
            return compare_reg(i, Cmp::Ordered, reg == 3 ? 1 : 0, false);
        return arith_reg(i, 0, DC_OPS[reg], false);
    case 0xde:
        if (reg == 2) // FCOMP5 (alias)
            return compare_reg(i, Cmp::Ordered, 1, false);
        if (reg == 3) {
            if (i != 1)
                break;
            return compare_reg(1, Cmp::Ordered, 2, false); // FCOMPP
        }
        return arith_reg(i, 0, DC_OPS[reg], true);
    case 0xd9:
        switch (reg) {
        case 0: return fld_reg(i);
        case 1: return fxch(i);
        case 2:
            if (i == 0)
                return {}; // FNOP
            break;
        case 3: return fst_reg(i, true); // FSTP1 (alias)
        case 4:
            switch (i) {
            case 0: return sign_op(false);
            case 1: return sign_op(true);
            case 4: {
                if (empty(0)) {
                    if (!stack_fault(false))
                        return {};
                    return compare_result(C0 | C2 | C3, 0, false);
                }
                uint16_t sw = 0;
                {
                    HostX87 host(f.fcw);
                    host_tst(get(0));
                    sw = host.status();
                }
                return compare_result(sw, 0, false);
            }
            case 5: return fxam();
            default: break;
            }
            break;
        case 5:
            switch (i) {
            case 0: return constant(make_f80(0x3fff, 1ull << 63), std::nullopt);
            case 1: return constant({}, Const::L2t);
            case 2: return constant({}, Const::L2e);
            case 3: return constant({}, Const::Pi);
            case 4: return constant({}, Const::Lg2);
            case 5: return constant({}, Const::Ln2);
            case 6: return constant(make_f80(0, 0), std::nullopt);
            default: break;
            }
            break;
        case 6:
            switch (i) {
            case 0: return unary(Unary::F2xm1);
            case 1: return pair(Pair::Yl2x);
            case 2: return split(Split::Ptan);
            case 3: return pair(Pair::Patan);
            case 4: return split(Split::Xtract);
            case 5: return pair(Pair::Prem1);
            case 6: decrement_top(); set_cc(C1, 0); return {};
            case 7: increment_top(); set_cc(C1, 0); return {};
            default: break;
            }
            break;
        case 7:
            switch (i) {
            case 0: return pair(Pair::Prem);
            case 1: return pair(Pair::Yl2xp1);
            case 2: return unary(Unary::Sqrt);
            case 3: return split(Split::Sincos);
            case 4: return unary(Unary::Rndint);
            case 5: return pair(Pair::Scale);
            case 6: return unary(Unary::Sin);
            case 7: return unary(Unary::Cos);
            default: break;
            }
            break;
        default: break;
        }
        break;
    case 0xda:
        switch (reg) {
        case 0: return fcmov(i, cf);
        case 1: return fcmov(i, zf);
        case 2: return fcmov(i, cf || zf);
        case 3: return fcmov(i, pf);
        case 5:
            if (i == 1)
                return compare_reg(1, Cmp::Unordered, 2, false); // FUCOMPP
            break;
        default: break;
        }
        break;
    case 0xdb:
        switch (reg) {
        case 0: return fcmov(i, !cf);
        case 1: return fcmov(i, !zf);
        case 2: return fcmov(i, !cf && !zf);
        case 3: return fcmov(i, !pf);
        case 5: return compare_reg(i, Cmp::Unordered, 0, true); // FUCOMI
        case 6: return compare_reg(i, Cmp::Ordered, 0, true);   // FCOMI
        default: break;
        }
        break;
    case 0xdd:
        switch (reg) {
        case 0: f.ftw = static_cast<uint8_t>(f.ftw & ~(1u << phys(i))); return {}; // FFREE
        case 1: return fxch(i); // FXCH4 (alias)
        case 2: return fst_reg(i, false);
        case 3: return fst_reg(i, true);
        case 4: return compare_reg(i, Cmp::Unordered, 0, false);
        case 5: return compare_reg(i, Cmp::Unordered, 1, false);
        default: break;
        }
        break;
    case 0xdf:
        switch (reg) {
        case 0: // FFREEP
            f.ftw = static_cast<uint8_t>(f.ftw & ~(1u << phys(i)));
            pop();
            return {};
        case 1: return fxch(i); // FXCH7 (alias)
        case 2:
        case 3: return fst_reg(i, true); // FSTP8, FSTP9 (aliases)
        case 5: return compare_reg(i, Cmp::Unordered, 1, true); // FUCOMIP
        case 6: return compare_reg(i, Cmp::Ordered, 1, true);   // FCOMIP
        default: break;
        }
        break;
    default: break;
    }
    return Unsupported { "x87 instruction not emulated" };
}

Status Exec::run()
{
    Status st = (m_insn.modrm >> 6) == 3 ? register_form() : memory_form();
    if (!std::holds_alternative<std::monostate>(st))
        return st;
    // ES and B summarise the unmasked exception flags.
    if (f.fsw & ~f.fcw & FLAGS)
        f.fsw = static_cast<uint16_t>(f.fsw | ES | B);
    else
        f.fsw = static_cast<uint16_t>(f.fsw & ~(ES | B));
    unsigned const reg = (m_insn.modrm >> 3) & 7u;
    if ((m_insn.modrm >> 6) != 3 && (m_insn.opcode == 0xd9 || m_insn.opcode == 0xdd) && (reg == 4 || reg == 6))
        return st; // control instructions: the pointers are not this instruction's
    // The last non-control instruction (SDM vol. 1 8.1.8, 8.1.9): its offset, opcode bits and data operand.
    f.fip = m_insn.ip;
    f.fop = static_cast<uint16_t>(((m_insn.opcode & 7u) << 8) | m_insn.modrm);
    if ((m_insn.modrm >> 6) != 3)
        f.fdp = m_insn.data_offset;
    return st;
}

} // namespace

bool x87_handles(uint8_t opcode, uint8_t modrm)
{
    if (opcode < 0xd8 || opcode > 0xdf)
        return false;
    unsigned const reg = (modrm >> 3) & 7u;
    if ((modrm >> 6) != 3) {
        // The control instructions emulator.cpp runs (FLDCW FNSTCW FNSTSW), FBLD, FBSTP.
        if ((opcode == 0xd9 || opcode == 0xdd) && (reg == 5 || reg == 7))
            return false;
        if (opcode == 0xdf && (reg == 4 || reg == 6))
            return false;
        return true;
    }
    if (opcode == 0xdb && reg == 4) // FNENI FNDISI FNCLEX FNINIT FNSETPM
        return false;
    if (opcode == 0xdf && reg == 4) // FNSTSW AX
        return false;
    return true;
}

bool x87_waits(uint8_t opcode, uint8_t modrm)
{
    bool const save = (modrm >> 6) != 3 && ((modrm >> 3) & 7u) == 6 && (opcode == 0xd9 || opcode == 0xdd);
    return !save; // FNSTENV, FNSAVE
}

std::variant<uint32_t, Exception, Unsupported> x87_execute(CpuState& s, LinearMemory& mem, X87Insn const& insn,
    SegmentLinear const& segment)
{
    if (!x87_handles(insn.opcode, insn.modrm))
        return Unsupported { "x87 instruction not emulated" };
    Exec x(s, mem, insn, segment);
    Status st = x.run();
    if (auto* e = std::get_if<Exception>(&st))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&st))
        return *u;
    s.fpu = x.f;
    s.rflags = x.rflags;
    return uint32_t { DIRTY_FPU | DIRTY_REGS };
}

} // namespace hako::emu
