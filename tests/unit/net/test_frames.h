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

inline void put_be16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
inline void put_be32(uint8_t* p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline uint32_t get_be32(uint8_t const* p)
{
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8
        | p[3];
}

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
