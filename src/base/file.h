// Reading host files (kernels, ROMs, initrds) with clear errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace hako {

/// Reads a whole regular file, refusing files larger than max_size.
Result<std::vector<uint8_t>> read_file(std::string const& path, uint64_t max_size);

} // namespace hako
