#include "devices/virtio/blk/request.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"
#include "block/block_device.h"

namespace hako::devices::virtio::blk {

std::string_view to_string(RequestError error)
{
    switch (error) {
    case RequestError::NoStatusByte:
        return "no device-writable status byte";
    case RequestError::HeaderTooShort:
        return "header shorter than 16 bytes";
    case RequestError::WrongDirection:
        return "data in the wrong direction";
    case RequestError::BadDataLength:
        return "bad data length";
    case RequestError::OutOfRange:
        return "sectors out of range";
    case RequestError::ReadOnly:
        return "write to a read-only disk";
    case RequestError::TooManySegments:
        return "too many segments";
    case RequestError::UnsupportedFlags:
        return "unsupported segment flags";
    case RequestError::UnsupportedType:
        return "unsupported request type";
    case RequestError::HostIo:
        return "host I/O error";
    }
    return "unknown";
}

namespace {

/// What running a request produced: its status and how many data bytes it wrote into the chain.
struct Outcome {
    uint8_t status;
    uint32_t data_written;
};

Outcome fail(BlkStats& stats, BlockRequest const& req, RequestError e, uint8_t status = VIRTIO_BLK_S_IOERR)
{
    ++stats.errors[static_cast<size_t>(e)];
    HAKO_WARN_RATELIMITED("virtio-blk: request type {} sector {} failed: {}", req.type, req.sector, to_string(e));
    return { status, 0 };
}

Outcome host_fail(BlkStats& stats, BlockRequest const& req, Error const& error)
{
    ++stats.errors[static_cast<size_t>(RequestError::HostIo)];
    HAKO_WARN_RATELIMITED("virtio-blk: request type {} sector {} failed: {}", req.type, req.sector, error.message());
    return { VIRTIO_BLK_S_IOERR, 0 };
}

/// The byte offset of `count` sectors at `sector`, if they lie inside `capacity` sectors.
std::optional<uint64_t> sector_range_offset(uint64_t sector, uint64_t count, uint64_t capacity)
{
    if (!range_within(sector, count, capacity))
        return std::nullopt;
    return checked_mul(sector, VIRTIO_BLK_SECTOR_SIZE);
}

/// The guest buffers holding `len` bytes of the readable (or writable) part of `chain`, starting `skip` bytes in.
std::vector<std::span<uint8_t>> data_spans(DescriptorChain const& chain, bool writable, uint64_t skip, uint64_t len)
{
    std::vector<std::span<uint8_t>> out;
    for (auto const& seg : chain.segments()) {
        if (seg.is_write != writable || len == 0)
            continue;
        auto bytes = seg.span.bytes();
        if (skip >= bytes.size()) {
            skip -= bytes.size();
            continue;
        }
        size_t take = static_cast<size_t>(std::min<uint64_t>(bytes.size() - skip, len));
        out.push_back(bytes.subspan(static_cast<size_t>(skip), take));
        len -= take;
        skip = 0;
    }
    return out;
}

/// What a type handler decided: finished (with an outcome) or I/O to do.
using Step = std::variant<Outcome, IoPlan>;

Step do_in(DescriptorChain const& chain, BlockRequest const& req, BlkConfig const& config, BlkStats& stats)
{
    if (req.readable_data_len != 0)
        return fail(stats, req, RequestError::WrongDirection);
    uint32_t const len = req.writable_data_len;
    if (len % VIRTIO_BLK_SECTOR_SIZE != 0)
        return fail(stats, req, RequestError::BadDataLength);
    auto offset = sector_range_offset(req.sector, len / VIRTIO_BLK_SECTOR_SIZE, config.capacity);
    if (!offset)
        return fail(stats, req, RequestError::OutOfRange);
    return IoPlan { req, IoOp::Read, *offset, len, data_spans(chain, true, 0, len) };
}

Step do_out(DescriptorChain const& chain, BlockRequest const& req, block::BlockDevice& disk, BlkConfig const& config,
    BlkStats& stats)
{
    if (req.writable_data_len != 0)
        return fail(stats, req, RequestError::WrongDirection);
    if (config.read_only || disk.read_only())
        return fail(stats, req, RequestError::ReadOnly);
    uint32_t const len = req.readable_data_len;
    if (len % VIRTIO_BLK_SECTOR_SIZE != 0)
        return fail(stats, req, RequestError::BadDataLength);
    auto offset = sector_range_offset(req.sector, len / VIRTIO_BLK_SECTOR_SIZE, config.capacity);
    if (!offset)
        return fail(stats, req, RequestError::OutOfRange);
    return IoPlan { req, IoOp::Write, *offset, len, data_spans(chain, false, VIRTIO_BLK_OUTHDR_SIZE, len) };
}

Step do_flush(BlockRequest const& req, BlkConfig const& config, BlkStats& stats)
{
    if (!config.flush)
        return fail(stats, req, RequestError::UnsupportedType, VIRTIO_BLK_S_UNSUPP);
    if (req.readable_data_len != 0 || req.writable_data_len != 0)
        return fail(stats, req, RequestError::WrongDirection);
    return IoPlan { req, IoOp::Flush, 0, 0, {} };
}

Outcome do_get_id(DescriptorChain const& chain, BlockRequest const& req, BlkConfig const& config, BlkStats& stats)
{
    if (req.readable_data_len != 0)
        return fail(stats, req, RequestError::WrongDirection);
    if (req.writable_data_len < VIRTIO_BLK_ID_BYTES)
        return fail(stats, req, RequestError::BadDataLength);
    size_t n = chain.write_to_chain(config.serial, 0);
    ++stats.get_ids;
    return { VIRTIO_BLK_S_OK, static_cast<uint32_t>(n) };
}

/// A DISCARD or WRITE_ZEROES segment, copied out of the chain.
struct DwzSegment {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

Outcome do_discard_write_zeroes(DescriptorChain const& chain, BlockRequest const& req, block::BlockDevice& disk,
    BlkConfig const& config, BlkStats& stats)
{
    bool const is_discard = req.type == VIRTIO_BLK_T_DISCARD;
    if (!(is_discard ? config.discard : config.write_zeroes))
        return fail(stats, req, RequestError::UnsupportedType, VIRTIO_BLK_S_UNSUPP);
    if (req.writable_data_len != 0)
        return fail(stats, req, RequestError::WrongDirection);
    if (config.read_only || disk.read_only())
        return fail(stats, req, RequestError::ReadOnly);
    uint32_t const len = req.readable_data_len;
    if (len == 0 || len % VIRTIO_BLK_DWZ_SEGMENT_SIZE != 0)
        return fail(stats, req, RequestError::BadDataLength);
    uint32_t const count = len / VIRTIO_BLK_DWZ_SEGMENT_SIZE;
    uint32_t max_seg = is_discard ? config.max_discard_seg : config.max_write_zeroes_seg;
    max_seg = std::clamp<uint32_t>(max_seg, 1, MAX_DWZ_SEGMENTS);
    if (count > max_seg)
        return fail(stats, req, RequestError::TooManySegments);
    uint32_t max_sectors = is_discard ? config.max_discard_sectors : config.max_write_zeroes_sectors;
    if (max_sectors == 0)
        max_sectors = UINT32_MAX;

    // Copy every segment out of guest memory and check all of them before doing anything.
    std::array<uint8_t, MAX_DWZ_SEGMENTS * VIRTIO_BLK_DWZ_SEGMENT_SIZE> raw {};
    if (chain.read_from_chain(std::span<uint8_t>(raw.data(), len), VIRTIO_BLK_OUTHDR_SIZE) != len)
        return fail(stats, req, RequestError::BadDataLength);
    std::array<DwzSegment, MAX_DWZ_SEGMENTS> segs {};
    for (uint32_t i = 0; i < count; ++i) {
        uint8_t const* p = raw.data() + size_t { i } * VIRTIO_BLK_DWZ_SEGMENT_SIZE;
        segs[i] = { get_le64(p), get_le32(p + 8), get_le32(p + 12) };
        if ((segs[i].flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0
            || (is_discard && (segs[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0))
            return fail(stats, req, RequestError::UnsupportedFlags, VIRTIO_BLK_S_UNSUPP);
        if (segs[i].num_sectors > max_sectors || !sector_range_offset(segs[i].sector, segs[i].num_sectors, config.capacity))
            return fail(stats, req, RequestError::OutOfRange);
    }

    for (uint32_t i = 0; i < count; ++i) {
        uint64_t const offset = segs[i].sector * VIRTIO_BLK_SECTOR_SIZE; // checked above
        uint64_t const bytes = uint64_t { segs[i].num_sectors } * VIRTIO_BLK_SECTOR_SIZE;
        if (is_discard) {
            auto r = disk.discard(offset, bytes);
            if (!r)
                return host_fail(stats, req, r.error());
            if (*r == block::DiscardOutcome::Ignored)
                ++stats.discards_ignored;
        } else {
            bool const unmap = (segs[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0 && config.write_zeroes_may_unmap;
            auto r = disk.write_zeroes(offset, bytes, unmap ? block::MayUnmap::Yes : block::MayUnmap::No);
            if (!r)
                return host_fail(stats, req, r.error());
        }
    }
    ++(is_discard ? stats.discards : stats.write_zeroes);
    return { VIRTIO_BLK_S_OK, 0 };
}

} // namespace

std::variant<BlockRequest, RequestError> BlockRequest::parse(DescriptorChain const& chain)
{
    if (chain.writable_len() == 0)
        return RequestError::NoStatusByte;
    if (chain.readable_len() < VIRTIO_BLK_OUTHDR_SIZE)
        return RequestError::HeaderTooShort;
    std::array<uint8_t, VIRTIO_BLK_OUTHDR_SIZE> header {};
    if (chain.read_from_chain(header, 0) != header.size())
        return RequestError::HeaderTooShort;
    BlockRequest req;
    req.type = get_le32(header.data());
    // header[4..8) is the reserved field (ioprio in legacy drivers): ignored.
    req.sector = get_le64(header.data() + 8);
    req.readable_data_len = chain.readable_len() - VIRTIO_BLK_OUTHDR_SIZE;
    req.writable_data_len = chain.writable_len() - 1;
    return req;
}

namespace {

/// Counts the outcome and writes the status byte (the last device-writable byte). \return the used length.
uint32_t finish(DescriptorChain const& chain, Outcome outcome, BlkStats& stats)
{
    switch (outcome.status) {
    case VIRTIO_BLK_S_OK:
        ++stats.status_ok;
        break;
    case VIRTIO_BLK_S_UNSUPP:
        ++stats.status_unsupp;
        break;
    default:
        ++stats.status_ioerr;
        break;
    }
    uint8_t const status[1] = { outcome.status };
    chain.write_to_chain(status, chain.writable_len() - 1);
    // The data bytes never include the status byte (it is outside writable_data_len), so this cannot overflow.
    return outcome.data_written + 1;
}

std::string_view op_name(IoOp op)
{
    switch (op) {
    case IoOp::Read:
        return "read";
    case IoOp::Write:
        return "write";
    case IoOp::Flush:
        return "flush";
    }
    return "?";
}

} // namespace

std::variant<FinishedRequest, IoPlan> prepare_request(DescriptorChain const& chain, block::BlockDevice& disk,
    BlkConfig const& config, BlkStats& stats)
{
    auto parsed = BlockRequest::parse(chain);
    if (auto const* error = std::get_if<RequestError>(&parsed)) {
        ++stats.errors[static_cast<size_t>(*error)];
        HAKO_WARN_RATELIMITED("virtio-blk: malformed request (head {}): {}", chain.head(), to_string(*error));
        if (*error == RequestError::NoStatusByte) {
            ++stats.unanswerable;
            return FinishedRequest { 0 };
        }
        return FinishedRequest { finish(chain, { VIRTIO_BLK_S_IOERR, 0 }, stats) };
    }
    auto const& req = std::get<BlockRequest>(parsed);
    Step step { Outcome { VIRTIO_BLK_S_IOERR, 0 } };
    switch (req.type) {
    case VIRTIO_BLK_T_IN:
        step = do_in(chain, req, config, stats);
        break;
    case VIRTIO_BLK_T_OUT:
        step = do_out(chain, req, disk, config, stats);
        break;
    case VIRTIO_BLK_T_FLUSH:
        step = do_flush(req, config, stats);
        break;
    case VIRTIO_BLK_T_GET_ID:
        step = do_get_id(chain, req, config, stats);
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        step = do_discard_write_zeroes(chain, req, disk, config, stats);
        break;
    default:
        step = fail(stats, req, RequestError::UnsupportedType, VIRTIO_BLK_S_UNSUPP);
        break;
    }
    if (auto* plan = std::get_if<IoPlan>(&step))
        return std::move(*plan);
    return FinishedRequest { finish(chain, std::get<Outcome>(step), stats) };
}

int64_t execute_plan(IoPlan const& plan, block::BlockDevice& disk)
{
    Result<void> r;
    switch (plan.op) {
    case IoOp::Read:
        r = disk.read_vectored(plan.offset, plan.buffers);
        break;
    case IoOp::Write: {
        std::vector<std::span<uint8_t const>> const bufs(plan.buffers.begin(), plan.buffers.end());
        r = disk.write_vectored(plan.offset, bufs);
        break;
    }
    case IoOp::Flush:
        r = disk.flush();
        break;
    }
    if (!r) {
        HAKO_WARN_RATELIMITED("virtio-blk: {}", r.error().message());
        int const err = r.error().sys_errno();
        return -int64_t { err > 0 ? err : EIO };
    }
    return plan.length;
}

uint32_t complete_request(DescriptorChain const& chain, IoPlan const& plan, int64_t result, BlkStats& stats)
{
    BlockRequest const& req = plan.request;
    if (result != int64_t { plan.length }) {
        ++stats.errors[static_cast<size_t>(RequestError::HostIo)];
        if (result < 0)
            HAKO_WARN_RATELIMITED("virtio-blk: request type {} sector {}: host {} of {} bytes at offset {} failed: {}",
                req.type, req.sector, op_name(plan.op), plan.length, plan.offset,
                std::strerror(static_cast<int>(-result)));
        else
            HAKO_WARN_RATELIMITED("virtio-blk: request type {} sector {}: host {} at offset {} moved {} of {} bytes",
                req.type, req.sector, op_name(plan.op), plan.offset, result, plan.length);
        return finish(chain, { VIRTIO_BLK_S_IOERR, 0 }, stats);
    }
    switch (plan.op) {
    case IoOp::Read:
        ++stats.reads;
        stats.bytes_read += plan.length;
        return finish(chain, { VIRTIO_BLK_S_OK, plan.length }, stats);
    case IoOp::Write:
        ++stats.writes;
        stats.bytes_written += plan.length;
        break;
    case IoOp::Flush:
        ++stats.flushes;
        break;
    }
    return finish(chain, { VIRTIO_BLK_S_OK, 0 }, stats);
}

uint32_t process_request(DescriptorChain const& chain, block::BlockDevice& disk, BlkConfig const& config, BlkStats& stats)
{
    auto prepared = prepare_request(chain, disk, config, stats);
    if (auto const* done = std::get_if<FinishedRequest>(&prepared))
        return done->used_len;
    auto const& plan = std::get<IoPlan>(prepared);
    return complete_request(chain, plan, execute_plan(plan, disk), stats);
}

} // namespace hako::devices::virtio::blk
