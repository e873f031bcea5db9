#include "serve/http_server.h"

// Asio's and Beast's templates use `0` for null pointers in default arguments.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/log.h"
#include "serve/web_files.h"

namespace hako::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Local = asio::local::stream_protocol;
using Tcp = asio::ip::tcp;
using nlohmann::json;

constexpr uint64_t MAX_BODY = 64 * 1024;
constexpr size_t MAX_QUEUED = 1024 * 1024; // bytes waiting for a slow event or console client before it is dropped
constexpr size_t DEFAULT_BACKLOG = 16 * 1024;

struct HttpServer::Impl {
    asio::io_context& ioc;
    Supervisor& supervisor;
    Local::acceptor unix_acceptor { ioc };
    std::optional<Tcp::acceptor> tcp_acceptor;
    std::string socket_path;
    std::string token;
    std::string web_dir;
    bool stopped { false };
};

namespace {

bool equal_constant_time(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); i++)
        diff = static_cast<unsigned char>(diff | (a[i] ^ b[i]));
    return diff == 0;
}

using Request = http::request<http::string_body>;

/// The endpoints that browsers open with EventSource or WebSocket, which cannot send an Authorization header: only
/// these take the token as ?access_token= (a token in a URL ends up in logs and history; keep it to where needed).
bool takes_query_token(std::vector<std::string> const& s)
{
    return s.size() >= 3 && s[0] == "api" && s[1] == "v1"
        && ((s.size() == 3 && s[2] == "events") || (s.size() == 5 && s[2] == "vms" && (s[4] == "console" || s[4] == "vnc")));
}

/// The event stream of one client: server-sent events until the client goes away.
template<typename Socket>
class EventStream final : public std::enable_shared_from_this<EventStream<Socket>> {
public:
    EventStream(Socket socket, HttpServer::Impl& server) : m_socket(std::move(socket)), m_server(server), m_timer(server.ioc) { }

    void start()
    {
        auto self = this->shared_from_this();
        queue("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              "Connection: close\r\nServer: hako/" HAKO_VERSION "\r\n\r\n: hako events\n\n");
        m_id = m_server.supervisor.subscribe([weak = std::weak_ptr(self)](std::string const& message) {
            if (auto s = weak.lock())
                s->queue(message);
        });
        // A read completes only when the client closes (or sends garbage): then the stream ends.
        m_socket.async_read_some(asio::buffer(m_scratch), [self](beast::error_code, size_t) { self->close(); });
        keepalive();
    }

private:
    void keepalive()
    {
        m_timer.expires_after(std::chrono::seconds(15));
        m_timer.async_wait([self = this->shared_from_this()](beast::error_code ec) {
            if (ec || self->m_closed)
                return;
            self->queue(": keep-alive\n\n");
            self->keepalive();
        });
    }

    void queue(std::string const& text)
    {
        if (m_closed)
            return;
        m_queued += text.size();
        if (m_queued > MAX_QUEUED)
            return close();
        m_queue.push_back(text);
        if (m_queue.size() == 1)
            write_next();
    }

    void write_next()
    {
        asio::async_write(m_socket, asio::buffer(m_queue.front()), [self = this->shared_from_this()](beast::error_code ec, size_t) {
            if (ec)
                return self->close();
            self->m_queued -= self->m_queue.front().size();
            self->m_queue.pop_front();
            if (!self->m_queue.empty())
                self->write_next();
        });
    }

    void close()
    {
        if (m_closed)
            return;
        m_closed = true;
        m_server.supervisor.unsubscribe(m_id);
        m_timer.cancel();
        beast::error_code ignored;
        m_socket.shutdown(Socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }

    Socket m_socket;
    HttpServer::Impl& m_server;
    asio::steady_timer m_timer;
    std::array<char, 256> m_scratch {};
    std::deque<std::string> m_queue;
    size_t m_queued { 0 };
    int m_id { 0 };
    bool m_closed { false };
};

/// One serial console client over a WebSocket: guest output as binary frames, frames from the client typed in.
template<typename Socket>
class ConsoleSession final : public std::enable_shared_from_this<ConsoleSession<Socket>> {
public:
    ConsoleSession(Socket socket, HttpServer::Impl& server, std::string name, size_t backlog)
        : m_ws(std::move(socket)), m_server(server), m_name(std::move(name)), m_backlog(backlog)
    {
    }

    void start(Request request)
    {
        m_ws.binary(true);
        m_ws.read_message_max(64 * 1024);
        m_ws.async_accept(request, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec)
                return;
            auto id = self->m_server.supervisor.attach_console(self->m_name,
                [weak = std::weak_ptr(self)](std::string const& data) {
                    if (auto s = weak.lock())
                        s->queue(data);
                },
                self->m_backlog);
            if (!id) {
                self->m_ws.async_close(websocket::close_reason(websocket::close_code::policy_error, id.error().message()),
                    [self](beast::error_code) { });
                return;
            }
            self->m_id = *id;
            self->m_attached = true;
            self->read();
        });
    }

private:
    void read()
    {
        m_ws.async_read(m_in, [self = this->shared_from_this()](beast::error_code ec, size_t) {
            if (ec)
                return self->detach();
            self->m_server.supervisor.console_input(self->m_name, beast::buffers_to_string(self->m_in.data()));
            self->m_in.consume(self->m_in.size());
            self->read();
        });
    }

