#include "devices/ide/ide_drive.h"

#include <algorithm>
#include <fmt/format.h>

#include "devices/ide/ata_regs.h"

namespace hako::devices::ide {

namespace {
constexpr uint64_t LBA28_MAX = 0x0fffffff;
constexpr uint16_t MAX_CYLINDERS = 16383;
constexpr uint8_t DEFAULT_HEADS = 16;
constexpr uint8_t DEFAULT_SPT = 63;

using Words = std::array<uint16_t, IDENTIFY_WORDS>;

/// ATA strings: two characters a word, the first in the high byte, padded with spaces.
void put_string(Words& w, size_t first_word, size_t words, std::string_view text)
{
    for (size_t i = 0; i < words * 2; ++i) {
        auto const c = static_cast<uint8_t>(i < text.size() ? text[i] : ' ');
        size_t const word = first_word + i / 2;
        w[word] = static_cast<uint16_t>(i % 2 == 0 ? (w[word] & 0x00ff) | (c << 8) : (w[word] & 0xff00) | c);
    }
}

void put_u32(Words& w, size_t word, uint64_t value)
{
    w[word] = static_cast<uint16_t>(value);
    w[word + 1] = static_cast<uint16_t>(value >> 16);
}
} // namespace

IdeDrive::IdeDrive(DriveKind kind, std::shared_ptr<block::BlockDevice> image, std::string serial, unsigned index,
                   DriveLink link)
    : m_kind(kind)
    , m_link(link)
    , m_image(std::move(image))
    , m_serial(serial.empty() ? fmt::format("HAKO{:04}", index) : std::move(serial))
    , m_sectors(m_image->size_bytes() / (kind == DriveKind::Cdrom ? CD_BLOCK : ATA_SECTOR))
{
    // The geometry BIOSes expect for LBA-era disks: 16 heads, 63 sectors, cylinders to cover the disk (capped).
    uint64_t const cyl = m_sectors / (DEFAULT_HEADS * DEFAULT_SPT);
    m_cylinders = static_cast<uint16_t>(std::clamp<uint64_t>(cyl, 1, MAX_CYLINDERS));
    m_heads = DEFAULT_HEADS;
    m_spt = DEFAULT_SPT;
    m_cur_heads = m_heads;
    m_cur_spt = m_spt;
}

void IdeDrive::reset()
{
    // Multiple mode, the logical geometry and the transfer mode survive a software reset unless the host disabled
    // reverting to defaults; hako keeps them (as SRST with reverting disabled), which hosts re-program anyway.
    m_sense_key = 0;
    m_sense_asc = 0;
    m_sense_ascq = 0;
}

bool IdeDrive::set_multiple(uint8_t count)
{
    if (count > MAX_MULTIPLE || (count & (count - 1)) != 0)
        return false;
    m_multiple = count;
    return true;
}

bool IdeDrive::set_geometry(uint8_t heads, uint8_t sectors_per_track)
{
    if (heads == 0 || heads > 16 || sectors_per_track == 0)
        return false;
    m_cur_heads = heads;
    m_cur_spt = sectors_per_track;
    return true;
}

uint64_t IdeDrive::chs_to_lba(uint16_t cylinder, uint8_t head, uint8_t sector) const
{
    if (sector == 0 || sector > m_cur_spt || head >= m_cur_heads)
        return UINT64_MAX;
    return (uint64_t { cylinder } * m_cur_heads + head) * m_cur_spt + (sector - 1u);
}

bool IdeDrive::set_transfer_mode(uint8_t mode)
{
    uint8_t const kind = mode & 0xf8;
    uint8_t const n = mode & 0x07;
    bool const ok = (kind == 0x00 && n <= 1) || (kind == 0x08 && n <= 4) || (kind == 0x20 && n <= 2)
        || (kind == 0x40 && n <= 5);
    if (ok)
        m_transfer_mode = mode;
    return ok;
}

std::array<uint8_t, IDENTIFY_WORDS * 2> IdeDrive::identify() const
{
    Words w {};
    uint8_t const mwdma = (m_transfer_mode & 0xf8) == 0x20 ? static_cast<uint8_t>(1u << (m_transfer_mode & 7)) : uint8_t { 0 };
    uint8_t const udma = (m_transfer_mode & 0xf8) == 0x40 ? static_cast<uint8_t>(1u << (m_transfer_mode & 7)) : uint8_t { 0 };
    put_string(w, 10, 10, m_serial);
    put_string(w, 23, 4, "1.0");
    w[49] = 0x0300;  // LBA and DMA supported
    w[53] = 0x0007;  // words 54-58, 64-70 and 88 valid
    w[63] = static_cast<uint16_t>(0x0007 | mwdma << 8); // multiword DMA 0-2 supported, the selected one
    w[64] = 0x0003;  // PIO modes 3 and 4
    w[65] = w[66] = w[67] = w[68] = 120; // cycle times (ns)
    w[80] = 0x007e;  // ATA-1 .. ATA/ATAPI-6
    w[88] = static_cast<uint16_t>(0x003f | udma << 8); // Ultra DMA 0-5 supported (the PIIX3 itself does none)
    if (m_kind == DriveKind::Cdrom) {
        // ATAPI, CD-ROM (type 5), removable, DRQ within 50 us of PACKET, 12-byte packets.
        w[0] = 0x8000 | 0x0500 | 0x0080 | 0x0040;
        put_string(w, 27, 20, "HAKO DVD-ROM");
        w[82] = 0x4210; // NOP, DEVICE RESET, PACKET
        w[83] = 0x4000;
        w[84] = 0x4000;
        w[85] = 0x4210;
        w[87] = 0x4000;
    } else {
        w[0] = 0x0040; // fixed device
        w[1] = m_cylinders;
        w[3] = m_heads;
        w[6] = m_spt;
        put_string(w, 27, 20, "HAKO HARDDISK");
        w[47] = 0x8000 | MAX_MULTIPLE;
        w[50] = 0x4000;
        // Current logical geometry and its capacity.
        uint64_t const cur_cyl = std::min<uint64_t>(m_sectors / (uint64_t { m_cur_heads } * m_cur_spt), 0xffff);
        w[54] = static_cast<uint16_t>(cur_cyl);
        w[55] = m_cur_heads;
        w[56] = m_cur_spt;
        put_u32(w, 57, cur_cyl * m_cur_heads * m_cur_spt);
        w[59] = static_cast<uint16_t>(m_multiple ? 0x0100 | m_multiple : 0);
        put_u32(w, 60, std::min(m_sectors, LBA28_MAX));
        uint16_t const cache = m_write_cache ? 0x0020 : 0;
        w[82] = 0x4020;         // NOP, write cache
        w[83] = 0x7400;         // FLUSH CACHE EXT, FLUSH CACHE, 48-bit addresses
        w[84] = 0x4000;
        w[85] = 0x4000 | cache; // write cache enabled
        w[86] = 0x3400;
        w[87] = 0x4000;
        put_u32(w, 100, m_sectors);
        put_u32(w, 102, m_sectors >> 32);
    }
    if (m_link == DriveLink::Serial) {
        // SATA capabilities (ATA8-ACS 7.16.7.48): Gen1 and Gen2 speeds; a disk also NCQ with a queue of NCQ_DEPTH.
        w[76] = 0x0006;
        if (m_kind == DriveKind::Disk) {
            w[75] = NCQ_DEPTH - 1;
            w[76] |= 0x0100;
        }
    }
    std::array<uint8_t, IDENTIFY_WORDS * 2> out {};
    for (size_t i = 0; i < IDENTIFY_WORDS; ++i) {
        out[2 * i] = static_cast<uint8_t>(w[i]);
        out[2 * i + 1] = static_cast<uint8_t>(w[i] >> 8);
    }
    // Word 255: signature 0xA5 and a checksum making all 512 bytes sum to 0 (mod 256).
    out[510] = 0xa5;
    uint8_t sum = 0;
    for (size_t i = 0; i < 511; ++i)
        sum = static_cast<uint8_t>(sum + out[i]);
    out[511] = static_cast<uint8_t>(0x100 - sum);
    return out;
}

} // namespace hako::devices::ide
