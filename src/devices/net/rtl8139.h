// Rtl8139: the Realtek RTL8139C+ Fast Ethernet controller as a PCI function over a net::Backend, after Realtek's
// RTL8139C(L)+ datasheet (rev 1.x) and its programming guide. What stock drivers bind to: PCI 10EC:8139, class
// 0x020000, revision 0x20 (C+: Linux's 8139cp takes revision >= 0x20, 8139too the rest; 8139too also drives a C+ in
// C mode), subsystem 10EC:8139, INTA#. TCR reports the RTL8139C+ hardware version (bits 30:26, 23:22 = 11101 10).
//
// BARs: 0 = I/O, 256 bytes; 1 = 32-bit memory, 256 bytes; both the same register file, accessed as bytes, words or
// dwords at any offset (each byte of a multi-byte access goes to the byte register it names; side effects run once
// per register touched, after the bytes are stored); a ROM BAR when an option ROM is given.
//
// Registers modelled: IDR0-5 (MAC, loaded from the EEPROM at reset), MAR0-7 (multicast hash filter), TSD0-3 / TSAD0-3
// (C mode transmit), RBSTART, CR (RST resets, RE, TE, BUFE read-only), CAPR / CBR, IMR / ISR (write 1 to clear),
// TCR (loopback and retry bits stored; the hardware version read-only), RCR (AAP, APM, AM, AB, WRAP, RBLEN; the
// rest stored), TCTR (counts at 33 MHz from the clock; a write zeroes it), MPC (missed packets; a write zeroes it),
// 9346CR (EEM: normal, auto-load, programming with the EECS/EESK/EEDI/EEDO pins bit-banged to a 93C46, config write
// enable), CONFIG0-5 (writable only with EEM = 11), TimerInt (stored), MSR (link up, 100 Mb/s), the TSAD summary
// (0x60), the MII registers BMCR (reset self-clears) / BMSR (link up, autonegotiation complete) / ANAR / ANLPAR /
// ANER, CSCR and the PHY parameters as storage; in C+ mode CPCR, TPPOLL, the ring addresses TNPDS / THPDS / RDSAR
// and the tally counter address over TSD0-1 (DumpStats writes the 64-byte counter block).
// The EEPROM (93C46, 64 x 16 bits, read-only; E1000Eeprom does the Microwire protocol): word 0 = 0x8129, 1-2 the
// vendor and device IDs, 3-4 the subsystem IDs, 7-9 the MAC (where 8139too reads it).
//
// Transmit (C mode): a write to TSDn with OWN clear while CR.TE is set sends SIZE bytes from TSADn at once (frames
// below 60 bytes padded), then sets OWN and TOK and ISR.TOK. A size above 1792 or a buffer outside guest RAM aborts
// (TSD.TABT, ISR.TER, counted).
// Receive (C mode): a frame from the backend passes the RCR filters (AAP; APM: IDR; AB: broadcast; AM: MAR hashed by
// the top 6 bits of the big-endian CRC-32 of the destination), is padded to 60 bytes, gets its FCS, and is written at
// RBSTART + CBR as the 4-byte header (status ROK|BAR|PAM|MAR, length with the FCS) and the frame; CBR moves past it,
// rounded up to 4 bytes, modulo the buffer length (8 KiB << RBLEN). Without RCR.WRAP a frame that reaches the end
// continues at the start of the buffer; with it the frame runs on past the end (the driver allocates the extra
// 1.5 KiB). ISR.ROK is raised per frame. A frame for which the buffer between CBR and CAPR + 16 has no room is
// refused (ISR.RXOVW, MPC counted; the backend keeps it) and retried when the driver moves CAPR.
// C+ mode (CPCR.TxOn / RxOn, as Linux's 8139cp drives it): descriptor rings of 16-byte descriptors (opts1 with
// OWN / EOR / FS / LS and the length, opts2, a 64-bit buffer address); an index wraps at EOR (or after RING_MAX).
// Transmit runs when TPPOLL.NPQ (or HPQ, for the high-priority ring) is written: every descriptor the NIC owns is
// taken, the buffers from FS to LS gathered into one frame (at most CP_TX_FRAME_MAX bytes; more, a frame without
// FS, or a buffer outside guest RAM drops it with TxError in its LS descriptor and ISR.TER), OWN cleared in each;
// the FS descriptor's IPCS / TCPCS / UDPCS fill those checksums (the NIC finds the headers: IPv4, TCP, UDP, with a
// VLAN tag too), LGSEN cuts a TCP packet into MSS-sized segments, opts2.TAGC inserts an 802.1Q tag; ISR.TOK per
// poll that sent something, ISR.TDU when the poll found no descriptor. TPPOLL.FSWINT raises ISR.SWINT.
// Receive writes the frame (padded, with its FCS) into the buffers of as many descriptors as it needs (at most
// RX_FRAGMENTS_MAX; FS on the first, LS with the whole length and the status on the last), clearing OWN; with
// CPCR.RxChkSum the status gets the protocol (TCP/UDP/IP) and IP/TCP/UDP checksum failures, with CPCR.RxVLAN an
// 802.1Q tag is stripped into opts2. No descriptor owned by the NIC: ISR.RDU, the frame is refused (the backend keeps
// it) and retried when the driver writes ISR, CPCR or RDSAR.
// Interrupts: INTx is asserted while ISR & IMR is non-zero.
//
// Hostile-guest rules: every DMA is range-checked by GuestMemory; no register write loops over guest data; bad
// accesses, transmits and receive buffers are counted and logged rate-limited.
//
// Deliberately not done: C+ interrupt mitigation (IntrMitigate stored), RxMaxSize (the C mode limit applies), the
// receive status bits for physical/broadcast matches (only the multicast bit: Linux reads that), early transmit/receive thresholds,
// loopback, the TimerInt interrupt (TimerInt is stored, TCTR counts), wake-up frames and power management, EEPROM
// writes, link changes (the link is always up).
//
// Threading: register accesses come from vCPU threads, received frames from the backend's thread; all device state
// is guarded by m_state_lock. Lock order: Backend rx lock -> m_state_lock -> PciDevice config lock (set_intx).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "devices/net/e1000_eeprom.h"
#include "devices/pci/pci_device.h"
#include "memory/guest_memory.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::net {

