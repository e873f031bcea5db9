// Pcnet: the AMD PCnet-PCI II (Am79C970A) Ethernet controller as a PCI function over a net::Backend, after AMD's
// Am79C970A data sheet (publication 19436). What stock drivers bind to: PCI 1022:2000, class 0x020000, revision
// 0x10, INTA#; the chip ID in CSR88/CSR89 reads 0x02621003 (part number 0x2621, the PCnet-PCI II; version 0), which
// is how Linux's pcnet32 and iPXE tell it from the other PCnet parts.
//
// BARs: 0 = I/O, 32 bytes; 1 = 32-bit memory, 32 bytes, the same registers; a ROM BAR when an option ROM is given.
// 0x00-0x0f is the address PROM (APROM: the MAC, then zeros, a checksum at 0x0c and the 'WW' signature at 0x0e, as
// the EEPROM of a PCnet board holds it), read as bytes, words or dwords; writable only with BCR2.APROMWE.
// 0x10-0x1f is the register window in one of two modes. Word I/O (WIO, after H_RESET): 16-bit accesses to RDP
// (0x10), RAP (0x12), RESET (0x14) and BDP (0x16). Double-word I/O (DWIO): 32-bit accesses to RDP (0x10), RAP
// (0x14), RESET (0x18) and BDP (0x1c), the upper 16 bits ignored on writes and read as 0. A 32-bit write to offset
// 0x10 in WIO mode enters DWIO (hako then carries it out as a DWIO write to RDP); only H_RESET (a PCI reset)
// leaves DWIO.
// Accesses of the other width in either mode, and byte accesses to the window, are ignored (reads all-ones) and
// counted. BCR18 bit 7 reads back the mode. A read of RESET is S_RESET.
//
// CSRs (through RAP + RDP): CSR0 (INIT, STRT, STOP, TDMD, IENA read-write; IDON, TINT, RINT, MERR, MISS, CERR,
// BABL write 1 to clear; ERR, INTR, RXON, TXON read-only), CSR1/2 the init block address, CSR3 interrupt masks
// (and DXSUFLO), CSR6 (the init block's TLEN and RLEN, read-only), CSR4 (APAD_XMT, DPOLL, UINTCMD/UINT, TXSTRT/TXSTRTM; the other bits stored), CSR5 (SPND suspends
// both directions; LTINTEN, TOKINTD), CSR8-11 LADRF, CSR12-14 PADR, CSR15 mode (PROM, DRCVBC, DRCVPA, DXMTFCS,
// DTX, DRX), CSR24/25 and CSR30/31 the ring bases, CSR58 (an alias of BCR20), CSR72/74 the current ring indices,
// CSR76/78 the ring lengths (two's complement), CSR88/89 the chip ID, CSR112 missed frames; every other CSR up to
// 127 is plain storage. CSR1/2, 8-15, 24/25, 30/31, 76 and 78 are writable only while STOP or SPND is set.
// BCRs (through RAP + BDP): BCR2 (ASEL, APROMWE), BCR4-7 LED status (bit 15 shows the link, always up, while the
// link status enable bit 6 is set), BCR9 full duplex, BCR18 (DWIO read-only), BCR20 SWSTYLE (0: 16-bit LANCE
// structures; 1 (ILACC), 2 and 3: 32-bit structures, 3 with the descriptor words 0 and 2 swapped; SSIZE32 and
// CSRPCNET follow it; other values are refused), BCR22; BCR0-31 otherwise stored.
//
// Initialisation (CSR0.INIT): the init block at CSR1/2 is read in the layout SWSTYLE selects (16-bit: 24 bytes,
// 24-bit ring addresses, ring lengths 2^n up to 128; 32-bit: 28 bytes, lengths 2^n up to 512) into CSR15, PADR,
// LADRF, the ring bases and lengths; IDON is set. With SSIZE32 clear, CSR2[15:8] supplies address bits 31:24 of
// every bus master access. An init block outside guest RAM sets MERR (not IDON), is counted, and the device stays
// stopped.
// Transmit: on TDMD, on STRT and every ~2 ms (the data sheet's transmit poll, CSR4.DPOLL turns it off) while TXON,
// the ring is walked from the current descriptor: frames of one or more descriptors (STP ... ENP, each OWN; the
// buffer length BCNT in two's complement) are gathered and sent, padded to 60 bytes with CSR4.APAD_XMT, without
// their last 4 bytes when CSR15.DXMTFCS is set and the STP descriptor has no ADD_FCS. Each descriptor is handed
// back (OWN clear, the STP one last) and TINT is raised (not with CSR5.TOKINTD; with CSR5.LTINTEN only for
// descriptors with LTINT). A chain whose next descriptor is not owned gets BUFF and UFLO in the descriptor where it
// breaks and ERR; the transmitter then stops (TXON clear) unless CSR3.DXSUFLO. A frame above 1522 bytes (BABL) or
// below 14 is not sent (ERR in its last descriptor). A descriptor owned without STP where a frame must start is handed back with
// ERR. One walk visits at most the ring length of descriptors.
// Receive: a frame that passes the filters (PROM; broadcast unless DRCVBC; our PADR unless DRCVPA; multicast by
// LADRF, indexed by the top 6 bits of the little-endian CRC-32 of the destination) is padded to 60 bytes, gets its
// FCS, and is written into the buffers of the owned descriptors from the current one on (STP on the first, ENP,
// MCNT and PAM/LAFM/BAM on the last; the STP descriptor handed back last); RINT is raised. If the current
// descriptor is not owned the frame is refused and the backend keeps it: it is offered again when the driver
// accesses a register or the poll finds the descriptor owned. If the ring runs out in the middle of a frame, the
// last descriptor written gets ERR and BUFF and the rest of the frame is dropped (counted, and in CSR112).
// Interrupts: INTR is the OR of the CSR0 causes not masked by CSR3 and CSR4's UINT and unmasked TXSTRT; INTx is
// asserted while INTR and IENA are both set.
//
// Hostile-guest rules: every init block, descriptor and buffer access goes through GuestMemory (range-checked); a
// descriptor or init block outside guest RAM sets MERR and stops the direction that needed it (TXON or RXON clear,
// as after a fatal bus error); ring walks and chains are bounded by the ring length; bad accesses, descriptors and
// frames are counted and logged rate-limited.
//
// Deliberately not done: the EEPROM interface (BCR19; the APROM is the EEPROM's content), the MII (the Am79C970A
// has none), loopback and the collision/jabber/babble causes of a real wire, receive and transmit FIFO thresholds,
// CSR4.ASTRP_RCV (FCS stripping), magic packet and sleep modes, the software interrupt timer, the missed frame
// counter overflow interrupt, CSR47 (the poll interval is fixed), CSR72/74 as the data sheet's down-counters (they
// read the current ring index), CSR3.BSWP (big-endian byte order), CSR0.MISS (a frame without a receive buffer
// waits in the backend instead of being missed).
//
// Threading: register accesses come from vCPU threads, received frames from the backend's thread, the poll from
// the event loop; all device state is guarded by m_state_lock. Lock order: Backend rx lock -> m_state_lock ->
// PciDevice config lock (set_intx).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/event_loop.h"
#include "base/result.h"
#include "devices/pci/pci_device.h"
#include "memory/guest_memory.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::net {

