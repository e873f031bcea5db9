// kvm::Vcpu: one virtual CPU: its kvm_run mapping, register state and KVM_RUN.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arch/x86/boot.h"
#include "arch/x86/cpuid.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "emu/cpu_state.h"

struct kvm_run;

namespace hako::kvm {

class Vm;

/// Why KVM_RUN returned, decoded from kvm_run. `data` points into the vCPU's kvm_run page and is valid
/// until the next run(); for I/O it holds size * count bytes (string I/O), for MMIO `size` bytes.
struct VcpuExit {
    enum class Reason { Io, Mmio, Hlt, Shutdown, SystemEvent, InternalError, FailEntry, Interrupted, Other };
    Reason reason { Reason::Other };
    bool is_write { false };
    uint64_t addr { 0 };   // port or guest-physical address
    uint32_t size { 0 };   // bytes per access
    uint32_t count { 0 };  // accesses (string I/O)
    std::span<uint8_t> data;
    uint32_t code { 0 };   // raw exit reason, system event type, internal error suberror or entry failure reason
    enum class Event { None, Shutdown, Reset, Other };
    Event event { Event::None };        // SystemEvent exits: what the guest asked for
    bool emulation_failure { false };   // InternalError exits: KVM's instruction emulator gave up
    std::vector<uint8_t> insn_bytes; // emulation failures: the instruction bytes if KVM gave them
};

/// General registers and the bits of state error messages need.
struct VcpuSnapshot {
    uint64_t rip, rsp, rax, rbx, rcx, rdx, rsi, rdi, rflags;
    uint64_t cs_base, cr0, cr3, cr4, efer;
    uint16_t cs_selector;
    bool cs_long, cs_32bit;
};

class Vcpu final {
public:
    ~Vcpu();
    Vcpu(Vcpu const&) = delete;
    Vcpu& operator=(Vcpu const&) = delete;

    uint32_t id() const { return m_id; }

    [[nodiscard]] Result<void> set_cpuid(std::vector<arch::x86::CpuidEntry> const& entries);
    /// Records the vCPU's state as created (the architectural reset state) for reset().
    [[nodiscard]] Result<void> save_reset_state();
    /// Puts the vCPU in its reset state; the BSP then runs from `entry`, APs wait for INIT/SIPI.
    /// Direct-boot entries need the GDT and page tables that arch::x86::write_boot_tables() writes.
    [[nodiscard]] Result<void> reset(arch::x86::BootEntry const& entry, bool is_bsp);

    /// Runs the vCPU until the next exit that needs userspace.
    [[nodiscard]] Result<VcpuExit> run();
    /// Makes the current or next run() return Interrupted. Call from any thread, then signal the vCPU thread.
    void request_exit();
    void clear_exit_request();

    [[nodiscard]] Result<VcpuSnapshot> snapshot() const;
    /// Translates a guest-linear address through the vCPU's current paging mode.
    [[nodiscard]] Result<uint64_t> translate(uint64_t linear) const;

    /// The state the userspace instruction emulator works on (KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_XSAVE,
    /// KVM_GET_XCRS, IA32_XSS through KVM_GET_MSRS, the XSAVE layout of the vCPU's CPUID).
    [[nodiscard]] Result<emu::CpuState> emu_state() const;
    /// Writes back the parts of `state` that `dirty` (emu::Dirty bits) names.
    [[nodiscard]] Result<void> set_emu_state(emu::CpuState const& state, uint32_t dirty);
    /// Delivers `e` to the guest at the next entry (KVM_SET_VCPU_EVENTS); for #PF, CR2 must be set first.
    [[nodiscard]] Result<void> inject_exception(emu::Exception const& e);

private:
    friend class Vm;
    static Result<std::unique_ptr<Vcpu>> create(Vm& vm, uint32_t id, UniqueFd fd, size_t mmap_size);
    Vcpu(Vm& vm, uint32_t id, UniqueFd fd, kvm_run* run, size_t mmap_size)
        : m_vm(vm), m_id(id), m_fd(std::move(fd)), m_run(run), m_mmap_size(mmap_size)
    {
    }
    Result<void> setup_msrs();
    Result<void> setup_fpu();
    Result<void> setup_lint(bool is_bsp);

    Vm& m_vm;
    uint32_t m_id;
    UniqueFd m_fd;
    kvm_run* m_run;
    size_t m_mmap_size;
    std::vector<uint8_t> m_reset_regs, m_reset_sregs, m_reset_lapic;
    emu::XsaveLayout m_xsave_layout; // from the CPUID given to set_cpuid(): for the emulator's XSAVE family
};

} // namespace hako::kvm
