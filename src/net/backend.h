// net::Backend: where a NIC model's ethernet frames go and come from (user networking, tap, a test double).
// Frames are plain ethernet frames (destination MAC first, no FCS, no virtio header).
//
// Two directions:
//  - guest -> network: the NIC calls send(). Thread-safe; may be called from any thread, with the NIC's own lock
//    held: a backend only copies the frame into a bounded queue (or drops it) and wakes its own thread; it never
//    calls back into the NIC from send().
//  - network -> guest: the backend calls the Receiver the NIC registered with set_receiver(), always on the
//    backend's own delivery thread (for SlirpBackend: "net-slirp") and one frame at a time. The Receiver returns
//    false if the guest had no receive buffer; the backend then keeps the frame in a small bounded pending queue
//    (PENDING_MAX_FRAMES / PENDING_MAX_BYTES; a frame that does not fit is dropped and counted). When the guest
//    adds receive buffers the NIC calls rx_buffers_available(), which only wakes the delivery thread: that thread
//    redelivers the pending frames in order, stopping at the first one refused again.
//
// Lock order: Backend::m_rx_lock -> the NIC's lock (the Receiver runs with m_rx_lock held and takes the NIC lock).
// So a NIC may call send() and rx_buffers_available() with its lock held (neither takes m_rx_lock), but must not
// call set_receiver() with its lock held.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace hako::net {

/// Ethernet frame limits shared by NIC models and backends.
constexpr size_t ETH_HEADER_LEN = 14;       // destination, source, EtherType
constexpr size_t ETH_MIN_FRAME_LEN = ETH_HEADER_LEN;
constexpr size_t ETH_MAX_FRAME_LEN = 65550; // 64 KiB payload + header + VLAN tag, as virtio-net allows

/// Counters of the network -> guest direction kept by the Backend base class.
struct BackendRxStats {
    uint64_t delivered { 0 };       // frames the Receiver accepted (directly or from the pending queue)
    uint64_t queued { 0 };          // frames refused once and kept for redelivery
    uint64_t dropped_full { 0 };    // frames dropped because the pending queue was full
    uint64_t dropped_no_receiver { 0 }; // frames dropped because no Receiver was registered
    uint64_t pending { 0 };         // frames in the pending queue now
};

class Backend {
public:
    /// Takes one frame for the guest. \return false if the guest has no receive buffer (the backend keeps it).
    using Receiver = std::function<bool(std::span<uint8_t const> frame)>;

    static constexpr size_t PENDING_MAX_FRAMES = 256;
    static constexpr size_t PENDING_MAX_BYTES = 1024 * 1024;

    virtual ~Backend() = default;

    /// Guest -> network. Any thread. The frame is copied; frames the backend cannot take are dropped (counted by
    /// the backend).
    virtual void send(std::span<uint8_t const> frame) = 0;

    /// The guest added receive buffers: retry the pending frames. Any thread, any lock held; returns at once
    /// (the retry happens on the delivery thread).
    virtual void rx_buffers_available() = 0;

    /// Registers the Receiver (or clears it with an empty function). Blocks until a delivery in progress has
    /// finished, so after set_receiver({}) returns the old Receiver is never called again. Must not be called from
    /// inside the Receiver or with a lock the Receiver takes.
    void set_receiver(Receiver receiver);

    BackendRxStats rx_stats() const;

protected:
    /// For subclasses, on the delivery thread: offers `frame` to the Receiver (after any pending frames, to keep
    /// order) or queues it.
    void deliver(std::span<uint8_t const> frame);
    /// For subclasses, on the delivery thread: redelivers pending frames until one is refused.
    void flush_pending();

private:
    /// Delivers pending frames in order; m_rx_lock held. \return true if the queue is now empty.
    bool flush_locked();
    void enqueue_locked(std::span<uint8_t const> frame);

    mutable std::mutex m_rx_lock; // guards everything below; held while the Receiver runs
    Receiver m_receiver;
    std::deque<std::vector<uint8_t>> m_pending;
    size_t m_pending_bytes { 0 };
    BackendRxStats m_stats;
};

} // namespace hako::net
