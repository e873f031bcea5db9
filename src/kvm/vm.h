// kvm::Vm: one KVM virtual machine: memory slots, the in-kernel irqchip and PIT, interrupt lines, vCPUs.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "memory/guest_memory.h"

namespace hako::kvm {

class System;
class Vcpu;

/// One entry of the GSI routing table (KVM_SET_GSI_ROUTING): a GSI wired to an in-kernel irqchip pin or to an MSI
/// message. Several entries may share a GSI (the ISA IRQs go to both the PIC and the IOAPIC).
struct GsiRoute {
    enum class Kind { Irqchip, Msi };
    uint32_t gsi { 0 };
    Kind kind { Kind::Irqchip };
    uint32_t irqchip { 0 }; // Irqchip: 0 PIC master, 1 PIC slave, 2 IOAPIC
    uint32_t pin { 0 };
    uint64_t address { 0 }; // Msi
    uint32_t data { 0 };

    bool operator==(GsiRoute const&) const = default;
};

/// How the guest may access a memory slot: a read-only slot's writes exit to the VMM as MMIO (KVM_MEM_READONLY).
enum class SlotAccess { ReadWrite, ReadOnly };

class Vm final {
public:
    /// Registers every region of mem as a KVM memory slot (ROM regions read-only).
    [[nodiscard]] Result<void> map_memory(memory::GuestMemory const& mem);
    /// Maps the first `size` bytes of `mem`'s first region at guest address `addr` as KVM memory slot `slot`
    /// (a device's RAM-like BAR, e.g. a framebuffer). addr and size page-aligned; fails if it overlaps another slot.
    [[nodiscard]] Result<void> map_device_memory(uint32_t slot, uint64_t addr, uint64_t size, memory::GuestMemory const& mem,
        SlotAccess access = SlotAccess::ReadWrite);
    /// Deletes a slot made by map_device_memory().
    [[nodiscard]] Result<void> unmap_device_memory(uint32_t slot);
    /// Slots from here on are free for map_device_memory() (map_memory() uses one per region of guest memory, at
    /// most FIRST_FLASH_SLOT of them).
    static constexpr uint32_t FIRST_DEVICE_SLOT = 32;
    /// Slots FIRST_FLASH_SLOT.. FIRST_DEVICE_SLOT-1 are for the firmware flash devices (pflash units).
    static constexpr uint32_t FIRST_FLASH_SLOT = 24;
    /// The in-kernel PIC, IOAPIC and LAPICs, plus the PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2).
    [[nodiscard]] Result<void> create_irqchip_and_pit();
    /// Drives a GSI line (KVM_IRQ_LINE). Safe from any thread.
    void set_irq_line(uint32_t gsi, bool level);
    /// Saves the irqchip and PIT state as it is now, for reset_platform().
    [[nodiscard]] Result<void> save_reset_state();
    /// One in-kernel 8259 PIC's registers (KVM_GET_IRQCHIP): what hako needs to tell which interrupt it accepted last.
    struct PicState {
        uint8_t irr { 0 }, imr { 0 }, isr { 0 };
        uint8_t irq_base { 0 };     // ICW2: the vector of IR0
        uint8_t priority_add { 0 }; // the IR with the highest priority (rotation)
        bool auto_eoi { false };
    };
    /// \param slave false for the master PIC (IRQs 0-7), true for the slave (IRQs 8-15).
    [[nodiscard]] Result<PicState> pic_state(bool slave) const;
    /// Puts the PIC, IOAPIC and PIT back to the state saved by save_reset_state().
    [[nodiscard]] Result<void> reset_platform();

    [[nodiscard]] Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id);

    /// Injects a message-signalled interrupt (KVM_SIGNAL_MSI). Safe from any thread.
    void signal_msi(uint64_t address, uint32_t data);

    /// Registers an eventfd that KVM signals on a guest write to [addr, addr+len) (KVM_IOEVENTFD); the write
    /// completes in the kernel without an exit to hako.
    /// With `datamatch`, only writes of that value signal (several queues sharing one notify port).
    [[nodiscard]] Result<void> add_ioeventfd(int fd, uint64_t addr, uint32_t len, bool pio,
                                             std::optional<uint64_t> datamatch = std::nullopt);
    /// Undoes add_ioeventfd() with the same arguments.
    [[nodiscard]] Result<void> remove_ioeventfd(int fd, uint64_t addr, uint32_t len, bool pio,
                                                std::optional<uint64_t> datamatch = std::nullopt);
    /// Registers an eventfd that raises gsi when signalled (KVM_IRQFD).
    [[nodiscard]] Result<void> add_irqfd(int fd, uint32_t gsi);
    /// Undoes add_irqfd().
    [[nodiscard]] Result<void> remove_irqfd(int fd, uint32_t gsi);

    /// Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING). The table must keep the irqchip routes of
    /// default_irqchip_routes() for the ISA and IOAPIC lines to keep working.
    [[nodiscard]] Result<void> set_gsi_routing(std::span<GsiRoute const> routes);
    /// The routing KVM sets up with KVM_CREATE_IRQCHIP: GSIs 0-15 to the PIC (master 0-7, slave 8-15) and to IOAPIC
    /// pins 0-15, GSIs 16-23 to IOAPIC pins 16-23.
    static std::vector<GsiRoute> default_irqchip_routes();
    /// The first GSI free for MSI routes (after the IOAPIC's 24 pins).
    static constexpr uint32_t FIRST_MSI_GSI = 24;

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