namespace rtl8139 {
// Register offsets (datasheet section 6).
constexpr uint32_t IDR0 = 0x00;
constexpr uint32_t MAR0 = 0x08;
constexpr uint32_t TSD0 = 0x10;
constexpr uint32_t STATS_ADDR = 0x10; // C+ mode: the tally counter dump address (64 bits) over TSD0-1
constexpr uint32_t TSAD0 = 0x20;
constexpr uint32_t TNPDS = 0x20; // C+ mode: the normal-priority transmit ring (64 bits) over TSAD0-1
constexpr uint32_t THPDS = 0x28; // C+ mode: the high-priority transmit ring (64 bits) over TSAD2-3
constexpr uint32_t RBSTART = 0x30;
constexpr uint32_t ERBCR = 0x34;
constexpr uint32_t ERSR = 0x36;
constexpr uint32_t CR = 0x37;
constexpr uint32_t CAPR = 0x38;
constexpr uint32_t CBR = 0x3a;
constexpr uint32_t IMR = 0x3c;
constexpr uint32_t ISR = 0x3e;
constexpr uint32_t TCR = 0x40;
constexpr uint32_t RCR = 0x44;
constexpr uint32_t TCTR = 0x48;
constexpr uint32_t MPC = 0x4c;
constexpr uint32_t CR9346 = 0x50;
constexpr uint32_t CONFIG0 = 0x51;
constexpr uint32_t CONFIG1 = 0x52;
constexpr uint32_t TIMER_INT = 0x54;
constexpr uint32_t MSR = 0x58;
constexpr uint32_t CONFIG3 = 0x59;
constexpr uint32_t CONFIG4 = 0x5a;
constexpr uint32_t MULINT = 0x5c;
constexpr uint32_t RERID = 0x5e;
constexpr uint32_t TSAD_SUMMARY = 0x60;
constexpr uint32_t BMCR = 0x62;
constexpr uint32_t BMSR = 0x64;
constexpr uint32_t ANAR = 0x66;
constexpr uint32_t ANLPAR = 0x68;
constexpr uint32_t ANER = 0x6a;
constexpr uint32_t CSCR = 0x74;
constexpr uint32_t CONFIG5 = 0xd8;
constexpr uint32_t TPPOLL = 0xd9;
constexpr uint32_t RESERVED_DA = 0xda; // 0xda-0xdf: reserved on the 8139C+ (the RTL8169 has its RxMaxSize here)
constexpr uint32_t CPCR = 0xe0;
constexpr uint32_t RDSAR = 0xe4; // C+ mode: the receive ring (64 bits)
constexpr uint32_t REG_SIZE = 0x100;
constexpr size_t ETH_MIN_PADDED = 60; // frames are padded to this before their FCS
constexpr size_t FCS_LEN = 4;

constexpr uint8_t CR_BUFE = 1u << 0;
constexpr uint8_t CR_TE = 1u << 2;
constexpr uint8_t CR_RE = 1u << 3;
constexpr uint8_t CR_RST = 1u << 4;

constexpr uint16_t INT_ROK = 1u << 0;
constexpr uint16_t INT_RER = 1u << 1;
constexpr uint16_t INT_TOK = 1u << 2;
constexpr uint16_t INT_TER = 1u << 3;
constexpr uint16_t INT_RXOVW = 1u << 4;
constexpr uint16_t INT_LINKCHG = 1u << 5;
constexpr uint16_t INT_FOVW = 1u << 6;
constexpr uint16_t INT_TDU = 1u << 7;   // C+ mode: transmit descriptor unavailable
constexpr uint16_t INT_SWINT = 1u << 8; // C+ mode: TPPOLL.FSWINT
constexpr uint16_t INT_RDU = INT_RXOVW; // C+ mode: receive descriptor unavailable
constexpr uint16_t INT_TIMEOUT = 1u << 14;
constexpr uint16_t INT_SERR = 1u << 15;
constexpr uint16_t INT_VALID = 0xe1ff;

constexpr uint32_t TSD_SIZE_MASK = 0x1fff;
constexpr uint32_t TSD_OWN = 1u << 13;
constexpr uint32_t TSD_TUN = 1u << 14;
constexpr uint32_t TSD_TOK = 1u << 15;
constexpr uint32_t TSD_TABT = 1u << 30;
constexpr uint32_t TX_SIZE_MAX = 1792;

constexpr uint32_t RCR_AAP = 1u << 0;
constexpr uint32_t RCR_APM = 1u << 1;
constexpr uint32_t RCR_AM = 1u << 2;
constexpr uint32_t RCR_AB = 1u << 3;
constexpr uint32_t RCR_WRAP = 1u << 7;
constexpr uint32_t RCR_RBLEN_SHIFT = 11;

constexpr uint16_t RX_ROK = 1u << 0;
constexpr uint16_t RX_BAR = 1u << 13;
constexpr uint16_t RX_PAM = 1u << 14;
constexpr uint16_t RX_MAR = 1u << 15;

constexpr uint32_t TCR_HWVER = 0x74800000; // RTL8139C+
constexpr uint8_t EEM_MASK = 0xc0;
constexpr uint8_t EEM_AUTOLOAD = 0x40;
constexpr uint8_t EEM_PROGRAM = 0x80;
constexpr uint8_t EEM_CONFIG_WRITE = 0xc0;
constexpr uint8_t EE_CS = 1u << 3;
constexpr uint8_t EE_SK = 1u << 2;
constexpr uint8_t EE_DI = 1u << 1;
constexpr uint8_t EE_DO = 1u << 0;

// C+ command register (CPCR) and transmit poll (TPPOLL).
constexpr uint16_t CPCR_TX_ON = 1u << 0;
constexpr uint16_t CPCR_RX_ON = 1u << 1;
constexpr uint16_t CPCR_RX_CSUM = 1u << 5;
constexpr uint16_t CPCR_RX_VLAN = 1u << 6;
constexpr uint16_t CPCR_WRITABLE = 0x007b;
constexpr uint8_t TPPOLL_HPQ = 1u << 7;
constexpr uint8_t TPPOLL_NPQ = 1u << 6;
constexpr uint8_t TPPOLL_FSWINT = 1u << 0;
constexpr uint32_t STATS_DUMP = 1u << 3; // in STATS_ADDR: start the dump; cleared when done
constexpr size_t TALLY_SIZE = 64;

// C+ descriptors: 16 bytes, opts1 (le32), opts2 (le32), the buffer address (le64).
constexpr size_t DESC_SIZE = 16;
constexpr uint32_t DESC_OWN = 1u << 31;
constexpr uint32_t DESC_EOR = 1u << 30;
constexpr uint32_t DESC_FS = 1u << 29;
constexpr uint32_t DESC_LS = 1u << 28;
constexpr uint32_t TXD_LGSEN = 1u << 27;
constexpr uint32_t TXD_MSS_SHIFT = 16;
constexpr uint32_t TXD_MSS_MASK = 0x7ff;
constexpr uint32_t TXD_ERROR = 1u << 23;
constexpr uint32_t TXD_IPCS = 1u << 18;
constexpr uint32_t TXD_UDPCS = 1u << 17;
constexpr uint32_t TXD_TCPCS = 1u << 16;
constexpr uint32_t TXD_LEN_MASK = 0xffff;
constexpr uint32_t TXD_TAGC = 1u << 17; // opts2: insert the VLAN tag in its low 16 bits (network byte order)
constexpr uint32_t RXD_MAR = 1u << 26;
constexpr uint32_t RXD_ERROR = 1u << 20;
constexpr uint32_t RXD_PID_SHIFT = 16; // 0 not IP, 1 TCP/IP, 2 UDP/IP, 3 other IP
constexpr uint32_t RXD_IP_FAIL = 1u << 15;
constexpr uint32_t RXD_UDP_FAIL = 1u << 14;
constexpr uint32_t RXD_TCP_FAIL = 1u << 13;
constexpr uint32_t RXD_LEN_MASK = 0x1fff;
constexpr uint32_t RXD_VLAN_TAGGED = 1u << 16; // opts2: the stripped tag is in its low 16 bits
/// hako's bound on a ring (the RTL8169 family's largest; Linux's 8139cp uses 64): without EOR the index wraps here.
constexpr unsigned RING_MAX = 1024;
/// The most descriptors one received frame may span.
constexpr unsigned RX_FRAGMENTS_MAX = 16;

constexpr uint16_t BMCR_RESET = 0x8000;
constexpr uint16_t BMCR_DEFAULT = 0x3100; // 100 Mb/s, autonegotiation enabled, full duplex
constexpr uint16_t BMSR_DEFAULT = 0x782d; // 10/100 half/full capable, autonegotiation complete, link up
constexpr uint16_t BMSR_LINK = 0x0004;
constexpr uint16_t BMSR_ANEG_COMPLETE = 0x0020;

constexpr unsigned EEPROM_WORD_ID = 0;
constexpr uint16_t EEPROM_ID = 0x8129;
constexpr unsigned EEPROM_WORD_MAC = 7;
} // namespace rtl8139

