#include "devices/ide/ide_channel.h"

#include <algorithm>

#include "base/log.h"
#include "devices/ide/ata_command.h"

namespace hako::devices::ide {

namespace {
constexpr size_t MAX_CHUNK = 0x10000;   // the largest PIO block (ATAPI byte count limit) and DMA I/O piece
constexpr uint16_t ATAPI_MAX_BYTE_COUNT = 0xfffe;
} // namespace

IdeChannel::IdeChannel(memory::GuestMemory const& mem, std::shared_ptr<bus::IrqLine> irq)
    : m_mem(mem), m_irq(std::move(irq)), m_bus_master_enabled([] { return true; })
{
    m_buf.resize(MAX_CHUNK);
}

void IdeChannel::attach(unsigned unit, std::shared_ptr<IdeDrive> drive)
{
    std::lock_guard lock(m_lock);
    if (unit >= 2)
        return;
    m_drives[unit] = std::move(drive);
    set_signature(unit);
    if (m_drives[unit])
        m_bm_status |= unit == 0 ? BM_ST_DRIVE0_DMA : BM_ST_DRIVE1_DMA;
}

void IdeChannel::set_bus_master_enabled(std::function<bool()> enabled)
{
    std::lock_guard lock(m_lock);
    m_bus_master_enabled = std::move(enabled);
}

IdeStats IdeChannel::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

void IdeChannel::reset()
{
    std::lock_guard lock(m_lock);
    m_control = 0;
    m_bm_command = 0;
    m_bm_status = 0;
    m_prd_table = 0;
    for (unsigned unit = 0; unit < 2; ++unit)
        if (m_drives[unit])
            m_bm_status |= unit == 0 ? BM_ST_DRIVE0_DMA : BM_ST_DRIVE1_DMA;
    soft_reset();
}

// --- Registers ---

void IdeChannel::command_read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_lock);
    if (offset == REG_DATA) {
        data_read(data);
        return;
    }
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < COMMAND_BLOCK_SIZE ? read_register(static_cast<uint8_t>(offset + i)) : 0xff;
}

void IdeChannel::command_write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_lock);
    if (offset == REG_DATA) {
        data_write(data);
        return;
    }
    for (size_t i = 0; i < data.size() && offset + i < COMMAND_BLOCK_SIZE; ++i)
        write_register(static_cast<uint8_t>(offset + i), data[i]);
}

uint8_t IdeChannel::read_register(uint8_t reg)
{
    if (!m_drives[0] && !m_drives[1])
        return 0xff; // nothing on the cable: the bus floats
    if (!selected())
        return 0; // device 0 answers for an absent device 1 with zeros
    TaskFile& t = tf();
    bool const hob = m_control & CTL_HOB;
    switch (reg) {
    case REG_ERROR:
        return t.error;
    case REG_COUNT:
    case REG_LBA_LOW:
    case REG_LBA_MID:
    case REG_LBA_HIGH:
        return hob ? t.hob[reg] : t.cur[reg];
    case REG_DEVICE:
        return static_cast<uint8_t>(t.cur[REG_DEVICE] | DEV_OBSOLETE);
    case REG_STATUS:
        m_irq_pending = false;
        update_irq();
        return t.status;
    default:
        return 0xff;
    }
}

uint8_t IdeChannel::alt_status()
{
    std::lock_guard lock(m_lock);
    if (!m_drives[0] && !m_drives[1])
        return 0xff;
    return selected() ? tf().status : 0;
}

void IdeChannel::write_register(uint8_t reg, uint8_t value)
{
    m_control = static_cast<uint8_t>(m_control & ~CTL_HOB); // a command block write clears HOB
    if (reg == REG_COMMAND) {
        if (m_control & CTL_SRST)
            return; // no commands while reset is asserted
        execute(value);
        return;
    }
    for (auto& t : m_tf) { // both devices see every register write
        t.hob[reg] = t.cur[reg];
        t.cur[reg] = value;
    }
    if (reg == REG_DEVICE)
        m_selected = (value & DEV_DEV) ? 1 : 0;
}

