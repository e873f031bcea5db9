// Rtl8139 (RTL8139C+ in C mode) driven through its BARs over a heap-backed GuestMemory, a fake net::Backend and a
// fake INTx line: the EEPROM through 9346CR, IDR/MII/TCR at reset, the four transmit slots, the receive ring buffer
// (header, FCS, CAPR/CBR, wrap with and without RCR.WRAP, overflow and retry), the address filters, ISR/IMR, reset;
// C+ mode: transmit and receive descriptor rings, checksum offload both ways, large send, VLAN tags, the tally dump.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/rtl8139.h"
#include "net/checksum.h"
#include "net/packet.h"
#include "../../net/test_frames.h"
#include "../pci/pci_test_util.h"
#include "nic_test_util.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::rtl8139;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000;
constexpr uint64_t TX_DATA = 0x1000;
constexpr uint64_t RX_RING = 0x10000;
constexpr hako::net::MacAddress MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

using devices::net::test::FakeBackend;

using devices::net::test::frame_to;

class Rtl8139Test : public ::testing::Test {
protected:
    Rtl8139Test()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_backend(std::make_shared<FakeBackend>())
        , m_irq(std::make_shared<devices::pci::test::FakeIrq>())
    {
        Rtl8139Options options;
        options.clock_ns = [this] { return m_now; };
        m_dev = Rtl8139::create(m_mem, m_backend, MAC, std::move(options)).value();
        m_dev->set_intx_line(m_irq);
    }

    void w(uint32_t off, uint32_t v, size_t size = 4, int bar = Rtl8139::IO_BAR)
    {
        std::array<uint8_t, 4> b {};
        store_le(b, v);
        m_dev->bar_write(bar, off, std::span<uint8_t const>(b).first(size));
    }
    uint32_t r(uint32_t off, size_t size = 4, int bar = Rtl8139::IO_BAR)
    {
        std::array<uint8_t, 4> b {};
        m_dev->bar_read(bar, off, std::span<uint8_t>(b).first(size));
        return static_cast<uint32_t>(load_le(std::span<uint8_t const>(b).first(size)));
    }
    uint8_t* ram(uint64_t addr) { return m_buf.data() + addr; }

    uint16_t ee_read(unsigned addr)
    {
        uint32_t const cmd = (6u << 6) | addr;
        auto out = [&](uint8_t v) { w(CR9346, v, 1); };
        out(EEM_PROGRAM | EE_CS);
        for (int bit = 8; bit >= 0; --bit) {
            uint8_t const di = ((cmd >> bit) & 1) ? EE_DI : 0;
            out(EEM_PROGRAM | EE_CS | di);
            out(EEM_PROGRAM | EE_CS | di | EE_SK);
        }
        out(EEM_PROGRAM | EE_CS); // SK low: the next rising edge shifts out the first data bit
        uint16_t v = 0;
        for (int i = 0; i < 16; ++i) {
            out(EEM_PROGRAM | EE_CS | EE_SK);
            v = static_cast<uint16_t>(static_cast<uint32_t>(v) << 1 | (r(CR9346, 1) & EE_DO));
            out(EEM_PROGRAM | EE_CS);
        }
        out(0);
        return v;
    }

    void enable_rx(uint32_t rcr)
    {
        w(RBSTART, static_cast<uint32_t>(RX_RING));
        w(CR, CR_RE | CR_TE, 1);
        w(RCR, rcr);
    }
    /// What a driver does after taking a frame: CAPR to the next header minus 16.
    void consume(uint32_t& off, uint32_t buffer_len)
    {
        uint16_t const len = get_le16(ram(RX_RING + off + 2));
        off = ((off + len + 4 + 3) & ~3u) % buffer_len;
        w(CAPR, static_cast<uint16_t>(off - 16), 2);
    }

    int64_t m_now { 0 };
    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::shared_ptr<FakeBackend> m_backend;
    std::shared_ptr<devices::pci::test::FakeIrq> m_irq;
    std::shared_ptr<Rtl8139> m_dev;
};

TEST_F(Rtl8139Test, IdentityAndResetValues)
{
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_VENDOR_ID, 2), 0x10ecu);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_DEVICE_ID, 2), 0x8139u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_REVISION_ID, 1), 0x20u);
    for (unsigned i = 0; i < 6; ++i)
        EXPECT_EQ(r(IDR0 + i, 1), MAC[i]);
    EXPECT_EQ(r(TCR) & 0x7cc00000, TCR_HWVER);
    EXPECT_EQ(r(CAPR, 2), 0xfff0u);
    EXPECT_EQ(r(CBR, 2), 0u);
    EXPECT_EQ(r(CR, 1), CR_BUFE);
    EXPECT_TRUE(r(BMSR, 2) & BMSR_LINK);
    EXPECT_TRUE(r(BMSR, 2) & BMSR_ANEG_COMPLETE);
    EXPECT_EQ(r(TSAD_SUMMARY, 2), 0x000fu); // all four slots owned by the host
    // The MMIO BAR is the same register file.
    EXPECT_EQ(r(IDR0, 4, Rtl8139::MMIO_BAR), r(IDR0, 4));
}

