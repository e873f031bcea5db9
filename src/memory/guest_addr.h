// GuestAddr: a guest-physical address as a strong type, so it is never mixed up with host pointers or lengths.
#pragma once

#include <cstdint>
#include <optional>

#include <fmt/format.h>

#include "base/checked.h"

namespace hako::memory {

class GuestAddr final {
public:
    constexpr GuestAddr() = default;
    constexpr explicit GuestAddr(uint64_t value) : m_value(value) {}
    constexpr uint64_t value() const { return m_value; }
    /// this + offset, or nullopt on overflow of the 64-bit space.
    std::optional<GuestAddr> checked_add(uint64_t offset) const
    {
        auto r = hako::checked_add(m_value, offset);
        if (!r)
            return std::nullopt;
        return GuestAddr(*r);
    }
    /// this + offset; the caller knows it cannot overflow (layout constants).
    constexpr GuestAddr unchecked_add(uint64_t offset) const { return GuestAddr(m_value + offset); }
    // Spelled out rather than a defaulted <=>: clang 14 flags the rewritten `<=> ... < 0` under
    // -Wzero-as-null-pointer-constant.
    constexpr bool operator==(GuestAddr const& o) const { return m_value == o.m_value; }
    constexpr bool operator!=(GuestAddr const& o) const { return m_value != o.m_value; }
    constexpr bool operator<(GuestAddr const& o) const { return m_value < o.m_value; }
    constexpr bool operator<=(GuestAddr const& o) const { return m_value <= o.m_value; }
    constexpr bool operator>(GuestAddr const& o) const { return m_value > o.m_value; }
    constexpr bool operator>=(GuestAddr const& o) const { return m_value >= o.m_value; }

private:
    uint64_t m_value { 0 };
};

} // namespace hako::memory

template<>
struct fmt::formatter<hako::memory::GuestAddr> : fmt::formatter<uint64_t> {
    auto format(hako::memory::GuestAddr a, format_context& ctx) const
    {
        return fmt::format_to(ctx.out(), "{:#x}", a.value());
    }
};