struct Rtl8139Stats {
    uint64_t tx_frames { 0 };
    uint64_t tx_bytes { 0 };
    uint64_t tx_aborted { 0 };      // sizes out of range, buffers outside guest RAM, CR.TE clear
    uint64_t rx_frames { 0 };
    uint64_t rx_bytes { 0 };
    uint64_t rx_filtered { 0 };     // frames the RCR filters refused
    uint64_t rx_dropped_disabled { 0 }; // frames while CR.RE was clear
    uint64_t rx_dropped_bad { 0 };  // frames outside the size limits
    uint64_t rx_no_buffer { 0 };    // frames refused for lack of room in the ring (the backend may retry)
    uint64_t rx_bad_buffer { 0 };   // ring writes outside guest RAM
    uint64_t rx_unicast { 0 };
    uint64_t rx_broadcast { 0 };
    uint64_t rx_multicast { 0 };
    uint64_t cp_tx_descriptors { 0 };     // C+ transmit descriptors processed
    uint64_t cp_tx_bad { 0 };             // C+ frames dropped: no FS, too long, buffer or ring outside guest RAM
    uint64_t cp_tx_checksums { 0 };       // checksums inserted (IPCS, TCPCS, UDPCS)
    uint64_t cp_tx_tso_packets { 0 };
    uint64_t cp_tx_tso_segments { 0 };
    uint64_t cp_rx_no_descriptor { 0 };   // C+ frames refused for lack of descriptors (the backend may retry)
    uint64_t cp_rx_checksums { 0 };       // received frames whose checksums were checked (RxChkSum)
    uint64_t cp_rx_vlan_stripped { 0 };
    uint64_t tally_dumps { 0 };
    uint64_t interrupts { 0 };      // times INTx was asserted
    uint64_t bad_accesses { 0 };    // accesses outside the register file, read-only or config-locked writes
    uint64_t eeprom_unsupported { 0 };
};