    void queue(std::string const& data)
    {
        if (m_detached)
            return;
        if (m_queued + data.size() > MAX_QUEUED)
            return; // a client that does not keep up loses output rather than holding the daemon's memory
        m_queued += data.size();
        m_queue.push_back(data);
        if (m_queue.size() == 1)
            write_next();
    }

    void write_next()
    {
        m_ws.async_write(asio::buffer(m_queue.front()), [self = this->shared_from_this()](beast::error_code ec, size_t) {
            if (ec)
                return self->detach();
            self->m_queued -= self->m_queue.front().size();
            self->m_queue.pop_front();
            if (!self->m_queue.empty())
                self->write_next();
        });
    }

    void detach()
    {
        if (m_detached)
            return;
        m_detached = true;
        if (m_attached)
            m_server.supervisor.detach_console(m_name, m_id);
        beast::error_code ignored;
        beast::get_lowest_layer(m_ws).close(ignored);
    }

    websocket::stream<Socket> m_ws;
    HttpServer::Impl& m_server;
    std::string m_name;
    size_t m_backlog;
    beast::flat_buffer m_in;
    std::deque<std::string> m_queue;
    size_t m_queued { 0 };
    int m_id { 0 };
    bool m_attached { false };
    bool m_detached { false };
};

/// The graphical console: a WebSocket (binary frames; noVNC speaks RFB over it) spliced to the VM's VNC unix
/// socket. Each direction is one read then one write at a time, so a slow side holds the other back (no queue).
template<typename Socket>
class VncProxy final : public std::enable_shared_from_this<VncProxy<Socket>> {
public:
    VncProxy(Socket socket, HttpServer::Impl& server, std::string path)
        : m_ws(std::move(socket)), m_vnc(server.ioc), m_path(std::move(path))
    {
    }

    void start(Request request)
    {
        m_ws.binary(true);
        m_ws.read_message_max(1024 * 1024);
        m_ws.async_accept(request, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec)
                return;
            self->m_vnc.async_connect(Local::endpoint(self->m_path), [self](beast::error_code ec2) {
                if (ec2) {
                    self->m_ws.async_close(websocket::close_reason(websocket::close_code::try_again_later,
                                               "The VM's VNC server does not answer"),
                        [self](beast::error_code) { self->close(); });
                    return;
                }
                self->from_browser();
                self->from_vnc();
            });
        });
    }

private:
    void from_browser()
    {
        m_ws.async_read(m_in, [self = this->shared_from_this()](beast::error_code ec, size_t) {
            if (ec)
                return self->close();
            asio::async_write(self->m_vnc, self->m_in.data(), [self](beast::error_code ec2, size_t) {
                if (ec2)
                    return self->close();
                self->m_in.consume(self->m_in.size());
                self->from_browser();
            });
        });
    }

    void from_vnc()
    {
        m_vnc.async_read_some(asio::buffer(m_out), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
            if (ec)
                return self->close();
            self->m_ws.async_write(asio::buffer(self->m_out.data(), n), [self](beast::error_code ec2, size_t) {
                if (ec2)
                    return self->close();
                self->from_vnc();
            });
        });
    }

    void close()
    {
        beast::error_code ignored;
        m_vnc.close(ignored);
        beast::get_lowest_layer(m_ws).close(ignored);
    }

    websocket::stream<Socket> m_ws;
    Local::socket m_vnc;
    std::string m_path;
    beast::flat_buffer m_in;
    std::array<char, 64 * 1024> m_out {};
};

