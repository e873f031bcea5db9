// The ATAPI CD-ROM's packet commands (IdeDrive::atapi_command): SPC-3 and MMC-5 as a data-only CD-ROM answers them.
// Responses are built whole (they are small) and cut to the allocation length; reads return a range of the image
// for the channel to stream, so no request allocates more than a few hundred bytes.
// Deliberately not modelled: medium changes (an eject is accepted and the medium stays, so UNIT ATTENTION is never
// raised; GET EVENT STATUS NOTIFICATION reports "new media" once), VPD pages, MODE SELECT, MODE SENSE(6), READ TOC
// formats 2-5, audio and CD-DA reads (READ CD), writing.
#include <algorithm>

#include "devices/ide/ata_regs.h"
#include "devices/ide/ide_drive.h"

namespace hako::devices::ide {

namespace {
uint32_t be16(std::span<uint8_t const> b, size_t at) { return static_cast<uint32_t>(b[at] << 8 | b[at + 1]); }
uint32_t be32(std::span<uint8_t const> b, size_t at)
{
    return static_cast<uint32_t>(b[at]) << 24 | static_cast<uint32_t>(b[at + 1]) << 16
        | static_cast<uint32_t>(b[at + 2]) << 8 | b[at + 3];
}
void put_be16(std::vector<uint8_t>& v, size_t at, uint32_t x)
{
    v[at] = static_cast<uint8_t>(x >> 8);
    v[at + 1] = static_cast<uint8_t>(x);
}
void put_be32(std::vector<uint8_t>& v, size_t at, uint64_t x)
{
    for (size_t i = 0; i < 4; ++i)
        v[at + i] = static_cast<uint8_t>(x >> (24 - 8 * i));
}
void push_be16(std::vector<uint8_t>& v, uint32_t x)
{
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
}
void push_be32(std::vector<uint8_t>& v, uint32_t x)
{
    push_be16(v, x >> 16);
    push_be16(v, x & 0xffff);
}
/// A TOC address: an LBA, or with MSF the minute/second/frame of LBA + 150 (the 2-second pregap).
void push_address(std::vector<uint8_t>& v, uint64_t lba, bool msf)
{
    if (!msf) {
        push_be32(v, static_cast<uint32_t>(lba));
        return;
    }
    uint64_t const f = lba + 150;
    v.push_back(0);
    v.push_back(static_cast<uint8_t>(std::min<uint64_t>(f / (75 * 60), 0xff)));
    v.push_back(static_cast<uint8_t>(f / 75 % 60));
    v.push_back(static_cast<uint8_t>(f % 75));
}
AtapiResult data(std::vector<uint8_t> bytes, uint32_t alloc_len)
{
    AtapiResult r;
    r.kind = AtapiResult::Kind::Data;
    if (bytes.size() > alloc_len)
        bytes.resize(alloc_len);
    if (bytes.empty())
        r.kind = AtapiResult::Kind::Done;
    r.data = std::move(bytes);
    return r;
}
constexpr uint8_t CONTROL_DATA_TRACK = 0x14; // ADR 1 (position), control 4 (data track)
constexpr uint8_t LEADOUT_TRACK = 0xaa;
constexpr uint16_t PROFILE_CDROM = 0x0008;
} // namespace

void IdeDrive::set_sense(uint8_t key, uint8_t asc, uint8_t ascq)
{
    m_sense_key = key;
    m_sense_asc = asc;
    m_sense_ascq = ascq;
}

AtapiResult IdeDrive::check_condition(uint8_t key, uint8_t asc, uint8_t ascq)
{
    set_sense(key, asc, ascq);
    AtapiResult r;
    r.kind = AtapiResult::Kind::Error;
    r.sense_key = key;
    return r;
}

AtapiResult IdeDrive::atapi_command(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    uint8_t const op = cdb[0];
    if (op != scsi::REQUEST_SENSE)
        set_sense(sense::NO_SENSE, 0);
    switch (op) {
    case scsi::TEST_UNIT_READY:
    case scsi::SEEK_10:
    case scsi::SET_CD_SPEED:
        return {};
    case scsi::REQUEST_SENSE:
        return request_sense(cdb);
    case scsi::INQUIRY:
        return inquiry(cdb);
    case scsi::START_STOP_UNIT:
        return start_stop(cdb);
    case scsi::PREVENT_ALLOW:
        m_prevent_removal = cdb[4] & 1;
        return {};
    case scsi::READ_CAPACITY: {
        std::vector<uint8_t> out(8);
        put_be32(out, 0, m_sectors ? std::min<uint64_t>(m_sectors - 1, 0xffffffff) : 0);
        put_be32(out, 4, CD_BLOCK);
        return data(std::move(out), 8);
    }
    case scsi::READ_10:
        return read_blocks(be32(cdb, 2), be16(cdb, 7));
    case scsi::READ_12:
        return read_blocks(be32(cdb, 2), be32(cdb, 6));
    case scsi::MODE_SENSE_10:
        return mode_sense(cdb);
    case scsi::READ_TOC:
        return read_toc(cdb);
    case scsi::GET_CONFIGURATION:
        return get_configuration(cdb);
    case scsi::GET_EVENT_STATUS:
        return get_event_status(cdb);
    default:
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_OPCODE);
    }
}

