#include "block/image_lock.h"

#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>

namespace hako::block {

namespace {

enum class Probe { Free, Held, Failed };

bool set_byte_lock(int fd, off_t byte)
{
    struct flock lock {};
    lock.l_type = F_RDLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = byte;
    lock.l_len = 1;
    lock.l_pid = 0; // required for OFD locks
    return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

/// Whether another open file description holds a lock on `byte`: a write lock would conflict with any lock there.
/// Our own locks never conflict with our own probe (same open file description).
Probe probe_byte(int fd, off_t byte)
{
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = byte;
    lock.l_len = 1;
    lock.l_pid = 0;
    if (::fcntl(fd, F_OFD_GETLK, &lock) < 0)
        return Probe::Failed;
    return lock.l_type == F_UNLCK ? Probe::Free : Probe::Held;
}

} // namespace

Result<void> lock_image(int fd, std::string const& path, ReadOnly ro)
{
    bool const write = ro == ReadOnly::No;
    // What we use, and what we refuse to share (write, in both cases: no one may write under a reader or a writer).
    unsigned const used = (1u << PERM_CONSISTENT_READ) | (write ? 1u << PERM_WRITE : 0u);
    unsigned const unshared = 1u << PERM_WRITE;

    // Lock first, then test the other side, as QEMU does: two openers racing both see each other and both back off,
    // rather than both slipping through between a test and a lock.
    for (unsigned perm = 0; perm <= PERM_RESIZE; ++perm) {
        bool ok = true;
        if (used & (1u << perm))
            ok = set_byte_lock(fd, LOCK_PERM_BASE + perm);
        if (ok && (unshared & (1u << perm)))
            ok = set_byte_lock(fd, LOCK_SHARED_BASE + perm);
        if (!ok) {
            if (errno == EAGAIN || errno == EACCES)
                return Error(ErrorKind::Busy, fmt::format("Disk image {} is in use by another process", path));
            return Error::from_errno(ErrorKind::Unsupported, fmt::format("Cannot lock disk image {}", path));
        }
    }
    for (unsigned perm = 0; perm <= PERM_RESIZE; ++perm) {
        Probe p = Probe::Free;
        if (used & (1u << perm))
            p = probe_byte(fd, LOCK_SHARED_BASE + perm); // someone refuses to share what we use
        if (p == Probe::Free && (unshared & (1u << perm)))
            p = probe_byte(fd, LOCK_PERM_BASE + perm); // someone uses what we refuse to share
        if (p == Probe::Held)
            return Error(ErrorKind::Busy, fmt::format("Disk image {} is in use by another process", path));
        if (p == Probe::Failed)
            return Error::from_errno(ErrorKind::Unsupported, fmt::format("Cannot check the locks of disk image {}", path));
    }
    return ok();
}

} // namespace hako::block
