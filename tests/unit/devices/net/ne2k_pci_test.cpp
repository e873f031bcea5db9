// Ne2kPci (RTL8029AS, NE2000 PCI) driven through its I/O BAR with a fake net::Backend and a fake INTx line: the
// register pages and reset values, the reset port, the PROM through the remote DMA in byte, word and dword accesses,
// remote writes and reads of the card's RAM with the PSTOP wrap, transmit from TPSR, receive into the ring (header,
// FCS, wrap at PSTOP), overflow at BNRY and the retry, ISR/IMR and INTx, the address filters, bad rings.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/ne2k_pci.h"
#include "net/checksum.h"
#include "../pci/pci_test_util.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::ne2k;

namespace {

constexpr hako::net::MacAddress MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
constexpr uint8_t RX_START = 0x46;
constexpr uint8_t RX_STOP = 0x80;

class FakeBackend final : public hako::net::Backend {
public:
    void send(std::span<uint8_t const> frame) override { sent.emplace_back(frame.begin(), frame.end()); }
    void rx_buffers_available() override { ++retry_requests; }
    std::vector<std::vector<uint8_t>> sent;
    int retry_requests { 0 };
};

std::vector<uint8_t> frame_to(hako::net::MacAddress dst, size_t len, uint8_t fill = 0x5a)
{
    std::vector<uint8_t> f(len, fill);
    std::copy(dst.begin(), dst.end(), f.begin());
    f[6] = 0x02;
    f[12] = 0x08;
    f[13] = 0x00;
    for (size_t i = 14; i < len; ++i)
        f[i] = static_cast<uint8_t>(i * 7 + fill);
    return f;
}

class Ne2kPciTest : public ::testing::Test {
protected:
    Ne2kPciTest()
        : m_backend(std::make_shared<FakeBackend>())
        , m_irq(std::make_shared<devices::pci::test::FakeIrq>())
    {
        m_dev = Ne2kPci::create(m_backend, MAC).value();
        m_dev->set_intx_line(m_irq);
    }

    void w(uint32_t off, uint8_t v) { m_dev->bar_write(Ne2kPci::IO_BAR, off, std::span<uint8_t const>(&v, 1)); }
    uint8_t r(uint32_t off)
    {
        uint8_t v = 0;
        m_dev->bar_read(Ne2kPci::IO_BAR, off, std::span<uint8_t>(&v, 1));
        return v;
    }
    /// Selects a register page, keeping the NIC started or stopped and the remote DMA idle.
    void page(unsigned p) { w(CR, static_cast<uint8_t>((r(CR) & (CR_STA | CR_STP)) | CR_RD_ABORT | p << 6)); }
    uint32_t data_in(size_t size)
    {
        std::array<uint8_t, 4> b {};
        m_dev->bar_read(Ne2kPci::IO_BAR, DATA, std::span<uint8_t>(b).first(size));
        return static_cast<uint32_t>(load_le(std::span<uint8_t const>(b).first(size)));
    }
    void data_out(uint32_t v, size_t size)
    {
        std::array<uint8_t, 4> b {};
        store_le(b, v);
        m_dev->bar_write(Ne2kPci::IO_BAR, DATA, std::span<uint8_t const>(b).first(size));
    }
    /// Page 0: RSAR, RBCR, then the remote DMA command.
    void remote(uint16_t addr, uint16_t count, uint8_t rd)
    {
        page(0);
        w(RSAR0, static_cast<uint8_t>(addr));
        w(RSAR1, static_cast<uint8_t>(addr >> 8));
        w(RBCR0, static_cast<uint8_t>(count));
        w(RBCR1, static_cast<uint8_t>(count >> 8));
        w(CR, static_cast<uint8_t>((r(CR) & (CR_STA | CR_STP)) | rd));
    }
    void card_write(uint16_t addr, std::span<uint8_t const> bytes)
    {
        w(DCR, 0x48); // byte mode
        remote(addr, static_cast<uint16_t>(bytes.size()), CR_RD_WRITE);
        for (uint8_t b : bytes)
            data_out(b, 1);
    }
    std::vector<uint8_t> card_read(uint16_t addr, size_t len)
    {
        w(DCR, 0x48);
        remote(addr, static_cast<uint16_t>(len), CR_RD_READ);
        std::vector<uint8_t> out(len);
        for (auto& b : out)
            b = static_cast<uint8_t>(data_in(1));
        return out;
    }
    /// What Linux's NS8390_init does: the ring 0x46-0x7F, BNRY one page behind CURR, started, broadcast accepted.
    void start_ring(uint8_t rcr = RCR_AB)
    {
        w(CR, CR_STP | CR_RD_ABORT);
        w(DCR, 0x49);
        w(PSTART, RX_START);
        w(PSTOP, RX_STOP);
        w(BNRY, RX_STOP - 1);
        w(TPSR, 0x40);
        page(1);
        w(CURR, RX_START);
        w(CR, CR_STA | CR_RD_ABORT);
        w(ISR, 0xff);
        w(TCR, 0);
        w(RCR, rcr);
    }
    uint8_t curr()
    {
        page(1);
        uint8_t const c = r(CURR);
        page(0);
        return c;
    }

