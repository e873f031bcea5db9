// Pcnet (Am79C970A) driven through its BARs over a heap-backed GuestMemory, a fake net::Backend and a fake INTx line:
// the APROM, RAP/RDP/BDP in WIO and DWIO mode, the chip ID, S_RESET, initialisation from 16- and 32-bit init blocks,
// chained transmit descriptors, receive into the ring (chained, wrapping, starved and retried), the address filters
// and the multicast hash, interrupts, and what a hostile ring or init block gets.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/pcnet.h"
#include "net/checksum.h"
#include "../pci/pci_test_util.h"
#include "nic_test_util.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::pcnet;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000;
constexpr uint64_t INIT_BLOCK = 0x1000;
constexpr uint64_t RX_RING = 0x2000;
constexpr uint64_t TX_RING = 0x3000;
constexpr uint64_t RX_BUFS = 0x10000;
constexpr uint64_t TX_BUFS = 0x20000;
constexpr hako::net::MacAddress MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

using devices::net::test::FakeBackend;

using devices::net::test::frame_to;

class PcnetTest : public ::testing::Test {
protected:
    PcnetTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_backend(std::make_shared<FakeBackend>())
        , m_irq(std::make_shared<devices::pci::test::FakeIrq>())
    {
        m_dev = Pcnet::create(m_mem, m_backend, MAC).value();
        m_dev->set_intx_line(m_irq);
    }

    void w(uint32_t off, uint32_t v, size_t size, int bar = Pcnet::IO_BAR)
    {
        std::array<uint8_t, 4> b {};
        store_le(b, v);
        m_dev->bar_write(bar, off, std::span<uint8_t const>(b).first(size));
    }
    uint32_t r(uint32_t off, size_t size, int bar = Pcnet::IO_BAR)
    {
        std::array<uint8_t, 4> b {};
        m_dev->bar_read(bar, off, std::span<uint8_t>(b).first(size));
        return static_cast<uint32_t>(load_le(std::span<uint8_t const>(b).first(size)));
    }
    // WIO register access (the mode after reset).
    void csr_w(unsigned i, uint16_t v)
    {
        w(WIO_RAP, i, 2);
        w(WIO_RDP, v, 2);
    }
    uint16_t csr_r(unsigned i)
    {
        w(WIO_RAP, i, 2);
        return static_cast<uint16_t>(r(WIO_RDP, 2));
    }
    void bcr_w(unsigned i, uint16_t v)
    {
        w(WIO_RAP, i, 2);
        w(WIO_BDP, v, 2);
    }
    uint16_t bcr_r(unsigned i)
    {
        w(WIO_RAP, i, 2);
        return static_cast<uint16_t>(r(WIO_BDP, 2));
    }
    uint8_t* ram(uint64_t addr) { return m_buf.data() + addr; }

    // A 32-bit (SWSTYLE 2) init block: rings of 2^rlog / 2^tlog descriptors, LADRF as given.
    void init32(unsigned rlog, unsigned tlog, uint64_t ladrf = 0, uint16_t mode = 0)
    {
        uint8_t* p = ram(INIT_BLOCK);
        put_le16(p, mode);
        p[2] = static_cast<uint8_t>(rlog << 4);
        p[3] = static_cast<uint8_t>(tlog << 4);
        std::copy(MAC.begin(), MAC.end(), p + 4);
        put_le64(p + 12, ladrf);
        put_le32(p + 20, RX_RING);
        put_le32(p + 24, TX_RING);
        bcr_w(BCR_SWS, 2);
        csr_w(1, static_cast<uint16_t>(INIT_BLOCK));
        csr_w(2, static_cast<uint16_t>(INIT_BLOCK >> 16));
        csr_w(4, 0x0915); // APAD_XMT, the counter and TXSTRT and JAB interrupts masked (Linux's value)
        csr_w(0, CSR0_INIT);
    }
    void start() { csr_w(0, CSR0_STRT); }
    // SWSTYLE 2 descriptors.
    void rx_desc32(unsigned i, uint64_t buf, uint16_t len, bool own = true)
    {
        uint8_t* d = ram(RX_RING + 16 * i);
        put_le32(d, static_cast<uint32_t>(buf));
        put_le16(d + 4, static_cast<uint16_t>(-len | 0xf000));
        put_le16(d + 6, own ? DESC_OWN : 0);
        put_le32(d + 8, 0);
    }
    void tx_desc32(unsigned i, uint64_t buf, uint16_t len, uint16_t flags)
    {
        uint8_t* d = ram(TX_RING + 16 * i);
        put_le32(d, static_cast<uint32_t>(buf));
        put_le16(d + 4, static_cast<uint16_t>(-len | 0xf000));
        put_le32(d + 8, 0xdeadbeef);
        put_le16(d + 6, flags);
    }
    uint16_t rx_status32(unsigned i) { return get_le16(ram(RX_RING + 16 * i + 6)); }
    uint16_t tx_status32(unsigned i) { return get_le16(ram(TX_RING + 16 * i + 6)); }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::shared_ptr<FakeBackend> m_backend;
    std::shared_ptr<devices::pci::test::FakeIrq> m_irq;
    std::shared_ptr<Pcnet> m_dev;
};

