// Segmentation for the userspace emulator (Intel SDM vol. 3A ch. 3 and 5): canonical addresses, the linear address of
// a segment-relative access with its limit and type checks, and code/data descriptors read from the GDT or LDT.
#pragma once

#include <array>
#include <cstdint>
#include <variant>

#include "emu/cpu_state.h"
#include "emu/memory_access.h"

namespace hako::emu {

/// A 48-bit canonical address (bits 63:47 all equal).
[[nodiscard]] bool is_canonical(uint64_t a);

/// SDM vol. 3A 5.3 limit checking, 5.7 type checking, 3.3.7.1 canonical addresses in 64-bit mode: the linear address
/// of [offset, offset+size) in segment `sr`, or the #GP(0)/#SS(0) it raises.
[[nodiscard]] std::variant<uint64_t, Exception> segment_linear(CpuState const& s, CpuMode mode, Seg sr,
    uint64_t offset, size_t size, Access access);

/// A code or data segment descriptor as it lies in the GDT/LDT (SDM vol. 3A 3.4.5), and where.
struct Descriptor {
    std::array<uint8_t, 8> raw {};
    uint64_t linear { 0 }; // its linear address
    /// The descriptor cache it loads: base, limit (scaled by G), type, S, DPL, P, L, D/B, G; selector as given.
    Segment segment(uint16_t selector) const;
    uint8_t type() const { return raw[5] & 0xf; }
    bool s() const { return (raw[5] & 0x10) != 0; }
    uint8_t dpl() const { return (raw[5] >> 5) & 3; }
    bool present() const { return (raw[5] & 0x80) != 0; }
    bool code() const { return s() && (type() & 8); }
    bool l() const { return (raw[6] & 0x20) != 0; }
    bool db() const { return (raw[6] & 0x40) != 0; }
};

/// The error code of a fault about `selector`: the selector with its RPL bits cleared (EXT = IDT = 0).
inline uint32_t selector_error(uint16_t selector) { return selector & 0xfffcu; }

/// Reads the descriptor a non-null selector names, as a supervisor access at any CPL. #GP(selector) when it lies
/// beyond the GDT's or the LDT's limit (or the LDT is unusable).
[[nodiscard]] std::variant<Descriptor, Exception, Unsupported> read_descriptor(CpuState const& s, LinearMemory& mem,
    uint16_t selector);

/// Sets the descriptor's accessed bit in memory if it is clear (a locked update, as the processor makes it).
[[nodiscard]] std::variant<std::monostate, Exception, Unsupported> mark_accessed(LinearMemory& mem, Descriptor& d);

/// The cache of a null selector loaded into SS or a data segment register: unusable, with DPL `dpl`.
[[nodiscard]] Segment null_segment(uint16_t selector, uint8_t dpl);

} // namespace hako::emu