TEST_F(Rtl8139Test, ReservedRegistersReadZeroAndIgnoreWrites)
{
    // iPXE's realtek driver writes the RTL8169's RxMaxSize (0xda) and takes a read-back as "this is an 8169" (with
    // PHYAR at 0x60); on the 8139C+ nothing is there, while the C+ command register (0xe0) is.
    w(0xda, 0x05f6, 2);
    EXPECT_EQ(r(0xda, 2), 0u);
    w(0xdc, 0xffffffff, 4);
    EXPECT_EQ(r(0xdc, 4), 0u);
    w(CPCR, 0x000b, 2);
    EXPECT_EQ(r(CPCR, 2), 0x000bu);
}

TEST_F(Rtl8139Test, EepromThrough9346CR)
{
    EXPECT_EQ(ee_read(0), EEPROM_ID);
    EXPECT_EQ(ee_read(1), Rtl8139::VENDOR_ID);
    EXPECT_EQ(ee_read(2), Rtl8139::DEVICE_ID);
    for (unsigned i = 0; i < 3; ++i)
        EXPECT_EQ(ee_read(7 + i), MAC[2 * i] | MAC[2 * i + 1] << 8);
    // Auto-load restores IDR from the EEPROM and returns to normal mode.
    w(IDR0, 0x11223344);
    EXPECT_EQ(r(IDR0), 0x11223344u);
    w(CR9346, EEM_AUTOLOAD, 1);
    EXPECT_EQ(r(IDR0), static_cast<uint32_t>(MAC[0] | MAC[1] << 8 | MAC[2] << 16 | MAC[3] << 24));
    EXPECT_EQ(r(CR9346, 1) & EEM_MASK, 0u);
}

TEST_F(Rtl8139Test, ConfigRegistersNeedConfigWriteEnable)
{
    w(CONFIG1, 0x20, 1);
    EXPECT_EQ(r(CONFIG1, 1), 0u);
    EXPECT_EQ(m_dev->stats().bad_accesses, 1u);
    w(CR9346, EEM_CONFIG_WRITE, 1);
    w(CONFIG1, 0x20, 1);
    EXPECT_EQ(r(CONFIG1, 1), 0x20u);
}

TEST_F(Rtl8139Test, TransmitSlots)
{
    w(CR, CR_TE, 1);
    for (unsigned slot = 0; slot < 4; ++slot) {
        auto const f = frame_to(MAC, 100 + slot, static_cast<uint8_t>(slot));
        std::copy(f.begin(), f.end(), ram(TX_DATA + 0x800 * slot));
        w(TSAD0 + 4 * slot, static_cast<uint32_t>(TX_DATA + 0x800 * slot));
        w(TSD0 + 4 * slot, static_cast<uint32_t>(f.size()));
        ASSERT_EQ(m_backend->sent.size(), slot + 1);
        EXPECT_EQ(m_backend->sent.back(), f);
        EXPECT_EQ(r(TSD0 + 4 * slot) & (TSD_OWN | TSD_TOK), TSD_OWN | TSD_TOK);
    }
    EXPECT_EQ(r(TSAD_SUMMARY, 2), 0xf00fu);
    EXPECT_TRUE(r(ISR, 2) & INT_TOK);
    // Short frames are padded to 60 bytes.
    w(TSD0, 20);
    EXPECT_EQ(m_backend->sent.back().size(), 60u);
    EXPECT_EQ(m_dev->stats().tx_frames, 5u);
}

TEST_F(Rtl8139Test, TransmitWaitsForTEAndAbortsBadBuffers)
{
    w(TSAD0, static_cast<uint32_t>(TX_DATA));
    w(TSD0, 64);
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(r(TSD0) & TSD_OWN, 0u);
    w(CR, CR_TE, 1); // enabling the transmitter sends what was handed over
    EXPECT_EQ(m_backend->sent.size(), 1u);
    w(TSAD0 + 4, static_cast<uint32_t>(RAM_SIZE - 10));
    w(TSD0 + 4, 64);
    EXPECT_EQ(r(TSD0 + 4) & (TSD_OWN | TSD_TABT), TSD_OWN | TSD_TABT);
    EXPECT_TRUE(r(ISR, 2) & INT_TER);
    w(TSD0 + 8, TX_SIZE_MAX + 1);
    EXPECT_TRUE(r(TSD0 + 8) & TSD_TABT);
    EXPECT_EQ(m_dev->stats().tx_aborted, 2u);
    EXPECT_EQ(m_backend->sent.size(), 1u);
}

