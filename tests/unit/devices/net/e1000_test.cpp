// E1000 (Intel 82540EM) driven through its BARs over a heap-backed GuestMemory, a fake net::Backend and a fake INTx
// line: register semantics, the EEPROM (EERD and Microwire), the PHY, interrupt causes and ITR, transmit (legacy,
// context/data with checksum offload, TSO), receive (ring fill and wrap, filters, VLAN, checksums) and hostile rings.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/e1000.h"
#include "net/checksum.h"
#include "../pci/pci_test_util.h"
#include "../../net/test_frames.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::e1000;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000;
constexpr uint64_t TX_RING = 0x1000;
constexpr uint64_t RX_RING = 0x2000;
constexpr uint64_t TX_DATA = 0x8000;
constexpr uint64_t RX_DATA = 0x20000;
constexpr uint32_t RING_ENTRIES = 8;
constexpr hako::net::MacAddress MAC { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

class FakeBackend final : public hako::net::Backend {
public:
    void send(std::span<uint8_t const> frame) override { sent.emplace_back(frame.begin(), frame.end()); }
    void rx_buffers_available() override { ++retry_requests; }
    std::vector<std::vector<uint8_t>> sent;
    int retry_requests { 0 };
};

/// An Ethernet + IPv4 + TCP frame with `payload` bytes; checksums valid unless the caller changes it.
std::vector<uint8_t> tcp_frame(hako::net::MacAddress dst, size_t payload, uint8_t flags = 0x18)
{
    std::vector<uint8_t> f(14 + 20 + 20 + payload);
    std::copy(dst.begin(), dst.end(), f.begin());
    f[6] = 0x02;
    put_be16(&f[12], 0x0800);
    uint8_t* ip = &f[14];
    ip[0] = 0x45;
    put_be16(ip + 2, static_cast<uint16_t>(20 + 20 + payload));
    put_be16(ip + 4, 0x1234);
    put_be16(ip + 6, 0x4000); // DF
    ip[8] = 64;
    ip[9] = 6;
    put_be32(ip + 12, 0x0a00020f);
    put_be32(ip + 16, 0x0a000202);
    put_be16(ip + 10, hako::net::test::ip_checksum(ip, 20));
    uint8_t* tcp = ip + 20;
    put_be16(tcp, 40000);
    put_be16(tcp + 2, 7);
    put_be32(tcp + 4, 1000);
    put_be32(tcp + 8, 5000);
    tcp[12] = 0x50;
    tcp[13] = flags;
    put_be16(tcp + 14, 65535);
    for (size_t i = 0; i < payload; ++i)
        tcp[20 + i] = static_cast<uint8_t>(i * 13 + 1);
    uint32_t sum = hako::net::inet_sum(std::span<uint8_t const>(ip + 12, 8), 6 + static_cast<uint32_t>(20 + payload));
    put_be16(tcp + 16, hako::net::inet_checksum(hako::net::inet_sum(std::span<uint8_t const>(tcp, 20 + payload), sum)));
    return f;
}

bool ipv4_checksum_ok(std::span<uint8_t const> f)
{
    return hako::net::inet_fold(hako::net::inet_sum(f.subspan(14, 20))) == 0xffff;
}

bool tcp_checksum_ok(std::span<uint8_t const> f)
{
    size_t const l4 = get_be16(&f[16]) - 20u;
    uint32_t sum = hako::net::inet_sum(f.subspan(26, 8), 6 + static_cast<uint32_t>(l4));
    return hako::net::inet_fold(hako::net::inet_sum(f.subspan(34, l4), sum)) == 0xffff;
}

class E1000Test : public ::testing::Test {
protected:
    E1000Test()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_backend(std::make_shared<FakeBackend>())
        , m_irq(std::make_shared<devices::pci::test::FakeIrq>())
    {
        E1000Options options;
        options.clock_ns = [this] { return m_now; };
        m_dev = E1000::create(m_mem, m_backend, MAC, std::move(options)).value();
        m_dev->set_intx_line(m_irq);
    }

    void w(uint32_t offset, uint32_t v)
    {
        std::array<uint8_t, 4> b {};
        store_le(b, v);
        m_dev->bar_write(E1000::MMIO_BAR, offset, b);
    }
    uint32_t r(uint32_t offset)
    {
        std::array<uint8_t, 4> b {};
        m_dev->bar_read(E1000::MMIO_BAR, offset, b);
        return static_cast<uint32_t>(load_le(b));
    }
    uint8_t* ram(uint64_t addr) { return m_buf.data() + addr; }

    void setup_tx()
    {
        w(TDBAL, static_cast<uint32_t>(TX_RING));
        w(TDBAH, 0);
        w(TDLEN, RING_ENTRIES * TX_DESC_SIZE);
        w(TDH, 0);
        w(TDT, 0);
        w(TCTL, TCTL_EN);
    }
    /// A legacy transmit descriptor at index i.
    void legacy_desc(uint32_t i, uint64_t addr, uint16_t len, uint8_t cmd, uint8_t cso = 0, uint8_t css = 0)
    {
        uint8_t* d = ram(TX_RING + 16 * i);
        put_le64(d, addr);
        put_le16(d + 8, len);
        d[10] = cso;
        d[11] = cmd;
        d[12] = 0;
        d[13] = css;
        put_le16(d + 14, 0);
    }
    void context_desc(uint32_t i, uint8_t ipcss, uint8_t ipcso, uint16_t ipcse, uint8_t tucss, uint8_t tucso,
        uint16_t tucse, uint32_t paylen, uint8_t tucmd, uint8_t hdr_len, uint16_t mss)
    {
        uint8_t* d = ram(TX_RING + 16 * i);
        d[0] = ipcss;
        d[1] = ipcso;
        put_le16(d + 2, ipcse);
        d[4] = tucss;
        d[5] = tucso;
        put_le16(d + 6, tucse);
        put_le32(d + 8, (paylen & TXD_LEN_MASK) | static_cast<uint32_t>(tucmd | TXD_CMD_DEXT) << 24);
        d[12] = 0;
        d[13] = hdr_len;
        put_le16(d + 14, mss);
    }
    void data_desc(uint32_t i, uint64_t addr, uint32_t len, uint8_t dcmd, uint8_t popts)
    {
        uint8_t* d = ram(TX_RING + 16 * i);
        put_le64(d, addr);
        put_le32(d + 8, len | TXD_DTYP_DATA << TXD_DTYP_SHIFT | static_cast<uint32_t>(dcmd | TXD_CMD_DEXT) << 24);
        d[12] = 0;
        d[13] = popts;
        put_le16(d + 14, 0);
    }

    void setup_rx(uint32_t rctl = RCTL_EN | RCTL_BAM)
    {
        for (uint32_t i = 0; i < RING_ENTRIES; ++i) {
            put_le64(ram(RX_RING + 16 * i), RX_DATA + 0x1000 * i);
            std::fill(ram(RX_RING + 16 * i + 8), ram(RX_RING + 16 * i + 16), 0);
        }
        w(RDBAL, static_cast<uint32_t>(RX_RING));
        w(RDBAH, 0);
        w(RDLEN, RING_ENTRIES * RX_DESC_SIZE);
        w(RDH, 0);
        w(RDT, RING_ENTRIES - 1);
        w(RCTL, rctl);
    }
    uint16_t rx_len(uint32_t i) { return get_le16(ram(RX_RING + 16 * i + 8)); }
    uint8_t rx_status(uint32_t i) { return ram(RX_RING + 16 * i + 12)[0]; }
    uint8_t rx_errors(uint32_t i) { return ram(RX_RING + 16 * i + 13)[0]; }
    uint16_t rx_special(uint32_t i) { return get_le16(ram(RX_RING + 16 * i + 14)); }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::shared_ptr<FakeBackend> m_backend;
    std::shared_ptr<devices::pci::test::FakeIrq> m_irq;
    int64_t m_now { 1'000'000'000 };
    std::shared_ptr<E1000> m_dev;
};

} // namespace

TEST_F(E1000Test, PciIdentityAndBars)
{
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_VENDOR_ID, 2), 0x8086u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_DEVICE_ID, 2), 0x100eu);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_SUBSYSTEM_VENDOR_ID, 2), 0x8086u);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_SUBSYSTEM_ID, 2), 0x001eu);
    EXPECT_EQ(m_dev->config_load(devices::pci::PCI_REVISION_ID, 4), 0x02000002u); // class 02:00:00, revision 2
    EXPECT_EQ(m_dev->bar_kind(0), devices::pci::BarKind::Mem32);
    EXPECT_EQ(m_dev->bar_size(0), 0x20000u);
    EXPECT_EQ(m_dev->bar_kind(1), devices::pci::BarKind::Io);
    EXPECT_EQ(m_dev->bar_kind(devices::pci::ROM_BAR), devices::pci::BarKind::Unused);
    EXPECT_EQ(m_dev->interrupt_pin(), 1);
}

