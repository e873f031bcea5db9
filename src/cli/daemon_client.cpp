#include "cli/daemon_client.h"

// Asio's and Beast's templates use `0` for null pointers in default arguments.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sys/un.h>

namespace hako::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

Result<DaemonReply> daemon_request(std::string const& socket, std::string const& method, std::string const& target,
    nlohmann::json const& body)
{
    if (socket.empty() || socket.size() >= sizeof(sockaddr_un {}.sun_path))
        return Error(ErrorKind::InvalidArgument, fmt::format("The socket path '{}' is empty or too long", socket));
    asio::io_context ioc;
    Local::socket s(ioc);
    beast::error_code ec;
    s.connect(Local::endpoint(socket), ec);
    if (ec)
        return Error(ErrorKind::NotFound, fmt::format("Cannot reach hako serve at {}: {} (is it running? --socket or HAKO_SOCKET)", socket, ec.message()));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "localhost");
    req.keep_alive(false);
    if (!body.is_null()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body.dump();
    }
    req.prepare_payload();
    http::write(s, req, ec);
    if (ec)
        return Error(ErrorKind::Io, fmt::format("Sending to {}: {}", socket, ec.message()));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(s, buffer, parser, ec);
    if (ec)
        return Error(ErrorKind::Io, fmt::format("Reading from {}: {}", socket, ec.message()));
    DaemonReply r;
    r.status = parser.get().result_int();
    r.raw = parser.get().body();
    if (!r.raw.empty()) {
        r.body = nlohmann::json::parse(r.raw, nullptr, false);
        if (r.body.is_discarded())
            r.body = nullptr;
    }
    return r;
}

std::string reply_error(DaemonReply const& r)
{
    if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_string())
        return fmt::format("{} (HTTP {})", r.body["error"].get<std::string>(), r.status);
    return fmt::format("HTTP {}", r.status);
}

std::string encode_segment(std::string const& s)
{
    std::string out;
    for (char const ch : s) {
        auto const c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

} // namespace hako::cli