template<typename Socket>
class Session final : public std::enable_shared_from_this<Session<Socket>> {
public:
    Session(Socket socket, HttpServer::Impl& server, bool needs_token)
        : m_socket(std::move(socket)), m_server(server), m_needs_token(needs_token)
    {
    }

    void read()
    {
        m_parser.emplace();
        m_parser->body_limit(MAX_BODY);
        http::async_read(m_socket, m_buffer, *m_parser, [self = this->shared_from_this()](beast::error_code ec, size_t) {
            self->on_read(ec);
        });
    }

private:
    void on_read(beast::error_code ec)
    {
        if (ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
            return close();
        if (ec) {
            m_keep_alive = false;
            return write(Reply::error(ec == http::error::body_limit ? 413 : 400, fmt::format("Bad HTTP request: {}", ec.message())), 11);
        }
        Request req = m_parser->release();
        m_keep_alive = req.keep_alive();
        unsigned const version = req.version();
        std::string_view const target_text(req.target().data(), req.target().size());
        auto target = parse_target(target_text);
        if (!target)
            return write(Reply::error(400, "The request target is not a valid path"), version);
        // The web UI's files are public (the page asks for the token and sends it with each API request).
        if (target->segments.empty() || target->segments[0] != "api") {
            if (req.method() != http::verb::get)
                return write(Reply::error(405, "The web UI's files are read with GET"), version);
            return write(web_file(m_server.web_dir, target->segments), version);
        }
        if (m_needs_token) {
            std::string_view auth(req[http::field::authorization].data(), req[http::field::authorization].size());
            bool const header_ok = auth.starts_with("Bearer ") && equal_constant_time(auth.substr(7), m_server.token);
            bool const query_ok = takes_query_token(target->segments)
                && equal_constant_time(target->param("access_token"), m_server.token);
            if (!header_ok && !query_ok) {
                Reply r = Reply::error(401, "This endpoint needs a bearer token (Authorization: Bearer TOKEN)");
                return write(std::move(r), version, true);
            }
        }
        std::string const method(req.method_string().data(), req.method_string().size());
        json body = nullptr;
        if (!req.body().empty()) {
            body = json::parse(req.body(), nullptr, false);
            if (body.is_discarded())
                return write(Reply::error(400, "The request body is not valid JSON"), version);
        }
        route(std::move(req), *target, method, std::move(body), version);
    }

    void route(Request req, Target const& t, std::string const& method, json body, unsigned version)
    {
        auto& sv = m_server.supervisor;
        auto const& s = t.segments;
        auto self = this->shared_from_this();
        auto reply = [self, version](Reply r) { self->write(std::move(r), version); };
        auto wrong_method = [&](std::string_view allowed) {
            write(Reply::error(405, fmt::format("{} is not allowed here (allowed: {})", method, allowed)), version);
        };
        if (s.size() < 3 || s[0] != "api" || s[1] != "v1")
            return write(Reply::error(404, fmt::format("No such endpoint: {}", std::string(req.target()))), version);
        if (s.size() == 3 && s[2] == "version")
            return method == "GET" ? reply(Reply(200, { { "version", HAKO_VERSION } })) : wrong_method("GET");
        if (s.size() == 3 && s[2] == "events") {
            if (method != "GET")
                return wrong_method("GET");
            std::make_shared<EventStream<Socket>>(std::move(m_socket), m_server)->start();
            return;
        }
        if (s.size() == 3 && s[2] == "images") {
            if (method == "GET")
                return reply(sv.list_images());
            return method == "POST" ? reply(sv.create_image(body)) : wrong_method("GET, POST");
        }
        if (s[2] != "vms")
            return write(Reply::error(404, fmt::format("No such endpoint: {}", std::string(req.target()))), version);
        if (s.size() == 3) {
            if (method == "GET")
                return reply(sv.list());
            if (method == "POST")
                return reply(sv.create_vm(body));
            return wrong_method("GET, POST");
        }
        std::string const& name = s[3];
        if (!valid_vm_name(name))
            return reply(Reply::error(400, "A VM name matches [A-Za-z0-9][A-Za-z0-9_.-]{0,62}"));
        if (s.size() == 4) {
            if (method == "GET")
                return reply(sv.get(name));
            if (method == "PATCH")
                return reply(sv.edit(name, body));
            if (method == "DELETE")
                return reply(sv.remove(name));
            return wrong_method("GET, PATCH, DELETE");
        }
        if (s.size() != 5)
            return write(Reply::error(404, fmt::format("No such endpoint: {}", std::string(req.target()))), version);
        std::string const& what = s[4];
        if (what == "console") {
            if (method != "GET")
                return wrong_method("GET");
            if (!websocket::is_upgrade(req))
                return reply(Reply::error(400, "The console is a WebSocket: send an Upgrade: websocket request"));
            if (!sv.get(name).body.is_object() || sv.get(name).status != 200)
                return reply(sv.get(name));
            size_t backlog = DEFAULT_BACKLOG;
            if (auto b = t.param("backlog"); !b.empty()) {
                char* end = nullptr;
                unsigned long const v = std::strtoul(b.c_str(), &end, 10);
                if (*end != '\0' || b[0] == '-')
                    return reply(Reply::error(400, "'backlog' must be a number of bytes"));
                backlog = v;
            }
            std::make_shared<ConsoleSession<Socket>>(std::move(m_socket), m_server, name, backlog)->start(std::move(req));
            return;
        }
        if (what == "vnc") {
            if (method != "GET")
                return wrong_method("GET");
            if (!websocket::is_upgrade(req))
                return reply(Reply::error(400, "The graphical console is a WebSocket: send an Upgrade: websocket request"));
            auto path = sv.vnc_socket(name);
            if (!path)
                return reply(Reply::error(path.error().kind() == ErrorKind::NotFound ? 404 : 409, path.error().message()));
            std::make_shared<VncProxy<Socket>>(std::move(m_socket), m_server, std::move(*path))->start(std::move(req));
            return;
        }
        if (what == "console-log")
            return method == "GET" ? reply(sv.console_log(name)) : wrong_method("GET");
        if (method != "POST") {
            bool const known = what == "start" || what == "shutdown" || what == "kill" || what == "reboot" || what == "pause"
                || what == "resume" || what == "clone" || what == "disks";
            if (known)
                return wrong_method("POST");
            return write(Reply::error(404, fmt::format("No such endpoint: {}", std::string(req.target()))), version);
        }
        if (what == "start")
            return sv.start(name, reply);
        if (what == "shutdown")
            return sv.shutdown(name, body, reply);
        if (what == "reboot")
            return sv.reboot(name, body, reply);
        if (what == "kill")
            return sv.kill(name, reply);
        if (what == "pause")
            return sv.pause(name, reply);
        if (what == "resume")
            return sv.resume(name, reply);
        if (what == "clone")
            return sv.clone(name, body, reply);
        if (what == "disks")
            return reply(sv.create_disk(name, body));
        return write(Reply::error(404, fmt::format("No such endpoint: {}", std::string(req.target()))), version);
    }

    void write(Reply reply, unsigned version, bool unauthorized = false)
    {
        auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(reply.status), version);
        res->set(http::field::server, "hako/" HAKO_VERSION);
        res->keep_alive(m_keep_alive);
        if (unauthorized)
            res->set(http::field::www_authenticate, "Bearer");
        if (reply.status != 204 && !reply.content_type.empty()) {
            res->set(http::field::content_type, reply.content_type);
            res->set("X-Content-Type-Options", "nosniff");
            if (reply.content_type.starts_with("text/html")) {
                res->set(http::field::cache_control, "no-cache");
                // xterm.js adds <style> elements and style attributes, hence 'unsafe-inline' for styles only.
                res->set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                    "img-src 'self' data:; frame-ancestors 'none'");
            }
            res->body() = std::move(reply.raw);
        } else if (reply.status != 204) {
            res->set(http::field::content_type, "application/json");
            res->body() = reply.body.dump() + "\n";
        }
        res->prepare_payload();
        http::async_write(m_socket, *res, [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
            if (ec || !self->m_keep_alive)
                return self->close();
            self->read();
        });
    }

    void close()
    {
        beast::error_code ignored;
        m_socket.shutdown(Socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }

    Socket m_socket;
    HttpServer::Impl& m_server;
    bool m_needs_token;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
    bool m_keep_alive { true };
};

