// The daemon's request target parser: segments, percent-decoding, queries, and what it refuses.
#include <gtest/gtest.h>

#include "serve/http_target.h"

namespace hako::serve {
namespace {

TEST(HttpTarget, Segments)
{
    auto t = parse_target("/api/v1/vms/web-1/start");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->segments, (std::vector<std::string> { "api", "v1", "vms", "web-1", "start" }));
    auto trailing = parse_target("/api/v1/vms/");
    ASSERT_TRUE(trailing);
    EXPECT_EQ(trailing->segments.size(), 3u);
}

TEST(HttpTarget, QueryAndDecoding)
{
    auto t = parse_target("/api/v1/vms/a%2Eb/console?backlog=10&access_token=a%20b+c&flag");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->segments.at(3), "a.b");
    EXPECT_EQ(t->param("backlog"), "10");
    EXPECT_EQ(t->param("access_token"), "a b c");
    EXPECT_EQ(t->param("flag"), "");
    EXPECT_EQ(t->param("missing"), "");
}

TEST(HttpTarget, Refuses)
{
    EXPECT_FALSE(parse_target(""));
    EXPECT_FALSE(parse_target("api/v1"));
    EXPECT_FALSE(parse_target("http://host/api"));
    EXPECT_FALSE(parse_target("/api/%2fetc"));  // an encoded slash inside a segment
    EXPECT_FALSE(parse_target("/api/%00"));
    EXPECT_FALSE(parse_target("/api/%4"));
    EXPECT_FALSE(parse_target("/api/%zz"));
    EXPECT_FALSE(parse_target("/a?x=%g0"));
    EXPECT_FALSE(parse_target("/" + std::string(5000, 'a')));
}

} // namespace
} // namespace hako::serve