struct Rtl8139Options {
    std::vector<uint8_t> option_rom;    // the expansion ROM image (romfile=); empty: no ROM BAR
    std::function<int64_t()> clock_ns;  // monotonic time for TCTR; empty: TCTR reads 0
};

class Rtl8139 final : public pci::PciDevice {
    struct Passkey {};

public:
    static constexpr uint16_t VENDOR_ID = 0x10ec;
    static constexpr uint16_t DEVICE_ID = 0x8139;
    static constexpr uint8_t REVISION = 0x20;
    static constexpr int IO_BAR = 0;
    static constexpr int MMIO_BAR = 1;
    static constexpr size_t RX_FRAME_MAX = 1514 + 4 + 4; // an Ethernet frame with a VLAN tag, without FCS
    static constexpr size_t CP_TX_FRAME_MAX = 65535 + 14 + 4; // an LGSEN packet: an IP datagram and its headers
    static constexpr size_t CP_TX_WIRE_MAX = 4096 + 14 + 4;  // one frame as sent (8139cp's largest MTU, a tag)

    [[nodiscard]] static Result<std::shared_ptr<Rtl8139>> create(memory::GuestMemory const& mem,
        std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac, Rtl8139Options options = {});
    Rtl8139(Passkey, memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
        hako::net::MacAddress mac, Rtl8139Options options);
    ~Rtl8139() override;

