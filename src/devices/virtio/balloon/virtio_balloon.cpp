#include "devices/virtio/balloon/virtio_balloon.h"

#include <array>

#include "base/bytes.h"
#include "base/log.h"

namespace hako::devices::virtio {

std::string balloon_stat_name(uint16_t tag)
{
    static constexpr std::array<char const*, 10> NAMES { "swap-in", "swap-out", "major-faults", "minor-faults",
        "free-memory", "total-memory", "available-memory", "disk-caches", "hugetlb-allocations", "hugetlb-failures" };
    if (tag < NAMES.size())
        return NAMES[tag];
    return fmt::format("tag-{}", tag);
}

VirtioBalloon::VirtioBalloon(memory::GuestMemory const& mem, uint32_t target_pages) : m_mem(mem), m_target(target_pages) { }

uint64_t VirtioBalloon::device_features() const
{
    return (uint64_t { 1 } << VIRTIO_BALLOON_F_STATS_VQ) | (uint64_t { 1 } << VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
}

void VirtioBalloon::read_config(uint32_t offset, std::span<uint8_t> data)
{
    std::array<uint8_t, VIRTIO_BALLOON_CONFIG_SIZE> cfg {};
    {
        std::lock_guard lock(m_lock);
        put_le32(cfg.data() + VIRTIO_BALLOON_CFG_NUM_PAGES, m_target);
        put_le32(cfg.data() + VIRTIO_BALLOON_CFG_ACTUAL, m_actual);
    }
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = cfg[offset + i]; // the transport keeps offset + size within config_size()
}

void VirtioBalloon::write_config(uint32_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_lock);
    // Only `actual` is the driver's; byte-wise so a partial write updates just those bytes.
    std::array<uint8_t, 4> actual {};
    put_le32(actual.data(), m_actual);
    for (size_t i = 0; i < data.size(); ++i) {
        uint32_t const at = offset + static_cast<uint32_t>(i);
        if (at >= VIRTIO_BALLOON_CFG_ACTUAL)
            actual[at - VIRTIO_BALLOON_CFG_ACTUAL] = data[i];
        else
            HAKO_WARN_RATELIMITED("virtio-balloon: driver write to num_pages (offset {}) ignored", at);
    }
    m_actual = get_le32(actual.data());
}

Result<void> VirtioBalloon::activate(ActivateContext const& context)
{
    if (context.queues.size() < 3 || !context.interrupt)
        return Error(ErrorKind::InvalidArgument, "virtio-balloon: activated without its queues or interrupt");
    std::lock_guard lock(m_lock);
    m_queues = context.queues;
    m_interrupt = context.interrupt;
    m_stats_vq = (context.features >> VIRTIO_BALLOON_F_STATS_VQ) & 1;
    m_active = true;
    return ok();
}

void VirtioBalloon::reset()
{
    std::lock_guard lock(m_lock);
    m_active = false;
    m_queues = {};
    m_interrupt = nullptr;
    m_stats_chain.reset();
    m_actual = 0;
}

uint32_t VirtioBalloon::serve_pfns(DescriptorChain const& chain, bool inflate)
{
    // The readable part is an array of le32 PFNs; read it in pieces.
    std::array<uint8_t, 256 * 4> buf {};
    uint32_t const total = std::min(chain.readable_len() / 4, MAX_PFNS_PER_BUFFER);
    for (uint32_t done = 0; done < total;) {
        uint32_t const n = std::min<uint32_t>(total - done, 256);
        size_t const got = chain.read_from_chain(std::span<uint8_t>(buf).first(n * 4), size_t { done } * 4);
        if (got < size_t { n } * 4)
            break;
        for (uint32_t i = 0; i < n; ++i) {
            uint64_t const addr = uint64_t { get_le32(buf.data() + 4 * i) } << VIRTIO_BALLOON_PFN_SHIFT;
            memory::GuestAddr const gpa(addr);
            if (inflate) {
                auto r = m_mem.discard(gpa, 1ull << VIRTIO_BALLOON_PFN_SHIFT);
                if (r) {
                    ++m_stats.inflated_pages;
                } else if (r.error().kind() == ErrorKind::Io) {
                    ++m_stats.discard_failures;
                    HAKO_WARN_RATELIMITED("virtio-balloon: {}", r.error().message());
                } else {
                    ++m_stats.bad_pfns;
                    HAKO_WARN_RATELIMITED("virtio-balloon: inflate of PFN {:#x} skipped: {}", addr >> 12, r.error().message());
                }
            } else if (m_mem.is_valid_range(gpa, 1ull << VIRTIO_BALLOON_PFN_SHIFT)) {
                ++m_stats.deflated_pages; // nothing to do: the page comes back when the guest touches it
            } else {
                ++m_stats.bad_pfns;
            }
        }
        done += n;
    }
    return 0; // nothing written into the chain
}

void VirtioBalloon::queue_notify(uint16_t queue)
{
    std::lock_guard lock(m_lock);
    if (!m_active || queue >= 3)
        return;
    Queue& q = m_queues[queue];
    DrainOutcome out;
    if (queue == STATS_QUEUE) {
        // The stats buffer is held until the host wants fresh figures (request_stats), not returned at once.
        bool returned_older = false;
        out = drain_queue(q, q.size(), [this, &q, &returned_older](DescriptorChain& chain) -> std::optional<uint32_t> {
            std::array<uint8_t, 10 * MAX_STATS> buf {};
            size_t const got = chain.read_from_chain(buf, 0);
            for (size_t at = 0; at + 10 <= got; at += 10)
                m_guest_stats[get_le16(buf.data() + at)] = get_le64(buf.data() + at + 2);
            ++m_stats.stats_updates;
            if (m_stats_chain) { // a driver should have only one: the older goes back
                q.add_used(m_stats_chain->head(), 0);
                returned_older = true;
            }
            m_stats_chain = std::move(chain);
            return std::nullopt;
        });
        out.used = out.used || returned_older;
    } else {
        bool const inflate = queue == INFLATE_QUEUE;
        out = drain_queue(q, q.size(), [this, inflate](DescriptorChain const& chain) { return serve_pfns(chain, inflate); });
    }
    m_stats.bad_chains += out.bad_chains;
    if (out.budget_exhausted)
        m_interrupt->requeue_notify(queue); // the rest without waiting for a notify that may not come
    if (out.broken) {
        ++m_stats.queue_broken;
        HAKO_WARN_RATELIMITED("virtio-balloon: queue {} broken; needs reset", queue);
        m_interrupt->signal_needs_reset();
        return;
    }
    if (out.used && q.should_notify())
        m_interrupt->signal_used_queue(queue);
}

void VirtioBalloon::set_target(uint32_t pages)
{
    std::lock_guard lock(m_lock);
    if (pages == m_target)
        return;
    m_target = pages;
    if (m_active)
        m_interrupt->signal_config_change();
}

bool VirtioBalloon::request_stats()
{
    std::lock_guard lock(m_lock);
    if (!m_active || !m_stats_vq || !m_stats_chain)
        return false;
    Queue& q = m_queues[STATS_QUEUE];
    q.add_used(m_stats_chain->head(), 0);
    m_stats_chain.reset();
    if (q.should_notify())
        m_interrupt->signal_used_queue(STATS_QUEUE);
    return true;
}

uint32_t VirtioBalloon::target_pages() const
{
    std::lock_guard lock(m_lock);
    return m_target;
}

uint32_t VirtioBalloon::actual_pages() const
{
    std::lock_guard lock(m_lock);
    return m_actual;
}

std::map<uint16_t, uint64_t> VirtioBalloon::guest_stats() const
{
    std::lock_guard lock(m_lock);
    return m_guest_stats;
}

BalloonStats VirtioBalloon::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

} // namespace hako::devices::virtio
