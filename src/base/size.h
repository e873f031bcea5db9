// Parsing sizes the way QEMU users write them: 512M, 2G, 6G, 1048576 (bytes), 64K.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hako {

/// Parses "<number>[K|M|G|T][iB|B]" (binary units); a bare number without a suffix means MiB, as QEMU's -m.
std::optional<uint64_t> parse_memory_size(std::string_view text);

} // namespace hako