TEST_F(Rtl8139Test, ReceiveRingHeaderAndFcs)
{
    enable_rx(RCR_APM);
    auto const f = frame_to(MAC, 100);
    ASSERT_TRUE(m_dev->receive(f));
    uint16_t const status = get_le16(ram(RX_RING));
    uint16_t const len = get_le16(ram(RX_RING + 2));
    EXPECT_EQ(status, RX_ROK | RX_PAM);
    EXPECT_EQ(len, 104);
    EXPECT_TRUE(std::equal(f.begin(), f.end(), ram(RX_RING + 4)));
    EXPECT_EQ(get_le32(ram(RX_RING + 4 + 100)), hako::net::ethernet_crc32(f));
    EXPECT_EQ(r(CBR, 2), 108u);
    EXPECT_EQ(r(CR, 1) & CR_BUFE, 0u);
    EXPECT_TRUE(r(ISR, 2) & INT_ROK);
    uint32_t off = 0;
    consume(off, 8192);
    EXPECT_EQ(r(CR, 1) & CR_BUFE, CR_BUFE);
    // A short frame is padded to 60 bytes before its FCS.
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 20)));
    EXPECT_EQ(get_le16(ram(RX_RING + 108 + 2)), 64);
}

TEST_F(Rtl8139Test, ReceiveFilters)
{
    hako::net::MacAddress const other { 0x52, 0x54, 0x00, 0x99, 0x99, 0x99 };
    hako::net::MacAddress const bcast { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    hako::net::MacAddress const mcast { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
    enable_rx(RCR_APM);
    EXPECT_TRUE(m_dev->receive(frame_to(other, 60)));
    EXPECT_TRUE(m_dev->receive(frame_to(bcast, 60)));
    EXPECT_TRUE(m_dev->receive(frame_to(mcast, 60)));
    EXPECT_EQ(m_dev->stats().rx_filtered, 3u);
    w(RCR, RCR_APM | RCR_AB);
    EXPECT_TRUE(m_dev->receive(frame_to(bcast, 60)));
    EXPECT_EQ(get_le16(ram(RX_RING)), RX_ROK | RX_BAR);
    // Multicast: AM and the MAR bit the hash (the top 6 bits of the destination's big-endian CRC) selects.
    w(RCR, RCR_APM | RCR_AM);
    EXPECT_TRUE(m_dev->receive(frame_to(mcast, 60)));
    EXPECT_EQ(m_dev->stats().rx_filtered, 4u);
    w(MAR0, 0xffffffff);
    w(MAR0 + 4, 0xffffffff);
    EXPECT_TRUE(m_dev->receive(frame_to(mcast, 60)));
    EXPECT_EQ(m_dev->stats().rx_frames, 2u);
    // Only the hash's bit matters: find it by clearing MAR bytes one at a time.
    unsigned hits = 0;
    for (unsigned bit = 0; bit < 64; ++bit) {
        w(MAR0, bit < 32 ? 1u << bit : 0);
        w(MAR0 + 4, bit >= 32 ? 1u << (bit - 32) : 0);
        uint64_t const before = m_dev->stats().rx_frames;
        m_dev->receive(frame_to(mcast, 60));
        hits += m_dev->stats().rx_frames != before;
        w(CAPR, static_cast<uint16_t>(r(CBR, 2) - 16), 2); // discard everything: the ring never fills
    }
    EXPECT_EQ(hits, 1u);
    // AAP takes everything.
    w(RCR, RCR_AAP);
    EXPECT_TRUE(m_dev->receive(frame_to(other, 60)));
    EXPECT_EQ(m_dev->stats().rx_frames, 4u);
}

TEST_F(Rtl8139Test, ReceiveWrapsWithoutWrapBit)
{
    enable_rx(RCR_APM); // 8 KiB buffer
    uint32_t off = 0;
    // Fill up to near the end, consuming as a driver does.
    while (r(CBR, 2) < 8192 - 1000) {
        ASSERT_TRUE(m_dev->receive(frame_to(MAC, 1000)));
        consume(off, 8192);
    }
    uint32_t const at = r(CBR, 2);
    auto const f = frame_to(MAC, 1400, 0x33);
    ASSERT_TRUE(m_dev->receive(f));
    // The frame continues at the start of the buffer.
    size_t const first = 8192 - at - 4;
    EXPECT_TRUE(std::equal(f.begin(), f.begin() + static_cast<ptrdiff_t>(first), ram(RX_RING + at + 4)));
    EXPECT_TRUE(std::equal(f.begin() + static_cast<ptrdiff_t>(first), f.end(), ram(RX_RING)));
    EXPECT_EQ(r(CBR, 2), ((at + 4 + 1404 + 3) & ~3u) % 8192);
}

TEST_F(Rtl8139Test, ReceiveRunsPastTheEndWithWrapBit)
{
    enable_rx(RCR_APM | RCR_WRAP);
    uint32_t off = 0;
    while (r(CBR, 2) < 8192 - 1000) {
        ASSERT_TRUE(m_dev->receive(frame_to(MAC, 1000)));
        consume(off, 8192);
    }
    uint32_t const at = r(CBR, 2);
    auto const f = frame_to(MAC, 1400, 0x44);
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_TRUE(std::equal(f.begin(), f.end(), ram(RX_RING + at + 4)));
    EXPECT_EQ(r(CBR, 2), ((at + 4 + 1404 + 3) & ~3u) % 8192);
}

TEST_F(Rtl8139Test, ReceiveOverflowRefusesAndRetriesOnCapr)
{
    enable_rx(RCR_APM);
    unsigned accepted = 0;
    while (m_dev->receive(frame_to(MAC, 1000)) && accepted < 100)
        ++accepted;
    EXPECT_EQ(accepted, 8u); // 8 x 1008 bytes fit in 8 KiB, a 9th would catch up with CAPR + 16
    EXPECT_TRUE(r(ISR, 2) & INT_RXOVW);
    EXPECT_EQ(r(MPC), 1u);
    EXPECT_EQ(m_dev->stats().rx_no_buffer, 1u);
    uint32_t off = 0;
    consume(off, 8192);
    EXPECT_EQ(m_backend->retry_requests, 1);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 1000)));
    w(MPC, 0);
    EXPECT_EQ(r(MPC), 0u);
}

