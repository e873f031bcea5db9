// VirtioBlk: the virtio block device (VIRTIO 1.2 section 5.2, device ID 2) over a block::BlockDevice: one request
// queue, the configuration of BlkConfig, requests parsed by prepare_request() (request.h).
//
// Two I/O modes, chosen at construction:
// - Synchronous (no ring): every request runs to completion on the thread that delivers the notify (the event
//   loop, through an ioeventfd), at most one queue's worth per notify (drain_queue).
// - Asynchronous (a block::IoUring): on a notify the device pops chains (at most Queue Size per call, and only
//   while one of its MAX_IN_FLIGHT slots is free), finishes malformed requests, GET_ID, DISCARD and WRITE_ZEROES on
//   the spot, and submits IN, OUT and FLUSH to the ring with the guest's own buffers (no copy). Such a chain is not
//   put in the used ring until its I/O completes: the event loop watches completion_fd() and calls
//   handle_completions(), which writes the status byte, calls add_used() (in completion order: allowed without
//   VIRTIO_F_IN_ORDER), pops more chains if slots were full, and interrupts if should_notify() says so.
//   FLUSH is not ordered against writes still in flight: the spec (5.2.6.1) only covers writes completed before
//   the flush, and drivers wait for those before flushing.
// If the host refuses io_uring (old kernel, seccomp, io_uring_disabled), create_ring() logs one warning and
// returns nullptr: the device is then synchronous.
//
// reset() (and the destructor) wait for every request in flight, discarding the results: when reset() returns,
// the kernel no longer writes into guest memory for this device and the device never touches the old rings
// again. The wait holds the device lock (the completion handler, which needs it too, then finds nothing), so a
// reset can take as long as the slowest outstanding host I/O.
//
// A broken queue makes the device ask for DEVICE_NEEDS_RESET and stop serving until reset(). The configuration
// space is read-only: writes are counted and ignored.
// Deliberately not done yet: several request queues (VIRTIO_BLK_F_MQ), asynchronous DISCARD/WRITE_ZEROES, and
// cancelling I/O on reset (regular-file I/O cannot be cancelled once started: reset waits).
//
// Threading: all state is guarded by m_lock; the disk, the ring, the Queue and VirtioInterrupt are used with it
// held. handle_completions() runs on the event loop thread; queue_notify() on any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "block/io_uring.h"
#include "devices/virtio/blk/blk_config.h"
#include "devices/virtio/blk/request.h"
#include "devices/virtio/queue_drain.h"
#include "devices/virtio/virtio_device.h"

namespace hako::block {
class BlockDevice;
}

namespace hako::devices::virtio::blk {

class VirtioBlk final : public VirtioDevice {
public:
    static constexpr uint16_t QUEUE_SIZE = 256;
    /// Requests submitted to the ring and not yet completed, at most (also the ring's depth).
    static constexpr unsigned MAX_IN_FLIGHT = QUEUE_SIZE;

    /// An io_uring for one disk, or nullptr after one warning line naming `disk_path` if the host refuses it.
    /// `depth` is for tests (0 always fails).
    static std::unique_ptr<block::IoUring> create_ring(std::string_view disk_path, unsigned depth = MAX_IN_FLIGHT);

    /// \param ring the ring for asynchronous I/O (at least MAX_IN_FLIGHT deep), or nullptr for synchronous I/O.
    VirtioBlk(std::shared_ptr<block::BlockDevice> disk, BlkOptions const& options,
        std::unique_ptr<block::IoUring> ring = nullptr);
    /// Waits for the requests in flight (their buffers are guest memory, which must outlive the device).
    ~VirtioBlk() override;

    std::string_view name() const override { return "blk"; }
    uint16_t device_type() const override { return VIRTIO_ID_BLOCK; }
    uint64_t device_features() const override { return m_config.device_features(); }
    uint16_t num_queues() const override { return 1; }
    uint16_t max_queue_size(uint16_t) const override { return QUEUE_SIZE; }
    uint32_t config_size() const override { return VIRTIO_BLK_CONFIG_SIZE; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<uint8_t const> data) override;

    [[nodiscard]] Result<void> activate(ActivateContext const& context) override;
    void queue_notify(uint16_t queue) override;
    void reset() override;

    /// True if requests go through an io_uring.
    bool is_async() const { return m_ring != nullptr; }
    /// The descriptor the event loop watches (EPOLLIN) to call handle_completions(); -1 when synchronous.
    int completion_fd() const { return m_ring ? m_ring->event_fd() : -1; }
    /// Finishes the requests whose I/O completed (status byte, used ring, interrupt) and serves more if slots were
    /// full. For the event loop; harmless to call at any time.
    void handle_completions();

    BlkConfig const& config() const { return m_config; }
    BlkStats stats() const;
    /// Config-space writes ignored, and times the queue was found broken.
    uint64_t config_writes_ignored() const;
    uint64_t queue_broken_count() const;
    /// Requests submitted and not yet completed.
    unsigned in_flight() const;
    /// Requests whose completion reset() (or the destructor) waited for and discarded.
    uint64_t dropped_on_reset() const;

private:
    struct InFlight {
        DescriptorChain chain;
        IoPlan plan;
    };
    struct ServeOutcome {
        bool used { false };
        bool broken { false };
    };

    /// Pops and starts requests (asynchronous mode). Called with m_lock held.
    ServeOutcome serve_async(Queue& queue);
    /// Submits one planned request to the ring, or runs it synchronously if the ring cannot take it.
    /// \return the used length if it finished synchronously.
    std::optional<uint32_t> start_io(DescriptorChain chain, IoPlan plan);
    /// Finishes the request in slot `user_data`. \return true if a used entry was added.
    bool finish_io(block::IoUring::Completion const& c);
    /// Reports a broken queue or asks for an interrupt. Called with m_lock held.
    void after_serve(Queue& queue, ServeOutcome out);
    /// Waits for every request in flight and discards them. Called with m_lock held.
    void drain_in_flight();

    std::shared_ptr<block::BlockDevice> m_disk;
    BlkConfig const m_config;
    std::unique_ptr<block::IoUring> const m_ring; // null: synchronous. Its calls are serialised by m_lock.
    mutable std::mutex m_lock; // guards everything below (and the use of m_ring)
    bool m_active { false };
    Queue* m_queue { nullptr };
    VirtioInterrupt* m_interrupt { nullptr };
    std::vector<std::optional<InFlight>> m_slots; // index = the ring's user_data
    std::vector<uint32_t> m_free_slots;
    BlkStats m_stats;
    uint64_t m_config_writes { 0 };
    uint64_t m_queue_broken { 0 };
    uint64_t m_dropped_on_reset { 0 };
    uint64_t m_stray_completions { 0 }; // completions naming no slot in use (never expected)
};

} // namespace hako::devices::virtio::blk
