// The KVM side of the userspace instruction emulator: kvm_regs/kvm_sregs/kvm_fpu <-> emu::CpuState, and exception
// injection through KVM_SET_VCPU_EVENTS.
#include <cstring>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "kvm/abi.h"
#include "kvm/vcpu.h"

namespace hako::kvm {

namespace {

emu::Segment from_kvm(kvm_segment const& k)
{
    emu::Segment s;
    s.base = k.base;
    s.limit = k.limit;
    s.selector = k.selector;
    s.type = k.type;
    s.dpl = k.dpl;
    s.present = k.present != 0;
    s.s = k.s != 0;
    s.db = k.db != 0;
    s.l = k.l != 0;
    s.g = k.g != 0;
    s.unusable = k.unusable != 0;
    return s;
}

void to_kvm(emu::Segment const& s, kvm_segment& k)
{
    k.base = s.base;
    k.limit = s.limit;
    k.selector = s.selector;
    k.type = s.type;
    k.dpl = s.dpl;
    k.present = s.present;
    k.s = s.s;
    k.db = s.db;
    k.l = s.l;
    k.g = s.g;
    k.unusable = s.unusable;
}

// kvm_regs lists the general registers in this order, not in encoding order.
constexpr std::array<emu::Gpr, 16> KVM_REG_ORDER { emu::Gpr::Rax, emu::Gpr::Rbx, emu::Gpr::Rcx, emu::Gpr::Rdx,
    emu::Gpr::Rsi, emu::Gpr::Rdi, emu::Gpr::Rsp, emu::Gpr::Rbp, emu::Gpr::R8, emu::Gpr::R9, emu::Gpr::R10,
    emu::Gpr::R11, emu::Gpr::R12, emu::Gpr::R13, emu::Gpr::R14, emu::Gpr::R15 };

std::array<__u64*, 16> kvm_reg_fields(kvm_regs& r)
{
    return { &r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp, &r.r8, &r.r9, &r.r10, &r.r11, &r.r12,
        &r.r13, &r.r14, &r.r15 };
}


// The x87/SSE state through KVM_GET_XSAVE/KVM_SET_XSAVE (the XSAVE standard format: the FXSAVE legacy region, then
// the XSAVE header). Not KVM_GET_FPU/KVM_SET_FPU: they copy the legacy region of KVM's buffer as it lies in memory,
// but after FNINIT the processor records x87 as "in its initial state" (XSTATE_BV bit 0 clear) and leaves that
// region stale, so KVM_GET_FPU reads old values and a KVM_SET_FPU there is ignored when KVM restores the state.
struct FpuImage {
    abi::Xsave xsave;

    static constexpr size_t FCW = 0, FSW = 2, FTW = 4, FOP = 6, FIP = 8, FDP = 16, MXCSR = 24, ST = 32;
    static constexpr size_t XSTATE_BV = 512;
    static constexpr uint64_t X87_AND_SSE = 3;

