// The legacy (virtio 0.9.5) interface of a transitional virtio-pci device: BAR 0 driven as SeaBIOS, iPXE and
// Linux's virtio_pci_legacy.c do, with a fake device behind it.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/checked.h"
#include "devices/pci/msix.h"
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

constexpr size_t RAM_SIZE = 0x40000;
constexpr uint16_t FAKE_QSIZE = 64;
constexpr uint32_t PFN = 0x20; // queue 0 at 0x20000
constexpr uint64_t DESC = uint64_t { PFN } << 12;
constexpr uint64_t AVAIL = DESC + 16 * FAKE_QSIZE;
constexpr uint64_t USED = DESC + 0x1000; // next 4 KiB boundary after 16 * 64 + 6 + 2 * 64 bytes
constexpr uint64_t DATA = 0x10000;
constexpr int LBAR = VirtioPciDevice::LEGACY_BAR;
constexpr uint64_t F_CSUM = 1;      // device bit 0
constexpr uint64_t F_MAC = 1 << 5;  // device bit 5
constexpr uint64_t F_BIT3 = 1 << 3; // not offered
constexpr uint64_t F_EVENT_IDX = uint64_t { 1 } << VIRTIO_F_EVENT_IDX;
constexpr uint64_t F_INDIRECT = uint64_t { 1 } << VIRTIO_F_INDIRECT_DESC;
constexpr uint64_t F_VERSION_1 = uint64_t { 1 } << VIRTIO_F_VERSION_1;

static_assert(USED == align_up(AVAIL + 6 + 2 * FAKE_QSIZE, 4096));

/// A device with two queues of 64 and 8 bytes of configuration. A notify returns every chain with "done" written
/// to it.
class FakeDevice final : public VirtioDevice {
public:
    explicit FakeDevice(uint16_t type = VIRTIO_ID_NET) : m_type(type) { }
    std::string_view name() const override { return "fake"; }
    uint16_t device_type() const override { return m_type; }
    uint64_t device_features() const override { return F_CSUM | F_MAC; }
    uint16_t num_queues() const override { return 2; }
    uint16_t max_queue_size(uint16_t) const override { return FAKE_QSIZE; }
    uint32_t config_size() const override { return 8; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override
    {
        std::lock_guard lock(m_lock);
        std::memcpy(data.data(), config.data() + offset, data.size());
    }
    void write_config(uint32_t offset, std::span<uint8_t const> data) override
    {
        std::lock_guard lock(m_lock);
        std::memcpy(config.data() + offset, data.data(), data.size());
    }
    Result<void> activate(ActivateContext const& context) override
    {
        std::lock_guard lock(m_lock);
        m_queues = context.queues;
        interrupt = context.interrupt;
        features = context.features;
        ++activations;
        return ok();
    }
    void queue_notify(uint16_t queue) override
    {
        std::lock_guard lock(m_lock);
        if (!interrupt)
            return;
        Queue& q = m_queues[queue];
        while (auto chain = q.pop_chain()) {
            static constexpr std::array<uint8_t, 4> DONE { 'd', 'o', 'n', 'e' };
            auto const n = static_cast<uint32_t>(chain->write_to_chain(DONE, 0));
            q.add_used(chain->head(), n);
        }
        if (q.should_notify())
            interrupt->signal_used_queue(queue);
    }
    void reset() override
    {
        std::lock_guard lock(m_lock);
        m_queues = {};
        interrupt = nullptr;
        ++resets;
    }

    std::array<uint8_t, 8> config { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x01, 0x00 };
    VirtioInterrupt* interrupt { nullptr };
    uint64_t features { 0 };
    unsigned activations { 0 };
    unsigned resets { 0 };

private:
    std::mutex m_lock;
    uint16_t m_type;
    std::span<Queue> m_queues;
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
    struct Event {
        bool add;
        uint16_t queue;
        uint64_t addr;
        uint32_t len;
        NotifySpace space;
        bool operator==(Event const&) const = default;
    };
    std::vector<Event> events;
};

class VirtioPciLegacyTest : public ::testing::Test {
protected:
    VirtioPciLegacyTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_fake(std::make_shared<FakeDevice>())
        , m_sink(std::make_shared<pci::test::RecordingSink>())
        , m_irq(std::make_shared<pci::test::FakeIrq>())
    {
        VirtioPciDevice::Options options;
        options.offer_indirect_desc = true;
        options.offer_event_idx = true;
        m_dev = VirtioPciDevice::create(m_mem, m_fake, m_sink, options).value();
        m_dev->set_intx_line(m_irq);
    }