AtapiResult IdeDrive::read_blocks(uint64_t lba, uint64_t count)
{
    if (lba > m_sectors || count > m_sectors - lba)
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_LBA_OUT_OF_RANGE);
    AtapiResult r;
    if (count == 0)
        return r;
    r.kind = AtapiResult::Kind::Read;
    r.offset = lba * CD_BLOCK;
    r.length = count * CD_BLOCK;
    return r;
}

AtapiResult IdeDrive::request_sense(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    std::vector<uint8_t> out(18);
    out[0] = 0x70; // current error, fixed format
    out[2] = m_sense_key;
    out[7] = 10; // additional sense length
    out[12] = m_sense_asc;
    out[13] = m_sense_ascq;
    set_sense(sense::NO_SENSE, 0);
    return data(std::move(out), cdb[4]);
}

AtapiResult IdeDrive::inquiry(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    if (cdb[1] & 1) // EVPD: no vital product data pages
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB);
    std::vector<uint8_t> out(36, ' ');
    out[0] = 0x05; // CD/DVD device
    out[1] = 0x80; // removable medium
    out[2] = 0x00; // no claimed SPC version (ATAPI devices report 0)
    out[3] = 0x21; // ATAPI version 2, response data format 1
    out[4] = 31;   // additional length
    out[5] = out[6] = out[7] = 0;
    std::string_view const id = "HAKO    HAKO DVD-ROM    1.0 ";
    std::copy(id.begin(), id.end(), out.begin() + 8);
    return data(std::move(out), be16(cdb, 3));
}

AtapiResult IdeDrive::start_stop(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    bool const load_eject = cdb[4] & 2;
    bool const start = cdb[4] & 1;
    if (load_eject && !start && m_prevent_removal)
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_REMOVAL_PREVENTED, 0x02);
    // An eject is accepted, but the medium stays: there is no tray to open.
    return {};
}

AtapiResult IdeDrive::mode_sense(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    uint8_t const page = cdb[2] & 0x3f;
    uint8_t const control = cdb[2] >> 6;
    if (control == 3)
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_SAVING_NOT_SUPPORTED);
    bool const changeable = control == 1;
    std::vector<uint8_t> out(8); // mode parameter header (10), no block descriptors
    out[2] = 0x01;               // medium type: 120 mm data CD
    auto add_page = [&](uint8_t code, std::initializer_list<uint8_t> body) {
        out.push_back(code);
        out.push_back(static_cast<uint8_t>(body.size()));
        for (uint8_t b : body)
            out.push_back(changeable ? 0 : b);
    };
    bool const all = page == 0x3f;
    if (page == 0x01 || all) // read/write error recovery
        add_page(0x01, { 0x00, 5, 0, 0, 0, 0, 0, 0, 0, 0 });
    if (page == 0x2a || all) // MM capabilities and mechanical status
        add_page(0x2a, { 0x3b, 0x00, 0x71, 0x60, 0x29, 0x00, 0x02, 0xc2, 0x00, 0x02, 0x02, 0x00, 0x02, 0xc2, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x00 });
    if (out.size() == 8)
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB);
    put_be16(out, 0, static_cast<uint32_t>(out.size() - 2));
    return data(std::move(out), be16(cdb, 7));
}

