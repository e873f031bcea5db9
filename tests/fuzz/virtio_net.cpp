// Fuzzes virtio-net as a hostile driver would drive it: guest RAM (64 KiB at 0x10000) is filled from the input,
// the two queues' configuration and the negotiated features (MRG_RXBUF, EVENT_IDX, INDIRECT_DESC) come from the
// input header (byte 1 bit 3: an offload-capable backend, with the offload features from bit 4 or byte 15, and
// transmit headers and received frames' headers shaped by the input; bit 5: the control queue and its features),
// and the rest is a bounded sequence of operations: transmit notifies, frames arriving from the
// network (any length, including too short and too long), receive notifies with backend retries, guest writes to
// RAM, and reset/re-activate. In driver mode (header byte 0 bit 7) the queues have a fixed valid layout and
// operations build near-valid transmit chains and receive buffers, so the fuzzer reaches the data paths quickly.
//
// Checked beyond "no crash, no hang, no sanitizer report": every frame handed to the backend is 14..65550 bytes
// and a header passed with it asks only for what it can (a checksum field inside the frame, no stray flags);
// the device's transmit count matches what the backend got; every receive() call ends in exactly one outcome
// counter and every frame from the network is accounted for (delivered, dropped or pending).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/virtio/net/virtio_net.h"
#include "net/backend.h"

using namespace hako;
using namespace hako::devices::virtio;
using namespace hako::devices::virtio::net;
using memory::GuestAddr;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr size_t HEADER = 16;
constexpr size_t MAX_OPS = 64;

void check(bool ok)
{
    if (!ok)
        std::abort();
}

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

class FuzzBackend final : public hako::net::Backend {
public:
    void send(std::span<uint8_t const> frame) override
    {
        check(frame.size() >= hako::net::ETH_MIN_FRAME_LEN && frame.size() <= hako::net::ETH_MAX_FRAME_LEN);
        ++sent;
    }
    void send(hako::net::VnetHeader const& h, std::span<uint8_t const> frame) override
    {
        // Only headers the device checked against the negotiated offloads get here.
        check(offloads);
        if (h.flags & hako::net::VNET_HDR_F_NEEDS_CSUM)
            check(uint64_t { h.csum_start } + h.csum_offset + 2 <= frame.size());
        check((h.flags & ~hako::net::VNET_HDR_F_NEEDS_CSUM) == 0);
        send(frame);
    }
    bool supports_offloads() const override { return offloads; }
    void rx_buffers_available() override { retry = true; }
    void inject(hako::net::VnetHeader const& h, std::span<uint8_t const> frame) { deliver(h, frame); }
    void flush()
    {
        if (retry) {
            retry = false;
            flush_pending();
        }
    }
    uint64_t sent { 0 };
    bool retry { false };
    bool offloads { false };
};

bool g_offloads; // this input runs with an offload-capable backend and offload features

struct CountingInterrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { check(q < 3); }
    void signal_config_change() override { }
    void signal_needs_reset() override { }
};

// Driver mode: fixed, valid layout per queue.
constexpr uint64_t DRV_DESC[3] = { 0x0000, 0x1000, 0x3400 };
constexpr uint64_t DRV_AVAIL[3] = { 0x2000, 0x2400, 0x3600 };
constexpr uint64_t DRV_USED[3] = { 0x2800, 0x3000, 0x3700 };
constexpr uint64_t DRV_DATA = 0x4000;
constexpr uint16_t DRV_QSIZE = 16;
uint16_t g_avail[3];
uint16_t g_next_desc[3];

void put_desc(int q, uint16_t i, uint64_t off, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t* p = ram().data() + DRV_DESC[q] + 16u * i;
    put_le64(p, RAM_BASE + off);
    put_le32(p + 8, len);
    put_le16(p + 12, flags);
    put_le16(p + 14, next);
}

void publish(int q, uint16_t head)
{
    put_le16(ram().data() + DRV_AVAIL[q] + virtq_avail_entry_offset(g_avail[q] % DRV_QSIZE), head);
    ++g_avail[q];
    put_le16(ram().data() + DRV_AVAIL[q] + VIRTQ_AVAIL_IDX_OFFSET, g_avail[q]);
}