    uint64_t lread(uint64_t off, size_t size)
    {
        uint8_t buf[8] {};
        m_dev->bar_read(LBAR, off, std::span<uint8_t>(buf, size));
        return load_le(std::span<uint8_t const>(buf, size));
    }
    void lwrite(uint64_t off, size_t size, uint64_t value)
    {
        uint8_t buf[8] {};
        store_le(std::span<uint8_t>(buf, size), value);
        m_dev->bar_write(LBAR, off, std::span<uint8_t const>(buf, size));
    }
    uint8_t lstatus() { return static_cast<uint8_t>(lread(VIRTIO_PCI_STATUS, 1)); }
    void lset_status(uint8_t s) { lwrite(VIRTIO_PCI_STATUS, 1, s); }
    uint64_t common_read(uint16_t off, size_t size)
    {
        uint8_t buf[8] {};
        m_dev->bar_read(VirtioPciDevice::MODERN_BAR, VirtioPciDevice::COMMON_CFG_OFFSET + off, std::span<uint8_t>(buf, size));
        return load_le(std::span<uint8_t const>(buf, size));
    }
    void common_write(uint16_t off, size_t size, uint64_t value)
    {
        uint8_t buf[8] {};
        store_le(std::span<uint8_t>(buf, size), value);
        m_dev->bar_write(VirtioPciDevice::MODERN_BAR, VirtioPciDevice::COMMON_CFG_OFFSET + off, std::span<uint8_t const>(buf, size));
    }

    /// Linux virtio_pci_legacy / SeaBIOS order: reset, ACKNOWLEDGE, DRIVER, features, queue 0 by PFN.
    void legacy_setup(uint64_t features, uint32_t pfn = PFN)
    {
        lset_status(0);
        lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
        lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        lwrite(VIRTIO_PCI_GUEST_FEATURES, 4, features);
        lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 0);
        lwrite(VIRTIO_PCI_QUEUE_PFN, 4, pfn);
    }
    void legacy_driver_ok()
    {
        lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
    }

    // Driver side of queue 0 in the legacy layout.
    void put16(uint64_t at, uint16_t v) { put_le16(&m_buf[at], v); }
    uint16_t get16(uint64_t at) const { return get_le16(&m_buf[at]); }
    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags)
    {
        VirtqDesc d;
        d.addr.set(addr);
        d.len.set(len);
        d.flags.set(flags);
        d.next.set(0);
        ASSERT_TRUE(m_mem.write_obj(GuestAddr(DESC + 16u * i), d));
    }
    void publish(uint16_t head)
    {
        put16(AVAIL + virtq_avail_entry_offset(m_avail_idx % FAKE_QSIZE), head);
        ++m_avail_idx;
        put16(AVAIL + VIRTQ_AVAIL_IDX_OFFSET, m_avail_idx);
    }
    uint16_t used_idx() const { return get16(USED + VIRTQ_USED_IDX_OFFSET); }
    std::pair<uint32_t, uint32_t> used_elem(uint16_t idx) const
    {
        uint64_t const at = USED + virtq_used_elem_offset(idx % FAKE_QSIZE);
        return { get_le32(&m_buf[at]), get_le32(&m_buf[at + 4]) };
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
    std::shared_ptr<FakeDevice> m_fake;
    std::shared_ptr<pci::test::RecordingSink> m_sink;
    std::shared_ptr<pci::test::FakeIrq> m_irq;
    std::shared_ptr<VirtioPciDevice> m_dev;
    uint16_t m_avail_idx { 0 };
};

} // namespace

