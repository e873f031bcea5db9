#include <gtest/gtest.h>

#include "devices/pci/msi.h"
#include "devices/pci/msix.h"
#include "pci_test_util.h"

using namespace hako;
using namespace hako::devices::pci;
using namespace hako::devices::pci::test;

namespace {
class MsixDevice final : public TestDevice {
public:
    explicit MsixDevice(std::shared_ptr<MsiSink> sink)
    {
        EXPECT_TRUE(add_bar(1, BarKind::Mem32, 0x1000));
        MsixCapability::Layout layout;
        layout.vectors = 70; // two PBA qwords
        layout.table_bar = 1;
        layout.table_offset = 0;
        layout.pba_bar = 1;
        layout.pba_offset = 0x800;
        auto cap = MsixCapability::create(*this, std::move(sink), layout);
        EXPECT_TRUE(cap);
        if (cap)
            msix = std::move(*cap);
    }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override
    {
        if (!msix->bar_read(bar, offset, data))
            TestDevice::bar_read(bar, offset, data);
    }
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override
    {
        if (!msix->bar_write(bar, offset, data))
            TestDevice::bar_write(bar, offset, data);
    }
    void config_written(uint16_t offset, size_t size) override { msix->config_written(offset, size); }
    std::unique_ptr<MsixCapability> msix;
};

class MsiDevice final : public TestDevice {
public:
    void config_written(uint16_t offset, size_t size) override
    {
        if (msi)
            msi->config_written(offset, size);
    }
    MsiCapability* msi { nullptr };
};

void bar_w(PciDevice& d, uint64_t off, size_t size, uint64_t v)
{
    uint8_t buf[8] {};
    store_le(std::span<uint8_t>(buf, size), v);
    d.bar_write(1, off, std::span<uint8_t const>(buf, size));
}
uint64_t bar_r(PciDevice& d, uint64_t off, size_t size)
{
    uint8_t buf[8] {};
    d.bar_read(1, off, std::span<uint8_t>(buf, size));
    return load_le(std::span<uint8_t const>(buf, size));
}
} // namespace

TEST(Msix, CapabilityLayout)
{
    auto sink = std::make_shared<RecordingSink>();
    MsixDevice dev(sink);
    auto const cap = dev.msix->offset();
    EXPECT_EQ(cfg_read(dev, PCI_CAPABILITY_LIST, 1), cap);
    EXPECT_EQ(cfg_read(dev, cap, 1), PCI_CAP_ID_MSIX);
    EXPECT_EQ(cfg_read(dev, cap + 2u, 2), 69u);
    EXPECT_EQ(cfg_read(dev, cap + 4u, 4), 0x1u);     // offset 0, BIR 1
    EXPECT_EQ(cfg_read(dev, cap + 8u, 4), 0x801u);   // offset 0x800, BIR 1
    cfg_write(dev, cap + 2u, 2, 0xffff);
    EXPECT_EQ(cfg_read(dev, cap + 2u, 2), 0xc045u); // only enable and function mask are writable
    cfg_write(dev, cap + 4u, 4, 0);
    EXPECT_EQ(cfg_read(dev, cap + 4u, 4), 0x1u);
}

TEST(Msix, CreateValidatesLayout)
{
    auto sink = std::make_shared<RecordingSink>();
    TestDevice dev;
    ASSERT_TRUE(dev.add_bar(0, BarKind::Mem32, 0x1000));
    ASSERT_TRUE(dev.add_bar(1, BarKind::Io, 0x100));
    auto layout = [](uint16_t n, uint8_t tb, uint32_t to, uint8_t pb, uint32_t po) {
        MsixCapability::Layout l;
        l.vectors = n;
        l.table_bar = tb;
        l.table_offset = to;
        l.pba_bar = pb;
        l.pba_offset = po;
        return l;
    };
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(0, 0, 0, 0, 0x800)));
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(2049, 0, 0, 0, 0x800)));
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(4, 0, 4, 0, 0x800)));  // misaligned
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(4, 1, 0, 0, 0x800)));  // IO BAR
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(4, 2, 0, 0, 0x800)));  // undeclared BAR
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(256, 0, 0, 0, 0xff8))); // table runs past the BAR
    EXPECT_FALSE(MsixCapability::create(dev, sink, layout(4, 0, 0, 0, 0x38)));   // overlap
    EXPECT_FALSE(MsixCapability::create(dev, nullptr, layout(4, 0, 0, 0, 0x800)));
    EXPECT_TRUE(MsixCapability::create(dev, sink, layout(4, 0, 0, 0, 0x40)));
}

