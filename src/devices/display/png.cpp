#include "devices/display/png.h"

#include <png.h>

#include <fmt/format.h>

namespace hako::devices::display {

Result<std::vector<uint8_t>> encode_png(Image const& image)
{
    if (image.width == 0 || image.height == 0 || image.pixels.size() != size_t { image.width } * image.height)
        return Error(ErrorKind::InvalidArgument, "Cannot encode an empty image as PNG");
    std::vector<uint8_t> rgb(image.pixels.size() * 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) {
        uint32_t const p = image.pixels[i];
        rgb[i * 3] = static_cast<uint8_t>(p >> 16);
        rgb[i * 3 + 1] = static_cast<uint8_t>(p >> 8);
        rgb[i * 3 + 2] = static_cast<uint8_t>(p);
    }
    png_image png {};
    png.version = PNG_IMAGE_VERSION;
    png.width = image.width;
    png.height = image.height;
    png.format = PNG_FORMAT_RGB;
    auto const stride = static_cast<png_int_32>(image.width * 3);
    png_alloc_size_t size = 0;
    // First pass: the size; second: the bytes.
    if (!png_image_write_to_memory(&png, nullptr, &size, 0, rgb.data(), stride, nullptr)) {
        std::string const message = png.message;
        png_image_free(&png);
        return Error(ErrorKind::Io, fmt::format("PNG encoding failed: {}", message));
    }
    std::vector<uint8_t> out(size);
    if (!png_image_write_to_memory(&png, out.data(), &size, 0, rgb.data(), stride, nullptr)) {
        std::string const message = png.message;
        png_image_free(&png);
        return Error(ErrorKind::Io, fmt::format("PNG encoding failed: {}", message));
    }
    out.resize(size);
    return out;
}

} // namespace hako::devices::display
