// PciRoot: PCI bus 0 of a PC host bridge (i440FX style), and its two configuration front ends:
//  - PciConfigIo: configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): CONFIG_ADDRESS, a dword
//    register at port 0xCF8, and CONFIG_DATA at 0xCFC-0xCFF (byte, word and dword accesses at their byte offset).
//  - PciConfigMmio: PCI Express enhanced configuration access (ECAM, PCIe Base Spec 7.2.2):
//    offset = bus << 20 | device << 15 | function << 12 | register.
//
// Bus 0 has 32 device slots with up to 8 functions each. Absent devices (and every bus but 0) read all-ones and
// ignore writes. Deliberately not modelled: PCI-to-PCI bridges and further buses, type 1 addresses, the AMD
// extended-register bits 27:24 of CONFIG_ADDRESS, hot plug.
//
// Port registration (0xCF9, the reset control register, is not ours): PciConfigIo's offsets are relative to 0xCF8
// (offset 0 CONFIG_ADDRESS, offsets 4-7 CONFIG_DATA), and register_config_io() inserts it as two ranges:
// [0xCF8, 0xCF9) for CONFIG_ADDRESS (a dword access starting at 0xCF8 is dispatched there; byte and word accesses at
// 0xCF8 read all-ones and are ignored, as on real chipsets), and [0xCFC, 0xD00) for CONFIG_DATA through a small
// adapter that adds 4 to the offset. 0xCF9-0xCFB are left free for the reset control device.
//
// Locking: the slot table is guarded by m_lock, copied out before a device is called. PciConfigIo guards
// CONFIG_ADDRESS with its own mutex and releases it before calling into the root.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "base/result.h"
#include "bus/bus.h"
#include "bus/device.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

class IntxRouter;

constexpr uint8_t PCI_SLOTS = 32;
constexpr uint8_t PCI_FUNCTIONS = 8;

class PciRoot final {
public:
    /// \param mapper told about BAR placement of every device added (may be nullptr in tests)
    explicit PciRoot(std::shared_ptr<BarMapper> mapper = nullptr) : m_mapper(std::move(mapper)) { }

    /// Puts a device at function 0 of `slot`, or of the lowest free slot if none is given.
    /// \return the slot used; fails if the slot is taken or out of range, or the bus is full
    [[nodiscard]] Result<uint8_t> add_device(std::shared_ptr<PciDevice> device, std::optional<uint8_t> slot = std::nullopt);
    /// Puts a device at function 1-7 of a slot (multi-function devices such as PIIX3's IDE/USB/PM functions).
    [[nodiscard]] Result<void> add_function(std::shared_ptr<PciDevice> device, uint8_t slot, uint8_t function);
    /// Routes INTx of devices with an interrupt pin (those already added and those added later).
    void set_intx_router(std::shared_ptr<IntxRouter> router);

    /// A configuration read by bus/device/function; absent functions read all-ones.
    void config_read(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, std::span<uint8_t> data) const;
    void config_write(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, std::span<uint8_t const> data);

    std::shared_ptr<PciDevice> device_at(uint8_t slot, uint8_t function = 0) const;
    /// Resets every function (PciDevice::reset), as RST# does on a machine reset.
    void reset_all();
    /// Takes every device off the bus (machine teardown: their BARs are unmapped while the buses still exist).
    void remove_all();

private:
    void attach_locked(PciDevice& device, uint8_t slot);

    std::shared_ptr<BarMapper> m_mapper;
    mutable std::mutex m_lock;
    std::shared_ptr<IntxRouter> m_router;
    std::array<std::shared_ptr<PciDevice>, PCI_SLOTS * PCI_FUNCTIONS> m_functions {};
};

/// Configuration mechanism #1. Offsets relative to 0xCF8: 0-3 CONFIG_ADDRESS (dword only), 4-7 CONFIG_DATA.
class PciConfigIo final : public bus::Device {
public:
    static constexpr uint16_t PORT_CONFIG_ADDRESS = 0xcf8;
    static constexpr uint16_t PORT_CONFIG_DATA = 0xcfc;
    static constexpr uint32_t CONFIG_ADDRESS_ENABLE = 1u << 31;

    explicit PciConfigIo(std::shared_ptr<PciRoot> root) : m_root(std::move(root)) { }

    std::string_view name() const override { return "pci-config-io"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    uint64_t bad_access_count() const;

private:
    std::shared_ptr<PciRoot> m_root;
    mutable std::mutex m_lock;
    uint32_t m_address { 0 };
    uint64_t m_bad_accesses { 0 };
};

/// Inserts `io` at [0xCF8, 0xCF9) and [0xCFC, 0xD00) on a port I/O bus (see the file comment).
[[nodiscard]] Result<void> register_config_io(bus::Bus& pio, std::shared_ptr<PciConfigIo> io);

/// ECAM: a window of `bus_count` MiB (1 MiB per bus). Accesses are 1, 2 or 4 bytes within a dword.
class PciConfigMmio final : public bus::Device {
public:
    PciConfigMmio(std::shared_ptr<PciRoot> root, unsigned bus_count = 1)
        : m_root(std::move(root)), m_bus_count(bus_count == 0 || bus_count > 256 ? 256 : bus_count)
    {
    }

    std::string_view name() const override { return "pci-ecam"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// Bytes of the window to register on the MMIO bus.
    uint64_t window_size() const { return uint64_t { m_bus_count } << 20; }
    uint64_t bad_access_count() const { return m_bad_accesses.load(std::memory_order_relaxed); }

private:
    bool decode(uint64_t offset, size_t size, uint8_t& bus, uint8_t& dev, uint8_t& fn, uint16_t& reg);

    std::shared_ptr<PciRoot> m_root;
    unsigned m_bus_count;
    std::atomic<uint64_t> m_bad_accesses { 0 };
};

} // namespace hako::devices::pci
