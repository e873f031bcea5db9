// emu::CpuState: the architectural state the userspace instruction emulator reads and writes, independent of KVM.
//
// The KVM glue (src/kvm/vcpu_emu.cpp) fills it from KVM_GET_REGS/SREGS/FPU and writes back what the emulator marks
// dirty. Tests build one by hand. Field names follow the Intel SDM.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace hako::emu {

/// A segment register's selector and its hidden (descriptor cache) part.
struct Segment {
    uint64_t base { 0 };
    uint32_t limit { 0xffff };
    uint16_t selector { 0 };
    uint8_t type { 3 };   // descriptor type bits (read/write data, accessed)
    uint8_t dpl { 0 };
    bool present { true };
    bool s { true };      // code/data (not system)
    bool db { false };    // default size / big
    bool l { false };     // 64-bit code
    bool g { false };
    bool unusable { false };
};

/// Segment register numbers (the encoding order of the ModRM reg field for MOV Sreg).
enum class Seg : uint8_t { Es = 0, Cs = 1, Ss = 2, Ds = 3, Fs = 4, Gs = 5 };

/// General registers in encoding order.
enum class Gpr : uint8_t { Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15 };

/// The x87 state as FXSAVE lays it out (abridged tag word: one bit per register, 1 = valid).
struct X87State {
    uint16_t fcw { 0x037f };
    uint16_t fsw { 0 };
    uint8_t ftw { 0 };
    uint16_t fop { 0 };
    uint64_t fip { 0 };
    uint64_t fdp { 0 };
    std::array<std::array<uint8_t, 16>, 8> st {}; // 80-bit values, padded to 16 bytes
    uint32_t mxcsr { 0x1f80 };
};

// Control register and flag bits the emulator looks at.
inline constexpr uint64_t CR0_PE = 1u << 0;
inline constexpr uint64_t CR0_MP = 1u << 1;
inline constexpr uint64_t CR0_EM = 1u << 2;
inline constexpr uint64_t CR0_TS = 1u << 3;
inline constexpr uint64_t CR0_NE = 1u << 5;
inline constexpr uint64_t CR0_WP = 1u << 16;
inline constexpr uint64_t CR0_PG = 1u << 31;
inline constexpr uint64_t CR4_PSE = 1u << 4;
inline constexpr uint64_t CR4_PAE = 1u << 5;
inline constexpr uint64_t CR4_PGE = 1u << 7;
inline constexpr uint64_t CR4_OSFXSR = 1u << 9;
inline constexpr uint64_t CR4_LA57 = 1u << 12;
inline constexpr uint64_t CR4_PCIDE = 1u << 17;
inline constexpr uint64_t CR4_OSXSAVE = 1u << 18;
inline constexpr uint64_t CR4_SMEP = 1u << 20;
inline constexpr uint64_t CR4_SMAP = 1u << 21;
inline constexpr uint64_t EFER_LME = 1u << 8;
inline constexpr uint64_t EFER_LMA = 1u << 10;
inline constexpr uint64_t EFER_NXE = 1u << 11;
inline constexpr uint64_t RFLAGS_CF = 1u << 0;
inline constexpr uint64_t RFLAGS_PF = 1u << 2;
inline constexpr uint64_t RFLAGS_AF = 1u << 4;
inline constexpr uint64_t RFLAGS_ZF = 1u << 6;
inline constexpr uint64_t RFLAGS_SF = 1u << 7;
inline constexpr uint64_t RFLAGS_TF = 1u << 8;
inline constexpr uint64_t RFLAGS_IF = 1u << 9;
inline constexpr uint64_t RFLAGS_DF = 1u << 10;
inline constexpr uint64_t RFLAGS_OF = 1u << 11;
inline constexpr uint64_t RFLAGS_IOPL = 3u << 12;
inline constexpr uint64_t RFLAGS_NT = 1u << 14;
inline constexpr uint64_t RFLAGS_RF = 1u << 16;
inline constexpr uint64_t RFLAGS_VM = 1u << 17;
inline constexpr uint64_t RFLAGS_AC = 1u << 18;
inline constexpr uint64_t RFLAGS_VIF = 1u << 19;
inline constexpr uint64_t RFLAGS_VIP = 1u << 20;
inline constexpr uint64_t RFLAGS_ID = 1u << 21;

// Exception vectors.
inline constexpr uint8_t VEC_DB = 1;
inline constexpr uint8_t VEC_BP = 3;
inline constexpr uint8_t VEC_UD = 6;
inline constexpr uint8_t VEC_NM = 7;
inline constexpr uint8_t VEC_TS = 10;
inline constexpr uint8_t VEC_NP = 11;
inline constexpr uint8_t VEC_SS = 12;
inline constexpr uint8_t VEC_GP = 13;
inline constexpr uint8_t VEC_PF = 14;
inline constexpr uint8_t VEC_MF = 16;
inline constexpr uint8_t VEC_AC = 17;

/// An exception the emulated instruction raises, to be delivered to the guest.
struct Exception {
    uint8_t vector { 0 };
    std::optional<uint32_t> error_code;
    uint64_t cr2 { 0 }; // #PF only: the faulting linear address
    friend bool operator==(Exception const&, Exception const&) = default;
};

