// build_machine(): the one place where a hako machine is put together. Every device in the machine is
// created and wired here, in order; read this function to know what the guest sees.
#include <algorithm>
#include <array>
#include <fstream>
#include <mutex>
#include <optional>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_tables.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/linux_fw_cfg.h"
#include "arch/x86/loader.h"
#include "arch/x86/mptable.h"
#include "arch/x86/smbios.h"
#include "base/file.h"
#include "base/log.h"
#include "devices/display/std_vga.h"
#include "devices/flash/pflash_cfi01.h"
#include "devices/ide/ahci.h"
#include "devices/ide/piix3_ide.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/debugcon.h"
#include "devices/legacy/fw_cfg.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/port_sink.h"
#include "devices/legacy/reset_control.h"
#include "devices/legacy/system_control_a.h"
#include "devices/legacy/serial.h"
#include "devices/net/e1000.h"
#include "devices/net/pcnet.h"
#include "devices/net/ne2k_pci.h"
#include "devices/net/rtl8139.h"
#include "devices/pci/bar_mapper.h"
#include "devices/pci/i440fx.h"
#include "devices/pci/intx_router.h"
#include "devices/pci/pci_root.h"
#include "devices/pci/piix3.h"
#include "devices/pci/piix4_pm.h"
#include "devices/pci/resource_setup.h"
#include "devices/virtio/balloon/virtio_balloon.h"
#include "devices/virtio/blk/virtio_blk.h"
#include "devices/virtio/console/virtio_console.h"
#include "devices/virtio/net/virtio_net.h"
#include "net/slirp_backend.h"
#include "net/tap_backend.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio_pci.h"
#include "block/image_format.h"
#include "vmm/console.h"
#include "vmm/kvm_bar_mapper.h"
#include "vmm/kvm_irq_line.h"
#include "vmm/device_counters.h"
#include "vmm/kvm_msi.h"
#include "vmm/kvm_notify.h"
#include "vmm/machine.h"
#include "vmm/pflash_setup.h"

