#include "devices/virtio/rng.h"

#include <algorithm>

#include "base/log.h"

namespace hako::devices::virtio {

VirtioRng::VirtioRng(EntropySource source) : m_source(std::move(source)), m_scratch(MAX_REQUEST_BYTES) { }

void VirtioRng::read_config(uint32_t, std::span<uint8_t> data) { std::fill(data.begin(), data.end(), uint8_t { 0xff }); }

void VirtioRng::write_config(uint32_t, std::span<uint8_t const>) { }

Result<void> VirtioRng::activate(ActivateContext const& context)
{
    if (context.queues.empty() || !context.interrupt)
        return Error(ErrorKind::InvalidArgument, "virtio-rng: activated without its queue or interrupt");
    std::lock_guard lock(m_lock);
    m_queue = &context.queues[0];
    m_interrupt = context.interrupt;
    m_active = true;
    return ok();
}

void VirtioRng::reset()
{
    std::lock_guard lock(m_lock);
    m_active = false;
    m_queue = nullptr;
    m_interrupt = nullptr;
}

RngStats VirtioRng::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

uint32_t VirtioRng::serve(DescriptorChain const& chain)
{
    uint32_t want = chain.writable_len();
    if (want == 0) {
        ++m_stats.bad_chains;
        HAKO_WARN_RATELIMITED("virtio-rng: request at head {} has no device-writable buffer", chain.head());
        return 0;
    }
    if (want > MAX_REQUEST_BYTES) {
        ++m_stats.capped;
        want = MAX_REQUEST_BYTES;
    }
    auto buf = std::span<uint8_t>(m_scratch).first(want);
    size_t got = std::min<size_t>(m_source(buf), want);
    if (got < want)
        ++m_stats.short_entropy;
    size_t const written = chain.write_to_chain(buf.first(got), 0);
    ++m_stats.requests;
    m_stats.bytes += written;
    return static_cast<uint32_t>(written);
}

void VirtioRng::queue_notify(uint16_t queue_index)
{
    std::lock_guard lock(m_lock);
    if (!m_active || queue_index != 0 || !m_queue)
        return;
    Queue& queue = *m_queue;
    // At most one queue's worth of chains per notify: the driver cannot have more outstanding, so this only stops
    // a driver that keeps re-adding buffers from another vCPU while we work.
    auto const out = drain_queue(queue, queue.size(), [this](DescriptorChain const& chain) { return serve(chain); });
    m_stats.bad_chains += out.bad_chains;
    if (out.budget_exhausted) {
        ++m_stats.budget_exhausted;
        m_interrupt->requeue_notify(0); // the rest without waiting for a notify that may not come
    }
    if (out.broken) {
        ++m_stats.queue_broken;
        HAKO_WARN_RATELIMITED("virtio-rng: queue broken ({}); needs reset",
            queue.error() ? to_string(*queue.error()) : std::string_view("unknown"));
        m_interrupt->signal_needs_reset();
        return;
    }
    if (out.used && queue.should_notify())
        m_interrupt->signal_used_queue(0);
}

} // namespace hako::devices::virtio