void IdeChannel::device_control(uint8_t value)
{
    std::lock_guard lock(m_lock);
    bool const was_reset = m_control & CTL_SRST;
    m_control = value;
    if (value & CTL_SRST) {
        for (auto& t : m_tf)
            t.status = ST_BSY;
        m_phase = Phase::Idle;
    } else if (was_reset) {
        soft_reset(); // SRST released: the devices finish their reset
    }
    update_irq();
}

void IdeChannel::soft_reset()
{
    m_phase = Phase::Idle;
    m_pos = m_len = 0;
    m_selected = 0;
    m_irq_pending = false;
    for (unsigned unit = 0; unit < 2; ++unit) {
        if (m_drives[unit])
            m_drives[unit]->reset();
        set_signature(unit);
    }
    update_irq();
}

void IdeChannel::set_signature(unsigned unit)
{
    TaskFile& t = m_tf[unit];
    t = TaskFile {};
    IdeDrive const* drive = m_drives[unit].get();
    if (!drive)
        return;
    bool const atapi = drive->kind() == DriveKind::Cdrom;
    t.cur[REG_COUNT] = 1;
    t.cur[REG_LBA_LOW] = 1;
    t.cur[REG_LBA_MID] = atapi ? 0x14 : 0;
    t.cur[REG_LBA_HIGH] = atapi ? 0xeb : 0;
    t.error = 0x01; // diagnostics passed
    t.status = atapi ? 0 : static_cast<uint8_t>(ST_DRDY | ST_DSC);
}

void IdeChannel::raise_irq()
{
    if (m_irq_pending && m_irq_level) {
        // A new interrupt while the last one was not acknowledged: give the edge-triggered ISA line a new edge.
        m_irq->set_level(false);
        m_irq_level = false;
    }
    m_irq_pending = true;
    if (!(m_control & CTL_NIEN))
        m_bm_status |= BM_ST_INTERRUPT; // the bus master latches INTRQ as the device drives it (nIEN masks both)
    update_irq();
}

void IdeChannel::update_irq()
{
    bool const level = m_irq_pending && !(m_control & CTL_NIEN);
    if (level != m_irq_level) {
        m_irq_level = level;
        m_irq->set_level(level);
    }
}

void IdeChannel::complete()
{
    m_phase = Phase::Idle;
    tf().status = ST_DRDY | ST_DSC;
    raise_irq();
}

void IdeChannel::abort_command(uint8_t error)
{
    m_phase = Phase::Idle;
    ++m_stats.aborted;
    tf().error = error;
    tf().status = ST_DRDY | ST_DSC | ST_ERR;
    raise_irq();
}

// --- Data port ---

void IdeChannel::data_read(std::span<uint8_t> data)
{
    if (m_phase != Phase::PioIn) {
        ++m_stats.bad_accesses;
        HAKO_WARN_RATELIMITED("ide: data port read outside a transfer");
    }
    for (auto& byte : data) {
        if (m_phase != Phase::PioIn || m_pos >= m_len) {
            byte = 0xff;
            continue;
        }
        byte = m_buf[m_pos++];
        if (m_pos == m_len)
            pio_block_done();
    }
}

void IdeChannel::data_write(std::span<uint8_t const> data)
{
    for (uint8_t byte : data) {
        if ((m_phase != Phase::PioOut && m_phase != Phase::Packet) || m_pos >= m_len) {
            ++m_stats.bad_accesses;
            HAKO_WARN_RATELIMITED("ide: data port write outside a transfer");
            return;
        }
        m_buf[m_pos++] = byte;
        if (m_pos == m_len) {
            if (m_phase == Phase::Packet)
                packet_received();
            else
                pio_block_done();
        }
    }
}

// --- Commands ---

