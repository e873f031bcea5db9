// Rtl8139: the register file, the EEPROM interface, C mode transmit and receive, interrupts.
#include "devices/net/rtl8139.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/net/nic_common.h"
#include "net/checksum.h"

namespace hako::devices::net {

using namespace rtl8139;
using memory::GuestAddr;

namespace {

constexpr uint32_t CLASS_ETHERNET = 0x020000;
constexpr size_t RX_HEADER = 4;
constexpr uint16_t ANAR_DEFAULT = 0x05e1;   // 10/100 half/full, pause, 802.3
constexpr uint16_t ANLPAR_DEFAULT = 0x45e1; // the partner's abilities, acknowledged
constexpr uint16_t ANER_DEFAULT = 0x0001;   // the partner can autonegotiate
constexpr uint8_t MSR_DEFAULT = 0x10;       // AUX power present; LINKB = 0 (link up), SPEED_10 = 0 (100 Mb/s)
constexpr uint16_t CAPR_RESET = 0xfff0;
constexpr uint32_t TCR_WRITABLE = 0x03070ff0; // IFG, LBK and CRC, MXDMA, TXRR
constexpr uint16_t SUBSYSTEM_VENDOR_ID = 0x10ec;
constexpr uint16_t SUBSYSTEM_ID = 0x8139;

bool in(uint32_t off, uint32_t base, uint32_t len) { return off >= base && off < base + len; }

/// Registers whose bytes are only writable with 9346CR.EEM = 11 (datasheet 6.1: CONFIG registers).
bool config_locked(uint32_t off)
{
    return off == CONFIG1 || off == CONFIG3 || off == CONFIG4 || off == CONFIG5;
}

/// Bytes with no register behind them: read as 0, writes ignored. Drivers probe here: iPXE tells an RTL8169 from an
/// 8139 by whether a value written to 0xda (the 8169's RxMaxSize) reads back.
bool reserved(uint32_t off)
{
    return in(off, RESERVED_DA, 6);
}

/// Bytes a guest write cannot change (read-only or computed); plain storage otherwise.
bool read_only(uint32_t off)
{
    return in(off, 0x06, 2) || in(off, ERBCR, 3) || in(off, CBR, 2) || off == CONFIG0 || off == 0x53 || off == MSR
        || off == 0x5b || off == RERID || off == 0x5f || in(off, TSAD_SUMMARY, 2) || in(off, BMSR, 2)
        || in(off, ANLPAR, 4);
}

std::array<uint16_t, e1000::EEPROM_WORDS> eeprom_image(hako::net::MacAddress const& mac)
{
    std::array<uint16_t, e1000::EEPROM_WORDS> w {};
    w.fill(0);
    w[EEPROM_WORD_ID] = EEPROM_ID;
    w[1] = Rtl8139::VENDOR_ID;
    w[2] = Rtl8139::DEVICE_ID;
    w[3] = SUBSYSTEM_VENDOR_ID;
    w[4] = SUBSYSTEM_ID;
    w[5] = 0x4020; // MXLAT 0x40, MNGNT 0x20
    for (unsigned i = 0; i < 3; ++i)
        w[EEPROM_WORD_MAC + i] = static_cast<uint16_t>(mac[2 * i] | mac[2 * i + 1] << 8);
    return w;
}

pci::PciIdentity identity()
{
    pci::PciIdentity id;
    id.vendor_id = Rtl8139::VENDOR_ID;
    id.device_id = Rtl8139::DEVICE_ID;
    id.class_code = CLASS_ETHERNET;
    id.revision = Rtl8139::REVISION;
    id.subsystem_vendor_id = SUBSYSTEM_VENDOR_ID;
    id.subsystem_id = SUBSYSTEM_ID;
    id.interrupt_pin = 1;
    return id;
}

} // namespace

Result<std::shared_ptr<Rtl8139>> Rtl8139::create(memory::GuestMemory const& mem,
    std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac, Rtl8139Options options)
{
    if (!backend)
        return Error(ErrorKind::InvalidArgument, "rtl8139: no network backend");
    auto dev = std::make_shared<Rtl8139>(Passkey {}, mem, std::move(backend), mac, std::move(options));
    TRY(dev->add_bar(IO_BAR, pci::BarKind::Io, REG_SIZE));
    TRY(dev->add_bar(MMIO_BAR, pci::BarKind::Mem32, REG_SIZE));
    TRY(finish_nic(dev, *dev->m_backend, dev->m_option_rom.size())); // last: receive() may run from here on
    return dev;
}

Rtl8139::Rtl8139(Passkey, memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
    hako::net::MacAddress mac, Rtl8139Options options)
    : PciDevice(identity())
    , m_mem(mem)
    , m_backend(std::move(backend))
    , m_mac(mac)
    , m_option_rom(std::move(options.option_rom))
    , m_clock_ns(std::move(options.clock_ns))
    , m_eeprom(eeprom_image(mac))
    , m_tx_buf(TX_SIZE_MAX)
    , m_rx_buf(RX_HEADER + RX_FRAME_MAX + FCS_LEN)
    , m_cp_tx_frame(CP_TX_FRAME_MAX)
    , m_cp_segment(CP_TX_WIRE_MAX)
    , m_cp_wire(CP_TX_WIRE_MAX)
{
    std::lock_guard lock(m_state_lock);
    power_on_locked();
}

Rtl8139::~Rtl8139()
{
    // Waits for a delivery in progress; afterwards the backend never calls receive() again.
    m_backend->set_receiver({});
}

Rtl8139Stats Rtl8139::stats() const
{
    std::lock_guard lock(m_state_lock);
    Rtl8139Stats s = m_stats;
    s.eeprom_unsupported = m_eeprom.unsupported_commands();
    return s;
}

void Rtl8139::reset_device()
{
    std::lock_guard lock(m_state_lock);
    power_on_locked();
}

uint16_t Rtl8139::r16(uint32_t off) const { return static_cast<uint16_t>(m_regs[off] | m_regs[off + 1] << 8); }
uint32_t Rtl8139::r32(uint32_t off) const { return r16(off) | static_cast<uint32_t>(r16(off + 2)) << 16; }
void Rtl8139::w16(uint32_t off, uint16_t v)
{
    m_regs[off] = static_cast<uint8_t>(v);
    m_regs[off + 1] = static_cast<uint8_t>(v >> 8);
}
void Rtl8139::w32(uint32_t off, uint32_t v)
{
    w16(off, static_cast<uint16_t>(v));
    w16(off + 2, static_cast<uint16_t>(v >> 16));
}

void Rtl8139::power_on_locked()
{
    m_regs.fill(0);
    load_from_eeprom_locked();
    w32(TCR, TCR_HWVER);
    w16(BMCR, BMCR_DEFAULT);
    w16(BMSR, BMSR_DEFAULT);
    w16(ANAR, ANAR_DEFAULT);
    w16(ANLPAR, ANLPAR_DEFAULT);
    w16(ANER, ANER_DEFAULT);
    m_regs[MSR] = MSR_DEFAULT;
    m_tctr_base_ns = m_clock_ns ? m_clock_ns() : 0;
    m_eeprom.reset_interface();
    soft_reset_locked();
}

void Rtl8139::load_from_eeprom_locked()
{
    for (unsigned i = 0; i < 3; ++i)
        w16(IDR0 + 2 * i, m_eeprom.word(EEPROM_WORD_MAC + i));
}

// CR.RST (datasheet 6.1): receiver and transmitter off, the buffer pointers to their initial values, interrupts
// cleared; IDR, MAR and the PCI configuration are kept.
void Rtl8139::soft_reset_locked()
{
    m_regs[CR] = 0;
    for (unsigned i = 0; i < 4; ++i)
        w32(TSD0 + 4 * i, TSD_OWN);
    w16(IMR, 0);
    w16(ISR, 0);
    w16(CAPR, CAPR_RESET);
    w16(CPCR, 0);
    m_regs[TPPOLL] = 0;
    m_rx_write = 0;
    m_rx_starved = false;
    m_cp_tx_index = m_cp_hi_index = m_cp_rx_index = 0;
    m_cp_tx_started = m_cp_tx_bad = false;
    update_irq();
}

void Rtl8139::bad_access(std::string_view what, uint64_t offset, size_t size)
{
    ++m_stats.bad_accesses;
    HAKO_WARN_RATELIMITED("rtl8139: {} at offset {:#x} ({} bytes)", what, offset, size);
}

// --- BAR accesses ---

void Rtl8139::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (bar == pci::ROM_BAR) {
        read_option_rom(m_option_rom, offset, data);
        return;
    }
    std::lock_guard lock(m_state_lock);
    if (!register_access_ok(bar, IO_BAR, MMIO_BAR, offset, data.size(), REG_SIZE)) {
        bad_access("read", offset, data.size());
        return;
    }
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = read_byte(static_cast<uint32_t>(offset + i));
}