TEST_F(E1000Test, StatusAndResetValues)
{
    uint32_t const status = r(STATUS);
    EXPECT_TRUE(status & STATUS_LU);
    EXPECT_TRUE(status & STATUS_FD);
    EXPECT_EQ(status & (3u << 6), STATUS_SPEED_1000);
    EXPECT_EQ(r(RA), 0x12005452u);
    EXPECT_EQ(r(RA + 4), 0x5634u | RAH_AV);
    EXPECT_EQ(r(VET), 0x8100u);
    // CTRL.RST resets the registers and self-clears.
    w(IMS, ICR_RXT0);
    w(RDLEN, 0x1000);
    w(RA, 0);
    w(CTRL, r(CTRL) | CTRL_RST);
    EXPECT_FALSE(r(CTRL) & CTRL_RST);
    EXPECT_EQ(r(IMS), 0u);
    EXPECT_EQ(r(RDLEN), 0u);
    EXPECT_EQ(r(RA), 0x12005452u);
}

TEST_F(E1000Test, RegisterMasksAndUnknownOffsets)
{
    w(RDLEN, 0x12345);
    EXPECT_EQ(r(RDLEN), 0x12300u & 0xfff80u);
    w(RDBAL, 0x1237);
    EXPECT_EQ(r(RDBAL), 0x1230u);
    w(RDT, 0x12345678);
    EXPECT_EQ(r(RDT), 0x5678u);
    w(MTA + 4 * 127, 0xdeadbeef);
    EXPECT_EQ(r(MTA + 4 * 127), 0xdeadbeefu);
    w(STATUS, 0);
    EXPECT_TRUE(r(STATUS) & STATUS_LU);
    EXPECT_EQ(r(0x0004), 0xffffffffu); // reserved
    w(0x0004, 1);
    // A narrow read returns part of the dword; a narrow write is dropped.
    std::array<uint8_t, 2> half {};
    m_dev->bar_read(E1000::MMIO_BAR, MTA + 4 * 127 + 2, half);
    EXPECT_EQ(get_le16(half.data()), 0xdeadu);
    m_dev->bar_write(E1000::MMIO_BAR, MTA + 4 * 127, std::array<uint8_t, 2> { 0, 0 });
    EXPECT_EQ(r(MTA + 4 * 127), 0xdeadbeefu);
    EXPECT_EQ(m_dev->stats().bad_accesses, 3u);
}

