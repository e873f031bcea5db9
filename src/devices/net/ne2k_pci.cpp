// Ne2kPci: the DP8390 register pages, the NE2000 data and reset ports, the on-card PROM and RAM with the remote DMA,
// transmit from the card's RAM, receive into the ring, interrupts.
#include "devices/net/ne2k_pci.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/pci/option_rom.h"
#include "net/checksum.h"

namespace hako::devices::net {

using namespace ne2k;

namespace {

constexpr uint32_t CLASS_ETHERNET = 0x020000;
constexpr size_t ETH_MIN_PADDED = 60;
constexpr size_t FCS_LEN = 4;
constexpr uint8_t PROM_SIGNATURE = 0x57; // 'W': bytes 0x0E/0x0F of an NE2000's PROM in word mode

pci::PciIdentity identity()
{
    pci::PciIdentity id;
    id.vendor_id = Ne2kPci::VENDOR_ID;
    id.device_id = Ne2kPci::DEVICE_ID;
    id.class_code = CLASS_ETHERNET;
    id.subsystem_vendor_id = Ne2kPci::VENDOR_ID;
    id.subsystem_id = Ne2kPci::DEVICE_ID;
    id.interrupt_pin = 1;
    return id;
}

} // namespace

Result<std::shared_ptr<Ne2kPci>> Ne2kPci::create(std::shared_ptr<hako::net::Backend> backend,
    hako::net::MacAddress mac, Ne2kPciOptions options)
{
    if (!backend)
        return Error(ErrorKind::InvalidArgument, "ne2k_pci: no network backend");
    // iPXE's pxe-ne2k_pci.rom serves every NE2000 PCI clone and names no device: claim ours, as QEMU does.
    pci::patch_option_rom_ids(options.option_rom, VENDOR_ID, DEVICE_ID);
    bool const rom = !options.option_rom.empty();
    uint64_t const rom_size = std::bit_ceil(std::max<uint64_t>(2048, options.option_rom.size()));
    auto dev = std::make_shared<Ne2kPci>(Passkey {}, std::move(backend), mac, std::move(options));
    TRY(dev->add_bar(IO_BAR, pci::BarKind::Io, IO_SIZE));
    if (rom)
        TRY(dev->add_rom_bar(rom_size));
    // Registered last: from here on the backend's thread may call receive().
    std::weak_ptr<Ne2kPci> weak = dev;
    dev->m_backend->set_receiver([weak](std::span<uint8_t const> frame) {
        auto d = weak.lock();
        return d ? d->receive(frame) : true;
    });
    return dev;
}

Ne2kPci::Ne2kPci(Passkey, std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac,
    Ne2kPciOptions options)
    : PciDevice(identity())
    , m_backend(std::move(backend))
    , m_mac(mac)
    , m_option_rom(std::move(options.option_rom))
    , m_tx_buf(TX_SIZE_MAX)
    , m_rx_buf(RX_HEADER + RX_FRAME_MAX + FCS_LEN)
{
    // The station address PROM as an NE2000 presents it: 16 bytes (the MAC, then 0x57 'W' in bytes 0x0E and 0x0F,
    // which NE2000 probes take for a 16-bit card), each byte doubled because the PROM sits on one data lane of a
    // 16-bit bus.
    std::array<uint8_t, PROM_SIZE / 2> prom {};
    std::copy(mac.begin(), mac.end(), prom.begin());
    prom[0x0e] = prom[0x0f] = PROM_SIGNATURE;
    for (size_t i = 0; i < prom.size(); ++i)
        m_prom[2 * i] = m_prom[2 * i + 1] = prom[i];
    std::lock_guard lock(m_state_lock);
    power_on_locked();
}

Ne2kPci::~Ne2kPci()
{
    // Waits for a delivery in progress; afterwards the backend never calls receive() again.
    m_backend->set_receiver({});
}

Ne2kPciStats Ne2kPci::stats() const
{
    std::lock_guard lock(m_state_lock);
    return m_stats;
}

void Ne2kPci::reset_device()
{
    std::lock_guard lock(m_state_lock);
    power_on_locked();
}

void Ne2kPci::power_on_locked()
{
    m_ram.fill(0);
    m_pstart = m_pstop = m_bnry = m_tpsr = m_curr = m_rnpp = 0;
    m_tbcr = m_rsar = m_rbcr = m_clda = 0;
    m_rcr = m_tcr = m_dcr = m_rsr = 0;
    std::copy(m_mac.begin(), m_mac.end(), m_par.begin()); // the RTL8029AS loads PAR from its EEPROM
    m_mar.fill(0);
    m_cntr.fill(0);
    m_9346cr = 0;
    m_config2 = CONFIG2_10BASET;
    m_config3 = CONFIG3_FUDUP;
    nic_reset_locked();
}

// The NE2000 reset (reset port, DP8390 RESET#): the NIC stops with the remote DMA idle, ISR.RST set and every
// interrupt masked; the ring and address registers keep their values.
void Ne2kPci::nic_reset_locked()
{
    m_cr = CR_STP | CR_RD_ABORT;
    m_isr = ISR_RST;
    m_imr = 0;
    m_tsr = 0;
    m_rx_starved = false;
    update_irq();
}

void Ne2kPci::bad_access(std::string_view what, uint64_t offset, size_t size)
{
    ++m_stats.bad_accesses;
    HAKO_WARN_RATELIMITED("ne2k_pci: {} at offset {:#x} ({} bytes)", what, offset, size);
}

// --- BAR accesses ---

uint32_t Ne2kPci::data_width(size_t access_size) const
{
    if (access_size == 4)
        return 4;
    return (m_dcr & DCR_WTS) ? 2 : 1;
}

void Ne2kPci::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (bar == pci::ROM_BAR) {
        for (size_t i = 0; i < data.size() && offset + i < m_option_rom.size(); ++i)
            data[i] = m_option_rom[offset + i];
        return;
    }
    std::lock_guard lock(m_state_lock);
    if (bar != IO_BAR || data.empty() || data.size() > 4 || offset >= IO_SIZE) {
        bad_access("read", offset, data.size());
        return;
    }
    auto const off = static_cast<uint32_t>(offset);
    if (off + data.size() <= DATA) {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = read_register(off + static_cast<uint32_t>(i));
    } else if (off == DATA) {
        std::array<uint8_t, 4> bytes {};
        uint32_t const width = data_width(data.size());
        dma_read(std::span<uint8_t>(bytes).first(width));
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = i < width ? bytes[i] : 0;
    } else if (off == RESET && data.size() == 1) {
        nic_reset_locked();
        data[0] = 0;
    } else {
        bad_access("read", offset, data.size());
    }
}

