// VirtioNet driven through two Queues over a heap buffer, a recording VirtioInterrupt and a fake net::Backend
// (the transport is covered by virtio_pci_test.cpp), and once end to end with the real SlirpBackend.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "devices/virtio/net/virtio_net.h"
#include "net/slirp_backend.h"
#include "../../net/test_frames.h"

using namespace hako;
using namespace hako::devices::virtio;
using namespace hako::devices::virtio::net;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x60000;
constexpr uint64_t DESC[3] = { 0x1000, 0x2000, 0x6000 };
constexpr uint64_t AVAIL[3] = { 0x3000, 0x3800, 0x7000 };
constexpr uint64_t USED[3] = { 0x4000, 0x5000, 0x7800 };
constexpr uint64_t DATA = 0x10000;
constexpr uint16_t QSIZE = 8;
constexpr hako::net::MacAddress MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct RecordingInterrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { used.push_back(q); }
    void signal_config_change() override { ++config; }
    void signal_needs_reset() override { ++needs_reset; }
    void requeue_notify(uint16_t q) override { requeued.push_back(q); }
    std::vector<uint16_t> used;
    std::vector<uint16_t> requeued;
    int config { 0 };
    int needs_reset { 0 };
};

/// Records sent frames; delivers frames on the test thread (the "delivery thread" here).
class FakeBackend final : public hako::net::Backend {
public:
    void send(std::span<uint8_t const> frame) override { sent.emplace_back(frame.begin(), frame.end()); }
    void send(hako::net::VnetHeader const& header, std::span<uint8_t const> frame) override
    {
        sent.emplace_back(frame.begin(), frame.end());
        sent_headers.push_back(header);
    }
    bool supports_offloads() const override { return offloads; }
    bool tx_full() const override { return full; }
    void make_room() { full = false; notify_tx_ready(); }
    void set_receive_offloads(hako::net::Offloads o) override { rx_offloads = o; }
    void rx_buffers_available() override { ++retry_requests; }
    void inject(std::span<uint8_t const> frame) { deliver(frame); }
    void inject(hako::net::VnetHeader const& header, std::span<uint8_t const> frame) { deliver(header, frame); }
    void flush() { flush_pending(); }
    std::vector<std::vector<uint8_t>> sent;
    std::vector<hako::net::VnetHeader> sent_headers; // for frames sent with send(header, frame)
    bool offloads { false };
    bool full { false };
    hako::net::Offloads rx_offloads;
    int retry_requests { 0 };
};

std::vector<uint8_t> make_frame(size_t len, uint8_t seed)
{
    std::vector<uint8_t> f(len);
    for (size_t i = 0; i < len; ++i)
        f[i] = static_cast<uint8_t>(seed + i * 7);
    return f;
}

class VirtioNetTest : public ::testing::Test {
protected:
    VirtioNetTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_backend(std::make_shared<FakeBackend>())
        , m_net(m_backend, MAC)
    {
        for (int i = 0; i < 3; ++i) {
            m_queues.push_back(std::move(Queue::create(m_mem, VirtioNet::QUEUE_SIZE).value()));
            Queue& q = m_queues.back();
            EXPECT_TRUE(q.set_size(QSIZE));
            q.set_desc_table(GuestAddr(DESC[i]));
            q.set_avail_ring(GuestAddr(AVAIL[i]));
            q.set_used_ring(GuestAddr(USED[i]));
            EXPECT_TRUE(q.validate());
            q.set_ready(true);
        }
    }

    void activate(bool mergeable, bool version_1 = true, uint64_t extra_features = 0)
    {
        ActivateContext ctx;
        ctx.features = (version_1 ? uint64_t { 1 } << VIRTIO_F_VERSION_1 : 0) | uint64_t { 1 } << VIRTIO_NET_F_MAC
            | extra_features;
        if (mergeable)
            ctx.features |= uint64_t { 1 } << VIRTIO_NET_F_MRG_RXBUF;
        ctx.queues = m_queues;
        ctx.interrupt = &m_irq;
        ASSERT_TRUE(m_net.activate(ctx));
    }
    void set_desc(int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0)
    {
        VirtqDesc d;
        d.addr.set(addr);
        d.len.set(len);
        d.flags.set(flags);
        d.next.set(next);
        ASSERT_TRUE(m_mem.write_obj(GuestAddr(DESC[q] + 16u * i), d));
    }
    void publish(int q, uint16_t head)
    {
        put_le16(&m_buf[AVAIL[q] + virtq_avail_entry_offset(m_avail_idx[q] % QSIZE)], head);
        ++m_avail_idx[q];
        put_le16(&m_buf[AVAIL[q] + VIRTQ_AVAIL_IDX_OFFSET], m_avail_idx[q]);
    }
    uint16_t used_idx(int q) const { return get_le16(&m_buf[USED[q] + VIRTQ_USED_IDX_OFFSET]); }
    uint32_t used_id(int q, uint16_t i) const { return get_le32(&m_buf[USED[q] + virtq_used_elem_offset(i % QSIZE)]); }
    uint32_t used_len(int q, uint16_t i) const
    {
        return get_le32(&m_buf[USED[q] + virtq_used_elem_offset(i % QSIZE) + 4]);
    }
    /// Puts `hdr` (12 bytes, zero) then `frame` at `addr`.
    void put_tx(uint64_t addr, std::vector<uint8_t> const& frame)
    {
        std::fill(&m_buf[addr], &m_buf[addr + VIRTIO_NET_HDR_LEN], uint8_t { 0 });
        std::copy(frame.begin(), frame.end(), &m_buf[addr + VIRTIO_NET_HDR_LEN]);
    }
    /// Posts `count` one-descriptor receive buffers of `len` bytes each, at DATA + 0x2000 * i.
    void post_rx(uint16_t count, uint32_t len, uint16_t first_desc = 0)
    {
        for (uint16_t i = 0; i < count; ++i) {
            uint16_t d = static_cast<uint16_t>(first_desc + i);
            set_desc(RX_QUEUE, d, DATA + 0x2000u * d, len, VIRTQ_DESC_F_WRITE);
            publish(RX_QUEUE, d);
        }
    }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::vector<Queue> m_queues;
    RecordingInterrupt m_irq;
    std::shared_ptr<FakeBackend> m_backend;
    VirtioNet m_net;
    uint16_t m_avail_idx[3] { 0, 0, 0 };
};

} // namespace