TEST_F(Rtl8139Test, ReceiveDisabledAndOutsideRam)
{
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 60)));
    EXPECT_EQ(m_dev->stats().rx_dropped_disabled, 1u);
    enable_rx(RCR_APM);
    w(RBSTART, static_cast<uint32_t>(RAM_SIZE - 16));
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 60)));
    EXPECT_EQ(m_dev->stats().rx_bad_buffer, 1u);
    EXPECT_TRUE(r(ISR, 2) & INT_RER);
    EXPECT_EQ(r(CBR, 2), 0u);
    EXPECT_TRUE(m_dev->receive(std::vector<uint8_t>(10, 0)));
    EXPECT_EQ(m_dev->stats().rx_dropped_bad, 1u);
}

TEST_F(Rtl8139Test, InterruptMaskAndWriteOneToClear)
{
    w(CR, CR_TE, 1);
    w(TSAD0, static_cast<uint32_t>(TX_DATA));
    w(TSD0, 64);
    EXPECT_TRUE(r(ISR, 2) & INT_TOK);
    EXPECT_FALSE(m_irq->level);
    w(IMR, INT_TOK, 2);
    EXPECT_TRUE(m_irq->level);
    w(ISR, INT_ROK, 2); // other bits: no effect
    EXPECT_TRUE(m_irq->level);
    w(ISR, INT_TOK, 2);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(r(ISR, 2), 0u);
    EXPECT_EQ(m_dev->stats().interrupts, 1u);
}

TEST_F(Rtl8139Test, SoftResetKeepsAddressesAndClearsState)
{
    enable_rx(RCR_APM);
    w(MAR0, 0x12345678);
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 100)));
    w(IMR, 0xffff, 2);
    EXPECT_TRUE(m_irq->level);
    w(CR, CR_RST, 1);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(r(CR, 1), CR_BUFE);
    EXPECT_EQ(r(CBR, 2), 0u);
    EXPECT_EQ(r(CAPR, 2), 0xfff0u);
    EXPECT_EQ(r(IMR, 2), 0u);
    EXPECT_EQ(r(MAR0), 0x12345678u);
    EXPECT_EQ(r(IDR0, 1), MAC[0]);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 60)));
    EXPECT_EQ(m_dev->stats().rx_dropped_disabled, 1u);
}

TEST_F(Rtl8139Test, TimerCounterAndPhyReset)
{
    m_now = 1000000; // 1 ms = 33000 PCI clocks
    EXPECT_EQ(r(TCTR), 33000u);
    w(TCTR, 0);
    EXPECT_EQ(r(TCTR), 0u);
    w(BMCR, BMCR_RESET | 0x1000, 2);
    EXPECT_EQ(r(BMCR, 2), BMCR_DEFAULT);
}

TEST_F(Rtl8139Test, BadAccessesAreCounted)
{
    EXPECT_EQ(r(0xfe, 4), 0xffffffffu);
    w(0xff, 0, 2);
    EXPECT_EQ(m_dev->stats().bad_accesses, 2u);
}


// --- C+ mode ---

