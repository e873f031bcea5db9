#include "net/backend.h"

namespace hako::net {

void Backend::set_receiver(Receiver receiver)
{
    std::lock_guard lock(m_rx_lock);
    m_receiver = std::move(receiver);
}

BackendRxStats Backend::rx_stats() const
{
    std::lock_guard lock(m_rx_lock);
    BackendRxStats s = m_stats;
    s.pending = m_pending.size();
    return s;
}

void Backend::enqueue_locked(std::span<uint8_t const> frame)
{
    if (m_pending.size() >= PENDING_MAX_FRAMES || m_pending_bytes + frame.size() > PENDING_MAX_BYTES) {
        ++m_stats.dropped_full;
        return;
    }
    m_pending.emplace_back(frame.begin(), frame.end());
    m_pending_bytes += frame.size();
    ++m_stats.queued;
}

bool Backend::flush_locked()
{
    if (!m_receiver) {
        m_stats.dropped_no_receiver += m_pending.size();
        m_pending.clear();
        m_pending_bytes = 0;
        return true;
    }
    while (!m_pending.empty()) {
        if (!m_receiver(m_pending.front()))
            return false;
        ++m_stats.delivered;
        m_pending_bytes -= m_pending.front().size();
        m_pending.pop_front();
    }
    return true;
}

void Backend::deliver(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_rx_lock);
    if (!m_receiver) {
        ++m_stats.dropped_no_receiver;
        return;
    }
    // Frames queued earlier go first; if the guest still has no room, this one waits behind them.
    if (!flush_locked()) {
        enqueue_locked(frame);
        return;
    }
    if (m_receiver(frame)) {
        ++m_stats.delivered;
        return;
    }
    enqueue_locked(frame);
}

void Backend::flush_pending()
{
    std::lock_guard lock(m_rx_lock);
    flush_locked();
}

} // namespace hako::net