TEST_F(VirtioPciLegacyTest, TransitionalIdentityKeepsTheModernCapabilities)
{
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_DEVICE_ID, 2), 0x1000u); // network card
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_REVISION_ID, 1), 0u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4u);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_SUBSYSTEM_ID, 2), uint32_t { VIRTIO_ID_NET });
    EXPECT_EQ(m_dev->bar_kind(LBAR), pci::BarKind::Io);
    EXPECT_EQ(m_dev->bar_size(LBAR), 0x20u); // 0x18 + 8 bytes of config
    EXPECT_EQ(m_dev->bar_kind(VirtioPciDevice::MODERN_BAR), pci::BarKind::Mem64);
    // The sizing protocol on BAR 0: an I/O BAR of 0x20 bytes.
    cfg_write(*m_dev, pci::PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(*m_dev, pci::PCI_BASE_ADDRESS_0, 4), 0xffffffe1u);
    // The vendor capability list is still there.
    int vendor_caps = 0;
    auto at = static_cast<uint16_t>(cfg_read(*m_dev, pci::PCI_CAPABILITY_LIST, 1));
    for (int guard = 0; at != 0 && guard < 48; ++guard) {
        vendor_caps += cfg_read(*m_dev, at, 1) == PCI_CAP_ID_VNDR;
        at = static_cast<uint16_t>(cfg_read(*m_dev, at + 1, 1));
    }
    EXPECT_EQ(vendor_caps, 5); // common, notify, ISR, device, PCI cfg

    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_NET), 0x1000);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_BLOCK), 0x1001);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_BALLOON), 0x1002);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_CONSOLE), 0x1003);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_SCSI), 0x1004);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_RNG), 0x1005);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_9P), 0x1009);
    EXPECT_EQ(VirtioPciDevice::transitional_device_id(VIRTIO_ID_GPU), std::nullopt);
}

TEST_F(VirtioPciLegacyTest, ModernOnlyWhenAskedOrWithoutATransitionalId)
{
    VirtioPciDevice::Options options;
    options.transitional = false;
    auto modern = VirtioPciDevice::create(m_mem, std::make_shared<FakeDevice>(), m_sink, options).value();
    EXPECT_FALSE(modern->transitional());
    EXPECT_EQ(cfg_read(*modern, pci::PCI_DEVICE_ID, 2), 0x1041u);
    EXPECT_EQ(cfg_read(*modern, pci::PCI_REVISION_ID, 1), 1u);
    EXPECT_EQ(cfg_read(*modern, pci::PCI_SUBSYSTEM_ID, 2), 0x1100u);
    EXPECT_EQ(modern->bar_kind(LBAR), pci::BarKind::Unused);
    uint8_t buf[4] {};
    modern->bar_read(LBAR, VIRTIO_PCI_HOST_FEATURES, buf);
    EXPECT_EQ(get_le32(buf), 0xffffffffu);
    EXPECT_EQ(modern->stats().bad_accesses, 1u);

    // A GPU has no transitional ID: modern-only even with the default options.
    auto gpu = VirtioPciDevice::create(m_mem, std::make_shared<FakeDevice>(VIRTIO_ID_GPU), m_sink).value();
    EXPECT_FALSE(gpu->transitional());
    EXPECT_EQ(cfg_read(*gpu, pci::PCI_DEVICE_ID, 2), 0x1050u);
    EXPECT_EQ(gpu->bar_kind(LBAR), pci::BarKind::Unused);
}

