// Test frames for the network tests: a DHCP DISCOVER and an ARP request as a guest would send them, built byte
// by byte (big-endian network order), and the helpers to read replies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "net/net_options.h"

namespace hako::net::test {

constexpr MacAddress GUEST_MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

inline uint16_t ip_checksum(uint8_t const* p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += get_be16(p + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

inline void put_eth(uint8_t* p, MacAddress const& dst, uint16_t type)
{
    std::copy(dst.begin(), dst.end(), p);
    std::copy(GUEST_MAC.begin(), GUEST_MAC.end(), p + 6);
    put_be16(p + 12, type);
}

/// Ethernet (optionally tagged) + IPv4 (10.0.2.15 -> 10.0.2.2, ID 0x1234, DF) or IPv6 + TCP (20-byte header, port
/// 40000 -> 7, seq 0x01000000, PSH ACK FIN) or UDP (proto 6 or 17), payload bytes i*3+1; checksums left zero.
inline std::vector<uint8_t> make_ip_frame(bool ipv6, uint8_t proto, size_t payload, bool vlan = false)
{
    size_t const eth = vlan ? 18 : 14;
    size_t const ip = ipv6 ? 40 : 20;
    size_t const l4 = proto == 6 ? 20 : 8;
    std::vector<uint8_t> f(eth + ip + l4 + payload, 0);
    for (int i = 0; i < 6; ++i) {
        f[static_cast<size_t>(i)] = 0x02;
        f[6 + static_cast<size_t>(i)] = static_cast<uint8_t>(0x10 + i);
    }
    if (vlan) {
        put_be16(&f[12], 0x8100);
        put_be16(&f[14], 0x2005);
    }
    put_be16(&f[eth - 2], ipv6 ? 0x86dd : 0x0800);
    uint8_t* h = &f[eth];
    if (ipv6) {
        h[0] = 0x60;
        put_be16(h + 4, static_cast<uint16_t>(l4 + payload));
        h[6] = proto;
        h[7] = 64;
        for (int i = 0; i < 32; ++i)
            h[8 + i] = static_cast<uint8_t>(0xa0 + i);
    } else {
        h[0] = 0x45;
        put_be16(h + 2, static_cast<uint16_t>(ip + l4 + payload));
        put_be16(h + 4, 0x1234);
        put_be16(h + 6, 0x4000); // DF
        h[8] = 64;
        h[9] = proto;
        put_be32(h + 12, 0x0a00020f);
        put_be32(h + 16, 0x0a000202);
    }
    uint8_t* t = h + ip;
    put_be16(t, 40000);
    put_be16(t + 2, 7);
    if (proto == 6) {
        put_be32(t + 4, 0x01000000);
        put_be32(t + 8, 0x55);
        t[12] = 5 << 4;
        t[13] = 0x18 | 0x01; // PSH ACK FIN
        put_be16(t + 14, 8192);
    } else {
        put_be16(t + 4, static_cast<uint16_t>(8 + payload));
    }
    for (size_t i = 0; i < payload; ++i)
        t[l4 + i] = static_cast<uint8_t>(i * 3 + 1);
    return f;
}

constexpr MacAddress BROADCAST { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
constexpr uint32_t XID = 0x1badcafe;

/// Ethernet + IPv4 (0.0.0.0 -> 255.255.255.255) + UDP 68 -> 67 + BOOTP with a DHCPDISCOVER option.
inline std::vector<uint8_t> dhcp_discover()
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
inline std::vector<uint8_t> arp_request()
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

inline bool is_dhcp_reply(std::vector<uint8_t> const& f)
{
    if (f.size() < 14 + 20 + 8 + 240 || get_be16(&f[12]) != 0x0800 || f[14 + 9] != 17)
        return false;
    size_t const ihl = (f[14] & 0xf) * 4u;
    uint8_t const* udp = &f[14 + ihl];
    return get_be16(udp) == 67 && get_be16(udp + 2) == 68 && get_be32(udp + 8 + 4) == XID;
}

} // namespace hako::net::test
