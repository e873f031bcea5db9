// parse_net_option: the --net syntax, its defaults and its one-line errors.
#include <gtest/gtest.h>

#include "net/net_options.h"

using namespace hako;
using namespace hako::net;

namespace {

std::string error_of(std::string_view text)
{
    auto r = parse_net_option(text);
    EXPECT_FALSE(r.has_value()) << text;
    return r.has_value() ? std::string() : r.error().message();
}

} // namespace

TEST(NetOptions, UserDefaultsAreQemus)
{
    auto r = parse_net_option("user");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->backend, BackendKind::User);
    EXPECT_EQ(r->model, NicModel::Virtio);
    EXPECT_FALSE(r->mac.has_value());
    EXPECT_EQ(r->user.network, Ipv4Address(10, 0, 2, 0));
    EXPECT_EQ(r->user.prefix_len, 24);
    EXPECT_EQ(r->user.host, Ipv4Address(10, 0, 2, 2));
    EXPECT_EQ(r->user.dns, Ipv4Address(10, 0, 2, 3));
    EXPECT_EQ(r->user.dhcp_start, Ipv4Address(10, 0, 2, 15));
    EXPECT_TRUE(r->user.host_forwards.empty());
    EXPECT_EQ(format_mac(r->mac_or_default(0)), "52:54:00:12:34:56");
    EXPECT_EQ(format_mac(r->mac_or_default(1)), "52:54:00:12:34:57");
    EXPECT_EQ(format_mac(default_mac(0xaa)), "52:54:00:12:35:00");
}

TEST(NetOptions, UserWithEverything)
{
    auto r = parse_net_option("user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-10.0.2.20:53,"
                              "hostfwd=:0.0.0.0:8080-:80,tftp=/srv/tftp,bootfile=pxelinux.0,mac=52:54:00:AB:cd:01,"
                              "model=e1000,restrict=on,hostname=guest");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->model, NicModel::E1000);
    ASSERT_TRUE(r->mac.has_value());
    EXPECT_EQ(format_mac(*r->mac), "52:54:00:ab:cd:01");
    EXPECT_EQ(r->user.tftp_root, "/srv/tftp");
    EXPECT_EQ(r->user.bootfile, "pxelinux.0");
    EXPECT_TRUE(r->user.restricted);
    EXPECT_EQ(r->user.hostname, "guest");
    ASSERT_EQ(r->user.host_forwards.size(), 3u);
    auto const& a = r->user.host_forwards[0];
    EXPECT_EQ(a.protocol, Protocol::Tcp);
    EXPECT_EQ(a.host_addr, Ipv4Address(127, 0, 0, 1));
    EXPECT_EQ(a.host_port, 2222);
    EXPECT_EQ(a.guest_addr, Ipv4Address(10, 0, 2, 15)); // defaults to the DHCP address
    EXPECT_EQ(a.guest_port, 22);
    auto const& b = r->user.host_forwards[1];
    EXPECT_EQ(b.protocol, Protocol::Udp);
    EXPECT_EQ(b.host_addr, Ipv4Address(127, 0, 0, 1)); // no host address: loopback only
    EXPECT_EQ(b.guest_addr, Ipv4Address(10, 0, 2, 20));
    EXPECT_EQ(r->user.host_forwards[2].host_addr, Ipv4Address(0, 0, 0, 0));
}

TEST(NetOptions, NetMovesTheDefaultAddresses)
{
    auto r = parse_net_option("user,hostfwd=tcp::2222-:22,net=192.168.76.0/24");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->user.host, Ipv4Address(192, 168, 76, 2));
    EXPECT_EQ(r->user.dns, Ipv4Address(192, 168, 76, 3));
    EXPECT_EQ(r->user.dhcp_start, Ipv4Address(192, 168, 76, 15));
    EXPECT_EQ(r->user.host_forwards[0].guest_addr, Ipv4Address(192, 168, 76, 15));

    auto s = parse_net_option("user,net=10.1.0.0/16,dhcpstart=10.1.5.9");
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->user.prefix_len, 16);
    EXPECT_EQ(s->user.host, Ipv4Address(10, 1, 0, 2));
    EXPECT_EQ(s->user.dhcp_start, Ipv4Address(10, 1, 5, 9));
}

TEST(NetOptions, Tap)
{
    auto r = parse_net_option("tap=tap0,vhost=on,mac=02:00:00:00:00:01,model=virtio");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->backend, BackendKind::Tap);
    EXPECT_EQ(r->tap_ifname, "tap0");
    EXPECT_TRUE(r->vhost);
    EXPECT_EQ(format_mac(*r->mac), "02:00:00:00:00:01");
    auto s = parse_net_option("tap,ifname=hako1,model=rtl8139");
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->tap_ifname, "hako1");
    EXPECT_FALSE(s->vhost);
    EXPECT_EQ(s->model, NicModel::Rtl8139);
}

