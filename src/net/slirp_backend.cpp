#include "net/slirp_backend.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <utility>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <libslirp.h>

#include "base/log.h"

namespace hako::net {

struct SlirpBackend::Timer {
    SlirpTimerId id { SLIRP_TIMER_RA };
    void* cb_opaque { nullptr };
    SlirpTimerCb cb { nullptr }; // set for timers made through the old timer_new callback
    int64_t expire_ms { -1 };    // -1: not armed
};

struct SlirpBackend::SlirpState {
    Slirp* slirp { nullptr };
    std::string tftp_root;
    std::string bootfile;
    std::string hostname;
    std::vector<std::unique_ptr<Timer>> timers;
    std::vector<pollfd> pollfds;
};

namespace {

int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

in_addr to_in_addr(Ipv4Address a)
{
    in_addr r {};
    r.s_addr = htonl(a.value);
    return r;
}

short to_poll_events(int slirp_events)
{
    int e = 0;
    if (slirp_events & SLIRP_POLL_IN)
        e |= POLLIN;
    if (slirp_events & SLIRP_POLL_OUT)
        e |= POLLOUT;
    if (slirp_events & SLIRP_POLL_PRI)
        e |= POLLPRI;
    if (slirp_events & SLIRP_POLL_ERR)
        e |= POLLERR;
    if (slirp_events & SLIRP_POLL_HUP)
        e |= POLLHUP;
    return static_cast<short>(e);
}

int from_poll_events(short revents)
{
    int e = 0;
    if (revents & POLLIN)
        e |= SLIRP_POLL_IN;
    if (revents & POLLOUT)
        e |= SLIRP_POLL_OUT;
    if (revents & POLLPRI)
        e |= SLIRP_POLL_PRI;
    if (revents & POLLERR)
        e |= SLIRP_POLL_ERR;
    if (revents & POLLHUP)
        e |= SLIRP_POLL_HUP;
    return e;
}

} // namespace

// The C callbacks libslirp calls, all on the thread that is using the Slirp instance (create()'s caller during
// slirp_new, the loop thread afterwards). `opaque` is the SlirpBackend.
struct SlirpBackend::Callbacks {
    static SlirpBackend& self(void* opaque) { return *static_cast<SlirpBackend*>(opaque); }

    static ssize_t send_packet(void const* buf, size_t len, void* opaque)
    {
        auto& b = self(opaque);
        {
            std::lock_guard lock(b.m_tx_lock);
            ++b.m_stats.rx_frames;
        }
        b.deliver(std::span<uint8_t const>(static_cast<uint8_t const*>(buf), len));
        return static_cast<ssize_t>(len);
    }
    static void guest_error(char const* msg, void* opaque)
    {
        auto& b = self(opaque);
        {
            std::lock_guard lock(b.m_tx_lock);
            ++b.m_stats.guest_errors;
        }
        HAKO_WARN_RATELIMITED("net-slirp: guest error: {}", msg);
    }
    static int64_t clock_get_ns(void*) { return now_ns(); }
    static void* timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque)
    {
        auto t = std::make_unique<Timer>();
        t->cb = cb;
        t->cb_opaque = cb_opaque;
        Timer* raw = t.get();
        self(opaque).m_state->timers.push_back(std::move(t));
        return raw;
    }
    static void* timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque)
    {
        auto t = std::make_unique<Timer>();
        t->id = id;
        t->cb_opaque = cb_opaque;
        Timer* raw = t.get();
        self(opaque).m_state->timers.push_back(std::move(t));
        return raw;
    }
    static void timer_free(void* timer, void* opaque)
    {
        auto& timers = self(opaque).m_state->timers;
        std::erase_if(timers, [timer](auto const& t) { return t.get() == timer; });
    }
    static void timer_mod(void* timer, int64_t expire_ms, void*) { static_cast<Timer*>(timer)->expire_ms = expire_ms; }
    static void register_poll_fd(int, void*) { }
    static void unregister_poll_fd(int, void*) { }
    static void notify(void* opaque) { self(opaque).m_wake.signal(); }
    static int add_poll(int fd, int events, void* opaque) { return self(opaque).add_poll(fd, events); }
    static int get_revents(int idx, void* opaque) { return self(opaque).get_revents(idx); }
};

