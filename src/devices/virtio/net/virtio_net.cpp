#include "devices/virtio/net/virtio_net.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"

namespace hako::devices::virtio::net {

using hako::net::ETH_MAX_FRAME_LEN;
using hako::net::ETH_MIN_FRAME_LEN;

VirtioNet::VirtioNet(std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac)
    : m_backend(std::move(backend))
    , m_mac(mac)
    , m_tx_scratch(ETH_MAX_FRAME_LEN)
    , m_rx_scratch(VIRTIO_NET_HDR_LEN + ETH_MAX_FRAME_LEN)
{
    std::copy(m_mac.begin(), m_mac.end(), m_config.begin() + VIRTIO_NET_CONFIG_MAC_OFFSET);
    put_le16(&m_config[VIRTIO_NET_CONFIG_STATUS_OFFSET], VIRTIO_NET_S_LINK_UP);
    put_le16(&m_config[VIRTIO_NET_CONFIG_MAX_VQ_PAIRS_OFFSET], 1);
    m_rx_chains.reserve(QUEUE_SIZE);
    m_backend->set_receiver([this](std::span<uint8_t const> frame) { return receive(frame); });
}

VirtioNet::~VirtioNet()
{
    // Waits for a delivery in progress; afterwards the backend never calls receive() again.
    m_backend->set_receiver({});
}

uint64_t VirtioNet::device_features() const
{
    return uint64_t { 1 } << VIRTIO_NET_F_MAC | uint64_t { 1 } << VIRTIO_NET_F_STATUS
        | uint64_t { 1 } << VIRTIO_NET_F_MRG_RXBUF;
}

void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> data)
{
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t const at = uint64_t { offset } + i;
        data[i] = at < m_config.size() ? m_config[at] : uint8_t { 0xff };
    }
}

void VirtioNet::write_config(uint32_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_lock);
    ++m_stats.config_writes_ignored;
    HAKO_WARN_RATELIMITED("virtio-net: ignored write of {} bytes to read-only config offset {}", data.size(), offset);
}

Result<void> VirtioNet::activate(ActivateContext const& context)
{
    if (context.queues.size() < 2 || !context.interrupt)
        return Error(ErrorKind::InvalidArgument, "virtio-net: activated without its two queues or interrupt");
    {
        std::lock_guard lock(m_lock);
        m_rxq = &context.queues[RX_QUEUE];
        m_txq = &context.queues[TX_QUEUE];
        m_interrupt = context.interrupt;
        m_mergeable = (context.features >> VIRTIO_NET_F_MRG_RXBUF) & 1;
        // VIRTIO 1.2 5.1.6.1: the legacy header (no VERSION_1, no MRG_RXBUF) is 10 bytes, without num_buffers.
        m_hdr_len = ((context.features >> VIRTIO_F_VERSION_1) & 1) || m_mergeable ? VIRTIO_NET_HDR_LEN
                                                                                  : VIRTIO_NET_LEGACY_HDR_LEN;
        m_rx_starved = false;
        m_active = true;
        // Frames the backend kept while the guest had no buffers can go now.
        m_backend->rx_buffers_available();
    }
    return ok();
}

void VirtioNet::reset()
{
    std::lock_guard lock(m_lock);
    m_active = false;
    m_rxq = nullptr;
    m_txq = nullptr;
    m_interrupt = nullptr;
    m_rx_starved = false;
    m_rx_chains.clear();
}

NetStats VirtioNet::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

void VirtioNet::queue_broken(Queue& queue, std::string_view which)
{
    ++m_stats.queue_broken;
    HAKO_WARN_RATELIMITED("virtio-net: {} queue broken ({}); needs reset", which,
        queue.error() ? to_string(*queue.error()) : std::string_view("unknown"));
    m_interrupt->signal_needs_reset();
}

void VirtioNet::queue_notify(uint16_t queue_index)
{
    std::lock_guard lock(m_lock);
    if (!m_active)
        return;
    if (queue_index == RX_QUEUE) {
        // New receive buffers. Ask the backend to retry only if something was refused: otherwise there is nothing
        // to retry and every notify would cost the backend a wakeup.
        if (m_rx_starved) {
            m_rx_starved = false;
            m_backend->rx_buffers_available();
        }
        return;
    }
    if (queue_index == TX_QUEUE)
        process_tx();
}

