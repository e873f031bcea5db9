// Pcnet: the I/O window (APROM, RAP/RDP/BDP in WIO and DWIO), CSRs and BCRs, initialisation, the descriptor rings,
// interrupts.
#include "devices/net/pcnet.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/net/nic_common.h"
#include "net/checksum.h"

namespace hako::devices::net {

using namespace pcnet;
using memory::GuestAddr;

namespace {

constexpr uint32_t CLASS_ETHERNET = 0x020000;
constexpr size_t ETH_MIN_PADDED = 60;
constexpr size_t FCS_LEN = 4;
constexpr size_t INIT_BLOCK16 = 24;
constexpr size_t INIT_BLOCK32 = 28;
constexpr unsigned RING16_MAX_LOG2 = 7; // 128 descriptors
constexpr unsigned RING32_MAX_LOG2 = 9; // 512 descriptors

// BCR values after H_RESET (data sheet, BCR register descriptions).
constexpr std::array<std::pair<unsigned, uint16_t>, 11> BCR_DEFAULTS { {
    { 0, 0x0005 }, { 1, 0x0005 }, { BCR_MC, BCR2_ASEL }, { BCR_LNKST, 0x00c0 }, { 5, 0x0084 }, { 6, 0x0088 },
    { BCR_LED3, 0x0090 }, { BCR_FDC, 0x0000 }, { BCR_BSBC, 0x9001 }, { BCR_SWS, SWS_CSRPCNET }, { 22, 0xff06 },
} };

/// CSRs the guest may write only while the device is stopped or suspended.
bool stop_only(unsigned index)
{
    return index == CSR_IADR_LO || index == CSR_IADR_HI || (index >= CSR_LADRF && index <= CSR_MODE)
        || index == CSR_BADR_LO || index == CSR_BADR_HI || index == CSR_BADX_LO || index == CSR_BADX_HI
        || index == CSR_RCVRL || index == CSR_XMTRL;
}

/// The buffer length a descriptor's BCNT field encodes (two's complement, 12 bits).
uint16_t bcnt_bytes(uint16_t field) { return static_cast<uint16_t>(-field & 0x0fff); }

pci::PciIdentity identity()
{
    pci::PciIdentity id;
    id.vendor_id = Pcnet::VENDOR_ID;
    id.device_id = Pcnet::DEVICE_ID;
    id.class_code = CLASS_ETHERNET;
    id.revision = Pcnet::REVISION;
    id.interrupt_pin = 1;
    return id;
}

} // namespace

Result<std::shared_ptr<Pcnet>> Pcnet::create(memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
    hako::net::MacAddress mac, PcnetOptions options)
{
    if (!backend)
        return Error(ErrorKind::InvalidArgument, "pcnet: no network backend");
    auto dev = std::make_shared<Pcnet>(Passkey {}, mem, std::move(backend), mac, std::move(options));
    TRY(dev->add_bar(IO_BAR, pci::BarKind::Io, REG_SIZE));
    TRY(dev->add_bar(MMIO_BAR, pci::BarKind::Mem32, REG_SIZE));
    TRY(finish_nic(dev, *dev->m_backend, dev->m_option_rom.size())); // last: receive() may run from here on
    return dev;
}

Pcnet::Pcnet(Passkey, memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
    hako::net::MacAddress mac, PcnetOptions options)
    : PciDevice(identity())
    , m_mem(mem)
    , m_backend(std::move(backend))
    , m_mac(mac)
    , m_option_rom(std::move(options.option_rom))
    , m_loop(options.loop)
    , m_tx_buf(TX_FRAME_MAX)
    , m_rx_buf(RX_FRAME_MAX + FCS_LEN)
{
    std::lock_guard lock(m_state_lock);
    hard_reset_locked();
}

Pcnet::~Pcnet()
{
    // Waits for a delivery in progress; afterwards the backend never calls receive() again.
    m_backend->set_receiver({});
}

PcnetStats Pcnet::stats() const
{
    std::lock_guard lock(m_state_lock);
    return m_stats;
}

void Pcnet::reset_device()
{
    std::lock_guard lock(m_state_lock);
    hard_reset_locked();
}

// H_RESET: the APROM and PADR from the EEPROM, BCRs to their defaults, WIO mode, then S_RESET.
void Pcnet::hard_reset_locked()
{
    m_aprom.fill(0);
    std::copy(m_mac.begin(), m_mac.end(), m_aprom.begin());
    uint16_t sum = 0;
    for (size_t i = 0; i < 12; ++i)
        sum = static_cast<uint16_t>(sum + m_aprom[i]);
    m_aprom[14] = 0x57; // 'W', 'W': the signature PCnet drivers look for
    m_aprom[15] = 0x57;
    sum = static_cast<uint16_t>(sum + 2 * 0x57);
    put_le16(m_aprom.data() + 12, sum);
    m_csr.fill(0);
    m_bcr.fill(0);
    for (auto [index, value] : BCR_DEFAULTS)
        m_bcr[index] = value;
    m_dwio = false;
    for (unsigned i = 0; i < 3; ++i)
        m_csr[CSR_PADR + i] = static_cast<uint16_t>(m_mac[2 * i] | m_mac[2 * i + 1] << 8);
    soft_reset_locked();
}

// S_RESET (a read of RESET): stopped, interrupts and modes cleared, 16-bit software style; PADR, LADRF, the ring
// registers and the I/O mode are kept.
void Pcnet::soft_reset_locked()
{
    m_csr[0] = CSR0_STOP;
    m_csr[3] = 0;
    m_csr[4] = CSR4_RESET;
    m_csr[5] = 0;
    m_csr[CSR_MODE] = 0;
    m_csr[CSR_CHIPID_LO] = CHIP_ID_LO;
    m_csr[CSR_CHIPID_HI] = CHIP_ID_HI;
    m_bcr[BCR_SWS] = SWS_CSRPCNET;
    m_rap = 0;
    m_rx_index = 0;
    m_tx_index = 0;
    m_rx_starved = false;
    update_irq();
}

void Pcnet::bad_access(std::string_view what, uint64_t offset, size_t size)
{
    ++m_stats.bad_accesses;
    HAKO_WARN_RATELIMITED("pcnet: {} at offset {:#x} ({} bytes)", what, offset, size);
}

// --- BAR accesses ---

void Pcnet::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
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
    uint32_t const off = static_cast<uint32_t>(offset);
    if (off < APROM_SIZE) {
        for (size_t i = 0; i < data.size() && off + i < APROM_SIZE; ++i)
            data[i] = m_aprom[off + i];
        return;
    }
    if (window_width_ok(off, data.size()))
        store_le(data, window_read(off));
    rx_retry_check();
}

