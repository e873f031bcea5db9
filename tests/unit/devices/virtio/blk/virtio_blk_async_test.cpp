// VirtioBlk driven as a device (activate, queue_notify, reset) with and without an io_uring: requests complete
// with the right data and status, used entries appear only at completion, reset with requests in flight leaves
// the rings alone, and a ring that cannot be created means synchronous I/O.
#include <gtest/gtest.h>

#include <algorithm>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <vector>

#include "../../../block/temp_image.h"
#include "base/bytes.h"
#include "base/event_loop.h"
#include "block/disk_image.h"
#include "block/io_uring.h"
#include "devices/virtio/blk/virtio_blk.h"
#include "devices/virtio/queue.h"

using namespace hako;
using namespace hako::devices::virtio;
using namespace hako::devices::virtio::blk;
using hako::test::TempImage;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000;
constexpr uint64_t DESC = 0x1000;
constexpr uint64_t AVAIL = 0x3000;
constexpr uint64_t USED = 0x4000;
constexpr uint64_t HDRS = 0x8000;   // request i's header at HDRS + 16 i
constexpr uint64_t STATUS = 0xA000; // request i's status byte at STATUS + i
constexpr uint64_t DATA = 0x10000;  // request i's data at DATA + 0x2000 i (8 KiB each)
constexpr uint16_t QSIZE = 16;
constexpr uint64_t IMAGE_SIZE = 1024 * 1024;
constexpr uint64_t CAPACITY = IMAGE_SIZE / 512;
constexpr uint8_t UNTOUCHED = 0xaa;

class CountingInterrupt final : public VirtioInterrupt {
public:
    void signal_used_queue(uint16_t) override { ++used; }
    void signal_config_change() override { ++config; }
    void signal_needs_reset() override { ++needs_reset; }
    int used { 0 };
    int config { 0 };
    int needs_reset { 0 };
};

enum class Mode { Sync, Async };

class VirtioBlkAsyncTest : public ::testing::Test {
protected:
    VirtioBlkAsyncTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_file(IMAGE_SIZE)
    {
        m_queues.push_back(std::move(Queue::create(m_mem, VirtioBlk::QUEUE_SIZE).value()));
        Queue& q = m_queues[0];
        EXPECT_TRUE(q.set_size(QSIZE));
        q.set_desc_table(GuestAddr(DESC));
        q.set_avail_ring(GuestAddr(AVAIL));
        q.set_used_ring(GuestAddr(USED));
        EXPECT_TRUE(q.validate());
        q.set_ready(true);
    }
    ~VirtioBlkAsyncTest() override { m_blk.reset(); }

    /// Builds the device; false (test skipped) if Async is asked for and the host has no io_uring.
    bool make_device(Mode mode, block::ReadOnly ro = block::ReadOnly::No)
    {
        auto disk = block::DiskImage::open(m_file.path(), ro);
        EXPECT_TRUE(disk);
        if (!disk)
            return false;
        std::unique_ptr<block::IoUring> ring;
        if (mode == Mode::Async) {
            ring = VirtioBlk::create_ring(m_file.path());
            if (!ring)
                return false;
        }
        BlkOptions options;
        m_blk = std::make_shared<VirtioBlk>(std::shared_ptr<block::DiskImage>(std::move(*disk)), options,
            std::move(ring));
        ActivateContext ctx;
        ctx.queues = std::span<Queue>(m_queues);
        ctx.interrupt = &m_irq;
        EXPECT_TRUE(m_blk->activate(ctx));
        return true;
    }

    struct Buf {
        uint64_t addr;
        uint32_t len;
        bool write;
    };

    /// Publishes request `slot` (descriptors 4 slot .. 4 slot + n - 1) without notifying.
    void add_request(uint16_t slot, uint32_t type, uint64_t sector, std::vector<Buf> data)
    {
        uint64_t const hdr = HDRS + 16u * slot;
        put_le32(host(hdr), type);
        put_le32(host(hdr + 4), 0);
        put_le64(host(hdr + 8), sector);
        *host(STATUS + slot) = UNTOUCHED;
        std::vector<Buf> bufs { { hdr, 16, false } };
        bufs.insert(bufs.end(), data.begin(), data.end());
        bufs.push_back({ STATUS + slot, 1, true });
        auto const first = static_cast<uint16_t>(4 * slot);
        for (size_t i = 0; i < bufs.size(); ++i) {
            VirtqDesc d;
            d.addr.set(bufs[i].addr);
            d.len.set(bufs[i].len);
            bool const last = i + 1 == bufs.size();
            d.flags.set(static_cast<uint16_t>((last ? 0 : VIRTQ_DESC_F_NEXT) | (bufs[i].write ? VIRTQ_DESC_F_WRITE : 0)));
            d.next.set(static_cast<uint16_t>(first + i + 1));
            EXPECT_TRUE(m_mem.write_obj(GuestAddr(DESC + 16u * (first + i)), d));
        }
        put_le16(host(AVAIL + virtq_avail_entry_offset(m_avail_idx % QSIZE)), first);
        ++m_avail_idx;
        put_le16(host(AVAIL + VIRTQ_AVAIL_IDX_OFFSET), m_avail_idx);
    }

