#include "ui/dirty_tiles.h"

#include <gtest/gtest.h>

namespace hako::ui {
namespace {

using devices::display::Image;
constexpr uint32_t T = DirtyTiles::TILE;

TEST(DirtyTiles, FirstFrameAndResizeAreWhole)
{
    DirtyTiles d;
    auto c = d.update(Image(100, 50, 0x123456));
    EXPECT_TRUE(c.resized);
    ASSERT_EQ(c.rects.size(), 1u);
    EXPECT_EQ(c.rects[0], (Rect { 0, 0, 100, 50 }));
    c = d.update(Image(100, 50, 0x123456));
    EXPECT_FALSE(c.resized);
    EXPECT_TRUE(c.rects.empty());
    c = d.update(Image(64, 64, 0x123456));
    EXPECT_TRUE(c.resized);
    EXPECT_EQ(c.rects, (std::vector<Rect> { { 0, 0, 64, 64 } }));
    EXPECT_EQ(d.current().width, 64u);
}

TEST(DirtyTiles, OnePixelMarksItsTile)
{
    DirtyTiles d;
    Image img(100, 50);
    d.update(img);
    img.at(T + 3, 2 * T + 1) = 0xffffff;
    auto c = d.update(img);
    EXPECT_EQ(c.rects, (std::vector<Rect> { { T, 2 * T, T, T } }));
    // Unchanged since: nothing.
    EXPECT_TRUE(d.update(img).rects.empty());
}

TEST(DirtyTiles, EdgeTilesAreClippedAndRunsMerged)
{
    DirtyTiles d;
    Image img(100, 50); // 7 x 4 tiles, the last column 4 pixels wide, the last row 2 pixels high
    d.update(img);
    img.at(99, 49) = 1; // bottom-right corner tile
    img.at(0, 0) = 1;   // tiles 0, 1, 2 of row 0: one run
    img.at(T, 0) = 1;
    img.at(2 * T + 5, T - 1) = 1;
    img.at(5 * T, 0) = 1; // tile 5 of row 0: a second run
    auto c = d.update(img);
    EXPECT_EQ(c.rects, (std::vector<Rect> { { 0, 0, 3 * T, T }, { 5 * T, 0, T, T }, { 6 * T, 3 * T, 4, 2 } }));
}

TEST(DirtyTiles, MalformedImageIsEmpty)
{
    DirtyTiles d;
    Image bad;
    bad.width = 10;
    bad.height = 10; // no pixels
    auto c = d.update(bad);
    EXPECT_TRUE(c.resized);
    EXPECT_TRUE(c.rects.empty());
    EXPECT_EQ(d.current().width, 0u);
}

} // namespace
} // namespace hako::ui
