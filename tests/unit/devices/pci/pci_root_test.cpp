#include <gtest/gtest.h>

#include "bus/bus.h"
#include "devices/pci/bar_mapper.h"
#include "devices/pci/pci_root.h"
#include "pci_test_util.h"

using namespace hako;
using namespace hako::devices::pci;
using namespace hako::devices::pci::test;

namespace {
uint32_t addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg)
{
    return PciConfigIo::CONFIG_ADDRESS_ENABLE | (uint32_t { bus } << 16) | (uint32_t { dev } << 11) | (uint32_t { fn } << 8) | reg;
}
uint64_t pio_read(bus::Bus& b, uint64_t port, size_t size)
{
    uint8_t buf[4] {};
    b.read(port, std::span<uint8_t>(buf, size));
    return load_le(std::span<uint8_t const>(buf, size));
}
void pio_write(bus::Bus& b, uint64_t port, size_t size, uint64_t value)
{
    uint8_t buf[4] {};
    store_le(std::span<uint8_t>(buf, size), value);
    b.write(port, std::span<uint8_t const>(buf, size));
}
} // namespace

TEST(PciRoot, SlotsAndFunctions)
{
    PciRoot root;
    auto a = std::make_shared<TestDevice>();
    auto b = std::make_shared<TestDevice>();
    auto c = std::make_shared<TestDevice>();
    auto r = root.add_device(a, 3);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 3);
    EXPECT_FALSE(root.add_device(b, 3));  // taken
    EXPECT_FALSE(root.add_device(b, 32)); // out of range
    EXPECT_FALSE(root.add_device(nullptr, 4));
    r = root.add_device(b);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 0); // lowest free
    EXPECT_TRUE(root.add_function(c, 3, 2));
    EXPECT_FALSE(root.add_function(c, 3, 0));
    EXPECT_FALSE(root.add_function(c, 3, 8));
    EXPECT_FALSE(root.add_function(c, 3, 2));
    EXPECT_EQ(root.device_at(3, 0), a);
    EXPECT_EQ(root.device_at(3, 2), c);
    EXPECT_EQ(root.device_at(3, 1), nullptr);
    EXPECT_EQ(root.device_at(40, 0), nullptr);
    int added = 0;
    while (root.add_device(std::make_shared<TestDevice>()) && added < 100)
        ++added;
    EXPECT_EQ(added, 30); // slots 0 and 3 were taken
}

TEST(PciConfigIo, AddressRegisterAndAbsentDevices)
{
    auto root = std::make_shared<PciRoot>();
    ASSERT_TRUE(root->add_device(std::make_shared<TestDevice>(), 2));
    auto io = std::make_shared<PciConfigIo>(root);
    bus::Bus pio(bus::Bus::Kind::Pio);
    ASSERT_TRUE(register_config_io(pio, io));
    // 0xCF9 stays free for the reset control register; a second registration fails cleanly.
    EXPECT_TRUE(pio.insert(0xcf9, 1, std::make_shared<PciConfigMmio>(root)));
    EXPECT_FALSE(register_config_io(pio, io));

    pio_write(pio, 0xcf8, 4, 0xffffffff);
    EXPECT_EQ(pio_read(pio, 0xcf8, 4), 0x80fffffcu); // reserved bits read 0
    pio_write(pio, 0xcf8, 4, addr(0, 2, 0, 0));
    EXPECT_EQ(pio_read(pio, 0xcf8, 4), addr(0, 2, 0, 0));
    EXPECT_EQ(pio_read(pio, 0xcfc, 4), 0x10001af4u);
    // Byte and word accesses to 0xCF8 do not touch CONFIG_ADDRESS.
    pio_write(pio, 0xcf8, 1, 0);
    pio_write(pio, 0xcf8, 2, 0);
    EXPECT_EQ(pio_read(pio, 0xcf8, 1), 0xffu);
    EXPECT_EQ(pio_read(pio, 0xcf8, 4), addr(0, 2, 0, 0));
    EXPECT_EQ(io->bad_access_count(), 0u);
    // Absent slot, function, bus: all-ones.
    pio_write(pio, 0xcf8, 4, addr(0, 5, 0, 0));
    EXPECT_EQ(pio_read(pio, 0xcfc, 4), 0xffffffffu);
    pio_write(pio, 0xcf8, 4, addr(0, 2, 1, 0));
    EXPECT_EQ(pio_read(pio, 0xcfc, 2), 0xffffu);
    pio_write(pio, 0xcf8, 4, addr(1, 2, 0, 0));
    EXPECT_EQ(pio_read(pio, 0xcfc, 4), 0xffffffffu);
    // Enable bit clear: all-ones, writes dropped.
    pio_write(pio, 0xcf8, 4, addr(0, 2, 0, PCI_INTERRUPT_LINE) & ~PciConfigIo::CONFIG_ADDRESS_ENABLE);
    EXPECT_EQ(pio_read(pio, 0xcfc, 4), 0xffffffffu);
    pio_write(pio, 0xcfc, 1, 9);
    EXPECT_EQ(root->device_at(2)->config_load(PCI_INTERRUPT_LINE, 1), 0u);
}