TEST_F(PcnetTest, IdentityAndBars)
{
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_VENDOR_ID, 2), 0x1022u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_DEVICE_ID, 2), 0x2000u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_CLASS_PROG, 1), 0u);
    EXPECT_EQ(m_dev->config_load(0x0a, 2), 0x0200u); // Ethernet controller
    EXPECT_EQ(m_dev->bar_kind(0), devices::pci::BarKind::Io);
    EXPECT_EQ(m_dev->bar_size(0), 32u);
    EXPECT_EQ(m_dev->bar_kind(1), devices::pci::BarKind::Mem32);
    EXPECT_EQ(m_dev->bar_size(1), 32u);
    EXPECT_EQ(m_dev->bar_kind(devices::pci::ROM_BAR), devices::pci::BarKind::Unused);
    EXPECT_EQ(m_dev->interrupt_pin(), 1);
}

TEST_F(PcnetTest, AddressPromHoldsTheMacChecksumAndSignature)
{
    for (unsigned i = 0; i < 6; ++i)
        EXPECT_EQ(r(i, 1), MAC[i]) << i;
    EXPECT_EQ(r(0, 4), 0x12005452u);
    EXPECT_EQ(r(14, 2), 0x5757u);
    unsigned sum = 0;
    for (unsigned i = 0; i < 12; ++i)
        sum += r(i, 1);
    EXPECT_EQ(r(12, 2), (sum + 2 * 0x57) & 0xffff);
    EXPECT_EQ(r(0, 1, Pcnet::MMIO_BAR), MAC[0]);
    // Read-only until BCR2.APROMWE.
    w(0, 0xaa, 1);
    EXPECT_EQ(r(0, 1), MAC[0]);
    EXPECT_EQ(m_dev->stats().bad_accesses, 1u);
    bcr_w(BCR_MC, static_cast<uint16_t>(bcr_r(BCR_MC) | BCR2_APROMWE));
    w(0, 0xaa, 1);
    EXPECT_EQ(r(0, 1), 0xaau);
}

TEST_F(PcnetTest, WordIoAfterResetWithCsrsBcrsAndChipId)
{
    r(WIO_RESET, 2);
    EXPECT_EQ(csr_r(0), CSR0_STOP); // what Linux and iPXE probe for
    w(WIO_RAP, 88, 2);
    EXPECT_EQ(r(WIO_RAP, 2), 88u);
    uint32_t const id = csr_r(CSR_CHIPID_LO) | static_cast<uint32_t>(csr_r(CSR_CHIPID_HI)) << 16;
    EXPECT_EQ(id & 0xfff, 0x003u);
    EXPECT_EQ((id >> 12) & 0xffff, 0x2621u); // PCnet-PCI II 79C970A
    EXPECT_EQ(csr_r(4), CSR4_RESET);
    // CSR12-14 hold the MAC (loaded from the EEPROM at H_RESET), as Linux compares with the APROM.
    EXPECT_EQ(csr_r(CSR_PADR), 0x5452u);
    EXPECT_EQ(csr_r(CSR_PADR + 2), 0x5634u);
    EXPECT_EQ(bcr_r(BCR_MC), BCR2_ASEL);
    EXPECT_EQ(bcr_r(BCR_BSBC) & BCR18_DWIO, 0u);
    EXPECT_EQ(bcr_r(BCR_LNKST), 0x80c0u); // link status enabled and up
    EXPECT_EQ(bcr_r(BCR_SWS), SWS_CSRPCNET);
    bcr_w(BCR_SWS, 2);
    EXPECT_EQ(bcr_r(BCR_SWS), 2u | SWS_SSIZE32 | SWS_CSRPCNET);
    EXPECT_EQ(csr_r(CSR_SWS), 2u | SWS_SSIZE32 | SWS_CSRPCNET); // CSR58 is BCR20
    csr_w(CSR_SWS, 3);
    EXPECT_EQ(bcr_r(BCR_SWS), 3u | SWS_SSIZE32 | SWS_CSRPCNET);
    bcr_w(BCR_SWS, 7); // reserved: refused
    EXPECT_EQ(bcr_r(BCR_SWS) & 0xff, 3u);
    // Dword accesses in WIO mode (other than a write to RDP) are ignored.
    EXPECT_EQ(r(WIO_RDP, 4), 0xffffffffu);
    // S_RESET: CSR0 back to STOP, SWSTYLE 0.
    csr_w(3, 0x5f00);
    r(WIO_RESET, 2);
    EXPECT_EQ(csr_r(3), 0u);
    EXPECT_EQ(bcr_r(BCR_SWS) & 0xff, 0u);
}

