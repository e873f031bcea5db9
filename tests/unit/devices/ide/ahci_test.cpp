// The ICH9 AHCI through its ABAR registers, as a driver uses them: command lists, tables and PRDTs built in heap
// guest RAM, in-memory disk and CD images, a fake INTx line and a recording MSI sink.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "block/memory_image.h"
#include "devices/ide/ahci.h"
#include "devices/ide/ahci_regs.h"
#include "devices/ide/ata_regs.h"
#include "ide_harness.h"
#include "../pci/pci_test_util.h"

namespace hako::devices::ide {
namespace {

using namespace ahci;
using pci::test::FakeIrq;
using pci::test::RecordingSink;

constexpr size_t RAM = 0x200000;
constexpr uint64_t DISK_BYTES = 0x100000; // 2048 sectors
constexpr uint64_t CD_BYTES = 64 * 2048;
constexpr uint64_t CLB = 0x10000;  // port p: CLB + p * 0x1000
constexpr uint64_t FB = 0x08000;   // port p: FB + p * 0x100
constexpr uint64_t TABLE = 0x20000; // slot s: TABLE + s * 0x1000
constexpr uint64_t BUF = 0x100000;

struct Prd {
    uint64_t addr;
    uint32_t bytes;
};

class AhciTest : public ::testing::Test {
protected:
    AhciTest() : ram(RAM)
    {
        auto m = memory::GuestMemory::from_buffers({ { memory::GuestAddr(0), std::span<uint8_t>(ram) } });
        EXPECT_TRUE(m.has_value());
        mem = std::make_unique<memory::GuestMemory>(std::move(*m));
        disk = std::make_shared<block::MemoryImage>(test::sector_pattern(DISK_BYTES));
        cd = std::make_shared<block::MemoryImage>(test::sector_pattern(CD_BYTES, 2048), block::ReadOnly::Yes);
        std::array<std::shared_ptr<IdeDrive>, Ahci::PORTS> drives;
        drives[0] = std::make_shared<IdeDrive>(DriveKind::Disk, disk, "", 0, DriveLink::Serial);
        drives[1] = std::make_shared<IdeDrive>(DriveKind::Cdrom, cd, "", 1, DriveLink::Serial);
        sink = std::make_shared<RecordingSink>();
        auto created = Ahci::create(*mem, drives, sink);
        EXPECT_TRUE(created.has_value());
        hba = *created;
        irq = std::make_shared<FakeIrq>();
        hba->set_intx_line(irq);
        pci::test::cfg_write(*hba, pci::PCI_COMMAND, 2, pci::PCI_COMMAND_MEMORY | pci::PCI_COMMAND_MASTER);
    }

    uint32_t r(uint32_t off)
    {
        std::array<uint8_t, 4> b {};
        hba->bar_read(Ahci::ABAR, off, b);
        return get_le32(b.data());
    }
    void w(uint32_t off, uint32_t v)
    {
        std::array<uint8_t, 4> b {};
        put_le32(b.data(), v);
        hba->bar_write(Ahci::ABAR, off, b);
    }
    static uint32_t preg(unsigned port, uint32_t reg) { return PORT_BASE + port * PORT_SIZE + reg; }

    /// Points the port at its command list and FIS area and starts it (FRE, then ST), as drivers do.
    void start(unsigned port)
    {
        w(preg(port, P_CLB), static_cast<uint32_t>(CLB + port * 0x1000));
        w(preg(port, P_CLBU), 0);
        w(preg(port, P_FB), static_cast<uint32_t>(FB + port * 0x100));
        w(preg(port, P_FBU), 0);
        w(preg(port, P_CMD), CMD_FRE);
        w(preg(port, P_CMD), CMD_FRE | CMD_ST);
    }

