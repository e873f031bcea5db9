#include "devices/virtio/net/rx_filter.h"

#include <algorithm>

#include "base/bytes.h"

namespace hako::devices::virtio::net {

namespace {

constexpr size_t MAC_LEN = 6;
constexpr uint16_t ETH_P_8021Q = 0x8100;

bool read_table(std::span<uint8_t const>& data, std::vector<hako::net::MacAddress>& table, bool& overflow)
{
    if (data.size() < 4)
        return false;
    uint32_t const entries = get_le32(data.data());
    data = data.subspan(4);
    if (entries > data.size() / MAC_LEN)
        return false;
    table.clear();
    overflow = entries > RxFilter::MAC_TABLE_ENTRIES;
    if (!overflow) {
        for (uint32_t i = 0; i < entries; ++i) {
            hako::net::MacAddress m {};
            std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(i * MAC_LEN), MAC_LEN, m.begin());
            table.push_back(m);
        }
    }
    data = data.subspan(size_t { entries } * MAC_LEN);
    return true;
}

} // namespace

void RxFilter::reset(hako::net::MacAddress mac, Negotiated negotiated)
{
    m_negotiated = negotiated;
    m_mac = mac;
    m_promisc = true;
    m_allmulti = m_alluni = m_nomulti = m_nouni = m_nobcast = false;
    m_uni_overflow = m_multi_overflow = false;
    m_uni.clear();
    m_multi.clear();
    if (negotiated.vlan)
        m_vlans.reset();
    else
        m_vlans.set();
}

bool RxFilter::accepts(std::span<uint8_t const> frame) const
{
    if (m_promisc)
        return true;
    if (frame.size() < hako::net::ETH_HEADER_LEN)
        return false;
    if (get_be16(&frame[12]) == ETH_P_8021Q) {
        if (frame.size() < hako::net::ETH_HEADER_LEN + 4)
            return false;
        if (!m_vlans.test(get_be16(&frame[14]) & MAX_VLAN))
            return false;
    }
    hako::net::MacAddress dst {};
    std::copy_n(frame.begin(), MAC_LEN, dst.begin());
    auto in = [&dst](std::vector<hako::net::MacAddress> const& table) {
        return std::find(table.begin(), table.end(), dst) != table.end();
    };
    if (std::all_of(dst.begin(), dst.end(), [](uint8_t b) { return b == 0xff; }))
        return !m_nobcast;
    if (dst[0] & 1) {
        if (m_nomulti)
            return false;
        return m_allmulti || m_multi_overflow || in(m_multi);
    }
    if (m_nouni)
        return false;
    return m_alluni || m_uni_overflow || dst == m_mac || in(m_uni);
}

uint8_t RxFilter::command(uint8_t cls, uint8_t code, std::span<uint8_t const> data)
{
    switch (cls) {
    case VIRTIO_NET_CTRL_RX:
        return m_negotiated.rx ? rx_command(code, data) : VIRTIO_NET_ERR;
    case VIRTIO_NET_CTRL_MAC:
        if (code == VIRTIO_NET_CTRL_MAC_TABLE_SET && m_negotiated.rx)
            return mac_table_set(data);
        if (code == VIRTIO_NET_CTRL_MAC_ADDR_SET && m_negotiated.mac_addr && data.size() == MAC_LEN) {
            std::copy(data.begin(), data.end(), m_mac.begin());
            return VIRTIO_NET_OK;
        }
        return VIRTIO_NET_ERR;
    case VIRTIO_NET_CTRL_VLAN: {
        if (!m_negotiated.vlan || data.size() != 2)
            return VIRTIO_NET_ERR;
        uint16_t const vid = get_le16(data.data());
        if (vid > MAX_VLAN)
            return VIRTIO_NET_ERR;
        if (code == VIRTIO_NET_CTRL_VLAN_ADD)
            m_vlans.set(vid);
        else if (code == VIRTIO_NET_CTRL_VLAN_DEL)
            m_vlans.reset(vid);
        else
            return VIRTIO_NET_ERR;
        return VIRTIO_NET_OK;
    }
    default:
        return VIRTIO_NET_ERR;
    }
}

uint8_t RxFilter::rx_command(uint8_t code, std::span<uint8_t const> data)
{
    if (data.size() != 1)
        return VIRTIO_NET_ERR;
    bool const on = data[0] != 0;
    bool* flag = nullptr;
    switch (code) {
    case VIRTIO_NET_CTRL_RX_PROMISC: flag = &m_promisc; break;
    case VIRTIO_NET_CTRL_RX_ALLMULTI: flag = &m_allmulti; break;
    case VIRTIO_NET_CTRL_RX_ALLUNI: flag = m_negotiated.rx_extra ? &m_alluni : nullptr; break;
    case VIRTIO_NET_CTRL_RX_NOMULTI: flag = m_negotiated.rx_extra ? &m_nomulti : nullptr; break;
    case VIRTIO_NET_CTRL_RX_NOUNI: flag = m_negotiated.rx_extra ? &m_nouni : nullptr; break;
    case VIRTIO_NET_CTRL_RX_NOBCAST: flag = m_negotiated.rx_extra ? &m_nobcast : nullptr; break;
    default: break;
    }
    if (!flag)
        return VIRTIO_NET_ERR;
    *flag = on;
    return VIRTIO_NET_OK;
}

uint8_t RxFilter::mac_table_set(std::span<uint8_t const> data)
{
    // Two tables, unicast then multicast, each le32 entries + entries * 6 bytes, and nothing after them. A bad
    // command leaves the tables as they were.
    std::vector<hako::net::MacAddress> uni, multi;
    bool uni_overflow = false, multi_overflow = false;
    if (!read_table(data, uni, uni_overflow) || !read_table(data, multi, multi_overflow) || !data.empty())
        return VIRTIO_NET_ERR;
    m_uni = std::move(uni);
    m_multi = std::move(multi);
    m_uni_overflow = uni_overflow;
    m_multi_overflow = multi_overflow;
    return VIRTIO_NET_OK;
}

} // namespace hako::devices::virtio::net