void IdeChannel::execute(uint8_t command)
{
    IdeDrive* drive = selected();
    if (!drive)
        return; // an absent device ignores commands
    ++m_stats.commands;
    m_command = command;
    m_phase = Phase::Idle;
    m_pos = m_len = 0;
    tf().error = 0;
    AtaAction const a = ata_execute(*drive, command, tf());
    using Kind = AtaAction::Kind;
    switch (a.kind) {
    case Kind::Complete:
        if (a.has_count_out)
            for (auto& tt : m_tf)
                tt.cur[REG_COUNT] = a.count_out;
        return complete();
    case Kind::Abort:
        if (a.io_error)
            ++m_stats.io_errors;
        return abort_command(a.error);
    case Kind::Signature:
        set_signature(m_selected);
        return abort_command();
    case Kind::DeviceReset:
        set_signature(m_selected);
        return;
    case Kind::Diagnostic: {
        unsigned const sel = m_selected;
        for (unsigned unit = 0; unit < 2; ++unit)
            set_signature(unit);
        m_selected = sel;
        raise_irq();
        return;
    }
    case Kind::Identify: {
        auto const id = drive->identify();
        std::copy(id.begin(), id.end(), m_buf.begin());
        m_remaining = 0;
        m_source = Source::None;
        m_len = id.size();
        m_pos = 0;
        m_phase = Phase::PioIn;
        tf().status = ST_DRDY | ST_DSC | ST_DRQ;
        raise_irq();
        return;
    }
    case Kind::Read:
    case Kind::Write:
        m_lba = a.lba;
        m_remaining = a.count;
        if (a.dma)
            return start_dma(a.kind == Kind::Read);
        if (a.kind == Kind::Read)
            return start_pio_in(a.block_sectors);
        return start_pio_out(a.block_sectors);
    case Kind::Packet:
        m_phase = Phase::Packet;
        m_pos = 0;
        m_len = PACKET_SIZE;
        for (auto& tt : m_tf)
            tt.cur[REG_COUNT] = IR_COD; // ready for the command packet
        tf().status = ST_DRDY | ST_DSC | ST_DRQ;
        return; // no interrupt for the packet's DRQ
    }
}

// --- ATA data transfers ---

void IdeChannel::start_pio_in(uint32_t block_sectors)
{
    m_block_sectors = block_sectors;
    m_source = Source::Disk;
    if (!load_disk_block())
        return;
    m_phase = Phase::PioIn;
    tf().status = ST_DRDY | ST_DSC | ST_DRQ;
    raise_irq();
}

bool IdeChannel::load_disk_block()
{
    uint64_t const n = std::min<uint64_t>(m_remaining, m_block_sectors);
    m_len = static_cast<size_t>(n * ATA_SECTOR);
    m_pos = 0;
    std::span<uint8_t> buf(m_buf.data(), m_len);
    std::array<std::span<uint8_t>, 1> bufs { buf };
    if (!selected()->image().read_vectored(m_lba * ATA_SECTOR, bufs)) {
        ++m_stats.io_errors;
        HAKO_WARN_RATELIMITED("ide: read of sector {} failed", m_lba);
        abort_command(ERR_UNC | ERR_ABRT);
        return false;
    }
    return true;
}

void IdeChannel::start_pio_out(uint32_t block_sectors)
{
    m_block_sectors = block_sectors;
    m_len = static_cast<size_t>(std::min<uint64_t>(m_remaining, m_block_sectors) * ATA_SECTOR);
    m_pos = 0;
    m_phase = Phase::PioOut;
    tf().status = ST_DRDY | ST_DSC | ST_DRQ; // the first block needs no interrupt
}