void Pcnet::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_state_lock);
    if (!register_access_ok(bar, IO_BAR, MMIO_BAR, offset, data.size(), REG_SIZE)) {
        bad_access("write", offset, data.size());
        return;
    }
    uint32_t const off = static_cast<uint32_t>(offset);
    if (off < APROM_SIZE) {
        if (!(m_bcr[BCR_MC] & BCR2_APROMWE)) {
            bad_access("APROM write without BCR2.APROMWE", offset, data.size());
            return;
        }
        for (size_t i = 0; i < data.size() && off + i < APROM_SIZE; ++i)
            m_aprom[off + i] = data[i];
        return;
    }
    uint32_t const value = static_cast<uint32_t>(load_le(data));
    if (!m_dwio && off == DWIO_RDP && data.size() == 4) {
        m_dwio = true; // a dword write to RDP enters DWIO mode (data sheet, "I/O Resources")
        m_bcr[BCR_BSBC] |= BCR18_DWIO;
    }
    if (window_width_ok(off, data.size()))
        window_write(off, value);
    rx_retry_check();
}

bool Pcnet::window_width_ok(uint32_t off, size_t size)
{
    size_t const width = m_dwio ? 4 : 2;
    if (size == width && off % width == 0)
        return true;
    bad_access(m_dwio ? "access other than a dword in DWIO mode" : "access other than a word in WIO mode", off, size);
    return false;
}

uint32_t Pcnet::window_read(uint32_t off)
{
    unsigned const reg = (off - WIO_RDP) / (m_dwio ? 4u : 2u); // 0 RDP, 1 RAP, 2 RESET, 3 BDP
    switch (reg) {
    case 0:
        return csr_read(m_rap);
    case 1:
        return m_rap;
    case 2:
        soft_reset_locked();
        return 0;
    default:
        return bcr_read(m_rap);
    }
}

