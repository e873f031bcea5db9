// The ATA disk command set through IdeChannel's registers: signatures and SRST, drive select with an absent slave,
// IDENTIFY DEVICE, PIO READ/WRITE SECTORS (LBA28, CHS, LBA48 through HOB), READ/WRITE MULTIPLE and SET MULTIPLE
// MODE, range checks (IDNF), nIEN and the interrupt protocol, FLUSH CACHE, SET FEATURES, INITIALIZE DEVICE
// PARAMETERS, read-only images, and bus master DMA with PRD tables (good, short, outside RAM, bus master off).
#include <gtest/gtest.h>

#include "ide_harness.h"

using namespace hako;
using namespace hako::devices::ide;
using test::IdeBench;

namespace {

constexpr size_t DISK = 64 * 512 * 16; // 1024 sectors

uint16_t word(std::vector<uint8_t> const& id, size_t w) { return static_cast<uint16_t>(id[2 * w] | id[2 * w + 1] << 8); }

TEST(IdeAta, SignatureAndStatusAfterSoftReset)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.out(REG_DEVICE, 0xa0);
    b.channel->device_control(CTL_SRST);
    EXPECT_EQ(b.channel->alt_status() & ST_BSY, ST_BSY);
    b.channel->device_control(0);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    EXPECT_EQ(b.in(REG_ERROR), 0x01);
    EXPECT_EQ(b.in(REG_COUNT), 1);
    EXPECT_EQ(b.in(REG_LBA_LOW), 1);
    EXPECT_EQ(b.in(REG_LBA_MID), 0);
    EXPECT_EQ(b.in(REG_LBA_HIGH), 0);
}

TEST(IdeAta, AbsentSlaveReadsZeroAndIgnoresCommands)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.out(REG_DEVICE, 0xb0);
    b.out(REG_COUNT, 0x55);
    b.out(REG_LBA_LOW, 0xaa);
    EXPECT_EQ(b.in(REG_COUNT), 0);
    EXPECT_EQ(b.in(REG_LBA_LOW), 0);
    b.out(REG_COMMAND, cmd::IDENTIFY_DEVICE);
    EXPECT_EQ(b.in(REG_STATUS), 0);
    EXPECT_EQ(b.irq->edges, 0);
    // The master saw the writes (both devices latch every register write).
    b.out(REG_DEVICE, 0xa0);
    EXPECT_EQ(b.in(REG_COUNT), 0x55);
    EXPECT_EQ(b.in(REG_LBA_LOW), 0xaa);
}

TEST(IdeAta, EmptyChannelFloats)
{
    IdeBench b;
    EXPECT_EQ(b.in(REG_STATUS), 0xff);
    EXPECT_EQ(b.channel->alt_status(), 0xff);
}

TEST(IdeAta, IdentifyDevice)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.out(REG_DEVICE, 0xa0);
    b.out(REG_COMMAND, cmd::IDENTIFY_DEVICE);
    EXPECT_TRUE(b.irq->level);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_DRQ);
    EXPECT_FALSE(b.irq->level);
    auto id = b.read_data(512);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    EXPECT_EQ(word(id, 0), 0x0040);
    EXPECT_EQ(word(id, 47) & 0xff, MAX_MULTIPLE);
    EXPECT_EQ(word(id, 49) & 0x0300, 0x0300);
    EXPECT_EQ(word(id, 60) | word(id, 61) << 16, DISK / 512);
    EXPECT_EQ(word(id, 83) & 0x0400, 0x0400); // 48-bit
    EXPECT_EQ(word(id, 100), DISK / 512);
    EXPECT_EQ(id[27 * 2 + 1], 'H'); // model, first character in the high byte
    EXPECT_EQ(id[510], 0xa5);
    uint8_t sum = 0;
    for (uint8_t x : id)
        sum = static_cast<uint8_t>(sum + x);
    EXPECT_EQ(sum, 0);
}

std::vector<uint8_t> sectors(block::MemoryImage& img, uint64_t lba, size_t n)
{
    auto const& v = img.bytes();
    return { v.begin() + static_cast<std::ptrdiff_t>(lba * 512), v.begin() + static_cast<std::ptrdiff_t>((lba + n) * 512) };
}

TEST(IdeAta, ReadSectorsLba28InterruptPerSector)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    b.lba28(0, 5, 3);
    b.out(REG_COMMAND, cmd::READ_SECTORS);
    for (int s = 0; s < 3; ++s) {
        EXPECT_EQ(b.irq->edges, s + 1);
        EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_DRQ);
        EXPECT_EQ(b.read_data(512), sectors(*img, 5u + static_cast<unsigned>(s), 1));
    }
    EXPECT_EQ(b.irq->edges, 3); // none after the last block
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    EXPECT_EQ(b.in16(), 0xffff); // the data port outside a transfer
    EXPECT_EQ(b.channel->stats().bad_accesses, 1u);
}

