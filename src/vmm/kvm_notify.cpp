#include "vmm/kvm_notify.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "base/log.h"

using hako::devices::virtio::NotifySpace;

namespace hako::vmm {

KvmNotifier::~KvmNotifier()
{
    std::lock_guard lock(m_lock);
    for (auto const& [key, fd] : m_fds) {
        auto const& [queue, addr, len, space] = key;
        (void)unregister_fd(fd->fd(), queue, addr, len, space);
    }
}

Result<void> KvmNotifier::register_fd(int fd, uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space)
{
    if (space == NotifySpace::Io)
        return m_vm.add_ioeventfd(fd, addr, len, true, queue);
    return m_vm.add_ioeventfd(fd, addr, len, false);
}

Result<void> KvmNotifier::unregister_fd(int fd, uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space)
{
    if (space == NotifySpace::Io)
        return m_vm.remove_ioeventfd(fd, addr, len, true, queue);
    return m_vm.remove_ioeventfd(fd, addr, len, false);
}

void KvmNotifier::add_notify(uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space)
{
    std::lock_guard lock(m_lock);
    Key const key { queue, addr, len, space };
    if (m_fds.contains(key))
        return;
    auto fd = EventFd::create(EFD_CLOEXEC | EFD_NONBLOCK);
    Result<void> r = fd ? register_fd(fd->fd(), queue, addr, len, space) : Result<void>(fd.error());
    if (!r) {
        ++m_failures;
        HAKO_WARN_RATELIMITED("queue {} notify at {:#x}: no ioeventfd ({}); notifications exit to hako", queue, addr,
            r.error().message());
        return;
    }
    auto shared = std::make_shared<EventFd>(std::move(*fd));
    m_fds.emplace(key, shared);
    m_loop.post([loop = &m_loop, device = m_device, shared, queue] {
        auto added = loop->add_fd(shared->fd(), EPOLLIN, [device, shared, queue](uint32_t) {
            if (shared->consume() == 0)
                return;
            if (auto d = device.lock())
                d->process_notify(queue);
        });
        if (!added)
            HAKO_WARN("queue {} notify eventfd: {}", queue, added.error().message());
    });
}

void KvmNotifier::remove_notify(uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space)
{
    std::lock_guard lock(m_lock);
    auto it = m_fds.find(Key { queue, addr, len, space });
    if (it == m_fds.end())
        return;
    auto shared = std::move(it->second);
    m_fds.erase(it);
    if (auto r = unregister_fd(shared->fd(), queue, addr, len, space); !r)
        HAKO_WARN_RATELIMITED("queue {} notify at {:#x}: {}", queue, addr, r.error().message());
    // A notify that raced with the removal is served before the fd goes: the device checks its own state.
    m_loop.post([loop = &m_loop, shared] { loop->remove_fd(shared->fd()); });
}

void KvmNotifier::requeue_notify(uint16_t queue)
{
    m_loop.post([device = m_device, queue] {
        if (auto d = device.lock())
            d->process_notify(queue);
    });
}

size_t KvmNotifier::registered() const
{
    std::lock_guard lock(m_lock);
    return m_fds.size();
}

uint64_t KvmNotifier::failures() const
{
    std::lock_guard lock(m_lock);
    return m_failures;
}

} // namespace hako::vmm