TEST(PciConfigIo, DataPortAtEveryOffsetAndSize)
{
    auto root = std::make_shared<PciRoot>();
    auto dev = std::make_shared<TestDevice>();
    ASSERT_TRUE(root->add_device(dev, 1));
    PciConfigIo io(root);
    auto set_address = [&](uint8_t reg) {
        uint8_t buf[4];
        store_le(buf, addr(0, 1, 0, reg));
        io.write(0, buf);
    };
    // Read the whole header through every (offset, size) combination and compare with the device.
    for (uint8_t reg = 0; reg < 0x40; reg += 4) {
        set_address(reg);
        for (size_t size : { 1u, 2u, 4u }) {
            for (uint64_t off = 0; off + size <= 4; ++off) {
                uint8_t buf[4] {};
                io.read(4 + off, std::span<uint8_t>(buf, size));
                auto const expected = dev->config_load(static_cast<uint16_t>(reg + off), size);
                EXPECT_EQ(load_le(std::span<uint8_t const>(buf, size)), expected) << "reg " << int(reg) << " off " << off << " size " << size;
            }
        }
    }
    // Writes land at the right byte: the interrupt line is byte 0 of dword 0x3C, via 0xCFC..0xCFF.
    set_address(PCI_INTERRUPT_LINE);
    uint8_t const b = 0x0b;
    io.write(4, std::span<uint8_t const>(&b, 1));
    EXPECT_EQ(dev->config_load(PCI_INTERRUPT_LINE, 1), 0x0bu);
    set_address(PCI_CACHE_LINE_SIZE);
    uint8_t const w[2] { 0x10, 0x20 };
    io.write(4, w); // cache line size and latency timer
    EXPECT_EQ(dev->config_load(PCI_CACHE_LINE_SIZE, 2), 0x2010u);
    uint8_t const lat = 0x40;
    io.write(5, std::span<uint8_t const>(&lat, 1));
    EXPECT_EQ(dev->config_load(PCI_LATENCY_TIMER, 1), 0x40u);
    set_address(PCI_COMMAND);
    uint8_t const cmd[2] { 0x07, 0x04 };
    io.write(4, cmd);
    EXPECT_EQ(dev->config_load(PCI_COMMAND, 2), 0x0407u);
    // A word at 0xCFF would cross CONFIG_DATA: ignored and counted.
    uint8_t buf[4] { 0, 0, 0, 0 };
    io.read(7, std::span<uint8_t>(buf, 2));
    EXPECT_EQ(buf[0], 0xff);
    EXPECT_EQ(buf[1], 0xff);
    io.write(6, std::span<uint8_t const>(buf, 4));
    EXPECT_EQ(io.bad_access_count(), 2u);
}

TEST(PciConfigMmio, EcamDecode)
{
    auto root = std::make_shared<PciRoot>();
    auto d0 = std::make_shared<TestDevice>(TestDevice::default_identity(), ConfigSpaceSize::Extended);
    auto id = TestDevice::default_identity();
    id.device_id = 0x2222;
    auto f3 = std::make_shared<TestDevice>(id);
    ASSERT_TRUE(root->add_device(d0, 4));
    ASSERT_TRUE(root->add_function(f3, 4, 3));
    PciConfigMmio ecam(root, 2);
    EXPECT_EQ(ecam.window_size(), 2u << 20);
    auto rd = [&](uint64_t off, size_t size) {
        uint8_t buf[4] {};
        ecam.read(off, std::span<uint8_t>(buf, size));
        return load_le(std::span<uint8_t const>(buf, size));
    };
    uint64_t const dev4 = uint64_t { 4 } << 15;
    EXPECT_EQ(rd(dev4, 4), 0x10001af4u);
    EXPECT_EQ(rd(dev4 + 2, 2), 0x1000u);
    EXPECT_EQ(rd(dev4 | (3 << 12), 4), 0x22221af4u);
    EXPECT_EQ(rd(dev4 | (2 << 12), 4), 0xffffffffu);  // absent function
    EXPECT_EQ(rd((uint64_t { 1 } << 20) | dev4, 4), 0xffffffffu); // bus 1
    EXPECT_EQ(rd(dev4 | 0x100, 4), 0u);               // extended space of an extended device
    EXPECT_EQ(rd(dev4 | (3 << 12) | 0x100, 4), 0xffffffffu); // ... of a conventional one
    uint8_t const line = 5;
    ecam.write(dev4 | PCI_INTERRUPT_LINE, std::span<uint8_t const>(&line, 1));
    EXPECT_EQ(d0->config_load(PCI_INTERRUPT_LINE, 1), 5u);
    uint8_t const cmd[2] { 0x02, 0x00 };
    ecam.write(dev4 | (3 << 12) | PCI_COMMAND, cmd);
    EXPECT_EQ(f3->config_load(PCI_COMMAND, 2), 2u);
    // Bad accesses: crossing a dword, odd size, beyond the window.
    EXPECT_EQ(rd(dev4 + 3, 2), 0xffffu);
    uint8_t q[8] {};
    ecam.read(dev4, q);
    EXPECT_EQ(rd(2u << 20, 4), 0xffffffffu);
    EXPECT_EQ(ecam.bad_access_count(), 3u);
}

