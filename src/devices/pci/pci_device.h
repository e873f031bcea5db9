// PciDevice: the base of every PCI function: a type 0 configuration space header (PCI Local Bus Specification 3.0,
// section 6.1/6.2), BARs with sizing (6.2.5), the expansion ROM BAR (6.2.5.2), the capability list (6.7) and INTx.
//
// The configuration space is 256 bytes (conventional) or 4 KiB (PCI Express extended, for ECAM). Every byte has a
// write mask (bits the guest may change) and a write-1-to-clear mask, so the guest can only change writable bits.
// Writable in the header: command bits IO/MEM/bus master/INTx disable, the status error bits (W1C), cache line
// size, latency timer, BAR address bits, the ROM BAR address and enable bit, interrupt line. Everything else reads
// back what the device model put there. BAR placement is reported to a BarMapper whenever the guest moves a BAR or
// toggles IO/MEM decoding; a BAR is mapped only when decoding is on, its address is not 0, it is not in the
// all-ones sizing state and it fits its address space (IO below 64 KiB, 32-bit memory below 4 GiB).
// Deliberately not modelled: PCI Express extended capabilities, BIST, parity/SERR reporting, header types 1 and 2
// (bridges), 64-bit BARs straddling the BAR5/ROM boundary, and IO BAR address bits above 16 (they are stored but such
// a BAR is never mapped).
//
// Locking: m_lock guards the configuration bytes, masks and BAR mapping state. The BarMapper and the INTx IrqLine are
// called with m_lock held (they never call back into the device); config_written() runs after m_lock is released,
// so an override may use config_load()/config_store().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include "base/result.h"
#include "bus/irq_line.h"

namespace hako::memory {
class GuestMemory;
}

namespace hako::devices::pci {

// Configuration space header registers (type 0), named as in the PCI Local Bus Specification.
constexpr uint16_t PCI_VENDOR_ID = 0x00;
constexpr uint16_t PCI_DEVICE_ID = 0x02;
constexpr uint16_t PCI_COMMAND = 0x04;
constexpr uint16_t PCI_STATUS = 0x06;
constexpr uint16_t PCI_REVISION_ID = 0x08;
constexpr uint16_t PCI_CLASS_PROG = 0x09;
constexpr uint16_t PCI_CACHE_LINE_SIZE = 0x0c;
constexpr uint16_t PCI_LATENCY_TIMER = 0x0d;
constexpr uint16_t PCI_HEADER_TYPE = 0x0e;
constexpr uint16_t PCI_BASE_ADDRESS_0 = 0x10;
constexpr uint16_t PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
constexpr uint16_t PCI_SUBSYSTEM_ID = 0x2e;
constexpr uint16_t PCI_ROM_ADDRESS = 0x30;
constexpr uint16_t PCI_CAPABILITY_LIST = 0x34;
constexpr uint16_t PCI_INTERRUPT_LINE = 0x3c;
constexpr uint16_t PCI_INTERRUPT_PIN = 0x3d;
constexpr uint16_t PCI_CAP_START = 0x40; // first byte after the type 0 header

constexpr uint16_t PCI_COMMAND_IO = 1 << 0;
constexpr uint16_t PCI_COMMAND_MEMORY = 1 << 1;
constexpr uint16_t PCI_COMMAND_MASTER = 1 << 2;
constexpr uint16_t PCI_COMMAND_INTX_DISABLE = 1 << 10;

constexpr uint16_t PCI_STATUS_INTERRUPT = 1 << 3;
constexpr uint16_t PCI_STATUS_CAP_LIST = 1 << 4;
constexpr uint16_t PCI_STATUS_PARITY = 1 << 8;
constexpr uint16_t PCI_STATUS_SIG_TARGET_ABORT = 1 << 11;
constexpr uint16_t PCI_STATUS_REC_TARGET_ABORT = 1 << 12;
constexpr uint16_t PCI_STATUS_REC_MASTER_ABORT = 1 << 13;
constexpr uint16_t PCI_STATUS_SIG_SYSTEM_ERROR = 1 << 14;
constexpr uint16_t PCI_STATUS_DETECTED_PARITY = 1 << 15;

constexpr uint8_t PCI_HEADER_TYPE_MULTI_FUNCTION = 0x80;

constexpr uint32_t PCI_BASE_ADDRESS_SPACE_IO = 0x01;
constexpr uint32_t PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
constexpr uint32_t PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
constexpr uint32_t PCI_ROM_ADDRESS_ENABLE = 0x01;

constexpr size_t PCI_CONFIG_SPACE_SIZE = 256;
constexpr size_t PCIE_CONFIG_SPACE_SIZE = 4096;

/// BAR indices 0-5 are the base address registers; ROM_BAR is the expansion ROM.
constexpr int NUM_BARS = 6;
constexpr int ROM_BAR = 6;

enum class BarKind : uint8_t { Unused, Io, Mem32, Mem64, Rom };
enum class Prefetchable : uint8_t { No, Yes };
enum class ConfigSpaceSize : uint8_t { Conventional, Extended };

class PciDevice;

/// Told where the guest placed a BAR. Implemented by BusBarMapper (bar_mapper.h) and by tests.
/// Called with the device's configuration lock held: must not call back into the device's config methods.
class BarMapper {
public:
    virtual ~BarMapper() = default;
    /// \param bar 0-5 or ROM_BAR  \param is_io port I/O rather than memory  \param addr guest address  \param size bytes
    virtual void map_bar(PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size) = 0;
    /// Undoes the map_bar() with the same arguments.
    virtual void unmap_bar(PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size) = 0;
};

/// What identifies a function: the read-only header fields.
struct PciIdentity {
    uint16_t vendor_id { 0xffff };
    uint16_t device_id { 0xffff };
    uint32_t class_code { 0 }; // 24 bits: base class, sub-class, programming interface
    uint8_t revision { 0 };
    uint8_t header_type { 0 }; // 0 or PCI_HEADER_TYPE_MULTI_FUNCTION
    uint16_t subsystem_vendor_id { 0 };
    uint16_t subsystem_id { 0 };
    uint8_t interrupt_pin { 0 }; // 0 none, 1 INTA# ... 4 INTD#
};

class PciDevice : public std::enable_shared_from_this<PciDevice> {
public:
    explicit PciDevice(PciIdentity const& identity, ConfigSpaceSize size = ConfigSpaceSize::Conventional);
    /// Unmaps any BAR still mapped.
    virtual ~PciDevice();
    PciDevice(PciDevice const&) = delete;
    PciDevice& operator=(PciDevice const&) = delete;

