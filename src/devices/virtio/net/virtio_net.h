// VirtioNet: the virtio network device (VIRTIO 1.2 section 5.1, device ID 1) over a net::Backend.
//
// Queues: 0 = receiveq1, 1 = transmitq1, 2 = controlq (no multiqueue). Features offered: VIRTIO_NET_F_MAC
// (the MAC in config space), VIRTIO_NET_F_STATUS (link always up) and VIRTIO_NET_F_MRG_RXBUF (a received frame may
// span several receive chains; num_buffers says how many). On a backend that carries offload metadata (tap:
// Backend::supports_offloads()) also the checksum and TCP segmentation offloads both ways, as QEMU offers them on a
// tap: CSUM, HOST_TSO4/6, HOST_ECN (the guest may send partial checksums and TSO super-frames, which go to the
// backend with their header) and GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN (the backend may give the guest such frames:
// set_receive_offloads() tells it what the guest took). On other backends (user networking) no offload is offered
// and frames are complete both ways. Frames are at most ETH_MAX_FRAME_LEN bytes. With VIRTIO_F_VERSION_1 every frame
// carries the 12-byte struct virtio_net_hdr_v1 (section 5.1.6), a legacy driver without MRG_RXBUF the 10-byte one.
// Config space (section 5.1.4): mac[6], le16 status, le16 max_virtqueue_pairs (= 1), le16 mtu (0: F_MTU is not
// offered), le32 speed and u8 duplex (VIRTIO_NET_F_SPEED_DUPLEX: both unknown, as QEMU reports by default); 17 bytes,
// read-only. Drivers read the fields whether or not their feature is offered (iPXE reads mtu).
//
// Transmit (section 5.1.6.2): each chain's device-readable bytes are the header then one frame. Without transmit
// offloads the header is skipped; with them it is checked (NEEDS_CSUM only with CSUM and with csum_start +
// csum_offset + 2 inside the frame; a GSO type only if its HOST_* feature was negotiated, with NEEDS_CSUM and a
// non-zero gso_size) and passed on; a header that fails is counted and its frame dropped. Frames shorter than an
// ethernet header or longer than ETH_MAX_FRAME_LEN are dropped and counted; the rest go to Backend::send(). Every
// chain is given back with used length 0 (the device writes nothing). At most Queue Size chains per queue_notify()
// (then the transport is asked to run it again: requeue_notify). While the backend says tx_full() the frames stay
// in the guest's ring, as QEMU holds them, and the backend's TxReady callback resumes transmit.
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
// Control queue (section 5.1.6.5; VIRTIO_NET_F_CTRL_VQ with CTRL_RX, CTRL_RX_EXTRA, CTRL_VLAN, CTRL_MAC_ADDR, and
// CTRL_GUEST_OFFLOADS where offloads are offered): each chain is class + command + data (device-readable), then a
// one-byte ack (device-writable). RX mode, MAC tables and VLANs go to RxFilter (rx_filter.h), which then decides
// which received frames reach the guest; MAC_ADDR_SET also changes the MAC in config space (a reset restores the
// original); GUEST_OFFLOADS_SET lowers or restores the receive offloads within what was negotiated. Anything else
// (ANNOUNCE, MQ: not offered) is acked VIRTIO_NET_ERR. A chain without room for the ack, or with more than
// CTRL_MAX_DATA bytes of data, is given back unanswered and counted.
//
// Received headers: the backend's flags, GSO type and offsets go to the guest as they are when it negotiated the
// matching GUEST_* features; a partial frame it did not negotiate (one in flight while it lowered its offloads) is
// dropped and counted.
//
// Deliberately not done: GUEST_ANNOUNCE (nothing to announce before live migration), UFO/USO, multiqueue/RSS,
// F_MTU, link-state changes.
//
// Threading: queue_notify/activate/reset/config come from vCPUs or the event loop; the Receiver comes from the
// backend's thread, and so does the TxReady callback. All state is guarded by m_lock. Lock order: Backend rx lock (or
// its TxReady lock) -> m_lock -> transport interrupt/notify locks; send(), tx_full() and rx_buffers_available() are
// called with m_lock held (they take no lock the Receiver or TxReady path holds).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "devices/virtio/net/rx_filter.h"
#include "devices/virtio/virtio_device.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::virtio::net {

