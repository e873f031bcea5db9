// Fuzzes virtio-balloon as a hostile driver drives it (virtio_harness.h: RAM, queues at input-chosen places), then
// a bounded sequence of operations: notify any queue (inflate PFN arrays, deflate, stats buffers), host target
// changes and stats requests, config reads and writes at any offset and size, RAM writes, and device reset.
//
// Checked beyond "no crash, no hang, no sanitizer report": the work per notify is bounded (a queue's worth of chains
// of at most MAX_PFNS_PER_BUFFER PFNs); discards only touch whole pages inside guest RAM (from_buffers memory
// zero-fills, and ASan would see anything outside the buffer).
#include "devices/virtio/balloon/virtio_balloon.h"
#include "base/bytes.h"
#include "virtio_harness.h"

using namespace hako;
using namespace hako::devices::virtio;
using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::VirtioHarness h;
    auto pos = h.init_memory(data, size);
    if (!pos || *pos + 3 > size)
        return 0;
    VirtioBalloon balloon(h.mem(), get_le16(data + *pos));
    uint64_t const features = (uint64_t { 1 } << VIRTIO_F_VERSION_1)
        | ((data[*pos + 2] & 1) ? uint64_t { 1 } << VIRTIO_BALLOON_F_STATS_VQ : 0);
    h.activate(balloon, features);
    size_t i = *pos + 3;
    for (size_t ops = 0; ops < 96 && i + 4 <= size; ++ops, i += 4) {
        uint8_t const op = data[i], a = data[i + 1], b = data[i + 2], c = data[i + 3];
        switch (op % 7) {
        case 0: {
            auto const s0 = balloon.stats();
            balloon.queue_notify(a % 4);
            auto const s1 = balloon.stats();
            uint64_t const work = (s1.inflated_pages + s1.deflated_pages + s1.bad_pfns + s1.discard_failures)
                - (s0.inflated_pages + s0.deflated_pages + s0.bad_pfns + s0.discard_failures);
            check(work <= uint64_t { VirtioBalloon::QUEUE_SIZE } * VirtioBalloon::MAX_PFNS_PER_BUFFER);
            break;
        }
        case 1:
            balloon.set_target(get_le16(data + i + 1));
            break;
        case 2:
            (void)balloon.request_stats();
            break;
        case 3: {
            uint8_t buf[4];
            uint32_t const off = a % VIRTIO_BALLOON_CONFIG_SIZE;
            balloon.read_config(off, std::span<uint8_t>(buf, std::min<size_t>(1 + b % 4, VIRTIO_BALLOON_CONFIG_SIZE - off)));
            break;
        }
        case 4: {
            uint8_t buf[4] = { a, b, c, op };
            uint32_t const off = a % VIRTIO_BALLOON_CONFIG_SIZE;
            balloon.write_config(off, std::span<uint8_t const>(buf, std::min<size_t>(1 + b % 4, VIRTIO_BALLOON_CONFIG_SIZE - off)));
            break;
        }
        case 5:
            h.poke(a, b, c);
            break;
        case 6:
            balloon.reset();
            h.activate(balloon, features);
            break;
        }
    }
    balloon.reset();
    return 0;
}
