#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "devices/pci/msix.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio_pci.h"
#include "../pci/pci_test_util.h"

using namespace hako;
using namespace hako::devices;
using namespace hako::devices::virtio;
using memory::GuestAddr;
using memory::GuestMemory;
using pci::test::cfg_read;
using pci::test::cfg_write;

namespace {

constexpr size_t RAM_SIZE = 0x40000; // guest RAM at [0, 256 KiB)
constexpr uint64_t DESC = 0x1000;
constexpr uint64_t AVAIL = 0x3000;
constexpr uint64_t USED = 0x4000;
constexpr uint64_t DATA = 0x10000;
constexpr uint16_t QSIZE = 16;
constexpr int BAR = VirtioPciDevice::MODERN_BAR;
constexpr uint64_t F_VERSION_1 = uint64_t { 1 } << VIRTIO_F_VERSION_1;
constexpr uint64_t F_EVENT_IDX = uint64_t { 1 } << VIRTIO_F_EVENT_IDX;
constexpr uint64_t F_INDIRECT = uint64_t { 1 } << VIRTIO_F_INDIRECT_DESC;

/// Fills with a recognisable pattern: byte i of call n is (n * 31 + i) & 0xff.
struct FakeEntropy {
    size_t operator()(std::span<uint8_t> out)
    {
        for (size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<uint8_t>(calls * 31 + i);
        ++calls;
        requested += out.size();
        return out.size();
    }
    unsigned calls { 0 };
    size_t requested { 0 };
};

class RecordingRegistrar final : public NotifyRegistrar {
public:
    void add_notify(uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space) override
    {
        events.push_back({ true, queue, addr, len, space });
    }
    void remove_notify(uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space) override
    {
        events.push_back({ false, queue, addr, len, space });
    }
    void requeue_notify(uint16_t queue) override { requeued.push_back(queue); }
    std::vector<uint16_t> requeued;
    struct Event {
        bool add;
        uint16_t queue;
        uint64_t gpa;
        uint32_t len;
        NotifySpace space { NotifySpace::Memory };
        bool operator==(Event const&) const = default;
    };
    std::vector<Event> events;
};

class VirtioPciTest : public ::testing::Test {
protected:
    VirtioPciTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_entropy(std::make_shared<FakeEntropy>())
        , m_sink(std::make_shared<pci::test::RecordingSink>())
        , m_irq(std::make_shared<pci::test::FakeIrq>())
    {
        auto entropy = m_entropy;
        m_rng = std::make_shared<VirtioRng>([entropy](std::span<uint8_t> out) { return (*entropy)(out); });
        m_dev = VirtioPciDevice::create(m_mem, m_rng, m_sink).value();
        m_dev->set_intx_line(m_irq);
    }

    uint64_t common_read(uint16_t off, size_t size)
    {
        uint8_t buf[8] {};
        m_dev->bar_read(BAR, VirtioPciDevice::COMMON_CFG_OFFSET + off, std::span<uint8_t>(buf, size));
        return load_le(std::span<uint8_t const>(buf, size));
    }
    void common_write(uint16_t off, size_t size, uint64_t value)
    {
        uint8_t buf[8] {};
        store_le(std::span<uint8_t>(buf, size), value);
        m_dev->bar_write(BAR, VirtioPciDevice::COMMON_CFG_OFFSET + off, std::span<uint8_t const>(buf, size));
    }
    uint8_t status() { return static_cast<uint8_t>(common_read(VIRTIO_PCI_COMMON_STATUS, 1)); }
    void set_status(uint8_t s) { common_write(VIRTIO_PCI_COMMON_STATUS, 1, s); }
    uint8_t read_isr()
    {
        uint8_t v = 0;
        m_dev->bar_read(BAR, VirtioPciDevice::ISR_CFG_OFFSET, std::span<uint8_t>(&v, 1));
        return v;
    }
    void notify(uint16_t queue)
    {
        uint8_t buf[2] {};
        put_le16(buf, queue);
        m_dev->bar_write(BAR, VirtioPciDevice::NOTIFY_CFG_OFFSET + uint64_t { queue } * VirtioPciDevice::NOTIFY_OFF_MULTIPLIER, buf);
    }