    virtual std::string_view name() const = 0;

    // --- Guest side: configuration accesses as decoded by the root (masks and W1C apply). ---

    /// Reads 1, 2 or 4 bytes that do not cross a dword; anything else (or beyond the space) reads all-ones.
    void config_read(uint16_t offset, std::span<uint8_t> data);
    /// Writes 1, 2 or 4 bytes that do not cross a dword through the write masks; anything else is dropped.
    void config_write(uint16_t offset, std::span<uint8_t const> data);

    /// A guest access to a mapped BAR (offset relative to the BAR base). Default: reads all-ones, drops writes.
    /// Not called with the configuration lock held: guard device state with the device's own lock.
    virtual void bar_read(int bar, uint64_t offset, std::span<uint8_t> data);
    virtual void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data);
    /// A memory BAR that is plain memory (a framebuffer): its backing store, one region at address 0 at least as
    /// large as the BAR, which a KVM-side BarMapper may map into the guest so accesses never exit; nullptr (the
    /// default) for register BARs. bar_read/bar_write must still work for such a BAR (plain bus mappings).
    virtual memory::GuestMemory const* bar_memory(int bar) const
    {
        (void)bar;
        return nullptr;
    }

    // --- Device and machine side. ---

    /// Declares BAR `bar` (0-5; a Mem64 BAR also takes bar+1). size: a power of two, at least 4 for IO, 16 for
    /// memory; IO BARs are at most 64 KiB, Mem32 at most 2 GiB. Call before the device is added to a root.
    [[nodiscard]] Result<void> add_bar(int bar, BarKind kind, uint64_t size, Prefetchable prefetchable = Prefetchable::No);
    /// Declares the expansion ROM BAR (size a power of two, 2 KiB .. 16 MiB); contents come from bar_read(ROM_BAR).
    [[nodiscard]] Result<void> add_rom_bar(uint64_t size);
    /// Appends a capability: writes id, next pointer and body at a dword-aligned offset after the header, sets
    /// the status capability bit. body excludes the 2-byte header; write_mask is empty (read-only) or body.size().
    /// \return the capability's offset
    [[nodiscard]] Result<uint8_t> add_capability(uint8_t id, std::span<uint8_t const> body,
                                                 std::span<uint8_t const> write_mask = {});

