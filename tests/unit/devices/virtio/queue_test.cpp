#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "devices/virtio/queue.h"

using namespace hako;
using namespace hako::devices::virtio;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr size_t RAM_SIZE = 0x40000; // guest RAM at [0, 256 KiB)
constexpr uint64_t DESC = 0x1000;    // up to 256 descriptors
constexpr uint64_t AVAIL = 0x3000;
constexpr uint64_t USED = 0x4000;
constexpr uint64_t INDIRECT_TABLE = 0x6000;
constexpr uint64_t DATA = 0x10000;
constexpr uint16_t QSIZE = 16;

constexpr uint64_t F_INDIRECT = uint64_t { 1 } << VIRTIO_F_INDIRECT_DESC;
constexpr uint64_t F_EVENT_IDX = uint64_t { 1 } << VIRTIO_F_EVENT_IDX;

/// The driver side: writes descriptor tables and the avail ring, reads the used ring, the way Linux's
/// virtio_ring.c does, through the same GuestMemory.
class Driver final {
public:
    Driver(GuestMemory const& mem, uint16_t size) : m_mem(mem), m_size(size) {}

    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0, uint64_t table = DESC)
    {
        VirtqDesc d;
        d.addr.set(addr);
        d.len.set(len);
        d.flags.set(flags);
        d.next.set(next);
        ASSERT_TRUE(m_mem.write_obj(GuestAddr(table + 16u * i), d));
    }
    /// Puts `head` in the next avail slot and publishes the new avail->idx.
    void publish(uint16_t head)
    {
        put16(AVAIL + virtq_avail_entry_offset(m_avail_idx % m_size), head);
        ++m_avail_idx;
        put16(AVAIL + VIRTQ_AVAIL_IDX_OFFSET, m_avail_idx);
    }
    void set_avail_idx(uint16_t idx)
    {
        m_avail_idx = idx;
        put16(AVAIL + VIRTQ_AVAIL_IDX_OFFSET, idx);
    }
    void set_avail_flags(uint16_t f) { put16(AVAIL + VIRTQ_AVAIL_FLAGS_OFFSET, f); }
    void set_used_event(uint16_t v) { put16(AVAIL + virtq_used_event_offset(m_size), v); }
    uint16_t used_idx() const { return get16(USED + VIRTQ_USED_IDX_OFFSET); }
    uint16_t used_flags() const { return get16(USED + VIRTQ_USED_FLAGS_OFFSET); }
    uint16_t avail_event() const { return get16(USED + virtq_avail_event_offset(m_size)); }
    std::pair<uint32_t, uint32_t> used_elem(uint16_t idx) const
    {
        auto e = m_mem.read_obj<VirtqUsedElem>(GuestAddr(USED + virtq_used_elem_offset(idx % m_size))).value();
        return { e.id.get(), e.len.get() };
    }

    void put16(uint64_t at, uint16_t v) const
    {
        Le16 le;
        le.set(v);
        ASSERT_TRUE(m_mem.write_obj(GuestAddr(at), le));
    }
    uint16_t get16(uint64_t at) const { return m_mem.read_obj<Le16>(GuestAddr(at)).value().get(); }

private:
    GuestMemory const& m_mem;
    uint16_t m_size;
    uint16_t m_avail_idx { 0 };
};

class VirtqueueTest : public ::testing::Test {
protected:
    VirtqueueTest()
        : m_buf(RAM_SIZE, 0)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(m_buf) } }).value()))
        , m_queue(std::move(Queue::create(m_mem, 256).value()))
        , m_driver(m_mem, QSIZE)
    {
    }

    void configure(uint64_t features = 0)
    {
        ASSERT_TRUE(m_queue.set_size(QSIZE));
        m_queue.set_desc_table(GuestAddr(DESC));
        m_queue.set_avail_ring(GuestAddr(AVAIL));
        m_queue.set_used_ring(GuestAddr(USED));
        m_queue.set_negotiated_features(features);
        ASSERT_TRUE(m_queue.validate());
        m_queue.set_ready(true);
    }

    /// Pops and expects a bad chain with `reason`.
    void expect_bad(uint16_t head, ChainError reason)
    {
        auto r = m_queue.pop();
        ASSERT_EQ(r.status(), PopResult::Status::Bad);
        EXPECT_EQ(r.head(), head);
        EXPECT_EQ(r.error(), reason) << to_string(r.error());
        EXPECT_EQ(m_queue.stats().bad_chain_count(reason), 1u);
        EXPECT_EQ(m_queue.stats().chains_popped, 0u);
        // The bad chain is consumed: the queue moves on.
        EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Empty);
    }

    uint8_t* host(uint64_t gpa) { return m_buf.data() + gpa; }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    Queue m_queue;
    Driver m_driver;
};

} // namespace

