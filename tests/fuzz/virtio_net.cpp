// Fuzzes virtio-net as a hostile driver would drive it: guest RAM (64 KiB at 0x10000) is filled from the input,
// the two queues' configuration and the negotiated features (MRG_RXBUF, EVENT_IDX, INDIRECT_DESC) come from the
// input header, and the rest is a bounded sequence of operations: transmit notifies, frames arriving from the
// network (any length, including too short and too long), receive notifies with backend retries, guest writes to
// RAM, and reset/re-activate. In driver mode (header byte 0 bit 7) the queues have a fixed valid layout and
// operations build near-valid transmit chains and receive buffers, so the fuzzer reaches the data paths quickly.
//
// Checked beyond "no crash, no hang, no sanitizer report": every frame handed to the backend is 14..65550 bytes;
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
#include "fuzz_fakes.h"
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

using fuzz::check;

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

using FuzzBackend = fuzz::FrameCountingBackend;

struct CountingInterrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { check(q < 2); }
    void signal_config_change() override { }
    void signal_needs_reset() override { }
};

// Driver mode: fixed, valid layout per queue.
constexpr uint64_t DRV_DESC[2] = { 0x0000, 0x1000 };
constexpr uint64_t DRV_AVAIL[2] = { 0x2000, 0x2400 };
constexpr uint64_t DRV_USED[2] = { 0x2800, 0x3000 };
constexpr uint64_t DRV_DATA = 0x4000;
constexpr uint16_t DRV_QSIZE = 16;
uint16_t g_avail[2];
uint16_t g_next_desc[2];

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
    if (q == TX_QUEUE && len >= 12)
        std::memset(ram().data() + off, 0, std::min<size_t>(12, RAM_SIZE - off));
    publish(q, head);
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
    uint8_t const* p = h + 2 + 6 * index;
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
    for (int i = 0; i < 2; ++i) {
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
    g_avail[0] = g_avail[1] = 0;
    g_next_desc[0] = g_next_desc[1] = 0;
    for (int i = 0; i < 2; ++i)
        configure(queues[static_cast<size_t>(i)], i, h, features);

    auto backend = std::make_shared<FuzzBackend>(hako::net::ETH_MAX_FRAME_LEN);
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
                backend->inject(std::span<uint8_t const>(frame).first(len));
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
                net.queue_notify(static_cast<uint16_t>(a)); // any queue index, including bad ones
                break;
            case 5: {
                std::array<uint8_t, 16> cfg {};
                uint32_t const off = a % 10;
                uint32_t const len = std::min<uint32_t>(1 + (b & 7), 10 - off);
                net.read_config(off, std::span<uint8_t>(cfg).first(len));
                if (c & 1)
                    net.write_config(off, std::span<uint8_t const>(cfg).first(len));
                break;
            }
            case 6:
                net.reset();
                for (int i = 0; i < 2; ++i)
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
        check(rs.delivered == s.rx_frames + s.rx_dropped_too_big + s.rx_dropped_bad + s.rx_dropped_inactive);
        check(offered == rs.delivered + rs.dropped_full + rs.pending + rs.dropped_no_receiver);
    }
    return 0;
}
