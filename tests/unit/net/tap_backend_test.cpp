// TapBackend against the kernel's tun driver. Each test runs its body on a thread that first moves into a private
// network namespace (unshare(CLONE_NEWNET) affects only that thread and what it starts), so the host's interfaces
// are untouched; that needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), as the tap guest tests do.
// The tap gets 10.9.0.1/24; a static ARP entry puts the "guest" 10.9.0.2 at GUEST_MAC behind it. Waits are bounded
// (liveness, not timing).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "base/unique_fd.h"
#include "net/tap_backend.h"
#include "frame_collector.h"
#include "test_frames.h"

using namespace hako;
using namespace hako::net;
using namespace hako::net::test;

namespace {

constexpr char const* IFNAME = "hakotest0";
constexpr uint32_t HOST_IP = 0x0a090001;  // 10.9.0.1, the tap's address
constexpr uint32_t GUEST_IP = 0x0a090002; // 10.9.0.2, behind the tap

/// Runs `body` on a thread in a new network namespace; a failure to enter one fails the test.
template<typename Body>
void in_private_netns(Body body)
{
    std::thread t([&] {
        if (::unshare(CLONE_NEWNET) != 0) {
            ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno) << " (the tap tests need root)";
            return;
        }
        body();
    });
    t.join();
}

sockaddr_in inet(uint32_t ip, uint16_t port = 0)
{
    sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(ip);
    a.sin_port = htons(port);
    return a;
}

/// Gives the tap its address, brings it up, adds the static ARP entry; returns the tap's MAC.
MacAddress configure_tap()
{
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_GE(s.get(), 0);
    ifreq ifr {};
    std::strncpy(ifr.ifr_name, IFNAME, IFNAMSIZ - 1);
    auto addr = inet(HOST_IP);
    std::memcpy(&ifr.ifr_addr, &addr, sizeof(addr));
    EXPECT_EQ(::ioctl(s.get(), SIOCSIFADDR, &ifr), 0) << std::strerror(errno);
    auto mask = inet(0xffffff00);
    std::memcpy(&ifr.ifr_netmask, &mask, sizeof(mask));
    EXPECT_EQ(::ioctl(s.get(), SIOCSIFNETMASK, &ifr), 0) << std::strerror(errno);
    EXPECT_EQ(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), 0) << std::strerror(errno);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    EXPECT_EQ(::ioctl(s.get(), SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
    EXPECT_EQ(::ioctl(s.get(), SIOCGIFHWADDR, &ifr), 0) << std::strerror(errno);
    MacAddress mac {};
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());

    arpreq arp {};
    auto guest = inet(GUEST_IP);
    std::memcpy(&arp.arp_pa, &guest, sizeof(guest));
    arp.arp_ha.sa_family = ARPHRD_ETHER;
    std::memcpy(arp.arp_ha.sa_data, GUEST_MAC.data(), GUEST_MAC.size());
    arp.arp_flags = ATF_COM | ATF_PERM;
    std::strncpy(arp.arp_dev, IFNAME, sizeof(arp.arp_dev) - 1);
    EXPECT_EQ(::ioctl(s.get(), SIOCSARP, &arp), 0) << std::strerror(errno);
    return mac;
}

using Received = ReceivedFrame;

/// A UDP/IPv4 frame to `port` (the test's traffic among the IPv6 chatter a new interface sends).
auto udp_to(uint16_t port)
{
    return [port](std::vector<uint8_t> const& f) {
        return f.size() >= 42 && get_be16(&f[12]) == 0x0800 && f[23] == 17 && get_be16(&f[36]) == port;
    };
}

