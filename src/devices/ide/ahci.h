// Ahci: the SATA AHCI controller of the Intel ICH9 (PCI 8086:2922, class 0x010601: mass storage, SATA, AHCI 1.0
// programming interface), as QEMU's ich9-ahci presents it and SeaBIOS's ahci.c and Linux's ahci driver drive it:
// the AHCI 1.3 register set in BAR 5 (ABAR, 4 KiB of memory: generic host control at 0x00-0x2B, six ports at
// 0x100 + 0x80 * n, each an AhciPort), an MSI capability (one vector) and INTA#.
//
// Generic host control (AHCI 1.3, 3.1): CAP (64-bit addressing, NCQ, AHCI-only, Gen2, 32 command slots, 6 ports),
// GHC (HR resets the HBA and every port at once; IE; AE reads 1 since the HBA is AHCI-only), IS (one bit per port,
// write 1 to clear; set again while the port still has PxIS & PxIE), PI (all six ports), VS 1.3, CAP2 0. CCC and
// enclosure management registers read 0. Interrupts: a port whose PxIS gains a bit enabled in PxIE sets its IS bit;
// with GHC.IE, an MSI message goes out for each such event when MSI is enabled, otherwise INTA# is held while IS is
// not zero.
//
// Register accesses are dword-sized (AHCI 1.3 3: "all registers ... shall be accessed as dwords"); reads of 1, 2 and
// 8 bytes are served from the dwords, 8-byte writes split into two dwords, other writes are dropped and counted.
// DMA needs the PCI command register's bus master enable: without it a command list is not fetched.
// Deliberately not modelled: the legacy index/data pair in BAR 4 (AIDP), the SATA capability, multiple MSI
// vectors, BIOS/OS handoff, and the ICH9's IDE-mode personality.
//
// Locking: m_lock guards the HBA and its ports; the MSI sink and the INTx line are called with it held (lock
// order: m_lock -> MSI lock -> configuration lock).
#pragma once

#include <array>
#include <memory>
#include <mutex>

#include "devices/ide/ahci_port.h"
#include "devices/pci/msi.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::ide {

class Ahci final : public pci::PciDevice {
public:
    static constexpr uint16_t VENDOR_ID = 0x8086;
    static constexpr uint16_t DEVICE_ID = 0x2922;
    static constexpr int ABAR = 5;
    static constexpr uint64_t ABAR_SIZE = 0x1000;
    static constexpr unsigned PORTS = 6;

    /// \param drives one per port (nullptr: empty port); each an IdeDrive with DriveLink::Serial
    [[nodiscard]] static Result<std::shared_ptr<Ahci>> create(memory::GuestMemory const& mem,
        std::array<std::shared_ptr<IdeDrive>, PORTS> drives, std::shared_ptr<pci::MsiSink> msi);
    Ahci(memory::GuestMemory const& mem, std::array<std::shared_ptr<IdeDrive>, PORTS> const& drives);

    std::string_view name() const override { return "ich9-ahci"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;
    AhciStats stats() const;

protected:
    void reset_device() override;
    void config_written(uint16_t offset, size_t size) override;

private:
    uint32_t read_dword(uint32_t offset);
    void write_dword(uint32_t offset, uint32_t value);
    void hba_reset();
    /// After anything that may have changed a port's PxIS or PxIE: updates IS, sends MSIs, drives INTx.
    void update_interrupts();

    mutable std::mutex m_lock;
    AhciStats m_stats;
    std::array<std::unique_ptr<AhciPort>, PORTS> m_ports;
    std::unique_ptr<pci::MsiCapability> m_msi;
    uint32_t m_ghc { 0 };
    uint32_t m_is { 0 };
    std::array<uint32_t, PORTS> m_signalled {}; // each port's PxIS & PxIE when interrupts were last updated
};

} // namespace hako::devices::ide
