// emu::xsave_family(): XSAVE, XSAVEOPT, XSAVEC, XSAVES, XRSTOR, XRSTORS (and their 64-bit forms) for the userspace
// instruction emulator (Intel SDM vol. 1 ch. 13 "Managing state using the XSAVE feature set", vol. 2 instruction pages).
//
// Works on CpuState's XSAVE image (the standard-format area KVM_GET_XSAVE gives, XSTATE_BV = XINUSE) with the x87
// control state and MXCSR from CpuState::fpu. Memory is reached only through LinearMemory: every page of the area is
// checked before anything is written, and XRSTOR reads and validates everything before it changes any state, so a
// fault leaves memory and registers as they were.
// Faults, in the SDM's priority: #UD (CR4.OSXSAVE clear), #NM (CR0.TS), #GP(0) for XSAVES/XRSTORS at CPL > 0,
// segment #GP(0)/#SS(0), #GP(0) for an area not 64-byte aligned, #PF, then XRSTOR's header checks (#GP(0)): reserved
// header bytes, XSTATE_BV bits outside XCR0 (standard form) or outside XCOMP_BV (compacted), XCOMP_BV bits outside
// XCR0 (| IA32_XSS for XRSTORS), XRSTORS of a standard-format area, and MXCSR reserved bits.
// Not modelled: CPUID feature checks (as elsewhere in the emulator: the guest runs what its CPUID offers), the
// modified optimization (XSAVEOPT/XSAVES skip only components in their initial configuration), supervisor state
// components (KVM_GET_XSAVE does not carry them: an RFBM naming one is reported as unsupported), FCS/FDS (saved as 0,
// as on processors that deprecate them), #AC.
#pragma once

#include <cstdint>
#include <functional>
#include <variant>

#include "emu/cpu_state.h"
#include "emu/memory_access.h"

namespace hako::emu {

enum class XsaveOp : uint8_t { Xsave, Xsaveopt, Xsavec, Xsaves, Xrstor, Xrstors };

/// Segmentation for the memory operand: the linear address of an access of `size` bytes from its effective address,
/// or the #GP(0)/#SS(0) it raises.
using SegmentLinear = std::function<std::variant<uint64_t, Exception>(size_t size, Access access)>;

/// Runs one instruction of the family. `rex_w` selects the 64-bit x87 pointer format (XSAVE64 etc.).
/// \return the Dirty bits of what changed in `s` (0 for the saves), or the exception to raise, or why the emulator
///         cannot do it.
[[nodiscard]] std::variant<uint32_t, Exception, Unsupported> xsave_family(CpuState& s, LinearMemory& mem, XsaveOp op,
    bool rex_w, SegmentLinear const& segment);

/// XINUSE: the components not in their initial configuration, as far as the state tells (SDM vol. 1 13.6).
[[nodiscard]] uint64_t xsave_in_use(CpuState const& s);

} // namespace hako::emu
