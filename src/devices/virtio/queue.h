// Queue: the device side of a VIRTIO split virtqueue (VIRTIO 1.2 section 2.7, "Split Virtqueues"), written for a
// hostile driver.
//
// The transport (virtio-pci or virtio-mmio) configures a Queue with the Queue Size, the guest addresses of the
// descriptor table, available ring and used ring, the negotiated features and the ready flag. The device pops
// descriptor chains from the available ring, reads requests from their device-readable buffers, writes replies
// into their device-writable buffers, returns them with add_used() and asks should_notify() whether to interrupt.
//
// Covered: direct and indirect descriptors (VIRTIO_F_INDIRECT_DESC, section 2.7.5.3), VIRTIO_F_EVENT_IDX
// (used_event/avail_event, section 2.7.10) and the NO_INTERRUPT/NO_NOTIFY flags, 16-bit index wrap-around.
//
// Hostile-guest rules (docs STYLE 3.6): every descriptor index is checked against its table; a chain walk takes at
// most Queue Size hops (an indirect table: at most its length / 16); an indirect descriptor must not carry NEXT,
// must not appear inside an indirect table and must have a non-zero length that is a multiple of 16; every
// buffer [addr, addr+len) must lie inside guest memory, and a device-writable one inside RAM; device-readable
// buffers must precede device-writable ones; the sum of the lengths must fit in 32 bits. The whole chain is
// checked before pop() returns it, so a device never acts on part of a bad chain. A bad chain is consumed and
// reported (PopResult::Status::Bad) so the device can return it with length 0. An available index that runs more
// than Queue Size ahead breaks the queue (QueueError::AvailIndexJump) until reset(); the device should then set
// DEVICE_NEEDS_RESET.
//
// Deliberately not done: packed virtqueues (section 2.8), VIRTIO_F_IN_ORDER, VIRTIO_F_NOTIFICATION_DATA, legacy
// (pre-1.0) layouts, and any locking: a Queue is not thread-safe; the owning device serialises access with its
// own mutex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "devices/virtio/virtio_types.h"
#include "memory/guest_memory.h"

namespace hako::devices::virtio {

/// Why a descriptor chain was rejected.
enum class ChainError : uint8_t {
    HeadOutOfRange,        // the avail ring entry is >= Queue Size
    NextOutOfRange,        // a next field is >= the size of its table
    ChainTooLong,          // more hops than the table has entries: a loop
    DescriptorOutOfMemory, // the descriptor itself (indirect table entry) cannot be read
    AddressOutOfRange,     // [addr, addr+len) overflows or leaves guest memory
    WriteToReadOnly,       // a device-writable buffer outside RAM (firmware ROM)
    ReadableAfterWritable, // a device-readable buffer after a device-writable one
    IndirectNotNegotiated, // VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC
    IndirectWithNext,      // VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT
    NestedIndirect,        // VIRTQ_DESC_F_INDIRECT inside an indirect table
    IndirectBadLength,     // an indirect table length of 0 or not a multiple of 16
    LengthOverflow,        // the buffer lengths add up to more than 2^32 - 1
};
constexpr size_t CHAIN_ERROR_COUNT = static_cast<size_t>(ChainError::LengthOverflow) + 1;
std::string_view to_string(ChainError error);

/// Why a queue stopped working until reset().
enum class QueueError : uint8_t {
    AvailIndexJump, // avail->idx moved more than Queue Size past the last index the device saw
    RingAccess,     // a ring could not be read or written (not configured inside guest memory)
};
std::string_view to_string(QueueError error);

/// Counters, cumulative over resets.
struct QueueStats {
    uint64_t chains_popped { 0 };                            // good chains handed to the device
    std::array<uint64_t, CHAIN_ERROR_COUNT> bad_chains {};   // bad chains, by reason
    uint64_t index_jumps { 0 };                              // avail index jumps (each breaks the queue)
    uint64_t ring_access_errors { 0 };                       // ring reads/writes that failed
    uint64_t bad_used_heads { 0 };                           // add_used() with a head >= Queue Size (dropped)
    uint64_t notifications_suppressed { 0 };                 // should_notify() said no because the driver asked
    uint64_t bad_chain_count(ChainError e) const { return bad_chains[static_cast<size_t>(e)]; }
    uint64_t bad_chain_total() const;
};

/// One buffer of a validated chain.
struct Segment {
    memory::GuestAddr addr;
    memory::GuestSpan span; // [addr, addr+len), checked against guest memory
    bool is_write { false }; // device-writable
};

/// A descriptor chain whose every buffer has been validated. Readable segments come first, then writable ones.
/// The bytes are still guest memory: the guest can change them at any time, so copy before validating contents.
class DescriptorChain final {
public:
    DescriptorChain(uint16_t head, std::vector<Segment> segments);

