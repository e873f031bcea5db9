// Fuzzes the split virtqueue as a device would drive it against a hostile driver. Guest RAM (64 KiB at 0x10000)
// is filled from the input, the queue configuration (size, ring addresses, features, start indices) comes from
// the input header, and the rest is a bounded sequence of operations: pop, pop_chain, add_used, notification
// calls, guest writes into RAM between them, and reset.
//
// Checked beyond "no crash, no hang, no sanitizer report": every segment of every chain pop() returns lies inside
// guest RAM at the host address matching its guest address, readable segments precede writable ones, and the
// lengths add up.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "devices/virtio/queue.h"

using namespace hako;
using namespace hako::devices::virtio;
using memory::GuestAddr;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr size_t HEADER = 12;
constexpr size_t MAX_OPS = 512;

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

void check(bool ok)
{
    if (!ok)
        std::abort();
}

void check_chain(DescriptorChain const& chain)
{
    uint8_t const* lo = ram().data();
    uint8_t const* hi = ram().data() + ram().size();
    bool seen_write = false;
    uint64_t readable = 0;
    uint64_t writable = 0;
    for (auto const& seg : chain.segments()) {
        auto bytes = seg.span.bytes();
        // Inside guest RAM, by guest address and by host pointer, and the two agree.
        check(seg.addr.value() >= RAM_BASE);
        uint64_t off = seg.addr.value() - RAM_BASE;
        check(off <= RAM_SIZE && bytes.size() <= RAM_SIZE - off);
        check(std::less_equal<uint8_t const*>()(lo, bytes.data()));
        check(std::less_equal<uint8_t const*>()(bytes.data() + bytes.size(), hi));
        check(bytes.data() == lo + off);
        check(!(seen_write && !seg.is_write));
        seen_write = seen_write || seg.is_write;
        (seg.is_write ? writable : readable) += bytes.size();
    }
    check(readable == chain.readable_len());
    check(writable == chain.writable_len());
    check(readable + writable <= UINT32_MAX);
}

void use_chain(Queue& q, DescriptorChain const& chain, uint8_t salt)
{
    check_chain(chain);
    uint8_t buf[300];
    size_t offset = salt;
    size_t n = chain.read_from_chain(buf, offset);
    check(n <= sizeof(buf) && n <= (chain.readable_len() > offset ? chain.readable_len() - offset : 0));
    std::memset(buf, salt, sizeof(buf));
    size_t w = chain.write_to_chain(buf, offset / 2);
    check(w <= sizeof(buf) && w <= chain.writable_len());
    q.add_used(chain.head(), static_cast<uint32_t>(w));
}

void configure(Queue& q, uint8_t const* h)
{
    // Sizes 1 to 32768 (the larger ones do not fit in RAM: validate() fails, and the queue is used anyway if
    // the header says so, as by a transport with a bug).
    (void)q.set_size(static_cast<uint16_t>(1u << (h[0] & 15)));
    if (h[0] & 0x10)
        (void)q.set_size(h[1]); // any value, usually rejected
    auto addr = [&](size_t i, bool far) {
        uint64_t off = static_cast<uint64_t>(h[i]) | static_cast<uint64_t>(h[i + 1]) << 8;
        return GuestAddr(far ? 0xffff'ffff'ffff'0000ull + off : RAM_BASE + off);
    };
    q.set_desc_table(addr(2, h[0] & 0x20));
    q.set_avail_ring(addr(4, h[0] & 0x40));
    q.set_used_ring(addr(6, h[0] & 0x80));
    uint64_t features = 0;
    if (h[8] & 1)
        features |= uint64_t { 1 } << VIRTIO_F_INDIRECT_DESC;
    if (h[8] & 2)
        features |= uint64_t { 1 } << VIRTIO_F_EVENT_IDX;
    q.set_negotiated_features(features);
    q.set_next_avail(static_cast<uint16_t>(h[9] << 8 | h[10]));
    q.set_next_used(static_cast<uint16_t>(h[10] << 8 | h[9]));
    bool valid = q.validate().has_value();
    q.set_ready(valid || (h[8] & 4));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    uint8_t const* header = data;
    // Byte 11 says how much of the input seeds RAM (in 64-byte units); the rest is operations.
    size_t seed = std::min<size_t>(static_cast<size_t>(data[11]) * 64, size - HEADER);
    std::fill(ram().begin(), ram().end(), 0);
    std::memcpy(ram().data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;

    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(ram()) } });
    if (!mem)
        return 0;
    auto queue = Queue::create(*mem, VIRTQ_MAX_SIZE);
    if (!queue)
        return 0;
    Queue& q = *queue;
    configure(q, header);

    // Each operation: an op byte and 3 argument bytes.
    for (size_t ops = 0; ops < MAX_OPS && pos + 4 <= size; ++ops, pos += 4) {
        uint8_t op = data[pos];
        uint8_t a = data[pos + 1];
        uint8_t b = data[pos + 2];
        uint8_t c = data[pos + 3];
        switch (op & 7) {
        case 0:
        case 1: {
            auto r = q.pop();
            if (r.status() == PopResult::Status::Ok)
                use_chain(q, r.chain(), a);
            else if (r.status() == PopResult::Status::Bad && (op & 8))
                q.add_used(r.head(), 0);
            else if (r.status() == PopResult::Status::Broken)
                check(q.error().has_value());
            break;
        }
        case 2:
            if (auto chain = q.pop_chain())
                use_chain(q, *chain, a);
            break;
        case 3:
            q.add_used(static_cast<uint16_t>(a | b << 8), c);
            (void)q.should_notify();
            break;
        case 4:
            if (op & 8)
                (void)q.enable_notification();
            else
                q.disable_notification();
            break;
        case 5:
        case 6: {
            // The guest writes 2 bytes anywhere in RAM (descriptors, ring indices) between device operations.
            size_t off = (static_cast<size_t>(a) | static_cast<size_t>(b) << 8) % (RAM_SIZE - 1);
            ram()[off] = c;
            ram()[off + 1] = op;
            break;
        }
        case 7:
            if (op & 8) {
                q.reset();
                configure(q, header);
            } else {
                (void)q.should_notify();
            }
            break;
        }
    }
    return 0;
}
