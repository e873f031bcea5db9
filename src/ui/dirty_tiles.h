// DirtyTiles: which parts of a rendered frame changed since the previous one, in tiles of TILE x TILE pixels.
// The VNC server renders the screen on a timer and marks only the changed rectangles as modified, so a client
// receives what changed, not the whole screen. Runs of changed tiles along a tile row are merged into one rectangle.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/display/image.h"

namespace hako::ui {

struct Rect {
    uint32_t x;
    uint32_t y;
    uint32_t width;
    uint32_t height;
    bool operator==(Rect const&) const = default;
};

class DirtyTiles final {
public:
    static constexpr uint32_t TILE = 16;

    struct Changes {
        bool resized { false };  // the frame's size differs from the previous one's (the whole frame is one rect)
        std::vector<Rect> rects; // changed areas, clipped to the frame
    };

    /// Compares `frame` with the previous frame and keeps it as the new previous one. The first frame, and every
    /// frame of a new size, is reported whole with `resized` set.
    Changes update(devices::display::Image frame);

    devices::display::Image const& current() const { return m_previous; }

private:
    bool tile_differs(devices::display::Image const& frame, uint32_t tx, uint32_t ty) const;

    devices::display::Image m_previous;
    bool m_have_previous { false };
};

} // namespace hako::ui
