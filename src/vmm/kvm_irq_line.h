// KvmIrqLine: a device's interrupt line wired to a GSI of the in-kernel PIC/IOAPIC.
#pragma once

#include <atomic>

#include "bus/irq_line.h"
#include "kvm/vm.h"

namespace hako::vmm {

class KvmIrqLine final : public bus::IrqLine {
public:
    KvmIrqLine(kvm::Vm& vm, uint32_t gsi) : m_vm(vm), m_gsi(gsi) {}
    void set_level(bool asserted) override { m_vm.set_irq_line(m_gsi, asserted); }

private:
    kvm::Vm& m_vm;
    uint32_t m_gsi;
};

} // namespace hako::vmm