void Ne2kPci::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_state_lock);
    if (bar != IO_BAR || data.empty() || data.size() > 4 || offset >= IO_SIZE) {
        bad_access("write", offset, data.size());
        return;
    }
    auto const off = static_cast<uint32_t>(offset);
    if (off + data.size() <= DATA) {
        for (size_t i = 0; i < data.size(); ++i)
            write_register(off + static_cast<uint32_t>(i), data[i]);
    } else if (off == DATA) {
        std::array<uint8_t, 4> bytes {};
        std::copy(data.begin(), data.end(), bytes.begin());
        dma_write(std::span<uint8_t const>(bytes).first(data_width(data.size())));
    } else if (off != RESET || data.size() != 1) { // drivers write back what they read from the reset port
        bad_access("write", offset, data.size());
    }
}

// --- Registers ---

uint8_t Ne2kPci::read_register(uint32_t off)
{
    if (off == CR)
        return m_cr;
    switch (page()) {
    case 0:
        switch (off) {
        case CLDA0: return static_cast<uint8_t>(m_clda);
        case CLDA1: return static_cast<uint8_t>(m_clda >> 8);
        case BNRY: return m_bnry;
        case TSR: return m_tsr;
        case NCR:
        case FIFO: return 0;
        case ISR: return m_isr;
        case RSR: return m_rsr;
        case CRDA0: return static_cast<uint8_t>(m_rsar);
        case CRDA1: return static_cast<uint8_t>(m_rsar >> 8);
        case RTL8029_ID0: return ID0;
        case RTL8029_ID1: return ID1;
        case CNTR0:
        case CNTR1:
        case CNTR2: {
            uint8_t const v = m_cntr[off - CNTR0];
            m_cntr[off - CNTR0] = 0; // the tally counters clear when read
            return v;
        }
        default: return 0xff;
        }
    case 1:
        if (off >= PAR0 && off < PAR0 + 6)
            return m_par[off - PAR0];
        if (off == CURR)
            return m_curr;
        return m_mar[off - MAR0];
    case 2:
        switch (off) {
        case PSTART: return m_pstart;
        case PSTOP: return m_pstop;
        case RNPP: return m_rnpp;
        case TPSR: return m_tpsr;
        case LNPP: return m_curr;
        case ACU: return static_cast<uint8_t>(m_clda >> 8);
        case ACL: return static_cast<uint8_t>(m_clda);
        case RCR: return static_cast<uint8_t>(0xc0 | m_rcr); // the unused high bits read as 1
        case TCR: return static_cast<uint8_t>(0xe0 | m_tcr);
        case DCR: return static_cast<uint8_t>(0x80 | m_dcr);
        case IMR: return static_cast<uint8_t>(0x80 | m_imr);
        default: return 0xff;
        }
    default:
        switch (off) {
        case CR9346: return m_9346cr;
        case CONFIG0: return 0; // 10BaseT, no BNC or AUI
        case CONFIG2: return m_config2;
        case CONFIG3: return m_config3;
        case P3_ID0: return ID0;
        case P3_ID1: return ID1;
        default: return 0;
        }
    }
}