void Pcnet::window_write(uint32_t off, uint32_t value)
{
    uint16_t const v = static_cast<uint16_t>(value); // DWIO: bits 31:16 are ignored
    unsigned const reg = (off - WIO_RDP) / (m_dwio ? 4u : 2u);
    switch (reg) {
    case 0:
        csr_write(m_rap, v);
        break;
    case 1:
        m_rap = v & 0xff; // RAP[7:0]; bits 15:8 are reserved
        break;
    case 2:
        break; // writes to RESET have no effect
    default:
        bcr_write(m_rap, v);
        break;
    }
}

// --- CSRs and BCRs ---

uint16_t Pcnet::csr_read(unsigned index)
{
    if (index >= CSR_COUNT)
        return 0;
    switch (index) {
    case 0: {
        uint16_t v = m_csr[0];
        if (v & (CSR0_BABL | CSR0_CERR | CSR0_MISS | CSR0_MERR))
            v |= CSR0_ERR;
        return v;
    }
    case CSR_SWS:
        return m_bcr[BCR_SWS];
    case CSR_RCVRC:
        return static_cast<uint16_t>(m_rx_index);
    case CSR_XMTRC:
        return static_cast<uint16_t>(m_tx_index);
    default:
        return m_csr[index];
    }
}

void Pcnet::csr_write(unsigned index, uint16_t value)
{
    if (index >= CSR_COUNT) {
        bad_access("write to a CSR beyond 127", index, 2);
        return;
    }
    bool const stopped_or_suspended = (m_csr[0] & CSR0_STOP) || (m_csr[5] & CSR5_SPND);
    if (stop_only(index) && !stopped_or_suspended) {
        bad_access("CSR write while running (needs STOP or SPND)", index, 2);
        return;
    }
    switch (index) {
    case 0:
        csr0_write(value);
        return;
    case 3:
        m_csr[3] = value & 0x5f7c; // the masks, DXSUFLO, LAPPEN, DXMT2PD, EMBA, BSWP
        update_irq();
        return;
    case 4: {
        uint16_t v = static_cast<uint16_t>((m_csr[4] & CSR4_W1C & ~value) | (value & ~CSR4_W1C & ~CSR4_UINTCMD));
        if (value & CSR4_UINTCMD)
            v |= CSR4_UINT;
        m_csr[4] = v;
        update_irq();
        return;
    }
    case 5: {
        bool const was_suspended = m_csr[5] & CSR5_SPND;
        m_csr[5] = static_cast<uint16_t>((m_csr[5] & CSR5_W1C & ~value) | (value & ~CSR5_W1C));
        if (was_suspended && !(m_csr[5] & CSR5_SPND)) {
            tx_poll(); // leaving suspend: pick up where the rings stand
            rx_retry_check();
        }
        update_irq();
        return;
    }
    case CSR_SWS:
        bcr_write(BCR_SWS, value);
        return;
    case CSR_RXTXRL:
    case CSR_RCVRC:
    case CSR_XMTRC:
    case CSR_CHIPID_LO:
    case CSR_CHIPID_HI:
        return; // read-only here
    default:
        m_csr[index] = value;
        return;
    }
}

uint16_t Pcnet::bcr_read(unsigned index) const
{
    if (index >= BCR_COUNT)
        return 0;
    uint16_t v = m_bcr[index];
    if (index >= BCR_LNKST && index <= BCR_LED3 && (v & LED_LNKSE))
        v |= LED_LEDOUT; // the link is always up
    return v;
}

void Pcnet::bcr_write(unsigned index, uint16_t value)
{
    if (index >= BCR_COUNT) {
        bad_access("write to a BCR beyond 31", index, 2);
        return;
    }
    switch (index) {
    case BCR_BSBC:
        m_bcr[index] = static_cast<uint16_t>((value & ~BCR18_DWIO) | (m_dwio ? BCR18_DWIO : 0));
        return;
    case BCR_SWS: {
        uint16_t const style = value & 0xff;
        if (style > 3) {
            bad_access("reserved SWSTYLE", style, 2);
            return;
        }
        m_bcr[index] = static_cast<uint16_t>(style | (style != 0 ? SWS_SSIZE32 : 0) | (style != 1 ? SWS_CSRPCNET : 0));
        return;
    }
    default:
        m_bcr[index] = static_cast<uint16_t>(index >= BCR_LNKST && index <= BCR_LED3 ? value & ~LED_LEDOUT : value);
        return;
    }
}