    /// ACKNOWLEDGE, DRIVER, the driver features, FEATURES_OK. \return whether FEATURES_OK stuck
    bool negotiate(uint64_t features)
    {
        set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
        set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        common_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
        common_write(VIRTIO_PCI_COMMON_GF, 4, features & 0xffffffff);
        common_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
        common_write(VIRTIO_PCI_COMMON_GF, 4, features >> 32);
        set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
        return status() & VIRTIO_CONFIG_S_FEATURES_OK;
    }
    void setup_queue(uint16_t size = QSIZE, uint64_t desc = DESC, uint64_t avail = AVAIL, uint64_t used = USED)
    {
        common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
        common_write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, desc & 0xffffffff);
        common_write(VIRTIO_PCI_COMMON_Q_DESCHI, 4, desc >> 32);
        common_write(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, avail & 0xffffffff);
        common_write(VIRTIO_PCI_COMMON_Q_AVAILHI, 4, avail >> 32);
        common_write(VIRTIO_PCI_COMMON_Q_USEDLO, 4, used & 0xffffffff);
        common_write(VIRTIO_PCI_COMMON_Q_USEDHI, 4, used >> 32);
        common_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    }
    void driver_ok()
    {
        set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK
            | VIRTIO_CONFIG_S_DRIVER_OK);
    }
    /// The whole Linux-style bring-up of the rng with one queue of QSIZE entries.
    void bring_up(uint64_t features = F_VERSION_1)
    {
        ASSERT_TRUE(negotiate(features));
        setup_queue();
        driver_ok();
        ASSERT_TRUE(m_dev->active());
    }

    // Driver side of the ring.
    void put16(uint64_t at, uint16_t v) { put_le16(&m_buf[at], v); }
    uint16_t get16(uint64_t at) const { return get_le16(&m_buf[at]); }
    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0)
    {
        VirtqDesc d;
        d.addr.set(addr);
        d.len.set(len);
        d.flags.set(flags);
        d.next.set(next);
        ASSERT_TRUE(m_mem.write_obj(GuestAddr(DESC + 16u * i), d));
    }
    void publish(uint16_t head)
    {
        put16(AVAIL + virtq_avail_entry_offset(m_avail_idx % QSIZE), head);
        ++m_avail_idx;
        put16(AVAIL + VIRTQ_AVAIL_IDX_OFFSET, m_avail_idx);
    }
    uint16_t used_idx() const { return get16(USED + VIRTQ_USED_IDX_OFFSET); }
    std::pair<uint32_t, uint32_t> used_elem(uint16_t idx) const
    {
        uint64_t const at = USED + virtq_used_elem_offset(idx % QSIZE);
        return { get_le32(&m_buf[at]), get_le32(&m_buf[at + 4]) };
    }

    /// Walks the capability list: vendor capabilities by cfg_type (offset of each).
    std::map<uint8_t, uint16_t> vendor_caps()
    {
        std::map<uint8_t, uint16_t> caps;
        auto at = static_cast<uint16_t>(cfg_read(*m_dev, pci::PCI_CAPABILITY_LIST, 1));
        for (int guard = 0; at != 0 && guard < 48; ++guard) {
            if (cfg_read(*m_dev, at, 1) == PCI_CAP_ID_VNDR)
                caps[static_cast<uint8_t>(cfg_read(*m_dev, at + VIRTIO_PCI_CAP_CFG_TYPE, 1))] = at;
            at = static_cast<uint16_t>(cfg_read(*m_dev, at + 1, 1));
        }
        return caps;
    }
    void enable_msix()
    {
        uint16_t const cap = m_dev->msix().offset();
        cfg_write(*m_dev, cap + pci::MsixCapability::PCI_MSIX_FLAGS, 2, pci::MsixCapability::PCI_MSIX_FLAGS_ENABLE);
    }
    void program_vector(uint16_t vector, uint32_t addr, uint32_t data)
    {
        auto w = [&](uint32_t reg, uint32_t v) {
            uint8_t buf[4];
            put_le32(buf, v);
            m_dev->bar_write(VirtioPciDevice::MSIX_BAR, uint64_t { vector } * 16 + reg, buf);
        };
        w(pci::MsixCapability::PCI_MSIX_ENTRY_LOWER_ADDR, addr);
        w(pci::MsixCapability::PCI_MSIX_ENTRY_UPPER_ADDR, 0);
        w(pci::MsixCapability::PCI_MSIX_ENTRY_DATA, data);
        w(pci::MsixCapability::PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    std::shared_ptr<FakeEntropy> m_entropy;
    std::shared_ptr<pci::test::RecordingSink> m_sink;
    std::shared_ptr<pci::test::FakeIrq> m_irq;
    std::shared_ptr<VirtioRng> m_rng;
    std::shared_ptr<VirtioPciDevice> m_dev;
    uint16_t m_avail_idx { 0 };
};

} // namespace

