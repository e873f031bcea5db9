// Fuzzes virtio-blk request handling as a hostile driver would drive it: guest RAM (64 KiB at 0x10000) is filled
// from the input, the queue configuration and the device options (read-only, discard, write-zeroes, segment
// limits) come from the input header, and the rest is a bounded sequence of operations: process the next request
// against a 1 MiB image (an unlinked temporary file, on /dev/shm when possible), guest writes into RAM between requests, and queue reset.
//
// Checked beyond "no crash, no hang, no sanitizer report": the image file never changes size (nothing is written
// past its end and it is never truncated); a read-only configuration never changes a byte of it; a request writes
// guest memory only inside the device-writable buffers of its own chain; the used length never exceeds the
// writable length of the chain.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "base/bytes.h"
#include "block/disk_image.h"
#include "devices/virtio/blk/blk_config.h"
#include "devices/virtio/blk/request.h"
#include "devices/virtio/queue.h"

using namespace hako;
using namespace hako::devices::virtio;
using namespace hako::devices::virtio::blk;
using memory::GuestAddr;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr uint64_t IMAGE_SIZE = 1024 * 1024;
constexpr size_t HEADER = 14;
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

/// The image, opened once per process. `probe` is a second, lock-free descriptor for checking its size and content.
struct Image {
    std::unique_ptr<block::DiskImage> disk;
    int probe { -1 };
};

Image& image()
{
    static Image img = [] {
        // tmpfs if there is one: FLUSH (fdatasync) is then cheap, and write-zeroes takes its fallback path.
        char const* t = std::getenv("TMPDIR");
        std::string dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : t && *t ? t : "/tmp";
        std::string tmpl = dir + "/hako-fuzz-blk-XXXXXX";
        std::vector<char> name(tmpl.begin(), tmpl.end());
        name.push_back('\0');
        int fd = ::mkstemp(name.data());
        check(fd >= 0);
        check(::ftruncate(fd, static_cast<off_t>(IMAGE_SIZE)) == 0);
        auto disk = block::DiskImage::open(name.data(), block::ReadOnly::No);
        check(disk.has_value());
        ::unlink(name.data()); // nothing is left behind; both descriptors keep the file alive
        return Image { std::move(*disk), fd };
    }();
    return img;
}

uint64_t image_file_size()
{
    struct stat st {};
    check(::fstat(image().probe, &st) == 0);
    return static_cast<uint64_t>(st.st_size);
}

/// The image content, for the read-only check.
std::vector<uint8_t> const& image_content()
{
    static std::vector<uint8_t> buf(IMAGE_SIZE);
    check(::pread(image().probe, buf.data(), buf.size(), 0) == static_cast<ssize_t>(buf.size()));
    return buf;
}

// Driver mode (header byte 0 bit 7): a fixed, valid queue layout, and operations that build near-valid requests,
// so the fuzzer reaches every request type without first having to discover the ring format.
constexpr uint64_t DRV_DESC = 0x0000;
constexpr uint64_t DRV_AVAIL = 0x1000;
constexpr uint64_t DRV_USED = 0x2000;
constexpr uint64_t DRV_HDR = 0x3000;
constexpr uint64_t DRV_STATUS = 0x3800;
constexpr uint64_t DRV_DATA = 0x4000;
constexpr uint16_t DRV_QSIZE = 16;
uint16_t g_drv_avail_idx = 0;

void put_desc(uint16_t i, uint64_t off, uint32_t len, uint16_t flags)
{
    uint8_t* p = ram().data() + DRV_DESC + 16u * i;
    put_le64(p, RAM_BASE + off);
    put_le32(p + 8, len);
    put_le16(p + 12, flags);
    put_le16(p + 14, static_cast<uint16_t>(i + 1));
}