namespace pcnet {
// I/O window offsets (data sheet "I/O Resources").
constexpr uint32_t APROM = 0x00;
constexpr uint32_t APROM_SIZE = 0x10;
constexpr uint32_t WIO_RDP = 0x10;
constexpr uint32_t WIO_RAP = 0x12;
constexpr uint32_t WIO_RESET = 0x14;
constexpr uint32_t WIO_BDP = 0x16;
constexpr uint32_t DWIO_RDP = 0x10;
constexpr uint32_t DWIO_RAP = 0x14;
constexpr uint32_t DWIO_RESET = 0x18;
constexpr uint32_t DWIO_BDP = 0x1c;
constexpr uint32_t REG_SIZE = 0x20;

constexpr unsigned CSR_COUNT = 128;
constexpr unsigned BCR_COUNT = 32;

// CSR0.
constexpr uint16_t CSR0_INIT = 1u << 0;
constexpr uint16_t CSR0_STRT = 1u << 1;
constexpr uint16_t CSR0_STOP = 1u << 2;
constexpr uint16_t CSR0_TDMD = 1u << 3;
constexpr uint16_t CSR0_TXON = 1u << 4;
constexpr uint16_t CSR0_RXON = 1u << 5;
constexpr uint16_t CSR0_IENA = 1u << 6;
constexpr uint16_t CSR0_INTR = 1u << 7;
constexpr uint16_t CSR0_IDON = 1u << 8;
constexpr uint16_t CSR0_TINT = 1u << 9;
constexpr uint16_t CSR0_RINT = 1u << 10;
constexpr uint16_t CSR0_MERR = 1u << 11;
constexpr uint16_t CSR0_MISS = 1u << 12;
constexpr uint16_t CSR0_CERR = 1u << 13;
constexpr uint16_t CSR0_BABL = 1u << 14;
constexpr uint16_t CSR0_ERR = 1u << 15;
constexpr uint16_t CSR0_W1C = CSR0_IDON | CSR0_TINT | CSR0_RINT | CSR0_MERR | CSR0_MISS | CSR0_CERR | CSR0_BABL;
constexpr uint16_t CSR0_CAUSES = CSR0_IDON | CSR0_TINT | CSR0_RINT | CSR0_MERR | CSR0_MISS | CSR0_BABL;

// CSR3 (the masks share CSR0's bit positions).
constexpr uint16_t CSR3_DXSUFLO = 1u << 6;
// CSR4.
constexpr uint16_t CSR4_TXSTRTM = 1u << 2;
constexpr uint16_t CSR4_TXSTRT = 1u << 3;
constexpr uint16_t CSR4_UINT = 1u << 6;
constexpr uint16_t CSR4_UINTCMD = 1u << 7;
constexpr uint16_t CSR4_APAD_XMT = 1u << 11;
constexpr uint16_t CSR4_DPOLL = 1u << 12;
constexpr uint16_t CSR4_RESET = 0x0115;
constexpr uint16_t CSR4_W1C = (1u << 9) | (1u << 5) | CSR4_TXSTRT | CSR4_UINT | (1u << 1); // MFCO RCVCCO TXSTRT UINT JAB
// CSR5.
constexpr uint16_t CSR5_SPND = 1u << 0;
constexpr uint16_t CSR5_LTINTEN = 1u << 14;
constexpr uint16_t CSR5_TOKINTD = 1u << 15;
constexpr uint16_t CSR5_W1C = (1u << 11) | (1u << 9) | (1u << 7) | (1u << 4); // SINT SLPINT EXDINT MPINT
// CSR15 mode.
constexpr uint16_t MODE_DRX = 1u << 0;
constexpr uint16_t MODE_DTX = 1u << 1;
constexpr uint16_t MODE_DXMTFCS = 1u << 3;
constexpr uint16_t MODE_DRCVPA = 1u << 13;
constexpr uint16_t MODE_DRCVBC = 1u << 14;
constexpr uint16_t MODE_PROM = 1u << 15;

constexpr unsigned CSR_IADR_LO = 1;
constexpr unsigned CSR_IADR_HI = 2;
constexpr unsigned CSR_RXTXRL = 6;
constexpr unsigned CSR_LADRF = 8;
constexpr unsigned CSR_PADR = 12;
constexpr unsigned CSR_MODE = 15;
constexpr unsigned CSR_BADR_LO = 24;
constexpr unsigned CSR_BADR_HI = 25;
constexpr unsigned CSR_BADX_LO = 30;
constexpr unsigned CSR_BADX_HI = 31;
constexpr unsigned CSR_SWS = 58;
constexpr unsigned CSR_RCVRC = 72;
constexpr unsigned CSR_XMTRC = 74;
constexpr unsigned CSR_RCVRL = 76;
constexpr unsigned CSR_XMTRL = 78;
constexpr unsigned CSR_CHIPID_LO = 88;
constexpr unsigned CSR_CHIPID_HI = 89;
constexpr unsigned CSR_MISSED = 112;
constexpr uint16_t CHIP_ID_LO = 0x1003; // part number bits 3:0 (1), manufacturer ID 1 (AMD), bit 0 one
constexpr uint16_t CHIP_ID_HI = 0x0262; // version 0, part number bits 15:4

// BCRs.
constexpr unsigned BCR_MC = 2;
constexpr unsigned BCR_LNKST = 4;
constexpr unsigned BCR_LED3 = 7;
constexpr unsigned BCR_FDC = 9;
constexpr unsigned BCR_BSBC = 18;
constexpr unsigned BCR_SWS = 20;
constexpr uint16_t BCR2_ASEL = 1u << 1;
constexpr uint16_t BCR2_APROMWE = 1u << 8;
constexpr uint16_t BCR18_DWIO = 1u << 7;
constexpr uint16_t LED_LNKSE = 1u << 6;
constexpr uint16_t LED_LEDOUT = 1u << 15;
constexpr uint16_t SWS_SSIZE32 = 1u << 8;
constexpr uint16_t SWS_CSRPCNET = 1u << 9;

// Descriptor status, as bits 31:16 of the 32-bit RMD1/TMD1 (the 16-bit layouts hold bits 15:8 of these).
constexpr uint16_t DESC_OWN = 1u << 15;
constexpr uint16_t DESC_ERR = 1u << 14;
constexpr uint16_t DESC_STP = 1u << 9;
constexpr uint16_t DESC_ENP = 1u << 8;
constexpr uint16_t RMD_BUFF = 1u << 10;
constexpr uint16_t RMD_PAM = 1u << 6;
constexpr uint16_t RMD_LAFM = 1u << 5;
constexpr uint16_t RMD_BAM = 1u << 4;
constexpr uint16_t TMD_ADD_FCS = 1u << 13;
constexpr uint16_t TMD_LTINT = 1u << 12;
// TMD2 errors, as bits 31:16 of the 32-bit TMD2 (= the 16-bit TMD3's bits).
constexpr uint16_t TMD_BUFF = 1u << 15;
constexpr uint16_t TMD_UFLO = 1u << 14;

constexpr size_t TX_FRAME_MAX = 1522; // an Ethernet frame with a VLAN tag and FCS
} // namespace pcnet