TEST_F(VirtioPciTest, Identity)
{
    // Transitional by default (4.1.2.1): legacy device ID, revision 0, the device type as subsystem ID.
    EXPECT_TRUE(m_dev->transitional());
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_VENDOR_ID, 2), 0x1af4u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_DEVICE_ID, 2), 0x1005u); // entropy source
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_REVISION_ID, 1), 0u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_REVISION_ID, 4) >> 8, 0xff0000u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_SUBSYSTEM_ID, 2), uint32_t { VIRTIO_ID_RNG });
    EXPECT_EQ(m_dev->bar_kind(VirtioPciDevice::LEGACY_BAR), pci::BarKind::Io);
    EXPECT_EQ(m_dev->bar_size(VirtioPciDevice::LEGACY_BAR), 0x20u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_BASE_ADDRESS_0, 4), pci::PCI_BASE_ADDRESS_SPACE_IO);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_INTERRUPT_PIN, 1), 1u);
    EXPECT_EQ(m_dev->bar_kind(BAR), pci::BarKind::Mem64);
    EXPECT_EQ(m_dev->bar_size(BAR), VirtioPciDevice::MODERN_BAR_SIZE);
    EXPECT_EQ(m_dev->bar_kind(VirtioPciDevice::MSIX_BAR), pci::BarKind::Mem32);
    EXPECT_EQ(VirtioPciDevice::class_code_for(VIRTIO_ID_NET), 0x020000u);
}

TEST_F(VirtioPciTest, CapabilityListDescribesTheModernLayout)
{
    EXPECT_TRUE(cfg_read(*m_dev, pci::PCI_STATUS, 2) & pci::PCI_STATUS_CAP_LIST);
    auto caps = vendor_caps();
    ASSERT_EQ(caps.size(), 4u); // common, notify, ISR, PCI cfg; no device cfg: the rng has no configuration
    EXPECT_EQ(caps.count(VIRTIO_PCI_CAP_DEVICE_CFG), 0u);
    struct Want {
        uint8_t type;
        uint32_t offset;
        uint32_t length;
        uint32_t cap_len;
    };
    for (auto w : { Want { VIRTIO_PCI_CAP_COMMON_CFG, 0x0000, 0x38, 16 }, Want { VIRTIO_PCI_CAP_ISR_CFG, 0x1000, 1, 16 },
             Want { VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000, 4, 20 } }) {
        ASSERT_EQ(caps.count(w.type), 1u) << int(w.type);
        uint16_t const c = caps[w.type];
        EXPECT_EQ(cfg_read(*m_dev, c + VIRTIO_PCI_CAP_LEN, 1), w.cap_len);
        EXPECT_EQ(cfg_read(*m_dev, c + VIRTIO_PCI_CAP_BAR, 1), 4u);
        EXPECT_EQ(cfg_read(*m_dev, c + VIRTIO_PCI_CAP_OFFSET, 4), w.offset);
        EXPECT_EQ(cfg_read(*m_dev, c + VIRTIO_PCI_CAP_LENGTH, 4), w.length);
        EXPECT_EQ(c % 4, 0);
    }
    EXPECT_EQ(cfg_read(*m_dev, caps[VIRTIO_PCI_CAP_NOTIFY_CFG] + VIRTIO_PCI_NOTIFY_CAP_MULT, 4), 4u);
    EXPECT_EQ(cfg_read(*m_dev, caps[VIRTIO_PCI_CAP_PCI_CFG] + VIRTIO_PCI_CAP_LEN, 1), 20u);
    // The capability fields are read-only, except in the PCI cfg access capability.
    cfg_write(*m_dev, caps[VIRTIO_PCI_CAP_COMMON_CFG] + VIRTIO_PCI_CAP_OFFSET, 4, 0x2000);
    EXPECT_EQ(cfg_read(*m_dev, caps[VIRTIO_PCI_CAP_COMMON_CFG] + VIRTIO_PCI_CAP_OFFSET, 4), 0u);
    // MSI-X follows in the same list: 2 vectors (config + 1 queue), table and PBA in BAR 1.
    uint16_t const msix = m_dev->msix().offset();
    EXPECT_EQ(cfg_read(*m_dev, msix, 1), pci::PCI_CAP_ID_MSIX);
    EXPECT_EQ(cfg_read(*m_dev, msix + 2, 2) & 0x7ff, 1u);
    EXPECT_EQ(cfg_read(*m_dev, msix + 4, 4), 1u);          // table at BAR 1 + 0
    EXPECT_EQ(cfg_read(*m_dev, msix + 8, 4), 0x800u | 1u); // PBA at BAR 1 + 0x800
}

