// VirtioNet: the virtio network device (VIRTIO 1.2 section 5.1, device ID 1) over a net::Backend.
//
// Queues: 0 = receiveq1, 1 = transmitq1 (no multiqueue, no control queue). Features offered: VIRTIO_NET_F_MAC
// (the MAC in config space), VIRTIO_NET_F_STATUS (link always up) and VIRTIO_NET_F_MRG_RXBUF (a received frame may
// span several receive chains; num_buffers says how many). No checksum or segmentation offload: the guest sends
// and receives complete, checksummed frames of at most ETH_MAX_FRAME_LEN bytes. The transport always negotiates
// VIRTIO_F_VERSION_1, so every frame carries the 12-byte struct virtio_net_hdr_v1 (section 5.1.6).
// Config space (section 5.1.4): mac[6], le16 status, le16 max_virtqueue_pairs (= 1); 10 bytes, read-only.
//
// Transmit (section 5.1.6.2): each chain's device-readable bytes are the header then one frame. The header is
// skipped (no offloads were offered, so its fields carry nothing we act on); frames shorter than an ethernet header
// or longer than ETH_MAX_FRAME_LEN are dropped and counted; the rest go to Backend::send(). Every chain is given
// back with used length 0 (the device writes nothing). At most Queue Size chains per queue_notify().
// Receive (section 5.1.6.3/5.1.6.4): the backend's Receiver writes header + frame into device-writable buffers.
// Without MRG_RXBUF a frame must fit one chain (else the chain is put back and the frame dropped, as QEMU does)
// and num_buffers is 1; with MRG_RXBUF the frame is spread over as many chains as needed (used entries in order,
// num_buffers in the first header). If the guest has not posted enough buffers, the chains are put back untouched
// and the Receiver returns false so the backend keeps the frame; the next receiveq notify asks the backend to
// retry (Backend::rx_buffers_available()). While the device is not active, received frames are dropped.
//
// Hostile-guest rules: descriptor chains are validated by Queue; a Bad chain is returned with length 0 and counted
// (on receive, together with any chains already taken for that frame, which drops the frame); a broken queue asks
// for DEVICE_NEEDS_RESET. Config writes are ignored and counted.
//
// Deliberately not done: the control queue (RX mode, MAC filters, VLANs, announce), offloads (CSUM, GSO, GUEST_*),
// multiqueue/RSS, F_MTU, F_SPEED_DUPLEX, link-state changes. Without a control queue the device delivers every
// frame the backend gives it (no MAC filtering), which is what QEMU does without CTRL_RX.
//
// Threading: queue_notify/activate/reset/config come from vCPUs or the event loop; the Receiver comes from the
// backend's thread. All state is guarded by m_lock. Lock order: Backend rx lock -> m_lock -> transport interrupt
// lock; send() and rx_buffers_available() are called with m_lock held (they take no lock the Receiver path holds).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "devices/virtio/virtio_device.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::virtio::net {

// Feature bits (section 5.1.3).
constexpr unsigned VIRTIO_NET_F_CSUM = 0;
constexpr unsigned VIRTIO_NET_F_GUEST_CSUM = 1;
constexpr unsigned VIRTIO_NET_F_MTU = 3;
constexpr unsigned VIRTIO_NET_F_MAC = 5;
constexpr unsigned VIRTIO_NET_F_MRG_RXBUF = 15;
constexpr unsigned VIRTIO_NET_F_STATUS = 16;
constexpr unsigned VIRTIO_NET_F_CTRL_VQ = 17;
constexpr unsigned VIRTIO_NET_F_MQ = 22;

// Config status bits (section 5.1.4).
constexpr uint16_t VIRTIO_NET_S_LINK_UP = 1;
constexpr uint16_t VIRTIO_NET_S_ANNOUNCE = 2;

// struct virtio_net_hdr flags and gso_type (section 5.1.6).
constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;

/// struct virtio_net_hdr with num_buffers (the only layout with VIRTIO_F_VERSION_1): 12 bytes.
constexpr uint32_t VIRTIO_NET_HDR_LEN = 12;
constexpr uint32_t VIRTIO_NET_LEGACY_HDR_LEN = 10; // struct virtio_net_hdr without num_buffers (legacy, 5.1.6.1)
constexpr uint32_t VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET = 10;

