// DiskImage: a raw disk image (a regular file or a host block device) that a virtual disk reads and writes.
//
// The image is opened once, locked against other hako processes (and QEMU, which takes the same kind of lock) with
// an open file description lock on the whole file: a write lock for a read-write open, a read lock for a read-only
// one, so any number of VMs may share an image read-only but only one may write it, and never while others read
// it. The size is fixed at open: every offset and length is checked against it with overflow-checked arithmetic,
// so the image is never written outside [0, size), never truncated and never grown.
//
// I/O is synchronous (pread/pwrite and their vectored forms), retried on EINTR and short counts. flush() is
// fdatasync(): data a guest flushed has reached the host's disk. discard() punches a hole when the host file
// system can, and otherwise does nothing (discarded sectors may read back as anything). write_zeroes() uses
// FALLOC_FL_PUNCH_HOLE or FALLOC_FL_ZERO_RANGE when the host supports them and otherwise writes zero buffers in
// bounded chunks; afterwards the range always reads back as zeros.
//
// Asynchronous I/O is done by the owner through fd() and block::IoUring (io_uring.h), after the same checks.
//
// Other formats: qcow2.h; open_image() (image_format.h) picks one.
// Deliberately not done: O_DIRECT, resizing, and locking within one open description (a DiskImage may be used from
// several threads only for read/write/flush; its caller serialises the rest).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "block/block_device.h"

namespace hako::block {

class DiskImage final : public BlockDevice {
public:
    /// Opens and locks `path`. Fails with ErrorKind::Busy ("Disk image X is in use by another process") if another
    /// open description holds a conflicting lock, NotFound/Permission if it cannot be opened, Unsupported if it is
    /// neither a regular file nor a block device.
    [[nodiscard]] static Result<std::unique_ptr<DiskImage>> open(std::string const& path, ReadOnly ro);

    DiskImage(DiskImage const&) = delete;
    DiskImage& operator=(DiskImage const&) = delete;
    ~DiskImage() override = default;

    std::string const& path() const override { return m_path; }
    bool read_only() const override { return m_read_only == ReadOnly::Yes; }
    /// Size in bytes, fixed at open.
    uint64_t size_bytes() const override { return m_size; }
    /// Whole 512-byte sectors: a trailing partial sector is not addressable.
    uint64_t size_sectors() const { return m_size / SECTOR_SIZE; }
    /// The open descriptor, for asynchronous I/O (block::IoUring) the caller has range-checked with in_range()
    /// and, for writes, checked against read_only(). Owned by the DiskImage: never close it.
    int fd() const { return m_fd.get(); }
    int direct_fd() const override { return m_fd.get(); }
    /// True if [offset, offset+len) lies inside the image (overflow-checked).
    bool in_range(uint64_t offset, uint64_t len) const;

    /// Reads out.size() bytes at `offset`. Fails (reading nothing) if the range leaves the image.
    [[nodiscard]] Result<void> read_at(uint64_t offset, std::span<uint8_t> out);
    /// Writes in.size() bytes at `offset`. Fails (writing nothing) if the range leaves the image or it is read-only.
    [[nodiscard]] Result<void> write_at(uint64_t offset, std::span<uint8_t const> in);
    /// Reads into several buffers, back to back from `offset` (preadv).
    [[nodiscard]] Result<void> read_vectored(uint64_t offset, std::span<std::span<uint8_t> const> bufs) override;
    /// Writes several buffers, back to back from `offset` (pwritev).
    [[nodiscard]] Result<void> write_vectored(uint64_t offset, std::span<std::span<uint8_t const> const> bufs) override;
    /// fdatasync(): everything written so far reaches stable storage.
    [[nodiscard]] Result<void> flush() override;
    /// Deallocates [offset, offset+len) if the host can; otherwise does nothing and says so.
    [[nodiscard]] Result<DiscardOutcome> discard(uint64_t offset, uint64_t len) override;
    /// Makes [offset, offset+len) read as zeros; with MayUnmap::Yes it may punch a hole.
    [[nodiscard]] Result<ZeroOutcome> write_zeroes(uint64_t offset, uint64_t len, MayUnmap may_unmap) override;

private:
    DiskImage(std::string path, UniqueFd fd, uint64_t size, ReadOnly ro)
        : m_path(std::move(path)), m_fd(std::move(fd)), m_size(size), m_read_only(ro)
    {
    }
    [[nodiscard]] Result<void> check_range(uint64_t offset, uint64_t len, std::string_view what) const;
    [[nodiscard]] Result<void> check_writable(std::string_view what) const;
    /// fallocate(mode) on the range. \return false if the host does not support the mode (remembered in `supported`).
    [[nodiscard]] Result<bool> try_fallocate(int mode, uint64_t offset, uint64_t len, std::atomic<bool>& supported);
    [[nodiscard]] Result<void> write_zero_buffers(uint64_t offset, uint64_t len);

    std::string m_path;
    UniqueFd m_fd;
    uint64_t m_size;
    ReadOnly m_read_only;
    std::atomic<bool> m_punch_supported { true };      // cleared after EOPNOTSUPP from PUNCH_HOLE
    std::atomic<bool> m_zero_range_supported { true }; // cleared after EOPNOTSUPP from ZERO_RANGE
};

} // namespace hako::block