    std::shared_ptr<FakeBackend> m_backend;
    std::shared_ptr<devices::pci::test::FakeIrq> m_irq;
    std::shared_ptr<Ne2kPci> m_dev;
};

TEST_F(Ne2kPciTest, IdentityAndResetState)
{
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_VENDOR_ID, 2), 0x10ecu);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_DEVICE_ID, 2), 0x8029u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_CLASS_PROG, 1), 0u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_CLASS_PROG + 1, 2), 0x0200u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_INTERRUPT_PIN, 1), 1u);
    EXPECT_EQ(r(CR), CR_STP | CR_RD_ABORT);
    EXPECT_EQ(r(ISR), ISR_RST);
    EXPECT_EQ(r(RTL8029_ID0), 0x50u); // 'P'
    EXPECT_EQ(r(RTL8029_ID1), 0x43u); // 'C'
    page(1);
    for (unsigned i = 0; i < 6; ++i)
        EXPECT_EQ(r(PAR0 + i), MAC[i]);
    page(2);
    EXPECT_EQ(r(IMR), 0x80u); // masked; the unused bit reads 1
    page(3);
    EXPECT_EQ(r(CONFIG0), 0u);
    EXPECT_EQ(r(CONFIG2), CONFIG2_10BASET);
    EXPECT_EQ(r(CONFIG3), CONFIG3_FUDUP);
    EXPECT_EQ(r(P3_ID0), 0x50u);
    EXPECT_EQ(r(P3_ID1), 0x43u);
    EXPECT_EQ(r(CR) >> CR_PS_SHIFT, 3u);
}

TEST_F(Ne2kPciTest, RegisterPagesHoldTheirOwnValues)
{
    w(CR, CR_STP | CR_RD_ABORT);
    w(PSTART, 0x4c);
    w(PSTOP, 0x70);
    w(TPSR, 0x40);
    w(RCR, 0x0e);
    w(TCR, 0x02);
    w(DCR, 0x49);
    w(IMR, 0x3f);
    w(BNRY, 0x50);
    page(1);
    w(CURR, 0x55);
    for (unsigned i = 0; i < 8; ++i)
        w(MAR0 + i, static_cast<uint8_t>(0x10 + i));
    EXPECT_EQ(r(CURR), 0x55u);
    EXPECT_EQ(r(MAR0 + 7), 0x17u);
    page(2);
    EXPECT_EQ(r(PSTART), 0x4cu);
    EXPECT_EQ(r(PSTOP), 0x70u);
    EXPECT_EQ(r(TPSR), 0x40u);
    EXPECT_EQ(r(RCR), 0xceu);
    EXPECT_EQ(r(TCR), 0xe2u);
    EXPECT_EQ(r(DCR), 0xc9u);
    EXPECT_EQ(r(IMR), 0xbfu);
    EXPECT_EQ(r(LNPP), 0x55u);
    page(0);
    EXPECT_EQ(r(BNRY), 0x50u);
    EXPECT_EQ(r(NCR), 0u);
}

TEST_F(Ne2kPciTest, ResetPortStopsTheNic)
{
    w(ISR, 0xff);
    EXPECT_EQ(r(ISR), ISR_RST); // RST is not write-1-to-clear...
    w(CR, CR_STA | CR_RD_ABORT);
    EXPECT_EQ(r(ISR), 0u); // ...START clears it
    w(IMR, 0x7f);
    EXPECT_EQ(r(CR), CR_STA | CR_RD_ABORT);
    EXPECT_EQ(r(RESET), 0u); // a read of the reset port resets
    EXPECT_EQ(r(CR), CR_STP | CR_RD_ABORT);
    EXPECT_EQ(r(ISR), ISR_RST);
    page(2);
    EXPECT_EQ(r(IMR), 0x80u);
    w(RESET, 0); // writing the reset port back, as drivers do, is harmless
    EXPECT_EQ(m_dev->stats().bad_accesses, 0u);
}

