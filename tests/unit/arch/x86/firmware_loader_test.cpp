#include <gtest/gtest.h>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "loader_test_util.h"

using namespace hako;
using namespace hako::arch::x86;
using namespace hako::arch::x86::test;

namespace {

// Low RAM (0..1 MiB) and a ROM window of rom_size bytes ending at 4 GiB, both over heap buffers.
struct FirmwareMachine {
    std::vector<uint8_t> low;
    std::vector<uint8_t> rom;
    memory::GuestMemory mem;
    explicit FirmwareMachine(uint64_t rom_size)
        : low(HIGH_MEMORY_START, 0xcc)
        , rom(rom_size, 0xcc)
        , mem(std::move(memory::GuestMemory::from_buffers({ { memory::GuestAddr(0), low },
              { memory::GuestAddr(firmware_base(rom_size)), rom } }).value()))
    {
    }
};

} // namespace

TEST(FirmwareLoader, Base)
{
    static_assert(firmware_base(0x40000) == 0xfffc0000);
    EXPECT_EQ(firmware_base(16 * MiB), 0xff000000u);
}

TEST(FirmwareLoader, LargeImageTopAndLowCopy)
{
    auto image = pattern(256 * KiB, 11);
    FirmwareMachine m(image.size());
    ASSERT_TRUE(load_firmware(m.mem, image));
    EXPECT_TRUE(m.rom == image);
    // The last 128 KiB at 0xE0000..0xFFFFF; below it untouched.
    EXPECT_TRUE(std::equal(image.end() - 128 * KiB, image.end(), m.low.begin() + 0xe0000));
    EXPECT_EQ(m.low[0xdffff], 0xcc);
    EXPECT_EQ(m.low[0xffff0], image[image.size() - 16]); // the reset vector
}

TEST(FirmwareLoader, SmallImageLowCopy)
{
    auto image = pattern(64 * KiB, 3);
    FirmwareMachine m(image.size());
    ASSERT_TRUE(load_firmware(m.mem, image));
    EXPECT_TRUE(std::equal(image.begin(), image.end(), m.low.begin() + 0xf0000));
    EXPECT_EQ(m.low[0xeffff], 0xcc);
}

TEST(FirmwareLoader, WrongSizes)
{
    FirmwareMachine m(64 * KiB);
    for (size_t size : { size_t { 0 }, size_t { 1000 }, size_t { 32 * KiB }, size_t { 65 * KiB }, size_t { 32 * MiB } }) {
        std::vector<uint8_t> image(size);
        auto r = load_firmware(m.mem, image);
        ASSERT_FALSE(r) << size;
        EXPECT_EQ(r.error().kind(), ErrorKind::Format);
        EXPECT_EQ(r.error().message().rfind("Firmware image must be a multiple of 64 KiB, at most 16 MiB", 0), 0u);
    }
}

TEST(FirmwareLoader, MissingRegions)
{
    FirmwareMachine m(64 * KiB);
    auto r = load_firmware(m.mem, std::vector<uint8_t>(128 * KiB)); // region is only 64 KiB
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::OutOfRange);
    EXPECT_EQ(m.low[0xf0000], 0xcc);

    std::vector<uint8_t> rom(64 * KiB);
    auto only_rom = memory::GuestMemory::from_buffers({ { memory::GuestAddr(firmware_base(rom.size())), rom } });
    ASSERT_TRUE(only_rom);
    EXPECT_FALSE(load_firmware(*only_rom, std::vector<uint8_t>(64 * KiB))); // no RAM below 1 MiB
}
