// VirtioBalloon driven directly through its Queues and a recording VirtioInterrupt.
#include <gtest/gtest.h>

#include <vector>

#include "base/bytes.h"
#include "devices/virtio/balloon/virtio_balloon.h"

using namespace hako;
using namespace hako::devices::virtio;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr uint64_t RAM_BASE = 0x100000;
constexpr size_t RAM_SIZE = 0x100000; // 1 MiB at 1 MiB: PFNs 0x100..0x1ff
constexpr uint64_t PFN_LIST = RAM_BASE + 0x8000;
constexpr uint64_t STATS_BUF = RAM_BASE + 0x9000;
constexpr uint16_t QSIZE = 8;

struct RecordingInterrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { used.push_back(q); }
    void signal_config_change() override { ++config; }
    void signal_needs_reset() override { ++needs_reset; }
    std::vector<uint16_t> used;
    int config { 0 };
    int needs_reset { 0 };
};

class BalloonTest : public ::testing::Test {
protected:
    BalloonTest()
        : m_ram(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(m_ram) } }).value()))
        , m_balloon(m_mem, 16)
    {
        for (uint16_t i = 0; i < 3; ++i) {
            m_queues.push_back(std::move(Queue::create(m_mem, VirtioBalloon::QUEUE_SIZE).value()));
            Queue& q = m_queues.back();
            EXPECT_TRUE(q.set_size(QSIZE));
            uint64_t const base = RAM_BASE + 0x1000u * i;
            q.set_desc_table(GuestAddr(base));
            q.set_avail_ring(GuestAddr(base + 0x400));
            q.set_used_ring(GuestAddr(base + 0x800));
            EXPECT_TRUE(q.validate());
            q.set_ready(true);
        }
        ActivateContext ctx;
        ctx.features = (uint64_t { 1 } << VIRTIO_F_VERSION_1) | (uint64_t { 1 } << VIRTIO_BALLOON_F_STATS_VQ);
        ctx.queues = m_queues;
        ctx.interrupt = &m_irq;
        EXPECT_TRUE(m_balloon.activate(ctx));
    }

    uint8_t* at(uint64_t gpa) { return m_ram.data() + (gpa - RAM_BASE); }

    /// Makes one single-buffer chain available on queue q.
    void add_buffer(uint16_t qi, uint64_t addr, uint32_t len)
    {
        uint64_t const base = RAM_BASE + 0x1000u * qi;
        uint16_t const idx = m_avail[qi]++;
        uint16_t const desc = idx % QSIZE;
        uint8_t* d = at(base + 16u * desc);
        put_le64(d, addr);
        put_le32(d + 8, len);
        put_le16(d + 12, 0);
        put_le16(at(base + 0x400 + 4 + 2u * (idx % QSIZE)), desc);
        put_le16(at(base + 0x400 + 2), m_avail[qi]);
    }
    uint16_t used_idx(uint16_t qi) { return get_le16(at(RAM_BASE + 0x1000u * qi + 0x800 + 2)); }

    std::vector<uint8_t> m_ram;
    GuestMemory m_mem;
    VirtioBalloon m_balloon;
    std::vector<Queue> m_queues;
    RecordingInterrupt m_irq;
    uint16_t m_avail[3] {};
};

TEST_F(BalloonTest, InflateDiscardsNamedRamPagesAndSkipsOthers)
{
    std::fill(m_ram.begin(), m_ram.end(), 0xee);
    // Queue rings live in the first pages: rebuild them after the fill.
    for (uint16_t i = 0; i < 3; ++i)
        std::fill(at(RAM_BASE + 0x1000u * i), at(RAM_BASE + 0x1000u * i + 0x1000), 0);
    uint32_t const pfns[] = { 0x180, 0x181, 0x50 /* below RAM */, 0xfffff /* far away */, 0x1ff };
    for (size_t i = 0; i < 5; ++i)
        put_le32(at(PFN_LIST + 4 * i), pfns[i]);
    add_buffer(VirtioBalloon::INFLATE_QUEUE, PFN_LIST, 5 * 4);
    m_balloon.queue_notify(VirtioBalloon::INFLATE_QUEUE);
    EXPECT_EQ(used_idx(0), 1);
    auto const s = m_balloon.stats();
    EXPECT_EQ(s.inflated_pages, 3u);
    EXPECT_EQ(s.bad_pfns, 2u);
    EXPECT_EQ(*at(0x180000), 0);  // discarded (from_buffers memory zero-fills)
    EXPECT_EQ(*at(0x181fff), 0);
    EXPECT_EQ(*at(0x1ff000), 0);
    EXPECT_EQ(*at(0x182000), 0xee); // not named: untouched
    EXPECT_EQ(*at(0x17ffff), 0xee);
}

TEST_F(BalloonTest, ConfigTargetActualAndChangeNotification)
{
    uint8_t cfg[8] {};
    m_balloon.read_config(0, cfg);
    EXPECT_EQ(get_le32(cfg), 16u);
    EXPECT_EQ(get_le32(cfg + 4), 0u);
    uint8_t actual[4];
    put_le32(actual, 12);
    m_balloon.write_config(4, actual);
    uint8_t num[4] = { 1, 2, 3, 4 };
    m_balloon.write_config(0, num); // num_pages is the device's: ignored
    EXPECT_EQ(m_balloon.actual_pages(), 12u);
    EXPECT_EQ(m_balloon.target_pages(), 16u);
    m_balloon.set_target(32);
    EXPECT_EQ(m_irq.config, 1);
    m_balloon.set_target(32); // unchanged: no notification
    EXPECT_EQ(m_irq.config, 1);
}

TEST_F(BalloonTest, StatsBufferIsHeldUntilTheHostAsks)
{
    uint8_t* p = at(STATS_BUF);
    put_le16(p, VIRTIO_BALLOON_S_MEMTOT);
    put_le64(p + 2, 64ull << 20);
    put_le16(p + 10, VIRTIO_BALLOON_S_MEMFREE);
    put_le64(p + 12, 10ull << 20);
    add_buffer(VirtioBalloon::STATS_QUEUE, STATS_BUF, 20);
    m_balloon.queue_notify(VirtioBalloon::STATS_QUEUE);
    EXPECT_EQ(used_idx(2), 0); // held
    auto stats = m_balloon.guest_stats();
    EXPECT_EQ(stats[VIRTIO_BALLOON_S_MEMTOT], 64ull << 20);
    EXPECT_EQ(stats[VIRTIO_BALLOON_S_MEMFREE], 10ull << 20);
    EXPECT_TRUE(m_balloon.request_stats());
    EXPECT_EQ(used_idx(2), 1); // given back: the guest refills it
    EXPECT_FALSE(m_balloon.request_stats()); // nothing held now
    EXPECT_EQ(balloon_stat_name(VIRTIO_BALLOON_S_MEMFREE), "free-memory");
    EXPECT_EQ(balloon_stat_name(99), "tag-99");
}

TEST_F(BalloonTest, ResetDropsTheHeldStatsBufferAndActual)
{
    add_buffer(VirtioBalloon::STATS_QUEUE, STATS_BUF, 10);
    m_balloon.queue_notify(VirtioBalloon::STATS_QUEUE);
    uint8_t actual[4];
    put_le32(actual, 5);
    m_balloon.write_config(4, actual);
    m_balloon.reset();
    EXPECT_FALSE(m_balloon.request_stats());
    EXPECT_EQ(m_balloon.actual_pages(), 0u);
    m_balloon.queue_notify(VirtioBalloon::INFLATE_QUEUE); // inactive: nothing happens
    EXPECT_EQ(used_idx(0), 0);
}

} // namespace
