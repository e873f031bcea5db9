#include "block/disk_image.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

#include "base/checked.h"
#include "block/image_lock.h"

namespace hako::block {

namespace {

/// Zero buffers are written in chunks of this size, so a huge write_zeroes() never allocates much.
constexpr size_t ZERO_CHUNK = 64 * 1024;

/// preadv/pwritev take at most IOV_MAX buffers per call.
constexpr size_t MAX_IOVECS = IOV_MAX;

ErrorKind kind_for_open_errno(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return ErrorKind::NotFound;
    case EACCES:
    case EPERM:
    case EROFS:
        return ErrorKind::Permission;
    default:
        return ErrorKind::Io;
    }
}

bool is_unsupported_errno(int err) { return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL; }

/// Drops the first `n` bytes from the front of `iov` (which holds at least n bytes).
void advance(std::vector<struct iovec>& iov, size_t& first, size_t n)
{
    while (n > 0 && first < iov.size()) {
        size_t take = std::min(n, iov[first].iov_len);
        iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + take;
        iov[first].iov_len -= take;
        n -= take;
        if (iov[first].iov_len == 0)
            ++first;
    }
    while (first < iov.size() && iov[first].iov_len == 0)
        ++first;
}

enum class Direction { Read, Write };

/// Runs preadv/pwritev until every byte of `iov` is transferred, retrying EINTR and short counts.
Result<void> transfer_all(int fd, Direction dir, uint64_t offset, std::vector<struct iovec> iov, std::string const& path)
{
    size_t first = 0;
    advance(iov, first, 0);
    while (first < iov.size()) {
        int count = static_cast<int>(std::min(iov.size() - first, MAX_IOVECS));
        auto off = static_cast<off_t>(offset);
        ssize_t n = dir == Direction::Read ? ::preadv(fd, iov.data() + first, count, off)
                                           : ::pwritev(fd, iov.data() + first, count, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::from_errno(ErrorKind::Io,
                fmt::format("Disk image {}: {} at offset {} failed", path, dir == Direction::Read ? "read" : "write",
                    offset));
        }
        if (n == 0)
            return Error(ErrorKind::Io,
                fmt::format("Disk image {}: unexpected end of file at offset {} (was it truncated?)", path, offset));
        offset += static_cast<uint64_t>(n);
        advance(iov, first, static_cast<size_t>(n));
    }
    return ok();
}

} // namespace