namespace {

// libslirp keeps a pointer to this table for the instance's lifetime.
SlirpCb const SLIRP_CALLBACKS = [] {
    SlirpCb cb {};
    cb.send_packet = &SlirpBackend::Callbacks::send_packet;
    cb.guest_error = &SlirpBackend::Callbacks::guest_error;
    cb.clock_get_ns = &SlirpBackend::Callbacks::clock_get_ns;
    cb.timer_new = &SlirpBackend::Callbacks::timer_new;
    cb.timer_free = &SlirpBackend::Callbacks::timer_free;
    cb.timer_mod = &SlirpBackend::Callbacks::timer_mod;
    cb.register_poll_fd = &SlirpBackend::Callbacks::register_poll_fd;
    cb.unregister_poll_fd = &SlirpBackend::Callbacks::unregister_poll_fd;
    cb.notify = &SlirpBackend::Callbacks::notify;
    cb.timer_new_opaque = &SlirpBackend::Callbacks::timer_new_opaque;
    return cb;
}();

std::string describe(HostForward const& f)
{
    return fmt::format("hostfwd {}:{}:{}-{}:{}", f.protocol == Protocol::Udp ? "udp" : "tcp",
        format_ipv4(f.host_addr), f.host_port, format_ipv4(f.guest_addr), f.guest_port);
}

} // namespace

SlirpBackend::SlirpBackend(EventFd wake) : m_state(std::make_unique<SlirpState>()), m_wake(std::move(wake)) { }

