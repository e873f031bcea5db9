// EventLoop: the one epoll thread that serves every back-end (console input, timers, API, disks).
// Handlers run on the loop thread; other threads talk to it through post(), which is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace hako {

class EventLoop final {
public:
    using Handler = std::function<void(uint32_t events)>;
    using TimerId = uint64_t;

    [[nodiscard]] static Result<std::unique_ptr<EventLoop>> create();
    ~EventLoop();

    /// Watches fd for `events` (EPOLLIN...). Must be called on the loop thread or before run().
    [[nodiscard]] Result<void> add_fd(int fd, uint32_t events, Handler handler);
    void remove_fd(int fd);

    /// Runs fn once after `delay` (and every `interval` if non-zero). Thread-safe.
    TimerId add_timer(std::chrono::nanoseconds delay, std::chrono::nanoseconds interval, std::function<void()> fn);
    /// Cancels a timer; harmless if it already fired. Thread-safe.
    void cancel_timer(TimerId id);

    /// Runs fn on the loop thread. Thread-safe.
    void post(std::function<void()> fn);

    /// Runs until stop() is called.
    void run();
    /// Makes run() return. Thread-safe.
    void stop();

private:
    EventLoop(UniqueFd epoll, EventFd wake, UniqueFd timer);
    void rearm_timer();
    void fire_timers();
    void run_posted();

    UniqueFd m_epoll;
    EventFd m_wake;
    UniqueFd m_timerfd;
    std::map<int, std::shared_ptr<Handler>> m_handlers; // loop thread only

    struct Timer {
        std::chrono::steady_clock::time_point due;
        std::chrono::nanoseconds interval;
        std::function<void()> fn;
    };
    // Lock order: m_mutex is a leaf lock; never call out (handlers, timers) while holding it.
    std::mutex m_mutex;
    std::map<TimerId, Timer> m_timers;
    TimerId m_next_timer { 1 };
    std::vector<std::function<void()>> m_posted;
    bool m_stop { false };
};

} // namespace hako
