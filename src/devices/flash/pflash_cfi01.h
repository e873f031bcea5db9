// PflashCfi01: a CFI parallel NOR flash with the Intel/Sharp command set (CFI primary vendor command set 0x0001),
// as QEMU's "pflash_cfi01" on its pc machine presents OVMF's code and variable stores: an 8-bit bank (one x8
// device), uniform 4 KiB erase blocks, no device width given (QEMU's legacy read-out of status, ID and CFI data).
//
// Modes (Intel 28F-series datasheets, "Read Array", "Read Status Register", "Read Identifier Codes", "CFI Query"):
// read array (0xFF, also 0x00 and AMD's 0xF0) reads the contents; in every other mode a read returns the mode's
// data, and the owner maps the contents as a read-only KVM memory slot only in read-array mode (romd(), the
// romd hook), so array reads and instruction fetches never exit. Commands: 0x10/0x40 program (next write: the
// data, 1-8 bytes, each byte ANDed into the array: programming only clears bits), 0x20/0x28 block erase (next
// write 0xD0 confirms: the whole block becomes 0xFF; anything else is a command sequence error), 0x50 clear status
// (status 0, back to read array), 0x60 block lock setup (0x01/0xD0 accepted, no locking modelled), 0x70 read
// status, 0x90 read identifier (offset 0: manufacturer, 1: device, both 0 as QEMU's pc flash; other offsets 0),
// 0x98 CFI query (the table below, at byte offsets 0x10-0x3F). After a program or erase the flash stays in
// read-status mode until the next command, as real parts and QEMU do.
// Status register: SR.7 ready (always, operations complete at once), SR.5 erase error, SR.4 program error (both
// on a read-only flash, on a failed host write, and together for a command sequence error), 0x80 at reset.
// Multi-byte reads in status mode give the status in bytes 0 and 2 (QEMU's legacy x16 pairing), ID and CFI data
// only in byte 0.
//
// A read-only flash (OVMF's code) refuses program and erase with the error bits and never changes. A writable
// flash writes each change through to its store (a block::BlockDevice, e.g. the VARS file: pwrite at once), and
// flushes the store (fdatasync) after each erase and when the guest goes back to read array after programming
// (OVMF programs a variable byte by byte, then writes 0xFF), and when the device is destroyed.
// Not modelled: write-to-buffer (0xE8) and the other multi-byte program commands, erase/program suspend, block
// locking, protection registers, timing (every operation is done when its command is written), interleaved banks.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "block/block_device.h"
#include "bus/device.h"
#include "memory/guest_memory.h"

