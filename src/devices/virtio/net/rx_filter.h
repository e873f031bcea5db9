// RxFilter: which received frames virtio-net hands to the guest, as the driver set it through the control queue
// (VIRTIO 1.2 section 5.1.6.5): the RX mode (VIRTIO_NET_CTRL_RX: promiscuous, all-multicast and, with
// CTRL_RX_EXTRA, all-unicast / no-multicast / no-unicast / no-broadcast), the MAC address and the unicast and
// multicast filter tables (VIRTIO_NET_CTRL_MAC), and the VLAN filter (VIRTIO_NET_CTRL_VLAN). Also parses those
// commands: command() takes a command's class, code and data and returns the ack (VIRTIO_NET_OK / VIRTIO_NET_ERR).
//
// After reset() the device is promiscuous with empty tables, as QEMU starts it (a driver without CTRL_RX gets every
// frame); tagged frames pass unless the driver negotiated CTRL_VLAN, which starts with no VLAN allowed (the driver
// adds the VLANs it uses). A table longer than MAC_TABLE_ENTRIES turns into "accept all" of its kind (QEMU's
// overflow). Filtering, in order: promiscuous passes everything; a tagged frame needs its VLAN; then broadcast,
// multicast and unicast destinations by the mode flags and tables; unicast to the device's MAC always passes.
// Not thread-safe: VirtioNet calls it under its lock. Commands are from a hostile guest: every length is checked.
#pragma once

#include <bitset>
#include <cstdint>
#include <span>
#include <vector>

#include "net/backend.h"
#include "net/net_options.h"

namespace hako::devices::virtio::net {

// Control command classes and codes (section 5.1.6.5).
constexpr uint8_t VIRTIO_NET_CTRL_RX = 0;
constexpr uint8_t VIRTIO_NET_CTRL_RX_PROMISC = 0;
constexpr uint8_t VIRTIO_NET_CTRL_RX_ALLMULTI = 1;
constexpr uint8_t VIRTIO_NET_CTRL_RX_ALLUNI = 2;
constexpr uint8_t VIRTIO_NET_CTRL_RX_NOMULTI = 3;
constexpr uint8_t VIRTIO_NET_CTRL_RX_NOUNI = 4;
constexpr uint8_t VIRTIO_NET_CTRL_RX_NOBCAST = 5;
constexpr uint8_t VIRTIO_NET_CTRL_MAC = 1;
constexpr uint8_t VIRTIO_NET_CTRL_MAC_TABLE_SET = 0;
constexpr uint8_t VIRTIO_NET_CTRL_MAC_ADDR_SET = 1;
constexpr uint8_t VIRTIO_NET_CTRL_VLAN = 2;
constexpr uint8_t VIRTIO_NET_CTRL_VLAN_ADD = 0;
constexpr uint8_t VIRTIO_NET_CTRL_VLAN_DEL = 1;
constexpr uint8_t VIRTIO_NET_CTRL_ANNOUNCE = 3;
constexpr uint8_t VIRTIO_NET_CTRL_MQ = 4;
constexpr uint8_t VIRTIO_NET_CTRL_GUEST_OFFLOADS = 5;
constexpr uint8_t VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET = 0;
constexpr uint8_t VIRTIO_NET_OK = 0;
constexpr uint8_t VIRTIO_NET_ERR = 1;

class RxFilter {
public:
    static constexpr size_t MAC_TABLE_ENTRIES = 64;
    static constexpr uint16_t MAX_VLAN = 4095;

    /// What the driver negotiated that changes which commands are valid.
    struct Negotiated {
        bool rx_extra { false }; // VIRTIO_NET_F_CTRL_RX_EXTRA
        bool mac_addr { false }; // VIRTIO_NET_F_CTRL_MAC_ADDR
        bool vlan { false };     // VIRTIO_NET_F_CTRL_VLAN
        bool rx { false };       // VIRTIO_NET_F_CTRL_RX
    };

    explicit RxFilter(hako::net::MacAddress mac) { reset(mac, {}); }

    /// Device reset or activation: promiscuous, empty tables, the given MAC, VLANs as described above.
    void reset(hako::net::MacAddress mac, Negotiated negotiated);
    /// Whether a frame (ethernet header first) goes to the guest.
    bool accepts(std::span<uint8_t const> frame) const;
    /// Runs one command of class VIRTIO_NET_CTRL_RX, _MAC or _VLAN. \return VIRTIO_NET_OK or VIRTIO_NET_ERR
    uint8_t command(uint8_t cls, uint8_t code, std::span<uint8_t const> data);

    hako::net::MacAddress mac() const { return m_mac; }
    bool promiscuous() const { return m_promisc; }

private:
    uint8_t rx_command(uint8_t code, std::span<uint8_t const> data);
    uint8_t mac_table_set(std::span<uint8_t const> data);

    Negotiated m_negotiated;
    hako::net::MacAddress m_mac {};
    bool m_promisc { true };
    bool m_allmulti { false };
    bool m_alluni { false };
    bool m_nomulti { false };
    bool m_nouni { false };
    bool m_nobcast { false };
    bool m_uni_overflow { false };
    bool m_multi_overflow { false };
    std::vector<hako::net::MacAddress> m_uni;
    std::vector<hako::net::MacAddress> m_multi;
    std::bitset<MAX_VLAN + 1> m_vlans;
};

} // namespace hako::devices::virtio::net