/// Builds one request chain from 4 input bytes and makes it available.
void build_request(uint8_t op, uint8_t a, uint8_t b, uint8_t c)
{
    static constexpr uint32_t TYPES[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
        VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT };
    uint32_t const type = (op & 0x04) ? a : TYPES[a & 7];
    uint64_t const sector = (op & 0x08) ? UINT64_MAX - b : uint64_t { b } * 9 + (c & 7);
    uint8_t* hdr = ram().data() + DRV_HDR;
    put_le32(hdr, type);
    put_le32(hdr + 4, 0);
    put_le64(hdr + 8, sector);
    bool const dwz = type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES;
    uint32_t len = dwz ? ((c >> 3) & 3) * 16 + 16 : ((c >> 3) & 31) * 512 + ((op & 0x10) ? 100 : 0);
    if (type == VIRTIO_BLK_T_GET_ID)
        len = 20;
    if (dwz) {
        for (uint32_t i = 0; i < len / 16; ++i) {
            uint8_t* seg = ram().data() + DRV_DATA + 16 * i;
            put_le64(seg, uint64_t { b } * 8 + i * 64);
            put_le32(seg + 8, (c & 7) * 8 + 1);
            put_le32(seg + 12, (op >> 4) & 3);
        }
    }
    bool const writable_data = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID || (op & 0x20);
    uint16_t const data_flags = writable_data ? VIRTQ_DESC_F_WRITE : 0;
    uint16_t n = 0;
    put_desc(n++, DRV_HDR, (op & 0x40) ? 12 : 16, VIRTQ_DESC_F_NEXT);
    if (len > 0 && type != VIRTIO_BLK_T_FLUSH) {
        uint32_t first = (op & 0x80) ? len / 2 : len; // split the data over two buffers
        put_desc(n++, DRV_DATA, first, VIRTQ_DESC_F_NEXT | data_flags);
        if (len > first)
            put_desc(n++, DRV_DATA + first, len - first, VIRTQ_DESC_F_NEXT | data_flags);
    }
    if (!(op & 0x40 && op & 0x80)) // both bits: no status byte
        put_desc(n++, DRV_STATUS, 1, VIRTQ_DESC_F_WRITE);
    // Clear NEXT on the last descriptor.
    uint8_t* last = ram().data() + DRV_DESC + 16u * (n - 1);
    put_le16(last + 12, static_cast<uint16_t>(get_le16(last + 12) & ~VIRTQ_DESC_F_NEXT));
    put_le16(ram().data() + DRV_AVAIL + virtq_avail_entry_offset(g_drv_avail_idx % DRV_QSIZE), 0);
    ++g_drv_avail_idx;
    put_le16(ram().data() + DRV_AVAIL + VIRTQ_AVAIL_IDX_OFFSET, g_drv_avail_idx);
}

