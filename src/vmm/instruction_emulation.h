// InstructionEmulation: finishes, in userspace, the instructions KVM's instruction emulator refuses (an emulation
// failure exit), through src/emu/. Counts every instruction it completes by mnemonic (vm.counters
// "emulated-instructions", and the -v summary at exit).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "bus/bus.h"
#include "emu/memory_access.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "memory/guest_memory.h"

namespace hako::vmm {

/// Guest-physical memory for the emulator: RAM through GuestMemory, everything else through the MMIO bus.
class GuestPhysicalMemory final : public emu::PhysicalMemory {
public:
    GuestPhysicalMemory(memory::GuestMemory const& memory, bus::Bus const& mmio) : m_memory(memory), m_mmio(mmio) {}
    void read(uint64_t pa, std::span<uint8_t> out) override;
    void write(uint64_t pa, std::span<uint8_t const> in) override;
    bool compare_exchange(uint64_t pa, std::span<uint8_t> expected, std::span<uint8_t const> desired) override;

private:
    memory::GuestMemory const& m_memory;
    bus::Bus const& m_mmio;
    // Serialises the compare-exchanges that cannot be one host atomic (MMIO, unaligned): a leaf lock.
    std::mutex m_slow_lock;
};

class InstructionEmulation final {
public:
    InstructionEmulation(memory::GuestMemory const& memory, bus::Bus const& mmio) : m_physical(memory, mmio) {}

    enum class Result { Resume, Stop };
    /// Handles an emulation failure exit of `vcpu`: emulates the instruction, writes the state back, injects what
    /// it raised. Stop (after one clear error line) when the instruction is not emulated, when the same
    /// instruction keeps faulting without progress, or when KVM refuses the state.
    Result handle(kvm::Vcpu& vcpu);

    /// On a host without VT-x/AMD-V (PVM), KVM cannot deliver every interrupt in legacy protected mode (seen: a guest
    /// whose code and stack segments are not based at 0, as iPXE's): it accepts the interrupt from the PIC and then
    /// turns its delivery into a triple fault (KVM_EXIT_SHUTDOWN). When the guest could take an interrupt (protected
    /// mode, IF set) and the PIC has one in service, this delivers that one (the in-service IR of highest priority, the
    /// one accepted last) through the guest's IDT (emu::deliver_event); a fault on the way is delivered in turn, a
    /// second one as #DF. Resume when delivered; Stop when this was not a refused delivery or it cannot be completed
    /// (a third fault: the triple fault it was), after one clear line.
    Result deliver_refused_interrupt(kvm::Vcpu& vcpu, kvm::Vm const& vm);

    /// Deliveries in a row on one vCPU without an IRET in between after which hako stops the guest: a handler that
    /// faults with interrupts enabled would otherwise nest without end.
    static constexpr uint32_t MAX_NESTED_DELIVERIES = 64;

    /// Completed instructions by mnemonic, and faults raised by emulated instructions ("#GP" etc.).
    std::map<std::string, uint64_t> counts() const;

    /// Faults in a row at one RIP on one vCPU after which hako stops the guest: a guest that retries a faulting
    /// instruction forever would otherwise spin in exits.
    static constexpr uint32_t MAX_REPEATED_FAULTS = 100000;

private:
    GuestPhysicalMemory m_physical;
    mutable std::mutex m_lock; // leaf lock over the maps below
    std::map<std::string, uint64_t> m_counts;
    struct Repeat {
        uint64_t rip { ~0ull };
        uint32_t faults { 0 };
    };
    std::map<uint32_t, Repeat> m_repeat; // by vCPU id
    std::map<uint32_t, uint32_t> m_nested; // deliveries since the last IRET, by vCPU id
};

} // namespace hako::vmm