    /// Builds slot `slot`'s header and table: an H2D command FIS, an optional ATAPI packet, the PRDT.
    void build(unsigned port, unsigned slot, uint8_t command, uint64_t lba, uint16_t count, std::vector<Prd> const& prdt,
               bool write = false, uint16_t features = 0, std::array<uint8_t, 12> const* packet = nullptr)
    {
        uint64_t const table = TABLE + slot * 0x1000;
        uint8_t* fis = &ram[table];
        std::fill(fis, fis + 0x80, 0);
        fis[0] = FIS_H2D;
        fis[1] = FIS_H2D_C;
        fis[2] = command;
        fis[3] = static_cast<uint8_t>(features);
        fis[4] = static_cast<uint8_t>(lba);
        fis[5] = static_cast<uint8_t>(lba >> 8);
        fis[6] = static_cast<uint8_t>(lba >> 16);
        fis[7] = DEV_LBA;
        fis[8] = static_cast<uint8_t>(lba >> 24);
        fis[9] = static_cast<uint8_t>(lba >> 32);
        fis[10] = static_cast<uint8_t>(lba >> 40);
        fis[11] = static_cast<uint8_t>(features >> 8);
        fis[12] = static_cast<uint8_t>(count);
        fis[13] = static_cast<uint8_t>(count >> 8);
        if (packet)
            std::copy(packet->begin(), packet->end(), &ram[table + CT_ACMD]);
        for (size_t i = 0; i < prdt.size(); ++i) {
            put_le64(&ram[table + CT_PRDT + i * 16], prdt[i].addr);
            put_le32(&ram[table + CT_PRDT + i * 16 + 8], 0);
            put_le32(&ram[table + CT_PRDT + i * 16 + 12], prdt[i].bytes - 1);
        }
        uint8_t* hdr = &ram[CLB + port * 0x1000 + slot * 32];
        uint32_t const flags = 5u | (packet ? HDR_A : 0) | (write ? HDR_W : 0)
            | static_cast<uint32_t>(prdt.size()) << HDR_PRDTL_SHIFT;
        put_le32(hdr, flags);
        put_le32(hdr + 4, 0xdeadbeef); // PRDBC: the HBA overwrites it
        put_le64(hdr + 8, table);
    }
    uint32_t prdbc(unsigned port, unsigned slot) { return get_le32(&ram[CLB + port * 0x1000 + slot * 32 + 4]); }
    uint8_t const* rfis(unsigned port) { return &ram[FB + port * 0x100]; }
    /// Whether RAM at `addr` holds disk sectors [lba, lba + n) of the original pattern.
    bool holds_sectors(uint64_t addr, uint64_t lba, uint64_t n)
    {
        auto const pattern = test::sector_pattern(DISK_BYTES);
        return std::equal(&ram[addr], &ram[addr + n * 512], pattern.begin() + static_cast<std::ptrdiff_t>(lba * 512));
    }

