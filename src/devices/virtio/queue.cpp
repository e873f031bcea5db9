#include "devices/virtio/queue.h"

#include <algorithm>
#include <atomic>
#include <limits>

#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::virtio {

using memory::GuestAddr;

std::string_view to_string(ChainError error)
{
    switch (error) {
    case ChainError::HeadOutOfRange: return "head index out of range";
    case ChainError::NextOutOfRange: return "next index out of range";
    case ChainError::ChainTooLong: return "chain longer than its table (loop)";
    case ChainError::DescriptorOutOfMemory: return "descriptor outside guest memory";
    case ChainError::AddressOutOfRange: return "buffer outside guest memory";
    case ChainError::WriteToReadOnly: return "device-writable buffer outside RAM";
    case ChainError::ReadableAfterWritable: return "device-readable buffer after a device-writable one";
    case ChainError::IndirectNotNegotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case ChainError::IndirectWithNext: return "indirect descriptor with NEXT";
    case ChainError::NestedIndirect: return "indirect descriptor inside an indirect table";
    case ChainError::IndirectBadLength: return "indirect table length not a non-zero multiple of 16";
    case ChainError::LengthOverflow: return "buffer lengths exceed 32 bits";
    }
    return "unknown";
}

std::string_view to_string(QueueError error)
{
    switch (error) {
    case QueueError::AvailIndexJump: return "available index jumped more than the queue size";
    case QueueError::RingAccess: return "ring outside guest memory";
    }
    return "unknown";
}

uint64_t QueueStats::bad_chain_total() const
{
    uint64_t total = 0;
    for (auto n : bad_chains)
        total += n;
    return total;
}

// --- DescriptorChain ---

DescriptorChain::DescriptorChain(uint16_t head, std::vector<Segment> segments)
    : m_head(head), m_segments(std::move(segments)), m_first_writable(m_segments.size())
{
    // The chain was validated: readable segments first, total length below 2^32.
    for (size_t i = 0; i < m_segments.size(); ++i) {
        auto len = static_cast<uint32_t>(m_segments[i].span.size());
        if (m_segments[i].is_write) {
            m_first_writable = std::min(m_first_writable, i);
            m_writable_len += len;
        } else {
            m_readable_len += len;
        }
    }
}

size_t DescriptorChain::read_from_chain(std::span<uint8_t> out, size_t offset) const
{
    size_t copied = 0;
    size_t skip = offset;
    for (size_t i = 0; i < m_first_writable && copied < out.size(); ++i) {
        auto bytes = m_segments[i].span.bytes();
        if (skip >= bytes.size()) {
            skip -= bytes.size();
            continue;
        }
        size_t take = std::min(bytes.size() - skip, out.size() - copied);
        std::copy_n(bytes.subspan(skip, take).begin(), take, out.subspan(copied, take).begin());
        copied += take;
        skip = 0;
    }
    return copied;
}

size_t DescriptorChain::write_to_chain(std::span<uint8_t const> in, size_t offset) const
{
    size_t written = 0;
    size_t skip = offset;
    for (size_t i = m_first_writable; i < m_segments.size() && written < in.size(); ++i) {
        auto bytes = m_segments[i].span.bytes();
        if (skip >= bytes.size()) {
            skip -= bytes.size();
            continue;
        }
        size_t take = std::min(bytes.size() - skip, in.size() - written);
        std::copy_n(in.subspan(written, take).begin(), take, bytes.subspan(skip, take).begin());
        written += take;
        skip = 0;
    }
    return written;
}

// --- Queue: configuration ---

static bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

Result<Queue> Queue::create(memory::GuestMemory const& mem, uint16_t max_size)
{
    if (!is_power_of_two(max_size) || max_size > VIRTQ_MAX_SIZE)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("Virtqueue maximum size {} is not a power of two in [1, {}]", max_size, VIRTQ_MAX_SIZE));
    return Queue(mem, max_size);
}

Result<void> Queue::set_size(uint16_t size)
{
    if (!is_power_of_two(size) || size > m_max_size)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("Virtqueue size {} is not a power of two in [1, {}]", size, m_max_size));
    m_size = size;
    return ok();
}

void Queue::set_negotiated_features(uint64_t features)
{
    m_indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1;
    m_event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
}

void Queue::set_next_used(uint16_t idx)
{
    m_next_used = idx;
    m_last_notify_check = idx;
}