    std::string_view name() const override { return "rtl8139"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;

    /// Network -> guest. Public for tests and fuzzing.
    /// \return false if the receive buffer has no room for it now (the caller may retry later)
    bool receive(std::span<uint8_t const> frame);

    Rtl8139Stats stats() const;
    hako::net::MacAddress mac() const { return m_mac; }

protected:
    void reset_device() override;

private:
    // m_state_lock held for all of these.
    void power_on_locked();
    void soft_reset_locked();
    void load_from_eeprom_locked();
    uint8_t read_byte(uint32_t offset);
    /// Stores one byte of a guest write. \return true if the register it belongs to needs its side effect run.
    bool write_byte(uint32_t offset, uint8_t value);
    void register_written(uint32_t base);
    void bad_access(std::string_view what, uint64_t offset, size_t size);
    void transmit(unsigned slot);
    bool rx_accept(std::span<uint8_t const> frame, uint16_t& status) const;
    uint32_t rx_buffer_len() const;
    uint32_t rx_free() const;
    void set_cause(uint16_t causes);
    void update_irq();
    void count_received(size_t bytes, uint16_t status);
    // C+ mode (rtl8139_cplus.cpp).
    bool cplus_tx() const { return (r16(rtl8139::CPCR) & rtl8139::CPCR_TX_ON) != 0; }
    bool cplus_rx() const { return (r16(rtl8139::CPCR) & rtl8139::CPCR_RX_ON) != 0; }
    uint64_t r64(uint32_t off) const { return r32(off) | uint64_t { r32(off + 4) } << 32; }
    void cp_transmit_poll(uint32_t ring_reg, unsigned& index);
    bool cp_tx_append(uint64_t addr, uint32_t len);
    void cp_tx_finish();
    void cp_tx_emit(std::span<uint8_t const> frame);
    bool cp_receive(std::span<uint8_t const> frame, uint16_t c_status);
    void dump_tally();
    void retry_rx();

    uint8_t r8(uint32_t off) const { return m_regs[off]; }
    uint16_t r16(uint32_t off) const;
    uint32_t r32(uint32_t off) const;
    void w16(uint32_t off, uint16_t v);
    void w32(uint32_t off, uint32_t v);

    memory::GuestMemory const& m_mem;
    std::shared_ptr<hako::net::Backend> m_backend;
    hako::net::MacAddress const m_mac;
    std::vector<uint8_t> const m_option_rom;
    std::function<int64_t()> const m_clock_ns;

    mutable std::mutex m_state_lock; // guards everything below
    std::array<uint8_t, rtl8139::REG_SIZE> m_regs {};
    E1000Eeprom m_eeprom;
    int64_t m_tctr_base_ns { 0 };
    uint32_t m_rx_write { 0 }; // CBR: offset of the next frame in the receive buffer
    bool m_irq_level { false };
    bool m_rx_starved { false };
    std::vector<uint8_t> m_tx_buf;
    std::vector<uint8_t> m_rx_buf;
    // C+ mode.
    unsigned m_cp_tx_index { 0 };  // next normal-priority transmit descriptor
    unsigned m_cp_hi_index { 0 };  // next high-priority transmit descriptor
    unsigned m_cp_rx_index { 0 };  // next receive descriptor
    bool m_cp_tx_started { false }; // an FS was taken and its LS not yet
    bool m_cp_tx_bad { false };     // the frame being gathered is dropped at its LS
    uint32_t m_cp_tx_opts1 { 0 };   // the FS descriptor's commands
    uint32_t m_cp_tx_opts2 { 0 };
    size_t m_cp_tx_len { 0 };
    std::vector<uint8_t> m_cp_tx_frame; // the gathered frame (CP_TX_FRAME_MAX)
    std::vector<uint8_t> m_cp_segment;  // one TSO segment
    std::vector<uint8_t> m_cp_wire;     // a frame with its VLAN tag and padding
    Rtl8139Stats m_stats;
};

} // namespace hako::devices::net
