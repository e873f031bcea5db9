// VirtioRng driven directly through a Queue and a recording VirtioInterrupt (the transport is covered by
// virtio_pci_test.cpp).
#include <gtest/gtest.h>

#include <vector>

#include "devices/virtio/rng.h"

using namespace hako;
using namespace hako::devices::virtio;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000;
constexpr uint64_t DESC = 0x1000;
constexpr uint64_t AVAIL = 0x3000;
constexpr uint64_t USED = 0x4000;
constexpr uint64_t DATA = 0x10000;
constexpr uint16_t QSIZE = 8;

struct RecordingInterrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { used.push_back(q); }
    void signal_config_change() override { ++config; }
    void signal_needs_reset() override { ++needs_reset; }
    std::vector<uint16_t> used;
    int config { 0 };
    int needs_reset { 0 };
};

class RngTest : public ::testing::Test {
protected:
    RngTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_rng([this](std::span<uint8_t> out) { return source(out); })
    {
        m_queues.push_back(std::move(Queue::create(m_mem, VirtioRng::QUEUE_SIZE).value()));
        Queue& q = m_queues[0];
        EXPECT_TRUE(q.set_size(QSIZE));
        q.set_desc_table(GuestAddr(DESC));
        q.set_avail_ring(GuestAddr(AVAIL));
        q.set_used_ring(GuestAddr(USED));
        EXPECT_TRUE(q.validate());
        q.set_ready(true);
    }

    size_t source(std::span<uint8_t> out)
    {
        size_t const n = std::min(out.size(), m_source_limit);
        for (size_t i = 0; i < n; ++i)
            out[i] = 0xa5;
        ++m_source_calls;
        return n;
    }
    void activate()
    {
        ActivateContext ctx;
        ctx.features = uint64_t { 1 } << VIRTIO_F_VERSION_1;
        ctx.queues = m_queues;
        ctx.interrupt = &m_irq;
        ASSERT_TRUE(m_rng.activate(ctx));
    }
    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags)
    {
        VirtqDesc d;
        d.addr.set(addr);
        d.len.set(len);
        d.flags.set(flags);
        ASSERT_TRUE(m_mem.write_obj(GuestAddr(DESC + 16u * i), d));
    }
    void publish(uint16_t head)
    {
        put_le16(&m_buf[AVAIL + virtq_avail_entry_offset(m_avail_idx % QSIZE)], head);
        ++m_avail_idx;
        put_le16(&m_buf[AVAIL + VIRTQ_AVAIL_IDX_OFFSET], m_avail_idx);
    }
    uint16_t used_idx() const { return get_le16(&m_buf[USED + VIRTQ_USED_IDX_OFFSET]); }
    uint32_t used_len(uint16_t i) const { return get_le32(&m_buf[USED + virtq_used_elem_offset(i % QSIZE) + 4]); }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::vector<Queue> m_queues;
    RecordingInterrupt m_irq;
    size_t m_source_limit { SIZE_MAX };
    unsigned m_source_calls { 0 };
    VirtioRng m_rng;
    uint16_t m_avail_idx { 0 };
};

} // namespace

TEST_F(RngTest, Identity)
{
    EXPECT_EQ(m_rng.device_type(), VIRTIO_ID_RNG);
    EXPECT_EQ(m_rng.num_queues(), 1);
    EXPECT_EQ(m_rng.device_features(), 0u);
    EXPECT_EQ(m_rng.config_size(), 0u);
}

TEST_F(RngTest, NothingHappensBeforeActivateOrAfterReset)
{
    set_desc(0, DATA, 16, VIRTQ_DESC_F_WRITE);
    publish(0);
    m_rng.queue_notify(0);
    EXPECT_EQ(used_idx(), 0u);
    activate();
    m_rng.reset();
    m_rng.queue_notify(0);
    EXPECT_EQ(used_idx(), 0u);
    EXPECT_EQ(m_source_calls, 0u);
    activate();
    m_rng.queue_notify(1); // no such queue
    EXPECT_EQ(used_idx(), 0u);
    m_rng.queue_notify(0);
    EXPECT_EQ(used_idx(), 1u);
}

TEST_F(RngTest, ServesEveryPendingChainAndInterruptsOnce)
{
    activate();
    for (uint16_t i = 0; i < 3; ++i) {
        set_desc(i, DATA + 0x100u * i, 32, VIRTQ_DESC_F_WRITE);
        publish(i);
    }
    m_rng.queue_notify(0);
    ASSERT_EQ(used_idx(), 3u);
    for (uint16_t i = 0; i < 3; ++i) {
        EXPECT_EQ(used_len(i), 32u);
        EXPECT_EQ(m_buf[DATA + 0x100u * i + 31], 0xa5);
    }
    EXPECT_EQ(m_irq.used, std::vector<uint16_t> { 0 });
    EXPECT_EQ(m_rng.stats().requests, 3u);
    EXPECT_EQ(m_rng.stats().bytes, 96u);
}

TEST_F(RngTest, ShortEntropyIsReportedAsWritten)
{
    activate();
    m_source_limit = 5;
    set_desc(0, DATA, 32, VIRTQ_DESC_F_WRITE);
    publish(0);
    m_rng.queue_notify(0);
    ASSERT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_len(0), 5u);
    EXPECT_EQ(m_buf[DATA + 4], 0xa5);
    EXPECT_EQ(m_buf[DATA + 5], 0u);
    EXPECT_EQ(m_rng.stats().short_entropy, 1u);
}

TEST_F(RngTest, BrokenQueueAsksForReset)
{
    activate();
    put_le16(&m_buf[AVAIL + VIRTQ_AVAIL_IDX_OFFSET], 200);
    m_rng.queue_notify(0);
    EXPECT_EQ(m_irq.needs_reset, 1);
    EXPECT_TRUE(m_irq.used.empty());
    EXPECT_EQ(m_rng.stats().queue_broken, 1u);
    EXPECT_EQ(m_source_calls, 0u);
}

TEST_F(RngTest, WorkPerNotifyIsBounded)
{
    activate();
    // A chain whose buffer keeps the avail index in range but whose ring re-publishes forever: emulate a driver
    // that adds buffers while the device works by publishing QSIZE, then after the notify, QSIZE more.
    for (uint16_t i = 0; i < QSIZE; ++i) {
        set_desc(i, DATA + 0x100u * i, 8, VIRTQ_DESC_F_WRITE);
        publish(i);
    }
    m_rng.queue_notify(0);
    EXPECT_EQ(used_idx(), QSIZE);
    EXPECT_LE(m_source_calls, QSIZE);
    EXPECT_EQ(m_rng.stats().requests, QSIZE);
}