namespace hako::devices::flash {

// Commands (first bus cycle unless noted).
constexpr uint8_t CMD_READ_ARRAY = 0xff;
constexpr uint8_t CMD_READ_ARRAY_ALT = 0x00; // QEMU's model treats 0 as read array; so does hako
constexpr uint8_t CMD_AMD_RESET = 0xf0;      // an AMD-style probe: read array
constexpr uint8_t CMD_PROGRAM = 0x40;
constexpr uint8_t CMD_PROGRAM_ALT = 0x10;
constexpr uint8_t CMD_BLOCK_ERASE = 0x20;
constexpr uint8_t CMD_BLOCK_ERASE_ALT = 0x28;
constexpr uint8_t CMD_ERASE_CONFIRM = 0xd0;  // second cycle of block erase (and of lock/unlock)
constexpr uint8_t CMD_CLEAR_STATUS = 0x50;
constexpr uint8_t CMD_LOCK_SETUP = 0x60;
constexpr uint8_t CMD_LOCK_BLOCK = 0x01;     // second cycle of 0x60
constexpr uint8_t CMD_READ_STATUS = 0x70;
constexpr uint8_t CMD_READ_ID = 0x90;
constexpr uint8_t CMD_CFI_QUERY = 0x98;

// Status register bits.
constexpr uint8_t SR_READY = 0x80;          // SR.7 write state machine ready
constexpr uint8_t SR_ERASE_ERROR = 0x20;    // SR.5
constexpr uint8_t SR_PROGRAM_ERROR = 0x10;  // SR.4

constexpr uint64_t PFLASH_SECTOR_SIZE = 4096; // QEMU's pc machine (hw/i386/pc_sysfw.c FLASH_SECTOR_SIZE)
constexpr size_t CFI_TABLE_SIZE = 0x40;

enum class FlashAccess { ReadOnly, ReadWrite };

struct PflashStats {
    uint64_t commands { 0 };
    uint64_t programs { 0 };         // program cycles that changed the array
    uint64_t erases { 0 };
    uint64_t refused { 0 };          // program/erase on a read-only flash
    uint64_t bad_accesses { 0 };     // unknown commands, sequence errors, accesses past the end, odd sizes
    uint64_t store_errors { 0 };     // host writes or flushes that failed
    uint64_t mode_switches { 0 };    // romd changes (slot unmapped/mapped)
};

class PflashCfi01 final : public bus::Device {
public:
    /// A flash of contents.size() bytes (a non-zero multiple of PFLASH_SECTOR_SIZE) at guest address `base`, holding
    /// `contents`. A writable flash needs a store of exactly that size, written through on every change; a
    /// read-only one takes none. The contents live in memory this object owns (memory(): one read-only region at
    /// base), which the owner may map into the guest while romd() is true.
    [[nodiscard]] static Result<std::shared_ptr<PflashCfi01>> create(std::string name, uint64_t base,
        std::span<uint8_t const> contents, FlashAccess access, std::shared_ptr<block::BlockDevice> store);
    ~PflashCfi01() override;

    std::string_view name() const override { return m_name; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// Called (with the device's lock held) whenever read-array mode is entered (true) or left (false). The owner
    /// maps memory() as a read-only KVM slot while true and removes it while false, so reads reach read().
    void set_romd_hook(std::function<void(bool romd)> hook);
    /// True in read-array mode.
    bool romd() const;
    /// Machine reset: read-array mode, status 0x80 (ready). The contents are kept.
    void reset();

    memory::GuestMemory const& memory() const { return m_memory; }
    uint64_t base() const { return m_base; }
    uint64_t size() const { return m_size; }
    bool read_only() const { return m_access == FlashAccess::ReadOnly; }
    /// The CFI query table (byte offsets 0x00-0x3F) this flash answers with.
    std::array<uint8_t, CFI_TABLE_SIZE> const& cfi_table() const { return m_cfi; }
    PflashStats stats() const;

private:
    PflashCfi01(std::string name, uint64_t base, uint64_t size, FlashAccess access,
        std::shared_ptr<block::BlockDevice> store, memory::GuestMemory memory);
    enum class Mode : uint8_t { ReadArray, Status, Identifier, Query };
    enum class Pending : uint8_t { None, Program, Erase, Lock };

    void set_mode(Mode mode);           // m_mutex held
    void program(uint64_t offset, std::span<uint8_t const> data); // m_mutex held
    void erase(uint64_t offset);        // m_mutex held
    void flush_store();                 // m_mutex held
    uint8_t read_byte(uint64_t offset) const; // m_mutex held; offset < m_size
    void bad_access(std::string_view what, uint64_t offset, uint64_t value);

    std::string m_name;
    uint64_t m_base;
    uint64_t m_size;
    FlashAccess m_access;
    std::shared_ptr<block::BlockDevice> m_store;
    memory::GuestMemory m_memory;
    std::span<uint8_t> m_array; // m_memory's bytes
    std::array<uint8_t, CFI_TABLE_SIZE> m_cfi {};

    mutable std::mutex m_mutex; // guards everything below; a leaf lock except for the romd hook (KVM ioctls)
    Mode m_mode { Mode::ReadArray };
    Pending m_pending { Pending::None };
    uint8_t m_status { SR_READY };
    bool m_unsynced { false };  // programmed since the last flush
    std::function<void(bool)> m_romd_hook;
    bool m_romd { true };
    PflashStats m_stats;
};

} // namespace hako::devices::flash
