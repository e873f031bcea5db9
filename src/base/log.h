// Logging: spdlog behind a few macros, plus a rate limiter for anything a guest can trigger.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <spdlog/spdlog.h>

namespace hako {

/// Sets up the process logger on stderr. verbosity: 0 = warnings, 1 = info, 2+ = debug.
void init_logging(int verbosity);

/// Lets a log site through at most `burst` times per `period`; counts what it suppressed.
/// Lock-free so it can sit on a vCPU's exit path.
class RateLimiter final {
public:
    explicit RateLimiter(uint32_t burst = 10, std::chrono::milliseconds period = std::chrono::seconds(5))
        : m_burst(burst), m_period_ns(static_cast<uint64_t>(std::chrono::nanoseconds(period).count()))
    {
    }
    /// True if this event may be logged now.
    bool allow();
    uint64_t suppressed() const { return m_suppressed.load(std::memory_order_relaxed); }

private:
    uint32_t m_burst;
    uint64_t m_period_ns;
    std::atomic<uint64_t> m_window_start { 0 };
    std::atomic<uint32_t> m_in_window { 0 };
    std::atomic<uint64_t> m_suppressed { 0 };
};

} // namespace hako

#define HAKO_ERROR(...) ::spdlog::error(__VA_ARGS__)
#define HAKO_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define HAKO_INFO(...) ::spdlog::info(__VA_ARGS__)
#define HAKO_DEBUG(...) ::spdlog::debug(__VA_ARGS__)

// Logs a warning through a per-call-site RateLimiter: for guest-triggered events.
#define HAKO_WARN_RATELIMITED(...)                   \
    do {                                             \
        static ::hako::RateLimiter _hako_limiter;    \
        if (_hako_limiter.allow())                   \
            ::spdlog::warn(__VA_ARGS__);             \
    } while (0)
