// Header parsing, checksum insertion and checking, and TCP segmentation for NIC models whose hardware finds the
// headers itself (the RTL8139C+ in C+ mode, for example), rather than being told their offsets by the driver.
//
// What is understood: Ethernet II with at most one 802.1Q tag; IPv4 (any header length 20-60, not a fragment) and
// IPv6 (a fixed header directly followed by TCP or UDP: no extension headers); TCP (data offset 20-60) and UDP.
// Everything is bounds-checked against the frame; a frame that does not parse is reported as such, never read past.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

namespace hako::net {

constexpr uint8_t IP_PROTO_TCP = 6;
constexpr uint8_t IP_PROTO_UDP = 17;
constexpr size_t IPV4_HEADER_MIN = 20;
constexpr size_t IPV6_HEADER_LEN = 40;
constexpr size_t TCP_HEADER_MIN = 20;
constexpr size_t UDP_HEADER_LEN = 8;
constexpr uint8_t TCP_FLAG_FIN = 0x01;
constexpr uint8_t TCP_FLAG_PSH = 0x08;

/// Where the headers of an IP packet in an Ethernet frame are.
struct PacketLayout {
    size_t l3 { 0 };        // offset of the IP header
    size_t l4 { 0 };        // offset of the TCP/UDP header (0 if neither)
    size_t l4_header { 0 }; // its length (TCP data offset, or 8)
    size_t end { 0 };       // end of the IP packet (from the IP length field; trailing padding excluded)
    bool ipv6 { false };
    uint8_t protocol { 0 }; // IP protocol / next header
    bool tcp() const { return l4 != 0 && protocol == IP_PROTO_TCP; }
    bool udp() const { return l4 != 0 && protocol == IP_PROTO_UDP; }
};

/// Parses an Ethernet frame carrying IPv4 or IPv6. nullopt if it is not IP, is truncated, or its lengths disagree
/// with the frame. l4 stays 0 for an IPv4 fragment or another protocol.
std::optional<PacketLayout> parse_packet(std::span<uint8_t const> frame);

/// Sets the IPv4 header checksum. false if the layout is not IPv4.
bool fill_ipv4_checksum(std::span<uint8_t> frame, PacketLayout const& p);
/// Sets the TCP or UDP checksum over the pseudo-header and the segment (the field's old content is ignored; a UDP
/// result of 0 is sent as 0xffff). false if the layout has neither.
bool fill_l4_checksum(std::span<uint8_t> frame, PacketLayout const& p);
/// Whether the IPv4 header checksum verifies.
bool ipv4_checksum_ok(std::span<uint8_t const> frame, PacketLayout const& p);
/// Whether the TCP or UDP checksum verifies (a zero UDP checksum over IPv4 means "none" and passes).
bool l4_checksum_ok(std::span<uint8_t const> frame, PacketLayout const& p);

/// Cuts a TCP packet into segments of at most mss payload bytes: each one gets the headers, its IPv4 total length
/// and ID (the first segment's ID plus its index) or IPv6 payload length, its sequence number, FIN and PSH only on
/// the last, and fresh IPv4 and TCP checksums. Each segment is built in scratch (at least the headers plus mss
/// bytes) and passed to emit. \return the number of segments, or 0 (nothing emitted) if the frame is not TCP, mss
/// is 0 or scratch is too small. A packet with no payload is sent as one segment.
size_t segment_tcp(std::span<uint8_t const> frame, PacketLayout const& p, size_t mss, std::span<uint8_t> scratch,
    std::function<void(std::span<uint8_t const>)> const& emit);

} // namespace hako::net
