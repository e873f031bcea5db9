// Qcow2Image against QEMU as the oracle: images made and written by qemu-img/qemu-io are read back and compared
// with `qemu-img convert -O raw`; images written by Qcow2Image must pass `qemu-img check` and `qemu-img compare`
// against a raw file that received the same writes. Corrupt images must fail cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "block/disk_image.h"
#include "block/image_format.h"
#include "base/checked.h"
#include "block/qcow2.h"
#include "qcow2_tools.h"

using namespace hako;
using namespace hako::block;
using namespace hako::test;

namespace {

#define REQUIRE_QEMU()                                    \
    do {                                                  \
        if (!have_qemu_tools())                           \
            GTEST_SKIP() << "qemu-img/qemu-io not found"; \
    } while (0)

std::unique_ptr<Qcow2Image> open_qcow2(std::string const& path, ReadOnly ro = ReadOnly::Yes)
{
    auto img = Qcow2Image::open(path, ro);
    EXPECT_TRUE(img) << (img ? "" : img.error().message());
    return img ? std::move(*img) : nullptr;
}

std::vector<uint8_t> read_all(BlockDevice& dev)
{
    std::vector<uint8_t> out(static_cast<size_t>(dev.size_bytes()));
    std::span<uint8_t> const one[] = { out };
    auto r = dev.read_vectored(0, one);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return out;
}

/// The guest-visible contents of an image according to QEMU.
std::vector<uint8_t> qemu_contents(TempDir const& dir, std::string const& img)
{
    std::string raw = dir.file("oracle.raw");
    EXPECT_EQ(run("qemu-img convert -U -O raw '" + img + "' '" + raw + "'"), 0);
    return read_file(raw);
}

void qemu_io(std::string const& img, std::string const& cmd, std::string const& fmt = "qcow2")
{
    ASSERT_EQ(run("qemu-io -f " + fmt + " -c '" + cmd + "' '" + img + "'"), 0) << cmd;
}

Result<void> write_bytes(BlockDevice& dev, uint64_t off, std::vector<uint8_t> const& data)
{
    std::span<uint8_t const> const one[] = { data };
    return dev.write_vectored(off, one);
}

} // namespace

TEST(Qcow2Test, ReadsWhatQemuWroteForEveryClusterSize)
{
    REQUIRE_QEMU();
    for (unsigned cs : { 512u, 4096u, 65536u, 2u * 1024 * 1024 }) {
        SCOPED_TRACE(cs);
        TempDir dir;
        std::string img = dir.file("a.qcow2");
        ASSERT_EQ(run(fmt::format("qemu-img create -f qcow2 -o cluster_size={} '{}' 5M", cs, img)), 0);
        qemu_io(img, "write -P 0xab 0 64k");
        qemu_io(img, "write -P 0x11 100000 3000");
        qemu_io(img, "write -P 0x22 4194304 1048576");
        qemu_io(img, "write -P 0x33 5242368 512"); // the last sector
        auto const all = qemu_contents(dir, img); // before opening: QEMU respects our lock
        auto q = open_qcow2(img);
        ASSERT_TRUE(q);
        EXPECT_EQ(q->size_bytes(), 5u * 1024 * 1024);
        EXPECT_EQ(q->cluster_size(), cs);
        EXPECT_EQ(q->version(), 3u);
        EXPECT_EQ(read_all(*q), all);

        // Vectored reads across cluster boundaries land in the right buffers.
        std::vector<uint8_t> a(700), b(1), c(70000);
        std::span<uint8_t> const bufs[] = { a, b, c };
        ASSERT_TRUE(q->read_vectored(99000, bufs));
        EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin() + 99000));
        EXPECT_EQ(b[0], all[99700]);
        EXPECT_TRUE(std::equal(c.begin(), c.end(), all.begin() + 99701));
    }
}