/// The one's complement sum over the UDP pseudo-header and the datagram of an IPv4 frame (0xffff: checksum ok).
uint16_t udp_sum(std::vector<uint8_t> const& f)
{
    size_t const ihl = (f[14] & 0xfu) * 4;
    size_t const udp_len = get_be16(&f[14 + ihl + 4]);
    std::vector<uint8_t> buf(12 + udp_len + 1, 0);
    std::memcpy(&buf[0], &f[14 + 12], 8);
    buf[9] = 17;
    put_be16(&buf[10], static_cast<uint16_t>(udp_len));
    std::memcpy(&buf[12], &f[14 + ihl], udp_len);
    return static_cast<uint16_t>(~ip_checksum(buf.data(), 12 + udp_len + (udp_len & 1)));
}

/// An ethernet + IPv4 + UDP frame from the guest (GUEST_MAC, 10.9.0.2:9002) to the tap (10.9.0.1:dport).
std::vector<uint8_t> guest_udp_frame(MacAddress const& tap_mac, uint16_t dport, std::string const& payload)
{
    std::vector<uint8_t> f(14 + 20 + 8 + payload.size(), 0);
    put_eth(f.data(), tap_mac, 0x0800);
    uint8_t* ip = &f[14];
    ip[0] = 0x45;
    put_be16(ip + 2, static_cast<uint16_t>(20 + 8 + payload.size()));
    ip[8] = 64;
    ip[9] = 17;
    put_be32(ip + 12, GUEST_IP);
    put_be32(ip + 16, HOST_IP);
    put_be16(ip + 10, ip_checksum(ip, 20));
    uint8_t* udp = ip + 20;
    put_be16(udp, 9002);
    put_be16(udp + 2, dport);
    put_be16(udp + 4, static_cast<uint16_t>(8 + payload.size()));
    std::memcpy(udp + 8, payload.data(), payload.size());
    put_be16(udp + 6, 0);
    put_be16(udp + 6, static_cast<uint16_t>(~udp_sum(f))); // the full checksum
    return f;
}

/// Replaces the frame's full UDP checksum by the partial one (folded pseudo-header sum), as an offloading guest does.
void make_partial(std::vector<uint8_t>& f)
{
    uint8_t pseudo[12] {};
    std::memcpy(pseudo, &f[14 + 12], 8);
    pseudo[9] = 17;
    std::memcpy(pseudo + 10, &f[14 + 20 + 4], 2);
    put_be16(&f[14 + 20 + 6], static_cast<uint16_t>(~ip_checksum(pseudo, sizeof(pseudo))));
}

std::string recv_text(int fd)
{
    char buf[2048];
    ssize_t const n = ::recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

UniqueFd udp_socket(uint32_t ip, uint16_t port, std::chrono::milliseconds timeout)
{
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    auto a = inet(ip, port);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr const*>(&a), sizeof(a)), 0) << std::strerror(errno);
    timeval tv { static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000) };
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
}

} // namespace

