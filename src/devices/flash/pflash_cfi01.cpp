#include "devices/flash/pflash_cfi01.h"

#include <algorithm>
#include <bit>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::flash {

namespace {

/// The CFI query table (JEDEC JESD68.01 / Intel's CFI primary vendor-specific extended query), with QEMU's pc
/// flash's values so firmware sees the same part on both VMMs.
std::array<uint8_t, CFI_TABLE_SIZE> build_cfi_table(uint64_t size)
{
    std::array<uint8_t, CFI_TABLE_SIZE> t {};
    t[0x10] = 'Q';
    t[0x11] = 'R';
    t[0x12] = 'Y';
    t[0x13] = 0x01; // primary vendor command set: Intel/Sharp extended
    t[0x14] = 0x00;
    t[0x15] = 0x31; // primary extended query table at 0x31
    t[0x16] = 0x00;
    // 0x17-0x1A: no alternate command set or table.
    t[0x1b] = 0x45; // Vcc min 4.5 V
    t[0x1c] = 0x55; // Vcc max 5.5 V
    // 0x1D-0x1E: no Vpp pin.
    t[0x1f] = 0x07; // typical single-byte program time 2^7 us
    t[0x20] = 0x07; // typical buffer write time 2^7 us
    t[0x21] = 0x0a; // typical block erase time 2^10 ms
    t[0x22] = 0x00; // no chip erase
    t[0x23] = 0x04; // max program time 2^4 x typical
    t[0x24] = 0x04; // max buffer write time
    t[0x25] = 0x04; // max block erase time
    t[0x26] = 0x00;
    // Device size as 2^n bytes: the lowest set bit of the size (what QEMU reports; exact for power-of-two sizes).
    t[0x27] = static_cast<uint8_t>(std::countr_zero(size));
    t[0x28] = 0x02; // interface: x8/x16
    t[0x29] = 0x00;
    t[0x2a] = 0x08; // max bytes in a multi-byte write 2^8 (not offered: 0xE8 is not modelled)
    t[0x2b] = 0x00;
    t[0x2c] = 0x01; // one erase block region: uniform blocks
    uint64_t const blocks = size / PFLASH_SECTOR_SIZE - 1;
    t[0x2d] = static_cast<uint8_t>(blocks);
    t[0x2e] = static_cast<uint8_t>(blocks >> 8);
    t[0x2f] = static_cast<uint8_t>(PFLASH_SECTOR_SIZE >> 8); // block size / 256
    t[0x30] = static_cast<uint8_t>(PFLASH_SECTOR_SIZE >> 16);
    t[0x31] = 'P'; // primary extended query
    t[0x32] = 'R';
    t[0x33] = 'I';
    t[0x34] = '1'; // version 1.0
    t[0x35] = '0';
    t[0x3f] = 0x01; // one protection register field
    return t;
}

} // namespace

Result<std::shared_ptr<PflashCfi01>> PflashCfi01::create(std::string name, uint64_t base,
    std::span<uint8_t const> contents, FlashAccess access, std::shared_ptr<block::BlockDevice> store)
{
    uint64_t const size = contents.size();
    if (size == 0 || size % PFLASH_SECTOR_SIZE != 0)
        return Error(ErrorKind::Format,
            fmt::format("{}: a flash image must be a non-zero multiple of {} bytes ({} bytes)", name,
                PFLASH_SECTOR_SIZE, size));
    if (size / PFLASH_SECTOR_SIZE > 0x10000)
        return Error(ErrorKind::Format, fmt::format("{}: more than 65536 flash blocks ({} bytes)", name, size));
    if (access == FlashAccess::ReadWrite) {
        if (!store || store->read_only())
            return Error(ErrorKind::InvalidArgument, fmt::format("{}: a writable flash needs a writable store", name));
        if (store->size_bytes() != size)
            return Error(ErrorKind::Format, fmt::format("{}: the store has {} bytes, the flash {}", name,
                store->size_bytes(), size));
    }
    auto mem = TRY(memory::GuestMemory::create({ { memory::GuestAddr(base), size, memory::RegionKind::Rom } }));
    std::shared_ptr<PflashCfi01> dev(
        new PflashCfi01(std::move(name), base, size, access, access == FlashAccess::ReadWrite ? std::move(store) : nullptr,
            std::move(mem)));
    std::copy(contents.begin(), contents.end(), dev->m_array.begin());
    return dev;
}

