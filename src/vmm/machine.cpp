#include "vmm/machine.h"

#include <csignal>
#include <ctime>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "devices/display/png.h"
#include "devices/display/vga.h"
#include "devices/pci/pci_root.h"
#include "vmm/console.h"

namespace hako::vmm {

// The signal that kicks a vCPU thread out of KVM_RUN; its handler does nothing, KVM_RUN returns EINTR.
constexpr int KICK_SIGNAL = SIGUSR1;

static void install_kick_handler()
{
    static bool installed = false;
    if (installed)
        return;
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: KVM_RUN must return
    sigaction(KICK_SIGNAL, &sa, nullptr);
    installed = true;
}

Machine::~Machine()
{
    m_api.reset(); // no more commands
    m_vnc.reset(); // no more frames or input
    stop_vcpus();
    // PCI devices go first: their BARs are ranges on m_pio/m_mmio, and the buses hold the configuration front ends
    // that hold the root, so waiting for member destruction would unmap BARs from a bus being destroyed.
    if (m_pci_root)
        m_pci_root->remove_all();
}

/// SIGINT, SIGTERM and SIGHUP end the VM cleanly (terminal restored) with status 128 + signal; SIGPIPE is ignored
/// so a closed stdout only drops guest output.
Result<void> Machine::watch_signals()
{
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    for (int sig : { SIGINT, SIGTERM, SIGHUP })
        sigaddset(&set, sig);
    if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0)
        return Error(ErrorKind::Io, "Cannot block termination signals");
    m_signal_fd.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!m_signal_fd.valid())
        return Error::from_errno(ErrorKind::Io, "signalfd");
    return m_loop->add_fd(m_signal_fd.get(), EPOLLIN, [this](uint32_t) {
        signalfd_siginfo info {};
        if (::read(m_signal_fd.get(), &info, sizeof info) != sizeof info || m_stopping)
            return;
        HAKO_WARN("terminating on signal {}", info.ssi_signo);
        m_exit_status = 128 + static_cast<int>(info.ssi_signo);
        m_stopping = true;
        m_loop->stop();
    });
}

int Machine::run()
{
    install_kick_handler();
    if (auto r = watch_signals(); !r)
        HAKO_WARN("{}", r.error().message());
    if (!m_hardware_virt)
        HAKO_WARN("/dev/kvm has no VT-x/AMD-V behind it (software backend such as PVM): guest kernel code runs in "
                  "KVM's instruction emulator, slowly, and stops on instructions it cannot emulate");
    m_emulation = std::make_unique<InstructionEmulation>(*m_memory, m_mmio);
    start_vcpus();
    m_loop->run();
    stop_vcpus();
    HAKO_INFO("exits to hako: {} port I/O, {} MMIO, {} HLT, {} interrupted, {} other",
        m_exits.io.load(std::memory_order_relaxed), m_exits.mmio.load(std::memory_order_relaxed),
        m_exits.hlt.load(std::memory_order_relaxed), m_exits.interrupted.load(std::memory_order_relaxed),
        m_exits.other.load(std::memory_order_relaxed));
    if (auto counts = m_emulation->counts(); !counts.empty()) {
        std::string list;
        for (auto const& [name, n] : counts)
            list += fmt::format("{}{} {}", list.empty() ? "" : ", ", n, name);
        HAKO_INFO("instructions KVM refused and hako emulated: {}", list);
    }
    m_console.reset(); // restores the terminal
    return m_exit_status;
}

void Machine::start_vcpus()
{
    m_stop_vcpus = false;
    for (auto& v : m_vcpus) {
        v->clear_exit_request();
        m_threads.emplace_back([this, vcpu = v.get()] {
            // Block everything but the kick signal: the event loop thread handles the rest.
            sigset_t set;
            sigfillset(&set);
            sigdelset(&set, KICK_SIGNAL);
            pthread_sigmask(SIG_SETMASK, &set, nullptr);
            vcpu_loop(*vcpu);
        });
    }
}

void Machine::stop_vcpus()
{
    m_stop_vcpus = true;
    for (size_t i = 0; i < m_threads.size(); ++i) {
        m_vcpus[i]->request_exit();
        pthread_kill(m_threads[i].native_handle(), KICK_SIGNAL);
    }
    for (auto& t : m_threads)
        t.join();
    m_threads.clear();
}

