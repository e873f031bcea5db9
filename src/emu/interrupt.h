// emu::deliver_event(): an interrupt or exception delivered through the IDT in legacy protected mode (Intel SDM vol.
// 3A 6.10-6.13), for hosts whose KVM cannot deliver some events there itself (PVM: see vmm/instruction_emulation.h).
//
// Reads the gate (interrupt or trap gate, 16- or 32-bit), checks it and the handler's code segment in the SDM's
// order, pushes EFLAGS, CS, EIP (and the error code) on the current stack with the gate's width, loads CS:EIP from the
// gate, and clears TF, NT, RF and VM (and IF through an interrupt gate). A fault found on the way is returned with
// EXT set in its error code, for the caller to deliver in turn.
// Not delivered (reported as unsupported): task gates, a handler at a more privileged level than the current code
// (the stack switch through the TSS), virtual-8086 mode, and IA-32e mode.
#pragma once

#include <cstdint>
#include <optional>
#include <variant>

#include "emu/cpu_state.h"
#include "emu/memory_access.h"

namespace hako::emu {

/// An event to deliver: a vector, the error code some exceptions push, and whether it comes from outside the
/// processor (an external interrupt or a fault found while delivering one: EXT in error codes).
struct Event {
    uint8_t vector { 0 };
    std::optional<uint32_t> error_code;
    bool external { true };
};

/// \return the Dirty bits of what changed, or the fault the delivery raises (state unchanged), or why it is not done.
[[nodiscard]] std::variant<uint32_t, Exception, Unsupported> deliver_event(CpuState& s, LinearMemory& mem,
    Event const& e);

} // namespace hako::emu
