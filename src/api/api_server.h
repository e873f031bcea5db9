// ApiServer: the VM's control socket (--api-socket PATH): JSON over HTTP/1.1 on a unix socket, as Firecracker's and
// Cloud Hypervisor's API sockets. The contract is src/api/openapi.yaml; tests/api/ checks the server against it.
//
// The server owns one thread (Boost.Asio + Beast) that accepts connections, parses requests (keep-alive, bodies up
// to 64 KiB), maps each (method, path) to a typed Command, and hands it to the Handler. The handler (the Machine)
// runs the command on the VMM's event loop and calls `done` with a Reply from there; the reply is written back on
// the API thread. The API thread never touches devices. One command per connection is in flight at a time.
//
// Replies are JSON, except that a command may answer with raw bytes of another type (vm.screenshot: image/png).
// Errors are JSON {"error": "..."}: 400 for a body that is not JSON or lacks what the command needs, 404 for an
// unknown path, 405 for a known path with the wrong method; the handler's own statuses (e.g. 409) pass through.
// The socket file is created with mode 0600; a stale socket file (no listener) is replaced, a live one refused.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hako::api {

enum class Action {
    Ping,        // GET  /api/v1/vmm.ping
    Info,        // GET  /api/v1/vm.info
    Counters,    // GET  /api/v1/vm.counters
    Pause,       // PUT  /api/v1/vm.pause
    Resume,      // PUT  /api/v1/vm.resume
    PowerButton, // PUT  /api/v1/vm.power-button
    PowerOff,    // PUT  /api/v1/vm.power-off
    BalloonGet,  // GET  /api/v1/vm.balloon
    BalloonSet,  // PUT  /api/v1/vm.balloon {"target_mib": N}
    Screenshot,  // GET  /api/v1/vm.screenshot (image/png)
};

struct Route {
    std::string_view method;
    std::string_view path;
    Action action;
};
/// Every route the server knows (the openapi.yaml paths).
std::span<Route const> routes();

struct Command {
    Action action;
    nlohmann::json body; // the request body (null when there was none)
};

struct Reply {
    Reply(unsigned s = 200, nlohmann::json b = nullptr) : status(s), body(std::move(b)) { }
    /// A 200 reply of raw bytes with a content type other than JSON.
    static Reply bytes(std::string type, std::string data)
    {
        Reply r;
        r.content_type = std::move(type);
        r.raw = std::move(data);
        return r;
    }
    unsigned status { 200 };
    nlohmann::json body; // not sent for 204, nor when content_type is set
    std::string content_type; // set: the reply is `raw` with this type instead of JSON
    std::string raw;
    static Reply no_content() { return Reply { 204, nullptr }; }
    static Reply error(unsigned status, std::string message) { return Reply { status, { { "error", std::move(message) } } }; }
};

/// Runs a command; must call done exactly once (from any thread).
using Handler = std::function<void(Command command, std::function<void(Reply)> done)>;

class ApiServer final {
public:
    /// Listens on the unix socket `path`. Fails (one clear line) if the path is in use or cannot be bound.
    [[nodiscard]] static Result<std::unique_ptr<ApiServer>> start(std::string const& path, Handler handler);
    /// Stops accepting, lets replies in flight be written (bounded), closes connections and removes the socket.
    ~ApiServer();
    ApiServer(ApiServer const&) = delete;
    ApiServer& operator=(ApiServer const&) = delete;

    std::string const& path() const;

    struct Impl;

private:
    explicit ApiServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace hako::api