void Machine::request(bus::SystemEvent event, uint32_t code)
{
    // Called on a vCPU thread (inside a device access): hand the work to the event loop.
    m_loop->post([this, event, code] {
        if (m_stopping)
            return;
        switch (event) {
        case bus::SystemEvent::DebugExit:
            m_exit_status = static_cast<int>((code << 1) | 1);
            m_stopping = true;
            m_loop->stop();
            break;
        case bus::SystemEvent::PowerOff:
            HAKO_INFO("guest powered off");
            m_exit_status = exit_status::POWER_OFF;
            m_stopping = true;
            m_loop->stop();
            break;
        case bus::SystemEvent::Reset:
            if (m_config.on_reboot == OnReboot::Exit) {
                HAKO_INFO("guest reset: exiting (--on-reboot exit)");
                m_exit_status = exit_status::POWER_OFF;
                m_stopping = true;
                m_loop->stop();
            } else {
                reset();
            }
            break;
        }
    });
}

void Machine::handle_api(api::Command command, std::function<void(api::Reply)> done)
{
    m_loop->post([this, command = std::move(command), done = std::move(done)] {
        if (m_stopping) {
            done(api::Reply::error(503, "The VM is shutting down"));
            return;
        }
        done(execute(command));
    });
}

nlohmann::json Machine::info() const
{
    nlohmann::json boot = nlohmann::json::object();
    if (m_config.kernel)
        boot["kernel"] = *m_config.kernel;
    if (m_config.firmware)
        boot["firmware"] = *m_config.firmware;
    if (!m_config.cmdline.empty())
        boot["cmdline"] = m_config.cmdline;
    nlohmann::json disks = nlohmann::json::array();
    for (auto const& d : m_config.disks)
        disks.push_back({ { "path", d.path }, { "readonly", d.read_only }, { "serial", d.serial } });
    return {
        { "state", m_paused ? "paused" : "running" },
        { "cpus", m_config.cpus },
        { "memory_bytes", m_config.memory },
        { "boot", boot },
        { "disks", disks },
        { "devices", m_device_list },
        { "hardware_virtualization", m_hardware_virt },
    };
}

api::Reply Machine::execute(api::Command const& command)
{
    using api::Action;
    using api::Reply;
    switch (command.action) {
    case Action::Ping:
        return Reply { 200, { { "version", HAKO_VERSION } } };
    case Action::Info:
        return Reply { 200, info() };
    case Action::Counters: {
        nlohmann::json out = nlohmann::json::object();
        auto load = [](std::atomic<uint64_t> const& a) { return a.load(std::memory_order_relaxed); };
        out["vcpu-exits"] = { { "io", load(m_exits.io) }, { "mmio", load(m_exits.mmio) }, { "hlt", load(m_exits.hlt) },
            { "interrupted", load(m_exits.interrupted) }, { "other", load(m_exits.other) } };
        for (auto const& [name, counters] : m_counters)
            out[name] = counters();
        nlohmann::json emulated = nlohmann::json::object();
        if (m_emulation)
            for (auto const& [name, n] : m_emulation->counts())
                emulated[name] = n;
        out["emulated-instructions"] = emulated;
        return Reply { 200, out };
    }
    case Action::Pause:
        if (m_paused)
            return Reply::error(409, "The VM is already paused");
        stop_vcpus();
        m_paused = true;
        HAKO_INFO("paused");
        return Reply::no_content();
    case Action::Resume:
        if (!m_paused)
            return Reply::error(409, "The VM is not paused");
        m_paused = false;
        start_vcpus();
        HAKO_INFO("resumed");
        return Reply::no_content();
    case Action::PowerButton:
        if (!m_press_power_button)
            return Reply::error(409, "This machine has no ACPI power button");
        m_press_power_button();
        HAKO_INFO("power button pressed");
        return Reply::no_content();
    case Action::Screenshot: {
        if (!m_vga)
            return Reply::error(409, "This VM has no display (--vga none)");
        auto png = devices::display::encode_png(m_vga->render());
        if (!png)
            return Reply::error(500, png.error().message());
        return Reply::bytes("image/png", std::string(png->begin(), png->end()));
    }
    case Action::BalloonGet: {
        if (!m_balloon)
            return Reply::error(409, "This VM has no balloon (--balloon)");
        uint64_t const page = 1ull << devices::virtio::VIRTIO_BALLOON_PFN_SHIFT;
        nlohmann::json stats = nlohmann::json::object();
        for (auto const& [tag, value] : m_balloon->guest_stats())
            stats[devices::virtio::balloon_stat_name(tag)] = value;
        auto const c = m_balloon->stats();
        m_balloon->request_stats(); // fresher figures for the next call
        return Reply { 200,
            { { "target_pages", m_balloon->target_pages() },
                { "target_mib", uint64_t { m_balloon->target_pages() } * page >> 20 },
                { "actual_pages", m_balloon->actual_pages() },
                { "actual_mib", uint64_t { m_balloon->actual_pages() } * page >> 20 }, { "stats", stats },
                { "counters",
                    { { "inflated_pages", c.inflated_pages }, { "deflated_pages", c.deflated_pages },
                        { "bad_pfns", c.bad_pfns }, { "discard_failures", c.discard_failures },
                        { "bad_chains", c.bad_chains }, { "stats_updates", c.stats_updates } } } } };
    }
    case Action::BalloonSet: {
        if (!m_balloon)
            return Reply::error(409, "This VM has no balloon (--balloon)");
        auto const& b = command.body;
        if (!b.is_object() || !b.contains("target_mib") || !b["target_mib"].is_number_unsigned())
            return Reply::error(400, "Expected {\"target_mib\": <non-negative integer>}");
        uint64_t const mib = b["target_mib"].get<uint64_t>();
        if (mib > (m_config.memory >> 20))
            return Reply::error(400, fmt::format("target_mib {} is more than the VM's {} MiB", mib, m_config.memory >> 20));
        m_balloon->set_target(static_cast<uint32_t>(mib << (20 - devices::virtio::VIRTIO_BALLOON_PFN_SHIFT)));
        HAKO_INFO("balloon target {} MiB", mib);
        return Reply::no_content();
    }
    case Action::PowerOff:
        HAKO_INFO("powered off through the API");
        m_exit_status = exit_status::POWER_OFF;
        m_stopping = true;
        m_loop->stop();
        return Reply::no_content();
    }
    return Reply::error(500, "Unknown command");
}