// CSR0 (data sheet, CSR0 description): STOP has precedence and clears every other bit; INIT and STRT may come
// together (initialisation first); TDMD asks for an immediate transmit poll.
void Pcnet::csr0_write(uint16_t value)
{
    uint16_t csr0 = m_csr[0];
    csr0 = static_cast<uint16_t>(csr0 & ~(value & CSR0_W1C));
    csr0 = static_cast<uint16_t>((csr0 & ~CSR0_IENA) | (value & CSR0_IENA));
    m_csr[0] = csr0;
    if (value & CSR0_STOP) {
        m_csr[0] = CSR0_STOP;
        m_rx_starved = false;
        update_irq();
        return;
    }
    if (value & CSR0_INIT)
        initialize();
    if ((value & CSR0_STRT) && !(m_csr[0] & CSR0_STRT))
        start();
    if ((value & CSR0_TDMD) && (m_csr[0] & CSR0_TXON))
        tx_poll();
    update_irq();
}

// Reads the init block (layout by SWSTYLE) into the CSRs and sets IDON.
void Pcnet::initialize()
{
    uint64_t const addr = bus_addr(static_cast<uint32_t>(m_csr[CSR_IADR_LO] | m_csr[CSR_IADR_HI] << 16));
    std::array<uint8_t, INIT_BLOCK32> ib {};
    bool const wide = style32();
    auto const block = std::span<uint8_t>(ib).first(wide ? INIT_BLOCK32 : INIT_BLOCK16);
    m_csr[0] = static_cast<uint16_t>(m_csr[0] & ~(CSR0_STOP | CSR0_TXON | CSR0_RXON | CSR0_STRT));
    if (!m_mem.read(GuestAddr(addr), block)) {
        ++m_stats.bad_init_blocks;
        dma_error("init block", addr);
        m_csr[0] = static_cast<uint16_t>(m_csr[0] | CSR0_STOP);
        return;
    }
    uint8_t const* p = ib.data();
    m_csr[CSR_MODE] = get_le16(p);
    uint64_t rdra = 0;
    uint64_t tdra = 0;
    unsigned rlen = 0;
    unsigned tlen = 0;
    size_t padr = 2;
    size_t ladrf = 8;
    if (wide) {
        rlen = std::min<unsigned>(p[2] >> 4, RING32_MAX_LOG2);
        tlen = std::min<unsigned>(p[3] >> 4, RING32_MAX_LOG2);
        padr = 4;
        ladrf = 12;
        rdra = get_le32(p + 20);
        tdra = get_le32(p + 24);
    } else {
        rlen = std::min<unsigned>(get_le16(p + 18) >> 13, RING16_MAX_LOG2);
        tlen = std::min<unsigned>(get_le16(p + 22) >> 13, RING16_MAX_LOG2);
        rdra = bus_addr(get_le16(p + 16) | static_cast<uint32_t>(p[18]) << 16);
        tdra = bus_addr(get_le16(p + 20) | static_cast<uint32_t>(p[22]) << 16);
    }
    for (unsigned i = 0; i < 3; ++i)
        m_csr[CSR_PADR + i] = get_le16(p + padr + 2 * i);
    for (unsigned i = 0; i < 4; ++i)
        m_csr[CSR_LADRF + i] = get_le16(p + ladrf + 2 * i);
    m_csr[CSR_BADR_LO] = static_cast<uint16_t>(rdra);
    m_csr[CSR_BADR_HI] = static_cast<uint16_t>(rdra >> 16);
    m_csr[CSR_BADX_LO] = static_cast<uint16_t>(tdra);
    m_csr[CSR_BADX_HI] = static_cast<uint16_t>(tdra >> 16);
    m_csr[CSR_RXTXRL] = static_cast<uint16_t>(tlen << 12 | rlen << 8);
    m_csr[CSR_RCVRL] = static_cast<uint16_t>(-(1u << rlen));
    m_csr[CSR_XMTRL] = static_cast<uint16_t>(-(1u << tlen));
    m_rx_index = 0;
    m_tx_index = 0;
    m_csr[0] |= CSR0_IDON;
}

