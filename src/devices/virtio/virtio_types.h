// Wire formats of the VIRTIO split virtqueue (VIRTIO 1.2 section 2.7, "Split Virtqueues") and the feature bits
// the queue itself cares about (section 6, "Reserved Feature Bits").
//
// Every multi-byte field is little-endian (VIRTIO 1.x devices, section 1.4) and is stored here as a byte array
// wrapped in Le16/Le32/Le64, so a struct has alignment 1, no padding, and a field can only be read through
// get(): copies come out of guest memory with GuestMemory::read_obj and are never reached by casting a pointer.
//
// The avail and used rings have a variable-length array in the middle, so they are described as a header, an
// element type and offset helpers rather than one struct. Not covered: packed virtqueues (section 2.8) and
// legacy (pre-1.0) interfaces.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"

namespace hako::devices::virtio {

/// A little-endian 16-bit field.
struct Le16 {
    std::array<uint8_t, 2> bytes {};
    uint16_t get() const { return get_le16(bytes.data()); }
    void set(uint16_t v) { put_le16(bytes.data(), v); }
};
/// A little-endian 32-bit field.
struct Le32 {
    std::array<uint8_t, 4> bytes {};
    uint32_t get() const { return get_le32(bytes.data()); }
    void set(uint32_t v) { put_le32(bytes.data(), v); }
};
/// A little-endian 64-bit field.
struct Le64 {
    std::array<uint8_t, 8> bytes {};
    uint64_t get() const { return get_le64(bytes.data()); }
    void set(uint64_t v) { put_le64(bytes.data(), v); }
};
static_assert(sizeof(Le16) == 2 && alignof(Le16) == 1);
static_assert(sizeof(Le32) == 4 && alignof(Le32) == 1);
static_assert(sizeof(Le64) == 8 && alignof(Le64) == 1);

// Feature bits (section 6) that change how a split virtqueue works.
constexpr unsigned VIRTIO_F_INDIRECT_DESC = 28;
constexpr unsigned VIRTIO_F_EVENT_IDX = 29; // VIRTIO_RING_F_EVENT_IDX in Linux's headers
constexpr unsigned VIRTIO_RING_F_EVENT_IDX = VIRTIO_F_EVENT_IDX;
constexpr unsigned VIRTIO_F_VERSION_1 = 32;

/// The largest Queue Size of a split virtqueue (section 2.7: "The maximum Queue Size value is 32768").
constexpr uint16_t VIRTQ_MAX_SIZE = 32768;

// struct virtq_desc flags (section 2.7.5).
constexpr uint16_t VIRTQ_DESC_F_NEXT = 1;     // the buffer continues via the next field
constexpr uint16_t VIRTQ_DESC_F_WRITE = 2;    // device write-only (otherwise device read-only)
constexpr uint16_t VIRTQ_DESC_F_INDIRECT = 4; // the buffer holds a table of descriptors

/// struct virtq_desc (section 2.7.5): one buffer of a chain.
struct VirtqDesc {
    Le64 addr;
    Le32 len;
    Le16 flags;
    Le16 next;
};
static_assert(sizeof(VirtqDesc) == 16 && alignof(VirtqDesc) == 1);

// struct virtq_avail flags (section 2.7.6).
constexpr uint16_t VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/// The fixed start of struct virtq_avail: then le16 ring[Queue Size], then le16 used_event (EVENT_IDX only).
struct VirtqAvailHeader {
    Le16 flags;
    Le16 idx;
};
static_assert(sizeof(VirtqAvailHeader) == 4);

// struct virtq_used flags (section 2.7.8).
constexpr uint16_t VIRTQ_USED_F_NO_NOTIFY = 1;

/// The fixed start of struct virtq_used: then virtq_used_elem ring[Queue Size], then le16 avail_event.
struct VirtqUsedHeader {
    Le16 flags;
    Le16 idx;
};
static_assert(sizeof(VirtqUsedHeader) == 4);

/// struct virtq_used_elem (section 2.7.8). id is le32 on the wire though it holds a 16-bit head index.
struct VirtqUsedElem {
    Le32 id;
    Le32 len;
};
static_assert(sizeof(VirtqUsedElem) == 8);

// Alignment requirements of the three areas (section 2.7, table "Virtqueue Part Alignment").
constexpr uint64_t VIRTQ_DESC_ALIGN = 16;
constexpr uint64_t VIRTQ_AVAIL_ALIGN = 2;
constexpr uint64_t VIRTQ_USED_ALIGN = 4;

// Sizes of the three areas for a queue of `n` entries (same table), counting used_event/avail_event.
constexpr uint64_t virtq_desc_table_size(uint64_t n) { return sizeof(VirtqDesc) * n; }
constexpr uint64_t virtq_avail_ring_size(uint64_t n) { return sizeof(VirtqAvailHeader) + 2 * n + 2; }
constexpr uint64_t virtq_used_ring_size(uint64_t n) { return sizeof(VirtqUsedHeader) + sizeof(VirtqUsedElem) * n + 2; }
static_assert(virtq_avail_ring_size(256) == 6 + 2 * 256);
static_assert(virtq_used_ring_size(256) == 6 + 8 * 256);

// Byte offsets of fields inside the rings.
constexpr uint64_t VIRTQ_AVAIL_FLAGS_OFFSET = 0;
constexpr uint64_t VIRTQ_AVAIL_IDX_OFFSET = 2;
constexpr uint64_t virtq_avail_entry_offset(uint64_t slot) { return sizeof(VirtqAvailHeader) + 2 * slot; }
constexpr uint64_t virtq_used_event_offset(uint64_t n) { return virtq_avail_entry_offset(n); }
constexpr uint64_t VIRTQ_USED_FLAGS_OFFSET = 0;
constexpr uint64_t VIRTQ_USED_IDX_OFFSET = 2;
constexpr uint64_t virtq_used_elem_offset(uint64_t slot) { return sizeof(VirtqUsedHeader) + sizeof(VirtqUsedElem) * slot; }
constexpr uint64_t virtq_avail_event_offset(uint64_t n) { return virtq_used_elem_offset(n); }

/// vring_need_event() of section 2.7.10: true if moving the index from `old_idx` to `new_idx` crossed
/// `event_idx`, all in wrapping 16-bit arithmetic.
constexpr bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
    return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}
static_assert(vring_need_event(0, 1, 0));
static_assert(!vring_need_event(1, 1, 0));
static_assert(vring_need_event(0xffff, 0, 0xfffe));

} // namespace hako::devices::virtio
