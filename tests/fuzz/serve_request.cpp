// What a client of hako serve controls: the request target (parsed by hand) and the VM definition (JSON through
// nlohmann, validated by hand). Neither may crash, and a definition that validates must survive its round trip
// and produce a hako run argv without option-changing characters in paths.
#include <cstddef>
#include <cstdint>
#include <string>

#include "serve/http_target.h"
#include "serve/vm_config.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    std::string const input(static_cast<char const*>(static_cast<void const*>(data)), size);
    auto const split = input.find('\n');
    std::string const target = input.substr(0, split);
    (void)hako::serve::parse_target(target);
    if (split == std::string::npos)
        return 0;
    auto j = nlohmann::json::parse(input.substr(split + 1), nullptr, false);
    if (j.is_discarded())
        return 0;
    auto config = hako::serve::config_from_json(j, "/var/lib/hako/images");
    if (!config)
        return 0;
    auto const out = hako::serve::config_to_json(*config);
    auto again = hako::serve::config_from_json(out, "/var/lib/hako/images");
    if (!again || hako::serve::config_to_json(*again) != out)
        __builtin_trap();
    for (auto const& d : config->disks)
        if (d.path.find(',') != std::string::npos || d.path.find("/../") != std::string::npos || d.path.empty() || d.path[0] != '/')
            __builtin_trap();
    (void)hako::serve::run_argv(*config, { "/s/api.sock", "/s/vnc.sock" });
    return 0;
}
