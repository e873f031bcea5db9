#include <gtest/gtest.h>

#include "arch/x86/cpuid.h"

using namespace hako::arch::x86;

namespace {
std::vector<CpuidEntry> fake_supported()
{
    return {
        { 0x0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65 },
        { 0x1, 0, 0, 0x00a00f11, 0x00000800, 0x7ed8320b, 0x178bfbff },
        { 0x4, 0, 1, 0x00000121, 0x01c0003f, 0x3f, 0 },
        { 0xb, 0, 1, 1, 2, 0x100, 3 },
        { 0xb, 1, 1, 4, 8, 0x201, 3 },
        { 0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d },
        { 0x40000001, 0, 0, 0x01007afb, 0, 0, 0 },
        { 0x80000008, 0, 0, 0x3030, 0, 0x7007, 0 },
    };
}
} // namespace

TEST(Cpuid, TopologyIsConsistent)
{
    for (uint32_t cpus : { 1u, 2u, 3u, 8u }) {
        for (uint32_t i = 0; i < cpus; ++i) {
            auto t = build_guest_cpuid(fake_supported(), i, cpus);
            auto const* l1 = find_cpuid(t, 1);
            ASSERT_NE(l1, nullptr);
            EXPECT_EQ(l1->ebx >> 24, i) << "APIC ID";
            EXPECT_EQ((l1->ebx >> 16) & 0xff, cpus);
            EXPECT_TRUE(l1->ecx & (1u << 31)) << "hypervisor bit";
            EXPECT_EQ(bool(l1->edx & (1u << 28)), cpus > 1) << "HTT";
            auto const* smt = find_cpuid(t, 0xb, 0);
            auto const* core = find_cpuid(t, 0xb, 1);
            ASSERT_NE(smt, nullptr);
            ASSERT_NE(core, nullptr);
            EXPECT_EQ(smt->ebx, 1u);
            EXPECT_EQ(core->ebx, cpus);
            EXPECT_EQ(core->edx, i) << "x2APIC ID";
            EXPECT_EQ((core->ecx >> 8) & 0xff, 2u) << "level type core";
            EXPECT_GE(1u << core->eax, cpus) << "APIC ID shift covers all cores";
            auto const* amd = find_cpuid(t, 0x80000008);
            ASSERT_NE(amd, nullptr);
            EXPECT_EQ(amd->ecx & 0xff, cpus - 1);
            auto const* l4 = find_cpuid(t, 4, 0);
            EXPECT_EQ((l4->eax >> 26) + 1, cpus);
        }
    }
}

TEST(Cpuid, KeepsKvmParavirtualLeaves)
{
    auto t = build_guest_cpuid(fake_supported(), 0, 2);
    auto const* sig = find_cpuid(t, 0x40000000);
    ASSERT_NE(sig, nullptr);
    EXPECT_EQ(sig->ebx, 0x4b4d564bu); // "KVMK"
    auto const* feat = find_cpuid(t, 0x40000001);
    ASSERT_NE(feat, nullptr);
    EXPECT_TRUE(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE2));
    EXPECT_TRUE(feat->eax & (1u << KVM_FEATURE_PV_EOI));
}

TEST(Cpuid, AddsLeaf0xBWhenKvmOmitsIt)
{
    std::vector<CpuidEntry> s { { 0x0, 0, 0, 0x7, 0, 0, 0 }, { 0x1, 0, 0, 0, 0, 0, 0 } };
    auto t = build_guest_cpuid(s, 1, 4);
    auto const* core = find_cpuid(t, 0xb, 1);
    ASSERT_NE(core, nullptr);
    EXPECT_EQ(core->ebx, 4u);
    EXPECT_EQ(core->edx, 1u);
    EXPECT_GE(find_cpuid(t, 0)->eax, 0xbu);
}