TEST(Msix, TableWritesAndDelivery)
{
    auto sink = std::make_shared<RecordingSink>();
    MsixDevice dev(sink);
    auto const ctrl = static_cast<uint16_t>(dev.msix->offset() + 2);
    // Entries start masked.
    EXPECT_EQ(bar_r(dev, 0x0c, 4), 1u);
    EXPECT_TRUE(dev.msix->vector_masked(0));
    // Disabled: notify tells the device to fall back.
    EXPECT_FALSE(dev.msix->notify(0));
    // Program entry 2 with dword writes and entry 3 with qword writes.
    bar_w(dev, 0x20, 4, 0xfee00003); // bits 1:0 reserved
    bar_w(dev, 0x24, 4, 0);
    bar_w(dev, 0x28, 4, 0x4041);
    bar_w(dev, 0x2c, 4, 0xfffffffe); // unmask; reserved bits dropped
    EXPECT_EQ(bar_r(dev, 0x20, 8), 0xfee00000u);
    EXPECT_EQ(bar_r(dev, 0x2c, 4), 0u);
    bar_w(dev, 0x30, 8, 0x00000001fee01000);
    bar_w(dev, 0x38, 8, 0x0000000000000051); // data 0x51, control 0 (unmasked)
    EXPECT_EQ(bar_r(dev, 0x34, 4), 1u);
    cfg_write(dev, ctrl, 2, MsixCapability::PCI_MSIX_FLAGS_ENABLE);
    EXPECT_TRUE(dev.msix->enabled());
    EXPECT_TRUE(dev.msix->notify(2));
    EXPECT_TRUE(dev.msix->notify(3));
    ASSERT_EQ(sink->messages.size(), 2u);
    EXPECT_EQ(sink->messages[0], (std::pair<uint64_t, uint32_t> { 0xfee00000, 0x4041 }));
    EXPECT_EQ(sink->messages[1], (std::pair<uint64_t, uint32_t> { 0x1fee01000, 0x51 }));
    // A nonexistent vector is counted, not delivered.
    EXPECT_TRUE(dev.msix->notify(70));
    EXPECT_EQ(sink->messages.size(), 2u);
    EXPECT_EQ(dev.msix->bad_access_count(), 1u);
    // Other BAR offsets go to the device.
    EXPECT_EQ(bar_r(dev, 0x900, 1), 0x10u + 0x900u % 256u);
}

TEST(Msix, MaskingSetsPendingAndUnmaskDelivers)
{
    auto sink = std::make_shared<RecordingSink>();
    MsixDevice dev(sink);
    auto const ctrl = static_cast<uint16_t>(dev.msix->offset() + 2);
    cfg_write(dev, ctrl, 2, MsixCapability::PCI_MSIX_FLAGS_ENABLE);
    // Vector 65 (second PBA qword) is masked at reset.
    bar_w(dev, 65 * 16, 4, 0xfee00000);
    bar_w(dev, 65 * 16 + 8, 4, 0x65);
    EXPECT_TRUE(dev.msix->notify(65));
    EXPECT_TRUE(sink->messages.empty());
    EXPECT_TRUE(dev.msix->pending(65));
    EXPECT_EQ(bar_r(dev, 0x808, 8), 2u);
    EXPECT_EQ(bar_r(dev, 0x808, 4), 2u);
    EXPECT_EQ(bar_r(dev, 0x80c, 4), 0u);
    // The PBA is read-only.
    bar_w(dev, 0x808, 8, 0);
    EXPECT_TRUE(dev.msix->pending(65));
    bar_w(dev, 65 * 16 + 12, 4, 0);
    ASSERT_EQ(sink->messages.size(), 1u);
    EXPECT_EQ(sink->messages[0].second, 0x65u);
    EXPECT_FALSE(dev.msix->pending(65));
    // Function mask: pending while set, delivered when cleared.
    cfg_write(dev, ctrl, 2, MsixCapability::PCI_MSIX_FLAGS_ENABLE | MsixCapability::PCI_MSIX_FLAGS_MASKALL);
    EXPECT_TRUE(dev.msix->function_masked());
    EXPECT_TRUE(dev.msix->notify(65));
    EXPECT_EQ(sink->messages.size(), 1u);
    EXPECT_TRUE(dev.msix->pending(65));
    cfg_write(dev, ctrl, 2, MsixCapability::PCI_MSIX_FLAGS_ENABLE);
    EXPECT_EQ(sink->messages.size(), 2u);
    EXPECT_FALSE(dev.msix->pending(65));
}

