// Image: what a display renders to: 32-bit pixels 0x00RRGGBB, row-major, no padding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hako::devices::display {

struct Image {
    uint32_t width { 0 };
    uint32_t height { 0 };
    std::vector<uint32_t> pixels; // width * height

    Image() = default;
    Image(uint32_t w, uint32_t h, uint32_t fill = 0) : width(w), height(h), pixels(size_t { w } * h, fill) { }
    uint32_t& at(uint32_t x, uint32_t y) { return pixels[size_t { y } * width + x]; }
    uint32_t at(uint32_t x, uint32_t y) const { return pixels[size_t { y } * width + x]; }
};

} // namespace hako::devices::display