TEST_F(VirtioNetTest, IdentityAndConfigSpace)
{
    EXPECT_EQ(m_net.device_type(), VIRTIO_ID_NET);
    EXPECT_EQ(m_net.num_queues(), 3);
    uint64_t const f = m_net.device_features();
    EXPECT_TRUE(f >> VIRTIO_NET_F_MAC & 1);
    EXPECT_TRUE(f >> VIRTIO_NET_F_STATUS & 1);
    EXPECT_TRUE(f >> VIRTIO_NET_F_MRG_RXBUF & 1);
    EXPECT_FALSE(f >> VIRTIO_NET_F_CSUM & 1);
    EXPECT_TRUE(f >> VIRTIO_NET_F_CTRL_VQ & 1);
    EXPECT_TRUE(f >> VIRTIO_NET_F_CTRL_RX & 1);
    EXPECT_FALSE(f >> VIRTIO_NET_F_CTRL_GUEST_OFFLOADS & 1) << "only with a backend that has offloads";
    EXPECT_FALSE(f >> VIRTIO_NET_F_MQ & 1);
    EXPECT_TRUE(f >> VIRTIO_NET_F_SPEED_DUPLEX & 1);
    EXPECT_FALSE(f >> VIRTIO_NET_F_MTU & 1);
    ASSERT_EQ(m_net.config_size(), 17u);

    std::array<uint8_t, 17> cfg {};
    m_net.read_config(0, cfg);
    EXPECT_TRUE(std::equal(MAC.begin(), MAC.end(), cfg.begin()));
    EXPECT_EQ(get_le16(&cfg[6]), VIRTIO_NET_S_LINK_UP);
    EXPECT_EQ(get_le16(&cfg[8]), 1u);
    EXPECT_EQ(get_le16(&cfg[10]), 0u) << "mtu: F_MTU is not offered";
    EXPECT_EQ(get_le32(&cfg[12]), VIRTIO_NET_SPEED_UNKNOWN);
    EXPECT_EQ(cfg[16], VIRTIO_NET_DUPLEX_UNKNOWN);
    // Byte-wise and unaligned reads see the same bytes.
    std::array<uint8_t, 2> two {};
    m_net.read_config(5, two);
    EXPECT_EQ(two[0], 0x56);
    EXPECT_EQ(two[1], VIRTIO_NET_S_LINK_UP);

    // Writes change nothing.
    std::array<uint8_t, 6> junk { 1, 2, 3, 4, 5, 6 };
    m_net.write_config(0, junk);
    m_net.read_config(0, cfg);
    EXPECT_TRUE(std::equal(MAC.begin(), MAC.end(), cfg.begin()));
    EXPECT_EQ(m_net.stats().config_writes_ignored, 1u);
}

TEST_F(VirtioNetTest, TransmitsAFrameWithTheHeaderInItsOwnDescriptor)
{
    activate(false);
    auto frame = make_frame(60, 1);
    // Header alone in descriptor 0, the frame split over descriptors 1 and 2.
    std::fill(&m_buf[DATA], &m_buf[DATA + 12], uint8_t { 0xee }); // header contents are ignored
    std::copy(frame.begin(), frame.begin() + 20, &m_buf[DATA + 0x100]);
    std::copy(frame.begin() + 20, frame.end(), &m_buf[DATA + 0x200]);
    set_desc(TX_QUEUE, 0, DATA, 12, VIRTQ_DESC_F_NEXT, 1);
    set_desc(TX_QUEUE, 1, DATA + 0x100, 20, VIRTQ_DESC_F_NEXT, 2);
    set_desc(TX_QUEUE, 2, DATA + 0x200, 40, 0);
    publish(TX_QUEUE, 0);
    m_net.queue_notify(TX_QUEUE);

    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0], frame);
    ASSERT_EQ(used_idx(TX_QUEUE), 1u);
    EXPECT_EQ(used_id(TX_QUEUE, 0), 0u);
    EXPECT_EQ(used_len(TX_QUEUE, 0), 0u);
    EXPECT_EQ(m_irq.used, std::vector<uint16_t> { TX_QUEUE });
    EXPECT_EQ(m_net.stats().tx_frames, 1u);
    EXPECT_EQ(m_net.stats().tx_bytes, 60u);
}

TEST_F(VirtioNetTest, TransmitsFramesWhoseHeaderSharesADescriptor)
{
    activate(true);
    auto a = make_frame(1514, 3);
    auto b = make_frame(14, 9);
    put_tx(DATA, a);
    put_tx(DATA + 0x1000, b);
    // Frame a: header and the first 100 bytes in one descriptor (the split falls inside the frame), then the rest.
    set_desc(TX_QUEUE, 0, DATA, 112, VIRTQ_DESC_F_NEXT, 1);
    set_desc(TX_QUEUE, 1, DATA + 112, 1514 - 100, 0);
    set_desc(TX_QUEUE, 2, DATA + 0x1000, 12 + 14, 0);
    publish(TX_QUEUE, 0);
    publish(TX_QUEUE, 2);
    m_net.queue_notify(TX_QUEUE);

    ASSERT_EQ(m_backend->sent.size(), 2u);
    EXPECT_EQ(m_backend->sent[0], a);
    EXPECT_EQ(m_backend->sent[1], b);
    EXPECT_EQ(used_idx(TX_QUEUE), 2u);
    EXPECT_EQ(m_irq.used.size(), 1u); // one interrupt for the batch
}

