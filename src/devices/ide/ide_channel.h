// IdeChannel: one IDE channel (primary or secondary) of a PCI IDE controller: the ATA task file seen through the
// command block (8 ports) and the control block (alternate status / device control), two device positions
// (master, slave) holding IdeDrives, PIO data transfers, and the channel's half of the SFF-8038i bus master
// (command, status, PRD table address) doing DMA through Physical Region Descriptor tables.
//
// Protocols (ATA/ATAPI-6, T13 1410D): PIO data-in (IDENTIFY, READ SECTORS/MULTIPLE[ EXT]: an interrupt and DRQ per
// block), PIO data-out (WRITE SECTORS/MULTIPLE[ EXT]: DRQ without interrupt for the first block, an interrupt
// after each), non-data, DMA (READ/WRITE DMA[ EXT]: the transfer runs when both the command and the bus master's
// start bit are there, then one interrupt), PACKET (12-byte command with interrupt reason CoD/IO in the count
// register, data chunks no larger than the byte count limit the host put in LBA mid/high, or DMA). Writes to the
// command block go to both devices' registers, reads come from the selected device; with HOB set in device control,
// reads return the previous (high-order) bytes of the 48-bit registers. SRST resets both devices and leaves the
// signatures (ATA 01/01/00/00, ATAPI 01/01/14/EB). nIEN masks the interrupt line; reading the status register
// clears a pending interrupt, the alternate status does not. Everything is synchronous: a command's I/O completes
// before the port write that started it returns (so BSY is never seen by the guest outside SRST).
//
// Hostile-guest rules: every DMA buffer is checked to lie in guest RAM before use; a PRD walk stops after
// MAX_PRD_ENTRIES entries or when the transfer is covered; transfers are bounded by the command (at most 65536
// sectors, or the ATAPI request, clamped to the medium) and streamed in blocks of at most 64 KiB; every sector range
// is checked against the image. Rejected accesses and PRD tables are counted and logged with a rate limit.
//
// Deliberately not modelled: timing registers and PIO/DMA timing, overlapped and queued commands, power states
// (the power commands succeed and change nothing), security, SMART, HPA, 32-bit access quirks beyond byte order
// (a 4-byte data port access moves 4 bytes), PCI native mode.
//
// Locking: m_lock guards all state; the IrqLine and the bus-master-enabled callback are called with it held.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "bus/irq_line.h"
#include "devices/ide/ata_command.h"
#include "devices/ide/ata_regs.h"
#include "devices/ide/ide_drive.h"
#include "memory/guest_memory.h"

namespace hako::devices::ide {

// Bus master registers (SFF-8038i), offsets within a channel's 8 bytes of BAR 4.
constexpr uint8_t BM_COMMAND = 0;
constexpr uint8_t BM_STATUS = 2;
constexpr uint8_t BM_PRD_TABLE = 4;
constexpr uint8_t BM_CHANNEL_SIZE = 8;

constexpr uint8_t BM_CMD_START = 0x01;
constexpr uint8_t BM_CMD_WRITE_TO_MEMORY = 0x08; // "read/write control": 1 = the controller writes memory
constexpr uint8_t BM_ST_ACTIVE = 0x01;
constexpr uint8_t BM_ST_ERROR = 0x02;
constexpr uint8_t BM_ST_INTERRUPT = 0x04;
constexpr uint8_t BM_ST_DRIVE0_DMA = 0x20;
constexpr uint8_t BM_ST_DRIVE1_DMA = 0x40;

/// A PRD table lies in one 64 KiB block: at most 8192 entries.
constexpr size_t MAX_PRD_ENTRIES = 8192;
constexpr uint32_t PRD_EOT = 0x80000000;

struct IdeStats {
    uint64_t commands { 0 };
    uint64_t aborted { 0 };       // commands ended with ERR
    uint64_t io_errors { 0 };     // the image failed a read, write or flush
    uint64_t dma_transfers { 0 };
    uint64_t bad_prd_tables { 0 }; // DMA ended in error: PRD or buffer outside RAM, table too short, master disabled
    uint64_t bad_accesses { 0 };   // data port outside a transfer, unknown register widths
};

class IdeChannel final {
public:
    /// \param mem guest memory for bus master DMA  \param irq the channel's interrupt (IRQ 14 or 15 in legacy mode)
    IdeChannel(memory::GuestMemory const& mem, std::shared_ptr<bus::IrqLine> irq);

