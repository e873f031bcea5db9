#include "devices/ide/ata_command.h"

#include "devices/ide/ata_regs.h"

namespace hako::devices::ide {

namespace {
constexpr uint32_t LBA48_MAX_SECTORS = 65536;
constexpr uint32_t LBA28_MAX_SECTORS = 256;

AtaAction complete() { return {}; }

AtaAction abort_with(uint8_t error = ERR_ABRT)
{
    AtaAction a;
    a.kind = AtaAction::Kind::Abort;
    a.error = error;
    return a;
}

AtaAction of_kind(AtaAction::Kind kind)
{
    AtaAction a;
    a.kind = kind;
    return a;
}

/// A read or write of the range the task file names, or IDNF when it leaves the disk.
AtaAction transfer(IdeDrive const& drive, AtaTaskFile const& tf, uint8_t command, AtaAction::Kind kind, bool dma,
                   uint32_t block_sectors)
{
    uint64_t lba = 0;
    uint64_t count = 0;
    ata_range(drive, tf, ata_is_lba48(command), lba, count);
    if (lba > drive.sectors() || count > drive.sectors() - lba)
        return abort_with(ERR_IDNF | ERR_ABRT);
    AtaAction a;
    a.kind = kind;
    a.dma = dma;
    a.block_sectors = block_sectors;
    a.lba = lba;
    a.count = count;
    return a;
}

AtaAction power_mode_active()
{
    AtaAction a;
    a.has_count_out = true;
    a.count_out = 0xff; // active or idle
    return a;
}

AtaAction execute_disk(IdeDrive& drive, uint8_t command, AtaTaskFile const& tf)
{
    using Kind = AtaAction::Kind;
    switch (command) {
    case cmd::IDENTIFY_DEVICE:
        return of_kind(Kind::Identify);
    case cmd::READ_SECTORS:
    case cmd::READ_SECTORS_NORETRY:
    case cmd::READ_SECTORS_EXT:
        return transfer(drive, tf, command, Kind::Read, false, 1);
    case cmd::READ_MULTIPLE:
    case cmd::READ_MULTIPLE_EXT:
        if (!drive.multiple())
            return abort_with();
        return transfer(drive, tf, command, Kind::Read, false, drive.multiple());
    case cmd::WRITE_SECTORS:
    case cmd::WRITE_SECTORS_NORETRY:
    case cmd::WRITE_SECTORS_EXT:
    case cmd::WRITE_MULTIPLE:
    case cmd::WRITE_MULTIPLE_EXT: {
        bool const multiple = command == cmd::WRITE_MULTIPLE || command == cmd::WRITE_MULTIPLE_EXT;
        if ((multiple && !drive.multiple()) || drive.read_only())
            return abort_with();
        return transfer(drive, tf, command, Kind::Write, false, multiple ? drive.multiple() : 1);
    }
    case cmd::READ_DMA:
    case cmd::READ_DMA_NORETRY:
    case cmd::READ_DMA_EXT:
        return transfer(drive, tf, command, Kind::Read, true, 1);
    case cmd::WRITE_DMA:
    case cmd::WRITE_DMA_NORETRY:
    case cmd::WRITE_DMA_EXT:
        if (drive.read_only())
            return abort_with();
        return transfer(drive, tf, command, Kind::Write, true, 1);
    case cmd::READ_VERIFY:
    case cmd::READ_VERIFY_NORETRY:
    case cmd::READ_VERIFY_EXT: {
        AtaAction a = transfer(drive, tf, command, Kind::Complete, false, 1);
        a.lba = a.count = 0;
        return a;
    }
    case cmd::FLUSH_CACHE:
    case cmd::FLUSH_CACHE_EXT:
        if (!drive.read_only() && !drive.image().flush()) {
            AtaAction a = abort_with();
            a.io_error = true;
            return a;
        }
        return complete();
    case cmd::SET_MULTIPLE_MODE:
        return drive.set_multiple(tf.cur[REG_COUNT]) ? complete() : abort_with();
    case cmd::INITIALIZE_DEVICE_PARAMETERS:
        return drive.set_geometry(static_cast<uint8_t>((tf.cur[REG_DEVICE] & 0x0f) + 1), tf.cur[REG_COUNT])
            ? complete()
            : abort_with();
    case cmd::SET_FEATURES:
        switch (tf.cur[REG_FEATURES]) {
        case feature::ENABLE_WRITE_CACHE:
            drive.set_write_cache(true);
            return complete();
        case feature::DISABLE_WRITE_CACHE:
            drive.set_write_cache(false);
            return complete();
        case feature::SET_TRANSFER_MODE:
            return drive.set_transfer_mode(tf.cur[REG_COUNT]) ? complete() : abort_with();
        case feature::ENABLE_READ_LOOKAHEAD:
        case feature::DISABLE_READ_LOOKAHEAD:
        case feature::ENABLE_REVERTING:
        case feature::DISABLE_REVERTING:
            return complete();
        default:
            return abort_with();
        }
    case cmd::CHECK_POWER_MODE:
        return power_mode_active();
    case cmd::SEEK:
    case cmd::STANDBY_IMMEDIATE:
    case cmd::IDLE_IMMEDIATE:
    case cmd::STANDBY:
    case cmd::IDLE:
    case cmd::SLEEP:
        return complete();
    default:
        if ((command & 0xf0) == cmd::RECALIBRATE)
            return complete();
        return abort_with();
    }
}

AtaAction execute_packet_device(IdeDrive& drive, uint8_t command, AtaTaskFile const& tf)
{
    using Kind = AtaAction::Kind;
    switch (command) {
    case cmd::IDENTIFY_PACKET_DEVICE:
        return of_kind(Kind::Identify);
    case cmd::PACKET: {
        AtaAction a = of_kind(Kind::Packet);
        a.dma = tf.cur[REG_FEATURES] & PACKET_DMA;
        return a;
    }
    case cmd::DEVICE_RESET:
        drive.reset();
        return of_kind(Kind::DeviceReset);
    case cmd::IDENTIFY_DEVICE:
        // A packet device aborts IDENTIFY DEVICE and shows its signature, so the host knows to use PACKET.
        return of_kind(Kind::Signature);
    case cmd::SET_FEATURES:
        if (tf.cur[REG_FEATURES] == feature::SET_TRANSFER_MODE)
            return drive.set_transfer_mode(tf.cur[REG_COUNT]) ? complete() : abort_with();
        return complete();
    case cmd::CHECK_POWER_MODE:
        return power_mode_active();
    case cmd::STANDBY_IMMEDIATE:
    case cmd::IDLE_IMMEDIATE:
    case cmd::SLEEP:
        return complete();
    default:
        return abort_with();
    }
}
} // namespace

bool ata_is_lba48(uint8_t command)
{
    switch (command) {
    case cmd::READ_SECTORS_EXT:
    case cmd::READ_DMA_EXT:
    case cmd::READ_MULTIPLE_EXT:
    case cmd::WRITE_SECTORS_EXT:
    case cmd::WRITE_DMA_EXT:
    case cmd::WRITE_MULTIPLE_EXT:
    case cmd::READ_VERIFY_EXT:
        return true;
    default:
        return false;
    }
}

void ata_range(IdeDrive const& drive, AtaTaskFile const& t, bool lba48, uint64_t& lba, uint64_t& count)
{
    if (lba48) {
        lba = uint64_t { t.hob[REG_LBA_HIGH] } << 40 | uint64_t { t.hob[REG_LBA_MID] } << 32
            | uint64_t { t.hob[REG_LBA_LOW] } << 24 | uint64_t { t.cur[REG_LBA_HIGH] } << 16
            | uint64_t { t.cur[REG_LBA_MID] } << 8 | t.cur[REG_LBA_LOW];
        count = uint64_t { t.hob[REG_COUNT] } << 8 | t.cur[REG_COUNT];
        if (count == 0)
            count = LBA48_MAX_SECTORS;
        return;
    }
    count = t.cur[REG_COUNT] ? t.cur[REG_COUNT] : LBA28_MAX_SECTORS;
    if (t.cur[REG_DEVICE] & DEV_LBA) {
        lba = uint64_t { t.cur[REG_DEVICE] & 0x0fu } << 24 | uint64_t { t.cur[REG_LBA_HIGH] } << 16
            | uint64_t { t.cur[REG_LBA_MID] } << 8 | t.cur[REG_LBA_LOW];
    } else {
        lba = drive.chs_to_lba(static_cast<uint16_t>(t.cur[REG_LBA_HIGH] << 8 | t.cur[REG_LBA_MID]),
            static_cast<uint8_t>(t.cur[REG_DEVICE] & 0x0f), t.cur[REG_LBA_LOW]);
    }
}

AtaAction ata_execute(IdeDrive& drive, uint8_t command, AtaTaskFile const& tf)
{
    if (command == cmd::EXECUTE_DEVICE_DIAGNOSTIC)
        return of_kind(AtaAction::Kind::Diagnostic);
    if (drive.kind() == DriveKind::Cdrom)
        return execute_packet_device(drive, command, tf);
    return execute_disk(drive, command, tf);
}

} // namespace hako::devices::ide