void Queue::reset()
{
    m_size = m_max_size;
    m_desc_table = GuestAddr(0);
    m_avail_ring = GuestAddr(0);
    m_used_ring = GuestAddr(0);
    m_ready = false;
    m_event_idx = false;
    m_indirect = false;
    m_notification_enabled = true;
    m_next_avail = 0;
    m_next_used = 0;
    m_last_notify_check = 0;
    m_error.reset();
}

bool Queue::in_ram(GuestAddr addr, uint64_t len) const
{
    for (auto const& r : m_mem.regions()) {
        if (r.kind != memory::RegionKind::Ram || addr < r.base)
            continue;
        if (range_within(addr.value() - r.base.value(), len, r.size))
            return true;
    }
    return false;
}

Result<void> Queue::validate() const
{
    struct Area {
        char const* name;
        GuestAddr addr;
        uint64_t size;
        uint64_t align;
    };
    Area const areas[] = {
        { "descriptor table", m_desc_table, virtq_desc_table_size(m_size), VIRTQ_DESC_ALIGN },
        { "available ring", m_avail_ring, virtq_avail_ring_size(m_size), VIRTQ_AVAIL_ALIGN },
        { "used ring", m_used_ring, virtq_used_ring_size(m_size), VIRTQ_USED_ALIGN },
    };
    for (auto const& a : areas) {
        if (a.addr.value() % a.align != 0)
            return Error(ErrorKind::InvalidArgument,
                fmt::format("Virtqueue {} at {} is not {}-byte aligned", a.name, a.addr, a.align));
        if (!m_mem.is_valid_range(a.addr, a.size))
            return Error(ErrorKind::OutOfRange,
                fmt::format("Virtqueue {} at {}+{:#x} is outside guest memory", a.name, a.addr, a.size));
    }
    // The device writes the used ring: it must not land in firmware ROM.
    if (!in_ram(m_used_ring, virtq_used_ring_size(m_size)))
        return Error(ErrorKind::OutOfRange, fmt::format("Virtqueue used ring at {} is not in RAM", m_used_ring));
    return ok();
}

// --- Queue: ring access ---

std::optional<uint16_t> Queue::read_u16(GuestAddr base, uint64_t offset) const
{
    auto at = base.checked_add(offset);
    if (!at)
        return std::nullopt;
    // One 16-bit load: the driver changes avail->idx, avail->flags and used_event while we read them, and a copy in
    // two parts (glibc's memcpy of 2 bytes loads the word, then the last byte again) can combine halves of two
    // values: avail->idx going 0x12ff -> 0x1300 read as 0x13ff looks like an index jump and breaks a good queue.
    auto v = m_mem.read_le16_once(*at);
    if (!v)
        return std::nullopt;
    return *v;
}

bool Queue::write_u16(GuestAddr base, uint64_t offset, uint16_t value) const
{
    auto at = base.checked_add(offset);
    if (!at)
        return false;
    Le16 v;
    v.set(value);
    return m_mem.write_obj(*at, v).has_value();
}

void Queue::break_queue(QueueError e)
{
    if (e == QueueError::AvailIndexJump)
        ++m_stats.index_jumps;
    else
        ++m_stats.ring_access_errors;
    m_error = e;
    HAKO_WARN_RATELIMITED("virtio queue (size {}): {}; stopped until reset", m_size, to_string(e));
}