TEST_F(VirtioNetTest, DropsUndersizedAndOversizedTransmitFrames)
{
    activate(false);
    // 12 + 13 bytes: one byte short of an ethernet header.
    set_desc(TX_QUEUE, 0, DATA, 12 + 13, 0);
    // 12 + 65551 bytes: one byte over the limit, spread over two descriptors.
    set_desc(TX_QUEUE, 1, DATA, 0x8000, VIRTQ_DESC_F_NEXT, 2);
    set_desc(TX_QUEUE, 2, DATA + 0x8000, 12 + 65551 - 0x8000, 0);
    // A header only.
    set_desc(TX_QUEUE, 3, DATA, 12, 0);
    publish(TX_QUEUE, 0);
    publish(TX_QUEUE, 1);
    publish(TX_QUEUE, 3);
    m_net.queue_notify(TX_QUEUE);

    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(used_idx(TX_QUEUE), 3u); // every chain is still given back
    EXPECT_EQ(m_net.stats().tx_dropped_bad, 3u);
    EXPECT_EQ(m_net.stats().tx_frames, 0u);

    // The largest allowed frame goes through.
    set_desc(TX_QUEUE, 4, DATA, 0x8000, VIRTQ_DESC_F_NEXT, 5);
    set_desc(TX_QUEUE, 5, DATA + 0x8000, 12 + 65550 - 0x8000, 0);
    publish(TX_QUEUE, 4);
    m_net.queue_notify(TX_QUEUE);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0].size(), 65550u);
}

TEST_F(VirtioNetTest, BadTransmitChainIsReturnedAndCounted)
{
    activate(false);
    set_desc(TX_QUEUE, 0, RAM_SIZE - 4, 64, 0); // runs off the end of guest memory
    publish(TX_QUEUE, 0);
    m_net.queue_notify(TX_QUEUE);
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(used_idx(TX_QUEUE), 1u);
    EXPECT_EQ(used_len(TX_QUEUE, 0), 0u);
    EXPECT_EQ(m_net.stats().tx_bad_chains, 1u);
}

TEST_F(VirtioNetTest, BrokenTransmitQueueAsksForReset)
{
    activate(false);
    put_le16(&m_buf[AVAIL[TX_QUEUE] + VIRTQ_AVAIL_IDX_OFFSET], 200);
    m_net.queue_notify(TX_QUEUE);
    EXPECT_EQ(m_irq.needs_reset, 1);
    EXPECT_EQ(m_net.stats().queue_broken, 1u);
    EXPECT_TRUE(m_backend->sent.empty());
}

TEST_F(VirtioNetTest, ReceivesIntoASingleBuffer)
{
    activate(false);
    post_rx(1, 1526);
    auto frame = make_frame(98, 5);
    m_backend->inject(frame);

    ASSERT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 12u + 98u);
    uint8_t const* hdr = &m_buf[DATA];
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(hdr[i], 0) << i;
    EXPECT_EQ(get_le16(hdr + 10), 1u); // num_buffers is 1 without MRG_RXBUF
    EXPECT_TRUE(std::equal(frame.begin(), frame.end(), &m_buf[DATA + 12]));
    EXPECT_EQ(m_irq.used, std::vector<uint16_t> { RX_QUEUE });
    EXPECT_EQ(m_net.stats().rx_frames, 1u);
    EXPECT_EQ(m_net.stats().rx_bytes, 98u);
    EXPECT_EQ(m_backend->rx_stats().delivered, 1u);
}

TEST_F(VirtioNetTest, ReceiveChainMayBeSplitIntoHeaderAndData)
{
    activate(false);
    set_desc(RX_QUEUE, 0, DATA, 12, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    set_desc(RX_QUEUE, 1, DATA + 0x1000, 1514, VIRTQ_DESC_F_WRITE);
    publish(RX_QUEUE, 0);
    auto frame = make_frame(200, 8);
    m_backend->inject(frame);
    ASSERT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 212u);
    EXPECT_EQ(get_le16(&m_buf[DATA + 10]), 1u);
    EXPECT_TRUE(std::equal(frame.begin(), frame.end(), &m_buf[DATA + 0x1000]));
}

TEST_F(VirtioNetTest, ReceivesIntoMergedBuffers)
{
    activate(true);
    post_rx(4, 1000);
    auto frame = make_frame(2500, 11); // 2512 bytes with the header: three 1000-byte buffers
    m_backend->inject(frame);

    ASSERT_EQ(used_idx(RX_QUEUE), 3u);
    EXPECT_EQ(used_id(RX_QUEUE, 0), 0u);
    EXPECT_EQ(used_id(RX_QUEUE, 1), 1u);
    EXPECT_EQ(used_id(RX_QUEUE, 2), 2u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 1000u);
    EXPECT_EQ(used_len(RX_QUEUE, 1), 1000u);
    EXPECT_EQ(used_len(RX_QUEUE, 2), 512u);
    EXPECT_EQ(get_le16(&m_buf[DATA + 10]), 3u); // num_buffers
    // Reassemble what the guest sees.
    std::vector<uint8_t> seen;
    seen.insert(seen.end(), &m_buf[DATA + 12], &m_buf[DATA + 1000]);
    seen.insert(seen.end(), &m_buf[DATA + 0x2000], &m_buf[DATA + 0x2000 + 1000]);
    seen.insert(seen.end(), &m_buf[DATA + 0x4000], &m_buf[DATA + 0x4000 + 512]);
    EXPECT_EQ(seen, frame);
    EXPECT_EQ(m_net.stats().rx_merged_frames, 1u);

    // The fourth buffer is still there for the next frame, with num_buffers 1.
    auto small = make_frame(60, 2);
    m_backend->inject(small);
    ASSERT_EQ(used_idx(RX_QUEUE), 4u);
    EXPECT_EQ(used_id(RX_QUEUE, 3), 3u);
    EXPECT_EQ(get_le16(&m_buf[DATA + 0x6000 + 10]), 1u);
    EXPECT_EQ(m_net.stats().rx_frames, 2u);
}

