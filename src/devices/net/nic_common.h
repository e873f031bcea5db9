// What every emulated PCI NIC (E1000, Rtl8139, Pcnet) does the same way: the expansion ROM BAR behind romfile= and
// the hand-over of received frames from the backend.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>

#include "base/result.h"
#include "devices/pci/pci_device.h"
#include "net/backend.h"

namespace hako::devices::net {

/// Reads the option ROM image through the ROM BAR: the bytes at offset; bytes beyond the image keep what the caller
/// put there (all-ones).
inline void read_option_rom(std::span<uint8_t const> rom, uint64_t offset, std::span<uint8_t> data)
{
    for (size_t i = 0; i < data.size() && offset + i < rom.size(); ++i)
        data[i] = rom[offset + i];
}

/// Whether a guest access of `size` bytes at `offset` through BAR `bar` reaches a register file of `reg_size` bytes
/// that the NIC decodes through `bar_a` and `bar_b` (its I/O and memory BARs) with 1 to 4 bytes at a time.
inline bool register_access_ok(int bar, int bar_a, int bar_b, uint64_t offset, size_t size, uint64_t reg_size)
{
    return (bar == bar_a || bar == bar_b) && size >= 1 && size <= 4 && offset < reg_size && offset + size <= reg_size;
}

/// The last steps of a NIC's create(), after its BARs: the ROM BAR for a non-empty option ROM image (a power of two,
/// at least 2 KiB), then `dev->receive()` registered as the backend's Receiver through a weak pointer. From then on
/// the backend's thread may deliver frames.
template <class Nic>
[[nodiscard]] Result<void> finish_nic(std::shared_ptr<Nic> const& dev, hako::net::Backend& backend, size_t rom_size)
{
    if (rom_size != 0)
        TRY(dev->add_rom_bar(std::bit_ceil(std::max<uint64_t>(2048, rom_size))));
    std::weak_ptr<Nic> weak = dev;
    backend.set_receiver([weak](std::span<uint8_t const> frame) {
        auto d = weak.lock();
        return d ? d->receive(frame) : true;
    });
    return {};
}

} // namespace hako::devices::net