TEST_F(PcnetTest, DwordWriteToRdpEntersDwioMode)
{
    w(DWIO_RAP, 0, 4); // in WIO mode: offset 0x14 is RESET, a dword there is ignored
    w(DWIO_RDP, 0, 4); // enters DWIO and writes CSR0 (RAP is 0): nothing set
    EXPECT_EQ(bcr_r(BCR_BSBC), 0xffffu) << "word accesses are ignored in DWIO mode";
    w(DWIO_RAP, BCR_BSBC, 4);
    EXPECT_EQ(r(DWIO_BDP, 4) & BCR18_DWIO, BCR18_DWIO);
    w(DWIO_RAP, 0xabcd0058, 4); // bits 31:16 ignored: RAP 88
    EXPECT_EQ(r(DWIO_RAP, 4), 88u);
    EXPECT_EQ(r(DWIO_RDP, 4), CHIP_ID_LO);
    EXPECT_EQ(r(WIO_RDP, 2), 0xffffu);
    EXPECT_GE(m_dev->stats().bad_accesses, 2u);
    // S_RESET (a dword read of RESET at 0x18) keeps DWIO; H_RESET leaves it.
    EXPECT_EQ(r(DWIO_RESET, 4), 0u);
    w(DWIO_RAP, 0, 4);
    EXPECT_EQ(r(DWIO_RDP, 4), CSR0_STOP);
    m_dev->reset();
    w(WIO_RAP, 0, 2);
    EXPECT_EQ(r(WIO_RDP, 2), CSR0_STOP);
}

TEST_F(PcnetTest, Init32LoadsTheBlockAndSetsIdon)
{
    init32(3, 2, 0x8000000000000001ull, MODE_DRCVBC);
    uint16_t const csr0 = csr_r(0);
    EXPECT_TRUE(csr0 & CSR0_IDON);
    EXPECT_TRUE(csr0 & CSR0_INTR); // IDON is unmasked
    EXPECT_FALSE(csr0 & CSR0_STOP);
    EXPECT_FALSE(m_irq->level) << "IENA is clear";
    EXPECT_EQ(csr_r(CSR_MODE), MODE_DRCVBC);
    EXPECT_EQ(csr_r(CSR_RCVRL), static_cast<uint16_t>(-8));
    EXPECT_EQ(csr_r(CSR_XMTRL), static_cast<uint16_t>(-4));
    EXPECT_EQ(csr_r(CSR_RXTXRL), 0x2300u);
    EXPECT_EQ(csr_r(CSR_BADR_LO), RX_RING);
    EXPECT_EQ(csr_r(CSR_BADX_LO), TX_RING);
    EXPECT_EQ(csr_r(CSR_LADRF), 1u);
    EXPECT_EQ(csr_r(CSR_LADRF + 3), 0x8000u);
    EXPECT_EQ(csr_r(CSR_PADR + 1), 0x1200u);
    // IDON is write 1 to clear; then STRT turns both units on.
    csr_w(0, CSR0_IDON);
    EXPECT_FALSE(csr_r(0) & (CSR0_IDON | CSR0_INTR));
    start();
    uint16_t const on = csr_r(0);
    EXPECT_TRUE(on & CSR0_TXON);
    EXPECT_TRUE(on & CSR0_RXON);
    EXPECT_TRUE(on & CSR0_STRT);
    // Ring registers are locked while running.
    csr_w(CSR_RCVRL, 0);
    EXPECT_EQ(csr_r(CSR_RCVRL), static_cast<uint16_t>(-8));
    // STOP clears everything else.
    csr_w(0, CSR0_STOP | CSR0_IENA);
    EXPECT_EQ(csr_r(0), CSR0_STOP);
}

