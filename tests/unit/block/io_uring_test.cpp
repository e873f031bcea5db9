#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <vector>

#include "block/io_uring.h"
#include "temp_image.h"

using namespace hako;
using hako::block::IoUring;
using hako::test::TempImage;

namespace {

class IoUringTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        auto ring = IoUring::create(8);
        if (!ring)
            GTEST_SKIP() << "io_uring unavailable here: " << ring.error().message();
        m_ring = std::move(*ring);
        m_fd = ::open(m_file.path().c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(m_fd, 0);
    }
    void TearDown() override
    {
        m_ring.reset(); // waits for anything in flight before the descriptor goes away
        if (m_fd >= 0)
            ::close(m_fd);
    }

    /// Blocks until `count` completions have been reaped (through the eventfd, as an event loop would).
    std::vector<IoUring::Completion> collect(size_t count)
    {
        std::vector<IoUring::Completion> all;
        std::array<IoUring::Completion, 4> batch;
        for (int rounds = 0; all.size() < count && rounds < 1000; ++rounds) {
            pollfd p { m_ring->event_fd(), POLLIN, 0 };
            EXPECT_EQ(::poll(&p, 1, 10000), 1) << "no completion signalled";
            m_ring->event().consume();
            size_t n;
            while ((n = m_ring->reap(batch)) > 0)
                all.insert(all.end(), batch.begin(), batch.begin() + static_cast<ptrdiff_t>(n));
        }
        return all;
    }

    TempImage m_file { 64 * 1024 };
    std::unique_ptr<IoUring> m_ring;
    int m_fd { -1 };
};

} // namespace

TEST(IoUringCreate, ZeroDepthFailsCleanly)
{
    auto ring = IoUring::create(0);
    EXPECT_FALSE(ring);
}

TEST_F(IoUringTest, VectoredWriteFsyncAndReadComplete)
{
    std::vector<uint8_t> a(1000, 0x11), b(3096, 0x22);
    std::array<std::span<uint8_t const>, 2> const out { std::span<uint8_t const>(a), std::span<uint8_t const>(b) };
    ASSERT_TRUE(m_ring->queue_writev(m_fd, 4096, out, 7));
    EXPECT_EQ(m_ring->in_flight(), 1u);
    ASSERT_TRUE(m_ring->submit());
    auto done = collect(1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].user_data, 7u);
    EXPECT_EQ(done[0].res, 4096);
    EXPECT_EQ(m_ring->in_flight(), 0u);

    ASSERT_TRUE(m_ring->queue_fdatasync(m_fd, 8));
    ASSERT_TRUE(m_ring->submit());
    done = collect(1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].user_data, 8u);
    EXPECT_EQ(done[0].res, 0);

    auto expected = std::vector<uint8_t>(a);
    expected.insert(expected.end(), b.begin(), b.end());
    EXPECT_EQ(m_file.read(4096, 4096), expected);

    // Read back into two buffers, with the write's neighbour in front.
    std::vector<uint8_t> x(512), y(4096);
    std::array<std::span<uint8_t>, 2> const in { std::span<uint8_t>(x), std::span<uint8_t>(y) };
    ASSERT_TRUE(m_ring->queue_readv(m_fd, 4096 - 512, in, 9));
    ASSERT_TRUE(m_ring->submit());
    done = collect(1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].user_data, 9u);
    EXPECT_EQ(done[0].res, 512 + 4096);
    EXPECT_EQ(x, m_file.read(4096 - 512, 512));
    EXPECT_EQ(y, expected);
}

TEST_F(IoUringTest, ManyInFlightEachCompletesOnceWithItsUserData)
{
    std::vector<std::vector<uint8_t>> bufs(8, std::vector<uint8_t>(512));
    for (uint64_t i = 0; i < 8; ++i) {
        std::array<std::span<uint8_t>, 1> const one { std::span<uint8_t>(bufs[i]) };
        ASSERT_TRUE(m_ring->queue_readv(m_fd, i * 512, one, 100 + i));
    }
    // The depth is the limit: a ninth request is refused without being queued.
    std::array<std::span<uint8_t>, 1> const extra { std::span<uint8_t>(bufs[0]) };
    EXPECT_FALSE(m_ring->queue_readv(m_fd, 0, extra, 999));
    EXPECT_EQ(m_ring->in_flight(), 8u);
    ASSERT_TRUE(m_ring->submit());
    auto done = collect(8);
    ASSERT_EQ(done.size(), 8u);
    std::array<int, 8> seen {};
    for (auto const& c : done) {
        ASSERT_GE(c.user_data, 100u);
        ASSERT_LT(c.user_data, 108u);
        ++seen[c.user_data - 100];
        EXPECT_EQ(c.res, 512);
    }
    for (uint64_t i = 0; i < 8; ++i) {
        EXPECT_EQ(seen[i], 1);
        EXPECT_EQ(bufs[i], m_file.read(i * 512, 512));
    }
}

TEST_F(IoUringTest, ErrorsComeBackAsNegativeErrno)
{
    int const ro = ::open(m_file.path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ro, 0);
    std::vector<uint8_t> data(512, 1);
    std::array<std::span<uint8_t const>, 1> const one { std::span<uint8_t const>(data) };
    ASSERT_TRUE(m_ring->queue_writev(ro, 0, one, 1));
    // wait() submits what is queued and blocks for a completion: the drain path of reset().
    std::array<IoUring::Completion, 2> done;
    auto n = m_ring->wait(done);
    ASSERT_TRUE(n);
    ASSERT_EQ(*n, 1u);
    EXPECT_EQ(done[0].user_data, 1u);
    EXPECT_EQ(done[0].res, -EBADF);
    ::close(ro);
    // Nothing in flight: wait() returns at once.
    n = m_ring->wait(done);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0u);
}