void configure(Queue& q, uint8_t const* h)
{
    if (h[0] & 0x80) {
        check(q.set_size(DRV_QSIZE).has_value());
        q.set_desc_table(GuestAddr(RAM_BASE + DRV_DESC));
        q.set_avail_ring(GuestAddr(RAM_BASE + DRV_AVAIL));
        q.set_used_ring(GuestAddr(RAM_BASE + DRV_USED));
        q.set_negotiated_features(0);
        q.set_next_avail(g_drv_avail_idx);
        check(q.validate().has_value());
        q.set_ready(true);
        return;
    }
    (void)q.set_size(static_cast<uint16_t>(1u << (h[0] & 7))); // 1 to 128 entries
    auto addr = [&](size_t i) {
        uint64_t off = static_cast<uint64_t>(h[i]) | static_cast<uint64_t>(h[i + 1]) << 8;
        return GuestAddr(RAM_BASE + off);
    };
    q.set_desc_table(addr(2));
    q.set_avail_ring(addr(4));
    q.set_used_ring(addr(6));
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

BlkConfig make_config(uint8_t const* h)
{
    BlkOptions options;
    options.read_only = h[12] & 1;
    options.discard = h[12] & 2;
    options.write_zeroes = h[12] & 4;
    options.serial = "fuzz-serial";
    auto c = BlkConfig::for_disk(*image().disk, options);
    if (h[12] & 8) {
        // Limits straight from the input, as a careless caller might set them.
        c.max_discard_seg = h[13];
        c.max_write_zeroes_seg = h[13] >> 4;
        c.max_discard_sectors = static_cast<uint32_t>(h[13]) << 4;
        c.max_write_zeroes_sectors = static_cast<uint32_t>(h[13]) << 8;
        c.write_zeroes_may_unmap = h[13] & 1;
    }
    if (h[12] & 16)
        c.capacity = IMAGE_SIZE / 512 + h[13]; // a config bigger than the image: the image still checks
    return c;
}

/// Runs one request and checks that guest memory changed only inside the chain's writable buffers.
void process_one(Queue& q, BlkConfig const& config, BlkStats& stats)
{
    auto r = q.pop();
    if (r.status() == PopResult::Status::Bad) {
        q.add_used(r.head(), 0);
        return;
    }
    if (!r.is_ok())
        return;
    DescriptorChain const& chain = r.chain();
    static std::vector<uint8_t> before;
    before = ram();
    uint32_t used = process_request(chain, *image().disk, config, stats);
    check(used <= chain.writable_len());
    check(chain.writable_len() == 0 ? used == 0 : used >= 1);
    if (std::memcmp(before.data(), ram().data(), RAM_SIZE) == 0)
        return q.add_used(chain.head(), used);
    static std::vector<uint8_t> writable(RAM_SIZE);
    std::fill(writable.begin(), writable.end(), uint8_t { 0 });
    for (auto const& seg : chain.segments()) {
        if (!seg.is_write)
            continue;
        uint64_t off = seg.addr.value() - RAM_BASE;
        for (size_t i = 0; i < seg.span.size(); ++i)
            writable[off + i] = 1;
    }
    for (size_t i = 0; i < RAM_SIZE; ++i)
        check(writable[i] != 0 || before[i] == ram()[i]);
    q.add_used(chain.head(), used);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    uint8_t const* header = data;
    size_t seed = std::min<size_t>(static_cast<size_t>(data[11]) * 64, size - HEADER);
    std::fill(ram().begin(), ram().end(), 0);
    std::memcpy(ram().data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;

    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(ram()) } });
    if (!mem)
        return 0;
    auto queue = Queue::create(*mem, 128);
    if (!queue)
        return 0;
    Queue& q = *queue;
    g_drv_avail_idx = 0;
    configure(q, header);
    BlkConfig const config = make_config(header);
    bool const read_only = config.read_only;
    static std::vector<uint8_t> content_before;
    if (read_only)
        content_before = image_content();
    BlkStats stats;

    for (size_t ops = 0; ops < MAX_OPS && pos + 4 <= size; ++ops, pos += 4) {
        uint8_t op = data[pos];
        uint8_t a = data[pos + 1];
        uint8_t b = data[pos + 2];
        uint8_t c = data[pos + 3];
        switch (op & 3) {
        case 0:
            process_one(q, config, stats);
            break;
        case 1:
            // In driver mode: build a request and run it; otherwise just run whatever is in the ring.
            if (header[0] & 0x80)
                build_request(op, a, b, c);
            process_one(q, config, stats);
            break;
        case 2: {
            // The guest writes 2 bytes anywhere in RAM between requests.
            size_t off = (static_cast<size_t>(a) | static_cast<size_t>(b) << 8) % (RAM_SIZE - 1);
            ram()[off] = c;
            ram()[off + 1] = op;
            break;
        }
        case 3:
            q.reset();
            configure(q, header);
            break;
        }
    }

    check(image_file_size() == IMAGE_SIZE);
    if (read_only)
        check(image_content() == content_before);
    if (std::getenv("HAKO_FUZZ_BLK_STATS"))
        std::fprintf(stderr, "blk: ok %llu ioerr %llu unsupp %llu none %llu reads %llu writes %llu discards %llu wz %llu ids %llu\n",
            static_cast<unsigned long long>(stats.status_ok), static_cast<unsigned long long>(stats.status_ioerr),
            static_cast<unsigned long long>(stats.status_unsupp), static_cast<unsigned long long>(stats.unanswerable),
            static_cast<unsigned long long>(stats.reads), static_cast<unsigned long long>(stats.writes),
            static_cast<unsigned long long>(stats.discards), static_cast<unsigned long long>(stats.write_zeroes),
            static_cast<unsigned long long>(stats.get_ids));
    // Every OK is counted under exactly one type.
    check(stats.status_ok
        == stats.reads + stats.writes + stats.flushes + stats.get_ids + stats.discards + stats.write_zeroes);
    return 0;
}