TEST_F(PcnetTest, Init16UsesTheLanceLayoutAndCsr2UpperBits)
{
    // SWSTYLE 0: 24-byte block, 24-bit ring addresses, RLEN/TLEN in bits 15:13.
    uint8_t* p = ram(INIT_BLOCK);
    put_le16(p, MODE_DTX);
    std::copy(MAC.begin(), MAC.end(), p + 2);
    put_le64(p + 8, 0x0102030405060708ull);
    put_le16(p + 16, static_cast<uint16_t>(RX_RING));
    put_le16(p + 18, static_cast<uint16_t>(2u << 13 | (RX_RING >> 16)));
    put_le16(p + 20, static_cast<uint16_t>(TX_RING));
    put_le16(p + 22, static_cast<uint16_t>(7u << 13 | (TX_RING >> 16)));
    csr_w(1, static_cast<uint16_t>(INIT_BLOCK));
    csr_w(2, 0);
    csr_w(0, CSR0_INIT | CSR0_STRT);
    EXPECT_TRUE(csr_r(0) & CSR0_IDON);
    EXPECT_EQ(csr_r(CSR_RCVRL), static_cast<uint16_t>(-4));
    EXPECT_EQ(csr_r(CSR_XMTRL), static_cast<uint16_t>(-128));
    EXPECT_EQ(csr_r(CSR_LADRF), 0x0708u);
    EXPECT_EQ(csr_r(CSR_BADR_LO), RX_RING);
    uint16_t const csr0 = csr_r(0);
    EXPECT_TRUE(csr0 & CSR0_RXON);
    EXPECT_FALSE(csr0 & CSR0_TXON) << "DTX in the mode";

    // A 16-bit receive descriptor: LADR, HADR | status, BCNT, MCNT.
    uint8_t* d = ram(RX_RING);
    put_le16(d, static_cast<uint16_t>(RX_BUFS));
    d[2] = static_cast<uint8_t>(RX_BUFS >> 16);
    d[3] = 0x80;
    put_le16(d + 4, static_cast<uint16_t>(-1536));
    auto const f = frame_to(MAC, 100);
    EXPECT_TRUE(m_dev->receive(f));
    EXPECT_EQ(d[3], 0x03u); // STP | ENP, OWN clear
    EXPECT_EQ(d[2], RX_BUFS >> 16) << "HADR kept";
    EXPECT_EQ(get_le16(d + 6), 104u); // with the FCS
    EXPECT_EQ(std::vector<uint8_t>(ram(RX_BUFS), ram(RX_BUFS) + 100), f);

    // CSR2[15:8] supplies address bits 31:24 in 16-bit mode: here beyond RAM, so the next init is a bus error.
    csr_w(0, CSR0_STOP);
    csr_w(2, 0x0100);
    csr_w(0, CSR0_INIT);
    EXPECT_FALSE(csr_r(0) & CSR0_IDON);
    EXPECT_TRUE(csr_r(0) & (CSR0_MERR | CSR0_ERR));
    EXPECT_EQ(m_dev->stats().bad_init_blocks, 1u);
}

