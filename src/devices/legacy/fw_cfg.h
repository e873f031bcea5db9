// QEMU's firmware configuration device (fw_cfg), x86 I/O port interface, as documented in QEMU's
// docs/specs/fw_cfg.rst: how hako hands firmware (SeaBIOS, OVMF) and the Linux fw_cfg driver its boot
// data, ACPI tables (with the BIOS linker/loader script), e820 map and kernel/initrd/command line.
//
// Ports (offsets from PORT_FW_CFG = 0x510, 12 ports):
//   0      selector: 16-bit little-endian write selects an item and rewinds it
//   1      data: each byte read returns the next byte of the item, 0 past its end (wider reads: consecutive bytes)
//   4-11   DMA address: big-endian 64-bit. Writing the high half at 4 then the low half at 8 (or 64 bits at 4)
//          starts a transfer; reads return the signature "QEMU CFG".
// DMA: a FWCfgDmaAccess {be32 control, be32 length, be64 address} in guest memory; control bits ERROR, READ,
// SKIP, SELECT (selector in bits 16-31), WRITE. On completion the control field is written back as 0 or ERROR.
// Reads past the end of an item are zero-filled.
//
// Deliberately not done: writes (the data port write and DMA WRITE, which QEMU allows for a few writable
// files; hako's items are all read-only: DMA WRITE completes with ERROR), the MMIO variant, and more than
// one transfer per DMA address write (QEMU does not chain either). Every guest address and length goes
// through GuestMemory and must lie in RAM; a bad one fails the transfer with ERROR, is counted and logged
// with a rate limit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "bus/device.h"
#include "memory/guest_memory.h"

namespace hako::devices::legacy {

// Selector keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h and hw/i386/fw_cfg.h).
constexpr uint16_t FW_CFG_SIGNATURE = 0x00;
constexpr uint16_t FW_CFG_ID = 0x01;
constexpr uint16_t FW_CFG_UUID = 0x02;
constexpr uint16_t FW_CFG_RAM_SIZE = 0x03;
constexpr uint16_t FW_CFG_NOGRAPHIC = 0x04;
constexpr uint16_t FW_CFG_NB_CPUS = 0x05;
constexpr uint16_t FW_CFG_MACHINE_ID = 0x06;
constexpr uint16_t FW_CFG_KERNEL_ADDR = 0x07;
constexpr uint16_t FW_CFG_KERNEL_SIZE = 0x08;
constexpr uint16_t FW_CFG_KERNEL_CMDLINE = 0x09;
constexpr uint16_t FW_CFG_INITRD_ADDR = 0x0a;
constexpr uint16_t FW_CFG_INITRD_SIZE = 0x0b;
constexpr uint16_t FW_CFG_BOOT_DEVICE = 0x0c;
constexpr uint16_t FW_CFG_NUMA = 0x0d;
constexpr uint16_t FW_CFG_BOOT_MENU = 0x0e;
constexpr uint16_t FW_CFG_MAX_CPUS = 0x0f;
constexpr uint16_t FW_CFG_KERNEL_ENTRY = 0x10;
constexpr uint16_t FW_CFG_KERNEL_DATA = 0x11;
constexpr uint16_t FW_CFG_INITRD_DATA = 0x12;
constexpr uint16_t FW_CFG_CMDLINE_ADDR = 0x13;
constexpr uint16_t FW_CFG_CMDLINE_SIZE = 0x14;
constexpr uint16_t FW_CFG_CMDLINE_DATA = 0x15;
constexpr uint16_t FW_CFG_SETUP_ADDR = 0x16;
constexpr uint16_t FW_CFG_SETUP_SIZE = 0x17;
constexpr uint16_t FW_CFG_SETUP_DATA = 0x18;
constexpr uint16_t FW_CFG_FILE_DIR = 0x19;
constexpr uint16_t FW_CFG_FILE_FIRST = 0x20;
constexpr uint16_t FW_CFG_WRITE_CHANNEL = 0x4000;
constexpr uint16_t FW_CFG_ARCH_LOCAL = 0x8000;
// x86 arch-local keys.
constexpr uint16_t FW_CFG_ACPI_TABLES = FW_CFG_ARCH_LOCAL + 0;
constexpr uint16_t FW_CFG_SMBIOS_ENTRIES = FW_CFG_ARCH_LOCAL + 1;
constexpr uint16_t FW_CFG_IRQ0_OVERRIDE = FW_CFG_ARCH_LOCAL + 2;
constexpr uint16_t FW_CFG_E820_TABLE = FW_CFG_ARCH_LOCAL + 3;
constexpr uint16_t FW_CFG_HPET = FW_CFG_ARCH_LOCAL + 4;

// FW_CFG_ID feature bits.
constexpr uint32_t FW_CFG_VERSION_TRADITIONAL = 0x01;
constexpr uint32_t FW_CFG_VERSION_DMA = 0x02;

// FWCfgDmaAccess control bits.
constexpr uint32_t FW_CFG_DMA_CTL_ERROR = 0x01;
constexpr uint32_t FW_CFG_DMA_CTL_READ = 0x02;
constexpr uint32_t FW_CFG_DMA_CTL_SKIP = 0x04;
constexpr uint32_t FW_CFG_DMA_CTL_SELECT = 0x08;
constexpr uint32_t FW_CFG_DMA_CTL_WRITE = 0x10;

constexpr uint64_t FW_CFG_DMA_SIGNATURE = 0x51454d5520434647; // "QEMU CFG"

// Port offsets from PORT_FW_CFG.
constexpr uint64_t FW_CFG_PORT_SELECTOR = 0;
constexpr uint64_t FW_CFG_PORT_DATA = 1;
constexpr uint64_t FW_CFG_PORT_DMA = 4; // 8 bytes, big-endian
constexpr uint64_t FW_CFG_PORT_COUNT = 12;

constexpr size_t FW_CFG_MAX_FILE_NAME = 56; // including the NUL
constexpr size_t FW_CFG_FILE_DIR_ENTRY_SIZE = 64;
constexpr size_t FW_CFG_DMA_ACCESS_SIZE = 16;

class FwCfg final : public bus::Device {
public:
    explicit FwCfg(memory::GuestMemory const& mem);

