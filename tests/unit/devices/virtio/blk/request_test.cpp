#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../../../block/temp_image.h"
#include "block/disk_image.h"
#include "devices/virtio/blk/blk_config.h"
#include "devices/virtio/blk/request.h"
#include "devices/virtio/queue.h"

using namespace hako;
using namespace hako::devices::virtio;
using namespace hako::devices::virtio::blk;
using hako::test::TempImage;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000; // guest RAM at [0, 256 KiB)
constexpr uint64_t DESC = 0x1000;
constexpr uint64_t AVAIL = 0x3000;
constexpr uint64_t USED = 0x4000;
constexpr uint64_t HDR = 0x8000;
constexpr uint64_t STATUS = 0x9000;
constexpr uint64_t SEGS = 0xA000;
constexpr uint64_t DATA = 0x10000; // up to 128 KiB of data
constexpr uint16_t QSIZE = 16;
constexpr uint64_t IMAGE_SIZE = 1024 * 1024;
constexpr uint64_t CAPACITY = IMAGE_SIZE / 512;

/// One buffer of a chain the test driver builds.
struct Buf {
    uint64_t addr;
    uint32_t len;
    bool write;
};

Buf hdr(uint32_t len = 16) { return { HDR, len, false }; }
Buf status() { return { STATUS, 1, true }; }

std::vector<uint8_t> pattern(uint64_t offset, size_t len)
{
    std::vector<uint8_t> v(len);
    for (size_t i = 0; i < len; ++i)
        v[i] = TempImage::pattern_byte(offset + i);
    return v;
}

bool all_zero(std::vector<uint8_t> const& v)
{
    return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
}

class VirtioBlkRequestTest : public ::testing::Test {
protected:
    VirtioBlkRequestTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_queue(std::move(Queue::create(m_mem, 256).value()))
        , m_file(IMAGE_SIZE)
    {
        EXPECT_TRUE(m_queue.set_size(QSIZE));
        m_queue.set_desc_table(GuestAddr(DESC));
        m_queue.set_avail_ring(GuestAddr(AVAIL));
        m_queue.set_used_ring(GuestAddr(USED));
        EXPECT_TRUE(m_queue.validate());
        m_queue.set_ready(true);
        open_disk(block::ReadOnly::No, {});
    }

    void open_disk(block::ReadOnly ro, BlkOptions const& options)
    {
        m_disk.reset();
        auto disk = block::DiskImage::open(m_file.path(), ro);
        ASSERT_TRUE(disk) << disk.error().message();
        m_disk = std::move(*disk);
        m_config = BlkConfig::for_disk(*m_disk, options);
    }

    /// The driver side: descriptors 0..n-1 for `bufs`, published, popped; then the device runs the request.
    /// \return the used length process_request() gave back.
    uint32_t submit(std::vector<Buf> const& bufs)
    {
        for (size_t i = 0; i < bufs.size(); ++i) {
            VirtqDesc d;
            d.addr.set(bufs[i].addr);
            d.len.set(bufs[i].len);
            bool last = i + 1 == bufs.size();
            d.flags.set(static_cast<uint16_t>((last ? 0 : VIRTQ_DESC_F_NEXT) | (bufs[i].write ? VIRTQ_DESC_F_WRITE : 0)));
            d.next.set(static_cast<uint16_t>(i + 1));
            EXPECT_TRUE(m_mem.write_obj(GuestAddr(DESC + 16 * i), d));
        }
        put16(AVAIL + virtq_avail_entry_offset(m_avail_idx % QSIZE), 0);
        ++m_avail_idx;
        put16(AVAIL + VIRTQ_AVAIL_IDX_OFFSET, m_avail_idx);
        auto r = m_queue.pop();
        EXPECT_TRUE(r.is_ok());
        if (!r.is_ok())
            return UINT32_MAX;
        *host(STATUS) = 0xaa; // so a test sees whether the device wrote the status
        uint32_t len = process_request(r.chain(), *m_disk, m_config, m_stats);
        m_queue.add_used(r.head(), len);
        return len;
    }