// --- Configuration ---

TEST_F(VirtqueueTest, SizeMustBeAPowerOfTwoWithinMax)
{
    EXPECT_EQ(m_queue.max_size(), 256);
    EXPECT_EQ(m_queue.size(), 256); // reset value is the maximum
    EXPECT_FALSE(m_queue.set_size(0));
    EXPECT_FALSE(m_queue.set_size(3));
    EXPECT_FALSE(m_queue.set_size(24));
    EXPECT_FALSE(m_queue.set_size(255));
    EXPECT_FALSE(m_queue.set_size(512)); // above max
    EXPECT_EQ(m_queue.size(), 256);      // unchanged by the rejects
    EXPECT_TRUE(m_queue.set_size(1));
    EXPECT_TRUE(m_queue.set_size(128));
    EXPECT_EQ(m_queue.size(), 128);

    EXPECT_FALSE(Queue::create(m_mem, 0));
    EXPECT_FALSE(Queue::create(m_mem, 100));
    EXPECT_FALSE(Queue::create(m_mem, 65535));
    EXPECT_TRUE(Queue::create(m_mem, VIRTQ_MAX_SIZE));
}

TEST_F(VirtqueueTest, ValidateChecksAlignmentAndBounds)
{
    configure();
    m_queue.set_desc_table(GuestAddr(DESC + 8));
    EXPECT_FALSE(m_queue.validate());
    m_queue.set_desc_table(GuestAddr(DESC));
    m_queue.set_avail_ring(GuestAddr(AVAIL + 1));
    EXPECT_FALSE(m_queue.validate());
    m_queue.set_avail_ring(GuestAddr(AVAIL + 2)); // 2-byte alignment is enough
    EXPECT_TRUE(m_queue.validate());
    m_queue.set_used_ring(GuestAddr(USED + 2));
    EXPECT_FALSE(m_queue.validate());
    m_queue.set_used_ring(GuestAddr(USED + 4)); // 4-byte alignment is enough
    EXPECT_TRUE(m_queue.validate());

    // Each area must lie inside guest memory as a whole, used_event/avail_event included.
    m_queue.set_used_ring(GuestAddr(RAM_SIZE - virtq_used_ring_size(QSIZE) + 4));
    EXPECT_FALSE(m_queue.validate());
    m_queue.set_used_ring(GuestAddr(RAM_SIZE - virtq_used_ring_size(QSIZE) - 2));
    EXPECT_TRUE(m_queue.validate());
    m_queue.set_desc_table(GuestAddr(RAM_SIZE - 16 * QSIZE + 16));
    EXPECT_FALSE(m_queue.validate());
    m_queue.set_desc_table(GuestAddr(0xffff'ffff'ffff'fff0ull)); // aligned, wraps
    EXPECT_FALSE(m_queue.validate());
    m_queue.set_desc_table(GuestAddr(DESC));
    m_queue.set_avail_ring(GuestAddr(RAM_SIZE));
    EXPECT_FALSE(m_queue.validate());
}

TEST_F(VirtqueueTest, NothingPoppedUntilReady)
{
    configure();
    m_driver.set_desc(0, DATA, 8);
    m_driver.publish(0);
    m_queue.set_ready(false);
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Empty);
    m_queue.set_ready(true);
    EXPECT_TRUE(m_queue.pop().is_ok());
}

// --- Chains ---

TEST_F(VirtqueueTest, SimpleChainGathersAndScatters)
{
    configure();
    std::memcpy(host(DATA), "head", 4);
    std::memcpy(host(DATA + 0x100), "er-bytes", 8);
    m_driver.set_desc(3, DATA, 4, VIRTQ_DESC_F_NEXT, 7);
    m_driver.set_desc(7, DATA + 0x100, 8, VIRTQ_DESC_F_NEXT, 1);
    m_driver.set_desc(1, DATA + 0x200, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    m_driver.set_desc(2, DATA + 0x300, 5, VIRTQ_DESC_F_WRITE);
    m_driver.publish(3);

    auto r = m_queue.pop();
    ASSERT_TRUE(r.is_ok());
    auto& chain = r.chain();
    EXPECT_EQ(chain.head(), 3);
    ASSERT_EQ(chain.segments().size(), 4u);
    EXPECT_EQ(chain.segments()[1].addr, GuestAddr(DATA + 0x100));
    EXPECT_FALSE(chain.segments()[1].is_write);
    EXPECT_TRUE(chain.segments()[2].is_write);
    EXPECT_EQ(chain.readable_len(), 12u);
    EXPECT_EQ(chain.writable_len(), 8u);

    std::vector<uint8_t> out(20, 0);
    EXPECT_EQ(chain.read_from_chain(out, 0), 12u); // short: only 12 readable bytes
    EXPECT_EQ(std::string(out.begin(), out.begin() + 12), "header-bytes");
    std::vector<uint8_t> mid(5, 0);
    EXPECT_EQ(chain.read_from_chain(mid, 2), 5u); // crosses the segment boundary
    EXPECT_EQ(std::string(mid.begin(), mid.end()), "ader-");
    EXPECT_EQ(chain.read_from_chain(mid, 12), 0u);
    EXPECT_EQ(chain.read_from_chain(mid, 1000), 0u);

    std::string const reply = "ABCDEFGHIJ";
    std::span<uint8_t const> in(static_cast<uint8_t const*>(static_cast<void const*>(reply.data())), reply.size());
    EXPECT_EQ(chain.write_to_chain(in.subspan(0, 2), 0), 2u);
    EXPECT_EQ(chain.write_to_chain(in.subspan(2), 2), 6u); // 8 writable bytes in total
    EXPECT_EQ(std::string(host(DATA + 0x200), host(DATA + 0x203)), "ABC");
    EXPECT_EQ(std::string(host(DATA + 0x300), host(DATA + 0x305)), "DEFGH");
    EXPECT_EQ(*host(DATA + 0x305), 0); // nothing past the buffer
    // Readable buffers are never written.
    EXPECT_EQ(std::string(host(DATA), host(DATA + 4)), "head");

    m_queue.add_used(chain.head(), 8);
    EXPECT_EQ(m_driver.used_idx(), 1);
    EXPECT_EQ(m_driver.used_elem(0), std::make_pair(3u, 8u));
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Empty);
    EXPECT_EQ(m_queue.stats().chains_popped, 1u);
    EXPECT_EQ(m_queue.stats().bad_chain_total(), 0u);
}

TEST_F(VirtqueueTest, SeveralChainsInOrder)
{
    configure();
    for (uint16_t i = 0; i < QSIZE; ++i) {
        m_driver.set_desc(i, DATA + 0x10u * i, 0x10);
        m_driver.publish(static_cast<uint16_t>(QSIZE - 1 - i));
    }
    for (uint16_t i = 0; i < QSIZE; ++i) {
        auto r = m_queue.pop();
        ASSERT_TRUE(r.is_ok());
        EXPECT_EQ(r.head(), QSIZE - 1 - i);
        EXPECT_EQ(r.chain().segments()[0].addr, GuestAddr(DATA + 0x10u * (QSIZE - 1 - i)));
        m_queue.add_used(r.head(), i);
    }
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Empty);
    EXPECT_EQ(m_driver.used_idx(), QSIZE);
    EXPECT_EQ(m_driver.used_elem(5), std::make_pair(10u, 5u));
}

