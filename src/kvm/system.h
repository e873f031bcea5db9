// kvm::System: the /dev/kvm handle. The kvm/ directory is the only code in hako that knows KVM ioctls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arch/x86/cpuid.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace hako::kvm {

class Vm;

class System final {
public:
    /// Opens the KVM device and checks the API version and the capabilities hako needs.
    [[nodiscard]] static Result<System> open(std::string const& path = "/dev/kvm");

    int fd() const { return m_fd.get(); }
    /// KVM_CHECK_EXTENSION; 0 when absent.
    int check_extension(unsigned cap) const;
    /// KVM_CAP_READONLY_MEM: memory slots the guest can read but whose writes exit as MMIO (flash, ROM).
    bool has_readonly_memory() const;
    /// The most vCPUs one VM may have (KVM_CAP_MAX_VCPUS, else KVM_CAP_NR_VCPUS).
    unsigned max_vcpus() const;
    /// Bytes to mmap for each vCPU's kvm_run structure.
    [[nodiscard]] Result<size_t> vcpu_mmap_size() const;
    /// KVM_GET_SUPPORTED_CPUID.
    [[nodiscard]] Result<std::vector<arch::x86::CpuidEntry>> supported_cpuid() const;
    /// KVM_GET_MSR_INDEX_LIST.
    [[nodiscard]] Result<std::vector<uint32_t>> msr_index_list() const;

    [[nodiscard]] Result<std::unique_ptr<Vm>> create_vm() const;

private:
    explicit System(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

/// True if the host CPU advertises VT-x or AMD-V. When false, /dev/kvm is a software backend such as PVM
/// and guest kernel code runs in KVM's instruction emulator (see docs/architecture.md).
bool host_has_hardware_virtualization();

} // namespace hako::kvm