TEST_F(Ne2kPciTest, PromThroughRemoteDmaInByteWordAndDwordAccesses)
{
    // Byte mode, byte reads: 32 bytes, each PROM byte doubled, 'W' 'W' in PROM bytes 14/15.
    w(DCR, 0x48);
    remote(0, 32, CR_RD_READ);
    std::vector<uint8_t> prom;
    for (int i = 0; i < 32; ++i)
        prom.push_back(static_cast<uint8_t>(data_in(1)));
    for (unsigned i = 0; i < 6; ++i) {
        EXPECT_EQ(prom[2 * i], MAC[i]);
        EXPECT_EQ(prom[2 * i + 1], MAC[i]);
    }
    for (unsigned i = 28; i < 32; ++i)
        EXPECT_EQ(prom[i], 'W');
    EXPECT_TRUE(r(ISR) & ISR_RDC);
    EXPECT_EQ(r(CR) & CR_RD_MASK, CR_RD_ABORT);
    // Word mode: an 8-bit read moves a word and returns its low byte (what Linux's ne2k-pci reads).
    w(ISR, ISR_RDC);
    w(DCR, 0x49);
    remote(0, 32, CR_RD_READ);
    for (unsigned i = 0; i < 6; ++i)
        EXPECT_EQ(data_in(1), MAC[i]);
    w(DCR, 0x49);
    remote(0, 32, CR_RD_READ);
    EXPECT_EQ(data_in(2), static_cast<uint32_t>(MAC[0] | MAC[0] << 8));
    EXPECT_EQ(data_in(4), static_cast<uint32_t>(MAC[1] | MAC[1] << 8 | MAC[2] << 16 | MAC[2] << 24));
    EXPECT_FALSE(r(ISR) & ISR_RDC);
    page(0);
    EXPECT_EQ(r(CRDA0), 6u);
    // The PROM is mirrored through the low 16 KiB.
    EXPECT_EQ(card_read(0x2000, 2), (std::vector<uint8_t> { MAC[0], MAC[0] }));
}

TEST_F(Ne2kPciTest, RemoteWriteAndReadOfTheCardRam)
{
    std::vector<uint8_t> pattern(64);
    for (size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<uint8_t>(i * 3 + 1);
    w(DCR, 0x49);
    remote(0x4100, 64, CR_RD_WRITE);
    for (size_t i = 0; i < 64; i += 4)
        data_out(get_le32(pattern.data() + i), 4);
    EXPECT_TRUE(r(ISR) & ISR_RDC);
    EXPECT_EQ(card_read(0x4100, 64), pattern);
    // The PROM is read-only; nothing answers above the RAM.
    card_write(0x0000, std::vector<uint8_t> { 1, 2 });
    EXPECT_EQ(card_read(0, 1)[0], MAC[0]);
    card_write(0x8000, std::vector<uint8_t> { 1, 2 });
    EXPECT_EQ(card_read(0x8000, 2), (std::vector<uint8_t> { 0xff, 0xff }));
    EXPECT_EQ(card_read(0xffff, 2), (std::vector<uint8_t> { 0xff, MAC[0] })); // RSAR wraps to 0 (the PROM)
    // A remote read or write of nothing completes at once.
    w(ISR, 0xff);
    remote(0x4000, 0, CR_RD_READ);
    EXPECT_TRUE(r(ISR) & ISR_RDC);
}

TEST_F(Ne2kPciTest, RemoteDmaWrapsFromPstopToPstart)
{
    w(PSTART, RX_START);
    w(PSTOP, RX_STOP);
    card_write(0x4600, std::vector<uint8_t> { 0xaa, 0xbb });
    card_write(0x7ffe, std::vector<uint8_t> { 0x11, 0x22 });
    EXPECT_EQ(card_read(0x7ffe, 4), (std::vector<uint8_t> { 0x11, 0x22, 0xaa, 0xbb }));
}

TEST_F(Ne2kPciTest, TransmitFromTpsr)
{
    start_ring();
    auto const f = frame_to(MAC, 100);
    card_write(0x4000, f);
    w(TPSR, 0x40);
    w(TBCR0, 100);
    w(TBCR1, 0);
    w(ISR, 0xff);
    w(CR, CR_STA | CR_RD_ABORT | CR_TXP);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0], f);
    EXPECT_EQ(r(CR) & CR_TXP, 0u);
    EXPECT_EQ(r(TSR), TSR_PTX);
    EXPECT_TRUE(r(ISR) & ISR_PTX);
    // Short frames are padded to 60 bytes.
    w(TBCR0, 20);
    w(CR, CR_STA | CR_RD_ABORT | CR_TXP);
    ASSERT_EQ(m_backend->sent.size(), 2u);
    EXPECT_EQ(m_backend->sent[1].size(), 60u);
    EXPECT_TRUE(std::equal(f.begin(), f.begin() + 20, m_backend->sent[1].begin()));
    // A stopped NIC does not transmit.
    w(CR, CR_STP | CR_RD_ABORT);
    w(CR, CR_STP | CR_RD_ABORT | CR_TXP);
    EXPECT_EQ(m_backend->sent.size(), 2u);
    EXPECT_EQ(m_dev->stats().tx_frames, 2u);
}

