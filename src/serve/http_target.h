// Request targets of `hako serve`'s API, parsed by hand (the one thing of a request the daemon parses itself;
// Beast parses the HTTP, nlohmann the JSON). tests/fuzz/serve_request.cpp feeds it arbitrary input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hako::serve {

/// Splits a request target into path segments and query parameters (percent-decoded); used by the router and
/// tested on its own. Returns nullopt for a target that is not a valid origin-form path.
struct Target {
    std::vector<std::string> segments;
    std::vector<std::pair<std::string, std::string>> query;
    std::string param(std::string_view key) const;
};
std::optional<Target> parse_target(std::string_view target);

} // namespace hako::serve
