// The ATAPI CD-ROM through IdeChannel: signature, IDENTIFY DEVICE aborted, IDENTIFY PACKET DEVICE, the PACKET
// protocol (interrupt reason, byte count limit, chunking), the MMC commands (TEST UNIT READY, REQUEST SENSE,
// INQUIRY, READ CAPACITY, READ(10)/(12), MODE SENSE(10), READ TOC formats 0/1 in LBA and MSF, GET CONFIGURATION,
// GET EVENT STATUS NOTIFICATION, START STOP UNIT with PREVENT ALLOW), sense keys for bad commands, and DMA.
#include <gtest/gtest.h>

#include "ide_harness.h"

using namespace hako;
using namespace hako::devices::ide;
using test::IdeBench;

namespace {

constexpr size_t CD = 100 * 2048; // 100 blocks

struct Cd {
    IdeBench b;
    std::shared_ptr<block::MemoryImage> img;
    Cd()
    {
        img = b.attach(0, DriveKind::Cdrom, CD, block::ReadOnly::Yes);
        b.out(REG_DEVICE, 0xa0);
    }
    /// Runs a packet in PIO with the given byte count limit: the data, and the final status.
    std::vector<uint8_t> run(std::array<uint8_t, 12> cdb, uint16_t limit = 0xfffe, std::vector<size_t>* chunks = nullptr)
    {
        b.packet(cdb, limit);
        auto data = b.atapi_read_all(chunks);
        EXPECT_EQ(b.in(REG_COUNT), IR_IO | IR_COD);
        return data;
    }
    uint8_t status() { return b.in(REG_STATUS); }
    /// REQUEST SENSE: key, ASC.
    std::pair<uint8_t, uint8_t> sense()
    {
        auto s = run({ scsi::REQUEST_SENSE, 0, 0, 0, 18 });
        EXPECT_EQ(s.size(), 18u);
        return { static_cast<uint8_t>(s[2] & 0x0f), s[12] };
    }
};

TEST(IdeAtapi, SignatureAndIdentify)
{
    Cd cd;
    EXPECT_EQ(cd.b.in(REG_LBA_MID), 0x14);
    EXPECT_EQ(cd.b.in(REG_LBA_HIGH), 0xeb);
    EXPECT_EQ(cd.status(), 0); // no DRDY after reset on a packet device
    cd.b.out(REG_COMMAND, cmd::IDENTIFY_DEVICE);
    EXPECT_EQ(cd.status() & ST_ERR, ST_ERR);
    EXPECT_EQ(cd.b.in(REG_ERROR), ERR_ABRT);
    EXPECT_EQ(cd.b.in(REG_LBA_MID), 0x14);
    EXPECT_EQ(cd.b.in(REG_LBA_HIGH), 0xeb);
    cd.b.out(REG_COMMAND, cmd::IDENTIFY_PACKET_DEVICE);
    auto id = cd.b.read_data(512);
    uint16_t const w0 = static_cast<uint16_t>(id[0] | id[1] << 8);
    EXPECT_EQ(w0 >> 14, 2);         // ATAPI
    EXPECT_EQ((w0 >> 8) & 0x1f, 5); // CD-ROM
    EXPECT_EQ(w0 & 0x80, 0x80);     // removable
    EXPECT_EQ(w0 & 3, 0);           // 12-byte packets
    // ATA data commands are refused.
    cd.b.out(REG_COMMAND, cmd::READ_SECTORS);
    EXPECT_EQ(cd.b.in(REG_ERROR), ERR_ABRT);
    cd.b.out(REG_COMMAND, cmd::WRITE_DMA);
    EXPECT_EQ(cd.b.in(REG_ERROR), ERR_ABRT);
    // DEVICE RESET gives the signature again, without an interrupt.
    int const edges = cd.b.irq->edges;
    cd.b.out(REG_LBA_MID, 0);
    cd.b.out(REG_COMMAND, cmd::DEVICE_RESET);
    EXPECT_EQ(cd.b.in(REG_LBA_MID), 0x14);
    EXPECT_EQ(cd.b.irq->edges, edges);
}

TEST(IdeAtapi, PacketPhaseAndTestUnitReady)
{
    Cd cd;
    cd.b.out(REG_FEATURES, 0);
    cd.b.out(REG_COMMAND, cmd::PACKET);
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC | ST_DRQ);
    EXPECT_EQ(cd.b.in(REG_COUNT), IR_COD); // waiting for the command packet
    int const edges = cd.b.irq->edges;
    cd.b.write_data(std::vector<uint8_t>(12, 0)); // TEST UNIT READY
    EXPECT_EQ(cd.b.irq->edges, edges + 1);
    EXPECT_EQ(cd.b.in(REG_COUNT), IR_IO | IR_COD);
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
}

