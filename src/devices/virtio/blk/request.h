// virtio-blk request parsing and execution (VIRTIO 1.2 section 5.2.6, "Device Operation"), for a hostile driver.
//
// A request is one descriptor chain: a 16-byte header (le32 type, le32 reserved, le64 sector) at the start of
// the device-readable part, then the data (device-readable for OUT, DISCARD and WRITE_ZEROES; device-writable for
// IN and GET_ID), then one status byte, the last byte of the device-writable part. The chain has already been
// validated by Queue::pop() (every buffer inside guest memory, readable before writable); this file validates
// what the bytes say and runs the request against a block::BlockDevice.
//
// Two stages, so a device can run the disk I/O asynchronously (io_uring, see VirtioBlk): prepare_request() parses
// and checks everything and either finishes the request on the spot (malformed requests, GET_ID, DISCARD and
// WRITE_ZEROES, which are done synchronously) or returns an IoPlan for IN, OUT and FLUSH: the operation, the byte
// offset in the image, and the data buffers as host spans straight into guest memory (the chain's segments, each
// already checked by Queue::pop(); device-writable ones, which IN fills, always lie in RAM). Once the I/O is done,
// complete_request() turns its result (bytes transferred or -errno, the io_uring convention) into the status byte
// and the used length: a negative result or a short transfer is IOERR (counted as HostIo). process_request() is
// both stages with the I/O run synchronously in between (execute_plan()), so both paths share every check.
//
// Covered: IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES (any number of segments up to the configured maximum,
// each range-checked; flags other than UNMAP, and UNMAP on a DISCARD, give UNSUPP). Any other type gives UNSUPP.
// A malformed request (header too short, data in the wrong direction, data not a multiple of 512 bytes, sectors
// past the end, a write to a read-only disk, too many segments) completes with IOERR and touches nothing on the
// disk; a request without a device-writable byte cannot be answered and is returned with used length 0. Every
// outcome is counted in BlkStats and logged with a rate limit.
//
// Deliberately not done: asynchronous DISCARD/WRITE_ZEROES (rare, and fallocate has no vectored form), enforcing
// seg_max/size_max on the chain (a longer chain costs nothing extra: the queue already bounds it), the legacy
// VIRTIO_BLK_T_BARRIER/SCSI commands, GET_LIFETIME, SECURE_ERASE and zoned commands (all UNSUPP).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "devices/virtio/blk/blk_config.h"
#include "devices/virtio/queue.h"

namespace hako::block {
class BlockDevice;
}

namespace hako::devices::virtio::blk {

/// Why a request did not complete with VIRTIO_BLK_S_OK.
enum class RequestError : uint8_t {
    NoStatusByte,        // no device-writable byte: the request cannot be answered (used length 0)
    HeaderTooShort,      // fewer than 16 device-readable bytes
    WrongDirection,      // data in the direction the type does not use (e.g. readable data after an IN header)
    BadDataLength,       // IN/OUT data not a multiple of 512, GET_ID buffer under 20 bytes, bad segment array
    OutOfRange,          // sectors past the capacity (or overflowing), or a segment over the configured maximum
    ReadOnly,            // OUT, DISCARD or WRITE_ZEROES on a read-only disk
    TooManySegments,     // more DISCARD/WRITE_ZEROES segments than max_discard_seg / max_write_zeroes_seg
    UnsupportedFlags,    // a segment flag other than UNMAP, or UNMAP on a DISCARD
    UnsupportedType,     // a request type this device does not do (or did not offer)
    HostIo,              // the host read/write/flush/fallocate failed
};
constexpr size_t REQUEST_ERROR_COUNT = static_cast<size_t>(RequestError::HostIo) + 1;
std::string_view to_string(RequestError error);

/// Counters, per outcome and per type. Not thread-safe: owned by the device, updated under its lock.
struct BlkStats {
    uint64_t status_ok { 0 };
    uint64_t status_ioerr { 0 };
    uint64_t status_unsupp { 0 };
    uint64_t unanswerable { 0 }; // no status byte: returned with used length 0
    std::array<uint64_t, REQUEST_ERROR_COUNT> errors {};
    // Successful requests by type, and their data.
    uint64_t reads { 0 };
    uint64_t writes { 0 };
    uint64_t flushes { 0 };
    uint64_t get_ids { 0 };
    uint64_t discards { 0 };
    uint64_t write_zeroes { 0 };
    uint64_t bytes_read { 0 };
    uint64_t bytes_written { 0 };
    uint64_t discards_ignored { 0 }; // DISCARD segments the host could not punch (completed OK, nothing done)

