// VirtioRng: the virtio entropy device (VIRTIO 1.2 section 5.4, device ID 4): one queue, "requestq", no feature
// bits, no configuration space. Each chain the driver makes available is a request: the device fills its
// device-writable buffers with entropy and returns the chain with the number of bytes written.
//
// Hostile-guest rules: at most MAX_REQUEST_BYTES (64 KiB) are produced per chain whatever its writable length, and
// at most one queue's worth of chains (Queue Size) is served per queue_notify(), so a guest cannot make the VMM
// spin; device-readable buffers are ignored (5.4.6.1: the driver must not add any). A chain the Queue rejects, or
// one without a writable byte, is returned with length 0 and counted. A broken queue (QueueError) makes the device
// ask for DEVICE_NEEDS_RESET and stop serving until reset(). If the entropy source gives fewer bytes than asked
// (or 0 on failure), the chain is returned with what it gave.
// Deliberately not done: rate limiting of entropy (the source decides), device config (there is none).
//
// Threading: all state is guarded by m_lock; the entropy source and VirtioInterrupt are called with it held.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "base/checked.h"
#include "devices/virtio/queue_drain.h"
#include "devices/virtio/virtio_device.h"

namespace hako::devices::virtio {

struct RngStats {
    uint64_t requests { 0 };       // chains served with entropy
    uint64_t bytes { 0 };          // entropy bytes written to the guest
    uint64_t bad_chains { 0 };     // chains returned with length 0 (rejected by the Queue or nothing writable)
    uint64_t capped { 0 };         // requests larger than MAX_REQUEST_BYTES (served up to the cap)
    uint64_t short_entropy { 0 };  // times the source returned fewer bytes than asked
    uint64_t budget_exhausted { 0 }; // notifies that stopped at the per-notify chain budget
    uint64_t queue_broken { 0 };   // times the queue was found broken
};

class VirtioRng final : public VirtioDevice {
public:
    /// Fills `out` with entropy; \return the number of bytes filled (0 on failure). The VMM passes getrandom(2).
    using EntropySource = std::function<size_t(std::span<uint8_t> out)>;

    static constexpr uint16_t QUEUE_SIZE = 256;
    static constexpr uint32_t MAX_REQUEST_BYTES = 64 * KiB;

    explicit VirtioRng(EntropySource source);

    std::string_view name() const override { return "rng"; }
    uint16_t device_type() const override { return VIRTIO_ID_RNG; }
    uint64_t device_features() const override { return 0; }
    uint16_t num_queues() const override { return 1; }
    uint16_t max_queue_size(uint16_t) const override { return QUEUE_SIZE; }
    uint32_t config_size() const override { return 0; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<uint8_t const> data) override;

    [[nodiscard]] Result<void> activate(ActivateContext const& context) override;
    void queue_notify(uint16_t queue) override;
    void reset() override;

    RngStats stats() const;

private:
    /// Fills the writable part of one popped chain. \return the bytes written.
    uint32_t serve(DescriptorChain const& chain);

    EntropySource m_source;
    mutable std::mutex m_lock; // guards everything below
    bool m_active { false };
    Queue* m_queue { nullptr };
    VirtioInterrupt* m_interrupt { nullptr };
    std::vector<uint8_t> m_scratch;
    RngStats m_stats;
};

} // namespace hako::devices::virtio
