#include "kvm/system.h"

#include <algorithm>
#include <cpuid.h>
#include <cstring>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "kvm/abi.h"
#include "kvm/vm.h"

namespace hako::kvm {

Result<System> System::open(std::string const& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT)
            return Error(ErrorKind::Kvm,
                fmt::format("{} does not exist: load the kvm module (kvm_intel, kvm_amd or kvm_pvm)", path));
        if (errno == EACCES || errno == EPERM)
            return Error(ErrorKind::Kvm,
                fmt::format("No permission to open {}: run as root or join the kvm group", path));
        return Error::from_errno(ErrorKind::Kvm, fmt::format("Cannot open {}", path));
    }
    int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return Error(ErrorKind::Unsupported, fmt::format("KVM API version {} is not {}", version, KVM_API_VERSION));
    System sys(std::move(fd));
    for (auto [cap, name] : { std::pair { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
             std::pair { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
             std::pair { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
             std::pair { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
             std::pair { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
             std::pair { KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
             std::pair { KVM_CAP_IRQFD, "KVM_CAP_IRQFD" } }) {
        if (sys.check_extension(static_cast<unsigned>(cap)) <= 0)
            return Error(ErrorKind::Unsupported, fmt::format("KVM lacks {}", name));
    }
    return sys;
}

int System::check_extension(unsigned cap) const
{
    int r = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

bool System::has_readonly_memory() const { return check_extension(KVM_CAP_READONLY_MEM) > 0; }

unsigned System::max_vcpus() const
{
    int n = check_extension(KVM_CAP_MAX_VCPUS);
    if (n <= 0)
        n = check_extension(KVM_CAP_NR_VCPUS);
    return n <= 0 ? 4 : static_cast<unsigned>(n);
}

Result<size_t> System::vcpu_mmap_size() const
{
    int size = ::ioctl(m_fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_VCPU_MMAP_SIZE");
    return static_cast<size_t>(size);
}

Result<std::vector<arch::x86::CpuidEntry>> System::supported_cpuid() const
{
    // Grow the buffer until KVM stops answering E2BIG.
    for (uint32_t n = 128; n <= 4096; n *= 2) {
        std::vector<uint8_t> buf(sizeof(abi::Cpuid2Header) + n * sizeof(kvm_cpuid_entry2));
        abi::Cpuid2Header header { n, 0 };
        std::memcpy(buf.data(), &header, sizeof header);
        if (::ioctl(m_fd.get(), abi::GET_SUPPORTED_CPUID, buf.data()) < 0) {
            if (errno == E2BIG)
                continue;
            return Error::from_errno(ErrorKind::Kvm, "KVM_GET_SUPPORTED_CPUID");
        }
        std::memcpy(&header, buf.data(), sizeof header);
        std::vector<arch::x86::CpuidEntry> out;
        for (uint32_t i = 0; i < header.nent && i < n; ++i) {
            kvm_cpuid_entry2 e {};
            std::memcpy(&e, buf.data() + sizeof header + i * sizeof e, sizeof e);
            out.push_back({ e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx });
        }
        return out;
    }
    return Error(ErrorKind::Kvm, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<std::vector<uint32_t>> System::msr_index_list() const
{
    constexpr uint32_t MAX = 1024;
    std::vector<uint8_t> buf(sizeof(abi::MsrListHeader) + MAX * sizeof(uint32_t));
    abi::MsrListHeader header { MAX };
    std::memcpy(buf.data(), &header, sizeof header);
    if (::ioctl(m_fd.get(), abi::GET_MSR_INDEX_LIST, buf.data()) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_MSR_INDEX_LIST");
    std::memcpy(&header, buf.data(), sizeof header);
    std::vector<uint32_t> out(std::min(header.nmsrs, MAX));
    std::memcpy(out.data(), buf.data() + sizeof header, out.size() * sizeof(uint32_t));
    return out;
}

Result<std::unique_ptr<Vm>> System::create_vm() const
{
    int fd = ::ioctl(m_fd.get(), KVM_CREATE_VM, 0);
    if (fd < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_CREATE_VM");
    return std::unique_ptr<Vm>(new Vm(*this, UniqueFd(fd)));
}

bool host_has_hardware_virtualization()
{
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 5)))
        return true; // VMX
    if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 2)))
        return true; // SVM
    return false;
}

} // namespace hako::kvm
