// An asynchronous HTTP/JSON client for one VM's API socket (the `hako run --api-socket` of src/api/openapi.yaml),
// used by the daemon's thread to drive the VM: ping, info, pause, resume, power button, power off.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace hako::serve {

struct VmReply {
    unsigned status { 0 };
    nlohmann::json body; // null for an empty or non-JSON body
};

/// Sends `method target` (e.g. "PUT", "/api/v1/vm.pause") to the unix socket `socket_path` and calls `done` once on
/// the io_context's thread with the reply, or an error (cannot connect, timeout, malformed reply).
void vm_request(boost::asio::io_context& ioc, std::string const& socket_path, std::string const& method,
    std::string const& target, std::chrono::milliseconds timeout, std::function<void(Result<VmReply>)> done);

} // namespace hako::serve