TEST(IdeAta, ReadSectorsChsUsesTheCurrentGeometry)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    // INITIALIZE DEVICE PARAMETERS: 4 heads, 17 sectors per track.
    b.out(REG_DEVICE, 0xa0 | 3);
    b.out(REG_COUNT, 17);
    b.out(REG_COMMAND, cmd::INITIALIZE_DEVICE_PARAMETERS);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    // Cylinder 2, head 1, sector 3: (2 * 4 + 1) * 17 + 2 = 155.
    b.out(REG_DEVICE, 0xa0 | 1);
    b.out(REG_COUNT, 1);
    b.out(REG_LBA_LOW, 3);
    b.out(REG_LBA_MID, 2);
    b.out(REG_LBA_HIGH, 0);
    b.out(REG_COMMAND, cmd::READ_SECTORS);
    EXPECT_EQ(b.read_data(512), sectors(*img, 155, 1));
    // Sector 0 does not exist in CHS.
    b.out(REG_LBA_LOW, 0);
    b.out(REG_COMMAND, cmd::READ_SECTORS);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    EXPECT_EQ(b.in(REG_ERROR) & ERR_IDNF, ERR_IDNF);
}

TEST(IdeAta, ReadSectorsExtUsesHobRegisters)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    b.lba48(0, 1000, 2);
    b.channel->device_control(CTL_HOB);
    EXPECT_EQ(b.in(REG_COUNT), 0); // the previous (high) byte
    b.channel->device_control(0);
    EXPECT_EQ(b.in(REG_COUNT), 2);
    b.out(REG_COMMAND, cmd::READ_SECTORS_EXT);
    EXPECT_EQ(b.read_data(512), sectors(*img, 1000, 1));
    EXPECT_EQ(b.read_data(512), sectors(*img, 1001, 1));
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    // Beyond the end: IDNF, no data.
    b.lba48(0, uint64_t { 1 } << 40, 1);
    b.out(REG_COMMAND, cmd::READ_SECTORS_EXT);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_ERR);
    EXPECT_EQ(b.in(REG_ERROR), ERR_IDNF | ERR_ABRT);
    b.lba48(0, 1023, 2); // the last sector plus one
    b.out(REG_COMMAND, cmd::READ_SECTORS_EXT);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
}

TEST(IdeAta, WriteSectorsPioOut)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    b.lba28(0, 7, 2);
    b.out(REG_COMMAND, cmd::WRITE_SECTORS);
    EXPECT_EQ(b.irq->edges, 0); // DRQ for the first block without an interrupt
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_DRQ);
    std::vector<uint8_t> data(1024);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 3);
    b.write_data({ data.begin(), data.begin() + 512 });
    EXPECT_EQ(b.irq->edges, 1);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_DRQ);
    b.write_data({ data.begin() + 512, data.end() });
    EXPECT_EQ(b.irq->edges, 2);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    EXPECT_EQ(sectors(*img, 7, 2), data);
    b.out(REG_COMMAND, cmd::FLUSH_CACHE);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    img->fail_io = true;
    b.out(REG_COMMAND, cmd::FLUSH_CACHE_EXT);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    EXPECT_EQ(b.channel->stats().io_errors, 1u);
}

TEST(IdeAta, ReadOnlyImageRefusesWrites)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK, block::ReadOnly::Yes);
    for (uint8_t c : { cmd::WRITE_SECTORS, cmd::WRITE_SECTORS_EXT, cmd::WRITE_DMA, cmd::WRITE_DMA_EXT }) {
        b.lba28(0, 0, 1);
        b.out(REG_COMMAND, c);
        EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_ERR) << int(c);
        EXPECT_EQ(b.in(REG_ERROR), ERR_ABRT);
    }
    EXPECT_EQ(img->writes, 0u);
}

