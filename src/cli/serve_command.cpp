// `hako serve`: the management daemon (src/serve/): VM definitions in SQLite, each VM a supervised `hako run`,
// a REST API on a unix socket (and optionally TCP with a bearer token). Foreground by default, logging to stderr
// (what systemd wants); --daemon forks into the background and logs to STATE_DIR/serve.log.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <climits>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/commands.h"
#include "serve/http_server.h"
#include "serve/paths.h"
#include "serve/supervisor.h"
#include "vmm/config.h"

namespace hako::cli {

using vmm::exit_status::BAD_INPUT;
using vmm::exit_status::USAGE;

namespace {

struct ServeOptions {
    std::string socket, state_dir, listen, token_file, web_dir;
    bool daemon { false };
    int verbose { 0 };
};

int fail(int status, std::string const& message)
{
    fmt::print(stderr, "hako serve: {}\n", message);
    return status;
}

Result<std::string> read_token(std::string const& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return Error::from_errno(ErrorKind::NotFound, fmt::format("Cannot read the token file {}", path));
    if ((st.st_mode & 077) != 0)
        return Error(ErrorKind::Permission, fmt::format("The token file {} must not be readable by group or others (chmod 600)", path));
    std::ifstream f(path);
    std::string token;
    std::getline(f, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' '))
        token.pop_back();
    if (token.size() < 16)
        return Error(ErrorKind::InvalidArgument, fmt::format("The token in {} is shorter than 16 characters", path));
    return token;
}

int serve(ServeOptions o)
{
    if (o.socket.empty())
        o.socket = serve::default_socket_path();
    if (o.state_dir.empty())
        o.state_dir = serve::default_state_dir();
    if (!o.listen.empty() && o.token_file.empty())
        return fail(USAGE, "--listen needs --token-file (requests over TCP must carry the token)");
    std::string token;
    if (!o.token_file.empty()) {
        auto t = read_token(o.token_file);
        if (!t)
            return fail(BAD_INPUT, t.error().message());
        token = *t;
    }
    std::error_code ec;
    if (o.web_dir.empty()) {
        // The UI the build made (scripts/build-web.sh into BUILD/web), if it is there; none otherwise.
        if (std::filesystem::is_regular_file(std::string(HAKO_DEFAULT_WEB_DIR) + "/index.html", ec))
            o.web_dir = HAKO_DEFAULT_WEB_DIR;
    } else if (!std::filesystem::is_regular_file(o.web_dir + "/index.html", ec)) {
        return fail(BAD_INPUT, fmt::format("--web-dir {}: no index.html there (build it with scripts/build-web.sh DIR)", o.web_dir));
    } else {
        o.web_dir = std::filesystem::absolute(o.web_dir, ec).lexically_normal().string();
    }
    o.state_dir = std::filesystem::absolute(o.state_dir, ec).lexically_normal().string();
    std::filesystem::create_directories(std::filesystem::path(o.socket).parent_path(), ec);
    std::filesystem::create_directories(o.state_dir, ec);
    if (ec)
        return fail(BAD_INPUT, fmt::format("Cannot create {}: {}", o.state_dir, ec.message()));
    char exe[PATH_MAX] = {};
    ssize_t const n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return fail(BAD_INPUT, "Cannot find hako's own executable (/proc/self/exe)");

    if (o.daemon) {
        pid_t const pid = ::fork();
        if (pid < 0)
            return fail(BAD_INPUT, "fork failed");
        if (pid > 0)
            return 0;
        ::setsid();
        int const null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        int const log = ::open((o.state_dir + "/serve.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (null >= 0) {
            ::dup2(null, STDIN_FILENO);
            ::dup2(null, STDOUT_FILENO);
        }
        if (log >= 0)
            ::dup2(log, STDERR_FILENO);
    }
    init_logging(o.verbose + 1); // the daemon logs what it does (info) by default
    // Writes to a VM's console FIFO after the VM ended must fail with EPIPE, not end the daemon. Children get every
    // signal back to its default (posix_spawn).
    std::signal(SIGPIPE, SIG_IGN);

    boost::asio::io_context ioc;
    auto supervisor = serve::Supervisor::create(ioc, { o.state_dir, std::string(exe, static_cast<size_t>(n)) });
    if (!supervisor)
        return fail(BAD_INPUT, supervisor.error().message());
    auto server = serve::HttpServer::start(ioc, **supervisor, { o.socket, o.listen, token, o.web_dir });
    if (!server)
        return fail(server.error().kind() == ErrorKind::Busy ? 4 : BAD_INPUT, server.error().message());
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM, SIGHUP);
    signals.async_wait([&ioc](boost::system::error_code, int sig) {
        HAKO_INFO("hako serve: signal {}: exiting (VMs keep running)", sig);
        ioc.stop();
    });
    HAKO_INFO("hako serve: listening on {}{}; state in {}", o.socket, o.listen.empty() ? "" : " and " + o.listen, o.state_dir);
    if (!o.listen.empty())
        HAKO_INFO("hako serve: web UI {}", o.web_dir.empty() ? "not built (no --web-dir)" : fmt::format("at http://{}/ (files in {})", o.listen, o.web_dir));
    ioc.run();
    server->reset();
    supervisor->reset();
    return 0;
}

} // namespace

std::function<int()> register_serve_command(CLI::App& app)
{
    auto o = std::make_shared<ServeOptions>();
    auto* cmd = app.add_subcommand("serve", "Run the management daemon: VMs defined in SQLite, run and supervised, REST API");
    cmd->add_option("--socket", o->socket, "The API's unix socket (default: HAKO_SOCKET, /run/hako/hako.sock for root, "
                                           "else $XDG_RUNTIME_DIR/hako/hako.sock)");
    cmd->add_option("--state-dir", o->state_dir, "Where hako.db, VM directories and images/ live (default: /var/lib/hako for "
                                                 "root, else $XDG_STATE_HOME/hako)");
    cmd->add_option("--listen", o->listen, "Also serve the API on TCP at IP:PORT (needs --token-file)");
    cmd->add_option("--token-file", o->token_file, "A file (mode 0600) whose first line is the bearer token TCP clients send");
    cmd->add_option("--web-dir", o->web_dir, "The built web UI to serve at / (default: the build's web/ directory, if built)");
    cmd->add_flag("--daemon", o->daemon, "Fork into the background (log to STATE_DIR/serve.log)");
    cmd->add_flag("-v,--verbose", o->verbose, "More log output");
    return [cmd, o]() -> int {
        if (!cmd->parsed())
            return USAGE;
        return serve(*o);
    };
}

} // namespace hako::cli