    std::vector<uint8_t> ram;
    std::unique_ptr<memory::GuestMemory> mem;
    std::shared_ptr<block::MemoryImage> disk;
    std::shared_ptr<block::MemoryImage> cd;
    std::shared_ptr<RecordingSink> sink;
    std::shared_ptr<FakeIrq> irq;
    std::shared_ptr<Ahci> hba;
};

TEST_F(AhciTest, IdentifiesAsIch9WithSixPortsAndNcq)
{
    EXPECT_EQ(pci::test::cfg_read(*hba, 0, 4), 0x29228086u);
    EXPECT_EQ(pci::test::cfg_read(*hba, 8, 4) >> 8, 0x010601u);
    uint32_t const cap = r(CAP);
    EXPECT_EQ(cap & 0x1f, 5u);                  // 6 ports
    EXPECT_EQ((cap >> 8) & 0x1f, 31u);          // 32 slots
    EXPECT_TRUE(cap & CAP_SNCQ);
    EXPECT_TRUE(cap & CAP_S64A);
    EXPECT_EQ(r(PI), 0x3fu);
    EXPECT_EQ(r(VS), 0x00010300u);
    EXPECT_TRUE(r(GHC) & GHC_AE);
    EXPECT_EQ(r(preg(0, P_SSTS)), 0x123u);
    EXPECT_EQ(r(preg(0, P_SIG)), SIG_ATA);
    EXPECT_EQ(r(preg(1, P_SIG)), SIG_ATAPI);
    EXPECT_EQ(r(preg(2, P_SSTS)), 0u); // empty
    EXPECT_EQ(r(preg(0, P_TFD)) & 0xff, ST_DRDY | ST_DSC);
    EXPECT_EQ(r(preg(0, P_CMD)) & (CMD_SUD | CMD_POD), CMD_SUD | CMD_POD);
    // Sub-dword reads come from the dwords; odd-sized writes are dropped.
    std::array<uint8_t, 2> two {};
    hba->bar_read(Ahci::ABAR, PI, two);
    EXPECT_EQ(two[0], 0x3f);
    std::array<uint8_t, 1> one { 0xff };
    hba->bar_write(Ahci::ABAR, GHC, one);
    EXPECT_EQ(r(GHC) & GHC_IE, 0u);
    EXPECT_EQ(hba->stats().bad_accesses, 1u);
}

TEST_F(AhciTest, IdentifyThroughThePrdtWithPioSetupAndD2hFis)
{
    start(0);
    EXPECT_EQ(r(preg(0, P_CMD)) & (CMD_CR | CMD_FR), CMD_CR | CMD_FR);
    EXPECT_EQ(rfis(0)[RFIS_RFIS], FIS_D2H); // the signature FIS arrived when FRE was set
    EXPECT_EQ(rfis(0)[RFIS_RFIS + 4], 0x01);
    std::fill(&ram[FB], &ram[FB + 0x100], 0);
    build(0, 0, cmd::IDENTIFY_DEVICE, 0, 0, { { BUF, 512 } });
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_EQ(r(preg(0, P_IS)) & (PIS_DHRS | PIS_PSS), PIS_DHRS | PIS_PSS);
    EXPECT_EQ(r(preg(0, P_TFD)), uint32_t { ST_DRDY | ST_DSC });
    EXPECT_EQ(rfis(0)[RFIS_PSFIS], FIS_PIO_SETUP);
    EXPECT_EQ(rfis(0)[RFIS_PSFIS + 2], ST_DRDY | ST_DSC);
    EXPECT_EQ(rfis(0)[RFIS_RFIS], FIS_D2H);
    EXPECT_EQ(prdbc(0, 0), 512u);
    uint16_t const w75 = get_le16(&ram[BUF + 150]);
    uint16_t const w76 = get_le16(&ram[BUF + 152]);
    EXPECT_EQ(w75, 31);             // queue depth 32
    EXPECT_TRUE(w76 & 0x0100);      // NCQ
    EXPECT_EQ(get_le32(&ram[BUF + 200]), DISK_BYTES / 512); // words 100-101: LBA48 capacity
    // The CD-ROM aborts IDENTIFY DEVICE with its signature, and answers IDENTIFY PACKET DEVICE.
    start(1);
    build(1, 0, cmd::IDENTIFY_DEVICE, 0, 0, { { BUF, 512 } });
    w(preg(1, P_CI), 1);
    EXPECT_TRUE(r(preg(1, P_IS)) & PIS_TFES);
    EXPECT_EQ(r(preg(1, P_TFD)) & ST_ERR, ST_ERR);
    EXPECT_EQ(rfis(1)[RFIS_RFIS + 5], 0x14);
    EXPECT_EQ(rfis(1)[RFIS_RFIS + 6], 0xeb);
    EXPECT_EQ(r(preg(1, P_CI)), 1u); // halted on the error
    w(preg(1, P_CMD), CMD_FRE);      // error recovery: stop, clear, start
    EXPECT_EQ(r(preg(1, P_CI)), 0u);
    EXPECT_EQ(r(preg(1, P_CMD)) & CMD_CR, 0u);
    w(preg(1, P_IS), 0xffffffff);
    w(preg(1, P_CMD), CMD_FRE | CMD_ST);
    build(1, 0, cmd::IDENTIFY_PACKET_DEVICE, 0, 0, { { BUF, 512 } });
    w(preg(1, P_CI), 1);
    EXPECT_EQ(r(preg(1, P_CI)), 0u);
    EXPECT_EQ(get_le16(&ram[BUF]) >> 8 & 0x1f, 5); // CD-ROM device type
}

TEST_F(AhciTest, DmaReadsAndWritesThroughSeveralPrdEntries)
{
    start(0);
    build(0, 3, cmd::READ_DMA_EXT, 100, 10, { { BUF, 4096 }, { BUF + 0x8000, 1024 } });
    w(preg(0, P_CI), 1u << 3);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_TRUE(holds_sectors(BUF, 100, 8));
    EXPECT_TRUE(holds_sectors(BUF + 0x8000, 108, 2));
    EXPECT_EQ(prdbc(0, 3), 5120u);
    EXPECT_EQ((r(preg(0, P_CMD)) & CMD_CCS_MASK) >> CMD_CCS_SHIFT, 3u);
    // WRITE DMA (28-bit) of 2 sectors from RAM.
    std::fill(&ram[BUF], &ram[BUF + 1024], 0x5a);
    build(0, 0, cmd::WRITE_DMA, 7, 2, { { BUF, 1024 } }, true);
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_EQ(disk->bytes()[7 * 512], 0x5a);
    EXPECT_EQ(disk->bytes()[9 * 512 - 1], 0x5a);
    EXPECT_EQ(disk->bytes()[9 * 512], test::sector_pattern(DISK_BYTES)[9 * 512]);
    // PIO-protocol READ SECTORS also goes through the PRDT.
    build(0, 1, cmd::READ_SECTORS, 20, 1, { { BUF, 512 } });
    w(preg(0, P_CI), 2);
    EXPECT_TRUE(holds_sectors(BUF, 20, 1));
    EXPECT_EQ(hba->stats().commands, 3u);
}

TEST_F(AhciTest, NcqCompletesSeveralTagsThroughSetDeviceBits)
{
    start(0);
    w(preg(0, P_IE), PIS_SDBS | PIS_DHRS);
    w(GHC, GHC_IE);
    unsigned const tags[] = { 0, 1, 5 };
    for (unsigned t : tags)
        build(0, t, CMD_READ_FPDMA_QUEUED, 200 + t * 10, static_cast<uint16_t>(t << 3),
              { { BUF + t * 0x2000, 4 * 512 } }, false, 4);
    uint32_t const bits = 1u << 0 | 1u << 1 | 1u << 5;
    w(preg(0, P_SACT), bits);
    EXPECT_EQ(r(preg(0, P_SACT)), bits);
    w(preg(0, P_CI), bits);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_EQ(r(preg(0, P_SACT)), 0u);
    for (unsigned t : tags)
        EXPECT_TRUE(holds_sectors(BUF + t * 0x2000, 200 + t * 10, 4)) << "tag " << t;
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_SDBS);
    EXPECT_EQ(rfis(0)[RFIS_SDBFIS], FIS_SDB);
    EXPECT_EQ(get_le32(&rfis(0)[RFIS_SDBFIS + 4]), 1u << 5); // the last completion's tag
    EXPECT_EQ(hba->stats().ncq_commands, 3u);
    EXPECT_TRUE(irq->level);
    // WRITE FPDMA QUEUED.
    std::fill(&ram[BUF], &ram[BUF + 512], 0xc3);
    build(0, 9, CMD_WRITE_FPDMA_QUEUED, 1000, 9 << 3, { { BUF, 512 } }, true, 1);
    w(preg(0, P_SACT), 1u << 9);
    w(preg(0, P_CI), 1u << 9);
    EXPECT_EQ(r(preg(0, P_SACT)), 0u);
    EXPECT_EQ(disk->bytes()[1000 * 512], 0xc3);
    // An NCQ command past the end is accepted (PxCI clears), then fails through a Set Device Bits FIS with ERR
    // (SATA 13.6.3.2): the tag stays in PxSACT, PxIS has SDBS and TFES; READ LOG EXT page 10h then names its tag.
    std::fill(&ram[FB + RFIS_SDBFIS], &ram[FB + RFIS_SDBFIS + 8], 0);
    build(0, 4, CMD_READ_FPDMA_QUEUED, DISK_BYTES / 512, 4 << 3, { { BUF, 512 } }, false, 1);
    w(preg(0, P_SACT), 1u << 4);
    w(preg(0, P_CI), 1u << 4);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_TFES);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_SDBS);
    EXPECT_EQ(r(preg(0, P_TFD)) >> 8, uint32_t { ERR_IDNF | ERR_ABRT });
    EXPECT_TRUE(r(preg(0, P_TFD)) & ST_ERR);
    EXPECT_EQ(r(preg(0, P_SACT)), 1u << 4);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_EQ(ram[FB + RFIS_SDBFIS], FIS_SDB);
    EXPECT_TRUE(ram[FB + RFIS_SDBFIS + 2] & ST_ERR);
    EXPECT_EQ(ram[FB + RFIS_SDBFIS + 3], ERR_IDNF | ERR_ABRT);
    EXPECT_EQ(get_le32(&ram[FB + RFIS_SDBFIS + 4]), 0u); // no tag completed
    w(preg(0, P_CMD), CMD_FRE);
    EXPECT_EQ(r(preg(0, P_SACT)), 0u); // clearing ST clears PxSACT (AHCI 3.3.14)
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    build(0, 0, CMD_READ_LOG_EXT, LOG_NCQ_ERROR, 1, { { BUF, 512 } });
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_EQ(ram[BUF], 4);
    EXPECT_EQ(ram[BUF + 3], ERR_IDNF | ERR_ABRT);
}

