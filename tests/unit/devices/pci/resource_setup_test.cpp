#include "devices/pci/resource_setup.h"

#include <gtest/gtest.h>

#include "devices/pci/i440fx.h"
#include "devices/pci/piix3.h"
#include "pci_test_util.h"

namespace hako::devices::pci {
namespace {

using test::TestDevice;

PciResourceWindows windows()
{
    return PciResourceWindows { .io_start = 0xc000, .io_end = 0x10000, .mmio32_start = 0xc0000000,
        .mmio32_end = 0xe0000000, .mmio64_start = 0x100000000, .mmio64_end = 0x900000000 };
}

uint8_t read8(PciRoot& root, uint8_t slot, uint16_t off)
{
    std::array<uint8_t, 1> b {};
    root.config_read(0, slot, 0, off, b);
    return b[0];
}

TEST(PciResources, BarsGetAlignedDisjointAddressesInTheirWindows)
{
    PciRoot root;
    auto host = std::make_shared<I440fxHostBridge>();
    auto piix3 = std::make_shared<Piix3IsaBridge>();
    ASSERT_TRUE(root.add_device(host, 0));
    ASSERT_TRUE(root.add_device(piix3, 1));
    auto a = std::make_shared<TestDevice>();
    ASSERT_TRUE(a->add_bar(0, BarKind::Io, 0x40));
    ASSERT_TRUE(a->add_bar(1, BarKind::Mem32, 0x1000));
    ASSERT_TRUE(a->add_bar(2, BarKind::Mem64, 0x4000, Prefetchable::Yes));
    auto b = std::make_shared<TestDevice>();
    ASSERT_TRUE(b->add_bar(0, BarKind::Mem32, 0x100000));
    ASSERT_TRUE(b->add_bar(1, BarKind::Io, 0x20));
    ASSERT_TRUE(b->add_bar(4, BarKind::Mem64, uint64_t { 1 } << 30)); // 1 GiB: does not fit below ECAM
    ASSERT_TRUE(root.add_device(a, 2));
    ASSERT_TRUE(root.add_device(b, 5));

    ASSERT_TRUE(assign_pci_resources(root, windows(), 1));

    struct Placed {
        uint64_t addr, size;
    };
    std::vector<Placed> io, mem;
    for (auto const& [dev, bars] : { std::pair { a.get(), std::vector<int> { 0, 1, 2 } }, std::pair { b.get(), std::vector<int> { 0, 1, 4 } } }) {
        for (int bar : bars) {
            uint64_t addr = dev->bar_address(bar), size = dev->bar_size(bar);
            EXPECT_NE(addr, 0u) << "bar " << bar;
            EXPECT_EQ(addr % size, 0u) << "bar " << bar << " misaligned";
            (dev->bar_kind(bar) == BarKind::Io ? io : mem).push_back({ addr, size });
        }
    }
    EXPECT_EQ(b->bar_address(4), 0x100000000u); // the 64-bit window
    for (auto const& p : io) {
        EXPECT_GE(p.addr, 0xc000u);
        EXPECT_LE(p.addr + p.size, 0x10000u);
    }
    for (auto* list : { &io, &mem })
        for (size_t i = 0; i < list->size(); ++i)
            for (size_t j = i + 1; j < list->size(); ++j)
                EXPECT_TRUE((*list)[i].addr + (*list)[i].size <= (*list)[j].addr || (*list)[j].addr + (*list)[j].size <= (*list)[i].addr)
                    << i << " overlaps " << j;
    // Decoding stays off: the OS enables it.
    EXPECT_EQ(read8(root, 2, PCI_COMMAND) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 0);

    // PIRQs routed as SeaBIOS does, and Interrupt Line follows the board wiring (slot 2 INTA# -> PIRQB, slot 5 ->
    // PIRQA).
    EXPECT_EQ(piix3->pirq_to_irq(0), 10);
    EXPECT_EQ(piix3->pirq_to_irq(2), 11);
    EXPECT_EQ(read8(root, 2, PCI_INTERRUPT_LINE), DEFAULT_PIRQ_IRQS[*intx_to_pirq(2, 1)]);
    EXPECT_EQ(read8(root, 5, PCI_INTERRUPT_LINE), DEFAULT_PIRQ_IRQS[*intx_to_pirq(5, 1)]);
}

TEST(PciResources, ABarThatFitsNowhereIsAnError)
{
    PciRoot root;
    auto a = std::make_shared<TestDevice>();
    ASSERT_TRUE(a->add_bar(0, BarKind::Mem32, 0x40000000)); // 1 GiB, 32-bit only: the window has 512 MiB
    ASSERT_TRUE(root.add_device(a, 3));
    auto r = assign_pci_resources(root, windows(), std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("03.0 BAR 0"), std::string::npos) << r.error().message();
}

} // namespace
} // namespace hako::devices::pci