TEST(Qcow2Test, ReadsVersion2AndZeroAndCompressedClusters)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string v2 = dir.file("v2.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 -o compat=0.10 '" + v2 + "' 2M"), 0);
    qemu_io(v2, "write -P 0x5c 65536 65536");
    auto const expect2 = qemu_contents(dir, v2);
    auto q2 = open_qcow2(v2);
    ASSERT_TRUE(q2);
    EXPECT_EQ(q2->version(), 2u);
    EXPECT_EQ(read_all(*q2), expect2);

    // Zero clusters: written data then zeroed (v3 zero flag, with and without unmap).
    std::string z = dir.file("z.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + z + "' 1M"), 0);
    qemu_io(z, "write -P 0x77 0 1M");
    qemu_io(z, "write -z 0 64k");
    qemu_io(z, "write -z -u 131072 65536");
    auto const expect_z = qemu_contents(dir, z);
    auto qz = open_qcow2(z);
    ASSERT_TRUE(qz);
    auto contents = read_all(*qz);
    EXPECT_EQ(contents, expect_z);
    EXPECT_EQ(contents[0], 0);
    EXPECT_EQ(contents[140000], 0);
    EXPECT_EQ(contents[70000], 0x77);

    // Compressed clusters: qemu-img convert -c, with a cluster size small enough for several per host cluster.
    for (unsigned cs : { 4096u, 65536u }) {
        std::string src = dir.file("src.qcow2"), dst = dir.file("c.qcow2");
        ASSERT_EQ(run(fmt::format("qemu-img create -f qcow2 -o cluster_size={} '{}' 1M", cs, src)), 0);
        qemu_io(src, "write -P 0x41 0 300k");
        qemu_io(src, "write -P 0x42 400000 5000");
        ASSERT_EQ(run(fmt::format("qemu-img convert -c -O qcow2 -o cluster_size={} '{}' '{}'", cs, src, dst)), 0);
        auto qc = open_qcow2(dst);
        ASSERT_TRUE(qc);
        EXPECT_EQ(read_all(*qc), qemu_contents(dir, src));
        (void)run("rm -f '" + dst + "'");
    }
}

TEST(Qcow2Test, BackingFilesRawAndQcow2)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string base = dir.file("base.raw"), mid = dir.file("mid.qcow2"), top = dir.file("top.qcow2");
    ASSERT_EQ(run("qemu-img create -f raw '" + base + "' 1M"), 0);
    qemu_io(base, "write -P 0x10 0 1M", "raw");
    // mid is larger than base: reads past base's end are zeros.
    ASSERT_EQ(run("cd '" + dir.path() + "' && qemu-img create -f qcow2 -b base.raw -F raw mid.qcow2 2M"), 0);
    qemu_io(mid, "write -P 0x20 65536 4096");
    ASSERT_EQ(run("cd '" + dir.path() + "' && qemu-img create -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 2M"), 0);
    qemu_io(top, "write -P 0x30 1000 100");
    auto const expect = qemu_contents(dir, top);
    auto q = open_qcow2(top);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->backing_path(), dir.file("mid.qcow2"));
    ASSERT_NE(q->backing(), nullptr);
    EXPECT_EQ(read_all(*q), expect);
}

TEST(Qcow2Test, WritesPassQemuImgCheckAndCompare)
{
    REQUIRE_QEMU();
    struct Variant {
        unsigned cluster_size;
        unsigned refcount_bits;
        char const* compat;
    };
    for (auto v : { Variant { 65536, 16, "1.1" }, Variant { 512, 16, "1.1" }, Variant { 4096, 1, "1.1" },
             Variant { 4096, 64, "1.1" }, Variant { 4096, 16, "0.10" } }) {
        SCOPED_TRACE(fmt::format("cluster {} refcount {} compat {}", v.cluster_size, v.refcount_bits, v.compat));
        TempDir dir;
        std::string img = dir.file("w.qcow2"), mirror = dir.file("mirror.raw");
        constexpr uint64_t SIZE = 3 * 1024 * 1024;
        ASSERT_EQ(run(fmt::format("qemu-img create -f qcow2 -o cluster_size={},refcount_bits={},compat={} '{}' {}",
                      v.cluster_size, v.refcount_bits, v.compat, img, SIZE)),
            0);
        std::vector<uint8_t> model(SIZE, 0);
        {
            auto q = open_qcow2(img, ReadOnly::No);
            ASSERT_TRUE(q);
            std::mt19937_64 rng(v.cluster_size * 31 + v.refcount_bits);
            for (int i = 0; i < 60; ++i) {
                uint64_t len = 1 + rng() % 70000;
                uint64_t off = rng() % (SIZE - len);
                int op = static_cast<int>(rng() % 8);
                if (op == 6) {
                    auto r = q->write_zeroes(off, len, (rng() & 1) ? MayUnmap::Yes : MayUnmap::No);
                    ASSERT_TRUE(r) << r.error().message();
                    std::fill_n(model.begin() + static_cast<ptrdiff_t>(off), len, uint8_t { 0 });
                } else if (op == 7) {
                    ASSERT_TRUE(q->discard(off, len));
                    // Discarded whole clusters read as zeros (no backing file); partial ones keep their data.
                    uint64_t cs = v.cluster_size;
                    uint64_t a = align_up(off, cs), b = align_down(off + len, cs);
                    if (a < b)
                        std::fill(model.begin() + static_cast<ptrdiff_t>(a), model.begin() + static_cast<ptrdiff_t>(b), uint8_t { 0 });
                } else {
                    std::vector<uint8_t> data(len);
                    for (auto& byte : data)
                        byte = static_cast<uint8_t>(rng());
                    ASSERT_TRUE(write_bytes(*q, off, data));
                    std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(off));
                }
            }
            // The whole disk once more, in one request spanning many clusters.
            std::vector<uint8_t> whole(SIZE / 2);
            for (size_t i = 0; i < whole.size(); ++i)
                whole[i] = static_cast<uint8_t>(i * 3);
            ASSERT_TRUE(write_bytes(*q, SIZE / 4, whole));
            std::copy(whole.begin(), whole.end(), model.begin() + SIZE / 4);
            ASSERT_TRUE(q->flush());
            EXPECT_EQ(read_all(*q), model);
        }
        write_file(mirror, model);
        EXPECT_EQ(run("qemu-img check -f qcow2 '" + img + "'"), 0) << "qemu-img check failed";
        EXPECT_EQ(run("qemu-img compare -f raw -F qcow2 '" + mirror + "' '" + img + "'"), 0);
        // And reopening reads the same.
        auto again = open_qcow2(img);
        ASSERT_TRUE(again);
        EXPECT_EQ(read_all(*again), model);
    }
}