    std::string_view name() const override { return "fw_cfg"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// Sets a fixed-key item (replacing any earlier one). Keys in the file range
    /// [FW_CFG_FILE_FIRST, FW_CFG_ARCH_LOCAL) are refused (logged): use add_file.
    void add_item(uint16_t key, std::vector<uint8_t> data);
    /// Adds a named file. Files get selectors from FW_CFG_FILE_FIRST up in name order (re-assigned on every
    /// add, so add all files before the guest runs). Fails on an empty, too long (>= 56) or duplicate name.
    [[nodiscard]] Result<void> add_file(std::string const& name, std::vector<uint8_t> data);
    /// add_item with a little-endian 16/32/64-bit value, as QEMU stores numeric items.
    void add_u16(uint16_t key, uint16_t v);
    void add_u32(uint16_t key, uint32_t v);
    void add_u64(uint16_t key, uint64_t v);

    /// Makes a file's contents be rebuilt by `refresh` each time the guest selects it (QEMU builds its ACPI tables
    /// when the firmware reads them, after the firmware has programmed the chipset). A result of another size than
    /// the file's is refused (logged) and the old contents kept: the directory the firmware read stays true.
    /// `refresh` runs with the fw_cfg lock held. Fails if there is no such file.
    [[nodiscard]] Result<void> set_file_refresh(std::string const& name, std::function<std::vector<uint8_t>()> refresh);
    /// The selector a file got, if it exists.
    std::optional<uint16_t> file_selector(std::string const& name) const;

    /// Guest accesses the device refused (bad port/size, failed DMA, DMA writes).
    uint64_t bad_access_count() const;

private:
    std::vector<uint8_t> const* lookup(uint16_t key) const; // m_mutex held
    void select(uint16_t key);                              // m_mutex held
    void dma_transfer(uint64_t access_addr);                // m_mutex held
    bool dma_data(uint32_t control, uint32_t length, uint64_t address); // m_mutex held; false on error
    bool is_ram(uint64_t addr, uint64_t len) const;
    void rebuild_directory();                               // m_mutex held
    void bad_access(std::string_view what, uint64_t offset, size_t size);

    memory::GuestMemory const& m_mem;
    mutable std::mutex m_mutex; // guards everything below
    std::map<uint16_t, std::vector<uint8_t>> m_items;
    std::vector<std::pair<std::string, std::vector<uint8_t>>> m_files; // sorted by name
    std::map<std::string, std::function<std::vector<uint8_t>()>> m_refresh; // by file name
    uint16_t m_selected { FW_CFG_SIGNATURE };
    uint64_t m_offset { 0 }; // read position in the selected item
    uint64_t m_dma_addr { 0 };
    uint64_t m_bad_accesses { 0 };
};

} // namespace hako::devices::legacy