uint8_t Rtl8139::read_byte(uint32_t off)
{
    switch (off) {
    case CR: {
        bool const empty = m_rx_write % rx_buffer_len() == ((r16(CAPR) + 16u) & 0xffff) % rx_buffer_len();
        return static_cast<uint8_t>(m_regs[CR] | (empty ? CR_BUFE : 0));
    }
    case CBR:
    case CBR + 1:
        return static_cast<uint8_t>(m_rx_write >> (8 * (off - CBR)));
    case CR9346: {
        bool const program = (m_regs[CR9346] & EEM_MASK) == EEM_PROGRAM;
        return static_cast<uint8_t>(m_regs[CR9346] | (program && m_eeprom.data_out() ? EE_DO : 0));
    }
    case TSAD_SUMMARY:
    case TSAD_SUMMARY + 1: {
        uint16_t summary = 0;
        for (unsigned i = 0; i < 4; ++i) {
            uint32_t const tsd = r32(TSD0 + 4 * i);
            summary |= static_cast<uint16_t>(((tsd & TSD_TOK) ? 1u << (12 + i) : 0) | ((tsd & TSD_TUN) ? 1u << (8 + i) : 0)
                | ((tsd & TSD_TABT) ? 1u << (4 + i) : 0) | ((tsd & TSD_OWN) ? 1u << i : 0));
        }
        return static_cast<uint8_t>(summary >> (8 * (off - TSAD_SUMMARY)));
    }
    default:
        break;
    }
    if (reserved(off))
        return 0;
    if (in(off, TCTR, 4)) {
        int64_t const ns = m_clock_ns ? m_clock_ns() - m_tctr_base_ns : 0;
        uint32_t const ticks = static_cast<uint32_t>(static_cast<uint64_t>(ns) * 33 / 1000); // 33 MHz PCI clock
        return static_cast<uint8_t>(ticks >> (8 * (off - TCTR)));
    }
    return m_regs[off];
}

