// kvm::Vm: one KVM virtual machine: memory slots, the in-kernel irqchip and PIT, interrupt lines, vCPUs.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "memory/guest_memory.h"

namespace hako::kvm {

class System;
class Vcpu;

class Vm final {
public:
    /// Registers every region of mem as a KVM memory slot (ROM regions read-only).
    [[nodiscard]] Result<void> map_memory(memory::GuestMemory const& mem);
    /// The in-kernel PIC, IOAPIC and LAPICs, plus the PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2).
    [[nodiscard]] Result<void> create_irqchip_and_pit();
    /// Drives a GSI line (KVM_IRQ_LINE). Safe from any thread.
    void set_irq_line(uint32_t gsi, bool level);
    /// Saves the irqchip and PIT state as it is now, for reset_platform().
    [[nodiscard]] Result<void> save_reset_state();
    /// Puts the PIC, IOAPIC and PIT back to the state saved by save_reset_state().
    [[nodiscard]] Result<void> reset_platform();

    [[nodiscard]] Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id);

    /// Injects a message-signalled interrupt (KVM_SIGNAL_MSI). Safe from any thread.
    void signal_msi(uint64_t address, uint32_t data);

    /// Registers an eventfd that KVM signals on a guest write to [addr, addr+len) (KVM_IOEVENTFD).
    [[nodiscard]] Result<void> add_ioeventfd(int fd, uint64_t addr, uint32_t len, bool pio);
    /// Registers an eventfd that raises gsi when signalled (KVM_IRQFD).
    [[nodiscard]] Result<void> add_irqfd(int fd, uint32_t gsi);

    int fd() const { return m_fd.get(); }
    System const& system() const { return m_system; }

private:
    friend class System;
    Vm(System const& system, UniqueFd fd) : m_system(system), m_fd(std::move(fd)) {}

    System const& m_system;
    UniqueFd m_fd;
    std::vector<uint8_t> m_saved_pic_master, m_saved_pic_slave, m_saved_ioapic, m_saved_pit;
};

} // namespace hako::kvm