TEST_F(VirtioPciLegacyTest, LegacyDriverSetsUpAQueueByPfnAndGetsAUsedBuffer)
{
    lset_status(0);
    lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    // Host features: bits 0-31 of the offer, so never VERSION_1.
    EXPECT_EQ(lread(VIRTIO_PCI_HOST_FEATURES, 4), F_CSUM | F_MAC | F_INDIRECT | F_EVENT_IDX);
    EXPECT_TRUE(m_dev->offered_features() & F_VERSION_1);
    lwrite(VIRTIO_PCI_GUEST_FEATURES, 4, F_CSUM | F_INDIRECT);
    EXPECT_EQ(lread(VIRTIO_PCI_GUEST_FEATURES, 4), F_CSUM | F_INDIRECT);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Legacy);

    // Queue 0: the size is the maximum and read-only; the address is a page frame number.
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 0);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_NUM, 2), FAKE_QSIZE);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_PFN, 4), 0u); // SeaBIOS checks the queue is not in use
    lwrite(VIRTIO_PCI_QUEUE_NUM, 2, 16);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_NUM, 2), FAKE_QSIZE);
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, PFN);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_PFN, 4), PFN);
    // Queue 2 does not exist: size 0, which is how a legacy driver finds the number of queues.
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 2);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_NUM, 2), 0u);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_SEL, 2), 2u);

    // DRIVER_OK without FEATURES_OK starts the device with the written features.
    legacy_driver_ok();
    EXPECT_EQ(lstatus(), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
    ASSERT_TRUE(m_dev->active());
    EXPECT_EQ(m_fake->activations, 1u);
    EXPECT_EQ(m_fake->features, F_CSUM | F_INDIRECT);
    EXPECT_EQ(m_dev->negotiated_features(), F_CSUM | F_INDIRECT);

    set_desc(0, DATA, 16, VIRTQ_DESC_F_WRITE);
    publish(0);
    auto const port = VIRTIO_PCI_QUEUE_NOTIFY;
    lwrite(port, 2, 0); // the value is the queue index
    ASSERT_EQ(used_idx(), 1u);
    EXPECT_EQ(used_elem(0), std::make_pair(0u, 4u));
    EXPECT_EQ(std::memcmp(&m_buf[DATA], "done", 4), 0);
    EXPECT_EQ(m_buf[DATA + 4], 0u);

    // INTx and the legacy ISR: a read returns and clears the bits and deasserts the line.
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(lread(VIRTIO_PCI_ISR, 1), VIRTIO_PCI_ISR_QUEUE);
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(lread(VIRTIO_PCI_ISR, 1), 0u);
    // A configuration change sets bit 1.
    m_fake->interrupt->signal_config_change();
    EXPECT_TRUE(m_irq->level);
    EXPECT_EQ(m_dev->isr_status(), VIRTIO_PCI_ISR_CONFIG);
    EXPECT_EQ(lread(VIRTIO_PCI_ISR, 1), VIRTIO_PCI_ISR_CONFIG);
    EXPECT_FALSE(m_irq->level);
    EXPECT_TRUE(m_sink->messages.empty());

    // A notify of a queue that does not exist is counted.
    lwrite(port, 2, 7);
    EXPECT_EQ(m_dev->stats().bad_notifies, 1u);
    EXPECT_EQ(m_dev->stats().mixed_accesses, 0u);
}

