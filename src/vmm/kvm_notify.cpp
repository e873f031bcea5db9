#include "vmm/kvm_notify.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "base/log.h"

namespace hako::vmm {

KvmNotifier::~KvmNotifier()
{
    std::lock_guard lock(m_lock);
    for (auto const& [key, fd] : m_fds) {
        auto const& [queue, gpa, len] = key;
        (void)m_vm.remove_ioeventfd(fd->fd(), gpa, len, false);
    }
}

void KvmNotifier::add_notify(uint16_t queue, uint64_t gpa, uint32_t len)
{
    std::lock_guard lock(m_lock);
    Key const key { queue, gpa, len };
    if (m_fds.contains(key))
        return;
    auto fd = EventFd::create(EFD_CLOEXEC | EFD_NONBLOCK);
    Result<void> r = fd ? m_vm.add_ioeventfd(fd->fd(), gpa, len, false) : Result<void>(fd.error());
    if (!r) {
        ++m_failures;
        HAKO_WARN_RATELIMITED("queue {} notify at {:#x}: no ioeventfd ({}); notifications exit to hako", queue, gpa,
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

void KvmNotifier::remove_notify(uint16_t queue, uint64_t gpa, uint32_t len)
{
    std::lock_guard lock(m_lock);
    auto it = m_fds.find(Key { queue, gpa, len });
    if (it == m_fds.end())
        return;
    auto shared = std::move(it->second);
    m_fds.erase(it);
    if (auto r = m_vm.remove_ioeventfd(shared->fd(), gpa, len, false); !r)
        HAKO_WARN_RATELIMITED("queue {} notify at {:#x}: {}", queue, gpa, r.error().message());
    // A notify that raced with the removal is served before the fd goes: the device checks its own state.
    m_loop.post([loop = &m_loop, shared] { loop->remove_fd(shared->fd()); });
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
