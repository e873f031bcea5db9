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

using namespace hako;
using namespace hako::net;

namespace {

constexpr MacAddress GUEST_MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
constexpr auto LIVENESS_BOUND = std::chrono::seconds(10);

void put_be16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
uint16_t get_be16(uint8_t const* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void put_be32(uint8_t* p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
uint32_t get_be32(uint8_t const* p)
{
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8
        | p[3];
}

uint16_t ip_checksum(uint8_t const* p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += get_be16(p + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

void put_eth(uint8_t* p, MacAddress const& dst, uint16_t type)
{
    std::copy(dst.begin(), dst.end(), p);
    std::copy(GUEST_MAC.begin(), GUEST_MAC.end(), p + 6);
    put_be16(p + 12, type);
}

constexpr MacAddress BROADCAST { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
constexpr uint32_t XID = 0x1badcafe;

/// Ethernet + IPv4 (0.0.0.0 -> 255.255.255.255) + UDP 68 -> 67 + BOOTP with a DHCPDISCOVER option.
std::vector<uint8_t> dhcp_discover()
{
    constexpr size_t BOOTP_LEN = 236 + 312; // fixed part + the full vendor area libslirp expects
    std::vector<uint8_t> f(14 + 20 + 8 + BOOTP_LEN, 0);
    put_eth(f.data(), BROADCAST, 0x0800);
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    put_be16(ip + 2, static_cast<uint16_t>(20 + 8 + BOOTP_LEN));
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    put_be32(ip + 12, 0);
    put_be32(ip + 16, 0xffffffff);
    put_be16(ip + 10, ip_checksum(ip, 20));
    uint8_t* udp = ip + 20;
    put_be16(udp, 68);
    put_be16(udp + 2, 67);
    put_be16(udp + 4, static_cast<uint16_t>(8 + BOOTP_LEN));
    // checksum 0: none
    uint8_t* bootp = udp + 8;
    bootp[0] = 1; // BOOTREQUEST
    bootp[1] = 1; // ethernet
    bootp[2] = 6;
    put_be32(bootp + 4, XID);
    std::copy(GUEST_MAC.begin(), GUEST_MAC.end(), bootp + 28); // chaddr
    uint8_t* opt = bootp + 236;
    put_be32(opt, 0x63825363); // magic cookie
    opt[4] = 53;               // DHCP message type
    opt[5] = 1;
    opt[6] = 1; // DISCOVER
    opt[7] = 255;
    return f;
}

/// Who has 10.0.2.2? Tell 10.0.2.15.
std::vector<uint8_t> arp_request()
{
    std::vector<uint8_t> f(60, 0);
    put_eth(f.data(), BROADCAST, 0x0806);
    uint8_t* a = f.data() + 14;
    put_be16(a, 1);
    put_be16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put_be16(a + 6, 1); // request
    std::copy(GUEST_MAC.begin(), GUEST_MAC.end(), a + 8);
    put_be32(a + 14, 0x0a00020f);
    put_be32(a + 24, 0x0a000202);
    return f;
}

/// Collects frames from the backend's thread.
class Collector {
public:
    explicit Collector(Backend& b)
    {
        b.set_receiver([this](std::span<uint8_t const> frame) {
            std::lock_guard lock(m_lock);
            m_frames.emplace_back(frame.begin(), frame.end());
            m_cv.notify_all();
            return true;
        });
    }
    /// Waits (bounded) for a frame that `match` accepts; returns it, or an empty vector.
    template<typename Match>
    std::vector<uint8_t> wait_for(Match match)
    {
        std::unique_lock lock(m_lock);
        std::vector<uint8_t> found;
        m_cv.wait_for(lock, LIVENESS_BOUND, [&] {
            for (auto const& f : m_frames)
                if (match(f)) {
                    found = f;
                    return true;
                }
            return false;
        });
        return found;
    }

private:
    std::mutex m_lock;
    std::condition_variable m_cv;
    std::vector<std::vector<uint8_t>> m_frames;
};

bool is_dhcp_reply(std::vector<uint8_t> const& f)
{
    if (f.size() < 14 + 20 + 8 + 240 || get_be16(&f[12]) != 0x0800 || f[14 + 9] != 17)
        return false;
    size_t const ihl = (f[14] & 0xf) * 4u;
    uint8_t const* udp = &f[14 + ihl];
    return get_be16(udp) == 67 && get_be16(udp + 2) == 68 && get_be32(udp + 8 + 4) == XID;
}

} // namespace

TEST(SlirpBackend, DhcpDiscoverGetsAnOfferFor10_0_2_15)
{
    auto b = SlirpBackend::create(SlirpOptions {});
    ASSERT_TRUE(b) << b.error().message();
    Collector c(**b);
    (*b)->send(dhcp_discover());
    auto reply = c.wait_for(is_dhcp_reply);
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
    Collector c(**b);
    (*b)->send(arp_request());
    auto reply = c.wait_for([](std::vector<uint8_t> const& f) {
        return f.size() >= 42 && get_be16(&f[12]) == 0x0806 && get_be16(&f[14 + 6]) == 2;
    });
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