TEST(IdeAtapi, UnknownOpcodeIsIllegalRequest)
{
    Cd cd;
    cd.run({ 0xff });
    EXPECT_EQ(cd.status() & ST_ERR, ST_ERR);
    EXPECT_EQ(cd.b.in(REG_ERROR), sense::ILLEGAL_REQUEST << 4 | ERR_ABRT);
    EXPECT_EQ(cd.sense(), std::make_pair(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_OPCODE));
    EXPECT_EQ(cd.sense(), std::make_pair(sense::NO_SENSE, uint8_t { 0 })); // REQUEST SENSE consumed it
    cd.run({ scsi::MODE_SENSE_6, 0, 0x3f });
    EXPECT_EQ(cd.sense().second, sense::ASC_INVALID_OPCODE);
}

TEST(IdeAtapi, InquiryAndAllocationLength)
{
    Cd cd;
    auto inq = cd.run({ scsi::INQUIRY, 0, 0, 0, 36 });
    ASSERT_EQ(inq.size(), 36u);
    EXPECT_EQ(inq[0], 0x05);
    EXPECT_EQ(inq[1], 0x80);
    EXPECT_EQ(std::string(inq.begin() + 8, inq.begin() + 12), "HAKO");
    EXPECT_EQ(cd.run({ scsi::INQUIRY, 0, 0, 0, 5 }).size(), 5u);
    cd.run({ scsi::INQUIRY, 1, 0x80, 0, 36 }); // EVPD
    EXPECT_EQ(cd.sense(), std::make_pair(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB));
}

TEST(IdeAtapi, ReadCapacity)
{
    Cd cd;
    auto cap = cd.run({ scsi::READ_CAPACITY });
    ASSERT_EQ(cap.size(), 8u);
    EXPECT_EQ(cap[3], 99);
    EXPECT_EQ(cap[6], 0x08); // 2048
    EXPECT_EQ(cap[7], 0x00);
}

TEST(IdeAtapi, Read10ChunkedByTheByteCountLimit)
{
    Cd cd;
    std::vector<size_t> chunks;
    auto data = cd.run({ scsi::READ_10, 0, 0, 0, 0, 3, 0, 0, 3 }, 4096, &chunks);
    ASSERT_EQ(data.size(), 3 * 2048u);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), cd.img->bytes().begin() + 3 * 2048));
    EXPECT_EQ(chunks, (std::vector<size_t> { 4096, 2048 }));
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
    // A limit below a block: chunks of the (even) limit.
    chunks.clear();
    data = cd.run({ scsi::READ_10, 0, 0, 0, 0, 1, 0, 0, 1 }, 1001, &chunks);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), cd.img->bytes().begin() + 2048));
    EXPECT_EQ(chunks, (std::vector<size_t> { 1000, 1000, 48 }));
}

TEST(IdeAtapi, Read12AndRangeChecks)
{
    Cd cd;
    auto data = cd.run({ scsi::READ_12, 0, 0, 0, 0, 98, 0, 0, 0, 2 });
    EXPECT_EQ(data.size(), 2 * 2048u);
    cd.run({ scsi::READ_12, 0, 0, 0, 0, 99, 0, 0, 0, 2 }); // one past the end
    EXPECT_EQ(cd.sense(), std::make_pair(sense::ILLEGAL_REQUEST, sense::ASC_LBA_OUT_OF_RANGE));
    cd.run({ scsi::READ_12, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff });
    EXPECT_EQ(cd.sense().second, sense::ASC_LBA_OUT_OF_RANGE);
    EXPECT_TRUE(cd.run({ scsi::READ_10, 0, 0, 0, 0, 5 }).empty()); // zero blocks
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
    cd.img->fail_io = true;
    cd.run({ scsi::READ_10, 0, 0, 0, 0, 5, 0, 0, 1 });
    EXPECT_EQ(cd.b.in(REG_ERROR) >> 4, sense::MEDIUM_ERROR);
    cd.img->fail_io = false;
    EXPECT_EQ(cd.sense().first, sense::MEDIUM_ERROR);
    EXPECT_EQ(cd.img->writes, 0u);
}

