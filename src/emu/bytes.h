// Little-endian byte spans to and from integers, for the emulator's memory operands and stack frames.
#pragma once

#include <cstdint>
#include <span>

namespace hako::emu {

inline uint64_t load_le(std::span<uint8_t const> b)
{
    uint64_t v = 0;
    for (size_t i = b.size(); i-- > 0;)
        v = (v << 8) | b[i];
    return v;
}

inline void store_le(std::span<uint8_t> b, uint64_t v)
{
    for (size_t i = 0; i < b.size(); ++i)
        b[i] = static_cast<uint8_t>(v >> (8 * i));
}

} // namespace hako::emu
