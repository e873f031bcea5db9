// SlirpBackend against the real libslirp: a DHCP DISCOVER gets an OFFER for 10.0.2.15, an ARP request for the
// gateway gets a reply, and bad host forwards fail in create(). The waits are bounded (liveness, not timing).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "base/bytes.h"
#include "net/slirp_backend.h"
#include "frame_collector.h"
#include "test_frames.h"

using namespace hako;
using namespace hako::net;
using namespace hako::net::test;

namespace {

constexpr auto LIVENESS_BOUND = std::chrono::seconds(10);


} // namespace

TEST(SlirpBackend, DhcpDiscoverGetsAnOfferFor10_0_2_15)
{
    auto b = SlirpBackend::create(SlirpOptions {});
    ASSERT_TRUE(b) << b.error().message();
    FrameCollector c(**b);
    (*b)->send(dhcp_discover());
    auto reply = c.wait_for(is_dhcp_reply).frame;
    ASSERT_FALSE(reply.empty()) << "no DHCP reply within the liveness bound";

    size_t const ihl = (reply[14] & 0xf) * 4u;
    uint8_t const* bootp = &reply[14 + ihl + 8];
    EXPECT_EQ(bootp[0], 2); // BOOTREPLY
    EXPECT_EQ(get_be32(bootp + 16), 0x0a00020fu) << "yiaddr";
    EXPECT_TRUE(std::equal(GUEST_MAC.begin(), GUEST_MAC.end(), bootp + 28));
    // The ethernet frame is addressed to the client (or broadcast) and comes from the gateway's MAC.
    EXPECT_TRUE(std::equal(GUEST_MAC.begin(), GUEST_MAC.end(), reply.begin())
        || std::equal(BROADCAST.begin(), BROADCAST.end(), reply.begin()));
    // Option 53 (message type) says OFFER.
    uint8_t const* opt = bootp + 236;
    ASSERT_EQ(get_be32(opt), 0x63825363u);
    size_t const end = reply.size() - (14 + ihl + 8 + 236);
    bool offer = false;
    for (size_t i = 4; i + 2 < end;) {
        uint8_t const code = opt[i];
        if (code == 255)
            break;
        if (code == 0) {
            ++i;
            continue;
        }
        if (code == 53)
            offer = opt[i + 2] == 2;
        i += 2u + opt[i + 1];
    }
    EXPECT_TRUE(offer);
    EXPECT_GE((*b)->stats().tx_frames, 1u);
    EXPECT_GE((*b)->stats().rx_frames, 1u);
}

TEST(SlirpBackend, ArpRequestForTheGatewayGetsAReply)
{
    auto b = SlirpBackend::create(SlirpOptions {});
    ASSERT_TRUE(b) << b.error().message();
    FrameCollector c(**b);
    (*b)->send(arp_request());
    auto reply = c.wait_for([](std::vector<uint8_t> const& f) {
        return f.size() >= 42 && get_be16(&f[12]) == 0x0806 && get_be16(&f[14 + 6]) == 2;
    }).frame;
    ASSERT_FALSE(reply.empty()) << "no ARP reply within the liveness bound";
    EXPECT_TRUE(std::equal(GUEST_MAC.begin(), GUEST_MAC.end(), reply.begin()));
    EXPECT_EQ(get_be32(&reply[14 + 14]), 0x0a000202u); // sender: the gateway
    EXPECT_EQ(get_be32(&reply[14 + 24]), 0x0a00020fu); // target: us
    EXPECT_TRUE(std::equal(GUEST_MAC.begin(), GUEST_MAC.end(), reply.begin() + 14 + 18));
}

TEST(SlirpBackend, RefusedFramesWaitForRxBuffers)
{
    auto b = SlirpBackend::create(SlirpOptions {});
    ASSERT_TRUE(b) << b.error().message();
    std::mutex lock;
    std::condition_variable cv;
    bool accept = false;
    int accepted = 0;
    (*b)->set_receiver([&](std::span<uint8_t const>) {
        std::lock_guard g(lock);
        if (!accept)
            return false;
        ++accepted;
        cv.notify_all();
        return true;
    });
    (*b)->send(arp_request());
    // Wait until the reply is pending (refused once).
    auto deadline = std::chrono::steady_clock::now() + LIVENESS_BOUND;
    while ((*b)->rx_stats().pending == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_EQ((*b)->rx_stats().pending, 1u);
    {
        std::lock_guard g(lock);
        accept = true;
    }
    (*b)->rx_buffers_available();
    std::unique_lock g(lock);
    ASSERT_TRUE(cv.wait_for(g, LIVENESS_BOUND, [&] { return accepted == 1; }));
    g.unlock();
    (*b)->set_receiver({});
    EXPECT_EQ((*b)->rx_stats().pending, 0u);
    EXPECT_EQ((*b)->rx_stats().delivered, 1u);
}

TEST(SlirpBackend, HostPortInUseIsAClearError)
{
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(s, 1), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    uint16_t const port = ntohs(addr.sin_port);

    SlirpOptions o;
    o.host_forwards.push_back(HostForward { Protocol::Tcp, Ipv4Address(127, 0, 0, 1), port, Ipv4Address(10, 0, 2, 15), 22 });
    auto b = SlirpBackend::create(o);
    ::close(s);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().message().find("hostfwd tcp:127.0.0.1:" + std::to_string(port)), std::string::npos)
        << b.error().message();
}

TEST(SlirpBackend, MissingTftpDirectoryIsAClearError)
{
    SlirpOptions o;
    o.tftp_root = "/nonexistent/hako-tftp";
    auto b = SlirpBackend::create(o);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().message().find("tftp directory"), std::string::npos);
}

TEST(SlirpBackend, HostForwardToAFreePortWorks)
{
    SlirpOptions o;
    // Port 0: the kernel picks a free port, so this cannot collide with anything else on the machine.
    o.host_forwards.push_back(HostForward { Protocol::Udp, Ipv4Address(127, 0, 0, 1), 0, Ipv4Address(10, 0, 2, 15), 53 });
    auto b = SlirpBackend::create(o);
    ASSERT_TRUE(b) << b.error().message();
}