PflashCfi01::PflashCfi01(std::string name, uint64_t base, uint64_t size, FlashAccess access,
    std::shared_ptr<block::BlockDevice> store, memory::GuestMemory memory)
    : m_name(std::move(name))
    , m_base(base)
    , m_size(size)
    , m_access(access)
    , m_store(std::move(store))
    , m_memory(std::move(memory))
    , m_cfi(build_cfi_table(size))
{
    // create() made the region exactly [base, base+size): the span cannot fail.
    m_array = m_memory.span(memory::GuestAddr(base), size)->bytes();
}

PflashCfi01::~PflashCfi01()
{
    std::lock_guard lock(m_mutex);
    flush_store();
}

void PflashCfi01::set_romd_hook(std::function<void(bool)> hook)
{
    std::lock_guard lock(m_mutex);
    m_romd_hook = std::move(hook);
}

bool PflashCfi01::romd() const
{
    std::lock_guard lock(m_mutex);
    return m_romd;
}

PflashStats PflashCfi01::stats() const
{
    std::lock_guard lock(m_mutex);
    return m_stats;
}

void PflashCfi01::reset()
{
    std::lock_guard lock(m_mutex);
    flush_store();
    m_pending = Pending::None;
    m_status = SR_READY;
    set_mode(Mode::ReadArray);
}

void PflashCfi01::set_mode(Mode mode)
{
    m_mode = mode;
    bool const romd = mode == Mode::ReadArray;
    if (romd)
        flush_store(); // the guest ended a program sequence: make it durable
    if (romd == m_romd)
        return;
    m_romd = romd;
    ++m_stats.mode_switches;
    if (m_romd_hook)
        m_romd_hook(romd);
}

void PflashCfi01::flush_store()
{
    if (!m_unsynced || !m_store)
        return;
    m_unsynced = false;
    if (auto r = m_store->flush(); !r) {
        ++m_stats.store_errors;
        m_status |= SR_PROGRAM_ERROR;
        HAKO_WARN_RATELIMITED("{}: flushing {}: {}", m_name, m_store->path(), r.error().message());
    }
}

void PflashCfi01::bad_access(std::string_view what, uint64_t offset, uint64_t value)
{
    ++m_stats.bad_accesses;
    HAKO_WARN_RATELIMITED("{}: {} at offset {:#x} (value {:#x})", m_name, what, offset, value);
}

uint8_t PflashCfi01::read_byte(uint64_t offset) const
{
    switch (m_mode) {
    case Mode::ReadArray:
        return m_array[offset];
    case Mode::Status:
        return m_status;
    case Mode::Identifier:
        return 0; // manufacturer and device codes are 0 on QEMU's pc flash; other offsets (lock status) read 0
    case Mode::Query: {
        uint64_t const index = offset & 0xff;
        return index < m_cfi.size() ? m_cfi[index] : 0;
    }
    }
    return 0xff;
}

void PflashCfi01::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    if (!checked_add(offset, data.size()).has_value() || offset + data.size() > m_size) {
        std::fill(data.begin(), data.end(), 0xff);
        bad_access("read past the end", offset, data.size());
        return;
    }
    if (m_mode == Mode::ReadArray) {
        std::copy_n(m_array.begin() + static_cast<std::ptrdiff_t>(offset), data.size(), data.begin());
        return;
    }
    std::fill(data.begin(), data.end(), 0);
    if (m_mode == Mode::Status) {
        // As QEMU's flash without a device width: the status in byte 0 and, in 32-bit halves, byte 2.
        for (size_t i = 0; i < data.size(); i += 4) {
            data[i] = m_status;
            if (i + 2 < data.size() && data.size() >= 4)
                data[i + 2] = m_status;
        }
        return;
    }
    data[0] = read_byte(offset); // ID and CFI data: one byte, the rest 0
}

void PflashCfi01::program(uint64_t offset, std::span<uint8_t const> data)
{
    if (read_only()) {
        ++m_stats.refused;
        m_status |= SR_PROGRAM_ERROR;
        return;
    }
    std::array<uint8_t, 8> result {};
    for (size_t i = 0; i < data.size(); ++i) {
        // Programming only moves bits from 1 to 0.
        result[i] = m_array[offset + i] & data[i];
        m_array[offset + i] = result[i];
    }
    ++m_stats.programs;
    std::span<uint8_t const> const bufs[] = { std::span<uint8_t const>(result.data(), data.size()) };
    if (auto r = m_store->write_vectored(offset, bufs); !r) {
        ++m_stats.store_errors;
        m_status |= SR_PROGRAM_ERROR;
        HAKO_WARN_RATELIMITED("{}: writing {}: {}", m_name, m_store->path(), r.error().message());
        return;
    }
    m_unsynced = true;
}