/// Which parts of CpuState an emulated instruction changed, so the glue writes back only those.
enum Dirty : uint32_t {
    DIRTY_REGS = 1u << 0,    // gpr, rip, rflags
    DIRTY_SREGS = 1u << 1,   // segments, descriptor tables, control registers, efer
    DIRTY_FPU = 1u << 2,     // x87/SSE state
    DIRTY_TLB = 1u << 3,     // the guest's TLB must be flushed (INVPCID, INVLPG)
    DIRTY_XSTATE = 1u << 4,  // the XSAVE-managed state in `xsave` (with `fpu` on top of its legacy region)
    DIRTY_NMI_UNMASK = 1u << 5, // an IRET ran: NMIs are no longer blocked
};

/// Where the XSAVE feature set keeps each state component, from CPUID leaf 0xD as the guest sees it
/// (SDM vol. 1 13.2, 13.4.3). Components 0 (x87) and 1 (SSE) live in the legacy region and are not listed.
struct XsaveLayout {
    struct Component {
        uint32_t offset { 0 };     // standard-format offset (CPUID.(0xD,i).EBX)
        uint32_t size { 0 };       // bytes (CPUID.(0xD,i).EAX); 0 = the component is not described
        bool align64 { false };    // compacted format: starts on a 64-byte boundary (CPUID.(0xD,i).ECX bit 1)
        bool supervisor { false }; // managed through IA32_XSS (CPUID.(0xD,i).ECX bit 0)
    };
    std::array<Component, 63> component {};
    /// CPUID.(0xD,1).EAX: bit 0 XSAVEOPT, bit 1 XSAVEC, bit 2 XGETBV with ECX=1, bit 3 XSAVES/XRSTORS.
    uint32_t features { 0 };
};

/// Size of the XSAVE image the emulator works on: KVM_GET_XSAVE's 4 KiB standard-format area.
inline constexpr size_t XSAVE_IMAGE_SIZE = 4096;

struct DescriptorTable {
    uint64_t base { 0 };
    uint16_t limit { 0xffff };
};

struct CpuState {
    std::array<uint64_t, 16> gpr {};
    uint64_t rip { 0 };
    uint64_t rflags { 2 };
    std::array<Segment, 6> seg {};
    Segment tr {}, ldtr {};
    DescriptorTable gdt {}, idt {};
    uint64_t cr0 { 0x60000010 }, cr2 { 0 }, cr3 { 0 }, cr4 { 0 }, cr8 { 0 };
    uint64_t efer { 0 };
    X87State fpu {};
    uint64_t xcr0 { 1 };
    uint64_t xss { 0 }; // IA32_XSS
    /// The XSAVE-managed state in the standard format (SDM vol. 1 13.4): legacy region (its x87 fields and MXCSR
    /// are superseded by `fpu`; the XMM registers are at byte 160), header (XSTATE_BV at byte 512 = which
    /// components are in use, XINUSE), extended components at their `xsave_layout` offsets. Components not in use
    /// hold their initial values.
    std::array<uint8_t, XSAVE_IMAGE_SIZE> xsave {};
    XsaveLayout xsave_layout {};

    uint64_t& reg(Gpr r) { return gpr[static_cast<size_t>(r)]; }
    uint64_t reg(Gpr r) const { return gpr[static_cast<size_t>(r)]; }
    Segment& segment(Seg s) { return seg[static_cast<size_t>(s)]; }
    Segment const& segment(Seg s) const { return seg[static_cast<size_t>(s)]; }
};

/// The execution mode the instruction runs in, from CR0.PE, EFLAGS.VM, EFER.LMA and CS.
enum class CpuMode { Real, Virtual8086, Protected16, Protected32, Compat16, Compat32, Long64 };

inline CpuMode cpu_mode(CpuState const& s)
{
    if (!(s.cr0 & CR0_PE))
        return CpuMode::Real;
    Segment const& cs = s.segment(Seg::Cs);
    if (s.efer & EFER_LMA) {
        if (cs.l)
            return CpuMode::Long64;
        return cs.db ? CpuMode::Compat32 : CpuMode::Compat16;
    }
    if (s.rflags & RFLAGS_VM)
        return CpuMode::Virtual8086;
    return cs.db ? CpuMode::Protected32 : CpuMode::Protected16;
}

inline char const* cpu_mode_name(CpuMode m)
{
    switch (m) {
    case CpuMode::Real: return "real";
    case CpuMode::Virtual8086: return "virtual-8086";
    case CpuMode::Protected16: return "16-bit protected";
    case CpuMode::Protected32: return "32-bit protected";
    case CpuMode::Compat16: return "16-bit compatibility";
    case CpuMode::Compat32: return "32-bit compatibility";
    case CpuMode::Long64: return "64-bit";
    }
    return "unknown";
}

/// The current privilege level: 0 in real mode, 3 in virtual-8086 mode, else SS.DPL (= CS.DPL).
inline uint8_t cpu_cpl(CpuState const& s)
{
    CpuMode m = cpu_mode(s);
    if (m == CpuMode::Real)
        return 0;
    if (m == CpuMode::Virtual8086)
        return 3;
    return s.segment(Seg::Ss).dpl;
}

} // namespace hako::emu
