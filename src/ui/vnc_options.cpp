#include "ui/vnc_options.h"

#include <arpa/inet.h>
#include <charconv>
#include <sys/un.h>

#include "base/key_value.h"

namespace hako::ui {

Result<VncOptions> parse_vnc_options(std::string_view spec)
{
    auto const parts = TRY(parse_key_values(spec));
    auto bad = [&](std::string_view why) {
        return Error(ErrorKind::InvalidArgument, fmt::format("--vnc '{}': {}", spec, why));
    };
    if (parts.empty() || !parts[0].key.empty())
        return bad("expected HOST:PORT or unix:PATH first");
    VncOptions o;
    std::string_view const where = parts[0].value;
    if (where.starts_with("unix:")) {
        o.kind = VncOptions::Kind::Unix;
        o.path = where.substr(5);
        if (o.path.empty())
            return bad("empty unix socket path");
        if (o.path.size() >= sizeof(sockaddr_un::sun_path))
            return bad("unix socket path too long");
    } else {
        size_t const colon = where.rfind(':');
        if (colon == std::string_view::npos)
            return bad("expected HOST:PORT (e.g. 127.0.0.1:5900) or unix:PATH");
        o.host = where.substr(0, colon);
        std::string_view const port = where.substr(colon + 1);
        in_addr addr {};
        if (inet_pton(AF_INET, o.host.c_str(), &addr) != 1)
            return bad(fmt::format("'{}' is not an IPv4 address", o.host));
        unsigned value = 0;
        auto const [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
            return bad(fmt::format("'{}' is not a TCP port (1-65535)", port));
        o.port = static_cast<uint16_t>(value);
    }
    for (size_t i = 1; i < parts.size(); ++i) {
        if (parts[i].key != "password")
            return bad(fmt::format("unknown key '{}' (known: password)", parts[i].key));
        if (parts[i].value.empty() || parts[i].value.size() > VncOptions::MAX_PASSWORD)
            return bad("a VNC password has 1 to 8 characters");
        o.password = parts[i].value;
    }
    return o;
}

} // namespace hako::ui