TEST_F(E1000Test, IoBarReachesRegisters)
{
    std::array<uint8_t, 4> b {};
    store_le(b, STATUS);
    m_dev->bar_write(E1000::IO_BAR, E1000::IOADDR, b);
    m_dev->bar_read(E1000::IO_BAR, E1000::IODATA, b);
    EXPECT_TRUE(load_le(b) & STATUS_LU);
    store_le(b, IMS);
    m_dev->bar_write(E1000::IO_BAR, E1000::IOADDR, b);
    store_le(b, ICR_LSC);
    m_dev->bar_write(E1000::IO_BAR, E1000::IODATA, b);
    EXPECT_EQ(r(IMS), ICR_LSC);
    store_le(b, 0x20000);
    m_dev->bar_write(E1000::IO_BAR, E1000::IOADDR, b);
    m_dev->bar_read(E1000::IO_BAR, E1000::IODATA, b);
    EXPECT_EQ(load_le(b), 0xffffffffu);
}

TEST_F(E1000Test, EepromThroughEerd)
{
    uint16_t sum = 0;
    std::array<uint16_t, 64> words {};
    for (uint32_t i = 0; i < 64; ++i) {
        w(EERD, EERD_START | i << EERD_ADDR_SHIFT);
        uint32_t const v = r(EERD);
        ASSERT_TRUE(v & EERD_DONE);
        EXPECT_EQ((v >> EERD_ADDR_SHIFT) & 0xff, i);
        words[i] = static_cast<uint16_t>(v >> EERD_DATA_SHIFT);
        sum = static_cast<uint16_t>(sum + words[i]);
    }
    EXPECT_EQ(sum, EEPROM_SUM);
    EXPECT_EQ(words[0], 0x5452u);
    EXPECT_EQ(words[1], 0x1200u);
    EXPECT_EQ(words[2], 0x5634u);
    EXPECT_EQ(words[0x0d], 0x100eu);
    EXPECT_EQ(words[0x0e], 0x8086u);
    w(EERD, EERD_START | 200u << EERD_ADDR_SHIFT);
    EXPECT_EQ(r(EERD), EERD_DONE | 200u << EERD_ADDR_SHIFT);
}

TEST_F(E1000Test, EepromThroughMicrowire)
{
    w(EECD, EECD_REQ);
    ASSERT_TRUE(r(EECD) & EECD_GNT);
    EXPECT_TRUE(r(EECD) & EECD_PRES);
    uint32_t const base = EECD_REQ | EECD_CS;
    auto clock = [&](bool di) {
        uint32_t const v = base | (di ? EECD_DI : 0);
        w(EECD, v);
        w(EECD, v | EECD_SK);
        bool const out = r(EECD) & EECD_DO;
        w(EECD, v);
        return out;
    };
    w(EECD, base);
    clock(false); // leading zeros before the start bit are ignored
    clock(false);
    // Start bit, READ (10b), address 1.
    uint32_t const cmd = 0b1'10'000001;
    for (int bit = 8; bit >= 0; --bit)
        clock((cmd >> bit) & 1);
    EXPECT_FALSE(r(EECD) & EECD_DO); // the dummy zero
    auto read_word = [&] {
        uint16_t v = 0;
        for (int i = 0; i < 16; ++i)
            v = static_cast<uint16_t>(v << 1 | (clock(false) ? 1 : 0));
        return v;
    };
    EXPECT_EQ(read_word(), 0x1200u);
    EXPECT_EQ(read_word(), 0x5634u); // sequential read goes on to word 2
    w(EECD, EECD_REQ);               // CS low ends the command
    // A WRITE command is refused (read-only part) and counted.
    w(EECD, base);
    uint32_t const write_cmd = 0b1'01'000001;
    for (int bit = 8; bit >= 0; --bit)
        clock((write_cmd >> bit) & 1);
    w(EECD, 0);
    EXPECT_EQ(m_dev->stats().eeprom_unsupported, 1u);
}