TEST_F(VirtqueueTest, IndirectChain)
{
    configure(F_INDIRECT);
    std::memcpy(host(DATA), "req", 3);
    m_driver.set_desc(0, DATA, 3, VIRTQ_DESC_F_NEXT, 2, INDIRECT_TABLE);
    m_driver.set_desc(2, DATA + 0x40, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1, INDIRECT_TABLE);
    m_driver.set_desc(1, DATA + 0x80, 4, VIRTQ_DESC_F_WRITE, 0, INDIRECT_TABLE);
    // The WRITE flag on the descriptor that points at the table is ignored (section 2.7.5.3.2).
    m_driver.set_desc(5, INDIRECT_TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE);
    m_driver.publish(5);

    auto r = m_queue.pop();
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r.head(), 5);
    auto const& chain = r.chain();
    ASSERT_EQ(chain.segments().size(), 3u);
    EXPECT_EQ(chain.segments()[0].addr, GuestAddr(DATA));
    EXPECT_EQ(chain.segments()[1].addr, GuestAddr(DATA + 0x40));
    EXPECT_EQ(chain.segments()[2].addr, GuestAddr(DATA + 0x80));
    EXPECT_EQ(chain.readable_len(), 3u);
    EXPECT_EQ(chain.writable_len(), 8u);
    uint8_t buf[3];
    EXPECT_EQ(chain.read_from_chain(buf, 0), 3u);
    EXPECT_EQ(std::memcmp(buf, "req", 3), 0);
}