TEST(IdeAta, MultipleMode)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    b.lba28(0, 0, 5);
    b.out(REG_COMMAND, cmd::READ_MULTIPLE); // multiple mode is off
    EXPECT_EQ(b.in(REG_ERROR), ERR_ABRT);
    b.out(REG_COUNT, 3); // not a power of two
    b.out(REG_COMMAND, cmd::SET_MULTIPLE_MODE);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    b.out(REG_COUNT, 4);
    b.out(REG_COMMAND, cmd::SET_MULTIPLE_MODE);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    b.lba28(0, 10, 6);
    int const edges = b.irq->edges;
    b.out(REG_COMMAND, cmd::READ_MULTIPLE);
    EXPECT_EQ(b.read_data(4 * 512), sectors(*img, 10, 4)); // a block of 4 sectors per interrupt
    EXPECT_EQ(b.read_data(2 * 512), sectors(*img, 14, 2)); // then the remainder
    EXPECT_EQ(b.irq->edges - edges, 2);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    // WRITE MULTIPLE EXT: 5 sectors in blocks of 4 and 1.
    std::vector<uint8_t> data(5 * 512, 0x77);
    b.lba48(0, 100, 5);
    b.out(REG_COMMAND, cmd::WRITE_MULTIPLE_EXT);
    b.write_data({ data.begin(), data.begin() + 2048 });
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC | ST_DRQ);
    b.write_data({ data.begin() + 2048, data.end() });
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    EXPECT_EQ(sectors(*img, 100, 5), data);
    EXPECT_EQ(img->writes, 2u);
    // IDENTIFY reports the setting in word 59.
    b.out(REG_COMMAND, cmd::IDENTIFY_DEVICE);
    auto id = b.read_data(512);
    EXPECT_EQ(word(id, 59), 0x0104);
}

TEST(IdeAta, NienMasksTheLine)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.channel->device_control(CTL_NIEN);
    b.out(REG_DEVICE, 0xa0);
    b.out(REG_COMMAND, cmd::IDENTIFY_DEVICE);
    EXPECT_FALSE(b.irq->level);
    EXPECT_EQ(b.channel->alt_status(), ST_DRDY | ST_DSC | ST_DRQ); // alternate status keeps it pending
    b.channel->device_control(0);
    EXPECT_TRUE(b.irq->level);
    b.in(REG_STATUS);
    EXPECT_FALSE(b.irq->level);
}

TEST(IdeAta, SetFeatures)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.out(REG_DEVICE, 0xa0);
    b.out(REG_FEATURES, feature::SET_TRANSFER_MODE);
    b.out(REG_COUNT, 0x22); // multiword DMA 2
    b.out(REG_COMMAND, cmd::SET_FEATURES);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    b.out(REG_COMMAND, cmd::IDENTIFY_DEVICE);
    EXPECT_EQ(word(b.read_data(512), 63), 0x0407);
    b.out(REG_FEATURES, feature::SET_TRANSFER_MODE);
    b.out(REG_COUNT, 0x27); // no multiword DMA 7
    b.out(REG_COMMAND, cmd::SET_FEATURES);
    EXPECT_EQ(b.in(REG_ERROR), ERR_ABRT);
    b.out(REG_FEATURES, feature::DISABLE_WRITE_CACHE);
    b.out(REG_COMMAND, cmd::SET_FEATURES);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    b.out(REG_FEATURES, 0x99); // unknown
    b.out(REG_COMMAND, cmd::SET_FEATURES);
    EXPECT_EQ(b.in(REG_ERROR), ERR_ABRT);
    b.out(REG_COMMAND, 0xff); // unknown command
    EXPECT_EQ(b.in(REG_ERROR), ERR_ABRT);
    b.out(REG_COMMAND, cmd::PACKET); // not a packet device
    EXPECT_EQ(b.in(REG_ERROR), ERR_ABRT);
}

// --- Bus master DMA ---

constexpr uint32_t PRD_TABLE = 0x1000;

TEST(IdeDma, ReadDmaThroughTwoPrds)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    b.prd(PRD_TABLE, 0x10000, 1024, false);
    b.prd(PRD_TABLE + 8, 0x20000, 0, true); // 0 = 64 KiB, more than needed
    b.bm_out(BM_PRD_TABLE, PRD_TABLE, 4);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY, 1);
    b.lba28(0, 20, 5);
    b.out(REG_COMMAND, cmd::READ_DMA);
    EXPECT_EQ(b.irq->edges, 0); // waits for the start bit
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.irq->edges, 1);
    EXPECT_EQ(b.bm_in(BM_STATUS) & (BM_ST_ACTIVE | BM_ST_ERROR | BM_ST_INTERRUPT), BM_ST_INTERRUPT);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    auto want = sectors(*img, 20, 5);
    EXPECT_TRUE(std::equal(want.begin(), want.begin() + 1024, b.ram.begin() + 0x10000));
    EXPECT_TRUE(std::equal(want.begin() + 1024, want.end(), b.ram.begin() + 0x20000));
    b.bm_out(BM_STATUS, BM_ST_INTERRUPT, 1); // write 1 to clear
    EXPECT_EQ(b.bm_in(BM_STATUS) & BM_ST_INTERRUPT, 0);
    EXPECT_EQ(b.channel->stats().dma_transfers, 1u);
}

