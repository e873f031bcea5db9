#include "devices/virtio/net/virtio_net.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/virtio/queue_drain.h"

namespace hako::devices::virtio::net {

using hako::net::ETH_MAX_FRAME_LEN;
using hako::net::ETH_MIN_FRAME_LEN;
using hako::net::VnetHeader;

namespace {

constexpr bool has(uint64_t features, unsigned bit) { return (features >> bit) & 1; }

/// Whether a GSO type (not NONE; ECN flag included) is one of the segmentation offloads in `o`.
bool gso_allowed(uint8_t gso_type, hako::net::Offloads const& o)
{
    uint8_t const gso = gso_type & static_cast<uint8_t>(~hako::net::VNET_HDR_GSO_ECN);
    bool const ecn = gso_type & hako::net::VNET_HDR_GSO_ECN;
    bool const allowed = (gso == hako::net::VNET_HDR_GSO_TCPV4 && o.tso4) || (gso == hako::net::VNET_HDR_GSO_TCPV6 && o.tso6);
    return allowed && (!ecn || o.ecn);
}

} // namespace

VirtioNet::VirtioNet(std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac)
    : m_backend(std::move(backend))
    , m_mac(mac)
    , m_filter(mac)
    , m_tx_scratch(ETH_MAX_FRAME_LEN)
    , m_rx_scratch(VIRTIO_NET_HDR_LEN + ETH_MAX_FRAME_LEN)
{
    std::copy(m_mac.begin(), m_mac.end(), m_config.begin() + VIRTIO_NET_CONFIG_MAC_OFFSET);
    put_le16(&m_config[VIRTIO_NET_CONFIG_STATUS_OFFSET], VIRTIO_NET_S_LINK_UP);
    put_le16(&m_config[VIRTIO_NET_CONFIG_MAX_VQ_PAIRS_OFFSET], 1);
    put_le32(&m_config[VIRTIO_NET_CONFIG_SPEED_OFFSET], VIRTIO_NET_SPEED_UNKNOWN);
    m_config[VIRTIO_NET_CONFIG_DUPLEX_OFFSET] = VIRTIO_NET_DUPLEX_UNKNOWN;
    m_rx_chains.reserve(QUEUE_SIZE);
    m_ctrl_scratch.resize(2 + CTRL_MAX_DATA);
    m_backend->set_tx_ready([this] { on_tx_ready(); });
    m_backend->set_offload_receiver(
        [this](hako::net::VnetHeader const& header, std::span<uint8_t const> frame) { return receive(header, frame); });
}

VirtioNet::~VirtioNet()
{
    // Waits for a delivery in progress; afterwards the backend never calls receive() or on_tx_ready() again.
    m_backend->set_tx_ready({});
    m_backend->set_receiver({});
}

uint64_t VirtioNet::device_features() const
{
    uint64_t f = uint64_t { 1 } << VIRTIO_NET_F_MAC | uint64_t { 1 } << VIRTIO_NET_F_STATUS
        | uint64_t { 1 } << VIRTIO_NET_F_MRG_RXBUF | uint64_t { 1 } << VIRTIO_NET_F_SPEED_DUPLEX
        | uint64_t { 1 } << VIRTIO_NET_F_CTRL_VQ | uint64_t { 1 } << VIRTIO_NET_F_CTRL_RX
        | uint64_t { 1 } << VIRTIO_NET_F_CTRL_RX_EXTRA | uint64_t { 1 } << VIRTIO_NET_F_CTRL_VLAN
        | uint64_t { 1 } << VIRTIO_NET_F_CTRL_MAC_ADDR;
    if (m_backend->supports_offloads()) {
        f |= uint64_t { 1 } << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS;
        for (unsigned bit : { VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4,
                 VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
                 VIRTIO_NET_F_HOST_ECN })
            f |= uint64_t { 1 } << bit;
    }
    return f;
}

void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_lock);
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
        uint64_t const f = context.features & device_features();
        m_mergeable = has(f, VIRTIO_NET_F_MRG_RXBUF);
        // Section 5.1.3.1: TSO needs the checksum offload of its direction, ECN needs TSO. A combination without its
        // prerequisite counts as not negotiated.
        m_tx_offloads.csum = has(f, VIRTIO_NET_F_CSUM);
        m_tx_offloads.tso4 = m_tx_offloads.csum && has(f, VIRTIO_NET_F_HOST_TSO4);
        m_tx_offloads.tso6 = m_tx_offloads.csum && has(f, VIRTIO_NET_F_HOST_TSO6);
        m_tx_offloads.ecn = (m_tx_offloads.tso4 || m_tx_offloads.tso6) && has(f, VIRTIO_NET_F_HOST_ECN);
        m_rx_offloads.csum = has(f, VIRTIO_NET_F_GUEST_CSUM);
        m_rx_offloads.tso4 = m_rx_offloads.csum && has(f, VIRTIO_NET_F_GUEST_TSO4);
        m_rx_offloads.tso6 = m_rx_offloads.csum && has(f, VIRTIO_NET_F_GUEST_TSO6);
        m_rx_offloads.ecn = (m_rx_offloads.tso4 || m_rx_offloads.tso6) && has(f, VIRTIO_NET_F_GUEST_ECN);
        m_rx_offloads_negotiated = m_rx_offloads;
        m_backend->set_receive_offloads(m_rx_offloads);
        bool const ctrl = has(f, VIRTIO_NET_F_CTRL_VQ) && context.queues.size() > CTRL_QUEUE;
        m_ctrlq = ctrl ? &context.queues[CTRL_QUEUE] : nullptr;
        m_filter.reset(m_mac,
            RxFilter::Negotiated { .rx_extra = ctrl && has(f, VIRTIO_NET_F_CTRL_RX_EXTRA),
                .mac_addr = ctrl && has(f, VIRTIO_NET_F_CTRL_MAC_ADDR),
                .vlan = ctrl && has(f, VIRTIO_NET_F_CTRL_VLAN), .rx = ctrl && has(f, VIRTIO_NET_F_CTRL_RX) });
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
    m_tx_blocked = false;
    m_rx_chains.clear();
    m_tx_offloads = {};
    m_rx_offloads = {};
    m_rx_offloads_negotiated = {};
    m_backend->set_receive_offloads({});
    m_ctrlq = nullptr;
    // A reset takes back what the control queue changed: the MAC (QEMU does the same) and the filter.
    m_filter.reset(m_mac, {});
    std::copy(m_mac.begin(), m_mac.end(), m_config.begin() + VIRTIO_NET_CONFIG_MAC_OFFSET);
}