    uint64_t error_count(RequestError e) const { return errors[static_cast<size_t>(e)]; }
};

/// The layout of one request in its chain, as far as the header and the lengths say.
struct BlockRequest {
    uint32_t type { 0 };
    uint64_t sector { 0 };
    uint32_t readable_data_len { 0 }; // device-readable bytes after the header
    uint32_t writable_data_len { 0 }; // device-writable bytes before the status byte

    /// Reads the header from the chain (a copy: the guest may change the buffer meanwhile).
    /// \return the request, or NoStatusByte / HeaderTooShort.
    static std::variant<BlockRequest, RequestError> parse(DescriptorChain const& chain);
};

/// The disk operation an IN, OUT or FLUSH request needs.
enum class IoOp : uint8_t { Read, Write, Flush };

/// A parsed and fully checked request whose only remaining work is the disk I/O.
struct IoPlan {
    BlockRequest request;
    IoOp op { IoOp::Flush };
    uint64_t offset { 0 }; // byte offset in the image (range-checked against the capacity)
    uint32_t length { 0 }; // data bytes to transfer (0 for FLUSH)
    /// The data segments, back to back, `length` bytes in all: guest memory the disk reads into (Read, always RAM)
    /// or writes from (Write). Valid while the chain is outstanding (guest memory stays mapped).
    std::vector<std::span<uint8_t>> buffers;
};

/// A request prepare_request() finished on the spot: its status byte is written (if it has one).
struct FinishedRequest {
    uint32_t used_len { 0 }; // for Queue::add_used()
};

/// Parses and checks one request. Finishes it at once if it is malformed or not an IN/OUT/FLUSH (DISCARD,
/// WRITE_ZEROES and GET_ID run synchronously here); otherwise returns the I/O it needs, with nothing written yet.
/// \param chain a chain popped from the request queue
/// \param disk the image behind the device
/// \param config the device's configuration (capacity, read-only, offered commands, limits, serial)
/// \param stats counters to update
std::variant<FinishedRequest, IoPlan> prepare_request(DescriptorChain const& chain, block::BlockDevice& disk,
    BlkConfig const& config, BlkStats& stats);

/// Runs a plan's I/O synchronously on `disk`. \return bytes transferred (0 for FLUSH), or -errno.
int64_t execute_plan(IoPlan const& plan, block::BlockDevice& disk);

/// Finishes a planned request once its I/O is done: writes the status byte into `chain` (OK if `result` is the
/// plan's length, else IOERR) and updates `stats`.
/// \param result bytes transferred, or -errno
/// \return the used length for Queue::add_used(): data bytes read into the chain plus the status byte.
uint32_t complete_request(DescriptorChain const& chain, IoPlan const& plan, int64_t result, BlkStats& stats);

/// Parses and runs one request synchronously, and writes its status byte.
/// \param chain a chain popped from the request queue
/// \param disk the image behind the device
/// \param config the device's configuration (capacity, read-only, offered commands, limits, serial)
/// \param stats counters to update
/// \return the used length for Queue::add_used(): data bytes written into the chain plus the status byte, or 0
///         if the chain has no device-writable byte.
uint32_t process_request(DescriptorChain const& chain, block::BlockDevice& disk, BlkConfig const& config, BlkStats& stats);

} // namespace hako::devices::virtio::blk
