// Ne2kPci: an NE2000-compatible PCI NIC, the Realtek RTL8029AS (a DP8390 core with 16 KiB of on-card SRAM and the
// NE2000 "ASIC" data and reset ports), as a PCI function over a net::Backend. After National's DP8390D datasheet
// (NIC core), Realtek's RTL8029AS datasheet (PCI part, page 3) and how drivers use it (Linux ne2k-pci.c / 8390.c,
// iPXE ns8390, FreeBSD ed). What drivers bind to: PCI 10EC:8029, class 0x020000, subsystem 10EC:8029, INTA#.
//
// BARs: 0 = I/O, 32 bytes: 0x00-0x0F the DP8390 registers (byte accesses; a wider access inside 0x00-0x0F is done
// byte by byte), 0x10 the remote DMA data port (1, 2 or 4 bytes: a 4-byte access moves 4 bytes; 1- and 2-byte
// accesses move 2 bytes in word mode (DCR.WTS) and 1 in byte mode; an 8-bit access in word mode returns the low
// byte), 0x1F the reset port (a read resets the NIC; writes are ignored). Other offsets read all-ones (counted).
// A ROM BAR when an option ROM is given.
//
// Registers: CR (STP/STA/TXP, remote DMA command, page select PS1-0) on every page.
//  Page 0 read: CLDA0-1, BNRY, TSR, NCR (0), FIFO (0), ISR, CRDA0-1, the RTL8029 ID bytes 0x50 'P', 0x43 'C' at
//   0x0A/0x0B (0x70 'p' in 0x0B would be the ISA RTL8019), CNTR0-2 (tally counters: frame alignment and CRC errors
//   never happen here; CNTR2 counts missed frames; cleared when read; ISR.CNT when one reaches 128).
//  Page 0 write: PSTART, PSTOP, BNRY, TPSR, TBCR0-1, ISR (write 1 to clear bits 0-6), RSAR0-1, RBCR0-1, RCR, TCR,
//   DCR, IMR.
//  Page 1: PAR0-5, CURR, MAR0-7. Page 2 (read): PSTART, PSTOP, RNPP, TPSR, LNPP (= CURR), the local address counter,
//   RCR, TCR, DCR, IMR. Page 3 (RTL8029AS): 9346CR (EEM bits stored; no EEPROM behind the pins: EEDO reads 0),
//   CONFIG0 (10BaseT, read-only), CONFIG2 (link test on 10BaseT) and CONFIG3 (full duplex), both writable only with
//   9346CR EEM = 11 (as Linux's full_duplex option does), HLTCLK (ignored), the ID bytes again at 0x0E/0x0F.
//
// On-card memory (the remote and local DMA address space, 16 bits): 0x0000-0x3FFF the station address PROM (16
// bytes: the MAC, 'W' 'W' at 0x0E/0x0F as NE2000 probes expect; each byte doubled, so 32 bytes, mirrored through
// the 16 KiB; the 'W's are bytes 0x1C-0x1F of a 32-byte read), 0x4000-0x7FFF 16 KiB of RAM
// (pages 0x40-0x7F), above that nothing (reads 0xff, writes dropped). The remote DMA moves bytes at RSAR, which
// wraps from PSTOP to PSTART like the chip's; RBCR counts down and ISR.RDC is set when it reaches 0 (at once for a
// remote read or write command with RBCR = 0). "Send Packet" is treated as a remote read from RSAR.
//
// Transmit: CR.TXP while started sends TBCR bytes from page TPSR (padded to 60 bytes), then TSR.PTX and ISR.PTX; a
// length of 0 or above 1518 or a buffer outside the RAM aborts (TSR.ABT, ISR.TXE, counted). In loopback (TCR.LB
// not 0) the frame goes to this NIC's own receive path instead of the backend.
// Receive: a frame passes the RCR filters (PRO; AB: broadcast; AM: MAR hashed by the top 6 bits of the big-endian
// CRC-32 of the destination; PAR), is padded to 60 bytes, gets its FCS and a 4-byte header (RSR, next page, byte
// count with header and FCS) and is written from page CURR through the ring PSTART..PSTOP, wrapping; the next page
// is the one after the page the last byte's successor falls in (count / 256 + 1 pages). The ring is
// full when the pages from CURR up to BNRY (CURR == BNRY: none) cannot hold the frame: then ISR.OVW, RSR.MPA and
// CNTR2 are set and the frame is refused (the backend keeps it and retries when the driver moves BNRY or starts the
// NIC). RCR.MON counts a frame (CNTR2) without storing it. While stopped (CR.STP) frames are dropped.
// Interrupts: INTx is asserted while ISR & IMR (bits 0-6) is non-zero. Reset (the reset port, a PCI reset) stops
// the NIC (CR = STP | RD2), sets ISR.RST and clears IMR; CR.STP also sets ISR.RST, CR.STA clears it.
//
// Hostile-guest rules: every on-card address is bounded to the PROM/RAM arrays; a ring whose PSTART/PSTOP/CURR/BNRY
// do not lie in RAM with PSTART < PSTOP drops the frame (counted); every register access does a bounded amount of
// work (at most 4 bytes per data port access, one frame per transmit command); bad accesses are counted and logged
// rate-limited. The NIC never touches guest RAM (it has no bus master DMA).
//
// Deliberately not done: the 93C46 EEPROM behind 9346CR, the FIFO and collision emulation, the DP8390 loopback
// quirks (the frame is simply received), "Send Packet" auto-advancing BNRY, CONFIG1 / BPAGE boot ROM paging, link
// changes (the link is always up).
//
// Threading: register accesses come from vCPU threads, received frames from the backend's thread; all device state
// is guarded by m_state_lock. Lock order: Backend rx lock -> m_state_lock -> PciDevice config lock (set_intx).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "devices/pci/pci_device.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::net {

