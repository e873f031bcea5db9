// Machine: one running VM. Built by build_machine() (vm_builder.cpp, where every device is wired explicitly),
// run by run(): the calling thread becomes the event loop, each vCPU gets a thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "api/api_server.h"
#include "arch/x86/boot.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "devices/virtio/balloon/virtio_balloon.h"
#include "bus/bus.h"
#include "bus/system_control.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "memory/guest_memory.h"
#include "ui/vnc_server.h"
#include "vmm/config.h"
#include "vmm/instruction_emulation.h"

namespace hako::devices::pci {
class PciRoot;
}
namespace hako::devices::display {
class Vga;
}

namespace hako::vmm {

class Console;

class Machine final : public bus::SystemControl {
public:
    ~Machine() override;

    /// Runs the VM until it powers off, exits through debug-exit or fails. Returns the process exit status.
    int run();

    /// SystemControl: called by devices on vCPU threads.
    void request(bus::SystemEvent event, uint32_t code) override;

    /// Runs an API command on the event loop and calls done with its reply (any thread).
    void handle_api(api::Command command, std::function<void(api::Reply)> done);

private:
    friend class MachineBuilder;
    Machine() = default;

    api::Reply execute(api::Command const& command);
    nlohmann::json info() const;
    void start_vcpus();
    void stop_vcpus();
    void vcpu_loop(kvm::Vcpu& vcpu);
    struct Location {
        std::string where; // "RIP ... (CS ..., mode)"
        std::string bytes; // the instruction bytes there, in hex
    };
    /// Where a vCPU stopped, for messages; `bytes` are KVM's copy of the instruction if it gave one.
    Location locate(kvm::Vcpu& vcpu, std::vector<uint8_t> bytes);
    void handle_emulation_failure(kvm::Vcpu& vcpu, kvm::VcpuExit const& exit);
    void fail(int status);
    void reset();
    Result<void> watch_signals();
    /// Puts every vCPU in its reset state, the BSP at the boot entry.
    Result<void> reset_vcpus();

    VmConfig m_config;
    std::unique_ptr<EventLoop> m_loop;
    std::unique_ptr<kvm::System> m_system;
    // Destruction order matters: vCPUs, then the VM, then the memory KVM maps.
    std::unique_ptr<memory::GuestMemory> m_memory;
    std::unique_ptr<kvm::Vm> m_vm;
    std::vector<std::unique_ptr<kvm::Vcpu>> m_vcpus;
    bus::Bus m_pio { bus::Bus::Kind::Pio };
    bus::Bus m_mmio { bus::Bus::Kind::Mmio };
    std::vector<std::shared_ptr<bus::Device>> m_devices;
    std::shared_ptr<devices::pci::PciRoot> m_pci_root; // emptied first on teardown, while the buses exist
    std::unique_ptr<Console> m_console;
    // Set by the builder: (re)loads the kernel or firmware and the boot tables into guest memory (at build time
    // and on every reset, as the guest may have overwritten them) and returns the boot CPU's entry state.
    std::function<Result<arch::x86::BootEntry>()> m_load_boot;
    // Set by the builder: puts the devices back in their power-on state on a guest reset (PCI functions, and for
    // direct boot the resource assignment firmware would redo).
    std::function<void()> m_reset_devices;
    // Set by the builder: presses the ACPI power button; and each device's counters by name, for vm.counters.
    std::function<void()> m_press_power_button;
    std::vector<std::pair<std::string, std::function<nlohmann::json()>>> m_counters;
    nlohmann::json m_device_list = nlohmann::json::array(); // [{name, pci_slot}], for vm.info
    std::unique_ptr<api::ApiServer> m_api; // stopped first on teardown
    bool m_paused { false };                // event loop thread only
    std::shared_ptr<devices::virtio::VirtioBalloon> m_balloon;
    std::shared_ptr<devices::display::Vga> m_vga; // --vga std: what vm.screenshot renders
    std::unique_ptr<ui::VncServer> m_vnc;          // --vnc; stopped first on teardown (it renders the VGA)

    /// Exits to userspace, all vCPUs (relaxed atomics: statistics only), for vm.counters.
    struct ExitCounters {
        std::atomic<uint64_t> io { 0 }, mmio { 0 }, hlt { 0 }, interrupted { 0 }, other { 0 };
    };
    ExitCounters m_exits;
    // Finishes the instructions KVM's emulator refuses; created by run() (it needs the memory and the MMIO bus).
    std::unique_ptr<InstructionEmulation> m_emulation;
    std::vector<std::thread> m_threads;
    std::atomic<bool> m_stop_vcpus { false };
    std::atomic<bool> m_stopping { false };
    int m_exit_status { exit_status::POWER_OFF };
    bool m_hardware_virt { true };
    bool m_reported_first_run { false };
    UniqueFd m_signal_fd;
};

/// Builds a machine from a validated configuration. Errors are one line, suitable for the user.
[[nodiscard]] Result<std::unique_ptr<Machine>> build_machine(VmConfig const& config);

} // namespace hako::vmm
