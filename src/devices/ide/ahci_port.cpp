#include "devices/ide/ahci_port.h"

#include <algorithm>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/ide/ahci_regs.h"
#include "devices/ide/ata_regs.h"

namespace hako::devices::ide {

using namespace ahci;

namespace {
constexpr uint8_t STATUS_OK = ST_DRDY | ST_DSC;
constexpr uint32_t NCQ_MAX_SECTORS = 65536;
constexpr uint32_t HIGH_DWORD_SHIFT = 32;

uint64_t with_low(uint64_t v, uint32_t low) { return (v & ~uint64_t { 0xffffffff }) | low; }
uint64_t with_high(uint64_t v, uint32_t high) { return (v & 0xffffffff) | uint64_t { high } << HIGH_DWORD_SHIFT; }
} // namespace

AhciPort::AhciPort(memory::GuestMemory const& mem, std::shared_ptr<IdeDrive> drive, AhciStats& stats)
    : m_mem(mem), m_drive(std::move(drive)), m_stats(stats)
{
    reset();
}

void AhciPort::reset()
{
    m_is = m_ie = 0;
    m_cmd = CMD_SUD | CMD_POD;
    m_sctl = m_serr = m_sact = m_ci = 0;
    m_halted = m_srst = false;
    m_ncq_error = false;
    reset_device();
}

void AhciPort::reset_device()
{
    m_srst = false;
    if (!present()) {
        m_ssts = 0;
        m_sig = SIG_NONE;
        m_tfd = 0x7f;
        m_init_d2h_due = false;
        return;
    }
    m_drive->reset();
    m_ssts = SSTS_PRESENT;
    m_sig = m_drive->kind() == DriveKind::Cdrom ? SIG_ATAPI : SIG_ATA;
    set_tfd(STATUS_OK, 0x01); // diagnostics passed
    m_init_d2h_due = true;
    if (m_cmd & CMD_FRE) {
        AtaTaskFile sig;
        sig.cur[REG_COUNT] = static_cast<uint8_t>(m_sig);
        sig.cur[REG_LBA_LOW] = static_cast<uint8_t>(m_sig >> 8);
        sig.cur[REG_LBA_MID] = static_cast<uint8_t>(m_sig >> 16);
        sig.cur[REG_LBA_HIGH] = static_cast<uint8_t>(m_sig >> 24);
        post_d2h(STATUS_OK, 0x01, sig, false);
        m_init_d2h_due = false;
    }
}

// --- Registers ---

uint32_t AhciPort::read(uint32_t reg) const
{
    switch (reg) {
    case P_CLB:
        return static_cast<uint32_t>(m_clb);
    case P_CLBU:
        return static_cast<uint32_t>(m_clb >> HIGH_DWORD_SHIFT);
    case P_FB:
        return static_cast<uint32_t>(m_fb);
    case P_FBU:
        return static_cast<uint32_t>(m_fb >> HIGH_DWORD_SHIFT);
    case P_IS:
        return m_is;
    case P_IE:
        return m_ie;
    case P_CMD:
        return m_cmd;
    case P_TFD:
        return m_tfd;
    case P_SIG:
        return m_sig;
    case P_SSTS:
        return m_ssts;
    case P_SCTL:
        return m_sctl;
    case P_SERR:
        return m_serr;
    case P_SACT:
        return m_sact;
    case P_CI:
        return m_ci;
    default:
        return 0; // SNTF, FBS, DEVSLP and vendor registers: not implemented, read as zero
    }
}

void AhciPort::write(uint32_t reg, uint32_t value)
{
    switch (reg) {
    case P_CLB:
        m_clb = with_low(m_clb, value & ~0x3ffu); // 1 KiB aligned
        return;
    case P_CLBU:
        m_clb = with_high(m_clb, value);
        return;
    case P_FB:
        m_fb = with_low(m_fb, value & ~0xffu); // 256-byte aligned
        return;
    case P_FBU:
        m_fb = with_high(m_fb, value);
        return;
    case P_IS:
        m_is &= ~value;
        return;
    case P_IE:
        m_ie = value & PIS_VALID;
        return;
    case P_CMD:
        set_cmd(value);
        return;
    case P_SCTL: {
        uint32_t const old_det = m_sctl & SCTL_DET_MASK;
        m_sctl = value & 0xfff;
        uint32_t const det = m_sctl & SCTL_DET_MASK;
        if (det == SCTL_DET_COMRESET || det == SCTL_DET_OFFLINE) {
            m_ssts = 0; // COMRESET asserted, or the interface disabled: no link
            return;
        }
        if (det == 0 && old_det != 0)
            reset_device(); // COMRESET released: the device comes back with its signature
        return;
    }
    case P_SERR:
        m_serr &= ~value;
        return;
    case P_SACT:
        if (m_cmd & CMD_ST)
            m_sact |= value;
        return;
    case P_CI:
        issue(value);
        return;
    default:
        ++m_stats.bad_accesses; // read-only or unimplemented register
        return;
    }
}

void AhciPort::set_cmd(uint32_t value)
{
    uint32_t const old = m_cmd;
    m_cmd = (m_cmd & ~CMD_RW) | (value & CMD_RW);
    if ((value & CMD_CLO) && !(old & CMD_ST))
        m_tfd &= ~uint32_t { ST_BSY | ST_DRQ }; // command list override
    // FIS receive: FR follows FRE at once; a device signature still to deliver is posted now.
    if (m_cmd & CMD_FRE) {
        m_cmd |= CMD_FR;
        if (m_init_d2h_due && present()) {
            m_init_d2h_due = false;
            AtaTaskFile sig;
            sig.cur[REG_COUNT] = static_cast<uint8_t>(m_sig);
            sig.cur[REG_LBA_LOW] = static_cast<uint8_t>(m_sig >> 8);
            sig.cur[REG_LBA_MID] = static_cast<uint8_t>(m_sig >> 16);
            sig.cur[REG_LBA_HIGH] = static_cast<uint8_t>(m_sig >> 24);
            post_d2h(static_cast<uint8_t>(m_tfd), static_cast<uint8_t>(m_tfd >> 8), sig, false);
        }
    } else {
        m_cmd &= ~CMD_FR;
    }
    if (!(m_cmd & CMD_ST)) {
        // Stopping the engine (AHCI 1.3 3.3.7, 6.2.2): PxCI and PxSACT cleared, CCS reset, CR clear.
        m_cmd &= ~(CMD_CR | CMD_CCS_MASK);
        m_ci = 0;
        m_sact = 0;
        m_halted = false;
        return;
    }
    if (!(old & CMD_ST)) {
        m_cmd |= CMD_CR;
        m_cmd &= ~CMD_CCS_MASK;
        process();
    }
}

void AhciPort::issue(uint32_t bits)
{
    if (!(m_cmd & CMD_ST)) {
        ++m_stats.bad_accesses; // PxCI is only valid while the engine runs
        return;
    }
    m_ci |= bits;
    process();
}

void AhciPort::process()
{
    if (m_in_process)
        return;
    if (!m_bus_master) {
        ++m_stats.bad_accesses; // no DMA without bus master enable: the commands wait
        HAKO_WARN_RATELIMITED("ahci: commands issued while the PCI bus master enable bit is clear");
        return;
    }
    m_in_process = true;
    // Each slot runs at most once per call: 32 commands, then the loop ends whatever the guest wrote.
    for (unsigned slot = 0; slot < SLOTS && !m_halted && (m_cmd & CMD_ST); ++slot) {
        if (!(m_ci & (1u << slot)))
            continue;
        m_cmd = (m_cmd & ~CMD_CCS_MASK) | slot << CMD_CCS_SHIFT;
        if (!present()) {
            ++m_stats.bad_accesses;
            m_ci &= ~(1u << slot); // no device: nothing is sent; the slot is dropped
            continue;
        }
        ++m_stats.commands;
        if (run_slot(slot) == Outcome::Halt)
            break;
    }
    m_in_process = false;
}

// --- Commands ---

AhciPort::Outcome AhciPort::run_slot(unsigned slot)
{
    auto const raw = m_mem.read_obj<std::array<uint8_t, HEADER_SIZE>>(memory::GuestAddr(m_clb + slot * HEADER_SIZE));
    if (!raw)
        return bad_table(slot, PIS_HBFS, "command list outside RAM");
    Header h;
    h.flags = get_le32(raw->data());
    h.table = get_le64(raw->data() + 8) & ~uint64_t { 0x7f };
    auto const cfis = m_mem.read_obj<std::array<uint8_t, 20>>(memory::GuestAddr(h.table + CT_CFIS));
    if (!cfis)
        return bad_table(slot, PIS_HBFS, "command table outside RAM");
    std::array<uint8_t, 20> const& fis = *cfis;
    AtaTaskFile tf;
    tf.cur[REG_FEATURES] = fis[3];
    tf.cur[REG_LBA_LOW] = fis[4];
    tf.cur[REG_LBA_MID] = fis[5];
    tf.cur[REG_LBA_HIGH] = fis[6];
    tf.cur[REG_DEVICE] = fis[7];
    tf.hob[REG_LBA_LOW] = fis[8];
    tf.hob[REG_LBA_MID] = fis[9];
    tf.hob[REG_LBA_HIGH] = fis[10];
    tf.hob[REG_FEATURES] = fis[11];
    tf.cur[REG_COUNT] = fis[12];
    tf.hob[REG_COUNT] = fis[13];
    uint32_t const cfl = h.flags & HDR_CFL_MASK;
    if (fis[0] != FIS_H2D || cfl < 5) {
        ++m_stats.bad_tables;
        HAKO_WARN_RATELIMITED("ahci: slot {}: not a Register H2D FIS (type {:#x}, {} dwords)", slot, fis[0], cfl);
        return fail(slot, ERR_ABRT, tf);
    }
    if (!(fis[1] & FIS_H2D_C)) {
        // A Device Control update (software reset, ATA8-ACS / SATA 11.4): SRST set, then cleared.
        bool const srst = fis[15] & CTL_SRST;
        if (srst) {
            m_srst = true;
            set_tfd(ST_BSY, 0);
        } else if (m_srst) {
            reset_device();
        }
        complete_slot(slot, 0);
        return Outcome::Done;
    }
    uint8_t const command = fis[2];
    if (command == CMD_READ_FPDMA_QUEUED || command == CMD_WRITE_FPDMA_QUEUED)
        return run_ncq(slot, h, tf, command);
    if ((command == CMD_READ_LOG_EXT || command == CMD_READ_LOG_DMA_EXT) && m_drive->kind() == DriveKind::Disk)
        return read_log(slot, h, tf);
    return run_ata(slot, h, tf, command);
}

AhciPort::Outcome AhciPort::run_ata(unsigned slot, Header const& h, AtaTaskFile const& tf, uint8_t command)
{
    AtaAction const a = ata_execute(*m_drive, command, tf);
    bool prd_irq = false;
    using Kind = AtaAction::Kind;
    switch (a.kind) {
    case Kind::Complete: {
        AtaTaskFile out = tf;
        if (a.has_count_out)
            out.cur[REG_COUNT] = a.count_out;
        return finish(slot, STATUS_OK, 0, out, 0);
    }
    case Kind::Abort:
        if (a.io_error)
            ++m_stats.io_errors;
        return fail(slot, a.error, tf);
    case Kind::Signature:
    case Kind::DeviceReset:
    case Kind::Diagnostic: {
        AtaTaskFile sig;
        sig.cur[REG_COUNT] = static_cast<uint8_t>(m_sig);
        sig.cur[REG_LBA_LOW] = static_cast<uint8_t>(m_sig >> 8);
        sig.cur[REG_LBA_MID] = static_cast<uint8_t>(m_sig >> 16);
        sig.cur[REG_LBA_HIGH] = static_cast<uint8_t>(m_sig >> 24);
        if (a.kind == Kind::Signature)
            return fail(slot, ERR_ABRT, sig);
        return finish(slot, STATUS_OK, 0x01, sig, 0);
    }
    case Kind::Identify: {
        auto const id = m_drive->identify();
        if (copy_out(slot, h, id, false, prd_irq) == Outcome::Halt)
            return Outcome::Halt;
        post_pio_setup(STATUS_OK, static_cast<uint16_t>(id.size()));
        m_is |= PIS_PSS | (prd_irq ? PIS_DPS : 0);
        return finish(slot, STATUS_OK, 0, tf, static_cast<uint32_t>(id.size()));
    }
    case Kind::Read:
    case Kind::Write: {
        bool const to_memory = a.kind == Kind::Read;
        if (transfer_sectors(slot, h, a.lba, a.count, to_memory, prd_irq) == Outcome::Halt)
            return Outcome::Halt;
        if (!a.dma) {
            post_pio_setup(STATUS_OK, static_cast<uint16_t>(std::min<uint64_t>(a.block_sectors * ATA_SECTOR, 0xffff)));
            m_is |= PIS_PSS;
        }
        if (prd_irq)
            m_is |= PIS_DPS;
        return finish(slot, STATUS_OK, 0, tf, static_cast<uint32_t>(a.count * ATA_SECTOR));
    }
    case Kind::Packet:
        return run_packet(slot, h);
    }
    return fail(slot, ERR_ABRT, tf);
}

AhciPort::Outcome AhciPort::run_packet(unsigned slot, Header const& h)
{
    AtaTaskFile const none;
    auto const acmd = m_mem.read_obj<std::array<uint8_t, PACKET_SIZE>>(memory::GuestAddr(h.table + CT_ACMD));
    if (!acmd)
        return bad_table(slot, PIS_HBFS, "ATAPI command outside RAM");
    AtapiResult r = m_drive->atapi_command(*acmd);
    bool prd_irq = false;
    uint64_t bytes = 0;
    switch (r.kind) {
    case AtapiResult::Kind::Done:
        break;
    case AtapiResult::Kind::Error:
        return fail(slot, static_cast<uint8_t>(r.sense_key << 4 | ERR_ABRT), none);
    case AtapiResult::Kind::Data:
        // The allocation length is in the packet; a PRDT smaller than the reply takes what fits.
        if (copy_out(slot, h, r.data, true, prd_irq) == Outcome::Halt)
            return Outcome::Halt;
        bytes = r.data.size();
        break;
    case AtapiResult::Kind::Read: {
        std::vector<Segment> segs;
        uint64_t covered = 0;
        if (!collect_prdt(h, r.length, segs, covered, prd_irq))
            return bad_table(slot, PIS_HBFS, "PRDT entry or buffer outside RAM");
        if (covered < r.length)
            return bad_table(slot, PIS_OFS, "PRDT shorter than the transfer");
        std::vector<std::span<uint8_t>> bufs;
        for (auto const& s : segs) {
            auto span = m_mem.span(s.addr, s.len);
            if (!span)
                return bad_table(slot, PIS_HBFS, "buffer outside RAM");
            bufs.push_back(span->bytes());
        }
        if (!m_drive->image().read_vectored(r.offset, bufs)) {
            ++m_stats.io_errors;
            HAKO_WARN_RATELIMITED("ahci: CD-ROM read at byte {} failed", r.offset);
            m_drive->set_sense(sense::MEDIUM_ERROR, sense::ASC_UNRECOVERED_READ);
            return fail(slot, static_cast<uint8_t>(sense::MEDIUM_ERROR << 4 | ERR_ABRT), none);
        }
        bytes = r.length;
        break;
    }
    }
    if (r.kind != AtapiResult::Kind::Done)
        post_pio_setup(STATUS_OK, static_cast<uint16_t>(std::min<uint64_t>(bytes, 0xfffe)));
    if (prd_irq)
        m_is |= PIS_DPS;
    AtaTaskFile out;
    out.cur[REG_COUNT] = IR_IO | IR_COD; // interrupt reason: command complete
    return finish(slot, STATUS_OK, 0, out, static_cast<uint32_t>(std::min<uint64_t>(bytes, UINT32_MAX)));
}

AhciPort::Outcome AhciPort::run_ncq(unsigned slot, Header const& h, AtaTaskFile const& tf, uint8_t command)
{
    ++m_stats.ncq_commands;
    uint8_t const tag = static_cast<uint8_t>(tf.cur[REG_COUNT] >> 3 & 0x1f);
    uint64_t lba = 0;
    uint64_t count = 0;
    AtaTaskFile range = tf; // NCQ carries the sector count in the features registers
    range.cur[REG_COUNT] = tf.cur[REG_FEATURES];
    range.hob[REG_COUNT] = tf.hob[REG_FEATURES];
    ata_range(*m_drive, range, true, lba, count);
    if (count > NCQ_MAX_SECTORS)
        count = NCQ_MAX_SECTORS;
    bool const write = command == CMD_WRITE_FPDMA_QUEUED;
    uint8_t error = 0;
    if (m_drive->kind() != DriveKind::Disk || (write && m_drive->read_only()))
        error = ERR_ABRT;
    else if (lba > m_drive->sectors() || count > m_drive->sectors() - lba)
        error = ERR_IDNF | ERR_ABRT;
    m_sact |= 1u << slot; // software should have set it; the device owns the tag until the SDB FIS
    if (error) {
        // An NCQ error (SATA 13.6.3.2, AHCI 6.2.2.1), as QEMU's ich9-ahci reports it: the device accepts the command
        // (D2H without ERR: PxCI clears), then sends a Set Device Bits FIS with ERR in its status, the error code and
        // no tag completed (the failed tag stays in PxSACT); the HBA updates PxTFD, sets PxIS.SDBS and PxIS.TFES and
        // stops the port until software clears PxCMD.ST. READ LOG EXT page 10h then names the tag.
        m_ncq_error = true;
        m_ncq_error_tag = tag;
        m_ncq_error_status = STATUS_OK | ST_ERR;
        m_ncq_error_code = error;
        ++m_stats.task_file_errors;
        post_d2h(STATUS_OK, 0, tf, false);
        m_ci &= ~(1u << slot);
        std::array<uint8_t, 8> sdb {};
        sdb[0] = FIS_SDB;
        sdb[1] = FIS_I;
        sdb[2] = (STATUS_OK | ST_ERR) & 0x77;
        sdb[3] = error;
        post_fis(RFIS_SDBFIS, sdb);
        set_tfd(STATUS_OK | ST_ERR, error);
        m_is |= PIS_SDBS | PIS_TFES;
        m_cmd = (m_cmd & ~CMD_CCS_MASK) | slot << CMD_CCS_SHIFT;
        m_halted = true; // PxSACT keeps the tag until software clears PxCMD.ST
        return Outcome::Halt;
    }
    bool prd_irq = false;
    if (transfer_sectors(slot, h, lba, count, !write, prd_irq) == Outcome::Halt)
        return Outcome::Halt;
    // The device accepted the command (D2H clearing BSY, no interrupt), then completes it with Set Device Bits.
    post_d2h(STATUS_OK, 0, tf, false);
    std::array<uint8_t, 8> sdb {};
    sdb[0] = FIS_SDB;
    sdb[1] = FIS_I;
    sdb[2] = STATUS_OK & 0x77;
    put_le32(sdb.data() + 4, 1u << slot);
    post_fis(RFIS_SDBFIS, sdb);
    set_tfd(STATUS_OK, 0);
    m_sact &= ~(1u << slot);
    m_is |= PIS_SDBS | (prd_irq ? PIS_DPS : 0);
    complete_slot(slot, static_cast<uint32_t>(count * ATA_SECTOR));
    return Outcome::Done;
}

AhciPort::Outcome AhciPort::read_log(unsigned slot, Header const& h, AtaTaskFile const& tf)
{
    uint8_t const log = tf.cur[REG_LBA_LOW];
    uint32_t const pages = static_cast<uint32_t>(tf.hob[REG_COUNT] << 8 | tf.cur[REG_COUNT]);
    if (log != LOG_NCQ_ERROR || pages != 1 || tf.cur[REG_LBA_MID] != 0 || tf.hob[REG_LBA_MID] != 0)
        return fail(slot, ERR_ABRT, tf);
    // NCQ command error log (ATA8-ACS A.13): the failed tag, its status and error; reading it clears the error.
    std::array<uint8_t, 512> page {};
    if (m_ncq_error) {
        page[0] = m_ncq_error_tag;
        page[2] = m_ncq_error_status;
        page[3] = m_ncq_error_code;
    } else {
        page[0] = 0x80; // NQ: no queued command failed
    }
    uint8_t sum = 0;
    for (size_t i = 0; i < 511; ++i)
        sum = static_cast<uint8_t>(sum + page[i]);
    page[511] = static_cast<uint8_t>(0x100 - sum);
    bool prd_irq = false;
    if (copy_out(slot, h, page, false, prd_irq) == Outcome::Halt)
        return Outcome::Halt;
    m_ncq_error = false;
    post_pio_setup(STATUS_OK, 512);
    m_is |= PIS_PSS;
    return finish(slot, STATUS_OK, 0, tf, 512);
}

// --- Data ---

bool AhciPort::collect_prdt(Header const& h, uint64_t total, std::vector<Segment>& out, uint64_t& covered, bool& irq)
{
    covered = 0;
    uint32_t const prdtl = h.flags >> HDR_PRDTL_SHIFT;
    for (uint32_t i = 0; i < prdtl && covered < total; ++i) {
        auto const e = m_mem.read_obj<std::array<uint8_t, PRD_SIZE>>(memory::GuestAddr(h.table + CT_PRDT + i * PRD_SIZE));
        if (!e)
            return false;
        uint64_t const dba = get_le64(e->data()) & ~uint64_t { 1 };
        uint32_t const dw3 = get_le32(e->data() + 12);
        uint64_t const dbc = (dw3 & PRD_DBC_MASK) + 1u;
        uint32_t const use = static_cast<uint32_t>(std::min(dbc, total - covered));
        if (!m_mem.is_ram(memory::GuestAddr(dba), use))
            return false;
        out.push_back({ memory::GuestAddr(dba), use });
        covered += use;
        if (dw3 & PRD_I)
            irq = true;
    }
    return true;
}

AhciPort::Outcome AhciPort::transfer_sectors(unsigned slot, Header const& h, uint64_t lba, uint64_t count,
                                             bool to_memory, bool& prd_irq)
{
    uint64_t const total = count * ATA_SECTOR;
    std::vector<Segment> segs;
    uint64_t covered = 0;
    if (!collect_prdt(h, total, segs, covered, prd_irq))
        return bad_table(slot, PIS_HBFS, "PRDT entry or buffer outside RAM");
    if (covered < total)
        return bad_table(slot, PIS_OFS, "PRDT shorter than the transfer");
    std::vector<std::span<uint8_t>> in;
    std::vector<std::span<uint8_t const>> out;
    for (auto const& s : segs) {
        auto span = m_mem.span(s.addr, s.len);
        if (!span)
            return bad_table(slot, PIS_HBFS, "buffer outside RAM");
        if (to_memory)
            in.push_back(span->bytes());
        else
            out.emplace_back(span->bytes());
    }
    bool const ok = to_memory ? static_cast<bool>(m_drive->image().read_vectored(lba * ATA_SECTOR, in))
                              : static_cast<bool>(m_drive->image().write_vectored(lba * ATA_SECTOR, out));
    if (!ok) {
        ++m_stats.io_errors;
        HAKO_WARN_RATELIMITED("ahci: {} of sector {} failed", to_memory ? "read" : "write", lba);
        AtaTaskFile none;
        return fail(slot, to_memory ? ERR_UNC | ERR_ABRT : ERR_ABRT, none);
    }
    return Outcome::Done;
}

AhciPort::Outcome AhciPort::copy_out(unsigned slot, Header const& h, std::span<uint8_t const> data, bool truncate,
                                     bool& prd_irq)
{
    std::vector<Segment> segs;
    uint64_t covered = 0;
    if (!collect_prdt(h, data.size(), segs, covered, prd_irq))
        return bad_table(slot, PIS_HBFS, "PRDT entry or buffer outside RAM");
    if (covered < data.size() && !truncate)
        return bad_table(slot, PIS_OFS, "PRDT shorter than the transfer");
    size_t pos = 0;
    for (auto const& s : segs) {
        if (!m_mem.write(s.addr, data.subspan(pos, s.len)))
            return bad_table(slot, PIS_HBFS, "buffer outside RAM");
        pos += s.len;
    }
    return Outcome::Done;
}

// --- Completion ---

void AhciPort::post_fis(uint64_t offset, std::span<uint8_t const> fis)
{
    if (!(m_cmd & CMD_FRE))
        return; // FIS receive disabled: the FIS is not kept (PxTFD still reflects it)
    if (!m_mem.write(memory::GuestAddr(m_fb + offset), fis)) {
        ++m_stats.bad_tables;
        HAKO_WARN_RATELIMITED("ahci: received-FIS area at {:#x} is not in RAM", m_fb);
    }
}

void AhciPort::post_d2h(uint8_t status, uint8_t error, AtaTaskFile const& tf, bool interrupt)
{
    std::array<uint8_t, 20> fis {};
    fis[0] = FIS_D2H;
    fis[1] = interrupt ? FIS_I : 0;
    fis[2] = status;
    fis[3] = error;
    fis[4] = tf.cur[REG_LBA_LOW];
    fis[5] = tf.cur[REG_LBA_MID];
    fis[6] = tf.cur[REG_LBA_HIGH];
    fis[7] = tf.cur[REG_DEVICE];
    fis[8] = tf.hob[REG_LBA_LOW];
    fis[9] = tf.hob[REG_LBA_MID];
    fis[10] = tf.hob[REG_LBA_HIGH];
    fis[12] = tf.cur[REG_COUNT];
    fis[13] = tf.hob[REG_COUNT];
    post_fis(RFIS_RFIS, fis);
    set_tfd(status, error);
}

void AhciPort::post_pio_setup(uint8_t status, uint16_t bytes)
{
    std::array<uint8_t, 20> fis {};
    fis[0] = FIS_PIO_SETUP;
    fis[1] = FIS_PIO_D | FIS_I;
    fis[2] = status; // the status after the transfer (SeaBIOS reads it here)
    fis[15] = status; // E_Status
    put_le16(fis.data() + 16, bytes);
    post_fis(RFIS_PSFIS, fis);
}

void AhciPort::complete_slot(unsigned slot, uint32_t bytes)
{
    // PRDBC: bytes transferred (4.2.2, DW1).
    uint8_t b[4];
    put_le32(b, bytes);
    if (!m_mem.write(memory::GuestAddr(m_clb + slot * HEADER_SIZE + 4), std::span<uint8_t const>(b, 4)))
        ++m_stats.bad_tables;
    m_ci &= ~(1u << slot);
}

AhciPort::Outcome AhciPort::finish(unsigned slot, uint8_t status, uint8_t error, AtaTaskFile const& tf, uint32_t bytes)
{
    post_d2h(status, error, tf, true);
    m_is |= PIS_DHRS;
    complete_slot(slot, bytes);
    return Outcome::Done;
}

AhciPort::Outcome AhciPort::fail(unsigned slot, uint8_t error, AtaTaskFile const& tf, uint32_t extra_is)
{
    ++m_stats.task_file_errors;
    post_d2h(STATUS_OK | ST_ERR, error, tf, true);
    m_is |= PIS_DHRS | PIS_TFES | extra_is;
    m_cmd = (m_cmd & ~CMD_CCS_MASK) | slot << CMD_CCS_SHIFT;
    m_halted = true; // PxCI keeps the slot until software clears PxCMD.ST
    return Outcome::Halt;
}

AhciPort::Outcome AhciPort::bad_table(unsigned slot, uint32_t cause, char const* what)
{
    ++m_stats.bad_tables;
    HAKO_WARN_RATELIMITED("ahci: slot {}: {} (command list at {:#x})", slot, what, m_clb);
    set_tfd(STATUS_OK | ST_ERR, ERR_ABRT);
    m_is |= cause | PIS_TFES;
    m_cmd = (m_cmd & ~CMD_CCS_MASK) | slot << CMD_CCS_SHIFT;
    m_halted = true;
    return Outcome::Halt;
}

} // namespace hako::devices::ide
