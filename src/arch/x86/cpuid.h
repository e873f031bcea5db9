// The guest's CPUID: KVM's supported leaves, with a consistent topology and hako's identity filled in.
#pragma once

#include <cstdint>
#include <vector>

namespace hako::arch::x86 {

struct CpuidEntry {
    uint32_t function;
    uint32_t index;
    uint32_t flags; // KVM_CPUID_FLAG_* (bit 0: significant index)
    uint32_t eax, ebx, ecx, edx;
};

constexpr uint32_t CPUID_FLAG_SIGNIFICANT_INDEX = 1;

// KVM paravirtual feature bits in CPUID 0x40000001 EAX (Documentation/virt/kvm/x86/cpuid.rst).
constexpr uint32_t KVM_FEATURE_CLOCKSOURCE = 0;
constexpr uint32_t KVM_FEATURE_NOP_IO_DELAY = 1;
constexpr uint32_t KVM_FEATURE_CLOCKSOURCE2 = 3;
constexpr uint32_t KVM_FEATURE_ASYNC_PF = 4;
constexpr uint32_t KVM_FEATURE_STEAL_TIME = 5;
constexpr uint32_t KVM_FEATURE_PV_EOI = 6;
constexpr uint32_t KVM_FEATURE_PV_UNHALT = 7;
constexpr uint32_t KVM_FEATURE_PV_TLB_FLUSH = 9;
constexpr uint32_t KVM_FEATURE_PV_SEND_IPI = 11;
constexpr uint32_t KVM_FEATURE_PV_SCHED_YIELD = 13;
constexpr uint32_t KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = 24;

/// Builds the CPUID table for one vCPU of a `cpus`-vCPU machine from KVM's supported table.
/// Topology: one socket, `cpus` cores, one thread per core; APIC ID = vCPU index.
std::vector<CpuidEntry> build_guest_cpuid(std::vector<CpuidEntry> const& supported, uint32_t vcpu_index, uint32_t cpus);

/// Looks up a leaf (nullptr if absent).
CpuidEntry const* find_cpuid(std::vector<CpuidEntry> const& table, uint32_t function, uint32_t index = 0);

} // namespace hako::arch::x86
