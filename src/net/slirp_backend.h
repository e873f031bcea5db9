// SlirpBackend: user-mode networking through libslirp (4.x): the guest sees a NATed network (QEMU's "-nic user"):
// a gateway/host at 10.0.2.2, a DNS forwarder at 10.0.2.3, DHCP from 10.0.2.15, optional TFTP and host port
// forwards (hostfwd). No privileges needed.
//
// libslirp is not thread-safe, so everything that touches the Slirp instance runs on one thread, "net-slirp",
// in a poll() loop: slirp_pollfds_fill/slirp_pollfds_poll for its sockets, its timers (timer_new_opaque/timer_mod
// callbacks, kept in a list and fired from the loop), frames the guest sent (send() copies them into a bounded,
// mutex-protected queue and signals an eventfd that wakes the poll), and retries of pending receive frames
// (rx_buffers_available() sets a flag and signals the same eventfd). Frames libslirp emits (its send_packet
// callback, on that thread) go to the Receiver through Backend::deliver().
// create() builds the Slirp instance and adds the host forwards on the calling thread, before the loop thread
// exists, so a bad option or a host port in use comes back as an Error. The destructor stops and joins the thread
// and then frees the instance.
//
// Deliberately not done: IPv6 (disabled), guestfwd/exec/unix forwards, DNS search domains, state save/load,
// outbound address binding. Transmit frames beyond TX_MAX_FRAMES/TX_MAX_BYTES in flight are dropped (TCP in the
// guest retransmits).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::net {

struct SlirpStats {
    uint64_t tx_frames { 0 };   // guest frames passed to slirp_input
    uint64_t tx_dropped { 0 };  // guest frames dropped because the transmit queue was full (or too large)
    uint64_t rx_frames { 0 };   // frames libslirp sent towards the guest
    uint64_t guest_errors { 0 }; // libslirp's guest_error callback
};

class SlirpBackend final : public Backend {
public:
    static constexpr size_t TX_MAX_FRAMES = 512;
    static constexpr size_t TX_MAX_BYTES = 4 * 1024 * 1024;

    /// Creates the stack, adds the host forwards and starts the "net-slirp" thread.
    [[nodiscard]] static Result<std::unique_ptr<SlirpBackend>> create(SlirpOptions const& options);
    ~SlirpBackend() override;
    SlirpBackend(SlirpBackend const&) = delete;
    SlirpBackend& operator=(SlirpBackend const&) = delete;

    void send(std::span<uint8_t const> frame) override;
    void rx_buffers_available() override;
    /// True while the transmit queue has no room for a maximum-size frame; the loop calls TxReady once it drained.
    bool tx_full() const override;

    SlirpStats stats() const;

    // The libslirp callbacks (C linkage trampolines call these on the loop thread). Not for other callers.
    struct Callbacks;

private:
    struct Timer;
    explicit SlirpBackend(EventFd wake);
    void run();
    int add_poll(int fd, int events);
    int get_revents(int idx) const;
    int64_t next_timer_delay_ms() const;
    void fire_timers();

    struct SlirpState; // the Slirp*, its config strings and timers: loop thread only (after create())
    std::unique_ptr<SlirpState> m_state;
    EventFd m_wake;
    std::atomic<bool> m_stop { false };
    std::atomic<bool> m_rx_retry { false };
    std::thread m_thread;

    mutable std::mutex m_tx_lock; // a leaf lock: guards the transmit queue and the stats
    std::vector<std::vector<uint8_t>> m_tx_queue;
    size_t m_tx_bytes { 0 };
    mutable bool m_tx_full_seen { false }; // tx_full() answered true: tell TxReady once the queue drained
    SlirpStats m_stats;
};

} // namespace hako::net
