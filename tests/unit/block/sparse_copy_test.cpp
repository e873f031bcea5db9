// copy_sparse (block/sparse_copy.h): a sparse source of 4 GiB with a few data blocks is copied by each method; the
// copy has the same size and contents, and its allocated blocks (st_blocks) stay about the source's, so holes stay
// holes. Also: zeros inside data extents become holes with ReadWrite, an empty source, a source that is not a regular
// file, a stop request, and a write error (RLIMIT_FSIZE gives EFBIG, the way ENOSPC would fail a write).
#include <gtest/gtest.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "block/sparse_copy.h"

using namespace hako;
using namespace hako::block;

namespace {

constexpr uint64_t SPARSE_SIZE = 4ull << 30;

std::string temp_dir()
{
    char const* t = std::getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/// An empty file in the temporary directory, removed with the object.
class TempFile final {
public:
    TempFile()
    {
        std::string tmpl = temp_dir() + "/hako-copy-XXXXXX";
        m_fd = ::mkstemp(tmpl.data());
        EXPECT_GE(m_fd, 0);
        m_path = tmpl;
    }
    ~TempFile()
    {
        ::close(m_fd);
        ::unlink(m_path.c_str());
    }
    TempFile(TempFile const&) = delete;
    TempFile& operator=(TempFile const&) = delete;
    int fd() const { return m_fd; }
    struct stat stat() const
    {
        struct stat st {};
        EXPECT_EQ(::fstat(m_fd, &st), 0);
        return st;
    }
    void write(uint64_t offset, std::vector<char> const& data) const
    {
        ASSERT_EQ(::pwrite(m_fd, data.data(), data.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(data.size()));
    }
    std::vector<char> read(uint64_t offset, size_t n) const
    {
        std::vector<char> out(n);
        EXPECT_EQ(::pread(m_fd, out.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
        return out;
    }

private:
    int m_fd { -1 };
    std::string m_path;
};

std::vector<char> pattern(size_t n, unsigned seed)
{
    std::vector<char> v(n);
    for (size_t i = 0; i < n; i++)
        v[i] = static_cast<char>((i * 31 + seed * 7 + (i >> 8)) | 1); // never zero
    return v;
}

/// The data blocks of the sparse source: offset and length (a few, spread over the 4 GiB, one at the very end).
struct Piece {
    uint64_t offset;
    size_t size;
};
std::vector<Piece> const PIECES = {
    { 0, 64 * 1024 }, { 1ull << 30, 3 * 1024 * 1024 + 512 }, { (3ull << 30) + 4096, 8192 }, { SPARSE_SIZE - 4096, 4096 },
};

void make_sparse_source(TempFile const& src)
{
    ASSERT_EQ(::ftruncate(src.fd(), static_cast<off_t>(SPARSE_SIZE)), 0);
    unsigned seed = 1;
    for (auto const& p : PIECES)
        src.write(p.offset, pattern(p.size, seed++));
}

/// Contents equal: the data pieces byte for byte, and zeros around and between them (samples of each hole).
void expect_same_contents(TempFile const& src, TempFile const& dst)
{
    for (auto const& p : PIECES)
        EXPECT_EQ(dst.read(p.offset, p.size), src.read(p.offset, p.size)) << "piece at " << p.offset;
    std::vector<char> const zeros(4096, 0);
    std::array<uint64_t, 5> const holes = { 64 * 1024, 512 << 20, (1ull << 30) + 3 * 1024 * 1024 + 512, 2ull << 30, SPARSE_SIZE - 8192 };
    for (uint64_t off : holes)
        EXPECT_EQ(dst.read(off, 4096), zeros) << "hole at " << off;
}

void copy_and_check(CopyMethod first)
{
    TempFile src, dst;
    make_sparse_source(src);
    auto method = copy_sparse(src.fd(), dst.fd(), {}, first);
    ASSERT_TRUE(method) << method.error().message();
    if (first != CopyMethod::Reflink) {
        EXPECT_EQ(*method, first); // the file systems tests run on take copy_file_range and read/write
    }
    struct stat const s = src.stat(), d = dst.stat();
    EXPECT_EQ(d.st_size, s.st_size);
    // Holes stay holes: the copy allocates what the source does (a little slack for file system metadata), and far
    // less than its size.
    EXPECT_LE(d.st_blocks, s.st_blocks + 64) << copy_method_name(*method);
    EXPECT_LT(static_cast<uint64_t>(d.st_blocks) * 512, 64ull << 20) << copy_method_name(*method);
    expect_same_contents(src, dst);
}

} // namespace

TEST(SparseCopy, AutoKeepsHolesAndContents) { copy_and_check(CopyMethod::Reflink); }
TEST(SparseCopy, CopyFileRangeKeepsHolesAndContents) { copy_and_check(CopyMethod::CopyFileRange); }
TEST(SparseCopy, ReadWriteKeepsHolesAndContents) { copy_and_check(CopyMethod::ReadWrite); }

TEST(SparseCopy, ReadWriteTurnsZeroBlocksIntoHoles)
{
    TempFile src, dst;
    // 1 MiB written in full, of which the middle 512 KiB are zeros: the source allocates all of it.
    std::vector<char> data = pattern(1 << 20, 3);
    std::fill(data.begin() + (256 << 10), data.begin() + (768 << 10), 0);
    src.write(0, data);
    ASSERT_EQ(::fsync(src.fd()), 0);
    auto method = copy_sparse(src.fd(), dst.fd(), {}, CopyMethod::ReadWrite);
    ASSERT_TRUE(method) << method.error().message();
    ASSERT_EQ(::fsync(dst.fd()), 0);
    EXPECT_EQ(dst.stat().st_size, 1 << 20);
    EXPECT_EQ(dst.read(0, 1 << 20), data);
    EXPECT_LE(dst.stat().st_blocks * 512, src.stat().st_blocks * 512 - (512 << 10) + 64 * 1024);
}

TEST(SparseCopy, EmptyAndAllHoleSources)
{
    TempFile empty, copy1;
    ASSERT_TRUE(copy_sparse(empty.fd(), copy1.fd()));
    EXPECT_EQ(copy1.stat().st_size, 0);
    TempFile holes, copy2;
    ASSERT_EQ(::ftruncate(holes.fd(), 1 << 30), 0);
    ASSERT_TRUE(copy_sparse(holes.fd(), copy2.fd(), {}, CopyMethod::CopyFileRange));
    EXPECT_EQ(copy2.stat().st_size, 1 << 30);
    EXPECT_EQ(copy2.stat().st_blocks, 0);
}

TEST(SparseCopy, RefusesWhatIsNotARegularFile)
{
    TempFile dst;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto r = copy_sparse(fds[0], dst.fd());
    ::close(fds[0]);
    ::close(fds[1]);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
}

TEST(SparseCopy, StopsWhenAsked)
{
    TempFile src, dst;
    make_sparse_source(src);
    std::stop_source stop;
    stop.request_stop();
    for (auto method : { CopyMethod::CopyFileRange, CopyMethod::ReadWrite }) {
        auto r = copy_sparse(src.fd(), dst.fd(), stop.get_token(), method);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind(), ErrorKind::Busy);
        EXPECT_EQ(dst.stat().st_size, 0) << "nothing was copied";
    }
}

TEST(SparseCopy, WriteErrorIsReported)
{
    // A file size limit makes writes past it fail (EFBIG) the way a full disk does (ENOSPC): an error, not a short
    // copy that looks whole.
    TempFile src, dst;
    make_sparse_source(src);
    struct rlimit old {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    auto const old_handler = std::signal(SIGXFSZ, SIG_IGN);
    for (auto method : { CopyMethod::CopyFileRange, CopyMethod::ReadWrite }) {
        ASSERT_EQ(::ftruncate(dst.fd(), 0), 0);
        struct rlimit small = old;
        small.rlim_cur = 1 << 20;
        ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
        auto r = copy_sparse(src.fd(), dst.fd(), {}, method);
        ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
        ASSERT_FALSE(r) << copy_method_name(method);
        EXPECT_EQ(r.error().kind(), ErrorKind::Io);
        EXPECT_NE(r.error().message().find("too large"), std::string::npos) << r.error().message();
    }
    std::signal(SIGXFSZ, old_handler);
}