    /// The head index to give back with Queue::add_used().
    uint16_t head() const { return m_head; }
    std::span<Segment const> segments() const { return m_segments; }
    /// Total bytes of the device-readable buffers.
    uint32_t readable_len() const { return m_readable_len; }
    /// Total bytes of the device-writable buffers.
    uint32_t writable_len() const { return m_writable_len; }

    /// Gathers device-readable bytes, starting `offset` bytes into the readable part, into `out`.
    /// \return the number of bytes copied: less than out.size() if the readable part ends first.
    size_t read_from_chain(std::span<uint8_t> out, size_t offset) const;
    /// Scatters `in` into the device-writable buffers, starting `offset` bytes into the writable part.
    /// \return the number of bytes written: less than in.size() if the writable part ends first.
    size_t write_to_chain(std::span<uint8_t const> in, size_t offset) const;

private:
    uint16_t m_head;
    std::vector<Segment> m_segments;
    size_t m_first_writable { 0 }; // index of the first writable segment (== size if none)
    uint32_t m_readable_len { 0 };
    uint32_t m_writable_len { 0 };
};

/// What pop() found.
class PopResult final {
public:
    enum class Status {
        Ok,     // chain() is a validated chain
        Empty,  // nothing available (or the queue is not ready)
        Bad,    // a chain was consumed but rejected: head() and error() say which and why
        Broken, // the queue is in an error state (Queue::error()) and hands out nothing until reset()
    };

    static PopResult ok(DescriptorChain chain)
    {
        uint16_t const head = chain.head(); // read before the move: argument evaluation order is unspecified
        return PopResult(Status::Ok, head, ChainError {}, std::move(chain));
    }
    static PopResult empty() { return PopResult(Status::Empty, 0, ChainError {}, std::nullopt); }
    static PopResult bad(uint16_t head, ChainError e) { return PopResult(Status::Bad, head, e, std::nullopt); }
    static PopResult broken() { return PopResult(Status::Broken, 0, ChainError {}, std::nullopt); }

    Status status() const { return m_status; }
    bool is_ok() const { return m_status == Status::Ok; }
    /// The chain (status Ok only).
    DescriptorChain& chain() & { return *m_chain; }
    DescriptorChain&& chain() && { return std::move(*m_chain); }
    /// The head index of the chain (status Ok or Bad). For HeadOutOfRange it is the bad value itself.
    uint16_t head() const { return m_head; }
    /// Why the chain was rejected (status Bad only).
    ChainError error() const { return m_error; }

private:
    PopResult(Status s, uint16_t head, ChainError e, std::optional<DescriptorChain> chain)
        : m_status(s), m_head(head), m_error(e), m_chain(std::move(chain))
    {
    }
    Status m_status;
    uint16_t m_head;
    ChainError m_error;
    std::optional<DescriptorChain> m_chain;
};

class Queue final {
public:
    /// A queue whose largest Queue Size is `max_size` (what the transport reports as QueueNumMax).
    /// Fails unless max_size is a power of two no larger than VIRTQ_MAX_SIZE.
    [[nodiscard]] static Result<Queue> create(memory::GuestMemory const& mem, uint16_t max_size);

    // Configuration, done by the transport from guest register writes. None of these touch guest memory.