void Machine::fail(int status)
{
    m_loop->post([this, status] {
        if (m_stopping)
            return;
        m_exit_status = status;
        m_stopping = true;
        m_loop->stop();
    });
}

Result<void> Machine::reset_vcpus()
{
    auto entry = TRY(m_load_boot());
    for (auto& v : m_vcpus)
        TRY(v->reset(entry, v->id() == 0));
    return ok();
}

void Machine::reset()
{
    HAKO_INFO("guest reset");
    stop_vcpus();
    if (m_reset_devices)
        m_reset_devices();
    auto r = m_vm->reset_platform();
    if (r)
        r = reset_vcpus();
    if (!r) {
        HAKO_ERROR("Reset failed: {}", r.error().message());
        m_exit_status = exit_status::INTERNAL;
        m_stopping = true;
        m_loop->stop();
        return;
    }
    start_vcpus();
}

static std::string hex_bytes(std::vector<uint8_t> const& bytes)
{
    std::string s;
    for (auto b : bytes)
        s += fmt::format("{}{:02x}", s.empty() ? "" : " ", b);
    return s;
}

Machine::Location Machine::locate(kvm::Vcpu& vcpu, std::vector<uint8_t> bytes)
{
    auto snap = vcpu.snapshot();
    std::string where = "unknown RIP";
    if (snap) {
        char const* mode = snap->cs_long ? "64-bit" : (snap->cr0 & 1) ? (snap->cs_32bit ? "32-bit protected" : "16-bit protected") : "real";
        where = fmt::format("RIP {:#x} (CS {:#06x} base {:#x}, {} mode)", snap->rip, snap->cs_selector, snap->cs_base, mode);
        if (bytes.empty()) {
            // KVM did not hand us the bytes: read them through the guest's page tables.
            auto phys = vcpu.translate(snap->cs_base + snap->rip);
            if (phys) {
                bytes.resize(15);
                for (size_t n = 15; n > 0; --n) {
                    bytes.resize(n);
                    if (m_memory->read(memory::GuestAddr(*phys), bytes))
                        break;
                }
            }
        }
    }
    return Location { std::move(where), hex_bytes(bytes) };
}

