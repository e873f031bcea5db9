#include "net/packet.h"

#include <algorithm>
#include <array>
#include <optional>
#include <cstring>

#include "base/bytes.h"
#include "net/checksum.h"

namespace hako::net {

namespace {

constexpr uint16_t ETHERTYPE_IPV4 = 0x0800;
constexpr uint16_t ETHERTYPE_IPV6 = 0x86dd;
constexpr uint16_t ETHERTYPE_VLAN = 0x8100;
constexpr size_t ETH_HEADER = 14;
constexpr size_t VLAN_TAG = 4;

/// The pseudo-header sum (RFC 768/793 for IPv4, RFC 8200 8.1 for IPv6) for an L4 segment of l4_len bytes.
uint32_t pseudo_header_sum(std::span<uint8_t const> frame, PacketLayout const& p, size_t l4_len)
{
    uint32_t sum = 0;
    if (p.ipv6) {
        sum = inet_sum(frame.subspan(p.l3 + 8, 32)); // source and destination addresses
        sum = inet_sum(std::array<uint8_t, 4> { static_cast<uint8_t>(l4_len >> 24), static_cast<uint8_t>(l4_len >> 16),
                           static_cast<uint8_t>(l4_len >> 8), static_cast<uint8_t>(l4_len) },
            sum);
    } else {
        sum = inet_sum(frame.subspan(p.l3 + 12, 8));
        sum = inet_sum(std::array<uint8_t, 2> { static_cast<uint8_t>(l4_len >> 8), static_cast<uint8_t>(l4_len) }, sum);
    }
    return inet_sum(std::array<uint8_t, 2> { 0, p.protocol }, sum);
}

size_t l4_checksum_offset(PacketLayout const& p) { return p.l4 + (p.tcp() ? 16 : 6); }

} // namespace

std::optional<PacketLayout> parse_packet(std::span<uint8_t const> frame)
{
    if (frame.size() < ETH_HEADER)
        return std::nullopt;
    size_t l3 = ETH_HEADER;
    uint16_t type = get_be16(&frame[12]);
    if (type == ETHERTYPE_VLAN) {
        if (frame.size() < ETH_HEADER + VLAN_TAG)
            return std::nullopt;
        type = get_be16(&frame[16]);
        l3 += VLAN_TAG;
    }
    PacketLayout p;
    p.l3 = l3;
    size_t l4 = 0;
    if (type == ETHERTYPE_IPV4) {
        if (frame.size() < l3 + IPV4_HEADER_MIN || (frame[l3] >> 4) != 4)
            return std::nullopt;
        size_t const ihl = size_t { frame[l3] & 0x0fu } * 4;
        size_t const total = get_be16(&frame[l3 + 2]);
        if (ihl < IPV4_HEADER_MIN || total < ihl || l3 + total > frame.size())
            return std::nullopt;
        p.end = l3 + total;
        p.protocol = frame[l3 + 9];
        bool const fragment = (get_be16(&frame[l3 + 6]) & 0x3fff) != 0; // MF or a fragment offset
        if (!fragment)
            l4 = l3 + ihl;
    } else if (type == ETHERTYPE_IPV6) {
        if (frame.size() < l3 + IPV6_HEADER_LEN || (frame[l3] >> 4) != 6)
            return std::nullopt;
        size_t const payload = get_be16(&frame[l3 + 4]);
        if (l3 + IPV6_HEADER_LEN + payload > frame.size())
            return std::nullopt;
        p.ipv6 = true;
        p.end = l3 + IPV6_HEADER_LEN + payload;
        p.protocol = frame[l3 + 6];
        l4 = l3 + IPV6_HEADER_LEN;
    } else {
        return std::nullopt;
    }
    if (l4 != 0 && p.protocol == IP_PROTO_TCP && l4 + TCP_HEADER_MIN <= p.end) {
        size_t const doff = static_cast<size_t>(frame[l4 + 12] >> 4) * 4;
        if (doff >= TCP_HEADER_MIN && l4 + doff <= p.end) {
            p.l4 = l4;
            p.l4_header = doff;
        }
    } else if (l4 != 0 && p.protocol == IP_PROTO_UDP && l4 + UDP_HEADER_LEN <= p.end) {
        p.l4 = l4;
        p.l4_header = UDP_HEADER_LEN;
    }
    return p;
}

bool fill_ipv4_checksum(std::span<uint8_t> frame, PacketLayout const& p)
{
    if (p.ipv6 || p.end == 0)
        return false;
    size_t const ihl = size_t { frame[p.l3] & 0x0fu } * 4;
    put_be16(&frame[p.l3 + 10], 0);
    put_be16(&frame[p.l3 + 10], inet_checksum(inet_sum(frame.subspan(p.l3, ihl))));
    return true;
}

bool fill_l4_checksum(std::span<uint8_t> frame, PacketLayout const& p)
{
    if (!p.tcp() && !p.udp())
        return false;
    size_t const len = p.end - p.l4;
    size_t const at = l4_checksum_offset(p);
    put_be16(&frame[at], 0);
    uint16_t c = inet_checksum(inet_sum(frame.subspan(p.l4, len), pseudo_header_sum(frame, p, len)));
    if (c == 0 && p.udp())
        c = 0xffff;
    put_be16(&frame[at], c);
    return true;
}

bool ipv4_checksum_ok(std::span<uint8_t const> frame, PacketLayout const& p)
{
    if (p.ipv6 || p.end == 0)
        return false;
    size_t const ihl = size_t { frame[p.l3] & 0x0fu } * 4;
    return inet_fold(inet_sum(frame.subspan(p.l3, ihl))) == 0xffff;
}

bool l4_checksum_ok(std::span<uint8_t const> frame, PacketLayout const& p)
{
    if (!p.tcp() && !p.udp())
        return false;
    if (p.udp() && !p.ipv6 && get_be16(&frame[l4_checksum_offset(p)]) == 0)
        return true;
    size_t const len = p.end - p.l4;
    return inet_fold(inet_sum(frame.subspan(p.l4, len), pseudo_header_sum(frame, p, len))) == 0xffff;
}

size_t segment_tcp(std::span<uint8_t const> frame, PacketLayout const& p, size_t mss, std::span<uint8_t> scratch,
    std::function<void(std::span<uint8_t const>)> const& emit)
{
    size_t const hdr = p.l4 + p.l4_header;
    if (!p.tcp() || mss == 0 || scratch.size() < hdr + mss)
        return 0;
    size_t const payload = p.end - hdr;
    uint16_t const ip_id = p.ipv6 ? 0 : get_be16(&frame[p.l3 + 4]);
    uint32_t const seq = get_be32(&frame[p.l4 + 4]);
    uint8_t const flags = frame[p.l4 + 13];
    size_t offset = 0;
    size_t count = 0;
    // At most payload / mss + 1 segments.
    do {
        size_t const chunk = std::min(mss, payload - offset);
        bool const last = offset + chunk >= payload;
        uint8_t* const f = scratch.data();
        std::memcpy(f, frame.data(), hdr);
        std::memcpy(f + hdr, frame.data() + hdr + offset, chunk);
        auto seg = scratch.first(hdr + chunk);
        PacketLayout sp = p;
        sp.end = hdr + chunk;
        if (p.ipv6) {
            put_be16(f + p.l3 + 4, static_cast<uint16_t>(sp.end - p.l3 - IPV6_HEADER_LEN));
        } else {
            put_be16(f + p.l3 + 2, static_cast<uint16_t>(sp.end - p.l3));
            put_be16(f + p.l3 + 4, static_cast<uint16_t>(ip_id + count));
            fill_ipv4_checksum(seg, sp);
        }
        put_be32(f + p.l4 + 4, seq + static_cast<uint32_t>(offset));
        if (!last)
            f[p.l4 + 13] = static_cast<uint8_t>(flags & ~(TCP_FLAG_FIN | TCP_FLAG_PSH));
        fill_l4_checksum(seg, sp);
        emit(seg);
        offset += chunk;
        ++count;
    } while (offset < payload);
    return count;
}

} // namespace hako::net
