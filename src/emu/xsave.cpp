// The XSAVE feature set's save and restore instructions: see xsave.h.
#include "emu/xsave.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

namespace hako::emu {

namespace {

// Legacy region (the FXSAVE layout, SDM vol. 1 table 10-2) and header offsets.
constexpr size_t FCW = 0, FSW = 2, FTW = 4, FOP = 6, FIP = 8, FDP = 16, MXCSR = 24, MXCSR_MASK = 28, ST = 32, XMM = 160;
constexpr size_t HEADER = 512;
constexpr size_t XSTATE_BV = HEADER, XCOMP_BV = HEADER + 8;
constexpr size_t EXTENDED = 576; // first byte after the header
constexpr uint64_t COMPACTED = 1ull << 63;
constexpr uint64_t X87 = 1u << 0, SSE = 1u << 1, AVX = 1u << 2;
constexpr uint32_t MXCSR_INIT = 0x1f80;
// MXCSR_MASK as saved: every bit of 15:0 is writable (DAZ included), as LDMXCSR here checks.
constexpr uint32_t MXCSR_WRITABLE = 0xffff;
constexpr uint16_t FCW_INIT = 0x037f;
constexpr uint64_t PAGE = 4096;

using Result = std::variant<uint32_t, Exception, Unsupported>;

Exception gp0() { return Exception { VEC_GP, 0u, 0 }; }

uint64_t get(std::span<uint8_t const> b, size_t off, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | b[off + i];
    return v;
}

void put(std::span<uint8_t> b, size_t off, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; ++i)
        b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

bool x87_initial(X87State const& f)
{
    return f.fcw == FCW_INIT && f.fsw == 0 && f.ftw == 0 && f.fop == 0 && f.fip == 0 && f.fdp == 0;
}

/// Vector registers the instruction reaches: XMM/YMM0-15 in 64-bit mode, 0-7 elsewhere.
size_t vector_registers(CpuState const& s) { return cpu_mode(s) == CpuMode::Long64 ? 16 : 8; }

/// A component's bytes in the processor's image, or nullopt if the layout does not place it inside the image.
std::optional<std::span<uint8_t>> component_in_image(CpuState& s, size_t i)
{
    auto const& c = s.xsave_layout.component[i];
    if (c.size == 0 || c.offset < EXTENDED || c.offset > XSAVE_IMAGE_SIZE || c.size > XSAVE_IMAGE_SIZE - c.offset)
        return std::nullopt;
    return std::span(s.xsave).subspan(c.offset, c.size);
}

/// Bytes of component i (i >= 2) the instruction transfers: AVX reaches only YMM0-7's upper halves outside 64-bit mode.
size_t transfer_size(CpuState const& s, size_t i)
{
    size_t size = s.xsave_layout.component[i].size;
    if (i == 2)
        size = std::min(size, 16 * vector_registers(s));
    return size;
}

/// Offsets of the components of `xcomp` in a compacted area (SDM vol. 1 13.4.3), or nullopt if one is undescribed.
std::optional<std::array<size_t, 63>> compacted_offsets(CpuState const& s, uint64_t xcomp, size_t* end)
{
    std::array<size_t, 63> off {};
    size_t next = EXTENDED;
    for (size_t i = 2; i < 63; ++i) {
        if (!(xcomp & (1ull << i)))
            continue;
        auto const& c = s.xsave_layout.component[i];
        if (c.size == 0)
            return std::nullopt;
        if (c.align64)
            next = (next + 63) & ~size_t { 63 };
        off[i] = next;
        next += c.size;
    }
    *end = next;
    return off;
}

/// Checks that every page of [lin, lin+size) allows `access`, before the first byte is transferred.
std::variant<std::monostate, Exception, Unsupported> check_pages(LinearMemory& mem, uint64_t lin, size_t size,
    Access access)
{
    uint64_t const last = lin + size - 1;
    for (uint64_t p = lin;;) {
        auto t = mem.translate(p, access);
        if (auto* e = std::get_if<Exception>(&t))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&t))
            return *u;
        uint64_t const next_page = (p & ~(PAGE - 1)) + PAGE;
        if (next_page == 0 || next_page > last)
            break;
        p = next_page;
    }
    return std::monostate {};
}

struct Piece {
    size_t offset;
    size_t size;
};

