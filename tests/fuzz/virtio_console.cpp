// Fuzzes virtio-console as a hostile driver drives it (virtio_harness.h), with host input arriving between guest
// operations: notify either queue (transmit chains of any shape), host bytes offered to the receive queue, config
// reads and writes (emergency write), RAM writes, and device reset.
//
// Checked beyond "no crash, no hang, no sanitizer report": output per notify is bounded (a queue's worth of chains of
// at most MAX_TX_CHAIN_BYTES), receive() never claims more bytes than it was offered.
#include "devices/virtio/console/virtio_console.h"
#include "virtio_harness.h"

using namespace hako;
using namespace hako::devices::virtio;
using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::VirtioHarness h;
    auto pos = h.init_memory(data, size);
    if (!pos)
        return 0;
    uint64_t out_bytes = 0;
    VirtioConsole console([&out_bytes](std::span<uint8_t const> b) { out_bytes += b.size(); });
    uint64_t const features = uint64_t { 1 } << VIRTIO_F_VERSION_1;
    h.activate(console, features);
    for (size_t i = *pos, ops = 0; ops < 96 && i + 4 <= size; ++ops, i += 4) {
        uint8_t const op = data[i], a = data[i + 1], b = data[i + 2], c = data[i + 3];
        switch (op % 6) {
        case 0: {
            uint64_t const before = out_bytes;
            console.queue_notify(a % 3);
            check(out_bytes - before <= uint64_t { VirtioConsole::QUEUE_SIZE } * VirtioConsole::MAX_TX_CHAIN_BYTES);
            break;
        }
        case 1: {
            size_t const n = std::min<size_t>(size - i, size_t { b } * 4);
            check(console.receive(std::span<uint8_t const>(data + i, n)) <= n);
            break;
        }
        case 2: {
            uint8_t buf[4];
            uint32_t const off = a % VIRTIO_CONSOLE_CONFIG_SIZE;
            console.read_config(off, std::span<uint8_t>(buf, std::min<size_t>(1 + b % 4, VIRTIO_CONSOLE_CONFIG_SIZE - off)));
            break;
        }
        case 3: {
            uint8_t buf[4] = { a, b, c, op };
            uint32_t const off = a % VIRTIO_CONSOLE_CONFIG_SIZE;
            console.write_config(off, std::span<uint8_t const>(buf, std::min<size_t>(1 + b % 4, VIRTIO_CONSOLE_CONFIG_SIZE - off)));
            break;
        }
        case 4:
            h.poke(a, b, c);
            break;
        case 5:
            console.reset();
            h.activate(console, features);
            break;
        }
    }
    console.reset();
    return 0;
}