TEST_F(VirtioPciTest, DeviceFeaturesOfferVersion1AndRingFeatures)
{
    common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_DF, 4), (F_INDIRECT | F_EVENT_IDX) & 0xffffffff);
    common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_DF, 4), 1u); // VERSION_1 is bit 32
    common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 7);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_DF, 4), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 1u);
}

TEST_F(VirtioPciTest, FeaturesOkRefusedForUnofferedBitsOrWithoutVersion1)
{
    EXPECT_FALSE(negotiate(F_VERSION_1 | (uint64_t { 1 } << 5))); // bit 5 is not offered
    EXPECT_EQ(status(), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    EXPECT_EQ(m_dev->stats().features_refused, 1u);
    // DRIVER_OK cannot follow a refused FEATURES_OK (which is refused again).
    driver_ok();
    EXPECT_FALSE(status() & VIRTIO_CONFIG_S_DRIVER_OK);
    EXPECT_FALSE(m_dev->active());
    EXPECT_EQ(m_dev->stats().features_refused, 2u);

    set_status(0);
    EXPECT_FALSE(negotiate(F_EVENT_IDX)); // a legacy driver: no VERSION_1
    EXPECT_EQ(m_dev->stats().features_refused, 3u);

    set_status(0);
    EXPECT_TRUE(negotiate(F_VERSION_1 | F_EVENT_IDX));
    EXPECT_EQ(m_dev->negotiated_features(), F_VERSION_1 | F_EVENT_IDX);
    // Features are frozen after FEATURES_OK.
    common_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    common_write(VIRTIO_PCI_COMMON_GF, 4, 0);
    EXPECT_EQ(m_dev->negotiated_features(), F_VERSION_1 | F_EVENT_IDX);
    EXPECT_GE(m_dev->stats().rejected_writes, 1u);
}

TEST_F(VirtioPciTest, StatusBitsCannotBeClearedWithoutReset)
{
    ASSERT_TRUE(negotiate(F_VERSION_1));
    set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    EXPECT_EQ(status(), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    // The driver cannot set NEEDS_RESET either.
    set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_NEEDS_RESET);
    EXPECT_FALSE(status() & VIRTIO_CONFIG_S_NEEDS_RESET);
}

TEST_F(VirtioPciTest, QueueSizeMustBeAPowerOfTwoWithinMax)
{
    ASSERT_TRUE(negotiate(F_VERSION_1));
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), VirtioRng::QUEUE_SIZE);
    for (unsigned bad : { 0u, 3u, 100u, 255u, 512u, 0xffffu }) {
        common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, bad);
        EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), VirtioRng::QUEUE_SIZE) << bad;
    }
    common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 16u);
    EXPECT_EQ(m_dev->stats().rejected_writes, 6u);
    // A queue that does not exist reads size 0, and its registers cannot be written.
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0u);
    common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
}

