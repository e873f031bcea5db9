#include "devices/pci/option_rom.h"

#include "base/bytes.h"

namespace hako::devices::pci {

namespace {
constexpr size_t PCIR_POINTER = 0x18;     // offset of the PCI data structure pointer in the ROM header
constexpr size_t PCIR_VENDOR = 4;         // offsets inside the PCI data structure
constexpr size_t PCIR_DEVICE = 6;
constexpr size_t PCIR_MIN_LEN = 0x18;
constexpr size_t CHECKSUM_FILLER = 6;     // iPXE's checksum byte in the ROM header
} // namespace

bool patch_option_rom_ids(std::span<uint8_t> rom, uint16_t vendor, uint16_t device)
{
    if (rom.size() < PCIR_POINTER + 2 || rom[0] != 0x55 || rom[1] != 0xaa)
        return false;
    size_t const pcir = get_le16(rom.data() + PCIR_POINTER);
    if (pcir < PCIR_POINTER + 2 || pcir + PCIR_MIN_LEN > rom.size() || rom[pcir] != 'P' || rom[pcir + 1] != 'C'
        || rom[pcir + 2] != 'I' || rom[pcir + 3] != 'R')
        return false;
    uint16_t const old_vendor = get_le16(rom.data() + pcir + PCIR_VENDOR);
    uint16_t const old_device = get_le16(rom.data() + pcir + PCIR_DEVICE);
    if (old_vendor == vendor && old_device == device)
        return false;
    auto byte_sum = [](uint16_t v) { return static_cast<uint8_t>((v & 0xff) + (v >> 8)); };
    put_le16(rom.data() + pcir + PCIR_VENDOR, vendor);
    put_le16(rom.data() + pcir + PCIR_DEVICE, device);
    rom[CHECKSUM_FILLER] = static_cast<uint8_t>(rom[CHECKSUM_FILLER] + byte_sum(old_vendor) + byte_sum(old_device)
        - byte_sum(vendor) - byte_sum(device));
    return true;
}

} // namespace hako::devices::pci