void Rtl8139::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_state_lock);
    if (!register_access_ok(bar, IO_BAR, MMIO_BAR, offset, data.size(), REG_SIZE)) {
        bad_access("write", offset, data.size());
        return;
    }
    // Store every byte first, then run each touched register's side effect once (a dword TSD write sends once).
    std::array<uint32_t, 4> touched {};
    size_t n = 0;
    for (size_t i = 0; i < data.size(); ++i) {
        uint32_t const off = static_cast<uint32_t>(offset + i);
        if (!write_byte(off, data[i]))
            continue;
        // TSDn, TSADn and the C+ ring addresses are dwords; TPPOLL a byte; CAPR, IMR, ISR, BMCR and CPCR words.
        uint32_t const base = (in(off, TSD0, 32) || in(off, RDSAR, 8)) ? off & ~3u : off == TPPOLL ? off : off & ~1u;
        if (n == 0 || touched[n - 1] != base)
            touched[n++] = base;
    }
    for (size_t i = 0; i < n; ++i)
        register_written(touched[i]);
}

bool Rtl8139::write_byte(uint32_t off, uint8_t value)
{
    if (in(off, ISR, 2)) {
        m_regs[off] &= static_cast<uint8_t>(~value); // write 1 to clear
        return true;
    }
    if (in(off, IMR, 2)) {
        m_regs[off] = static_cast<uint8_t>(value & (INT_VALID >> (8 * (off - IMR))));
        return true;
    }
    if (in(off, TSD0, 16) || in(off, CAPR, 2) || in(off, BMCR, 2) || in(off, TSAD0, 16) || in(off, RDSAR, 8)) {
        m_regs[off] = value;
        return true;
    }
    if (in(off, CPCR, 2)) {
        m_regs[off] = static_cast<uint8_t>(value & (CPCR_WRITABLE >> (8 * (off - CPCR))));
        return true;
    }
    if (off == TPPOLL) {
        m_regs[off] = value & (TPPOLL_HPQ | TPPOLL_NPQ | TPPOLL_FSWINT);
        return true;
    }
    if (in(off, TCTR, 4)) {
        m_tctr_base_ns = m_clock_ns ? m_clock_ns() : 0; // any write zeroes the counter
        return false;
    }
    if (in(off, MPC, 4)) {
        w32(MPC, 0);
        return false;
    }
    if (in(off, TCR, 4)) {
        uint8_t const mask = static_cast<uint8_t>(TCR_WRITABLE >> (8 * (off - TCR)));
        m_regs[off] = static_cast<uint8_t>((m_regs[off] & ~mask) | (value & mask));
        return false;
    }
    if (off == CR) {
        if (value & CR_RST) {
            soft_reset_locked();
            return false;
        }
        uint8_t const old = m_regs[CR];
        m_regs[CR] = value & (CR_RE | CR_TE);
        if ((value & CR_TE) && !(old & CR_TE) && !cplus_tx()) {
            for (unsigned slot = 0; slot < 4; ++slot) // slots the driver handed over while TE was clear
                if (!(r32(TSD0 + 4 * slot) & TSD_OWN))
                    transmit(slot);
        }
        if ((value & CR_RE) && !(old & CR_RE) && m_rx_starved) {
            m_rx_starved = false;
            m_backend->rx_buffers_available();
        }
        return false;
    }
    if (off == CR9346) {
        uint8_t const eem = value & EEM_MASK;
        if (eem == EEM_AUTOLOAD) {
            load_from_eeprom_locked(); // completes at once; EEM returns to normal
            m_regs[CR9346] = 0;
        } else if (eem == EEM_PROGRAM) {
            m_regs[CR9346] = value & (EEM_MASK | EE_CS | EE_SK | EE_DI);
            m_eeprom.write_pins(((value & EE_SK) ? e1000::EECD_SK : 0) | ((value & EE_CS) ? e1000::EECD_CS : 0)
                | ((value & EE_DI) ? e1000::EECD_DI : 0));
        } else {
            if ((m_regs[CR9346] & EEM_MASK) == EEM_PROGRAM)
                m_eeprom.write_pins(0); // leaving programming mode drops CS
            m_regs[CR9346] = eem;
        }
        return false;
    }
    if (config_locked(off)) {
        if ((m_regs[CR9346] & EEM_MASK) == EEM_CONFIG_WRITE)
            m_regs[off] = value;
        else
            bad_access("CONFIG write without 9346CR config write enable", off, 1);
        return false;
    }
    if (!read_only(off) && !reserved(off))
        m_regs[off] = value;
    return false;
}