TEST_F(VirtioPciTest, QueueSetupReadsBackAndFreezesWhenEnabled)
{
    ASSERT_TRUE(negotiate(F_VERSION_1));
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_write(VIRTIO_PCI_COMMON_Q_DESCLO, 8, 0x1234'0000'5000ull); // a qword access works too
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x5000u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCHI, 4), 0x1234u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0x1234'0000'5000ull);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_NOFF, 2), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);

    setup_queue();
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCLO, 4), DESC);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_AVAILLO, 4), AVAIL);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_USEDLO, 4), USED);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
    auto const rejected = m_dev->stats().rejected_writes;
    common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
    common_write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x8000);
    common_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCLO, 4), DESC);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1u);
    EXPECT_EQ(m_dev->stats().rejected_writes, rejected + 3);
}

TEST_F(VirtioPciTest, InvalidQueueAddressSetsNeedsResetNotACrash)
{
    ASSERT_TRUE(negotiate(F_VERSION_1));
    setup_queue(QSIZE, RAM_SIZE - 16); // descriptor table runs off the end of RAM
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
    EXPECT_TRUE(status() & VIRTIO_CONFIG_S_NEEDS_RESET);
    driver_ok();
    EXPECT_FALSE(m_dev->active()); // never activated while NEEDS_RESET
    set_status(0);
    EXPECT_EQ(status(), 0u);
    bring_up();
}

TEST_F(VirtioPciTest, RngRequestOverIntx)
{
    bring_up();
    set_desc(0, DATA, 100, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, DATA + 0x1000, 50, VIRTQ_DESC_F_WRITE);
    publish(0);
    notify(0);

    ASSERT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_elem(0), std::make_pair(0u, 150u));
    EXPECT_EQ(m_entropy->calls, 1u);
    for (size_t i = 0; i < 150; ++i) {
        uint64_t const at = i < 100 ? DATA + i : DATA + 0x1000 + (i - 100);
        ASSERT_EQ(m_buf[at], static_cast<uint8_t>(i)) << i;
    }
    EXPECT_EQ(m_buf[DATA + 100], 0u); // nothing past the buffer
    EXPECT_EQ(m_buf[DATA + 0x1000 + 50], 0u);

    // No MSI-X: the ISR queue bit and INTx, until the driver reads the ISR.
    EXPECT_TRUE(m_irq->level);
    EXPECT_TRUE(cfg_read(*m_dev, pci::PCI_STATUS, 2) & pci::PCI_STATUS_INTERRUPT);
    EXPECT_EQ(read_isr(), VIRTIO_PCI_ISR_QUEUE);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(read_isr(), 0u);
    EXPECT_TRUE(m_sink->messages.empty());
    EXPECT_EQ(m_rng->stats().requests, 1u);
    EXPECT_EQ(m_rng->stats().bytes, 150u);
}

TEST_F(VirtioPciTest, NoInterruptWhenTheDriverSuppressesIt)
{
    bring_up();
    put16(AVAIL + VIRTQ_AVAIL_FLAGS_OFFSET, VIRTQ_AVAIL_F_NO_INTERRUPT);
    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    notify(0);
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(m_dev->isr_status(), 0u);
}

TEST_F(VirtioPciTest, RngRequestOverMsix)
{
    bring_up();
    enable_msix();
    program_vector(0, 0xfee00000, 0x30);
    program_vector(1, 0xfee01000, 0x41);
    common_write(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_MSIX, 2), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 1u);

    set_desc(0, DATA, 16, VIRTQ_DESC_F_WRITE);
    publish(0);
    notify(0);
    ASSERT_EQ(m_sink->messages.size(), 1u);
    EXPECT_EQ(m_sink->messages[0], std::make_pair(uint64_t { 0xfee01000 }, uint32_t { 0x41 }));
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(m_dev->isr_status(), 0u);

    // NO_VECTOR: no interrupt at all while MSI-X is on.
    common_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
    set_desc(1, DATA, 16, VIRTQ_DESC_F_WRITE);
    publish(1);
    notify(0);
    EXPECT_EQ(used_idx(), 2u);
    EXPECT_EQ(m_sink->messages.size(), 1u);
    EXPECT_FALSE(m_irq->level);
}

TEST_F(VirtioPciTest, VectorsBeyondTheTableReadBackAsNoVector)
{
    common_write(VIRTIO_PCI_COMMON_MSIX, 2, 2); // vectors 0 and 1 exist
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 1u);
    common_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0x7ff);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
}

