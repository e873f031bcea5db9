#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace hako {

void init_logging(int verbosity)
{
    auto logger = spdlog::stderr_color_mt("hako");
    logger->set_pattern("hako: %^%l%$: %v");
    spdlog::set_default_logger(logger);
    if (verbosity <= 0)
        spdlog::set_level(spdlog::level::warn);
    else if (verbosity == 1)
        spdlog::set_level(spdlog::level::info);
    else
        spdlog::set_level(spdlog::level::debug);
}

static spdlog::level::level_enum to_spdlog(LogLevel level)
{
    switch (level) {
    case LogLevel::Debug:
        return spdlog::level::debug;
    case LogLevel::Info:
        return spdlog::level::info;
    case LogLevel::Warn:
        return spdlog::level::warn;
    case LogLevel::Error:
        return spdlog::level::err;
    }
    return spdlog::level::err;
}

bool log_enabled(LogLevel level) { return spdlog::should_log(to_spdlog(level)); }

void log_write(LogLevel level, std::string_view message) { spdlog::log(to_spdlog(level), "{}", message); }

bool RateLimiter::allow()
{
    auto const now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
    uint64_t start = m_window_start.load(std::memory_order_relaxed);
    if (now - start >= m_period_ns) {
        // A new window; one thread wins the reset, the others just count in it.
        if (m_window_start.compare_exchange_strong(start, now, std::memory_order_relaxed))
            m_in_window.store(0, std::memory_order_relaxed);
    }
    if (m_in_window.fetch_add(1, std::memory_order_relaxed) < m_burst)
        return true;
    m_suppressed.fetch_add(1, std::memory_order_relaxed);
    return false;
}

} // namespace hako