void Machine::handle_emulation_failure(kvm::Vcpu& vcpu, kvm::VcpuExit const& exit)
{
    auto const [where, bytes] = locate(vcpu, exit.insn_bytes);
    if (exit.emulation_failure) {
        HAKO_ERROR("Guest stopped: KVM could not emulate the instruction at {} on vCPU {}: bytes [{}]", where,
            vcpu.id(), bytes);
        if (!m_hardware_virt)
            HAKO_ERROR("This host's /dev/kvm has no VT-x/AMD-V (a software backend such as PVM): guest kernel code "
                       "runs in KVM's instruction emulator, which does not handle that instruction");
    } else {
        HAKO_ERROR("Guest stopped: KVM internal error (suberror {}) at {} on vCPU {}", exit.code, where, vcpu.id());
    }
}

void Machine::vcpu_loop(kvm::Vcpu& vcpu)
{
    if (vcpu.id() == 0 && m_config.start_ns && !m_reported_first_run) {
        m_reported_first_run = true;
        timespec ts {};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        auto now = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
        HAKO_INFO("first KVM_RUN {:.2f} ms after start", static_cast<double>(now - m_config.start_ns) / 1e6);
    }
    while (!m_stop_vcpus.load(std::memory_order_acquire)) {
        auto r = vcpu.run();
        if (!r) {
            HAKO_ERROR("{}", r.error().message());
            fail(exit_status::INTERNAL);
            return;
        }
        auto& exit = *r;
        using Reason = kvm::VcpuExit::Reason;
        auto& counter = exit.reason == Reason::Io ? m_exits.io
            : exit.reason == Reason::Mmio         ? m_exits.mmio
            : exit.reason == Reason::Hlt          ? m_exits.hlt
            : exit.reason == Reason::Interrupted  ? m_exits.interrupted
                                                  : m_exits.other;
        counter.fetch_add(1, std::memory_order_relaxed);
        switch (exit.reason) {
        case Reason::Io:
        case Reason::Mmio: {
            auto& bus = exit.reason == Reason::Io ? m_pio : m_mmio;
            for (uint32_t i = 0; i < exit.count; ++i) {
                auto chunk = exit.data.subspan(static_cast<size_t>(i) * exit.size, exit.size);
                if (exit.is_write)
                    bus.write(exit.addr, chunk);
                else
                    bus.read(exit.addr, chunk);
            }
            break;
        }
        case Reason::Hlt:
        case Reason::Interrupted:
            break;
        case Reason::Shutdown:
            // Without VT-x/AMD-V, KVM turns some interrupt deliveries in protected mode into this exit: deliver those here.
            if (!m_hardware_virt && m_emulation
                && m_emulation->deliver_refused_interrupt(vcpu, *m_vm) == InstructionEmulation::Result::Resume)
                break;
            if (log_enabled(LogLevel::Info)) {
                auto const [where, bytes] = locate(vcpu, {});
                HAKO_INFO("vCPU {}: triple fault at {}: bytes [{}]", vcpu.id(), where, bytes);
            }
            request(bus::SystemEvent::Reset, 0);
            return;
        case Reason::SystemEvent:
            if (exit.event == kvm::VcpuExit::Event::Shutdown)
                request(bus::SystemEvent::PowerOff, 0);
            else if (exit.event == kvm::VcpuExit::Event::Reset)
                request(bus::SystemEvent::Reset, 0);
            else {
                HAKO_ERROR("Guest stopped: KVM system event {} on vCPU {}", exit.code, vcpu.id());
                fail(exit_status::GUEST_CRASHED);
            }
            return;
        case Reason::InternalError:
            if (exit.emulation_failure && m_emulation
                && m_emulation->handle(vcpu) == InstructionEmulation::Result::Resume)
                break;
            if (!exit.emulation_failure)
                handle_emulation_failure(vcpu, exit);
            else if (!m_hardware_virt)
                HAKO_ERROR("This host's /dev/kvm has no VT-x/AMD-V (a software backend such as PVM): guest kernel "
                           "code runs in KVM's instruction emulator, which does not handle that instruction");
            fail(exit_status::GUEST_CRASHED);
            return;
        case Reason::FailEntry:
            HAKO_ERROR("Guest stopped: KVM could not enter vCPU {} (hardware reason {:#x})", vcpu.id(), exit.code);
            fail(exit_status::GUEST_CRASHED);
            return;
        case Reason::Other:
            HAKO_ERROR("Guest stopped: unhandled KVM exit {} on vCPU {}", exit.code, vcpu.id());
            fail(exit_status::GUEST_CRASHED);
            return;
        }
    }
}

} // namespace hako::vmm
