// Checked arithmetic on guest-supplied numbers.
#pragma once

#include <cstdint>
#include <optional>

namespace hako {

/// a + b, or nullopt on unsigned overflow.
inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return std::nullopt;
    return r;
}

/// a * b, or nullopt on unsigned overflow.
inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return std::nullopt;
    return r;
}

/// True if [offset, offset+len) lies within [0, size).
inline bool range_within(uint64_t offset, uint64_t len, uint64_t size)
{
    auto end = checked_add(offset, len);
    return end && *end <= size;
}

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
constexpr uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;

} // namespace hako