TEST(NetOptions, RomFile)
{
    auto r = parse_net_option("user,model=e1000,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->model, NicModel::E1000);
    EXPECT_EQ(r->romfile, "/usr/lib/ipxe/qemu/pxe-e1000.rom");
    EXPECT_TRUE(parse_net_option("user")->romfile.empty());
}

TEST(NetOptions, AllModels)
{
    for (auto [text, model] : { std::pair { "virtio", NicModel::Virtio }, { "e1000", NicModel::E1000 },
             { "rtl8139", NicModel::Rtl8139 }, { "ne2k_pci", NicModel::Ne2kPci }, { "pcnet", NicModel::Pcnet } }) {
        auto r = parse_net_option(std::string("user,model=") + text);
        ASSERT_TRUE(r) << text;
        EXPECT_EQ(r->model, model);
        EXPECT_EQ(to_string(model), text);
    }
}

TEST(NetOptions, BadStringsGiveOneClearLine)
{
    EXPECT_NE(error_of("").find("not a backend"), std::string::npos);
    EXPECT_NE(error_of("bridge").find("'bridge' is not a backend"), std::string::npos);
    EXPECT_NE(error_of("user,foo=1").find("unknown key 'foo'"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd").find("not KEY=VALUE"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd=sctp::1-:2").find("hostfwd"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd=tcp::2222:22").find("hostfwd"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd=tcp::70000-:22").find("host port '70000'"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd=tcp::0-:22").find("host port"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd=tcp:1.2.3:22-:22").find("host address"), std::string::npos);
    EXPECT_NE(error_of("user,hostfwd=tcp::22-192.168.0.5:22").find("not a host address"), std::string::npos);
    EXPECT_NE(error_of("user,mac=52:54:00:12:34").find("mac"), std::string::npos);
    EXPECT_NE(error_of("user,mac=52:54:00:12:34:zz").find("mac"), std::string::npos);
    EXPECT_NE(error_of("user,mac=01:00:5e:00:00:01").find("multicast"), std::string::npos);
    EXPECT_NE(error_of("user,model=virtio-gpu").find("model 'virtio-gpu'"), std::string::npos);
    EXPECT_NE(error_of("user,net=10.0.2.1/24").find("host bits"), std::string::npos);
    EXPECT_NE(error_of("user,net=10.0.2.0/30").find("prefix length"), std::string::npos);
    EXPECT_NE(error_of("user,net=10.0.256.0").find("IPv4"), std::string::npos);
    EXPECT_NE(error_of("user,dns=10.0.2.2").find("different"), std::string::npos);
    EXPECT_NE(error_of("user,host=10.0.3.2").find("host 10.0.3.2"), std::string::npos);
    EXPECT_NE(error_of("user,bootfile=pxelinux.0").find("tftp"), std::string::npos);
    EXPECT_NE(error_of("user,restrict=maybe").find("restrict"), std::string::npos);
    EXPECT_NE(error_of("user,vhost=on").find("tap networking only"), std::string::npos);
    EXPECT_NE(error_of("tap").find("interface name"), std::string::npos);
    EXPECT_NE(error_of("tap=tap0,hostfwd=tcp::1-:2").find("user networking only"), std::string::npos);
    EXPECT_NE(error_of("tap=averyveryverylongname").find("15"), std::string::npos);
    EXPECT_NE(error_of("user,").find("not KEY=VALUE"), std::string::npos);
    // Errors are one line, prefixed with the option.
    auto e = error_of("user,foo=1");
    EXPECT_EQ(e.find('\n'), std::string::npos);
    EXPECT_EQ(e.rfind("--net: ", 0), 0u);
}

TEST(NetOptions, Ipv4AndMacRoundTrip)
{
    auto a = parse_ipv4("192.168.1.254");
    ASSERT_TRUE(a);
    EXPECT_EQ(format_ipv4(*a), "192.168.1.254");
    EXPECT_FALSE(parse_ipv4("1.2.3.4.5"));
    EXPECT_FALSE(parse_ipv4("1..3.4"));
    EXPECT_FALSE(parse_ipv4("01234.1.1.1"));
    EXPECT_FALSE(parse_ipv4("-1.1.1.1"));
    auto m = parse_mac("fe:dc:ba:98:76:54");
    ASSERT_TRUE(m);
    EXPECT_EQ(format_mac(*m), "fe:dc:ba:98:76:54");
}

TEST(NetOptions, RomfileAndLegacyApplyToEitherBackend)
{
    auto u = parse_net_option("user,romfile=/usr/lib/ipxe/qemu/pxe-virtio.rom,legacy=off");
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->romfile, "/usr/lib/ipxe/qemu/pxe-virtio.rom");
    EXPECT_FALSE(u->legacy);
    auto t = parse_net_option("tap=tap0,romfile=rom.bin");
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->romfile, "rom.bin");
    EXPECT_TRUE(t->legacy);
    EXPECT_FALSE(parse_net_option("user,legacy=maybe"));
}