void Pcnet::start()
{
    if (m_csr[0] & CSR0_STOP) { // from a stop: the rings start over
        m_rx_index = 0;
        m_tx_index = 0;
    }
    uint16_t csr0 = static_cast<uint16_t>((m_csr[0] & ~CSR0_STOP) | CSR0_STRT);
    if (!(m_csr[CSR_MODE] & MODE_DTX))
        csr0 |= CSR0_TXON;
    if (!(m_csr[CSR_MODE] & MODE_DRX))
        csr0 |= CSR0_RXON;
    m_csr[0] = csr0;
    arm_poll();
    if (csr0 & CSR0_TXON)
        tx_poll();
    rx_retry_check();
}

void Pcnet::stop_unit(uint16_t on_bit)
{
    m_csr[0] = static_cast<uint16_t>(m_csr[0] & ~on_bit);
}

void Pcnet::dma_error(std::string_view what, uint64_t addr)
{
    ++m_stats.dma_errors;
    m_csr[0] |= CSR0_MERR;
    HAKO_WARN_RATELIMITED("pcnet: {} at {:#x} outside guest RAM (MERR)", what, addr);
}

// --- Polling ---

void Pcnet::arm_poll()
{
    if (!m_loop || m_poll_armed)
        return;
    m_poll_armed = true;
    std::weak_ptr<PciDevice> weak = weak_from_this();
    m_poll_timer = m_loop->add_timer(POLL_INTERVAL, std::chrono::nanoseconds(0), [weak] {
        if (auto d = weak.lock())
            static_cast<Pcnet&>(*d).poll();
    });
}

void Pcnet::poll()
{
    std::lock_guard lock(m_state_lock);
    m_poll_armed = false;
    if (!(m_csr[0] & (CSR0_TXON | CSR0_RXON)))
        return; // stopped: STRT arms the poll again
    if (!(m_csr[4] & CSR4_DPOLL))
        tx_poll();
    rx_retry_check();
    update_irq();
    arm_poll();
}

// --- Descriptors ---

unsigned Pcnet::swstyle() const { return m_bcr[BCR_SWS] & 0xff; }
bool Pcnet::style32() const { return swstyle() != 0; }

uint64_t Pcnet::bus_addr(uint32_t addr) const
{
    if (style32())
        return addr;
    // 16-bit software structures give 24 address bits; CSR2[15:8] supplies bits 31:24.
    return (addr & 0x00ffffffu) | static_cast<uint32_t>(m_csr[CSR_IADR_HI] & 0xff00) << 16;
}

uint32_t Pcnet::rx_ring_len() const
{
    uint32_t const n = static_cast<uint16_t>(-m_csr[CSR_RCVRL]);
    return n == 0 ? 0x10000 : n;
}

uint32_t Pcnet::tx_ring_len() const
{
    uint32_t const n = static_cast<uint16_t>(-m_csr[CSR_XMTRL]);
    return n == 0 ? 0x10000 : n;
}

uint64_t Pcnet::rx_ring_base() const { return m_csr[CSR_BADR_LO] | static_cast<uint64_t>(m_csr[CSR_BADR_HI]) << 16; }
uint64_t Pcnet::tx_ring_base() const { return m_csr[CSR_BADX_LO] | static_cast<uint64_t>(m_csr[CSR_BADX_HI]) << 16; }

bool Pcnet::read_desc(uint64_t addr, Desc& d)
{
    std::array<uint8_t, 16> raw {};
    unsigned const style = swstyle();
    auto const bytes = std::span<uint8_t>(raw).first(style == 0 ? 8 : 16);
    if (!m_mem.read(GuestAddr(addr), bytes))
        return false;
    d.addr = addr;
    uint8_t const* p = raw.data();
    if (style == 0) {
        d.buffer = bus_addr(get_le16(p) | static_cast<uint32_t>(p[2]) << 16);
        d.status = static_cast<uint16_t>(p[3] << 8);
        d.bcnt = bcnt_bytes(get_le16(p + 4));
    } else {
        d.buffer = get_le32(p + (style == 3 ? 8 : 0));
        d.bcnt = bcnt_bytes(get_le16(p + 4));
        d.status = get_le16(p + 6);
    }
    return true;
}

bool Pcnet::write_desc_status(Desc const& d, uint16_t status)
{
    if (swstyle() == 0) {
        uint8_t const b = static_cast<uint8_t>(status >> 8);
        return m_mem.write(GuestAddr(d.addr + 3), std::span<uint8_t const>(&b, 1)).has_value();
    }
    std::array<uint8_t, 2> b {};
    put_le16(b.data(), status);
    return m_mem.write(GuestAddr(d.addr + 6), b).has_value();
}

