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

#include "base/key_value.h"

TEST(KeyValue, SplitsPositionalAndKeyedParts)
{
    auto kv = hako::parse_key_values("user,hostfwd=tcp:127.0.0.1:2222-:22,mac=52:54:00:12:34:56");
    ASSERT_TRUE(kv);
    ASSERT_EQ(kv->size(), 3u);
    EXPECT_EQ((*kv)[0].key, "");
    EXPECT_EQ((*kv)[0].value, "user");
    EXPECT_EQ((*kv)[1].key, "hostfwd");
    EXPECT_EQ((*kv)[1].value, "tcp:127.0.0.1:2222-:22");
    EXPECT_EQ((*kv)[2].value, "52:54:00:12:34:56");
    auto esc = hako::parse_key_values("path=a,,b.img,readonly=on");
    ASSERT_TRUE(esc);
    EXPECT_EQ((*esc)[0].value, "a,b.img");
    EXPECT_EQ((*esc)[1].key, "readonly");
    EXPECT_EQ(hako::parse_key_values("path=x=y")->at(0).value, "x=y");
}

TEST(KeyValue, RejectsEmptyPartsAndKeys)
{
    EXPECT_FALSE(hako::parse_key_values(""));
    EXPECT_FALSE(hako::parse_key_values("a,,,"));   // "a," then an empty part
    EXPECT_FALSE(hako::parse_key_values(",a"));
    EXPECT_FALSE(hako::parse_key_values("path=x,"));
    EXPECT_FALSE(hako::parse_key_values("=x"));
    EXPECT_EQ(hako::parse_on_off("on"), true);
    EXPECT_EQ(hako::parse_on_off("off"), false);
    EXPECT_EQ(hako::parse_on_off("maybe"), std::nullopt);
}