bool VirtioNet::tx_header_ok(VnetHeader const& h, size_t frame_len) const
{
    bool const needs_csum = h.flags & hako::net::VNET_HDR_F_NEEDS_CSUM;
    if (needs_csum
        && (!m_tx_offloads.csum || uint64_t { h.csum_start } + h.csum_offset + 2 > frame_len
            || h.csum_start < ETH_MIN_FRAME_LEN))
        return false;
    if (h.gso_type == hako::net::VNET_HDR_GSO_NONE)
        return true;
    return gso_allowed(h.gso_type, m_tx_offloads) && needs_csum && h.gso_size != 0;
}

bool VirtioNet::rx_header_ok(VnetHeader const& h) const
{
    if ((h.flags & hako::net::VNET_HDR_F_NEEDS_CSUM) && !m_rx_offloads.csum)
        return false;
    return h.gso_type == hako::net::VNET_HDR_GSO_NONE || gso_allowed(h.gso_type, m_rx_offloads);
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
    else if (queue_index == CTRL_QUEUE && m_ctrlq)
        process_ctrl();
}

void VirtioNet::on_tx_ready()
{
    std::lock_guard lock(m_lock);
    if (m_active && m_tx_blocked) {
        m_tx_blocked = false;
        m_interrupt->requeue_notify(TX_QUEUE);
    }
}

void VirtioNet::set_rx_offloads_locked(hako::net::Offloads offloads)
{
    m_rx_offloads = offloads;
    m_backend->set_receive_offloads(offloads);
}

uint8_t VirtioNet::control_command(uint8_t cls, uint8_t code, std::span<uint8_t const> data)
{
    if (cls == VIRTIO_NET_CTRL_GUEST_OFFLOADS) {
        // Section 5.1.6.5.6: le64 of GUEST_* feature bits, within what was negotiated.
        if (code != VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET || data.size() != 8 || !m_rx_offloads_negotiated.csum)
            return VIRTIO_NET_ERR;
        uint64_t const want = get_le64(data.data());
        hako::net::Offloads const& max = m_rx_offloads_negotiated;
        hako::net::Offloads o;
        o.csum = has(want, VIRTIO_NET_F_GUEST_CSUM);
        o.tso4 = has(want, VIRTIO_NET_F_GUEST_TSO4);
        o.tso6 = has(want, VIRTIO_NET_F_GUEST_TSO6);
        o.ecn = has(want, VIRTIO_NET_F_GUEST_ECN);
        uint64_t const known = uint64_t { 1 } << VIRTIO_NET_F_GUEST_CSUM | uint64_t { 1 } << VIRTIO_NET_F_GUEST_TSO4
            | uint64_t { 1 } << VIRTIO_NET_F_GUEST_TSO6 | uint64_t { 1 } << VIRTIO_NET_F_GUEST_ECN;
        if ((want & ~known) || (o.csum && !max.csum) || (o.tso4 && !max.tso4) || (o.tso6 && !max.tso6)
            || (o.ecn && !max.ecn) || ((o.tso4 || o.tso6) && !o.csum) || (o.ecn && !(o.tso4 || o.tso6)))
            return VIRTIO_NET_ERR;
        set_rx_offloads_locked(o);
        return VIRTIO_NET_OK;
    }
    uint8_t const ack = m_filter.command(cls, code, data);
    if (ack == VIRTIO_NET_OK && cls == VIRTIO_NET_CTRL_MAC && code == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
        auto const mac = m_filter.mac();
        std::copy(mac.begin(), mac.end(), m_config.begin() + VIRTIO_NET_CONFIG_MAC_OFFSET);
    }
    return ack;
}