template<typename Acceptor, typename Socket>
void accept_loop(HttpServer::Impl& server, Acceptor& acceptor, bool needs_token)
{
    acceptor.async_accept([&server, &acceptor, needs_token](beast::error_code ec, Socket socket) {
        if (ec == asio::error::operation_aborted || server.stopped || !acceptor.is_open())
            return;
        if (!ec)
            std::make_shared<Session<Socket>>(std::move(socket), server, needs_token)->read();
        else
            HAKO_WARN_RATELIMITED("API accept: {}", ec.message());
        accept_loop<Acceptor, Socket>(server, acceptor, needs_token);
    });
}

/// Refuses a path where another daemon listens; removes a stale socket file.
Result<void> claim_path(std::string const& path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return ok();
    if (!S_ISSOCK(st.st_mode))
        return Error(ErrorKind::InvalidArgument, fmt::format("{} exists and is not a socket", path));
    asio::io_context probe;
    Local::socket s(probe);
    beast::error_code ec;
    s.connect(Local::endpoint(path), ec);
    if (!ec)
        return Error(ErrorKind::Busy, fmt::format("{} is in use by another daemon", path));
    if (::unlink(path.c_str()) != 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot remove the stale socket {}", path));
    return ok();
}

} // namespace

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) { }

HttpServer::~HttpServer()
{
    m_impl->stopped = true;
    beast::error_code ignored;
    m_impl->unix_acceptor.close(ignored);
    if (m_impl->tcp_acceptor)
        m_impl->tcp_acceptor->close(ignored);
    ::unlink(m_impl->socket_path.c_str());
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& ioc, Supervisor& supervisor, HttpOptions const& options)
{
    auto impl = std::make_unique<Impl>(Impl { ioc, supervisor, Local::acceptor(ioc), std::nullopt, options.socket_path, options.token, options.web_dir, false });
    if (options.socket_path.empty() || options.socket_path.size() >= sizeof(sockaddr_un {}.sun_path))
        return Error(ErrorKind::InvalidArgument, fmt::format("Socket path '{}' is empty or too long", options.socket_path));
    TRY(claim_path(options.socket_path));
    beast::error_code ec;
    impl->unix_acceptor.open(Local(), ec);
    mode_t const old_mask = ::umask(0177); // the socket file gets mode 0600
    if (!ec)
        impl->unix_acceptor.bind(Local::endpoint(options.socket_path), ec);
    ::umask(old_mask);
    if (!ec)
        impl->unix_acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return Error(ErrorKind::Io, fmt::format("Cannot listen on {}: {}", options.socket_path, ec.message()));
    if (!options.listen.empty()) {
        if (options.token.empty())
            return Error(ErrorKind::InvalidArgument, "--listen needs a token (--token-file)");
        auto const colon = options.listen.rfind(':');
        if (colon == std::string::npos)
            return Error(ErrorKind::InvalidArgument, fmt::format("--listen {}: expected HOST:PORT", options.listen));
        std::string host = options.listen.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        std::string const port_text = options.listen.substr(colon + 1);
        char* end = nullptr;
        unsigned long const port = std::strtoul(port_text.c_str(), &end, 10);
        auto const address = asio::ip::make_address(host, ec);
        if (ec || port_text.empty() || *end != '\0' || port > 65535)
            return Error(ErrorKind::InvalidArgument, fmt::format("--listen {}: expected IP:PORT", options.listen));
        Tcp::endpoint const endpoint(address, static_cast<uint16_t>(port));
        impl->tcp_acceptor.emplace(ioc);
        impl->tcp_acceptor->open(endpoint.protocol(), ec);
        if (!ec)
            impl->tcp_acceptor->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec)
            impl->tcp_acceptor->bind(endpoint, ec);
        if (!ec)
            impl->tcp_acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            return Error(ErrorKind::Io, fmt::format("Cannot listen on {}: {}", options.listen, ec.message()));
    }
    accept_loop<Local::acceptor, Local::socket>(*impl, impl->unix_acceptor, false);
    if (impl->tcp_acceptor)
        accept_loop<Tcp::acceptor, Tcp::socket>(*impl, *impl->tcp_acceptor, true);
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

} // namespace hako::serve
