// VirtioBlk: the virtio block device (VIRTIO 1.2 section 5.2, device ID 2) over a block::DiskImage: one request
// queue, the configuration of BlkConfig, requests parsed and run by process_request() (request.h).
//
// Requests run synchronously on the thread that delivers the notify (the event loop, through an ioeventfd), at
// most one queue's worth per notify (drain_queue). A broken queue makes the device ask for DEVICE_NEEDS_RESET and
// stop serving until reset(). The configuration space is read-only: writes are counted and ignored.
// Deliberately not done yet: asynchronous I/O (io_uring) and several request queues (VIRTIO_BLK_F_MQ).
//
// Threading: all state is guarded by m_lock; the disk and VirtioInterrupt are used with it held.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "devices/virtio/blk/blk_config.h"
#include "devices/virtio/blk/request.h"
#include "devices/virtio/queue_drain.h"
#include "devices/virtio/virtio_device.h"

namespace hako::block {
class DiskImage;
}

namespace hako::devices::virtio::blk {

class VirtioBlk final : public VirtioDevice {
public:
    static constexpr uint16_t QUEUE_SIZE = 256;

    VirtioBlk(std::shared_ptr<block::DiskImage> disk, BlkOptions const& options);

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

    BlkConfig const& config() const { return m_config; }
    BlkStats stats() const;
    /// Config-space writes ignored, and times the queue was found broken.
    uint64_t config_writes_ignored() const;
    uint64_t queue_broken_count() const;

private:
    std::shared_ptr<block::DiskImage> m_disk;
    BlkConfig const m_config;
    mutable std::mutex m_lock; // guards everything below
    bool m_active { false };
    Queue* m_queue { nullptr };
    VirtioInterrupt* m_interrupt { nullptr };
    BlkStats m_stats;
    uint64_t m_config_writes { 0 };
    uint64_t m_queue_broken { 0 };
};

} // namespace hako::devices::virtio::blk