namespace ne2k {
// I/O BAR layout.
constexpr uint32_t CR = 0x00;
constexpr uint32_t DATA = 0x10;
constexpr uint32_t RESET = 0x1f;
constexpr uint32_t IO_SIZE = 0x20;

// Page 0 (read).
constexpr uint32_t CLDA0 = 0x01;
constexpr uint32_t CLDA1 = 0x02;
constexpr uint32_t BNRY = 0x03;
constexpr uint32_t TSR = 0x04;
constexpr uint32_t NCR = 0x05;
constexpr uint32_t FIFO = 0x06;
constexpr uint32_t ISR = 0x07;
constexpr uint32_t CRDA0 = 0x08;
constexpr uint32_t CRDA1 = 0x09;
constexpr uint32_t RTL8029_ID0 = 0x0a;
constexpr uint32_t RTL8029_ID1 = 0x0b;
constexpr uint32_t RSR = 0x0c;   // read; RCR when written
constexpr uint32_t CNTR0 = 0x0d; // frame alignment errors
constexpr uint32_t CNTR1 = 0x0e; // CRC errors
constexpr uint32_t CNTR2 = 0x0f; // missed frames
// Page 0 (write).
constexpr uint32_t PSTART = 0x01;
constexpr uint32_t PSTOP = 0x02;
constexpr uint32_t TPSR = 0x04;
constexpr uint32_t TBCR0 = 0x05;
constexpr uint32_t TBCR1 = 0x06;
constexpr uint32_t RSAR0 = 0x08;
constexpr uint32_t RSAR1 = 0x09;
constexpr uint32_t RBCR0 = 0x0a;
constexpr uint32_t RBCR1 = 0x0b;
constexpr uint32_t RCR = 0x0c;
constexpr uint32_t TCR = 0x0d;
constexpr uint32_t DCR = 0x0e;
constexpr uint32_t IMR = 0x0f;
// Page 1.
constexpr uint32_t PAR0 = 0x01;
constexpr uint32_t CURR = 0x07;
constexpr uint32_t MAR0 = 0x08;
// Page 2 (read).
constexpr uint32_t RNPP = 0x03;
constexpr uint32_t LNPP = 0x05;
constexpr uint32_t ACU = 0x06;
constexpr uint32_t ACL = 0x07;
// Page 3 (RTL8029AS).
constexpr uint32_t CR9346 = 0x01;
constexpr uint32_t CONFIG0 = 0x03;
constexpr uint32_t CONFIG2 = 0x05;
constexpr uint32_t CONFIG3 = 0x06;
constexpr uint32_t HLTCLK = 0x09;
constexpr uint32_t P3_ID0 = 0x0e;
constexpr uint32_t P3_ID1 = 0x0f;

constexpr uint8_t CR_STP = 0x01;
constexpr uint8_t CR_STA = 0x02;
constexpr uint8_t CR_TXP = 0x04;
constexpr uint8_t CR_RD_MASK = 0x38;
constexpr uint8_t CR_RD_READ = 0x08;
constexpr uint8_t CR_RD_WRITE = 0x10;
constexpr uint8_t CR_RD_SEND = 0x18;
constexpr uint8_t CR_RD_ABORT = 0x20; // "abort/complete remote DMA" (RD2)
constexpr unsigned CR_PS_SHIFT = 6;

constexpr uint8_t ISR_PRX = 0x01;
constexpr uint8_t ISR_PTX = 0x02;
constexpr uint8_t ISR_RXE = 0x04;
constexpr uint8_t ISR_TXE = 0x08;
constexpr uint8_t ISR_OVW = 0x10;
constexpr uint8_t ISR_CNT = 0x20;
constexpr uint8_t ISR_RDC = 0x40;
constexpr uint8_t ISR_RST = 0x80;
constexpr uint8_t IMR_VALID = 0x7f;

constexpr uint8_t DCR_WTS = 0x01;
constexpr uint8_t TCR_LB_MASK = 0x06;
constexpr uint8_t RCR_AB = 0x04;
constexpr uint8_t RCR_AM = 0x08;
constexpr uint8_t RCR_PRO = 0x10;
constexpr uint8_t RCR_MON = 0x20;
constexpr uint8_t TSR_PTX = 0x01;
constexpr uint8_t TSR_ABT = 0x08;
constexpr uint8_t RSR_PRX = 0x01;
constexpr uint8_t RSR_MPA = 0x10;
constexpr uint8_t RSR_PHY = 0x20; // multicast or broadcast destination
constexpr uint8_t RSR_DIS = 0x40; // receiver disabled (monitor mode)

constexpr uint8_t EEM_MASK = 0xc0;
constexpr uint8_t EEM_CONFIG_WRITE = 0xc0;
constexpr uint8_t CONFIG2_10BASET = 0x40;
constexpr uint8_t CONFIG3_FUDUP = 0x40;
constexpr uint8_t ID0 = 0x50; // 'P'
constexpr uint8_t ID1 = 0x43; // 'C': RTL8029

// On-card memory.
constexpr size_t PROM_SIZE = 32;
constexpr uint32_t RAM_START = 0x4000;
constexpr uint32_t RAM_SIZE = 0x4000;
constexpr uint32_t RAM_END = RAM_START + RAM_SIZE;
constexpr uint32_t PAGE_SIZE = 256;
constexpr uint8_t RAM_FIRST_PAGE = RAM_START / PAGE_SIZE;
constexpr uint32_t RAM_END_PAGE = RAM_END / PAGE_SIZE;
constexpr size_t RX_HEADER = 4;
constexpr uint32_t TX_SIZE_MAX = 1518; // an Ethernet frame with a VLAN tag, without FCS
} // namespace ne2k

