#include <gtest/gtest.h>

#include <map>

#include "devices/pci/i440fx.h"
#include "devices/pci/intx_router.h"
#include "devices/pci/pci_root.h"
#include "devices/pci/piix3.h"
#include "pci_test_util.h"

using namespace hako;
using namespace hako::devices::pci;
using namespace hako::devices::pci::test;

TEST(I440fx, IdentityPamAndSmram)
{
    I440fxHostBridge hb;
    EXPECT_EQ(cfg_read(hb, 0, 4), 0x12378086u);
    EXPECT_EQ(cfg_read(hb, PCI_REVISION_ID, 4), 0x06000002u);
    EXPECT_EQ(cfg_read(hb, PCI_HEADER_TYPE, 1), 0u);
    std::vector<std::pair<unsigned, uint8_t>> calls;
    hb.set_pam_hook([&](unsigned i, uint8_t v) { calls.emplace_back(i, v); });
    // SeaBIOS's make_bios_writable: PAM1-6 = 0x33 (one dword write spans PAM3-6), PAM0 = 0x30.
    cfg_write(hb, 0x5a, 2, 0x3333);
    cfg_write(hb, 0x5c, 4, 0x33333333);
    cfg_write(hb, I440fxHostBridge::PAM0, 1, 0xff);
    EXPECT_EQ(hb.pam(0), 0x30);
    for (unsigned i = 1; i < 7; ++i)
        EXPECT_EQ(hb.pam(i), 0x33);
    ASSERT_EQ(calls.size(), 7u);
    EXPECT_EQ(calls.back(), (std::pair<unsigned, uint8_t> { 0, 0x30 }));
    cfg_write(hb, 0x5a, 1, 0xff); // reserved bits stay 0, the value does not change: no hook call
    EXPECT_EQ(hb.pam(1), 0x33);
    EXPECT_EQ(calls.size(), 7u);
    cfg_write(hb, 0x5a, 1, 0x11);
    ASSERT_EQ(calls.size(), 8u);
    EXPECT_EQ(calls.back(), (std::pair<unsigned, uint8_t> { 1, 0x11 }));
    // SMRAM: C_BASE_SEG is fixed; D_LCK closes D_OPEN and freezes everything but D_CLS.
    EXPECT_EQ(hb.smram(), 0x02);
    cfg_write(hb, I440fxHostBridge::SMRAM, 1, 0xff);
    EXPECT_EQ(hb.smram(), 0x7a & ~I440fxHostBridge::SMRAM_D_OPEN); // D_LCK was written in the same write
    cfg_write(hb, I440fxHostBridge::SMRAM, 1, 0x00);
    EXPECT_EQ(hb.smram(), I440fxHostBridge::SMRAM_C_BASE_SEG | I440fxHostBridge::SMRAM_G_SMRAME | I440fxHostBridge::SMRAM_D_LCK);
    I440fxHostBridge open;
    cfg_write(open, I440fxHostBridge::SMRAM, 1, I440fxHostBridge::SMRAM_D_OPEN | I440fxHostBridge::SMRAM_G_SMRAME);
    EXPECT_EQ(open.smram(), 0x4a);
}

TEST(Piix3, IdentityAndPirqRegisters)
{
    Piix3IsaBridge isa;
    EXPECT_EQ(cfg_read(isa, 0, 4), 0x70008086u);
    EXPECT_EQ(cfg_read(isa, PCI_REVISION_ID, 4) >> 8, 0x060100u);
    EXPECT_EQ(cfg_read(isa, PCI_HEADER_TYPE, 1), 0x80u);
    EXPECT_EQ(cfg_read(isa, Piix3IsaBridge::PIRQRC, 4), 0x80808080u);
    for (unsigned p = 0; p < 4; ++p)
        EXPECT_FALSE(isa.pirq_to_irq(p));
    cfg_write(isa, Piix3IsaBridge::PIRQRC, 4, 0x0b0b0a0a); // SeaBIOS: 10, 10, 11, 11
    EXPECT_EQ(isa.pirq_to_irq(0), 10);
    EXPECT_EQ(isa.pirq_to_irq(3), 11);
    EXPECT_FALSE(isa.pirq_to_irq(4));
    cfg_write(isa, Piix3IsaBridge::PIRQRC, 1, 0xff); // reserved bits 6:4 stay clear
    EXPECT_EQ(cfg_read(isa, Piix3IsaBridge::PIRQRC, 1), 0x8fu);
    EXPECT_FALSE(isa.pirq_to_irq(0));
    for (uint32_t reserved : { 0u, 1u, 2u, 8u, 13u }) {
        cfg_write(isa, Piix3IsaBridge::PIRQRC, 1, reserved);
        EXPECT_FALSE(isa.pirq_to_irq(0)) << int(reserved);
    }
    cfg_write(isa, Piix3IsaBridge::PIRQRC, 1, 5);
    EXPECT_EQ(isa.pirq_to_irq(0), 5);
}

TEST(Piix3, IntxSwizzleMatchesQemuAndSeabios)
{
    EXPECT_EQ(intx_to_pirq(1, 1), 0u); // slot 1 INTA -> PIRQA
    EXPECT_EQ(intx_to_pirq(1, 2), 1u);
    EXPECT_EQ(intx_to_pirq(2, 1), 1u);
    EXPECT_EQ(intx_to_pirq(3, 4), 1u); // (3 - 1 + 3) & 3
    EXPECT_EQ(intx_to_pirq(0, 1), 3u);
    EXPECT_EQ(intx_to_pirq(31, 1), 2u);
    EXPECT_FALSE(intx_to_pirq(3, 0));
    EXPECT_FALSE(intx_to_pirq(3, 5));
}