TEST(IdeAtapi, ModeSense10)
{
    Cd cd;
    auto all = cd.run({ scsi::MODE_SENSE_10, 0, 0x3f, 0, 0, 0, 0, 0x10, 0 });
    ASSERT_GE(all.size(), 8u);
    EXPECT_EQ(size_t(all[0] << 8 | all[1]) + 2, all.size());
    auto caps = cd.run({ scsi::MODE_SENSE_10, 0, 0x2a, 0, 0, 0, 0, 0x10, 0 });
    ASSERT_GT(caps.size(), 9u);
    EXPECT_EQ(caps[8], 0x2a);
    cd.run({ scsi::MODE_SENSE_10, 0, 0xc1, 0, 0, 0, 0, 0x10, 0 }); // saved values
    EXPECT_EQ(cd.sense().second, sense::ASC_SAVING_NOT_SUPPORTED);
    cd.run({ scsi::MODE_SENSE_10, 0, 0x05, 0, 0, 0, 0, 0x10, 0 }); // no such page
    EXPECT_EQ(cd.sense().second, sense::ASC_INVALID_FIELD_IN_CDB);
}

TEST(IdeAtapi, ReadTocFormats)
{
    Cd cd;
    auto toc = cd.run({ scsi::READ_TOC, 0, 0, 0, 0, 0, 0, 0, 100 });
    ASSERT_EQ(toc.size(), 4u + 16);
    EXPECT_EQ(toc[1], 18);
    EXPECT_EQ(toc[2], 1);
    EXPECT_EQ(toc[3], 1);
    EXPECT_EQ(toc[6], 1);     // track 1
    EXPECT_EQ(toc[14], 0xaa); // lead-out
    EXPECT_EQ(toc[19], 100);  // at LBA 100
    auto msf = cd.run({ scsi::READ_TOC, 2, 0, 0, 0, 0, 0, 0, 100 });
    ASSERT_EQ(msf.size(), 20u);
    EXPECT_EQ(msf[9], 0); // track 1 at 00:02:00
    EXPECT_EQ(msf[10], 2);
    EXPECT_EQ(msf[11], 0);
    EXPECT_EQ(msf[17], 0); // lead-out at 250 frames: 00:03:25
    EXPECT_EQ(msf[18], 3);
    EXPECT_EQ(msf[19], 25);
    auto leadout = cd.run({ scsi::READ_TOC, 0, 0, 0, 0, 0, 0xaa, 0, 100 });
    EXPECT_EQ(leadout.size(), 12u);
    auto session = cd.run({ scsi::READ_TOC, 0, 1, 0, 0, 0, 0, 0, 100 });
    ASSERT_EQ(session.size(), 12u);
    EXPECT_EQ(session[1], 10);
    EXPECT_EQ(session[6], 1);
    cd.run({ scsi::READ_TOC, 0, 2, 0, 0, 0, 0, 0, 100 }); // full TOC: not offered
    EXPECT_EQ(cd.sense().second, sense::ASC_INVALID_FIELD_IN_CDB);
    cd.run({ scsi::READ_TOC, 0, 0, 0, 0, 0, 5, 0, 100 }); // no track 5
    EXPECT_EQ(cd.sense().second, sense::ASC_INVALID_FIELD_IN_CDB);
}

