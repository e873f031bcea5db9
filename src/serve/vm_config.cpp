#include "serve/vm_config.h"

#include <algorithm>
#include <array>
#include <fmt/format.h>

namespace hako::serve {

using nlohmann::json;

namespace {

bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

Error bad(std::string message) { return Error(ErrorKind::InvalidArgument, std::move(message)); }

template<size_t N>
bool one_of(std::string_view v, std::array<std::string_view, N> const& set)
{
    return std::find(set.begin(), set.end(), v) != set.end();
}

constexpr std::array NIC_MODELS { std::string_view("virtio"), std::string_view("e1000"), std::string_view("rtl8139"),
    std::string_view("ne2k_pci"), std::string_view("pcnet") };
constexpr std::array BOOT_DEVICES { std::string_view("disk"), std::string_view("cdrom"), std::string_view("net") };

bool valid_mac(std::string_view mac)
{
    if (mac.size() != 17)
        return false;
    for (size_t i = 0; i < mac.size(); i++) {
        char const c = mac[i];
        bool const hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (i % 3 == 2 ? c != ':' : !hex)
            return false;
    }
    return true;
}

bool valid_ifname(std::string_view n)
{
    return !n.empty() && n.size() <= 15 && std::all_of(n.begin(), n.end(), name_char) && n != "." && n != "..";
}

Result<std::string> get_string(json const& j, std::string_view key)
{
    if (!j.is_string())
        return bad(fmt::format("'{}' must be a string", key));
    return j.get<std::string>();
}

Result<uint64_t> get_uint(json const& j, std::string_view key, uint64_t min, uint64_t max)
{
    if (!j.is_number_integer() || (j.is_number_integer() && !j.is_number_unsigned() && j.get<int64_t>() < 0))
        return bad(fmt::format("'{}' must be a whole number from {} to {}", key, min, max));
    uint64_t const v = j.get<uint64_t>();
    if (v < min || v > max)
        return bad(fmt::format("'{}' must be a whole number from {} to {}", key, min, max));
    return v;
}

Result<bool> get_bool(json const& j, std::string_view key)
{
    if (!j.is_boolean())
        return bad(fmt::format("'{}' must be true or false", key));
    return j.get<bool>();
}

Result<DiskSpec> disk_from_json(json const& j, std::string const& images_dir, size_t index)
{
    std::string const where = fmt::format("disks[{}]", index);
    if (!j.is_object())
        return bad(fmt::format("'{}' must be an object", where));
    DiskSpec d { "", "raw", "virtio", false };
    bool have_path = false;
    for (auto const& [key, value] : j.items()) {
        if (key == "path") {
            auto s = TRY(get_string(value, where + ".path"));
            d.path = TRY(resolve_disk_path(s, images_dir));
            have_path = true;
        } else if (key == "format") {
            d.format = TRY(get_string(value, where + ".format"));
            if (d.format != "raw" && d.format != "qcow2")
                return bad(fmt::format("'{}.format' must be raw or qcow2", where));
        } else if (key == "if") {
            d.interface = TRY(get_string(value, where + ".if"));
            if (d.interface != "virtio" && d.interface != "ide")
                return bad(fmt::format("'{}.if' must be virtio or ide", where));
        } else if (key == "readonly") {
            d.readonly = TRY(get_bool(value, where + ".readonly"));
        } else {
            return bad(fmt::format("Unknown key '{}.{}'", where, key));
        }
    }
    if (!have_path)
        return bad(fmt::format("'{}' needs a path", where));
    return d;
}

Result<NicSpec> nic_from_json(json const& j, size_t index)
{
    std::string const where = fmt::format("nics[{}]", index);
    if (!j.is_object())
        return bad(fmt::format("'{}' must be an object", where));
    NicSpec n { "user", "", "virtio", "" };
    for (auto const& [key, value] : j.items()) {
        if (key == "mode") {
            n.mode = TRY(get_string(value, where + ".mode"));
            if (n.mode != "user" && n.mode != "tap")
                return bad(fmt::format("'{}.mode' must be user or tap", where));
        } else if (key == "tap") {
            n.tap = TRY(get_string(value, where + ".tap"));
            if (!valid_ifname(n.tap))
                return bad(fmt::format("'{}.tap' is not a network interface name", where));
        } else if (key == "model") {
            n.model = TRY(get_string(value, where + ".model"));
            if (!one_of(n.model, NIC_MODELS))
                return bad(fmt::format("'{}.model' must be one of virtio, e1000, rtl8139, ne2k_pci, pcnet", where));
        } else if (key == "mac") {
            n.mac = TRY(get_string(value, where + ".mac"));
            if (!n.mac.empty() && !valid_mac(n.mac))
                return bad(fmt::format("'{}.mac' must look like 52:54:00:12:34:56", where));
        } else {
            return bad(fmt::format("Unknown key '{}.{}'", where, key));
        }
    }
    if (n.mode == "tap" && n.tap.empty())
        return bad(fmt::format("'{}' in tap mode needs 'tap' (the interface name)", where));
    if (n.mode == "user" && !n.tap.empty())
        return bad(fmt::format("'{}.tap' is only for mode tap", where));
    return n;
}

/// Applies the keys of `j` to `c`.
Result<void> apply(VmConfig& c, json const& j, std::string const& images_dir)
{
    if (!j.is_object())
        return bad("The VM definition must be a JSON object");
    for (auto const& [key, value] : j.items()) {
        if (key == "cpus") {
            c.cpus = static_cast<unsigned>(TRY(get_uint(value, key, 1, MAX_CPUS)));
        } else if (key == "memory_mib") {
            c.memory_mib = TRY(get_uint(value, key, 16, MAX_MEMORY_MIB));
        } else if (key == "disks") {
            if (!value.is_array() || value.size() > MAX_DISKS)
                return bad(fmt::format("'disks' must be an array of at most {} disks", MAX_DISKS));
            c.disks.clear();
            for (size_t i = 0; i < value.size(); i++)
                c.disks.push_back(TRY(disk_from_json(value[i], images_dir, i)));
        } else if (key == "cdroms") {
            if (!value.is_array() || value.size() > 4)
                return bad("'cdroms' must be an array of at most 4 paths");
            c.cdroms.clear();
            for (auto const& v : value) {
                auto const path = TRY(get_string(v, "cdroms[]"));
                c.cdroms.push_back(TRY(check_absolute_path(path, "cdroms[]")));
            }
        } else if (key == "nics") {
            if (!value.is_array() || value.size() > MAX_NICS)
                return bad(fmt::format("'nics' must be an array of at most {} NICs", MAX_NICS));
            c.nics.clear();
            for (size_t i = 0; i < value.size(); i++)
                c.nics.push_back(TRY(nic_from_json(value[i], i)));
        } else if (key == "vga") {
            c.vga = TRY(get_string(value, key));
            if (c.vga != "none" && c.vga != "std")
                return bad("'vga' must be none or std");
        } else if (key == "vnc") {
            c.vnc = TRY(get_bool(value, key));
        } else if (key == "boot") {
            if (!value.is_array() || value.size() > BOOT_DEVICES.size())
                return bad("'boot' must be an array of disk, cdrom, net");
            c.boot.clear();
            for (auto const& v : value) {
                auto b = TRY(get_string(v, "boot[]"));
                if (!one_of(b, BOOT_DEVICES) || std::find(c.boot.begin(), c.boot.end(), b) != c.boot.end())
                    return bad("'boot' must list disk, cdrom, net, each at most once");
                c.boot.push_back(b);
            }
        } else if (key == "firmware" || key == "kernel" || key == "initrd") {
            auto s = TRY(get_string(value, key));
            if (!s.empty()) {
                auto checked = TRY(check_absolute_path(s, key));
                s = std::move(checked);
            }
            (key == "firmware" ? c.firmware : key == "kernel" ? c.kernel : c.initrd) = s;
        } else if (key == "cmdline") {
            c.cmdline = TRY(get_string(value, key));
            if (c.cmdline.size() > MAX_CMDLINE)
                return bad(fmt::format("'cmdline' is longer than {} bytes", MAX_CMDLINE));
            if (std::any_of(c.cmdline.begin(), c.cmdline.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }))
                return bad("'cmdline' has a control character");
        } else if (key == "debug_exit") {
            c.debug_exit = TRY(get_bool(value, key));
        } else if (key == "restart") {
            auto s = TRY(get_string(value, key));
            if (s == "no")
                c.restart = RestartPolicy::No;
            else if (s == "on-failure")
                c.restart = RestartPolicy::OnFailure;
            else if (s == "always")
                c.restart = RestartPolicy::Always;
            else
                return bad("'restart' must be no, on-failure or always");
        } else {
            return bad(fmt::format("Unknown key '{}'", key));
        }
    }
    if (c.vnc && c.vga != "std")
        return bad("'vnc' needs 'vga': 'std'");
    if (c.kernel.empty() && (!c.initrd.empty() || !c.cmdline.empty()))
        return bad("'initrd' and 'cmdline' need a 'kernel'");
    return ok();
}

} // namespace