/// The common checks up to the segment: #UD, #NM, CPL.
std::optional<Exception> precheck(CpuState const& s, XsaveOp op)
{
    if (!(s.cr4 & CR4_OSXSAVE))
        return Exception { VEC_UD, std::nullopt, 0 };
    if (s.cr0 & CR0_TS)
        return Exception { VEC_NM, std::nullopt, 0 };
    if ((op == XsaveOp::Xsaves || op == XsaveOp::Xrstors) && cpu_cpl(s) != 0)
        return gp0();
    return std::nullopt;
}

uint64_t requested(CpuState const& s, XsaveOp op)
{
    uint64_t const mask = (s.reg(Gpr::Rdx) << 32) | (s.reg(Gpr::Rax) & 0xffffffffu);
    bool const supervisor = op == XsaveOp::Xsaves || op == XsaveOp::Xrstors;
    return (s.xcr0 | (supervisor ? s.xss : 0)) & mask;
}

void save_x87(CpuState const& s, std::span<uint8_t> area, bool rex_w)
{
    auto const& f = s.fpu;
    put(area, FCW, 2, f.fcw);
    put(area, FSW, 2, f.fsw);
    area[FTW] = f.ftw;
    area[FTW + 1] = 0;
    put(area, FOP, 2, f.fop);
    if (rex_w) {
        put(area, FIP, 8, f.fip);
        put(area, FDP, 8, f.fdp);
    } else { // FIP, FCS (0), FDP, FDS (0)
        put(area, FIP, 8, f.fip & 0xffffffffu);
        put(area, FDP, 8, f.fdp & 0xffffffffu);
    }
    for (size_t i = 0; i < 8; ++i)
        std::copy(f.st[i].begin(), f.st[i].end(), area.begin() + static_cast<ptrdiff_t>(ST + 16 * i));
}

void load_x87(CpuState& s, std::span<uint8_t const> area, bool rex_w)
{
    auto& f = s.fpu;
    f.fcw = static_cast<uint16_t>(get(area, FCW, 2));
    f.fsw = static_cast<uint16_t>(get(area, FSW, 2));
    f.ftw = area[FTW];
    f.fop = static_cast<uint16_t>(get(area, FOP, 2) & 0x7ff);
    f.fip = get(area, FIP, rex_w ? 8 : 4);
    f.fdp = get(area, FDP, rex_w ? 8 : 4);
    for (size_t i = 0; i < 8; ++i)
        std::copy_n(area.begin() + static_cast<ptrdiff_t>(ST + 16 * i), 16, f.st[i].begin());
}

void init_x87(CpuState& s)
{
    uint32_t const mxcsr = s.fpu.mxcsr;
    s.fpu = X87State {};
    s.fpu.mxcsr = mxcsr;
}

// --- XSAVE, XSAVEOPT (standard format), XSAVEC, XSAVES (compacted format) ---