// Config space layout (section 5.1.4).
constexpr uint32_t VIRTIO_NET_CONFIG_MAC_OFFSET = 0;
constexpr uint32_t VIRTIO_NET_CONFIG_STATUS_OFFSET = 6;
constexpr uint32_t VIRTIO_NET_CONFIG_MAX_VQ_PAIRS_OFFSET = 8;
constexpr uint32_t VIRTIO_NET_CONFIG_SIZE = 10;

constexpr uint16_t RX_QUEUE = 0;
constexpr uint16_t TX_QUEUE = 1;

struct NetStats {
    uint64_t tx_frames { 0 };            // frames handed to the backend
    uint64_t tx_bytes { 0 };             // their bytes (without the virtio header)
    uint64_t tx_dropped_bad { 0 };       // frames dropped: shorter than a header + ethernet header, or too long
    uint64_t tx_bad_chains { 0 };        // transmit chains the Queue rejected
    uint64_t rx_frames { 0 };            // frames written to the guest
    uint64_t rx_bytes { 0 };             // their bytes (without the virtio header)
    uint64_t rx_dropped_no_buffer { 0 }; // times a frame was refused for lack of receive buffers (the backend may retry)
    uint64_t rx_dropped_too_big { 0 };   // frames larger than the one chain available without MRG_RXBUF
    uint64_t rx_dropped_bad { 0 };       // frames dropped: outside the ethernet size limits, or a bad receive chain
    uint64_t rx_dropped_inactive { 0 };  // frames dropped while the device was not active
    uint64_t rx_bad_chains { 0 };        // receive chains the Queue rejected (or without a writable byte)
    uint64_t rx_merged_frames { 0 };     // frames that used more than one receive chain
    uint64_t budget_exhausted { 0 };     // transmit notifies that stopped at the per-notify chain budget
    uint64_t queue_broken { 0 };         // times a queue was found broken
    uint64_t config_writes_ignored { 0 };
};

class VirtioNet final : public VirtioDevice {
public:
    static constexpr uint16_t QUEUE_SIZE = 256;

    /// Registers itself as the backend's Receiver; the destructor unregisters it.
    VirtioNet(std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac);
    ~VirtioNet() override;
    VirtioNet(VirtioNet const&) = delete;
    VirtioNet& operator=(VirtioNet const&) = delete;

    std::string_view name() const override { return "net"; }
    uint16_t device_type() const override { return VIRTIO_ID_NET; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 2; }
    uint16_t max_queue_size(uint16_t) const override { return QUEUE_SIZE; }
    uint32_t config_size() const override { return VIRTIO_NET_CONFIG_SIZE; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<uint8_t const> data) override;

    [[nodiscard]] Result<void> activate(ActivateContext const& context) override;
    void queue_notify(uint16_t queue) override;
    void reset() override;

    /// Network -> guest: what the Receiver registered with the backend does. Public for tests and fuzzing.
    /// \return false if the guest has no receive buffer for it now (the caller may retry later)
    bool receive(std::span<uint8_t const> frame);

    NetStats stats() const;
    hako::net::MacAddress mac() const { return m_mac; }

private:
    void process_tx();
    /// Gives back the chains taken for a frame that is dropped, with used length 0.
    void return_unused(Queue& queue, std::span<DescriptorChain const> chains);
    void queue_broken(Queue& queue, std::string_view which);

    std::shared_ptr<hako::net::Backend> m_backend;
    hako::net::MacAddress const m_mac;
    std::array<uint8_t, VIRTIO_NET_CONFIG_SIZE> m_config {};

    mutable std::mutex m_lock; // guards everything below
    bool m_active { false };
    bool m_mergeable { false };
    uint32_t m_hdr_len { VIRTIO_NET_HDR_LEN }; // 12, or 10 for a legacy driver without MRG_RXBUF
    bool m_rx_starved { false }; // a frame was refused for lack of buffers since the last retry request
    Queue* m_rxq { nullptr };
    Queue* m_txq { nullptr };
    VirtioInterrupt* m_interrupt { nullptr };
    std::vector<uint8_t> m_tx_scratch;
    std::vector<uint8_t> m_rx_scratch;
    std::vector<DescriptorChain> m_rx_chains;
    NetStats m_stats;
};

} // namespace hako::devices::virtio::net
