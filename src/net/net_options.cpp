#include "net/net_options.h"

#include <charconv>

#include <fmt/format.h>

namespace hako::net {

namespace {

Error bad(std::string message) { return Error(ErrorKind::InvalidArgument, "--net: " + std::move(message)); }

std::optional<uint32_t> parse_uint(std::string_view text, uint32_t max)
{
    if (text.empty() || text.size() > 10)
        return std::nullopt;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
    if (ec != std::errc() || end != text.data() + text.size() || v > max)
        return std::nullopt;
    return v;
}

std::optional<int> hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return std::nullopt;
}

std::optional<bool> parse_on_off(std::string_view v)
{
    if (v == "on" || v == "yes" || v == "true")
        return true;
    if (v == "off" || v == "no" || v == "false")
        return false;
    return std::nullopt;
}

uint32_t prefix_mask(uint8_t prefix_len)
{
    return prefix_len == 0 ? 0 : ~uint32_t { 0 } << (32 - prefix_len);
}

/// [ADDR]:PORT with an empty ADDR allowed.
Result<std::pair<std::optional<Ipv4Address>, uint16_t>> parse_endpoint(std::string_view text, std::string_view what)
{
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
        return bad(fmt::format("hostfwd: {} '{}' is not [ADDRESS]:PORT", what, text));
    std::optional<Ipv4Address> addr;
    if (colon > 0) {
        auto a = parse_ipv4(text.substr(0, colon));
        if (!a)
            return bad(fmt::format("hostfwd: {} address '{}' is not an IPv4 address", what, text.substr(0, colon)));
        addr = *a;
    }
    auto port = parse_uint(text.substr(colon + 1), 65535);
    if (!port || *port == 0)
        return bad(fmt::format("hostfwd: {} port '{}' is not a number in 1-65535", what, text.substr(colon + 1)));
    return std::pair { addr, static_cast<uint16_t>(*port) };
}

struct PendingForward {
    HostForward fwd;
    bool guest_addr_given { false };
};

/// [tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT
Result<PendingForward> parse_hostfwd(std::string_view text)
{
    PendingForward p;
    std::string_view rest = text;
    if (rest.starts_with("tcp:")) {
        rest.remove_prefix(4);
    } else if (rest.starts_with("udp:")) {
        p.fwd.protocol = Protocol::Udp;
        rest.remove_prefix(4);
    } else if (rest.starts_with(":")) {
        rest.remove_prefix(1); // protocol omitted: tcp
    } else {
        return bad(fmt::format("hostfwd '{}': expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", text));
    }
    auto dash = rest.find('-');
    if (dash == std::string_view::npos)
        return bad(fmt::format("hostfwd '{}': expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", text));
    auto host = TRY(parse_endpoint(rest.substr(0, dash), "host"));
    auto guest = TRY(parse_endpoint(rest.substr(dash + 1), "guest"));
    if (host.first)
        p.fwd.host_addr = *host.first;
    p.fwd.host_port = host.second;
    if (guest.first) {
        p.fwd.guest_addr = *guest.first;
        p.guest_addr_given = true;
    }
    p.fwd.guest_port = guest.second;
    return p;
}

bool in_network(Ipv4Address a, SlirpOptions const& u)
{
    return (a.value & prefix_mask(u.prefix_len)) == u.network.value;
}

} // namespace

