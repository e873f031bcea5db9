// The `--net` option: which backend (user networking through libslirp, or a host tap device), which NIC model,
// and the backend's settings. The syntax follows QEMU's -nic/-netdev where it overlaps:
//
//   user[,net=10.0.2.0/24][,host=A][,dns=A][,dhcpstart=A][,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT]...
//       [,tftp=DIR][,bootfile=NAME][,restrict=on|off][,mac=52:54:00:12:34:56][,model=virtio|e1000|...][,romfile=ROM]
//       [,legacy=on|off]
//   tap=IFNAME[,vhost=on|off][,mac=..][,model=..][,romfile=ROM][,legacy=on|off]
//
// Defaults are QEMU's: network 10.0.2.0/24, host (gateway) 10.0.2.2, DNS 10.0.2.3, first DHCP address 10.0.2.15;
// `net=` moves host, DNS and DHCP start to .2, .3 and .15 of the new network. `hostfwd` may repeat. One
// deliberate difference: a hostfwd without a host address binds 127.0.0.1, not every interface.
// This file only parses; backends and NIC models check what they support.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hako::net {

using MacAddress = std::array<uint8_t, 6>;

/// 52:54:00:12:34:56 (QEMU's first NIC) plus `nic_index` in the last byte(s).
MacAddress default_mac(unsigned nic_index);
std::string format_mac(MacAddress const& mac);
/// "aa:bb:cc:dd:ee:ff" (hex, either case). Rejects multicast addresses (bit 0 of the first byte).
[[nodiscard]] Result<MacAddress> parse_mac(std::string_view text);

/// An IPv4 address in host byte order.
struct Ipv4Address {
    uint32_t value { 0 };
    constexpr Ipv4Address() = default;
    constexpr explicit Ipv4Address(uint32_t v) : value(v) {}
    constexpr Ipv4Address(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
        : value(static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 16 | static_cast<uint32_t>(c) << 8 | d)
    {
    }
    friend constexpr bool operator==(Ipv4Address, Ipv4Address) = default;
};
std::string format_ipv4(Ipv4Address address);
/// Dotted quad, exactly four decimal parts 0-255.
[[nodiscard]] Result<Ipv4Address> parse_ipv4(std::string_view text);

enum class Protocol : uint8_t { Tcp, Udp };

/// hostfwd: connections to host_addr:host_port on the host reach guest_addr:guest_port in the guest.
struct HostForward {
    Protocol protocol { Protocol::Tcp };
    Ipv4Address host_addr { 127, 0, 0, 1 };
    uint16_t host_port { 0 };
    Ipv4Address guest_addr; // the DHCP start address unless given
    uint16_t guest_port { 0 };
};

/// User networking (libslirp) settings.
struct SlirpOptions {
    Ipv4Address network { 10, 0, 2, 0 };
    uint8_t prefix_len { 24 };
    Ipv4Address host { 10, 0, 2, 2 };        // the gateway and the host's address as the guest sees it
    Ipv4Address dns { 10, 0, 2, 3 };
    Ipv4Address dhcp_start { 10, 0, 2, 15 };
    std::vector<HostForward> host_forwards;
    std::string tftp_root;  // empty: no TFTP server
    std::string bootfile;   // DHCP boot file name (with tftp_root, for PXE)
    bool restricted { false }; // isolate the guest: no connections out, only host forwards
    std::string hostname;   // DHCP host name offered (empty: none)
};

enum class BackendKind : uint8_t { User, Tap };
enum class NicModel : uint8_t { Virtio, E1000, Rtl8139, Ne2kPci, Pcnet };
std::string_view to_string(NicModel model);

struct NetOptions {
    BackendKind backend { BackendKind::User };
    NicModel model { NicModel::Virtio };
    std::optional<MacAddress> mac; // unset: default_mac(index of the NIC)
    SlirpOptions user;             // backend == User
    std::string tap_ifname;        // backend == Tap
    bool vhost { false };          // backend == Tap
    std::string romfile;           // the NIC's PCI option ROM (e.g. iPXE's); empty: none
    bool legacy { true };          // virtio: a transitional device (1af4:1000, legacy I/O BAR); off: modern-only
                                   // 1af4:1041 (QEMU's disable-legacy=on), the ID iPXE's virtio ROM declares

    MacAddress mac_or_default(unsigned nic_index) const { return mac ? *mac : default_mac(nic_index); }
};

/// Parses one `--net` value. The error is one line naming the offending item.
[[nodiscard]] Result<NetOptions> parse_net_option(std::string_view text);

} // namespace hako::net
