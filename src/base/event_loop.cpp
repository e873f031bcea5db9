#include "base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"

namespace hako {

using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<EventLoop>> EventLoop::create()
{
    UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep.valid())
        return Error::from_errno(ErrorKind::Io, "epoll_create1");
    auto wake = TRY(EventFd::create(EFD_NONBLOCK));
    UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!tfd.valid())
        return Error::from_errno(ErrorKind::Io, "timerfd_create");
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(ep), std::move(wake), std::move(tfd)));
    TRY(loop->add_fd(loop->m_wake.fd(), EPOLLIN, [l = loop.get()](uint32_t) {
        l->m_wake.consume();
        l->run_posted();
    }));
    TRY(loop->add_fd(loop->m_timerfd.get(), EPOLLIN, [l = loop.get()](uint32_t) {
        uint64_t expirations;
        [[maybe_unused]] auto n = ::read(l->m_timerfd.get(), &expirations, sizeof expirations);
        l->fire_timers();
    }));
    return loop;
}

EventLoop::EventLoop(UniqueFd epoll, EventFd wake, UniqueFd timer)
    : m_epoll(std::move(epoll)), m_wake(std::move(wake)), m_timerfd(std::move(timer))
{
}

EventLoop::~EventLoop() = default;

Result<void> EventLoop::add_fd(int fd, uint32_t events, Handler handler)
{
    epoll_event ev {};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
        return Error::from_errno(ErrorKind::Io, "epoll_ctl(ADD)");
    m_handlers[fd] = std::make_shared<Handler>(std::move(handler));
    return ok();
}

void EventLoop::remove_fd(int fd)
{
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    m_handlers.erase(fd);
}

EventLoop::TimerId EventLoop::add_timer(std::chrono::nanoseconds delay, std::chrono::nanoseconds interval,
    std::function<void()> fn)
{
    TimerId id;
    {
        std::lock_guard lock(m_mutex);
        id = m_next_timer++;
        m_timers.emplace(id, Timer { Clock::now() + delay, interval, std::move(fn) });
    }
    // Re-arm on the loop thread: timerfd_settime is cheap, but keep all timerfd handling in one place.
    post([this] { rearm_timer(); });
    return id;
}

void EventLoop::cancel_timer(TimerId id)
{
    std::lock_guard lock(m_mutex);
    m_timers.erase(id);
}

void EventLoop::post(std::function<void()> fn)
{
    {
        std::lock_guard lock(m_mutex);
        m_posted.push_back(std::move(fn));
    }
    m_wake.signal();
}

void EventLoop::stop()
{
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.signal();
}

void EventLoop::run_posted()
{
    std::vector<std::function<void()>> work;
    {
        std::lock_guard lock(m_mutex);
        work.swap(m_posted);
    }
    for (auto& fn : work)
        fn();
}

void EventLoop::rearm_timer()
{
    Clock::time_point earliest = Clock::time_point::max();
    {
        std::lock_guard lock(m_mutex);
        for (auto const& [id, t] : m_timers)
            earliest = std::min(earliest, t.due);
    }
    itimerspec spec {};
    if (earliest != Clock::time_point::max()) {
        auto delta = std::chrono::duration_cast<std::chrono::nanoseconds>(earliest - Clock::now()).count();
        if (delta < 1000)
            delta = 1000; // zero would disarm the timer
        spec.it_value.tv_sec = static_cast<time_t>(delta / 1000000000);
        spec.it_value.tv_nsec = static_cast<long>(delta % 1000000000);
    }
    ::timerfd_settime(m_timerfd.get(), 0, &spec, nullptr);
}

void EventLoop::fire_timers()
{
    auto const now = Clock::now();
    std::vector<std::function<void()>> due;
    {
        std::lock_guard lock(m_mutex);
        for (auto it = m_timers.begin(); it != m_timers.end();) {
            if (it->second.due <= now) {
                due.push_back(it->second.fn);
                if (it->second.interval.count() > 0) {
                    it->second.due += it->second.interval;
                    if (it->second.due < now)
                        it->second.due = now + it->second.interval; // fell behind: skip, don't burst
                    ++it;
                } else {
                    it = m_timers.erase(it);
                }
            } else {
                ++it;
            }
        }
    }
    for (auto& fn : due)
        fn();
    rearm_timer();
}

void EventLoop::run()
{
    epoll_event events[32];
    for (;;) {
        {
            std::lock_guard lock(m_mutex);
            if (m_stop)
                return;
        }
        int n = ::epoll_wait(m_epoll.get(), events, 32, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            HAKO_ERROR("epoll_wait: {}", std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            auto it = m_handlers.find(events[i].data.fd);
            if (it == m_handlers.end())
                continue;
            auto handler = it->second; // keep alive if the handler removes itself
            (*handler)(events[i].events);
        }
    }
}

} // namespace hako