void PflashCfi01::erase(uint64_t offset)
{
    if (read_only()) {
        ++m_stats.refused;
        m_status |= SR_ERASE_ERROR;
        return;
    }
    uint64_t const block = offset & ~(PFLASH_SECTOR_SIZE - 1);
    auto const range = m_array.subspan(static_cast<size_t>(block), PFLASH_SECTOR_SIZE);
    std::fill(range.begin(), range.end(), 0xff);
    ++m_stats.erases;
    std::span<uint8_t const> const bufs[] = { range };
    if (auto r = m_store->write_vectored(block, bufs); !r) {
        ++m_stats.store_errors;
        m_status |= SR_ERASE_ERROR;
        HAKO_WARN_RATELIMITED("{}: writing {}: {}", m_name, m_store->path(), r.error().message());
        return;
    }
    m_unsynced = true;
    flush_store();
}

void PflashCfi01::write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_mutex);
    uint64_t const value = data.size() <= 8 ? load_le(data) : 0;
    if (data.empty() || data.size() > 8 || !checked_add(offset, data.size()).has_value()
        || offset + data.size() > m_size) {
        bad_access("write past the end or of a bad size", offset, value);
        if (m_pending != Pending::None) {
            // The second cycle of a program or erase is unusable: the operation fails, nothing changes.
            m_pending = Pending::None;
            m_status |= SR_PROGRAM_ERROR | SR_READY;
            set_mode(Mode::Status);
        }
        return;
    }
    uint8_t const cmd = data[0];

    // Second cycle of a two-cycle command.
    switch (m_pending) {
    case Pending::Program:
        m_pending = Pending::None;
        program(offset, data);
        m_status |= SR_READY;
        set_mode(Mode::Status);
        return;
    case Pending::Erase:
        m_pending = Pending::None;
        if (cmd == CMD_ERASE_CONFIRM) {
            erase(offset);
            m_status |= SR_READY;
            set_mode(Mode::Status);
        } else if (cmd == CMD_READ_ARRAY) {
            set_mode(Mode::ReadArray);
        } else {
            // Improper command sequence: SR.4 and SR.5 together (Intel datasheets).
            m_status |= SR_ERASE_ERROR | SR_PROGRAM_ERROR | SR_READY;
            bad_access("block erase not confirmed", offset, value);
            set_mode(Mode::Status);
        }
        return;
    case Pending::Lock:
        m_pending = Pending::None;
        if (cmd == CMD_ERASE_CONFIRM || cmd == CMD_LOCK_BLOCK) {
            m_status |= SR_READY; // accepted; no block locking is modelled
            set_mode(Mode::Status);
        } else {
            set_mode(Mode::ReadArray);
        }
        return;
    case Pending::None:
        break;
    }

    ++m_stats.commands;
    switch (cmd) {
    case CMD_READ_ARRAY:
    case CMD_READ_ARRAY_ALT:
    case CMD_AMD_RESET:
        set_mode(Mode::ReadArray);
        break;
    case CMD_PROGRAM:
    case CMD_PROGRAM_ALT:
        m_pending = Pending::Program;
        set_mode(Mode::Status);
        break;
    case CMD_BLOCK_ERASE:
    case CMD_BLOCK_ERASE_ALT:
        m_pending = Pending::Erase;
        set_mode(Mode::Status);
        break;
    case CMD_CLEAR_STATUS:
        m_status = 0; // all bits, SR.7 too, as QEMU (OVMF's flash detection expects status 0 afterwards)
        set_mode(Mode::ReadArray);
        break;
    case CMD_LOCK_SETUP:
        m_pending = Pending::Lock;
        set_mode(Mode::Status);
        break;
    case CMD_READ_STATUS:
        set_mode(Mode::Status);
        break;
    case CMD_READ_ID:
        set_mode(Mode::Identifier);
        break;
    case CMD_CFI_QUERY:
        set_mode(Mode::Query);
        break;
    default:
        bad_access("unknown command", offset, value);
        set_mode(Mode::ReadArray);
        break;
    }
}

} // namespace hako::devices::flash
