// VirtioConsole driven directly through its Queues.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/bytes.h"
#include "devices/virtio/console/virtio_console.h"

using namespace hako;
using namespace hako::devices::virtio;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr uint16_t QSIZE = 4;

struct NullInterrupt final : VirtioInterrupt {
    void signal_used_queue(uint16_t q) override { used.push_back(q); }
    void signal_config_change() override { }
    void signal_needs_reset() override { ++needs_reset; }
    std::vector<uint16_t> used;
    int needs_reset { 0 };
};

class ConsoleTest : public ::testing::Test {
protected:
    ConsoleTest()
        : m_ram(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(m_ram) } }).value()))
        , m_console([this](std::span<uint8_t const> b) { m_out.append(b.begin(), b.end()); })
    {
        for (uint16_t i = 0; i < 2; ++i) {
            m_queues.push_back(std::move(Queue::create(m_mem, VirtioConsole::QUEUE_SIZE).value()));
            Queue& q = m_queues.back();
            EXPECT_TRUE(q.set_size(QSIZE));
            uint64_t const base = RAM_BASE + 0x1000u * i;
            q.set_desc_table(GuestAddr(base));
            q.set_avail_ring(GuestAddr(base + 0x400));
            q.set_used_ring(GuestAddr(base + 0x800));
            EXPECT_TRUE(q.validate());
            q.set_ready(true);
        }
        ActivateContext ctx;
        ctx.features = uint64_t { 1 } << VIRTIO_F_VERSION_1;
        ctx.queues = m_queues;
        ctx.interrupt = &m_irq;
        EXPECT_TRUE(m_console.activate(ctx));
    }
    uint8_t* at(uint64_t gpa) { return m_ram.data() + (gpa - RAM_BASE); }
    void add_buffer(uint16_t qi, uint64_t addr, uint32_t len, bool device_writes)
    {
        uint64_t const base = RAM_BASE + 0x1000u * qi;
        uint16_t const idx = m_avail[qi]++;
        uint16_t const desc = idx % QSIZE;
        uint8_t* d = at(base + 16u * desc);
        put_le64(d, addr);
        put_le32(d + 8, len);
        put_le16(d + 12, device_writes ? 2 : 0);
        put_le16(at(base + 0x400 + 4 + 2u * (idx % QSIZE)), desc);
        put_le16(at(base + 0x400 + 2), m_avail[qi]);
    }
    uint32_t used_len(uint16_t qi, uint16_t n) { return get_le32(at(RAM_BASE + 0x1000u * qi + 0x800 + 4 + 8u * n + 4)); }

    std::vector<uint8_t> m_ram;
    GuestMemory m_mem;
    std::string m_out;
    VirtioConsole m_console;
    std::vector<Queue> m_queues;
    NullInterrupt m_irq;
    uint16_t m_avail[2] {};
};

TEST_F(ConsoleTest, TransmitGoesToTheOutput)
{
    std::memcpy(at(0x14000), "hello ", 6);
    std::memcpy(at(0x14100), "world", 5);
    add_buffer(VirtioConsole::TX_QUEUE, 0x14000, 6, false);
    add_buffer(VirtioConsole::TX_QUEUE, 0x14100, 5, false);
    m_console.queue_notify(VirtioConsole::TX_QUEUE);
    EXPECT_EQ(m_out, "hello world");
    EXPECT_EQ(m_console.stats().tx_bytes, 11u);
    ASSERT_FALSE(m_irq.used.empty());
    EXPECT_EQ(m_irq.used.back(), VirtioConsole::TX_QUEUE);
}

TEST_F(ConsoleTest, ReceiveFillsPostedBuffersAndReportsWhatItTook)
{
    std::string const input = "0123456789";
    EXPECT_EQ(m_console.receive(std::span<uint8_t const>(reinterpret_cast<uint8_t const*>(input.data()), input.size())), 0u);
    add_buffer(VirtioConsole::RX_QUEUE, 0x15000, 4, true);
    add_buffer(VirtioConsole::RX_QUEUE, 0x15100, 4, true);
    size_t const took = m_console.receive(std::span<uint8_t const>(reinterpret_cast<uint8_t const*>(input.data()), input.size()));
    EXPECT_EQ(took, 8u); // two buffers of 4: the caller keeps "89"
    EXPECT_EQ(std::string(reinterpret_cast<char*>(at(0x15000)), 4), "0123");
    EXPECT_EQ(std::string(reinterpret_cast<char*>(at(0x15100)), 4), "4567");
    EXPECT_EQ(used_len(VirtioConsole::RX_QUEUE, 0), 4u);
    EXPECT_EQ(used_len(VirtioConsole::RX_QUEUE, 1), 4u);
}

TEST_F(ConsoleTest, EmergencyWriteAndReadOnlyConfig)
{
    uint8_t cfg[12];
    m_console.read_config(0, cfg);
    EXPECT_EQ(get_le16(cfg), 80u);
    EXPECT_EQ(get_le16(cfg + 2), 25u);
    uint8_t c[4] = { 'X', 0, 0, 0 };
    m_console.write_config(VIRTIO_CONSOLE_CFG_EMERG_WR, c);
    EXPECT_EQ(m_out, "X");
    uint8_t junk[2] = { 1, 2 };
    m_console.write_config(0, junk); // cols: read-only
    m_console.read_config(0, cfg);
    EXPECT_EQ(get_le16(cfg), 80u);
    EXPECT_EQ(m_console.stats().emergency_bytes, 1u);
}

} // namespace