TEST(Qcow2Test, RefcountTableGrowsForManyClusters)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string img = dir.file("g.qcow2");
    // 512-byte clusters with 16-bit refcounts: one refcount block covers 128 KiB and the first refcount table
    // cluster 8 MiB, so filling 12 MiB forces new refcount blocks and a larger refcount table.
    constexpr uint64_t SIZE = 12 * 1024 * 1024;
    ASSERT_EQ(run(fmt::format("qemu-img create -f qcow2 -o cluster_size=512 '{}' {}", img, SIZE)), 0);
    std::vector<uint8_t> model(SIZE);
    for (size_t i = 0; i < model.size(); ++i)
        model[i] = static_cast<uint8_t>((i >> 9) * 7 + i);
    {
        auto q = open_qcow2(img, ReadOnly::No);
        ASSERT_TRUE(q);
        constexpr size_t CHUNK = 2 * 1024 * 1024;
        for (size_t off = 0; off < SIZE; off += CHUNK)
            ASSERT_TRUE(write_bytes(*q, off, std::vector<uint8_t>(model.begin() + static_cast<ptrdiff_t>(off),
                                                  model.begin() + static_cast<ptrdiff_t>(off + CHUNK))));
        EXPECT_EQ(read_all(*q), model);
    }
    auto bytes = read_file(img);
    EXPECT_GT(get_be(bytes, 56, 4), 1u) << "the refcount table did not grow";
    write_file(dir.file("m.raw"), model);
    EXPECT_EQ(run("qemu-img check '" + img + "'"), 0);
    EXPECT_EQ(run("qemu-img compare -f raw -F qcow2 '" + dir.file("m.raw") + "' '" + img + "'"), 0);
}

TEST(Qcow2Test, CopyOnWriteFromBackingAndCompressedClusters)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string base = dir.file("base.qcow2"), top = dir.file("top.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 -o cluster_size=4096 '" + dir.file("src.qcow2") + "' 1M"), 0);
    qemu_io(dir.file("src.qcow2"), "write -P 0x61 0 1M");
    ASSERT_EQ(run("qemu-img convert -c -O qcow2 -o cluster_size=4096 '" + dir.file("src.qcow2") + "' '" + base + "'"), 0);
    ASSERT_EQ(run("cd '" + dir.path() + "' && qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 1M"), 0);
    auto model = qemu_contents(dir, top);
    {
        // A partial write in top copies the rest of the cluster from the (compressed) backing file.
        auto q = open_qcow2(top, ReadOnly::No);
        ASSERT_TRUE(q);
        ASSERT_TRUE(write_bytes(*q, 5000, std::vector<uint8_t>(100, 0xee)));
        std::fill_n(model.begin() + 5000, 100, 0xee);
        // write_zeroes over a whole cluster hides the backing file.
        ASSERT_TRUE(q->write_zeroes(8192, 4096, MayUnmap::Yes));
        std::fill_n(model.begin() + 8192, 4096, 0);
        EXPECT_EQ(read_all(*q), model);
    }
    EXPECT_EQ(run("qemu-img check '" + top + "'"), 0);
    EXPECT_EQ(qemu_contents(dir, top), model);
    {
        // Partial writes into compressed clusters of the base itself: decompress, merge, release the old data.
        auto b = qemu_contents(dir, base);
        auto q = open_qcow2(base, ReadOnly::No);
        ASSERT_TRUE(q);
        ASSERT_TRUE(write_bytes(*q, 4096 * 3 + 10, std::vector<uint8_t>(20, 0x99)));
        std::fill_n(b.begin() + 4096 * 3 + 10, 20, 0x99);
        ASSERT_TRUE(q->discard(4096 * 10, 4096 * 4));
        std::fill_n(b.begin() + 4096 * 10, 4096 * 4, 0);
        EXPECT_EQ(read_all(*q), b);
        q.reset();
        EXPECT_EQ(run("qemu-img check '" + base + "'"), 0);
        EXPECT_EQ(qemu_contents(dir, base), b);
    }
}

