// The checksum helpers NIC models share: RFC 1071 sums and the Ethernet CRC-32.
#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "net/checksum.h"

using namespace hako::net;

TEST(Checksum, Rfc1071Example)
{
    // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    std::array<uint8_t, 8> const bytes { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
    EXPECT_EQ(inet_fold(inet_sum(bytes)), 0xddf2);
    EXPECT_EQ(inet_checksum(inet_sum(bytes)), 0x220d);
    // Chained over even pieces gives the same; an odd tail is padded with zero.
    EXPECT_EQ(inet_fold(inet_sum(std::span(bytes).subspan(4), inet_sum(std::span(bytes).first(4)))), 0xddf2);
    std::array<uint8_t, 3> const odd { 0x12, 0x34, 0x56 };
    EXPECT_EQ(inet_fold(inet_sum(odd)), 0x1234 + 0x5600);
}

TEST(Checksum, Ipv4HeaderVerifies)
{
    // A real IPv4 header (checksum b861) sums to ffff.
    std::array<uint8_t, 20> const ip { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0,
        0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
    EXPECT_EQ(inet_fold(inet_sum(ip)), 0xffff);
}

TEST(Checksum, EthernetCrc32CheckValue)
{
    std::string_view const text = "123456789";
    auto const bytes = std::span(static_cast<uint8_t const*>(static_cast<void const*>(text.data())), text.size());
    EXPECT_EQ(ethernet_crc32(bytes), 0xcbf43926u);
    EXPECT_EQ(ethernet_crc32({}), 0u);
}