TEST_F(AhciTest, BadPrdtStopsThePortWithHostBusErrorUntilRestart)
{
    start(0);
    auto const before = disk->bytes();
    // A buffer beyond guest RAM: nothing is written, HBFS and TFES, the slot stays in PxCI, later slots wait.
    build(0, 0, cmd::WRITE_DMA_EXT, 0, 2, { { RAM - 512, 1024 } }, true);
    build(0, 1, cmd::READ_DMA, 0, 1, { { BUF, 512 } });
    std::fill(&ram[BUF], &ram[BUF + 512], 0);
    w(preg(0, P_CI), 3);
    uint32_t const is = r(preg(0, P_IS));
    EXPECT_TRUE(is & PIS_HBFS);
    EXPECT_TRUE(is & PIS_TFES);
    EXPECT_EQ(r(preg(0, P_TFD)) & ST_ERR, ST_ERR);
    EXPECT_EQ(r(preg(0, P_CI)), 3u);
    EXPECT_FALSE(holds_sectors(BUF, 0, 1));
    EXPECT_TRUE(disk->bytes() == before);
    EXPECT_EQ(hba->stats().bad_tables, 1u);
    // A PRDT too short for the transfer: overflow.
    w(preg(0, P_CMD), CMD_FRE);
    w(preg(0, P_IS), 0xffffffff);
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    build(0, 0, cmd::READ_DMA, 0, 4, { { BUF, 1024 } });
    w(preg(0, P_CI), 1);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_OFS);
    // A PRDT entry table beyond RAM (PRDTL huge with the table at the end of RAM).
    w(preg(0, P_CMD), CMD_FRE);
    w(preg(0, P_IS), 0xffffffff);
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    build(0, 0, cmd::READ_DMA_EXT, 0, DISK_BYTES / 512, {});
    put_le32(&ram[CLB], 5u | 0xffffu << HDR_PRDTL_SHIFT); // 65535 entries: together less than the 1 MiB asked
    w(preg(0, P_CI), 1);
    EXPECT_TRUE(r(preg(0, P_IS)) & (PIS_HBFS | PIS_OFS));
    // After restart the port works again.
    w(preg(0, P_CMD), CMD_FRE);
    w(preg(0, P_IS), 0xffffffff);
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    build(0, 1, cmd::READ_DMA, 0, 1, { { BUF, 512 } });
    w(preg(0, P_CI), 2);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    EXPECT_TRUE(holds_sectors(BUF, 0, 1));
}