void Ne2kPci::write_register(uint32_t off, uint8_t value)
{
    if (off == CR) {
        write_command(value);
        return;
    }
    switch (page()) {
    case 0:
        switch (off) {
        case PSTART: m_pstart = value; break;
        case PSTOP: m_pstop = value; break;
        case BNRY:
            m_bnry = value;
            wake_backend(); // the driver freed ring pages
            break;
        case TPSR: m_tpsr = value; break;
        case TBCR0: m_tbcr = static_cast<uint16_t>((m_tbcr & 0xff00) | value); break;
        case TBCR1: m_tbcr = static_cast<uint16_t>((m_tbcr & 0x00ff) | value << 8); break;
        case ISR:
            m_isr &= static_cast<uint8_t>(~(value & IMR_VALID)); // write 1 to clear; RST clears on START
            update_irq();
            break;
        case RSAR0: m_rsar = static_cast<uint16_t>((m_rsar & 0xff00) | value); break;
        case RSAR1: m_rsar = static_cast<uint16_t>((m_rsar & 0x00ff) | value << 8); break;
        case RBCR0: m_rbcr = static_cast<uint16_t>((m_rbcr & 0xff00) | value); break;
        case RBCR1: m_rbcr = static_cast<uint16_t>((m_rbcr & 0x00ff) | value << 8); break;
        case RCR: m_rcr = value & 0x3f; break;
        case TCR: m_tcr = value & 0x1f; break;
        case DCR: m_dcr = value & 0x7f; break;
        case IMR:
            m_imr = value & IMR_VALID;
            update_irq();
            break;
        default: break; // 0x03 BNRY handled; nothing else is writable
        }
        break;
    case 1:
        if (off >= PAR0 && off < PAR0 + 6)
            m_par[off - PAR0] = value;
        else if (off == CURR)
            m_curr = value;
        else
            m_mar[off - MAR0] = value;
        break;
    case 2: // diagnostic writes of the DMA address registers
        if (off == CLDA0)
            m_clda = static_cast<uint16_t>((m_clda & 0xff00) | value);
        else if (off == CLDA1)
            m_clda = static_cast<uint16_t>((m_clda & 0x00ff) | value << 8);
        else if (off == RNPP)
            m_rnpp = value;
        break;
    default:
        write_page3(off, value);
        break;
    }
}

void Ne2kPci::write_page3(uint32_t off, uint8_t value)
{
    switch (off) {
    case CR9346: m_9346cr = value & 0xce; break; // EEM1-0, EECS, EESK, EEDI; EEDO reads 0 (no EEPROM)
    case CONFIG2:
    case CONFIG3:
        if ((m_9346cr & EEM_MASK) != EEM_CONFIG_WRITE) {
            bad_access("CONFIG write without 9346CR config write enable", off, 1);
            break;
        }
        (off == CONFIG2 ? m_config2 : m_config3) = value;
        break;
    case HLTCLK: break; // 'H' halts, 'R' runs the clock: the clock always runs
    default: break;     // CONFIG0, the ID bytes: read-only
    }
}

void Ne2kPci::write_command(uint8_t value)
{
    uint8_t const old = m_cr;
    m_cr = static_cast<uint8_t>(value & ~(CR_TXP | CR_STP | CR_STA)) | (old & (CR_STP | CR_STA));
    if (value & CR_STP) {
        m_cr = static_cast<uint8_t>((m_cr & ~CR_STA) | CR_STP);
        m_isr |= ISR_RST;
    } else if (value & CR_STA) {
        m_cr = static_cast<uint8_t>((m_cr & ~CR_STP) | CR_STA);
        m_isr &= static_cast<uint8_t>(~ISR_RST);
        wake_backend();
    }
    uint8_t const rd = value & CR_RD_MASK;
    if (rd & CR_RD_ABORT) {
        m_cr = static_cast<uint8_t>((m_cr & ~CR_RD_MASK) | CR_RD_ABORT);
    } else if (rd != 0 && m_rbcr == 0) { // a remote read, write or send packet of nothing completes at once
        m_cr = static_cast<uint8_t>((m_cr & ~CR_RD_MASK) | CR_RD_ABORT);
        m_isr |= ISR_RDC;
    }
    if ((value & CR_TXP) && (m_cr & (CR_STA | CR_STP)) == CR_STA)
        transmit();
    update_irq();
}