void IdeChannel::pio_block_done()
{
    IdeDrive* drive = selected();
    if (m_phase == Phase::PioIn) {
        if (m_source == Source::Buffer || (m_source == Source::Disk && drive->kind() == DriveKind::Cdrom)) {
            atapi_next_chunk();
            return;
        }
        if (m_source == Source::None) { // IDENTIFY
            m_phase = Phase::Idle;
            tf().status = ST_DRDY | ST_DSC;
            return;
        }
        uint64_t const done = m_len / ATA_SECTOR;
        m_lba += done;
        m_remaining -= done;
        if (m_remaining == 0) {
            m_phase = Phase::Idle;
            tf().status = ST_DRDY | ST_DSC; // no interrupt after the last block of a read
            return;
        }
        if (load_disk_block()) {
            tf().status = ST_DRDY | ST_DSC | ST_DRQ;
            raise_irq();
        }
        return;
    }
    // PIO out: the block is complete.
    std::span<uint8_t const> buf(m_buf.data(), m_len);
    std::array<std::span<uint8_t const>, 1> bufs { buf };
    if (!drive->image().write_vectored(m_lba * ATA_SECTOR, bufs)) {
        ++m_stats.io_errors;
        HAKO_WARN_RATELIMITED("ide: write of sector {} failed", m_lba);
        return abort_command();
    }
    uint64_t const done = m_len / ATA_SECTOR;
    m_lba += done;
    m_remaining -= done;
    if (m_remaining == 0)
        return complete();
    m_len = static_cast<size_t>(std::min<uint64_t>(m_remaining, m_block_sectors) * ATA_SECTOR);
    m_pos = 0;
    tf().status = ST_DRDY | ST_DSC | ST_DRQ;
    raise_irq();
}

// --- ATAPI ---

void IdeChannel::packet_received()
{
    IdeDrive& drive = *selected();
    std::array<uint8_t, PACKET_SIZE> cdb {};
    std::copy_n(m_buf.begin(), PACKET_SIZE, cdb.begin());
    bool const dma = tf().cur[REG_FEATURES] & PACKET_DMA;
    AtapiResult r = drive.atapi_command(cdb);
    m_phase = Phase::Idle;
    switch (r.kind) {
    case AtapiResult::Kind::Done:
        return atapi_complete(0);
    case AtapiResult::Kind::Error:
        return atapi_complete(r.sense_key);
    case AtapiResult::Kind::Data:
        m_source = Source::Buffer;
        m_reply = std::move(r.data);
        m_reply_pos = 0;
        m_remaining = m_reply.size();
        break;
    case AtapiResult::Kind::Read:
        m_source = Source::Disk;
        m_lba = r.offset;
        m_remaining = r.length;
        break;
    }
    if (dma) {
        start_dma(true);
        return;
    }
    m_phase = Phase::PioIn;
    atapi_next_chunk();
}

void IdeChannel::atapi_next_chunk()
{
    if (m_remaining == 0)
        return atapi_complete(0);
    TaskFile& t = tf();
    uint32_t limit = static_cast<uint32_t>(t.cur[REG_LBA_HIGH] << 8 | t.cur[REG_LBA_MID]);
    if (limit == 0 || limit > ATAPI_MAX_BYTE_COUNT)
        limit = ATAPI_MAX_BYTE_COUNT; // 0 is not a valid limit; an odd 0xFFFF is taken as 0xFFFE
    limit &= ~1u;
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(m_remaining, limit));
    if (m_source == Source::Disk) {
        if (chunk >= CD_BLOCK)
            chunk -= chunk % CD_BLOCK; // whole blocks per DRQ where the limit allows
        std::array<std::span<uint8_t>, 1> bufs { std::span<uint8_t>(m_buf.data(), chunk) };
        if (!selected()->image().read_vectored(m_lba, bufs)) {
            ++m_stats.io_errors;
            HAKO_WARN_RATELIMITED("ide: CD-ROM read at byte {} failed", m_lba);
            selected()->set_sense(sense::MEDIUM_ERROR, sense::ASC_UNRECOVERED_READ);
            return atapi_complete(sense::MEDIUM_ERROR);
        }
        m_lba += chunk;
    } else {
        std::copy_n(m_reply.begin() + static_cast<std::ptrdiff_t>(m_reply_pos), chunk, m_buf.begin());
        m_reply_pos += chunk;
    }
    m_remaining -= chunk;
    m_pos = 0;
    m_len = chunk;
    m_phase = Phase::PioIn;
    for (auto& tt : m_tf) {
        tt.cur[REG_LBA_MID] = static_cast<uint8_t>(chunk);
        tt.cur[REG_LBA_HIGH] = static_cast<uint8_t>(chunk >> 8);
        tt.cur[REG_COUNT] = IR_IO;
    }
    t.status = ST_DRDY | ST_DSC | ST_DRQ;
    raise_irq();
}

