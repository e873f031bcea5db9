// Segmentation for the userspace emulator (see segmentation.h).
#include "emu/segmentation.h"

namespace hako::emu {

bool is_canonical(uint64_t a)
{
    uint64_t top = a >> 47;
    return top == 0 || top == 0x1ffff;
}

std::variant<uint64_t, Exception> segment_linear(CpuState const& s, CpuMode mode, Seg sr, uint64_t offset, size_t size,
    Access access)
{
    Segment const& seg = s.segment(sr);
    Exception const fault = sr == Seg::Ss ? Exception { VEC_SS, 0u, 0 } : Exception { VEC_GP, 0u, 0 };
    if (mode == CpuMode::Long64) {
        uint64_t base = (sr == Seg::Fs || sr == Seg::Gs) ? seg.base : 0;
        uint64_t lin = base + offset;
        if (!is_canonical(lin) || !is_canonical(lin + size - 1))
            return fault;
        return lin;
    }
    bool const protected_mode = mode != CpuMode::Real && mode != CpuMode::Virtual8086;
    if (protected_mode) {
        if (seg.unusable || !seg.present)
            return fault;
        bool const code = (seg.type & 8) != 0;
        if (access == Access::Write && (code || !(seg.type & 2)))
            return fault;
        if (access == Access::Read && code && !(seg.type & 2))
            return fault;
    }
    uint64_t const last = offset + size - 1;
    bool const expand_down = !(seg.type & 8) && (seg.type & 4) && protected_mode;
    if (expand_down) {
        uint64_t upper = seg.db ? 0xffffffffu : 0xffffu;
        if (offset <= seg.limit || last > upper)
            return fault;
    } else if (last > seg.limit) {
        return fault;
    }
    return (seg.base + offset) & 0xffffffffu;
}

Segment Descriptor::segment(uint16_t selector) const
{
    Segment seg;
    seg.selector = selector;
    seg.base = uint64_t(raw[2]) | uint64_t(raw[3]) << 8 | uint64_t(raw[4]) << 16 | uint64_t(raw[7]) << 24;
    uint32_t limit = uint32_t(raw[0]) | uint32_t(raw[1]) << 8 | uint32_t(raw[6] & 0xf) << 16;
    seg.g = (raw[6] & 0x80) != 0;
    seg.limit = seg.g ? (limit << 12) | 0xfff : limit;
    seg.type = type();
    seg.s = s();
    seg.dpl = dpl();
    seg.present = present();
    seg.l = l();
    seg.db = db();
    seg.unusable = false;
    return seg;
}

std::variant<Descriptor, Exception, Unsupported> read_descriptor(CpuState const& s, LinearMemory& mem, uint16_t selector)
{
    Exception const gp { VEC_GP, selector_error(selector), 0 };
    bool const local = (selector & 4) != 0;
    uint64_t base = 0;
    uint64_t limit = 0;
    if (local) {
        if (s.ldtr.unusable || !s.ldtr.present || (s.ldtr.selector & 0xfffc) == 0)
            return gp;
        base = s.ldtr.base;
        limit = s.ldtr.limit;
    } else {
        base = s.gdt.base;
        limit = s.gdt.limit;
    }
    uint64_t const offset = selector & 0xfff8u;
    if (offset + 7 > limit)
        return gp;
    Descriptor d;
    d.linear = base + offset;
    if (!(s.efer & EFER_LMA))
        d.linear &= 0xffffffffu;
    auto r = mem.read(d.linear, d.raw, Access::Read, true);
    if (auto* e = std::get_if<Exception>(&r))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&r))
        return *u;
    return d;
}

std::variant<std::monostate, Exception, Unsupported> mark_accessed(LinearMemory& mem, Descriptor& d)
{
    if (d.raw[5] & 1)
        return std::monostate {};
    std::array<uint8_t, 8> expected = d.raw;
    std::array<uint8_t, 8> desired = d.raw;
    desired[5] |= 1;
    // Another vCPU may change the descriptor meanwhile; the processor sets the bit in whatever is there, so retry a
    // few times against what the memory holds (a bounded loop: the guest cannot hold us here).
    for (int attempt = 0; attempt < 4; ++attempt) {
        auto r = mem.compare_exchange(d.linear, expected, desired, true);
        if (auto* e = std::get_if<Exception>(&r))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&r))
            return *u;
        if (std::get<bool>(r)) {
            d.raw[5] |= 1;
            return std::monostate {};
        }
        desired = expected;
        desired[5] |= 1;
    }
    return std::monostate {};
}

Segment null_segment(uint16_t selector, uint8_t dpl)
{
    Segment seg;
    seg.selector = selector;
    seg.base = 0;
    seg.limit = 0;
    seg.type = 0;
    seg.s = false;
    seg.dpl = dpl;
    seg.present = false;
    seg.unusable = true;
    return seg;
}

} // namespace hako::emu
