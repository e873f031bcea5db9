// assign_pci_resources(): what a PC BIOS does to bus 0 before an OS runs, for direct boot (no firmware): every
// BAR of every function gets a naturally aligned address in its window (I/O, 32-bit memory, 64-bit memory for
// 64-bit BARs that do not fit below 4 GiB), the PIIX3 PIRQ links are routed to ISA IRQs 10, 10, 11, 11 (SeaBIOS's
// choice), and each function with an interrupt pin gets its Interrupt Line register set to the IRQ of its PIRQ.
// Decoding (the Command register) is left off, as Linux and other OSes enable it themselves (pci_enable_device).
//
// BARs are sized the way firmware does it: write all-ones, read back the mask, restore. Expansion ROM BARs are
// left unassigned (OSes map ROMs on demand). A BAR that does not fit its window is left at 0 and reported.
// Deliberately not done: bridges and buses behind them (hako has only bus 0).
#pragma once

#include <cstdint>

#include "base/result.h"
#include "devices/pci/pci_root.h"

namespace hako::devices::pci {

struct PciResourceWindows {
    uint64_t io_start { 0 };
    uint64_t io_end { 0 };        // exclusive
    uint64_t mmio32_start { 0 };
    uint64_t mmio32_end { 0 };    // exclusive
    uint64_t mmio64_start { 0 };
    uint64_t mmio64_end { 0 };    // exclusive
};

/// ISA IRQs for PIRQA-D (SeaBIOS's pci_irqs).
constexpr uint8_t DEFAULT_PIRQ_IRQS[4] = { 10, 10, 11, 11 };

/// Assigns BARs and interrupt routing on bus 0 of `root`. `piix3_slot` is the slot of the PIIX3 ISA bridge whose
/// PIRQ route registers are programmed (nullopt: none). Fails if a BAR does not fit its window.
[[nodiscard]] Result<void> assign_pci_resources(PciRoot& root, PciResourceWindows const& windows,
                                                std::optional<uint8_t> piix3_slot);

} // namespace hako::devices::pci