Result save(CpuState& s, LinearMemory& mem, XsaveOp op, bool rex_w, SegmentLinear const& segment)
{
    uint64_t const rfbm = requested(s, op);
    if (rfbm & s.xss & ~s.xcr0)
        return Unsupported { "supervisor state components (not in KVM_GET_XSAVE)" };
    bool const compacted = op == XsaveOp::Xsavec || op == XsaveOp::Xsaves;
    bool const init_optimization = op != XsaveOp::Xsave;
    uint64_t const in_use = xsave_in_use(s);
    // Components whose bytes are written.
    uint64_t const saved = init_optimization ? (rfbm & in_use) : rfbm;

    std::array<size_t, 63> offset {};
    size_t extent = EXTENDED;
    if (compacted) {
        auto off = compacted_offsets(s, rfbm, &extent);
        if (!off)
            return Unsupported { "a requested component CPUID does not describe" };
        offset = *off;
    } else {
        for (size_t i = 2; i < 63; ++i) {
            if (!(rfbm & (1ull << i)))
                continue;
            auto const& c = s.xsave_layout.component[i];
            if (c.size == 0)
                return Unsupported { "a requested component CPUID does not describe" };
            offset[i] = c.offset;
            extent = std::max(extent, size_t { c.offset } + c.size);
        }
    }

    auto lin = segment(extent, Access::Write);
    if (auto* e = std::get_if<Exception>(&lin))
        return *e;
    uint64_t const base = std::get<uint64_t>(lin);
    if (base & 63)
        return gp0();
    // XSAVE and XSAVEOPT keep the header's other bits: read XSTATE_BV first (the write check below covers it).
    auto writable = check_pages(mem, base, extent, Access::Write);
    if (auto* e = std::get_if<Exception>(&writable))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&writable))
        return *u;

    std::vector<uint8_t> area(extent, 0);
    std::vector<Piece> pieces;
    size_t const nvec = vector_registers(s);
    if (saved & X87) {
        save_x87(s, area, rex_w);
        pieces.push_back({ 0, 24 });
        pieces.push_back({ ST, 128 });
    }
    // MXCSR: the standard form saves it with SSE or AVX requested, the compacted form with SSE saved.
    if (compacted ? (saved & SSE) != 0 : (rfbm & (SSE | AVX)) != 0) {
        put(area, MXCSR, 4, s.fpu.mxcsr);
        put(area, MXCSR_MASK, 4, MXCSR_WRITABLE);
        pieces.push_back({ MXCSR, 8 });
    }
    if (saved & SSE) {
        std::copy_n(s.xsave.begin() + XMM, 16 * nvec, area.begin() + XMM);
        pieces.push_back({ XMM, 16 * nvec });
    }
    for (size_t i = 2; i < 63; ++i) {
        if (!(saved & (1ull << i)))
            continue;
        auto src = component_in_image(s, i);
        if (!src)
            return Unsupported { "a component outside KVM's XSAVE image" };
        size_t const n = transfer_size(s, i);
        std::copy_n(src->begin(), n, area.begin() + static_cast<ptrdiff_t>(offset[i]));
        pieces.push_back({ offset[i], n });
    }
    if (compacted) {
        put(area, XSTATE_BV, 8, rfbm & in_use);
        put(area, XCOMP_BV, 8, rfbm | COMPACTED);
        pieces.push_back({ HEADER, 64 }); // bytes 63:16 of the header are written as zero
    } else {
        std::array<uint8_t, 8> old {};
        auto r = mem.read(base + XSTATE_BV, old);
        if (auto* e = std::get_if<Exception>(&r))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&r))
            return *u;
        uint64_t const bv = (get(old, 0, 8) & ~rfbm) | (in_use & rfbm);
        put(area, XSTATE_BV, 8, bv);
        pieces.push_back({ XSTATE_BV, 8 });
    }
    for (auto const& p : pieces) {
        auto r = mem.write(base + p.offset, std::span<uint8_t const>(area).subspan(p.offset, p.size));
        if (auto* e = std::get_if<Exception>(&r))
            return *e; // not reached: every page was checked above
        if (auto* u = std::get_if<Unsupported>(&r))
            return *u;
    }
    return uint32_t { 0 };
}

// --- XRSTOR (standard or compacted per XCOMP_BV bit 63), XRSTORS (compacted) ---