TEST_F(Ne2kPciTest, TransmitAbortsBadLengthsAndBuffers)
{
    start_ring();
    struct Case {
        uint8_t tpsr;
        uint16_t len;
    };
    for (auto const c : { Case { 0x40, 0 }, Case { 0x40, 1519 }, Case { 0x7f, 512 }, Case { 0x00, 64 },
             Case { 0xff, 64 } }) {
        w(ISR, 0xff);
        w(TPSR, c.tpsr);
        w(TBCR0, static_cast<uint8_t>(c.len));
        w(TBCR1, static_cast<uint8_t>(c.len >> 8));
        w(CR, CR_STA | CR_RD_ABORT | CR_TXP);
        EXPECT_EQ(r(TSR), TSR_ABT);
        EXPECT_EQ(r(ISR) & (ISR_TXE | ISR_PTX), ISR_TXE);
    }
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(m_dev->stats().tx_aborted, 5u);
}

TEST_F(Ne2kPciTest, ReceiveWritesHeaderFrameAndFcsIntoTheRing)
{
    start_ring();
    auto const f = frame_to(MAC, 300);
    ASSERT_TRUE(m_dev->receive(f));
    // 4 + 300 + 4 bytes: two pages.
    EXPECT_EQ(curr(), RX_START + 2);
    auto const hdr = card_read(RX_START * 256, 4);
    EXPECT_EQ(hdr[0], RSR_PRX);
    // The same status in RSR (page 0, offset 0x0c: the register iPXE's ns8390 driver polls for PRX).
    EXPECT_EQ(r(0x0c), RSR_PRX);
    EXPECT_EQ(hdr[1], RX_START + 2);
    EXPECT_EQ(hdr[2] | hdr[3] << 8, 308);
    auto const body = card_read(RX_START * 256 + 4, 304);
    EXPECT_TRUE(std::equal(f.begin(), f.end(), body.begin()));
    EXPECT_EQ(get_le32(body.data() + 300), hako::net::ethernet_crc32(f));
    EXPECT_TRUE(r(ISR) & ISR_PRX);
    // A runt is padded to 60 bytes, a broadcast flagged PHY.
    hako::net::MacAddress const bcast { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    ASSERT_TRUE(m_dev->receive(frame_to(bcast, 42)));
    auto const hdr2 = card_read((RX_START + 2) * 256, 4);
    EXPECT_EQ(hdr2[0], RSR_PRX | RSR_PHY);
    EXPECT_EQ(hdr2[2] | hdr2[3] << 8, 4 + 60 + 4);
    EXPECT_EQ(m_dev->stats().rx_frames, 2u);
}

TEST_F(Ne2kPciTest, FrameEndingOnAPageBoundaryTakesOneMorePage)
{
    start_ring();
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 248))); // 4 + 248 + 4 = 256 bytes
    EXPECT_EQ(curr(), RX_START + 2);
    EXPECT_EQ(card_read(RX_START * 256, 4)[1], RX_START + 2);
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 247))); // 255 bytes: one page
    EXPECT_EQ(curr(), RX_START + 3);
}

TEST_F(Ne2kPciTest, ReceiveWrapsAtPstop)
{
    start_ring();
    page(1);
    w(CURR, 0x7e);
    page(0);
    w(BNRY, 0x7d);
    auto const f = frame_to(MAC, 600); // 608 bytes: pages 0x7e, 0x7f, then 0x46
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(curr(), RX_START + 1);
    auto const hdr = card_read(0x7e00, 4);
    EXPECT_EQ(hdr[1], RX_START + 1);
    // The remote DMA follows the wrap, as a driver's read of the frame does.
    auto const body = card_read(0x7e04, 600);
    EXPECT_EQ(body, f);
    auto const tail = card_read(RX_START * 256, 608 - 512);
    EXPECT_TRUE(std::equal(f.begin() + 508, f.end(), tail.begin()));
}