namespace hako::vmm {

using namespace hako::arch::x86;
using namespace hako::devices::legacy;
using memory::GuestAddr;

constexpr uint64_t MAX_KERNEL_SIZE = 512 * MiB;
constexpr uint64_t MAX_INITRD_SIZE = 2 * GiB;
constexpr uint64_t MAX_FIRMWARE_SIZE = 16 * MiB;

/// Maps a flash device's contents as read-only KVM memory slot `slot` at its base.
static Result<void> vm_map_flash(kvm::Vm& vm, uint32_t slot, devices::flash::PflashCfi01 const& flash)
{
    return vm.map_device_memory(slot, flash.base(), flash.size(), flash.memory(), kvm::SlotAccess::ReadOnly);
}

class MachineBuilder final {
public:
    static Result<std::unique_ptr<Machine>> build(VmConfig const& config);
};

static int64_t realtime_ns()
{
    timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static int64_t monotonic_ns()
{
    timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static std::vector<uint8_t> le_bytes(uint64_t v, size_t n)
{
    std::vector<uint8_t> out(n);
    for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<uint8_t>(v >> (8 * i));
    return out;
}

constexpr uint8_t PIIX3_SLOT = 1;

/// Where hako places BARs when there is no firmware to do it (layout.h).
static devices::pci::PciResourceWindows direct_boot_pci_windows(RamLayout ram)
{
    devices::pci::PciResourceWindows w;
    w.io_start = PCI_IO_ASSIGN_START;
    w.io_end = 0x10000;
    w.mmio32_start = PCI_MMIO32_ASSIGN_START;
    w.mmio32_end = PCI_MMIO32_ASSIGN_END;
    w.mmio64_start = pci_mmio64_start(ram);
    w.mmio64_end = w.mmio64_start + PCI_MMIO64_SIZE;
    return w;
}

/// Output sink for --debugcon: appends to a file, shared by ports 0xe9 and 0x402.
class DebugconFile final {
public:
    static Result<std::shared_ptr<DebugconFile>> open(std::string const& path)
    {
        auto f = std::make_shared<DebugconFile>();
        f->m_out.open(path, std::ios::binary | std::ios::trunc);
        if (!f->m_out)
            return Error::from_errno(ErrorKind::Io, fmt::format("Cannot open debugcon file {}", path));
        return f;
    }
    void write(std::span<uint8_t const> bytes)
    {
        std::lock_guard lock(m_mutex);
        m_out.write(static_cast<char const*>(static_cast<void const*>(bytes.data())), static_cast<std::streamsize>(bytes.size()));
        m_out.flush();
    }

private:
    std::mutex m_mutex;
    std::ofstream m_out;
};

Result<std::unique_ptr<Machine>> MachineBuilder::build(VmConfig const& config)
{
    std::unique_ptr<Machine> m(new Machine());
    m->m_config = config;

    // 1. Host input first, so a bad file is reported before anything is created.
    std::vector<uint8_t> kernel, firmware;
    std::vector<std::vector<uint8_t>> modules;
    if (config.kernel) {
        kernel = TRY(read_file(*config.kernel, MAX_KERNEL_SIZE));
        auto format = detect_kernel_format(kernel);
        if (!format)
            return format.error().with_context(*config.kernel);
    }
    if (config.initrd) {
        std::string list = *config.initrd;
        size_t start = 0;
        while (start <= list.size()) {
            size_t comma = list.find(',', start);
            std::string path = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!path.empty())
                modules.push_back(TRY(read_file(path, MAX_INITRD_SIZE)));
            else
                return Error(ErrorKind::InvalidArgument, fmt::format("Empty file name in --initrd '{}'", list));
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
    }
    std::optional<PflashImages> pflash;
    if (config.pflash) {
        pflash = TRY(open_pflash_images(*config.pflash));
    } else if (config.firmware) {
        firmware = TRY(read_file(*config.firmware, MAX_FIRMWARE_SIZE));
        if (firmware.empty() || firmware.size() % (64 * KiB) != 0)
            return Error(ErrorKind::Format,
                fmt::format("{}: firmware image must be a non-empty multiple of 64 KiB ({} bytes)", *config.firmware, firmware.size()));
    }

    std::vector<std::pair<std::string, std::vector<uint8_t>>> fw_cfg_files;
    for (auto const& f : config.fw_cfg_files)
        fw_cfg_files.emplace_back(f.name, TRY(read_file(f.path, MAX_FIRMWARE_SIZE)));
    // PCI option ROMs (romfile=): a PnP/PCI expansion ROM image starts with 0x55 0xAA.
    auto load_option_rom = [](std::string const& path) -> Result<std::vector<uint8_t>> {
        if (path.empty())
            return std::vector<uint8_t> {};
        auto rom = TRY(read_file(path, MAX_FIRMWARE_SIZE));
        if (rom.size() < 3 || rom[0] != 0x55 || rom[1] != 0xaa)
            return Error(ErrorKind::Format, fmt::format("{}: not a PCI option ROM (no 0x55 0xAA signature)", path));
        return rom;
    };
    std::vector<std::vector<uint8_t>> disk_roms;
    for (auto const& d : config.disks)
        disk_roms.push_back(TRY(load_option_rom(d.romfile)));
    auto rng_rom = TRY(load_option_rom(config.virtio_rng_romfile));
    // The VGA BIOS runs only under firmware (SeaBIOS finds it in the VGA's ROM BAR); direct boot leaves the VGA in
    // text mode as a BIOS would.
    std::vector<uint8_t> vga_rom;
    if (config.vga == VgaKind::Std && config.firmware) {
        auto rom = load_option_rom(config.vga_romfile);
        if (!rom)
            return std::move(rom).error().with_context("--vga std needs a VGA BIOS (Debian package seabios; romfile=)");
        vga_rom = std::move(*rom);
    }
    // Network backends are opened now too: a tap in use, a host port taken by a hostfwd or a bad option is
    // reported before anything runs.
    struct NetSetup {
        std::shared_ptr<net::Backend> backend;
        std::vector<uint8_t> rom;
        std::function<nlohmann::json()> backend_counters;
    };
    std::vector<NetSetup> nets;
    for (auto const& n : config.nets) {
        NetSetup setup;
        setup.rom = TRY(load_option_rom(n.romfile));
        if (n.backend == net::BackendKind::User) {
            std::shared_ptr<net::SlirpBackend> slirp = TRY(net::SlirpBackend::create(n.user));
            setup.backend_counters = [slirp] {
                auto const b = slirp->stats();
                return nlohmann::json { { "slirp", { { "tx_frames", b.tx_frames }, { "tx_dropped", b.tx_dropped },
                    { "rx_frames", b.rx_frames }, { "guest_errors", b.guest_errors } } } };
            };
            setup.backend = std::move(slirp);
        } else {
            if (n.vhost)
                return Error(ErrorKind::Unsupported,
                    ::access("/dev/vhost-net", F_OK) != 0
                        ? fmt::format("--net tap={},vhost=on: this host has no /dev/vhost-net (modprobe vhost_net); "
                                      "use vhost=off", n.tap_ifname)
                        : fmt::format("--net tap={},vhost=on: vhost-net is not implemented yet; use vhost=off",
                            n.tap_ifname));
            auto tap = net::TapBackend::open(n.tap_ifname);
            if (!tap)
                return std::move(tap).error().with_context(fmt::format("--net tap={}", n.tap_ifname));
            std::shared_ptr<net::TapBackend> t = std::move(*tap);
            setup.backend_counters = [t] {
                auto const b = t->stats();
                return nlohmann::json { { "tap", { { "ifname", t->ifname() }, { "tx_frames", b.tx_frames },
                    { "tx_bytes", b.tx_bytes }, { "tx_errors", b.tx_errors }, { "rx_frames", b.rx_frames },
                    { "rx_bytes", b.rx_bytes }, { "rx_errors", b.rx_errors } } } };
            };
            setup.backend = std::move(t);
        }
        nets.push_back(std::move(setup));
    }
    // Disks are opened (and locked) now: an image in use or missing is reported before anything runs.
    std::vector<std::shared_ptr<block::BlockDevice>> disks;
    for (auto const& d : config.disks)
        disks.push_back(TRY(block::open_image(d.path, d.format, d.read_only ? block::ReadOnly::Yes : block::ReadOnly::No)));

    // 2. KVM.
    m->m_system = std::make_unique<kvm::System>(TRY(kvm::System::open(config.kvm_device)));
    m->m_hardware_virt = kvm::host_has_hardware_virtualization();
    constexpr unsigned MAX_XAPIC_CPUS = 254; // APIC IDs 0..253 plus the IOAPIC's ID; x2APIC is not implemented yet
    if (config.cpus > MAX_XAPIC_CPUS)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("--cpus {}: hako supports at most {} vCPUs (xAPIC IDs; no x2APIC yet)", config.cpus, MAX_XAPIC_CPUS));
    if (config.cpus > m->m_system->max_vcpus())
        return Error(ErrorKind::InvalidArgument,
            fmt::format("--cpus {} is more than this host's KVM allows ({})", config.cpus, m->m_system->max_vcpus()));

    // 3. Guest memory: RAM around the legacy VGA window and the PCI hole, firmware ROM at the top of 4 GiB.
    auto const ram = ram_layout(config.memory);
    std::vector<memory::GuestMemory::RegionSpec> regions {
        { GuestAddr(0), LOW_RAM_END, memory::RegionKind::Ram },
        { GuestAddr(UPPER_RAM_START), ram.low_end - UPPER_RAM_START, memory::RegionKind::Ram },
    };
    if (ram.high_size)
        regions.push_back({ GuestAddr(FOUR_GIB), ram.high_size, memory::RegionKind::Ram });
    if (!firmware.empty())
        regions.push_back({ GuestAddr(FOUR_GIB - firmware.size()), firmware.size(), memory::RegionKind::Rom });
    m->m_memory = std::make_unique<memory::GuestMemory>(TRY(memory::GuestMemory::create(regions)));

    m->m_vm = TRY(m->m_system->create_vm());
    TRY(m->m_vm->map_memory(*m->m_memory));
    TRY(m->m_vm->create_irqchip_and_pit());
    m->m_loop = TRY(EventLoop::create());

    // Firmware as CFI flash (--firmware uefi|pflash), as QEMU's pc machine maps -drive if=pflash: unit 0 (code,
    // read-only) ends at 4 GiB, unit 1 (variables) directly below it. Each is a read-only KVM memory slot while in
    // read-array mode (reads and instruction fetches without exits, writes exit as MMIO to the device) and only an
    // MMIO range while the guest has it in a command mode.
    std::vector<std::shared_ptr<devices::flash::PflashCfi01>> flashes;
    if (pflash) {
        if (!m->m_system->has_readonly_memory())
            return Error(ErrorKind::Unsupported, "Firmware in flash needs KVM_CAP_READONLY_MEM, which this KVM lacks");
        uint64_t top = FOUR_GIB;
        auto add_flash = [&](std::vector<uint8_t> const& image, devices::flash::FlashAccess access,
                             std::shared_ptr<block::BlockDevice> store) -> Result<void> {
            uint32_t const unit = static_cast<uint32_t>(flashes.size());
            uint64_t const base = top - image.size();
            auto flash = TRY(devices::flash::PflashCfi01::create(fmt::format("pflash{}", unit), base, image, access,
                std::move(store)));
            TRY(m->m_mmio.insert(base, image.size(), flash));
            uint32_t const slot = kvm::Vm::FIRST_FLASH_SLOT + unit;
            TRY(vm_map_flash(*m->m_vm, slot, *flash));
            flash->set_romd_hook([vm = m->m_vm.get(), slot, dev = flash.get()](bool romd) {
                auto r = romd ? vm_map_flash(*vm, slot, *dev) : vm->unmap_device_memory(slot);
                if (!r) // the flash keeps working through MMIO exits (its read() serves array reads too)
                    HAKO_WARN_RATELIMITED("{}: {}", dev->name(), r.error().message());
            });
            m->m_counters.emplace_back(std::string(flash->name()), [weak = std::weak_ptr(flash)] {
                nlohmann::json j = nlohmann::json::object();
                if (auto f = weak.lock()) {
                    auto const c = f->stats();
                    j = { { "base", f->base() }, { "size", f->size() }, { "read_only", f->read_only() },
                        { "commands", c.commands }, { "programs", c.programs }, { "erases", c.erases },
                        { "refused", c.refused }, { "bad_accesses", c.bad_accesses },
                        { "store_errors", c.store_errors }, { "mode_switches", c.mode_switches } };
                }
                return j;
            });
            m->m_devices.push_back(flash);
            flashes.push_back(std::move(flash));
            top = base;
            return ok();
        };
        TRY(add_flash(pflash->code, devices::flash::FlashAccess::ReadOnly, nullptr));
        if (!pflash->vars.empty())
            TRY(add_flash(pflash->vars, devices::flash::FlashAccess::ReadWrite, pflash->vars_store));
    }

    // 4. Devices. Interrupt lines are GSIs of the in-kernel PIC + IOAPIC (ISA IRQ n = GSI n).
    auto& vm = *m->m_vm;
    auto irq = [&vm](uint32_t gsi) { return std::make_shared<KvmIrqLine>(vm, gsi); };
    auto add_pio = [&m](uint16_t port, uint16_t size, std::shared_ptr<bus::Device> dev) -> Result<void> {
        TRY(m->m_pio.insert(port, size, dev));
        m->m_devices.push_back(std::move(dev));
        return ok();
    };

    auto serial = std::make_shared<Serial>(irq(IRQ_COM1), [](std::span<uint8_t const> b) { Console::write_output(b); });
    TRY(add_pio(PORT_COM1, 8, serial));

    auto i8042 = std::make_shared<I8042>(*m, irq(IRQ_KEYBOARD), irq(IRQ_MOUSE));
    TRY(add_pio(PORT_I8042_DATA, 1, std::make_shared<I8042Port>(i8042, I8042Port::Kind::Data)));
    TRY(add_pio(PORT_I8042_CMD, 1, std::make_shared<I8042Port>(i8042, I8042Port::Kind::Command)));

    auto rtc = std::make_shared<CmosRtc>(irq(IRQ_RTC), m->m_loop.get(), realtime_ns);
    rtc->set_memory_layout(ram.low_end, ram.high_size, config.cpus);
    TRY(add_pio(PORT_CMOS, 4, rtc));

    TRY(add_pio(PORT_RESET_CF9, 1, std::make_shared<ResetControl>(*m)));
    TRY(add_pio(PORT_SYSTEM_CONTROL_A, 1, std::make_shared<SystemControlA>(*m)));
    // The ACPI PM register block goes on the I/O bus where the PIIX4 PM function (00:01.3) decodes it, below.
    auto pm = std::make_shared<AcpiPm>(*m, irq(IRQ_SCI), monotonic_ns);
    m->m_devices.push_back(pm);
    m->m_press_power_button = [pm] { pm->press_power_button(); };
    TRY(add_pio(PORT_POST, 1, std::make_shared<PortSink>("post", 0xff)));

    if (config.debug_exit)
        TRY(add_pio(PORT_DEBUG_EXIT, 4, std::make_shared<DebugExit>(*m)));
    if (config.debugcon) {
        auto file = TRY(DebugconFile::open(*config.debugcon));
        auto out = [file](std::span<uint8_t const> b) { file->write(b); };
        TRY(add_pio(PORT_DEBUGCON, 1, std::make_shared<DebugCon>(out)));
        TRY(add_pio(PORT_FW_DEBUG, 1, std::make_shared<DebugCon>(out)));
    } else {
        // Firmware writes its debug log to 0x402 whether or not anyone listens: absorb it.
        TRY(add_pio(PORT_FW_DEBUG, 1, std::make_shared<PortSink>("fw-debug", 0xff)));
    }

    // PCI: an i440FX host bridge (00.0) and a PIIX3 ISA bridge (01.0) routing INTx through its PIRQ links,
    // configuration mechanism #1 at 0xCF8/0xCFC, BARs mapped on the PIO/MMIO buses as the guest places them.
    // Framebuffer BARs become KVM memory slots; all others are ranges on the buses.
    auto bar_mapper = std::make_shared<KvmBarMapper>(vm, std::make_shared<devices::pci::BusBarMapper>(m->m_pio, m->m_mmio));
    auto pci_root = std::make_shared<devices::pci::PciRoot>(bar_mapper);
    auto piix3 = std::make_shared<devices::pci::Piix3IsaBridge>();
    TRY(pci_root->add_device(std::make_shared<devices::pci::I440fxHostBridge>(), 0));
    TRY(pci_root->add_device(piix3, PIIX3_SLOT));
    pci_root->set_intx_router(devices::pci::IntxRouter::create(piix3, irq));
    // PIIX4 power management (00:01.3, as QEMU's pc machine): where its PMBA/PMIOSE say, the ACPI PM block is decoded
    // (SeaBIOS and hako's direct boot put it at 0x600, where the FADT says; OVMF at 0xB000).
    auto piix4_pm = std::make_shared<devices::pci::Piix4Pm>();
    TRY(pci_root->add_function(piix4_pm, PIIX3_SLOT, devices::pci::Piix4Pm::FUNCTION));
    struct PmPlacement {
        std::mutex lock;
        std::optional<uint16_t> base;
    };
    piix4_pm->set_pm_base_listener([bus = &m->m_pio, pm, placement = std::make_shared<PmPlacement>()](
                                       std::optional<uint16_t> base) {
        std::lock_guard lock(placement->lock);
        if (base == placement->base)
            return;
        if (placement->base)
            bus->remove(*placement->base);
        placement->base.reset();
        if (!base)
            return;
        if (auto r = bus->insert(*base, PM_BLOCK_SIZE, pm); !r)
            HAKO_WARN_RATELIMITED("piix4-pm: ACPI PM block not decoded at {:#x}: {}", *base, r.error().message());
        else
            placement->base = base;
    });
    TRY(devices::pci::register_config_io(m->m_pio, std::make_shared<devices::pci::PciConfigIo>(pci_root)));
    auto ecam = std::make_shared<devices::pci::PciConfigMmio>(pci_root, static_cast<unsigned>(PCI_ECAM_SIZE >> 20));
    TRY(m->m_mmio.insert(PCI_ECAM_BASE, ecam->window_size(), ecam));
    m->m_devices.push_back(ecam);
    m->m_pci_root = pci_root;

    // The std VGA, slot 2 as in QEMU: its legacy ports, the 0xA0000 window and the DISPI ports are always decoded.
    if (config.vga == VgaKind::Std) {
        using namespace devices::display;
        std::shared_ptr<Vga> vga = TRY(Vga::create(config.firmware ? PowerOnMode::Unprogrammed : PowerOnMode::Text80x25));
        auto std_vga = TRY(StdVga::create(vga, std::move(vga_rom)));
        uint8_t const slot = TRY(pci_root->add_device(std_vga));
        m->m_device_list.push_back({ { "name", "std-vga" }, { "pci_slot", slot } });
        TRY(add_pio(VGA_PORT_BASE, VGA_PORT_COUNT, std::make_shared<VgaPorts>(vga)));
        TRY(add_pio(VBE_DISPI_IOPORT_INDEX, VBE_DISPI_IOPORT_COUNT, std::make_shared<DispiPorts>(vga)));
        auto window = std::make_shared<VgaWindow>(vga);
        TRY(m->m_mmio.insert(VGA_WINDOW_START, VGA_WINDOW_SIZE, window));
        m->m_devices.push_back(window);
        m->m_counters.emplace_back("std-vga", [vga, bar_mapper, slot] {
            return nlohmann::json { { "pci_slot", slot }, { "bad_accesses", vga->stats().bad_accesses },
                { "framebuffer_slots", bar_mapper->slot_count() }, { "slot_failures", bar_mapper->failed_count() } };
        });
        m->m_vga = vga;
        // The VNC server: the screen rendered from this VGA, its input into the i8042's keyboard and mouse.
        if (config.vnc) {
            ui::VncServer::Hooks hooks;
            hooks.render = [vga] { return vga->render(); };
            hooks.keyboard = [i8042](std::span<uint8_t const> b) { i8042->push_keyboard_bytes(b); };
            hooks.mouse = [i8042](std::span<uint8_t const> b) { i8042->push_mouse_bytes(b); };
            hooks.scancode_set = [i8042] { return ui::scancode_set_for(i8042->scancode_set(), i8042->translating()); };
            hooks.keyboard_room = [i8042] { return i8042->keyboard_room(); };
            hooks.mouse_room = [i8042] { return i8042->mouse_room(); };
            m->m_vnc = TRY(ui::VncServer::start(*config.vnc, std::move(hooks)));
            auto* vnc = m->m_vnc.get();
            m->m_counters.emplace_back("vnc", [vnc] {
                auto const s = vnc->stats();
                return nlohmann::json { { "frames", s.frames }, { "rects", s.rects }, { "key_events", s.key_events },
                    { "keys_unmapped", s.keys_unmapped }, { "pointer_events", s.pointer_events },
                    { "input_dropped", s.input_dropped } };
            });
        }
    } else if (config.vnc) {
        return Error(ErrorKind::InvalidArgument, "--vnc needs a display (--vga std)");
    }

    // virtio-pci devices, slots 2 and up in this order: disks, then rng. MSI-X through KVM GSI routes and irqfds,
    // queue notifications through ioeventfds served on the event loop.
    auto msi = std::make_shared<KvmMsiRouter>(vm);
    m->m_counters.emplace_back("msi", [msi] { return to_json(msi->stats()); });
    // Adds a virtio device; \return its transport, named `name` in the API's counters.
    auto add_virtio = [&](std::string const& name, std::shared_ptr<devices::virtio::VirtioDevice> device,
                          std::function<nlohmann::json()> device_counters,
                          std::vector<uint8_t> option_rom = {}, bool transitional = true) -> Result<uint8_t> {
        devices::virtio::VirtioPciDevice::Options options;
        options.option_rom = std::move(option_rom);
        options.transitional = transitional;
        auto pci = TRY(devices::virtio::VirtioPciDevice::create(*m->m_memory, std::move(device), msi, options));
        uint8_t const slot = TRY(pci_root->add_device(pci));
        m->m_device_list.push_back({ { "name", name }, { "pci_slot", slot } });
        auto notifier = std::make_shared<KvmNotifier>(vm, *m->m_loop, pci);
        pci->set_notify_registrar(notifier);
        std::weak_ptr<devices::virtio::VirtioPciDevice> weak = pci;
        m->m_counters.emplace_back(name, [weak, notifier, slot, device_counters] {
            nlohmann::json j { { "pci_slot", slot }, { "device", device_counters() },
                { "ioeventfds", notifier->registered() }, { "ioeventfd_failures", notifier->failures() } };
            if (auto p = weak.lock())
                j["transport"] = to_json(p->stats());
            return j;
        });
        return slot;
    };
    // What the firmware can boot from, for its "bootorder" file (--boot, bootindex=).
    struct BootDevice {
        std::optional<VmConfig::BootKind> kind; // unset: only by bootindex (a ROM on another device)
        std::optional<unsigned> bootindex;
        std::string path;                        // the OpenFirmware-style path SeaBIOS matches
    };
    std::vector<BootDevice> boot_devices;
    // What a BIOS does to the IDE function before the OS (direct boot): IDE decode enable in IDETIM for both
    // channels, which Linux's ata_piix checks before it probes a channel.
    std::function<void()> bios_ide_setup = [] { };
    // IDE: the PIIX3's IDE function (01.1) with its legacy channels, only when a drive is on it. CD-ROMs take the
    // secondary master first; disks fill primary master, primary slave, secondary master, secondary slave.
    if (std::any_of(config.disks.begin(), config.disks.end(), [](auto const& d) { return d.bus == VmConfig::DiskBus::Ide; })) {
        using namespace devices::ide;
        auto ide = TRY(Piix3Ide::create(*m->m_memory, { irq(PRIMARY_IRQ), irq(SECONDARY_IRQ) }));
        std::array<bool, 4> used {}; // position = channel * 2 + unit
        auto place = [&](std::initializer_list<unsigned> order) -> unsigned {
            for (unsigned p : order)
                if (!used[p]) {
                    used[p] = true;
                    return p;
                }
            return 4;
        };
        unsigned index = 0;
        for (bool cdrom_pass : { true, false }) {
            for (size_t i = 0; i < disks.size(); ++i) {
                auto const& d = config.disks[i];
                if (d.bus != VmConfig::DiskBus::Ide || d.cdrom != cdrom_pass)
                    continue;
                unsigned const pos = cdrom_pass ? place({ 2, 3, 1, 0 }) : place({ 0, 1, 2, 3 });
                if (pos >= 4)
                    return Error(ErrorKind::InvalidArgument, "The IDE controller has 4 positions");
                unsigned const chan = pos / 2;
                unsigned const unit = pos % 2;
                ide->channel(chan).attach(unit, std::make_shared<IdeDrive>(d.cdrom ? DriveKind::Cdrom : DriveKind::Disk,
                    disks[i], d.serial, index++));
                boot_devices.push_back({ d.cdrom ? VmConfig::BootKind::Cdrom : VmConfig::BootKind::Disk, d.bootindex,
                    fmt::format("/pci@i0cf8/ide@{:x},1/drive@{:x}/disk@{:x}", PIIX3_SLOT, chan, unit) });
            }
        }
        TRY(pci_root->add_function(ide, PIIX3_SLOT, Piix3Ide::FUNCTION));
        bios_ide_setup = [ide = ide.get()] { ide->enable_decode(); };
        TRY(add_pio(PRIMARY_COMMAND_PORT, COMMAND_BLOCK_SIZE, make_command_ports(ide->channel_ptr(0))));
        TRY(add_pio(PRIMARY_CONTROL_PORT, 1, make_control_port(ide->channel_ptr(0))));
        TRY(add_pio(SECONDARY_COMMAND_PORT, COMMAND_BLOCK_SIZE, make_command_ports(ide->channel_ptr(1))));
        TRY(add_pio(SECONDARY_CONTROL_PORT, 1, make_control_port(ide->channel_ptr(1))));
        m->m_device_list.push_back({ { "name", "piix3-ide" }, { "pci_slot", PIIX3_SLOT } });
        m->m_counters.emplace_back("piix3-ide", [ide] {
            nlohmann::json j = nlohmann::json::array();
            for (unsigned c = 0; c < 2; ++c) {
                auto const st = ide->channel(c).stats();
                j.push_back({ { "commands", st.commands }, { "aborted", st.aborted }, { "io_errors", st.io_errors },
                    { "dma_transfers", st.dma_transfers }, { "bad_prd_tables", st.bad_prd_tables },
                    { "bad_accesses", st.bad_accesses } });
            }
            return nlohmann::json { { "channels", j } };
        });
    }
    // AHCI: the ICH9's SATA controller (8086:2922) on the next free slot, only when a drive is on it; drives take
    // ports 0-5 in the order given (--disk before --cdrom). MSI through the machine's router, else INTA#.
    if (std::any_of(config.disks.begin(), config.disks.end(), [](auto const& d) { return d.bus == VmConfig::DiskBus::Ahci; })) {
        using namespace devices::ide;
        std::array<std::shared_ptr<IdeDrive>, Ahci::PORTS> drives;
        std::vector<std::pair<size_t, unsigned>> placed; // config index, port
        unsigned port = 0;
        for (size_t i = 0; i < disks.size(); ++i) {
            auto const& d = config.disks[i];
            if (d.bus != VmConfig::DiskBus::Ahci)
                continue;
            if (port >= Ahci::PORTS)
                return Error(ErrorKind::InvalidArgument, "The AHCI controller has 6 ports");
            drives[port] = std::make_shared<IdeDrive>(d.cdrom ? DriveKind::Cdrom : DriveKind::Disk, disks[i], d.serial,
                port, DriveLink::Serial);
            placed.emplace_back(i, port++);
        }
        auto ahci = TRY(Ahci::create(*m->m_memory, drives, msi));
        uint8_t const slot = TRY(pci_root->add_device(ahci));
        for (auto const& [i, p] : placed)
            boot_devices.push_back({ config.disks[i].cdrom ? VmConfig::BootKind::Cdrom : VmConfig::BootKind::Disk,
                config.disks[i].bootindex, fmt::format("/pci@i0cf8/sata@{:x}/drive@{:x}/disk@0", slot, p) });
        m->m_device_list.push_back({ { "name", "ich9-ahci" }, { "pci_slot", slot } });
        m->m_counters.emplace_back("ich9-ahci", [ahci, slot] {
            auto const st = ahci->stats();
            return nlohmann::json { { "pci_slot", slot }, { "commands", st.commands }, { "ncq_commands", st.ncq_commands },
                { "task_file_errors", st.task_file_errors }, { "io_errors", st.io_errors },
                { "bad_tables", st.bad_tables }, { "bad_accesses", st.bad_accesses } };
        });
    }
    size_t virtio_disks = 0;
    for (size_t i = 0; i < disks.size(); ++i) {
        if (config.disks[i].bus != VmConfig::DiskBus::Virtio)
            continue;
        devices::virtio::blk::BlkOptions options;
        options.read_only = config.disks[i].read_only;
        options.serial = config.disks[i].serial;
        // Requests go to the host through io_uring (synchronously, with one warning, where the kernel refuses it);
        // completions arrive on the event loop, which holds the device weakly: it must go before guest memory.
        auto blk = std::make_shared<devices::virtio::blk::VirtioBlk>(disks[i], options,
            disks[i]->direct_fd() >= 0 ? devices::virtio::blk::VirtioBlk::create_ring(disks[i]->path()) : nullptr);
        if (blk->completion_fd() >= 0)
            TRY(m->m_loop->add_fd(blk->completion_fd(), EPOLLIN, [weak = std::weak_ptr(blk)](uint32_t) {
                if (auto b = weak.lock())
                    b->handle_completions();
            }));
        uint8_t const slot = TRY(add_virtio(fmt::format("virtio-blk{}", virtio_disks++), blk, [blk] { return to_json(blk->stats()); },
            std::move(disk_roms[i])));
        boot_devices.push_back({ VmConfig::BootKind::Disk, config.disks[i].bootindex,
            fmt::format("/pci@i0cf8/scsi@{:x}/disk@0,0", slot) });
    }
    for (size_t i = 0; i < nets.size(); ++i) {
        auto& setup = nets[i];
        auto const mac = config.nets[i].mac_or_default(static_cast<unsigned>(i));
        // An emulated NIC (not virtio): a PCI function, its boot entry and its counters with the backend's.
        auto add_nic = [&](std::string const& name, auto const& dev) -> Result<void> {
            uint8_t const slot = TRY(pci_root->add_device(dev));
            m->m_device_list.push_back({ { "name", name }, { "pci_slot", slot } });
            boot_devices.push_back({ VmConfig::BootKind::Net, config.nets[i].bootindex,
                fmt::format("/pci@i0cf8/ethernet@{:x}", slot) });
            m->m_counters.emplace_back(name, [weak = std::weak_ptr(dev), slot, more = setup.backend_counters] {
                nlohmann::json j { { "pci_slot", slot } };
                if (auto d = weak.lock())
                    j["device"] = to_json(d->stats());
                j.update(more());
                return j;
            });
            return {};
        };
        if (config.nets[i].model == net::NicModel::E1000) {
            devices::net::E1000Options options;
            options.option_rom = std::move(setup.rom);
            options.loop = m->m_loop.get();
            options.clock_ns = monotonic_ns;
            auto e1000 = TRY(devices::net::E1000::create(*m->m_memory, setup.backend, mac, std::move(options)));
            TRY(add_nic(fmt::format("e1000-{}", i), e1000));
            continue;
        }
        if (config.nets[i].model == net::NicModel::Rtl8139) {
            devices::net::Rtl8139Options options;
            options.option_rom = std::move(setup.rom);
            options.clock_ns = monotonic_ns;
            auto rtl = TRY(devices::net::Rtl8139::create(*m->m_memory, setup.backend, mac, std::move(options)));
            TRY(add_nic(fmt::format("rtl8139-{}", i), rtl));
            continue;
        }
        if (config.nets[i].model == net::NicModel::Pcnet) {
            devices::net::PcnetOptions options;
            options.option_rom = std::move(setup.rom);
            options.loop = m->m_loop.get();
            auto pcnet = TRY(devices::net::Pcnet::create(*m->m_memory, setup.backend, mac, std::move(options)));
            TRY(add_nic(fmt::format("pcnet-{}", i), pcnet));
            continue;
        }
        if (config.nets[i].model == net::NicModel::Ne2kPci) {
            devices::net::Ne2kPciOptions options;
            options.option_rom = std::move(setup.rom);
            auto ne2k = TRY(devices::net::Ne2kPci::create(setup.backend, mac, std::move(options)));
            TRY(add_nic(fmt::format("ne2k_pci-{}", i), ne2k));
            continue;
        }
        auto nic = std::make_shared<devices::virtio::net::VirtioNet>(setup.backend, mac);
        uint8_t const slot = TRY(add_virtio(fmt::format("virtio-net{}", i), nic, [nic, backend = setup.backend, more = setup.backend_counters] {
            auto const c = nic->stats();
            auto j = nlohmann::json { { "tx_frames", c.tx_frames }, { "tx_bytes", c.tx_bytes },
                { "tx_dropped_bad", c.tx_dropped_bad }, { "tx_bad_chains", c.tx_bad_chains },
                { "tx_offload_frames", c.tx_offload_frames }, { "tx_dropped_bad_header", c.tx_dropped_bad_header },
                { "rx_frames", c.rx_frames }, { "rx_bytes", c.rx_bytes }, { "rx_dropped_no_buffer", c.rx_dropped_no_buffer },
                { "rx_dropped_too_big", c.rx_dropped_too_big }, { "rx_dropped_bad", c.rx_dropped_bad },
                { "rx_dropped_inactive", c.rx_dropped_inactive }, { "rx_dropped_offload", c.rx_dropped_offload },
                { "rx_bad_chains", c.rx_bad_chains }, { "rx_merged_frames", c.rx_merged_frames },
                { "queue_broken", c.queue_broken } };
            j.update(more());
            return j;
        }, std::move(nets[i].rom), config.nets[i].legacy));
        boot_devices.push_back({ VmConfig::BootKind::Net, config.nets[i].bootindex, fmt::format("/pci@i0cf8/ethernet@{:x}", slot) });
    }
    if (config.virtio_rng) {
        auto rng = std::make_shared<devices::virtio::VirtioRng>([](std::span<uint8_t> out) -> size_t {
            ssize_t const n = ::getrandom(out.data(), out.size(), GRND_NONBLOCK);
            return n > 0 ? static_cast<size_t>(n) : 0;
        });
        uint8_t const slot = TRY(add_virtio("virtio-rng", rng, [rng] { return to_json(rng->stats()); }, std::move(rng_rom)));
        boot_devices.push_back({ std::nullopt, config.virtio_rng_bootindex, fmt::format("/pci@i0cf8/*@{:x}", slot) });
    }
    std::shared_ptr<devices::virtio::VirtioConsole> vcon;
    if (config.console == ConsoleKind::Virtio) {
        vcon = std::make_shared<devices::virtio::VirtioConsole>([](std::span<uint8_t const> b) { Console::write_output(b); });
        TRY(add_virtio("virtio-console", vcon, [vcon] {
            auto const c = vcon->stats();
            return nlohmann::json { { "tx_bytes", c.tx_bytes }, { "rx_bytes", c.rx_bytes },
                { "emergency_bytes", c.emergency_bytes }, { "tx_truncated", c.tx_truncated },
                { "bad_chains", c.bad_chains }, { "queue_broken", c.queue_broken } };
        }));
    }
    if (config.balloon) {
        uint64_t const pages = (config.balloon->target_mib << 20) >> devices::virtio::VIRTIO_BALLOON_PFN_SHIFT;
        auto balloon = std::make_shared<devices::virtio::VirtioBalloon>(*m->m_memory, static_cast<uint32_t>(pages));
        TRY(add_virtio("virtio-balloon", balloon, [balloon] {
            auto const c = balloon->stats();
            return nlohmann::json { { "inflated_pages", c.inflated_pages }, { "deflated_pages", c.deflated_pages },
                { "bad_pfns", c.bad_pfns }, { "discard_failures", c.discard_failures }, { "bad_chains", c.bad_chains },
                { "stats_updates", c.stats_updates }, { "queue_broken", c.queue_broken } };
        }));
        m->m_balloon = balloon;
        if (config.balloon->stats_interval_s) {
            auto const every = std::chrono::seconds(config.balloon->stats_interval_s);
            m->m_loop->add_timer(every, every, [balloon] { balloon->request_stats(); });
        }
    }
    // Direct boot: nobody else will place the BARs and route PCI interrupts, so do what a BIOS does (again after
    // every reset, which puts the functions back in their power-on state).
    if (!config.firmware) {
        TRY(devices::pci::assign_pci_resources(*pci_root, direct_boot_pci_windows(ram), PIIX3_SLOT));
        bios_ide_setup();
        piix4_pm->bios_setup(PORT_ACPI_PM_BASE);
    }
    m->m_reset_devices = [pci_root = pci_root.get(), direct = !config.firmware, ram, bios_ide_setup, flashes,
                             piix4_pm = piix4_pm.get()] {
        for (auto const& flash : flashes)
            flash->reset(); // back to read array (the KVM slot mapped again)
        pci_root->reset_all();
        if (direct) {
            if (auto r = devices::pci::assign_pci_resources(*pci_root, direct_boot_pci_windows(ram), PIIX3_SLOT); !r)
                HAKO_ERROR("PCI resources after reset: {}", r.error().message());
            bios_ide_setup();
            piix4_pm->bios_setup(PORT_ACPI_PM_BASE);
        }
    };

    // 5. Firmware interface: fw_cfg with the machine description, ACPI through the table loader.
    auto fw_cfg = std::make_shared<FwCfg>(*m->m_memory);
    fw_cfg->add_u64(FW_CFG_RAM_SIZE, config.memory);
    fw_cfg->add_item(FW_CFG_NB_CPUS, le_bytes(config.cpus, 2));
    fw_cfg->add_item(FW_CFG_MAX_CPUS, le_bytes(config.cpus, 2));
    auto const e820 = build_e820(ram);
    TRY(fw_cfg->add_file("etc/e820", e820_fw_cfg_blob(ram)));
    AcpiConfig acpi_config { .cpus = config.cpus, .pci = pci_acpi_config(ram) };
    auto acpi_fw = TRY(build_acpi_fw_cfg(acpi_config));
    TRY(fw_cfg->add_file("etc/acpi/rsdp", std::move(acpi_fw.rsdp)));
    TRY(fw_cfg->add_file("etc/acpi/tables", std::move(acpi_fw.tables)));
    // Rebuilt whenever the firmware selects it, with the PM block where the firmware put it (SeaBIOS: 0x600, as
    // built; OVMF: 0xB000), as QEMU builds its tables when they are read.
    TRY(fw_cfg->set_file_refresh("etc/acpi/tables", [acpi_config, piix4_pm]() mutable {
        acpi_config.pm_base = piix4_pm->pm_base().value_or(PORT_ACPI_PM_BASE);
        auto fresh = build_acpi_fw_cfg(acpi_config);
        return fresh ? std::move(fresh->tables) : std::vector<uint8_t> {};
    }));
    TRY(fw_cfg->add_file("etc/table-loader", std::move(acpi_fw.table_loader)));
    // SeaBIOS mirrors its screen output to COM1 (with a VGA too: its serial console then chains to the VGA BIOS).
    TRY(fw_cfg->add_file("etc/sercon-port", le_bytes(PORT_COM1, 2)));
    for (auto& [name, data] : fw_cfg_files)
        TRY(fw_cfg->add_file(name, std::move(data)));
    if (config.firmware && !kernel.empty()) {
        // Kernel through the firmware, as QEMU does it: the firmware runs QEMU's linuxboot_dma.bin option ROM, which
        // fetches these items over fw_cfg DMA and enters the kernel's real-mode setup code.
        auto items = TRY(linux_fw_cfg_items(kernel, config.cmdline, modules.empty() ? std::vector<uint8_t>() : modules[0],
            ram.low_end));
        if (modules.size() > 1)
            return Error(ErrorKind::InvalidArgument, "A Linux kernel takes one initrd");
        auto rom = read_file(config.linuxboot_rom, MAX_FIRMWARE_SIZE);
        if (!rom)
            return rom.error().with_context("--kernel with --firmware needs QEMU's linuxboot_dma.bin option ROM "
                                            "(Debian package qemu-system-data)");
        fw_cfg->add_u32(FW_CFG_SETUP_ADDR, items.setup_addr);
        fw_cfg->add_u32(FW_CFG_SETUP_SIZE, static_cast<uint32_t>(items.setup.size()));
        fw_cfg->add_item(FW_CFG_SETUP_DATA, std::move(items.setup));
        fw_cfg->add_u32(FW_CFG_KERNEL_ADDR, items.kernel_addr);
        fw_cfg->add_u32(FW_CFG_KERNEL_SIZE, static_cast<uint32_t>(items.kernel.size()));
        fw_cfg->add_item(FW_CFG_KERNEL_DATA, std::move(items.kernel));
        fw_cfg->add_u32(FW_CFG_CMDLINE_ADDR, items.cmdline_addr);
        fw_cfg->add_u32(FW_CFG_CMDLINE_SIZE, static_cast<uint32_t>(items.cmdline.size()));
        fw_cfg->add_item(FW_CFG_CMDLINE_DATA, std::move(items.cmdline));
        fw_cfg->add_u32(FW_CFG_INITRD_ADDR, items.initrd_addr);
        fw_cfg->add_u32(FW_CFG_INITRD_SIZE, static_cast<uint32_t>(items.initrd.size()));
        fw_cfg->add_item(FW_CFG_INITRD_DATA, std::move(items.initrd));
        TRY(fw_cfg->add_file("genroms/linuxboot_dma.bin", std::move(*rom)));
        // Boot order: the kernel first, as QEMU gives -kernel bootindex 0 (SeaBIOS's "bootorder" file of device paths).
        std::string const order = "/rom@genroms/linuxboot_dma.bin\n";
        TRY(fw_cfg->add_file("bootorder", std::vector<uint8_t>(order.begin(), order.end())));
    } else if (config.firmware) {
        // SeaBIOS's "bootorder" (QEMU's): devices with a bootindex first, lowest first; then --boot's kinds in order;
        // the firmware's own order for the rest. No file when neither was asked for.
        std::vector<BootDevice const*> ordered;
        for (auto const& d : boot_devices)
            if (d.bootindex)
                ordered.push_back(&d);
        std::stable_sort(ordered.begin(), ordered.end(),
            [](BootDevice const* a, BootDevice const* b) { return *a->bootindex < *b->bootindex; });
        for (auto kind : config.boot_order) {
            bool any = false;
            for (auto const& d : boot_devices)
                if (d.kind == kind && !d.bootindex) {
                    ordered.push_back(&d);
                    any = true;
                }
            if (!any)
                HAKO_WARN("--boot {}: no such device to boot from", kind == VmConfig::BootKind::Disk ? "disk"
                        : kind == VmConfig::BootKind::Cdrom                                     ? "cdrom"
                                                                                                : "net");
        }
        if (!ordered.empty()) {
            std::string order;
            for (auto const* d : ordered)
                order += d->path + "\n";
            HAKO_DEBUG("firmware boot order:\n{}", order);
            TRY(fw_cfg->add_file("bootorder", std::vector<uint8_t>(order.begin(), order.end())));
        }
        kernel.clear(); // the firmware loads it
    }
    TRY(add_pio(PORT_FW_CFG, 12, fw_cfg));

    // 6. What the boot CPU starts on; re-done on every reset.
    auto acpi_direct = TRY(build_acpi_direct(acpi_config, ACPI_TABLES_ADDR));
    auto mptable = TRY(build_mptable(config.cpus, MPTABLE_ADDR));
    KernelLoadRequest request;
    request.cmdline = config.cmdline;
    for (auto& mod : modules)
        request.modules.push_back(Module { std::move(mod), {} });
    for (auto const& e : e820)
        request.memory_map.push_back({ e.addr, e.size, e.type });
    request.rsdp_addr = ACPI_TABLES_ADDR;
    auto* mem = m->m_memory.get();
    std::vector<uint8_t> flash_code;
    if (pflash)
        flash_code = std::move(pflash->code);
    m->m_load_boot = [mem, kernel = std::move(kernel), firmware = std::move(firmware), request = std::move(request),
                         acpi_direct = std::move(acpi_direct), mptable = std::move(mptable),
                         flash_code = std::move(flash_code)]() -> Result<BootEntry> {
        if (!firmware.empty()) {
            TRY(load_firmware(*mem, firmware));
            return BootEntry {};
        }
        if (!flash_code.empty()) {
            // The flash itself stays as the guest left it; only the low copy is redone, as QEMU's isa-bios alias.
            TRY(copy_firmware_low(*mem, flash_code));
            return BootEntry {};
        }
        // Direct boot: hako plays the firmware's part and leaves ACPI and MP tables where a BIOS would.
        TRY(mem->write(GuestAddr(ACPI_TABLES_ADDR), acpi_direct));
        TRY(mem->write(GuestAddr(MPTABLE_ADDR), mptable));
        KernelLoadRequest req = request;
        req.kernel = kernel;
        auto entry = TRY(load_kernel(*mem, req));
        TRY(write_boot_tables(*mem, entry.mode));
        return entry;
    };
    if (!config.kernel && !config.firmware)
        return Error(ErrorKind::InvalidArgument, "Nothing to boot: give --kernel or --firmware");

    // 7. vCPUs.
    auto const supported = TRY(m->m_system->supported_cpuid());
    for (uint32_t i = 0; i < config.cpus; ++i) {
        auto vcpu = TRY(vm.create_vcpu(i));
        TRY(vcpu->set_cpuid(build_guest_cpuid(supported, i, config.cpus)));
        TRY(vcpu->save_reset_state());
        m->m_vcpus.push_back(std::move(vcpu));
    }
    TRY(m->m_vm->save_reset_state());
    TRY(m->reset_vcpus());
    if (config.firmware) {
        // SMBIOS for the firmware to install (QEMU's fw_cfg files); SeaBIOS adds its own type 0.
        SmbiosConfig smbios;
        smbios.version = HAKO_VERSION;
        smbios.cpus = config.cpus;
        smbios.ram = ram;
        if (auto const* leaf1 = find_cpuid(build_guest_cpuid(supported, 0, config.cpus), 1)) {
            smbios.cpuid_signature = leaf1->eax;
            smbios.cpuid_features = leaf1->edx;
        }
        auto blobs = build_smbios(smbios);
        TRY(fw_cfg->add_file("etc/smbios/smbios-anchor", std::move(blobs.anchor)));
        TRY(fw_cfg->add_file("etc/smbios/smbios-tables", std::move(blobs.tables)));
    }

    // 8. The console: stdin feeds COM1, or the virtio console with --console virtio.
    auto* machine = m.get();
    std::function<size_t(std::span<uint8_t const>)> deliver = [serial](std::span<uint8_t const> b) { return serial->receive(b); };
    if (vcon)
        deliver = [vcon](std::span<uint8_t const> b) { return vcon->receive(b); };
    m->m_console = std::make_unique<Console>(
        *m->m_loop, std::move(deliver),
        [machine] { machine->request(bus::SystemEvent::PowerOff, 0); });
    TRY(m->m_console->start());

    // 9. The API socket, last: commands may arrive as soon as it listens.
    if (config.api_socket) {
        m->m_api = TRY(api::ApiServer::start(*config.api_socket, [machine](api::Command c, std::function<void(api::Reply)> done) {
            machine->handle_api(std::move(c), std::move(done));
        }));
    }
    return m;
}

Result<std::unique_ptr<Machine>> build_machine(VmConfig const& config) { return MachineBuilder::build(config); }

} // namespace hako::vmm
