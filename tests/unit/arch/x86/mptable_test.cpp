#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "base/bytes.h"

using namespace hako;
using namespace hako::arch::x86;

namespace {

uint8_t sum8(uint8_t const* p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; ++i)
        s = static_cast<uint8_t>(s + p[i]);
    return s;
}

void check_mptable(std::vector<uint8_t> const& t, uint64_t base, unsigned cpus)
{
    ASSERT_GE(t.size(), 16u + 44u);
    EXPECT_EQ(t.size(), mptable_size(cpus));
    uint8_t const* fp = t.data();
    EXPECT_EQ(std::memcmp(fp, "_MP_", 4), 0);
    EXPECT_EQ(fp[8], 1);
    EXPECT_EQ(fp[9], 4);
    EXPECT_EQ(sum8(fp, 16), 0) << "floating pointer checksum";
    EXPECT_EQ(fp[11], 0); // configuration table present, no default configuration
    uint64_t ct_addr = get_le32(fp + 4);
    ASSERT_GE(ct_addr, base);
    size_t ct_off = ct_addr - base;
    ASSERT_LE(ct_off + 44, t.size());
    uint8_t const* ct = t.data() + ct_off;
    EXPECT_EQ(std::memcmp(ct, "PCMP", 4), 0);
    uint16_t len = get_le16(ct + 4);
    ASSERT_LE(ct_off + len, t.size());
    EXPECT_EQ(ct[6], 4);
    EXPECT_EQ(sum8(ct, len), 0) << "configuration table checksum";
    EXPECT_EQ(get_le32(ct + 36), LAPIC_BASE);
    uint16_t count = get_le16(ct + 34);

    unsigned procs = 0, buses = 0, ioapics = 0;
    std::map<uint8_t, uint8_t> irq_to_pin;
    std::map<uint8_t, uint8_t> lint_type; // LINT# -> interrupt type
    size_t off = 44;
    for (uint16_t i = 0; i < count; ++i) {
        ASSERT_LT(off, len);
        uint8_t const* e = ct + off;
        switch (e[0]) {
        case 0:
            EXPECT_EQ(e[1], procs);
            EXPECT_EQ(e[2], MP_APIC_VERSION);
            EXPECT_EQ(e[3], procs == 0 ? 3 : 1); // enabled, BSP flag on CPU 0 only
            ++procs;
            off += 20;
            break;
        case 1:
            EXPECT_EQ(std::memcmp(e + 2, "ISA   ", 6), 0);
            ++buses;
            off += 8;
            break;
        case 2:
            EXPECT_EQ(e[1], cpus);
            EXPECT_EQ(e[2], MP_IOAPIC_VERSION);
            EXPECT_EQ(e[3], 1);
            EXPECT_EQ(get_le32(e + 4), IOAPIC_BASE);
            ++ioapics;
            off += 8;
            break;
        case 3:
            EXPECT_EQ(e[1], 0); // INT
            EXPECT_EQ(e[6], cpus);
            EXPECT_FALSE(irq_to_pin.count(e[5]));
            irq_to_pin[e[5]] = e[7];
            off += 8;
            break;
        case 4:
            EXPECT_EQ(e[6], 0xff);
            lint_type[e[7]] = e[1];
            off += 8;
            break;
        default:
            FAIL() << "unknown MP entry type " << int(e[0]);
        }
    }
    EXPECT_EQ(off, len) << "entry count and base table length disagree";
    EXPECT_EQ(procs, cpus);
    EXPECT_EQ(buses, 1u);
    EXPECT_EQ(ioapics, 1u);
    EXPECT_EQ(irq_to_pin.size(), 15u);
    EXPECT_FALSE(irq_to_pin.count(2));
    EXPECT_EQ(irq_to_pin[0], 2);
    for (uint8_t irq = 1; irq < 16; ++irq) {
        if (irq != 2) {
            EXPECT_EQ(irq_to_pin[irq], irq);
        }
    }
    EXPECT_EQ(lint_type, (std::map<uint8_t, uint8_t> { { 0, 3 }, { 1, 1 } })); // ExtINT -> LINT0, NMI -> LINT1
}

} // namespace

TEST(MpTable, ParsesBackWithChecksums)
{
    for (unsigned cpus : { 1u, 2u, 40u, 254u }) {
        SCOPED_TRACE(cpus);
        auto t = build_mptable(cpus, MPTABLE_ADDR);
        ASSERT_TRUE(t) << t.error().message();
        EXPECT_LE(MPTABLE_ADDR + t->size(), HIGH_MEMORY_START); // inside the BIOS area Linux scans
        check_mptable(*t, MPTABLE_ADDR, cpus);
    }
    auto big = build_mptable(254, 0xf0000);
    ASSERT_TRUE(big) << big.error().message();
    check_mptable(*big, 0xf0000, 254);
}

TEST(MpTable, RejectsBadInput)
{
    EXPECT_FALSE(build_mptable(0, MPTABLE_ADDR));
    EXPECT_FALSE(build_mptable(255, 0xf0000));
    EXPECT_FALSE(build_mptable(2, MPTABLE_ADDR + 4));  // misaligned
    EXPECT_FALSE(build_mptable(41, EBDA_START));       // in the EBDA it would run into the VGA window
    EXPECT_FALSE(build_mptable(1, 0xfffffff0));        // past 4 GiB
}
