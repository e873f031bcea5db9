// net::Backend: where a NIC model's ethernet frames go and come from (user networking, tap, a test double).
// Frames are plain ethernet frames (destination MAC first, no FCS, no virtio header). A backend that can carry
// checksum and segmentation offload metadata (tap with IFF_VNET_HDR: supports_offloads()) also takes and gives a
// VnetHeader beside each frame; NICs that know nothing of offloads never see one (see set_receive_offloads()).
//
// Two directions:
//  - guest -> network: the NIC calls send(). Thread-safe; may be called from any thread, with the NIC's own lock
//    held: a backend only copies the frame into a bounded queue (or drops it) and wakes its own thread; it never
//    calls back into the NIC from send().
//    A NIC that negotiated transmit offloads with its guest calls send(header, frame) instead: the frame may then
//    be a partial one (checksum left to the host, or a TSO/GSO super-frame the host segments).
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

#include <atomic>
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

/// The offload metadata that may travel with a frame: the first 10 bytes of struct virtio_net_hdr (VIRTIO 1.2
/// section 5.1.6, which is also what the Linux tap driver reads and writes with IFF_VNET_HDR), in host byte order.
struct VnetHeader {
    uint8_t flags { 0 };    // VNET_HDR_F_*
    uint8_t gso_type { 0 }; // VNET_HDR_GSO_*, possibly | VNET_HDR_GSO_ECN
    uint16_t hdr_len { 0 };
    uint16_t gso_size { 0 };
    uint16_t csum_start { 0 };
    uint16_t csum_offset { 0 };
    friend bool operator==(VnetHeader const&, VnetHeader const&) = default;
};
constexpr size_t VNET_HDR_LEN = 10;
constexpr uint8_t VNET_HDR_F_NEEDS_CSUM = 1; // the checksum at csum_start + csum_offset is partial (pseudo-header)
constexpr uint8_t VNET_HDR_F_DATA_VALID = 2; // the checksums were verified
constexpr uint8_t VNET_HDR_GSO_NONE = 0;
constexpr uint8_t VNET_HDR_GSO_TCPV4 = 1;
constexpr uint8_t VNET_HDR_GSO_UDP = 3;
constexpr uint8_t VNET_HDR_GSO_TCPV6 = 4;
constexpr uint8_t VNET_HDR_GSO_ECN = 0x80;

/// Little-endian wire form (VNET_HDR_LEN bytes), as virtio 1.x and the tap driver (on x86) use.
void encode_vnet_header(VnetHeader const& header, std::span<uint8_t, VNET_HDR_LEN> out);
VnetHeader decode_vnet_header(std::span<uint8_t const, VNET_HDR_LEN> in);

/// The partial frames a Receiver accepts from the network (Linux's TUN_F_*): with none, every frame arrives
/// complete, with a header that at most says VNET_HDR_F_DATA_VALID.
struct Offloads {
    bool csum { false }; // frames with VNET_HDR_F_NEEDS_CSUM
    bool tso4 { false }; // VNET_HDR_GSO_TCPV4 super-frames (needs csum)
    bool tso6 { false }; // VNET_HDR_GSO_TCPV6 super-frames (needs csum)
    bool ecn { false };  // ... with VNET_HDR_GSO_ECN
    friend bool operator==(Offloads const&, Offloads const&) = default;
};

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
    /// The same, with the frame's offload metadata (for NICs that pass it to the guest).
    using OffloadReceiver = std::function<bool(VnetHeader const& header, std::span<uint8_t const> frame)>;

    static constexpr size_t PENDING_MAX_FRAMES = 256;
    static constexpr size_t PENDING_MAX_BYTES = 1024 * 1024;

    virtual ~Backend() = default;

    /// Guest -> network. Any thread. The frame is copied; frames the backend cannot take are dropped (counted by
    /// the backend).
    virtual void send(std::span<uint8_t const> frame) = 0;

    /// Whether this backend carries offload metadata both ways (send(header, frame), set_receive_offloads()).
    virtual bool supports_offloads() const { return false; }
    /// Guest -> network with offload metadata: only meaningful where supports_offloads(). The default sends a
    /// frame whose header asks for nothing and drops (and counts in tx_dropped_offload()) one that needs the host.
    virtual void send(VnetHeader const& header, std::span<uint8_t const> frame);
    /// Which partial frames the Receiver takes from now on (default and after a NIC reset: none). Any thread; a
    /// NIC may call it with its lock held. Frames already read from the host keep the form they were read in, so a
    /// NIC that lowers its offloads must still cope with (or drop) a partial frame that was in flight.
    virtual void set_receive_offloads(Offloads) { }
    uint64_t tx_dropped_offload() const;

    /// Transmit back-pressure (as QEMU's queue_send returning 0): true while the backend cannot take another frame
    /// without dropping it. A NIC that can hold frames in its own ring (virtio-net) stops taking them from the
    /// guest until the TxReady callback runs. Any thread.
    virtual bool tx_full() const { return false; }
    /// Called (on the backend's thread, with no backend lock held) when the backend has room again after tx_full()
    /// was seen true. Set before the backend sends frames; an empty function clears it.
    using TxReady = std::function<void()>;
    void set_tx_ready(TxReady ready);

    /// The guest added receive buffers: retry the pending frames. Any thread, any lock held; returns at once
    /// (the retry happens on the delivery thread).
    virtual void rx_buffers_available() = 0;

    /// Registers the Receiver (or clears it with an empty function). Blocks until a delivery in progress has
    /// finished, so after set_receiver({}) returns the old Receiver is never called again. Must not be called from
    /// inside the Receiver or with a lock the Receiver takes.
    void set_receiver(Receiver receiver);
    /// The same for a Receiver that takes the offload metadata too (replaces a plain one).
    void set_offload_receiver(OffloadReceiver receiver);

    BackendRxStats rx_stats() const;

protected:
    /// For subclasses, on their own thread, with no lock held: runs the TxReady callback.
    void notify_tx_ready();

    /// For subclasses, on the delivery thread: offers `frame` to the Receiver (after any pending frames, to keep
    /// order) or queues it. \return true if nothing is left pending (a backend that can hold frames back in the
    /// host, like tap, stops reading until rx_buffers_available() when this is false).
    bool deliver(std::span<uint8_t const> frame) { return deliver(VnetHeader {}, frame); }
    bool deliver(VnetHeader const& header, std::span<uint8_t const> frame);
    /// For subclasses, on the delivery thread: redelivers pending frames until one is refused.
    /// \return true if nothing is left pending.
    bool flush_pending();

private:
    struct PendingFrame {
        VnetHeader header;
        std::vector<uint8_t> frame;
    };
    /// Delivers pending frames in order; m_rx_lock held. \return true if the queue is now empty.
    bool flush_locked();
    void enqueue_locked(VnetHeader const& header, std::span<uint8_t const> frame);

    mutable std::mutex m_rx_lock; // guards everything below; held while the Receiver runs
    OffloadReceiver m_receiver;
    std::deque<PendingFrame> m_pending;
    size_t m_pending_bytes { 0 };
    BackendRxStats m_stats;

    std::atomic<uint64_t> m_tx_dropped_offload { 0 }; // not under m_rx_lock: send() runs with the NIC lock held
    std::mutex m_tx_ready_lock; // guards m_tx_ready; held while it runs (it takes the NIC lock: NIC lock is not held
                                // around set_tx_ready)
    TxReady m_tx_ready;
};

} // namespace hako::net