namespace {
struct Board {
    std::shared_ptr<PciRoot> root = std::make_shared<PciRoot>();
    std::shared_ptr<Piix3IsaBridge> isa = std::make_shared<Piix3IsaBridge>();
    std::map<uint8_t, std::shared_ptr<FakeIrq>> irqs;
    std::shared_ptr<IntxRouter> router;
    Board()
    {
        EXPECT_TRUE(root->add_device(std::make_shared<I440fxHostBridge>(), 0));
        EXPECT_TRUE(root->add_device(isa, 1));
        router = IntxRouter::create(isa, [this](uint8_t irq) {
            auto& line = irqs[irq];
            if (!line)
                line = std::make_shared<FakeIrq>();
            return line;
        });
        root->set_intx_router(router);
    }
    bool irq(uint8_t n) { return irqs.count(n) && irqs[n]->level; }
};
std::shared_ptr<TestDevice> device_with_pin(uint8_t pin)
{
    auto id = TestDevice::default_identity();
    id.interrupt_pin = pin;
    return std::make_shared<TestDevice>(id);
}
} // namespace

TEST(IntxRouter, RoutesThroughPirqAndSharesLevels)
{
    Board b;
    auto d3 = device_with_pin(1); // slot 3 INTA -> PIRQC
    auto d7 = device_with_pin(1); // slot 7 INTA -> PIRQC as well
    auto d4 = device_with_pin(1); // slot 4 INTA -> PIRQD
    ASSERT_TRUE(b.root->add_device(d3, 3));
    ASSERT_TRUE(b.root->add_device(d7, 7));
    ASSERT_TRUE(b.root->add_device(d4, 4));
    // Routing disabled at reset: nothing reaches an ISA IRQ.
    d3->set_intx(true);
    EXPECT_TRUE(b.router->pirq_level(2));
    EXPECT_TRUE(b.irqs.empty());
    // The guest routes PIRQC to IRQ 11: the pending level appears at once.
    cfg_write(*b.isa, Piix3IsaBridge::PIRQRC + 2, 1, 11);
    EXPECT_TRUE(b.irq(11));
    // Shared: stays asserted until both devices on PIRQC deassert.
    d7->set_intx(true);
    d3->set_intx(false);
    EXPECT_TRUE(b.irq(11));
    d7->set_intx(false);
    EXPECT_FALSE(b.irq(11));
    EXPECT_FALSE(b.router->pirq_level(2));
    // Two PIRQs on one IRQ: OR of both.
    cfg_write(*b.isa, Piix3IsaBridge::PIRQRC + 3, 1, 11);
    d3->set_intx(true);
    d4->set_intx(true);
    d3->set_intx(false);
    EXPECT_TRUE(b.irq(11));
    d4->set_intx(false);
    EXPECT_FALSE(b.irq(11));
    // Re-routing a live PIRQ moves the level from the old IRQ to the new one.
    d4->set_intx(true);
    cfg_write(*b.isa, Piix3IsaBridge::PIRQRC + 3, 1, 10);
    EXPECT_FALSE(b.irq(11));
    EXPECT_TRUE(b.irq(10));
    cfg_write(*b.isa, Piix3IsaBridge::PIRQRC + 3, 1, 0x80);
    EXPECT_FALSE(b.irq(10));
    // INTx disable in the device's command register releases the line.
    cfg_write(*b.isa, Piix3IsaBridge::PIRQRC + 3, 1, 10);
    EXPECT_TRUE(b.irq(10));
    cfg_write(*d4, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    EXPECT_FALSE(b.irq(10));
    EXPECT_EQ(b.irqs[10]->changes, 4);
}

TEST(IntxRouter, DevicesAddedBeforeTheRouterAreWiredAndPinlessOnesIgnored)
{
    auto root = std::make_shared<PciRoot>();
    auto isa = std::make_shared<Piix3IsaBridge>();
    auto early = device_with_pin(2); // slot 2 INTB -> PIRQC
    auto none = device_with_pin(0);
    ASSERT_TRUE(root->add_device(isa, 1));
    ASSERT_TRUE(root->add_device(early, 2));
    ASSERT_TRUE(root->add_device(none, 5));
    auto line = std::make_shared<FakeIrq>();
    auto router = IntxRouter::create(isa, [&](uint8_t irq) { return irq == 9 ? line : nullptr; });
    root->set_intx_router(router);
    cfg_write(*isa, Piix3IsaBridge::PIRQRC + 2, 1, 9);
    early->set_intx(true);
    EXPECT_TRUE(line->level);
    none->set_intx(true); // no pin: goes nowhere, no crash
    early->set_intx(false);
    EXPECT_FALSE(line->level);
    // A route to an IRQ the factory cannot provide is tolerated.
    cfg_write(*isa, Piix3IsaBridge::PIRQRC + 2, 1, 5);
    early->set_intx(true);
    EXPECT_TRUE(router->irq_level(5));
    EXPECT_FALSE(line->level);
}