TEST(TapBackend, HostFramesReachTheReceiverCompleteOrPartialAsAsked)
{
    in_private_netns([] {
        auto tap = TapBackend::open(IFNAME);
        ASSERT_TRUE(tap) << tap.error().message();
        TapBackend& b = **tap;
        EXPECT_TRUE(b.supports_offloads()) << "the tun driver takes TUN_F_CSUM/TSO offloads on every kernel since 2.6.27";
        FrameCollector c(b);
        configure_tap();
        UniqueFd sender = udp_socket(HOST_IP, 0, std::chrono::milliseconds(1000));
        auto to = inet(GUEST_IP, 9000);

        // No receive offloads: the kernel hands over complete frames.
        std::string const first(200, 'a');
        ASSERT_EQ(::sendto(sender.get(), first.data(), first.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(first.size()));
        Received r = c.wait_for(udp_to(9000));
        ASSERT_FALSE(r.frame.empty()) << "the datagram never came out of the tap";
        EXPECT_FALSE(r.header.flags & VNET_HDR_F_NEEDS_CSUM);
        EXPECT_EQ(r.header.gso_type, VNET_HDR_GSO_NONE);
        EXPECT_EQ(udp_sum(r.frame), 0xffff) << "the checksum of a complete frame verifies";

        // With TUN_F_CSUM the kernel leaves the checksum to us: NEEDS_CSUM at the UDP checksum field.
        b.set_receive_offloads(Offloads { .csum = true });
        to.sin_port = htons(9001);
        ASSERT_EQ(::sendto(sender.get(), first.data(), first.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(first.size()));
        r = c.wait_for(udp_to(9001));
        ASSERT_FALSE(r.frame.empty());
        ASSERT_TRUE(r.header.flags & VNET_HDR_F_NEEDS_CSUM);
        EXPECT_EQ(r.header.csum_start, 14 + 20);
        EXPECT_EQ(r.header.csum_offset, 6);
        // Completing it as the guest would gives a valid checksum.
        std::vector<uint8_t> const l4(r.frame.begin() + r.header.csum_start, r.frame.end());
        std::vector<uint8_t> fixed = r.frame;
        put_be16(&fixed[r.header.csum_start + r.header.csum_offset], 0);
        uint16_t const partial = get_be16(&r.frame[r.header.csum_start + r.header.csum_offset]);
        std::vector<uint8_t> sum_input(l4);
        sum_input.push_back(0);
        put_be16(&sum_input[r.header.csum_offset], partial);
        put_be16(&fixed[r.header.csum_start + r.header.csum_offset], ip_checksum(sum_input.data(), l4.size() + (l4.size() & 1)));
        EXPECT_EQ(udp_sum(fixed), 0xffff);
        EXPECT_GE(b.stats().rx_frames, 2u);
    });
}

TEST(TapBackend, GuestFramesCarryTheirOffloadHeaderToTheKernel)
{
    in_private_netns([] {
        auto tap = TapBackend::open(IFNAME);
        ASSERT_TRUE(tap) << tap.error().message();
        TapBackend& b = **tap;
        MacAddress const tap_mac = configure_tap();
        UniqueFd listener = udp_socket(HOST_IP, 7000, std::chrono::milliseconds(2000));

        // A partial checksum is only valid because NEEDS_CSUM travels with it.
        auto partial = guest_udp_frame(tap_mac, 7000, "partial checksum, completed by the host");
        make_partial(partial);
        b.send(VnetHeader { .flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 14 + 20, .csum_offset = 6 }, partial);
        EXPECT_EQ(recv_text(listener.get()), "partial checksum, completed by the host");

        // The same frame without the header is a frame with a wrong checksum: the kernel drops it. A complete frame
        // sent after it is the next datagram to arrive.
        b.send(partial);
        b.send(guest_udp_frame(tap_mac, 7000, "complete"));
        EXPECT_EQ(recv_text(listener.get()), "complete");
        timeval tv { 0, 200000 };
        ::setsockopt(listener.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        EXPECT_EQ(recv_text(listener.get()), "") << "a frame with a bad checksum was delivered";
        EXPECT_EQ(b.stats().tx_frames, 3u);
        EXPECT_EQ(b.stats().tx_errors, 0u);

        // A GSO header the kernel finds invalid (TCPv4 on a UDP frame without NEEDS_CSUM) is refused and counted.
        b.send(VnetHeader { .gso_type = VNET_HDR_GSO_TCPV4, .hdr_len = 42, .gso_size = 0 }, partial);
        EXPECT_EQ(b.stats().tx_errors, 1u);
    });
}

TEST(TapBackend, OpenErrorsAreClear)
{
    auto too_long = TapBackend::open("a-name-that-is-too-long");
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().kind(), ErrorKind::InvalidArgument);
    auto empty = TapBackend::open("");
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().kind(), ErrorKind::InvalidArgument);
    in_private_netns([] {
        auto first = TapBackend::open(IFNAME);
        ASSERT_TRUE(first) << first.error().message();
        // A second attach to a single-queue tap that is in use is refused.
        auto second = TapBackend::open(IFNAME);
        ASSERT_FALSE(second);
        EXPECT_EQ(second.error().kind(), ErrorKind::Busy) << second.error().message();
    });
}
