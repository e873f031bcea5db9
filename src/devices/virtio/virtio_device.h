// VirtioDevice: what a virtio device implements, independent of its transport (VIRTIO 1.2 section 2, "Basic
// Facilities of a Virtio Device"): its device type (section 5), the feature bits it offers (2.2), its queues
// (2.7), its device-specific configuration space (2.5), and what it does when the driver starts it (DRIVER_OK,
// 3.1.1), kicks a queue (2.9) or resets it (2.4). VirtioInterrupt is how a device asks its transport for a used
// buffer notification, a configuration change notification, or DEVICE_NEEDS_RESET.
//
// The transport (virtio_pci.h) owns the Queues: it configures them from the driver's register writes, validates
// them, and hands them to activate(). From activate() until reset() returns, the device alone touches them, under
// its own mutex; the transport does not touch a Queue again until after reset().
//
// Threading: queue_notify() may run on any vCPU thread (a notify write that exits to the VMM as MMIO) or on the
// event loop (an ioeventfd the VMM registered for the queue's notify address), possibly at the same time as
// activate(), reset(), read_config() or write_config() on other threads. A device guards its state with its own
// mutex. It may call VirtioInterrupt with that mutex held (the interrupt path never calls back into the device).
// The transport calls activate(), reset() and the config methods with at most its control lock held, never its
// interrupt lock, and calls queue_notify() with no lock held.
// Lock order: transport control lock -> device lock -> transport interrupt lock -> MSI-X lock -> PCI config lock.
//
// Deliberately not covered: shared memory regions (2.10), VIRTIO_F_RING_RESET (per-queue reset), packed queues.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"
#include "devices/virtio/queue.h"

namespace hako::devices::virtio {

// Device IDs (VIRTIO 1.2 section 5, "Device Types").
constexpr uint16_t VIRTIO_ID_NET = 1;
constexpr uint16_t VIRTIO_ID_BLOCK = 2;
constexpr uint16_t VIRTIO_ID_CONSOLE = 3;
constexpr uint16_t VIRTIO_ID_RNG = 4;
constexpr uint16_t VIRTIO_ID_BALLOON = 5;
constexpr uint16_t VIRTIO_ID_SCSI = 8;
constexpr uint16_t VIRTIO_ID_9P = 9;
constexpr uint16_t VIRTIO_ID_GPU = 16;
constexpr uint16_t VIRTIO_ID_INPUT = 18;
constexpr uint16_t VIRTIO_ID_VSOCK = 19;
constexpr uint16_t VIRTIO_ID_FS = 26;

// Device status bits (section 2.1).
constexpr uint8_t VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
constexpr uint8_t VIRTIO_CONFIG_S_DRIVER = 2;
constexpr uint8_t VIRTIO_CONFIG_S_DRIVER_OK = 4;
constexpr uint8_t VIRTIO_CONFIG_S_FEATURES_OK = 8;
constexpr uint8_t VIRTIO_CONFIG_S_NEEDS_RESET = 64;
constexpr uint8_t VIRTIO_CONFIG_S_FAILED = 128;

/// How a device raises notifications through its transport. Safe to call from any thread, with the device's own
/// lock held; never calls back into the device.
class VirtioInterrupt {
public:
    virtual ~VirtioInterrupt() = default;
    /// A used buffer notification for `queue` (the device already asked Queue::should_notify()).
    virtual void signal_used_queue(uint16_t queue) = 0;
    /// A configuration change notification (the transport also bumps config_generation).
    virtual void signal_config_change() = 0;
    /// Sets DEVICE_NEEDS_RESET (e.g. a queue reported PopResult::Status::Broken) and, after DRIVER_OK, sends a
    /// configuration change notification as section 2.1.2 requires.
    virtual void signal_needs_reset() = 0;
    /// The device stopped serving `queue` at its per-notify budget with buffers left: have queue_notify(queue) called
    /// again soon, from the device's usual thread, without waiting for a notify the driver need not send (with
    /// EVENT_IDX the driver has already passed the avail_event the device just set, so it will not notify again).
    /// Any thread, the device lock held. The default (no event loop) does nothing.
    virtual void requeue_notify(uint16_t /*queue*/) { }
};

/// What activate() gets. `queues` and `interrupt` stay valid until reset() returns.
struct ActivateContext {
    uint64_t features { 0 };  // the negotiated feature bits (device, ring and VIRTIO_F_VERSION_1 bits)
    std::span<Queue> queues;  // one per queue, index = queue index; those the driver did not enable are not ready()
    VirtioInterrupt* interrupt { nullptr };
};

class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;

    virtual std::string_view name() const = 0;
    /// VIRTIO_ID_*.
    virtual uint16_t device_type() const = 0;
    /// Device-specific feature bits offered (bits 0-23 and any others the device implements itself). The transport
    /// adds VIRTIO_F_VERSION_1 and the ring features the Queue implements (INDIRECT_DESC, EVENT_IDX).
    virtual uint64_t device_features() const = 0;
    /// Number of virtqueues (constant for the device's lifetime).
    virtual uint16_t num_queues() const = 0;
    /// Largest Queue Size of `queue` (< num_queues()): a power of two no larger than VIRTQ_MAX_SIZE.
    virtual uint16_t max_queue_size(uint16_t queue) const = 0;
    /// Bytes of device-specific configuration space (0 if none).
    virtual uint32_t config_size() const = 0;
    /// Reads device-specific configuration. The transport guarantees offset + data.size() <= config_size().
    virtual void read_config(uint32_t offset, std::span<uint8_t> data) = 0;
    /// Writes device-specific configuration (same guarantee). A device ignores (and counts) read-only fields.
    virtual void write_config(uint32_t offset, std::span<uint8_t const> data) = 0;

    /// The driver set DRIVER_OK with valid queues. \return an error to make the transport set DEVICE_NEEDS_RESET
    [[nodiscard]] virtual Result<void> activate(ActivateContext const& context) = 0;
    /// The driver notified `queue` (< num_queues()): process its available buffers. Does nothing unless active.
    /// Must do bounded work per call, whatever the guest put in the rings.
    virtual void queue_notify(uint16_t queue) = 0;
    /// The driver reset the device (or the transport is going away): stop using the queues and the interrupt
    /// from activate(), and return to the state before activate(). Counters may be kept.
    virtual void reset() = 0;
};

} // namespace hako::devices::virtio
