#include <gtest/gtest.h>

#include <algorithm>
#include <sys/wait.h>
#include <unistd.h>

#include "block/disk_image.h"
#include "temp_image.h"

using namespace hako;
using namespace hako::block;
using hako::test::TempImage;

namespace {

constexpr uint64_t IMAGE_SIZE = 1024 * 1024;

bool all_zero(std::vector<uint8_t> const& v)
{
    return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
}

std::vector<uint8_t> pattern(uint64_t offset, size_t len)
{
    std::vector<uint8_t> v(len);
    for (size_t i = 0; i < len; ++i)
        v[i] = TempImage::pattern_byte(offset + i);
    return v;
}

} // namespace

TEST(DiskImageTest, OpenReportsSizeInBytesAndWholeSectors)
{
    TempImage file(IMAGE_SIZE + 100);
    auto disk = DiskImage::open(file.path(), ReadOnly::No);
    ASSERT_TRUE(disk) << disk.error().message();
    EXPECT_EQ((*disk)->size_bytes(), IMAGE_SIZE + 100);
    EXPECT_EQ((*disk)->size_sectors(), IMAGE_SIZE / 512); // the partial tail sector is not addressable
    EXPECT_FALSE((*disk)->read_only());
    EXPECT_EQ((*disk)->path(), file.path());
}

TEST(DiskImageTest, OpenErrors)
{
    auto missing = DiskImage::open("/nonexistent/hako/disk.img", ReadOnly::Yes);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind(), ErrorKind::NotFound);

    auto dir = DiskImage::open(TempImage::default_dir(), ReadOnly::Yes);
    ASSERT_FALSE(dir);
    EXPECT_EQ(dir.error().kind(), ErrorKind::Unsupported);

    TempImage tiny(100);
    auto small = DiskImage::open(tiny.path(), ReadOnly::No);
    ASSERT_FALSE(small);
    EXPECT_EQ(small.error().kind(), ErrorKind::Format);
}

TEST(DiskImageTest, ReadWriteRoundTripReachesTheFile)
{
    TempImage file(IMAGE_SIZE);
    auto disk = std::move(DiskImage::open(file.path(), ReadOnly::No).value());

    std::vector<uint8_t> in(4096);
    for (size_t i = 0; i < in.size(); ++i)
        in[i] = static_cast<uint8_t>(i * 13 + 1);
    ASSERT_TRUE(disk->write_at(8192, in));
    ASSERT_TRUE(disk->flush());
    EXPECT_EQ(file.read(8192, in.size()), in);
    EXPECT_EQ(file.read(8192 - 16, 16), pattern(8192 - 16, 16)); // neighbours untouched
    EXPECT_EQ(file.read(8192 + 4096, 16), pattern(8192 + 4096, 16));

    std::vector<uint8_t> out(4096);
    ASSERT_TRUE(disk->read_at(8192, out));
    EXPECT_EQ(out, in);

    // Vectored: three buffers back to back.
    std::vector<uint8_t> a(100), b(1), c(411);
    std::span<uint8_t> const bufs[] = { a, b, c };
    ASSERT_TRUE(disk->read_vectored(0, bufs));
    EXPECT_EQ(a, pattern(0, 100));
    EXPECT_EQ(b, pattern(100, 1));
    EXPECT_EQ(c, pattern(101, 411));
}

TEST(DiskImageTest, EveryRangeIsCheckedAndTheFileNeverGrows)
{
    TempImage file(IMAGE_SIZE);
    auto disk = std::move(DiskImage::open(file.path(), ReadOnly::No).value());
    std::vector<uint8_t> buf(2, 0xee);

    EXPECT_TRUE(disk->read_at(IMAGE_SIZE - 2, buf));
    EXPECT_FALSE(disk->read_at(IMAGE_SIZE - 1, buf));
    EXPECT_FALSE(disk->write_at(IMAGE_SIZE - 1, buf));
    EXPECT_FALSE(disk->write_at(IMAGE_SIZE, buf));
    EXPECT_FALSE(disk->write_at(UINT64_MAX - 1, buf)); // offset + len overflows
    EXPECT_FALSE(disk->discard(IMAGE_SIZE - 512, 1024));
    EXPECT_FALSE(disk->discard(512, UINT64_MAX));
    EXPECT_FALSE(disk->write_zeroes(IMAGE_SIZE, 1, MayUnmap::No));
    EXPECT_FALSE(disk->write_zeroes(UINT64_MAX, 2, MayUnmap::Yes));
    auto err = disk->write_at(IMAGE_SIZE, buf);
    ASSERT_FALSE(err);
    EXPECT_EQ(err.error().kind(), ErrorKind::OutOfRange);

    EXPECT_TRUE(disk->write_at(IMAGE_SIZE, {})); // empty at the very end is inside
    EXPECT_EQ(file.file_size(), IMAGE_SIZE);
    EXPECT_EQ(file.read(IMAGE_SIZE - 2, 2), pattern(IMAGE_SIZE - 2, 2)); // the failed writes wrote nothing
}

TEST(DiskImageTest, ReadOnlyRefusesEveryWrite)
{
    TempImage file(IMAGE_SIZE);
    auto disk = std::move(DiskImage::open(file.path(), ReadOnly::Yes).value());
    EXPECT_TRUE(disk->read_only());
    std::vector<uint8_t> buf(512, 0);
    EXPECT_FALSE(disk->write_at(0, buf));
    EXPECT_FALSE(disk->discard(0, 4096));
    EXPECT_FALSE(disk->write_zeroes(0, 4096, MayUnmap::Yes));
    EXPECT_TRUE(disk->flush());
    EXPECT_EQ(file.read(0, 4096), pattern(0, 4096));
}