TEST(Qcow2Test, ProbePolicyNeverTurnsRawIntoQcow2)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string img = dir.file("p.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + img + "' 1M"), 0);

    uint8_t const magic3[] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
    uint8_t const magic9[] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 9 };
    uint8_t const zeros[8] = {};
    EXPECT_EQ(detect_format(magic3), ImageFormat::Qcow2);
    EXPECT_EQ(detect_format(magic9), ImageFormat::Raw);
    EXPECT_EQ(detect_format(zeros), ImageFormat::Raw);
    EXPECT_EQ(detect_format(std::span<uint8_t const>(magic3, 4)), ImageFormat::Raw);

    // No format: qcow2 magic is refused, with a message naming the way out.
    auto probed = open_image(img, std::nullopt, ReadOnly::Yes);
    ASSERT_FALSE(probed);
    EXPECT_EQ(probed.error().kind(), ErrorKind::Format);
    EXPECT_NE(probed.error().message().find("format=qcow2"), std::string::npos);
    // format=raw means raw: the guest sees the file's bytes.
    auto raw = open_image(img, ImageFormat::Raw, ReadOnly::Yes);
    ASSERT_TRUE(raw);
    EXPECT_EQ((*raw)->size_bytes(), read_file(img).size());
    raw->reset();
    auto q = open_image(img, ImageFormat::Qcow2, ReadOnly::Yes);
    ASSERT_TRUE(q);
    EXPECT_EQ((*q)->size_bytes(), 1024u * 1024);
    q->reset();

    // A raw disk whose guest wrote a qcow2 header (naming a backing file) stays raw with format=raw, and is
    // refused (not opened as qcow2) without a format.
    std::string guest = dir.file("guest.raw");
    auto bytes = read_file(img);
    bytes.resize(1024 * 1024);
    write_file(guest, bytes);
    EXPECT_FALSE(open_image(guest, std::nullopt, ReadOnly::No));
    auto as_raw = open_image(guest, ImageFormat::Raw, ReadOnly::No);
    ASSERT_TRUE(as_raw);
    EXPECT_EQ((*as_raw)->size_bytes(), 1024u * 1024);
    // A plain raw file is probed as raw; format=qcow2 on it is a clear error.
    std::string plain = dir.file("plain.raw");
    write_file(plain, std::vector<uint8_t>(4096, 1));
    auto p = open_image(plain, std::nullopt, ReadOnly::Yes);
    ASSERT_TRUE(p);
    EXPECT_NE(dynamic_cast<DiskImage*>(p->get()), nullptr);
    auto wrong = open_image(plain, ImageFormat::Qcow2, ReadOnly::Yes);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().kind(), ErrorKind::Format);
    EXPECT_TRUE(parse_image_format("qcow2"));
    EXPECT_FALSE(parse_image_format("vmdk"));
}

TEST(Qcow2Test, BackingFormatMissingIsProbedSafelyAndLoopsAndDeepChainsAreRefused)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string a = dir.file("a.qcow2"), b = dir.file("b.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + a + "' 1M"), 0);
    ASSERT_EQ(run("cd '" + dir.path() + "' && qemu-img create -f qcow2 -b a.qcow2 -F qcow2 b.qcow2 1M"), 0);
    // Drop the backing format extension: b's backing file has qcow2 magic, so opening b is refused.
    {
        auto bytes = read_file(b);
        bool found = false;
        for (size_t off = 104; off + 8 <= 4096 && !found; off += 8) {
            if (get_be(bytes, off, 4) == 0xe2792aca) {
                put_be(bytes, off, 4, 0x12345678); // an unknown extension: ignored
                found = true;
            }
        }
        ASSERT_TRUE(found);
        write_file(b, bytes);
    }
    auto refused = Qcow2Image::open(b, ReadOnly::Yes);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("format=qcow2"), std::string::npos) << refused.error().message();

    // A loop: a's backing file is a itself.
    ASSERT_EQ(run("qemu-img rebase -u -b a.qcow2 -F qcow2 '" + b + "'"), 0);
    ASSERT_EQ(run("qemu-img rebase -u -b b.qcow2 -F qcow2 '" + a + "'"), 0);
    auto loop = Qcow2Image::open(a, ReadOnly::Yes);
    ASSERT_FALSE(loop);
    EXPECT_NE(loop.error().message().find("loop"), std::string::npos) << loop.error().message();

    // A chain of 17 images is too deep; 16 is fine.
    std::string prev = "c0.qcow2";
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + dir.file(prev) + "' 1M"), 0);
    for (int i = 1; i <= 16; ++i) {
        std::string name = fmt::format("c{}.qcow2", i);
        ASSERT_EQ(run("cd '" + dir.path() + "' && qemu-img create -f qcow2 -b " + prev + " -F qcow2 " + name + " 1M"), 0);
        prev = name;
    }
    EXPECT_TRUE(Qcow2Image::open(dir.file("c15.qcow2"), ReadOnly::Yes));
    auto deep = Qcow2Image::open(dir.file("c16.qcow2"), ReadOnly::Yes);
    ASSERT_FALSE(deep);
    EXPECT_NE(deep.error().message().find("deeper"), std::string::npos) << deep.error().message();
}

