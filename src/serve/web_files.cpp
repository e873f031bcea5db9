#include "serve/web_files.h"

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace hako::serve {

namespace {

struct Type {
    std::string_view extension, content_type;
};
constexpr std::array TYPES {
    Type { ".html", "text/html; charset=utf-8" },
    Type { ".js", "text/javascript; charset=utf-8" },
    Type { ".css", "text/css; charset=utf-8" },
    Type { ".map", "application/json" },
    Type { ".svg", "image/svg+xml" },
    Type { ".png", "image/png" },
    Type { ".ico", "image/x-icon" },
    Type { ".woff2", "font/woff2" },
};

bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

api::Reply not_found()
{
    return api::Reply::error(404, "No such page");
}

} // namespace

std::optional<std::string_view> web_content_type(std::string_view name)
{
    if (name.empty() || name.size() > 128 || name[0] == '.')
        return std::nullopt;
    for (char const c : name)
        if (!name_char(c))
            return std::nullopt;
    for (auto const& t : TYPES)
        if (name.size() > t.extension.size() && name.ends_with(t.extension))
            return t.content_type;
    return std::nullopt;
}

api::Reply web_file(std::string const& web_dir, std::vector<std::string> const& segments)
{
    if (web_dir.empty() || segments.size() > 1)
        return not_found();
    std::string const name = segments.empty() ? "index.html" : segments[0];
    auto const type = web_content_type(name);
    if (!type)
        return not_found();
    UniqueFd fd(::open((web_dir + "/" + name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return not_found();
    if (static_cast<uint64_t>(st.st_size) > MAX_WEB_FILE)
        return api::Reply::error(500, fmt::format("{} is larger than {} bytes", name, MAX_WEB_FILE));
    std::string data(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < data.size()) {
        ssize_t const n = ::read(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += static_cast<size_t>(n);
    }
    data.resize(done);
    return api::Reply::bytes(std::string(*type), std::move(data));
}

} // namespace hako::serve