TEST_F(E1000Test, PhyThroughMdic)
{
    auto mdic_read = [&](unsigned phy, unsigned reg) {
        w(MDIC, MDIC_OP_READ | phy << MDIC_PHY_SHIFT | reg << MDIC_REG_SHIFT);
        return r(MDIC);
    };
    uint32_t v = mdic_read(PHY_ADDRESS, PHY_ID1);
    EXPECT_TRUE(v & MDIC_READY);
    EXPECT_FALSE(v & MDIC_ERROR);
    EXPECT_EQ(v & 0xffff, 0x0141u);
    EXPECT_EQ(mdic_read(PHY_ADDRESS, PHY_ID2) & 0xffff, 0x0c20u);
    uint32_t const bmsr = mdic_read(PHY_ADDRESS, PHY_STATUS) & 0xffff;
    EXPECT_TRUE(bmsr & MII_SR_LINK_STATUS);
    EXPECT_TRUE(bmsr & MII_SR_AUTONEG_COMPLETE);
    EXPECT_TRUE(mdic_read(2, PHY_ID1) & MDIC_ERROR);
    // A write, read back; restart autonegotiation self-clears and reports a link change; MDIC.I raises MDAC.
    w(MDIC, MDIC_OP_WRITE | PHY_ADDRESS << MDIC_PHY_SHIFT | PHY_AUTONEG_ADV << MDIC_REG_SHIFT | 0x01e1);
    EXPECT_EQ(mdic_read(PHY_ADDRESS, PHY_AUTONEG_ADV) & 0xffff, 0x01e1u);
    (void)r(ICR);
    w(MDIC, MDIC_OP_WRITE | MDIC_INT_EN | PHY_ADDRESS << MDIC_PHY_SHIFT | PHY_CTRL << MDIC_REG_SHIFT
            | MII_CR_AUTO_NEG_EN | MII_CR_RESTART_AUTO_NEG);
    EXPECT_EQ(r(ICR), ICR_LSC | ICR_MDAC);
    EXPECT_FALSE(mdic_read(PHY_ADDRESS, PHY_CTRL) & MII_CR_RESTART_AUTO_NEG);
    // A PHY reset restores the defaults.
    w(MDIC, MDIC_OP_WRITE | PHY_ADDRESS << MDIC_PHY_SHIFT | PHY_CTRL << MDIC_REG_SHIFT | MII_CR_RESET);
    EXPECT_EQ(mdic_read(PHY_ADDRESS, PHY_AUTONEG_ADV) & 0xffff, 0x0de1u);
}

TEST_F(E1000Test, InterruptCausesAndMask)
{
    w(ICS, ICR_LSC | ICR_RXT0);
    EXPECT_FALSE(m_irq->level); // masked
    w(IMS, ICR_RXT0);
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(r(IMS), ICR_RXT0);
    EXPECT_TRUE(m_dev->config_load(devices::pci::PCI_STATUS, 2) & devices::pci::PCI_STATUS_INTERRUPT);
    w(IMC, ICR_RXT0);
    EXPECT_FALSE(m_irq->level);
    w(IMS, ICR_RXT0 | ICR_LSC);
    EXPECT_TRUE(m_irq->level);
    w(ICR, ICR_RXT0); // write 1 to clear: LSC still pending
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(r(ICR), ICR_LSC); // read clears
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(r(ICR), 0u);
    EXPECT_EQ(m_dev->stats().interrupts, 2u);
}

TEST_F(E1000Test, ItrThrottlesAssertions)
{
    w(ITR, 1000); // 256 us
    w(IMS, ICR_TXDW);
    w(ICS, ICR_TXDW);
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(r(ICR), ICR_TXDW);
    EXPECT_FALSE(m_irq->level);
    m_now += 100'000;
    w(ICS, ICR_TXDW);
    EXPECT_FALSE(m_irq->level); // within the interval
    EXPECT_EQ(m_dev->stats().itr_deferred, 1u);
    m_dev->itr_timer_expired();
    EXPECT_FALSE(m_irq->level); // still within it
    m_now += 160'000;
    m_dev->itr_timer_expired();
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(m_dev->stats().interrupts, 2u);
    // ITR 0: no throttling.
    EXPECT_EQ(r(ICR), ICR_TXDW);
    w(ITR, 0);
    w(ICS, ICR_TXDW);
    EXPECT_TRUE(m_irq->level);
}

TEST_F(E1000Test, StatisticsClearOnRead)
{
    setup_tx();
    auto frame = tcp_frame(MAC, 100);
    std::copy(frame.begin(), frame.end(), ram(TX_DATA));
    legacy_desc(0, TX_DATA, static_cast<uint16_t>(frame.size()), TXD_CMD_EOP | TXD_CMD_RS);
    w(TDT, 1);
    EXPECT_EQ(r(STATS_START + 4 * STAT_GPTC), 1u);
    EXPECT_EQ(r(STATS_START + 4 * STAT_GPTC), 0u);
    EXPECT_EQ(r(STATS_START + 4 * STAT_GOTCL), frame.size() + 4);
    EXPECT_EQ(r(STATS_START + 4 * STAT_GOTCL), frame.size() + 4); // the low half does not clear
    EXPECT_EQ(r(STATS_START + 4 * STAT_GOTCH), 0u);
    EXPECT_EQ(r(STATS_START + 4 * STAT_GOTCL), 0u);
    EXPECT_EQ(r(STATS_START + 4 * (STAT_PTC64 + 2)), 1u); // 158 bytes with FCS: 128-255
}