TEST_F(PcnetTest, TransmitsAChainedFrameAndHandsBackTheDescriptors)
{
    init32(2, 2);
    start();
    auto const f = frame_to({ 0x02, 0, 0, 0, 0, 1 }, 300);
    std::copy(f.begin(), f.begin() + 100, ram(TX_BUFS));
    std::copy(f.begin() + 100, f.begin() + 250, ram(TX_BUFS + 0x1000));
    std::copy(f.begin() + 250, f.end(), ram(TX_BUFS + 0x2000));
    tx_desc32(1, TX_BUFS + 0x1000, 150, DESC_OWN);
    tx_desc32(2, TX_BUFS + 0x2000, 50, DESC_OWN | DESC_ENP);
    tx_desc32(0, TX_BUFS, 100, DESC_OWN | DESC_STP); // OWN of STP last, as drivers do
    EXPECT_TRUE(m_backend->sent.empty()) << "nothing before TDMD or a poll";
    csr_w(0, CSR0_TDMD);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0], f);
    EXPECT_EQ(tx_status32(0), DESC_STP);
    EXPECT_EQ(tx_status32(1), 0u);
    EXPECT_EQ(tx_status32(2), DESC_ENP);
    EXPECT_EQ(get_le32(ram(TX_RING + 8)), 0u); // TMD2: no errors
    EXPECT_TRUE(csr_r(0) & CSR0_TINT);
    auto const s = m_dev->stats();
    EXPECT_EQ(s.tx_frames, 1u);
    EXPECT_EQ(s.tx_bytes, 300u);

    // A short frame is padded (APAD_XMT); the ring wraps from descriptor 3 to 0.
    tx_desc32(3, TX_BUFS, 20, DESC_OWN | DESC_STP | DESC_ENP);
    tx_desc32(0, TX_BUFS, 30, DESC_OWN | DESC_STP | DESC_ENP);
    m_dev->poll();
    ASSERT_EQ(m_backend->sent.size(), 3u);
    EXPECT_EQ(m_backend->sent[1].size(), 60u);
    EXPECT_EQ(m_backend->sent[2].size(), 60u);
    EXPECT_EQ(csr_r(CSR_XMTRC), 1u);
}

TEST_F(PcnetTest, TransmitErrors)
{
    init32(2, 2);
    start();
    std::fill(ram(TX_BUFS), ram(TX_BUFS) + 0x800, uint8_t { 0x11 });
    // A chain whose next descriptor is not owned: BUFF | UFLO, ERR, the transmitter stops.
    tx_desc32(1, TX_BUFS, 10, 0);
    tx_desc32(0, TX_BUFS, 100, DESC_OWN | DESC_STP);
    csr_w(0, CSR0_TDMD);
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(tx_status32(0), DESC_STP | DESC_ERR);
    EXPECT_EQ(get_le32(ram(TX_RING + 8)), static_cast<uint32_t>(TMD_BUFF | TMD_UFLO) << 16);
    EXPECT_FALSE(csr_r(0) & CSR0_TXON);
    EXPECT_EQ(m_dev->stats().tx_errors, 1u);

    // A descriptor outside guest RAM: MERR, TXON off.
    csr_w(0, CSR0_STOP);
    init32(2, 2);
    start();
    tx_desc32(0, RAM_SIZE - 10, 100, DESC_OWN | DESC_STP | DESC_ENP);
    csr_w(0, CSR0_TDMD);
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_TRUE(csr_r(0) & CSR0_MERR);
    EXPECT_FALSE(csr_r(0) & CSR0_TXON);
    EXPECT_EQ(m_dev->stats().dma_errors, 1u);

    // Owned without STP: handed back with ERR, the next frame still goes.
    csr_w(0, CSR0_STOP);
    init32(2, 2);
    start();
    tx_desc32(1, TX_BUFS, 64, DESC_OWN | DESC_STP | DESC_ENP);
    tx_desc32(0, TX_BUFS, 64, DESC_OWN | DESC_ENP);
    csr_w(0, CSR0_TDMD);
    EXPECT_EQ(tx_status32(0), DESC_ENP | DESC_ERR);
    EXPECT_EQ(m_backend->sent.size(), 1u);

    // A ring of owned descriptors without ENP is walked once, not forever.
    csr_w(0, CSR0_STOP);
    init32(2, 2);
    start();
    for (unsigned i = 0; i < 4; ++i)
        tx_desc32(i, TX_BUFS, 64, static_cast<uint16_t>(DESC_OWN | (i == 0 ? DESC_STP : 0)));
    csr_w(0, CSR0_TDMD);
    EXPECT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(tx_status32(3), DESC_ERR);
}

