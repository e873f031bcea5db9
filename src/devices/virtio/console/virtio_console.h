// VirtioConsole: the virtio console device (VIRTIO 1.2 section 5.3, device ID 3) with a single port: receiveq
// (queue 0: host-to-guest bytes into device-writable buffers) and transmitq (queue 1: guest-to-host bytes from
// device-readable buffers). Offers VIRTIO_CONSOLE_F_SIZE (cols/rows, fixed at 80x25) and
// VIRTIO_CONSOLE_F_EMERG_WRITE (a byte written to emerg_wr goes straight to the output, for early boot). This is
// what `hako run --console virtio` connects to the terminal, so it can be the guest's main console (Linux
// console=hvc0).
//
// Input: receive() places host bytes into the guest's posted receive buffers and returns how many it took; the
// caller keeps the rest and retries (the guest has no buffer yet, or they are full). Output: a transmit chain's
// readable bytes, at most MAX_TX_CHAIN_BYTES per chain, go to the output callback; at most a queue's worth of chains
// per notify.
// Deliberately not done: VIRTIO_CONSOLE_F_MULTIPORT (control queues, several ports); a guest that wants ports must
// live without them, as Linux does when the feature is absent.
//
// Threading: m_lock guards the state; the output callback and VirtioInterrupt are called with it held.
#pragma once

#include <cstdint>
#include <array>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "devices/virtio/queue_drain.h"
#include "devices/virtio/virtio_device.h"

namespace hako::devices::virtio {

constexpr unsigned VIRTIO_CONSOLE_F_SIZE = 0;
constexpr unsigned VIRTIO_CONSOLE_F_MULTIPORT = 1;
constexpr unsigned VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
constexpr uint32_t VIRTIO_CONSOLE_CFG_COLS = 0;     // le16
constexpr uint32_t VIRTIO_CONSOLE_CFG_ROWS = 2;     // le16
constexpr uint32_t VIRTIO_CONSOLE_CFG_MAX_PORTS = 4; // le32
constexpr uint32_t VIRTIO_CONSOLE_CFG_EMERG_WR = 8; // le32
constexpr uint32_t VIRTIO_CONSOLE_CONFIG_SIZE = 12;

struct ConsoleStats {
    uint64_t tx_bytes { 0 };
    uint64_t rx_bytes { 0 };
    uint64_t emergency_bytes { 0 };
    uint64_t tx_truncated { 0 }; // transmit chains longer than MAX_TX_CHAIN_BYTES (the rest is dropped)
    uint64_t bad_chains { 0 };
    uint64_t queue_broken { 0 };
};

class VirtioConsole final : public VirtioDevice {
public:
    using Output = std::function<void(std::span<uint8_t const>)>;
    static constexpr uint16_t QUEUE_SIZE = 128;
    static constexpr uint32_t MAX_TX_CHAIN_BYTES = 64 * 1024;
    static constexpr uint16_t RX_QUEUE = 0;
    static constexpr uint16_t TX_QUEUE = 1;

    explicit VirtioConsole(Output output);

    std::string_view name() const override { return "console"; }
    uint16_t device_type() const override { return VIRTIO_ID_CONSOLE; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 2; }
    uint16_t max_queue_size(uint16_t) const override { return QUEUE_SIZE; }
    uint32_t config_size() const override { return VIRTIO_CONSOLE_CONFIG_SIZE; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<uint8_t const> data) override;
    [[nodiscard]] Result<void> activate(ActivateContext const& context) override;
    void queue_notify(uint16_t queue) override;
    void reset() override;

    /// Host input for the guest. \return how many bytes the guest's receive buffers took (0 if none are posted).
    size_t receive(std::span<uint8_t const> bytes);
    ConsoleStats stats() const;

private:
    Output m_output;
    mutable std::mutex m_lock; // guards everything below
    bool m_active { false };
    std::span<Queue> m_queues;
    VirtioInterrupt* m_interrupt { nullptr };
    std::vector<uint8_t> m_scratch;
    std::array<uint8_t, 4> m_emerg {}; // bytes of a partial emerg_wr write
    ConsoleStats m_stats;
};

} // namespace hako::devices::virtio