constexpr uint64_t TX_RING = 0x20000;
constexpr uint64_t RX_DESCS = 0x21000;
constexpr uint64_t RX_BUFS = 0x22000;
constexpr uint64_t TALLY = 0x3f000;

class Rtl8139CplusTest : public Rtl8139Test {
protected:
    void put_desc(uint64_t at, uint32_t opts1, uint32_t opts2, uint64_t addr)
    {
        put_le32(ram(at), opts1);
        put_le32(ram(at + 4), opts2);
        put_le64(ram(at + 8), addr);
    }
    uint32_t opts1(uint64_t at) { return get_le32(ram(at)); }
    uint32_t opts2(uint64_t at) { return get_le32(ram(at + 4)); }

    void start(uint16_t cpcr)
    {
        w(CPCR, cpcr, 2);
        w(TNPDS, static_cast<uint32_t>(TX_RING));
        w(TNPDS + 4, 0);
        w(RDSAR, static_cast<uint32_t>(RX_DESCS));
        w(RDSAR + 4, 0);
        w(CR, CR_RE | CR_TE, 1);
        w(RCR, RCR_APM | RCR_AB | RCR_AM);
    }
    /// RX descriptors 0..n-1 owned by the NIC, each with a buffer of `size` bytes, EOR on the last.
    void give_rx(unsigned n, uint32_t size)
    {
        for (unsigned i = 0; i < n; ++i)
            put_desc(RX_DESCS + 16 * i, DESC_OWN | (i + 1 == n ? DESC_EOR : 0) | size, 0, RX_BUFS + 0x800 * i);
    }
    /// Sends `frame` from one descriptor at index `i` of the TX ring with the given commands.
    void send_one(unsigned i, std::vector<uint8_t> const& frame, uint32_t cmd, uint32_t o2 = 0, bool eor = false)
    {
        std::copy(frame.begin(), frame.end(), ram(TX_DATA));
        put_desc(TX_RING + 16 * i, DESC_OWN | DESC_FS | DESC_LS | (eor ? DESC_EOR : 0) | cmd
                | static_cast<uint32_t>(frame.size()), o2, TX_DATA);
        w(TPPOLL, TPPOLL_NPQ, 1);
    }
};

TEST_F(Rtl8139CplusTest, TransmitGathersFragmentsAndWrapsAtEor)
{
    start(CPCR_TX_ON | CPCR_RX_ON);
    auto const a = frame_to(MAC, 300, 1);
    auto const b = frame_to(MAC, 80, 2);
    std::copy(a.begin(), a.end(), ram(TX_DATA));
    std::copy(b.begin(), b.end(), ram(TX_DATA + 0x1000));
    put_desc(TX_RING, DESC_OWN | DESC_FS | 100, 0, TX_DATA);
    put_desc(TX_RING + 16, DESC_OWN | DESC_LS | 200, 0, TX_DATA + 100);
    put_desc(TX_RING + 32, DESC_OWN | DESC_FS | DESC_LS | DESC_EOR | 80, 0, TX_DATA + 0x1000);
    w(TPPOLL, TPPOLL_NPQ, 1);
    ASSERT_EQ(m_backend->sent.size(), 2u);
    EXPECT_EQ(m_backend->sent[0], a);
    EXPECT_EQ(m_backend->sent[1], b);
    for (unsigned i = 0; i < 3; ++i)
        EXPECT_EQ(opts1(TX_RING + 16 * i) & (DESC_OWN | TXD_ERROR), 0u) << i;
    EXPECT_EQ(opts1(TX_RING + 32) & DESC_EOR, DESC_EOR); // the driver's bits stay
    EXPECT_TRUE(r(ISR, 2) & INT_TOK);
    EXPECT_EQ(r(TPPOLL, 1), 0u);
    // After EOR the NIC is back at descriptor 0.
    send_one(0, b, 0);
    EXPECT_EQ(m_backend->sent.size(), 3u);
    // A poll with nothing to send: TDU. C mode's TSD writes do not transmit in C+ mode.
    w(ISR, 0xffff, 2);
    w(TPPOLL, TPPOLL_NPQ, 1);
    EXPECT_TRUE(r(ISR, 2) & INT_TDU);
    w(TSD0 + 8, 64);
    EXPECT_EQ(m_backend->sent.size(), 3u);
    EXPECT_EQ(m_dev->stats().cp_tx_descriptors, 4u);
}

TEST_F(Rtl8139CplusTest, TransmitNeedsTxOnAndTe)
{
    w(CPCR, CPCR_TX_ON, 2);
    w(TNPDS, static_cast<uint32_t>(TX_RING));
    send_one(0, frame_to(MAC, 64), 0); // CR.TE clear
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(opts1(TX_RING) & DESC_OWN, DESC_OWN);
    w(CR, CR_TE, 1);
    w(TPPOLL, TPPOLL_NPQ, 1);
    EXPECT_EQ(m_backend->sent.size(), 1u);
    // FSWINT raises SWINT.
    w(TPPOLL, TPPOLL_FSWINT, 1);
    EXPECT_TRUE(r(ISR, 2) & INT_SWINT);
}