TEST_F(VirtioNetTest, NoReceiveBufferQueuesTheFrameUntilTheGuestPostsOne)
{
    activate(true);
    auto frame = make_frame(80, 4);
    m_backend->inject(frame);
    EXPECT_EQ(used_idx(RX_QUEUE), 0u);
    EXPECT_EQ(m_net.stats().rx_dropped_no_buffer, 1u);
    EXPECT_EQ(m_backend->rx_stats().pending, 1u);

    // Not enough room for a merged frame: the buffer is put back untouched.
    post_rx(1, 50);
    m_backend->flush();
    EXPECT_EQ(used_idx(RX_QUEUE), 0u);
    EXPECT_EQ(m_backend->rx_stats().pending, 1u);
    EXPECT_EQ(m_net.stats().rx_dropped_no_buffer, 2u);

    // The guest posts another buffer and kicks: the device asks the backend to retry, which delivers.
    int const before = m_backend->retry_requests;
    post_rx(1, 50, 1);
    m_net.queue_notify(RX_QUEUE);
    EXPECT_EQ(m_backend->retry_requests, before + 1);
    m_backend->flush();
    ASSERT_EQ(used_idx(RX_QUEUE), 2u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 50u);
    EXPECT_EQ(used_len(RX_QUEUE, 1), 42u);
    EXPECT_EQ(get_le16(&m_buf[DATA + 10]), 2u);
    EXPECT_EQ(m_backend->rx_stats().pending, 0u);
    EXPECT_EQ(m_net.stats().rx_frames, 1u);

    // No refusal since: another kick does not wake the backend.
    m_net.queue_notify(RX_QUEUE);
    EXPECT_EQ(m_backend->retry_requests, before + 1);
}

TEST_F(VirtioNetTest, TooSmallBufferWithoutMergeDropsTheFrameAndKeepsTheBuffer)
{
    activate(false);
    post_rx(1, 100);
    m_backend->inject(make_frame(200, 1));
    EXPECT_EQ(used_idx(RX_QUEUE), 0u);
    EXPECT_EQ(m_net.stats().rx_dropped_too_big, 1u);
    EXPECT_EQ(m_backend->rx_stats().pending, 0u); // dropped, not retried
    // The buffer is still available for a frame that fits.
    m_backend->inject(make_frame(60, 1));
    EXPECT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 72u);
}

TEST_F(VirtioNetTest, ReceiveDropsBadFramesAndFramesWhileInactive)
{
    post_rx(2, 2000);
    m_backend->inject(make_frame(60, 1)); // not active yet
    EXPECT_EQ(m_net.stats().rx_dropped_inactive, 1u);
    EXPECT_EQ(m_backend->rx_stats().pending, 0u);
    activate(false);
    m_backend->inject(make_frame(13, 1));
    EXPECT_EQ(m_net.stats().rx_dropped_bad, 1u);
    EXPECT_EQ(used_idx(RX_QUEUE), 0u);
    EXPECT_TRUE(m_net.receive(make_frame(65551, 1)));
    EXPECT_EQ(m_net.stats().rx_dropped_bad, 2u);
    m_net.reset();
    m_backend->inject(make_frame(60, 1));
    EXPECT_EQ(m_net.stats().rx_dropped_inactive, 2u);
    EXPECT_EQ(used_idx(RX_QUEUE), 0u);
}

TEST_F(VirtioNetTest, BadReceiveChainGivesBackTheChainsTakenForTheFrame)
{
    activate(true);
    post_rx(1, 100);
    set_desc(RX_QUEUE, 1, DATA + 0x2000, 100, 0); // device-readable: no room to write
    publish(RX_QUEUE, 1);
    m_backend->inject(make_frame(150, 1));
    ASSERT_EQ(used_idx(RX_QUEUE), 2u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 0u);
    EXPECT_EQ(used_len(RX_QUEUE, 1), 0u);
    EXPECT_EQ(m_net.stats().rx_bad_chains, 1u);
    EXPECT_EQ(m_net.stats().rx_dropped_bad, 1u);
    EXPECT_EQ(m_net.stats().rx_frames, 0u);
}

TEST_F(VirtioNetTest, TransmitWorkPerNotifyIsBounded)
{
    activate(false);
    for (uint16_t i = 0; i < QSIZE; ++i) {
        put_tx(DATA + 0x100u * i, make_frame(60, static_cast<uint8_t>(i)));
        set_desc(TX_QUEUE, i, DATA + 0x100u * i, 72, 0);
        publish(TX_QUEUE, i);
    }
    m_net.queue_notify(TX_QUEUE);
    EXPECT_EQ(m_backend->sent.size(), QSIZE);
    EXPECT_EQ(used_idx(TX_QUEUE), QSIZE);
    // Stopped at the budget: the device asks to be run again rather than wait for a notify (with EVENT_IDX the
    // driver would not send one); the rerun finds nothing and asks no more.
    EXPECT_EQ(m_irq.requeued, std::vector<uint16_t> { TX_QUEUE });
    m_net.queue_notify(TX_QUEUE);
    EXPECT_EQ(m_irq.requeued.size(), 1u);
}

TEST_F(VirtioNetTest, DestructionUnregistersTheReceiver)
{
    auto backend = std::make_shared<FakeBackend>();
    {
        VirtioNet other(backend, MAC);
    }
    backend->inject(make_frame(60, 1));
    EXPECT_EQ(backend->rx_stats().dropped_no_receiver, 1u);
}

