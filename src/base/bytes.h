// Little- and big-endian helpers for device registers and wire structures: never cast a pointer to read a field.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace hako {

/// Reads up to 8 bytes of `data` as a little-endian integer.
inline uint64_t load_le(std::span<uint8_t const> data)
{
    uint64_t v = 0;
    for (size_t i = 0; i < data.size() && i < 8; ++i)
        v |= static_cast<uint64_t>(data[i]) << (8 * i);
    return v;
}

/// Writes the low data.size() bytes (up to 8) of v into data, little-endian.
inline void store_le(std::span<uint8_t> data, uint64_t v)
{
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i < 8 ? v >> (8 * i) : 0);
}

inline uint16_t get_be16(uint8_t const* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t get_be32(uint8_t const* p)
{
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void put_be16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
inline void put_be32(uint8_t* p, uint32_t v)
{
    put_be16(p, static_cast<uint16_t>(v >> 16));
    put_be16(p + 2, static_cast<uint16_t>(v));
}
inline uint16_t get_le16(uint8_t const* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get_le32(uint8_t const* p)
{
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16)
        | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t get_le64(uint8_t const* p) { return get_le32(p) | (static_cast<uint64_t>(get_le32(p + 4)) << 32); }
inline void put_le16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}
inline void put_le32(uint8_t* p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_le64(uint8_t* p, uint64_t v)
{
    put_le32(p, static_cast<uint32_t>(v));
    put_le32(p + 4, static_cast<uint32_t>(v >> 32));
}

} // namespace hako