TEST(IdeAtapi, GetConfiguration)
{
    Cd cd;
    auto cfg = cd.run({ scsi::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0x01, 0 });
    ASSERT_GE(cfg.size(), 16u);
    uint32_t const len = uint32_t { cfg[0] } << 24 | uint32_t { cfg[1] } << 16 | uint32_t { cfg[2] } << 8 | cfg[3];
    EXPECT_EQ(len + 4, cfg.size());
    EXPECT_EQ(cfg[7], 0x08); // current profile CD-ROM
    EXPECT_EQ(cfg[8 + 1], 0x00); // first feature: profile list
    EXPECT_EQ(cfg[8 + 5], 0x08);
    auto one = cd.run({ scsi::GET_CONFIGURATION, 2, 0, 0x10, 0, 0, 0, 0x01, 0 });
    ASSERT_EQ(one.size(), 8u + 12);
    EXPECT_EQ(one[9], 0x10);
    EXPECT_EQ(cd.run({ scsi::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 8 }).size(), 8u);
}

TEST(IdeAtapi, GetEventStatusNotification)
{
    Cd cd;
    auto ev = cd.run({ scsi::GET_EVENT_STATUS, 1, 0, 0, 0x10, 0, 0, 0, 8 });
    ASSERT_EQ(ev.size(), 8u);
    EXPECT_EQ(ev[2], 4);
    EXPECT_EQ(ev[4], 2); // new media, once
    EXPECT_EQ(ev[5], 2); // present
    ev = cd.run({ scsi::GET_EVENT_STATUS, 1, 0, 0, 0x10, 0, 0, 0, 8 });
    EXPECT_EQ(ev[4], 0);
    ev = cd.run({ scsi::GET_EVENT_STATUS, 1, 0, 0, 0x02, 0, 0, 0, 8 });
    ASSERT_EQ(ev.size(), 4u);
    EXPECT_EQ(ev[2], 0x80); // no event available
    cd.run({ scsi::GET_EVENT_STATUS, 0, 0, 0, 0x10, 0, 0, 0, 8 }); // asynchronous: refused
    EXPECT_EQ(cd.sense().second, sense::ASC_INVALID_FIELD_IN_CDB);
}

TEST(IdeAtapi, StartStopAndPreventAllow)
{
    Cd cd;
    cd.run({ scsi::START_STOP_UNIT, 0, 0, 0, 1 });
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
    cd.run({ scsi::PREVENT_ALLOW, 0, 0, 0, 1 });
    cd.run({ scsi::START_STOP_UNIT, 0, 0, 0, 2 }); // eject while prevented
    EXPECT_EQ(cd.sense(), std::make_pair(sense::ILLEGAL_REQUEST, sense::ASC_REMOVAL_PREVENTED));
    cd.run({ scsi::PREVENT_ALLOW, 0, 0, 0, 0 });
    cd.run({ scsi::START_STOP_UNIT, 0, 0, 0, 2 });
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
}

TEST(IdeAtapi, ReadThroughDma)
{
    Cd cd;
    cd.b.prd(0x1000, 0x40000, 2 * 2048, true);
    cd.b.bm_out(BM_PRD_TABLE, 0x1000, 4);
    cd.b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY, 1);
    cd.b.packet({ scsi::READ_10, 0, 0, 0, 0, 10, 0, 0, 2 }, 0, true);
    EXPECT_EQ(cd.b.channel->alt_status() & ST_DRQ, ST_DRQ);
    cd.b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(cd.b.bm_in(BM_STATUS) & (BM_ST_ACTIVE | BM_ST_INTERRUPT | BM_ST_ERROR), BM_ST_INTERRUPT);
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
    EXPECT_EQ(cd.b.in(REG_COUNT), IR_IO | IR_COD);
    EXPECT_TRUE(std::equal(cd.img->bytes().begin() + 10 * 2048, cd.img->bytes().begin() + 12 * 2048,
        cd.b.ram.begin() + 0x40000));
    // INQUIRY through DMA too.
    cd.b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY, 1);
    cd.b.packet({ scsi::INQUIRY, 0, 0, 0, 36 }, 0, true);
    cd.b.prd(0x1000, 0x50000, 36, true);
    cd.b.bm_out(BM_COMMAND, BM_CMD_WRITE_TO_MEMORY | BM_CMD_START, 1);
    EXPECT_EQ(cd.b.ram[0x50000], 0x05);
    EXPECT_EQ(cd.status(), ST_DRDY | ST_DSC);
}

} // namespace
