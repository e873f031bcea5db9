#include "ui/dirty_tiles.h"

#include <algorithm>
#include <cstring>

namespace hako::ui {

bool DirtyTiles::tile_differs(devices::display::Image const& frame, uint32_t tx, uint32_t ty) const
{
    uint32_t const x0 = tx * TILE;
    uint32_t const y0 = ty * TILE;
    uint32_t const w = std::min(TILE, frame.width - x0);
    uint32_t const h = std::min(TILE, frame.height - y0);
    for (uint32_t y = y0; y < y0 + h; ++y) {
        size_t const row = size_t { y } * frame.width + x0;
        if (std::memcmp(&frame.pixels[row], &m_previous.pixels[row], size_t { w } * sizeof(uint32_t)) != 0)
            return true;
    }
    return false;
}

DirtyTiles::Changes DirtyTiles::update(devices::display::Image frame)
{
    Changes out;
    if (frame.pixels.size() != size_t { frame.width } * frame.height) // not a well-formed image: treat as empty
        frame = devices::display::Image();
    if (!m_have_previous || frame.width != m_previous.width || frame.height != m_previous.height) {
        out.resized = true;
        if (frame.width && frame.height)
            out.rects.push_back({ 0, 0, frame.width, frame.height });
        m_previous = std::move(frame);
        m_have_previous = true;
        return out;
    }
    uint32_t const tiles_x = (frame.width + TILE - 1) / TILE;
    uint32_t const tiles_y = (frame.height + TILE - 1) / TILE;
    for (uint32_t ty = 0; ty < tiles_y; ++ty) {
        uint32_t run_start = 0;
        bool in_run = false;
        auto close_run = [&](uint32_t end_tile) {
            uint32_t const x = run_start * TILE;
            uint32_t const y = ty * TILE;
            uint32_t const x_end = std::min(end_tile * TILE, frame.width);
            out.rects.push_back({ x, y, x_end - x, std::min(TILE, frame.height - y) });
            in_run = false;
        };
        for (uint32_t tx = 0; tx < tiles_x; ++tx) {
            bool const dirty = tile_differs(frame, tx, ty);
            if (dirty && !in_run) {
                run_start = tx;
                in_run = true;
            } else if (!dirty && in_run) {
                close_run(tx);
            }
        }
        if (in_run)
            close_run(tiles_x);
    }
    m_previous = std::move(frame);
    return out;
}

} // namespace hako::ui