TEST_F(AhciTest, BadCommandListAndTableAddressesAreHostBusErrors)
{
    start(0);
    w(preg(0, P_CMD), CMD_FRE);
    w(preg(0, P_CLB), 0xfffffc00);
    w(preg(0, P_CLBU), 0xffffffff);
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    w(preg(0, P_CI), 0xffffffff);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_HBFS);
    EXPECT_EQ((r(preg(0, P_CMD)) & CMD_CCS_MASK) >> CMD_CCS_SHIFT, 0u);
    // A header pointing its table outside RAM; a FIS area outside RAM is counted, not fatal.
    w(preg(0, P_CMD), CMD_FRE);
    start(0);
    build(0, 2, cmd::READ_DMA, 0, 1, { { BUF, 512 } });
    put_le64(&ram[CLB + 2 * 32 + 8], 0xffffffffffffff80ull);
    w(preg(0, P_CI), 4);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_HBFS);
    EXPECT_EQ(hba->stats().bad_tables, 2u);
    // Not a Register H2D FIS: aborted.
    w(preg(0, P_CMD), CMD_FRE);
    w(preg(0, P_IS), 0xffffffff);
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    build(0, 0, cmd::READ_DMA, 0, 1, { { BUF, 512 } });
    ram[TABLE] = 0x34;
    w(preg(0, P_CI), 1);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_TFES);
    // Without PCI bus mastering the commands wait in PxCI.
    w(preg(0, P_CMD), CMD_FRE);
    w(preg(0, P_IS), 0xffffffff);
    w(preg(0, P_CMD), CMD_FRE | CMD_ST);
    pci::test::cfg_write(*hba, pci::PCI_COMMAND, 2, pci::PCI_COMMAND_MEMORY);
    build(0, 0, cmd::READ_DMA, 0, 1, { { BUF, 512 } });
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_CI)), 1u);
}

