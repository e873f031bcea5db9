// virtio-blk request parsing and execution (VIRTIO 1.2 section 5.2.6, "Device Operation"), for a hostile driver.
//
// A request is one descriptor chain: a 16-byte header (le32 type, le32 reserved, le64 sector) at the start of
// the device-readable part, then the data (device-readable for OUT, DISCARD and WRITE_ZEROES; device-writable for
// IN and GET_ID), then one status byte, the last byte of the device-writable part. The chain has already been
// validated by Queue::pop() (every buffer inside guest memory, readable before writable); this file validates
// what the bytes say and runs the request synchronously against a block::DiskImage.
//
// Covered: IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES (any number of segments up to the configured maximum,
// each range-checked; flags other than UNMAP, and UNMAP on a DISCARD, give UNSUPP). Any other type gives UNSUPP.
// A malformed request (header too short, data in the wrong direction, data not a multiple of 512 bytes, sectors
// past the end, a write to a read-only disk, too many segments) completes with IOERR and touches nothing on the
// disk; a request without a device-writable byte cannot be answered and is returned with used length 0. Every
// outcome is counted in BlkStats and logged with a rate limit.
//
// Deliberately not done: asynchronous I/O (each request runs to completion in process_request), enforcing
// seg_max/size_max on the chain (a longer chain costs nothing extra: the queue already bounds it), the legacy
// VIRTIO_BLK_T_BARRIER/SCSI commands, GET_LIFETIME, SECURE_ERASE and zoned commands (all UNSUPP).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <variant>

#include "devices/virtio/blk/blk_config.h"
#include "devices/virtio/queue.h"

namespace hako::block {
class DiskImage;
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

/// Parses and runs one request, and writes its status byte.
/// \param chain a chain popped from the request queue
/// \param disk the image behind the device
/// \param config the device's configuration (capacity, read-only, offered commands, limits, serial)
/// \param stats counters to update
/// \return the used length for Queue::add_used(): data bytes written into the chain plus the status byte, or 0
///         if the chain has no device-writable byte.
uint32_t process_request(DescriptorChain const& chain, block::DiskImage& disk, BlkConfig const& config, BlkStats& stats);

} // namespace hako::devices::virtio::blk