// End to end through the real libslirp on its own thread: a DHCP DISCOVER sent through the transmit queue comes
// back as an OFFER in a receive buffer. The wait is a liveness bound, not a timing assertion.
TEST(VirtioNetSlirp, DhcpDiscoverThroughTheQueuesGetsAnOffer)
{
    std::vector<uint8_t> buf(RAM_SIZE, 0);
    auto mem = std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(buf) } }).value());
    std::vector<Queue> queues;
    for (int i = 0; i < 2; ++i) {
        queues.push_back(std::move(Queue::create(mem, VirtioNet::QUEUE_SIZE).value()));
        Queue& q = queues.back();
        ASSERT_TRUE(q.set_size(QSIZE));
        q.set_desc_table(GuestAddr(DESC[i]));
        q.set_avail_ring(GuestAddr(AVAIL[i]));
        q.set_used_ring(GuestAddr(USED[i]));
        q.set_ready(true);
    }
    auto backend = hako::net::SlirpBackend::create(hako::net::SlirpOptions {});
    ASSERT_TRUE(backend) << backend.error().message();
    std::shared_ptr<hako::net::Backend> shared = std::move(*backend);
    VirtioNet dev(shared, hako::net::test::GUEST_MAC);
    RecordingInterrupt irq;
    ActivateContext ctx;
    ctx.features = uint64_t { 1 } << VIRTIO_F_VERSION_1 | uint64_t { 1 } << VIRTIO_NET_F_MRG_RXBUF;
    ctx.queues = queues;
    ctx.interrupt = &irq;
    ASSERT_TRUE(dev.activate(ctx));

    // Four 1526-byte receive buffers, as Linux posts them.
    for (uint16_t i = 0; i < 4; ++i) {
        VirtqDesc d;
        d.addr.set(DATA + 0x1000u * i);
        d.len.set(1526);
        d.flags.set(VIRTQ_DESC_F_WRITE);
        ASSERT_TRUE(mem.write_obj(GuestAddr(DESC[RX_QUEUE] + 16u * i), d));
        put_le16(&buf[AVAIL[RX_QUEUE] + virtq_avail_entry_offset(i)], i);
    }
    put_le16(&buf[AVAIL[RX_QUEUE] + VIRTQ_AVAIL_IDX_OFFSET], 4);
    dev.queue_notify(RX_QUEUE);

    auto frame = hako::net::test::dhcp_discover();
    uint64_t const tx = DATA + 0x8000;
    std::copy(frame.begin(), frame.end(), &buf[tx + VIRTIO_NET_HDR_LEN]);
    VirtqDesc d;
    d.addr.set(tx);
    d.len.set(static_cast<uint32_t>(VIRTIO_NET_HDR_LEN + frame.size()));
    ASSERT_TRUE(mem.write_obj(GuestAddr(DESC[TX_QUEUE]), d));
    put_le16(&buf[AVAIL[TX_QUEUE] + virtq_avail_entry_offset(0)], 0);
    put_le16(&buf[AVAIL[TX_QUEUE] + VIRTQ_AVAIL_IDX_OFFSET], 1);
    dev.queue_notify(TX_QUEUE);
    EXPECT_EQ(dev.stats().tx_frames, 1u);

    // stats() takes the device lock, which orders the guest-memory writes made on "net-slirp" before our reads.
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (dev.stats().rx_frames == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_GE(dev.stats().rx_frames, 1u) << "no frame from libslirp within the liveness bound";
    std::vector<uint8_t> got(&buf[DATA + VIRTIO_NET_HDR_LEN], &buf[DATA + 1526]);
    EXPECT_EQ(get_le16(&buf[DATA + VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET]), 1u);
    ASSERT_TRUE(hako::net::test::is_dhcp_reply(got));
    size_t const ihl = (got[14] & 0xf) * 4u;
    EXPECT_EQ(hako::get_be32(&got[14 + ihl + 8 + 16]), 0x0a00020fu); // yiaddr 10.0.2.15
    EXPECT_FALSE(irq.used.empty());
}

// A legacy driver (transitional device, no VERSION_1) without MRG_RXBUF uses the 10-byte header (5.1.6.1).
TEST_F(VirtioNetTest, LegacyDriverWithoutMergeableBuffersUsesTheTenByteHeader)
{
    activate(false, false);
    auto frame = make_frame(60, 3);
    std::fill(&m_buf[DATA], &m_buf[DATA + 10], uint8_t { 0 });
    std::copy(frame.begin(), frame.end(), &m_buf[DATA + 10]);
    set_desc(TX_QUEUE, 0, DATA, 70, 0);
    publish(TX_QUEUE, 0);
    m_net.queue_notify(TX_QUEUE);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0], frame);

    post_rx(1, 2048);
    auto in = make_frame(80, 4);
    ASSERT_TRUE(m_net.receive(in));
    ASSERT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(used_len(RX_QUEUE, 0), 10u + 80u);
    EXPECT_TRUE(std::equal(in.begin(), in.end(), &m_buf[DATA + 10]));
}

namespace {

constexpr uint64_t bit(unsigned b) { return uint64_t { 1 } << b; }

} // namespace

TEST_F(VirtioNetTest, OffloadsAreOfferedOnlyOnABackendThatCarriesThem)
{
    uint64_t const offload_bits = bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_GUEST_TSO4)
        | bit(VIRTIO_NET_F_GUEST_TSO6) | bit(VIRTIO_NET_F_GUEST_ECN) | bit(VIRTIO_NET_F_HOST_TSO4)
        | bit(VIRTIO_NET_F_HOST_TSO6) | bit(VIRTIO_NET_F_HOST_ECN);
    EXPECT_EQ(m_net.device_features() & offload_bits, 0u);
    m_backend->offloads = true;
    EXPECT_EQ(m_net.device_features() & offload_bits, offload_bits);

    // What the guest takes on receive goes to the backend; TSO without GUEST_CSUM counts as not taken.
    activate(true, true, bit(VIRTIO_NET_F_GUEST_TSO4) | bit(VIRTIO_NET_F_GUEST_ECN));
    EXPECT_EQ(m_backend->rx_offloads, hako::net::Offloads {});
    m_net.reset();
    activate(true, true, bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_GUEST_TSO4) | bit(VIRTIO_NET_F_GUEST_ECN));
    EXPECT_EQ(m_backend->rx_offloads, (hako::net::Offloads { .csum = true, .tso4 = true, .ecn = true }));
    // A reset takes them back.
    m_net.reset();
    EXPECT_EQ(m_backend->rx_offloads, hako::net::Offloads {});
}