// --- On-card memory and the remote DMA ---

uint8_t Ne2kPci::mem_read(uint32_t addr) const
{
    if (addr < RAM_START)
        return m_prom[addr % PROM_SIZE];
    if (addr < RAM_END)
        return m_ram[addr - RAM_START];
    return 0xff;
}

void Ne2kPci::mem_write(uint32_t addr, uint8_t value)
{
    if (addr >= RAM_START && addr < RAM_END)
        m_ram[addr - RAM_START] = value;
}

void Ne2kPci::dma_read(std::span<uint8_t> out)
{
    for (auto& byte : out) {
        byte = mem_read(m_rsar);
        dma_advance(1);
    }
    dma_count(static_cast<uint32_t>(out.size()));
}

void Ne2kPci::dma_write(std::span<uint8_t const> in)
{
    for (uint8_t byte : in) {
        mem_write(m_rsar, byte);
        dma_advance(1);
    }
    dma_count(static_cast<uint32_t>(in.size()));
}

void Ne2kPci::dma_advance(uint32_t bytes)
{
    m_rsar = static_cast<uint16_t>(m_rsar + bytes);
    // The remote DMA follows the receive ring: at PSTOP it continues at PSTART.
    if (m_pstart < m_pstop && m_rsar == static_cast<uint16_t>(m_pstop * PAGE_SIZE))
        m_rsar = static_cast<uint16_t>(m_pstart * PAGE_SIZE);
}

void Ne2kPci::dma_count(uint32_t bytes)
{
    if (m_rbcr == 0)
        return;
    m_rbcr = static_cast<uint16_t>(m_rbcr > bytes ? m_rbcr - bytes : 0);
    if (m_rbcr == 0) {
        m_cr = static_cast<uint8_t>((m_cr & ~CR_RD_MASK) | CR_RD_ABORT);
        set_cause(ISR_RDC);
    }
}

// --- Interrupts ---

void Ne2kPci::set_cause(uint8_t causes)
{
    m_isr |= causes;
    update_irq();
}

void Ne2kPci::update_irq()
{
    bool const level = (m_isr & m_imr & IMR_VALID) != 0;
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (level)
        ++m_stats.interrupts;
    set_intx(level);
}

void Ne2kPci::wake_backend()
{
    if (m_rx_starved) {
        m_rx_starved = false;
        m_backend->rx_buffers_available();
    }
}

// --- Transmit ---

void Ne2kPci::transmit()
{
    uint32_t const addr = m_tpsr * PAGE_SIZE;
    uint32_t const len = m_tbcr;
    if (len == 0 || len > TX_SIZE_MAX || addr < RAM_START || addr + len > RAM_END) {
        HAKO_WARN_RATELIMITED("ne2k_pci: transmit of {} bytes from page {:#x} out of range", len, m_tpsr);
        ++m_stats.tx_aborted;
        m_tsr = TSR_ABT;
        set_cause(ISR_TXE);
        return;
    }
    std::copy_n(m_ram.begin() + (addr - RAM_START), len, m_tx_buf.begin());
    size_t padded = len;
    if (padded < ETH_MIN_PADDED) {
        std::fill(m_tx_buf.begin() + len, m_tx_buf.begin() + ETH_MIN_PADDED, uint8_t { 0 });
        padded = ETH_MIN_PADDED;
    }
    auto const frame = std::span<uint8_t const>(m_tx_buf).first(padded);
    if (m_tcr & TCR_LB_MASK) {
        ++m_stats.tx_loopback;
        (void)receive_locked(frame); // a full ring loses it, as on the wire
    } else {
        m_backend->send(frame);
    }
    ++m_stats.tx_frames;
    m_stats.tx_bytes += padded;
    m_tsr = TSR_PTX;
    set_cause(ISR_PTX);
}

// --- Receive ---

bool Ne2kPci::ring_valid() const
{
    auto in_ring = [this](uint8_t p) { return p >= m_pstart && p < m_pstop; };
    return m_pstart >= RAM_FIRST_PAGE && m_pstart < m_pstop && m_pstop <= RAM_END_PAGE && in_ring(m_curr)
        && in_ring(m_bnry);
}