void VirtioNet::process_tx()
{
    Queue& queue = *m_txq;
    // At most one queue's worth of chains per notify (the driver cannot have more outstanding), so a driver that
    // keeps re-adding buffers from another vCPU cannot keep us here.
    uint32_t budget = queue.size();
    bool used = false;
    bool broken = false;
    for (;;) {
        queue.disable_notification();
        while (budget > 0) {
            auto r = queue.pop();
            if (r.status() == PopResult::Status::Empty)
                break;
            if (r.status() == PopResult::Status::Broken) {
                broken = true;
                break;
            }
            --budget;
            if (r.status() == PopResult::Status::Bad) {
                ++m_stats.tx_bad_chains;
                if (r.head() < queue.size()) {
                    queue.add_used(r.head(), 0);
                    used = true;
                }
                continue;
            }
            DescriptorChain const& chain = r.chain();
            uint32_t const len = chain.readable_len();
            if (len < m_hdr_len + ETH_MIN_FRAME_LEN || len - m_hdr_len > ETH_MAX_FRAME_LEN) {
                ++m_stats.tx_dropped_bad;
                HAKO_WARN_RATELIMITED("virtio-net: dropped a transmit chain of {} readable bytes (head {})", len,
                    chain.head());
            } else {
                auto frame = std::span<uint8_t>(m_tx_scratch).first(len - m_hdr_len);
                size_t const n = chain.read_from_chain(frame, m_hdr_len);
                m_backend->send(frame.first(n));
                ++m_stats.tx_frames;
                m_stats.tx_bytes += n;
            }
            queue.add_used(chain.head(), 0);
            used = true;
        }
        if (broken || budget == 0)
            break;
        if (!queue.enable_notification())
            break;
    }
    if (!broken && budget == 0) {
        ++m_stats.budget_exhausted;
        queue.enable_notification(); // chains still pending are served at the driver's next notify
    }
    if (broken || queue.error()) {
        queue_broken(queue, "transmit");
        return;
    }
    if (used && queue.should_notify())
        m_interrupt->signal_used_queue(TX_QUEUE);
}

void VirtioNet::return_unused(Queue& queue, std::span<DescriptorChain const> chains)
{
    for (auto const& c : chains)
        queue.add_used(c.head(), 0);
}

bool VirtioNet::receive(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_lock);
    if (!m_active) {
        ++m_stats.rx_dropped_inactive;
        return true;
    }
    if (frame.size() < ETH_MIN_FRAME_LEN || frame.size() > ETH_MAX_FRAME_LEN) {
        ++m_stats.rx_dropped_bad;
        return true;
    }
    Queue& queue = *m_rxq;
    if (queue.error()) {
        ++m_stats.rx_dropped_bad;
        return true;
    }

    uint32_t const total = m_hdr_len + static_cast<uint32_t>(frame.size());
    // Take chains until they hold the header and the frame. Nothing is written until there is room for all of it,
    // so a frame that does not fit can put the chains back untouched.
    uint16_t const start = queue.next_avail();
    m_rx_chains.clear();
    uint64_t room = 0;
    while (room < total) {
        auto r = queue.pop();
        if (r.status() == PopResult::Status::Empty) {
            queue.set_next_avail(start);
            m_rx_chains.clear();
            ++m_stats.rx_dropped_no_buffer;
            m_rx_starved = true;
            return false;
        }
        if (r.status() == PopResult::Status::Broken) {
            m_rx_chains.clear();
            ++m_stats.rx_dropped_bad;
            queue_broken(queue, "receive");
            return true;
        }
        bool const bad = r.status() == PopResult::Status::Bad || r.chain().writable_len() == 0
            || m_rx_chains.size() >= queue.size();
        if (bad) {
            // A chain the guest got wrong: give it and the chains taken so far back empty and drop the frame.
            ++m_stats.rx_bad_chains;
            ++m_stats.rx_dropped_bad;
            HAKO_WARN_RATELIMITED("virtio-net: bad receive chain at head {}", r.head());
            return_unused(queue, m_rx_chains);
            m_rx_chains.clear();
            if (r.head() < queue.size())
                queue.add_used(r.head(), 0);
            if (queue.should_notify())
                m_interrupt->signal_used_queue(RX_QUEUE);
            return true;
        }
        room += r.chain().writable_len();
        m_rx_chains.push_back(std::move(r).chain());
        if (!m_mergeable)
            break;
    }
    if (room < total) {
        // Without MRG_RXBUF a frame must fit one chain: put it back and drop the frame (the guest posted buffers
        // smaller than the frames it can receive).
        queue.set_next_avail(start);
        m_rx_chains.clear();
        ++m_stats.rx_dropped_too_big;
        HAKO_WARN_RATELIMITED("virtio-net: dropped a {}-byte frame: receive buffer of {} bytes too small",
            frame.size(), room);
        return true;
    }

    auto buf = std::span<uint8_t>(m_rx_scratch).first(total);
    std::fill(buf.begin(), buf.begin() + m_hdr_len, uint8_t { 0 });
    if (m_hdr_len == VIRTIO_NET_HDR_LEN)
        put_le16(&buf[VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET], static_cast<uint16_t>(m_rx_chains.size()));
    std::memcpy(buf.data() + m_hdr_len, frame.data(), frame.size());
    size_t offset = 0;
    for (auto const& chain : m_rx_chains) {
        size_t const n = std::min<size_t>(chain.writable_len(), total - offset);
        size_t const written = chain.write_to_chain(buf.subspan(offset, n), 0);
        queue.add_used(chain.head(), static_cast<uint32_t>(written));
        offset += n;
    }
    if (m_rx_chains.size() > 1)
        ++m_stats.rx_merged_frames;
    m_rx_chains.clear();
    ++m_stats.rx_frames;
    m_stats.rx_bytes += frame.size();
    if (queue.should_notify())
        m_interrupt->signal_used_queue(RX_QUEUE);
    return true;
}

} // namespace hako::devices::virtio::net
