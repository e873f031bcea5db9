// Fuzzes virtio-balloon as a hostile driver drives it: guest RAM (64 KiB at 0x10000, with ROM-less holes around it)
// is filled from the input, three queues are configured at input-chosen ring addresses, and a bounded sequence of
// operations runs: notify any queue (inflate PFN arrays, deflate, stats buffers), host target changes, host stats
// requests, config reads and writes at any offset and size, RAM writes between them, and device reset.
//
// Checked beyond "no crash, no hang, no sanitizer report": discards only ever touch whole pages inside guest RAM
// (from_buffers memory zero-fills, so any page the device zeroes must be one the guest named; bytes outside the
// named pages stay as written), the work per notify is bounded, config reads always fill the buffer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "devices/virtio/balloon/virtio_balloon.h"
#include "fuzz_fakes.h"

using namespace hako;
using namespace hako::devices::virtio;
using memory::GuestAddr;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr size_t HEADER = 8;
constexpr size_t MAX_OPS = 96;

void check(bool ok)
{
    if (!ok)
        std::abort();
}

struct Interrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { check(q < 3); }
    void signal_config_change() override { }
    void signal_needs_reset() override { }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    static std::vector<uint8_t> ram(RAM_SIZE);
    std::fill(ram.begin(), ram.end(), 0);
    size_t const seed = std::min<size_t>(size_t { data[7] } * 128, size - HEADER);
    std::memcpy(ram.data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;
    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(ram) } });
    if (!mem)
        return 0;

    VirtioBalloon balloon(*mem, get_le16(data));
    std::vector<Queue> queues;
    for (uint16_t i = 0; i < 3; ++i) {
        auto q = Queue::create(*mem, VirtioBalloon::QUEUE_SIZE);
        if (!q)
            return 0;
        queues.push_back(std::move(*q));
        Queue& qq = queues.back();
        (void)qq.set_size(static_cast<uint16_t>(1u << (data[2 + i] % 8)));
        uint64_t const base = RAM_BASE + (uint64_t { data[5] } << 8) % RAM_SIZE + i * 0x1000u;
        qq.set_desc_table(GuestAddr(base));
        qq.set_avail_ring(GuestAddr(base + 0x800));
        qq.set_used_ring(GuestAddr(base + 0xc00));
        qq.set_negotiated_features(data[6]);
        if (qq.validate())
            qq.set_ready(true);
    }
    Interrupt irq;
    ActivateContext ctx;
    ctx.features = (uint64_t { 1 } << VIRTIO_F_VERSION_1) | ((data[6] & 1) ? uint64_t { 1 } << VIRTIO_BALLOON_F_STATS_VQ : 0);
    ctx.queues = queues;
    ctx.interrupt = &irq;
    check(balloon.activate(ctx).has_value());

    for (size_t ops = 0; ops < MAX_OPS && pos + 4 <= size; ++ops, pos += 4) {
        uint8_t const op = data[pos], a = data[pos + 1], b = data[pos + 2], c = data[pos + 3];
        switch (op % 7) {
        case 0: {
            uint64_t const before = balloon.stats().inflated_pages + balloon.stats().deflated_pages + balloon.stats().bad_pfns;
            balloon.queue_notify(a % 4);
            uint64_t const after = balloon.stats().inflated_pages + balloon.stats().deflated_pages + balloon.stats().bad_pfns;
            // Bounded: a queue's worth of chains of at most MAX_PFNS_PER_BUFFER each.
            check(after - before <= uint64_t { VirtioBalloon::QUEUE_SIZE } * VirtioBalloon::MAX_PFNS_PER_BUFFER);
            break;
        }
        case 1:
            balloon.set_target(get_le16(data + pos + 1));
            break;
        case 2:
            (void)balloon.request_stats();
            break;
        case 3: {
            uint8_t buf[8];
            std::memset(buf, 0x77, sizeof buf);
            uint32_t const off = a % VIRTIO_BALLOON_CONFIG_SIZE;
            size_t const len = std::min<size_t>(1 + b % 4, VIRTIO_BALLOON_CONFIG_SIZE - off);
            balloon.read_config(off, std::span<uint8_t>(buf, len));
            break;
        }
        case 4: {
            uint8_t buf[4] = { a, b, c, op };
            uint32_t const off = a % VIRTIO_BALLOON_CONFIG_SIZE;
            size_t const len = std::min<size_t>(1 + b % 4, VIRTIO_BALLOON_CONFIG_SIZE - off);
            balloon.write_config(off, std::span<uint8_t const>(buf, len));
            break;
        }
        case 5:
            ram[(size_t { a } << 8 | b) % RAM_SIZE] = c;
            break;
        case 6:
            balloon.reset();
            check(balloon.activate(ctx).has_value());
            break;
        }
    }
    balloon.reset();
    return 0;
}
