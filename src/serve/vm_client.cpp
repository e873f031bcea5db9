#include "serve/vm_client.h"

// Asio's and Beast's templates use `0` for null pointers in default arguments.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>

namespace hako::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

namespace {

struct Call : std::enable_shared_from_this<Call> {
    Call(asio::io_context& ioc, std::function<void(Result<VmReply>)> d) : socket(ioc), timer(ioc), done(std::move(d)) { }

    void finish(Result<VmReply> r)
    {
        if (!done)
            return;
        auto d = std::move(done);
        done = nullptr;
        timer.cancel();
        beast::error_code ignored;
        socket.close(ignored);
        d(std::move(r));
    }
    void fail(std::string const& what, beast::error_code ec)
    {
        finish(Error(ErrorKind::Io, fmt::format("VM API socket {}: {}: {}", path, what, ec.message())));
    }

    Local::socket socket;
    asio::steady_timer timer;
    std::function<void(Result<VmReply>)> done;
    std::string path;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
    beast::flat_buffer buffer;
};

} // namespace

void vm_request(asio::io_context& ioc, std::string const& socket_path, std::string const& method,
    std::string const& target, std::chrono::milliseconds timeout, std::function<void(Result<VmReply>)> done)
{
    auto call = std::make_shared<Call>(ioc, std::move(done));
    call->path = socket_path;
    call->request.method(http::string_to_verb(method));
    call->request.target(target);
    call->request.version(11);
    call->request.set(http::field::host, "localhost");
    call->request.keep_alive(false);
    call->request.prepare_payload();
    call->timer.expires_after(timeout);
    call->timer.async_wait([call](beast::error_code ec) {
        if (!ec)
            call->finish(Error(ErrorKind::Io, fmt::format("VM API socket {}: no reply in time", call->path)));
    });
    call->socket.async_connect(Local::endpoint(socket_path), [call](beast::error_code ec) {
        if (ec)
            return call->fail("connect", ec);
        http::async_write(call->socket, call->request, [call](beast::error_code ec2, size_t) {
            if (ec2)
                return call->fail("write", ec2);
            http::async_read(call->socket, call->buffer, call->response, [call](beast::error_code ec3, size_t) {
                if (ec3)
                    return call->fail("read", ec3);
                VmReply reply;
                reply.status = call->response.result_int();
                if (!call->response.body().empty()) {
                    reply.body = nlohmann::json::parse(call->response.body(), nullptr, false);
                    if (reply.body.is_discarded())
                        reply.body = nullptr;
                }
                call->finish(std::move(reply));
            });
        });
    });
}

} // namespace hako::serve
