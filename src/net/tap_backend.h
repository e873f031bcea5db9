// TapBackend: the guest's frames go to and come from a host tap interface (QEMU's "-netdev tap,ifname=..."),
// which the host bridges, routes or NATs as its administrator set it up. Needs CAP_NET_ADMIN, or a persistent tap
// made for the user (`ip tuntap add dev IF mode tap user USER`).
//
// The tap is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (10-byte struct virtio_net_hdr before every frame,
// little-endian on x86), so checksum and segmentation offloads cross the tap untouched: supports_offloads() is true
// when the kernel accepted TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN at open (probed, then reset to
// none). set_receive_offloads() passes the receiving NIC's choice to the kernel (TUNSETOFFLOAD): with none, the
// kernel completes checksums and segments before it hands us a frame.
//
// Guest -> host: send() writes header + frame with one writev() on the non-blocking fd, from the caller's thread
// (a vCPU or the event loop; no queue, no copy beyond the kernel's). A write the kernel refuses (a header it finds
// invalid, EAGAIN, the interface down) drops the frame and is counted; TCP in the guest retransmits.
// Host -> guest: the "net-tap" thread poll()s the tap fd and a wake eventfd, reads frames and hands them to the
// Receiver through Backend::deliver(). When the guest has no receive buffer the frame stays pending and the thread
// stops reading the tap until the NIC calls rx_buffers_available(): frames then wait in the kernel's queue (which
// drops beyond the interface's txqueuelen), so flow control is the host's, as with QEMU.
// The destructor stops and joins the thread and closes the fd (a persistent tap stays, a temporary one goes).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "net/backend.h"

namespace hako::net {

struct TapStats {
    uint64_t tx_frames { 0 }; // frames written to the tap
    uint64_t tx_bytes { 0 };
    uint64_t tx_errors { 0 }; // frames the kernel refused (dropped)
    uint64_t rx_frames { 0 }; // frames read from the tap
    uint64_t rx_bytes { 0 };
    uint64_t rx_errors { 0 }; // reads that failed or returned less than a header and an ethernet header
};

class TapBackend final : public Backend {
public:
    /// Attaches to (or creates, with CAP_NET_ADMIN) the tap `ifname` and starts the "net-tap" thread.
    [[nodiscard]] static Result<std::unique_ptr<TapBackend>> open(std::string const& ifname);
    ~TapBackend() override;
    TapBackend(TapBackend const&) = delete;
    TapBackend& operator=(TapBackend const&) = delete;

    void send(std::span<uint8_t const> frame) override;
    void send(VnetHeader const& header, std::span<uint8_t const> frame) override;
    bool supports_offloads() const override { return m_offloads_supported; }
    void set_receive_offloads(Offloads offloads) override;
    void rx_buffers_available() override;

    std::string const& ifname() const { return m_ifname; }
    TapStats stats() const;

private:
    TapBackend(UniqueFd fd, EventFd wake, std::string ifname, bool offloads_supported);
    void run();
    void count_tx_error(int err);

    UniqueFd m_fd;
    EventFd m_wake;
    std::string const m_ifname;
    bool const m_offloads_supported;
    std::atomic<bool> m_stop { false };
    std::atomic<bool> m_rx_retry { false };
    std::thread m_thread;

    // Counters: written by the sending threads and the net-tap thread, read by stats().
    std::atomic<uint64_t> m_tx_frames { 0 }, m_tx_bytes { 0 }, m_tx_errors { 0 };
    std::atomic<uint64_t> m_rx_frames { 0 }, m_rx_bytes { 0 }, m_rx_errors { 0 };
};

} // namespace hako::net
