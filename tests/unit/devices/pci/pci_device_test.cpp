#include <gtest/gtest.h>

#include "devices/pci/pci_device.h"
#include "pci_test_util.h"

using namespace hako;
using namespace hako::devices::pci;
using namespace hako::devices::pci::test;

TEST(PciDevice, HeaderIdentityIsReadOnly)
{
    TestDevice dev;
    EXPECT_EQ(cfg_read(dev, PCI_VENDOR_ID, 4), 0x10001af4u);
    EXPECT_EQ(cfg_read(dev, PCI_REVISION_ID, 4), 0x02000001u); // class 0x020000, rev 1
    EXPECT_EQ(cfg_read(dev, PCI_HEADER_TYPE, 1), 0u);
    EXPECT_EQ(cfg_read(dev, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00011af4u);
    EXPECT_EQ(cfg_read(dev, PCI_INTERRUPT_PIN, 1), 1u);
    cfg_write(dev, PCI_VENDOR_ID, 4, 0x12345678);
    cfg_write(dev, PCI_REVISION_ID, 4, 0xffffffff);
    cfg_write(dev, PCI_INTERRUPT_PIN, 1, 3);
    cfg_write(dev, PCI_CAPABILITY_LIST, 1, 0x40);
    EXPECT_EQ(cfg_read(dev, PCI_VENDOR_ID, 4), 0x10001af4u);
    EXPECT_EQ(cfg_read(dev, PCI_REVISION_ID, 4), 0x02000001u);
    EXPECT_EQ(cfg_read(dev, PCI_INTERRUPT_PIN, 1), 1u);
    EXPECT_EQ(cfg_read(dev, PCI_CAPABILITY_LIST, 1), 0u);
    // Interrupt line is writable, the rest of the header beyond is read-only zero.
    cfg_write(dev, PCI_INTERRUPT_LINE, 1, 11);
    EXPECT_EQ(cfg_read(dev, PCI_INTERRUPT_LINE, 1), 11u);
    cfg_write(dev, 0x80, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x80, 4), 0u);
    // config_written reports every applied write.
    ASSERT_FALSE(dev.written.empty());
    EXPECT_EQ(dev.written.back(), (std::pair<uint16_t, size_t> { 0x80, 4 }));
}

TEST(PciDevice, CommandMaskAndStatusW1C)
{
    TestDevice dev;
    cfg_write(dev, PCI_COMMAND, 2, 0xffff);
    EXPECT_EQ(cfg_read(dev, PCI_COMMAND, 2), 0x0407u);
    cfg_write(dev, PCI_COMMAND, 1, 0x00);
    EXPECT_EQ(cfg_read(dev, PCI_COMMAND, 2), 0x0400u); // byte write leaves the high byte alone
    // Status error bits are write-1-to-clear: set them from the device side, clear one by one.
    dev.config_store(PCI_STATUS, 2, 0xf900);
    cfg_write(dev, PCI_STATUS, 2, 0x2000); // clears REC_MASTER_ABORT only
    EXPECT_EQ(cfg_read(dev, PCI_STATUS, 2), 0xd900u);
    cfg_write(dev, PCI_STATUS, 2, 0x0000); // writing zeros changes nothing
    EXPECT_EQ(cfg_read(dev, PCI_STATUS, 2), 0xd900u);
    cfg_write(dev, PCI_STATUS, 2, 0xffff); // cannot set read-only bits, clears all W1C bits
    EXPECT_EQ(cfg_read(dev, PCI_STATUS, 2), 0u);
    // A dword write at 0x04 hits command and status together.
    dev.config_store(PCI_STATUS, 2, 0x0100);
    cfg_write(dev, PCI_COMMAND, 4, 0x01000003);
    EXPECT_EQ(cfg_read(dev, PCI_COMMAND, 4), 0x00000003u);
}

TEST(PciDevice, BadConfigAccessesAreCountedAndReadAllOnes)
{
    TestDevice dev;
    uint8_t buf[4] { 0, 0, 0, 0 };
    dev.config_read(0x03, std::span<uint8_t>(buf, 2)); // crosses a dword
    EXPECT_EQ(buf[0], 0xff);
    EXPECT_EQ(buf[1], 0xff);
    dev.config_read(0x00, std::span<uint8_t>(buf, 3)); // odd size
    EXPECT_EQ(dev.bad_access_count(), 2u);
    uint8_t big[8] {};
    dev.config_read(0x00, big);
    EXPECT_EQ(dev.bad_access_count(), 3u);
    // Past the conventional 256 bytes (ECAM): all-ones but not counted as bad.
    EXPECT_EQ(cfg_read(dev, 0x100, 4), 0xffffffffu);
    EXPECT_EQ(dev.bad_access_count(), 3u);
    uint8_t const w[2] { 0xff, 0xff };
    dev.config_write(0x3f, w);
    EXPECT_EQ(dev.bad_access_count(), 4u);
    EXPECT_EQ(cfg_read(dev, PCI_INTERRUPT_LINE, 1), 0u);
    // An extended device has 4 KiB.
    TestDevice ext(TestDevice::default_identity(), ConfigSpaceSize::Extended);
    EXPECT_EQ(cfg_read(ext, 0x100, 4), 0u);
    EXPECT_EQ(cfg_read(ext, 0xffc, 4), 0u);
}

