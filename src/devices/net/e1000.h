// E1000: the Intel 82540EM Gigabit Ethernet Controller (PRO/1000 MT Desktop) as a PCI function over a net::Backend,
// after Intel's "PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's Manual" (8254x SDM, 317453).
// What stock drivers (Linux e1000, Windows, BSD em, iPXE) bind to: PCI 8086:100E, class 0x020000, revision 2,
// subsystem 8086:001E as on Intel's PRO/1000 MT Desktop adapter (QEMU reports 1af4:1100 here), INTA#.
//
// BARs: 0 = 32-bit memory, 128 KiB of registers; 1 = I/O, 64 bytes: IOADDR (0x00) selects a register offset and
// IODATA (0x04) reads or writes it (SDM 13.2.2; dword accesses only); a ROM BAR when an option ROM is given.
// Register accesses are dwords; a qword is two dwords, a narrower read returns part of the dword read (with its side
// effects), a narrower write is dropped and counted. Unknown offsets read all-ones and drop writes (counted).
//
// Registers modelled (SDM chapter 13): CTRL (RST resets the device, PHY_RST the PHY), STATUS (link always up,
// 1000 Mb/s full duplex), EECD (bit-banged Microwire EEPROM, E1000Eeprom) and EERD, MDIC (the PHY, E1000Phy; only PHY
// address 1 answers, others set MDIC.E), ICR (read clears, write-1-clears) / ICS / IMS / IMC / ITR, RCTL, RDBAL/H,
// RDLEN, RDH, RDT, TCTL, TDBAL/H, TDLEN, TDH, TDT, RXCSUM, RAL/RAH[16], MTA[128], VFTA[128], VET, the 64 statistics
// registers (clear on read; the 64-bit octet counters clear when their high dword is read), and as plain storage
// the flow control, delay timer (RDTR, RADV, TIDV, TADV), FIFO, wake-up, manageability, LED, PBA and packet buffer
// registers a driver programs or tests.
//
// Transmit (SDM 3.3): on a TDT write (or TCTL.EN) the descriptors from TDH to TDT are processed at once: legacy
// descriptors (with IC: a checksum over CSS..end inserted at CSO), context descriptors (remembered for the following
// data descriptors) and data descriptors (POPTS IXSM/TXSM: IP header and TCP/UDP checksum insertion at the
// context's offsets; TSE: TCP segmentation done here: the header is repeated for each MSS-sized piece with the IPv4
// total length and identification, IPv6 payload length, TCP sequence number and flags (FIN/PSH only on the last
// segment) or UDP length updated, and the checksums recomputed, the TCP/UDP one from the pseudo-header sum the
// driver left in the field plus the segment's length). VLE (with CTRL.VME) inserts an 802.1Q tag from the EOP
// descriptor's special field; TCTL.PSP pads short frames to 60 bytes. A descriptor with RS gets DD written back;
// ICR.TXDW (a descriptor with RS was done) and TXQE (the ring is empty) are raised after each pass.
// Receive (SDM 3.2): a frame from the backend is filtered (RAL/RAH exact matches with AV and AS = destination,
// RCTL.UPE/MPE/BAM, the multicast table hashed by RCTL.MO, and the VLAN filter table when RCTL.VFE), the tag is
// stripped into the descriptor with CTRL.VME, the frame is padded to 60 bytes and (unless RCTL.SECRC) given its
// 4-byte FCS, and written into as many descriptors from RDH as its length needs at the RCTL buffer size; the last
// one has EOP. RXCSUM IPOFL/TUOFL: the IPv4 header and TCP/UDP checksums are verified (IPCS/TCPCS, IPE/TCPE);
// otherwise IXSM. ICR.RXT0 is raised for each frame, RXDMT0 when the free descriptors fall to the RDMTS threshold.
// Frames are dropped while RCTL.EN is clear; without enough descriptors the frame is refused (the backend keeps it,
// ICR.RXO and RNBC count it) and retried when the driver moves RDT.
// Interrupts: INTx is asserted while ICR & IMS is non-zero. ITR throttles it: after an assertion the line is not
// asserted again for ITR x 256 ns (an EventLoop timer asserts it when the interval ends). The receive and transmit
// delay timers (RDTR, RADV, TIDV, TADV) are stored but not applied: causes are raised at once, and ITR is the one
// moderation.
//
// Hostile-guest rules: descriptor rings are walked from head to tail, at most one ring's length per pass; a ring
// with RDLEN/TDLEN 0 or a head or tail beyond it does nothing; descriptors and buffers outside guest RAM are
// skipped (a transmit packet is dropped, a receive descriptor written back with RXE) and counted; a transmit packet
// larger than TX_PACKET_MAX is dropped at EOP; zero-length buffers are counted and carry on. Everything is logged
// rate-limited.
//
// Deliberately not done: 82544GC/82573L variants, flow control (pause frames), wake-on-LAN and the flexible filters
// (stored only), loopback modes, RDTR/RADV/TIDV/TADV delays, TXD_LOW and small receive packet detection,
// TBI/SerDes modes, link changes (the link is always up), receive of frames with FCS errors (RCTL.SBP).
//
// Threading: register accesses come from vCPU threads, received frames from the backend's thread, the ITR timer
// from the event loop; all device state is guarded by m_state_lock. Lock order: Backend rx lock -> m_state_lock ->
// PciDevice config lock (set_intx). send() and rx_buffers_available() are called with m_state_lock held.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/event_loop.h"
#include "base/result.h"
#include "devices/net/e1000_eeprom.h"
#include "devices/net/e1000_phy.h"
#include "devices/net/e1000_regs.h"
#include "devices/pci/pci_device.h"
#include "memory/guest_memory.h"
#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::net {

