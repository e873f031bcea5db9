// Firmware loader: a legacy BIOS image (SeaBIOS-style) mapped so it ends at 4 GiB, with its last 128 KiB also
// copied below 1 MiB (0xE0000..0xFFFFF for a 128 KiB or larger image), where the reset vector's far jump lands.
// The caller creates the ROM region; the boot CPU starts in the architectural reset state (BootEntry{}).
// Firmware in flash (--firmware uefi) is mapped by its flash devices; only the low copy is made here.
#include <algorithm>

#include <fmt/format.h>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"

namespace hako::arch::x86 {

using memory::GuestAddr;

Result<void> load_firmware(memory::GuestMemory const& mem, std::span<uint8_t const> rom)
{
    uint64_t size = rom.size();
    if (size < FIRMWARE_MIN_SIZE || size > FIRMWARE_MAX_SIZE || size % FIRMWARE_MIN_SIZE != 0)
        return Error(ErrorKind::Format, fmt::format("Firmware image must be a multiple of 64 KiB, at most 16 MiB (it is {} "
            "bytes)", size));
    uint64_t base = firmware_base(size);
    auto high = mem.span(GuestAddr(base), size);
    if (!high)
        return Error(ErrorKind::OutOfRange, fmt::format("No firmware region at {:#x}..4 GiB in guest memory", base));
    uint64_t const low_len = std::min(size, FIRMWARE_LOW_COPY_MAX);
    if (!mem.span(GuestAddr(HIGH_MEMORY_START - low_len), low_len))
        return Error(ErrorKind::OutOfRange, fmt::format("No RAM at {:#x}..1 MiB for the firmware's low copy",
            HIGH_MEMORY_START - low_len));
    high->copy_from(rom);
    return copy_firmware_low(mem, rom);
}

Result<void> copy_firmware_low(memory::GuestMemory const& mem, std::span<uint8_t const> rom)
{
    uint64_t const low_len = std::min<uint64_t>(rom.size(), FIRMWARE_LOW_COPY_MAX);
    auto low = mem.span(GuestAddr(HIGH_MEMORY_START - low_len), low_len);
    if (!low)
        return Error(ErrorKind::OutOfRange, fmt::format("No RAM at {:#x}..1 MiB for the firmware's low copy",
            HIGH_MEMORY_START - low_len));
    low->copy_from(rom.subspan(static_cast<size_t>(rom.size() - low_len)));
    return ok();
}

} // namespace hako::arch::x86
