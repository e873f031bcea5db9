// BlockDevice: what a virtual disk needs from its backing store, whatever the image format (raw: DiskImage,
// qcow2: Qcow2Image). Offsets and lengths are in bytes of the virtual disk; every implementation checks them
// against size_bytes() with overflow-checked arithmetic and fails the request (touching nothing) when they leave it.
//
// Thread safety: read_vectored, write_vectored and flush may be called from several threads at once; discard and
// write_zeroes are serialised by the caller (virtio-blk runs them under its own lock).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace hako::block {

/// How an image is opened.
enum class ReadOnly { No, Yes };
/// Whether write_zeroes() may deallocate the range (punch a hole) instead of writing zeros into it.
enum class MayUnmap { No, Yes };

/// What discard() did.
enum class DiscardOutcome {
    Punched, // the range was deallocated (it now reads as zeros)
    Ignored, // the host cannot deallocate: nothing was done (allowed: discarded data is undefined)
};

/// How write_zeroes() zeroed the range.
enum class ZeroOutcome {
    Punched,   // deallocated (a punched hole, or qcow2 zero clusters)
    ZeroRange, // FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
    Written,   // zero buffers written
};

class BlockDevice {
public:
    /// The sector size of the virtio-blk protocol (and of every offset the guest can name).
    static constexpr uint64_t SECTOR_SIZE = 512;

    virtual ~BlockDevice() = default;

    /// The file the device was opened from (the top of a backing chain).
    virtual std::string const& path() const = 0;
    virtual bool read_only() const = 0;
    /// Virtual size in bytes, fixed at open.
    virtual uint64_t size_bytes() const = 0;

    /// Reads into several buffers, back to back from `offset`.
    [[nodiscard]] virtual Result<void> read_vectored(uint64_t offset, std::span<std::span<uint8_t> const> bufs) = 0;
    /// Writes several buffers, back to back from `offset`.
    [[nodiscard]] virtual Result<void> write_vectored(uint64_t offset, std::span<std::span<uint8_t const> const> bufs)
        = 0;
    /// Everything written so far (data and the metadata that finds it) reaches stable storage.
    [[nodiscard]] virtual Result<void> flush() = 0;
    /// Deallocates [offset, offset+len) where the format and host can; otherwise does nothing and says so.
    [[nodiscard]] virtual Result<DiscardOutcome> discard(uint64_t offset, uint64_t len) = 0;
    /// Makes [offset, offset+len) read as zeros; with MayUnmap::Yes it may deallocate.
    [[nodiscard]] virtual Result<ZeroOutcome> write_zeroes(uint64_t offset, uint64_t len, MayUnmap may_unmap) = 0;
    /// A descriptor where virtual-disk offsets are file offsets (a raw image), for asynchronous I/O that bypasses
    /// this interface (block::IoUring); -1 when there is none (a format with its own mapping, such as qcow2).
    virtual int direct_fd() const { return -1; }

    /// Whole 512-byte sectors: a trailing partial sector is not addressable.
    uint64_t size_sectors() const { return size_bytes() / SECTOR_SIZE; }

protected:
    BlockDevice() = default;
    BlockDevice(BlockDevice const&) = delete;
    BlockDevice& operator=(BlockDevice const&) = delete;
};

} // namespace hako::block
