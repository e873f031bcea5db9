// KvmNotifier: virtio queue notifications through KVM ioeventfds. When a virtio-pci transport tells it where a
// queue's notify register is (NotifyRegistrar::add_notify: an MMIO address of the modern interface, one per queue, or
// the legacy interface's I/O port, shared by all queues and told apart by the value written, so registered with
// KVM's datamatch), it registers an eventfd for it with KVM, so the guest's notify write completes inside the kernel
// with no exit to hako; the event loop wakes on the eventfd
// and calls VirtioPciDevice::process_notify(queue). When the BAR moves, the old registrations are removed.
//
// If KVM refuses an ioeventfd, the notify register still works through the ordinary MMIO exit (the transport
// decodes it), so the failure is logged and counted, not fatal.
//
// Threading: add_notify/remove_notify run on vCPU threads (the guest programs a BAR) with the transport's notify
// lock held; they make one KVM ioctl and post the event-loop side (EventLoop::add_fd is loop-thread only). The
// eventfd stays open until the loop has stopped watching it. m_lock is a leaf lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "base/event_fd.h"
#include "base/event_loop.h"
#include "devices/virtio/virtio_pci.h"
#include "kvm/vm.h"

namespace hako::vmm {

class KvmNotifier final : public devices::virtio::NotifyRegistrar {
public:
    KvmNotifier(kvm::Vm& vm, EventLoop& loop, std::weak_ptr<devices::virtio::VirtioPciDevice> device)
        : m_vm(vm), m_loop(loop), m_device(std::move(device))
    {
    }
    ~KvmNotifier() override;

    void add_notify(uint16_t queue, uint64_t addr, uint32_t len, devices::virtio::NotifySpace space) override;
    void remove_notify(uint16_t queue, uint64_t addr, uint32_t len, devices::virtio::NotifySpace space) override;
    /// Posts process_notify(queue) to the event loop (a device that stopped at its budget; see VirtioInterrupt).
    void requeue_notify(uint16_t queue) override;

    /// Registrations currently in KVM, and ioeventfds KVM refused.
    size_t registered() const;
    uint64_t failures() const;

private:
    Result<void> register_fd(int fd, uint16_t queue, uint64_t addr, uint32_t len, devices::virtio::NotifySpace space);
    Result<void> unregister_fd(int fd, uint16_t queue, uint64_t addr, uint32_t len, devices::virtio::NotifySpace space);
    using Key = std::tuple<uint16_t, uint64_t, uint32_t, devices::virtio::NotifySpace>;

    kvm::Vm& m_vm;
    EventLoop& m_loop;
    std::weak_ptr<devices::virtio::VirtioPciDevice> m_device;
    mutable std::mutex m_lock;
    std::map<Key, std::shared_ptr<EventFd>> m_fds;
    uint64_t m_failures { 0 };
};

} // namespace hako::vmm