    /// Set by the root when the device is added; nullptr detaches.
    void set_bar_mapper(std::shared_ptr<BarMapper> mapper);
    /// Set by the root (through its IntxRouter); re-drives the current level onto the new line.
    void set_intx_line(std::shared_ptr<bus::IrqLine> line);
    /// Drives INTx: the status interrupt bit follows `asserted`; the line is asserted only while the command
    /// register's INTx disable bit is clear.
    void set_intx(bool asserted);

    /// Remembers the configuration space as it is now as the power-on state reset() returns to (the root calls it
    /// when the device is added, after the device has declared its BARs and capabilities).
    void save_power_on_state();
    /// A function reset (machine reset, RST#): configuration space back to the power-on state (BARs unassigned and
    /// unmapped, decoding and INTx off), then reset_device() for the device's own state.
    void reset();

    /// Reads `size` (1, 2 or 4) bytes without masks; out-of-range reads give all-ones.
    uint32_t config_load(uint16_t offset, size_t size) const;
    /// Writes `size` (1, 2 or 4) bytes ignoring write masks (device-side state such as pending bits).
    void config_store(uint16_t offset, size_t size, uint32_t value);

    /// The address the guest programmed into a BAR (without flag bits); 0 for an unused BAR.
    uint64_t bar_address(int bar) const;
    uint64_t bar_size(int bar) const;
    BarKind bar_kind(int bar) const;
    uint8_t interrupt_pin() const;
    size_t config_size() const { return m_size; }
    /// Guest accesses that were dropped (bad size, alignment or offset).
    uint64_t bad_access_count() const;

protected:
    /// The device's part of reset(), called without the configuration lock held. Default: nothing.
    virtual void reset_device() { }
    /// Called after a guest configuration write has been applied (and the lock released).
    virtual void config_written(uint16_t offset, size_t size);
    /// Sets the write mask / W1C mask of `size` bytes at offset (constructor use).
    void set_write_mask(uint16_t offset, size_t size, uint32_t mask);
    void set_w1c_mask(uint16_t offset, size_t size, uint32_t mask);

private:
    struct Bar {
        BarKind kind { BarKind::Unused };
        uint64_t size { 0 };
        bool mapped { false };
        uint64_t mapped_addr { 0 };
        bool upper_half { false }; // the high dword of the Mem64 BAR below
    };
    struct Placement {
        bool valid { false };
        uint64_t addr { 0 };
    };

    uint64_t bar_address_locked(int bar) const;
    Placement wanted_placement_locked(int bar) const;
    void update_mappings_locked();
    void update_intx_locked();
    uint32_t load_locked(uint16_t offset, size_t size) const;
    void store_locked(uint16_t offset, size_t size, uint32_t value);

    size_t const m_size;
    mutable std::mutex m_lock;
    std::array<uint8_t, PCIE_CONFIG_SPACE_SIZE> m_config {};
    std::array<uint8_t, PCIE_CONFIG_SPACE_SIZE> m_wmask {};
    std::array<uint8_t, PCIE_CONFIG_SPACE_SIZE> m_w1c {};
    std::array<uint8_t, PCIE_CONFIG_SPACE_SIZE> m_power_on {};
    bool m_power_on_saved { false };
    std::array<Bar, NUM_BARS + 1> m_bars {};
    uint8_t m_last_cap { 0 };  // offset of the last capability in the list, 0 if none
    uint16_t m_next_free { PCI_CAP_START };
    std::shared_ptr<BarMapper> m_mapper;
    std::shared_ptr<bus::IrqLine> m_intx_line;
    bool m_intx_level { false };      // what the device asked for
    bool m_intx_line_level { false }; // what the line is driven to
    uint64_t m_bad_accesses { 0 };
};

} // namespace hako::devices::pci
