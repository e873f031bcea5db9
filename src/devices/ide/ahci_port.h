// AhciPort: one port of the AHCI HBA (AHCI 1.3, 3.3 and 5) with at most one SATA device on it, an ATA disk or an
// ATAPI CD-ROM (an IdeDrive with DriveLink::Serial). It owns the port registers and runs the command list:
// when software sets bits in PxCI (with PxCMD.ST set), each slot's command header is read, its command table's
// Register H2D FIS is decoded, the ATA command runs through ata_execute() (the same command logic as the PIIX3
// IDE; PACKET goes to IdeDrive::atapi_command()), data moves through the PRDT, and the device's answer is posted
// in the received-FIS area (D2H Register FIS; a PIO Setup FIS for PIO-protocol commands; a Set Device Bits FIS
// completing NCQ commands, READ/WRITE FPDMA QUEUED, which clears their PxSACT bits).
//
// Everything runs synchronously in the write to PxCI (or PxCMD.ST) on the vCPU thread that made it, like the IDE
// model: a command is complete, and its PxCI bit clear, when that write returns. NCQ commands are accepted and
// completed one after another in slot order; the Set Device Bits FIS then carries one tag each. A failed NCQ
// command is reported as a non-queued error is (D2H FIS with ERR, PxIS.TFES, the port halted; a real device sends
// a Set Device Bits FIS with ERR), and READ LOG EXT page 10h names its tag.
//
// Hostile-guest rules: the command list, command tables, PRDT entries and received-FIS area are read and written
// only through GuestMemory; the PRDT walk stops at PRDTL entries or when the transfer is covered; every data
// buffer is checked to lie in RAM before any I/O (a bad one sets PxIS.HBFS, a PRDT too small for the transfer
// PxIS.OFS); every sector range is checked against the image; a device error sets PxIS.TFES and PxTFD.ERR. After
// any of these the port stops processing commands (PxCI keeps the failed slot, PxCMD.CCS names it) until
// software clears PxCMD.ST, as AHCI 1.3 6.2.2 describes. Nothing a guest does reaches the host beyond its image.
//
// Deliberately not modelled: port multipliers and FIS-based switching, the DMA Setup FIS and First-Party DMA
// outside NCQ, interface power management (partial/slumber: PxSCTL.IPM is stored, PxSSTS.IPM stays active), hot
// plug and cold presence, command completion coalescing, enclosure management, staggered spin-up (PxCMD.SUD and
// POD read 1), BIST. PxSERR is never set (the link has no errors).
//
// Not thread-safe: the Ahci function serialises every call under its lock.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "devices/ide/ata_command.h"
#include "devices/ide/ide_drive.h"
#include "memory/guest_memory.h"

namespace hako::devices::ide {

struct AhciStats {
    uint64_t commands { 0 };
    uint64_t ncq_commands { 0 };
    uint64_t task_file_errors { 0 }; // commands ended with ERR (PxIS.TFES)
    uint64_t io_errors { 0 };        // the image failed a read, write or flush
    uint64_t bad_tables { 0 };       // command headers, tables, PRDTs or buffers outside RAM, or too short
    uint64_t bad_accesses { 0 };     // register accesses that were dropped
};

class AhciPort final {
public:
    /// \param drive the device on the port, or nullptr for an empty port
    AhciPort(memory::GuestMemory const& mem, std::shared_ptr<IdeDrive> drive, AhciStats& stats);

    IdeDrive* drive() const { return m_drive.get(); }
    /// A port register at `reg` (offset within the port's 0x80 bytes).
    uint32_t read(uint32_t reg) const;
    void write(uint32_t reg, uint32_t value);
    /// Whether the HBA may master the bus (PCI command register); commands wait in PxCI while it may not.
    void set_bus_master(bool enabled) { m_bus_master = enabled; }
    /// Interrupt causes the port signals: PxIS & PxIE.
    uint32_t pending() const { return m_is & m_ie; }
    /// HBA reset (GHC.HR) or power-on: the port's registers and its device back to their reset state.
    void reset();

private:
    struct Header {
        uint32_t flags { 0 }; // DW0: CFL, A, W, P, R, B, C, PMP, PRDTL
        uint64_t table { 0 }; // CTBA
    };
    struct Segment {
        memory::GuestAddr addr;
        uint32_t len;
    };
    enum class Outcome : uint8_t { Done, Halt };