    /// Puts a drive at position 0 (master) or 1 (slave); before the guest runs.
    void attach(unsigned unit, std::shared_ptr<IdeDrive> drive);
    IdeDrive* drive(unsigned unit) const { return unit < 2 ? m_drives[unit].get() : nullptr; }
    /// Whether DMA may touch memory (the PCI command register's bus master enable); default: always.
    void set_bus_master_enabled(std::function<bool()> enabled);

    /// The command block: offset 0-7 from the channel's base port.
    void command_read(uint64_t offset, std::span<uint8_t> data);
    void command_write(uint64_t offset, std::span<uint8_t const> data);
    /// The control block's register: alternate status (read), device control (write).
    uint8_t alt_status();
    void device_control(uint8_t value);
    /// The channel's bus master registers: offset 0-7.
    void bus_master_read(uint64_t offset, std::span<uint8_t> data);
    void bus_master_write(uint64_t offset, std::span<uint8_t const> data);

    /// Power-on / machine reset: both devices reset, bus master idle, interrupt deasserted.
    void reset();
    IdeStats stats() const;

private:
    struct TaskFile : AtaTaskFile {
        uint8_t status { 0 };
        uint8_t error { 0 };
    };
    enum class Phase : uint8_t { Idle, PioIn, PioOut, Packet, Dma };
    enum class Source : uint8_t { None, Disk, Buffer }; // where an ATAPI transfer's data comes from

    TaskFile& tf() { return m_tf[m_selected]; }
    IdeDrive* selected() const { return m_drives[m_selected].get(); }
    uint8_t read_register(uint8_t reg);
    void write_register(uint8_t reg, uint8_t value);
    void data_read(std::span<uint8_t> data);
    void data_write(std::span<uint8_t const> data);

    /// Runs a command through ata_execute() and starts its data phase.
    void execute(uint8_t command);
    void set_signature(unsigned unit);
    void soft_reset();
    void raise_irq();
    void update_irq();
    void complete();
    void abort_command(uint8_t error = ERR_ABRT);

    // ATA transfers.
    void start_pio_in(uint32_t block_sectors);
    void start_pio_out(uint32_t block_sectors);
    void pio_block_done();
    bool load_disk_block();
    // ATAPI.
    void packet_received();
    void atapi_next_chunk();
    void atapi_complete(uint8_t sense_key);
    // DMA.
    void start_dma(bool to_memory);
    void try_run_dma();
    void finish_dma(bool ok);
    /// Collects the PRD segments covering up to `total` bytes; false if the table is bad (outside RAM).
    bool collect_prds(uint64_t total, std::vector<std::pair<memory::GuestAddr, uint32_t>>& out, uint64_t& covered);

    memory::GuestMemory const& m_mem;
    std::shared_ptr<bus::IrqLine> m_irq;
    std::function<bool()> m_bus_master_enabled;

    mutable std::mutex m_lock;
    std::array<std::shared_ptr<IdeDrive>, 2> m_drives;
    std::array<TaskFile, 2> m_tf {};
    unsigned m_selected { 0 };
    uint8_t m_control { 0 };
    bool m_irq_pending { false };
    bool m_irq_level { false };

    // The transfer in progress.
    Phase m_phase { Phase::Idle };
    uint8_t m_command { 0 };
    std::vector<uint8_t> m_buf;
    size_t m_pos { 0 };
    size_t m_len { 0 };
    uint64_t m_lba { 0 };       // ATA: next sector; ATAPI: next byte of the medium
    uint64_t m_remaining { 0 }; // ATA: sectors left; ATAPI: bytes left
    uint32_t m_block_sectors { 1 };
    Source m_source { Source::None };
    std::vector<uint8_t> m_reply; // ATAPI response data (Source::Buffer)
    size_t m_reply_pos { 0 };
    bool m_dma_to_memory { false };
    bool m_dma_atapi { false };

    // Bus master.
    uint8_t m_bm_command { 0 };
    uint8_t m_bm_status { 0 };
    uint32_t m_prd_table { 0 };

    IdeStats m_stats;
};

} // namespace hako::devices::ide