TEST_F(VirtqueueTest, IndirectTableAtTheEndOfADirectChain)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, DATA, 8, VIRTQ_DESC_F_NEXT, 1);
    m_driver.set_desc(1, INDIRECT_TABLE, 16, VIRTQ_DESC_F_INDIRECT);
    m_driver.set_desc(0, DATA + 0x40, 4, VIRTQ_DESC_F_WRITE, 0, INDIRECT_TABLE);
    m_driver.publish(0);
    auto r = m_queue.pop();
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r.chain().readable_len(), 8u);
    EXPECT_EQ(r.chain().writable_len(), 4u);
}

TEST_F(VirtqueueTest, IndirectWithoutFeatureIsBad)
{
    configure();
    m_driver.set_desc(0, DATA, 4, 0, 0, INDIRECT_TABLE);
    m_driver.set_desc(0, INDIRECT_TABLE, 16, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::IndirectNotNegotiated);
}

TEST_F(VirtqueueTest, IndirectWithNextIsBad)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, DATA, 4, 0, 0, INDIRECT_TABLE);
    m_driver.set_desc(0, INDIRECT_TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    m_driver.set_desc(1, DATA, 4);
    m_driver.publish(0);
    expect_bad(0, ChainError::IndirectWithNext);
}

TEST_F(VirtqueueTest, NestedIndirectIsBad)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1, INDIRECT_TABLE);
    m_driver.set_desc(1, INDIRECT_TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0, INDIRECT_TABLE);
    m_driver.set_desc(0, INDIRECT_TABLE, 32, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::NestedIndirect);
}

TEST_F(VirtqueueTest, ZeroLengthIndirectIsBad)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, INDIRECT_TABLE, 0, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::IndirectBadLength);
}

TEST_F(VirtqueueTest, IndirectLengthNotAMultipleOf16IsBad)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, DATA, 4, 0, 0, INDIRECT_TABLE);
    m_driver.set_desc(0, INDIRECT_TABLE, 20, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::IndirectBadLength);
}

TEST_F(VirtqueueTest, IndirectNextBeyondTableIsBad)
{
    configure(F_INDIRECT);
    // A 2-entry table whose first entry points at entry 2: inside the main table's range, outside this one.
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 2, INDIRECT_TABLE);
    m_driver.set_desc(1, DATA, 4, 0, 0, INDIRECT_TABLE);
    m_driver.set_desc(2, DATA, 4, 0, 0, INDIRECT_TABLE);
    m_driver.set_desc(0, INDIRECT_TABLE, 32, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::NextOutOfRange);
}

TEST_F(VirtqueueTest, IndirectLoopIsBad)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1, INDIRECT_TABLE);
    m_driver.set_desc(1, DATA, 4, VIRTQ_DESC_F_NEXT, 0, INDIRECT_TABLE);
    m_driver.set_desc(0, INDIRECT_TABLE, 32, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::ChainTooLong);
}

TEST_F(VirtqueueTest, IndirectTableOutsideMemoryIsBad)
{
    configure(F_INDIRECT);
    m_driver.set_desc(0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT);
    m_driver.publish(0);
    expect_bad(0, ChainError::AddressOutOfRange);
}

TEST_F(VirtqueueTest, DescriptorLoopIsBad)
{
    configure();
    m_driver.set_desc(4, DATA, 4, VIRTQ_DESC_F_NEXT, 9);
    m_driver.set_desc(9, DATA, 4, VIRTQ_DESC_F_NEXT, 4);
    m_driver.publish(4);
    expect_bad(4, ChainError::ChainTooLong);
}

TEST_F(VirtqueueTest, ChainOfExactlyQueueSizeIsFine)
{
    configure();
    for (uint16_t i = 0; i < QSIZE; ++i)
        m_driver.set_desc(i, DATA, 1, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, static_cast<uint16_t>(i + 1));
    m_driver.publish(0);
    auto r = m_queue.pop();
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r.chain().segments().size(), QSIZE);
}

