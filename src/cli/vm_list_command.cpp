// `hako vm list` (a table, or --json) and `hako vm show NAME`.
#include "cli/vm_verbs.h"

namespace hako::cli {

void register_vm_list(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs)
{
    auto* list = vm.add_subcommand("list", "List the VMs and their state");
    verbs.push_back({ list, [common]() -> int {
        int status = 0;
        auto r = vm_call(*common, "GET", "/api/v1/vms", nullptr, status);
        if (!r)
            return status;
        if (common->json) {
            fmt::print("{}\n", r->body.dump(2));
            return 0;
        }
        fmt::print("{:<24} {:<9} {:>4} {:>9} {:>8} {:>8}\n", "NAME", "STATE", "CPUS", "MEMORY", "PID", "RESTARTS");
        for (auto const& v : r->body) {
            auto const& c = v["config"];
            fmt::print("{:<24} {:<9} {:>4} {:>6}MiB {:>8} {:>8}\n", v.value("name", ""), v.value("state", ""),
                c.value("cpus", 0), c.value("memory_mib", 0), v["pid"].is_null() ? "-" : v["pid"].dump(), v.value("restarts", 0));
        }
        return 0;
    } });

    auto name = std::make_shared<std::string>();
    auto* show = vm.add_subcommand("show", "Show one VM's definition and state");
    show->add_option("NAME", *name, "The VM")->required();
    verbs.push_back({ show, [common, name]() -> int {
        int status = 0;
        auto r = vm_call(*common, "GET", "/api/v1/vms/" + encode_segment(*name), nullptr, status);
        if (r)
            print_vm(*common, r->body);
        return status;
    } });
}

} // namespace hako::cli
