#include "devices/virtio/blk/blk_config.h"

#include <algorithm>

#include "base/bytes.h"
#include "base/checked.h"
#include "block/block_device.h"

namespace hako::devices::virtio::blk {

namespace {

// Limits that keep one synchronous request short: a discard is a cheap hole punch, while a write-zeroes may
// fall back to writing zero buffers, so it gets a smaller range per request.
constexpr uint32_t DEFAULT_MAX_DISCARD_SECTORS = 1u << 22;      // 2 GiB per segment
constexpr uint32_t DEFAULT_MAX_DISCARD_SEG = 32;
constexpr uint32_t DEFAULT_DISCARD_SECTOR_ALIGNMENT = 8;        // 4 KiB: the host file system's block
constexpr uint32_t DEFAULT_MAX_WRITE_ZEROES_SECTORS = 1u << 16; // 32 MiB per segment
constexpr uint32_t DEFAULT_MAX_WRITE_ZEROES_SEG = 1;

uint64_t bit(unsigned b) { return uint64_t { 1 } << b; }

} // namespace

BlkConfig BlkConfig::for_disk(block::BlockDevice const& disk, BlkOptions const& options)
{
    BlkConfig c;
    c.capacity = disk.size_sectors();
    c.seg_max = options.seg_max;
    c.num_queues = std::max<uint16_t>(options.num_queues, 1);
    c.read_only = options.read_only || disk.read_only();
    c.flush = true;
    c.discard = options.discard && !c.read_only;
    c.write_zeroes = options.write_zeroes && !c.read_only;
    if (c.discard) {
        c.max_discard_sectors = DEFAULT_MAX_DISCARD_SECTORS;
        c.max_discard_seg = DEFAULT_MAX_DISCARD_SEG;
        c.discard_sector_alignment = DEFAULT_DISCARD_SECTOR_ALIGNMENT;
    }
    if (c.write_zeroes) {
        c.max_write_zeroes_sectors = DEFAULT_MAX_WRITE_ZEROES_SECTORS;
        c.max_write_zeroes_seg = DEFAULT_MAX_WRITE_ZEROES_SEG;
        c.write_zeroes_may_unmap = 1;
    }
    size_t n = std::min(options.serial.size(), c.serial.size());
    for (size_t i = 0; i < n; ++i)
        c.serial[i] = static_cast<uint8_t>(options.serial[i]);
    return c;
}

uint64_t BlkConfig::device_features() const
{
    uint64_t f = bit(VIRTIO_BLK_F_BLK_SIZE);
    if (size_max != 0)
        f |= bit(VIRTIO_BLK_F_SIZE_MAX);
    if (seg_max != 0)
        f |= bit(VIRTIO_BLK_F_SEG_MAX);
    if (read_only)
        f |= bit(VIRTIO_BLK_F_RO);
    if (flush)
        f |= bit(VIRTIO_BLK_F_FLUSH);
    if (num_queues > 1)
        f |= bit(VIRTIO_BLK_F_MQ);
    if (discard && !read_only)
        f |= bit(VIRTIO_BLK_F_DISCARD);
    if (write_zeroes && !read_only)
        f |= bit(VIRTIO_BLK_F_WRITE_ZEROES);
    return f;
}

std::array<uint8_t, VIRTIO_BLK_CONFIG_SIZE> BlkConfig::config_space() const
{
    std::array<uint8_t, VIRTIO_BLK_CONFIG_SIZE> b {};
    put_le64(&b[VIRTIO_BLK_CFG_CAPACITY], capacity);
    put_le32(&b[VIRTIO_BLK_CFG_SIZE_MAX], size_max);
    put_le32(&b[VIRTIO_BLK_CFG_SEG_MAX], seg_max);
    // Geometry and topology stay zero: VIRTIO_BLK_F_GEOMETRY and VIRTIO_BLK_F_TOPOLOGY are not offered.
    put_le32(&b[VIRTIO_BLK_CFG_BLK_SIZE], blk_size);
    b[VIRTIO_BLK_CFG_WRITEBACK] = writeback;
    put_le16(&b[VIRTIO_BLK_CFG_NUM_QUEUES], num_queues);
    put_le32(&b[VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS], max_discard_sectors);
    put_le32(&b[VIRTIO_BLK_CFG_MAX_DISCARD_SEG], max_discard_seg);
    put_le32(&b[VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT], discard_sector_alignment);
    put_le32(&b[VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS], max_write_zeroes_sectors);
    put_le32(&b[VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG], max_write_zeroes_seg);
    b[VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP] = write_zeroes_may_unmap;
    return b;
}

bool BlkConfig::read_config(uint64_t offset, std::span<uint8_t> out) const
{
    if (!range_within(offset, out.size(), VIRTIO_BLK_CONFIG_SIZE)) {
        std::fill(out.begin(), out.end(), uint8_t { 0xff });
        return false;
    }
    auto bytes = config_space();
    std::copy_n(bytes.begin() + static_cast<ptrdiff_t>(offset), out.size(), out.begin());
    return true;
}

} // namespace hako::devices::virtio::blk