TEST_F(E1000Test, TransmitLegacyDescriptors)
{
    setup_tx();
    auto frame = tcp_frame({ 0x52, 0x55, 0x0a, 0, 2, 2 }, 200);
    std::copy(frame.begin(), frame.end(), ram(TX_DATA));
    // One frame in two descriptors, then a 20-byte frame (padded with PSP only).
    legacy_desc(0, TX_DATA, 30, 0);
    legacy_desc(1, TX_DATA + 30, static_cast<uint16_t>(frame.size() - 30), TXD_CMD_EOP | TXD_CMD_RS);
    legacy_desc(2, TX_DATA, 20, TXD_CMD_EOP | TXD_CMD_RS);
    w(TDT, 3);
    ASSERT_EQ(m_backend->sent.size(), 2u);
    EXPECT_EQ(m_backend->sent[0], frame);
    EXPECT_EQ(m_backend->sent[1].size(), 20u);
    EXPECT_EQ(r(TDH), 3u);
    EXPECT_EQ(ram(TX_RING + 12)[0], 0); // no RS: no write-back
    EXPECT_EQ(ram(TX_RING + 16 + 12)[0] & TXD_STAT_DD, TXD_STAT_DD);
    EXPECT_EQ(ram(TX_RING + 32 + 12)[0] & TXD_STAT_DD, TXD_STAT_DD);
    EXPECT_EQ(r(ICR), ICR_TXDW | ICR_TXQE);
    // PSP pads; IC inserts a checksum from CSS to the end at CSO (the TCP checksum field here, after zeroing it and
    // putting the pseudo-header sum there, as a driver would).
    w(TCTL, TCTL_EN | TCTL_PSP);
    legacy_desc(3, TX_DATA, 20, TXD_CMD_EOP);
    auto f2 = tcp_frame(MAC, 33);
    put_be16(&f2[50], hako::net::inet_fold(hako::net::inet_sum(std::span<uint8_t const>(&f2[26], 8), 6 + 20 + 33)));
    std::copy(f2.begin(), f2.end(), ram(TX_DATA + 0x1000));
    legacy_desc(4, TX_DATA + 0x1000, static_cast<uint16_t>(f2.size()), TXD_CMD_EOP | TXD_CMD_IC, 50, 34);
    w(TDT, 5);
    ASSERT_EQ(m_backend->sent.size(), 4u);
    EXPECT_EQ(m_backend->sent[2].size(), 60u);
    EXPECT_TRUE(tcp_checksum_ok(m_backend->sent[3]));
    EXPECT_EQ(m_backend->sent[3], tcp_frame(MAC, 33));
    EXPECT_EQ(r(ICR), ICR_TXQE); // no RS: no TXDW
}

TEST_F(E1000Test, TransmitChecksumOffload)
{
    setup_tx();
    auto good = tcp_frame(MAC, 500);
    auto f = good;
    put_be16(&f[24], 0); // IP checksum cleared
    put_be16(&f[50], hako::net::inet_fold(hako::net::inet_sum(std::span<uint8_t const>(&f[26], 8), 6 + 20 + 500)));
    std::copy(f.begin(), f.end(), ram(TX_DATA));
    context_desc(0, 14, 24, 33, 34, 50, 0, 0, TUCMD_IP | TUCMD_TCP, 0, 0);
    data_desc(1, TX_DATA, 100, 0, TXD_POPTS_IXSM | TXD_POPTS_TXSM);
    data_desc(2, TX_DATA + 100, static_cast<uint32_t>(f.size() - 100), TXD_CMD_EOP | TXD_CMD_RS, 0);
    w(TDT, 3);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_backend->sent[0], good);
    EXPECT_EQ(m_dev->stats().tx_checksums, 2u);
}

TEST_F(E1000Test, TransmitTsoSegments)
{
    setup_tx();
    constexpr size_t PAYLOAD = 2500;
    constexpr uint16_t MSS = 1000;
    auto f = tcp_frame(MAC, PAYLOAD, 0x19); // FIN|PSH|ACK
    auto const original = f;
    // As Linux prepares a TSO packet: IP total length and checksum 0, the TCP checksum field holds the pseudo-header
    // sum without the length.
    put_be16(&f[16], 0);
    put_be16(&f[24], 0);
    put_be16(&f[50], hako::net::inet_fold(hako::net::inet_sum(std::span<uint8_t const>(&f[26], 8), 6)));
    std::copy(f.begin(), f.end(), ram(TX_DATA));
    context_desc(0, 14, 24, 33, 34, 50, 0, PAYLOAD, TUCMD_IP | TUCMD_TCP | TXD_CMD_TSE, 54, MSS);
    data_desc(1, TX_DATA, 54, TXD_CMD_TSE, TXD_POPTS_IXSM | TXD_POPTS_TXSM);
    data_desc(2, TX_DATA + 54, PAYLOAD, TXD_CMD_TSE | TXD_CMD_EOP | TXD_CMD_RS, 0);
    w(TDT, 3);
    ASSERT_EQ(m_backend->sent.size(), 3u);
    std::vector<uint8_t> joined;
    for (size_t i = 0; i < 3; ++i) {
        auto const& s = m_backend->sent[i];
        size_t const chunk = i < 2 ? MSS : PAYLOAD - 2 * MSS;
        ASSERT_EQ(s.size(), 54 + chunk);
        EXPECT_EQ(get_be16(&s[16]), 40 + chunk);
        EXPECT_EQ(get_be16(&s[18]), 0x1234 + i);
        EXPECT_EQ(get_be32(&s[38]), 1000 + MSS * i);
        EXPECT_EQ(s[47], i < 2 ? 0x10 : 0x19); // FIN and PSH on the last segment only
        EXPECT_TRUE(ipv4_checksum_ok(s));
        EXPECT_TRUE(tcp_checksum_ok(s));
        joined.insert(joined.end(), s.begin() + 54, s.end());
    }
    EXPECT_TRUE(std::equal(joined.begin(), joined.end(), original.begin() + 54));
    auto const st = m_dev->stats();
    EXPECT_EQ(st.tx_tso_packets, 1u);
    EXPECT_EQ(st.tx_tso_segments, 3u);
    EXPECT_EQ(r(STATS_START + 4 * STAT_TSCTC), 1u);
}