Result restore(CpuState& s, LinearMemory& mem, XsaveOp op, bool rex_w, SegmentLinear const& segment)
{
    uint64_t const rfbm = requested(s, op);
    uint64_t const enabled = s.xcr0 | (op == XsaveOp::Xrstors ? s.xss : 0);

    auto lin = segment(EXTENDED, Access::Read);
    if (auto* e = std::get_if<Exception>(&lin))
        return *e;
    uint64_t const base = std::get<uint64_t>(lin);
    if (base & 63)
        return gp0();
    std::array<uint8_t, EXTENDED> legacy {};
    auto r = mem.read(base, legacy);
    if (auto* e = std::get_if<Exception>(&r))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&r))
        return *u;

    uint64_t const xstate_bv = get(legacy, XSTATE_BV, 8);
    uint64_t const xcomp_bv = get(legacy, XCOMP_BV, 8);
    bool const compacted = (xcomp_bv & COMPACTED) != 0;
    if (op == XsaveOp::Xrstors && !compacted)
        return gp0();
    if (compacted) {
        if ((xcomp_bv & ~COMPACTED) & ~enabled)
            return gp0();
        if (xstate_bv & ~xcomp_bv)
            return gp0();
        for (size_t i = 16; i < 64; ++i)
            if (legacy[HEADER + i] != 0)
                return gp0();
    } else {
        if (xstate_bv & ~s.xcr0)
            return gp0();
        for (size_t i = 8; i < 24; ++i)
            if (legacy[HEADER + i] != 0)
                return gp0();
    }
    if (rfbm & s.xss & ~s.xcr0)
        return Unsupported { "supervisor state components (not in KVM_GET_XSAVE)" };

    uint64_t const load = rfbm & xstate_bv;        // loaded from memory
    uint64_t const init = rfbm & ~xstate_bv;       // set to their initial configuration
    // MXCSR: the standard form loads it whenever SSE or AVX is requested; the compacted form with SSE loaded, and
    // sets it to 1F80H with SSE initialised.
    std::optional<uint32_t> mxcsr;
    if (compacted ? (load & SSE) != 0 : (rfbm & (SSE | AVX)) != 0) {
        uint64_t const v = get(legacy, MXCSR, 4);
        if (v & ~uint64_t { MXCSR_WRITABLE })
            return gp0();
        mxcsr = static_cast<uint32_t>(v);
    } else if (compacted && (init & SSE)) {
        mxcsr = MXCSR_INIT;
    }

    // The extended components to load: read them all before changing anything.
    std::array<size_t, 63> offset {};
    size_t extent = EXTENDED;
    if (compacted) {
        auto off = compacted_offsets(s, xcomp_bv & ~COMPACTED, &extent);
        if (!off)
            return Unsupported { "a component CPUID does not describe" };
        offset = *off;
    } else {
        for (size_t i = 2; i < 63; ++i) {
            if (!(load & (1ull << i)))
                continue;
            auto const& c = s.xsave_layout.component[i];
            if (c.size == 0)
                return Unsupported { "a component CPUID does not describe" };
            offset[i] = c.offset;
        }
    }
    std::vector<std::pair<size_t, std::vector<uint8_t>>> loaded;
    for (size_t i = 2; i < 63; ++i) {
        if (!((load | init) & (1ull << i)))
            continue;
        if (!component_in_image(s, i))
            return Unsupported { "a component outside KVM's XSAVE image" };
        if (!(load & (1ull << i)))
            continue;
        std::vector<uint8_t> bytes(transfer_size(s, i));
        auto seg = segment(offset[i] + bytes.size(), Access::Read);
        if (auto* e = std::get_if<Exception>(&seg))
            return *e;
        auto rr = mem.read(base + offset[i], bytes);
        if (auto* e = std::get_if<Exception>(&rr))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&rr))
            return *u;
        loaded.emplace_back(i, std::move(bytes));
    }

    // Commit.
    size_t const nvec = vector_registers(s);
    if (load & X87)
        load_x87(s, legacy, rex_w);
    else if (init & X87)
        init_x87(s);
    if (load & SSE)
        std::copy_n(legacy.begin() + XMM, 16 * nvec, s.xsave.begin() + XMM);
    else if (init & SSE)
        std::fill_n(s.xsave.begin() + XMM, 16 * nvec, uint8_t { 0 });
    if (mxcsr)
        s.fpu.mxcsr = *mxcsr;
    for (size_t i = 2; i < 63; ++i) {
        if (init & (1ull << i)) {
            auto dst = *component_in_image(s, i);
            std::fill_n(dst.begin(), transfer_size(s, i), uint8_t { 0 }); // every such component's initial value
        }
    }
    for (auto const& [i, bytes] : loaded)
        std::copy(bytes.begin(), bytes.end(), component_in_image(s, i)->begin());
    // XINUSE follows what was loaded (SDM vol. 1 13.8.3).
    uint64_t const bv = get(s.xsave, XSTATE_BV, 8);
    put(s.xsave, XSTATE_BV, 8, (bv & ~rfbm) | load);
    return uint32_t { DIRTY_FPU | DIRTY_XSTATE };
}

} // namespace

uint64_t xsave_in_use(CpuState const& s)
{
    uint64_t v = get(s.xsave, XSTATE_BV, 8);
    if (!x87_initial(s.fpu))
        v |= X87;
    if (s.fpu.mxcsr != MXCSR_INIT) // SSE's initial configuration includes MXCSR = 1F80H
        v |= SSE;
    return v;
}

std::variant<uint32_t, Exception, Unsupported> xsave_family(CpuState& s, LinearMemory& mem, XsaveOp op, bool rex_w,
    SegmentLinear const& segment)
{
    if (auto e = precheck(s, op))
        return *e;
    if (op == XsaveOp::Xrstor || op == XsaveOp::Xrstors)
        return restore(s, mem, op, rex_w, segment);
    return save(s, mem, op, rex_w, segment);
}

} // namespace hako::emu