    /// Sets Queue Size. Fails (and keeps the old size) unless it is a power of two in [1, max_size()].
    [[nodiscard]] Result<void> set_size(uint16_t size);
    void set_desc_table(memory::GuestAddr addr) { m_desc_table = addr; }
    void set_avail_ring(memory::GuestAddr addr) { m_avail_ring = addr; }
    void set_used_ring(memory::GuestAddr addr) { m_used_ring = addr; }
    /// Takes the features the driver accepted; the queue uses VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX.
    void set_negotiated_features(uint64_t features);
    /// queue_enable / QueueReady. pop() hands out nothing while the queue is not ready.
    void set_ready(bool ready) { m_ready = ready; }
    /// Where the device starts in the rings (0 after reset); for restoring state and for tests.
    void set_next_avail(uint16_t idx) { m_next_avail = idx; }
    void set_next_used(uint16_t idx);
    /// Back to the state after device reset: max size, addresses 0, not ready, no features, no error.
    /// Counters are kept.
    void reset();

    /// Checks the configuration before the queue is used: size set, each area inside guest memory with the
    /// alignment section 2.7 requires (descriptor table 16, avail ring 2, used ring 4), the used ring in RAM.
    /// On failure the device should enter DEVICE_NEEDS_RESET.
    [[nodiscard]] Result<void> validate() const;

    uint16_t max_size() const { return m_max_size; }
    uint16_t size() const { return m_size; }
    bool ready() const { return m_ready; }
    memory::GuestAddr desc_table() const { return m_desc_table; }
    memory::GuestAddr avail_ring() const { return m_avail_ring; }
    memory::GuestAddr used_ring() const { return m_used_ring; }
    uint16_t next_avail() const { return m_next_avail; }
    uint16_t next_used() const { return m_next_used; }
    bool event_idx() const { return m_event_idx; }
    bool indirect_desc() const { return m_indirect; }
    /// The error that stopped the queue, if any.
    std::optional<QueueError> error() const { return m_error; }
    QueueStats const& stats() const { return m_stats; }

    // Data path, done by the device.

    /// Takes the next available chain and validates all of it.
    /// \return Ok with the chain, Empty, Bad (consumed: give head() back with length 0), or Broken.
    PopResult pop();
    /// pop() for devices that do not care about the reasons: bad chains are given back with length 0 (if their
    /// head is in range) and skipped. \return the next valid chain, or nothing if the queue is empty or broken.
    std::optional<DescriptorChain> pop_chain();
    /// Puts `head` in the used ring with `len` bytes written, and publishes the new used index.
    /// A head >= Queue Size is counted and dropped.
    void add_used(uint16_t head, uint32_t len);
    /// True if the driver wants an interrupt for the used entries added since the previous call: with
    /// EVENT_IDX if the used index crossed used_event, otherwise unless VIRTQ_AVAIL_F_NO_INTERRUPT is set.
    bool should_notify();
    /// Asks the driver for notifications again (clears VIRTQ_USED_F_NO_NOTIFY, or sets avail_event with EVENT_IDX).
    /// \return true if buffers became available meanwhile: the device must pop again rather than wait for a kick.
    bool enable_notification();
    /// Asks the driver not to notify (VIRTQ_USED_F_NO_NOTIFY; with EVENT_IDX avail_event simply stops advancing).
    void disable_notification();

private:
    Queue(memory::GuestMemory const& mem, uint16_t max_size) : m_mem(mem), m_max_size(max_size), m_size(max_size) {}

    std::optional<uint16_t> read_u16(memory::GuestAddr base, uint64_t offset) const;
    bool write_u16(memory::GuestAddr base, uint64_t offset, uint16_t value) const;
    bool in_ram(memory::GuestAddr addr, uint64_t len) const;
    /// Walks and validates the chain starting at `head`; fills `out` or returns why it is bad.
    std::optional<ChainError> walk_chain(uint16_t head, std::vector<Segment>& out) const;
    void break_queue(QueueError e);
    void publish_avail_event();

    memory::GuestMemory const& m_mem;
    uint16_t m_max_size;
    uint16_t m_size;
    memory::GuestAddr m_desc_table;
    memory::GuestAddr m_avail_ring;
    memory::GuestAddr m_used_ring;
    bool m_ready { false };
    bool m_event_idx { false };
    bool m_indirect { false };
    bool m_notification_enabled { true };
    uint16_t m_next_avail { 0 };       // next avail ring index the device will read
    uint16_t m_next_used { 0 };        // next used ring index the device will write (the published used->idx)
    uint16_t m_last_notify_check { 0 }; // m_next_used at the previous should_notify()
    std::optional<QueueError> m_error;
    QueueStats m_stats;
};

} // namespace hako::devices::virtio
