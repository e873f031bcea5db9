#include <gtest/gtest.h>

#include "arch/x86/e820.h"
#include "base/bytes.h"

using namespace hako;
using namespace hako::arch::x86;

namespace {
void check_sorted_disjoint(std::vector<E820Entry> const& m)
{
    for (size_t i = 0; i < m.size(); ++i) {
        EXPECT_GT(m[i].size, 0u);
        if (i > 0) {
            EXPECT_GE(m[i].addr, m[i - 1].addr + m[i - 1].size) << "entry " << i;
        }
    }
}
} // namespace

TEST(E820, SmallGuest)
{
    auto m = build_e820(ram_layout(256 * MiB));
    check_sorted_disjoint(m);
    std::vector<E820Entry> want {
        { 0, EBDA_START, E820_RAM },
        { EBDA_START, LOW_RAM_END - EBDA_START, E820_RESERVED },
        { BIOS_AREA_START, HIGH_MEMORY_START - BIOS_AREA_START, E820_RESERVED },
        { HIGH_MEMORY_START, 256 * MiB - HIGH_MEMORY_START, E820_RAM },
        { PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED },
        { IOAPIC_BASE, FOUR_GIB - IOAPIC_BASE, E820_RESERVED },
    };
    EXPECT_EQ(m, want);
}

TEST(E820, LargeGuestSplitsAroundThePciHole)
{
    auto m = build_e820(ram_layout(6 * GiB));
    check_sorted_disjoint(m);
    ASSERT_EQ(m.size(), 7u);
    EXPECT_EQ(m[3], (E820Entry { HIGH_MEMORY_START, PCI_HOLE_START - HIGH_MEMORY_START, E820_RAM }));
    EXPECT_EQ(m[4], (E820Entry { PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED }));
    EXPECT_EQ(m[5], (E820Entry { IOAPIC_BASE, FOUR_GIB - IOAPIC_BASE, E820_RESERVED }));
    EXPECT_EQ(m[6], (E820Entry { FOUR_GIB, 3 * GiB, E820_RAM }));
    uint64_t ram = 0;
    for (auto const& e : m)
        ram += e.type == E820_RAM ? e.size : 0;
    // All RAM but the EBDA and the 0xA0000-1 MiB area is usable.
    EXPECT_EQ(ram, 6 * GiB - (HIGH_MEMORY_START - EBDA_START));
}

TEST(E820, TinyGuestHasNoEmptyEntries)
{
    auto m = build_e820(ram_layout(512 * KiB));
    check_sorted_disjoint(m);
    EXPECT_EQ(m[0], (E820Entry { 0, 512 * KiB, E820_RAM }));
    for (auto const& e : m) {
        if (e.type == E820_RAM) {
            EXPECT_LT(e.addr, HIGH_MEMORY_START);
        }
    }
}

TEST(E820, FwCfgBlobIsQemuFormat)
{
    auto blob = e820_fw_cfg_blob(ram_layout(5 * GiB));
    ASSERT_EQ(blob.size(), 3 * E820_FW_CFG_ENTRY_SIZE);
    EXPECT_EQ(get_le64(blob.data()), 0u);
    EXPECT_EQ(get_le64(blob.data() + 8), PCI_HOLE_START);
    EXPECT_EQ(get_le32(blob.data() + 16), E820_RAM);
    EXPECT_EQ(get_le64(blob.data() + 20), PCI_ECAM_BASE);
    EXPECT_EQ(get_le64(blob.data() + 28), PCI_ECAM_SIZE);
    EXPECT_EQ(get_le32(blob.data() + 36), E820_RESERVED);
    EXPECT_EQ(get_le64(blob.data() + 40), FOUR_GIB);
    EXPECT_EQ(get_le64(blob.data() + 48), 2 * GiB);
    EXPECT_EQ(get_le32(blob.data() + 56), E820_RAM);
    EXPECT_EQ(e820_fw_cfg_blob(ram_layout(1 * GiB)).size(), 2 * E820_FW_CFG_ENTRY_SIZE);
    std::vector<E820Entry> extra { { 0xfeffc000, 0x4000, E820_RESERVED } };
    auto b2 = e820_fw_cfg_blob(extra);
    ASSERT_EQ(b2.size(), E820_FW_CFG_ENTRY_SIZE);
    EXPECT_EQ(get_le32(b2.data() + 16), E820_RESERVED);
}