void Rtl8139::register_written(uint32_t base)
{
    if (in(base, TSD0, 16)) {
        if (r16(CPCR) & (CPCR_TX_ON | CPCR_RX_ON)) { // C+ mode: the tally counter address
            if (base == STATS_ADDR && (r32(STATS_ADDR) & STATS_DUMP))
                dump_tally();
            return;
        }
        unsigned const slot = (base - TSD0) / 4;
        if (!(r32(base) & TSD_OWN) && (m_regs[CR] & CR_TE))
            transmit(slot);
    } else if (in(base, TSAD0, 16)) {
        if (in(base, TNPDS, 8)) // a new ring starts at its first descriptor
            m_cp_tx_index = 0;
        else
            m_cp_hi_index = 0;
    } else if (in(base, RDSAR, 8)) {
        m_cp_rx_index = 0;
        retry_rx();
    } else if (base == CPCR) {
        retry_rx();
    } else if (base == TPPOLL) {
        uint8_t const poll = m_regs[TPPOLL];
        m_regs[TPPOLL] = 0; // the poll completes at once
        if (poll & TPPOLL_HPQ)
            cp_transmit_poll(THPDS, m_cp_hi_index);
        if (poll & TPPOLL_NPQ)
            cp_transmit_poll(TNPDS, m_cp_tx_index);
        if (poll & TPPOLL_FSWINT)
            set_cause(INT_SWINT);
    } else if (base == CAPR) {
        if (m_rx_starved) {
            m_rx_starved = false;
            m_backend->rx_buffers_available();
        }
    } else if (base == BMCR) {
        if (r16(BMCR) & BMCR_RESET)
            w16(BMCR, BMCR_DEFAULT); // the PHY reset completes at once
    } else {
        update_irq(); // IMR, ISR
        if (base == ISR && cplus_rx())
            retry_rx();
    }
}