MacAddress default_mac(unsigned nic_index)
{
    MacAddress mac { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    uint32_t low = (static_cast<uint32_t>(mac[3]) << 16 | static_cast<uint32_t>(mac[4]) << 8 | mac[5]) + nic_index;
    mac[3] = static_cast<uint8_t>(low >> 16);
    mac[4] = static_cast<uint8_t>(low >> 8);
    mac[5] = static_cast<uint8_t>(low);
    return mac;
}

std::string format_mac(MacAddress const& m)
{
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

Result<MacAddress> parse_mac(std::string_view text)
{
    MacAddress mac {};
    if (text.size() != 17)
        return bad(fmt::format("mac '{}' is not six hex pairs like 52:54:00:12:34:56", text));
    for (size_t i = 0; i < 6; ++i) {
        auto hi = hex_digit(text[3 * i]);
        auto lo = hex_digit(text[3 * i + 1]);
        if (!hi || !lo || (i < 5 && text[3 * i + 2] != ':'))
            return bad(fmt::format("mac '{}' is not six hex pairs like 52:54:00:12:34:56", text));
        mac[i] = static_cast<uint8_t>(*hi << 4 | *lo);
    }
    if (mac[0] & 1)
        return bad(fmt::format("mac '{}' is a multicast address (bit 0 of the first byte is set)", text));
    return mac;
}

std::string format_ipv4(Ipv4Address a)
{
    return fmt::format("{}.{}.{}.{}", a.value >> 24, (a.value >> 16) & 0xff, (a.value >> 8) & 0xff, a.value & 0xff);
}

Result<Ipv4Address> parse_ipv4(std::string_view text)
{
    uint32_t value = 0;
    std::string_view rest = text;
    for (int part = 0; part < 4; ++part) {
        auto dot = rest.find('.');
        std::string_view digits = part == 3 ? rest : rest.substr(0, dot);
        if (part < 3 && dot == std::string_view::npos)
            return bad(fmt::format("'{}' is not an IPv4 address", text));
        auto v = digits.size() <= 3 ? parse_uint(digits, 255) : std::nullopt;
        if (!v)
            return bad(fmt::format("'{}' is not an IPv4 address", text));
        value = value << 8 | *v;
        if (part < 3)
            rest.remove_prefix(dot + 1);
    }
    return Ipv4Address(value);
}

std::string_view to_string(NicModel model)
{
    switch (model) {
    case NicModel::Virtio: return "virtio";
    case NicModel::E1000: return "e1000";
    case NicModel::Rtl8139: return "rtl8139";
    case NicModel::Ne2kPci: return "ne2k_pci";
    case NicModel::Pcnet: return "pcnet";
    }
    return "?";
}

Result<NetOptions> parse_net_option(std::string_view text)
{
    NetOptions o;
    std::vector<std::string_view> items;
    for (size_t pos = 0;;) {
        auto comma = text.find(',', pos);
        items.push_back(text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
        if (comma == std::string_view::npos)
            break;
        pos = comma + 1;
    }

    std::string_view const first = items[0];
    if (first == "user") {
        o.backend = BackendKind::User;
    } else if (first == "tap" || first.starts_with("tap=")) {
        o.backend = BackendKind::Tap;
        if (first.size() > 4)
            o.tap_ifname = std::string(first.substr(4));
    } else {
        return bad(fmt::format("'{}' is not a backend: expected 'user' or 'tap=IFNAME'", first));
    }

    std::optional<Ipv4Address> host, dns, dhcp_start;
    std::vector<PendingForward> forwards;
    bool net_given = false;
    for (size_t i = 1; i < items.size(); ++i) {
        std::string_view const item = items[i];
        auto eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return bad(fmt::format("'{}' is not KEY=VALUE", item));
        std::string_view const key = item.substr(0, eq);
        std::string_view const value = item.substr(eq + 1);
        bool const user_key = key == "net" || key == "host" || key == "dns" || key == "dhcpstart" || key == "hostfwd"
            || key == "tftp" || key == "bootfile" || key == "restrict" || key == "hostname";
        bool const tap_key = key == "vhost" || key == "ifname";
        if (user_key && o.backend != BackendKind::User)
            return bad(fmt::format("'{}' applies to user networking only", key));
        if (tap_key && o.backend != BackendKind::Tap)
            return bad(fmt::format("'{}' applies to tap networking only", key));

        if (key == "mac") {
            o.mac = TRY(parse_mac(value));
        } else if (key == "model") {
            if (value == "virtio" || value == "virtio-net" || value == "virtio-net-pci")
                o.model = NicModel::Virtio;
            else if (value == "e1000")
                o.model = NicModel::E1000;
            else if (value == "rtl8139")
                o.model = NicModel::Rtl8139;
            else if (value == "ne2k_pci")
                o.model = NicModel::Ne2kPci;
            else if (value == "pcnet")
                o.model = NicModel::Pcnet;
            else
                return bad(fmt::format("model '{}' is not one of virtio, e1000, rtl8139, ne2k_pci, pcnet", value));
        } else if (key == "net") {
            auto slash = value.find('/');
            o.user.network = TRY(parse_ipv4(value.substr(0, slash)));
            if (slash != std::string_view::npos) {
                auto len = parse_uint(value.substr(slash + 1), 32);
                if (!len)
                    return bad(fmt::format("net '{}': the prefix length is not a number in 0-32", value));
                o.user.prefix_len = static_cast<uint8_t>(*len);
            }
            // Room for .2, .3 and .15 and a broadcast address above them.
            if (o.user.prefix_len < 8 || o.user.prefix_len > 27)
                return bad(fmt::format("net '{}': the prefix length must be 8-27", value));
            if (o.user.network.value & ~prefix_mask(o.user.prefix_len))
                return bad(fmt::format("net '{}': host bits are set in the network address", value));
            net_given = true;
        } else if (key == "host") {
            host = TRY(parse_ipv4(value));
        } else if (key == "dns") {
            dns = TRY(parse_ipv4(value));
        } else if (key == "dhcpstart") {
            dhcp_start = TRY(parse_ipv4(value));
        } else if (key == "hostfwd") {
            forwards.push_back(TRY(parse_hostfwd(value)));
        } else if (key == "tftp") {
            if (value.empty())
                return bad("tftp needs a directory");
            o.user.tftp_root = std::string(value);
        } else if (key == "bootfile") {
            if (value.empty())
                return bad("bootfile needs a file name");
            o.user.bootfile = std::string(value);
        } else if (key == "hostname") {
            o.user.hostname = std::string(value);
        } else if (key == "restrict") {
            auto v = parse_on_off(value);
            if (!v)
                return bad(fmt::format("restrict '{}' is not on or off", value));
            o.user.restricted = *v;
        } else if (key == "vhost") {
            auto v = parse_on_off(value);
            if (!v)
                return bad(fmt::format("vhost '{}' is not on or off", value));
            o.vhost = *v;
        } else if (key == "legacy") {
            auto v = parse_on_off(value);
            if (!v)
                return bad(fmt::format("legacy '{}' is not on or off", value));
            o.legacy = *v;
        } else if (key == "romfile") {
            o.romfile = std::string(value);
        } else if (key == "ifname") {
            o.tap_ifname = std::string(value);
        } else {
            return bad(fmt::format("unknown key '{}'", key));
        }
    }

    if (o.backend == BackendKind::Tap) {
        if (o.tap_ifname.empty())
            return bad("tap needs an interface name: tap=IFNAME");
        if (o.tap_ifname.size() > 15)
            return bad(fmt::format("tap interface name '{}' is longer than 15 characters", o.tap_ifname));
        return o;
    }

    SlirpOptions& u = o.user;
    if (net_given) {
        u.host = Ipv4Address(u.network.value + 2);
        u.dns = Ipv4Address(u.network.value + 3);
        u.dhcp_start = Ipv4Address(u.network.value + 15);
    }
    if (host)
        u.host = *host;
    if (dns)
        u.dns = *dns;
    if (dhcp_start)
        u.dhcp_start = *dhcp_start;
    uint32_t const broadcast = u.network.value | ~prefix_mask(u.prefix_len);
    auto check_inside = [&](Ipv4Address a, std::string_view what) -> Result<void> {
        if (!in_network(a, u) || a == u.network || a.value == broadcast)
            return bad(fmt::format("{} {} is not a host address in {}/{}", what, format_ipv4(a), format_ipv4(u.network),
                u.prefix_len));
        return ok();
    };
    TRY(check_inside(u.host, "host"));
    TRY(check_inside(u.dns, "dns"));
    TRY(check_inside(u.dhcp_start, "dhcpstart"));
    if (u.host == u.dns || u.host == u.dhcp_start || u.dns == u.dhcp_start)
        return bad("host, dns and dhcpstart must be different addresses");
    if (!u.bootfile.empty() && u.tftp_root.empty())
        return bad("bootfile needs tftp=DIR to serve it");
    for (auto& p : forwards) {
        if (!p.guest_addr_given)
            p.fwd.guest_addr = u.dhcp_start;
        else
            TRY(check_inside(p.fwd.guest_addr, "hostfwd guest address"));
        u.host_forwards.push_back(p.fwd);
    }
    return o;
}

} // namespace hako::net
