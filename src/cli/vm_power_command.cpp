// `hako vm start|stop|kill|reboot|pause|resume|delete NAME`. stop presses the ACPI power button and, by default,
// waits until the VM has stopped (the daemon powers it off after --timeout seconds, then kills it).
#include <chrono>
#include <thread>

#include "cli/vm_verbs.h"

namespace hako::cli {

namespace {

struct PowerOptions {
    std::string name;
    unsigned timeout { 30 };
    bool no_wait { false };
};

/// Polls the VM until it has stopped (stop) or runs again (reboot); returns the final VM JSON.
std::optional<nlohmann::json> wait_settled(VmCommon const& common, std::string const& name, bool stop, int& status)
{
    for (;;) {
        auto r = vm_call(common, "GET", "/api/v1/vms/" + encode_segment(name), nullptr, status);
        if (!r)
            return std::nullopt;
        std::string const state = r->body.value("state", "");
        if (state == "crashed" || state == (stop ? "stopped" : "running"))
            return r->body;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

} // namespace

void register_vm_power(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs)
{
    struct Simple {
        char const* verb;
        char const* method;
        char const* action; // path suffix, empty for the VM itself
        char const* help;
    };
    static constexpr Simple SIMPLE[] = {
        { "start", "POST", "/start", "Start a VM (returns when its API socket answers)" },
        { "kill", "POST", "/kill", "End a VM's process at once (SIGKILL)" },
        { "pause", "POST", "/pause", "Pause a running VM's vCPUs" },
        { "resume", "POST", "/resume", "Resume a paused VM" },
        { "delete", "DELETE", "", "Delete a stopped VM's definition and logs (disk images stay)" },
    };
    for (auto const& s : SIMPLE) {
        auto name = std::make_shared<std::string>();
        auto* cmd = vm.add_subcommand(s.verb, s.help);
        cmd->add_option("NAME", *name, "The VM")->required();
        verbs.push_back({ cmd, [common, name, s]() -> int {
            int status = 0;
            auto r = vm_call(*common, s.method, "/api/v1/vms/" + encode_segment(*name) + s.action, nullptr, status);
            if (r && r->body.is_object())
                print_vm(*common, r->body);
            return status;
        } });
    }

    for (char const* verb : { "stop", "reboot" }) {
        auto o = std::make_shared<PowerOptions>();
        bool const stop = std::string_view(verb) == "stop";
        auto* cmd = vm.add_subcommand(verb, stop ? "Shut a VM down: ACPI power button, power off after --timeout, then SIGKILL"
                                                 : "Reboot a VM: shut it down as stop does, then start it again");
        cmd->add_option("NAME", o->name, "The VM")->required();
        cmd->add_option("--timeout", o->timeout, "Seconds the guest has to power off before it is forced")->capture_default_str();
        cmd->add_flag("--no-wait", o->no_wait, "Return once the button is pressed");
        verbs.push_back({ cmd, [common, o, stop]() -> int {
            int status = 0;
            auto r = vm_call(*common, "POST", "/api/v1/vms/" + encode_segment(o->name) + (stop ? "/shutdown" : "/reboot"),
                { { "timeout_s", o->timeout } }, status);
            if (!r)
                return status;
            if (o->no_wait) {
                print_vm(*common, r->body);
                return 0;
            }
            auto final_vm = wait_settled(*common, o->name, stop, status);
            if (final_vm)
                print_vm(*common, *final_vm);
            return status;
        } });
    }
}

} // namespace hako::cli