void Rtl8139::retry_rx()
{
    if (m_rx_starved) {
        m_rx_starved = false;
        m_backend->rx_buffers_available();
    }
}

// --- Interrupts ---

void Rtl8139::set_cause(uint16_t causes)
{
    w16(ISR, static_cast<uint16_t>(r16(ISR) | causes));
    update_irq();
}

void Rtl8139::count_received(size_t bytes, uint16_t status)
{
    ++m_stats.rx_frames;
    m_stats.rx_bytes += bytes;
    if (status & RX_BAR)
        ++m_stats.rx_broadcast;
    else if (status & RX_MAR)
        ++m_stats.rx_multicast;
    else
        ++m_stats.rx_unicast;
}

void Rtl8139::update_irq()
{
    bool const level = (r16(ISR) & r16(IMR)) != 0;
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (level)
        ++m_stats.interrupts;
    set_intx(level);
}

// --- Transmit (C mode) ---

void Rtl8139::transmit(unsigned slot)
{
    uint32_t const tsd_off = TSD0 + 4 * slot;
    uint32_t tsd = r32(tsd_off) & ~(TSD_TOK | TSD_TUN | TSD_TABT);
    uint32_t const size = tsd & TSD_SIZE_MASK;
    uint32_t const addr = r32(TSAD0 + 4 * slot);
    bool ok = size > 0 && size <= TX_SIZE_MAX;
    if (!ok) {
        HAKO_WARN_RATELIMITED("rtl8139: TSD{} size {} out of range", slot, size);
    } else if (auto r = m_mem.read(GuestAddr(addr), std::span<uint8_t>(m_tx_buf).first(size)); !r) {
        HAKO_WARN_RATELIMITED("rtl8139: TSAD{} buffer {:#x}+{} outside guest RAM", slot, addr, size);
        ok = false;
    }
    if (!ok) {
        ++m_stats.tx_aborted;
        w32(tsd_off, tsd | TSD_OWN | TSD_TABT);
        set_cause(INT_TER);
        return;
    }
    size_t len = size;
    if (len < ETH_MIN_PADDED) {
        std::fill(m_tx_buf.begin() + static_cast<ptrdiff_t>(len), m_tx_buf.begin() + ETH_MIN_PADDED, uint8_t { 0 });
        len = ETH_MIN_PADDED;
    }
    m_backend->send(std::span<uint8_t const>(m_tx_buf).first(len));
    ++m_stats.tx_frames;
    m_stats.tx_bytes += len;
    w32(tsd_off, tsd | TSD_OWN | TSD_TOK);
    set_cause(INT_TOK);
}

// --- Receive (C mode) ---

uint32_t Rtl8139::rx_buffer_len() const
{
    return 8192u << ((r32(RCR) >> RCR_RBLEN_SHIFT) & 3);
}

