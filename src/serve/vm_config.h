// VmConfig: a VM definition as `hako serve` stores it (JSON in SQLite) and turns it into a `hako run` command line.
//
// Everything a client sends is validated here before it is stored or used: VM names match
// [A-Za-z0-9][A-Za-z0-9_.-]{0,62}; paths are absolute (or, for disks, a plain file name under the state directory's
// images/), have no "." or ".." component and no character that could change the meaning of a `hako run` option
// (',' '=' or a control character); numbers are bounded. The daemon never runs a shell: `run_argv()` is handed to
// posix_spawn() as it is.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hako::serve {

enum class RestartPolicy { No, OnFailure, Always };

struct DiskSpec {
    std::string path;      // absolute after resolution
    std::string format;    // "raw" or "qcow2"
    std::string interface; // "virtio" or "ide"
    bool readonly { false };
};

struct NicSpec {
    std::string mode;  // "user" or "tap"
    std::string tap;   // interface name (mode tap)
    std::string model; // virtio, e1000, rtl8139, ne2k_pci, pcnet
    std::string mac;   // empty: hako's default
};

struct VmConfig {
    unsigned cpus { 1 };
    uint64_t memory_mib { 256 };
    std::vector<DiskSpec> disks;
    std::vector<std::string> cdroms; // absolute ISO paths
    std::vector<NicSpec> nics;
    std::string vga { "none" }; // "none" or "std"
    bool vnc { false };         // a VNC server on the VM's unix socket (needs vga std)
    std::vector<std::string> boot; // firmware boot order: disk, cdrom, net
    std::string firmware; // empty: hako's default when there is no kernel
    std::string kernel, initrd, cmdline;
    bool debug_exit { false };
    RestartPolicy restart { RestartPolicy::No };
};

constexpr unsigned MAX_CPUS = 255;
constexpr uint64_t MAX_MEMORY_MIB = 1024 * 1024; // 1 TiB
constexpr size_t MAX_DISKS = 16;
constexpr size_t MAX_NICS = 8;
constexpr size_t MAX_CMDLINE = 4096;
constexpr size_t MAX_PATH_LEN = 1024;

/// Whether `name` is a valid VM name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}.
bool valid_vm_name(std::string_view name);
/// Whether `name` is a valid image file name under images/: a VM-name-like file name.
bool valid_image_name(std::string_view name);
/// An absolute, normalized path with no "." / ".." components and no ',', '=' or control characters.
[[nodiscard]] Result<std::string> check_absolute_path(std::string_view path, std::string_view what);
/// A disk path: absolute (checked as above) or a plain image name, resolved to `images_dir`/NAME.
[[nodiscard]] Result<std::string> resolve_disk_path(std::string_view path, std::string const& images_dir);

/// Parses and validates a whole definition. Unknown keys are refused (a typo must not be ignored silently).
[[nodiscard]] Result<VmConfig> config_from_json(nlohmann::json const& j, std::string const& images_dir);
/// Applies a partial definition (the keys present replace the stored ones) and validates the result.
[[nodiscard]] Result<VmConfig> config_patch(VmConfig const& base, nlohmann::json const& patch, std::string const& images_dir);
nlohmann::json config_to_json(VmConfig const& config);

std::string_view restart_policy_name(RestartPolicy p);

/// Where a running VM's files are (all under the VM's directory in the state dir).
struct RunPaths {
    std::string api_socket;
    std::string vnc_socket;
};
/// The `hako run` argument vector (without argv[0]) for a definition.
std::vector<std::string> run_argv(VmConfig const& config, RunPaths const& paths);

} // namespace hako::serve