void Queue::publish_avail_event()
{
    if (!write_u16(m_used_ring, virtq_avail_event_offset(m_size), m_next_avail)) {
        break_queue(QueueError::RingAccess);
        return;
    }
    // Full fence: avail_event must be visible before this side next reads avail->idx. Pairs with the driver's
    // mb() in virtqueue_kick_prepare between publishing avail->idx and reading avail_event: either the driver sees
    // the new avail_event and kicks, or the device's next read of avail->idx sees the new buffers.
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

// --- Queue: data path ---

std::optional<ChainError> Queue::walk_chain(uint16_t head, std::vector<Segment>& out) const
{
    if (head >= m_size)
        return ChainError::HeadOutOfRange;

    GuestAddr table = m_desc_table;
    uint32_t table_entries = m_size; // valid indices in the current table
    uint32_t hop_limit = m_size;     // a chain without loops visits each entry at most once
    bool in_indirect = false;
    bool seen_write = false;
    uint64_t total_len = 0;
    uint32_t idx = head;
    uint32_t hops = 0;

    for (;;) {
        if (++hops > hop_limit)
            return ChainError::ChainTooLong;
        auto at = table.checked_add(uint64_t { idx } * sizeof(VirtqDesc));
        if (!at)
            return ChainError::DescriptorOutOfMemory;
        // One copy of the descriptor; everything below validates and uses only this copy.
        auto desc = m_mem.read_obj<VirtqDesc>(*at);
        if (!desc)
            return ChainError::DescriptorOutOfMemory;
        uint64_t const addr = desc->addr.get();
        uint32_t const len = desc->len.get();
        uint16_t const flags = desc->flags.get();
        uint16_t const next = desc->next.get();

        if (flags & VIRTQ_DESC_F_INDIRECT) {
            // Section 2.7.5.3.1: one table per descriptor, no NEXT alongside, the WRITE flag is ignored.
            if (in_indirect)
                return ChainError::NestedIndirect;
            if (!m_indirect)
                return ChainError::IndirectNotNegotiated;
            if (flags & VIRTQ_DESC_F_NEXT)
                return ChainError::IndirectWithNext;
            if (len == 0 || len % sizeof(VirtqDesc) != 0)
                return ChainError::IndirectBadLength;
            if (!m_mem.is_valid_range(GuestAddr(addr), len))
                return ChainError::AddressOutOfRange;
            table = GuestAddr(addr);
            table_entries = len / static_cast<uint32_t>(sizeof(VirtqDesc));
            // next is 16 bits wide, so a walk without loops visits at most 65536 entries of a larger table.
            hop_limit = std::min<uint32_t>(table_entries, 65536);
            in_indirect = true;
            idx = 0;
            hops = 0;
            continue;
        }

        bool const is_write = flags & VIRTQ_DESC_F_WRITE;
        if (!is_write && seen_write)
            return ChainError::ReadableAfterWritable;
        auto span = m_mem.span(GuestAddr(addr), len);
        if (!span)
            return ChainError::AddressOutOfRange;
        if (is_write && !in_ram(GuestAddr(addr), len))
            return ChainError::WriteToReadOnly;
        total_len += len;
        if (total_len > std::numeric_limits<uint32_t>::max())
            return ChainError::LengthOverflow;
        seen_write = seen_write || is_write;
        out.push_back(Segment { GuestAddr(addr), *span, is_write });

        if (!(flags & VIRTQ_DESC_F_NEXT))
            return std::nullopt;
        if (next >= table_entries)
            return ChainError::NextOutOfRange;
        idx = next;
    }
}

PopResult Queue::pop()
{
    if (m_error)
        return PopResult::broken();
    if (!m_ready)
        return PopResult::empty();

    auto avail_idx = read_u16(m_avail_ring, VIRTQ_AVAIL_IDX_OFFSET);
    if (!avail_idx) {
        break_queue(QueueError::RingAccess);
        return PopResult::broken();
    }
    auto const pending = static_cast<uint16_t>(*avail_idx - m_next_avail);
    if (pending == 0)
        return PopResult::empty();
    if (pending > m_size) {
        // The driver can never have more than Queue Size buffers outstanding (section 2.7.6).
        break_queue(QueueError::AvailIndexJump);
        return PopResult::broken();
    }
    // Acquire: pairs with the driver's write barrier (virtio_wmb in virtqueue_add) between filling the descriptors
    // and avail->ring[] and publishing the avail->idx read above: the entry and descriptors read below are at least
    // as new as that index.
    std::atomic_thread_fence(std::memory_order_acquire);

    auto const slot = static_cast<uint16_t>(m_next_avail & (m_size - 1));
    auto head = read_u16(m_avail_ring, virtq_avail_entry_offset(slot));
    if (!head) {
        break_queue(QueueError::RingAccess);
        return PopResult::broken();
    }
    ++m_next_avail;
    if (m_event_idx && m_notification_enabled)
        publish_avail_event();

    std::vector<Segment> segments;
    if (auto bad = walk_chain(*head, segments)) {
        ++m_stats.bad_chains[static_cast<size_t>(*bad)];
        HAKO_WARN_RATELIMITED("virtio queue: bad descriptor chain at head {}: {}", *head, to_string(*bad));
        return PopResult::bad(*head, *bad);
    }
    ++m_stats.chains_popped;
    return PopResult::ok(DescriptorChain(*head, std::move(segments)));
}

std::optional<DescriptorChain> Queue::pop_chain()
{
    // At most Queue Size chains can be pending, so this ends; the bound guards against a driver that keeps adding.
    for (uint32_t i = 0; i <= m_size; ++i) {
        auto r = pop();
        switch (r.status()) {
        case PopResult::Status::Ok: return std::move(r).chain();
        case PopResult::Status::Empty:
        case PopResult::Status::Broken: return std::nullopt;
        case PopResult::Status::Bad:
            if (r.head() < m_size)
                add_used(r.head(), 0);
            break;
        }
    }
    return std::nullopt;
}

void Queue::add_used(uint16_t head, uint32_t len)
{
    if (m_error || !m_ready)
        return;
    if (head >= m_size) {
        ++m_stats.bad_used_heads;
        HAKO_WARN_RATELIMITED("virtio queue: device returned head {} of a queue of size {}", head, m_size);
        return;
    }
    auto const slot = static_cast<uint16_t>(m_next_used & (m_size - 1));
    VirtqUsedElem elem;
    elem.id.set(head);
    elem.len.set(len);
    auto at = m_used_ring.checked_add(virtq_used_elem_offset(slot));
    if (!at || !m_mem.write_obj(*at, elem)) {
        break_queue(QueueError::RingAccess);
        return;
    }
    // Release: the element must be visible before the used->idx that covers it. Pairs with the driver's read
    // barrier (virtio_rmb in virtqueue_get_buf) between reading used->idx and reading used->ring[].
    std::atomic_thread_fence(std::memory_order_release);
    ++m_next_used;
    if (!write_u16(m_used_ring, VIRTQ_USED_IDX_OFFSET, m_next_used))
        break_queue(QueueError::RingAccess);
}

bool Queue::should_notify()
{
    if (m_error || !m_ready)
        return false;
    // Full fence: the used->idx store must be visible before reading used_event or avail->flags. Pairs with the
    // driver's mb() in virtqueue_enable_cb between writing used_event (or clearing NO_INTERRUPT) and re-reading
    // used->idx: either the driver sees the new used entries, or the device sees its request for an interrupt.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint16_t const old_idx = m_last_notify_check;
    uint16_t const new_idx = m_next_used;
    m_last_notify_check = new_idx;
    if (old_idx == new_idx)
        return false;

    bool need;
    if (m_event_idx) {
        auto used_event = read_u16(m_avail_ring, virtq_used_event_offset(m_size));
        if (!used_event) {
            break_queue(QueueError::RingAccess);
            return false;
        }
        need = vring_need_event(*used_event, new_idx, old_idx);
    } else {
        auto flags = read_u16(m_avail_ring, VIRTQ_AVAIL_FLAGS_OFFSET);
        if (!flags) {
            break_queue(QueueError::RingAccess);
            return false;
        }
        need = !(*flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (!need)
        ++m_stats.notifications_suppressed;
    return need;
}

bool Queue::enable_notification()
{
    m_notification_enabled = true;
    if (m_error || !m_ready)
        return false;
    if (m_event_idx) {
        publish_avail_event(); // includes the full fence
    } else {
        if (!write_u16(m_used_ring, VIRTQ_USED_FLAGS_OFFSET, 0)) {
            break_queue(QueueError::RingAccess);
            return false;
        }
        // Full fence: the cleared NO_NOTIFY must be visible before avail->idx is re-read below. Pairs with the
        // driver's mb() in virtqueue_kick_prepare between publishing avail->idx and reading used->flags.
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    if (m_error)
        return false;
    // Re-check: buffers the driver added before it could see the request would otherwise never be kicked.
    auto avail_idx = read_u16(m_avail_ring, VIRTQ_AVAIL_IDX_OFFSET);
    if (!avail_idx) {
        break_queue(QueueError::RingAccess);
        return false;
    }
    return *avail_idx != m_next_avail;
}

void Queue::disable_notification()
{
    m_notification_enabled = false;
    if (m_error || !m_ready || m_event_idx)
        return; // with EVENT_IDX, avail_event simply stays behind and the driver stops kicking once it passes it
    if (!write_u16(m_used_ring, VIRTQ_USED_FLAGS_OFFSET, VIRTQ_USED_F_NO_NOTIFY))
        break_queue(QueueError::RingAccess);
}

} // namespace hako::devices::virtio