TEST_F(VirtioPciTest, ResetClearsEverything)
{
    bring_up(F_VERSION_1 | F_EVENT_IDX);
    common_write(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    common_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    put16(AVAIL + virtq_used_event_offset(QSIZE), 0); // interrupt after the first used entry
    notify(0);
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_TRUE(m_irq->level);

    set_status(0);
    EXPECT_EQ(status(), 0u);
    EXPECT_FALSE(m_dev->active());
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(m_dev->isr_status(), 0u);
    EXPECT_EQ(m_dev->negotiated_features(), 0u);
    common_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_GF, 4), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), VirtioRng::QUEUE_SIZE);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0u);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_USEDLO, 8), 0u);

    // The device is no longer live: a notify does nothing.
    publish(0);
    notify(0);
    EXPECT_EQ(used_idx(), 1u);
    EXPECT_EQ(m_entropy->calls, 1u);

    // And it comes up again from scratch, with the ring indices back at 0.
    std::fill(m_buf.begin(), m_buf.end(), uint8_t { 0 });
    m_avail_idx = 0;
    bring_up();
    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    notify(0);
    EXPECT_EQ(used_idx(), 1u);
}

TEST_F(VirtioPciTest, BrokenQueueSetsNeedsResetAndSignalsConfigChange)
{
    bring_up();
    put16(AVAIL + VIRTQ_AVAIL_IDX_OFFSET, QSIZE + 1); // more than Queue Size ahead
    notify(0);
    EXPECT_TRUE(status() & VIRTIO_CONFIG_S_NEEDS_RESET);
    EXPECT_EQ(m_dev->stats().needs_reset, 1u);
    EXPECT_EQ(used_idx(), 0u);
    EXPECT_EQ(m_entropy->calls, 0u);
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(read_isr(), VIRTIO_PCI_ISR_CONFIG);
    // Stays broken on further notifies, without more interrupts.
    notify(0);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(m_dev->stats().needs_reset, 1u);

    set_status(0);
    EXPECT_EQ(status(), 0u);
}

TEST_F(VirtioPciTest, BadChainsAreReturnedEmptyAndCounted)
{
    bring_up();
    set_desc(0, DATA, 8); // device-readable only: nothing to fill
    publish(0);
    set_desc(1, RAM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE); // runs off RAM: rejected by the queue
    publish(1);
    set_desc(2, DATA, 4, VIRTQ_DESC_F_WRITE);
    publish(2);
    notify(0);
    ASSERT_EQ(used_idx(), 3u);
    EXPECT_EQ(used_elem(0), std::make_pair(0u, 0u));
    EXPECT_EQ(used_elem(1), std::make_pair(1u, 0u));
    EXPECT_EQ(used_elem(2), std::make_pair(2u, 4u));
    EXPECT_EQ(m_rng->stats().bad_chains, 2u);
    EXPECT_FALSE(status() & VIRTIO_CONFIG_S_NEEDS_RESET);
}

TEST_F(VirtioPciTest, LargeRequestsAreCapped)
{
    bring_up();
    set_desc(0, DATA, 0x20000, VIRTQ_DESC_F_WRITE); // 128 KiB
    publish(0);
    notify(0);
    ASSERT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_elem(0).second, VirtioRng::MAX_REQUEST_BYTES);
    EXPECT_EQ(m_entropy->requested, VirtioRng::MAX_REQUEST_BYTES);
    EXPECT_EQ(m_rng->stats().capped, 1u);
}

TEST_F(VirtioPciTest, BadAccessesReadAllOnesAndAreCounted)
{
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_STATUS, 4), 0xffffffffu);  // wrong width
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_NUMQ + 1, 1), 0xffu);      // middle of a field
    EXPECT_EQ(common_read(0x40, 4), 0xffffffffu);                      // beyond the structure
    uint8_t q[2] {};
    m_dev->bar_read(BAR, VirtioPciDevice::NOTIFY_CFG_OFFSET, q);     // notify is write-only
    m_dev->bar_write(BAR, VirtioPciDevice::ISR_CFG_OFFSET, std::span<uint8_t const>(q, 1));
    uint8_t big[16] {};
    m_dev->bar_read(BAR, 0, big);                                      // too wide
    m_dev->bar_read(BAR, VirtioPciDevice::REGION_SIZE - 2, std::span<uint8_t>(big, 4)); // crosses regions
    m_dev->bar_read(2, 0, std::span<uint8_t>(big, 4));                 // no such BAR
    EXPECT_EQ(m_dev->stats().bad_accesses, 8u);
    // Device config: the rng has none.
    uint8_t c = 0;
    m_dev->bar_read(BAR, VirtioPciDevice::DEVICE_CFG_OFFSET, std::span<uint8_t>(&c, 1));
    EXPECT_EQ(c, 0xffu);
    // Read-only fields.
    common_write(VIRTIO_PCI_COMMON_NUMQ, 2, 5);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 1u);
    // A notify of a queue that does not exist.
    notify(3);
    EXPECT_EQ(m_dev->stats().bad_notifies, 1u);
}

