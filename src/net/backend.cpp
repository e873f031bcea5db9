#include "net/backend.h"

#include "base/bytes.h"
#include "base/log.h"

namespace hako::net {

void encode_vnet_header(VnetHeader const& h, std::span<uint8_t, VNET_HDR_LEN> out)
{
    out[0] = h.flags;
    out[1] = h.gso_type;
    put_le16(&out[2], h.hdr_len);
    put_le16(&out[4], h.gso_size);
    put_le16(&out[6], h.csum_start);
    put_le16(&out[8], h.csum_offset);
}

VnetHeader decode_vnet_header(std::span<uint8_t const, VNET_HDR_LEN> in)
{
    VnetHeader h;
    h.flags = in[0];
    h.gso_type = in[1];
    h.hdr_len = get_le16(&in[2]);
    h.gso_size = get_le16(&in[4]);
    h.csum_start = get_le16(&in[6]);
    h.csum_offset = get_le16(&in[8]);
    return h;
}

void Backend::send(VnetHeader const& header, std::span<uint8_t const> frame)
{
    if ((header.flags & VNET_HDR_F_NEEDS_CSUM) || header.gso_type != VNET_HDR_GSO_NONE) {
        ++m_tx_dropped_offload;
        HAKO_WARN_RATELIMITED("net: dropped a frame that needs checksum or segmentation offload: the backend has none");
        return;
    }
    send(frame);
}

void Backend::set_tx_ready(TxReady ready)
{
    std::lock_guard lock(m_tx_ready_lock);
    m_tx_ready = std::move(ready);
}

void Backend::notify_tx_ready()
{
    std::lock_guard lock(m_tx_ready_lock);
    if (m_tx_ready)
        m_tx_ready();
}

uint64_t Backend::tx_dropped_offload() const { return m_tx_dropped_offload.load(); }

void Backend::set_receiver(Receiver receiver)
{
    OffloadReceiver r;
    if (receiver)
        r = [plain = std::move(receiver)](VnetHeader const&, std::span<uint8_t const> frame) { return plain(frame); };
    set_offload_receiver(std::move(r));
}

void Backend::set_offload_receiver(OffloadReceiver receiver)
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

void Backend::enqueue_locked(VnetHeader const& header, std::span<uint8_t const> frame)
{
    if (m_pending.size() >= PENDING_MAX_FRAMES || m_pending_bytes + frame.size() > PENDING_MAX_BYTES) {
        ++m_stats.dropped_full;
        return;
    }
    m_pending.push_back(PendingFrame { header, std::vector<uint8_t>(frame.begin(), frame.end()) });
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
        auto const& p = m_pending.front();
        if (!m_receiver(p.header, p.frame))
            return false;
        ++m_stats.delivered;
        m_pending_bytes -= p.frame.size();
        m_pending.pop_front();
    }
    return true;
}

bool Backend::deliver(VnetHeader const& header, std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_rx_lock);
    if (!m_receiver) {
        ++m_stats.dropped_no_receiver;
        return true;
    }
    // Frames queued earlier go first; if the guest still has no room, this one waits behind them.
    if (!flush_locked()) {
        enqueue_locked(header, frame);
        return false;
    }
    if (m_receiver(header, frame)) {
        ++m_stats.delivered;
        return true;
    }
    enqueue_locked(header, frame);
    return false;
}

bool Backend::flush_pending()
{
    std::lock_guard lock(m_rx_lock);
    return flush_locked();
}

} // namespace hako::net