Result<std::unique_ptr<SlirpBackend>> SlirpBackend::create(SlirpOptions const& options)
{
    if (!options.tftp_root.empty()) {
        struct stat st {};
        if (::stat(options.tftp_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return Error(ErrorKind::NotFound, fmt::format("--net: tftp directory '{}' does not exist", options.tftp_root));
    }
    auto wake = TRY(EventFd::create(EFD_NONBLOCK));
    std::unique_ptr<SlirpBackend> backend(new SlirpBackend(std::move(wake)));
    SlirpState& st = *backend->m_state;
    st.tftp_root = options.tftp_root;
    st.bootfile = options.bootfile;
    st.hostname = options.hostname;

    uint32_t const mask = options.prefix_len == 0 ? 0 : ~uint32_t { 0 } << (32 - options.prefix_len);
    SlirpConfig cfg {};
    cfg.version = 4;
    cfg.restricted = options.restricted ? 1 : 0;
    cfg.in_enabled = true;
    cfg.vnetwork = to_in_addr(options.network);
    cfg.vnetmask = to_in_addr(Ipv4Address(mask));
    cfg.vhost = to_in_addr(options.host);
    cfg.in6_enabled = false;
    cfg.vhostname = st.hostname.empty() ? nullptr : st.hostname.c_str();
    cfg.tftp_server_name = nullptr;
    cfg.tftp_path = st.tftp_root.empty() ? nullptr : st.tftp_root.c_str();
    cfg.bootfile = st.bootfile.empty() ? nullptr : st.bootfile.c_str();
    cfg.vdhcp_start = to_in_addr(options.dhcp_start);
    cfg.vnameserver = to_in_addr(options.dns);
    cfg.disable_host_loopback = false;
    cfg.enable_emu = false;
    st.slirp = slirp_new(&cfg, &SLIRP_CALLBACKS, backend.get());
    if (!st.slirp)
        return Error(ErrorKind::InvalidArgument, "--net: libslirp rejected the network configuration");

    for (auto const& f : options.host_forwards) {
        errno = 0;
        int r = slirp_add_hostfwd(st.slirp, f.protocol == Protocol::Udp ? 1 : 0, to_in_addr(f.host_addr), f.host_port,
            to_in_addr(f.guest_addr), f.guest_port);
        if (r < 0) {
            int const err = errno;
            std::string why = err ? std::strerror(err) : "the port is in use or the address is not local";
            return Error(err == EADDRINUSE ? ErrorKind::Busy : ErrorKind::InvalidArgument,
                fmt::format("--net: {}: cannot listen on {}:{}: {}", describe(f), format_ipv4(f.host_addr),
                    f.host_port, why));
        }
    }
    backend->m_thread = std::thread([b = backend.get()] { b->run(); });
    return backend;
}

SlirpBackend::~SlirpBackend()
{
    m_stop.store(true);
    m_wake.signal();
    if (m_thread.joinable())
        m_thread.join();
    if (m_state->slirp)
        slirp_cleanup(m_state->slirp);
}

void SlirpBackend::send(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_tx_lock);
    if (frame.size() > ETH_MAX_FRAME_LEN || m_tx_queue.size() >= TX_MAX_FRAMES
        || m_tx_bytes + frame.size() > TX_MAX_BYTES) {
        ++m_stats.tx_dropped;
        return;
    }
    bool const was_empty = m_tx_queue.empty();
    m_tx_queue.emplace_back(frame.begin(), frame.end());
    m_tx_bytes += frame.size();
    ++m_stats.tx_frames;
    if (was_empty)
        m_wake.signal(); // the loop drains the whole queue when it wakes
}

bool SlirpBackend::tx_full() const
{
    std::lock_guard lock(m_tx_lock);
    bool const full = m_tx_queue.size() >= TX_MAX_FRAMES || m_tx_bytes + ETH_MAX_FRAME_LEN > TX_MAX_BYTES;
    if (full) {
        m_tx_full_seen = true;
        m_wake.signal(); // make sure the loop drains and reports back
    }
    return full;
}

void SlirpBackend::rx_buffers_available()
{
    m_rx_retry.store(true);
    m_wake.signal();
}

SlirpStats SlirpBackend::stats() const
{
    std::lock_guard lock(m_tx_lock);
    return m_stats;
}

int SlirpBackend::add_poll(int fd, int events)
{
    auto& fds = m_state->pollfds;
    fds.push_back(pollfd { fd, to_poll_events(events), 0 });
    return static_cast<int>(fds.size() - 1);
}

int SlirpBackend::get_revents(int idx) const
{
    auto const& fds = m_state->pollfds;
    if (idx < 0 || static_cast<size_t>(idx) >= fds.size())
        return 0;
    return from_poll_events(fds[static_cast<size_t>(idx)].revents);
}

int64_t SlirpBackend::next_timer_delay_ms() const
{
    int64_t const now_ms = now_ns() / 1000000;
    int64_t best = -1;
    for (auto const& t : m_state->timers) {
        if (t->expire_ms < 0)
            continue;
        int64_t const d = std::max<int64_t>(0, t->expire_ms - now_ms);
        if (best < 0 || d < best)
            best = d;
    }
    return best;
}

void SlirpBackend::fire_timers()
{
    int64_t const now_ms = now_ns() / 1000000;
    // Callbacks may add, re-arm or free timers: collect the due ones first and check each still exists.
    std::vector<Timer*> due;
    for (auto const& t : m_state->timers)
        if (t->expire_ms >= 0 && t->expire_ms <= now_ms)
            due.push_back(t.get());
    for (Timer* t : due) {
        auto& timers = m_state->timers;
        if (std::none_of(timers.begin(), timers.end(), [t](auto const& p) { return p.get() == t; }))
            continue;
        t->expire_ms = -1;
        if (t->cb)
            t->cb(t->cb_opaque);
        else
            slirp_handle_timer(m_state->slirp, t->id, t->cb_opaque);
    }
}

void SlirpBackend::run()
{
    pthread_setname_np(pthread_self(), "net-slirp");
    SlirpState& st = *m_state;
    std::vector<std::vector<uint8_t>> batch;
    while (!m_stop.load()) {
        st.pollfds.clear();
        st.pollfds.push_back(pollfd { m_wake.fd(), POLLIN, 0 });
        uint32_t timeout_ms = 1000;
        slirp_pollfds_fill(st.slirp, &timeout_ms, &Callbacks::add_poll, this);
        int64_t const timer = next_timer_delay_ms();
        if (timer >= 0 && timer < timeout_ms)
            timeout_ms = static_cast<uint32_t>(timer);
        int const n = ::poll(st.pollfds.data(), st.pollfds.size(), static_cast<int>(std::min<uint32_t>(timeout_ms, 1000)));
        if (n > 0 && (st.pollfds[0].revents & POLLIN))
            m_wake.consume();
        slirp_pollfds_poll(st.slirp, n < 0 ? 1 : 0, &Callbacks::get_revents, this);
        fire_timers();
        bool was_full = false;
        {
            std::lock_guard lock(m_tx_lock);
            batch.swap(m_tx_queue);
            m_tx_bytes = 0;
            was_full = std::exchange(m_tx_full_seen, false);
        }
        for (auto const& f : batch)
            slirp_input(st.slirp, f.data(), static_cast<int>(f.size()));
        batch.clear();
        if (was_full)
            notify_tx_ready(); // the NIC that held frames back can send again
        if (m_rx_retry.exchange(false))
            flush_pending();
    }
}

} // namespace hako::net
