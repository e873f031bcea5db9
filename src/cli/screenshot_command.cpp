// `hako screenshot --api-socket PATH FILE.png`: asks a running VM for its screen (GET /api/v1/vm.screenshot) and
// writes the PNG. Exit status: 0 written; 2 bad command line; 4 the socket cannot be reached; 1 the VM answered with
// an error (e.g. 409: no display); 10 the file cannot be written or the reply is not a PNG.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "cli/commands.h"
#include "vmm/config.h"

namespace hako::cli {

namespace {

constexpr size_t MAX_REPLY = 64u << 20;

struct Options {
    std::string socket;
    std::string file;
};

int fail(int status, std::string const& message)
{
    fmt::print(stderr, "hako: {}\n", message);
    return status;
}

int screenshot(Options const& o)
{
    sockaddr_un addr {};
    if (o.socket.size() >= sizeof addr.sun_path)
        return fail(vmm::exit_status::USAGE, fmt::format("--api-socket '{}' is too long", o.socket));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", o.socket.c_str());
    auto const* sa = static_cast<sockaddr const*>(static_cast<void const*>(&addr));
    if (!fd.valid() || ::connect(fd.get(), sa, sizeof addr) != 0)
        return fail(vmm::exit_status::BAD_INPUT, fmt::format("Cannot connect to the API socket {}: {}", o.socket, std::strerror(errno)));
    std::string const request = "GET /api/v1/vm.screenshot HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (size_t done = 0; done < request.size();) {
        ssize_t const n = ::send(fd.get(), request.data() + done, request.size() - done, MSG_NOSIGNAL);
        if (n <= 0)
            return fail(vmm::exit_status::BAD_INPUT, fmt::format("Cannot send to the API socket {}", o.socket));
        done += static_cast<size_t>(n);
    }
    std::string reply;
    char buf[65536];
    while (reply.size() < MAX_REPLY) {
        ssize_t const n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        reply.append(buf, static_cast<size_t>(n));
    }
    size_t const head_end = reply.find("\r\n\r\n");
    unsigned status = 0;
    if (head_end == std::string::npos || std::sscanf(reply.c_str(), "HTTP/1.%*d %u", &status) != 1)
        return fail(vmm::exit_status::INTERNAL, fmt::format("No HTTP reply from {}", o.socket));
    std::string const body = reply.substr(head_end + 4);
    if (status != 200) {
        std::string message = body;
        while (!message.empty() && (message.back() == '\n' || message.back() == '\r'))
            message.pop_back();
        return fail(1, fmt::format("The VM answered {}: {}", status, message));
    }
    if (body.size() < 8 || body.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
        return fail(vmm::exit_status::INTERNAL, "The VM's reply is not a PNG image");
    std::ofstream out(o.file, std::ios::binary | std::ios::trunc);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    out.close();
    if (!out)
        return fail(vmm::exit_status::INTERNAL, fmt::format("Cannot write {}", o.file));
    return 0;
}

} // namespace

std::function<int()> register_screenshot_command(CLI::App& app)
{
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("screenshot", "Save a running VM's screen as a PNG (through its API socket)");
    cmd->add_option("--api-socket", o->socket, "The VM's API socket (hako run --api-socket PATH)")->required();
    cmd->add_option("file", o->file, "The PNG file to write")->required();
    (void)cmd;
    return [o]() -> int { return screenshot(*o); };
}

} // namespace hako::cli