TEST(Qcow2Test, ReadOnlyLockingAndFeatureBits)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string img = dir.file("f.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + img + "' 1M"), 0);
    {
        auto ro = open_qcow2(img);
        ASSERT_TRUE(ro);
        EXPECT_TRUE(ro->read_only());
        auto w = write_bytes(*ro, 0, std::vector<uint8_t>(512, 1));
        ASSERT_FALSE(w);
        EXPECT_EQ(w.error().kind(), ErrorKind::Permission);
        EXPECT_FALSE(ro->discard(0, 65536));
        auto rw = Qcow2Image::open(img, ReadOnly::No);
        ASSERT_FALSE(rw);
        EXPECT_EQ(rw.error().kind(), ErrorKind::Busy);
    }
    {
        auto rw = open_qcow2(img, ReadOnly::No);
        ASSERT_TRUE(rw);
        std::vector<uint8_t> buf(16);
        EXPECT_FALSE(rw->read_at(1024 * 1024 - 8, buf)); // past the end
        EXPECT_FALSE(rw->write_at(UINT64_MAX - 4, buf));
        EXPECT_FALSE(rw->write_zeroes(1024 * 1024, 1, MayUnmap::Yes));
    }
    // Dirty bit: read-only is fine, read-write refused.
    patch_be(img, 72, 8, 1);
    EXPECT_TRUE(Qcow2Image::open(img, ReadOnly::Yes));
    auto dirty = Qcow2Image::open(img, ReadOnly::No);
    ASSERT_FALSE(dirty);
    EXPECT_NE(dirty.error().message().find("dirty"), std::string::npos);
    // Unknown incompatible bit, extended L2, external data: refused either way.
    for (uint64_t bits : { uint64_t { 1 } << 40, uint64_t { 1 } << 4, uint64_t { 1 } << 2 }) {
        patch_be(img, 72, 8, bits);
        auto r = Qcow2Image::open(img, ReadOnly::Yes);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind(), ErrorKind::Unsupported) << r.error().message();
    }
    patch_be(img, 72, 8, 0);
    // Autoclear bits are cleared by a read-write open.
    patch_be(img, 88, 8, 1);
    EXPECT_TRUE(Qcow2Image::open(img, ReadOnly::No));
    EXPECT_EQ(get_be(read_file(img), 88, 8), 0u);
    EXPECT_EQ(run("qemu-img check '" + img + "'"), 0);
}

