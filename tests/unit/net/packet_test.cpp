// net/packet.h: header parsing (IPv4, IPv6, VLAN, fragments, truncation), checksum insertion checked against an
// independent RFC 1071 computation, checksum verification, and TCP segmentation (lengths, IDs, sequence numbers,
// flags, checksums of every segment, the payload reassembled).
#include <gtest/gtest.h>

#include <vector>

#include "base/bytes.h"
#include "net/packet.h"
#include "test_frames.h"

using namespace hako;
using namespace hako::net;
using hako::net::test::make_ip_frame;

namespace {

/// The ones-complement sum of big-endian words (odd byte padded), folded: the reference the tests check against.
uint16_t ref_sum(std::vector<uint8_t> const& bytes)
{
    uint64_t s = 0;
    for (size_t i = 0; i < bytes.size(); i += 2)
        s += (uint32_t { bytes[i] } << 8) | (i + 1 < bytes.size() ? bytes[i + 1] : 0u);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

/// Checks the L4 checksum independently: pseudo-header + segment must sum to 0xffff.
bool ref_l4_ok(std::vector<uint8_t> const& f, size_t l3, bool ipv6)
{
    std::vector<uint8_t> ph;
    size_t l4, len;
    uint8_t proto;
    if (ipv6) {
        ph.assign(f.begin() + static_cast<ptrdiff_t>(l3 + 8), f.begin() + static_cast<ptrdiff_t>(l3 + 40));
        len = get_be16(&f[l3 + 4]);
        proto = f[l3 + 6];
        l4 = l3 + 40;
        ph.insert(ph.end(), { 0, 0, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len), 0, 0, 0, proto });
    } else {
        ph.assign(f.begin() + static_cast<ptrdiff_t>(l3 + 12), f.begin() + static_cast<ptrdiff_t>(l3 + 20));
        len = get_be16(&f[l3 + 2]) - 20u;
        proto = f[l3 + 9];
        l4 = l3 + 20;
        ph.insert(ph.end(), { 0, proto, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len) });
    }
    ph.insert(ph.end(), f.begin() + static_cast<ptrdiff_t>(l4), f.begin() + static_cast<ptrdiff_t>(l4 + len));
    return ref_sum(ph) == 0xffff;
}

} // namespace

TEST(Packet, ParsesIpv4TcpUdpAndIpv6)
{
    auto tcp = make_ip_frame(false, IP_PROTO_TCP, 100);
    auto p = parse_packet(tcp);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->l3, 14u);
    EXPECT_EQ(p->l4, 34u);
    EXPECT_EQ(p->l4_header, 20u);
    EXPECT_EQ(p->end, tcp.size());
    EXPECT_TRUE(p->tcp());
    EXPECT_FALSE(p->ipv6);

    auto udp6 = make_ip_frame(true, IP_PROTO_UDP, 33, true);
    p = parse_packet(udp6);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->l3, 18u);
    EXPECT_EQ(p->l4, 58u);
    EXPECT_TRUE(p->udp());
    EXPECT_TRUE(p->ipv6);

    // Ethernet padding after the IP datagram is not part of it.
    auto padded = make_ip_frame(false, IP_PROTO_UDP, 2);
    size_t const real = padded.size();
    padded.resize(60, 0);
    p = parse_packet(padded);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->end, real);
}

TEST(Packet, RefusesWhatIsNotWholeIp)
{
    auto f = make_ip_frame(false, IP_PROTO_TCP, 10);
    EXPECT_FALSE(parse_packet(std::span<uint8_t const>(f).first(13)));
    EXPECT_FALSE(parse_packet(std::span<uint8_t const>(f).first(30))); // IP header cut
    auto longer = f;
    put_be16(&longer[16], 2000); // total length beyond the frame
    EXPECT_FALSE(parse_packet(longer));
    auto ihl = f;
    ihl[14] = 0x44; // IHL 16 bytes
    EXPECT_FALSE(parse_packet(ihl));
    auto arp = f;
    put_be16(&arp[12], 0x0806);
    EXPECT_FALSE(parse_packet(arp));
    // A TCP data offset past the datagram: IP, but no L4.
    auto doff = f;
    doff[34 + 12] = 15 << 4;
    auto p = parse_packet(doff);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->l4, 0u);
    EXPECT_FALSE(fill_l4_checksum(doff, *p));
    // A fragment has no L4 header to look at.
    auto frag = f;
    put_be16(&frag[20], 0x2000); // MF
    p = parse_packet(frag);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->l4, 0u);
}

