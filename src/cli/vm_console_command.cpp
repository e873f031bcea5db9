// `hako vm console NAME`: the VM's serial console through the daemon (a WebSocket on its unix socket, the same
// endpoint the web UI uses). The terminal is put in raw mode; Ctrl-] detaches (the VM keeps running). With stdin
// not a terminal, input is sent as it comes and output is shown until Ctrl-] or the daemon closes the console.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli/vm_verbs.h"

namespace hako::cli {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Local = asio::local::stream_protocol;

constexpr char DETACH = 0x1d; // Ctrl-]

class ConsoleClient {
public:
    ConsoleClient(asio::io_context& ioc, int in_fd) : m_ioc(ioc), m_ws(ioc), m_stdin(ioc, ::dup(in_fd)) { }

    int run(std::string const& socket, std::string const& name, size_t backlog)
    {
        beast::error_code ec;
        if (socket.empty() || socket.size() >= sizeof(sockaddr_un {}.sun_path))
            return vm_fail(2, fmt::format("The socket path '{}' is empty or too long", socket));
        beast::get_lowest_layer(m_ws).connect(Local::endpoint(socket), ec);
        if (ec)
            return vm_fail(VM_UNREACHABLE, fmt::format("Cannot reach hako serve at {}: {}", socket, ec.message()));
        websocket::response_type res;
        m_ws.handshake(res, "localhost", fmt::format("/api/v1/vms/{}/console?backlog={}", encode_segment(name), backlog), ec);
        if (ec) {
            std::string body = res.body();
            while (!body.empty() && body.back() == '\n')
                body.pop_back();
            auto j = nlohmann::json::parse(body, nullptr, false);
            std::string const msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : ec.message();
            return vm_fail(VM_REFUSED, fmt::format("Console of {}: {}", name, msg));
        }
        m_ws.binary(true);
        read_ws();
        read_stdin();
        m_ioc.run();
        return 0;
    }

private:
    void read_ws()
    {
        m_ws.async_read(m_in, [this](beast::error_code ec, size_t) {
            if (ec)
                return stop();
            std::string const data = beast::buffers_to_string(m_in.data());
            m_in.consume(m_in.size());
            size_t done = 0;
            while (done < data.size()) {
                ssize_t const n = ::write(STDOUT_FILENO, data.data() + done, data.size() - done);
                if (n <= 0)
                    return stop();
                done += static_cast<size_t>(n);
            }
            read_ws();
        });
    }

    void read_stdin()
    {
        m_stdin.async_read_some(asio::buffer(m_buf), [this](beast::error_code ec, size_t n) {
            if (ec)
                return; // EOF: keep showing output
            std::string data(m_buf.data(), n);
            if (auto pos = data.find(DETACH); pos != std::string::npos) {
                data.resize(pos);
                if (!data.empty())
                    send(std::move(data));
                m_detaching = true;
                if (m_out.empty())
                    stop();
                return;
            }
            send(std::move(data));
            read_stdin();
        });
    }

    void send(std::string data)
    {
        m_out.push_back(std::move(data));
        if (m_out.size() == 1)
            write_next();
    }

    void write_next()
    {
        m_ws.async_write(asio::buffer(m_out.front()), [this](beast::error_code ec, size_t) {
            if (ec)
                return stop();
            m_out.pop_front();
            if (!m_out.empty())
                write_next();
            else if (m_detaching)
                stop();
        });
    }

    void stop()
    {
        if (m_stopped)
            return;
        m_stopped = true;
        beast::error_code ignored;
        m_stdin.close(ignored);
        beast::get_lowest_layer(m_ws).close(ignored);
    }

    asio::io_context& m_ioc;
    websocket::stream<Local::socket> m_ws;
    asio::posix::stream_descriptor m_stdin;
    beast::flat_buffer m_in;
    std::array<char, 1024> m_buf {};
    std::deque<std::string> m_out;
    bool m_detaching { false };
    bool m_stopped { false };
};

} // namespace

void register_vm_console(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs)
{
    struct Options {
        std::string name;
        size_t backlog { 16384 };
    };
    auto o = std::make_shared<Options>();
    auto* cmd = vm.add_subcommand("console", "Attach to a VM's serial console (Ctrl-] detaches)");
    cmd->add_option("NAME", o->name, "The VM")->required();
    cmd->add_option("--backlog", o->backlog, "Bytes of earlier output to show first")->capture_default_str();
    verbs.push_back({ cmd, [common, o]() -> int {
        bool const tty = ::isatty(STDIN_FILENO) == 1;
        termios saved {};
        if (tty) {
            ::tcgetattr(STDIN_FILENO, &saved);
            termios raw = saved;
            ::cfmakeraw(&raw);
            ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
            fmt::print(stderr, "hako vm console {}: Ctrl-] detaches\r\n", o->name);
        }
        asio::io_context ioc;
        ConsoleClient client(ioc, STDIN_FILENO);
        int const status = client.run(common->resolved_socket(), o->name, o->backlog);
        if (tty) {
            ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
            fmt::print(stderr, "\nhako vm console: detached\n");
        }
        return status;
    } });
}

} // namespace hako::cli
