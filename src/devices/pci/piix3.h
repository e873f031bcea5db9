// Piix3IsaBridge: function 0 of the Intel 82371SB PIIX3 (8086:7000), the PCI-to-ISA bridge, as far as the PCI side
// goes: identity (class 0x060100, multi-function header) and the PIRQ route control registers PIRQRC[A:D] at
// 0x60-0x63 (82371SB datasheet 2.2.9): bits 3:0 pick the ISA IRQ, bit 7 IRQROUTEN disables the route, reset value
// 0x80. IRQ 0-2, 8 and 13 are reserved encodings and route nowhere.
// Also intx_to_pirq(): the PC board wiring of slot INTx pins to PIRQA-D, as QEMU's pc machine and SeaBIOS
// (piix_pci_slot_get_irq) do it: pirq = (slot - 1 + (pin - 1)) & 3, pin 1 = INTA#.
// Deliberately not modelled: the ISA devices behind it (PIC, PIT, DMA, RTC live in devices/legacy), the ELCR
// at ports 0x4D0/0x4D1, top of memory (0x69), the USB function (the IDE function is devices/ide/piix3_ide.h), APIC
// chip select and the deterministic
// latency registers.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "devices/pci/pci_device.h"

namespace hako::devices::pci {

constexpr unsigned NUM_PIRQS = 4;

/// Which PIRQ (0 = PIRQA .. 3 = PIRQD) a slot's INTx pin (1 = INTA# .. 4 = INTD#) is wired to; nullopt for pin 0
/// or an invalid pin.
std::optional<unsigned> intx_to_pirq(uint8_t slot, uint8_t pin);

class Piix3IsaBridge final : public PciDevice {
public:
    static constexpr uint16_t VENDOR_ID = 0x8086;
    static constexpr uint16_t DEVICE_ID = 0x7000;
    static constexpr uint16_t PIRQRC = 0x60; // PIRQRC[A] .. PIRQRC[D] at 0x60-0x63
    static constexpr uint8_t PIRQRC_IRQROUTEN = 0x80; // set: routing disabled
    static constexpr uint8_t PIRQRC_IRQ_MASK = 0x0f;

    Piix3IsaBridge();

    std::string_view name() const override { return "piix3-isa"; }

    /// The ISA IRQ a PIRQ is routed to, or nullopt if routing is disabled, the encoding reserved or pirq > 3.
    std::optional<uint8_t> pirq_to_irq(unsigned pirq) const;
    /// Called (without the bridge's lock held) after the guest changes a PIRQRC register.
    void set_pirq_listener(std::function<void()> listener);

protected:
    void config_written(uint16_t offset, size_t size) override;

private:
    std::mutex m_listener_lock;
    std::function<void()> m_listener;
};

} // namespace hako::devices::pci
