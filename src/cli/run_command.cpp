// `hako run`: run one VM in the foreground with its serial console on the terminal.
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

#include "base/checked.h"
#include "base/key_value.h"
#include "net/net_options.h"
#include "base/log.h"
#include "cli/commands.h"
#include "base/size.h"
#include "vmm/config.h"
#include "vmm/machine.h"

namespace hako::cli {

using vmm::exit_status::BAD_INPUT;
using vmm::exit_status::KVM_UNAVAILABLE;
using vmm::exit_status::USAGE;

namespace {

struct RunOptions {
    unsigned cpus { 1 };
    std::string memory { "256M" };
    std::string kernel, initrd, cmdline, firmware, debugcon, api_socket, on_reboot { "restart" };
    std::vector<std::string> fw_cfg, disks, cdroms, devices, nets, boot;
    std::string balloon;
    std::string console { "serial" };
    std::string vga; // empty: the default for the boot kind
    std::string vnc;
    bool cmdline_given { false };
    bool debug_exit { false };
    int verbose { 0 };
    int64_t start_ns { 0 };
};

uint64_t host_memory_bytes()
{
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    while (meminfo >> key >> kib) {
        if (key == "MemTotal:")
            return kib * 1024;
        meminfo.ignore(256, '\n');
    }
    return 0;
}

int fail(int status, std::string const& message)
{
    fmt::print(stderr, "hako: {}\n", message);
    return status;
}

/// --disk path=FILE[,readonly=on][,serial=S] (a bare FILE is accepted as the path).
std::optional<unsigned> parse_bootindex(std::string_view text)
{
    unsigned n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || n > 9999)
        return std::nullopt;
    return n;
}

/// \param if_given set when the spec names its bus (if=)
Result<vmm::VmConfig::DiskConfig> parse_disk(std::string const& spec, bool& if_given)
{
    if_given = false;
    auto parts = parse_key_values(spec);
    if (!parts)
        return Error(ErrorKind::InvalidArgument, fmt::format("--disk {}", parts.error().message()));
    vmm::VmConfig::DiskConfig disk;
    for (auto const& [key, value] : *parts) {
        if (key.empty() || key == "path" || key == "file") {
            disk.path = value;
        } else if (key == "readonly") {
            auto ro = parse_on_off(value);
            if (!ro)
                return Error(ErrorKind::InvalidArgument, fmt::format("--disk '{}': readonly must be on or off", spec));
            disk.read_only = *ro;
        } else if (key == "format") {
            auto f = block::parse_image_format(value);
            if (!f)
                return Error(ErrorKind::InvalidArgument, fmt::format("--disk '{}': format must be raw or qcow2", spec));
            disk.format = *f;
        } else if (key == "romfile") {
            disk.romfile = value;
        } else if (key == "bootindex") {
            auto n = parse_bootindex(value);
            if (!n)
                return Error(ErrorKind::InvalidArgument, fmt::format("--disk '{}': bootindex must be a number in 0-9999", spec));
            disk.bootindex = *n;
        } else if (key == "if") {
            if (value == "virtio")
                disk.bus = vmm::VmConfig::DiskBus::Virtio;
            else if (value == "ide")
                disk.bus = vmm::VmConfig::DiskBus::Ide;
            else if (value == "ahci")
                disk.bus = vmm::VmConfig::DiskBus::Ahci;
            else
                return Error(ErrorKind::InvalidArgument, fmt::format("--disk '{}': if must be virtio, ide or ahci", spec));
            if_given = true;
        } else if (key == "serial") {
            if (value.size() > 20)
                return Error(ErrorKind::InvalidArgument,
                    fmt::format("--disk '{}': serial is longer than virtio-blk's 20 bytes", spec));
            disk.serial = value;
        } else {
            return Error(ErrorKind::InvalidArgument,
                fmt::format("--disk '{}': unknown key '{}' (known: path, format, if, readonly, serial, romfile, bootindex)", spec, key));
        }
    }
    if (disk.path.empty())
        return Error(ErrorKind::InvalidArgument, fmt::format("--disk '{}': no path=FILE", spec));
    return disk;
}

/// --firmware uefi[,code=FILE][,vars=FILE][,vars-template=FILE] | pflash,code=FILE[,vars=FILE][,vars-template=FILE]:
/// firmware in CFI flash. nullopt: not this syntax (a plain BIOS image path).
std::optional<Result<vmm::VmConfig::PflashConfig>> parse_pflash_firmware(std::string const& spec)
{
    auto const head = spec.substr(0, spec.find(','));
    if (head != "uefi" && head != "pflash")
        return std::nullopt;
    auto parts = parse_key_values(spec);
    if (!parts)
        return Error(ErrorKind::InvalidArgument, fmt::format("--firmware {}", parts.error().message()));
    bool const uefi = head == "uefi";
    vmm::VmConfig::PflashConfig pf;
    if (uefi) {
        pf.code = vmm::VmConfig::OVMF_CODE;
        pf.vars_template = vmm::VmConfig::OVMF_VARS;
    }
    for (size_t i = 1; i < parts->size(); ++i) {
        auto const& [key, value] = (*parts)[i];
        if (value.empty())
            return Error(ErrorKind::InvalidArgument, fmt::format("--firmware '{}': {} needs a file name", spec, key));
        if (key == "code")
            pf.code = value;
        else if (key == "vars")
            pf.vars = value;
        else if (key == "vars-template")
            pf.vars_template = value;
        else
            return Error(ErrorKind::InvalidArgument,
                fmt::format("--firmware '{}': unknown key '{}' (known: code, vars, vars-template)", spec, key));
    }
    if (pf.code.empty())
        return Error(ErrorKind::InvalidArgument, fmt::format("--firmware '{}': pflash needs code=FILE", spec));
    if (uefi && ::access(pf.code.c_str(), R_OK) != 0)
        return Error(ErrorKind::NotFound, fmt::format("--firmware uefi: {} is missing (install Debian's ovmf package, "
                                                      "or give code=FILE)", pf.code));
    if (uefi && !pf.vars && pf.vars_template && ::access(pf.vars_template->c_str(), R_OK) != 0)
        return Error(ErrorKind::NotFound, fmt::format("--firmware uefi: {} is missing (install Debian's ovmf package, "
                                                      "or give vars-template=FILE)", *pf.vars_template));
    return pf;
}

int run(RunOptions const& o)
{
    init_logging(o.verbose);
    vmm::VmConfig config;
    config.start_ns = o.start_ns;
    if (o.cpus == 0)
        return fail(USAGE, "--cpus must be at least 1");
    config.cpus = o.cpus;

    auto memory = parse_memory_size(o.memory);
    if (!memory)
        return fail(USAGE, fmt::format("--memory '{}' is not a size (examples: 512M, 2G)", o.memory));
    constexpr uint64_t MIN_MEMORY = 8 * MiB;
    if (*memory < MIN_MEMORY)
        return fail(USAGE, fmt::format("--memory {} is too small: at least 8M", o.memory));
    if (*memory % (2 * MiB) != 0)
        return fail(USAGE, fmt::format("--memory {} must be a multiple of 2M", o.memory));
    uint64_t const host = host_memory_bytes();
    if (host && *memory > host)
        return fail(USAGE, fmt::format("--memory {} is more than this host has ({} MiB)", o.memory, host >> 20));
    config.memory = *memory;

    if (!o.kernel.empty())
        config.kernel = o.kernel;
    if (!o.initrd.empty())
        config.initrd = o.initrd;
    if (!o.firmware.empty()) {
        if (auto pf = parse_pflash_firmware(o.firmware)) {
            if (!*pf)
                return fail(pf->error().kind() == ErrorKind::NotFound ? BAD_INPUT : USAGE, pf->error().message());
            config.firmware = (*pf)->code;
            config.pflash = std::move(**pf);
        } else {
            config.firmware = o.firmware;
        }
    }
    if (!o.debugcon.empty())
        config.debugcon = o.debugcon;
    if (!o.api_socket.empty())
        config.api_socket = o.api_socket;
    if (o.kernel.empty() && o.firmware.empty()) {
        // As QEMU: without a kernel, the PC boots its BIOS (SeaBIOS), which boots from the disks, CD-ROMs or NICs.
        if (::access(vmm::VmConfig::DEFAULT_FIRMWARE, R_OK) != 0)
            return fail(BAD_INPUT, fmt::format("Nothing to boot: no --kernel, and the default firmware {} is missing "
                                               "(install Debian's seabios package, or give --firmware FILE)",
                                       vmm::VmConfig::DEFAULT_FIRMWARE));
        config.firmware = vmm::VmConfig::DEFAULT_FIRMWARE;
    }
    for (auto const& kind : o.boot) {
        std::string_view rest = kind;
        while (!rest.empty()) {
            auto comma = rest.find(',');
            std::string_view const item = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view {} : rest.substr(comma + 1);
            if (item == "disk" || item == "c")
                config.boot_order.push_back(vmm::VmConfig::BootKind::Disk);
            else if (item == "cdrom" || item == "d")
                config.boot_order.push_back(vmm::VmConfig::BootKind::Cdrom);
            else if (item == "net" || item == "n")
                config.boot_order.push_back(vmm::VmConfig::BootKind::Net);
            else
                return fail(USAGE, fmt::format("--boot '{}': expected disk, cdrom or net (comma-separated)", kind));
        }
    }
    if (o.kernel.empty() && (!o.initrd.empty() || o.cmdline_given))
        return fail(USAGE, "--initrd and --cmdline need --kernel");
    config.cmdline = o.cmdline;
    for (auto const& spec : o.fw_cfg) {
        // name=NAME,file=PATH (QEMU's -fw_cfg syntax).
        vmm::VmConfig::FwCfgFile f;
        size_t start = 0;
        while (start < spec.size()) {
            size_t comma = spec.find(',', start);
            std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (part.rfind("name=", 0) == 0)
                f.name = part.substr(5);
            else if (part.rfind("file=", 0) == 0)
                f.path = part.substr(5);
            else
                return fail(USAGE, fmt::format("--fw-cfg '{}': expected name=NAME,file=PATH", spec));
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
        if (f.name.empty() || f.path.empty())
            return fail(USAGE, fmt::format("--fw-cfg '{}': expected name=NAME,file=PATH", spec));
        if (f.name.size() >= 56)
            return fail(USAGE, fmt::format("--fw-cfg name '{}' is longer than fw_cfg's 55 characters", f.name));
        config.fw_cfg_files.push_back(std::move(f));
    }
    for (auto const& spec : o.disks) {
        bool if_given = false;
        auto disk = parse_disk(spec, if_given);
        if (!disk)
            return fail(USAGE, disk.error().message());
        if (disk->bus != vmm::VmConfig::DiskBus::Virtio && !disk->romfile.empty())
            return fail(USAGE, fmt::format("--disk '{}': romfile is for virtio disks (IDE and AHCI have none)", spec));
        config.disks.push_back(std::move(*disk));
    }
    for (auto const& spec : o.cdroms) {
        bool if_given = false;
        auto cd = parse_disk(spec, if_given);
        if (!cd)
            return fail(USAGE, cd.error().message());
        if (!cd->romfile.empty() || !cd->serial.empty() || (if_given && cd->bus == vmm::VmConfig::DiskBus::Virtio))
            return fail(USAGE, fmt::format("--cdrom '{}': only path, format, readonly, if=ide|ahci and bootindex apply", spec));
        if (!if_given)
            cd->bus = vmm::VmConfig::DiskBus::Ide;
        cd->cdrom = true;
        cd->read_only = true;
        config.disks.push_back(std::move(*cd));
    }
    {
        size_t ide = 0;
        for (auto const& d : config.disks)
            ide += d.bus == vmm::VmConfig::DiskBus::Ide;
        if (ide > 4)
            return fail(USAGE, fmt::format("{} IDE drives and CD-ROMs: the IDE controller has 4 positions", ide));
        size_t sata = 0;
        for (auto const& d : config.disks)
            sata += d.bus == vmm::VmConfig::DiskBus::Ahci;
        if (sata > 6)
            return fail(USAGE, fmt::format("{} AHCI drives and CD-ROMs: the AHCI controller has 6 ports", sata));
    }
    for (auto const& spec : o.nets) {
        auto n = net::parse_net_option(spec);
        if (!n)
            return fail(USAGE, n.error().message());
        config.nets.push_back(std::move(*n));
    }
    for (auto const& spec : o.devices) {
        // NAME[,romfile=FILE][,bootindex=N]
        auto parts = parse_key_values(spec);
        if (!parts || (*parts)[0].key != "")
            return fail(USAGE, fmt::format("--device '{}': expected NAME[,romfile=FILE][,bootindex=N]", spec));
        std::string const& name = (*parts)[0].value;
        if (name != "virtio-rng" && name != "virtio-rng-pci")
            return fail(USAGE, fmt::format("--device '{}': unknown device (known: virtio-rng)", spec));
        config.virtio_rng = true;
        for (size_t i = 1; i < parts->size(); ++i) {
            auto const& [key, value] = (*parts)[i];
            if (key == "romfile") {
                config.virtio_rng_romfile = value;
            } else if (key == "bootindex") {
                auto n = parse_bootindex(value);
                if (!n)
                    return fail(USAGE, fmt::format("--device '{}': bootindex must be a number in 0-9999", spec));
                config.virtio_rng_bootindex = *n;
            } else {
                return fail(USAGE, fmt::format("--device '{}': unknown key '{}' (known: romfile, bootindex)", spec, key));
            }
        }
    }
    if (!o.balloon.empty()) {
        auto parts = parse_key_values(o.balloon == "on" ? std::string("target_mib=0") : o.balloon);
        if (!parts)
            return fail(USAGE, fmt::format("--balloon {}", parts.error().message()));
        vmm::VmConfig::BalloonConfig b;
        for (auto const& [key, value] : *parts) {
            uint32_t n = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            bool const number = ec == std::errc() && end == value.data() + value.size();
            if (key == "target_mib" && number)
                b.target_mib = n;
            else if (key == "stats_interval" && number)
                b.stats_interval_s = n;
            else
                return fail(USAGE, fmt::format("--balloon '{}': expected target_mib=N[,stats_interval=SECONDS]", o.balloon));
        }
        if (b.target_mib > (config.memory >> 20))
            return fail(USAGE, fmt::format("--balloon target_mib={} is more than --memory", b.target_mib));
        config.balloon = b;
    }
    config.vga = config.firmware ? vmm::VgaKind::Std : vmm::VgaKind::None;
    if (!o.vga.empty()) {
        // std[,romfile=FILE] | none
        auto parts = parse_key_values(o.vga);
        if (!parts || (*parts)[0].key != "" || ((*parts)[0].value != "std" && (*parts)[0].value != "none"))
            return fail(USAGE, fmt::format("--vga '{}': expected std[,romfile=FILE] or none", o.vga));
        config.vga = (*parts)[0].value == "std" ? vmm::VgaKind::Std : vmm::VgaKind::None;
        for (size_t i = 1; i < parts->size(); ++i) {
            if ((*parts)[i].key != "romfile" || config.vga != vmm::VgaKind::Std)
                return fail(USAGE, fmt::format("--vga '{}': unknown key '{}' (known: romfile, with std)", o.vga, (*parts)[i].key));
            config.vga_romfile = (*parts)[i].value;
        }
    }
    if (!o.vnc.empty()) {
        auto vnc = ui::parse_vnc_options(o.vnc);
        if (!vnc)
            return fail(USAGE, vnc.error().message());
        if (config.vga != vmm::VgaKind::Std)
            return fail(USAGE, "--vnc needs a display: --vga std (the default with --firmware)");
        config.vnc = std::move(*vnc);
    }
    config.console = o.console == "virtio" ? vmm::ConsoleKind::Virtio : vmm::ConsoleKind::Serial;
    config.debug_exit = o.debug_exit;
    if (char const* dev = std::getenv("HAKO_KVM_DEVICE"))
        config.kvm_device = dev; // tests: a missing or inaccessible KVM device
    config.on_reboot = o.on_reboot == "exit" ? vmm::OnReboot::Exit : vmm::OnReboot::Restart;

    auto machine = vmm::build_machine(config);
    if (!machine) {
        auto const& e = machine.error();
        int status = e.kind() == ErrorKind::Kvm || e.kind() == ErrorKind::Unsupported ? KVM_UNAVAILABLE
            : e.kind() == ErrorKind::InvalidArgument                                   ? USAGE
                                                                                       : BAD_INPUT;
        return fail(status, e.message());
    }
    return (*machine)->run();
}

} // namespace

std::function<int()> register_run_command(CLI::App& app)
{
    auto o = std::make_shared<RunOptions>();
    timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    o->start_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    auto* cmd = app.add_subcommand("run", "Run a virtual machine in the foreground, its serial console on this terminal");
    cmd->add_option("--cpus", o->cpus, "Number of vCPUs (1 up to KVM's limit)")->capture_default_str();
    cmd->add_option("--memory", o->memory, "Guest RAM, e.g. 512M or 2G (RAM above 3G is mapped above 4 GiB)")
        ->capture_default_str();
    cmd->add_option("--kernel", o->kernel, "Kernel to boot: bzImage, ELF vmlinux with a PVH note, or multiboot (with --firmware: a bzImage the firmware loads through fw_cfg)");
    cmd->add_option("--initrd", o->initrd, "Initial ramdisk (multiboot: comma-separated modules)");
    cmd->add_option("--cmdline", o->cmdline, "Kernel command line")->each([o](std::string const&) { o->cmdline_given = true; });
    cmd->add_option("--firmware", o->firmware,
        "BIOS image run from the reset vector (default without --kernel: /usr/share/seabios/bios-256k.bin), or "
        "uefi[,vars=FILE] (Debian's OVMF as CFI flash below 4 GiB; vars=: a persistent variable store, created from "
        "OVMF_VARS_4M.fd if missing; without it the variables are a copy kept in memory and lost at exit; "
        "code=/vars-template= other images), or pflash,code=FILE[,vars=FILE][,vars-template=FILE]");
    cmd->add_option("--boot", o->boot,
        "Boot order for the firmware: disk, cdrom, net, comma-separated (after devices with bootindex=)");
    cmd->add_option("--fw-cfg", o->fw_cfg, "Add a fw_cfg file for the firmware: name=NAME,file=PATH (repeatable)");
    cmd->add_option("--disk", o->disks,
        "A disk: path=FILE[,format=raw|qcow2][,if=virtio|ide|ahci][,readonly=on][,serial=S][,romfile=ROM][,bootindex=N] "
        "(if=virtio, the default: a virtio-blk; if=ide: an ATA disk on the PIIX3 IDE, primary master/slave, then "
        "secondary; if=ahci: a SATA disk on the ICH9 AHCI, ports 0-5 in order; locked "
        "against other writers; romfile: a PCI option ROM for the device; bootindex: firmware boot priority; "
        "repeatable)");
    cmd->add_option("--cdrom", o->cdroms,
        "An ATAPI CD-ROM on the IDE controller (secondary master first) or with if=ahci on the AHCI (next free "
        "port), read-only: FILE or path=FILE[,format=raw|qcow2][,if=ide|ahci][,bootindex=N] (repeatable)");
    cmd->add_option("--net", o->nets,
        "A NIC: user[,hostfwd=tcp:127.0.0.1:HPORT-:GPORT][,tftp=DIR][,bootfile=NAME][,net=10.0.2.0/24][,mac=MAC]"
        "[,model=virtio|e1000|rtl8139|ne2k_pci|pcnet][,romfile=ROM] (user networking through libslirp: DHCP, DNS, outgoing connections, forwards) "
        "or tap=IFNAME[,mac=MAC][,model=virtio|e1000|rtl8139|ne2k_pci|pcnet][,romfile=ROM] (a host tap; offloads pass through); repeatable");
    cmd->add_option("--device", o->devices,
        "Add a device: virtio-rng[,romfile=ROM] (entropy from the host's getrandom; romfile: a PCI option ROM)");
    cmd->add_option("--console", o->console,
        "Where terminal input goes: serial (COM1) or virtio (a virtio-console, e.g. Linux console=hvc0)")
        ->check(CLI::IsMember({ "serial", "virtio" }))
        ->capture_default_str();
    cmd->add_option("--vga", o->vga,
        "Display: std[,romfile=VGABIOS] (PCI std VGA, 1234:1111; screenshots through the API socket) or none. "
        "Default: std with --firmware, none for --kernel direct boot");
    cmd->add_option("--vnc", o->vnc,
        "A VNC server showing the display, with keyboard and mouse input (PS/2, US layout): IPV4:PORT (e.g. "
        "127.0.0.1:5900) or unix:PATH, [,password=SECRET] (VNC authentication, 1-8 characters). Needs --vga std");
    cmd->add_option("--balloon", o->balloon,
        "A virtio-balloon: target_mib=N[,stats_interval=SECONDS] (target changed later through the API socket)");
    cmd->add_option("--api-socket", o->api_socket,
        "Serve the VM's control API (JSON over HTTP, src/api/openapi.yaml) on this unix socket");
    cmd->add_flag("--debug-exit", o->debug_exit,
        "isa-debug-exit at port 0xf4: a guest write of v exits hako with status (v << 1) | 1");
    cmd->add_option("--debugcon", o->debugcon, "Write bytes the guest sends to ports 0xe9 and 0x402 to FILE");
    cmd->add_option("--on-reboot", o->on_reboot, "What a guest reset does")
        ->check(CLI::IsMember({ "restart", "exit" }))
        ->capture_default_str();
    cmd->add_flag("-v,--verbose", o->verbose, "More log output (repeat for debug)");
    cmd->footer("Console: Ctrl-a x quits, Ctrl-a h shows help (when stdin is a terminal).\n"
                "Exit status: 0 guest powered off, (v<<1)|1 debug-exit value v, 2 usage, 4 bad input file,\n"
                "6 KVM unavailable, 8 guest stopped by an emulation failure, 10 internal error,\n"
                "128+N terminated by signal N (SIGINT, SIGTERM, SIGHUP).");
    return [cmd, o]() -> int {
        if (!cmd->parsed())
            return USAGE;
        return run(*o);
    };
}

} // namespace hako::cli