struct Ne2kPciStats {
    uint64_t tx_frames { 0 };
    uint64_t tx_bytes { 0 };
    uint64_t tx_aborted { 0 };     // lengths out of range, buffers outside the card's RAM
    uint64_t tx_loopback { 0 };    // frames sent in loopback mode (received by this NIC)
    uint64_t rx_frames { 0 };
    uint64_t rx_bytes { 0 };
    uint64_t rx_filtered { 0 };    // frames the RCR filters refused
    uint64_t rx_dropped_stopped { 0 }; // frames while CR.STP was set
    uint64_t rx_dropped_bad { 0 }; // frames outside the size limits
    uint64_t rx_monitor { 0 };     // frames counted but not stored (RCR.MON)
    uint64_t rx_no_buffer { 0 };   // frames refused for lack of room in the ring (the backend may retry)
    uint64_t rx_bad_ring { 0 };    // frames dropped because PSTART/PSTOP/CURR/BNRY make no ring in RAM
    uint64_t interrupts { 0 };     // times INTx was asserted
    uint64_t bad_accesses { 0 };   // accesses outside the registers and ports, locked config writes
};

struct Ne2kPciOptions {
    std::vector<uint8_t> option_rom; // the expansion ROM image (romfile=); empty: no ROM BAR
};

