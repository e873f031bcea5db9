#include "block/sparse_copy.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace hako::block {

namespace {

/// Errors after which a later method is worth trying (the file system or kernel does not offer this one here).
bool refused(int err)
{
    return err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == EINVAL || err == ENOSYS || err == EPERM
        || err == ETXTBSY;
}

Error stopped() { return Error(ErrorKind::Busy, "The copy was stopped"); }

bool all_zero(char const* p, size_t n)
{
    return std::all_of(p, p + n, [](char c) { return c == 0; });
}

/// Writes what is not all zeros of [data, data + n) at `offset` of `fd`.
Result<void> write_nonzero(int fd, char const* data, size_t n, uint64_t offset)
{
    size_t done = 0;
    while (done < n) {
        size_t const block = std::min(ZERO_BLOCK, n - done);
        if (all_zero(data + done, block)) {
            done += block;
            continue;
        }
        ssize_t const w = ::pwrite(fd, data + done, block, static_cast<off_t>(offset + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return Error::from_errno(ErrorKind::Io, "Writing the copy");
        if (w == 0)
            return Error(ErrorKind::Io, "Writing the copy: the file system took no data");
        done += static_cast<size_t>(w);
    }
    return ok();
}

class Copier {
public:
    Copier(int src, int dst, std::stop_token stop, CopyMethod method) : m_src(src), m_dst(dst), m_stop(stop), m_method(method) { }

    Result<CopyMethod> run()
    {
        struct stat st {};
        if (::fstat(m_src, &st) != 0)
            return Error::from_errno(ErrorKind::Io, "Reading the source");
        if (!S_ISREG(st.st_mode))
            return Error(ErrorKind::InvalidArgument, "The source is not a regular file");
        uint64_t const size = static_cast<uint64_t>(st.st_size);
        if (m_method == CopyMethod::Reflink) {
            if (::ioctl(m_dst, FICLONE, m_src) == 0)
                return CopyMethod::Reflink;
            if (!refused(errno))
                return Error::from_errno(ErrorKind::Io, "Cloning the source's blocks (FICLONE)");
            m_method = CopyMethod::CopyFileRange;
        }
        uint64_t offset = 0;
        while (offset < size) {
            if (m_stop.stop_requested())
                return stopped();
            off_t const data = ::lseek(m_src, static_cast<off_t>(offset), SEEK_DATA);
            if (data < 0 && errno == ENXIO)
                break; // only a hole is left
            uint64_t start = offset, end = size;
            if (data < 0) {
                if (errno != EINVAL && errno != EOPNOTSUPP)
                    return Error::from_errno(ErrorKind::Io, "Finding the source's data (SEEK_DATA)");
                // No SEEK_DATA here: the rest is one extent (ReadWrite still skips the zeros).
            } else {
                start = static_cast<uint64_t>(data);
                off_t const hole = ::lseek(m_src, data, SEEK_HOLE);
                if (hole < 0)
                    return Error::from_errno(ErrorKind::Io, "Finding the source's holes (SEEK_HOLE)");
                end = std::min(size, static_cast<uint64_t>(hole));
            }
            if (start >= end)
                break;
            TRY(copy_extent(start, end));
            offset = end;
        }
        // The size last: a trailing hole is part of the file, and the copy's length is the source's exactly.
        if (::ftruncate(m_dst, static_cast<off_t>(size)) != 0)
            return Error::from_errno(ErrorKind::Io, "Sizing the copy");
        return m_method;
    }

private:
    Result<void> copy_extent(uint64_t start, uint64_t end)
    {
        uint64_t pos = start;
        while (pos < end) {
            if (m_stop.stop_requested())
                return stopped();
            uint64_t const n = std::min(end - pos, m_method == CopyMethod::CopyFileRange ? COPY_PIECE : READ_WRITE_BUFFER);
            if (m_method == CopyMethod::CopyFileRange) {
                loff_t in = static_cast<loff_t>(pos), out = static_cast<loff_t>(pos);
                ssize_t const c = ::copy_file_range(m_src, &in, m_dst, &out, static_cast<size_t>(n), 0);
                if (c < 0 && errno == EINTR)
                    continue;
                if (c < 0 && refused(errno)) {
                    m_method = CopyMethod::ReadWrite;
                    continue;
                }
                if (c < 0)
                    return Error::from_errno(ErrorKind::Io, "Copying (copy_file_range)");
                if (c == 0)
                    return Error(ErrorKind::Io, "The source became shorter while it was copied");
                pos += static_cast<uint64_t>(c);
                continue;
            }
            if (m_buffer.empty())
                m_buffer.resize(READ_WRITE_BUFFER);
            ssize_t const r = ::pread(m_src, m_buffer.data(), static_cast<size_t>(n), static_cast<off_t>(pos));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return Error::from_errno(ErrorKind::Io, "Reading the source");
            if (r == 0)
                return Error(ErrorKind::Io, "The source became shorter while it was copied");
            TRY(write_nonzero(m_dst, m_buffer.data(), static_cast<size_t>(r), pos));
            pos += static_cast<uint64_t>(r);
        }
        return ok();
    }

    int m_src;
    int m_dst;
    std::stop_token m_stop;
    CopyMethod m_method;
    std::vector<char> m_buffer; // ReadWrite's one buffer, READ_WRITE_BUFFER bytes once used
};

} // namespace

Result<CopyMethod> copy_sparse(int src_fd, int dst_fd, std::stop_token stop, CopyMethod first)
{
    return Copier(src_fd, dst_fd, std::move(stop), first).run();
}

char const* copy_method_name(CopyMethod method)
{
    switch (method) {
    case CopyMethod::Reflink:
        return "reflink";
    case CopyMethod::CopyFileRange:
        return "copy_file_range";
    case CopyMethod::ReadWrite:
        return "read/write";
    }
    return "?";
}

} // namespace hako::block