TEST_F(PcnetTest, ReceivesIntoTheRingWithChainingAndWrap)
{
    init32(1, 0); // two receive descriptors
    start();
    rx_desc32(0, RX_BUFS, 64);
    rx_desc32(1, RX_BUFS + 0x1000, 1536);
    auto const f = frame_to(MAC, 200);
    EXPECT_TRUE(m_dev->receive(f));
    // 204 bytes with the FCS: 64 in the first buffer, 140 in the second.
    EXPECT_EQ(rx_status32(0), DESC_STP);
    EXPECT_EQ(rx_status32(1), DESC_ENP | RMD_PAM);
    EXPECT_EQ(get_le32(ram(RX_RING + 16 + 8)), 204u);
    std::vector<uint8_t> got(204);
    std::copy(ram(RX_BUFS), ram(RX_BUFS) + 64, got.begin());
    std::copy(ram(RX_BUFS + 0x1000), ram(RX_BUFS + 0x1000) + 140, got.begin() + 64);
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + 200), f);
    EXPECT_EQ(get_le32(got.data() + 200), hako::net::ethernet_crc32(f));
    EXPECT_TRUE(csr_r(0) & CSR0_RINT);
    EXPECT_EQ(csr_r(CSR_RCVRC), 0u) << "wrapped to descriptor 0";

    // Nothing owned: refused, the backend keeps it; a register access after the driver gives a descriptor back
    // asks the backend to retry.
    EXPECT_FALSE(m_dev->receive(f));
    EXPECT_EQ(m_dev->stats().rx_no_buffer, 1u);
    EXPECT_EQ(m_backend->retry_requests, 0);
    rx_desc32(0, RX_BUFS, 1536);
    csr_r(0);
    EXPECT_EQ(m_backend->retry_requests, 1);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 20))); // a runt: padded to 60 + FCS
    EXPECT_EQ(rx_status32(0), DESC_STP | DESC_ENP | RMD_PAM);
    EXPECT_EQ(get_le32(ram(RX_RING + 8)), 64u);

    // The ring runs out in the middle of a frame: ERR | BUFF on the last descriptor written, counted.
    rx_desc32(1, RX_BUFS, 100);
    EXPECT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_status32(1), DESC_STP | DESC_ERR | RMD_BUFF);
    EXPECT_EQ(m_dev->stats().rx_overflow, 1u);
    EXPECT_EQ(csr_r(CSR_MISSED), 1u);
    EXPECT_EQ(m_dev->stats().rx_frames, 2u);
}

TEST_F(PcnetTest, SwappedDescriptorStyle3)
{
    init32(0, 0);
    bcr_w(BCR_SWS, 3);
    start();
    // RMD0 and RMD2 swapped: MCNT first, the buffer address in the third dword.
    uint8_t* d = ram(RX_RING);
    put_le32(d + 8, static_cast<uint32_t>(RX_BUFS));
    put_le16(d + 4, static_cast<uint16_t>(-1536));
    put_le16(d + 6, DESC_OWN);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 100)));
    EXPECT_EQ(get_le32(d), 104u);
    EXPECT_EQ(get_le16(d + 6), DESC_STP | DESC_ENP | RMD_PAM);
    EXPECT_EQ(ram(RX_BUFS)[0], MAC[0]);
}

TEST_F(PcnetTest, AddressFiltersAndTheMulticastHash)
{
    hako::net::MacAddress const group { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    // The hash: the top 6 bits of the little-endian CRC-32 of the address (without the final inversion).
    uint32_t const crc = ~hako::net::ethernet_crc32(group);
    unsigned const bit = crc >> 26;
    init32(2, 0, uint64_t { 1 } << bit);
    start();
    for (unsigned i = 0; i < 4; ++i)
        rx_desc32(i, RX_BUFS + 0x800 * i, 1536);
    EXPECT_TRUE(m_dev->receive(frame_to(group, 60)));
    EXPECT_EQ(rx_status32(0), DESC_STP | DESC_ENP | RMD_LAFM);
    EXPECT_TRUE(m_dev->receive(frame_to({ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x02 }, 60))); // another group
    EXPECT_TRUE(m_dev->receive(frame_to({ 0x02, 0, 0, 0, 0, 9 }, 60)));               // someone else
    EXPECT_EQ(m_dev->stats().rx_filtered, 2u);
    EXPECT_TRUE(m_dev->receive(frame_to({ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 60)));
    EXPECT_EQ(rx_status32(1), DESC_STP | DESC_ENP | RMD_BAM);
    // DRCVBC refuses broadcasts, PROM takes everything.
    csr_w(5, CSR5_SPND);
    csr_w(CSR_MODE, MODE_DRCVBC);
    csr_w(5, 0);
    EXPECT_TRUE(m_dev->receive(frame_to({ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 60)));
    EXPECT_EQ(m_dev->stats().rx_filtered, 3u);
    csr_w(5, CSR5_SPND);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 60))) << "suspended: dropped";
    EXPECT_EQ(m_dev->stats().rx_dropped_stopped, 1u);
    csr_w(CSR_MODE, MODE_PROM);
    csr_w(5, 0);
    EXPECT_TRUE(m_dev->receive(frame_to({ 0x02, 0, 0, 0, 0, 9 }, 60)));
    EXPECT_EQ(rx_status32(2), DESC_STP | DESC_ENP);
    EXPECT_EQ(m_dev->stats().rx_frames, 3u);
}