TEST_F(VirtqueueTest, NextOutOfRangeIsBad)
{
    configure();
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, QSIZE);
    m_driver.publish(0);
    expect_bad(0, ChainError::NextOutOfRange);
}

TEST_F(VirtqueueTest, HeadOutOfRangeIsBad)
{
    configure();
    m_driver.publish(QSIZE);
    expect_bad(QSIZE, ChainError::HeadOutOfRange);
}

TEST_F(VirtqueueTest, BufferPastGuestRamIsBad)
{
    configure();
    m_driver.set_desc(0, RAM_SIZE - 4, 8);
    m_driver.publish(0);
    expect_bad(0, ChainError::AddressOutOfRange);
}

TEST_F(VirtqueueTest, BufferWhoseEndOverflowsIsBad)
{
    configure();
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    m_driver.set_desc(1, 0xffff'ffff'ffff'fff0ull, 0x20, VIRTQ_DESC_F_WRITE);
    m_driver.publish(0);
    expect_bad(0, ChainError::AddressOutOfRange);
}

TEST_F(VirtqueueTest, WritableBeforeReadableIsBad)
{
    configure();
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    m_driver.set_desc(1, DATA + 0x10, 4);
    m_driver.publish(0);
    expect_bad(0, ChainError::ReadableAfterWritable);
}

TEST_F(VirtqueueTest, LengthSumBeyond32BitsIsBad)
{
    // 16385 indirect entries of 256 KiB each: every buffer is valid, their sum is not.
    std::vector<uint8_t> ram(0x80000, 0);
    constexpr uint32_t ENTRIES = 16385;
    std::vector<uint8_t> table_bytes(16 * ENTRIES);
    auto table_mem = GuestMemory::from_buffers(
        { { GuestAddr(0), std::span<uint8_t>(ram) }, { GuestAddr(0x100000), std::span<uint8_t>(table_bytes) } })
                         .value();
    for (uint32_t i = 0; i < ENTRIES; ++i) {
        VirtqDesc d;
        d.addr.set(0);
        d.len.set(0x40000);
        d.flags.set(i + 1 < ENTRIES ? VIRTQ_DESC_F_NEXT : 0);
        d.next.set(static_cast<uint16_t>(i + 1));
        ASSERT_TRUE(table_mem.write_obj(GuestAddr(0x100000 + 16ull * i), d));
    }
    auto q = Queue::create(table_mem, 16).value();
    q.set_desc_table(GuestAddr(DESC));
    q.set_avail_ring(GuestAddr(AVAIL));
    q.set_used_ring(GuestAddr(USED));
    q.set_negotiated_features(F_INDIRECT);
    ASSERT_TRUE(q.validate());
    q.set_ready(true);
    Driver driver(table_mem, 16);
    driver.set_desc(0, 0x100000, 16 * ENTRIES, VIRTQ_DESC_F_INDIRECT);
    driver.publish(0);
    auto r = q.pop();
    ASSERT_EQ(r.status(), PopResult::Status::Bad);
    EXPECT_EQ(r.error(), ChainError::LengthOverflow);
}

TEST_F(VirtqueueTest, WritableBufferInRomIsBad)
{
    auto mem = GuestMemory::create({ { GuestAddr(0), 0x40000, memory::RegionKind::Ram },
                                       { GuestAddr(0x100000), 0x10000, memory::RegionKind::Rom } })
                   .value();
    auto q = Queue::create(mem, 16).value();
    q.set_desc_table(GuestAddr(DESC));
    q.set_avail_ring(GuestAddr(AVAIL));
    q.set_used_ring(GuestAddr(0x100000));
    EXPECT_FALSE(q.validate()); // the used ring must be writable RAM
    q.set_used_ring(GuestAddr(USED));
    ASSERT_TRUE(q.validate());
    q.set_ready(true);
    Driver driver(mem, 16);
    driver.set_desc(0, 0x100000, 16);                       // reading ROM is fine
    driver.set_desc(1, 0x100000, 16, VIRTQ_DESC_F_NEXT, 2); // readable ROM...
    driver.set_desc(2, 0x100100, 16, VIRTQ_DESC_F_WRITE);   // ...then writable ROM
    driver.publish(0);
    driver.publish(1);
    EXPECT_TRUE(q.pop().is_ok());
    auto r = q.pop();
    ASSERT_EQ(r.status(), PopResult::Status::Bad);
    EXPECT_EQ(r.error(), ChainError::WriteToReadOnly);
}

TEST_F(VirtqueueTest, PopChainReturnsBadChainsWithZeroLength)
{
    configure();
    m_driver.set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 0); // self-loop
    m_driver.set_desc(1, DATA, 4);
    m_driver.publish(0);
    m_driver.publish(1);
    auto chain = m_queue.pop_chain();
    ASSERT_TRUE(chain);
    EXPECT_EQ(chain->head(), 1);
    EXPECT_EQ(m_driver.used_idx(), 1);
    EXPECT_EQ(m_driver.used_elem(0), std::make_pair(0u, 0u));
    EXPECT_EQ(m_queue.stats().bad_chain_count(ChainError::ChainTooLong), 1u);
    EXPECT_FALSE(m_queue.pop_chain());
}

