// Fuzzes the PIIX3 IDE as a hostile driver would: an ATA disk (primary master) and an ATAPI CD-ROM (secondary
// master) over in-memory images, guest RAM (64 KiB at 0x10000) seeded from the input, then a bounded sequence of
// operations: command block and control register writes of any value (mostly commands and the registers that
// matter), data port reads and writes of 1, 2 or 4 bytes (packets included), bus master register writes (PRD table
// address anywhere, start/stop, direction), PRD entries written into RAM, PCI config writes and function resets.
//
// Checked beyond "no crash, no hang, no sanitizer report": the CD-ROM image is never written; both images keep
// their size; each interrupt line is only driven on changes (StrictIrqLine).
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "block/memory_image.h"
#include "devices/ide/ata_regs.h"
#include "devices/ide/piix3_ide.h"
#include "fuzz_fakes.h"

using namespace hako;
using namespace hako::devices::ide;
using memory::GuestAddr;
namespace pci = hako::devices::pci;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr size_t HEADER = 4;
constexpr size_t MAX_OPS = 256;
constexpr size_t DISK_SIZE = 64 * 512;
constexpr size_t CD_SIZE = 16 * 2048;

using fuzz::check;

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

constexpr std::array<uint8_t, 32> COMMANDS {
    cmd::IDENTIFY_DEVICE, cmd::IDENTIFY_PACKET_DEVICE, cmd::PACKET, cmd::READ_SECTORS, cmd::READ_SECTORS_EXT,
    cmd::WRITE_SECTORS, cmd::WRITE_SECTORS_EXT, cmd::READ_MULTIPLE, cmd::READ_MULTIPLE_EXT, cmd::WRITE_MULTIPLE,
    cmd::WRITE_MULTIPLE_EXT, cmd::SET_MULTIPLE_MODE, cmd::READ_DMA, cmd::READ_DMA_EXT, cmd::WRITE_DMA,
    cmd::WRITE_DMA_EXT, cmd::FLUSH_CACHE, cmd::FLUSH_CACHE_EXT, cmd::SET_FEATURES, cmd::INITIALIZE_DEVICE_PARAMETERS,
    cmd::DEVICE_RESET, cmd::EXECUTE_DEVICE_DIAGNOSTIC, cmd::READ_VERIFY_EXT, cmd::CHECK_POWER_MODE, cmd::NOP,
    cmd::SEEK, cmd::STANDBY_IMMEDIATE, cmd::RECALIBRATE, 0xff, cmd::READ_DMA_NORETRY, cmd::IDLE, 0x50,
};
constexpr std::array<uint8_t, 16> OPCODES {
    scsi::TEST_UNIT_READY, scsi::REQUEST_SENSE, scsi::INQUIRY, scsi::READ_CAPACITY, scsi::READ_10, scsi::READ_12,
    scsi::MODE_SENSE_10, scsi::READ_TOC, scsi::GET_CONFIGURATION, scsi::GET_EVENT_STATUS, scsi::START_STOP_UNIT,
    scsi::PREVENT_ALLOW, scsi::MODE_SENSE_6, scsi::SEEK_10, scsi::SET_CD_SPEED, 0xff,
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    size_t const seed = std::min<size_t>(static_cast<size_t>(data[0]) * 64, size - HEADER);
    std::fill(ram().begin(), ram().end(), 0);
    std::memcpy(ram().data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;

    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(ram()) } });
    if (!mem)
        return 0;
    std::array<std::shared_ptr<fuzz::StrictIrqLine>, 2> irqs { std::make_shared<fuzz::StrictIrqLine>(),
        std::make_shared<fuzz::StrictIrqLine>() };
    auto created = Piix3Ide::create(*mem, { irqs[0], irqs[1] });
    check(created.has_value());
    auto ide = std::move(*created);
    ide->save_power_on_state();
    auto disk = std::make_shared<block::MemoryImage>(std::vector<uint8_t>(DISK_SIZE, 0x11), block::ReadOnly::No);
    auto cd = std::make_shared<block::MemoryImage>(std::vector<uint8_t>(CD_SIZE, 0x22), block::ReadOnly::Yes);
    ide->channel(0).attach(0, std::make_shared<IdeDrive>(DriveKind::Disk, disk, "", 0));
    ide->channel(1).attach(0, std::make_shared<IdeDrive>(DriveKind::Cdrom, cd, "", 1));
    // Bus master enabled unless the header says otherwise.
    if (!(data[1] & 1)) {
        std::array<uint8_t, 2> command { pci::PCI_COMMAND_IO | pci::PCI_COMMAND_MASTER, 0 };
        ide->config_write(pci::PCI_COMMAND, command);
    }

    for (size_t op = 0; op < MAX_OPS && pos + 3 <= size; ++op, pos += 3) {
        uint8_t const kind = data[pos];
        uint8_t const a = data[pos + 1];
        uint8_t const b = data[pos + 2];
        IdeChannel& ch = ide->channel(kind & 1);
        std::array<uint8_t, 4> bytes { a, b, a, b };
        size_t const len = size_t { 1 } << ((kind >> 1) & 3) > 4 ? 4 : size_t { 1 } << ((kind >> 1) & 3);
        switch ((kind >> 3) % 11) {
        case 0: { // a command from the list
            std::array<uint8_t, 1> c { COMMANDS[a % COMMANDS.size()] };
            ch.command_write(REG_COMMAND, c);
            break;
        }
        case 1: { // a task file register
            std::array<uint8_t, 1> v { b };
            ch.command_write(1 + a % 6, v);
            break;
        }
        case 2: // data port write (packets: an opcode from the list first)
            bytes[0] = (a & 0x80) ? OPCODES[a % OPCODES.size()] : a;
            ch.command_write(REG_DATA, std::span<uint8_t const>(bytes).first(len));
            break;
        case 3: { // data port reads, a burst
            std::array<uint8_t, 4> out {};
            for (unsigned i = 0; i < (b & 0x3fu) + 1; ++i)
                ch.command_read(REG_DATA, std::span<uint8_t>(out).first(len));
            break;
        }
        case 4: { // any register read
            std::array<uint8_t, 4> out {};
            ch.command_read(a % 9, std::span<uint8_t>(out).first(len));
            break;
        }
        case 5:
            ch.device_control(b);
            break;
        case 6: // bus master registers (the PRD table mostly inside RAM)
            if (a & 1) {
                uint32_t const table = (a & 2) ? static_cast<uint32_t>(RAM_BASE + b * 64u) : uint32_t { a } << 24 | b;
                std::array<uint8_t, 4> t { static_cast<uint8_t>(table), static_cast<uint8_t>(table >> 8),
                    static_cast<uint8_t>(table >> 16), static_cast<uint8_t>(table >> 24) };
                ide->bar_write(Piix3Ide::BM_BAR, (kind & 1) * BM_CHANNEL_SIZE + BM_PRD_TABLE, t);
            } else {
                std::array<uint8_t, 1> v { b };
                ide->bar_write(Piix3Ide::BM_BAR, (kind & 1) * BM_CHANNEL_SIZE + (a >> 1) % 16, v);
            }
            break;
        case 7: { // a PRD entry in RAM pointing into RAM (or anywhere)
            size_t const at = (size_t { b } * 8) % RAM_SIZE;
            uint32_t const addr = (a & 1) ? static_cast<uint32_t>(RAM_BASE + (a * 256u) % RAM_SIZE) : uint32_t { a } << 20;
            uint32_t const count = (a & 2) ? 0 : uint32_t { b } * 16;
            uint32_t const flags = count | ((a & 4) ? PRD_EOT : 0);
            for (size_t i = 0; i < 4 && at + 8 <= RAM_SIZE; ++i) {
                ram()[at + i] = static_cast<uint8_t>(addr >> (8 * i));
                ram()[at + 4 + i] = static_cast<uint8_t>(flags >> (8 * i));
            }
            break;
        }
        case 8: { // PCI configuration
            std::array<uint8_t, 1> v { b };
            ide->config_write(a, v);
            break;
        }
        case 9: { // bus master reads
            std::array<uint8_t, 4> out {};
            ide->bar_read(Piix3Ide::BM_BAR, a % 20, std::span<uint8_t>(out).first(len));
            break;
        }
        case 10:
            if (a == 0x5a)
                ide->reset();
            break;
        }
    }
    check(cd->writes == 0);
    check(cd->bytes().size() == CD_SIZE && disk->bytes().size() == DISK_SIZE);
    return 0;
}
