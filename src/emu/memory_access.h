// emu::PhysicalMemory and emu::LinearMemory: how the instruction emulator reaches guest memory.
//
// PhysicalMemory is the guest-physical address space (RAM and MMIO); the VMM implements it over GuestMemory and its
// MMIO bus, tests over a byte vector. LinearMemory adds segmentation's last step (the linear address is given) and
// paging: it walks the guest's page tables (no paging, 32-bit, PAE, 4-level; 5-level is refused), checks the
// access rights as the processor does (U/S, R/W with CR0.WP, NX with EFER.NXE, SMEP, SMAP with EFLAGS.AC), sets the
// accessed and dirty bits with compare-exchange, and returns the #PF to raise, with its error code and CR2, when the
// walk fails. Not modelled: protection keys, reserved physical-address bits above MAXPHYADDR, the TLB (every
// access walks the tables, as if the TLB were empty).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <variant>

#include "emu/cpu_state.h"

namespace hako::emu {

class PhysicalMemory {
public:
    virtual ~PhysicalMemory() = default;
    /// Reads guest-physical memory; what is not backed by anything reads as all-ones (open bus).
    virtual void read(uint64_t pa, std::span<uint8_t> out) = 0;
    /// Writes guest-physical memory; writes to nothing or to ROM are dropped.
    virtual void write(uint64_t pa, std::span<uint8_t const> in) = 0;
    /// Atomically (against other vCPUs, when [pa, pa+size) is RAM and naturally aligned): if the memory equals
    /// `expected`, stores `desired` and returns true; otherwise copies the memory into `expected` and returns false.
    /// Sizes 4, 8 and 16.
    virtual bool compare_exchange(uint64_t pa, std::span<uint8_t> expected, std::span<uint8_t const> desired) = 0;
};

enum class Access : uint8_t { Read, Write, Execute };

/// Page-fault error code bits.
inline constexpr uint32_t PF_P = 1u << 0;
inline constexpr uint32_t PF_W = 1u << 1;
inline constexpr uint32_t PF_U = 1u << 2;
inline constexpr uint32_t PF_RSVD = 1u << 3;
inline constexpr uint32_t PF_I = 1u << 4;

/// The result of a translation: a physical address, an exception, or "this paging mode is not emulated".
struct Unsupported {
    char const* what;
};
using Translation = std::variant<uint64_t, Exception, Unsupported>;

class LinearMemory final {
public:
    /// \param implicit_supervisor accesses to system structures (descriptor tables) are supervisor accesses at
    ///        any CPL.
    LinearMemory(CpuState const& state, PhysicalMemory& phys) : m_state(state), m_phys(phys) {}

    /// Translates one linear address (the walk for one byte; callers split accesses at page boundaries).
    [[nodiscard]] Translation translate(uint64_t linear, Access access, bool implicit_supervisor = false);

    /// Reads [linear, linear+out.size()), all pages checked before anything is read. Returns the fault, if any.
    /// `implicit_supervisor`: an access to a system structure (a descriptor table), supervisor at any CPL.
    [[nodiscard]] std::variant<std::monostate, Exception, Unsupported> read(uint64_t linear, std::span<uint8_t> out,
        Access access = Access::Read, bool implicit_supervisor = false);
    /// Writes [linear, linear+in.size()), all pages checked before anything is written.
    [[nodiscard]] std::variant<std::monostate, Exception, Unsupported> write(uint64_t linear,
        std::span<uint8_t const> in);
    /// A locked read-modify-write: checks write access to every page, then compare-exchanges. Atomic when the
    /// operand does not cross a page; across pages (only an unaligned CMPXCHG8B can) it is a read, compare, write.
    /// Returns whether the exchange happened, or the fault.
    [[nodiscard]] std::variant<bool, Exception, Unsupported> compare_exchange(uint64_t linear,
        std::span<uint8_t> expected, std::span<uint8_t const> desired, bool implicit_supervisor = false);

    /// Bytes read from instruction memory: as many as could be fetched from [linear, linear+out.size()) before a
    /// fault, and the fault that stopped it (if any).
    struct Fetch {
        size_t bytes { 0 };
        std::variant<std::monostate, Exception, Unsupported> stop;
    };
    [[nodiscard]] Fetch fetch(uint64_t linear, std::span<uint8_t> out);

private:
    using Fault = std::variant<std::monostate, Exception, Unsupported>;
    uint64_t wrap(uint64_t linear) const;
    Fault translate_range(uint64_t linear, size_t size, Access access, uint64_t* pa_first, uint64_t* pa_second,
        size_t* first_len, bool implicit_supervisor = false);

    CpuState const& m_state;
    PhysicalMemory& m_phys;
};

} // namespace hako::emu
