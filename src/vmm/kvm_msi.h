// KvmMsiRouter: where every MSI and MSI-X message of hako's PCI devices goes. Each distinct (address, data) message
// gets a KVM GSI route (KVM_SET_GSI_ROUTING, GSIs from 24 up, after the IOAPIC's pins) and an irqfd; delivering
// the message is then one eventfd write, which KVM turns into the interrupt without any exit or ioctl, and the
// same eventfd can be handed to a kernel-side producer (vhost) later.
//
// The route table is bounded (MAX_ROUTES): a guest that keeps reprogramming MSI-X entries with new messages
// exhausts it, after which messages go through KVM_SIGNAL_MSI (correct, one ioctl each) and are counted.
// Messages whose address is not in the x86 interrupt range 0xFEExxxxx are dropped and counted: hako's devices
// only mean interrupts by MSI, never memory writes.
//
// Thread-safe: deliver() may run on any thread; m_lock is a leaf lock (it calls only KVM).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "base/event_fd.h"
#include "devices/pci/msi.h"
#include "kvm/vm.h"

namespace hako::vmm {

struct MsiStats {
    uint64_t delivered_irqfd { 0 };  // through an irqfd
    uint64_t delivered_ioctl { 0 };  // through KVM_SIGNAL_MSI (route table full or routing failed)
    uint64_t dropped_bad_address { 0 };
    uint64_t routes { 0 };           // routes in the table
};

class KvmMsiRouter final : public devices::pci::MsiSink {
public:
    static constexpr size_t MAX_ROUTES = 1024;
    static constexpr uint64_t MSI_ADDRESS_MASK = 0xfff00000;
    static constexpr uint64_t MSI_ADDRESS_BASE = 0xfee00000;

    explicit KvmMsiRouter(kvm::Vm& vm) : m_vm(vm) { }
    ~KvmMsiRouter() override;
    KvmMsiRouter(KvmMsiRouter const&) = delete;
    KvmMsiRouter& operator=(KvmMsiRouter const&) = delete;

    void deliver(uint64_t address, uint32_t data) override;
    MsiStats stats() const;

private:
    struct Route {
        uint32_t gsi;
        EventFd fd;
    };
    /// The route for a message, creating it if there is room. nullptr: use KVM_SIGNAL_MSI.
    Route const* route_for_locked(uint64_t address, uint32_t data);

    kvm::Vm& m_vm;
    mutable std::mutex m_lock;
    std::map<std::pair<uint64_t, uint32_t>, Route> m_routes;
    std::vector<kvm::GsiRoute> m_table; // irqchip defaults + one MSI entry per route
    uint32_t m_next_gsi { kvm::Vm::FIRST_MSI_GSI };
    bool m_routing_broken { false };
    MsiStats m_stats;
};

} // namespace hako::vmm