void Ne2kPci::count_missed()
{
    if (m_cntr[2] < 0xff)
        ++m_cntr[2];
    if (m_cntr[2] & 0x80)
        set_cause(ISR_CNT);
}

bool Ne2kPci::rx_accept(std::span<uint8_t const> frame, uint8_t& status) const
{
    auto const dst = frame.first(6);
    if (std::all_of(dst.begin(), dst.end(), [](uint8_t b) { return b == 0xff; })) {
        status |= RSR_PHY;
        return (m_rcr & RCR_AB) != 0;
    }
    if (dst[0] & 1) {
        status |= RSR_PHY;
        uint32_t const hash = hako::net::multicast_crc(dst) >> 26;
        return (m_rcr & RCR_AM) && ((m_mar[hash / 8] >> (hash % 8)) & 1);
    }
    return (m_rcr & RCR_PRO) || std::equal(dst.begin(), dst.end(), m_par.begin());
}

bool Ne2kPci::receive(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_state_lock);
    return receive_locked(frame);
}

bool Ne2kPci::receive_locked(std::span<uint8_t const> frame)
{
    if (m_cr & CR_STP) {
        ++m_stats.rx_dropped_stopped;
        return true;
    }
    if (frame.size() < hako::net::ETH_HEADER_LEN || frame.size() > RX_FRAME_MAX) {
        ++m_stats.rx_dropped_bad;
        HAKO_WARN_RATELIMITED("ne2k_pci: dropping a received frame of {} bytes", frame.size());
        return true;
    }
    uint8_t status = RSR_PRX;
    if (!rx_accept(frame, status)) {
        ++m_stats.rx_filtered;
        return true;
    }
    if (m_rcr & RCR_MON) {
        ++m_stats.rx_monitor;
        m_rsr = static_cast<uint8_t>((status & ~RSR_PRX) | RSR_DIS);
        count_missed();
        return true;
    }
    if (!ring_valid()) {
        ++m_stats.rx_bad_ring;
        HAKO_WARN_RATELIMITED("ne2k_pci: no receive ring (PSTART {:#x} PSTOP {:#x} CURR {:#x} BNRY {:#x})", m_pstart,
            m_pstop, m_curr, m_bnry);
        return true;
    }
    size_t const padded = std::max(frame.size(), ETH_MIN_PADDED);
    auto const total = static_cast<uint32_t>(RX_HEADER + padded + FCS_LEN);
    // The chip moves to a fresh page after the last byte, so a frame that ends on a page boundary takes one more
    // page: the next packet pointer is the page after the one the local DMA address ends in (Linux's 8390.c checks
    // exactly that).
    uint32_t const pages = total / PAGE_SIZE + 1;
    uint32_t const ring_pages = m_pstop - m_pstart;
    uint32_t const free_pages = (m_bnry + ring_pages - m_curr) % ring_pages; // CURR == BNRY: full
    if (pages > free_pages) {
        ++m_stats.rx_no_buffer;
        m_rsr = static_cast<uint8_t>((status & ~RSR_PRX) | RSR_MPA);
        count_missed();
        m_rx_starved = true;
        set_cause(ISR_OVW);
        return false;
    }
    uint32_t next = m_curr + pages;
    if (next >= m_pstop)
        next -= ring_pages;
    // The header (status, next page, byte count), the frame, its padding and the FCS, written from CURR on.
    uint8_t* out = m_rx_buf.data();
    out[0] = status;
    out[1] = static_cast<uint8_t>(next);
    put_le16(out + 2, static_cast<uint16_t>(total));
    std::memcpy(out + RX_HEADER, frame.data(), frame.size());
    std::memset(out + RX_HEADER + frame.size(), 0, padded - frame.size());
    put_le32(out + RX_HEADER + padded,
        hako::net::ethernet_crc32(std::span<uint8_t const>(out + RX_HEADER, padded)));
    uint32_t addr = m_curr * PAGE_SIZE;
    uint32_t const ring_end = m_pstop * PAGE_SIZE;
    for (uint32_t done = 0; done < total;) { // at most two pieces: up to PSTOP, then from PSTART
        uint32_t const piece = std::min(total - done, ring_end - addr);
        std::copy_n(out + done, piece, m_ram.begin() + (addr - RAM_START));
        done += piece;
        addr += piece;
        if (addr == ring_end)
            addr = m_pstart * PAGE_SIZE;
    }
    m_curr = static_cast<uint8_t>(next);
    m_clda = static_cast<uint16_t>(addr);
    m_rsr = status;
    ++m_stats.rx_frames;
    m_stats.rx_bytes += frame.size();
    set_cause(ISR_PRX);
    return true;
}

} // namespace hako::devices::net
