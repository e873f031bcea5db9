// What a client of hako serve controls: the request target (parsed by hand; a static file name accepted for the web
// UI never leaves its directory) and the VM definition (JSON through nlohmann, validated by hand). Neither may crash,
// and a definition that validates must survive its round trip and produce a hako run argv without option-changing
// characters in paths.
#include <cstddef>
#include <cstdint>
#include <string>

#include "serve/http_target.h"
#include "serve/vm_config.h"
#include "serve/web_files.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    std::string const input(static_cast<char const*>(static_cast<void const*>(data)), size);
    auto const split = input.find('\n');
    std::string const target = input.substr(0, split);
    if (auto t = hako::serve::parse_target(target)) {
        for (auto const& segment : t->segments)
            if (hako::serve::web_content_type(segment)
                && (segment.find('/') != std::string::npos || segment[0] == '.' || segment.find('\0') != std::string::npos))
                __builtin_trap();
    }
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