void IdeChannel::atapi_complete(uint8_t sense_key)
{
    m_phase = Phase::Idle;
    m_source = Source::None;
    m_reply.clear();
    for (auto& tt : m_tf)
        tt.cur[REG_COUNT] = IR_IO | IR_COD;
    TaskFile& t = tf();
    if (sense_key) {
        ++m_stats.aborted;
        t.error = static_cast<uint8_t>(sense_key << 4 | ERR_ABRT);
        t.status = ST_DRDY | ST_DSC | ST_ERR;
    } else {
        t.error = 0;
        t.status = ST_DRDY | ST_DSC;
    }
    raise_irq();
}

// --- Bus master DMA ---

void IdeChannel::bus_master_read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t const reg = offset + i;
        if (reg == BM_COMMAND)
            data[i] = m_bm_command;
        else if (reg == BM_STATUS)
            data[i] = m_bm_status;
        else if (reg >= BM_PRD_TABLE && reg < BM_CHANNEL_SIZE)
            data[i] = static_cast<uint8_t>(m_prd_table >> (8 * (reg - BM_PRD_TABLE)));
        else
            data[i] = 0;
    }
}

void IdeChannel::bus_master_write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t const reg = offset + i;
        uint8_t const v = data[i];
        if (reg == BM_COMMAND) {
            bool const was_started = m_bm_command & BM_CMD_START;
            m_bm_command = v & (BM_CMD_START | BM_CMD_WRITE_TO_MEMORY);
            if (!(v & BM_CMD_START)) {
                m_bm_status = static_cast<uint8_t>(m_bm_status & ~BM_ST_ACTIVE); // stop: abandons the transfer
            } else if (!was_started) {
                m_bm_status |= BM_ST_ACTIVE;
                try_run_dma();
            }
        } else if (reg == BM_STATUS) {
            uint8_t const w1c = v & (BM_ST_ERROR | BM_ST_INTERRUPT);
            uint8_t const rw = v & (BM_ST_DRIVE0_DMA | BM_ST_DRIVE1_DMA);
            m_bm_status = static_cast<uint8_t>(((m_bm_status & ~w1c) & ~(BM_ST_DRIVE0_DMA | BM_ST_DRIVE1_DMA)) | rw);
        } else if (reg >= BM_PRD_TABLE && reg < BM_CHANNEL_SIZE) {
            unsigned const shift = static_cast<unsigned>(8 * (reg - BM_PRD_TABLE));
            m_prd_table = (m_prd_table & ~(0xffu << shift)) | uint32_t { v } << shift;
            m_prd_table &= ~3u; // dword aligned
        }
    }
}

void IdeChannel::start_dma(bool to_memory)
{
    m_dma_to_memory = to_memory;
    m_dma_atapi = selected()->kind() == DriveKind::Cdrom;
    m_phase = Phase::Dma;
    tf().status = ST_DRDY | ST_DSC | ST_DRQ;
    try_run_dma();
}