TEST_F(Rtl8139CplusTest, TransmitChecksumOffload)
{
    start(CPCR_TX_ON);
    auto const tcp = hako::net::test::make_ip_frame(false, hako::net::IP_PROTO_TCP, 333);
    send_one(0, tcp, TXD_IPCS | TXD_TCPCS);
    auto const udp = hako::net::test::make_ip_frame(false, hako::net::IP_PROTO_UDP, 20, true);
    send_one(1, udp, TXD_IPCS | TXD_UDPCS);
    ASSERT_EQ(m_backend->sent.size(), 2u);
    for (auto const& f : m_backend->sent) {
        auto p = hako::net::parse_packet(f);
        ASSERT_TRUE(p);
        EXPECT_TRUE(hako::net::ipv4_checksum_ok(f, *p));
        EXPECT_TRUE(hako::net::l4_checksum_ok(f, *p));
        EXPECT_NE(get_be16(&f[p->l4 + (p->tcp() ? 16 : 6)]), 0u);
    }
    EXPECT_EQ(m_dev->stats().cp_tx_checksums, 4u);
    // Without the commands the frame goes out as it is.
    send_one(2, tcp, 0);
    EXPECT_EQ(m_backend->sent.back(), tcp);
}

TEST_F(Rtl8139CplusTest, TransmitLargeSendAndVlanTag)
{
    start(CPCR_TX_ON);
    auto const big = hako::net::test::make_ip_frame(false, hako::net::IP_PROTO_TCP, 4000);
    uint32_t const mss = 1460;
    // The tag 0x2005 as the descriptor carries it: network byte order in the low 16 bits.
    send_one(0, big, TXD_LGSEN | mss << TXD_MSS_SHIFT, TXD_TAGC | 0x0520);
    ASSERT_EQ(m_backend->sent.size(), 3u);
    size_t total = 0;
    for (size_t i = 0; i < 3; ++i) {
        auto f = m_backend->sent[i];
        EXPECT_EQ(get_be16(&f[12]), 0x8100u);
        EXPECT_EQ(get_be16(&f[14]), 0x2005u);
        auto p = hako::net::parse_packet(f);
        ASSERT_TRUE(p);
        EXPECT_TRUE(hako::net::ipv4_checksum_ok(f, *p));
        EXPECT_TRUE(hako::net::l4_checksum_ok(f, *p));
        EXPECT_LE(p->end - p->l4 - 20, mss);
        total += p->end - p->l4 - 20;
    }
    EXPECT_EQ(total, 4000u);
    EXPECT_EQ(m_dev->stats().cp_tx_tso_packets, 1u);
    EXPECT_EQ(m_dev->stats().cp_tx_tso_segments, 3u);
    // Large send of something that is not TCP: dropped with TER.
    send_one(1, hako::net::test::make_ip_frame(false, hako::net::IP_PROTO_UDP, 100), TXD_LGSEN | 500 << TXD_MSS_SHIFT);
    EXPECT_EQ(m_backend->sent.size(), 3u);
    EXPECT_TRUE(r(ISR, 2) & INT_TER);
}

TEST_F(Rtl8139CplusTest, TransmitErrorsAreHandedBack)
{
    start(CPCR_TX_ON);
    // A buffer outside guest RAM: the frame is dropped, TxError in its LS descriptor.
    put_desc(TX_RING, DESC_OWN | DESC_FS | DESC_LS | 64, 0, RAM_SIZE - 8);
    // A fragment without FS.
    put_desc(TX_RING + 16, DESC_OWN | DESC_LS | 64, 0, TX_DATA);
    // An FS without LS followed by a new FS: the first frame is dropped, the second goes.
    auto const f = frame_to(MAC, 64);
    std::copy(f.begin(), f.end(), ram(TX_DATA));
    put_desc(TX_RING + 32, DESC_OWN | DESC_FS | 64, 0, TX_DATA);
    put_desc(TX_RING + 48, DESC_OWN | DESC_FS | DESC_LS | 64, 0, TX_DATA);
    // A length beyond what one frame may be: dropped.
    put_desc(TX_RING + 64, DESC_OWN | DESC_FS | 0xffff, 0, TX_DATA);
    put_desc(TX_RING + 80, DESC_OWN | 0xffff, 0, TX_DATA);
    put_desc(TX_RING + 96, DESC_OWN | DESC_LS | DESC_EOR | 0xffff, 0, TX_DATA);
    w(TPPOLL, TPPOLL_NPQ, 1);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0], f);
    EXPECT_TRUE(opts1(TX_RING) & TXD_ERROR);
    EXPECT_TRUE(opts1(TX_RING + 16) & TXD_ERROR);
    EXPECT_FALSE(opts1(TX_RING + 48) & TXD_ERROR);
    EXPECT_TRUE(opts1(TX_RING + 96) & TXD_ERROR);
    for (unsigned i = 0; i < 7; ++i)
        EXPECT_EQ(opts1(TX_RING + 16 * i) & DESC_OWN, 0u) << i;
    EXPECT_TRUE(r(ISR, 2) & INT_TER);
    EXPECT_EQ(m_dev->stats().cp_tx_bad, 4u);
    // A ring outside guest RAM.
    w(TNPDS, static_cast<uint32_t>(RAM_SIZE));
    w(TPPOLL, TPPOLL_NPQ, 1);
    EXPECT_EQ(m_dev->stats().cp_tx_bad, 5u);
}

