// The web UI's files (web/, built by scripts/build-web.sh into BUILD/web) as `hako serve` hands them out: GET / is
// index.html, GET /NAME a file directly in the web directory. Nothing else is reachable: one path segment only,
// a name of [A-Za-z0-9_-] and dots not at the start (so no "..", no hidden file), a known extension (which fixes the
// content type), a regular file opened without following a symlink, at most MAX_WEB_FILE bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_server.h"

namespace hako::serve {

constexpr size_t MAX_WEB_FILE = 16 * 1024 * 1024;

/// The content type for a file name the UI may serve, or nullopt if the name is not one.
std::optional<std::string_view> web_content_type(std::string_view name);
/// The reply for GET of a path (its segments, percent-decoded) outside /api: the file, or a 404 JSON error.
api::Reply web_file(std::string const& web_dir, std::vector<std::string> const& segments);

} // namespace hako::serve