TEST_F(Ne2kPciTest, OverflowAtBnryRefusesAndRetries)
{
    start_ring();
    w(IMR, ISR_OVW);
    auto const f = frame_to(MAC, 600); // three pages each; the ring has 57 free
    for (int i = 0; i < 19; ++i)
        ASSERT_TRUE(m_dev->receive(f)) << i;
    EXPECT_EQ(curr(), 0x7fu); // CURR == BNRY: full
    EXPECT_FALSE(m_irq->level);
    EXPECT_FALSE(m_dev->receive(f));
    EXPECT_TRUE(r(ISR) & ISR_OVW);
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(r(0x0f), 1u); // CNTR2, the missed-frame tally (DP8390 page 0: RSR 0x0c, CNTR0-2 0x0d-0x0f)
    EXPECT_EQ(r(CNTR2), 0u); // the tally counters clear when read
    EXPECT_EQ(r(RSR) & RSR_MPA, RSR_MPA);
    EXPECT_EQ(m_dev->stats().rx_no_buffer, 1u);
    EXPECT_EQ(m_backend->retry_requests, 0);
    w(BNRY, 0x48); // the driver took the first frame (pages 0x46-0x48)
    EXPECT_EQ(m_backend->retry_requests, 1);
    EXPECT_TRUE(m_dev->receive(f));
    EXPECT_EQ(curr(), 0x48u);
    EXPECT_FALSE(m_dev->receive(f));
    EXPECT_EQ(m_dev->stats().rx_frames, 20u);
}

TEST_F(Ne2kPciTest, IsrImrAndIntx)
{
    start_ring();
    w(IMR, ISR_PRX);
    EXPECT_FALSE(m_irq->level);
    ASSERT_TRUE(m_dev->receive(frame_to(MAC, 64)));
    EXPECT_TRUE(m_irq->level);
    w(ISR, ISR_PTX); // other bits leave it
    EXPECT_TRUE(m_irq->level);
    w(ISR, ISR_PRX);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(r(ISR), 0u);
    // RDC is a cause like any other.
    w(IMR, ISR_RDC);
    remote(0x4000, 2, CR_RD_READ);
    data_in(2);
    EXPECT_TRUE(m_irq->level);
    w(IMR, 0);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(m_dev->stats().interrupts, 2u);
}

