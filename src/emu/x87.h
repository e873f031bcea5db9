// emu::x87_execute(): the x87 FPU's data-transfer, arithmetic, comparison and stack instructions for the userspace
// instruction emulator (Intel SDM vol. 1 ch. 8 "Programming with the x87 FPU", vol. 2 instruction pages).
//
// Works on CpuState::fpu, which holds the registers as FXSAVE lays them out: st[i] is ST(i) (stack order, relative
// to TOP), the abridged tag word has one bit per physical register (1 = valid). Pushes and pops therefore rotate st[].
// The arithmetic is done by the host's own x87 unit (the host is x86-64; the x87 format is the guest's), so results
// are bit-exact 80-bit results under the guest's rounding and precision control: every host operation runs with the
// guest's RC and PC and all exceptions masked; the host status word gives the exception flags and C0-C3, and the
// guest's masks are applied afterwards (SDM vol. 1 8.5, 4.9.2):
// - masked exceptions: the host's masked response is the result; the flags are ORed into the guest's FSW;
// - unmasked #I, #Z, #D (and stack faults): destination and TOP unchanged, flags set, ES and B set so the next
//   waiting x87 instruction raises #MF (with CR0.NE; the caller checks);
// - unmasked #O/#U with a memory destination: nothing stored, TOP unchanged, flags set;
// - unmasked #O/#U with a register destination (the bias-adjusted result) are reported as unsupported;
// - unmasked #P: the result is delivered and ES set.
// Stack overflow/underflow (#IS) set IE and SF, C1 = 1 on overflow and 0 on underflow; the masked response writes
// the floating-point (or integer) indefinite. FIP, FOP and FDP are updated for every instruction handled here (all
// non-control instructions). Memory is reached only through LinearMemory; a memory fault leaves all state unchanged.
//
// Emulated: FLD/FST/FSTP (m32fp, m64fp, m80fp, ST(i)), FILD/FIST/FISTP (m16, m32, m64), FISTTP, FLDZ, FLD1, FLDPI,
// FLDL2E, FLDL2T, FLDLG2, FLDLN2, FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR (m32, m64, ST(0),ST(i), ST(i),ST(0), the P forms),
// FIADD/FISUB/FISUBR/FIMUL/FIDIV/FIDIVR (m16, m32), FXCH, FCHS, FABS, FSQRT, FRNDINT, FSCALE, FPREM, FPREM1,
// FXTRACT, F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN, FSIN, FCOS, FSINCOS, FCOM/FCOMP/FCOMPP, FUCOM/FUCOMP/FUCOMPP,
// FCOMI/FCOMIP/FUCOMI/FUCOMIP (EFLAGS), FICOM/FICOMP, FTST, FXAM, FCMOVcc, FFREE, FFREEP, FINCSTP, FDECSTP, FNOP,
// FNSTENV, FLDENV, FNSAVE, FRSTOR in the four image formats (SDM vol. 1 8.1.10, figures 8-9 to 8-12: 16/32-bit operand
// size, real/protected mode; 64-bit mode uses the 32-bit protected format); FCS and FDS are stored as 0 (as on
// processors that deprecate them) and ignored on loads; FNSAVE then initialises the FPU as FNINIT does.
// Not here: FBLD/FBSTP (reported as unsupported); the control instructions KVM or emulator.cpp handle (FNINIT,
// FNCLEX, FLDCW, FNSTCW, FNSTSW, FWAIT).
#pragma once

#include <cstdint>
#include <variant>

#include "emu/cpu_state.h"
#include "emu/memory_access.h"
#include "emu/xsave.h"

namespace hako::emu {

/// One decoded x87 instruction (escape opcode 0xD8-0xDF and its ModRM byte).
struct X87Insn {
    uint8_t opcode { 0xd9 };
    uint8_t modrm { 0 };
    uint64_t ip { 0 };          // the instruction's offset (FIP)
    uint64_t data_offset { 0 }; // the memory operand's effective address (FDP), when modrm.mod != 3
    bool operand16 { false };   // 16-bit operand size: the 14/94-byte FNSTENV/FNSAVE images
    bool real_format { false }; // real or virtual-8086 mode: the real-mode FNSTENV/FNSAVE images
};

/// Whether `opcode`/`modrm` is an instruction x87_execute() handles (it may still report an operand form as
/// unsupported). The caller raises #NM, and #MF for the waiting ones (all but FNSTENV and FNSAVE: x87_waits()).
[[nodiscard]] bool x87_handles(uint8_t opcode, uint8_t modrm);

/// Whether the instruction checks for pending unmasked exceptions (#MF) before it runs.
[[nodiscard]] bool x87_waits(uint8_t opcode, uint8_t modrm);

/// Runs one x87 instruction. `segment` turns the memory operand's effective address into a linear address.
/// \return the Dirty bits of what changed, or the exception to raise (all state unchanged), or why not emulated.
[[nodiscard]] std::variant<uint32_t, Exception, Unsupported> x87_execute(CpuState& s, LinearMemory& mem,
    X87Insn const& insn, SegmentLinear const& segment);

} // namespace hako::emu