TEST_F(Rtl8139CplusTest, TransmitRingWithoutEorIsBounded)
{
    // Every descriptor of a 64 KiB region owned, none with EOR: one poll takes at most RING_MAX of them.
    start(CPCR_TX_ON);
    w(TNPDS, 0);
    for (unsigned i = 0; i < RING_MAX + 10; ++i)
        put_desc(16 * i, DESC_OWN | DESC_FS | DESC_LS | 60, 0, TX_DATA);
    w(TPPOLL, TPPOLL_NPQ, 1);
    EXPECT_EQ(m_backend->sent.size(), RING_MAX);
}

TEST_F(Rtl8139CplusTest, ReceiveIntoDescriptors)
{
    start(CPCR_TX_ON | CPCR_RX_ON);
    give_rx(2, 1536);
    auto const a = frame_to(MAC, 100, 3);
    ASSERT_TRUE(m_dev->receive(a));
    uint32_t const s = opts1(RX_DESCS);
    EXPECT_EQ(s & (DESC_OWN | DESC_FS | DESC_LS), DESC_FS | DESC_LS);
    EXPECT_EQ(s & RXD_LEN_MASK, 104u); // with the FCS
    EXPECT_TRUE(std::equal(a.begin(), a.end(), ram(RX_BUFS)));
    EXPECT_EQ(get_le32(ram(RX_BUFS + 100)), hako::net::ethernet_crc32(a));
    EXPECT_TRUE(r(ISR, 2) & INT_ROK);
    // Short frames are padded; the second descriptor has EOR, which stays.
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 42)));
    EXPECT_EQ(opts1(RX_DESCS + 16) & (DESC_EOR | RXD_LEN_MASK), DESC_EOR | 64u);
    // Multicast frames carry MAR.
    give_rx(2, 1536);
    w(MAR0, 0xffffffff);
    w(MAR0 + 4, 0xffffffff);
    ASSERT_TRUE(m_dev->receive(frame_to({ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 }, 70)));
    EXPECT_TRUE(opts1(RX_DESCS) & RXD_MAR);
    EXPECT_EQ(m_dev->stats().rx_frames, 3u);
    EXPECT_EQ(m_dev->stats().rx_multicast, 1u);
}

TEST_F(Rtl8139CplusTest, ReceiveSpansSmallBuffers)
{
    start(CPCR_RX_ON);
    give_rx(4, 512);
    auto const f = frame_to(MAC, 1200, 9);
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(opts1(RX_DESCS) & (DESC_OWN | DESC_FS | DESC_LS), DESC_FS);
    EXPECT_EQ(opts1(RX_DESCS + 16) & (DESC_OWN | DESC_FS | DESC_LS), 0u);
    EXPECT_EQ(opts1(RX_DESCS + 32) & (DESC_OWN | DESC_FS | DESC_LS | RXD_LEN_MASK), DESC_LS | 1204u);
    EXPECT_EQ(opts1(RX_DESCS + 48) & DESC_OWN, DESC_OWN); // not needed
    std::vector<uint8_t> got;
    for (unsigned i = 0; i < 3; ++i)
        got.insert(got.end(), ram(RX_BUFS + 0x800 * i), ram(RX_BUFS + 0x800 * i) + 512);
    EXPECT_TRUE(std::equal(f.begin(), f.end(), got.begin()));
}