TEST_F(VirtioNetTest, TransmitHeadersArePassedOnWhenTheNegotiatedOffloadsAllowThem)
{
    m_backend->offloads = true;
    activate(true, true, bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_HOST_TSO4));
    auto frame = make_frame(1514, 5);
    struct Case {
        hako::net::VnetHeader header;
        bool passes;
    };
    using hako::net::VnetHeader;
    std::vector<Case> const cases {
        { VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 }, true },
        { VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM | hako::net::VNET_HDR_F_DATA_VALID, .csum_start = 34,
              .csum_offset = 16 }, true }, // DATA_VALID is masked off
        { VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .gso_type = hako::net::VNET_HDR_GSO_TCPV4,
              .hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16 }, true },
        { VnetHeader {}, true },
        // The checksum field would lie beyond the frame.
        { VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .csum_start = 1500, .csum_offset = 16 }, false },
        // Inside the ethernet header.
        { VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .csum_start = 4, .csum_offset = 2 }, false },
        // TCPv6 and ECN were not negotiated; GSO needs NEEDS_CSUM and a segment size; UDP (UFO) is never offered.
        { VnetHeader { .flags = 1, .gso_type = hako::net::VNET_HDR_GSO_TCPV6, .gso_size = 1448, .csum_start = 54,
              .csum_offset = 16 }, false },
        { VnetHeader { .flags = 1, .gso_type = hako::net::VNET_HDR_GSO_TCPV4 | hako::net::VNET_HDR_GSO_ECN,
              .gso_size = 1448, .csum_start = 34, .csum_offset = 16 }, false },
        { VnetHeader { .gso_type = hako::net::VNET_HDR_GSO_TCPV4, .gso_size = 1448 }, false },
        { VnetHeader { .flags = 1, .gso_type = hako::net::VNET_HDR_GSO_TCPV4, .csum_start = 34, .csum_offset = 16 },
            false },
        { VnetHeader { .flags = 1, .gso_type = hako::net::VNET_HDR_GSO_UDP, .gso_size = 1000, .csum_start = 34,
              .csum_offset = 6 }, false },
        { VnetHeader { .gso_type = 0x42 }, false },
    };
    size_t expected_sent = 0;
    uint16_t n = 0;
    for (auto const& c : cases) {
        uint64_t const addr = DATA + 0x1000u * (n % 4);
        put_tx(addr, frame);
        hako::net::encode_vnet_header(c.header, std::span<uint8_t, hako::net::VNET_HDR_LEN>(&m_buf[addr], 10));
        set_desc(TX_QUEUE, n % QSIZE, addr, VIRTIO_NET_HDR_LEN + 1514, 0);
        publish(TX_QUEUE, n % QSIZE);
        m_net.queue_notify(TX_QUEUE);
        ++n;
        if (c.passes) {
            ++expected_sent;
            ASSERT_EQ(m_backend->sent_headers.size(), expected_sent) << "case " << n;
            auto expected = c.header;
            expected.flags &= hako::net::VNET_HDR_F_NEEDS_CSUM;
            EXPECT_EQ(m_backend->sent_headers.back(), expected) << "case " << n;
            EXPECT_EQ(m_backend->sent.back(), frame);
        } else {
            EXPECT_EQ(m_backend->sent_headers.size(), expected_sent) << "case " << n << " should be dropped";
        }
        EXPECT_EQ(used_idx(TX_QUEUE), n) << "every chain is given back";
    }
    auto const st = m_net.stats();
    EXPECT_EQ(st.tx_frames, expected_sent);
    EXPECT_EQ(st.tx_dropped_bad_header, cases.size() - expected_sent);
    EXPECT_EQ(st.tx_offload_frames, 3u);
}

TEST_F(VirtioNetTest, WithoutTransmitOffloadsTheHeaderIsIgnored)
{
    m_backend->offloads = true;
    activate(true, true, bit(VIRTIO_NET_F_GUEST_CSUM));
    auto frame = make_frame(100, 2);
    put_tx(DATA, frame);
    std::fill(&m_buf[DATA], &m_buf[DATA + 10], uint8_t { 0xff }); // junk the guest may leave there
    set_desc(TX_QUEUE, 0, DATA, VIRTIO_NET_HDR_LEN + 100, 0);
    publish(TX_QUEUE, 0);
    m_net.queue_notify(TX_QUEUE);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_TRUE(m_backend->sent_headers.empty()) << "a plain send()";
    EXPECT_EQ(m_net.stats().tx_dropped_bad_header, 0u);
}

TEST_F(VirtioNetTest, ReceivedHeadersReachTheGuestOnlyAsNegotiated)
{
    using hako::net::VnetHeader;
    m_backend->offloads = true;
    activate(true, true, bit(VIRTIO_NET_F_GUEST_CSUM));
    post_rx(4, 2048);
    auto frame = make_frame(200, 4);
    VnetHeader const partial { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 };
    m_backend->inject(partial, frame);
    ASSERT_EQ(used_idx(RX_QUEUE), 1u);
    auto got = hako::net::decode_vnet_header(std::span<uint8_t const, 10>(&m_buf[DATA], 10));
    EXPECT_EQ(got, partial);
    EXPECT_EQ(get_le16(&m_buf[DATA + VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET]), 1u);

    // A TSO super-frame the guest did not take (no GUEST_TSO4) is dropped, not handed over.
    VnetHeader const tso { .flags = 1, .gso_type = hako::net::VNET_HDR_GSO_TCPV4, .hdr_len = 54, .gso_size = 1448,
        .csum_start = 34, .csum_offset = 16 };
    m_backend->inject(tso, frame);
    EXPECT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(m_net.stats().rx_dropped_offload, 1u);

}

TEST_F(VirtioNetTest, AGuestWithoutChecksumOffloadGetsZeroFlagsAndNoPartialFrames)
{
    using hako::net::VnetHeader;
    m_backend->offloads = true;
    activate(true);
    post_rx(4, 2048);
    std::fill(&m_buf[DATA], &m_buf[DATA + 12], uint8_t { 0xee });
    auto frame = make_frame(200, 4);
    m_backend->inject(VnetHeader { .flags = hako::net::VNET_HDR_F_DATA_VALID }, frame);
    ASSERT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(hako::net::decode_vnet_header(std::span<uint8_t const, 10>(&m_buf[DATA], 10)), VnetHeader {});
    // A partial frame still in flight from before the guest lowered its offloads.
    m_backend->inject(VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 },
        frame);
    EXPECT_EQ(used_idx(RX_QUEUE), 1u);
    EXPECT_EQ(m_net.stats().rx_dropped_offload, 1u);
}

namespace {

constexpr uint64_t CTRL_ALL = bit(VIRTIO_NET_F_CTRL_VQ) | bit(VIRTIO_NET_F_CTRL_RX) | bit(VIRTIO_NET_F_CTRL_RX_EXTRA)
    | bit(VIRTIO_NET_F_CTRL_VLAN) | bit(VIRTIO_NET_F_CTRL_MAC_ADDR);

/// An ethernet frame to `dst`, optionally with an 802.1Q tag.
std::vector<uint8_t> frame_to(hako::net::MacAddress const& dst, int vlan = -1)
{
    std::vector<uint8_t> f(64, 0x5a);
    std::copy(dst.begin(), dst.end(), f.begin());
    if (vlan >= 0) {
        f[12] = 0x81;
        f[13] = 0x00;
        f[14] = static_cast<uint8_t>(vlan >> 8);
        f[15] = static_cast<uint8_t>(vlan);
    } else {
        f[12] = 0x08;
        f[13] = 0x00;
    }
    return f;
}

} // namespace