TEST(Qcow2Test, CorruptHeadersAreClearErrors)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string good = dir.file("good.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + good + "' 4M"), 0);
    qemu_io(good, "write -P 0x12 0 128k");
    auto const pristine = read_file(good);
    std::string img = dir.file("bad.qcow2");
    uint64_t const file_size = pristine.size();

    struct Case {
        char const* what;
        size_t off, n;
        uint64_t value;
    };
    Case const cases[] = {
        { "cluster_bits 8", 20, 4, 8 },
        { "cluster_bits 22", 20, 4, 22 },
        { "cluster_bits huge", 20, 4, 0xffffffff },
        { "version 4", 4, 4, 4 },
        { "L1 size too small for the disk", 36, 4, 0 },
        { "L1 size huge", 36, 4, 0x10000000 },
        { "L1 past EOF", 40, 8, file_size + (1 << 20) },
        { "L1 unaligned", 40, 8, 0x30200 },
        { "L1 offset zero", 40, 8, 0 },
        { "refcount table past EOF", 48, 8, uint64_t { 1 } << 50 },
        { "refcount table unaligned", 48, 8, 0x10010 },
        { "refcount table huge", 56, 4, 0xffffff },
        { "refcount table empty", 56, 4, 0 },
        { "refcount order 7", 96, 4, 7 },
        { "header length odd", 100, 4, 105 },
        { "header length huge", 100, 4, 0x100000 },
        { "virtual size huge", 24, 8, UINT64_MAX },
        { "backing name too long", 16, 4, 5000 },
        { "backing name past the cluster", 8, 8, 65530 },
        { "encrypted", 32, 4, 1 },
        { "snapshots (read-write)", 60, 4, 1 },
    };
    for (auto const& c : cases) {
        SCOPED_TRACE(c.what);
        auto bytes = pristine;
        put_be(bytes, c.off, c.n, c.value);
        if (c.off == 8)
            put_be(bytes, 16, 4, 100); // a backing name of 100 bytes at the given offset
        if (c.off == 16)
            put_be(bytes, 8, 8, 512); // a backing name at 512 of the given length
        write_file(img, bytes);
        auto r = Qcow2Image::open(img, ReadOnly::No);
        ASSERT_FALSE(r);
        EXPECT_FALSE(r.error().message().empty());
        EXPECT_EQ(read_file(img), bytes) << "a failed open modified the file";
    }

    // Truncated files.
    for (size_t len : { size_t { 0 }, size_t { 4 }, size_t { 50 }, size_t { 100 } }) {
        write_file(img, std::vector<uint8_t>(pristine.begin(), pristine.begin() + static_cast<ptrdiff_t>(len)));
        EXPECT_FALSE(Qcow2Image::open(img, ReadOnly::Yes)) << len;
    }
    // Refcount table entries: garbage pointer, reserved bits.
    uint64_t const reftable = get_be(pristine, 48, 8);
    for (uint64_t bad : { uint64_t { 0x123 }, uint64_t { 1 } << 55, uint64_t { 0 } + 0 }) {
        auto bytes = pristine;
        put_be(bytes, static_cast<size_t>(reftable), 8, bad == 0 ? get_be(pristine, 40, 8) : bad); // 0: onto the L1 table
        write_file(img, bytes);
        EXPECT_FALSE(Qcow2Image::open(img, ReadOnly::No)) << bad;
    }
    // L1 entry pointing at the refcount table, past EOF, or with reserved bits.
    uint64_t const l1 = get_be(pristine, 40, 8);
    for (uint64_t bad : { (uint64_t { 1 } << 63) | reftable, (uint64_t { 1 } << 63) | (uint64_t { 1 } << 50), uint64_t { 0x200 } | 0x1 }) {
        auto bytes = pristine;
        put_be(bytes, static_cast<size_t>(l1), 8, bad);
        write_file(img, bytes);
        EXPECT_FALSE(Qcow2Image::open(img, ReadOnly::Yes)) << std::hex << bad;
    }
}

TEST(Qcow2Test, CorruptL2EntriesFailOnlyTheirRequests)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string img = dir.file("l2.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + img + "' 4M"), 0);
    qemu_io(img, "write -P 0x12 0 256k");
    auto const pristine = read_file(img);
    uint64_t const l2 = get_be(pristine, static_cast<size_t>(get_be(pristine, 40, 8)), 8) & 0x00fffffffffffe00ull;
    ASSERT_NE(l2, 0u);

    uint64_t const copied = uint64_t { 1 } << 63;
    struct Case {
        char const* what;
        uint64_t entry;
    };
    Case const cases[] = {
        { "unaligned", copied | ((get_be(pristine, static_cast<size_t>(l2), 8) & ~copied) + 512) },
        { "past EOF", copied | (uint64_t { 1 } << 40) },
        { "reserved bits", copied | 0x10000 | 0x2 },
        { "compressed garbage", (uint64_t { 1 } << 62) | 0x200 },
        { "compressed past EOF", (uint64_t { 1 } << 62) | ((uint64_t { 1 } << 50) - 1) },
        { "the header", copied | 0 | 0 }, // offset 0 with COPIED: invalid
    };
    for (auto const& c : cases) {
        SCOPED_TRACE(c.what);
        auto bytes = pristine;
        put_be(bytes, static_cast<size_t>(l2) + 8, 8, c.entry); // guest cluster 1
        write_file(img, bytes);
        auto q = open_qcow2(img, ReadOnly::No);
        ASSERT_TRUE(q);
        std::vector<uint8_t> buf(4096);
        auto r = q->read_at(65536, buf);
        EXPECT_FALSE(r);
        if (!r) {
            EXPECT_EQ(r.error().kind(), ErrorKind::Io);
        }
        EXPECT_FALSE(write_bytes(*q, 65536 + 100, std::vector<uint8_t>(10, 0x66)));
        // Other clusters still work.
        ASSERT_TRUE(q->read_at(0, buf));
        EXPECT_EQ(buf[0], 0x12);
        ASSERT_TRUE(q->read_at(131072, buf));
        EXPECT_EQ(buf[100], 0x12);
    }

    // An L2 entry pointing at the L1 table, the refcount table or the L2 table itself: reads are allowed (they
    // leak nothing outside the image) but a guest write must never land on metadata.
    for (uint64_t target : { get_be(pristine, 40, 8), get_be(pristine, 48, 8), l2 }) {
        SCOPED_TRACE(target);
        auto bytes = pristine;
        put_be(bytes, static_cast<size_t>(l2) + 8, 8, copied | target);
        write_file(img, bytes);
        auto const planted = read_file(img);
        {
            auto q = open_qcow2(img, ReadOnly::No);
            ASSERT_TRUE(q);
            std::vector<uint8_t> buf(512);
            EXPECT_TRUE(q->read_at(65536, buf));
            auto w = write_bytes(*q, 65536, std::vector<uint8_t>(512, 0x66));
            ASSERT_FALSE(w);
            EXPECT_EQ(w.error().kind(), ErrorKind::Io);
        }
        EXPECT_EQ(read_file(img), planted) << "a refused write changed the file";
    }
}

