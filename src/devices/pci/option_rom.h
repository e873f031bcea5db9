// Expansion ROM images (PCI Local Bus Specification 3.0, section 6.3.1): fitting one image to the function that
// carries it.
#pragma once

#include <cstdint>
#include <span>

namespace hako::devices::pci {

/// Makes the first image of an expansion ROM claim `vendor`:`device` in its PCI data structure ("PCIR"), as QEMU does
/// for ROMs built for a family of devices (iPXE's pxe-ne2k_pci.rom says 0000:0000): SeaBIOS only runs an image
/// whose IDs match the function. The image's byte sum is kept (byte 6, where iPXE keeps its checksum, absorbs the
/// change) so a valid checksum stays valid. A ROM without a well-formed header or PCIR structure is left alone.
/// \return true if the IDs were changed
bool patch_option_rom_ids(std::span<uint8_t> rom, uint16_t vendor, uint16_t device);

} // namespace hako::devices::pci
