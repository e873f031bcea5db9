// emu::iret_protected(): IRET, IRETD and IRETQ in protected mode and IA-32e mode (Intel SDM vol. 2 "IRET/IRETD/
// IRETQ"), which KVM's instruction emulator refuses (it returns from interrupts in real mode only).
//
// Pops RIP, CS and RFLAGS (and SS:RSP when returning to an outer privilege level, and always in 64-bit mode) through
// SS with the stack's width, checks the return code segment (null, table limit, type, RPL against CPL, conforming
// DPL, present, L with D) and stack segment as the SDM orders them, loads the descriptors (setting their accessed
// bits), updates RFLAGS by the CPL/IOPL rules for the operand size, and on a return to an outer level nulls the data
// segment registers the new CPL may not use. The return unblocks NMIs (DIRTY_NMI_UNMASK).
// Not emulated (reported as unsupported): a task return (EFLAGS.NT outside IA-32e mode) and a return to
// virtual-8086 mode.
#pragma once

#include <cstdint>
#include <variant>

#include "emu/cpu_state.h"
#include "emu/memory_access.h"

namespace hako::emu {

/// \param operand_bits 16, 32 or 64 (IRET, IRETD, IRETQ).
/// \return the Dirty bits of what changed, or the exception to raise (state unchanged), or why it is not emulated.
[[nodiscard]] std::variant<uint32_t, Exception, Unsupported> iret_protected(CpuState& s, LinearMemory& mem,
    unsigned operand_bits);

} // namespace hako::emu