    bool present() const { return m_drive != nullptr; }
    /// Device reset (COMRESET, power-on, SRST): the signature in PxSIG/PxTFD and, with FRE, the D2H FIS.
    void reset_device();
    void set_cmd(uint32_t value);
    void issue(uint32_t bits);
    void process();
    Outcome run_slot(unsigned slot);
    Outcome run_ata(unsigned slot, Header const& header, AtaTaskFile const& tf, uint8_t command);
    Outcome run_ncq(unsigned slot, Header const& header, AtaTaskFile const& tf, uint8_t command);
    Outcome run_packet(unsigned slot, Header const& header);
    Outcome read_log(unsigned slot, Header const& header, AtaTaskFile const& tf);

    /// Collects the PRDT segments covering `total` bytes (fewer when the table is shorter, see `covered`).
    /// \return false if an entry or buffer lies outside RAM
    bool collect_prdt(Header const& header, uint64_t total, std::vector<Segment>& out, uint64_t& covered, bool& irq);
    /// Disk sectors between the image and the PRDT. \return the outcome (errors already reported)
    Outcome transfer_sectors(unsigned slot, Header const& header, uint64_t lba, uint64_t count, bool to_memory,
                             bool& prd_irq);
    /// Copies bytes to the PRDT (IDENTIFY, logs, ATAPI replies); with `truncate`, a shorter PRDT takes what fits.
    Outcome copy_out(unsigned slot, Header const& header, std::span<uint8_t const> data, bool truncate, bool& prd_irq);

    // Completions.
    void set_tfd(uint8_t status, uint8_t error) { m_tfd = static_cast<uint32_t>(error) << 8 | status; }
    void post_fis(uint64_t offset, std::span<uint8_t const> fis);
    void post_d2h(uint8_t status, uint8_t error, AtaTaskFile const& tf, bool interrupt);
    void post_pio_setup(uint8_t status, uint16_t bytes);
    void complete_slot(unsigned slot, uint32_t bytes);
    Outcome finish(unsigned slot, uint8_t status, uint8_t error, AtaTaskFile const& tf, uint32_t bytes);
    Outcome fail(unsigned slot, uint8_t error, AtaTaskFile const& tf, uint32_t extra_is = 0);
    Outcome bad_table(unsigned slot, uint32_t cause, char const* what);

    memory::GuestMemory const& m_mem;
    std::shared_ptr<IdeDrive> m_drive;
    AhciStats& m_stats;

    uint64_t m_clb { 0 };
    uint64_t m_fb { 0 };
    uint32_t m_is { 0 };
    uint32_t m_ie { 0 };
    uint32_t m_cmd { 0 };
    uint32_t m_tfd { 0 };
    uint32_t m_sig { 0 };
    uint32_t m_ssts { 0 };
    uint32_t m_sctl { 0 };
    uint32_t m_serr { 0 };
    uint32_t m_sact { 0 };
    uint32_t m_ci { 0 };
    bool m_halted { false };       // stopped on an error until PxCMD.ST is cleared
    bool m_init_d2h_due { false }; // the device's signature FIS waits for FRE
    bool m_srst { false };         // a control FIS set SRST
    bool m_in_process { false };
    bool m_bus_master { true };
    // The last NCQ error, for READ LOG EXT page 10h.
    bool m_ncq_error { false };
    uint8_t m_ncq_error_tag { 0 };
    uint8_t m_ncq_error_status { 0 };
    uint8_t m_ncq_error_code { 0 };
};

} // namespace hako::devices::ide