TEST(DiskImageTest, SecondReadWriteOpenIsRefused)
{
    TempImage file(IMAGE_SIZE);
    {
        auto first = DiskImage::open(file.path(), ReadOnly::No);
        ASSERT_TRUE(first);
        auto second = DiskImage::open(file.path(), ReadOnly::No);
        ASSERT_FALSE(second);
        EXPECT_EQ(second.error().kind(), ErrorKind::Busy);
        EXPECT_EQ(second.error().message(), "Disk image " + file.path() + " is in use by another process");
        // A reader is refused too while someone writes.
        auto reader = DiskImage::open(file.path(), ReadOnly::Yes);
        ASSERT_FALSE(reader);
        EXPECT_EQ(reader.error().kind(), ErrorKind::Busy);
    }
    // Closing releases the lock.
    EXPECT_TRUE(DiskImage::open(file.path(), ReadOnly::No));
}

TEST(DiskImageTest, ReadOnlyOpensShareButExcludeAWriter)
{
    TempImage file(IMAGE_SIZE);
    auto a = DiskImage::open(file.path(), ReadOnly::Yes);
    auto b = DiskImage::open(file.path(), ReadOnly::Yes);
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    auto writer = DiskImage::open(file.path(), ReadOnly::No);
    ASSERT_FALSE(writer);
    EXPECT_EQ(writer.error().kind(), ErrorKind::Busy);
}

TEST(DiskImageTest, LockHoldsAcrossProcesses)
{
    TempImage file(IMAGE_SIZE);
    auto held = DiskImage::open(file.path(), ReadOnly::No);
    ASSERT_TRUE(held);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child opens the file itself: a new open file description, so the lock conflicts.
        auto other = DiskImage::open(file.path(), ReadOnly::Yes);
        ::_exit(!other && other.error().kind() == ErrorKind::Busy ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(DiskImageTest, DiscardPunchesOrReportsItDidNothing)
{
    TempImage file(IMAGE_SIZE);
    auto disk = std::move(DiskImage::open(file.path(), ReadOnly::No).value());
    auto r = disk->discard(64 * 1024, 64 * 1024);
    ASSERT_TRUE(r) << r.error().message();
    if (*r == DiscardOutcome::Punched)
        EXPECT_TRUE(all_zero(file.read(64 * 1024, 64 * 1024)));
    else
        EXPECT_EQ(file.read(64 * 1024, 64 * 1024), pattern(64 * 1024, 64 * 1024));
    EXPECT_EQ(file.read(64 * 1024 - 512, 512), pattern(64 * 1024 - 512, 512));
    EXPECT_EQ(file.read(128 * 1024, 512), pattern(128 * 1024, 512));
    EXPECT_EQ(file.file_size(), IMAGE_SIZE);
}

TEST(DiskImageTest, WriteZeroesAlwaysReadsBackZeros)
{
    TempImage file(IMAGE_SIZE);
    auto disk = std::move(DiskImage::open(file.path(), ReadOnly::No).value());
    // Unaligned to the host block size on purpose: the partial blocks must be zeroed too.
    auto r1 = disk->write_zeroes(1536, 10 * 1024, MayUnmap::Yes);
    ASSERT_TRUE(r1) << r1.error().message();
    auto r2 = disk->write_zeroes(IMAGE_SIZE - 200 * 1024, 200 * 1024, MayUnmap::No);
    ASSERT_TRUE(r2) << r2.error().message();
    EXPECT_NE(*r2, ZeroOutcome::Punched); // no unmap: never a hole
    EXPECT_TRUE(all_zero(file.read(1536, 10 * 1024)));
    EXPECT_TRUE(all_zero(file.read(IMAGE_SIZE - 200 * 1024, 200 * 1024)));
    EXPECT_EQ(file.read(1024, 512), pattern(1024, 512));
    EXPECT_EQ(file.read(1536 + 10 * 1024, 512), pattern(1536 + 10 * 1024, 512));
    EXPECT_EQ(file.file_size(), IMAGE_SIZE);
}

TEST(DiskImageTest, WriteZeroesFallsBackToWritingBuffers)
{
    // tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE: without unmap, zero buffers are written.
    if (::access("/dev/shm", W_OK) != 0)
        GTEST_SKIP() << "no writable /dev/shm";
    TempImage file(IMAGE_SIZE, "/dev/shm");
    auto disk = std::move(DiskImage::open(file.path(), ReadOnly::No).value());
    // Larger than one 64 KiB chunk and not a multiple of it.
    auto r = disk->write_zeroes(4096, 200 * 1024 + 512, MayUnmap::No);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(*r == ZeroOutcome::Written || *r == ZeroOutcome::ZeroRange);
    EXPECT_TRUE(all_zero(file.read(4096, 200 * 1024 + 512)));
    EXPECT_EQ(file.read(4096 - 512, 512), pattern(4096 - 512, 512));
    EXPECT_EQ(file.read(4096 + 200 * 1024 + 512, 512), pattern(4096 + 200 * 1024 + 512, 512));
    EXPECT_EQ(file.file_size(), IMAGE_SIZE);
}
