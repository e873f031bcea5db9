#include "devices/virtio/blk/virtio_blk.h"

#include <algorithm>
#include <array>
#include <limits.h>

#include "base/log.h"
#include "block/block_device.h"

namespace hako::devices::virtio::blk {

namespace {

/// Completions taken from the ring per reap() call.
constexpr size_t REAP_BATCH = 32;

/// preadv/pwritev (and their io_uring forms) take at most IOV_MAX buffers: longer requests run synchronously
/// (DiskImage splits them).
constexpr size_t MAX_RING_IOVECS = IOV_MAX;

} // namespace

std::unique_ptr<block::IoUring> VirtioBlk::create_ring(std::string_view disk_path, unsigned depth)
{
    auto ring = block::IoUring::create(depth);
    if (!ring) {
        HAKO_WARN("virtio-blk {}: io_uring unavailable ({}): using synchronous I/O", disk_path, ring.error().message());
        return nullptr;
    }
    return std::move(*ring);
}

VirtioBlk::VirtioBlk(std::shared_ptr<block::BlockDevice> disk, BlkOptions const& options,
    std::unique_ptr<block::IoUring> ring)
    : m_disk(std::move(disk))
    , m_config(BlkConfig::for_disk(*m_disk, options))
    // A format with its own cluster mapping (qcow2) has no direct descriptor: synchronous through BlockDevice.
    , m_ring(m_disk->direct_fd() >= 0 ? std::move(ring) : nullptr)
{
    if (m_ring) {
        unsigned const slots = std::min(MAX_IN_FLIGHT, m_ring->depth());
        m_slots.resize(slots);
        m_free_slots.reserve(slots);
        for (uint32_t i = slots; i > 0; --i)
            m_free_slots.push_back(i - 1);
    }
}

VirtioBlk::~VirtioBlk()
{
    std::lock_guard lock(m_lock);
    drain_in_flight();
}

void VirtioBlk::read_config(uint32_t offset, std::span<uint8_t> data) { (void)m_config.read_config(offset, data); }

void VirtioBlk::write_config(uint32_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_lock);
    ++m_config_writes;
    HAKO_WARN_RATELIMITED("virtio-blk {}: config write at {:#x} ({} bytes) ignored: read-only", m_disk->path(), offset,
        data.size());
}

Result<void> VirtioBlk::activate(ActivateContext const& context)
{
    if (context.queues.empty() || !context.interrupt)
        return Error(ErrorKind::InvalidArgument, "virtio-blk: activated without its queue or interrupt");
    std::lock_guard lock(m_lock);
    m_queue = &context.queues[0];
    m_interrupt = context.interrupt;
    m_active = true;
    return ok();
}

void VirtioBlk::drain_in_flight()
{
    if (!m_ring)
        return;
    std::array<block::IoUring::Completion, REAP_BATCH> done;
    while (m_ring->in_flight() > 0) {
        auto n = m_ring->wait(done);
        if (!n) {
            // Cannot happen short of a broken ring; the slots are freed anyway, and late completions are ignored.
            HAKO_ERROR("virtio-blk {}: waiting for {} requests in flight failed: {}", m_disk->path(),
                m_ring->in_flight(), n.error().message());
            break;
        }
        m_dropped_on_reset += *n;
    }
    for (uint32_t i = 0; i < m_slots.size(); ++i) {
        if (m_slots[i]) {
            m_slots[i].reset();
            m_free_slots.push_back(i);
        }
    }
}

void VirtioBlk::reset()
{
    std::lock_guard lock(m_lock);
    // First let the I/O finish: it may still be writing into guest buffers of the old rings.
    drain_in_flight();
    m_active = false;
    m_queue = nullptr;
    m_interrupt = nullptr;
}

void VirtioBlk::after_serve(Queue& queue, ServeOutcome out)
{
    if (out.broken) {
        ++m_queue_broken;
        HAKO_WARN_RATELIMITED("virtio-blk {}: queue broken ({}); needs reset", m_disk->path(),
            queue.error() ? to_string(*queue.error()) : std::string_view("unknown"));
        m_interrupt->signal_needs_reset();
        return;
    }
    if (out.used && queue.should_notify())
        m_interrupt->signal_used_queue(0);
}

void VirtioBlk::queue_notify(uint16_t queue_index)
{
    std::lock_guard lock(m_lock);
    if (!m_active || queue_index != 0 || !m_queue)
        return;
    Queue& queue = *m_queue;
    if (m_ring) {
        after_serve(queue, serve_async(queue));
        return;
    }
    auto const out = drain_queue(queue, queue.size(),
        [this](DescriptorChain const& chain) { return process_request(chain, *m_disk, m_config, m_stats); });
    if (out.budget_exhausted)
        m_interrupt->requeue_notify(0); // the rest without waiting for a notify that may not come
    after_serve(queue, { out.used, out.broken });
}