// Feature bits (section 5.1.3).
constexpr unsigned VIRTIO_NET_F_CSUM = 0;
constexpr unsigned VIRTIO_NET_F_GUEST_CSUM = 1;
constexpr unsigned VIRTIO_NET_F_MTU = 3;
constexpr unsigned VIRTIO_NET_F_GUEST_TSO4 = 7;
constexpr unsigned VIRTIO_NET_F_GUEST_TSO6 = 8;
constexpr unsigned VIRTIO_NET_F_GUEST_ECN = 9;
constexpr unsigned VIRTIO_NET_F_HOST_TSO4 = 11;
constexpr unsigned VIRTIO_NET_F_HOST_TSO6 = 12;
constexpr unsigned VIRTIO_NET_F_HOST_ECN = 13;
constexpr unsigned VIRTIO_NET_F_MAC = 5;
constexpr unsigned VIRTIO_NET_F_MRG_RXBUF = 15;
constexpr unsigned VIRTIO_NET_F_STATUS = 16;
constexpr unsigned VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2;
constexpr unsigned VIRTIO_NET_F_CTRL_VQ = 17;
constexpr unsigned VIRTIO_NET_F_CTRL_RX = 18;
constexpr unsigned VIRTIO_NET_F_CTRL_VLAN = 19;
constexpr unsigned VIRTIO_NET_F_CTRL_RX_EXTRA = 20;
constexpr unsigned VIRTIO_NET_F_CTRL_MAC_ADDR = 23;
constexpr unsigned VIRTIO_NET_F_MQ = 22;
constexpr unsigned VIRTIO_NET_F_SPEED_DUPLEX = 63;

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
constexpr uint32_t VIRTIO_NET_CONFIG_MTU_OFFSET = 10;
constexpr uint32_t VIRTIO_NET_CONFIG_SPEED_OFFSET = 12;
constexpr uint32_t VIRTIO_NET_CONFIG_DUPLEX_OFFSET = 16;
constexpr uint32_t VIRTIO_NET_CONFIG_SIZE = 17;
constexpr uint32_t VIRTIO_NET_SPEED_UNKNOWN = 0xffffffff;
constexpr uint8_t VIRTIO_NET_DUPLEX_UNKNOWN = 0xff;

constexpr uint16_t RX_QUEUE = 0;
constexpr uint16_t TX_QUEUE = 1;
constexpr uint16_t CTRL_QUEUE = 2;

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
    uint64_t rx_dropped_offload { 0 };   // partial (checksum/GSO) frames the guest did not negotiate
    uint64_t tx_offload_frames { 0 };    // frames sent with a partial checksum or as a GSO super-frame
    uint64_t tx_dropped_bad_header { 0 }; // frames dropped for a header the negotiated features do not allow
    uint64_t rx_bad_chains { 0 };        // receive chains the Queue rejected (or without a writable byte)
    uint64_t rx_merged_frames { 0 };     // frames that used more than one receive chain
    uint64_t budget_exhausted { 0 };     // transmit notifies that stopped at the per-notify chain budget
    uint64_t tx_backpressure { 0 };      // times transmit stopped because the backend was full (frames left waiting)
    uint64_t queue_broken { 0 };         // times a queue was found broken
    uint64_t config_writes_ignored { 0 };
    uint64_t rx_filtered { 0 };          // frames the RX filter kept from the guest (control queue settings)
    uint64_t ctrl_commands { 0 };        // control commands acked VIRTIO_NET_OK
    uint64_t ctrl_errors { 0 };          // control commands acked VIRTIO_NET_ERR
    uint64_t ctrl_bad_chains { 0 };      // control chains rejected by the Queue, without an ack byte or too long
};