/// A chain of 1-3 descriptors covering `len` bytes at DRV_DATA + off, split where the input says.
void build_chain(int q, uint8_t a, uint8_t b, uint8_t c)
{
    uint32_t const len = (static_cast<uint32_t>(a) | static_cast<uint32_t>(b & 0x3f) << 8) % 0xb000;
    uint64_t const off = DRV_DATA + (static_cast<uint64_t>(c) << 4) % 0x1000;
    uint16_t const flags = q == RX_QUEUE ? VIRTQ_DESC_F_WRITE : 0;
    unsigned const parts = 1 + (b >> 6) % 3;
    uint16_t const head = static_cast<uint16_t>(g_next_desc[q] % DRV_QSIZE);
    uint32_t done = 0;
    for (unsigned i = 0; i < parts; ++i) {
        uint16_t const d = static_cast<uint16_t>((g_next_desc[q] + i) % DRV_QSIZE);
        uint16_t const next = static_cast<uint16_t>((d + 1) % DRV_QSIZE);
        uint32_t const piece = i + 1 == parts ? len - done : std::min<uint32_t>(len - done, i == 0 ? 12 : c);
        put_desc(q, d, off + done, piece, static_cast<uint16_t>(flags | (i + 1 < parts ? VIRTQ_DESC_F_NEXT : 0)), next);
        done += piece;
    }
    g_next_desc[q] = static_cast<uint16_t>(g_next_desc[q] + parts);
    if (q == TX_QUEUE && len >= 12) {
        uint8_t* hdr = ram().data() + off;
        std::memset(hdr, 0, std::min<size_t>(12, RAM_SIZE - off));
        if (g_offloads && off + 10 <= RAM_SIZE) {
            // A header the input shapes: flags, GSO type (valid ones and junk), offsets near the frame's size.
            hako::net::VnetHeader const v { .flags = static_cast<uint8_t>(a & 3),
                .gso_type = static_cast<uint8_t>((b & 0x10) ? (b & 0x85) : 0), .hdr_len = c,
                .gso_size = static_cast<uint16_t>(b & 0x20 ? 0 : 1448), .csum_start = static_cast<uint16_t>(c + (a & 0x40 ? len : 0)),
                .csum_offset = static_cast<uint16_t>(a >> 3) };
            hako::net::encode_vnet_header(v, std::span<uint8_t, hako::net::VNET_HDR_LEN>(hdr, hako::net::VNET_HDR_LEN));
        }
    }
    publish(q, head);
}

/// A control command chain: class and code from the input, `a % 64` data bytes (the input's RAM), and an ack byte
/// (or, sometimes, none).
void build_ctrl_chain(uint8_t a, uint8_t b, uint8_t c)
{
    uint64_t const off = DRV_DATA + 0x2000 + (static_cast<uint64_t>(c) << 3) % 0x800;
    uint8_t* cmd = ram().data() + off;
    cmd[0] = static_cast<uint8_t>((b >> 4) % 7);
    cmd[1] = static_cast<uint8_t>(b & 7);
    uint16_t const d = static_cast<uint16_t>(g_next_desc[CTRL_QUEUE] % DRV_QSIZE);
    uint16_t const ack = static_cast<uint16_t>((d + 1) % DRV_QSIZE);
    bool const with_ack = !(c & 1);
    put_desc(CTRL_QUEUE, d, off, 2u + a % 64u, with_ack ? VIRTQ_DESC_F_NEXT : 0, ack);
    put_desc(CTRL_QUEUE, ack, DRV_DATA + 0x2f00, 1, VIRTQ_DESC_F_WRITE, 0);
    g_next_desc[CTRL_QUEUE] = static_cast<uint16_t>(g_next_desc[CTRL_QUEUE] + 2);
    publish(CTRL_QUEUE, d);
}