class VirtioNetCtrlTest : public VirtioNetTest {
protected:
    /// Sends one control command (header + data in one descriptor, the ack in another); returns the ack byte, or
    /// -1 if the device gave the chain back without writing one.
    int command(uint8_t cls, uint8_t code, std::vector<uint8_t> const& data)
    {
        uint64_t const cmd = 0x40000, ack = 0x48000;
        m_buf[cmd] = cls;
        m_buf[cmd + 1] = code;
        std::copy(data.begin(), data.end(), &m_buf[cmd + 2]);
        m_buf[ack] = 0xee;
        uint16_t const d = static_cast<uint16_t>((m_avail_idx[CTRL_QUEUE] * 2) % QSIZE);
        set_desc(CTRL_QUEUE, d, cmd, static_cast<uint32_t>(2 + data.size()), VIRTQ_DESC_F_NEXT, static_cast<uint16_t>(d + 1));
        set_desc(CTRL_QUEUE, static_cast<uint16_t>(d + 1), ack, 1, VIRTQ_DESC_F_WRITE);
        uint16_t const before = used_idx(CTRL_QUEUE);
        publish(CTRL_QUEUE, d);
        m_net.queue_notify(CTRL_QUEUE);
        EXPECT_EQ(used_idx(CTRL_QUEUE), before + 1);
        return used_len(CTRL_QUEUE, before) == 1 ? m_buf[ack] : -1;
    }
    int rx(uint8_t cls, uint8_t code, bool on) { return command(cls, code, { static_cast<uint8_t>(on) }); }
    /// Offers a frame; true if the guest got it.
    bool delivered(std::vector<uint8_t> const& f)
    {
        uint64_t const before = m_net.stats().rx_frames;
        m_backend->inject(f);
        return m_net.stats().rx_frames == before + 1;
    }
    static std::vector<uint8_t> mac_tables(std::vector<hako::net::MacAddress> const& uni,
        std::vector<hako::net::MacAddress> const& multi, uint32_t uni_count_override = ~0u)
    {
        std::vector<uint8_t> d;
        auto put_table = [&d](std::vector<hako::net::MacAddress> const& t, uint32_t count) {
            d.resize(d.size() + 4);
            put_le32(&d[d.size() - 4], count);
            for (auto const& m : t)
                d.insert(d.end(), m.begin(), m.end());
        };
        put_table(uni, uni_count_override == ~0u ? static_cast<uint32_t>(uni.size()) : uni_count_override);
        put_table(multi, static_cast<uint32_t>(multi.size()));
        return d;
    }
};

TEST_F(VirtioNetCtrlTest, StartsPromiscuousAndFiltersOnceTheDriverSaysSo)
{
    activate(true, true, CTRL_ALL);
    post_rx(QSIZE, 2048);
    hako::net::MacAddress const other { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
    hako::net::MacAddress const group { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    hako::net::MacAddress const bcast { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    EXPECT_TRUE(delivered(frame_to(other))) << "promiscuous until told otherwise";

    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, false), VIRTIO_NET_OK);
    EXPECT_FALSE(delivered(frame_to(other)));
    EXPECT_TRUE(delivered(frame_to(MAC)));
    EXPECT_TRUE(delivered(frame_to(bcast)));
    EXPECT_FALSE(delivered(frame_to(group)));
    EXPECT_EQ(m_net.stats().rx_filtered, 2u);

    // Tables: the other unicast MAC and the group now pass.
    ASSERT_EQ(command(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, mac_tables({ other }, { group })), VIRTIO_NET_OK);
    EXPECT_TRUE(delivered(frame_to(other)));
    EXPECT_TRUE(delivered(frame_to(group)));
    // ALLMULTI, NOBCAST, NOUNI (CTRL_RX_EXTRA).
    hako::net::MacAddress const group2 { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 };
    EXPECT_FALSE(delivered(frame_to(group2)));
    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, true), VIRTIO_NET_OK);
    EXPECT_TRUE(delivered(frame_to(group2)));
    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, true), VIRTIO_NET_OK);
    EXPECT_FALSE(delivered(frame_to(bcast)));
    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOUNI, true), VIRTIO_NET_OK);
    EXPECT_FALSE(delivered(frame_to(MAC)));
    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, true), VIRTIO_NET_OK);
    EXPECT_TRUE(delivered(frame_to(MAC))) << "promiscuous overrides the rest";
    EXPECT_EQ(m_net.stats().ctrl_commands, 6u);
}

TEST_F(VirtioNetCtrlTest, MacAddressSetChangesConfigSpaceAndFilterUntilReset)
{
    activate(true, true, CTRL_ALL);
    post_rx(QSIZE, 2048);
    hako::net::MacAddress const fresh { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, false), VIRTIO_NET_OK);
    ASSERT_EQ(command(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, std::vector<uint8_t>(fresh.begin(), fresh.end())),
        VIRTIO_NET_OK);
    std::array<uint8_t, 6> cfg {};
    m_net.read_config(0, cfg);
    EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), cfg.begin()));
    EXPECT_TRUE(delivered(frame_to(fresh)));
    EXPECT_FALSE(delivered(frame_to(MAC)));
    m_net.reset();
    m_net.read_config(0, cfg);
    EXPECT_TRUE(std::equal(MAC.begin(), MAC.end(), cfg.begin())) << "a reset restores the original MAC";
}