class Ne2kPci final : public pci::PciDevice {
    struct Passkey {};

public:
    static constexpr uint16_t VENDOR_ID = 0x10ec;
    static constexpr uint16_t DEVICE_ID = 0x8029;
    static constexpr int IO_BAR = 0;
    static constexpr size_t RX_FRAME_MAX = 1514 + 4; // an Ethernet frame with a VLAN tag, without FCS

    [[nodiscard]] static Result<std::shared_ptr<Ne2kPci>> create(std::shared_ptr<hako::net::Backend> backend,
        hako::net::MacAddress mac, Ne2kPciOptions options = {});
    Ne2kPci(Passkey, std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac, Ne2kPciOptions options);
    ~Ne2kPci() override;

    std::string_view name() const override { return "ne2k_pci"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;

    /// Network -> guest. Public for tests and fuzzing.
    /// \return false if the ring has no room for it now (the caller may retry later)
    bool receive(std::span<uint8_t const> frame);

    Ne2kPciStats stats() const;
    hako::net::MacAddress mac() const { return m_mac; }

protected:
    void reset_device() override;

private:
    // m_state_lock held for all of these.
    void power_on_locked();
    void nic_reset_locked();
    void bad_access(std::string_view what, uint64_t offset, size_t size);
    uint8_t read_register(uint32_t off);
    void write_register(uint32_t off, uint8_t value);
    void write_command(uint8_t value);
    void write_page3(uint32_t off, uint8_t value);
    uint32_t data_width(size_t access_size) const;
    void dma_read(std::span<uint8_t> out);
    void dma_write(std::span<uint8_t const> in);
    void dma_advance(uint32_t bytes);
    void dma_count(uint32_t bytes);
    uint8_t mem_read(uint32_t addr) const;
    void mem_write(uint32_t addr, uint8_t value);
    void transmit();
    bool receive_locked(std::span<uint8_t const> frame);
    bool rx_accept(std::span<uint8_t const> frame, uint8_t& status) const;
    bool ring_valid() const;
    void count_missed();
    void set_cause(uint8_t causes);
    void update_irq();
    void wake_backend();
    uint8_t page() const { return static_cast<uint8_t>(m_cr >> ne2k::CR_PS_SHIFT); }

    std::shared_ptr<hako::net::Backend> m_backend;
    hako::net::MacAddress const m_mac;
    std::vector<uint8_t> const m_option_rom;
    std::array<uint8_t, ne2k::PROM_SIZE> m_prom {};

    mutable std::mutex m_state_lock; // guards everything below
    std::array<uint8_t, ne2k::RAM_SIZE> m_ram {};
    uint8_t m_cr { 0 };
    uint8_t m_pstart { 0 };
    uint8_t m_pstop { 0 };
    uint8_t m_bnry { 0 };
    uint8_t m_tpsr { 0 };
    uint16_t m_tbcr { 0 };
    uint8_t m_isr { 0 };
    uint8_t m_imr { 0 };
    uint16_t m_rsar { 0 };
    uint16_t m_rbcr { 0 };
    uint8_t m_rcr { 0 };
    uint8_t m_tcr { 0 };
    uint8_t m_dcr { 0 };
    uint8_t m_tsr { 0 };
    uint8_t m_rsr { 0 };
    uint8_t m_curr { 0 };
    uint8_t m_rnpp { 0 };
    uint16_t m_clda { 0 };
    std::array<uint8_t, 6> m_par {};
    std::array<uint8_t, 8> m_mar {};
    std::array<uint8_t, 3> m_cntr {};
    uint8_t m_9346cr { 0 };
    uint8_t m_config2 { 0 };
    uint8_t m_config3 { 0 };
    bool m_irq_level { false };
    bool m_rx_starved { false };
    std::vector<uint8_t> m_tx_buf;
    std::vector<uint8_t> m_rx_buf;
    Ne2kPciStats m_stats;
};

} // namespace hako::devices::net