TEST_F(VirtioPciLegacyTest, GuestFeaturesMustBeASubsetOfTheOffer)
{
    legacy_setup(F_CSUM | F_BIT3 | (uint64_t { 1 } << 31));
    EXPECT_EQ(lread(VIRTIO_PCI_GUEST_FEATURES, 4), F_CSUM); // the bits not offered are dropped
    EXPECT_EQ(m_dev->stats().features_refused, 1u);
    // FEATURES_OK is not a legacy bit: refused, DRIVER_OK still works.
    auto const rejected = m_dev->stats().rejected_writes;
    lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    EXPECT_EQ(lstatus(), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    EXPECT_EQ(m_dev->stats().rejected_writes, rejected + 1);
    legacy_driver_ok();
    ASSERT_TRUE(m_dev->active());
    EXPECT_EQ(m_fake->features, F_CSUM);
    // Frozen once the driver is live.
    lwrite(VIRTIO_PCI_GUEST_FEATURES, 4, F_CSUM | F_MAC);
    EXPECT_EQ(lread(VIRTIO_PCI_GUEST_FEATURES, 4), F_CSUM);
    EXPECT_EQ(m_dev->negotiated_features(), F_CSUM);
    EXPECT_EQ(m_dev->stats().rejected_writes, rejected + 2);
    // Host features are read-only.
    lwrite(VIRTIO_PCI_HOST_FEATURES, 4, 0);
    EXPECT_EQ(lread(VIRTIO_PCI_HOST_FEATURES, 4), F_CSUM | F_MAC | F_INDIRECT | F_EVENT_IDX);
}

TEST_F(VirtioPciLegacyTest, StatusZeroResetsEverything)
{
    legacy_setup(F_CSUM);
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 1);
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, PFN + 4);
    legacy_driver_ok();
    ASSERT_TRUE(m_dev->active());
    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    lwrite(VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
    EXPECT_TRUE(m_irq->level);

    lset_status(0);
    EXPECT_EQ(lstatus(), 0u);
    EXPECT_FALSE(m_dev->active());
    EXPECT_EQ(m_fake->resets, 2u); // legacy_setup's reset, then this one
    EXPECT_FALSE(m_irq->level);
    EXPECT_EQ(m_dev->isr_status(), 0u);
    EXPECT_EQ(lread(VIRTIO_PCI_GUEST_FEATURES, 4), 0u);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_SEL, 2), 0u);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_PFN, 4), 0u);
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 1);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_PFN, 4), 0u);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Legacy); // the reads above picked it again

    // Not live any more: a notify does nothing. Then it comes up again from scratch.
    publish(1);
    lwrite(VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
    EXPECT_EQ(used_idx(), 1u);
    std::fill(m_buf.begin(), m_buf.end(), uint8_t { 0 });
    m_avail_idx = 0;
    legacy_setup(0);
    legacy_driver_ok();
    ASSERT_TRUE(m_dev->active());
    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    lwrite(VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
    EXPECT_EQ(used_idx(), 1u);
}

TEST_F(VirtioPciLegacyTest, PfnIsValidatedAndFrozenAtDriverOk)
{
    // The used ring would end past RAM: DEVICE_NEEDS_RESET, never activated.
    legacy_setup(0, static_cast<uint32_t>(RAM_SIZE >> 12) - 1);
    EXPECT_TRUE(lstatus() & VIRTIO_CONFIG_S_NEEDS_RESET);
    legacy_driver_ok();
    EXPECT_FALSE(m_dev->active());
    EXPECT_EQ(m_dev->stats().needs_reset, 1u);
    // A PFN of 2^32 - 1 (an address far beyond RAM) is refused the same way, without overflow.
    legacy_setup(0, 0xffffffff);
    EXPECT_TRUE(lstatus() & VIRTIO_CONFIG_S_NEEDS_RESET);

    // PFN 0 disables a queue; the next PFN replaces the previous one.
    legacy_setup(0);
    EXPECT_FALSE(lstatus() & VIRTIO_CONFIG_S_NEEDS_RESET);
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, 0);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_PFN, 4), 0u);
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, PFN);
    legacy_driver_ok();
    ASSERT_TRUE(m_dev->active());
    // After DRIVER_OK the device owns the queues: no more PFN writes.
    auto const rejected = m_dev->stats().rejected_writes;
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, PFN + 8);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_PFN, 4), PFN);
    EXPECT_EQ(m_dev->stats().rejected_writes, rejected + 1);
    // A PFN for a queue that does not exist.
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 9);
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, PFN);
    EXPECT_EQ(m_dev->stats().rejected_writes, rejected + 2);
}

TEST_F(VirtioPciLegacyTest, BadLegacyAccessesReadAllOnesAndAreCounted)
{
    EXPECT_EQ(lread(VIRTIO_PCI_HOST_FEATURES, 2), 0xffffu);      // wrong width
    EXPECT_EQ(lread(VIRTIO_PCI_HOST_FEATURES + 1, 1), 0xffu);    // middle of a register
    EXPECT_EQ(lread(VIRTIO_PCI_STATUS, 2), 0xffffu);             // status and ISR together
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_NOTIFY, 2), 0xffffu);       // write-only
    EXPECT_EQ(lread(0x14 + 8, 1), 0xffu);                        // past the device config
    EXPECT_EQ(lread(0x1e, 4), 0xffffffffu);                      // crosses the end of the config
    uint8_t big[8] {};
    m_dev->bar_read(LBAR, 0, big);                               // I/O is at most 4 bytes
    lwrite(VIRTIO_PCI_ISR, 1, 0);
    lwrite(VIRTIO_PCI_QUEUE_NOTIFY, 4, 0);
    EXPECT_EQ(m_dev->stats().bad_accesses, 9u);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Undecided);
}

