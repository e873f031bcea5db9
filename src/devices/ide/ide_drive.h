// IdeDrive: one device on an IDE channel, an ATA disk or an ATAPI CD-ROM, over a block::BlockDevice.
// What lives here is the device's own state and the parts that do not depend on the channel's registers:
// the IDENTIFY DEVICE / IDENTIFY PACKET DEVICE data (ATA/ATAPI-6 8.15, 8.16), the disk's CHS geometry and
// multiple count, and the ATAPI command set (atapi.cpp): a 12-byte packet in, a result out (data to send, a range
// of the medium to read, or sense data), with the sense kept for REQUEST SENSE.
//
// A CD-ROM is always read-only: its image is opened read-only and no ATAPI command writes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "block/block_device.h"

namespace hako::devices::ide {

enum class DriveKind : uint8_t { Disk, Cdrom };
/// The link a drive sits on: a parallel ATA cable (PIIX3 IDE) or a SATA port (AHCI), which IDENTIFY reports.
enum class DriveLink : uint8_t { Parallel, Serial };
/// The NCQ queue depth a SATA disk offers (IDENTIFY word 75 + 1): all 32 AHCI command slots.
constexpr unsigned NCQ_DEPTH = 32;

constexpr uint64_t ATA_SECTOR = 512;
constexpr uint64_t CD_BLOCK = 2048;
/// The largest READ/WRITE MULTIPLE block (sectors) the disk offers (IDENTIFY word 47).
constexpr uint8_t MAX_MULTIPLE = 16;
constexpr size_t IDENTIFY_WORDS = 256;
/// Size of the ATAPI command packet (IDENTIFY PACKET DEVICE word 0 bits 1:0 = 00).
constexpr size_t PACKET_SIZE = 12;

/// What an ATAPI packet asks the channel to do.
struct AtapiResult {
    enum class Kind : uint8_t {
        Done,  // no data phase, good status
        Data,  // send `data` to the host
        Read,  // send [offset, offset + length) of the medium to the host
        Error, // check condition: the sense was stored, the error register gets key << 4 | ABRT
    };
    Kind kind { Kind::Done };
    std::vector<uint8_t> data;
    uint64_t offset { 0 };
    uint64_t length { 0 };
    uint8_t sense_key { 0 };
};

class IdeDrive final {
public:
    /// \param serial up to 20 ASCII characters (IDENTIFY words 10-19); empty: derived from `index`
    IdeDrive(DriveKind kind, std::shared_ptr<block::BlockDevice> image, std::string serial, unsigned index,
             DriveLink link = DriveLink::Parallel);

    DriveKind kind() const { return m_kind; }
    DriveLink link() const { return m_link; }
    block::BlockDevice& image() const { return *m_image; }
    bool read_only() const { return m_kind == DriveKind::Cdrom || m_image->read_only(); }
    /// Addressable 512-byte sectors (disk) or 2048-byte blocks (CD-ROM).
    uint64_t sectors() const { return m_sectors; }

    // --- ATA disk state ---
    /// The IDENTIFY DEVICE (disk) or IDENTIFY PACKET DEVICE (CD-ROM) data as the 512 bytes the host reads.
    std::array<uint8_t, IDENTIFY_WORDS * 2> identify() const;
    /// SET MULTIPLE MODE: 0 disables, otherwise a power of two up to MAX_MULTIPLE. \return false if refused
    bool set_multiple(uint8_t count);
    /// Sectors per DRQ block of READ/WRITE MULTIPLE; 0 when multiple mode is off.
    uint8_t multiple() const { return m_multiple; }
    /// INITIALIZE DEVICE PARAMETERS: the logical geometry CHS addresses use. \return false if refused
    bool set_geometry(uint8_t heads, uint8_t sectors_per_track);
    /// A CHS address in the current geometry as an LBA; nullopt-like UINT64_MAX when it is not valid.
    uint64_t chs_to_lba(uint16_t cylinder, uint8_t head, uint8_t sector) const;
    /// SET FEATURES, set transfer mode (count register value). \return false if refused
    bool set_transfer_mode(uint8_t mode);
    void set_write_cache(bool on) { m_write_cache = on; }
    /// A device reset (power-on, SRST, DEVICE RESET): ATA/ATAPI-6 9.1 / 9.2.
    void reset();

    // --- ATAPI ---
    /// Runs a packet command. Reads are returned as a range of the medium; `Error` results leave the sense set.
    AtapiResult atapi_command(std::span<uint8_t const, PACKET_SIZE> cdb);
    /// Records a check condition for the next REQUEST SENSE.
    void set_sense(uint8_t key, uint8_t asc, uint8_t ascq = 0);
    uint8_t sense_key() const { return m_sense_key; }
    uint8_t sense_asc() const { return m_sense_asc; }

private:
    AtapiResult check_condition(uint8_t key, uint8_t asc, uint8_t ascq = 0);
    AtapiResult read_blocks(uint64_t lba, uint64_t count);
    AtapiResult request_sense(std::span<uint8_t const, PACKET_SIZE> cdb);
    AtapiResult inquiry(std::span<uint8_t const, PACKET_SIZE> cdb);
    AtapiResult mode_sense(std::span<uint8_t const, PACKET_SIZE> cdb);
    AtapiResult read_toc(std::span<uint8_t const, PACKET_SIZE> cdb);
    AtapiResult get_configuration(std::span<uint8_t const, PACKET_SIZE> cdb);
    AtapiResult get_event_status(std::span<uint8_t const, PACKET_SIZE> cdb);
    AtapiResult start_stop(std::span<uint8_t const, PACKET_SIZE> cdb);

    DriveKind const m_kind;
    DriveLink const m_link;
    std::shared_ptr<block::BlockDevice> m_image;
    std::string m_serial;
    uint64_t m_sectors;
    // Default (physical) CHS geometry and the logical one INITIALIZE DEVICE PARAMETERS sets.
    uint16_t m_cylinders;
    uint8_t m_heads;
    uint8_t m_spt;
    uint8_t m_cur_heads;
    uint8_t m_cur_spt;
    uint8_t m_multiple { 0 };
    uint8_t m_transfer_mode { 0 }; // SET FEATURES 03h value: 0x08|n PIO, 0x20|n MWDMA, 0x40|n UDMA
    bool m_write_cache { true };
    // ATAPI state.
    uint8_t m_sense_key { 0 };
    uint8_t m_sense_asc { 0 };
    uint8_t m_sense_ascq { 0 };
    bool m_prevent_removal { false };
    bool m_media_event { true }; // a "new media" event not yet reported by GET EVENT STATUS NOTIFICATION
};

} // namespace hako::devices::ide