bool Pcnet::write_rx_mcnt(Desc const& d, uint16_t mcnt)
{
    unsigned const style = swstyle();
    if (style == 0) { // RMD3
        std::array<uint8_t, 2> b {};
        put_le16(b.data(), mcnt);
        return m_mem.write(GuestAddr(d.addr + 6), b).has_value();
    }
    std::array<uint8_t, 4> b {}; // RMD2: MCNT in bits 11:0, the collision counts 0
    put_le32(b.data(), mcnt);
    return m_mem.write(GuestAddr(d.addr + (style == 3 ? 0 : 8)), b).has_value();
}

bool Pcnet::write_tx_errors(Desc const& d, uint16_t errors)
{
    unsigned const style = swstyle();
    if (style == 0) { // TMD3
        std::array<uint8_t, 2> b {};
        put_le16(b.data(), errors);
        return m_mem.write(GuestAddr(d.addr + 6), b).has_value();
    }
    std::array<uint8_t, 4> b {}; // TMD2: the error bits in 31:26, the retry count 0
    put_le32(b.data(), static_cast<uint32_t>(errors) << 16);
    return m_mem.write(GuestAddr(d.addr + (style == 3 ? 0 : 8)), b).has_value();
}

// --- Transmit ---

void Pcnet::tx_poll()
{
    if (m_in_tx_poll || !(m_csr[0] & CSR0_TXON) || (m_csr[5] & CSR5_SPND))
        return;
    m_in_tx_poll = true;
    uint32_t const len = tx_ring_len();
    uint64_t const base = tx_ring_base();
    uint64_t const desc_size = style32() ? 16 : 8;
    bool tint = false;
    // Frames start only while fewer than the ring length of descriptors were visited, and each is at most the ring
    // long: a walk reads at most twice the ring.
    for (uint32_t visited = 0; visited < len && (m_csr[0] & CSR0_TXON);) {
        Desc first;
        if (!read_desc(base + m_tx_index * desc_size, first)) {
            dma_error("transmit descriptor", base + m_tx_index * desc_size);
            stop_unit(CSR0_TXON);
            break;
        }
        if (!(first.status & DESC_OWN))
            break;
        if (!(first.status & DESC_STP)) {
            ++m_stats.tx_errors;
            HAKO_WARN_RATELIMITED("pcnet: transmit descriptor {} owned without STP", m_tx_index);
            (void)write_desc_status(first, static_cast<uint16_t>((first.status & ~DESC_OWN) | DESC_ERR));
            m_tx_index = (m_tx_index + 1) % len;
            ++visited;
            continue;
        }
        m_csr[4] |= CSR4_TXSTRT;
        // Gather STP .. ENP; descs[] holds every descriptor of the frame for the write-back.
        std::vector<Desc> descs;
        size_t size = 0;
        bool oversize = false;
        bool broken = false;
        bool fault = false;
        uint32_t index = m_tx_index;
        Desc d = first;
        while (true) {
            descs.push_back(d);
            ++visited;
            if (!oversize && size + d.bcnt <= m_tx_buf.size()) {
                if (!m_mem.read(GuestAddr(d.buffer), std::span<uint8_t>(m_tx_buf).subspan(size, d.bcnt))) {
                    dma_error("transmit buffer", d.buffer);
                    fault = true;
                }
                size += d.bcnt;
            } else {
                oversize = true;
            }
            if (d.status & DESC_ENP)
                break;
            if (descs.size() >= len) { // the whole ring without ENP
                broken = true;
                break;
            }
            uint32_t const next = (index + 1) % len;
            Desc n;
            if (!read_desc(base + next * desc_size, n)) {
                dma_error("transmit descriptor", base + next * desc_size);
                fault = true;
                broken = true;
                break;
            }
            if (!(n.status & DESC_OWN)) {
                broken = true;
                break;
            }
            index = next;
            d = n;
        }
        m_tx_index = (index + 1) % len;
        uint16_t const stp_status = first.status;
        bool ok = !broken && !oversize && !fault;
        size_t send_len = size;
        if (ok && (m_csr[CSR_MODE] & MODE_DXMTFCS) && !(stp_status & TMD_ADD_FCS))
            send_len = size >= FCS_LEN ? size - FCS_LEN : 0; // the driver appended the FCS itself
        if (ok && send_len < hako::net::ETH_HEADER_LEN)
            ok = false;
        if (ok) {
            if (send_len < ETH_MIN_PADDED && (m_csr[4] & CSR4_APAD_XMT)) {
                std::fill(m_tx_buf.begin() + static_cast<ptrdiff_t>(send_len), m_tx_buf.begin() + ETH_MIN_PADDED,
                    uint8_t { 0 });
                send_len = ETH_MIN_PADDED;
            }
            m_backend->send(std::span<uint8_t const>(m_tx_buf).first(send_len));
            ++m_stats.tx_frames;
            m_stats.tx_bytes += send_len;
        } else {
            ++m_stats.tx_errors;
            if (oversize)
                m_csr[0] |= CSR0_BABL;
            HAKO_WARN_RATELIMITED("pcnet: transmit frame at descriptor {} dropped ({})", index,
                broken ? "chain without ENP or an unowned next descriptor" : oversize ? "longer than 1522 bytes"
                    : fault ? "a buffer outside guest RAM" : "shorter than an Ethernet header");
        }
        // Hand back: the later descriptors first, the STP one last.
        bool ltint = false;
        for (size_t i = descs.size(); i-- > 0;) {
            Desc const& x = descs[i];
            uint16_t status = static_cast<uint16_t>(x.status & ~DESC_OWN);
            bool const last = i + 1 == descs.size();
            if (!ok && last)
                status |= DESC_ERR;
            (void)write_tx_errors(x, broken && last ? static_cast<uint16_t>(TMD_BUFF | TMD_UFLO) : uint16_t { 0 });
            if (!write_desc_status(x, status))
                dma_error("transmit descriptor write-back", x.addr);
            ltint = ltint || (x.status & TMD_LTINT);
        }
        // TINT: always for an error; for a good frame unless TOKINTD, and with LTINTEN only for LTINT descriptors.
        if (!ok || (!(m_csr[5] & CSR5_TOKINTD) && (!(m_csr[5] & CSR5_LTINTEN) || ltint)))
            tint = true;
        if (fault || (broken && !(m_csr[3] & CSR3_DXSUFLO)))
            stop_unit(CSR0_TXON); // a bus error, or UFLO, stops the transmitter
    }
    if (tint)
        m_csr[0] |= CSR0_TINT;
    m_in_tx_poll = false;
    update_irq();
}