struct PcnetStats {
    uint64_t tx_frames { 0 };
    uint64_t tx_bytes { 0 };
    uint64_t tx_errors { 0 };       // broken chains, oversized frames, descriptors without STP
    uint64_t rx_frames { 0 };
    uint64_t rx_bytes { 0 };
    uint64_t rx_filtered { 0 };     // frames the address filters refused
    uint64_t rx_dropped_stopped { 0 }; // frames while RXON was clear or the device suspended
    uint64_t rx_dropped_bad { 0 };  // frames outside the size limits
    uint64_t rx_no_buffer { 0 };    // frames refused because the current descriptor was not owned (the backend keeps them)
    uint64_t rx_overflow { 0 };     // frames cut short because the ring ran out of owned descriptors
    uint64_t rx_bad_dma { 0 };      // frames lost to a receive descriptor or buffer outside guest RAM
    uint64_t dma_errors { 0 };      // init blocks, descriptors or buffers outside guest RAM (MERR)
    uint64_t bad_init_blocks { 0 };
    uint64_t interrupts { 0 };      // times INTx was asserted
    uint64_t bad_accesses { 0 };    // accesses of the wrong width or mode, refused register writes
};

struct PcnetOptions {
    std::vector<uint8_t> option_rom; // the expansion ROM image (romfile=); empty: no ROM BAR
    EventLoop* loop { nullptr };     // runs the transmit/receive poll; nullptr: only TDMD and register accesses poll
};

