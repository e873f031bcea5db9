#include "block/io_uring.h"

#include <array>
#include <cerrno>
#include <liburing.h>
#include <sys/eventfd.h>

#include "base/log.h"

namespace hako::block {

namespace {

/// How often submit() retries a transient failure before giving up (the requests stay queued).
constexpr int SUBMIT_RETRIES = 8;

} // namespace

Result<std::unique_ptr<IoUring>> IoUring::create(unsigned depth)
{
    if (depth == 0)
        return Error(ErrorKind::InvalidArgument, "io_uring: a depth of 0");
    auto ring = std::make_unique<io_uring>();
    io_uring_params params {};
    if (int r = io_uring_queue_init_params(depth, ring.get(), &params); r < 0)
        return Error::from_errno(ErrorKind::Unsupported, "io_uring_setup", -r);
    // From here on the ring must be torn down on every failure path.
    auto fail = [&ring](Error e) -> Error {
        io_uring_queue_exit(ring.get());
        return e;
    };
    if ((params.features & IORING_FEAT_SUBMIT_STABLE) == 0)
        return fail(Error(ErrorKind::Unsupported, "io_uring: the kernel lacks IORING_FEAT_SUBMIT_STABLE"));
    auto event = EventFd::create(EFD_NONBLOCK);
    if (!event)
        return fail(event.error());
    if (int r = io_uring_register_eventfd(ring.get(), event->fd()); r < 0)
        return fail(Error::from_errno(ErrorKind::Unsupported, "io_uring_register_eventfd", -r));
    return std::unique_ptr<IoUring>(new IoUring(std::move(ring), std::move(*event), params.sq_entries));
}

IoUring::IoUring(std::unique_ptr<io_uring> ring, EventFd event, unsigned depth)
    : m_ring(std::move(ring)), m_event(std::move(event)), m_depth(depth)
{
}

IoUring::~IoUring()
{
    // The kernel may still be writing into buffers the owner is about to free or unmap: wait for everything.
    std::array<Completion, 32> sink;
    while (m_in_flight > 0) {
        auto r = wait(sink);
        if (!r) {
            HAKO_ERROR("io_uring: waiting for {} requests at teardown failed: {}", m_in_flight, r.error().message());
            break;
        }
    }
    io_uring_queue_exit(m_ring.get());
}

Result<void> IoUring::queue_vectored(bool write, int fd, uint64_t offset, std::vector<struct iovec> iov,
    uint64_t user_data)
{
    if (m_in_flight >= m_depth)
        return Error(ErrorKind::Busy, "io_uring: queue full");
    io_uring_sqe* sqe = io_uring_get_sqe(m_ring.get());
    if (!sqe)
        return Error(ErrorKind::Busy, "io_uring: no free submission entry");
    auto const count = static_cast<unsigned>(iov.size());
    if (write)
        io_uring_prep_writev(sqe, fd, iov.data(), count, offset);
    else
        io_uring_prep_readv(sqe, fd, iov.data(), count, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    // The vector's heap buffer does not move with the vector, so the pointer in the SQE stays valid.
    m_pending_iov.push_back(std::move(iov));
    ++m_in_flight;
    return ok();
}

Result<void> IoUring::queue_readv(int fd, uint64_t offset, std::span<std::span<uint8_t> const> bufs,
    uint64_t user_data)
{
    std::vector<struct iovec> iov;
    iov.reserve(bufs.size());
    for (auto b : bufs)
        iov.push_back({ b.data(), b.size() });
    return queue_vectored(false, fd, offset, std::move(iov), user_data);
}

Result<void> IoUring::queue_writev(int fd, uint64_t offset, std::span<std::span<uint8_t const> const> bufs,
    uint64_t user_data)
{
    std::vector<struct iovec> iov;
    iov.reserve(bufs.size());
    for (auto b : bufs)
        iov.push_back({ const_cast<uint8_t*>(b.data()), b.size() }); // writev only reads; iovec has no const form
    return queue_vectored(true, fd, offset, std::move(iov), user_data);
}

Result<void> IoUring::queue_fdatasync(int fd, uint64_t user_data)
{
    if (m_in_flight >= m_depth)
        return Error(ErrorKind::Busy, "io_uring: queue full");
    io_uring_sqe* sqe = io_uring_get_sqe(m_ring.get());
    if (!sqe)
        return Error(ErrorKind::Busy, "io_uring: no free submission entry");
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, user_data);
    ++m_in_flight;
    return ok();
}

Result<void> IoUring::submit()
{
    int r = 0;
    for (int attempt = 0; attempt < SUBMIT_RETRIES; ++attempt) {
        r = io_uring_submit(m_ring.get());
        if (r >= 0 && io_uring_sq_ready(m_ring.get()) == 0) {
            m_pending_iov.clear(); // the kernel has copied every iovec array (IORING_FEAT_SUBMIT_STABLE)
            return ok();
        }
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            break;
    }
    return Error::from_errno(ErrorKind::Io, "io_uring_enter (submit)", r < 0 ? -r : EAGAIN);
}

size_t IoUring::reap(std::span<Completion> out)
{
    size_t n = 0;
    while (n < out.size()) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_peek_cqe(m_ring.get(), &cqe) != 0 || !cqe)
            break;
        out[n++] = { io_uring_cqe_get_data64(cqe), cqe->res };
        io_uring_cqe_seen(m_ring.get(), cqe);
        if (m_in_flight > 0)
            --m_in_flight;
    }
    return n;
}

Result<size_t> IoUring::wait(std::span<Completion> out)
{
    if (m_in_flight == 0 || out.empty())
        return size_t { 0 };
    for (;;) {
        io_uring_cqe* cqe = nullptr;
        int r = io_uring_submit_and_wait(m_ring.get(), 1);
        if (r >= 0 && io_uring_sq_ready(m_ring.get()) == 0)
            m_pending_iov.clear();
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            return Error::from_errno(ErrorKind::Io, "io_uring_enter (wait)", -r);
        if (io_uring_peek_cqe(m_ring.get(), &cqe) == 0 && cqe)
            return reap(out);
    }
}

} // namespace hako::block
