// emu::emulate(): finishes one instruction that KVM's instruction emulator refused, in userspace.
//
// On hosts where guest CPL0 code runs in KVM's emulator (PVM: see docs/architecture.md, "Instructions KVM cannot
// emulate"), KVM stops with an emulation failure on instructions it does not implement. The VMM loads the vCPU's
// state into a CpuState, calls emulate(), writes back what changed and injects the exception it returns.
//
// The instruction is fetched through the guest's page tables at CS:RIP and decoded with Zydis in the CPU's mode.
// Emulated (Intel SDM vol. 2 semantics, faults in the SDM's priority order):
//   FWAIT, FNINIT, FNCLEX, FLDCW, FNSTCW, FNSTSW (m16 and AX): the x87 control instructions (#NM per CR0.EM/MP/TS,
//     #MF for a pending unmasked exception when CR0.NE is set);
//   LDMXCSR, STMXCSR (#UD without CR4.OSFXSR, #NM, #GP(0) for reserved MXCSR bits);
//   INT3 (and INTO, INT1): the trap is raised with RIP after the instruction;
//   MOVBE r, m and m, r (16/32/64-bit);
//   POPCNT r, r/m (16/32/64-bit);
//   CLAC, STAC (#UD at CPL > 0);
//   LAR, LSL (r, r/m16: access rights or byte-granular limit, ZF; ZF = 0 for a null, out-of-table, wrong-type or
//     too-privileged selector; #UD in real and virtual-8086 mode);
//   CMPXCHG8B and CMPXCHG16B (with or without LOCK; atomic through PhysicalMemory::compare_exchange; #GP(0) for an
//     unaligned CMPXCHG16B operand);
//   INVPCID (descriptor and type checks; every type flushes the whole TLB: Dirty DIRTY_TLB);
//   XSAVE, XSAVEOPT, XSAVEC, XSAVES, XRSTOR, XRSTORS and their 64-bit forms (emu/xsave.h); XGETBV (XCR0, and
//     XCR0 AND XINUSE with ECX = 1 where CPUID offers it). XSETBV, FXSAVE and FXRSTOR are left to KVM, which
//     emulates them.
//   SSE-family integer and bitwise instructions, legacy (non-VEX) 128-bit forms (emu/sse.h): MOVD, MOVQ, MOVDQA,
//     MOVDQU, MOVAPS/UPS/APD/UPD, LDDQU, MOVNTDQ(A), MOVNTPS/PD; PADD/PSUB (B/W/D/Q, saturating B/W), PMULLW/LD,
//     PMULHW/HUW, PMULUDQ, PMADDWD, PAVGB/W, PSADBW, PCMPEQ/PCMPGT (B/W/D/Q), PMIN/PMAX (signed and unsigned
//     B/W/D), PAND/PANDN/POR/PXOR and the PS/PD logic, PSLL/PSRL/PSRA (W/D/Q) and PSLLDQ/PSRLDQ, PSHUFD/LW/HW,
//     PSHUFB, PALIGNR, SHUFPS, PUNPCKL/H and UNPCKL/HPS/PD, PACKSSWB/SSDW/USWB/USDW, PEXTRB/W/D/Q, PINSRB/W/D/Q,
//     PTEST, PMOVMSKB, MOVMSKPS/PD, PCLMULQDQ, and CRC32 (general registers). #UD with CR0.EM or without
//     CR4.OSFXSR, #NM with CR0.TS, #GP(0) for a misaligned 16-byte operand (except the unaligned moves). MMX forms
//     and VEX/EVEX encodings are reported as unsupported; SSE floating-point arithmetic is not emulated.
//   IRET, IRETD, IRETQ outside real mode (emu/iret.h: protected and IA-32e mode, same and outer privilege level;
//     KVM's emulator returns from interrupts in real mode only). A task return (EFLAGS.NT) and a return to
//     virtual-8086 mode are reported as unsupported.
//   The x87 data, arithmetic and comparison instructions (emu/x87.h): FLD/FST/FSTP (m32/m64/m80, ST(i)), FILD,
//     FIST(P), FISTTP, FLDZ/FLD1/FLDPI/FLDL2E/FLDL2T/FLDLG2/FLDLN2, FADD/FSUB(R)/FMUL/FDIV(R) and their P and FI
//     forms, FCOM(P)(P), FUCOM(P)(P), FCOMI(P), FUCOMI(P), FICOM(P), FTST, FXAM, FXCH, FCHS, FABS, FSQRT, FRNDINT,
//     FSCALE, FPREM(1), FXTRACT, the transcendentals, FCMOVcc, FFREE(P), FINCSTP, FDECSTP, FNOP, FNSTENV, FLDENV,
//     FNSAVE, FRSTOR: computed by the host's x87 unit (bit-exact under the guest's RC/PC), #NM per CR0.EM/TS, #MF
//     for a pending unmasked exception (not for FNSTENV/FNSAVE). Not emulated: FBLD, FBSTP, unmasked #O/#U with a
//     register destination.
// Everything else is reported as unsupported, with its mnemonic, for the caller's clear error. Undecodable bytes
// (and LOCK on an instruction that does not take it) raise #UD, as the processor does.
// Not modelled: CPUID feature checks (the guest only runs what CPUID offers it), single-step (#DB after an
// emulated instruction with EFLAGS.TF set), debug-register breakpoints, alignment checks (#AC).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "emu/cpu_state.h"
#include "emu/memory_access.h"

namespace hako::emu {

struct Outcome {
    enum class Kind {
        Completed,   // the instruction ran; `exception` holds a trap it raised (INT3), RIP is past it
        Faulted,     // the instruction raised `exception`; RIP and everything else unchanged
        Unsupported, // not emulated: `detail` says why; nothing changed
    };
    Kind kind { Kind::Unsupported };
    std::optional<Exception> exception;
    char const* mnemonic { "(none)" }; // Zydis's name for the instruction (static storage)
    uint32_t dirty { 0 };              // Dirty bits of what changed in the CpuState
    std::string detail;
    std::array<uint8_t, 15> bytes {};
    uint8_t length { 0 };              // bytes fetched (the instruction's length once decoded)
};

/// Emulates the instruction at CS:RIP. Never touches memory except through `memory`.
[[nodiscard]] Outcome emulate(CpuState& state, PhysicalMemory& memory);

} // namespace hako::emu