void configure(Queue& q, int index, uint8_t const* h, uint64_t features)
{
    q.reset();
    if (h[0] & 0x80) {
        check(q.set_size(DRV_QSIZE).has_value());
        q.set_desc_table(GuestAddr(RAM_BASE + DRV_DESC[index]));
        q.set_avail_ring(GuestAddr(RAM_BASE + DRV_AVAIL[index]));
        q.set_used_ring(GuestAddr(RAM_BASE + DRV_USED[index]));
        q.set_negotiated_features(features);
        q.set_next_avail(g_avail[index]);
        check(q.validate().has_value());
        q.set_ready(true);
        return;
    }
    uint8_t const* p = h + 2 + 6 * (index % 2); // the control queue shares the receive queue's (hostile) layout
    (void)q.set_size(static_cast<uint16_t>(1u << (p[0] & 7)));
    auto addr = [&](size_t i) { return GuestAddr(RAM_BASE + (static_cast<uint64_t>(p[i]) << 8)); };
    q.set_desc_table(addr(1));
    q.set_avail_ring(addr(2));
    q.set_used_ring(addr(3));
    q.set_negotiated_features(features);
    q.set_next_avail(static_cast<uint16_t>(p[4] << 8 | p[5]));
    bool const valid = q.validate().has_value();
    q.set_ready(valid || (p[0] & 8));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    uint8_t const* h = data;
    size_t const seed = std::min<size_t>(static_cast<size_t>(data[14]) * 64, size - HEADER);
    std::fill(ram().begin(), ram().end(), 0);
    std::memcpy(ram().data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;

    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(ram()) } });
    if (!mem)
        return 0;
    std::vector<Queue> queues;
    for (int i = 0; i < 3; ++i) {
        auto q = Queue::create(*mem, VirtioNet::QUEUE_SIZE);
        if (!q)
            return 0;
        queues.push_back(std::move(*q));
    }
    uint64_t features = uint64_t { 1 } << VIRTIO_F_VERSION_1;
    if (h[1] & 1)
        features |= uint64_t { 1 } << VIRTIO_NET_F_MRG_RXBUF;
    if (h[1] & 2)
        features |= uint64_t { 1 } << VIRTIO_F_EVENT_IDX;
    if (h[1] & 4)
        features |= uint64_t { 1 } << VIRTIO_F_INDIRECT_DESC;
    g_offloads = h[1] & 8;
    if (g_offloads)
        for (unsigned bit : { VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
                 VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_ECN })
            if (h[1] & 0x10 || (h[15] >> (bit & 7)) & 1)
                features |= uint64_t { 1 } << bit;
    if (h[1] & 0x20)
        features |= uint64_t { 1 } << VIRTIO_NET_F_CTRL_VQ | uint64_t { 1 } << VIRTIO_NET_F_CTRL_RX
            | uint64_t { 1 } << VIRTIO_NET_F_CTRL_RX_EXTRA | uint64_t { 1 } << VIRTIO_NET_F_CTRL_VLAN
            | uint64_t { 1 } << VIRTIO_NET_F_CTRL_MAC_ADDR | uint64_t { 1 } << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS;
    g_avail[0] = g_avail[1] = g_avail[2] = 0;
    g_next_desc[0] = g_next_desc[1] = g_next_desc[2] = 0;
    for (int i = 0; i < 3; ++i)
        configure(queues[static_cast<size_t>(i)], i, h, features);

    auto backend = std::make_shared<FuzzBackend>();
    backend->offloads = g_offloads;
    CountingInterrupt irq;
    uint64_t offered = 0;
    {
        VirtioNet net(backend, hako::net::default_mac(0));
        ActivateContext ctx;
        ctx.features = features;
        ctx.queues = queues;
        ctx.interrupt = &irq;
        bool active = net.activate(ctx).has_value();
        check(active);
        static std::vector<uint8_t> frame(hako::net::ETH_MAX_FRAME_LEN + 16);

        for (size_t ops = 0; ops < MAX_OPS && pos + 4 <= size; ++ops, pos += 4) {
            uint8_t const op = data[pos];
            uint8_t const a = data[pos + 1];
            uint8_t const b = data[pos + 2];
            uint8_t const c = data[pos + 3];
            switch (op & 7) {
            case 0:
                if (h[0] & 0x80)
                    build_chain(TX_QUEUE, a, b, c);
                net.queue_notify(TX_QUEUE);
                break;
            case 1: {
                // A frame from the network: mostly ordinary sizes, sometimes at or past the limits.
                size_t len = static_cast<size_t>(a) | static_cast<size_t>(b & 0x1f) << 8;
                if (b & 0x80)
                    len = hako::net::ETH_MAX_FRAME_LEN - 2 + (c & 3);
                std::memset(frame.data(), c, len);
                hako::net::VnetHeader rh;
                if (g_offloads)
                    rh = hako::net::VnetHeader { .flags = static_cast<uint8_t>(op >> 3 & 3),
                        .gso_type = static_cast<uint8_t>(op >> 5 == 1 ? hako::net::VNET_HDR_GSO_TCPV4
                                : op >> 5 == 2                    ? hako::net::VNET_HDR_GSO_TCPV6 | hako::net::VNET_HDR_GSO_ECN
                                                                  : 0),
                        .hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
                backend->inject(rh, std::span<uint8_t const>(frame).first(len));
                ++offered;
                break;
            }
            case 2:
                if (h[0] & 0x80)
                    build_chain(RX_QUEUE, a, b, c);
                net.queue_notify(RX_QUEUE);
                backend->flush();
                break;
            case 3: {
                size_t const off = (static_cast<size_t>(a) | static_cast<size_t>(b) << 8) % (RAM_SIZE - 1);
                ram()[off] = c;
                ram()[off + 1] = op;
                break;
            }
            case 4:
                if ((h[0] & 0x80) && (a & 0x80)) {
                    build_ctrl_chain(a, b, c);
                    net.queue_notify(CTRL_QUEUE);
                } else {
                    net.queue_notify(static_cast<uint16_t>(a)); // any queue index, including bad ones
                }
                break;
            case 5: {
                std::array<uint8_t, 16> cfg {};
                uint32_t const off = a % VIRTIO_NET_CONFIG_SIZE;
                uint32_t const len = std::min<uint32_t>(1 + (b & 7), VIRTIO_NET_CONFIG_SIZE - off);
                net.read_config(off, std::span<uint8_t>(cfg).first(len));
                if (c & 1)
                    net.write_config(off, std::span<uint8_t const>(cfg).first(len));
                break;
            }
            case 6:
                net.reset();
                for (int i = 0; i < 3; ++i)
                    configure(queues[static_cast<size_t>(i)], i, h, features);
                check(net.activate(ctx).has_value());
                break;
            case 7:
                net.reset();
                break;
            }
        }
        NetStats const s = net.stats();
        check(s.tx_frames == backend->sent);
        // Each receive() call ends in exactly one outcome; the calls that accepted the frame are the backend's
        // deliveries, the ones that refused it are rx_dropped_no_buffer. Every offered frame was delivered, dropped
        // by the backend, or is still pending there.
        auto const rs = backend->rx_stats();
        if (std::getenv("HAKO_FUZZ_NET_STATS"))
            std::fprintf(stderr, "net: tx %llu txbad %llu rx %llu merged %llu nobuf %llu toobig %llu rxbad %llu\n",
                static_cast<unsigned long long>(s.tx_frames), static_cast<unsigned long long>(s.tx_dropped_bad),
                static_cast<unsigned long long>(s.rx_frames), static_cast<unsigned long long>(s.rx_merged_frames),
                static_cast<unsigned long long>(s.rx_dropped_no_buffer),
                static_cast<unsigned long long>(s.rx_dropped_too_big), static_cast<unsigned long long>(s.rx_dropped_bad));
        check(rs.delivered
            == s.rx_frames + s.rx_dropped_too_big + s.rx_dropped_bad + s.rx_dropped_inactive + s.rx_dropped_offload
                + s.rx_filtered);
        check(offered == rs.delivered + rs.dropped_full + rs.pending + rs.dropped_no_receiver);
    }
    return 0;
}
