#include "arch/x86/cpuid.h"

#include <bit>

namespace hako::arch::x86 {

CpuidEntry const* find_cpuid(std::vector<CpuidEntry> const& table, uint32_t function, uint32_t index)
{
    for (auto const& e : table) {
        if (e.function == function && (!(e.flags & CPUID_FLAG_SIGNIFICANT_INDEX) || e.index == index))
            return &e;
    }
    return nullptr;
}

static uint32_t bits_for(uint32_t count)
{
    // Width of the APIC ID field that numbers `count` items: ceil(log2(count)).
    return count <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(count - 1));
}

std::vector<CpuidEntry> build_guest_cpuid(std::vector<CpuidEntry> const& supported, uint32_t vcpu_index, uint32_t cpus)
{
    std::vector<CpuidEntry> out;
    uint32_t const apic_id = vcpu_index;
    uint32_t const core_bits = bits_for(cpus);
    bool have_1f = false;

    for (auto e : supported) {
        switch (e.function) {
        case 0x1:
            e.ebx = (e.ebx & 0x0000ffffu) | (apic_id << 24) | ((cpus & 0xff) << 16);
            e.ecx |= 1u << 31; // hypervisor present
            if (cpus > 1)
                e.edx |= 1u << 28; // HTT: the logical processor count in EBX[23:16] is valid
            else
                e.edx &= ~(1u << 28);
            break;
        case 0x4:
            // Deterministic cache parameters: cores per package - 1 in EAX[31:26], one thread per cache.
            if ((e.eax & 0x1f) != 0) {
                e.eax = (e.eax & 0x3ffu) | (((cpus - 1) & 0x3f) << 26);
            }
            break;
        case 0xb:
        case 0x1f:
            // Rebuilt below from hako's topology: KVM may list only some subleaves.
            have_1f = have_1f || e.function == 0x1f;
            continue;
        case 0x80000008:
            // AMD: NC = cores - 1, ApicIdCoreIdSize.
            e.ecx = (e.ecx & ~0xf0ffu) | ((cpus - 1) & 0xff) | (core_bits << 12);
            break;
        case 0x8000001e:
            // AMD extended APIC ID / compute unit / node: one thread per core.
            e.eax = apic_id;
            e.ebx = (e.ebx & ~0xffffu) | (apic_id & 0xff);
            e.ecx = e.ecx & ~0x7ffu; // node 0, one node per package
            break;
        default:
            break;
        }
        out.push_back(e);
    }

    // Extended topology (leaf 0xB, and 0x1F where the host has it): SMT level, core level, then the end marker.
    for (uint32_t leaf : { 0xbu, 0x1fu }) {
        if (leaf == 0x1f && !have_1f)
            continue;
        for (uint32_t sub = 0; sub < 3; ++sub) {
            CpuidEntry e { leaf, sub, CPUID_FLAG_SIGNIFICANT_INDEX, 0, 0, sub, apic_id };
            if (sub == 0) { // SMT level: one thread per core
                e.ebx = 1;
                e.ecx |= 1u << 8;
            } else if (sub == 1) { // core level: all vCPUs in one package
                e.eax = core_bits;
                e.ebx = cpus;
                e.ecx |= 2u << 8;
            }
            out.push_back(e);
        }
    }
    for (auto& e : out) {
        if (e.function == 0 && e.eax < 0xb)
            e.eax = 0xb;
    }
    return out;
}

} // namespace hako::arch::x86