TEST(Packet, FillsAndVerifiesChecksums)
{
    for (bool ipv6 : { false, true }) {
        for (uint8_t proto : { IP_PROTO_TCP, IP_PROTO_UDP }) {
            for (size_t payload : { size_t { 0 }, size_t { 1 }, size_t { 999 } }) {
                auto f = make_ip_frame(ipv6, proto, payload, payload == 1);
                auto p = parse_packet(f);
                ASSERT_TRUE(p);
                if (!ipv6) {
                    put_be16(&f[p->l3 + 10], 0xdead); // garbage in the field is ignored
                    EXPECT_TRUE(fill_ipv4_checksum(f, *p));
                    EXPECT_EQ(ref_sum({ f.begin() + static_cast<ptrdiff_t>(p->l3),
                                  f.begin() + static_cast<ptrdiff_t>(p->l3 + 20) }),
                        0xffff);
                    EXPECT_TRUE(ipv4_checksum_ok(f, *p));
                } else {
                    EXPECT_FALSE(fill_ipv4_checksum(f, *p));
                }
                put_be16(&f[p->l4 + (proto == IP_PROTO_TCP ? 16 : 6)], 0xbeef);
                EXPECT_TRUE(fill_l4_checksum(f, *p));
                EXPECT_TRUE(ref_l4_ok(f, p->l3, ipv6)) << ipv6 << " " << int { proto } << " " << payload;
                EXPECT_TRUE(l4_checksum_ok(f, *p));
                f[f.size() - 1] ^= 0x40; // corrupt the last byte (payload or header)
                EXPECT_FALSE(l4_checksum_ok(f, *p));
            }
        }
    }
    // A zero UDP checksum over IPv4 means none.
    auto udp = make_ip_frame(false, IP_PROTO_UDP, 5);
    auto p = parse_packet(udp);
    ASSERT_TRUE(p);
    EXPECT_TRUE(l4_checksum_ok(udp, *p));
}

TEST(Packet, SegmentsTcp)
{
    for (bool ipv6 : { false, true }) {
        size_t const payload = 3000;
        size_t const mss = 1000 + (ipv6 ? 7 : 0);
        auto f = make_ip_frame(ipv6, IP_PROTO_TCP, payload);
        auto p = parse_packet(f);
        ASSERT_TRUE(p);
        std::vector<uint8_t> scratch(p->l4 + 20 + mss);
        std::vector<std::vector<uint8_t>> segs;
        size_t const n = segment_tcp(f, *p, mss, scratch,
            [&](std::span<uint8_t const> s) { segs.emplace_back(s.begin(), s.end()); });
        ASSERT_EQ(n, (payload + mss - 1) / mss);
        ASSERT_EQ(segs.size(), n);
        std::vector<uint8_t> data;
        for (size_t i = 0; i < n; ++i) {
            auto const& s = segs[i];
            auto sp = parse_packet(s);
            ASSERT_TRUE(sp) << i;
            EXPECT_EQ(sp->end, s.size());
            size_t const chunk = std::min(mss, payload - i * mss);
            EXPECT_EQ(s.size(), p->l4 + 20 + chunk);
            if (!ipv6) {
                EXPECT_EQ(get_be16(&s[p->l3 + 4]), 0x1234 + i);
                EXPECT_TRUE(ipv4_checksum_ok(s, *sp));
            }
            EXPECT_EQ(get_be32(&s[p->l4 + 4]), 0x01000000u + i * mss);
            uint8_t const flags = s[p->l4 + 13];
            bool const last = i + 1 == n;
            EXPECT_EQ((flags & (TCP_FLAG_FIN | TCP_FLAG_PSH)) != 0, last) << i;
            EXPECT_TRUE(flags & 0x10); // ACK on every segment
            EXPECT_TRUE(ref_l4_ok(s, p->l3, ipv6)) << i;
            data.insert(data.end(), s.begin() + static_cast<ptrdiff_t>(p->l4 + 20), s.end());
        }
        EXPECT_TRUE(std::equal(data.begin(), data.end(), f.begin() + static_cast<ptrdiff_t>(p->l4 + 20)));
    }
}

TEST(Packet, SegmentationRefusals)
{
    auto udp = make_ip_frame(false, IP_PROTO_UDP, 100);
    auto tcp = make_ip_frame(false, IP_PROTO_TCP, 100);
    std::vector<uint8_t> scratch(2000);
    int emitted = 0;
    auto emit = [&](std::span<uint8_t const>) { ++emitted; };
    EXPECT_EQ(segment_tcp(udp, *parse_packet(udp), 50, scratch, emit), 0u);
    EXPECT_EQ(segment_tcp(tcp, *parse_packet(tcp), 0, scratch, emit), 0u);
    EXPECT_EQ(segment_tcp(tcp, *parse_packet(tcp), 1990, scratch, emit), 0u); // headers + MSS beyond scratch
    EXPECT_EQ(emitted, 0);
    auto empty = make_ip_frame(false, IP_PROTO_TCP, 0);
    EXPECT_EQ(segment_tcp(empty, *parse_packet(empty), 536, scratch, emit), 1u);
    EXPECT_EQ(emitted, 1);
}