    void header(uint32_t type, uint64_t sector)
    {
        put_le32(host(HDR), type);
        put_le32(host(HDR + 4), 0);
        put_le64(host(HDR + 8), sector);
    }
    void segment(size_t i, uint64_t sector, uint32_t num_sectors, uint32_t flags)
    {
        put_le64(host(SEGS + 16 * i), sector);
        put_le32(host(SEGS + 16 * i + 8), num_sectors);
        put_le32(host(SEGS + 16 * i + 12), flags);
    }
    void put16(uint64_t at, uint16_t v) { put_le16(host(at), v); }
    uint8_t* host(uint64_t gpa) { return m_buf.data() + gpa; }
    uint8_t status_byte() { return *host(STATUS); }
    std::vector<uint8_t> guest(uint64_t gpa, size_t len) { return { host(gpa), host(gpa) + len }; }
    void fill_guest(uint64_t gpa, std::vector<uint8_t> const& v) { std::copy(v.begin(), v.end(), host(gpa)); }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    Queue m_queue;
    uint16_t m_avail_idx { 0 };
    TempImage m_file;
    std::unique_ptr<block::DiskImage> m_disk;
    BlkConfig m_config;
    BlkStats m_stats;
};

} // namespace

TEST_F(VirtioBlkRequestTest, WriteFlushReadBack)
{
    std::vector<uint8_t> data(8192);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 31 + 3);
    fill_guest(DATA, std::vector<uint8_t>(data.begin(), data.begin() + 3072));
    fill_guest(DATA + 0x4000, std::vector<uint8_t>(data.begin() + 3072, data.end()));

    // OUT: header, data in two buffers (not sector-sized on their own), status.
    header(VIRTIO_BLK_T_OUT, 10);
    EXPECT_EQ(submit({ hdr(), { DATA, 3072, false }, { DATA + 0x4000, 5120, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);

    header(VIRTIO_BLK_T_FLUSH, 0);
    EXPECT_EQ(submit({ hdr(), status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);

    EXPECT_EQ(m_file.read(10 * 512, data.size()), data);
    EXPECT_EQ(m_file.read(9 * 512, 512), pattern(9 * 512, 512));
    EXPECT_EQ(m_file.read(10 * 512 + data.size(), 512), pattern(10 * 512 + data.size(), 512));

    // IN into three buffers elsewhere; the used length counts the data and the status byte.
    std::fill(m_buf.begin() + DATA, m_buf.begin() + DATA + 0x8000, uint8_t { 0 });
    header(VIRTIO_BLK_T_IN, 10);
    EXPECT_EQ(submit({ hdr(), { DATA + 0x8000, 512, true }, { DATA + 0xA000, 4096, true },
                  { DATA + 0xC000, 3584, true }, status() }),
        8193u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    auto back = guest(DATA + 0x8000, 512);
    auto b2 = guest(DATA + 0xA000, 4096);
    auto b3 = guest(DATA + 0xC000, 3584);
    back.insert(back.end(), b2.begin(), b2.end());
    back.insert(back.end(), b3.begin(), b3.end());
    EXPECT_EQ(back, data);

    EXPECT_EQ(m_stats.writes, 1u);
    EXPECT_EQ(m_stats.flushes, 1u);
    EXPECT_EQ(m_stats.reads, 1u);
    EXPECT_EQ(m_stats.bytes_written, 8192u);
    EXPECT_EQ(m_stats.bytes_read, 8192u);
    EXPECT_EQ(m_stats.status_ok, 3u);
    EXPECT_EQ(m_stats.status_ioerr, 0u);
}

TEST_F(VirtioBlkRequestTest, StatusByteSharesTheLastDataBuffer)
{
    // One writable buffer of 513 bytes: 512 of data, then the status.
    header(VIRTIO_BLK_T_IN, CAPACITY - 1);
    EXPECT_EQ(submit({ hdr(), { DATA, 513, true } }), 513u);
    EXPECT_EQ(*host(DATA + 512), VIRTIO_BLK_S_OK);
    EXPECT_EQ(guest(DATA, 512), pattern(IMAGE_SIZE - 512, 512));

    // Header and data in one readable buffer: OUT of the last sector.
    header(VIRTIO_BLK_T_OUT, CAPACITY - 1);
    std::fill(host(HDR + 16), host(HDR + 16 + 512), uint8_t { 0x42 });
    EXPECT_EQ(submit({ hdr(16 + 512), status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    EXPECT_EQ(m_file.read(IMAGE_SIZE - 512, 512), std::vector<uint8_t>(512, 0x42));
}

TEST_F(VirtioBlkRequestTest, GetIdReturnsThePaddedSerial)
{
    BlkOptions options;
    options.serial = "hako-disk-1";
    open_disk(block::ReadOnly::No, options);
    std::fill(host(DATA), host(DATA + 32), uint8_t { 0xff });
    header(VIRTIO_BLK_T_GET_ID, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 20, true }, status() }), 21u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    std::vector<uint8_t> expected(20, 0);
    std::memcpy(expected.data(), "hako-disk-1", 11);
    EXPECT_EQ(guest(DATA, 20), expected);
    EXPECT_EQ(*host(DATA + 20), 0xff); // nothing past the buffer

    // A long serial is cut to 20 bytes, without a NUL.
    options.serial = "0123456789abcdefghijKLMN";
    open_disk(block::ReadOnly::No, options);
    EXPECT_EQ(submit({ hdr(), { DATA, 20, true }, status() }), 21u);
    EXPECT_EQ(std::string(host(DATA), host(DATA + 20)), "0123456789abcdefghij");

    // A buffer shorter than 20 bytes is refused.
    EXPECT_EQ(submit({ hdr(), { DATA, 8, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.get_ids, 2u);
}

TEST_F(VirtioBlkRequestTest, DiscardAndWriteZeroes)
{
    ASSERT_TRUE(m_config.discard);
    ASSERT_TRUE(m_config.write_zeroes);

    // DISCARD two ranges in one request.
    header(VIRTIO_BLK_T_DISCARD, 0);
    segment(0, 64, 64, 0);
    segment(1, 512, 8, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 32, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    EXPECT_EQ(m_stats.discards, 1u);
    if (m_stats.discards_ignored == 0) {
        EXPECT_TRUE(all_zero(m_file.read(64 * 512, 64 * 512)));
        EXPECT_TRUE(all_zero(m_file.read(512 * 512, 8 * 512)));
    }
    EXPECT_EQ(m_file.read(63 * 512, 512), pattern(63 * 512, 512));
    EXPECT_EQ(m_file.read(128 * 512, 512), pattern(128 * 512, 512));

    // WRITE_ZEROES, with and without unmap: the sectors read back as zeros either way.
    header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
    segment(0, 1000, 17, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    segment(0, CAPACITY - 3, 3, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    EXPECT_TRUE(all_zero(m_file.read(1000 * 512, 17 * 512)));
    EXPECT_TRUE(all_zero(m_file.read(IMAGE_SIZE - 3 * 512, 3 * 512)));
    EXPECT_EQ(m_file.read(999 * 512, 512), pattern(999 * 512, 512));
    EXPECT_EQ(m_file.read(1017 * 512, 512), pattern(1017 * 512, 512));
    EXPECT_EQ(m_stats.write_zeroes, 2u);

    // Read back through the device too.
    header(VIRTIO_BLK_T_IN, 1000);
    std::fill(host(DATA), host(DATA + 17 * 512), uint8_t { 0x77 });
    EXPECT_EQ(submit({ hdr(), { DATA, 17 * 512, true }, status() }), 17u * 512 + 1);
    EXPECT_TRUE(all_zero(guest(DATA, 17 * 512)));
    EXPECT_EQ(m_file.file_size(), IMAGE_SIZE);
}

TEST_F(VirtioBlkRequestTest, BadDiscardAndWriteZeroesSegmentsTouchNothing)
{
    auto const before = m_file.read(0, IMAGE_SIZE);

    // Unknown flag: UNSUPP.
    header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
    segment(0, 8, 8, 2);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_UNSUPP);
    EXPECT_EQ(m_stats.error_count(RequestError::UnsupportedFlags), 1u);

    // UNMAP on a discard: UNSUPP.
    header(VIRTIO_BLK_T_DISCARD, 0);
    segment(0, 8, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_UNSUPP);

    // A good segment followed by one past the end: nothing is done at all.
    segment(0, 8, 8, 0);
    segment(1, CAPACITY - 1, 2, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 32, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::OutOfRange), 1u);

    // Sector + count overflowing 64 bits.
    segment(0, UINT64_MAX - 1, 4, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);

    // More segments than max_write_zeroes_seg (1).
    header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
    segment(0, 8, 8, 0);
    segment(1, 16, 8, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 32, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::TooManySegments), 1u);

    // More sectors in one segment than max_write_zeroes_sectors.
    segment(0, 0, m_config.max_write_zeroes_sectors + 1, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);

    // A segment array that is not a multiple of 16 bytes, or empty.
    EXPECT_EQ(submit({ hdr(), { SEGS, 15, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(submit({ hdr(), status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);

    EXPECT_EQ(m_stats.status_ok, 0u);
    EXPECT_EQ(m_file.read(0, IMAGE_SIZE), before);
}

TEST_F(VirtioBlkRequestTest, ReadOnlyDiskRefusesWrites)
{
    open_disk(block::ReadOnly::Yes, {});
    EXPECT_TRUE(m_config.read_only);
    EXPECT_FALSE(m_config.discard);
    EXPECT_FALSE(m_config.write_zeroes);

    header(VIRTIO_BLK_T_OUT, 0);
    std::fill(host(DATA), host(DATA + 512), uint8_t { 0x11 });
    EXPECT_EQ(submit({ hdr(), { DATA, 512, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::ReadOnly), 1u);

    // DISCARD was not offered: UNSUPP.
    header(VIRTIO_BLK_T_DISCARD, 0);
    segment(0, 0, 8, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_UNSUPP);

    // Read-only by option on a read-write image, with WRITE_ZEROES forced on in the config: still refused.
    BlkOptions ro;
    ro.read_only = true;
    open_disk(block::ReadOnly::No, ro);
    m_config.write_zeroes = true;
    header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
    EXPECT_EQ(submit({ hdr(), { SEGS, 16, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_OUT, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 512, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);

    // Reads and flushes still work.
    header(VIRTIO_BLK_T_IN, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 512, true }, status() }), 513u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    header(VIRTIO_BLK_T_FLUSH, 0);
    EXPECT_EQ(submit({ hdr(), status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    EXPECT_EQ(m_file.read(0, 512), pattern(0, 512));
}

TEST_F(VirtioBlkRequestTest, SectorsPastTheEnd)
{
    auto const before = m_file.read(0, IMAGE_SIZE);
    header(VIRTIO_BLK_T_IN, CAPACITY - 1);
    EXPECT_EQ(submit({ hdr(), { DATA, 1024, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_OUT, CAPACITY);
    EXPECT_EQ(submit({ hdr(), { DATA, 512, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_OUT, UINT64_MAX); // sector * 512 overflows
    EXPECT_EQ(submit({ hdr(), { DATA, 512, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_OUT, (UINT64_MAX / 512) - 1);
    EXPECT_EQ(submit({ hdr(), { DATA, 1024, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::OutOfRange), 4u);
    EXPECT_EQ(m_file.read(0, IMAGE_SIZE), before);
    EXPECT_EQ(m_file.file_size(), IMAGE_SIZE);
}

TEST_F(VirtioBlkRequestTest, MalformedChains)
{
    auto const before = m_file.read(0, IMAGE_SIZE);

    // Header too short: IOERR in the status byte.
    header(VIRTIO_BLK_T_IN, 0);
    EXPECT_EQ(submit({ hdr(8), { DATA, 512, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::HeaderTooShort), 1u);

    // No device-writable byte at all: nothing can be answered; used length 0.
    header(VIRTIO_BLK_T_OUT, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 512, false } }), 0u);
    EXPECT_EQ(status_byte(), 0xaa);
    EXPECT_EQ(m_stats.unanswerable, 1u);

    // Data not a multiple of 512.
    EXPECT_EQ(submit({ hdr(), { DATA, 100, false }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_IN, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 700, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::BadDataLength), 2u);

    // Data in the wrong direction: readable data on an IN, writable data on an OUT or a FLUSH.
    EXPECT_EQ(submit({ hdr(), { DATA, 512, false }, { DATA + 512, 512, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_OUT, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 512, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    header(VIRTIO_BLK_T_FLUSH, 0);
    EXPECT_EQ(submit({ hdr(), { DATA, 512, true }, status() }), 1u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_stats.error_count(RequestError::WrongDirection), 3u);

    // Unknown types, and ones this device does not do: UNSUPP.
    for (uint32_t type : { 2u, VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE, 0x80000001u }) {
        header(type, 0);
        EXPECT_EQ(submit({ hdr(), { DATA, 512, true }, status() }), 1u);
        EXPECT_EQ(status_byte(), VIRTIO_BLK_S_UNSUPP);
    }
    EXPECT_EQ(m_stats.error_count(RequestError::UnsupportedType), 4u);
    EXPECT_EQ(m_stats.status_unsupp, 4u);
    EXPECT_EQ(m_stats.status_ok, 0u);
    EXPECT_EQ(m_stats.status_ioerr, 6u);
    EXPECT_EQ(m_file.read(0, IMAGE_SIZE), before);
}

TEST_F(VirtioBlkRequestTest, HeaderIsReadAcrossBuffers)
{
    // The header split 3 + 13 over two buffers, as a driver may do.
    header(VIRTIO_BLK_T_IN, 5);
    std::memmove(host(HDR + 0x100), host(HDR + 3), 13);
    EXPECT_EQ(submit({ { HDR, 3, false }, { HDR + 0x100, 13, false }, { DATA, 512, true }, status() }), 513u);
    EXPECT_EQ(status_byte(), VIRTIO_BLK_S_OK);
    EXPECT_EQ(guest(DATA, 512), pattern(5 * 512, 512));
}

TEST(VirtioBlkConfigTest, ConfigSpaceLayoutAndFeatures)
{
    TempImage file(IMAGE_SIZE + 300);
    auto disk = std::move(block::DiskImage::open(file.path(), block::ReadOnly::No).value());
    BlkOptions options;
    options.seg_max = 254;
    auto c = BlkConfig::for_disk(*disk, options);
    EXPECT_EQ(c.capacity, CAPACITY);

    uint64_t const f = c.device_features();
    auto has = [&](unsigned b) { return (f >> b) & 1; };
    EXPECT_TRUE(has(VIRTIO_BLK_F_SEG_MAX));
    EXPECT_TRUE(has(VIRTIO_BLK_F_BLK_SIZE));
    EXPECT_TRUE(has(VIRTIO_BLK_F_FLUSH));
    EXPECT_TRUE(has(VIRTIO_BLK_F_DISCARD));
    EXPECT_TRUE(has(VIRTIO_BLK_F_WRITE_ZEROES));
    EXPECT_FALSE(has(VIRTIO_BLK_F_RO));
    EXPECT_FALSE(has(VIRTIO_BLK_F_SIZE_MAX));
    EXPECT_FALSE(has(VIRTIO_BLK_F_MQ));
    EXPECT_FALSE(has(VIRTIO_BLK_F_CONFIG_WCE));
    EXPECT_EQ(f >> 32, 0u); // transport bits are the transport's

    std::array<uint8_t, 8> b8 {};
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_CAPACITY, b8));
    EXPECT_EQ(get_le64(b8.data()), CAPACITY);
    std::array<uint8_t, 4> b4 {};
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_SEG_MAX, b4));
    EXPECT_EQ(get_le32(b4.data()), 254u);
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_BLK_SIZE, b4));
    EXPECT_EQ(get_le32(b4.data()), 512u);
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, b4));
    EXPECT_EQ(get_le32(b4.data()), c.max_discard_sectors);
    EXPECT_GT(c.max_discard_sectors, 0u);
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_MAX_DISCARD_SEG, b4));
    EXPECT_EQ(get_le32(b4.data()), c.max_discard_seg);
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, b4));
    EXPECT_EQ(get_le32(b4.data()), c.max_write_zeroes_seg);
    std::array<uint8_t, 2> b2 {};
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_NUM_QUEUES, b2));
    EXPECT_EQ(get_le16(b2.data()), 1u);
    std::array<uint8_t, 1> b1 {};
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP, b1));
    EXPECT_EQ(b1[0], 1u);
    // A byte in the middle of the 64-bit capacity: byte-wise reads see the same layout.
    ASSERT_TRUE(c.read_config(VIRTIO_BLK_CFG_CAPACITY + 1, b1));
    EXPECT_EQ(b1[0], static_cast<uint8_t>(CAPACITY >> 8));

    // Outside the config space: all-ones, and false.
    EXPECT_FALSE(c.read_config(VIRTIO_BLK_CONFIG_SIZE - 2, b4));
    EXPECT_EQ(get_le32(b4.data()), 0xffffffffu);
    EXPECT_FALSE(c.read_config(UINT64_MAX - 1, b4));
    EXPECT_TRUE(c.read_config(VIRTIO_BLK_CONFIG_SIZE - 4, b4));

    // Read-only: RO, no DISCARD or WRITE_ZEROES, their limits zero.
    BlkOptions ro;
    ro.read_only = true;
    ro.num_queues = 4;
    auto r = BlkConfig::for_disk(*disk, ro);
    uint64_t const rf = r.device_features();
    EXPECT_TRUE((rf >> VIRTIO_BLK_F_RO) & 1);
    EXPECT_FALSE((rf >> VIRTIO_BLK_F_DISCARD) & 1);
    EXPECT_FALSE((rf >> VIRTIO_BLK_F_WRITE_ZEROES) & 1);
    EXPECT_TRUE((rf >> VIRTIO_BLK_F_MQ) & 1);
    ASSERT_TRUE(r.read_config(VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, b4));
    EXPECT_EQ(get_le32(b4.data()), 0u);
    ASSERT_TRUE(r.read_config(VIRTIO_BLK_CFG_NUM_QUEUES, b2));
    EXPECT_EQ(get_le16(b2.data()), 4u);
}