TEST(PciDevice, IoBarSizing)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(0, BarKind::Io, 0x20));
    EXPECT_EQ(cfg_read(dev, 0x10, 4), 0x1u);
    cfg_write(dev, 0x10, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x10, 4), 0xffffffe1u);
    cfg_write(dev, 0x10, 4, 0xc043); // low bits below the size are dropped
    EXPECT_EQ(cfg_read(dev, 0x10, 4), 0xc041u);
    EXPECT_EQ(dev.bar_address(0), 0xc040u);
    EXPECT_EQ(dev.bar_size(0), 0x20u);
}

TEST(PciDevice, Mem32AndPrefetchableBarSizing)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(1, BarKind::Mem32, 0x1000));
    ASSERT_TRUE(dev.add_bar(2, BarKind::Mem32, 0x100000, Prefetchable::Yes));
    cfg_write(dev, 0x14, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x14, 4), 0xfffff000u);
    cfg_write(dev, 0x18, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x18, 4), 0xfff00008u);
    // Sizing one byte at a time works too (masks are per byte).
    cfg_write(dev, 0x14, 4, 0);
    cfg_write(dev, 0x15, 1, 0xff);
    EXPECT_EQ(cfg_read(dev, 0x14, 4), 0x0000f000u);
    // Unused BARs read zero and ignore writes.
    cfg_write(dev, 0x1c, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x1c, 4), 0u);
}

TEST(PciDevice, Mem64BarSizing)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(2, BarKind::Mem64, 0x4000, Prefetchable::Yes));
    EXPECT_EQ(cfg_read(dev, 0x18, 4), 0x0000000cu);
    cfg_write(dev, 0x18, 4, 0xffffffff);
    cfg_write(dev, 0x1c, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x18, 4), 0xffffc00cu);
    EXPECT_EQ(cfg_read(dev, 0x1c, 4), 0xffffffffu);
    cfg_write(dev, 0x18, 4, 0xfe000000);
    cfg_write(dev, 0x1c, 4, 0x1);
    EXPECT_EQ(dev.bar_address(2), 0x1fe000000u);
    // A BAR larger than 4 GiB: the low dword has no address bits.
    TestDevice big;
    ASSERT_TRUE(big.add_bar(0, BarKind::Mem64, uint64_t { 8 } << 30));
    cfg_write(big, 0x10, 4, 0xffffffff);
    cfg_write(big, 0x14, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(big, 0x10, 4), 0x4u);
    EXPECT_EQ(cfg_read(big, 0x14, 4), 0xfffffffeu);
}

TEST(PciDevice, BarDeclarationIsValidated)
{
    TestDevice dev;
    EXPECT_FALSE(dev.add_bar(0, BarKind::Io, 0x30));   // not a power of two
    EXPECT_FALSE(dev.add_bar(0, BarKind::Io, 2));      // too small
    EXPECT_FALSE(dev.add_bar(0, BarKind::Mem32, 8));   // too small
    EXPECT_FALSE(dev.add_bar(5, BarKind::Mem64, 0x1000)); // no room for the upper half
    EXPECT_FALSE(dev.add_bar(6, BarKind::Mem32, 0x1000));
    EXPECT_FALSE(dev.add_bar(0, BarKind::Rom, 0x1000));
    ASSERT_TRUE(dev.add_bar(0, BarKind::Mem64, 0x1000));
    EXPECT_FALSE(dev.add_bar(1, BarKind::Io, 0x10)); // the upper half of BAR 0
    EXPECT_FALSE(dev.add_bar(0, BarKind::Io, 0x10));
    EXPECT_TRUE(dev.add_bar(2, BarKind::Io, 0x10));
    EXPECT_FALSE(dev.add_rom_bar(0x400));
    EXPECT_TRUE(dev.add_rom_bar(0x10000));
    EXPECT_FALSE(dev.add_rom_bar(0x10000));
}