// --- Receive ---

void Pcnet::rx_retry_check()
{
    if (!m_rx_starved || !(m_csr[0] & CSR0_RXON) || (m_csr[5] & CSR5_SPND))
        return;
    Desc d;
    uint64_t const addr = rx_ring_base() + m_rx_index * (style32() ? 16u : 8u);
    if (read_desc(addr, d) && (d.status & DESC_OWN)) {
        m_rx_starved = false;
        m_backend->rx_buffers_available();
    }
}

bool Pcnet::rx_accept(std::span<uint8_t const> frame, uint16_t& match) const
{
    uint16_t const mode = m_csr[CSR_MODE];
    auto const dst = frame.first(6);
    bool const broadcast = std::all_of(dst.begin(), dst.end(), [](uint8_t b) { return b == 0xff; });
    if (broadcast) {
        match = RMD_BAM;
        return !(mode & MODE_DRCVBC) || (mode & MODE_PROM);
    }
    if (dst[0] & 1) {
        // The logical address filter: the top 6 bits of the little-endian CRC-32 (no final inversion) select a bit.
        uint32_t const crc = ~hako::net::ethernet_crc32(dst);
        unsigned const bit = crc >> 26;
        if ((m_csr[CSR_LADRF + bit / 16] >> (bit % 16)) & 1) {
            match = RMD_LAFM;
            return true;
        }
        return (mode & MODE_PROM) != 0;
    }
    bool mine = true;
    for (unsigned i = 0; i < 6; ++i)
        mine = mine && dst[i] == static_cast<uint8_t>(m_csr[CSR_PADR + i / 2] >> (8 * (i % 2)));
    if (mine && !(mode & MODE_DRCVPA)) {
        match = RMD_PAM;
        return true;
    }
    return (mode & MODE_PROM) != 0;
}

