// virtio-blk constants and device configuration space (VIRTIO 1.2 section 5.2, "Block Device").
//
// Covers: the feature bits (section 5.2.3), request types and status values (section 5.2.6), struct
// virtio_blk_config (section 5.2.4) serialised little-endian up to write_zeroes_may_unmap and its padding
// (60 bytes), and BlkConfig: what one virtio-blk device tells the guest and how it handles requests (read-only,
// which optional commands it offers, limits, serial). The transport reads the config space through read_config()
// and offers device_features() next to its own bits (VIRTIO_F_VERSION_1, INDIRECT_DESC, EVENT_IDX).
//
// Deliberately not done: the config space is read-only (VIRTIO_BLK_F_CONFIG_WCE is not offered, so the writeback
// field cannot be changed: the device is always writeback with FLUSH); geometry and topology are not offered;
// secure erase, lifetime and zoned-device fields and commands are absent; capacity never changes at run time.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace hako::block {
class BlockDevice;
}

namespace hako::devices::virtio::blk {

// Feature bits (section 5.2.3).
constexpr unsigned VIRTIO_BLK_F_SIZE_MAX = 1;     // size_max is valid
constexpr unsigned VIRTIO_BLK_F_SEG_MAX = 2;      // seg_max is valid
constexpr unsigned VIRTIO_BLK_F_GEOMETRY = 4;     // geometry is valid
constexpr unsigned VIRTIO_BLK_F_RO = 5;           // the device is read-only
constexpr unsigned VIRTIO_BLK_F_BLK_SIZE = 6;     // blk_size is valid
constexpr unsigned VIRTIO_BLK_F_FLUSH = 9;        // VIRTIO_BLK_T_FLUSH is supported
constexpr unsigned VIRTIO_BLK_F_TOPOLOGY = 10;    // topology is valid
constexpr unsigned VIRTIO_BLK_F_CONFIG_WCE = 11;  // writeback can be toggled in config space
constexpr unsigned VIRTIO_BLK_F_MQ = 12;          // num_queues is valid (more than one request queue)
constexpr unsigned VIRTIO_BLK_F_DISCARD = 13;     // VIRTIO_BLK_T_DISCARD is supported
constexpr unsigned VIRTIO_BLK_F_WRITE_ZEROES = 14; // VIRTIO_BLK_T_WRITE_ZEROES is supported

// Request types (section 5.2.6).
constexpr uint32_t VIRTIO_BLK_T_IN = 0;
constexpr uint32_t VIRTIO_BLK_T_OUT = 1;
constexpr uint32_t VIRTIO_BLK_T_FLUSH = 4;
constexpr uint32_t VIRTIO_BLK_T_GET_ID = 8;
constexpr uint32_t VIRTIO_BLK_T_GET_LIFETIME = 10;
constexpr uint32_t VIRTIO_BLK_T_DISCARD = 11;
constexpr uint32_t VIRTIO_BLK_T_WRITE_ZEROES = 13;
constexpr uint32_t VIRTIO_BLK_T_SECURE_ERASE = 14;

// Status values, the last byte the device writes (section 5.2.6).
constexpr uint8_t VIRTIO_BLK_S_OK = 0;
constexpr uint8_t VIRTIO_BLK_S_IOERR = 1;
constexpr uint8_t VIRTIO_BLK_S_UNSUPP = 2;

/// struct virtio_blk_discard_write_zeroes flags: the only defined bit.
constexpr uint32_t VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
/// Length of the GET_ID answer: the serial, NUL-padded, not necessarily NUL-terminated.
constexpr size_t VIRTIO_BLK_ID_BYTES = 20;
/// Size of struct virtio_blk_outhdr: le32 type, le32 reserved, le64 sector.
constexpr uint32_t VIRTIO_BLK_OUTHDR_SIZE = 16;
/// Size of struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags.
constexpr uint32_t VIRTIO_BLK_DWZ_SEGMENT_SIZE = 16;
/// Sectors are always 512 bytes in the protocol, whatever blk_size says.
constexpr uint64_t VIRTIO_BLK_SECTOR_SIZE = 512;

// Byte offsets in struct virtio_blk_config (section 5.2.4).
constexpr uint64_t VIRTIO_BLK_CFG_CAPACITY = 0;                  // le64
constexpr uint64_t VIRTIO_BLK_CFG_SIZE_MAX = 8;                  // le32
constexpr uint64_t VIRTIO_BLK_CFG_SEG_MAX = 12;                  // le32
constexpr uint64_t VIRTIO_BLK_CFG_GEOMETRY_CYLINDERS = 16;       // le16
constexpr uint64_t VIRTIO_BLK_CFG_GEOMETRY_HEADS = 18;           // u8
constexpr uint64_t VIRTIO_BLK_CFG_GEOMETRY_SECTORS = 19;         // u8
constexpr uint64_t VIRTIO_BLK_CFG_BLK_SIZE = 20;                 // le32
constexpr uint64_t VIRTIO_BLK_CFG_PHYSICAL_BLOCK_EXP = 24;       // u8
constexpr uint64_t VIRTIO_BLK_CFG_ALIGNMENT_OFFSET = 25;         // u8
constexpr uint64_t VIRTIO_BLK_CFG_MIN_IO_SIZE = 26;              // le16
constexpr uint64_t VIRTIO_BLK_CFG_OPT_IO_SIZE = 28;              // le32
constexpr uint64_t VIRTIO_BLK_CFG_WRITEBACK = 32;                // u8
constexpr uint64_t VIRTIO_BLK_CFG_NUM_QUEUES = 34;               // le16
constexpr uint64_t VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS = 36;      // le32
constexpr uint64_t VIRTIO_BLK_CFG_MAX_DISCARD_SEG = 40;          // le32
constexpr uint64_t VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT = 44; // le32
constexpr uint64_t VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS = 48; // le32
constexpr uint64_t VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG = 52;     // le32
constexpr uint64_t VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP = 56;   // u8, then 3 bytes of padding
/// Bytes of config space this device exposes (through unused1[3]; the secure erase fields are not offered).
constexpr size_t VIRTIO_BLK_CONFIG_SIZE = 60;

/// Hard cap on segments in one DISCARD/WRITE_ZEROES request, whatever the config says (Linux sends at most 256):
/// bounds what one request can make the device copy and do.
constexpr uint32_t MAX_DWZ_SEGMENTS = 256;

/// What the VMM's user chooses for one disk.
struct BlkOptions {
    bool read_only { false };        // offer VIRTIO_BLK_F_RO and refuse writes, even on a read-write image
    bool discard { true };           // offer DISCARD (ignored when read-only)
    bool write_zeroes { true };      // offer WRITE_ZEROES (ignored when read-only)
    std::string serial;              // GET_ID answer; longer than 20 bytes is cut
    uint32_t seg_max { 126 };        // data segments per request: Queue Size - 2 (header and status)
    uint16_t num_queues { 1 };       // VIRTIO_BLK_F_MQ is offered when > 1
};

/// Everything one virtio-blk device tells the guest, plus how it serves requests.
struct BlkConfig {
    // struct virtio_blk_config fields, host byte order.
    uint64_t capacity { 0 };   // in 512-byte sectors
    uint32_t size_max { 0 };   // 0: VIRTIO_BLK_F_SIZE_MAX not offered
    uint32_t seg_max { 0 };    // 0: VIRTIO_BLK_F_SEG_MAX not offered
    uint32_t blk_size { 512 }; // logical block size (VIRTIO_BLK_F_BLK_SIZE)
    uint8_t writeback { 1 };   // informational: always writeback with FLUSH
    uint16_t num_queues { 1 };
    uint32_t max_discard_sectors { 0 };
    uint32_t max_discard_seg { 0 };
    uint32_t discard_sector_alignment { 0 };
    uint32_t max_write_zeroes_sectors { 0 };
    uint32_t max_write_zeroes_seg { 0 };
    uint8_t write_zeroes_may_unmap { 0 };

    // Device behaviour (not in config space).
    bool read_only { false };
    bool flush { true };
    bool discard { false };
    bool write_zeroes { false };
    std::array<uint8_t, VIRTIO_BLK_ID_BYTES> serial {};

    /// The configuration for `disk` with `options`: capacity from the image size, read-only if either the image
    /// or the options say so, discard/write-zeroes limits sized for synchronous I/O.
    static BlkConfig for_disk(block::BlockDevice const& disk, BlkOptions const& options);

    /// The VIRTIO_BLK_F_* bits this configuration implies (transport bits not included).
    uint64_t device_features() const;
    /// struct virtio_blk_config as the guest sees it, little-endian.
    std::array<uint8_t, VIRTIO_BLK_CONFIG_SIZE> config_space() const;
    /// Copies config space bytes [offset, offset+out.size()) into `out`.
    /// \return false, with `out` filled with 0xff (open bus), if the range is not inside the config space.
    bool read_config(uint64_t offset, std::span<uint8_t> out) const;
};

} // namespace hako::devices::virtio::blk