AtapiResult IdeDrive::read_toc(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    bool const msf = cdb[1] & 2;
    uint8_t format = cdb[2] & 0x0f;
    if (format == 0)
        format = cdb[9] >> 6; // the older place (SFF-8020i)
    uint8_t const start_track = cdb[6];
    std::vector<uint8_t> out(4);
    out[2] = 1;
    out[3] = 1;
    switch (format) {
    case 0: // TOC: track 1 from LBA 0, and the lead-out
        if (start_track > 1 && start_track != LEADOUT_TRACK)
            return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB);
        if (start_track <= 1) {
            out.insert(out.end(), { 0, CONTROL_DATA_TRACK, 1, 0 });
            push_address(out, 0, msf);
        }
        out.insert(out.end(), { 0, CONTROL_DATA_TRACK, LEADOUT_TRACK, 0 });
        push_address(out, m_sectors, msf);
        break;
    case 1: // session information: one session, its first track at LBA 0
        out.insert(out.end(), { 0, CONTROL_DATA_TRACK, 1, 0 });
        push_address(out, 0, msf);
        break;
    default:
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB);
    }
    put_be16(out, 0, static_cast<uint32_t>(out.size() - 2));
    return data(std::move(out), be16(cdb, 7));
}

AtapiResult IdeDrive::get_configuration(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    uint8_t const rt = cdb[1] & 3;
    uint32_t const start = be16(cdb, 2);
    if (rt == 3)
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB);
    std::vector<uint8_t> out(8);
    put_be16(out, 6, PROFILE_CDROM);
    // Every feature here is current and persistent; rt 2 asks for exactly the starting one.
    auto feature = [&](uint16_t code, uint8_t version, std::initializer_list<uint8_t> body) {
        if (code < start || (rt == 2 && code != start))
            return;
        push_be16(out, code);
        out.push_back(static_cast<uint8_t>(version << 2 | 0x03));
        out.push_back(static_cast<uint8_t>(body.size()));
        out.insert(out.end(), body);
    };
    feature(0x0000, 0, { 0x00, 0x08, 0x01, 0x00 });            // profile list: CD-ROM, current
    feature(0x0001, 1, { 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00 }); // core: ATAPI
    feature(0x0003, 0, { 0x29, 0x00, 0x00, 0x00 });            // removable medium: tray, eject, lock
    feature(0x0010, 0, { 0x00, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00 }); // random readable: 2048, blocking 1
    feature(0x001e, 0, { 0x00, 0x00, 0x00, 0x00 });            // CD read
    put_be32(out, 0, out.size() - 4);
    return data(std::move(out), be16(cdb, 7));
}

AtapiResult IdeDrive::get_event_status(std::span<uint8_t const, PACKET_SIZE> cdb)
{
    if (!(cdb[1] & 1)) // only polled operation
        return check_condition(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD_IN_CDB);
    constexpr uint8_t MEDIA_CLASS = 0x10;
    std::vector<uint8_t> out(4);
    out[3] = MEDIA_CLASS; // supported classes
    if (cdb[4] & MEDIA_CLASS) {
        out[2] = 4; // media event class
        out.push_back(m_media_event ? 2 : 0); // new media / no change
        out.push_back(0x02);                  // media present, door closed
        out.push_back(0);
        out.push_back(0);
        m_media_event = false;
    } else {
        out[2] = 0x80; // no event available
    }
    put_be16(out, 0, static_cast<uint32_t>(out.size() - 2));
    return data(std::move(out), be16(cdb, 7));
}

} // namespace hako::devices::ide