void VirtioNet::process_ctrl()
{
    Queue& queue = *m_ctrlq;
    auto const out = drain_queue(queue, queue.size(), [&](DescriptorChain& chain) -> uint32_t {
        uint32_t const readable = chain.readable_len();
        if (readable < 2 || readable - 2 > CTRL_MAX_DATA || chain.writable_len() < 1) {
            ++m_stats.ctrl_bad_chains;
            HAKO_WARN_RATELIMITED("virtio-net: control chain with {} readable and {} writable bytes refused", readable,
                chain.writable_len());
            return 0;
        }
        auto const buf = std::span<uint8_t>(m_ctrl_scratch).first(readable);
        chain.read_from_chain(buf, 0);
        uint8_t const ack = control_command(buf[0], buf[1], buf.subspan(2));
        if (ack == VIRTIO_NET_OK)
            ++m_stats.ctrl_commands;
        else
            ++m_stats.ctrl_errors;
        return static_cast<uint32_t>(chain.write_to_chain(std::span<uint8_t const>(&ack, 1), 0));
    });
    m_stats.ctrl_bad_chains += out.bad_chains;
    if (out.budget_exhausted)
        m_interrupt->requeue_notify(CTRL_QUEUE);
    if (out.broken) {
        queue_broken(queue, "control");
        return;
    }
    if (out.used && queue.should_notify())
        m_interrupt->signal_used_queue(CTRL_QUEUE);
}

void VirtioNet::process_tx()
{
    Queue& queue = *m_txq;
    // At most one queue's worth of chains per notify (the driver cannot have more outstanding), so a driver that
    // keeps re-adding buffers from another vCPU cannot keep us here.
    uint32_t budget = queue.size();
    bool used = false;
    bool broken = false;
    bool blocked = false;
    for (;;) {
        queue.disable_notification();
        while (budget > 0) {
            if (m_backend->tx_full()) {
                // Back-pressure: leave the frames in the guest's ring (notifications stay off) until the backend
                // has room and on_tx_ready() runs us again, rather than take them and drop them.
                blocked = true;
                break;
            }
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
                if (!m_tx_offloads.csum) {
                    m_backend->send(frame.first(n));
                    ++m_stats.tx_frames;
                    m_stats.tx_bytes += n;
                } else {
                    std::array<uint8_t, hako::net::VNET_HDR_LEN> raw {};
                    chain.read_from_chain(raw, 0);
                    VnetHeader header = hako::net::decode_vnet_header(raw);
                    header.flags &= hako::net::VNET_HDR_F_NEEDS_CSUM; // DATA_VALID means nothing on transmit
                    if (!tx_header_ok(header, n)) {
                        ++m_stats.tx_dropped_bad_header;
                        HAKO_WARN_RATELIMITED("virtio-net: dropped a frame with a bad header (flags {:#x} gso {:#x} "
                                              "csum {}+{} gso_size {}, {} bytes)",
                            header.flags, header.gso_type, header.csum_start, header.csum_offset, header.gso_size, n);
                    } else {
                        if (header.flags || header.gso_type)
                            ++m_stats.tx_offload_frames;
                        m_backend->send(header, frame.first(n));
                        ++m_stats.tx_frames;
                        m_stats.tx_bytes += n;
                    }
                }
            }
            queue.add_used(chain.head(), 0);
            used = true;
        }
        if (broken || budget == 0 || blocked)
            break;
        if (!queue.enable_notification())
            break;
    }
    if (blocked) {
        ++m_stats.tx_backpressure;
        m_tx_blocked = true;
    }
    if (!broken && !blocked && budget == 0) {
        ++m_stats.budget_exhausted;
        // Chains may still be pending, and with EVENT_IDX the driver, already past the avail_event just set, will not
        // notify again: have the transport call us again from the event loop.
        queue.enable_notification();
        m_interrupt->requeue_notify(TX_QUEUE);
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

bool VirtioNet::receive(VnetHeader const& header, std::span<uint8_t const> frame)
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
    if (!rx_header_ok(header)) {
        ++m_stats.rx_dropped_offload;
        return true;
    }
    if (!m_filter.accepts(frame)) {
        ++m_stats.rx_filtered;
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
    // DATA_VALID only for a guest that takes checksum offload (section 5.1.6.3: flags are zero otherwise).
    VnetHeader out = header;
    if (!m_rx_offloads.csum)
        out = VnetHeader {};
    hako::net::encode_vnet_header(out, buf.first<hako::net::VNET_HDR_LEN>());
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
