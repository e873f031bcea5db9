// How a PC board wires PCI INTx pins to the chipset's four PIRQ lines: the one formula the PIIX3 model
// (devices/pci/piix3.h, intx_to_pirq) and the ACPI _PRT (acpi.cpp) both use, so the two cannot disagree.
// Slot 1's INTA# is PIRQA and every further slot rotates by one: pirq = (slot - 1 + pin - 1) & 3 with pin 1 = INTA#
// (QEMU's pc machine and SeaBIOS's piix_pci_slot_get_irq wire it the same way).
#pragma once

#include <cstdint>
#include <optional>

namespace hako::arch::x86 {

constexpr unsigned PCI_NUM_PIRQS = 4;

/// Which PIRQ (0 = PIRQA .. 3 = PIRQD) a slot's INTx pin (1 = INTA# .. 4 = INTD#) is wired to; nullopt for pin 0
/// or an invalid pin.
constexpr std::optional<unsigned> pc_intx_to_pirq(uint8_t slot, uint8_t pin)
{
    if (pin < 1 || pin > 4)
        return std::nullopt;
    return (static_cast<unsigned>(slot) + 3u + (pin - 1u)) & 3u;
}

static_assert(pc_intx_to_pirq(1, 1) == 0u && pc_intx_to_pirq(2, 1) == 1u && pc_intx_to_pirq(1, 4) == 3u
    && pc_intx_to_pirq(4, 2) == 0u && !pc_intx_to_pirq(3, 0));

} // namespace hako::arch::x86