TEST(Qcow2Test, WritesNeverGrowTheFileBeyondWhatTheyAllocate)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string img = dir.file("s.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 '" + img + "' 64M"), 0);
    auto before = read_file(img).size();
    {
        auto q = open_qcow2(img, ReadOnly::No);
        ASSERT_TRUE(q);
        ASSERT_TRUE(write_bytes(*q, 32 * 1024 * 1024, std::vector<uint8_t>(4096, 7)));
        // Zeroing and discarding unallocated space allocates nothing.
        ASSERT_TRUE(q->write_zeroes(0, 64 * 1024 * 1024, MayUnmap::Yes));
        ASSERT_TRUE(q->discard(0, 64 * 1024 * 1024));
    }
    // One data cluster and one L2 table.
    EXPECT_LE(read_file(img).size(), align_up(before, 65536) + 2 * 65536);
    EXPECT_EQ(run("qemu-img check '" + img + "'"), 0);
}

TEST(Qcow2Test, CreatedImagesAreValidForQemu)
{
    REQUIRE_QEMU();
    TempDir dir;
    for (uint32_t bits : { 9u, 16u, 21u }) {
        SCOPED_TRACE(bits);
        std::string img = dir.file(fmt::format("new{}.qcow2", bits));
        ASSERT_TRUE(Qcow2Image::create(img, 8 * 1024 * 1024, bits));
        EXPECT_FALSE(Qcow2Image::create(img, 8 * 1024 * 1024, bits)); // never overwrites
        EXPECT_EQ(run("qemu-img check '" + img + "'"), 0);
        {
            auto q = open_qcow2(img, ReadOnly::No);
            ASSERT_TRUE(q);
            EXPECT_EQ(q->size_bytes(), 8u * 1024 * 1024);
            ASSERT_TRUE(write_bytes(*q, 12345, std::vector<uint8_t>(100000, 0x3c)));
        }
        EXPECT_EQ(run("qemu-img check '" + img + "'"), 0);
        qemu_io(img, "read -P 0x3c 12345 100000");
    }
    EXPECT_FALSE(Qcow2Image::create(dir.file("bad.qcow2"), 1000, 16));
    EXPECT_FALSE(Qcow2Image::create(dir.file("bad.qcow2"), 1 << 20, 30));
}

namespace {

/// Patches a big-endian field of `width` bytes at `offset` in a file.
void poke_be(std::string const& path, uint64_t offset, uint64_t value, size_t width)
{
    auto bytes = read_file(path);
    ASSERT_LE(offset + width, bytes.size());
    for (size_t i = 0; i < width; ++i)
        bytes[offset + i] = static_cast<uint8_t>(value >> (8 * (width - 1 - i)));
    write_file(path, bytes);
}
uint64_t peek_be(std::string const& path, uint64_t offset, size_t width)
{
    auto bytes = read_file(path);
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i)
        v = v << 8 | bytes[offset + i];
    return v;
}

} // namespace