TEST_F(VirtioPciTest, NotifyRegistrarFollowsTheBar)
{
    auto reg = std::make_shared<RecordingRegistrar>();
    m_dev->set_notify_registrar(reg);
    EXPECT_TRUE(reg->events.empty()); // BAR not placed yet
    uint16_t const bar_reg = pci::PCI_BASE_ADDRESS_0 + 4 * BAR;
    cfg_write(*m_dev, bar_reg, 4, 0xe0000000);
    cfg_write(*m_dev, bar_reg + 4, 4, 0x1);
    EXPECT_TRUE(reg->events.empty()); // memory decoding off
    EXPECT_FALSE(m_dev->notify_address(0));
    cfg_write(*m_dev, pci::PCI_COMMAND, 2, pci::PCI_COMMAND_MEMORY);
    using E = RecordingRegistrar::Event;
    ASSERT_EQ(reg->events.size(), 1u); // I/O decoding is off: no legacy port
    EXPECT_EQ(reg->events[0], (E { true, 0, 0x1'e000'3000ull, 2 }));
    EXPECT_EQ(m_dev->notify_address(0), 0x1'e000'3000ull);
    // BAR sizing takes it away; a new address puts it back.
    cfg_write(*m_dev, bar_reg, 4, 0xffffffff);
    ASSERT_EQ(reg->events.size(), 2u);
    EXPECT_EQ(reg->events[1], (E { false, 0, 0x1'e000'3000ull, 2 }));
    cfg_write(*m_dev, bar_reg, 4, 0xd0000000);
    cfg_write(*m_dev, bar_reg + 4, 4, 0);
    ASSERT_GE(reg->events.size(), 3u);
    EXPECT_EQ(reg->events.back(), (E { true, 0, 0xd000'3000ull, 2 }));
    auto const n = reg->events.size();
    m_dev.reset(); // destroying the transport removes it
    ASSERT_EQ(reg->events.size(), n + 1);
    EXPECT_EQ(reg->events.back(), (E { false, 0, 0xd000'3000ull, 2 }));
}

TEST_F(VirtioPciTest, ProcessNotifyIsTheIoeventfdPath)
{
    bring_up();
    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    m_dev->process_notify(0);
    EXPECT_EQ(used_idx(), 1u);
    m_dev->process_notify(1);
    EXPECT_EQ(m_dev->stats().bad_notifies, 1u);
}

TEST_F(VirtioPciTest, PciCfgCapabilityReachesTheBar)
{
    uint16_t const cap = m_dev->pci_cfg_cap_offset();
    ASSERT_NE(cap, 0);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_BAR, 1, BAR);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_LENGTH, 4, 2);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_NUMQ);
    EXPECT_EQ(cfg_read(*m_dev, cap + VIRTIO_PCI_CFG_CAP_DATA, 2), 1u);

    // A write through the window: device status.
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_LENGTH, 4, 1);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_STATUS);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CFG_CAP_DATA, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    EXPECT_EQ(status(), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    EXPECT_EQ(cfg_read(*m_dev, cap + VIRTIO_PCI_CFG_CAP_DATA, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE);

    // A misaligned window is refused.
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_LENGTH, 4, 4);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_OFFSET, 4, 2);
    auto const bad = m_dev->stats().bad_accesses;
    cfg_write(*m_dev, cap + VIRTIO_PCI_CFG_CAP_DATA, 4, 0);
    EXPECT_EQ(m_dev->stats().bad_accesses, bad + 1);
    EXPECT_EQ(status(), VIRTIO_CONFIG_S_ACKNOWLEDGE);
}

TEST_F(VirtioPciTest, CreateRejectsBadDevices)
{
    struct NoQueues final : VirtioDevice {
        std::string_view name() const override { return "none"; }
        uint16_t device_type() const override { return 42; }
        uint64_t device_features() const override { return 0; }
        uint16_t num_queues() const override { return 0; }
        uint16_t max_queue_size(uint16_t) const override { return 8; }
        uint32_t config_size() const override { return 0; }
        void read_config(uint32_t, std::span<uint8_t>) override { }
        void write_config(uint32_t, std::span<uint8_t const>) override { }
        Result<void> activate(ActivateContext const&) override { return ok(); }
        void queue_notify(uint16_t) override { }
        void reset() override { }
    };
    EXPECT_FALSE(VirtioPciDevice::create(m_mem, std::make_shared<NoQueues>(), m_sink));
    EXPECT_FALSE(VirtioPciDevice::create(m_mem, nullptr, m_sink));
    EXPECT_FALSE(VirtioPciDevice::create(m_mem, m_rng, nullptr));
}

TEST_F(VirtioPciTest, OptionRomThroughTheExpansionRomBar)
{
    EXPECT_EQ(m_dev->bar_kind(pci::ROM_BAR), pci::BarKind::Unused); // none by default
    VirtioPciDevice::Options options;
    options.option_rom = std::vector<uint8_t>(3000, 0xab);
    options.option_rom[0] = 0x55;
    options.option_rom[1] = 0xaa;
    auto dev = VirtioPciDevice::create(m_mem, std::make_shared<VirtioRng>([](std::span<uint8_t>) { return size_t { 0 }; }),
        m_sink, options).value();
    EXPECT_EQ(dev->bar_kind(pci::ROM_BAR), pci::BarKind::Rom);
    EXPECT_EQ(dev->bar_size(pci::ROM_BAR), 4096u); // 3000 bytes rounded up to a power of two
    cfg_write(*dev, pci::PCI_ROM_ADDRESS, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(*dev, pci::PCI_ROM_ADDRESS, 4) & 0xfffff800u, 0xfffff000u);
    uint8_t buf[4];
    dev->bar_read(pci::ROM_BAR, 0, buf);
    EXPECT_EQ(buf[0], 0x55);
    EXPECT_EQ(buf[1], 0xaa);
    EXPECT_EQ(buf[2], 0xab);
    dev->bar_read(pci::ROM_BAR, 2998, buf); // the last two bytes, then past the image
    EXPECT_EQ(buf[1], 0xab);
    EXPECT_EQ(buf[2], 0xff);
    EXPECT_EQ(buf[3], 0xff);
}

TEST_F(VirtioPciTest, NarrowReadsOfCommonConfigFieldsGetTheLowBytes)
{
    // iPXE reads device_feature with 16 bits; QEMU answers such reads with the field's low bytes.
    common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    uint64_t const high = common_read(VIRTIO_PCI_COMMON_DF, 4);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_DF, 2), high & 0xffff);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_DF, 1), high & 0xff);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_NUMQ, 1), 1u);
    // Wider than the field is still refused and counted.
    uint64_t const bad = m_dev->stats().bad_accesses;
    common_read(VIRTIO_PCI_COMMON_NUMQ, 4);
    EXPECT_EQ(m_dev->stats().bad_accesses, bad + 1);
}

TEST_F(VirtioPciTest, ADeviceStoppedAtItsBudgetIsRequeuedThroughTheRegistrar)
{
    auto reg = std::make_shared<RecordingRegistrar>();
    m_dev->set_notify_registrar(reg);
    bring_up();
    // A whole queue of requests: virtio-rng serves one queue's worth per notify, then asks to be run again (with
    // EVENT_IDX the driver would not notify for what is left).
    for (uint16_t i = 0; i < QSIZE; ++i) {
        set_desc(i, DATA + 0x100u * i, 16, VIRTQ_DESC_F_WRITE);
        publish(i);
    }
    notify(0);
    EXPECT_EQ(used_idx(), QSIZE);
    EXPECT_EQ(reg->requeued, std::vector<uint16_t> { 0 });
    EXPECT_EQ(m_rng->stats().budget_exhausted, 1u);
}