uint32_t Rtl8139::rx_free() const
{
    uint32_t const len = rx_buffer_len();
    uint32_t const read = ((r16(CAPR) + 16u) & 0xffff) % len;
    uint32_t const write = m_rx_write % len;
    return write >= read ? len - (write - read) : read - write;
}

bool Rtl8139::rx_accept(std::span<uint8_t const> frame, uint16_t& status) const
{
    uint32_t const rcr = r32(RCR);
    auto const dst = frame.first(6);
    bool const broadcast = std::all_of(dst.begin(), dst.end(), [](uint8_t b) { return b == 0xff; });
    if (broadcast) {
        status |= RX_BAR;
        return (rcr & (RCR_AB | RCR_AAP)) != 0;
    }
    if (dst[0] & 1) {
        status |= RX_MAR;
        if (rcr & RCR_AAP)
            return true;
        uint32_t const hash = hako::net::multicast_crc(dst) >> 26;
        return (rcr & RCR_AM) && ((m_regs[MAR0 + hash / 8] >> (hash % 8)) & 1);
    }
    if (std::equal(dst.begin(), dst.end(), m_regs.begin() + IDR0)) {
        status |= RX_PAM;
        return (rcr & (RCR_APM | RCR_AAP)) != 0;
    }
    return (rcr & RCR_AAP) != 0;
}

bool Rtl8139::receive(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_state_lock);
    if (!(m_regs[CR] & CR_RE)) {
        ++m_stats.rx_dropped_disabled;
        return true;
    }
    if (frame.size() < 14 || frame.size() > RX_FRAME_MAX) {
        ++m_stats.rx_dropped_bad;
        HAKO_WARN_RATELIMITED("rtl8139: dropping a received frame of {} bytes", frame.size());
        return true;
    }
    uint16_t status = RX_ROK;
    if (!rx_accept(frame, status)) {
        ++m_stats.rx_filtered;
        return true;
    }
    if (cplus_rx())
        return cp_receive(frame, status);
    size_t const padded = std::max(frame.size(), ETH_MIN_PADDED);
    size_t const pkt_len = padded + FCS_LEN;
    uint32_t const total = static_cast<uint32_t>((RX_HEADER + pkt_len + 3) & ~size_t { 3 });
    if (total >= rx_free()) { // the write offset must never catch up with CAPR + 16 (that reads as empty)
        ++m_stats.rx_no_buffer;
        w32(MPC, (r32(MPC) + 1) & 0xffffff);
        m_rx_starved = true;
        set_cause(INT_RXOVW);
        return false;
    }
    // The header, the frame, its padding and the FCS, then DMA at RBSTART + CBR.
    uint8_t* out = m_rx_buf.data();
    put_le16(out, status);
    put_le16(out + 2, static_cast<uint16_t>(pkt_len));
    std::memcpy(out + RX_HEADER, frame.data(), frame.size());
    std::memset(out + RX_HEADER + frame.size(), 0, padded - frame.size());
    put_le32(out + RX_HEADER + padded, hako::net::ethernet_crc32(std::span<uint8_t const>(out + RX_HEADER, padded)));
    size_t const bytes = RX_HEADER + pkt_len;

    uint32_t const len = rx_buffer_len();
    uint32_t const off = m_rx_write % len;
    uint64_t const start = r32(RBSTART);
    // Without WRAP, what does not fit before the end of the buffer continues at its start.
    size_t const first = (r32(RCR) & RCR_WRAP) ? bytes : std::min<size_t>(bytes, len - off);
    bool ok = m_mem.write(GuestAddr(start + off), std::span<uint8_t const>(out, first)).has_value();
    if (ok && first < bytes)
        ok = m_mem.write(GuestAddr(start), std::span<uint8_t const>(out + first, bytes - first)).has_value();
    if (!ok) {
        ++m_stats.rx_bad_buffer;
        HAKO_WARN_RATELIMITED("rtl8139: receive buffer {:#x} (+{:#x}) outside guest RAM", start, off);
        set_cause(INT_RER);
        return true;
    }
    m_rx_write = (off + total) % len;
    count_received(frame.size(), status);
    set_cause(INT_ROK);
    return true;
}

} // namespace hako::devices::net
