// VirtioBalloon: the traditional memory balloon (VIRTIO 1.2 section 5.5, device ID 5). The host sets a target
// (num_pages, 4 KiB pages the guest should hand back); the guest inflates by giving page frame numbers on the
// inflate queue, which the device returns to the host (GuestMemory::discard, i.e. MADV_DONTNEED), and deflates by
// giving them back on the deflate queue (the memory comes back on first touch); it reports how far it got in
// `actual`. With VIRTIO_BALLOON_F_STATS_VQ the guest keeps one buffer of (le16 tag, le64 value) statistics on the
// stats queue: the device holds it, and returns it (a used buffer) when the host wants fresher figures; the guest
// refills and re-adds it.
//
// Features offered: STATS_VQ, DEFLATE_ON_OOM (the guest may deflate without asking under memory pressure: a
// guest-side policy the device only advertises), MUST_TELL_HOST is not offered (deflate needs no host action).
// Queues: 0 inflateq, 1 deflateq, 2 statsq. Config: le32 num_pages (device), le32 actual (driver-writable);
// free page hinting and page poisoning are not offered, so the config space is those 8 bytes.
//
// Hostile-guest rules: a PFN that is not a whole page of guest RAM (ROM, MMIO, beyond memory, overflowing) is
// skipped and counted; a buffer's PFN array is read in bounded pieces (at most MAX_PFNS_PER_BUFFER per chain);
// each notify serves at most a queue's worth of chains; a stats buffer longer than MAX_STATS entries is read up
// to that; `actual` can be anything the guest writes (it is only reported). A broken queue: DEVICE_NEEDS_RESET.
// Deliberately not done: free page hinting and reporting, page poisoning, huge-page-aware discards.
//
// Threading: state guarded by m_lock; set_target() and request_stats() come from the event loop (API), queue
// notifications from the event loop (ioeventfd) or vCPU threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "devices/virtio/queue_drain.h"
#include "devices/virtio/virtio_device.h"
#include "memory/guest_memory.h"

namespace hako::devices::virtio {

constexpr unsigned VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
constexpr unsigned VIRTIO_BALLOON_F_STATS_VQ = 1;
constexpr unsigned VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
constexpr uint32_t VIRTIO_BALLOON_PFN_SHIFT = 12;
constexpr uint32_t VIRTIO_BALLOON_CFG_NUM_PAGES = 0;
constexpr uint32_t VIRTIO_BALLOON_CFG_ACTUAL = 4;
constexpr uint32_t VIRTIO_BALLOON_CONFIG_SIZE = 8;

// Statistics tags (5.5.6.3).
constexpr uint16_t VIRTIO_BALLOON_S_SWAP_IN = 0;
constexpr uint16_t VIRTIO_BALLOON_S_SWAP_OUT = 1;
constexpr uint16_t VIRTIO_BALLOON_S_MAJFLT = 2;
constexpr uint16_t VIRTIO_BALLOON_S_MINFLT = 3;
constexpr uint16_t VIRTIO_BALLOON_S_MEMFREE = 4;
constexpr uint16_t VIRTIO_BALLOON_S_MEMTOT = 5;
constexpr uint16_t VIRTIO_BALLOON_S_AVAIL = 6;
constexpr uint16_t VIRTIO_BALLOON_S_CACHES = 7;
constexpr uint16_t VIRTIO_BALLOON_S_HTLB_PGALLOC = 8;
constexpr uint16_t VIRTIO_BALLOON_S_HTLB_PGFAIL = 9;
/// The spec's name of a statistics tag ("swap-in", "free-memory"...), or "tag-N".
std::string balloon_stat_name(uint16_t tag);

struct BalloonStats {
    uint64_t inflated_pages { 0 };   // PFNs discarded (cumulative)
    uint64_t deflated_pages { 0 };   // PFNs given back (cumulative)
    uint64_t bad_pfns { 0 };         // PFNs outside guest RAM, skipped
    uint64_t discard_failures { 0 }; // discards the host refused
    uint64_t bad_chains { 0 };
    uint64_t stats_updates { 0 };    // statistics buffers received
    uint64_t queue_broken { 0 };
};

class VirtioBalloon final : public VirtioDevice {
public:
    static constexpr uint16_t QUEUE_SIZE = 128;
    static constexpr uint32_t MAX_PFNS_PER_BUFFER = 4096;
    static constexpr uint32_t MAX_STATS = 64;
    static constexpr uint16_t INFLATE_QUEUE = 0;
    static constexpr uint16_t DEFLATE_QUEUE = 1;
    static constexpr uint16_t STATS_QUEUE = 2;

    /// \param mem the guest memory pages are discarded from  \param target_pages initial num_pages
    VirtioBalloon(memory::GuestMemory const& mem, uint32_t target_pages);

    std::string_view name() const override { return "balloon"; }
    uint16_t device_type() const override { return VIRTIO_ID_BALLOON; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 3; }
    uint16_t max_queue_size(uint16_t) const override { return QUEUE_SIZE; }
    uint32_t config_size() const override { return VIRTIO_BALLOON_CONFIG_SIZE; }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<uint8_t const> data) override;
    [[nodiscard]] Result<void> activate(ActivateContext const& context) override;
    void queue_notify(uint16_t queue) override;
    void reset() override;

    /// Host side: a new target (pages); sends a configuration change notification if the driver is active.
    void set_target(uint32_t pages);
    /// Host side: asks the guest for fresh statistics (gives the held stats buffer back). false if none is held.
    bool request_stats();

    uint32_t target_pages() const;
    uint32_t actual_pages() const;
    /// The latest statistics the guest reported, by tag.
    std::map<uint16_t, uint64_t> guest_stats() const;
    BalloonStats stats() const;

private:
    uint32_t serve_pfns(DescriptorChain const& chain, bool inflate);

    memory::GuestMemory const& m_mem;
    mutable std::mutex m_lock; // guards everything below
    uint32_t m_target;
    uint32_t m_actual { 0 };
    bool m_active { false };
    bool m_stats_vq { false };
    std::span<Queue> m_queues;
    VirtioInterrupt* m_interrupt { nullptr };
    std::optional<DescriptorChain> m_stats_chain; // the stats buffer the device holds
    std::map<uint16_t, uint64_t> m_guest_stats;
    BalloonStats m_stats;
};

} // namespace hako::devices::virtio
