// Piix3Ide: the PCI function's identity (8086:7010, class 0x010180, function 1 header), BAR 4 (16 bytes of I/O)
// routing to the two channels' bus master registers, IDETIM writable and set by enable_decode(), the bus master
// enable gate on DMA, and a function reset reaching the channels.
#include <gtest/gtest.h>

#include "devices/ide/piix3_ide.h"
#include "ide_harness.h"

using namespace hako;
using namespace hako::devices::ide;
namespace pci = hako::devices::pci;

namespace {

struct Fixture {
    test::IdeBench bench; // for its RAM
    std::shared_ptr<test::EdgeIrq> irq0 = std::make_shared<test::EdgeIrq>();
    std::shared_ptr<test::EdgeIrq> irq1 = std::make_shared<test::EdgeIrq>();
    std::shared_ptr<Piix3Ide> ide;
    Fixture()
    {
        auto r = Piix3Ide::create(*bench.mem, { irq0, irq1 });
        EXPECT_TRUE(r.has_value());
        ide = *r;
        ide->save_power_on_state();
    }
    uint32_t cfg(uint16_t off, size_t len)
    {
        std::array<uint8_t, 4> b {};
        ide->config_read(off, std::span<uint8_t>(b).first(len));
        return uint32_t { b[0] } | uint32_t { b[1] } << 8 | uint32_t { b[2] } << 16 | uint32_t { b[3] } << 24;
    }
    void cfg_write(uint16_t off, uint32_t v, size_t len)
    {
        std::array<uint8_t, 4> b { static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
            static_cast<uint8_t>(v >> 24) };
        ide->config_write(off, std::span<uint8_t const>(b).first(len));
    }
};

TEST(Piix3Ide, Identity)
{
    Fixture f;
    EXPECT_EQ(f.cfg(0, 4), 0x70108086u);
    EXPECT_EQ(f.cfg(0x08, 4) >> 8, 0x010180u);
    EXPECT_EQ(f.cfg(pci::PCI_INTERRUPT_PIN, 1), 0u); // legacy IRQs 14/15, no INTx
    EXPECT_EQ(f.ide->bar_kind(Piix3Ide::BM_BAR), pci::BarKind::Io);
    EXPECT_EQ(f.ide->bar_size(Piix3Ide::BM_BAR), 16u);
    f.cfg_write(0x20, 0xffffffff, 4); // BAR 4 sizing
    EXPECT_EQ(f.cfg(0x20, 4), 0xfffffff1u);
}

TEST(Piix3Ide, IdetimWritableAndDecodeEnable)
{
    Fixture f;
    EXPECT_EQ(f.cfg(Piix3Ide::IDETIM, 4), 0u);
    f.cfg_write(Piix3Ide::IDETIM, 0x80008000u, 4);
    EXPECT_EQ(f.cfg(Piix3Ide::IDETIM, 4), 0x80008000u);
    f.ide->reset();
    EXPECT_EQ(f.cfg(Piix3Ide::IDETIM, 4), 0u);
    f.ide->enable_decode();
    EXPECT_EQ(f.cfg(Piix3Ide::IDETIM + 1, 1), 0x80u);
    EXPECT_EQ(f.cfg(Piix3Ide::IDETIM + 3, 1), 0x80u);
}

TEST(Piix3Ide, BusMasterRegistersPerChannelAndTheMasterGate)
{
    Fixture f;
    auto img = std::make_shared<block::MemoryImage>(test::sector_pattern(64 * 512));
    f.ide->channel(1).attach(0, std::make_shared<IdeDrive>(DriveKind::Disk, img, "", 0));
    std::array<uint8_t, 4> prd { 0x00, 0x10, 0x00, 0x00 }; // 0x1000
    f.ide->bar_write(Piix3Ide::BM_BAR, 8 + BM_PRD_TABLE, prd);
    std::array<uint8_t, 4> back {};
    f.ide->bar_read(Piix3Ide::BM_BAR, 8 + BM_PRD_TABLE, back);
    EXPECT_EQ(back, prd);
    f.ide->bar_read(Piix3Ide::BM_BAR, BM_PRD_TABLE, back);
    EXPECT_EQ(back, (std::array<uint8_t, 4> {}));
    std::array<uint8_t, 1> st {};
    f.ide->bar_read(Piix3Ide::BM_BAR, 8 + BM_STATUS, st);
    EXPECT_EQ(st[0], BM_ST_DRIVE0_DMA);
    f.ide->bar_read(Piix3Ide::BM_BAR, 16, st); // past the BAR
    EXPECT_EQ(st[0], 0xff);

    // A DMA read with bus mastering off in the PCI command register fails; with it on, it works.
    f.bench.prd(0x1000, 0x20000, 512, true);
    auto dma_read = [&] {
        std::array<uint8_t, 1> v {};
        auto out = [&](uint8_t reg, uint8_t x) {
            v[0] = x;
            f.ide->channel(1).command_write(reg, v);
        };
        out(REG_DEVICE, 0xe0);
        out(REG_COUNT, 1);
        out(REG_LBA_LOW, 3);
        out(REG_LBA_MID, 0);
        out(REG_LBA_HIGH, 0);
        out(REG_COMMAND, cmd::READ_DMA);
        v[0] = BM_CMD_WRITE_TO_MEMORY | BM_CMD_START;
        f.ide->bar_write(Piix3Ide::BM_BAR, 8 + BM_COMMAND, v);
        v[0] = 0;
        f.ide->bar_write(Piix3Ide::BM_BAR, 8 + BM_COMMAND, v);
        f.ide->channel(1).command_read(REG_STATUS, v);
        return v[0];
    };
    EXPECT_EQ(dma_read() & ST_ERR, ST_ERR);
    f.cfg_write(pci::PCI_COMMAND, pci::PCI_COMMAND_IO | pci::PCI_COMMAND_MASTER, 2);
    EXPECT_EQ(dma_read(), ST_DRDY | ST_DSC);
    EXPECT_EQ(f.bench.ram[0x20000], 3); // sector 3's number
    EXPECT_EQ(f.irq1->edges, 2);
    EXPECT_EQ(f.irq0->edges, 0);
}

} // namespace
