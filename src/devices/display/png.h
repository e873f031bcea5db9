// PNG encoding of a rendered Image (libpng's simplified write API), for screenshots.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "devices/display/image.h"

namespace hako::devices::display {

/// An 8-bit RGB PNG of the image (no alpha). Fails on an empty image or if libpng reports an error.
[[nodiscard]] Result<std::vector<uint8_t>> encode_png(Image const& image);

} // namespace hako::devices::display
