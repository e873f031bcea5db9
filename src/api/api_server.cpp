#include "api/api_server.h"

// Asio's and Beast's templates use `0` for null pointers in default arguments, which -Wzero-as-null-pointer-constant
// reports at each call site in this file.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <optional>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "base/log.h"

namespace hako::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

constexpr std::array ROUTES {
    Route { "GET", "/api/v1/vmm.ping", Action::Ping },
    Route { "GET", "/api/v1/vm.info", Action::Info },
    Route { "GET", "/api/v1/vm.counters", Action::Counters },
    Route { "PUT", "/api/v1/vm.pause", Action::Pause },
    Route { "PUT", "/api/v1/vm.resume", Action::Resume },
    Route { "PUT", "/api/v1/vm.power-button", Action::PowerButton },
    Route { "PUT", "/api/v1/vm.power-off", Action::PowerOff },
    Route { "GET", "/api/v1/vm.balloon", Action::BalloonGet },
    Route { "PUT", "/api/v1/vm.balloon", Action::BalloonSet },
    Route { "GET", "/api/v1/vm.screenshot", Action::Screenshot },
};

std::span<Route const> routes() { return ROUTES; }

constexpr uint64_t MAX_BODY = 64 * 1024;

struct ApiServer::Impl {
    asio::io_context ioc;
    Local::acceptor acceptor { ioc };
    std::string path;
    Handler handler;
    std::thread thread;
};

namespace {

class Session final : public std::enable_shared_from_this<Session> {
public:
    Session(Local::socket socket, ApiServer::Impl& server) : m_socket(std::move(socket)), m_server(server) { }

    void read()
    {
        m_parser.emplace();
        m_parser->body_limit(MAX_BODY);
        http::async_read(m_socket, m_buffer, *m_parser, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->on_read(ec);
        });
    }

private:
    void on_read(beast::error_code ec)
    {
        if (ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
            close();
            return;
        }
        if (ec) {
            // A malformed request: answer 400 once and close the connection.
            m_keep_alive = false;
            write(Reply::error(400, fmt::format("Bad HTTP request: {}", ec.message())), 11);
            return;
        }
        auto const& req = m_parser->get();
        m_keep_alive = req.keep_alive();
        unsigned const version = req.version();
        std::string_view target(req.target().data(), req.target().size());
        if (auto q = target.find('?'); q != std::string_view::npos)
            target = target.substr(0, q);
        std::string_view method(req.method_string().data(), req.method_string().size());

        Route const* found = nullptr;
        bool path_known = false;
        for (auto const& r : ROUTES) {
            if (r.path == target) {
                path_known = true;
                if (r.method == method)
                    found = &r;
            }
        }
        if (!found) {
            write(path_known ? Reply::error(405, fmt::format("{} is not allowed on {}", method, target))
                             : Reply::error(404, fmt::format("No such endpoint: {}", target)),
                version);
            return;
        }
        Command command { found->action, nullptr };
        if (!req.body().empty()) {
            command.body = nlohmann::json::parse(req.body(), nullptr, false);
            if (command.body.is_discarded()) {
                write(Reply::error(400, "The request body is not valid JSON"), version);
                return;
            }
        }
        auto self = shared_from_this();
        m_server.handler(std::move(command), [self, version](Reply reply) {
            asio::post(self->m_socket.get_executor(), [self, version, reply = std::move(reply)]() mutable {
                self->write(std::move(reply), version);
            });
        });
    }

    void write(Reply reply, unsigned version)
    {
        auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(reply.status), version);
        res->set(http::field::server, "hako/" HAKO_VERSION);
        res->keep_alive(m_keep_alive);
        if (reply.status != 204 && !reply.content_type.empty()) {
            res->set(http::field::content_type, reply.content_type);
            res->body() = std::move(reply.raw);
        } else if (reply.status != 204) {
            res->set(http::field::content_type, "application/json");
            res->body() = reply.body.dump() + "\n";
        }
        res->prepare_payload();
        http::async_write(m_socket, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
            if (ec || !self->m_keep_alive) {
                self->close();
                return;
            }
            self->read();
        });
    }

    void close()
    {
        beast::error_code ignored;
        m_socket.shutdown(Local::socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }

    Local::socket m_socket;
    ApiServer::Impl& m_server;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
    bool m_keep_alive { true };
};

void accept(ApiServer::Impl& server)
{
    server.acceptor.async_accept([&server](beast::error_code ec, Local::socket socket) {
        if (ec == asio::error::operation_aborted || !server.acceptor.is_open())
            return;
        if (!ec)
            std::make_shared<Session>(std::move(socket), server)->read();
        else
            HAKO_WARN_RATELIMITED("API socket accept: {}", ec.message());
        accept(server);
    });
}

/// Refuses a path where another process listens; removes a stale socket file.
Result<void> claim_path(std::string const& path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return ok();
    if (!S_ISSOCK(st.st_mode))
        return Error(ErrorKind::InvalidArgument, fmt::format("API socket {} exists and is not a socket", path));
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        sockaddr_un addr {};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        sockaddr const* sa = static_cast<sockaddr const*>(static_cast<void const*>(&addr));
        bool const live = ::connect(fd, sa, sizeof addr) == 0;
        ::close(fd);
        if (live)
            return Error(ErrorKind::Busy, fmt::format("API socket {} is in use by another process", path));
    }
    if (::unlink(path.c_str()) != 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot remove the stale API socket {}", path));
    return ok();
}

} // namespace

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) { }

std::string const& ApiServer::path() const { return m_impl->path; }

Result<std::unique_ptr<ApiServer>> ApiServer::start(std::string const& path, Handler handler)
{
    if (path.empty() || path.size() >= sizeof(sockaddr_un {}.sun_path))
        return Error(ErrorKind::InvalidArgument, fmt::format("API socket path '{}' is empty or too long", path));
    TRY(claim_path(path));
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->handler = std::move(handler);
    beast::error_code ec;
    impl->acceptor.open(Local(), ec);
    mode_t const old_mask = ::umask(0177); // the socket file gets mode 0600
    if (!ec)
        impl->acceptor.bind(Local::endpoint(path), ec);
    ::umask(old_mask);
    if (!ec)
        impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return Error(ErrorKind::Io, fmt::format("Cannot listen on API socket {}: {}", path, ec.message()));
    accept(*impl);
    impl->thread = std::thread([impl = impl.get()] {
        // Signals belong to the event loop's signalfd, never to this thread.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        impl->ioc.run();
    });
    return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

ApiServer::~ApiServer()
{
    auto& s = *m_impl;
    asio::post(s.ioc, [&s] {
        beast::error_code ignored;
        s.acceptor.close(ignored);
    });
    // Replies already handed to the API thread get a moment to be written; then everything stops.
    asio::steady_timer deadline(s.ioc, std::chrono::milliseconds(300));
    deadline.async_wait([&s](beast::error_code) { s.ioc.stop(); });
    if (s.thread.joinable())
        s.thread.join();
    ::unlink(s.path.c_str());
}

} // namespace hako::api
