#include "serve/http_target.h"

#include <algorithm>

namespace hako::serve {

std::string Target::param(std::string_view key) const
{
    for (auto const& [k, v] : query)
        if (k == key)
            return v;
    return {};
}

namespace {

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space)
{
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        char const c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size())
                return std::nullopt;
            int const hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

} // namespace

std::optional<Target> parse_target(std::string_view target)
{
    if (target.empty() || target[0] != '/' || target.size() > 4096)
        return std::nullopt;
    Target t;
    std::string_view path = target, query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
    }
    size_t pos = 1;
    while (pos <= path.size()) {
        size_t const end = std::min(path.find('/', pos), path.size());
        auto seg = percent_decode(path.substr(pos, end - pos), false);
        if (!seg || seg->find('/') != std::string::npos || seg->find('\0') != std::string::npos)
            return std::nullopt;
        if (!(seg->empty() && end == path.size()))
            t.segments.push_back(std::move(*seg));
        pos = end + 1;
    }
    while (!query.empty()) {
        size_t const amp = query.find('&');
        std::string_view const pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty())
            continue;
        size_t const eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq), true);
        auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
        if (!key || !value)
            return std::nullopt;
        t.query.emplace_back(std::move(*key), std::move(*value));
    }
    return t;
}

} // namespace hako::serve
