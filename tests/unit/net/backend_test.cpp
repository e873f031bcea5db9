// net::Backend's pending queue: order, bounds, and what happens without a Receiver.
#include <gtest/gtest.h>

#include <vector>

#include "net/backend.h"

using namespace hako::net;

namespace {

class TestBackend final : public Backend {
public:
    void send(std::span<uint8_t const>) override { }
    void rx_buffers_available() override { }
    void inject(std::vector<uint8_t> const& frame) { deliver(frame); }
    void flush() { flush_pending(); }
};

std::vector<uint8_t> frame(uint8_t tag, size_t len = 60) { return std::vector<uint8_t>(len, tag); }

} // namespace

TEST(NetBackend, RefusedFramesAreRedeliveredInOrder)
{
    TestBackend b;
    bool accept = false;
    std::vector<uint8_t> got;
    b.set_receiver([&](std::span<uint8_t const> f) {
        if (!accept)
            return false;
        got.push_back(f[0]);
        return true;
    });
    b.inject(frame(1));
    b.inject(frame(2));
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(b.rx_stats().pending, 2u);
    accept = true;
    b.inject(frame(3)); // goes after the two pending ones
    EXPECT_EQ(got, (std::vector<uint8_t> { 1, 2, 3 }));
    EXPECT_EQ(b.rx_stats().delivered, 3u);
    EXPECT_EQ(b.rx_stats().queued, 2u);
    EXPECT_EQ(b.rx_stats().pending, 0u);
}

TEST(NetBackend, FlushStopsAtTheFirstRefusal)
{
    TestBackend b;
    int budget = 0;
    std::vector<uint8_t> got;
    b.set_receiver([&](std::span<uint8_t const> f) {
        if (budget == 0)
            return false;
        --budget;
        got.push_back(f[0]);
        return true;
    });
    for (uint8_t i = 0; i < 4; ++i)
        b.inject(frame(i));
    budget = 2;
    b.flush();
    EXPECT_EQ(got, (std::vector<uint8_t> { 0, 1 }));
    EXPECT_EQ(b.rx_stats().pending, 2u);
}

TEST(NetBackend, PendingQueueIsBounded)
{
    TestBackend b;
    b.set_receiver([](std::span<uint8_t const>) { return false; });
    for (size_t i = 0; i < Backend::PENDING_MAX_FRAMES + 10; ++i)
        b.inject(frame(1));
    EXPECT_EQ(b.rx_stats().pending, Backend::PENDING_MAX_FRAMES);
    EXPECT_EQ(b.rx_stats().dropped_full, 10u);

    TestBackend big;
    big.set_receiver([](std::span<uint8_t const>) { return false; });
    size_t const n = Backend::PENDING_MAX_BYTES / 60000;
    for (size_t i = 0; i < n + 3; ++i)
        big.inject(frame(1, 60000));
    EXPECT_EQ(big.rx_stats().pending, n);
    EXPECT_EQ(big.rx_stats().dropped_full, 3u);
}

TEST(NetBackend, WithoutAReceiverFramesAreDropped)
{
    TestBackend b;
    b.inject(frame(1));
    EXPECT_EQ(b.rx_stats().dropped_no_receiver, 1u);
    b.set_receiver([](std::span<uint8_t const>) { return false; });
    b.inject(frame(2));
    EXPECT_EQ(b.rx_stats().pending, 1u);
    b.set_receiver({});
    b.flush();
    EXPECT_EQ(b.rx_stats().pending, 0u);
    EXPECT_EQ(b.rx_stats().dropped_no_receiver, 2u);
}