    /// Waits (bounded) for the ring's eventfd and lets the device finish what completed, until nothing is in flight.
    void complete_all()
    {
        for (int rounds = 0; m_blk->in_flight() > 0 && rounds < 1000; ++rounds) {
            pollfd p { m_blk->completion_fd(), POLLIN, 0 };
            ASSERT_EQ(::poll(&p, 1, 10000), 1) << "no completion signalled";
            m_blk->handle_completions();
        }
        EXPECT_EQ(m_blk->in_flight(), 0u);
    }

    uint16_t used_idx() { return get_le16(host(USED + VIRTQ_USED_IDX_OFFSET)); }
    /// (head, len) of used entry `i`.
    std::pair<uint32_t, uint32_t> used_elem(uint16_t i)
    {
        uint64_t const at = USED + virtq_used_elem_offset(i % QSIZE);
        return { get_le32(host(at)), get_le32(host(at + 4)) };
    }
    uint8_t* host(uint64_t gpa) { return m_buf.data() + gpa; }
    uint8_t status(uint16_t slot) { return *host(STATUS + slot); }
    std::vector<uint8_t> guest(uint64_t gpa, size_t len) { return { host(gpa), host(gpa) + len }; }
    void fill_guest(uint64_t gpa, std::vector<uint8_t> const& v) { std::copy(v.begin(), v.end(), host(gpa)); }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::vector<Queue> m_queues;
    TempImage m_file;
    CountingInterrupt m_irq;
    std::shared_ptr<VirtioBlk> m_blk;
    uint16_t m_avail_idx { 0 };
};

#define REQUIRE_ASYNC()                              \
    do {                                             \
        if (!make_device(Mode::Async))               \
            GTEST_SKIP() << "io_uring unavailable"; \
    } while (0)

} // namespace

TEST_F(VirtioBlkAsyncTest, WriteFlushReadCompleteOnlyAfterTheIo)
{
    REQUIRE_ASYNC();
    ASSERT_TRUE(m_blk->is_async());
    std::vector<uint8_t> data(4096);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 13 + 1);
    fill_guest(DATA, std::vector<uint8_t>(data.begin(), data.begin() + 1536));
    fill_guest(DATA + 0x1000, std::vector<uint8_t>(data.begin() + 1536, data.end()));

    add_request(0, VIRTIO_BLK_T_OUT, 20, { { DATA, 1536, false }, { DATA + 0x1000, 2560, false } });
    m_blk->queue_notify(0);
    // Submitted, not answered: no used entry, no status byte, no interrupt until the completion is handled.
    EXPECT_EQ(m_blk->in_flight(), 1u);
    EXPECT_EQ(used_idx(), 0u);
    EXPECT_EQ(status(0), UNTOUCHED);
    EXPECT_EQ(m_irq.used, 0);
    complete_all();
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_elem(0), std::make_pair(0u, 1u));
    EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
    EXPECT_EQ(m_irq.used, 1);
    EXPECT_EQ(m_file.read(20 * 512, data.size()), data);

    add_request(1, VIRTIO_BLK_T_FLUSH, 0, {});
    m_blk->queue_notify(0);
    EXPECT_EQ(used_idx(), 1u);
    complete_all();
    EXPECT_EQ(used_idx(), 2u);
    EXPECT_EQ(used_elem(1), std::make_pair(4u, 1u));
    EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);

    add_request(2, VIRTIO_BLK_T_IN, 20, { { DATA + 0x4000, 512, true }, { DATA + 0x5000, 3584, true } });
    m_blk->queue_notify(0);
    EXPECT_EQ(used_idx(), 2u);
    EXPECT_EQ(status(2), UNTOUCHED);
    complete_all();
    EXPECT_EQ(used_idx(), 3u);
    EXPECT_EQ(used_elem(2), std::make_pair(8u, 4097u));
    EXPECT_EQ(status(2), VIRTIO_BLK_S_OK);
    auto back = guest(DATA + 0x4000, 512);
    auto rest = guest(DATA + 0x5000, 3584);
    back.insert(back.end(), rest.begin(), rest.end());
    EXPECT_EQ(back, data);

    auto const s = m_blk->stats();
    EXPECT_EQ(s.writes, 1u);
    EXPECT_EQ(s.flushes, 1u);
    EXPECT_EQ(s.reads, 1u);
    EXPECT_EQ(s.bytes_read, 4096u);
    EXPECT_EQ(s.bytes_written, 4096u);
    EXPECT_EQ(s.status_ok, 3u);
    EXPECT_EQ(s.status_ioerr, 0u);
}

