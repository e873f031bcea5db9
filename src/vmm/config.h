// VmConfig: everything `hako run` was asked for, validated by the CLI before a machine is built.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "block/image_format.h"
#include "net/net_options.h"
#include "ui/vnc_options.h"

namespace hako::vmm {

enum class OnReboot { Restart, Exit };
/// The display adapter (--vga).
enum class VgaKind { None, Std };
/// Where the terminal's input goes (output of both always reaches stdout).
enum class ConsoleKind { Serial, Virtio };

struct VmConfig {
    unsigned cpus { 1 };
    uint64_t memory { 256ull << 20 };
    std::optional<std::string> kernel;
    std::optional<std::string> initrd; // multiboot: comma-separated module list
    std::string cmdline;
    std::optional<std::string> firmware;
    /// The firmware used when neither --kernel nor --firmware is given (Debian's seabios package).
    static constexpr char const* DEFAULT_FIRMWARE = "/usr/share/seabios/bios-256k.bin";
    /// --firmware uefi|pflash: the firmware as CFI flash ending at 4 GiB (QEMU's -drive if=pflash): `code` (unit 0,
    /// read-only, its path is also `firmware`) and, below it, a variable store (unit 1) that is the file `vars`
    /// (created from `vars_template` if missing, written on every program/erase) or, without `vars`, an in-memory
    /// copy of `vars_template` discarded at exit. Neither: no unit 1.
    struct PflashConfig {
        std::string code;
        std::optional<std::string> vars;
        std::optional<std::string> vars_template;
    };
    std::optional<PflashConfig> pflash;
    /// Debian's OVMF (package ovmf), what --firmware uefi selects.
    static constexpr char const* OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    static constexpr char const* OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";
    std::string linuxboot_rom { "/usr/share/qemu/linuxboot_dma.bin" }; // --kernel with --firmware
    struct FwCfgFile {
        std::string name; // fw_cfg file name, e.g. opt/org.example/config or genroms/boot.bin
        std::string path; // host file with the contents
    };
    std::vector<FwCfgFile> fw_cfg_files;
    /// A disk (--disk: virtio-blk, or with if=ide an ATA disk on the PIIX3 IDE, with if=ahci a SATA disk on the
    /// ICH9 AHCI) or an ATAPI CD-ROM (--cdrom: on the IDE, or with if=ahci on the AHCI).
    enum class DiskBus : uint8_t { Virtio, Ide, Ahci };
    struct DiskConfig {
        std::string path;
        DiskBus bus { DiskBus::Virtio };
        bool cdrom { false }; // an ATAPI CD-ROM (IDE or AHCI, read-only)
        bool read_only { false };
        std::string serial;
        std::string romfile; // PCI option ROM for the device ("" none)
        std::optional<block::ImageFormat> format; // raw or qcow2; unset: probed (a qcow2 header then needs format=)
        std::optional<unsigned> bootindex;        // firmware boot priority (lower first), as QEMU's bootindex=
    };
    std::vector<DiskConfig> disks;
    std::vector<net::NetOptions> nets; // --net, in order (NIC i gets MAC 52:54:00:12:34:56+i by default)
    bool virtio_rng { false }; // --device virtio-rng
    std::string virtio_rng_romfile; // its PCI option ROM ("" none)
    std::optional<unsigned> virtio_rng_bootindex; // its ROM's boot priority
    /// --boot: device kinds in the order the firmware tries them (after devices with a bootindex).
    enum class BootKind : uint8_t { Disk, Cdrom, Net };
    std::vector<BootKind> boot_order;
    ConsoleKind console { ConsoleKind::Serial }; // --console
    /// --balloon: a virtio-balloon with this initial target, and how often its statistics are refreshed (0: only
    /// when the API asks).
    struct BalloonConfig {
        uint64_t target_mib { 0 };
        unsigned stats_interval_s { 0 };
    };
    std::optional<BalloonConfig> balloon;
    /// --vga: the std VGA (PCI 1234:1111) or no display. The CLI's default: std with --firmware (as QEMU), none for
    /// direct kernel boot.
    VgaKind vga { VgaKind::None };
    std::string vga_romfile { "/usr/share/seabios/vgabios-stdvga.bin" }; // its VGA BIOS, loaded with --firmware only
    std::optional<ui::VncOptions> vnc;       // --vnc: the built-in VNC server (needs --vga std)
    std::optional<std::string> api_socket; // --api-socket PATH
    bool debug_exit { false };
    std::optional<std::string> debugcon;
    OnReboot on_reboot { OnReboot::Restart };
    std::string kvm_device { "/dev/kvm" };
    int64_t start_ns { 0 }; // CLOCK_MONOTONIC at main(), for the "first KVM_RUN" startup figure
};

/// Exit statuses of `hako run`. A debug-exit write of v gives (v << 1) | 1, always odd; hako's own are even.
namespace exit_status {
constexpr int POWER_OFF = 0;      // the guest powered off (or rebooted with --on-reboot exit, or Ctrl-a x)
constexpr int USAGE = 2;          // bad command line
constexpr int BAD_INPUT = 4;      // bad host input: missing/corrupt kernel, ROM, initrd, bad size
constexpr int KVM_UNAVAILABLE = 6; // no /dev/kvm, no permission, missing capability
constexpr int GUEST_CRASHED = 8;  // KVM could not run the guest any further (emulation failure, entry failure)
constexpr int INTERNAL = 10;      // a host-side failure while running (KVM_RUN error...)
} // namespace exit_status

} // namespace hako::vmm