bool valid_vm_name(std::string_view name)
{
    return !name.empty() && name.size() <= 63 && alnum(name[0]) && std::all_of(name.begin(), name.end(), name_char);
}

bool valid_image_name(std::string_view name) { return valid_vm_name(name); }

Result<std::string> check_absolute_path(std::string_view path, std::string_view what)
{
    if (path.empty() || path[0] != '/')
        return bad(fmt::format("'{}' must be an absolute path", what));
    if (path.size() > MAX_PATH_LEN)
        return bad(fmt::format("'{}' is longer than {} bytes", what, MAX_PATH_LEN));
    for (char c : path) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ',' || c == '=')
            return bad(fmt::format("'{}' has a character hako cannot pass on (',', '=' or a control character)", what));
    }
    size_t pos = 1;
    while (pos <= path.size()) {
        size_t const end = std::min(path.find('/', pos), path.size());
        std::string_view const part = path.substr(pos, end - pos);
        if (part == "." || part == ".." || (part.empty() && end != path.size()))
            return bad(fmt::format("'{}' must be a normalized path (no '.', '..' or '//')", what));
        pos = end + 1;
    }
    if (path.size() > 1 && path.back() == '/')
        return bad(fmt::format("'{}' must name a file, not a directory", what));
    return std::string(path);
}