TEST_F(VirtioBlkAsyncTest, SeveralRequestsInFlightEachCompleteOnce)
{
    REQUIRE_ASYNC();
    for (uint16_t i = 0; i < 4; ++i)
        add_request(i, VIRTIO_BLK_T_IN, 100u + 16u * i, { { DATA + 0x2000u * i, 8192, true } });
    m_blk->queue_notify(0);
    EXPECT_EQ(m_blk->in_flight(), 4u);
    EXPECT_EQ(used_idx(), 0u);
    complete_all();
    ASSERT_EQ(used_idx(), 4u);
    std::vector<uint32_t> heads;
    for (uint16_t i = 0; i < 4; ++i) {
        auto [head, len] = used_elem(i);
        heads.push_back(head);
        EXPECT_EQ(len, 8193u);
    }
    std::sort(heads.begin(), heads.end());
    EXPECT_EQ(heads, (std::vector<uint32_t> { 0, 4, 8, 12 }));
    for (uint16_t i = 0; i < 4; ++i) {
        EXPECT_EQ(status(i), VIRTIO_BLK_S_OK);
        EXPECT_EQ(guest(DATA + 0x2000u * i, 8192), m_file.read((100u + 16u * i) * 512, 8192));
    }
    EXPECT_GE(m_irq.used, 1);
}

TEST_F(VirtioBlkAsyncTest, BadRequestsCompleteImmediately)
{
    REQUIRE_ASYNC();
    // Past the end: IOERR without any I/O, in the used ring at once.
    add_request(0, VIRTIO_BLK_T_IN, CAPACITY - 1, { { DATA, 1024, true } });
    // Unknown type: UNSUPP.
    add_request(1, 0x77, 0, {});
    m_blk->queue_notify(0);
    EXPECT_EQ(m_blk->in_flight(), 0u);
    EXPECT_EQ(used_idx(), 2u);
    EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(status(1), VIRTIO_BLK_S_UNSUPP);
    EXPECT_EQ(m_irq.used, 1);
    EXPECT_EQ(m_blk->stats().error_count(RequestError::OutOfRange), 1u);
}

TEST_F(VirtioBlkAsyncTest, ReadOnlyDiskRefusesWritesBeforeSubmitting)
{
    if (!make_device(Mode::Async, block::ReadOnly::Yes))
        GTEST_SKIP() << "io_uring unavailable";
    fill_guest(DATA, std::vector<uint8_t>(512, 0x99));
    add_request(0, VIRTIO_BLK_T_OUT, 0, { { DATA, 512, false } });
    m_blk->queue_notify(0);
    EXPECT_EQ(m_blk->in_flight(), 0u);
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_file.read(0, 512), TempImage(512).read(0, 512)); // the pattern, untouched
}

TEST_F(VirtioBlkAsyncTest, ShortReadFromATruncatedImageIsAnIoError)
{
    REQUIRE_ASYNC();
    // Someone truncates the image behind hako's back: the read runs into end of file.
    ASSERT_EQ(::truncate(m_file.path().c_str(), static_cast<off_t>(IMAGE_SIZE / 2)), 0);
    add_request(0, VIRTIO_BLK_T_IN, CAPACITY - 8, { { DATA, 4096, true } });
    m_blk->queue_notify(0);
    complete_all();
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_elem(0), std::make_pair(0u, 1u));
    EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(m_blk->stats().error_count(RequestError::HostIo), 1u);
}