TEST(Msix, MisalignedAndOddSizedAccessesAreIgnoredAndCounted)
{
    auto sink = std::make_shared<RecordingSink>();
    MsixDevice dev(sink);
    bar_w(dev, 0x02, 4, 0x12345678); // dword not dword-aligned
    bar_w(dev, 0x04, 8, 0x12345678); // qword not qword-aligned
    bar_w(dev, 0x00, 2, 0x1234);     // word
    bar_w(dev, 0x00, 1, 0x12);       // byte
    EXPECT_EQ(bar_r(dev, 0x00, 8), 0u);
    EXPECT_EQ(bar_r(dev, 0x01, 4), 0xffffffffu);
    EXPECT_EQ(bar_r(dev, 0x800, 2), 0xffffu);
    EXPECT_EQ(dev.msix->bad_access_count(), 6u);
}

TEST(Msi, CapabilityMaskingAndMultipleMessages)
{
    auto sink = std::make_shared<RecordingSink>();
    MsiDevice dev;
    auto created = MsiCapability::create(dev, sink, 4);
    ASSERT_TRUE(created);
    auto& msi = **created;
    dev.msi = &msi;
    auto const cap = msi.offset();
    EXPECT_EQ(cfg_read(dev, cap, 1), PCI_CAP_ID_MSI);
    EXPECT_EQ(cfg_read(dev, cap + 2u, 2), 0x0184u); // maskable, 64-bit, 4 vectors capable
    EXPECT_FALSE(msi.notify(0));                    // disabled
    cfg_write(dev, cap + 4u, 4, 0xfee0000f);
    cfg_write(dev, cap + 8u, 4, 0x1);
    cfg_write(dev, cap + 12u, 2, 0x4023);
    cfg_write(dev, cap + 16u, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(dev, cap + 4u, 4), 0xfee0000cu);
    EXPECT_EQ(cfg_read(dev, cap + 16u, 4), 0xfu); // 4 mask bits
    // Enable with 2 vectors (MME = 1); everything is masked.
    cfg_write(dev, cap + 2u, 2, 0x0011);
    EXPECT_TRUE(msi.enabled());
    EXPECT_EQ(msi.enabled_vectors(), 2u);
    EXPECT_TRUE(msi.notify(1));
    EXPECT_TRUE(sink->messages.empty());
    EXPECT_EQ(cfg_read(dev, cap + 20u, 4), 0x2u);
    cfg_write(dev, cap + 20u, 4, 0); // pending bits are read-only
    EXPECT_EQ(cfg_read(dev, cap + 20u, 4), 0x2u);
    EXPECT_TRUE(msi.notify(3)); // beyond the enabled vectors
    EXPECT_EQ(msi.dropped_count(), 1u);
    cfg_write(dev, cap + 16u, 4, 0x1); // unmask vector 1
    ASSERT_EQ(sink->messages.size(), 1u);
    EXPECT_EQ(sink->messages[0], (std::pair<uint64_t, uint32_t> { 0x1fee0000c, 0x4023 })); // 0x4022 | 1
    EXPECT_EQ(cfg_read(dev, cap + 20u, 4), 0u);
    EXPECT_TRUE(msi.notify(0));
    EXPECT_EQ(sink->messages.size(), 1u); // vector 0 still masked
    cfg_write(dev, cap + 16u, 4, 0);
    ASSERT_EQ(sink->messages.size(), 2u);
    EXPECT_EQ(sink->messages[1].second, 0x4022u);
    EXPECT_FALSE(MsiCapability::create(dev, sink, 3));
    EXPECT_FALSE(MsiCapability::create(dev, sink, 64));
}
