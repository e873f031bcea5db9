// The `hako vm` verbs' connection to `hako serve`: one JSON request per call over the daemon's unix socket
// (--socket PATH, HAKO_SOCKET, or the default of src/serve/paths.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace hako::cli {

struct DaemonReply {
    unsigned status { 0 };
    nlohmann::json body; // parsed JSON, or null
    std::string raw;     // the body as received
};

/// Sends `method target` with an optional JSON body. Fails only if the daemon cannot be reached or answers
/// something that is not HTTP.
[[nodiscard]] Result<DaemonReply> daemon_request(std::string const& socket, std::string const& method,
    std::string const& target, nlohmann::json const& body = nullptr);

/// The error line for a reply that is not a success: the daemon's {"error"} message.
std::string reply_error(DaemonReply const& r);

/// Percent-encodes a path segment (VM names are plain, but the CLI does not trust what it is given).
std::string encode_segment(std::string const& s);

} // namespace hako::cli