TEST_F(Ne2kPciTest, AddressFilters)
{
    start_ring(0);
    hako::net::MacAddress const other { 0x02, 0, 0, 0, 0, 1 };
    hako::net::MacAddress const bcast { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    hako::net::MacAddress const mcast { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    EXPECT_TRUE(m_dev->receive(frame_to(MAC, 64))); // our PAR: always
    EXPECT_TRUE(m_dev->receive(frame_to(other, 64)));
    EXPECT_TRUE(m_dev->receive(frame_to(bcast, 64)));
    EXPECT_TRUE(m_dev->receive(frame_to(mcast, 64)));
    EXPECT_EQ(m_dev->stats().rx_frames, 1u);
    EXPECT_EQ(m_dev->stats().rx_filtered, 3u);
    w(RCR, RCR_AB | RCR_AM | RCR_PRO);
    EXPECT_TRUE(m_dev->receive(frame_to(other, 64)));
    EXPECT_TRUE(m_dev->receive(frame_to(bcast, 64)));
    EXPECT_TRUE(m_dev->receive(frame_to(mcast, 64))); // its hash bit is clear
    EXPECT_EQ(m_dev->stats().rx_frames, 3u);
    uint32_t const hash = hako::net::multicast_crc(mcast) >> 26;
    page(1);
    w(MAR0 + hash / 8, static_cast<uint8_t>(1u << (hash % 8)));
    page(0);
    EXPECT_TRUE(m_dev->receive(frame_to(mcast, 64)));
    EXPECT_EQ(m_dev->stats().rx_frames, 4u);
    // Monitor mode: counted as missed, not stored.
    uint8_t const before = curr();
    w(RCR, RCR_AB | RCR_MON);
    EXPECT_TRUE(m_dev->receive(frame_to(bcast, 64)));
    EXPECT_EQ(curr(), before);
    EXPECT_EQ(r(CNTR2), 1u);
    EXPECT_EQ(m_dev->stats().rx_monitor, 1u);
}

TEST_F(Ne2kPciTest, BadRingsAndStoppedNicDropFrames)
{
    auto const f = frame_to(MAC, 64);
    EXPECT_TRUE(m_dev->receive(f)); // stopped after reset
    EXPECT_EQ(m_dev->stats().rx_dropped_stopped, 1u);
    start_ring();
    struct Ring {
        uint8_t pstart, pstop, curr, bnry;
    };
    for (auto const g : { Ring { 0x60, 0x60, 0x60, 0x60 }, Ring { 0x70, 0x50, 0x60, 0x60 },
             Ring { 0x46, 0xff, 0x50, 0x4f }, Ring { 0x00, 0x80, 0x10, 0x0f }, Ring { 0x46, 0x80, 0x90, 0x50 },
             Ring { 0x46, 0x80, 0x50, 0x20 } }) {
        w(PSTART, g.pstart);
        w(PSTOP, g.pstop);
        w(BNRY, g.bnry);
        page(1);
        w(CURR, g.curr);
        page(0);
        EXPECT_TRUE(m_dev->receive(f));
    }
    EXPECT_EQ(m_dev->stats().rx_bad_ring, 6u);
    EXPECT_EQ(m_dev->stats().rx_frames, 0u);
    // Frames outside the size limits.
    EXPECT_TRUE(m_dev->receive(std::vector<uint8_t>(10)));
    EXPECT_TRUE(m_dev->receive(std::vector<uint8_t>(Ne2kPci::RX_FRAME_MAX + 1)));
    EXPECT_EQ(m_dev->stats().rx_dropped_bad, 2u);
}

TEST_F(Ne2kPciTest, LoopbackTransmitIsReceivedHere)
{
    start_ring();
    w(TCR, 0x02);
    auto const f = frame_to(MAC, 80);
    card_write(0x4000, f);
    w(TPSR, 0x40);
    w(TBCR0, 80);
    w(TBCR1, 0);
    w(CR, CR_STA | CR_RD_ABORT | CR_TXP);
    EXPECT_TRUE(m_backend->sent.empty());
    EXPECT_EQ(m_dev->stats().tx_loopback, 1u);
    EXPECT_EQ(m_dev->stats().rx_frames, 1u);
    EXPECT_EQ(card_read(RX_START * 256 + 4, 80), f);
}

TEST_F(Ne2kPciTest, BadAccessesAndLockedConfigRegisters)
{
    std::array<uint8_t, 2> b { 0x12, 0x34 };
    m_dev->bar_read(Ne2kPci::IO_BAR, 0x12, std::span<uint8_t>(b).first(1));
    EXPECT_EQ(b[0], 0xffu);
    m_dev->bar_write(Ne2kPci::IO_BAR, 0x0f, std::span<uint8_t const>(b)); // crosses into the data port
    m_dev->bar_read(Ne2kPci::IO_BAR, 0x20, std::span<uint8_t>(b).first(1));
    m_dev->bar_read(1, 0, std::span<uint8_t>(b).first(1));
    EXPECT_EQ(m_dev->stats().bad_accesses, 4u);
    page(3);
    w(CONFIG3, 0);
    EXPECT_EQ(r(CONFIG3), CONFIG3_FUDUP);
    EXPECT_EQ(m_dev->stats().bad_accesses, 5u);
    w(CR9346, EEM_CONFIG_WRITE);
    w(CONFIG3, 0);
    EXPECT_EQ(r(CONFIG3), 0u);
    // A PCI reset restores everything.
    m_dev->reset();
    page(3);
    EXPECT_EQ(r(CONFIG3), CONFIG3_FUDUP);
    EXPECT_EQ(r(CR9346), 0u);
}

TEST_F(Ne2kPciTest, MissedFrameTallyRaisesCnt)
{
    start_ring(RCR_AB | RCR_MON);
    w(IMR, ISR_CNT);
    hako::net::MacAddress const bcast { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    for (int i = 0; i < 127; ++i)
        m_dev->receive(frame_to(bcast, 64));
    EXPECT_FALSE(r(ISR) & ISR_CNT);
    m_dev->receive(frame_to(bcast, 64));
    EXPECT_TRUE(r(ISR) & ISR_CNT);
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(r(CNTR2), 128u);
}

} // namespace