TEST_F(E1000Test, TransmitVlanInsertion)
{
    setup_tx();
    w(CTRL, r(CTRL) | CTRL_VME);
    auto f = tcp_frame(MAC, 10);
    std::copy(f.begin(), f.end(), ram(TX_DATA));
    legacy_desc(0, TX_DATA, static_cast<uint16_t>(f.size()), TXD_CMD_EOP | TXD_CMD_VLE);
    put_le16(ram(TX_RING + 14), 0x2005);
    w(TDT, 1);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    auto const& s = m_backend->sent[0];
    ASSERT_EQ(s.size(), f.size() + 4);
    EXPECT_EQ(get_be16(&s[12]), 0x8100u);
    EXPECT_EQ(get_be16(&s[14]), 0x2005u);
    EXPECT_EQ(get_be16(&s[16]), 0x0800u);
}

TEST_F(E1000Test, HostileTransmitRings)
{
    setup_tx();
    // Tail beyond the ring, zero-length ring: nothing happens, counted.
    w(TDT, RING_ENTRIES + 3);
    w(TDLEN, 0);
    w(TDT, 2);
    EXPECT_EQ(m_backend->sent.size(), 0u);
    EXPECT_EQ(m_dev->stats().bad_rings, 2u);
    // A buffer outside RAM drops its packet; a zero-length descriptor is counted; the ring moves on.
    w(TDLEN, RING_ENTRIES * TX_DESC_SIZE);
    w(TDH, 0);
    legacy_desc(0, RAM_SIZE - 10, 100, TXD_CMD_EOP | TXD_CMD_RS);
    legacy_desc(1, TX_DATA, 0, 0);
    legacy_desc(2, TX_DATA, 60, TXD_CMD_EOP);
    legacy_desc(3, ~uint64_t { 0 } - 4, 60, TXD_CMD_EOP);
    w(TDT, 4);
    EXPECT_EQ(r(TDH), 4u);
    ASSERT_EQ(m_backend->sent.size(), 1u);
    auto const st = m_dev->stats();
    EXPECT_EQ(st.tx_dropped, 2u);
    EXPECT_EQ(st.tx_bad_descriptors, 2u);
    EXPECT_EQ(st.tx_zero_length, 1u);
    // A ring whose descriptors lie outside RAM: each is skipped once, the pass ends.
    w(TDBAL, 0xfff00000);
    w(TDH, 0);
    w(TDT, RING_ENTRIES - 1);
    EXPECT_EQ(r(TDH), RING_ENTRIES - 1);
    EXPECT_EQ(m_dev->stats().tx_bad_descriptors, 2u + RING_ENTRIES - 1);
    // A TSO context that does not fit its packet drops it.
    w(TDBAL, static_cast<uint32_t>(TX_RING));
    w(TDH, 0);
    context_desc(0, 14, 24, 33, 34, 50, 0, 10, TUCMD_IP | TUCMD_TCP | TXD_CMD_TSE, 200, 0);
    data_desc(1, TX_DATA, 60, TXD_CMD_TSE | TXD_CMD_EOP, 0);
    w(TDT, 2);
    EXPECT_EQ(m_backend->sent.size(), 1u);
    EXPECT_EQ(m_dev->stats().tx_dropped, 3u);
}

TEST_F(E1000Test, ReceiveFillsAndWrapsTheRing)
{
    setup_rx();
    w(RXCSUM, 0);
    for (int round = 0; round < 2 * static_cast<int>(RING_ENTRIES); ++round) {
        uint32_t const slot = static_cast<uint32_t>(round) % RING_ENTRIES;
        auto f = tcp_frame(MAC, 10 + static_cast<size_t>(round) * 10);
        ASSERT_TRUE(m_dev->receive(f)) << round;
        EXPECT_EQ(rx_len(slot), f.size() + 4);
        EXPECT_EQ(rx_status(slot), RXD_STAT_DD | RXD_STAT_EOP | RXD_STAT_IXSM);
        EXPECT_TRUE(std::equal(f.begin(), f.end(), ram(RX_DATA + 0x1000 * slot)));
        // The FCS follows the frame.
        EXPECT_EQ(get_le32(ram(RX_DATA + 0x1000 * slot + f.size())), hako::net::ethernet_crc32(f));
        EXPECT_EQ(r(RDH), (slot + 1) % RING_ENTRIES);
        // The driver hands the descriptor back.
        std::fill(ram(RX_RING + 16 * slot + 8), ram(RX_RING + 16 * slot + 16), 0);
        w(RDT, slot);
    }
    EXPECT_TRUE(r(ICR) & ICR_RXT0);
    EXPECT_EQ(m_dev->stats().rx_frames, 2u * RING_ENTRIES);
    EXPECT_EQ(r(STATS_START + 4 * STAT_GPRC), 2u * RING_ENTRIES);
}