bool IdeChannel::collect_prds(uint64_t total, std::vector<std::pair<memory::GuestAddr, uint32_t>>& out,
                              uint64_t& covered)
{
    covered = 0;
    uint64_t entry_addr = m_prd_table;
    for (size_t n = 0; n < MAX_PRD_ENTRIES && covered < total; ++n, entry_addr += 8) {
        auto const entry = m_mem.read_obj<std::array<uint8_t, 8>>(memory::GuestAddr(entry_addr));
        if (!entry)
            return false;
        uint32_t const addr = static_cast<uint32_t>((*entry)[0] | (*entry)[1] << 8 | (*entry)[2] << 16)
            | static_cast<uint32_t>((*entry)[3]) << 24;
        uint32_t count = static_cast<uint32_t>((*entry)[4] | (*entry)[5] << 8) & 0xfffe;
        if (count == 0)
            count = 0x10000; // a byte count of 0 means 64 KiB
        bool const eot = (*entry)[7] & 0x80;
        uint32_t const use = static_cast<uint32_t>(std::min<uint64_t>(count, total - covered));
        memory::GuestAddr const buf(addr & ~1u);
        if (!m_mem.is_ram(buf, use))
            return false;
        out.emplace_back(buf, use);
        covered += use;
        if (eot)
            break;
    }
    return true;
}

void IdeChannel::try_run_dma()
{
    if (m_phase != Phase::Dma || !(m_bm_command & BM_CMD_START))
        return;
    IdeDrive& drive = *selected();
    bool const direction_ok = m_dma_to_memory == static_cast<bool>(m_bm_command & BM_CMD_WRITE_TO_MEMORY);
    uint64_t const unit = m_dma_atapi ? 1 : ATA_SECTOR;
    uint64_t const total = m_remaining * unit;
    std::vector<std::pair<memory::GuestAddr, uint32_t>> segments;
    uint64_t covered = 0;
    if (!direction_ok || !m_bus_master_enabled() || !collect_prds(total, segments, covered) || covered < total) {
        ++m_stats.bad_prd_tables;
        HAKO_WARN_RATELIMITED("ide: DMA refused (direction {}, PRD table at {:#x} bad or covering {} of {} bytes)",
            direction_ok ? "ok" : "mismatch", m_prd_table, covered, total);
        return finish_dma(false);
    }
    uint64_t pos = m_dma_atapi && m_source == Source::Buffer ? 0 : m_lba * unit;
    for (auto const& [addr, len] : segments) {
        auto span = m_mem.span(addr, len); // checked above; re-checked here
        if (!span)
            return finish_dma(false);
        bool ok = true;
        if (m_dma_atapi && m_source == Source::Buffer) {
            span->copy_from(std::span<uint8_t const>(m_reply).subspan(static_cast<size_t>(pos), len));
        } else if (m_dma_to_memory) {
            std::array<std::span<uint8_t>, 1> bufs { span->bytes() };
            ok = static_cast<bool>(drive.image().read_vectored(pos, bufs));
        } else {
            std::array<std::span<uint8_t const>, 1> bufs { std::span<uint8_t const>(span->bytes()) };
            ok = static_cast<bool>(drive.image().write_vectored(pos, bufs));
        }
        if (!ok) {
            ++m_stats.io_errors;
            HAKO_WARN_RATELIMITED("ide: DMA I/O at byte {} failed", pos);
            if (m_dma_atapi)
                drive.set_sense(sense::MEDIUM_ERROR, sense::ASC_UNRECOVERED_READ);
            m_bm_command = static_cast<uint8_t>(m_bm_command & ~BM_CMD_START);
            m_bm_status = static_cast<uint8_t>(m_bm_status & ~BM_ST_ACTIVE);
            if (m_dma_atapi)
                return atapi_complete(sense::MEDIUM_ERROR);
            return abort_command(m_dma_to_memory ? ERR_UNC | ERR_ABRT : ERR_ABRT);
        }
        pos += len;
    }
    ++m_stats.dma_transfers;
    m_remaining = 0;
    finish_dma(true);
}

void IdeChannel::finish_dma(bool ok)
{
    m_bm_status = static_cast<uint8_t>(m_bm_status & ~BM_ST_ACTIVE);
    if (!ok)
        m_bm_status |= BM_ST_ERROR;
    if (m_dma_atapi) {
        if (!ok)
            selected()->set_sense(sense::ILLEGAL_REQUEST, 0);
        return atapi_complete(ok ? 0 : sense::ILLEGAL_REQUEST);
    }
    if (!ok)
        return abort_command();
    complete();
}

} // namespace hako::devices::ide