std::optional<uint32_t> VirtioBlk::start_io(DescriptorChain chain, IoPlan plan)
{
    bool const data_op = plan.op != IoOp::Flush;
    if (m_free_slots.empty() || (data_op && (plan.buffers.empty() || plan.buffers.size() > MAX_RING_IOVECS)))
        return complete_request(chain, plan, execute_plan(plan, *m_disk), m_stats);
    uint32_t const slot = m_free_slots.back();
    Result<void> queued;
    switch (plan.op) {
    case IoOp::Read:
        queued = m_ring->queue_readv(m_disk->direct_fd(), plan.offset, plan.buffers, slot);
        break;
    case IoOp::Write: {
        std::vector<std::span<uint8_t const>> const bufs(plan.buffers.begin(), plan.buffers.end());
        queued = m_ring->queue_writev(m_disk->direct_fd(), plan.offset, bufs, slot);
        break;
    }
    case IoOp::Flush:
        queued = m_ring->queue_fdatasync(m_disk->direct_fd(), slot);
        break;
    }
    if (!queued) {
        // Not expected (slots never outnumber the ring's depth): do it the slow way rather than fail the guest.
        HAKO_WARN_RATELIMITED("virtio-blk {}: {}: request run synchronously", m_disk->path(), queued.error().message());
        return complete_request(chain, plan, execute_plan(plan, *m_disk), m_stats);
    }
    m_free_slots.pop_back();
    m_slots[slot].emplace(InFlight { std::move(chain), std::move(plan) });
    return std::nullopt;
}

VirtioBlk::ServeOutcome VirtioBlk::serve_async(Queue& queue)
{
    ServeOutcome out;
    bool submitted = false;
    uint32_t budget = queue.size(); // bounded work per call, as drain_queue()
    for (;;) {
        queue.disable_notification();
        while (budget > 0 && !m_free_slots.empty()) {
            auto r = queue.pop();
            if (r.status() == PopResult::Status::Empty)
                break;
            if (r.status() == PopResult::Status::Broken) {
                out.broken = true;
                break;
            }
            --budget;
            if (r.status() == PopResult::Status::Bad) {
                if (r.head() < queue.size()) {
                    queue.add_used(r.head(), 0);
                    out.used = true;
                }
                continue;
            }
            uint16_t const head = r.chain().head();
            auto prepared = prepare_request(r.chain(), *m_disk, m_config, m_stats);
            std::optional<uint32_t> used_len;
            if (auto const* done = std::get_if<FinishedRequest>(&prepared)) {
                used_len = done->used_len;
            } else {
                used_len = start_io(std::move(r).chain(), std::move(std::get<IoPlan>(prepared)));
                submitted = submitted || !used_len;
            }
            if (used_len) {
                queue.add_used(head, *used_len);
                out.used = true;
            }
        }
        if (out.broken)
            break;
        // Out of slots: what is left waits for a completion to free one (handle_completions() serves again). Out of
        // budget: served again from the event loop (requeue_notify), not left for a notify the driver need not send.
        if (budget == 0 || m_free_slots.empty()) {
            queue.enable_notification();
            if (budget == 0)
                m_interrupt->requeue_notify(0);
            break;
        }
        if (!queue.enable_notification())
            break;
    }
    if (submitted) {
        // On failure the requests stay in the submission ring and go with the next submit or wait.
        if (auto r = m_ring->submit(); !r)
            HAKO_WARN_RATELIMITED("virtio-blk {}: {}", m_disk->path(), r.error().message());
    }
    out.broken = out.broken || queue.error().has_value();
    return out;
}

bool VirtioBlk::finish_io(block::IoUring::Completion const& c)
{
    if (c.user_data >= m_slots.size() || !m_slots[c.user_data]) {
        ++m_stray_completions;
        return false;
    }
    auto const slot = static_cast<uint32_t>(c.user_data);
    InFlight& req = *m_slots[slot];
    uint32_t const len = complete_request(req.chain, req.plan, c.res, m_stats);
    uint16_t const head = req.chain.head();
    m_slots[slot].reset();
    m_free_slots.push_back(slot);
    if (!m_queue) // cannot happen: reset() drains before dropping the queue
        return false;
    m_queue->add_used(head, len);
    return true;
}

void VirtioBlk::handle_completions()
{
    if (!m_ring)
        return;
    // Consume first: a completion posted after this is either reaped below or signals the eventfd again.
    m_ring->event().consume();
    std::lock_guard lock(m_lock);
    ServeOutcome out;
    std::array<block::IoUring::Completion, REAP_BATCH> done;
    for (;;) {
        size_t const n = m_ring->reap(done);
        for (size_t i = 0; i < n; ++i)
            out.used = finish_io(done[i]) || out.used;
        if (n < done.size())
            break;
    }
    if (!m_active || !m_queue)
        return;
    // Slots were freed: chains left waiting for one are served now (the driver will not notify for them again).
    auto more = serve_async(*m_queue);
    out.used = out.used || more.used;
    out.broken = more.broken;
    after_serve(*m_queue, out);
}

BlkStats VirtioBlk::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

uint64_t VirtioBlk::config_writes_ignored() const
{
    std::lock_guard lock(m_lock);
    return m_config_writes;
}

uint64_t VirtioBlk::queue_broken_count() const
{
    std::lock_guard lock(m_lock);
    return m_queue_broken;
}

unsigned VirtioBlk::in_flight() const
{
    std::lock_guard lock(m_lock);
    return m_ring ? m_ring->in_flight() : 0;
}

uint64_t VirtioBlk::dropped_on_reset() const
{
    std::lock_guard lock(m_lock);
    return m_dropped_on_reset;
}

} // namespace hako::devices::virtio::blk
