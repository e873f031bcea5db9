// IoUring: an io_uring instance (Linux 5.1+, through liburing) for asynchronous disk I/O: vectored reads and
// writes at an offset, and fdatasync, each tagged with a caller-chosen 64-bit user_data and completed later.
//
// An eventfd is registered with the ring (io_uring_register_eventfd), so the kernel signals it for every
// completion: an event loop watches event_fd() and calls reap() when it becomes readable.
//
// Contract: the data buffers of a request must stay valid (and mapped) until its completion is reaped; the iovec
// array need not: queue_*() copy it and submit() hands it to the kernel, which copies it at submission
// (IORING_FEAT_SUBMIT_STABLE, required by create()). The caller bounds the requests in flight to depth():
// queue_*() refuse beyond it, which also means the completion queue (2 x depth entries) can never overflow.
// Requests that were queued but whose submit() failed stay in the submission ring and go to the kernel with the
// next submit() or wait(); they count as in flight.
//
// Not thread-safe: the owner serialises every call (VirtioBlk does it with its device lock).
//
// Deliberately not done: registered buffers/files, SQPOLL, linked requests, cancellation (regular-file I/O
// cannot be cancelled once started anyway: drain by waiting, see wait()).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <sys/uio.h>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"

struct io_uring;

namespace hako::block {

class IoUring final {
public:
    /// One finished request: its user_data and the kernel's result (bytes transferred, or -errno).
    struct Completion {
        uint64_t user_data { 0 };
        int32_t res { 0 };
    };

    /// A ring with `depth` submission entries. Fails cleanly (ErrorKind::Unsupported) if the kernel has no
    /// io_uring or refuses it (ENOSYS, EPERM under seccomp or io_uring_disabled, EINVAL for a bad depth), or lacks
    /// IORING_FEAT_SUBMIT_STABLE.
    [[nodiscard]] static Result<std::unique_ptr<IoUring>> create(unsigned depth);

    IoUring(IoUring const&) = delete;
    IoUring& operator=(IoUring const&) = delete;
    /// Waits for every request in flight (their buffers may be about to go away), then tears the ring down.
    ~IoUring();

    /// Readable when completions are waiting (EFD_NONBLOCK; consume it before reap()).
    int event_fd() const { return m_event.fd(); }
    EventFd const& event() const { return m_event; }
    unsigned depth() const { return m_depth; }
    /// Requests queued and not yet reaped.
    unsigned in_flight() const { return m_in_flight; }

    /// Queues preadv(fd, bufs, offset). Fails (queuing nothing) if depth() requests are already in flight.
    [[nodiscard]] Result<void> queue_readv(int fd, uint64_t offset, std::span<std::span<uint8_t> const> bufs,
        uint64_t user_data);
    /// Queues pwritev(fd, bufs, offset).
    [[nodiscard]] Result<void> queue_writev(int fd, uint64_t offset, std::span<std::span<uint8_t const> const> bufs,
        uint64_t user_data);
    /// Queues fdatasync(fd) (IORING_FSYNC_DATASYNC).
    [[nodiscard]] Result<void> queue_fdatasync(int fd, uint64_t user_data);
    /// Hands every queued request to the kernel (retrying EINTR/EAGAIN/EBUSY a few times).
    [[nodiscard]] Result<void> submit();

    /// Takes the completions that are ready, up to out.size(), without blocking. \return how many.
    size_t reap(std::span<Completion> out);
    /// Submits what is queued and blocks until at least one completion is ready (if anything is in flight), then
    /// reaps like reap(). \return how many (0 if nothing was in flight).
    [[nodiscard]] Result<size_t> wait(std::span<Completion> out);

private:
    IoUring(std::unique_ptr<io_uring> ring, EventFd event, unsigned depth);
    [[nodiscard]] Result<void> queue_vectored(bool write, int fd, uint64_t offset, std::vector<struct iovec> iov,
        uint64_t user_data);

    std::unique_ptr<io_uring> m_ring;
    EventFd m_event;
    unsigned m_depth;
    unsigned m_in_flight { 0 };
    // iovec arrays of queued, not yet submitted requests (the kernel copies them at submission).
    std::vector<std::vector<struct iovec>> m_pending_iov;
};

} // namespace hako::block