TEST_F(VirtqueueTest, UsedHeadOutOfRangeIsDropped)
{
    configure();
    m_queue.add_used(QSIZE, 4);
    EXPECT_EQ(m_driver.used_idx(), 0);
    EXPECT_EQ(m_queue.stats().bad_used_heads, 1u);
}

// --- Indices ---

TEST_F(VirtqueueTest, AvailIndexJumpBreaksTheQueueUntilReset)
{
    configure();
    m_driver.set_desc(0, DATA, 4);
    m_driver.set_avail_idx(QSIZE + 1);
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Broken);
    EXPECT_EQ(m_queue.error(), QueueError::AvailIndexJump);
    EXPECT_EQ(m_queue.stats().index_jumps, 1u);
    // Even a sane index does not revive it.
    m_driver.set_avail_idx(1);
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Broken);
    m_queue.add_used(0, 1);
    EXPECT_EQ(m_driver.used_idx(), 0);
    EXPECT_FALSE(m_queue.should_notify());

    m_queue.reset();
    EXPECT_FALSE(m_queue.error());
    configure();
    EXPECT_TRUE(m_queue.pop().is_ok());
}

TEST_F(VirtqueueTest, AvailIndexExactlyQueueSizeAheadIsFine)
{
    configure();
    for (uint16_t i = 0; i < QSIZE; ++i) {
        m_driver.set_desc(i, DATA, 4);
        m_driver.publish(i);
    }
    for (uint16_t i = 0; i < QSIZE; ++i)
        EXPECT_TRUE(m_queue.pop().is_ok());
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Empty);
    EXPECT_FALSE(m_queue.error());
}

TEST_F(VirtqueueTest, SixteenBitIndicesWrapAround)
{
    configure(F_EVENT_IDX);
    constexpr uint16_t START = 65533;
    m_queue.set_next_avail(START);
    m_queue.set_next_used(START);
    m_driver.set_avail_idx(START);
    m_driver.put16(USED + VIRTQ_USED_IDX_OFFSET, START);
    m_driver.set_used_event(0xffff);
    for (uint16_t i = 0; i < 5; ++i) {
        m_driver.set_desc(i, DATA + i, 1);
        m_driver.publish(i);
    }
    for (uint16_t i = 0; i < 5; ++i) {
        auto r = m_queue.pop();
        ASSERT_TRUE(r.is_ok()) << i;
        EXPECT_EQ(r.head(), i);
        m_queue.add_used(r.head(), 100u + i);
    }
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Empty);
    EXPECT_EQ(m_queue.next_avail(), 2);
    EXPECT_EQ(m_driver.used_idx(), 2);
    EXPECT_EQ(m_driver.used_elem(65535), std::make_pair(2u, 102u)); // slot 15
    EXPECT_EQ(m_driver.used_elem(0), std::make_pair(3u, 103u));     // slot 0
    // used_event 0xffff was crossed between 65533 and 2.
    EXPECT_TRUE(m_queue.should_notify());
    EXPECT_EQ(m_driver.avail_event(), 2);
}

// --- Notifications ---

