// `hako vm create NAME [options]`, `hako vm edit NAME [options]` (only the options given change; the VM must be
// stopped), `hako vm clone NAME NEW`, `hako vm disk-create NAME IMAGE --size SIZE [--format F] [--if I]`.
// The options mirror `hako run`'s; the daemon validates everything again.
#include "base/key_value.h"
#include "base/size.h"
#include "cli/vm_verbs.h"

namespace hako::cli {

namespace {

using nlohmann::json;

struct DefineOptions {
    std::string name;
    unsigned cpus { 0 };
    std::string memory, vga, boot, firmware, kernel, initrd, cmdline, restart;
    std::vector<std::string> disks, cdroms, nets;
    bool cmdline_given { false }, no_disks { false }, no_nets { false };
    std::optional<bool> vnc, debug_exit;
};

void add_define_options(CLI::App* cmd, DefineOptions& o)
{
    cmd->add_option("NAME", o.name, "The VM's name ([A-Za-z0-9][A-Za-z0-9_.-]{0,62})")->required();
    cmd->add_option("--cpus", o.cpus, "Number of vCPUs");
    cmd->add_option("--memory", o.memory, "Guest RAM, e.g. 512M or 2G");
    cmd->add_option("--disk", o.disks, "A disk: path=FILE|IMAGE-NAME[,format=raw|qcow2][,if=virtio|ide][,readonly=on] "
                                       "(a bare name is an image in the daemon's images/; repeatable)");
    cmd->add_option("--cdrom", o.cdroms, "An ISO image (absolute path; repeatable)");
    cmd->add_option("--net", o.nets, "A NIC: user[,model=M][,mac=MAC] or tap=IFNAME[,model=M][,mac=MAC] (repeatable)");
    cmd->add_option("--vga", o.vga, "Display: std or none")->check(CLI::IsMember({ "std", "none" }));
    cmd->add_option("--vnc", o.vnc, "A VNC server on the VM's unix socket in the state dir (on/off; needs --vga std)");
    cmd->add_option("--boot", o.boot, "Firmware boot order: disk, cdrom, net, comma-separated");
    cmd->add_option("--firmware", o.firmware, "BIOS image (absolute path)");
    cmd->add_option("--kernel", o.kernel, "Kernel for direct boot (absolute path)");
    cmd->add_option("--initrd", o.initrd, "Initial ramdisk (absolute path)");
    cmd->add_option("--cmdline", o.cmdline, "Kernel command line")->each([&o](std::string const&) { o.cmdline_given = true; });
    cmd->add_option("--debug-exit", o.debug_exit, "isa-debug-exit at port 0xf4 (on/off)");
    cmd->add_option("--restart", o.restart, "Restart policy: no, on-failure, always")
        ->check(CLI::IsMember({ "no", "on-failure", "always" }));
}

Result<json> define_json(DefineOptions const& o, bool edit)
{
    json j = json::object();
    if (o.cpus != 0)
        j["cpus"] = o.cpus;
    if (!o.memory.empty()) {
        auto bytes = parse_memory_size(o.memory);
        if (!bytes || *bytes < 1024 * 1024)
            return Error(ErrorKind::InvalidArgument, fmt::format("--memory {}: not a size (e.g. 512M, 2G)", o.memory));
        j["memory_mib"] = *bytes / (1024 * 1024);
    }
    if (!o.disks.empty() || !edit) {
        json disks = json::array();
        for (auto const& spec : o.disks) {
            auto parts = parse_key_values(spec);
            if (!parts)
                return Error(ErrorKind::InvalidArgument, fmt::format("--disk {}", parts.error().message()));
            json d = json::object();
            for (auto const& [key, value] : *parts) {
                if (key.empty() || key == "path")
                    d["path"] = value;
                else if (key == "format" || key == "if")
                    d[key] = value;
                else if (key == "readonly") {
                    auto b = parse_on_off(value);
                    if (!b)
                        return Error(ErrorKind::InvalidArgument, fmt::format("--disk {}: readonly=on or off", spec));
                    d["readonly"] = *b;
                } else
                    return Error(ErrorKind::InvalidArgument, fmt::format("--disk {}: unknown key '{}'", spec, key));
            }
            disks.push_back(d);
        }
        j["disks"] = disks;
    }
    if (!o.cdroms.empty())
        j["cdroms"] = o.cdroms;
    if (!o.nets.empty() || !edit) {
        json nics = json::array();
        for (auto const& spec : o.nets) {
            auto parts = parse_key_values(spec);
            if (!parts)
                return Error(ErrorKind::InvalidArgument, fmt::format("--net {}", parts.error().message()));
            json n = json::object();
            for (auto const& [key, value] : *parts) {
                if (key.empty() && value == "user")
                    n["mode"] = "user";
                else if (key == "tap") {
                    n["mode"] = "tap";
                    n["tap"] = value;
                } else if (key == "model" || key == "mac")
                    n[key] = value;
                else
                    return Error(ErrorKind::InvalidArgument, fmt::format("--net {}: unknown part '{}'", spec, key.empty() ? value : key));
            }
            nics.push_back(n);
        }
        j["nics"] = nics;
    }
    if (!o.vga.empty())
        j["vga"] = o.vga;
    if (o.vnc)
        j["vnc"] = *o.vnc;
    if (!o.boot.empty()) {
        json order = json::array();
        auto parts = parse_key_values(o.boot);
        if (!parts)
            return Error(ErrorKind::InvalidArgument, fmt::format("--boot {}", parts.error().message()));
        for (auto const& kv : *parts)
            order.push_back(kv.key.empty() ? kv.value : kv.key);
        j["boot"] = order;
    }
    if (!o.firmware.empty())
        j["firmware"] = o.firmware;
    if (!o.kernel.empty())
        j["kernel"] = o.kernel;
    if (!o.initrd.empty())
        j["initrd"] = o.initrd;
    if (o.cmdline_given)
        j["cmdline"] = o.cmdline;
    if (o.debug_exit)
        j["debug_exit"] = *o.debug_exit;
    if (!o.restart.empty())
        j["restart"] = o.restart;
    return j;
}

} // namespace

void register_vm_define(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs)
{
    auto create_o = std::make_shared<DefineOptions>();
    auto* create = vm.add_subcommand("create", "Define a new VM (stopped)");
    add_define_options(create, *create_o);
    verbs.push_back({ create, [common, create_o]() -> int {
        auto j = define_json(*create_o, false);
        if (!j)
            return vm_fail(2, j.error().message());
        (*j)["name"] = create_o->name;
        int status = 0;
        auto r = vm_call(*common, "POST", "/api/v1/vms", *j, status);
        if (r)
            print_vm(*common, r->body);
        return status;
    } });

    auto edit_o = std::make_shared<DefineOptions>();
    auto* edit = vm.add_subcommand("edit", "Change a stopped VM's definition (only the options given; --disk/--net replace the lists)");
    add_define_options(edit, *edit_o);
    verbs.push_back({ edit, [common, edit_o]() -> int {
        auto j = define_json(*edit_o, true);
        if (!j)
            return vm_fail(2, j.error().message());
        int status = 0;
        auto r = vm_call(*common, "PATCH", "/api/v1/vms/" + encode_segment(edit_o->name), *j, status);
        if (r)
            print_vm(*common, r->body);
        return status;
    } });

    auto names = std::make_shared<std::pair<std::string, std::string>>();
    auto* clone = vm.add_subcommand("clone", "Copy a stopped VM's definition (and its disks in images/) to a new VM");
    clone->add_option("NAME", names->first, "The VM to copy")->required();
    clone->add_option("NEW", names->second, "The new VM's name")->required();
    verbs.push_back({ clone, [common, names]() -> int {
        int status = 0;
        auto r = vm_call(*common, "POST", "/api/v1/vms/" + encode_segment(names->first) + "/clone", { { "name", names->second } }, status);
        if (r)
            print_vm(*common, r->body);
        return status;
    } });

    struct DiskOptions {
        std::string vm, image, size, format { "qcow2" }, interface { "virtio" };
    };
    auto d = std::make_shared<DiskOptions>();
    auto* disk = vm.add_subcommand("disk-create", "Create a disk image in the daemon's images/ and attach it to a stopped VM");
    disk->add_option("NAME", d->vm, "The VM")->required();
    disk->add_option("IMAGE", d->image, "The image's file name in images/")->required();
    disk->add_option("--size", d->size, "Size, e.g. 10G")->required();
    disk->add_option("--format", d->format, "raw or qcow2")->check(CLI::IsMember({ "raw", "qcow2" }))->capture_default_str();
    disk->add_option("--if", d->interface, "virtio or ide")->check(CLI::IsMember({ "virtio", "ide" }))->capture_default_str();
    verbs.push_back({ disk, [common, d]() -> int {
        auto bytes = parse_memory_size(d->size);
        if (!bytes || *bytes < 1024 * 1024)
            return vm_fail(2, fmt::format("--size {}: not a size of at least 1M (e.g. 512M, 10G)", d->size));
        int status = 0;
        json body = { { "name", d->image }, { "size_mib", *bytes / (1024 * 1024) }, { "format", d->format }, { "if", d->interface } };
        auto r = vm_call(*common, "POST", "/api/v1/vms/" + encode_segment(d->vm) + "/disks", body, status);
        if (r)
            print_vm(*common, r->body);
        return status;
    } });
}

} // namespace hako::cli
