// MSI-X: the MSI-X capability (PCI Local Bus Specification 3.0, section 6.8.2; capability ID 0x11, 12 bytes) with
// its vector table and Pending Bit Array in the device's BARs.
//
// Message Control (cap + 2): Table Size bits 10:0 (N - 1, read-only), Function Mask bit 14 and MSI-X Enable bit 15
// (writable). Table Offset/BIR (cap + 4) and PBA Offset/BIR (cap + 8) are read-only. Table entries are 16 bytes:
// Message Address, Message Upper Address, Message Data, Vector Control (bit 0 Mask, set at reset). Table accesses
// must be a dword at a dword-aligned offset or a qword at a qword-aligned offset; anything else is ignored (reads
// all-ones) and counted. The PBA is read-only, with one bit per vector in qwords. A vector signalled while it or the
// function is masked sets its pending bit; unmasking it delivers the message and clears the bit.
// Deliberately not modelled: PCI Express extended capability placement, table entries steering (TPH).
//
// Usage: the device declares the BAR(s), creates the capability, forwards config_written() and bar_read/bar_write
// (bar_read/bar_write return false when the access is not in the table or PBA), and calls notify().
// Lock order: m_lock -> the device's configuration lock. The MsiSink is called with m_lock held.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "devices/pci/msi.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

constexpr uint8_t PCI_CAP_ID_MSIX = 0x11;

class MsixCapability final {
public:
    static constexpr uint16_t PCI_MSIX_FLAGS = 0x02;
    static constexpr uint16_t PCI_MSIX_TABLE = 0x04;
    static constexpr uint16_t PCI_MSIX_PBA = 0x08;
    static constexpr uint16_t PCI_MSIX_FLAGS_QSIZE = 0x07ff;
    static constexpr uint16_t PCI_MSIX_FLAGS_MASKALL = 0x4000;
    static constexpr uint16_t PCI_MSIX_FLAGS_ENABLE = 0x8000;
    static constexpr uint32_t PCI_MSIX_ENTRY_SIZE = 16;
    static constexpr uint32_t PCI_MSIX_ENTRY_LOWER_ADDR = 0x0;
    static constexpr uint32_t PCI_MSIX_ENTRY_UPPER_ADDR = 0x4;
    static constexpr uint32_t PCI_MSIX_ENTRY_DATA = 0x8;
    static constexpr uint32_t PCI_MSIX_ENTRY_VECTOR_CTRL = 0xc;
    static constexpr uint32_t PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;
    static constexpr unsigned MAX_VECTORS = 2048;

    struct Layout {
        uint16_t vectors { 1 };   // 1-2048
        uint8_t table_bar { 0 };  // BAR index (0-5) holding the table
        uint32_t table_offset { 0 }; // 8-byte aligned
        uint8_t pba_bar { 0 };
        uint32_t pba_offset { 0 };   // 8-byte aligned
    };

    /// Adds the capability to `device`, whose memory BARs must already be declared and large enough.
    [[nodiscard]] static Result<std::unique_ptr<MsixCapability>> create(PciDevice& device, std::shared_ptr<MsiSink> sink,
                                                                        Layout const& layout);

    static uint64_t table_bytes(unsigned vectors) { return uint64_t { vectors } * PCI_MSIX_ENTRY_SIZE; }
    static uint64_t pba_bytes(unsigned vectors) { return (uint64_t { vectors } + 63) / 64 * 8; }

    /// Handles a BAR read if it falls in the table or PBA. \return false if it does not (the device handles it)
    bool bar_read(int bar, uint64_t offset, std::span<uint8_t> data);
    bool bar_write(int bar, uint64_t offset, std::span<uint8_t const> data);
    /// To be called from the device's config_written() override.
    void config_written(uint16_t offset, size_t size);

    /// Signals `vector`. \return false if MSI-X is disabled (the device should use INTx or MSI instead)
    bool notify(uint16_t vector);
    /// Back to the power-on state: every entry zeroed and masked, no pending bits (function reset).
    void reset();

    bool enabled() const;
    bool function_masked() const;
    bool vector_masked(uint16_t vector) const;
    bool pending(uint16_t vector) const;
    uint8_t offset() const { return m_offset; }
    /// Misaligned or wrongly sized table/PBA accesses, PBA writes and notify() of a nonexistent vector.
    uint64_t bad_access_count() const;

    MsixCapability(PciDevice& device, std::shared_ptr<MsiSink> sink, uint8_t offset, Layout const& layout);

private:
    struct Entry {
        uint32_t address_lo { 0 };
        uint32_t address_hi { 0 };
        uint32_t data { 0 };
        uint32_t control { PCI_MSIX_ENTRY_CTRL_MASKBIT };
    };
    enum class Region { None, Table, Pba };

    Region region_of(int bar, uint64_t offset, size_t size, uint64_t& rel) const;
    bool good_access(uint64_t rel, size_t size);
    uint16_t control() const;
    void set_pending_locked(uint16_t vector, bool pending);
    bool pending_locked(uint16_t vector) const;
    void deliver_pending_locked();
    uint32_t entry_dword_locked(uint64_t rel) const;
    void write_entry_dword_locked(uint64_t rel, uint32_t value);

    PciDevice& m_device;
    std::shared_ptr<MsiSink> m_sink;
    uint8_t const m_offset;
    Layout const m_layout;
    mutable std::mutex m_lock;
    std::vector<Entry> m_table;
    std::vector<uint64_t> m_pba;
    uint64_t m_bad_accesses { 0 };
};

} // namespace hako::devices::pci
