// MSI: the Message Signalled Interrupts capability (PCI Local Bus Specification 3.0, section 6.8.1), in its 64-bit
// address, per-vector-maskable form (capability ID 0x05, 24 bytes), and MsiSink, where MSI and MSI-X messages go.
//
// Layout relative to the capability: 0x02 Message Control (MSI enable bit 0 and Multiple Message Enable bits 6:4
// writable; Multiple Message Capable, 64-bit and per-vector masking read-only), 0x04 Message Address (bits 31:2),
// 0x08 Message Upper Address, 0x0C Message Data (16 bits), 0x10 Mask Bits, 0x14 Pending Bits (read-only).
// A vector masked when the device signals it sets its pending bit; unmasking delivers it and clears the bit.
// With Multiple Message Enable allowing n vectors, the low log2(n) bits of the data carry the vector number.
// Deliberately not modelled: the 32-bit-only and non-maskable layouts, MSI on PCI Express extended space.
//
// Usage: the device creates it in its constructor (after its BARs), forwards config_written() to it and calls
// notify(). Lock order: m_lock -> the device's configuration lock. The MsiSink is called with m_lock held.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "base/result.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

/// Where message-signalled interrupts go (the machine implements it with KVM irqfd/GSI routing or KVM_SIGNAL_MSI).
class MsiSink {
public:
    virtual ~MsiSink() = default;
    /// \param address the message address (0xFEExxxxx on x86)  \param data the message data
    virtual void deliver(uint64_t address, uint32_t data) = 0;
};

constexpr uint8_t PCI_CAP_ID_MSI = 0x05;

class MsiCapability final {
public:
    static constexpr uint16_t PCI_MSI_FLAGS = 0x02;
    static constexpr uint16_t PCI_MSI_ADDRESS_LO = 0x04;
    static constexpr uint16_t PCI_MSI_ADDRESS_HI = 0x08;
    static constexpr uint16_t PCI_MSI_DATA = 0x0c;
    static constexpr uint16_t PCI_MSI_MASK = 0x10;
    static constexpr uint16_t PCI_MSI_PENDING = 0x14;
    static constexpr uint16_t PCI_MSI_FLAGS_ENABLE = 0x0001;
    static constexpr uint16_t PCI_MSI_FLAGS_QMASK = 0x000e; // Multiple Message Capable
    static constexpr uint16_t PCI_MSI_FLAGS_QSIZE = 0x0070; // Multiple Message Enable
    static constexpr uint16_t PCI_MSI_FLAGS_64BIT = 0x0080;
    static constexpr uint16_t PCI_MSI_FLAGS_MASKBIT = 0x0100;

    /// Adds the capability to `device`. vectors: 1, 2, 4, 8, 16 or 32.
    [[nodiscard]] static Result<std::unique_ptr<MsiCapability>> create(PciDevice& device, std::shared_ptr<MsiSink> sink,
                                                                       unsigned vectors = 1);

    /// Signals `vector`. \return false if MSI is disabled (the device should use INTx instead)
    bool notify(unsigned vector);
    /// To be called from the device's config_written() override.
    void config_written(uint16_t offset, size_t size);

    bool enabled() const;
    /// Vectors the guest enabled (1 << Multiple Message Enable, at most what the device offers).
    unsigned enabled_vectors() const;
    uint8_t offset() const { return m_offset; }
    /// notify() calls for a vector beyond enabled_vectors().
    uint64_t dropped_count() const;

    MsiCapability(PciDevice& device, std::shared_ptr<MsiSink> sink, uint8_t offset, unsigned vectors)
        : m_device(device), m_sink(std::move(sink)), m_offset(offset), m_vectors(vectors)
    {
    }

private:
    uint32_t load(uint16_t reg, size_t size) const { return m_device.config_load(static_cast<uint16_t>(m_offset + reg), size); }
    unsigned enabled_vectors_locked() const;
    void deliver_locked(unsigned vector);

    PciDevice& m_device;
    std::shared_ptr<MsiSink> m_sink;
    uint8_t const m_offset;
    unsigned const m_vectors;
    mutable std::mutex m_lock;
    uint64_t m_dropped { 0 };
};

} // namespace hako::devices::pci