TEST_F(AhciTest, ReadPastTheEndIsATaskFileError)
{
    start(0);
    build(0, 0, cmd::READ_DMA_EXT, DISK_BYTES / 512 - 1, 2, { { BUF, 1024 } });
    w(preg(0, P_CI), 1);
    EXPECT_TRUE(r(preg(0, P_IS)) & PIS_TFES);
    EXPECT_EQ(r(preg(0, P_TFD)), uint32_t { (ERR_IDNF | ERR_ABRT) << 8 | ST_DRDY | ST_DSC | ST_ERR });
    EXPECT_EQ(rfis(0)[RFIS_RFIS + 2] & ST_ERR, ST_ERR);
}

TEST_F(AhciTest, PortResetAndHbaReset)
{
    start(0);
    w(preg(0, P_IE), 0xffffffff);
    // COMRESET: no link while DET=1, then the device's signature FIS when released.
    std::fill(&ram[FB], &ram[FB + 0x100], 0);
    w(preg(0, P_SCTL), 1);
    EXPECT_EQ(r(preg(0, P_SSTS)) & 0xf, 0u);
    w(preg(0, P_SCTL), 0);
    EXPECT_EQ(r(preg(0, P_SSTS)), 0x123u);
    EXPECT_EQ(r(preg(0, P_SIG)), SIG_ATA);
    EXPECT_EQ(rfis(0)[RFIS_RFIS], FIS_D2H);
    EXPECT_EQ(rfis(0)[RFIS_RFIS + 12], 1); // sector count 1: part of the signature
    // Software reset through two control FISes (SRST set, then clear).
    build(0, 0, 0, 0, 0, {});
    ram[TABLE + 1] = 0; // C = 0: device control
    ram[TABLE + 15] = CTL_SRST;
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_TFD)) & ST_BSY, ST_BSY);
    ram[TABLE + 15] = 0;
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_TFD)) & 0xff, ST_DRDY | ST_DSC);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
    // HBA reset: GHC.IE and the port registers back to reset values; HR reads 0.
    w(GHC, GHC_IE);
    w(GHC, GHC_HR);
    EXPECT_EQ(r(GHC), GHC_AE);
    EXPECT_EQ(r(preg(0, P_CMD)) & (CMD_ST | CMD_FRE | CMD_CR | CMD_FR), 0u);
    EXPECT_EQ(r(preg(0, P_IE)), 0u);
    EXPECT_EQ(r(preg(0, P_IS)), 0u);
    EXPECT_EQ(r(IS), 0u);
    // CI is ignored while ST is clear.
    w(preg(0, P_CI), 1);
    EXPECT_EQ(r(preg(0, P_CI)), 0u);
}