TEST_F(VirtioBlkAsyncTest, ResetWithRequestsInFlightLeavesTheRingsAlone)
{
    REQUIRE_ASYNC();
    for (uint16_t i = 0; i < 3; ++i)
        add_request(i, VIRTIO_BLK_T_IN, 8u * i, { { DATA + 0x2000u * i, 4096, true } });
    add_request(3, VIRTIO_BLK_T_FLUSH, 0, {});
    m_blk->queue_notify(0);
    ASSERT_EQ(m_blk->in_flight(), 4u);
    auto const used_before = guest(USED, virtq_used_ring_size(QSIZE));

    m_blk->reset();
    EXPECT_EQ(m_blk->in_flight(), 0u);
    EXPECT_EQ(m_blk->dropped_on_reset(), 4u);
    // Whatever the kernel does next, the device has nothing to complete: used ring and status bytes stay as they were.
    m_blk->handle_completions();
    m_blk->queue_notify(0); // not active any more
    EXPECT_EQ(guest(USED, virtq_used_ring_size(QSIZE)), used_before);
    for (uint16_t i = 0; i < 4; ++i)
        EXPECT_EQ(status(i), UNTOUCHED);
    EXPECT_EQ(m_irq.used, 0);

    // Activated again (the driver reinitialises the queue), the device serves new requests normally.
    m_queues[0].reset();
    Queue& q = m_queues[0];
    ASSERT_TRUE(q.set_size(QSIZE));
    q.set_desc_table(GuestAddr(DESC));
    q.set_avail_ring(GuestAddr(AVAIL));
    q.set_used_ring(GuestAddr(USED));
    q.set_ready(true);
    std::fill(m_buf.begin() + AVAIL, m_buf.begin() + USED + 0x1000, uint8_t { 0 });
    m_avail_idx = 0;
    ActivateContext ctx;
    ctx.queues = std::span<Queue>(m_queues);
    ctx.interrupt = &m_irq;
    ASSERT_TRUE(m_blk->activate(ctx));
    add_request(0, VIRTIO_BLK_T_IN, 1, { { DATA, 512, true } });
    m_blk->queue_notify(0);
    complete_all();
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
    EXPECT_EQ(guest(DATA, 512), m_file.read(512, 512));
}

TEST_F(VirtioBlkAsyncTest, MoreRequestsThanSlotsAreServedAsSlotsFree)
{
    // A ring of depth 2: only two requests in flight; the rest wait in the avail ring and are popped when
    // completions free slots, without another notify from the driver.
    auto disk = block::DiskImage::open(m_file.path(), block::ReadOnly::No);
    ASSERT_TRUE(disk);
    auto ring = VirtioBlk::create_ring(m_file.path(), 2);
    if (!ring)
        GTEST_SKIP() << "io_uring unavailable";
    m_blk = std::make_shared<VirtioBlk>(std::shared_ptr<block::DiskImage>(std::move(*disk)), BlkOptions {},
        std::move(ring));
    ActivateContext ctx;
    ctx.queues = std::span<Queue>(m_queues);
    ctx.interrupt = &m_irq;
    ASSERT_TRUE(m_blk->activate(ctx));
    for (uint16_t i = 0; i < 4; ++i)
        add_request(i, VIRTIO_BLK_T_IN, 8u * i, { { DATA + 0x2000u * i, 4096, true } });
    m_blk->queue_notify(0);
    EXPECT_EQ(m_blk->in_flight(), 2u);
    complete_all();
    EXPECT_EQ(used_idx(), 4u);
    for (uint16_t i = 0; i < 4; ++i) {
        EXPECT_EQ(status(i), VIRTIO_BLK_S_OK);
        EXPECT_EQ(guest(DATA + 0x2000u * i, 4096), m_file.read(8u * i * 512, 4096));
    }
}

TEST_F(VirtioBlkAsyncTest, CompletionsThroughTheEventLoop)
{
    REQUIRE_ASYNC();
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    // The wiring vm_builder does: watch the completion fd, hold the device weakly.
    std::weak_ptr<VirtioBlk> weak = m_blk;
    EventLoop* l = loop->get();
    ASSERT_TRUE((*loop)->add_fd(m_blk->completion_fd(), EPOLLIN, [weak, l](uint32_t) {
        if (auto blk = weak.lock()) {
            blk->handle_completions();
            if (blk->in_flight() == 0)
                l->stop();
        }
    }));
    fill_guest(DATA, std::vector<uint8_t>(1024, 0x5c));
    add_request(0, VIRTIO_BLK_T_OUT, 3, { { DATA, 1024, false } });
    m_blk->queue_notify(0);
    (*loop)->run(); // returns once the handler saw the completion
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
    EXPECT_EQ(m_file.read(3 * 512, 1024), std::vector<uint8_t>(1024, 0x5c));
    (*loop)->remove_fd(m_blk->completion_fd());
}

TEST_F(VirtioBlkAsyncTest, NoRingMeansSynchronousIo)
{
    // A ring the kernel refuses (depth 0 always fails): one warning, nullptr, and the device stays synchronous.
    EXPECT_EQ(VirtioBlk::create_ring("test.img", 0), nullptr);
    ASSERT_TRUE(make_device(Mode::Sync));
    EXPECT_FALSE(m_blk->is_async());
    EXPECT_EQ(m_blk->completion_fd(), -1);
    add_request(0, VIRTIO_BLK_T_IN, 2, { { DATA, 1024, true } });
    m_blk->queue_notify(0);
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_elem(0), std::make_pair(0u, 1025u));
    EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
    EXPECT_EQ(guest(DATA, 1024), m_file.read(1024, 1024));
    m_blk->handle_completions(); // harmless without a ring
    EXPECT_EQ(m_irq.used, 1);
}