TEST(IdeDma, WriteDmaExtStartedFirst)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    for (size_t i = 0; i < 2048; ++i)
        b.ram[0x30000 + i] = static_cast<uint8_t>(i ^ 0x3c);
    b.prd(PRD_TABLE, 0x30000, 2048, true);
    b.bm_out(BM_PRD_TABLE, PRD_TABLE, 4);
    b.bm_out(BM_COMMAND, BM_CMD_START, 1); // start before the command: it runs when the command comes
    b.lba48(0, 500, 4);
    b.out(REG_COMMAND, cmd::WRITE_DMA_EXT);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
    EXPECT_TRUE(std::equal(b.ram.begin() + 0x30000, b.ram.begin() + 0x30000 + 2048, sectors(*img, 500, 4).begin()));
}

TEST(IdeDma, ShortPrdTableFails)
{
    IdeBench b;
    auto img = b.attach(0, DriveKind::Disk, DISK);
    b.prd(PRD_TABLE, 0x10000, 512, true);
    b.bm_out(BM_PRD_TABLE, PRD_TABLE, 4);
    b.lba28(0, 0, 2);
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.bm_in(BM_STATUS) & (BM_ST_ACTIVE | BM_ST_ERROR | BM_ST_INTERRUPT), BM_ST_ERROR | BM_ST_INTERRUPT);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    EXPECT_EQ(b.channel->stats().bad_prd_tables, 1u);
}

TEST(IdeDma, PrdOutsideRamAndTableOutsideRamFail)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.prd(PRD_TABLE, IdeBench::RAM_SIZE - 256, 512, true); // runs off the end of RAM
    b.bm_out(BM_PRD_TABLE, PRD_TABLE, 4);
    b.lba28(0, 0, 1);
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    b.bm_out(BM_COMMAND, 0, 1);
    b.bm_out(BM_PRD_TABLE, 0xfffffff0, 4); // the table itself outside RAM
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    EXPECT_EQ(b.channel->stats().bad_prd_tables, 2u);
}

TEST(IdeDma, LoopingTableWithoutEotIsBounded)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    // 8192 entries of 2 bytes each and no EOT: 16 KiB, less than the 128 KiB asked for.
    for (uint32_t i = 0; i < MAX_PRD_ENTRIES; ++i)
        b.prd(PRD_TABLE + 8 * i, 0x80000, 2, false);
    b.bm_out(BM_PRD_TABLE, PRD_TABLE, 4);
    b.lba28(0, 0, 0); // 256 sectors
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
}

TEST(IdeDma, BusMasterDisabledFailsAndDirectionMismatchFails)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    bool enabled = false;
    b.channel->set_bus_master_enabled([&enabled] { return enabled; });
    b.prd(PRD_TABLE, 0x10000, 512, true);
    b.bm_out(BM_PRD_TABLE, PRD_TABLE, 4);
    b.lba28(0, 0, 1);
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    enabled = true;
    b.bm_out(BM_COMMAND, 0, 1);
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_START, 1); // read from memory for a disk read
    EXPECT_EQ(b.in(REG_STATUS) & ST_ERR, ST_ERR);
    b.bm_out(BM_COMMAND, 0, 1);
    b.out(REG_COMMAND, cmd::READ_DMA);
    b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(b.in(REG_STATUS), ST_DRDY | ST_DSC);
}

TEST(IdeDma, RegistersAndReset)
{
    IdeBench b;
    b.attach(0, DriveKind::Disk, DISK);
    b.bm_out(BM_PRD_TABLE, 0x12345677, 4);
    std::array<uint8_t, 4> v {};
    b.channel->bus_master_read(BM_PRD_TABLE, v);
    EXPECT_EQ(v[0], 0x74); // dword aligned
    EXPECT_EQ(v[3], 0x12);
    EXPECT_EQ(b.bm_in(BM_STATUS), BM_ST_DRIVE0_DMA);
    b.bm_out(BM_STATUS, BM_ST_DRIVE1_DMA, 1);
    EXPECT_EQ(b.bm_in(BM_STATUS), BM_ST_DRIVE1_DMA);
    b.channel->reset();
    EXPECT_EQ(b.bm_in(BM_STATUS), BM_ST_DRIVE0_DMA);
    b.channel->bus_master_read(BM_PRD_TABLE, v);
    EXPECT_EQ(v[0], 0);
}

} // namespace