/// Counters of what the device did and refused, cumulative (the guest-visible statistics registers clear on read).
struct E1000Stats {
    uint64_t tx_frames { 0 };          // frames handed to the backend
    uint64_t tx_bytes { 0 };
    uint64_t tx_tso_packets { 0 };     // TSE packets segmented
    uint64_t tx_tso_segments { 0 };    // frames they became
    uint64_t tx_checksums { 0 };       // checksums inserted
    uint64_t tx_dropped { 0 };         // packets dropped: too long, bad TSO context, unreadable buffer
    uint64_t tx_bad_descriptors { 0 }; // descriptors (or their buffers) outside guest RAM, unknown types
    uint64_t tx_zero_length { 0 };     // data descriptors with no bytes
    uint64_t rx_frames { 0 };          // frames written to the guest
    uint64_t rx_bytes { 0 };
    uint64_t rx_filtered { 0 };        // frames the address or VLAN filters refused
    uint64_t rx_dropped_disabled { 0 }; // frames while RCTL.EN was clear
    uint64_t rx_dropped_bad { 0 };      // frames outside the size limits
    uint64_t rx_no_buffer { 0 };        // times a frame was refused for lack of descriptors (the backend may retry)
    uint64_t rx_bad_descriptors { 0 };  // descriptors or buffers outside guest RAM
    uint64_t bad_rings { 0 };           // ring passes skipped: zero length, head or tail beyond the ring
    uint64_t interrupts { 0 };          // times INTx was asserted
    uint64_t itr_deferred { 0 };        // assertions ITR delayed
    uint64_t bad_accesses { 0 };        // unknown offsets, wrong sizes
    uint64_t eeprom_unsupported { 0 };  // Microwire commands other than READ
};

struct E1000Options {
    std::vector<uint8_t> option_rom; // the expansion ROM image (romfile=); empty: no ROM BAR
    EventLoop* loop { nullptr };     // runs the ITR timer; nullptr: a deferred interrupt waits for the next event
    std::function<int64_t()> clock_ns; // monotonic time for ITR; empty: no throttling
};

class E1000 final : public pci::PciDevice {
    struct Passkey {};

public:
    static constexpr uint16_t VENDOR_ID = 0x8086;
    static constexpr uint16_t DEVICE_ID = 0x100e;
    static constexpr uint16_t SUBSYSTEM_VENDOR_ID = 0x8086;
    static constexpr uint16_t SUBSYSTEM_ID = 0x001e;
    static constexpr uint8_t REVISION = 2;
    static constexpr int MMIO_BAR = 0;
    static constexpr int IO_BAR = 1;
    static constexpr uint64_t IO_BAR_SIZE = 0x40;
    static constexpr uint32_t IOADDR = 0x00;
    static constexpr uint32_t IODATA = 0x04;
    /// The largest transmit packet accepted (a TSO packet with its header; a plain frame is at most 16 KiB).
    static constexpr size_t TX_PACKET_MAX = 0x10000 + 256;
    static constexpr size_t TX_FRAME_MAX = 16384;
    static constexpr size_t RX_FRAME_MAX = 16384; // with RCTL.LPE, FCS included; 1522 without

    /// Declares the BARs; registers the device as the backend's Receiver (the destructor unregisters it).
    [[nodiscard]] static Result<std::shared_ptr<E1000>> create(memory::GuestMemory const& mem,
        std::shared_ptr<hako::net::Backend> backend, hako::net::MacAddress mac, E1000Options options = {});
    E1000(Passkey, memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
        hako::net::MacAddress mac, E1000Options options);
    ~E1000() override;