TEST_F(AhciTest, AtapiReadCapacityAndReadThroughPacket)
{
    start(1);
    std::array<uint8_t, 12> cap { scsi::READ_CAPACITY };
    build(1, 0, cmd::PACKET, 0, 0, { { BUF, 8 } }, false, PACKET_DMA, &cap);
    w(preg(1, P_CI), 1);
    EXPECT_EQ(r(preg(1, P_CI)), 0u);
    EXPECT_EQ(get_be32(&ram[BUF]), CD_BYTES / 2048 - 1);
    EXPECT_EQ(get_be32(&ram[BUF + 4]), 2048u);
    std::array<uint8_t, 12> rd { scsi::READ_10, 0, 0, 0, 0, 5, 0, 0, 2 };
    build(1, 1, cmd::PACKET, 0, 0, { { BUF, 2048 }, { BUF + 0x10000, 2048 } }, false, PACKET_DMA, &rd);
    w(preg(1, P_CI), 2);
    EXPECT_EQ(r(preg(1, P_CI)), 0u);
    auto const pattern = test::sector_pattern(CD_BYTES, 2048);
    EXPECT_TRUE(std::equal(&ram[BUF], &ram[BUF + 2048], pattern.begin() + 5 * 2048));
    EXPECT_TRUE(std::equal(&ram[BUF + 0x10000], &ram[BUF + 0x10800], pattern.begin() + 6 * 2048));
    EXPECT_EQ(prdbc(1, 1), 4096u);
    // An unknown packet: check condition, sense key in the error register.
    std::array<uint8_t, 12> bad { 0xff };
    build(1, 2, cmd::PACKET, 0, 0, { { BUF, 512 } }, false, 0, &bad);
    w(preg(1, P_CI), 4);
    EXPECT_TRUE(r(preg(1, P_IS)) & PIS_TFES);
    EXPECT_EQ(r(preg(1, P_TFD)) >> 8, uint32_t { sense::ILLEGAL_REQUEST << 4 | ERR_ABRT });
    // The CD is read-only: NCQ writes are refused.
    w(preg(1, P_CMD), CMD_FRE);
    w(preg(1, P_CMD), CMD_FRE | CMD_ST);
    build(1, 0, CMD_WRITE_FPDMA_QUEUED, 0, 0, { { BUF, 512 } }, true, 1);
    w(preg(1, P_CI), 1);
    EXPECT_TRUE(r(preg(1, P_IS)) & PIS_TFES);
}

TEST_F(AhciTest, InterruptsThroughIntxThenMsi)
{
    start(0);
    build(0, 0, cmd::READ_DMA, 0, 1, { { BUF, 512 } });
    w(preg(0, P_CI), 1);
    EXPECT_FALSE(irq->level); // PxIE and GHC.IE clear
    EXPECT_EQ(r(IS), 0u);
    w(preg(0, P_IE), PIS_DHRS);
    EXPECT_EQ(r(IS), 1u);
    EXPECT_FALSE(irq->level);
    w(GHC, GHC_IE);
    EXPECT_TRUE(irq->level);
    w(IS, 1); // still pending in PxIS: IS is set again
    EXPECT_TRUE(irq->level);
    w(preg(0, P_IS), PIS_DHRS);
    w(IS, 1);
    EXPECT_FALSE(irq->level);
    // MSI: one message per new cause, INTx stays low.
    auto const msi = static_cast<uint16_t>(pci::test::cfg_read(*hba, 0x34, 1)); // the first capability: MSI
    EXPECT_EQ(pci::test::cfg_read(*hba, msi, 1), pci::PCI_CAP_ID_MSI);
    pci::test::cfg_write(*hba, msi + 4, 4, 0xfee00000);
    pci::test::cfg_write(*hba, msi + 12, 2, 0x41);
    pci::test::cfg_write(*hba, msi + 2, 2, pci::MsiCapability::PCI_MSI_FLAGS_ENABLE);
    w(preg(0, P_CI), 1);
    ASSERT_EQ(sink->messages.size(), 1u);
    EXPECT_EQ(sink->messages[0].first, 0xfee00000u);
    EXPECT_EQ(sink->messages[0].second, 0x41u);
    EXPECT_FALSE(irq->level);
    w(preg(0, P_CI), 1); // DHRS still set: not a new cause
    EXPECT_EQ(sink->messages.size(), 1u);
    w(preg(0, P_IS), 0xffffffff);
    w(IS, 1);
    w(preg(0, P_CI), 1);
    EXPECT_EQ(sink->messages.size(), 2u);
}

} // namespace
} // namespace hako::devices::ide
