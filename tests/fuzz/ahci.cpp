// Fuzzes the ICH9 AHCI as a hostile driver would: an ATA disk on port 0 and an ATAPI CD-ROM on port 1 over
// in-memory images, guest RAM (64 KiB at 0x10000) seeded from the input, so command lists, command tables, FISes,
// ATAPI packets and PRDTs are whatever the input says, then a bounded sequence of operations: ABAR dword writes
// of any value (mostly port registers that matter: CLB/FB pointed into RAM or anywhere, CMD start/stop, CI and SACT
// bits, SCTL COMRESET, IS/IE, GHC reset and IE), ABAR reads of any size, bytes poked into RAM (a command header, a
// FIS command byte, a PRD), PCI configuration writes (MSI, bus master) and function resets.
//
// Checked beyond "no crash, no hang, no sanitizer report": the CD-ROM image is never written; both images keep
// their size; MSI addresses are dword aligned, as the capability allows.
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "block/memory_image.h"
#include "devices/ide/ahci.h"
#include "devices/ide/ahci_regs.h"
#include "devices/ide/ata_regs.h"
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

class LevelIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override { level = asserted; }
    bool level { false };
};

class CountingSink final : public pci::MsiSink {
public:
    void deliver(uint64_t address, uint32_t) override
    {
        check((address & 3) == 0); // the capability keeps the low two bits clear
        ++messages;
    }
    uint64_t messages { 0 };
};

