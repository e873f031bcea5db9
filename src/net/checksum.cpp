#include "net/checksum.h"

#include <array>

namespace hako::net {

uint32_t inet_sum(std::span<uint8_t const> bytes, uint32_t sum)
{
    uint64_t acc = sum;
    size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2)
        acc += static_cast<uint32_t>(bytes[i]) << 8 | bytes[i + 1];
    if (i < bytes.size())
        acc += static_cast<uint32_t>(bytes[i]) << 8;
    while (acc >> 32)
        acc = (acc & 0xffffffff) + (acc >> 32);
    return static_cast<uint32_t>(acc);
}

uint16_t inet_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

namespace {
constexpr std::array<uint32_t, 256> make_crc_table()
{
    std::array<uint32_t, 256> t {};
    for (uint32_t n = 0; n < 256; ++n) {
        uint32_t c = n;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1; // the reflected polynomial 0x04C11DB7
        t[n] = c;
    }
    return t;
}
constexpr auto CRC_TABLE = make_crc_table();
} // namespace

uint32_t ethernet_crc32(std::span<uint8_t const> bytes)
{
    uint32_t c = 0xffffffff;
    for (uint8_t b : bytes)
        c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >> 8);
    return ~c;
}

uint32_t multicast_crc(std::span<uint8_t const> addr)
{
    uint32_t crc = 0xffffffff;
    for (uint8_t byte : addr) {
        for (int bit = 0; bit < 8; ++bit, byte >>= 1) {
            bool const feedback = ((crc >> 31) ^ (byte & 1u)) != 0;
            crc = (crc << 1) ^ (feedback ? 0x04c11db7u : 0u);
        }
    }
    return crc;
}

} // namespace hako::net
