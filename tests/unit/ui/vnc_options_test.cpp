#include "ui/vnc_options.h"

#include <gtest/gtest.h>

namespace hako::ui {
namespace {

TEST(VncOptions, TcpAndUnix)
{
    auto tcp = parse_vnc_options("127.0.0.1:5901");
    ASSERT_TRUE(tcp);
    EXPECT_EQ(tcp->kind, VncOptions::Kind::Tcp);
    EXPECT_EQ(tcp->host, "127.0.0.1");
    EXPECT_EQ(tcp->port, 5901);
    EXPECT_FALSE(tcp->password);
    auto unix_socket = parse_vnc_options("unix:/tmp/x.sock,password=secret");
    ASSERT_TRUE(unix_socket);
    EXPECT_EQ(unix_socket->kind, VncOptions::Kind::Unix);
    EXPECT_EQ(unix_socket->path, "/tmp/x.sock");
    EXPECT_EQ(unix_socket->password, "secret");
}

TEST(VncOptions, Refused)
{
    for (char const* bad : { "", "5900", ":5900", "localhost:5900", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:59x",
             "127.0.0.1:", "unix:", "127.0.0.1:5900,password=", "127.0.0.1:5900,password=123456789",
             "127.0.0.1:5900,pw=x", "password=x" })
        EXPECT_FALSE(parse_vnc_options(bad)) << bad;
    EXPECT_FALSE(parse_vnc_options("unix:/" + std::string(200, 'a')));
}

} // namespace
} // namespace hako::ui
