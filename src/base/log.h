// Logging: spdlog behind a few macros, plus a rate limiter for anything a guest can trigger.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <string_view>

#include <fmt/format.h>

namespace hako {

/// Sets up the process logger on stderr. verbosity: 0 = warnings, 1 = info, 2+ = debug.
void init_logging(int verbosity);

enum class LogLevel { Debug, Info, Warn, Error };
/// True if messages of this level are printed (checked before formatting).
bool log_enabled(LogLevel level);
/// Prints one message (spdlog behind it; only log.cpp includes spdlog, which keeps compile times down).
void log_write(LogLevel level, std::string_view message);

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

#define HAKO_LOG(level, ...)                                        \
    do {                                                            \
        if (::hako::log_enabled(level))                             \
            ::hako::log_write(level, ::fmt::format(__VA_ARGS__));   \
    } while (0)
#define HAKO_ERROR(...) HAKO_LOG(::hako::LogLevel::Error, __VA_ARGS__)
#define HAKO_WARN(...) HAKO_LOG(::hako::LogLevel::Warn, __VA_ARGS__)
#define HAKO_INFO(...) HAKO_LOG(::hako::LogLevel::Info, __VA_ARGS__)
#define HAKO_DEBUG(...) HAKO_LOG(::hako::LogLevel::Debug, __VA_ARGS__)

// Logs a warning through a per-call-site RateLimiter: for guest-triggered events.
#define HAKO_WARN_RATELIMITED(...)                                  \
    do {                                                            \
        static ::hako::RateLimiter _hako_limiter;                   \
        if (::hako::log_enabled(::hako::LogLevel::Warn) && _hako_limiter.allow()) \
            ::hako::log_write(::hako::LogLevel::Warn, ::fmt::format(__VA_ARGS__)); \
    } while (0)