Result<std::string> resolve_disk_path(std::string_view path, std::string const& images_dir)
{
    if (!path.empty() && path[0] == '/')
        return check_absolute_path(path, "disk path");
    if (!valid_image_name(path))
        return bad("A disk path must be absolute, or an image name under the state directory's images/ "
                   "([A-Za-z0-9][A-Za-z0-9_.-]{0,62})");
    return check_absolute_path(images_dir + "/" + std::string(path), "disk path");
}

Result<VmConfig> config_from_json(json const& j, std::string const& images_dir)
{
    VmConfig c;
    TRY(apply(c, j, images_dir));
    return c;
}

Result<VmConfig> config_patch(VmConfig const& base, json const& patch, std::string const& images_dir)
{
    VmConfig c = base;
    TRY(apply(c, patch, images_dir));
    return c;
}

std::string_view restart_policy_name(RestartPolicy p)
{
    switch (p) {
    case RestartPolicy::OnFailure:
        return "on-failure";
    case RestartPolicy::Always:
        return "always";
    case RestartPolicy::No:
        break;
    }
    return "no";
}

json config_to_json(VmConfig const& c)
{
    json disks = json::array();
    for (auto const& d : c.disks)
        disks.push_back({ { "path", d.path }, { "format", d.format }, { "if", d.interface }, { "readonly", d.readonly } });
    json nics = json::array();
    for (auto const& n : c.nics) {
        json o = { { "mode", n.mode }, { "model", n.model }, { "mac", n.mac } };
        if (n.mode == "tap")
            o["tap"] = n.tap;
        nics.push_back(o);
    }
    return {
        { "cpus", c.cpus },
        { "memory_mib", c.memory_mib },
        { "disks", disks },
        { "cdroms", c.cdroms },
        { "nics", nics },
        { "vga", c.vga },
        { "vnc", c.vnc },
        { "boot", c.boot },
        { "firmware", c.firmware },
        { "kernel", c.kernel },
        { "initrd", c.initrd },
        { "cmdline", c.cmdline },
        { "debug_exit", c.debug_exit },
        { "restart", restart_policy_name(c.restart) },
    };
}

std::vector<std::string> run_argv(VmConfig const& c, RunPaths const& paths)
{
    std::vector<std::string> a { "run", "--cpus", std::to_string(c.cpus), "--memory", fmt::format("{}M", c.memory_mib) };
    if (!c.kernel.empty()) {
        a.insert(a.end(), { "--kernel", c.kernel });
        if (!c.initrd.empty())
            a.insert(a.end(), { "--initrd", c.initrd });
        if (!c.cmdline.empty())
            a.insert(a.end(), { "--cmdline", c.cmdline });
    }
    if (!c.firmware.empty())
        a.insert(a.end(), { "--firmware", c.firmware });
    for (auto const& d : c.disks) {
        a.push_back("--disk");
        a.push_back(fmt::format("path={},format={},if={}{}", d.path, d.format, d.interface, d.readonly ? ",readonly=on" : ""));
    }
    for (auto const& cd : c.cdroms)
        a.insert(a.end(), { "--cdrom", fmt::format("path={}", cd) });
    for (auto const& n : c.nics) {
        std::string s = n.mode == "tap" ? fmt::format("tap={}", n.tap) : std::string("user");
        s += fmt::format(",model={}", n.model);
        if (!n.mac.empty())
            s += fmt::format(",mac={}", n.mac);
        a.insert(a.end(), { "--net", s });
    }
    a.insert(a.end(), { "--vga", c.vga });
    if (c.vnc)
        a.insert(a.end(), { "--vnc", fmt::format("unix:{}", paths.vnc_socket) });
    if (!c.boot.empty()) {
        std::string order;
        for (auto const& b : c.boot)
            order += (order.empty() ? "" : ",") + b;
        a.insert(a.end(), { "--boot", order });
    }
    if (c.debug_exit)
        a.push_back("--debug-exit");
    a.insert(a.end(), { "--api-socket", paths.api_socket });
    return a;
}

} // namespace hako::serve