TEST_F(VirtioNetCtrlTest, VlanFilterStartsEmptyWhenNegotiated)
{
    activate(true, true, CTRL_ALL);
    post_rx(QSIZE, 2048);
    ASSERT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, false), VIRTIO_NET_OK);
    EXPECT_FALSE(delivered(frame_to(MAC, 100)));
    ASSERT_EQ(command(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, { 100, 0 }), VIRTIO_NET_OK);
    EXPECT_TRUE(delivered(frame_to(MAC, 100)));
    EXPECT_FALSE(delivered(frame_to(MAC, 101)));
    ASSERT_EQ(command(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_DEL, { 100, 0 }), VIRTIO_NET_OK);
    EXPECT_FALSE(delivered(frame_to(MAC, 100)));
    EXPECT_EQ(command(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, { 0x00, 0x10 }), VIRTIO_NET_ERR) << "vid 4096";
    EXPECT_TRUE(delivered(frame_to(MAC))) << "untagged frames are not VLAN-filtered";
}

TEST_F(VirtioNetCtrlTest, MalformedAndUnnegotiatedCommandsAreRefused)
{
    // CTRL_VQ without CTRL_RX_EXTRA, CTRL_VLAN, CTRL_MAC_ADDR.
    activate(true, true, bit(VIRTIO_NET_F_CTRL_VQ) | bit(VIRTIO_NET_F_CTRL_RX));
    EXPECT_EQ(rx(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOUNI, true), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, { 1, 0 }), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, { 2, 0, 0, 0, 0, 1 }), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, { 0, 0 }), VIRTIO_NET_ERR) << "2 data bytes";
    EXPECT_EQ(command(VIRTIO_NET_CTRL_RX, 9, { 0 }), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_ANNOUNCE, 0, {}), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_MQ, 0, { 1, 0 }), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_GUEST_OFFLOADS, 0, std::vector<uint8_t>(8, 0)), VIRTIO_NET_ERR);
    // MAC tables whose counts run past the data, or with bytes left over.
    hako::net::MacAddress const m { 0x02, 0, 0, 0, 0, 1 };
    EXPECT_EQ(command(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, mac_tables({ m }, {}, 2)), VIRTIO_NET_ERR);
    auto extra = mac_tables({ m }, {});
    extra.push_back(0);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, extra), VIRTIO_NET_ERR);
    EXPECT_EQ(command(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, { 0xff, 0xff, 0xff, 0xff }), VIRTIO_NET_ERR);
    EXPECT_EQ(m_net.stats().ctrl_errors, 11u);

    // A chain without a writable byte for the ack is given back unanswered.
    set_desc(CTRL_QUEUE, 0, 0x40000, 3, 0);
    uint16_t const before = used_idx(CTRL_QUEUE);
    publish(CTRL_QUEUE, 0);
    m_net.queue_notify(CTRL_QUEUE);
    EXPECT_EQ(used_idx(CTRL_QUEUE), before + 1);
    EXPECT_EQ(used_len(CTRL_QUEUE, before), 0u);
    EXPECT_EQ(m_net.stats().ctrl_bad_chains, 1u);
}

TEST_F(VirtioNetCtrlTest, GuestOffloadsSetStaysWithinWhatWasNegotiated)
{
    m_backend->offloads = true;
    activate(true, true,
        CTRL_ALL | bit(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) | bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_GUEST_TSO4));
    EXPECT_EQ(m_backend->rx_offloads, (hako::net::Offloads { .csum = true, .tso4 = true }));
    auto set = [&](uint64_t bits) {
        std::vector<uint8_t> d(8);
        put_le64(d.data(), bits);
        return command(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, d);
    };
    EXPECT_EQ(set(bit(VIRTIO_NET_F_GUEST_CSUM)), VIRTIO_NET_OK);
    EXPECT_EQ(m_backend->rx_offloads, (hako::net::Offloads { .csum = true }));
    EXPECT_EQ(set(0), VIRTIO_NET_OK);
    EXPECT_EQ(m_backend->rx_offloads, hako::net::Offloads {});
    EXPECT_EQ(set(bit(VIRTIO_NET_F_GUEST_TSO6) | bit(VIRTIO_NET_F_GUEST_CSUM)), VIRTIO_NET_ERR) << "not negotiated";
    EXPECT_EQ(set(bit(VIRTIO_NET_F_GUEST_TSO4)), VIRTIO_NET_ERR) << "TSO needs CSUM";
    EXPECT_EQ(set(bit(VIRTIO_NET_F_MAC)), VIRTIO_NET_ERR) << "not an offload bit";
    EXPECT_EQ(set(bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_GUEST_TSO4)), VIRTIO_NET_OK);
    EXPECT_EQ(m_backend->rx_offloads, (hako::net::Offloads { .csum = true, .tso4 = true }));
    // With receive offloads lowered, a partial frame is no longer for the guest.
    EXPECT_EQ(set(0), VIRTIO_NET_OK);
    post_rx(2, 2048);
    m_backend->inject(hako::net::VnetHeader { .flags = hako::net::VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 },
        frame_to(MAC));
    EXPECT_EQ(m_net.stats().rx_dropped_offload, 1u);
}

TEST_F(VirtioNetTest, AFullBackendLeavesFramesInTheRingUntilItHasRoom)
{
    activate(true);
    for (uint16_t i = 0; i < 3; ++i) {
        put_tx(DATA + 0x100u * i, make_frame(60, static_cast<uint8_t>(i)));
        set_desc(TX_QUEUE, i, DATA + 0x100u * i, 72, 0);
        publish(TX_QUEUE, i);
    }
    m_backend->full = true;
    m_net.queue_notify(TX_QUEUE);
    EXPECT_TRUE(m_backend->sent.empty()) << "nothing taken while the backend is full";
    EXPECT_EQ(used_idx(TX_QUEUE), 0u);
    EXPECT_EQ(m_net.stats().tx_backpressure, 1u);
    EXPECT_TRUE(m_irq.requeued.empty());
    // Room again: the device asks to be run, and the run sends all three, in order, none dropped.
    m_backend->make_room();
    EXPECT_EQ(m_irq.requeued, std::vector<uint16_t> { TX_QUEUE });
    m_net.queue_notify(TX_QUEUE);
    ASSERT_EQ(m_backend->sent.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i)
        EXPECT_EQ(m_backend->sent[i], make_frame(60, i));
    EXPECT_EQ(used_idx(TX_QUEUE), 3u);
    // A second make_room without a blocked transmit asks nothing.
    m_backend->make_room();
    EXPECT_EQ(m_irq.requeued.size(), 1u);
}
