#include "serve/proc_usage.h"

#include <charconv>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace hako::serve {

namespace {

/// The `index`th whitespace-separated field of `text` (0-based) as a number.
std::optional<uint64_t> field(std::string_view text, size_t index)
{
    size_t pos = 0;
    for (size_t i = 0;; i++) {
        while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n'))
            pos++;
        if (pos >= text.size())
            return std::nullopt;
        size_t end = pos;
        while (end < text.size() && text[end] != ' ' && text[end] != '\n')
            end++;
        if (i == index) {
            uint64_t v = 0;
            auto [p, ec] = std::from_chars(text.data() + pos, text.data() + end, v);
            if (ec != std::errc() || p != text.data() + end)
                return std::nullopt;
            return v;
        }
        pos = end;
    }
}

std::string slurp(std::string const& path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

} // namespace

std::optional<ProcUsage> parse_proc_usage(std::string_view stat, std::string_view statm, long ticks_per_second, long page_size)
{
    if (ticks_per_second <= 0 || page_size <= 0)
        return std::nullopt;
    auto const paren = stat.rfind(')');
    if (paren == std::string_view::npos)
        return std::nullopt;
    // After "pid (comm)": state is field 0, utime field 11, stime field 12 (proc(5)'s fields 3, 14 and 15).
    auto const rest = stat.substr(paren + 1);
    auto const utime = field(rest, 11);
    auto const stime = field(rest, 12);
    auto const resident = field(statm, 1);
    if (!utime || !stime || !resident)
        return std::nullopt;
    auto const page = static_cast<uint64_t>(page_size);
    if (*resident > UINT64_MAX / page)
        return std::nullopt;
    return ProcUsage { static_cast<double>(*utime + *stime) / static_cast<double>(ticks_per_second), *resident * page };
}

std::optional<ProcUsage> read_proc_usage(pid_t pid)
{
    if (pid <= 0)
        return std::nullopt;
    return parse_proc_usage(slurp(fmt::format("/proc/{}/stat", pid)), slurp(fmt::format("/proc/{}/statm", pid)),
        ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
}

} // namespace hako::serve
