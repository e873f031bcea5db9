// `hako vm`: manage VMs through `hako serve` (the daemon's REST API on its unix socket). The verbs live in
// vm_*_command.cpp (see cli/vm_verbs.h).
#include <cstdio>

#include "cli/commands.h"
#include "cli/vm_verbs.h"
#include "serve/paths.h"

namespace hako::cli {

std::string VmCommon::resolved_socket() const { return socket.empty() ? serve::default_socket_path() : socket; }

int vm_fail(int status, std::string const& message)
{
    fmt::print(stderr, "hako vm: {}\n", message);
    return status;
}

std::optional<DaemonReply> vm_call(VmCommon const& common, std::string const& method, std::string const& target,
    nlohmann::json const& body, int& status)
{
    auto r = daemon_request(common.resolved_socket(), method, target, body);
    if (!r) {
        status = vm_fail(VM_UNREACHABLE, r.error().message());
        return std::nullopt;
    }
    if (r->status >= 300) {
        status = vm_fail(VM_REFUSED, reply_error(*r));
        return std::nullopt;
    }
    status = 0;
    return std::move(*r);
}

void print_vm(VmCommon const& common, nlohmann::json const& vm)
{
    if (common.json) {
        fmt::print("{}\n", vm.dump(2));
        return;
    }
    auto const& c = vm["config"];
    fmt::print("name:      {}\nstate:     {}\n", vm.value("name", ""), vm.value("state", ""));
    if (vm.contains("pid") && !vm["pid"].is_null())
        fmt::print("pid:       {}\n", vm["pid"].dump());
    fmt::print("cpus:      {}\nmemory:    {} MiB\n", c.value("cpus", 0), c.value("memory_mib", 0));
    for (auto const& d : c.value("disks", nlohmann::json::array()))
        fmt::print("disk:      {} ({}, {}{})\n", d.value("path", ""), d.value("format", ""), d.value("if", ""),
            d.value("readonly", false) ? ", read-only" : "");
    for (auto const& cd : c.value("cdroms", nlohmann::json::array()))
        fmt::print("cdrom:     {}\n", cd.get<std::string>());
    for (auto const& n : c.value("nics", nlohmann::json::array()))
        fmt::print("nic:       {}{} ({}{})\n", n.value("mode", ""), n.contains("tap") ? " " + n.value("tap", "") : "",
            n.value("model", ""), n.value("mac", "").empty() ? "" : ", " + n.value("mac", ""));
    fmt::print("display:   vga {}{}\n", c.value("vga", ""), c.value("vnc", false) ? ", vnc" : "");
    if (!c.value("kernel", "").empty())
        fmt::print("kernel:    {}\ncmdline:   {}\n", c.value("kernel", ""), c.value("cmdline", ""));
    if (!c.value("firmware", "").empty())
        fmt::print("firmware:  {}\n", c.value("firmware", ""));
    if (!c.value("boot", nlohmann::json::array()).empty()) {
        std::string order;
        for (auto const& b : c["boot"])
            order += (order.empty() ? "" : ",") + b.get<std::string>();
        fmt::print("boot:      {}\n", order);
    }
    fmt::print("restart:   {} (restarts so far: {})\n", c.value("restart", ""), vm.value("restarts", 0));
    if (vm.contains("last_exit") && vm["last_exit"].is_object()) {
        auto const& e = vm["last_exit"];
        fmt::print("last exit: {}\n", !e["signal"].is_null() ? "signal " + e["signal"].dump()
                : !e["status"].is_null()                    ? "status " + e["status"].dump()
                                                            : std::string("unknown"));
    }
    if (!vm.value("error", "").empty())
        fmt::print("error:     {}\n", vm.value("error", ""));
}

std::function<int()> register_vm_command(CLI::App& app)
{
    auto common = std::make_shared<VmCommon>();
    auto* vm = app.add_subcommand("vm", "Manage VMs through hako serve: list, create, show, edit, start, stop, kill, "
                                        "reboot, pause, resume, delete, console, clone, disk-create");
    vm->add_option("--socket", common->socket, "hako serve's socket (default: HAKO_SOCKET, else the default path)");
    vm->add_flag("--json", common->json, "Print the daemon's JSON instead of tables");
    vm->require_subcommand(1);
    vm->fallthrough();
    auto verbs = std::make_shared<std::vector<VmVerb>>();
    register_vm_list(*vm, common, *verbs);
    register_vm_define(*vm, common, *verbs);
    register_vm_power(*vm, common, *verbs);
    register_vm_console(*vm, common, *verbs);
    return [verbs]() -> int {
        for (auto const& v : *verbs)
            if (v.command->parsed())
                return v.run();
        return 2;
    };
}

} // namespace hako::cli
