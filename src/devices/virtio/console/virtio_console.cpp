#include "devices/virtio/console/virtio_console.h"

#include <array>

#include "base/bytes.h"
#include "base/log.h"

namespace hako::devices::virtio {

VirtioConsole::VirtioConsole(Output output) : m_output(std::move(output)), m_scratch(MAX_TX_CHAIN_BYTES) { }

uint64_t VirtioConsole::device_features() const
{
    return (uint64_t { 1 } << VIRTIO_CONSOLE_F_SIZE) | (uint64_t { 1 } << VIRTIO_CONSOLE_F_EMERG_WRITE);
}

void VirtioConsole::read_config(uint32_t offset, std::span<uint8_t> data)
{
    std::array<uint8_t, VIRTIO_CONSOLE_CONFIG_SIZE> cfg {};
    put_le16(cfg.data() + VIRTIO_CONSOLE_CFG_COLS, 80);
    put_le16(cfg.data() + VIRTIO_CONSOLE_CFG_ROWS, 25);
    put_le32(cfg.data() + VIRTIO_CONSOLE_CFG_MAX_PORTS, 1);
    // emerg_wr reads as 0 (write-only in practice).
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = cfg[offset + i]; // the transport keeps offset + size within config_size()
}

void VirtioConsole::write_config(uint32_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint32_t const at = offset + static_cast<uint32_t>(i);
        if (at < VIRTIO_CONSOLE_CFG_EMERG_WR) {
            HAKO_WARN_RATELIMITED("virtio-console: write to read-only config offset {} ignored", at);
            continue;
        }
        m_emerg[at - VIRTIO_CONSOLE_CFG_EMERG_WR] = data[i];
    }
    // emerg_wr: the low byte of the le32 is a character; a write that covers it emits it.
    if (offset <= VIRTIO_CONSOLE_CFG_EMERG_WR && offset + data.size() > VIRTIO_CONSOLE_CFG_EMERG_WR) {
        uint8_t const c = m_emerg[0];
        m_output(std::span<uint8_t const>(&c, 1));
        ++m_stats.emergency_bytes;
    }
}

Result<void> VirtioConsole::activate(ActivateContext const& context)
{
    if (context.queues.size() < 2 || !context.interrupt)
        return Error(ErrorKind::InvalidArgument, "virtio-console: activated without its queues or interrupt");
    std::lock_guard lock(m_lock);
    m_queues = context.queues;
    m_interrupt = context.interrupt;
    m_active = true;
    return ok();
}

void VirtioConsole::reset()
{
    std::lock_guard lock(m_lock);
    m_active = false;
    m_queues = {};
    m_interrupt = nullptr;
}

void VirtioConsole::queue_notify(uint16_t queue)
{
    std::lock_guard lock(m_lock);
    if (!m_active || queue != TX_QUEUE)
        return; // receive buffers are used when input arrives
    Queue& q = m_queues[TX_QUEUE];
    auto const out = drain_queue(q, q.size(), [this](DescriptorChain const& chain) -> uint32_t {
        uint32_t len = chain.readable_len();
        if (len > MAX_TX_CHAIN_BYTES) {
            ++m_stats.tx_truncated;
            len = MAX_TX_CHAIN_BYTES;
        }
        size_t const got = chain.read_from_chain(std::span<uint8_t>(m_scratch).first(len), 0);
        m_output(std::span<uint8_t const>(m_scratch).first(got));
        m_stats.tx_bytes += got;
        return 0;
    });
    m_stats.bad_chains += out.bad_chains;
    if (out.budget_exhausted)
        m_interrupt->requeue_notify(TX_QUEUE); // the rest without waiting for a notify that may not come
    if (out.broken) {
        ++m_stats.queue_broken;
        HAKO_WARN_RATELIMITED("virtio-console: transmit queue broken; needs reset");
        m_interrupt->signal_needs_reset();
        return;
    }
    if (out.used && q.should_notify())
        m_interrupt->signal_used_queue(TX_QUEUE);
}

size_t VirtioConsole::receive(std::span<uint8_t const> bytes)
{
    std::lock_guard lock(m_lock);
    if (!m_active || bytes.empty())
        return 0;
    Queue& q = m_queues[RX_QUEUE];
    size_t taken = 0;
    bool used = false;
    // One chain per pass; stop when the input is placed or there are no more buffers. Bounded by the queue size.
    for (uint32_t budget = q.size(); budget > 0 && taken < bytes.size(); --budget) {
        auto r = q.pop();
        if (r.status() == PopResult::Status::Empty)
            break;
        if (r.status() == PopResult::Status::Broken) {
            ++m_stats.queue_broken;
            m_interrupt->signal_needs_reset();
            return taken;
        }
        if (r.status() == PopResult::Status::Bad) {
            ++m_stats.bad_chains;
            if (r.head() < q.size()) {
                q.add_used(r.head(), 0);
                used = true;
            }
            continue;
        }
        size_t const n = r.chain().write_to_chain(bytes.subspan(taken), 0);
        q.add_used(r.chain().head(), static_cast<uint32_t>(n));
        used = true;
        taken += n;
    }
    m_stats.rx_bytes += taken;
    if (used && q.should_notify())
        m_interrupt->signal_used_queue(RX_QUEUE);
    return taken;
}

ConsoleStats VirtioConsole::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

} // namespace hako::devices::virtio