TEST(PciDevice, RomBarSizingAndEnable)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_rom_bar(0x20000));
    auto mapper = std::make_shared<RecordingMapper>();
    dev.set_bar_mapper(mapper);
    cfg_write(dev, PCI_ROM_ADDRESS, 4, 0xfffffffe);
    EXPECT_EQ(cfg_read(dev, PCI_ROM_ADDRESS, 4), 0xfffe0000u);
    cfg_write(dev, PCI_ROM_ADDRESS, 4, 0xfeb00000);
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    EXPECT_TRUE(mapper->events.empty()); // ROM enable bit still clear
    cfg_write(dev, PCI_ROM_ADDRESS, 4, 0xfeb00001);
    EXPECT_EQ(cfg_read(dev, PCI_ROM_ADDRESS, 4), 0xfeb00001u);
    ASSERT_EQ(mapper->events.size(), 1u);
    EXPECT_EQ(mapper->events[0], (MapEvent { true, ROM_BAR, false, 0xfeb00000, 0x20000 }));
    cfg_write(dev, PCI_ROM_ADDRESS, 4, 0xfeb00000);
    ASSERT_EQ(mapper->events.size(), 2u);
    EXPECT_EQ(mapper->events[1], (MapEvent { false, ROM_BAR, false, 0xfeb00000, 0x20000 }));
    // Sizing with the enable bit set does not map the all-ones address.
    cfg_write(dev, PCI_ROM_ADDRESS, 4, 0xffffffff);
    EXPECT_EQ(mapper->events.size(), 2u);
}

TEST(PciDevice, MapperFollowsMovesAndDecodeEnable)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(0, BarKind::Io, 0x40));
    ASSERT_TRUE(dev.add_bar(1, BarKind::Mem32, 0x1000));
    ASSERT_TRUE(dev.add_bar(2, BarKind::Mem64, 0x4000));
    auto mapper = std::make_shared<RecordingMapper>();
    dev.set_bar_mapper(mapper);
    auto& ev = mapper->events;

    cfg_write(dev, 0x10, 4, 0xc000);
    cfg_write(dev, 0x14, 4, 0xfebf0000);
    cfg_write(dev, 0x18, 4, 0x00000000);
    cfg_write(dev, 0x1c, 4, 0x00000008); // 0x8_0000_0000
    EXPECT_TRUE(ev.empty()); // decoding is off

    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_IO);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (MapEvent { true, 0, true, 0xc000, 0x40 }));
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[1], (MapEvent { true, 1, false, 0xfebf0000, 0x1000 }));
    EXPECT_EQ(ev[2], (MapEvent { true, 2, false, 0x800000000, 0x4000 }));
    ev.clear();

    // Move the IO BAR: unmap then map at the new place.
    cfg_write(dev, 0x10, 4, 0xc100);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0], (MapEvent { false, 0, true, 0xc000, 0x40 }));
    EXPECT_EQ(ev[1], (MapEvent { true, 0, true, 0xc100, 0x40 }));
    ev.clear();
    // Writing the same value again changes nothing.
    cfg_write(dev, 0x10, 4, 0xc100);
    EXPECT_TRUE(ev.empty());

    // Sizing a live BAR unmaps it; restoring maps it again.
    cfg_write(dev, 0x14, 4, 0xffffffff);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (MapEvent { false, 1, false, 0xfebf0000, 0x1000 }));
    cfg_write(dev, 0x14, 4, 0xfebf0000);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_TRUE(ev[1].map);
    ev.clear();

    // Address 0 is not mapped.
    cfg_write(dev, 0x14, 4, 0);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_FALSE(ev[0].map);
    ev.clear();

    // Turning memory decode off unmaps the memory BARs only.
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_IO);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (MapEvent { false, 2, false, 0x800000000, 0x4000 }));
    ev.clear();
    cfg_write(dev, PCI_COMMAND, 2, 0);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (MapEvent { false, 0, true, 0xc100, 0x40 }));
}

TEST(PciDevice, BarsOutsideTheirAddressSpaceAreNotMapped)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(0, BarKind::Io, 0x100));
    ASSERT_TRUE(dev.add_bar(1, BarKind::Mem64, 0x1000));
    auto mapper = std::make_shared<RecordingMapper>();
    dev.set_bar_mapper(mapper);
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    cfg_write(dev, 0x10, 4, 0x10000); // above 64 KiB of port space
    cfg_write(dev, 0x14, 4, 0xfffff000);
    cfg_write(dev, 0x18, 4, 0x7fffffff); // high dword all-ones-ish but not sizing: maps
    EXPECT_TRUE(mapper->events.empty()); // low dword still in sizing state
    cfg_write(dev, 0x14, 4, 0xffffe000);
    ASSERT_EQ(mapper->events.size(), 1u);
    EXPECT_EQ(mapper->events[0].addr, 0x7fffffffffffe000u);
}

