// Usage figures from procfs: parsing stat/statm (command names with spaces and parentheses, malformed input) and
// reading this very process.
#include <gtest/gtest.h>
#include <unistd.h>

#include "serve/proc_usage.h"

namespace hako::serve {
namespace {

// proc(5) fields 1..17 of a real line, with utime 250 and stime 50.
constexpr char STAT[] = "4242 (hako) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 3 0 100 1000000 500\n";

TEST(ProcUsage, ParsesStatAndStatm)
{
    auto u = parse_proc_usage(STAT, "5000 1200 300 10 0 900 0\n", 100, 4096);
    ASSERT_TRUE(u);
    EXPECT_DOUBLE_EQ(u->cpu_seconds, 3.0);
    EXPECT_EQ(u->rss_bytes, 1200u * 4096u);
}

TEST(ProcUsage, CommandNameWithSpacesAndParentheses)
{
    auto u = parse_proc_usage("7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 1 1", "10 20 0 0 0 0 0", 10, 4096);
    ASSERT_TRUE(u);
    EXPECT_DOUBLE_EQ(u->cpu_seconds, 3.0);
    EXPECT_EQ(u->rss_bytes, 20u * 4096u);
}

TEST(ProcUsage, RefusesMalformed)
{
    EXPECT_FALSE(parse_proc_usage("", "1 2", 100, 4096));
    EXPECT_FALSE(parse_proc_usage("1 hako S 1", "1 2", 100, 4096)) << "no ')'";
    EXPECT_FALSE(parse_proc_usage("1 (hako) S 1 2 3", "1 2", 100, 4096)) << "too few fields";
    EXPECT_FALSE(parse_proc_usage("1 (h) S 1 1 1 0 -1 0 0 0 0 0 x 5", "1 2", 100, 4096)) << "not a number";
    EXPECT_FALSE(parse_proc_usage(STAT, "1", 100, 4096)) << "statm without resident";
    EXPECT_FALSE(parse_proc_usage(STAT, "1 -2", 100, 4096));
    EXPECT_FALSE(parse_proc_usage(STAT, "1 99999999999999999999", 100, 4096)) << "overflows";
    EXPECT_FALSE(parse_proc_usage(STAT, "1 18446744073709551615", 100, 4096)) << "resident * page overflows";
    EXPECT_FALSE(parse_proc_usage(STAT, "1 2", 0, 4096));
    EXPECT_FALSE(parse_proc_usage(STAT, "1 2", 100, 0));
}

TEST(ProcUsage, ReadsThisProcess)
{
    auto u = read_proc_usage(::getpid());
    ASSERT_TRUE(u);
    EXPECT_GT(u->rss_bytes, 0u);
    EXPECT_GE(u->cpu_seconds, 0.0);
    EXPECT_FALSE(read_proc_usage(0));
    EXPECT_FALSE(read_proc_usage(-1));
}

} // namespace
} // namespace hako::serve