TEST_F(VirtioPciLegacyTest, MsixMovesTheDeviceConfiguration)
{
    // MSI-X off: device configuration at 0x14, any width inside it, written through.
    EXPECT_EQ(lread(0x14, 1), 0x52u);
    EXPECT_EQ(lread(0x14 + 2, 4), 0x56341200u);
    EXPECT_EQ(lread(0x14 + 6, 2), 0x0001u);
    lwrite(0x14 + 6, 1, 0x7);
    EXPECT_EQ(m_fake->config[6], 0x7);

    enable_msix();
    // Now 0x14/0x16 are the vector registers and the configuration starts at 0x18.
    EXPECT_EQ(lread(VIRTIO_MSI_CONFIG_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
    EXPECT_EQ(lread(0x18, 1), 0x52u);
    EXPECT_EQ(lread(0x18 + 6, 1), 0x7u);
    EXPECT_EQ(lread(0x18 + 8, 1), 0xffu);

    legacy_setup(0);
    program_vector(0, 0xfee00000, 0x30);
    program_vector(1, 0xfee01000, 0x41);
    lwrite(VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
    EXPECT_EQ(lread(VIRTIO_MSI_CONFIG_VECTOR, 2), 0u); // Linux reads it back to check
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 0);
    lwrite(VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
    EXPECT_EQ(lread(VIRTIO_MSI_QUEUE_VECTOR, 2), 1u);
    lwrite(VIRTIO_PCI_QUEUE_SEL, 2, 1);
    lwrite(VIRTIO_MSI_QUEUE_VECTOR, 2, 3); // beyond the table (3 vectors)
    EXPECT_EQ(lread(VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
    legacy_driver_ok();
    ASSERT_TRUE(m_dev->active());

    set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE);
    publish(0);
    lwrite(VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
    ASSERT_EQ(m_sink->messages.size(), 1u);
    EXPECT_EQ(m_sink->messages[0], std::make_pair(uint64_t { 0xfee01000 }, uint32_t { 0x41 }));
    EXPECT_FALSE(m_irq->level);
    m_fake->interrupt->signal_config_change();
    ASSERT_EQ(m_sink->messages.size(), 2u);
    EXPECT_EQ(m_sink->messages[1], std::make_pair(uint64_t { 0xfee00000 }, uint32_t { 0x30 }));

    // Reset puts the vectors back to NO_VECTOR.
    lset_status(0);
    EXPECT_EQ(lread(VIRTIO_MSI_CONFIG_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
}

TEST_F(VirtioPciLegacyTest, MixingInterfacesIsRefusedUntilReset)
{
    // The first feature access picks legacy.
    EXPECT_EQ(lread(VIRTIO_PCI_HOST_FEATURES, 4), F_CSUM | F_MAC | F_INDIRECT | F_EVENT_IDX);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Legacy);
    lset_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    // The modern common configuration is refused: reads all-ones, writes dropped.
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_STATUS, 1), 0xffu);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 0xffffu);
    common_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
    EXPECT_EQ(lstatus(), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    EXPECT_EQ(lread(VIRTIO_PCI_QUEUE_SEL, 2), 0u);
    EXPECT_EQ(m_dev->stats().mixed_accesses, 4u);
    // The ISR works through both.
    uint8_t isr = 0xee;
    m_dev->bar_read(VirtioPciDevice::MODERN_BAR, VirtioPciDevice::ISR_CFG_OFFSET, std::span<uint8_t>(&isr, 1));
    EXPECT_EQ(isr, 0u);
    EXPECT_EQ(m_dev->stats().mixed_accesses, 4u);

    // A reset works through either interface (firmware on one, OS on the other) and frees the choice.
    common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Undecided);
    common_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Modern);
    EXPECT_EQ(lread(VIRTIO_PCI_STATUS, 1), 0xffu);
    EXPECT_EQ(lread(VIRTIO_PCI_HOST_FEATURES, 4), 0xffffffffu);
    lwrite(VIRTIO_PCI_GUEST_FEATURES, 4, F_CSUM);
    lwrite(VIRTIO_PCI_QUEUE_PFN, 4, PFN);
    EXPECT_EQ(m_dev->stats().mixed_accesses, 8u);
    // The modern driver carries on as if nothing happened.
    common_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    common_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    common_write(VIRTIO_PCI_COMMON_GF, 4, 1); // VERSION_1
    common_write(VIRTIO_PCI_COMMON_STATUS, 1,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    EXPECT_EQ(m_dev->negotiated_features(), F_VERSION_1);
    common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    EXPECT_EQ(common_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0u); // the refused PFN did not land

    // And a legacy reset takes the device back from the modern driver.
    lset_status(0);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Undecided);
    EXPECT_EQ(m_dev->negotiated_features(), 0u);
    EXPECT_EQ(lstatus(), 0u);
}

TEST_F(VirtioPciLegacyTest, NotifyRegistrarIsToldTheLegacyPort)
{
    auto reg = std::make_shared<RecordingRegistrar>();
    m_dev->set_notify_registrar(reg);
    using E = RecordingRegistrar::Event;
    cfg_write(*m_dev, pci::PCI_BASE_ADDRESS_0, 4, 0xc040);
    EXPECT_TRUE(reg->events.empty()); // I/O decoding off
    EXPECT_FALSE(m_dev->legacy_notify_port());
    cfg_write(*m_dev, pci::PCI_COMMAND, 2, pci::PCI_COMMAND_IO);
    ASSERT_EQ(reg->events.size(), 2u); // one per queue, the same port: the value written tells them apart
    EXPECT_EQ(reg->events[0], (E { true, 0, 0xc050, 2, NotifySpace::Io }));
    EXPECT_EQ(reg->events[1], (E { true, 1, 0xc050, 2, NotifySpace::Io }));
    EXPECT_EQ(m_dev->legacy_notify_port(), 0xc050u);
    // Sizing takes it away, a new port puts it back.
    cfg_write(*m_dev, pci::PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    ASSERT_EQ(reg->events.size(), 4u);
    EXPECT_EQ(reg->events[2], (E { false, 0, 0xc050, 2, NotifySpace::Io }));
    cfg_write(*m_dev, pci::PCI_BASE_ADDRESS_0, 4, 0xd000);
    ASSERT_EQ(reg->events.size(), 6u);
    EXPECT_EQ(reg->events[5], (E { true, 1, 0xd010, 2, NotifySpace::Io }));
    // Memory decoding adds the modern addresses next to it; a new registrar gets both, the old one loses both.
    uint16_t const bar4 = pci::PCI_BASE_ADDRESS_0 + 4 * VirtioPciDevice::MODERN_BAR;
    cfg_write(*m_dev, bar4, 4, 0xe0000000);
    cfg_write(*m_dev, bar4 + 4, 4, 0);
    cfg_write(*m_dev, pci::PCI_COMMAND, 2, pci::PCI_COMMAND_IO | pci::PCI_COMMAND_MEMORY);
    ASSERT_EQ(reg->events.size(), 8u);
    EXPECT_EQ(reg->events[6], (E { true, 0, 0xe0003000, 2, NotifySpace::Memory }));
    auto reg2 = std::make_shared<RecordingRegistrar>();
    m_dev->set_notify_registrar(reg2);
    EXPECT_EQ(reg->events.size(), 12u);
    EXPECT_EQ(reg2->events.size(), 4u);
    m_dev.reset();
    EXPECT_EQ(reg2->events.size(), 8u);
    for (size_t i = 4; i < 8; ++i)
        EXPECT_FALSE(reg2->events[i].add);
}

TEST_F(VirtioPciLegacyTest, PciCfgCapabilityReachesTheLegacyBar)
{
    uint16_t const cap = m_dev->pci_cfg_cap_offset();
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_BAR, 1, LBAR);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_LENGTH, 4, 4);
    cfg_write(*m_dev, cap + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_HOST_FEATURES);
    EXPECT_EQ(cfg_read(*m_dev, cap + VIRTIO_PCI_CFG_CAP_DATA, 4), F_CSUM | F_MAC | F_INDIRECT | F_EVENT_IDX);
    EXPECT_EQ(m_dev->driver_interface(), DriverInterface::Undecided); // a snapshot picks nothing
}
