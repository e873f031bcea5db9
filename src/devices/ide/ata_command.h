// The ATA command set as a device runs it, whatever carried the command to it: the PIIX3's task file registers
// (IdeChannel) or a SATA Register Host-to-Device FIS (the AHCI port, ahci_port.cpp). ata_execute() looks at the
// command and its task file and either finishes it (non-data commands: SET FEATURES, SET MULTIPLE MODE, FLUSH CACHE,
// power commands...) or says which data phase comes next (IDENTIFY data, a checked range of sectors to read or write,
// an ATAPI packet). The transport moves the data (PIO blocks, PRD tables, PRDT) and reports the status its way.
// ATA/ATAPI-6 (T13 1410D) for the commands; ATA8-ACS for the 48-bit forms.
#pragma once

#include <array>
#include <cstdint>

#include "devices/ide/ide_drive.h"

namespace hako::devices::ide {

/// The device's view of the task file: indexed by register offset 1-6 (features, count, LBA low, mid, high,
/// device); hob holds the previous (high-order) bytes of the 48-bit registers.
struct AtaTaskFile {
    std::array<uint8_t, 7> cur {};
    std::array<uint8_t, 7> hob {};
};

struct AtaAction {
    enum class Kind : uint8_t {
        Complete,    // no data phase: good status (count_out, when set, goes to the count register)
        Abort,       // status ERR, error register `error`
        Signature,   // a packet device aborting IDENTIFY DEVICE: show the signature, then abort
        DeviceReset, // DEVICE RESET of a packet device: reset, signature, no interrupt
        Diagnostic,  // EXECUTE DEVICE DIAGNOSTIC: both devices' signatures, an interrupt
        Identify,    // PIO data-in of IdeDrive::identify()
        Read,        // sectors [lba, lba + count) to the host
        Write,       // sectors [lba, lba + count) from the host
        Packet,      // ATAPI: a 12-byte command packet follows
    };
    Kind kind { Kind::Complete };
    uint8_t error { 0 };
    bool io_error { false };      // the image failed (FLUSH CACHE): counted by the transport
    bool dma { false };           // Read/Write: a DMA command (else PIO)
    uint32_t block_sectors { 1 }; // Read/Write by PIO: sectors per DRQ block (MULTIPLE commands)
    uint64_t lba { 0 };
    uint64_t count { 0 };
    bool has_count_out { false };
    uint8_t count_out { 0 };
};

/// Whether `command` takes a 48-bit LBA and 16-bit count (the EXT forms).
bool ata_is_lba48(uint8_t command);
/// The LBA and sector count a read/write command names (28-bit LBA or CHS, or 48-bit), unchecked.
void ata_range(IdeDrive const& drive, AtaTaskFile const& tf, bool lba48, uint64_t& lba, uint64_t& count);
/// Runs `command` on `drive` as far as it goes without a data phase; see AtaAction.
AtaAction ata_execute(IdeDrive& drive, uint8_t command, AtaTaskFile const& tf);

} // namespace hako::devices::ide
