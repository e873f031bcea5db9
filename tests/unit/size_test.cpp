#include <gtest/gtest.h>

#include "base/size.h"

using hako::parse_memory_size;

TEST(MemorySize, QemuStyleSuffixes)
{
    EXPECT_EQ(parse_memory_size("64M"), 64ull << 20);
    EXPECT_EQ(parse_memory_size("2G"), 2ull << 30);
    EXPECT_EQ(parse_memory_size("6GiB"), 6ull << 30);
    EXPECT_EQ(parse_memory_size("512"), 512ull << 20); // bare number: MiB, as QEMU's -m
    EXPECT_EQ(parse_memory_size("4096B"), 4096u);
    EXPECT_EQ(parse_memory_size("1k"), 1024u);
}

TEST(MemorySize, Rejects)
{
    EXPECT_FALSE(parse_memory_size(""));
    EXPECT_FALSE(parse_memory_size("G"));
    EXPECT_FALSE(parse_memory_size("-1G"));
    EXPECT_FALSE(parse_memory_size("1X"));
    EXPECT_FALSE(parse_memory_size("1GG"));
    EXPECT_FALSE(parse_memory_size("99999999999999999999"));
    EXPECT_FALSE(parse_memory_size("17179869184G")); // overflows 64 bits
}