TEST(PciDevice, MapperAttachedLaterSeesExistingPlacementAndDetachUnmaps)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(0, BarKind::Mem32, 0x1000));
    cfg_write(dev, 0x10, 4, 0xe0000000);
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    auto mapper = std::make_shared<RecordingMapper>();
    dev.set_bar_mapper(mapper);
    ASSERT_EQ(mapper->events.size(), 1u);
    EXPECT_TRUE(mapper->events[0].map);
    dev.set_bar_mapper(nullptr);
    ASSERT_EQ(mapper->events.size(), 2u);
    EXPECT_FALSE(mapper->events[1].map);
}

TEST(PciDevice, CapabilityListIsChained)
{
    TestDevice dev;
    EXPECT_EQ(cfg_read(dev, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0u);
    uint8_t const body1[] = { 0xaa, 0xbb, 0xcc };
    uint8_t const mask1[] = { 0x00, 0xff, 0x0f };
    auto first = dev.add_capability(0x09, body1, mask1);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, 0x40);
    uint8_t const body2[] = { 1, 2, 3, 4, 5, 6 };
    auto second = dev.add_capability(0x11, body2);
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, 0x48); // 0x40 + 5 bytes, dword aligned
    EXPECT_NE(cfg_read(dev, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0u);
    EXPECT_EQ(cfg_read(dev, PCI_CAPABILITY_LIST, 1), 0x40u);
    EXPECT_EQ(cfg_read(dev, 0x40, 4), 0xbbaa4809u);
    EXPECT_EQ(cfg_read(dev, 0x48, 2), 0x0011u);
    cfg_write(dev, 0x40, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, 0x40, 4), 0xffaa4809u); // only the masked body byte changed
    cfg_write(dev, 0x44, 1, 0xff);
    EXPECT_EQ(cfg_read(dev, 0x44, 1), 0xcfu); // 0xcc with the low nibble writable
    cfg_write(dev, 0x4a, 2, 0xffff);
    EXPECT_EQ(cfg_read(dev, 0x4a, 2), 0x0201u); // read-only capability
    // Mask size mismatch and running out of space fail.
    EXPECT_FALSE(dev.add_capability(0x05, body2, mask1));
    std::vector<uint8_t> huge(200);
    EXPECT_FALSE(dev.add_capability(0x05, huge));
}

TEST(PciDevice, IntxHonoursDisableBitAndStatus)
{
    TestDevice dev;
    auto line = std::make_shared<FakeIrq>();
    dev.set_intx_line(line);
    dev.set_intx(true);
    EXPECT_TRUE(line->level);
    EXPECT_NE(cfg_read(dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0u);
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    EXPECT_FALSE(line->level);
    EXPECT_NE(cfg_read(dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0u); // status still shows the request
    cfg_write(dev, PCI_COMMAND, 2, 0);
    EXPECT_TRUE(line->level);
    dev.set_intx(false);
    EXPECT_FALSE(line->level);
    EXPECT_EQ(cfg_read(dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0u);
    // The guest cannot clear or set the interrupt status bit.
    dev.set_intx(true);
    cfg_write(dev, PCI_STATUS, 2, 0xffff);
    EXPECT_NE(cfg_read(dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0u);
    // A new line takes over the level; the old one is released.
    auto line2 = std::make_shared<FakeIrq>();
    dev.set_intx_line(line2);
    EXPECT_FALSE(line->level);
    EXPECT_TRUE(line2->level);
}

TEST(PciDevice, ResetRestoresPowerOnConfigAndUnmapsBars)
{
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(0, BarKind::Io, 0x40));
    ASSERT_TRUE(dev.add_bar(1, BarKind::Mem32, 0x1000));
    dev.save_power_on_state();
    auto mapper = std::make_shared<RecordingMapper>();
    dev.set_bar_mapper(mapper);
    cfg_write(dev, 0x10, 4, 0xc000);
    cfg_write(dev, 0x14, 4, 0xfebf0000);
    cfg_write(dev, PCI_INTERRUPT_LINE, 1, 11);
    cfg_write(dev, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    ASSERT_EQ(mapper->events.size(), 2u);
    mapper->events.clear();

    dev.reset();
    EXPECT_EQ(cfg_read(dev, PCI_COMMAND, 2), 0u);
    EXPECT_EQ(cfg_read(dev, 0x10, 4), 0x1u); // I/O BAR: address gone, space bit stays
    EXPECT_EQ(cfg_read(dev, 0x14, 4), 0x0u);
    EXPECT_EQ(cfg_read(dev, PCI_INTERRUPT_LINE, 1), 0u);
    EXPECT_EQ(cfg_read(dev, PCI_VENDOR_ID, 2), 0x1af4u); // identity untouched
    ASSERT_EQ(mapper->events.size(), 2u);
    EXPECT_FALSE(mapper->events[0].map);
    EXPECT_FALSE(mapper->events[1].map);
}
