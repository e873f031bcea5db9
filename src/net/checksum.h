// Checksums NIC models compute for offloads and frame check sequences.
#pragma once

#include <cstdint>
#include <span>

namespace hako::net {

/// Adds the bytes as big-endian 16-bit words (an odd last byte padded with zero) to a 32-bit ones-complement
/// accumulator (RFC 1071). Chain calls on even-length pieces; fold the result with inet_fold().
uint32_t inet_sum(std::span<uint8_t const> bytes, uint32_t sum = 0);
/// Folds an accumulator to 16 bits (end-around carry), not complemented.
uint16_t inet_fold(uint32_t sum);
/// The checksum to store: the complement of the folded sum.
inline uint16_t inet_checksum(uint32_t sum) { return static_cast<uint16_t>(~inet_fold(sum)); }

/// The IEEE 802.3 CRC-32 of a frame, as the FCS transmitted after it (least significant byte first).
uint32_t ethernet_crc32(std::span<uint8_t const> bytes);
/// The big-endian CRC-32 (polynomial 0x04c11db7, no final inversion) of a destination address, whose top 6 bits
/// index the 64-bit multicast hash filter of the DP8390 / RTL8139 family.
uint32_t multicast_crc(std::span<uint8_t const> addr);

} // namespace hako::net