Result<std::unique_ptr<DiskImage>> DiskImage::open(std::string const& path, ReadOnly ro)
{
    int const flags = (ro == ReadOnly::Yes ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    UniqueFd fd(::open(path.c_str(), flags));
    if (!fd.valid())
        return Error::from_errno(kind_for_open_errno(errno), fmt::format("Cannot open disk image {}", path));

    struct stat st {};
    if (::fstat(fd.get(), &st) < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot stat disk image {}", path));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return Error(ErrorKind::Unsupported,
            fmt::format("Disk image {} is neither a regular file nor a block device", path));

    // QEMU's lock bytes (image_lock.h): one writer or any number of readers, hako and QEMU alike.
    TRY(lock_image(fd.get(), path, ro));

    off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot find the size of disk image {}", path));
    auto size = static_cast<uint64_t>(end);
    if (size < SECTOR_SIZE)
        return Error(ErrorKind::Format,
            fmt::format("Disk image {} is {} bytes: smaller than one 512-byte sector", path, size));

    return std::unique_ptr<DiskImage>(new DiskImage(path, std::move(fd), size, ro));
}

bool DiskImage::in_range(uint64_t offset, uint64_t len) const { return range_within(offset, len, m_size); }

Result<void> DiskImage::check_range(uint64_t offset, uint64_t len, std::string_view what) const
{
    if (!in_range(offset, len))
        return Error(ErrorKind::OutOfRange,
            fmt::format("Disk image {}: {} of {} bytes at offset {} is outside the image ({} bytes)", m_path, what, len,
                offset, m_size));
    return ok();
}

Result<void> DiskImage::check_writable(std::string_view what) const
{
    if (read_only())
        return Error(ErrorKind::Permission, fmt::format("Disk image {} is read-only: {} refused", m_path, what));
    return ok();
}

Result<void> DiskImage::read_at(uint64_t offset, std::span<uint8_t> out)
{
    std::span<uint8_t> const one[] = { out };
    return read_vectored(offset, one);
}

Result<void> DiskImage::write_at(uint64_t offset, std::span<uint8_t const> in)
{
    std::span<uint8_t const> const one[] = { in };
    return write_vectored(offset, one);
}

Result<void> DiskImage::read_vectored(uint64_t offset, std::span<std::span<uint8_t> const> bufs)
{
    uint64_t total = 0;
    std::vector<struct iovec> iov;
    iov.reserve(bufs.size());
    for (auto b : bufs) {
        total += b.size(); // cannot overflow: the buffers exist in our address space
        iov.push_back({ b.data(), b.size() });
    }
    TRY(check_range(offset, total, "read"));
    return transfer_all(m_fd.get(), Direction::Read, offset, std::move(iov), m_path);
}

Result<void> DiskImage::write_vectored(uint64_t offset, std::span<std::span<uint8_t const> const> bufs)
{
    TRY(check_writable("write"));
    uint64_t total = 0;
    std::vector<struct iovec> iov;
    iov.reserve(bufs.size());
    for (auto b : bufs) {
        total += b.size();
        // pwritev never writes through iov_base; struct iovec just has no const version.
        iov.push_back({ const_cast<uint8_t*>(b.data()), b.size() });
    }
    TRY(check_range(offset, total, "write"));
    return transfer_all(m_fd.get(), Direction::Write, offset, std::move(iov), m_path);
}

Result<void> DiskImage::flush()
{
    while (::fdatasync(m_fd.get()) < 0) {
        if (errno != EINTR)
            return Error::from_errno(ErrorKind::Io, fmt::format("Disk image {}: fdatasync failed", m_path));
    }
    return ok();
}

Result<bool> DiskImage::try_fallocate(int mode, uint64_t offset, uint64_t len, std::atomic<bool>& supported)
{
    if (!supported.load(std::memory_order_relaxed))
        return false;
    while (::fallocate(m_fd.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(len)) < 0) {
        if (errno == EINTR)
            continue;
        if (is_unsupported_errno(errno)) {
            supported.store(false, std::memory_order_relaxed);
            return false;
        }
        return Error::from_errno(ErrorKind::Io, fmt::format("Disk image {}: fallocate at offset {} failed", m_path, offset));
    }
    return true;
}

Result<DiscardOutcome> DiskImage::discard(uint64_t offset, uint64_t len)
{
    TRY(check_writable("discard"));
    TRY(check_range(offset, len, "discard"));
    if (len == 0)
        return DiscardOutcome::Ignored;
    bool punched = TRY(try_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len, m_punch_supported));
    return punched ? DiscardOutcome::Punched : DiscardOutcome::Ignored;
}

Result<ZeroOutcome> DiskImage::write_zeroes(uint64_t offset, uint64_t len, MayUnmap may_unmap)
{
    TRY(check_writable("write zeroes"));
    TRY(check_range(offset, len, "write zeroes"));
    if (len == 0)
        return ZeroOutcome::Written;
    if (may_unmap == MayUnmap::Yes
        && TRY(try_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len, m_punch_supported)))
        return ZeroOutcome::Punched;
    if (TRY(try_fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len, m_zero_range_supported)))
        return ZeroOutcome::ZeroRange;
    TRY(write_zero_buffers(offset, len));
    return ZeroOutcome::Written;
}

Result<void> DiskImage::write_zero_buffers(uint64_t offset, uint64_t len)
{
    static std::array<uint8_t, ZERO_CHUNK> const zeros {};
    while (len > 0) {
        size_t chunk = static_cast<size_t>(std::min<uint64_t>(len, ZERO_CHUNK));
        TRY(write_at(offset, std::span<uint8_t const>(zeros.data(), chunk)));
        offset += chunk;
        len -= chunk;
    }
    return ok();
}

} // namespace hako::block