    uint8_t* bytes()
    {
        // SAFETY: region is 4096 bytes of plain data; viewing it as bytes is how the format is defined.
        return reinterpret_cast<uint8_t*>(xsave.region);
    }
    template<typename T>
    T get(size_t off)
    {
        T v {};
        std::memcpy(&v, bytes() + off, sizeof(T));
        return v;
    }
    template<typename T>
    void put(size_t off, T v)
    {
        std::memcpy(bytes() + off, &v, sizeof(T));
    }
    void to_state(emu::X87State& f)
    {
        f.fcw = get<uint16_t>(FCW);
        f.fsw = get<uint16_t>(FSW);
        f.ftw = get<uint8_t>(FTW);
        f.fop = get<uint16_t>(FOP);
        f.fip = get<uint64_t>(FIP);
        f.fdp = get<uint64_t>(FDP);
        f.mxcsr = get<uint32_t>(MXCSR);
        for (size_t i = 0; i < 8; ++i)
            std::memcpy(f.st[i].data(), bytes() + ST + 16 * i, 16);
    }
    void from_state(emu::X87State const& f)
    {
        put(FCW, f.fcw);
        put(FSW, f.fsw);
        put(FTW, f.ftw);
        put(FOP, f.fop);
        put(FIP, f.fip);
        put(FDP, f.fdp);
        put(MXCSR, f.mxcsr);
        for (size_t i = 0; i < 8; ++i)
            std::memcpy(bytes() + ST + 16 * i, f.st[i].data(), 16);
        // The legacy region now holds the x87 and SSE state: mark both as saved, so KVM loads them.
        put(XSTATE_BV, get<uint64_t>(XSTATE_BV) | X87_AND_SSE);
    }
};

Result<void> get_fpu_image(int fd, FpuImage& image)
{
    if (::ioctl(fd, abi::GET_XSAVE, &image.xsave) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_XSAVE");
    return ok();
}

static_assert(sizeof(abi::Xsave) == emu::XSAVE_IMAGE_SIZE);

constexpr uint32_t MSR_IA32_XSS = 0xda0;

/// XCR0 through KVM_GET_XCRS (1, x87 only, where KVM has no XCRs).
Result<uint64_t> get_xcr0(int fd)
{
    kvm_xcrs xcrs {};
    if (::ioctl(fd, KVM_GET_XCRS, &xcrs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_XCRS");
    for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i)
        if (xcrs.xcrs[i].xcr == 0)
            return xcrs.xcrs[i].value;
    return uint64_t { 1 };
}

/// IA32_XSS, or 0 where KVM does not offer the MSR (KVM_GET_MSRS then reads no entry).
uint64_t get_xss(int fd)
{
    struct {
        abi::MsrsHeader header;
        kvm_msr_entry entry;
    } msrs {};
    msrs.header.nmsrs = 1;
    msrs.entry.index = MSR_IA32_XSS;
    if (::ioctl(fd, abi::GET_MSRS, &msrs) != 1)
        return 0;
    return msrs.entry.data;
}

} // namespace

Result<emu::CpuState> Vcpu::emu_state() const
{
    kvm_regs regs {};
    kvm_sregs sregs {};
    FpuImage fpu {};
    if (::ioctl(m_fd.get(), KVM_GET_REGS, &regs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_REGS");
    if (::ioctl(m_fd.get(), KVM_GET_SREGS, &sregs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_SREGS");
    TRY(get_fpu_image(m_fd.get(), fpu));
    emu::CpuState s;
    auto fields = kvm_reg_fields(regs);
    for (size_t i = 0; i < 16; ++i)
        s.reg(KVM_REG_ORDER[i]) = *fields[i];
    s.rip = regs.rip;
    s.rflags = regs.rflags;
    s.segment(emu::Seg::Es) = from_kvm(sregs.es);
    s.segment(emu::Seg::Cs) = from_kvm(sregs.cs);
    s.segment(emu::Seg::Ss) = from_kvm(sregs.ss);
    s.segment(emu::Seg::Ds) = from_kvm(sregs.ds);
    s.segment(emu::Seg::Fs) = from_kvm(sregs.fs);
    s.segment(emu::Seg::Gs) = from_kvm(sregs.gs);
    s.tr = from_kvm(sregs.tr);
    s.ldtr = from_kvm(sregs.ldt);
    s.gdt = { sregs.gdt.base, sregs.gdt.limit };
    s.idt = { sregs.idt.base, sregs.idt.limit };
    s.cr0 = sregs.cr0;
    s.cr2 = sregs.cr2;
    s.cr3 = sregs.cr3;
    s.cr4 = sregs.cr4;
    s.cr8 = sregs.cr8;
    s.efer = sregs.efer;
    fpu.to_state(s.fpu);
    std::memcpy(s.xsave.data(), fpu.bytes(), s.xsave.size());
    s.xcr0 = TRY(get_xcr0(m_fd.get()));
    s.xss = get_xss(m_fd.get());
    s.xsave_layout = m_xsave_layout;
    return s;
}

Result<void> Vcpu::set_emu_state(emu::CpuState const& s, uint32_t dirty)
{
    if (dirty & emu::DIRTY_REGS) {
        kvm_regs regs {};
        auto fields = kvm_reg_fields(regs);
        for (size_t i = 0; i < 16; ++i)
            *fields[i] = s.reg(KVM_REG_ORDER[i]);
        regs.rip = s.rip;
        regs.rflags = s.rflags;
        if (::ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_SET_REGS");
    }
    if (dirty & (emu::DIRTY_SREGS | emu::DIRTY_TLB)) {
        // Read-modify-write: keeps the interrupt bitmap and APIC base as KVM has them.
        kvm_sregs sregs {};
        if (::ioctl(m_fd.get(), KVM_GET_SREGS, &sregs) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_GET_SREGS");
        to_kvm(s.segment(emu::Seg::Es), sregs.es);
        to_kvm(s.segment(emu::Seg::Cs), sregs.cs);
        to_kvm(s.segment(emu::Seg::Ss), sregs.ss);
        to_kvm(s.segment(emu::Seg::Ds), sregs.ds);
        to_kvm(s.segment(emu::Seg::Fs), sregs.fs);
        to_kvm(s.segment(emu::Seg::Gs), sregs.gs);
        to_kvm(s.tr, sregs.tr);
        to_kvm(s.ldtr, sregs.ldt);
        sregs.gdt.base = s.gdt.base;
        sregs.gdt.limit = s.gdt.limit;
        sregs.idt.base = s.idt.base;
        sregs.idt.limit = s.idt.limit;
        sregs.cr0 = s.cr0;
        sregs.cr2 = s.cr2;
        sregs.cr3 = s.cr3;
        sregs.cr4 = s.cr4;
        sregs.cr8 = s.cr8;
        sregs.efer = s.efer;
        if (dirty & emu::DIRTY_TLB) {
            // KVM resets its MMU context (dropping every cached translation) when CR4.PGE changes through
            // KVM_SET_SREGS, as a PGE toggle flushes the processor's TLB: toggle it and set it back.
            auto toggled = sregs;
            toggled.cr4 ^= emu::CR4_PGE;
            if (::ioctl(m_fd.get(), KVM_SET_SREGS, &toggled) < 0)
                return Error::from_errno(ErrorKind::Kvm, "KVM_SET_SREGS");
        }
        if (::ioctl(m_fd.get(), KVM_SET_SREGS, &sregs) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_SET_SREGS");
    }
    if (dirty & (emu::DIRTY_FPU | emu::DIRTY_XSTATE)) {
        FpuImage fpu {};
        if (dirty & emu::DIRTY_XSTATE)
            std::memcpy(fpu.bytes(), s.xsave.data(), s.xsave.size()); // XSTATE_BV in it says what is in use
        else
            TRY(get_fpu_image(m_fd.get(), fpu));
        fpu.from_state(s.fpu);
        if (::ioctl(m_fd.get(), abi::SET_XSAVE, &fpu.xsave) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_SET_XSAVE");
    }
    if (dirty & emu::DIRTY_NMI_UNMASK) {
        // IRET ends NMI blocking (SDM vol. 3A 6.7.1); the rest of the event state stays as KVM has it.
        kvm_vcpu_events ev {};
        if (::ioctl(m_fd.get(), KVM_GET_VCPU_EVENTS, &ev) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_GET_VCPU_EVENTS");
        if (ev.nmi.masked) {
            ev.nmi.masked = 0;
            ev.flags = 0;
            if (::ioctl(m_fd.get(), KVM_SET_VCPU_EVENTS, &ev) < 0)
                return Error::from_errno(ErrorKind::Kvm, "KVM_SET_VCPU_EVENTS");
        }
    }
    return ok();
}

Result<void> Vcpu::inject_exception(emu::Exception const& e)
{
    kvm_vcpu_events ev {};
    if (::ioctl(m_fd.get(), KVM_GET_VCPU_EVENTS, &ev) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_VCPU_EVENTS");
    ev.exception.injected = 1;
    ev.exception.pending = 0;
    ev.exception.nr = e.vector;
    ev.exception.has_error_code = e.error_code.has_value();
    ev.exception.error_code = e.error_code.value_or(0);
    ev.flags = 0; // leave NMI pending, SIPI vector and the interrupt shadow as they are
    if (::ioctl(m_fd.get(), KVM_SET_VCPU_EVENTS, &ev) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_VCPU_EVENTS");
    return ok();
}

} // namespace hako::kvm
