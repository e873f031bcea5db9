#include <gtest/gtest.h>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/result.h"

using namespace hako;

static Result<int> half(int v)
{
    if (v % 2)
        return Error(ErrorKind::InvalidArgument, "Odd");
    return v / 2;
}

static Result<int> quarter(int v)
{
    int h = TRY(half(v));
    return TRY(half(h));
}

TEST(Result, TryPropagatesErrors)
{
    EXPECT_EQ(*quarter(8), 2);
    auto r = quarter(6);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "Odd");
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
}

TEST(Checked, AddAndRange)
{
    EXPECT_FALSE(checked_add(~0ull, 1));
    EXPECT_EQ(*checked_add(1, 2), 3u);
    EXPECT_TRUE(range_within(0, 16, 16));
    EXPECT_FALSE(range_within(1, 16, 16));
    EXPECT_FALSE(range_within(~0ull, 2, ~0ull));
}

TEST(Bytes, LittleEndian)
{
    uint8_t buf[8] {};
    put_le32(buf, 0x12345678);
    EXPECT_EQ(buf[0], 0x78);
    EXPECT_EQ(get_le32(buf), 0x12345678u);
    store_le(std::span(buf, 2), 0xabcd);
    EXPECT_EQ(load_le(std::span<uint8_t const>(buf, 2)), 0xabcdu);
}