TEST(BusBarMapper, BarsAppearOnTheBusesAndMove)
{
    bus::Bus pio(bus::Bus::Kind::Pio);
    bus::Bus mmio(bus::Bus::Kind::Mmio);
    auto mapper = std::make_shared<BusBarMapper>(pio, mmio);
    auto root = std::make_shared<PciRoot>(mapper);
    auto dev = std::make_shared<TestDevice>();
    ASSERT_TRUE(dev->add_bar(0, BarKind::Io, 0x20));
    ASSERT_TRUE(dev->add_bar(1, BarKind::Mem32, 0x1000));
    ASSERT_TRUE(root->add_device(dev, 3));
    cfg_write(*dev, 0x10, 4, 0xc000);
    cfg_write(*dev, 0x14, 4, 0xfe000000);
    cfg_write(*dev, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    EXPECT_EQ(mapper->mapped_count(), 2u);

    uint8_t buf[2] {};
    EXPECT_TRUE(pio.read(0xc005, buf));
    EXPECT_EQ(buf[0], 0x05); // bar 0, offset 5
    EXPECT_TRUE(mmio.read(0xfe000010, buf));
    EXPECT_EQ(buf[0], 0x20); // bar 1 * 0x10 + offset 0x10
    uint8_t const v[4] { 1, 2, 3, 4 };
    EXPECT_TRUE(mmio.write(0xfe000ffc, v));
    ASSERT_EQ(dev->writes.size(), 1u);
    EXPECT_EQ(dev->writes[0].bar, 1);
    EXPECT_EQ(dev->writes[0].offset, 0xffcu);
    EXPECT_EQ(dev->writes[0].value, 0x04030201u);

    cfg_write(*dev, 0x14, 4, 0xfd000000);
    EXPECT_FALSE(mmio.read(0xfe000010, buf));
    EXPECT_TRUE(mmio.read(0xfd000010, buf));
    cfg_write(*dev, PCI_COMMAND, 2, 0);
    EXPECT_FALSE(pio.read(0xc000, buf));
    EXPECT_FALSE(mmio.read(0xfd000000, buf));
    EXPECT_EQ(mapper->mapped_count(), 0u);
}

TEST(BusBarMapper, OverlappingPlacementIsRefusedWithoutHarm)
{
    bus::Bus pio(bus::Bus::Kind::Pio);
    bus::Bus mmio(bus::Bus::Kind::Mmio);
    auto mapper = std::make_shared<BusBarMapper>(pio, mmio);
    auto other = std::make_shared<PciConfigIo>(std::make_shared<PciRoot>());
    ASSERT_TRUE(pio.insert(0x3f8, 8, other)); // say, a UART
    auto root = std::make_shared<PciRoot>(mapper);
    auto dev = std::make_shared<TestDevice>();
    ASSERT_TRUE(dev->add_bar(0, BarKind::Io, 0x10));
    ASSERT_TRUE(root->add_device(dev));
    cfg_write(*dev, 0x10, 4, 0x3f0); // 0x3f0-0x3ff overlaps 0x3f8
    cfg_write(*dev, PCI_COMMAND, 2, PCI_COMMAND_IO);
    EXPECT_EQ(mapper->failed_count(), 1u);
    EXPECT_EQ(mapper->mapped_count(), 0u);
    // Moving away (an unmap of the refused placement) must not remove the UART's range.
    cfg_write(*dev, 0x10, 4, 0x1000);
    EXPECT_EQ(mapper->mapped_count(), 1u);
    uint8_t b[1];
    EXPECT_TRUE(pio.read(0x3f8, b));
    EXPECT_TRUE(pio.read(0x1000, b));
    // A device not owned by a shared_ptr cannot be mapped (no weak reference), and that is not a crash.
    TestDevice local;
    ASSERT_TRUE(local.add_bar(0, BarKind::Io, 0x10));
    local.set_bar_mapper(mapper);
    cfg_write(local, 0x10, 4, 0x2000);
    cfg_write(local, PCI_COMMAND, 2, PCI_COMMAND_IO);
    EXPECT_EQ(mapper->failed_count(), 2u);
}

TEST(BusBarMapper, DestroyedDeviceLeavesTheBus)
{
    bus::Bus pio(bus::Bus::Kind::Pio);
    bus::Bus mmio(bus::Bus::Kind::Mmio);
    auto mapper = std::make_shared<BusBarMapper>(pio, mmio);
    {
        auto dev = std::make_shared<TestDevice>();
        ASSERT_TRUE(dev->add_bar(0, BarKind::Mem32, 0x1000));
        dev->set_bar_mapper(mapper);
        cfg_write(*dev, 0x10, 4, 0xe0000000);
        cfg_write(*dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
        EXPECT_EQ(mapper->mapped_count(), 1u);
    }
    EXPECT_EQ(mapper->mapped_count(), 0u);
    uint8_t b[4];
    EXPECT_FALSE(mmio.read(0xe0000000, b));
}
