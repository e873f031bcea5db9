#include "kvm/vcpu.h"

#include <algorithm>
#include <cstring>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "arch/x86/boot_tables.h"
#include "base/log.h"
#include "kvm/abi.h"
#include "kvm/system.h"
#include "kvm/vm.h"

namespace hako::kvm {

Result<std::unique_ptr<Vcpu>> Vcpu::create(Vm& vm, uint32_t id, UniqueFd fd, size_t mmap_size)
{
    // SAFETY: maps the vCPU's kvm_run page(s) as KVM documents; unmapped in ~Vcpu.
    void* p = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED)
        return Error::from_errno(ErrorKind::Kvm, "mmap(kvm_run)");
    return std::unique_ptr<Vcpu>(new Vcpu(vm, id, std::move(fd), static_cast<kvm_run*>(p), mmap_size));
}

Vcpu::~Vcpu()
{
    ::munmap(m_run, m_mmap_size);
}

Result<void> Vcpu::set_cpuid(std::vector<arch::x86::CpuidEntry> const& entries)
{
    std::vector<uint8_t> buf(sizeof(abi::Cpuid2Header) + entries.size() * sizeof(kvm_cpuid_entry2));
    abi::Cpuid2Header header { static_cast<uint32_t>(entries.size()), 0 };
    std::memcpy(buf.data(), &header, sizeof header);
    for (size_t i = 0; i < entries.size(); ++i) {
        auto const& e = entries[i];
        kvm_cpuid_entry2 k { e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx, { 0, 0, 0 } };
        std::memcpy(buf.data() + sizeof header + i * sizeof k, &k, sizeof k);
    }
    if (::ioctl(m_fd.get(), abi::SET_CPUID2, buf.data()) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_CPUID2");
    // Leaf 0xD as the guest sees it: where XSAVE puts each state component.
    m_xsave_layout = {};
    if (auto const* sub1 = arch::x86::find_cpuid(entries, 0xd, 1))
        m_xsave_layout.features = sub1->eax;
    for (uint32_t i = 2; i < m_xsave_layout.component.size(); ++i) {
        auto const* e = arch::x86::find_cpuid(entries, 0xd, i);
        if (!e || e->index != i)
            continue;
        auto& c = m_xsave_layout.component[i];
        c.size = e->eax;
        c.offset = e->ebx;
        c.supervisor = (e->ecx & 1) != 0;
        c.align64 = (e->ecx & 2) != 0;
    }
    return ok();
}

template<typename T>
static Result<void> get_state(int fd, unsigned long req, char const* what, std::vector<uint8_t>& out)
{
    T v {};
    if (::ioctl(fd, req, &v) < 0)
        return Error::from_errno(ErrorKind::Kvm, what);
    out.resize(sizeof v);
    std::memcpy(out.data(), &v, sizeof v);
    return ok();
}

Result<void> Vcpu::save_reset_state()
{
    TRY(get_state<kvm_regs>(m_fd.get(), KVM_GET_REGS, "KVM_GET_REGS", m_reset_regs));
    TRY(get_state<kvm_sregs>(m_fd.get(), KVM_GET_SREGS, "KVM_GET_SREGS", m_reset_sregs));
    TRY(get_state<kvm_lapic_state>(m_fd.get(), KVM_GET_LAPIC, "KVM_GET_LAPIC", m_reset_lapic));
    return ok();
}

static kvm_segment flat_segment(arch::x86::BootSegment const& s)
{
    kvm_segment seg {};
    seg.base = 0;
    seg.limit = 0xffffffff;
    seg.selector = s.selector;
    seg.type = s.type;
    seg.present = 1;
    seg.dpl = 0;
    seg.db = s.db;
    seg.s = 1;
    seg.l = s.l;
    seg.g = 1;
    return seg;
}

Result<void> Vcpu::setup_msrs()
{
    // The MSRs a freshly booted kernel expects in a sane state (as Firecracker and QEMU set them).
    constexpr uint32_t MSR_IA32_SYSENTER_CS = 0x174, MSR_IA32_SYSENTER_ESP = 0x175, MSR_IA32_SYSENTER_EIP = 0x176;
    constexpr uint32_t MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082, MSR_CSTAR = 0xc0000083;
    constexpr uint32_t MSR_SYSCALL_MASK = 0xc0000084, MSR_KERNEL_GS_BASE = 0xc0000102;
    constexpr uint32_t MSR_IA32_MISC_ENABLE = 0x1a0, MSR_MTRR_DEF_TYPE = 0x2ff;
    constexpr uint64_t MISC_ENABLE_FAST_STRING = 1;
    constexpr uint64_t MTRR_ENABLE_WRITEBACK = (1u << 11) | 6;
    std::pair<uint32_t, uint64_t> const wanted[] = {
        { MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 }, { MSR_IA32_SYSENTER_EIP, 0 },
        { MSR_STAR, 0 }, { MSR_CSTAR, 0 }, { MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_LSTAR, 0 },
        { MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING }, { MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK },
    };
    auto supported = TRY(m_vm.system().msr_index_list());
    std::vector<uint8_t> buf(sizeof(abi::MsrsHeader) + std::size(wanted) * sizeof(kvm_msr_entry));
    uint32_t n = 0;
    for (auto [index, value] : wanted) {
        if (std::find(supported.begin(), supported.end(), index) == supported.end())
            continue;
        kvm_msr_entry e {};
        e.index = index;
        e.data = value;
        std::memcpy(buf.data() + sizeof(abi::MsrsHeader) + n * sizeof e, &e, sizeof e);
        ++n;
    }
    abi::MsrsHeader header { n, 0 };
    std::memcpy(buf.data(), &header, sizeof header);
    int r = ::ioctl(m_fd.get(), abi::SET_MSRS, buf.data());
    if (r < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_MSRS");
    if (static_cast<uint32_t>(r) != n)
        HAKO_DEBUG("vCPU {}: KVM accepted {} of {} boot MSRs", m_id, r, n);
    return ok();
}

Result<void> Vcpu::setup_fpu()
{
    kvm_fpu fpu {};
    fpu.fcw = 0x37f;      // x87 default control word (FNINIT)
    fpu.mxcsr = 0x1f80;   // all SSE exceptions masked
    if (::ioctl(m_fd.get(), KVM_SET_FPU, &fpu) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_FPU");
    return ok();
}

Result<void> Vcpu::setup_lint(bool is_bsp)
{
    // Restore the LAPIC as created, then, on the BSP, put LINT0 in ExtINT and LINT1 in NMI mode (virtual wire) as
    // a PC BIOS leaves it, so 8259 interrupts reach a guest that never programs its LAPIC.
    kvm_lapic_state lapic {};
    std::memcpy(&lapic, m_reset_lapic.data(), sizeof lapic);
    if (is_bsp) {
        constexpr size_t APIC_LVT0 = 0x350, APIC_LVT1 = 0x360;
        constexpr uint32_t APIC_MODE_EXTINT = 0x7 << 8, APIC_MODE_NMI = 0x4 << 8;
        auto set_reg = [&](size_t off, uint32_t v) { std::memcpy(&lapic.regs[off], &v, sizeof v); };
        set_reg(APIC_LVT0, APIC_MODE_EXTINT);
        set_reg(APIC_LVT1, APIC_MODE_NMI);
    }
    if (::ioctl(m_fd.get(), KVM_SET_LAPIC, &lapic) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_LAPIC");
    return ok();
}

Result<void> Vcpu::reset(arch::x86::BootEntry const& entry, bool is_bsp)
{
    using arch::x86::CpuMode;
    kvm_regs regs {};
    kvm_sregs sregs {};
    std::memcpy(&regs, m_reset_regs.data(), sizeof regs);
    std::memcpy(&sregs, m_reset_sregs.data(), sizeof sregs);

    if (is_bsp && entry.mode != CpuMode::RealReset) {
        auto const& t = arch::x86::boot_tables();
        sregs.gdt.base = t.gdt_base;
        sregs.gdt.limit = t.gdt_limit;
        sregs.idt.base = t.idt_base;
        sregs.idt.limit = 0;
        bool const long_mode = entry.mode == CpuMode::Long64;
        sregs.cs = flat_segment(long_mode ? t.code64 : t.code32);
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(t.data);
        sregs.tr.base = 0;
        sregs.tr.limit = 0xffff;
        sregs.tr.selector = t.tss_selector;
        sregs.tr.type = 11; // 32/64-bit busy TSS, as VMX requires
        sregs.tr.present = 1;
        sregs.cr0 = arch::x86::CR0_PE | arch::x86::CR0_ET;
        if (long_mode) {
            sregs.cr3 = t.pml4;
            sregs.cr4 = arch::x86::CR4_PAE;
            sregs.cr0 |= arch::x86::CR0_PG;
            sregs.efer = arch::x86::EFER_LME | arch::x86::EFER_LMA;
        }
        regs.rflags = 0x2;
        regs.rip = entry.rip;
        regs.rsp = entry.rsp;
        regs.rax = entry.rax;
        regs.rbx = entry.rbx;
        regs.rsi = entry.rsi;
    }
    if (::ioctl(m_fd.get(), KVM_SET_SREGS, &sregs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_SREGS");
    if (::ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_REGS");
    TRY(setup_fpu());
    TRY(setup_msrs());
    TRY(setup_lint(is_bsp));
    kvm_mp_state mp {};
    mp.mp_state = is_bsp ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED;
    if (::ioctl(m_fd.get(), KVM_SET_MP_STATE, &mp) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_MP_STATE");
    return ok();
}

void Vcpu::request_exit()
{
    // SAFETY: kvm_run is mapped for the life of the Vcpu; immediate_exit is the field KVM documents for this.
    __atomic_store_n(&m_run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void Vcpu::clear_exit_request() { __atomic_store_n(&m_run->immediate_exit, 0, __ATOMIC_SEQ_CST); }

Result<VcpuExit> Vcpu::run()
{
    VcpuExit exit;
    if (::ioctl(m_fd.get(), KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            exit.reason = VcpuExit::Reason::Interrupted;
            return exit;
        }
        return Error::from_errno(ErrorKind::Kvm, fmt::format("KVM_RUN on vCPU {}", m_id));
    }
    exit.code = m_run->exit_reason;
    // SAFETY: the offsets and sizes below come from KVM and point inside the kvm_run mapping (m_mmap_size bytes);
    // they are checked against it before a span is formed.
    auto* base = reinterpret_cast<uint8_t*>(m_run);
    switch (m_run->exit_reason) {
    case KVM_EXIT_IO: {
        exit.reason = VcpuExit::Reason::Io;
        exit.is_write = m_run->io.direction == KVM_EXIT_IO_OUT;
        exit.addr = m_run->io.port;
        exit.size = m_run->io.size;
        exit.count = m_run->io.count;
        uint64_t len = static_cast<uint64_t>(exit.size) * exit.count;
        if (m_run->io.data_offset > m_mmap_size || len > m_mmap_size - m_run->io.data_offset)
            return Error(ErrorKind::Kvm, "KVM_EXIT_IO data outside kvm_run");
        exit.data = { base + m_run->io.data_offset, static_cast<size_t>(len) };
        break;
    }
    case KVM_EXIT_MMIO:
        exit.reason = VcpuExit::Reason::Mmio;
        exit.is_write = m_run->mmio.is_write != 0;
        exit.addr = m_run->mmio.phys_addr;
        exit.size = std::min<uint32_t>(m_run->mmio.len, sizeof m_run->mmio.data);
        exit.count = 1;
        exit.data = { m_run->mmio.data, exit.size };
        break;
    case KVM_EXIT_HLT:
        exit.reason = VcpuExit::Reason::Hlt;
        break;
    case KVM_EXIT_SHUTDOWN:
        exit.reason = VcpuExit::Reason::Shutdown;
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        exit.reason = VcpuExit::Reason::SystemEvent;
        exit.code = m_run->system_event.type;
        exit.event = exit.code == KVM_SYSTEM_EVENT_SHUTDOWN ? VcpuExit::Event::Shutdown
            : exit.code == KVM_SYSTEM_EVENT_RESET           ? VcpuExit::Event::Reset
                                                            : VcpuExit::Event::Other;
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        exit.reason = VcpuExit::Reason::InternalError;
        exit.code = m_run->internal.suberror;
        exit.emulation_failure = m_run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION;
        if (m_run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && m_run->emulation_failure.ndata >= 3
            && (m_run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
            auto n = std::min<uint32_t>(m_run->emulation_failure.insn_size, sizeof m_run->emulation_failure.insn_bytes);
            exit.insn_bytes.assign(m_run->emulation_failure.insn_bytes, m_run->emulation_failure.insn_bytes + n);
        }
        break;
    case KVM_EXIT_FAIL_ENTRY:
        exit.reason = VcpuExit::Reason::FailEntry;
        exit.code = static_cast<uint32_t>(m_run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTR:
        exit.reason = VcpuExit::Reason::Interrupted;
        break;
    default:
        exit.reason = VcpuExit::Reason::Other;
        break;
    }
    return exit;
}

Result<VcpuSnapshot> Vcpu::snapshot() const
{
    kvm_regs regs {};
    kvm_sregs sregs {};
    if (::ioctl(m_fd.get(), KVM_GET_REGS, &regs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_REGS");
    if (::ioctl(m_fd.get(), KVM_GET_SREGS, &sregs) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_SREGS");
    return VcpuSnapshot { regs.rip, regs.rsp, regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rflags,
        sregs.cs.base, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer, sregs.cs.selector, sregs.cs.l != 0, sregs.cs.db != 0 };
}

Result<uint64_t> Vcpu::translate(uint64_t linear) const
{
    kvm_translation tr {};
    tr.linear_address = linear;
    if (::ioctl(m_fd.get(), KVM_TRANSLATE, &tr) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_TRANSLATE");
    if (!tr.valid)
        return Error(ErrorKind::OutOfRange, fmt::format("Linear address {:#x} is not mapped", linear));
    return static_cast<uint64_t>(tr.physical_address);
}

} // namespace hako::kvm
