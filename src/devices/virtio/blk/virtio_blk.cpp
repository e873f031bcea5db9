#include "devices/virtio/blk/virtio_blk.h"

#include "base/log.h"
#include "block/disk_image.h"

namespace hako::devices::virtio::blk {

VirtioBlk::VirtioBlk(std::shared_ptr<block::DiskImage> disk, BlkOptions const& options)
    : m_disk(std::move(disk)), m_config(BlkConfig::for_disk(*m_disk, options))
{
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

void VirtioBlk::reset()
{
    std::lock_guard lock(m_lock);
    m_active = false;
    m_queue = nullptr;
    m_interrupt = nullptr;
}

void VirtioBlk::queue_notify(uint16_t queue_index)
{
    std::lock_guard lock(m_lock);
    if (!m_active || queue_index != 0 || !m_queue)
        return;
    Queue& queue = *m_queue;
    auto const out = drain_queue(queue, queue.size(),
        [this](DescriptorChain const& chain) { return process_request(chain, *m_disk, m_config, m_stats); });
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

} // namespace hako::devices::virtio::blk
