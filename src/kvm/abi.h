// KVM ioctls whose argument ends in a flexible array, spelled out for C++.
//
// Linux 6.1's uapi headers declare those arrays with __DECLARE_FLEX_ARRAY, which wraps them in a struct holding an
// empty struct. An empty struct is 0 bytes in C but 1 byte in C++, so in C++ sizeof(kvm_cpuid2) is 12, not 8: the
// ioctl numbers (which encode the size) and the array offsets come out wrong. hako uses these C-layout headers,
// fills the arrays by offset, and derives the ioctl numbers from them.
#pragma once

#include <cstdint>
#include <linux/kvm.h>

namespace hako::kvm::abi {

struct Cpuid2Header {
    uint32_t nent;
    uint32_t padding;
}; // struct kvm_cpuid_entry2 entries[] follow
static_assert(sizeof(Cpuid2Header) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40);

struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t pad;
}; // struct kvm_msr_entry entries[] follow
static_assert(sizeof(MsrsHeader) == 8);
static_assert(sizeof(kvm_msr_entry) == 16);

struct MsrListHeader {
    uint32_t nmsrs;
}; // uint32_t indices[] follow
static_assert(sizeof(MsrListHeader) == 4);

struct IrqRoutingHeader {
    uint32_t nr;
    uint32_t flags;
}; // struct kvm_irq_routing_entry entries[] follow
static_assert(sizeof(IrqRoutingHeader) == 8);
static_assert(sizeof(kvm_irq_routing_entry) == 48);

struct Xsave {
    uint32_t region[1024];
}; // struct kvm_xsave: __u32 extra[] follows (KVM_GET_XSAVE2 only)
static_assert(sizeof(Xsave) == 4096);

constexpr unsigned long GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, Cpuid2Header);
constexpr unsigned long SET_CPUID2 = _IOW(KVMIO, 0x90, Cpuid2Header);
constexpr unsigned long GET_MSR_INDEX_LIST = _IOWR(KVMIO, 0x02, MsrListHeader);
constexpr unsigned long SET_MSRS = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long GET_MSRS = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long GET_XSAVE = _IOR(KVMIO, 0xa4, Xsave);
constexpr unsigned long SET_XSAVE = _IOW(KVMIO, 0xa5, Xsave);
constexpr unsigned long SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

} // namespace hako::kvm::abi