TEST(Qcow2Test, ResizeGrowsTheDiskAndMovesTheL1TableWhenItMustGrow)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string const img = dir.file("r.qcow2");
    // 512-byte clusters: one L1 entry maps 32 KiB, one L1 cluster 64 entries = 2 MiB.
    ASSERT_TRUE(Qcow2Image::create(img, 1 * MiB, 9));
    std::vector<uint8_t> data(4096);
    std::iota(data.begin(), data.end(), uint8_t { 7 });
    {
        auto q = open_qcow2(img, ReadOnly::No);
        ASSERT_TRUE(q);
        ASSERT_TRUE(write_bytes(*q, 300 * 1024, data));
        EXPECT_EQ(q->resize(512 * KiB).error().kind(), ErrorKind::Unsupported) << "shrinking is refused";
        ASSERT_TRUE(q->resize(2 * MiB)); // still fits the L1 cluster
        uint64_t const l1_before = peek_be(img, 40, 8);
        ASSERT_TRUE(q->resize(8 * MiB)); // 256 entries: a new L1 table
        EXPECT_NE(peek_be(img, 40, 8), l1_before);
        EXPECT_EQ(q->size_bytes(), 8 * MiB);
        ASSERT_TRUE(write_bytes(*q, 8 * MiB - 4096, data)); // the new end is writable
        auto r = q->check();
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->corruptions, 0u);
        EXPECT_EQ(r->leaks, 0u) << (r->messages.empty() ? "" : r->messages[0]);
    }
    EXPECT_EQ(run("qemu-img check '" + img + "'"), 0);
    auto contents = qemu_contents(dir, img);
    ASSERT_EQ(contents.size(), 8 * MiB);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), contents.begin() + 300 * 1024));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), contents.end() - 4096));
}

TEST(Qcow2Test, CheckAgreesWithQemuImgOnLeaksAndCorruption)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string const img = dir.file("c.qcow2");
    ASSERT_EQ(run("qemu-img create -f qcow2 -o cluster_size=4096 '" + img + "' 1M"), 0);
    qemu_io(img, "write -P 0x5a 0 64k");
    {
        auto q = open_qcow2(img);
        auto r = q->check();
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->corruptions + r->leaks, 0u);
        EXPECT_EQ(r->allocated_clusters, 16u);
        EXPECT_EQ(r->total_clusters, 256u);
    }
    // The first refcount block: reftable entry 0.
    uint64_t const reftable = peek_be(img, 48, 8);
    uint64_t const block = peek_be(img, reftable, 8);
    uint64_t const clusters = (std::filesystem::file_size(img) + 4095) / 4096;

    // One more cluster at the end of the file with a refcount of 1 and nothing pointing at it: a leak (qemu-img
    // check exits 3). A refcount past the end of the file is not one (QEMU agrees).
    poke_be(img, block + 2 * (clusters + 3), 1, 2);
    {
        auto r = open_qcow2(img)->check();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->leaks + r->corruptions, 0u);
    }
    poke_be(img, block + 2 * (clusters + 3), 0, 2);
    std::filesystem::resize_file(img, clusters * 4096 + 4096);
    poke_be(img, block + 2 * clusters, 1, 2);
    {
        auto r = open_qcow2(img)->check();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->leaks, 1u);
        EXPECT_EQ(r->corruptions, 0u);
    }
    EXPECT_EQ(run("qemu-img check '" + img + "' >/dev/null"), 3);

    // A refcount of 0 for the last data cluster: corruption (exit 2), and its entry's COPIED flag now lies.
    poke_be(img, block + 2 * (clusters - 1), 0, 2);
    {
        auto r = open_qcow2(img)->check();
        ASSERT_TRUE(r);
        EXPECT_GE(r->corruptions, 1u);
        EXPECT_EQ(r->leaks, 1u);
    }
    EXPECT_EQ(run("qemu-img check '" + img + "' >/dev/null 2>&1"), 2);
}

TEST(Qcow2Test, CreateWithABackingFileReadsThroughIt)
{
    REQUIRE_QEMU();
    TempDir dir;
    std::string const base = dir.file("base.raw");
    std::vector<uint8_t> pattern(1 * MiB);
    for (size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<uint8_t>(i * 13);
    write_file(base, pattern);
    std::string const top = dir.file("top.qcow2");
    ASSERT_TRUE(Qcow2Image::create(top, 1 * MiB,
        Qcow2Image::CreateOptions { .cluster_bits = 16, .backing_file = "base.raw", .backing_format = "raw" }));
    {
        auto q = open_qcow2(top);
        ASSERT_TRUE(q);
        EXPECT_EQ(read_all(*q), pattern);
    }
    EXPECT_EQ(run("qemu-img check '" + top + "'"), 0);
    EXPECT_EQ(run("qemu-img compare -f raw -F qcow2 '" + base + "' '" + top + "'"), 0);
    EXPECT_EQ(run("qemu-img info '" + top + "' | grep -q 'backing file format: raw'"), 0);
    // A name that does not fit, and a format without a file, are refused.
    EXPECT_FALSE(Qcow2Image::create(dir.file("x.qcow2"), 1 * MiB,
        Qcow2Image::CreateOptions { .cluster_bits = 9, .backing_file = std::string(600, 'a'), .backing_format = {} }));
    EXPECT_FALSE(Qcow2Image::create(dir.file("y.qcow2"), 1 * MiB,
        Qcow2Image::CreateOptions { .cluster_bits = 16, .backing_file = {}, .backing_format = "raw" }));
}