TEST_F(Rtl8139CplusTest, ReceiveChecksumsAndVlan)
{
    start(CPCR_RX_ON | CPCR_RX_CSUM | CPCR_RX_VLAN);
    give_rx(4, 1536);
    auto tcp = hako::net::test::make_ip_frame(false, hako::net::IP_PROTO_TCP, 50);
    std::copy(MAC.begin(), MAC.end(), tcp.begin());
    auto p = hako::net::parse_packet(tcp);
    hako::net::fill_ipv4_checksum(tcp, *p);
    hako::net::fill_l4_checksum(tcp, *p);
    ASSERT_TRUE(m_dev->receive(tcp));
    EXPECT_EQ(opts1(RX_DESCS) & (3u << RXD_PID_SHIFT | RXD_IP_FAIL | RXD_TCP_FAIL | RXD_UDP_FAIL), 1u << RXD_PID_SHIFT);
    tcp[tcp.size() - 1] ^= 1;
    ASSERT_TRUE(m_dev->receive(tcp));
    EXPECT_EQ(opts1(RX_DESCS + 16) & (RXD_IP_FAIL | RXD_TCP_FAIL), RXD_TCP_FAIL);
    // A tagged UDP frame with a bad IP header checksum: the tag goes to opts2, the status says UDP and IP failure.
    auto udp = hako::net::test::make_ip_frame(false, hako::net::IP_PROTO_UDP, 30, true);
    std::copy(MAC.begin(), MAC.end(), udp.begin());
    p = hako::net::parse_packet(udp);
    hako::net::fill_l4_checksum(udp, *p);
    put_be16(&udp[18 + 10], 0x1111);
    ASSERT_TRUE(m_dev->receive(udp));
    uint32_t const s = opts1(RX_DESCS + 32);
    EXPECT_EQ(s & (3u << RXD_PID_SHIFT | RXD_IP_FAIL | RXD_UDP_FAIL), 2u << RXD_PID_SHIFT | RXD_IP_FAIL);
    EXPECT_EQ(opts2(RX_DESCS + 32), RXD_VLAN_TAGGED | 0x0520u);
    EXPECT_EQ(s & RXD_LEN_MASK, udp.size());            // 4 bytes shorter without the tag, 4 longer with the FCS
    EXPECT_EQ(get_be16(ram(RX_BUFS + 0x1000 + 12)), 0x0800u); // the EtherType follows the addresses
    EXPECT_EQ(m_dev->stats().cp_rx_vlan_stripped, 1u);
}

TEST_F(Rtl8139CplusTest, ReceiveWithoutDescriptorsRefusesAndRetries)
{
    start(CPCR_RX_ON);
    w(IMR, INT_RDU, 2);
    EXPECT_FALSE(m_dev->receive(frame_to(MAC, 100)));
    EXPECT_TRUE(r(ISR, 2) & INT_RDU);
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(m_dev->stats().cp_rx_no_descriptor, 1u);
    give_rx(1, 1536);
    w(ISR, INT_RDU, 2); // the driver acknowledges: the backend is asked to deliver again
    EXPECT_EQ(m_backend->retry_requests, 1);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 100)));
    // A ring outside guest RAM: the frame is dropped with RER.
    w(RDSAR, static_cast<uint32_t>(RAM_SIZE - 8));
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 100)));
    EXPECT_TRUE(r(ISR, 2) & INT_RER);
    // A buffer outside guest RAM: handed back with RxError.
    w(RDSAR, static_cast<uint32_t>(RX_DESCS));
    put_desc(RX_DESCS, DESC_OWN | DESC_EOR | 1536, 0, RAM_SIZE - 16);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 100)));
    EXPECT_EQ(opts1(RX_DESCS) & (DESC_OWN | RXD_ERROR), RXD_ERROR);
}

TEST_F(Rtl8139CplusTest, TallyCountersDump)
{
    start(CPCR_TX_ON | CPCR_RX_ON);
    give_rx(4, 1536);
    send_one(0, frame_to(MAC, 64), 0);
    send_one(1, frame_to(MAC, 64), 0);
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 64)));
    ASSERT_TRUE(m_dev->receive(frame_to({ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 64)));
    w(STATS_ADDR + 4, 0);
    w(STATS_ADDR, static_cast<uint32_t>(TALLY) | STATS_DUMP);
    EXPECT_EQ(r(STATS_ADDR) & STATS_DUMP, 0u);
    EXPECT_EQ(get_le64(ram(TALLY)), 2u);      // transmitted
    EXPECT_EQ(get_le64(ram(TALLY + 8)), 2u);  // received
    EXPECT_EQ(get_le64(ram(TALLY + 40)), 1u); // unicast to us
    EXPECT_EQ(get_le64(ram(TALLY + 48)), 1u); // broadcast
    EXPECT_EQ(m_dev->stats().tally_dumps, 1u);
}

TEST_F(Rtl8139CplusTest, ResetLeavesCplusMode)
{
    start(CPCR_TX_ON | CPCR_RX_ON);
    w(CR, CR_RST, 1);
    EXPECT_EQ(r(CPCR, 2), 0u);
    // Back in C mode: receive goes to the ring buffer again.
    enable_rx(RCR_APM);
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 80)));
    EXPECT_EQ(get_le16(ram(RX_RING + 2)), 84u);
}

} // namespace