bool Pcnet::receive(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_state_lock);
    if (!(m_csr[0] & CSR0_RXON) || (m_csr[5] & CSR5_SPND)) {
        ++m_stats.rx_dropped_stopped;
        return true;
    }
    if (frame.size() < hako::net::ETH_HEADER_LEN || frame.size() > RX_FRAME_MAX) {
        ++m_stats.rx_dropped_bad;
        HAKO_WARN_RATELIMITED("pcnet: dropping a received frame of {} bytes", frame.size());
        return true;
    }
    uint16_t match = 0;
    if (!rx_accept(frame, match)) {
        ++m_stats.rx_filtered;
        return true;
    }
    uint32_t const len = rx_ring_len();
    uint64_t const base = rx_ring_base();
    uint64_t const desc_size = style32() ? 16 : 8;
    Desc d;
    if (!read_desc(base + m_rx_index * desc_size, d)) {
        ++m_stats.rx_bad_dma;
        dma_error("receive descriptor", base + m_rx_index * desc_size);
        stop_unit(CSR0_RXON);
        update_irq();
        return true;
    }
    if (!(d.status & DESC_OWN)) {
        ++m_stats.rx_no_buffer;
        m_rx_starved = true;
        return false;
    }
    // The frame, its padding and its FCS.
    size_t const padded = std::max(frame.size(), ETH_MIN_PADDED);
    size_t const total = padded + FCS_LEN;
    uint8_t* out = m_rx_buf.data();
    std::memcpy(out, frame.data(), frame.size());
    std::memset(out + frame.size(), 0, padded - frame.size());
    put_le32(out + padded, hako::net::ethernet_crc32(std::span<uint8_t const>(out, padded)));

    std::vector<Desc> descs;
    size_t done = 0;
    bool fault = false;
    uint32_t index = m_rx_index;
    while (true) {
        descs.push_back(d);
        size_t const n = std::min<size_t>(d.bcnt, total - done);
        if (n && !m_mem.write(GuestAddr(d.buffer), std::span<uint8_t const>(out + done, n))) {
            dma_error("receive buffer", d.buffer);
            fault = true;
            break;
        }
        done += n;
        if (done == total || descs.size() >= len)
            break;
        uint32_t const next = (index + 1) % len;
        Desc nd;
        if (!read_desc(base + next * desc_size, nd)) {
            dma_error("receive descriptor", base + next * desc_size);
            fault = true;
            break;
        }
        if (!(nd.status & DESC_OWN))
            break;
        index = next;
        d = nd;
    }
    m_rx_index = (index + 1) % len;
    bool const complete = done == total && !fault;
    if (!complete && !fault) {
        ++m_stats.rx_overflow;
        ++m_csr[CSR_MISSED];
        HAKO_WARN_RATELIMITED("pcnet: a {}-byte frame did not fit the owned receive buffers", total);
    }
    // Hand back: the last descriptor (ENP, MCNT) first, the STP one last.
    for (size_t i = descs.size(); i-- > 0;) {
        Desc const& x = descs[i];
        uint16_t status = i == 0 ? DESC_STP : 0;
        if (i + 1 == descs.size()) {
            if (complete) {
                status |= static_cast<uint16_t>(DESC_ENP | match);
                (void)write_rx_mcnt(x, static_cast<uint16_t>(total));
            } else {
                status |= static_cast<uint16_t>(DESC_ERR | RMD_BUFF);
            }
        }
        if (!write_desc_status(x, status))
            dma_error("receive descriptor write-back", x.addr);
    }
    if (fault) {
        ++m_stats.rx_bad_dma;
        stop_unit(CSR0_RXON);
    }
    if (complete) {
        ++m_stats.rx_frames;
        m_stats.rx_bytes += frame.size();
    }
    m_csr[0] |= CSR0_RINT;
    update_irq();
    return true;
}

// --- Interrupts ---

void Pcnet::update_irq()
{
    uint16_t const csr0 = m_csr[0];
    bool const intr = (csr0 & CSR0_CAUSES & ~m_csr[3]) != 0 || (m_csr[4] & CSR4_UINT)
        || ((m_csr[4] & CSR4_TXSTRT) && !(m_csr[4] & CSR4_TXSTRTM));
    m_csr[0] = static_cast<uint16_t>(intr ? csr0 | CSR0_INTR : csr0 & ~CSR0_INTR);
    bool const level = intr && (csr0 & CSR0_IENA);
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (level)
        ++m_stats.interrupts;
    set_intx(level);
}

} // namespace hako::devices::net
