// Fuzzes Qcow2Image with hostile image files and a hostile guest: a small valid qcow2 v3 image (512-byte clusters,
// a raw backing file, one data cluster, one compressed cluster, zero clusters, a preallocated zero cluster) is
// built in memory, the input XORs bytes anywhere into it (header, extensions, refcount table and block, L1, L2,
// compressed stream), the result is written to a file on tmpfs and opened read-write or read-only, and the rest of
// the input is a bounded sequence of reads, writes, write_zeroes, discards, flushes, checks (hako img check) and
// resizes.
//
// Checked beyond "no crash, no hang, no sanitizer report": a read-only open never changes a byte of the image;
// the backing file never changes; the image never grows beyond what the bounded operations could allocate.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <zlib.h>

#include "block/qcow2.h"

using namespace hako;
using namespace hako::block;

namespace {

constexpr uint64_t CLUSTER = 512;
constexpr uint64_t DISK_SIZE = 64 * 1024;
constexpr size_t IMAGE_CLUSTERS = 8;
constexpr size_t MAX_PATCHES = 64;
constexpr size_t MAX_OPS = 32;
constexpr uint64_t MAX_GROWTH = 8 * 1024 * 1024;

void check(bool ok)
{
    if (!ok)
        std::abort();
}

void put_be(std::vector<uint8_t>& b, size_t off, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; ++i)
        b[off + n - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<uint8_t> build_template()
{
    std::vector<uint8_t> img(IMAGE_CLUSTERS * CLUSTER, 0);
    auto c = [](size_t i) { return static_cast<uint64_t>(i) * CLUSTER; };
    uint64_t const copied = uint64_t { 1 } << 63;
    // Header (version 3, 104 bytes), backing format extension, backing file name.
    put_be(img, 0, 4, 0x514649fb);
    put_be(img, 4, 4, 3);
    std::string const name = "fuzz-base.raw";
    put_be(img, 8, 8, 256);
    put_be(img, 16, 4, name.size());
    std::memcpy(img.data() + 256, name.data(), name.size());
    put_be(img, 20, 4, 9);
    put_be(img, 24, 8, DISK_SIZE);
    put_be(img, 36, 4, 2);
    put_be(img, 40, 8, c(3));
    put_be(img, 48, 8, c(1));
    put_be(img, 56, 4, 1);
    put_be(img, 96, 4, 4);
    put_be(img, 100, 4, 104);
    put_be(img, 104, 4, 0xe2792aca);
    put_be(img, 108, 4, 3);
    std::memcpy(img.data() + 112, "raw", 3);
    // Refcount table -> block at cluster 2; every cluster used once.
    put_be(img, c(1), 8, c(2));
    for (size_t i = 0; i < IMAGE_CLUSTERS; ++i)
        put_be(img, c(2) + 2 * i, 2, 1);
    // L1 -> L2 at cluster 4.
    put_be(img, c(3), 8, c(4) | copied);
    // L2: data, compressed, zero, preallocated zero.
    put_be(img, c(4), 8, c(5) | copied);
    put_be(img, c(4) + 8, 8, (uint64_t { 1 } << 62) | c(6));
    put_be(img, c(4) + 16, 8, 1);
    put_be(img, c(4) + 24, 8, c(7) | copied | 1);
    for (size_t i = 0; i < CLUSTER; ++i)
        img[c(5) + i] = static_cast<uint8_t>(i * 7);
    // A raw deflate stream of one cluster (it compresses far below one sector).
    std::vector<uint8_t> plain(CLUSTER);
    for (size_t i = 0; i < CLUSTER; ++i)
        plain[i] = static_cast<uint8_t>(i / 64);
    z_stream zs {};
    check(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = plain.data();
    zs.avail_in = static_cast<uInt>(plain.size());
    zs.next_out = img.data() + c(6);
    zs.avail_out = static_cast<uInt>(CLUSTER);
    check(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    deflateEnd(&zs);
    return img;
}

struct Env {
    std::string dir;
    std::string image;
    std::string base;
    std::vector<uint8_t> base_bytes;
    std::vector<uint8_t> pristine;
};

std::vector<uint8_t> slurp(std::string const& path)
{
    std::vector<uint8_t> out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    check(fd >= 0);
    struct stat st {};
    check(::fstat(fd, &st) == 0);
    out.resize(static_cast<size_t>(st.st_size));
    check(::pread(fd, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    ::close(fd);
    return out;
}

void spill(std::string const& path, std::vector<uint8_t> const& data)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    check(fd >= 0);
    check(::pwrite(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()));
    ::close(fd);
}

Env& env()
{
    static Env e = [] {
        Env v;
        char const* shm = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        v.dir = std::string(shm) + "/hako-fuzz-qcow2-" + std::to_string(::getpid());
        ::mkdir(v.dir.c_str(), 0700);
        v.image = v.dir + "/image.qcow2";
        v.base = v.dir + "/fuzz-base.raw";
        v.base_bytes.resize(DISK_SIZE / 2); // smaller than the disk: reads past it are zeros
        for (size_t i = 0; i < v.base_bytes.size(); ++i)
            v.base_bytes[i] = static_cast<uint8_t>(i ^ (i >> 8));
        spill(v.base, v.base_bytes);
        v.pristine = build_template();
        std::atexit([] {
            ::unlink(env().image.c_str());
            ::unlink(env().base.c_str());
            ::rmdir(env().dir.c_str());
        });
        return v;
    }();
    return e;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    Env& e = env();
    size_t pos = 0;
    auto take = [&](size_t n) -> uint64_t {
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i)
            v = (v << 8) | (pos < size ? data[pos++] : 0);
        return v;
    };

    uint64_t const flags = take(1);
    bool const read_only = (flags & 1) != 0;
    size_t const patches = static_cast<size_t>(take(1)) % (MAX_PATCHES + 1);
    std::vector<uint8_t> image = e.pristine;
    for (size_t i = 0; i < patches; ++i) {
        size_t off = static_cast<size_t>(take(2)) % image.size();
        image[off] ^= static_cast<uint8_t>(take(1));
    }
    if (flags & 2)
        image.resize(static_cast<size_t>(take(2)) % image.size()); // truncated images
    spill(e.image, image);

    {
        auto opened = Qcow2Image::open(e.image, read_only ? ReadOnly::Yes : ReadOnly::No);
        if (opened) {
            auto& q = **opened;
            std::vector<uint8_t> buf;
            for (size_t op = 0; op < MAX_OPS && pos < size; ++op) {
                uint64_t const kind = take(1);
                uint64_t const off = take(2) * 2; // up to 128 KiB: past the 64 KiB disk too
                uint64_t const len = take(2) % (4 * CLUSTER * 8 + 1);
                buf.assign(static_cast<size_t>(len), static_cast<uint8_t>(kind));
                switch (kind % 8) {
                case 0: {
                    std::span<uint8_t> const one[] = { buf };
                    (void)q.read_vectored(off, one);
                    break;
                }
                case 1: {
                    std::span<uint8_t const> const one[] = { buf };
                    (void)q.write_vectored(off, one);
                    break;
                }
                case 2:
                    (void)q.write_zeroes(off, len, MayUnmap::Yes);
                    break;
                case 3:
                    (void)q.write_zeroes(off, len, MayUnmap::No);
                    break;
                case 4:
                    (void)q.discard(off, len);
                    break;
                case 6:
                    (void)q.check(); // hako img check on whatever the tables say
                    break;
                case 7:
                    (void)q.resize(q.size_bytes() + (len & ~uint64_t { 511 })); // grows (or is refused)
                    break;
                default:
                    (void)q.flush();
                    break;
                }
            }
            // Everything still reads (or fails cleanly) after the operations.
            buf.assign(static_cast<size_t>(q.size_bytes() < 65536 ? q.size_bytes() : 65536), 0);
            std::span<uint8_t> const all[] = { buf };
            (void)q.read_vectored(0, all);
            (void)q.check();
        }
    }

    auto after = slurp(e.image);
    if (read_only)
        check(after == image);
    check(after.size() <= image.size() + MAX_GROWTH);
    check(slurp(e.base) == e.base_bytes);
    return 0;
}
