#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "devices/pci/piix4_pm.h"
#include "pci_test_util.h"

using namespace hako;
using namespace hako::devices::pci;
using namespace hako::devices::pci::test;

TEST(Piix4Pm, IdentityAndPowerOnState)
{
    Piix4Pm pm;
    EXPECT_EQ(cfg_read(pm, 0, 4), 0x71138086u);
    EXPECT_EQ(cfg_read(pm, PCI_REVISION_ID, 4), 0x06800003u);
    EXPECT_EQ(cfg_read(pm, Piix4Pm::PMBA, 4), 1u); // I/O indicator only
    EXPECT_EQ(cfg_read(pm, Piix4Pm::PMREGMISC, 1), 0u);
    EXPECT_EQ(cfg_read(pm, Piix4Pm::SMBBA, 4), 1u);
    EXPECT_FALSE(pm.pm_base());
    // DEVACTB.APMC_EN set and read-only: SeaBIOS skips its SMM setup (no SMM here).
    EXPECT_EQ(cfg_read(pm, Piix4Pm::DEVACTB, 4), Piix4Pm::DEVACTB_APMC_EN);
    cfg_write(pm, Piix4Pm::DEVACTB, 4, 0);
    EXPECT_EQ(cfg_read(pm, Piix4Pm::DEVACTB, 4), Piix4Pm::DEVACTB_APMC_EN);
}

TEST(Piix4Pm, SeaBiosAndOvmfProgramming)
{
    Piix4Pm pm;
    std::vector<std::optional<uint16_t>> seen;
    pm.set_pm_base_listener([&](std::optional<uint16_t> base) { seen.push_back(base); });
    // SeaBIOS: PMBA = 0x600 | 1, then PMREGMISC = 1; SMBus base 0x700 | 1 and SMBHSTCFG = 9.
    cfg_write(pm, Piix4Pm::PMBA, 4, 0x601);
    EXPECT_FALSE(pm.pm_base()); // not decoded before PMIOSE
    cfg_write(pm, Piix4Pm::PMREGMISC, 1, 0x01);
    EXPECT_EQ(pm.pm_base(), 0x600);
    cfg_write(pm, Piix4Pm::SMBBA, 4, 0x701);
    cfg_write(pm, Piix4Pm::SMBHSTCFG, 1, 0x09);
    EXPECT_EQ(cfg_read(pm, Piix4Pm::SMBBA, 4), 0x701u);
    EXPECT_EQ(cfg_read(pm, Piix4Pm::SMBHSTCFG, 1), 0u); // no SMBus host: reads as disabled
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen.back(), 0x600);
    // OVMF on i440FX: PMBA and-then-or to 0xB000 (PIIX4_PMBA_MASK bits 15:6), PMIOSE.
    cfg_write(pm, Piix4Pm::PMBA, 4, (cfg_read(pm, Piix4Pm::PMBA, 4) & ~0xffc0u) | 0xb000u);
    EXPECT_EQ(pm.pm_base(), 0xb000);
    EXPECT_EQ(seen.back(), 0xb000);
    // Low bits and bits above 15 are not writable; bit 0 stays 1.
    cfg_write(pm, Piix4Pm::PMBA, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(pm, Piix4Pm::PMBA, 4), 0xffc1u);
    cfg_write(pm, Piix4Pm::PMREGMISC, 1, 0xfe); // PMIOSE off, other bits not writable
    EXPECT_EQ(cfg_read(pm, Piix4Pm::PMREGMISC, 1), 0u);
    EXPECT_FALSE(pm.pm_base());
    EXPECT_EQ(seen.back(), std::nullopt);
}

TEST(Piix4Pm, BiosSetupAndReset)
{
    Piix4Pm pm;
    pm.save_power_on_state(); // as PciRoot does when the function is added
    std::vector<std::optional<uint16_t>> seen;
    pm.set_pm_base_listener([&](std::optional<uint16_t> base) { seen.push_back(base); });
    pm.bios_setup(0x600);
    EXPECT_EQ(pm.pm_base(), 0x600);
    EXPECT_EQ(cfg_read(pm, PCI_INTERRUPT_LINE, 1), 9u);
    ASSERT_EQ(seen.size(), 1u);
    pm.reset();
    EXPECT_FALSE(pm.pm_base());
    EXPECT_EQ(seen.back(), std::nullopt);
}