class Pcnet final : public pci::PciDevice {
    struct Passkey {};

public:
    static constexpr uint16_t VENDOR_ID = 0x1022;
    static constexpr uint16_t DEVICE_ID = 0x2000;
    static constexpr uint8_t REVISION = 0x10;
    static constexpr int IO_BAR = 0;
    static constexpr int MMIO_BAR = 1;
    static constexpr size_t RX_FRAME_MAX = 1514 + 4; // an Ethernet frame with a VLAN tag, without FCS
    static constexpr std::chrono::milliseconds POLL_INTERVAL { 2 };

    [[nodiscard]] static Result<std::shared_ptr<Pcnet>> create(memory::GuestMemory const& mem,
        std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac, PcnetOptions options = {});
    Pcnet(Passkey, memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
        hako::net::MacAddress mac, PcnetOptions options);
    ~Pcnet() override;

    std::string_view name() const override { return "pcnet"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;

    /// Network -> guest. Public for tests and fuzzing.
    /// \return false if the current receive descriptor is not owned by the device (the caller may retry later)
    bool receive(std::span<uint8_t const> frame);
    /// What the periodic poll does (transmit ring walk, receive retry). Public for tests and fuzzing.
    void poll();

    PcnetStats stats() const;
    hako::net::MacAddress mac() const { return m_mac; }

protected:
    void reset_device() override;

private:
    // Descriptors read into one shape whatever SWSTYLE says.
    struct Desc {
        uint64_t addr { 0 };    // where the descriptor is
        uint64_t buffer { 0 };  // its buffer
        uint16_t status { 0 };  // DESC_* / RMD_* / TMD_* bits
        uint16_t bcnt { 0 };    // the buffer length in bytes (0 .. 4095)
    };

    // m_state_lock held for all of these.
    void hard_reset_locked();
    void soft_reset_locked();
    void bad_access(std::string_view what, uint64_t offset, size_t size);
    bool window_width_ok(uint32_t offset, size_t size);
    uint32_t window_read(uint32_t offset);
    void window_write(uint32_t offset, uint32_t value);
    uint16_t csr_read(unsigned index);
    void csr_write(unsigned index, uint16_t value);
    uint16_t bcr_read(unsigned index) const;
    void bcr_write(unsigned index, uint16_t value);
    void csr0_write(uint16_t value);
    void initialize();
    void start();
    void stop_unit(uint16_t on_bit);
    void dma_error(std::string_view what, uint64_t addr);

    bool style32() const;
    unsigned swstyle() const;
    uint64_t bus_addr(uint32_t addr) const;
    uint32_t rx_ring_len() const;
    uint32_t tx_ring_len() const;
    uint64_t rx_ring_base() const;
    uint64_t tx_ring_base() const;
    bool read_desc(uint64_t addr, Desc& d);
    bool write_desc_status(Desc const& d, uint16_t status);
    bool write_rx_mcnt(Desc const& d, uint16_t mcnt);
    bool write_tx_errors(Desc const& d, uint16_t errors);

    void tx_poll();
    void rx_retry_check();
    bool rx_accept(std::span<uint8_t const> frame, uint16_t& match) const;
    void arm_poll();

    void update_irq();

    memory::GuestMemory const& m_mem;
    std::shared_ptr<hako::net::Backend> m_backend;
    hako::net::MacAddress const m_mac;
    std::vector<uint8_t> const m_option_rom;
    EventLoop* const m_loop;

    mutable std::mutex m_state_lock; // guards everything below
    std::array<uint8_t, pcnet::APROM_SIZE> m_aprom {};
    std::array<uint16_t, pcnet::CSR_COUNT> m_csr {};
    std::array<uint16_t, pcnet::BCR_COUNT> m_bcr {};
    uint16_t m_rap { 0 };
    bool m_dwio { false };
    uint32_t m_rx_index { 0 };
    uint32_t m_tx_index { 0 };
    bool m_irq_level { false };
    bool m_rx_starved { false };
    bool m_in_tx_poll { false };
    bool m_poll_armed { false };
    EventLoop::TimerId m_poll_timer {};
    std::vector<uint8_t> m_tx_buf;
    std::vector<uint8_t> m_rx_buf;
    PcnetStats m_stats;
};

} // namespace hako::devices::net