constexpr std::array<uint8_t, 20> COMMANDS {
    cmd::IDENTIFY_DEVICE, cmd::IDENTIFY_PACKET_DEVICE, cmd::PACKET, cmd::READ_SECTORS, cmd::READ_SECTORS_EXT,
    cmd::WRITE_SECTORS_EXT, cmd::READ_DMA, cmd::READ_DMA_EXT, cmd::WRITE_DMA, cmd::WRITE_DMA_EXT, cmd::FLUSH_CACHE,
    cmd::SET_FEATURES, cmd::SET_MULTIPLE_MODE, cmd::READ_MULTIPLE, ahci::CMD_READ_FPDMA_QUEUED,
    ahci::CMD_WRITE_FPDMA_QUEUED, ahci::CMD_READ_LOG_EXT, cmd::DEVICE_RESET, cmd::CHECK_POWER_MODE, 0xff,
};
constexpr std::array<uint32_t, 14> PORT_REGS {
    ahci::P_CLB, ahci::P_CLBU, ahci::P_FB, ahci::P_FBU, ahci::P_IS, ahci::P_IE, ahci::P_CMD, ahci::P_SCTL,
    ahci::P_SERR, ahci::P_SACT, ahci::P_CI, ahci::P_CI, ahci::P_CMD, ahci::P_TFD,
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
    auto disk = std::make_shared<block::MemoryImage>(std::vector<uint8_t>(DISK_SIZE, 0x11), block::ReadOnly::No);
    auto cd = std::make_shared<block::MemoryImage>(std::vector<uint8_t>(CD_SIZE, 0x22), block::ReadOnly::Yes);
    std::array<std::shared_ptr<IdeDrive>, Ahci::PORTS> drives;
    drives[0] = std::make_shared<IdeDrive>(DriveKind::Disk, disk, "", 0, DriveLink::Serial);
    drives[1] = std::make_shared<IdeDrive>(DriveKind::Cdrom, cd, "", 1, DriveLink::Serial);
    auto sink = std::make_shared<CountingSink>();
    auto created = Ahci::create(*mem, drives, sink);
    check(created.has_value());
    auto hba = std::move(*created);
    hba->save_power_on_state();
    hba->set_intx_line(std::make_shared<LevelIrq>());
    if (!(data[1] & 1)) {
        std::array<uint8_t, 2> command { pci::PCI_COMMAND_MEMORY | pci::PCI_COMMAND_MASTER, 0 };
        hba->config_write(pci::PCI_COMMAND, command);
    }

    for (size_t op = 0; op < MAX_OPS && pos + 4 <= size; ++op, pos += 4) {
        uint8_t const kind = data[pos];
        uint8_t const a = data[pos + 1];
        uint8_t const b = data[pos + 2];
        uint8_t const c = data[pos + 3];
        unsigned const port = (kind & 1) + ((kind & 0x80) ? 2u : 0u); // mostly the two ports with devices
        uint32_t const preg = ahci::PORT_BASE + port * ahci::PORT_SIZE;
        std::array<uint8_t, 4> dword {};
        switch ((kind >> 1) % 10) {
        case 0: { // a port register with a value built from the input
            uint32_t const reg = PORT_REGS[a % PORT_REGS.size()];
            uint32_t value = uint32_t { b } | uint32_t { c } << 8 | uint32_t { a } << 16;
            if (reg == ahci::P_CLB || reg == ahci::P_FB)
                value = (c & 1) ? static_cast<uint32_t>(RAM_BASE + (uint32_t { b } << 8) % RAM_SIZE) : value << 8;
            else if (reg == ahci::P_CLBU || reg == ahci::P_FBU)
                value = (c & 1) ? 0 : value;
            else if (reg == ahci::P_CMD)
                value = b & (ahci::CMD_ST | ahci::CMD_FRE | ahci::CMD_CLO);
            else if (reg == ahci::P_SCTL)
                value = b & 0xf;
            put_le32(dword.data(), value);
            hba->bar_write(Ahci::ABAR, preg + reg, dword);
            break;
        }
        case 1: { // any ABAR dword
            put_le32(dword.data(), uint32_t { b } | uint32_t { c } << 8 | uint32_t { c } << 24);
            hba->bar_write(Ahci::ABAR, (uint64_t { a } << 4 | (b & 0xc)) % 0x1000, dword);
            break;
        }
        case 2: { // ABAR reads of 1, 2, 4 or 8 bytes
            std::array<uint8_t, 8> out {};
            size_t const len = size_t { 1 } << (b & 3);
            hba->bar_read(Ahci::ABAR, (uint64_t { a } << 4 | (c & 0xf)) % 0x1010, std::span<uint8_t>(out).first(len));
            break;
        }
        case 3: { // a command header in RAM: CFL/A/W/PRDTL and a table address (mostly in RAM)
            size_t const at = (size_t { a } * 32) % RAM_SIZE;
            uint32_t const flags = (c & 0x7fu) | uint32_t { b } << 16;
            uint64_t const table = (c & 0x80) ? RAM_BASE + (size_t { b } * 128) % RAM_SIZE : uint64_t { b } << 40;
            put_le32(&ram()[at], flags);
            put_le64(&ram()[at + 8], table);
            break;
        }
        case 4: { // a Register H2D FIS with a command from the list
            size_t const at = (size_t { a } * 128) % RAM_SIZE;
            ram()[at] = ahci::FIS_H2D;
            ram()[at + 1] = (c & 1) ? 0 : ahci::FIS_H2D_C;
            ram()[at + 2] = COMMANDS[b % COMMANDS.size()];
            ram()[at + 12] = c;
            break;
        }
        case 5: { // a PRD entry
            size_t const at = (size_t { a } * 16) % RAM_SIZE;
            uint64_t const addr = (b & 1) ? RAM_BASE + (size_t { c } * 256) % RAM_SIZE : uint64_t { c } << 32;
            put_le64(&ram()[at], addr);
            put_le32(&ram()[at + 12], uint32_t { b } << 4 | ((c & 0x80) ? ahci::PRD_I : 0));
            break;
        }
        case 6: { // a byte anywhere in RAM
            ram()[(size_t { a } << 8 | b) % RAM_SIZE] = c;
            break;
        }
        case 7: { // PCI configuration (MSI among it)
            std::array<uint8_t, 1> v { b };
            hba->config_write(a, v);
            break;
        }
        case 8:
            if (a == 0x5a)
                hba->reset();
            break;
        case 9: { // GHC and IS
            put_le32(dword.data(), (a & 1) ? ahci::GHC_IE : (a & 2) ? ahci::GHC_HR : uint32_t { b });
            hba->bar_write(Ahci::ABAR, (a & 4) ? ahci::IS : ahci::GHC, dword);
            break;
        }
        }
    }
    check(cd->writes == 0);
    check(cd->bytes().size() == CD_SIZE && disk->bytes().size() == DISK_SIZE);
    return 0;
}
