// HttpServer: `hako serve`'s REST API (src/serve/openapi.yaml) on a unix socket (mode 0600) and, optionally, on
// TCP with a bearer token. Boost.Beast on the daemon's one io_context thread, as src/api/api_server.cpp serves one
// VM. Besides JSON request/reply it serves two long-lived kinds of connection:
//   - GET /api/v1/events: server-sent events (text/event-stream), one "vm" event per state change;
//   - GET /api/v1/vms/{name}/console with a WebSocket upgrade: the serial console, binary frames both ways;
//   - GET /api/v1/vms/{name}/vnc with a WebSocket upgrade: spliced to the VM's VNC unix socket (noVNC).
// On TCP every API request needs "Authorization: Bearer TOKEN" (or, on the endpoints browsers open with
// EventSource and WebSocket, which cannot set headers, the query parameter access_token=TOKEN); otherwise 401.
// Paths outside /api are the web UI's static files (serve/web_files.h), served without the token.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "serve/http_target.h"
#include "serve/supervisor.h"

namespace hako::serve {

struct HttpOptions {
    std::string socket_path;
    std::string listen;  // HOST:PORT, empty: no TCP
    std::string token;   // required with listen
    std::string web_dir; // the built web UI (index.html, app.js, app.css); empty: no UI (404)
};

class HttpServer final {
public:
    [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(boost::asio::io_context& ioc, Supervisor& supervisor,
        HttpOptions const& options);
    ~HttpServer();
    HttpServer(HttpServer const&) = delete;
    HttpServer& operator=(HttpServer const&) = delete;

    struct Impl;

private:
    explicit HttpServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace hako::serve
