// patch_option_rom_ids: a ROM for a family of devices gets the function's IDs, its byte sum unchanged; anything
// that is not a well-formed ROM with a PCI data structure is left alone.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "base/bytes.h"
#include "devices/pci/option_rom.h"

using namespace hako;
using namespace hako::devices::pci;

namespace {

std::vector<uint8_t> make_rom(uint16_t vendor, uint16_t device)
{
    std::vector<uint8_t> rom(1024, 0);
    rom[0] = 0x55;
    rom[1] = 0xaa;
    rom[2] = 2; // 2 x 512 bytes
    put_le16(rom.data() + 0x18, 0x40);
    rom[0x40] = 'P';
    rom[0x41] = 'C';
    rom[0x42] = 'I';
    rom[0x43] = 'R';
    put_le16(rom.data() + 0x44, vendor);
    put_le16(rom.data() + 0x46, device);
    rom[0x100] = 0x37;
    uint8_t const sum = static_cast<uint8_t>(std::accumulate(rom.begin(), rom.end(), 0u));
    rom[6] = static_cast<uint8_t>(-sum); // a valid checksum
    return rom;
}

uint8_t byte_sum(std::vector<uint8_t> const& rom)
{
    return static_cast<uint8_t>(std::accumulate(rom.begin(), rom.end(), 0u));
}

} // namespace

TEST(OptionRom, PatchesIdsAndKeepsTheChecksum)
{
    auto rom = make_rom(0, 0);
    ASSERT_EQ(byte_sum(rom), 0u);
    EXPECT_TRUE(patch_option_rom_ids(rom, 0x10ec, 0x8029));
    EXPECT_EQ(get_le16(rom.data() + 0x44), 0x10ecu);
    EXPECT_EQ(get_le16(rom.data() + 0x46), 0x8029u);
    EXPECT_EQ(byte_sum(rom), 0u);
    EXPECT_FALSE(patch_option_rom_ids(rom, 0x10ec, 0x8029)); // already matching
}

TEST(OptionRom, LeavesMalformedRomsAlone)
{
    auto rom = make_rom(0, 0);
    auto no_signature = rom;
    no_signature[1] = 0;
    auto no_pcir = rom;
    no_pcir[0x42] = 'X';
    auto pcir_outside = rom;
    put_le16(pcir_outside.data() + 0x18, 0x3f0);
    auto pcir_in_header = rom;
    put_le16(pcir_in_header.data() + 0x18, 0x02);
    for (auto* r : { &no_signature, &no_pcir, &pcir_outside, &pcir_in_header }) {
        auto const before = *r;
        EXPECT_FALSE(patch_option_rom_ids(*r, 0x10ec, 0x8029));
        EXPECT_EQ(*r, before);
    }
    std::vector<uint8_t> tiny { 0x55, 0xaa, 1 };
    EXPECT_FALSE(patch_option_rom_ids(tiny, 0x10ec, 0x8029));
}