    std::string_view name() const override { return "e1000"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;

    /// Network -> guest: what the Receiver registered with the backend does. Public for tests and fuzzing.
    /// \return false if the guest has no receive descriptors for it now (the caller may retry later)
    bool receive(std::span<uint8_t const> frame);
    /// What the ITR timer does when the throttling interval ends. Public for tests.
    void itr_timer_expired();

    E1000Stats stats() const;
    hako::net::MacAddress mac() const { return m_mac; }

protected:
    void reset_device() override;

private:
    struct TxContext {
        uint8_t ipcss { 0 }, ipcso { 0 };
        uint16_t ipcse { 0 };
        uint8_t tucss { 0 }, tucso { 0 };
        uint16_t tucse { 0 };
        uint32_t paylen { 0 };
        uint8_t tucmd { 0 };
        uint8_t hdr_len { 0 };
        uint16_t mss { 0 };
    };
    // The packet being gathered from transmit descriptors until EOP.
    struct TxPacket {
        size_t len { 0 };
        bool started { false };
        bool bad { false };     // a buffer could not be read or the packet got too long: dropped at EOP
        bool legacy { false };
        bool tse { false };
        uint8_t popts { 0 };
    };

    // Registers (m_state_lock held).
    uint32_t read_reg(uint32_t offset);
    void write_reg(uint32_t offset, uint32_t value);
    void reset_locked();
    void bad_access(std::string_view what, uint64_t offset, size_t size);
    uint32_t& reg(uint32_t offset) { return m_regs[offset / 4]; }
    uint32_t reg(uint32_t offset) const { return m_regs[offset / 4]; }

    // Interrupts (m_state_lock held).
    void set_cause(uint32_t causes);
    void update_irq();

    // Transmit (e1000_tx.cpp; m_state_lock held).
    void process_tx();
    /// \return the descriptor's command byte
    uint8_t tx_descriptor(std::span<uint8_t const, e1000::TX_DESC_SIZE> desc);
    void tx_append(uint64_t addr, uint32_t len);
    void tx_finish(uint8_t cmd, uint8_t legacy_cso, uint8_t legacy_css, uint16_t special);
    void tx_segment_tso(size_t total, bool vlan, uint16_t vlan_tci);
    /// Inserts a checksum over [css, cse] (cse 0: to the end) at cso. \return false if the offsets do not fit.
    bool tx_insert_checksum(std::span<uint8_t> frame, uint32_t css, uint32_t cso, uint32_t cse);
    void tx_send(std::span<uint8_t const> frame, bool vlan, uint16_t vlan_tci);

    // Receive (e1000_rx.cpp; m_state_lock held).
    bool rx_accept(std::span<uint8_t const> frame) const;
    uint32_t rx_buffer_size() const;
    void rx_checksum(std::span<uint8_t const> frame, uint8_t& status, uint8_t& errors) const;
    void count_rx(std::span<uint8_t const> frame, size_t wire_len);

    // Statistics registers (m_state_lock held).
    void stat_add(uint32_t index, uint32_t n = 1);
    void stat_add64(uint32_t low_index, uint64_t n);
    void stat_size_bucket(uint32_t first_index, size_t wire_len);
    /// Counts a multicast or broadcast destination in the given registers.
    void stat_destination(std::span<uint8_t const> frame, uint32_t broadcast_index, uint32_t multicast_index);
    static bool is_broadcast(std::span<uint8_t const> frame);

    memory::GuestMemory const& m_mem;
    std::shared_ptr<hako::net::Backend> m_backend;
    hako::net::MacAddress const m_mac;
    std::vector<uint8_t> const m_option_rom;
    EventLoop* const m_loop;
    std::function<int64_t()> const m_clock_ns;

    mutable std::mutex m_state_lock; // guards everything below
    std::vector<uint32_t> m_regs;     // MMIO_SIZE / 4 dwords: stored register values
    E1000Eeprom m_eeprom;
    E1000Phy m_phy;
    uint32_t m_icr { 0 };
    uint32_t m_ims { 0 };
    uint32_t m_ioaddr { 0 };
    bool m_irq_level { false };
    bool m_itr_timer_armed { false };
    bool m_have_last_irq { false };
    int64_t m_last_irq_ns { 0 };
    bool m_rx_starved { false };
    std::array<uint32_t, e1000::STAT_COUNT> m_hw_stats {}; // the statistics registers (two per 64-bit counter)
    TxContext m_tx_ctx;
    TxPacket m_tx;
    std::vector<uint8_t> m_tx_buf;   // TX_PACKET_MAX
    std::vector<uint8_t> m_tx_frame; // TX_FRAME_MAX: one TSO segment being built
    std::vector<uint8_t> m_tx_wire;  // TX_FRAME_MAX + 4: a frame with its VLAN tag inserted or its padding
    std::vector<uint8_t> m_rx_buf;   // RX_FRAME_MAX
    E1000Stats m_stats;
};

} // namespace hako::devices::net
