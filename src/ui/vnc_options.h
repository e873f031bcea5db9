// VncOptions: what `--vnc` asks for: where the VNC server listens and its password.
//   --vnc 127.0.0.1:5900[,password=SECRET]   TCP on an IPv4 address and a TCP port (5900 is VNC display :0)
//   --vnc unix:/path/vnc.sock[,password=...]   a unix socket (mode 0600)
// VNC authentication (RFB 3.8 security type 2, DES challenge-response) uses only the password's first 8
// characters, so a longer one is refused rather than silently shortened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hako::ui {

struct VncOptions {
    enum class Kind : uint8_t { Tcp, Unix };
    Kind kind { Kind::Tcp };
    std::string host;      // IPv4 address (Tcp)
    uint16_t port { 0 };   // TCP port (Tcp)
    std::string path;      // socket path (Unix)
    std::optional<std::string> password;

    static constexpr size_t MAX_PASSWORD = 8;
};

[[nodiscard]] Result<VncOptions> parse_vnc_options(std::string_view spec);

} // namespace hako::ui