class VirtioNet final : public VirtioDevice {
public:
    static constexpr uint16_t QUEUE_SIZE = 256;
    static constexpr uint16_t CTRL_QUEUE_SIZE = 64;
    static constexpr uint32_t CTRL_MAX_DATA = 16384; // bytes after class and command: a 2700-entry MAC table

    /// Registers itself as the backend's Receiver; the destructor unregisters it.
    VirtioNet(std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac);
    ~VirtioNet() override;
    VirtioNet(VirtioNet const&) = delete;
    VirtioNet& operator=(VirtioNet const&) = delete;

    std::string_view name() const override { return "net"; }
    uint16_t device_type() const override { return VIRTIO_ID_NET; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 3; }
    uint16_t max_queue_size(uint16_t q) const override { return q == CTRL_QUEUE ? CTRL_QUEUE_SIZE : QUEUE_SIZE; }
    uint32_t config_size() const override { return VIRTIO_NET_CONFIG_SIZE; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<uint8_t const> data) override;

    [[nodiscard]] Result<void> activate(ActivateContext const& context) override;
    void queue_notify(uint16_t queue) override;
    void reset() override;

    /// Network -> guest: what the Receiver registered with the backend does. Public for tests and fuzzing.
    /// \return false if the guest has no receive buffer for it now (the caller may retry later)
    bool receive(hako::net::VnetHeader const& header, std::span<uint8_t const> frame);
    bool receive(std::span<uint8_t const> frame) { return receive(hako::net::VnetHeader {}, frame); }

    NetStats stats() const;
    hako::net::MacAddress mac() const { return m_mac; }

private:
    void process_tx();
    void process_ctrl();
    /// The backend has room again after tx_full(): serve the transmit queue from the event loop.
    void on_tx_ready();
    /// One control command (class, code, data). \return the ack
    uint8_t control_command(uint8_t cls, uint8_t code, std::span<uint8_t const> data);
    void set_rx_offloads_locked(hako::net::Offloads offloads);
    /// Gives back the chains taken for a frame that is dropped, with used length 0.
    void return_unused(Queue& queue, std::span<DescriptorChain const> chains);
    void queue_broken(Queue& queue, std::string_view which);
    /// Whether a transmit header is allowed by the negotiated offloads for a frame of `frame_len` bytes.
    bool tx_header_ok(hako::net::VnetHeader const& header, size_t frame_len) const;
    /// Whether a received header can go to the guest as it negotiated.
    bool rx_header_ok(hako::net::VnetHeader const& header) const;

    std::shared_ptr<hako::net::Backend> m_backend;
    hako::net::MacAddress const m_mac; // the MAC given at creation (config space holds the current one)

    mutable std::mutex m_lock; // guards everything below
    std::array<uint8_t, VIRTIO_NET_CONFIG_SIZE> m_config {};
    RxFilter m_filter;
    Queue* m_ctrlq { nullptr };
    hako::net::Offloads m_rx_offloads_negotiated; // the ceiling for GUEST_OFFLOADS_SET
    std::vector<uint8_t> m_ctrl_scratch;
    bool m_active { false };
    bool m_mergeable { false };
    uint32_t m_hdr_len { VIRTIO_NET_HDR_LEN }; // 12, or 10 for a legacy driver without MRG_RXBUF
    hako::net::Offloads m_tx_offloads;         // what the guest may send (CSUM, HOST_TSO4/6, HOST_ECN)
    hako::net::Offloads m_rx_offloads;         // what the guest takes (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN)
    bool m_rx_starved { false }; // a frame was refused for lack of buffers since the last retry request
    bool m_tx_blocked { false }; // transmit stopped on Backend::tx_full(); on_tx_ready() resumes it
    Queue* m_rxq { nullptr };
    Queue* m_txq { nullptr };
    VirtioInterrupt* m_interrupt { nullptr };
    std::vector<uint8_t> m_tx_scratch;
    std::vector<uint8_t> m_rx_scratch;
    std::vector<DescriptorChain> m_rx_chains;
    NetStats m_stats;
};

} // namespace hako::devices::virtio::net