TEST_F(E1000Test, ReceivePadsShortFramesAndStripsFcsWithSecrc)
{
    setup_rx(RCTL_EN | RCTL_SECRC);
    std::vector<uint8_t> f(20, 0x11);
    std::copy(MAC.begin(), MAC.end(), f.begin());
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_len(0), 60u);
    EXPECT_EQ(ram(RX_DATA + 59)[0], 0);
}

TEST_F(E1000Test, ReceiveWithoutDescriptorsIsRefusedAndRetried)
{
    setup_rx();
    w(RDT, 0); // RDH == RDT: no descriptors
    auto f = tcp_frame(MAC, 10);
    EXPECT_FALSE(m_dev->receive(f));
    EXPECT_EQ(m_dev->stats().rx_no_buffer, 1u);
    EXPECT_TRUE(r(ICR) & ICR_RXO);
    EXPECT_EQ(r(STATS_START + 4 * STAT_RNBC), 1u);
    w(RDT, 3);
    EXPECT_EQ(m_backend->retry_requests, 1);
    EXPECT_TRUE(m_dev->receive(f));
    // Disabled receiver: dropped.
    w(RCTL, 0);
    EXPECT_TRUE(m_dev->receive(f));
    EXPECT_EQ(m_dev->stats().rx_dropped_disabled, 1u);
}

TEST_F(E1000Test, ReceiveSpansDescriptorsAtSmallBufferSizes)
{
    setup_rx(RCTL_EN | 3u << RCTL_BSIZE_SHIFT); // 256-byte buffers
    auto f = tcp_frame(MAC, 600);               // 654 bytes + FCS: 3 descriptors
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_len(0), 256u);
    EXPECT_EQ(rx_len(1), 256u);
    EXPECT_EQ(rx_len(2), f.size() + 4 - 512);
    EXPECT_EQ(rx_status(0) & (RXD_STAT_DD | RXD_STAT_EOP), RXD_STAT_DD);
    EXPECT_EQ(rx_status(2) & (RXD_STAT_DD | RXD_STAT_EOP), RXD_STAT_DD | RXD_STAT_EOP);
    EXPECT_TRUE(std::equal(f.begin() + 256, f.begin() + 512, ram(RX_DATA + 0x1000)));
    // Only 4 descriptors left (RDT 7): a frame needing 3 fits, the next does not.
    EXPECT_TRUE(m_dev->receive(f));
    EXPECT_FALSE(m_dev->receive(f));
}

TEST_F(E1000Test, ReceiveAddressFilters)
{
    setup_rx(RCTL_EN);
    hako::net::MacAddress const other { 0x52, 0x54, 0x00, 0x99, 0x99, 0x99 };
    hako::net::MacAddress const broadcast { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    hako::net::MacAddress const multicast { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
    EXPECT_TRUE(m_dev->receive(tcp_frame(other, 0)));
    EXPECT_TRUE(m_dev->receive(tcp_frame(broadcast, 0)));
    EXPECT_TRUE(m_dev->receive(tcp_frame(multicast, 0)));
    EXPECT_EQ(m_dev->stats().rx_filtered, 3u);
    EXPECT_EQ(r(RDH), 0u);
    // A second receive address, broadcast accept, the multicast table (MO 00: bits 47:36), promiscuous modes.
    w(RA + 8, 0x99005452);
    w(RA + 12, 0x9999 | RAH_AV);
    uint32_t const hash = ((uint32_t { multicast[5] } << 8 | multicast[4]) >> 4) & 0xfff;
    w(MTA + 4 * (hash >> 5), 1u << (hash & 31));
    w(RCTL, RCTL_EN | RCTL_BAM);
    EXPECT_TRUE(m_dev->receive(tcp_frame(other, 0)));
    EXPECT_TRUE(m_dev->receive(tcp_frame(broadcast, 0)));
    EXPECT_TRUE(m_dev->receive(tcp_frame(multicast, 0)));
    EXPECT_EQ(r(RDH), 3u);
    EXPECT_TRUE(m_dev->receive(tcp_frame({ 0x01, 0, 0x5e, 0, 0, 1 }, 0)));
    EXPECT_EQ(m_dev->stats().rx_filtered, 4u);
    w(RCTL, RCTL_EN | RCTL_MPE | RCTL_UPE);
    EXPECT_TRUE(m_dev->receive(tcp_frame({ 0x01, 0, 0x5e, 0, 0, 1 }, 0)));
    EXPECT_TRUE(m_dev->receive(tcp_frame({ 0x02, 1, 2, 3, 4, 5 }, 0)));
    EXPECT_EQ(r(RDH), 5u);
    EXPECT_EQ(r(STATS_START + 4 * STAT_BPRC), 1u);
    EXPECT_EQ(r(STATS_START + 4 * STAT_MPRC), 2u);
}

TEST_F(E1000Test, ReceiveVlanFilterAndStrip)
{
    setup_rx(RCTL_EN | RCTL_VFE);
    auto plain = tcp_frame(MAC, 20);
    std::vector<uint8_t> tagged(plain.begin(), plain.begin() + 12);
    tagged.insert(tagged.end(), { 0x81, 0x00, 0x20, 0x05 }); // priority 1, VLAN 5
    tagged.insert(tagged.end(), plain.begin() + 12, plain.end());
    EXPECT_TRUE(m_dev->receive(tagged));
    EXPECT_EQ(m_dev->stats().rx_filtered, 1u);
    w(VFTA, 1u << 5);
    w(CTRL, r(CTRL) | CTRL_VME);
    ASSERT_TRUE(m_dev->receive(tagged));
    EXPECT_EQ(rx_status(0) & RXD_STAT_VP, RXD_STAT_VP);
    EXPECT_EQ(rx_special(0), 0x2005u);
    EXPECT_EQ(rx_len(0), plain.size() + 4);
    EXPECT_TRUE(std::equal(plain.begin(), plain.end(), ram(RX_DATA)));
    // Untagged frames pass the VLAN filter.
    ASSERT_TRUE(m_dev->receive(plain));
    EXPECT_EQ(rx_status(1) & RXD_STAT_VP, 0);
}

TEST_F(E1000Test, ReceiveChecksumOffload)
{
    setup_rx();
    w(RXCSUM, RXCSUM_IPOFL | RXCSUM_TUOFL);
    auto f = tcp_frame(MAC, 100);
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_status(0) & (RXD_STAT_IPCS | RXD_STAT_TCPCS | RXD_STAT_IXSM), RXD_STAT_IPCS | RXD_STAT_TCPCS);
    EXPECT_EQ(rx_errors(0), 0);
    f[60] ^= 0xff;
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_errors(1), RXD_ERR_TCPE);
    f[60] ^= 0xff;
    f[22] ^= 1; // TTL: the IP header checksum breaks
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_errors(2) & RXD_ERR_IPE, RXD_ERR_IPE);
}

