#include "serve/paths.h"

#include <cstdlib>
#include <fmt/format.h>
#include <unistd.h>

namespace hako::serve {

namespace {

std::string env(char const* name)
{
    char const* v = std::getenv(name);
    return v && v[0] == '/' ? std::string(v) : std::string();
}

} // namespace

std::string default_socket_path()
{
    if (char const* s = std::getenv("HAKO_SOCKET"); s && s[0])
        return s;
    if (::geteuid() == 0)
        return "/run/hako/hako.sock";
    if (auto run = env("XDG_RUNTIME_DIR"); !run.empty())
        return run + "/hako/hako.sock";
    return fmt::format("/tmp/hako-{}/hako.sock", ::geteuid());
}

std::string default_state_dir()
{
    if (::geteuid() == 0)
        return "/var/lib/hako";
    if (auto state = env("XDG_STATE_HOME"); !state.empty())
        return state + "/hako";
    if (auto home = env("HOME"); !home.empty())
        return home + "/.local/state/hako";
    return fmt::format("/tmp/hako-{}/state", ::geteuid());
}

} // namespace hako::serve