TEST_F(VirtqueueTest, EventIdxSuppressesInterruptsUntilUsedEventIsCrossed)
{
    configure(F_EVENT_IDX);
    for (uint16_t i = 0; i < 8; ++i) {
        m_driver.set_desc(i, DATA, 4);
        m_driver.publish(i);
    }
    m_driver.set_used_event(0); // interrupt after the first used entry
    auto pop_and_use = [&] {
        auto r = m_queue.pop();
        ASSERT_TRUE(r.is_ok());
        m_queue.add_used(r.head(), 0);
    };
    pop_and_use();
    EXPECT_TRUE(m_queue.should_notify());
    EXPECT_FALSE(m_queue.should_notify()); // nothing new since

    m_driver.set_used_event(4); // the driver wants an interrupt once used->idx passes 4
    for (int i = 0; i < 3; ++i) {
        pop_and_use();
        EXPECT_FALSE(m_queue.should_notify()) << i; // used idx 2, 3, 4
    }
    EXPECT_EQ(m_queue.stats().notifications_suppressed, 3u);
    pop_and_use(); // used idx 5
    EXPECT_TRUE(m_queue.should_notify());

    // Several entries at once: one interrupt if the batch crosses used_event.
    m_driver.set_used_event(6);
    pop_and_use();
    pop_and_use();
    pop_and_use(); // 5 -> 8 crosses 6
    EXPECT_TRUE(m_queue.should_notify());
    EXPECT_EQ(m_queue.stats().notifications_suppressed, 3u);
    // A used_event behind the batch start: the driver already got its interrupt.
    m_driver.set_used_event(2);
    m_driver.set_desc(0, DATA, 4);
    m_driver.publish(0);
    pop_and_use();
    EXPECT_FALSE(m_queue.should_notify());
}

TEST_F(VirtqueueTest, EventIdxAvailEventTracksTheDevice)
{
    configure(F_EVENT_IDX);
    m_driver.set_desc(0, DATA, 4);
    m_driver.publish(0);
    m_driver.publish(0);
    ASSERT_TRUE(m_queue.pop().is_ok());
    EXPECT_EQ(m_driver.avail_event(), 1); // notifications enabled: kick me for anything after index 1

    m_queue.disable_notification();
    ASSERT_TRUE(m_queue.pop().is_ok());
    EXPECT_EQ(m_driver.avail_event(), 1); // left behind: the driver stops kicking
    EXPECT_EQ(m_driver.used_flags(), 0);  // EVENT_IDX does not use the flag

    EXPECT_FALSE(m_queue.enable_notification()); // nothing new
    EXPECT_EQ(m_driver.avail_event(), 2);
    m_queue.disable_notification();
    m_driver.publish(0); // the race: added while notifications were off
    EXPECT_TRUE(m_queue.enable_notification());
    EXPECT_TRUE(m_queue.pop().is_ok());
}

TEST_F(VirtqueueTest, FlagsSuppressInterruptsAndNotificationsWithoutEventIdx)
{
    configure();
    for (uint16_t i = 0; i < 4; ++i) {
        m_driver.set_desc(i, DATA, 4);
        m_driver.publish(i);
    }
    m_driver.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    auto r = m_queue.pop();
    m_queue.add_used(r.head(), 0);
    EXPECT_FALSE(m_queue.should_notify());
    EXPECT_EQ(m_queue.stats().notifications_suppressed, 1u);
    m_driver.set_avail_flags(0);
    r = m_queue.pop();
    m_queue.add_used(r.head(), 0);
    EXPECT_TRUE(m_queue.should_notify());

    m_queue.disable_notification();
    EXPECT_EQ(m_driver.used_flags(), VIRTQ_USED_F_NO_NOTIFY);
    EXPECT_TRUE(m_queue.enable_notification()); // two chains are still pending
    EXPECT_EQ(m_driver.used_flags(), 0);
    EXPECT_TRUE(m_queue.pop().is_ok());
    EXPECT_TRUE(m_queue.pop().is_ok());
    EXPECT_FALSE(m_queue.enable_notification());
}

TEST_F(VirtqueueTest, RingsOutsideMemoryBreakTheQueueInsteadOfCrashing)
{
    // A transport that skipped validate(): every access still goes through GuestMemory.
    ASSERT_TRUE(m_queue.set_size(QSIZE));
    m_queue.set_desc_table(GuestAddr(DESC));
    m_queue.set_avail_ring(GuestAddr(RAM_SIZE + 0x1000));
    m_queue.set_used_ring(GuestAddr(USED));
    m_queue.set_ready(true);
    EXPECT_EQ(m_queue.pop().status(), PopResult::Status::Broken);
    EXPECT_EQ(m_queue.error(), QueueError::RingAccess);
}