TEST_F(E1000Test, HostileReceiveRings)
{
    setup_rx();
    auto f = tcp_frame(MAC, 10);
    // A buffer outside RAM: the descriptor is written back with RXE and the ring moves on.
    put_le64(ram(RX_RING), RAM_SIZE - 8);
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(rx_errors(0) & RXD_ERR_RXE, RXD_ERR_RXE);
    EXPECT_EQ(r(RDH), 1u);
    // Descriptors outside RAM; a head beyond the ring; an empty ring.
    w(RDBAL, 0xfff00000);
    ASSERT_TRUE(m_dev->receive(f));
    EXPECT_EQ(r(RDH), 2u);
    w(RDH, 100);
    EXPECT_FALSE(m_dev->receive(f));
    w(RDLEN, 0);
    EXPECT_FALSE(m_dev->receive(f));
    auto const st = m_dev->stats();
    EXPECT_EQ(st.rx_bad_descriptors, 2u);
    EXPECT_EQ(st.bad_rings, 2u);
    // Oversized frames (no LPE) and runts are dropped.
    w(RDBAL, static_cast<uint32_t>(RX_RING));
    w(RDLEN, RING_ENTRIES * RX_DESC_SIZE);
    w(RDH, 2);
    EXPECT_TRUE(m_dev->receive(tcp_frame(MAC, 1600)));
    EXPECT_TRUE(m_dev->receive(std::vector<uint8_t>(10, 0xff)));
    EXPECT_EQ(m_dev->stats().rx_dropped_bad, 2u);
    EXPECT_EQ(r(RDH), 2u);
}

TEST_F(E1000Test, PciResetReturnsToPowerOn)
{
    setup_rx();
    w(IMS, ICR_RXT0);
    ASSERT_TRUE(m_dev->receive(tcp_frame(MAC, 10)));
    EXPECT_TRUE(m_irq->level);
    m_dev->reset();
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(r(RCTL), 0u);
    EXPECT_EQ(r(IMS), 0u);
    EXPECT_EQ(r(RDH), 0u);
    EXPECT_TRUE(m_dev->receive(tcp_frame(MAC, 10))); // dropped: receiver disabled
    EXPECT_EQ(m_dev->stats().rx_dropped_disabled, 1u);
}

TEST(E1000Rom, OptionRomBar)
{
    std::vector<uint8_t> buf(0x10000);
    auto mem = GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(buf) } }).value();
    E1000Options options;
    options.option_rom = { 0x55, 0xaa, 0x10, 0x42 };
    auto dev = E1000::create(mem, std::make_shared<FakeBackend>(), MAC, std::move(options)).value();
    EXPECT_EQ(dev->bar_kind(devices::pci::ROM_BAR), devices::pci::BarKind::Rom);
    EXPECT_EQ(dev->bar_size(devices::pci::ROM_BAR), 2048u);
    std::array<uint8_t, 4> b {};
    dev->bar_read(devices::pci::ROM_BAR, 2, b);
    EXPECT_EQ(b[0], 0x10);
    EXPECT_EQ(b[1], 0x42);
    EXPECT_EQ(b[2], 0xff);
}