TEST_F(PcnetTest, InterruptsFollowCausesMasksAndIena)
{
    init32(1, 1);
    EXPECT_FALSE(m_irq->level);
    csr_w(0, CSR0_IENA);
    EXPECT_TRUE(m_irq->level) << "IDON pending";
    csr_w(3, CSR0_IDON); // IDONM
    EXPECT_FALSE(m_irq->level);
    EXPECT_FALSE(csr_r(0) & CSR0_INTR);
    csr_w(3, 0);
    EXPECT_TRUE(m_irq->level);
    csr_w(0, CSR0_IDON | CSR0_IENA | CSR0_STRT);
    EXPECT_FALSE(m_irq->level);

    rx_desc32(0, RX_BUFS, 1536);
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 60)));
    EXPECT_TRUE(m_irq->level);
    uint16_t const csr0 = csr_r(0);
    EXPECT_EQ(csr0 & (CSR0_RINT | CSR0_INTR | CSR0_IENA), CSR0_RINT | CSR0_INTR | CSR0_IENA);
    // Linux acknowledges by writing back what it read without INIT/STRT/STOP/TDMD/IENA: interrupts off until it
    // sets IENA again.
    csr_w(0, static_cast<uint16_t>(csr0 & ~0x004f));
    EXPECT_FALSE(m_irq->level);
    EXPECT_FALSE(csr_r(0) & CSR0_RINT);
    // CSR4 UINTCMD raises UINT, write 1 to clear.
    csr_w(0, CSR0_IENA);
    csr_w(4, static_cast<uint16_t>(csr_r(4) | CSR4_UINTCMD));
    EXPECT_TRUE(csr_r(4) & CSR4_UINT);
    EXPECT_TRUE(m_irq->level);
    csr_w(4, static_cast<uint16_t>(csr_r(4) | CSR4_UINT));
    EXPECT_FALSE(m_irq->level);
    EXPECT_GE(m_dev->stats().interrupts, 3u);
    // With LTINTEN, TINT only for descriptors that ask for it.
    csr_w(5, CSR5_LTINTEN);
    tx_desc32(0, TX_BUFS, 60, DESC_OWN | DESC_STP | DESC_ENP);
    csr_w(0, CSR0_TDMD | CSR0_IENA);
    EXPECT_EQ(m_backend->sent.size(), 1u);
    EXPECT_FALSE(csr_r(0) & CSR0_TINT);
    tx_desc32(1, TX_BUFS, 60, DESC_OWN | DESC_STP | DESC_ENP | TMD_LTINT);
    csr_w(0, CSR0_TDMD | CSR0_IENA);
    EXPECT_TRUE(csr_r(0) & CSR0_TINT);
    EXPECT_TRUE(m_irq->level);
}

TEST_F(PcnetTest, HostileAccessesAreRefusedAndCounted)
{
    std::array<uint8_t, 8> big {};
    m_dev->bar_read(Pcnet::IO_BAR, 0, big);
    EXPECT_EQ(big[0], 0xff);
    m_dev->bar_write(Pcnet::IO_BAR, 0x1e, std::span<uint8_t const>(big).first(4));
    m_dev->bar_write(3, 0, std::span<uint8_t const>(big).first(2));
    w(WIO_RDP, 0, 1); // a byte access to the window
    w(WIO_RAP, 200, 2);
    csr_w(200, 1);
    EXPECT_EQ(csr_r(200), 0u);
    EXPECT_EQ(m_dev->stats().bad_accesses, 5u);
    // A ring length of 65536 (CSR78 = 0) with owned descriptors without ENP: the walk ends.
    init32(0, 0);
    csr_w(0, CSR0_STOP);
    csr_w(CSR_XMTRL, 0);
    start();
    for (unsigned i = 0; i < 0x100; ++i)
        tx_desc32(i, TX_BUFS, 8, static_cast<uint16_t>(DESC_OWN | (i == 0 ? DESC_STP : 0)));
    csr_w(0, CSR0_TDMD);
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_FALSE(csr_r(0) & CSR0_TXON);
}

} // namespace
