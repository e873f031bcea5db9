// E1000 receive: address and VLAN filtering, the descriptor ring, checksum verification (SDM 3.2, 13.5).
#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/net/e1000.h"
#include "net/checksum.h"

namespace hako::devices::net {

using namespace e1000;
using memory::GuestAddr;

namespace {
constexpr size_t ETH_MIN_PADDED = 60;
constexpr size_t MAX_FRAME_NO_LPE = 1522; // with FCS and a VLAN tag
constexpr uint16_t ETHERTYPE_IPV4 = 0x0800;
constexpr uint8_t IPPROTO_TCP_ = 6;
constexpr uint8_t IPPROTO_UDP_ = 17;

} // namespace

uint32_t E1000::rx_buffer_size() const
{
    uint32_t const rctl = reg(RCTL);
    uint32_t const bsize = (rctl >> RCTL_BSIZE_SHIFT) & 3;
    if (rctl & RCTL_BSEX) {
        static constexpr uint32_t EXTENDED[4] = { 2048, 16384, 8192, 4096 }; // 00 is reserved: 2048
        return EXTENDED[bsize];
    }
    static constexpr uint32_t NORMAL[4] = { 2048, 1024, 512, 256 };
    return NORMAL[bsize];
}

bool E1000::rx_accept(std::span<uint8_t const> frame) const
{
    uint32_t const rctl = reg(RCTL);
    uint8_t const* dst = frame.data();
    // VLAN filter (13.5.4): a tagged frame's VLAN ID must be in the table.
    if ((rctl & RCTL_VFE) && get_be16(dst + 12) == (reg(VET) & 0xffff) && frame.size() >= 16) {
        uint16_t const vid = get_be16(dst + 14) & 0xfff;
        if (!((reg(VFTA + 4 * (vid >> 5)) >> (vid & 31)) & 1))
            return false;
    }
    if (is_broadcast(frame) && (rctl & RCTL_BAM))
        return true;
    if (dst[0] & 1) {
        if (rctl & RCTL_MPE)
            return true;
        // The multicast table: 12 bits of the address chosen by RCTL.MO index a 4096-bit table.
        static constexpr unsigned SHIFT[4] = { 4, 3, 2, 0 };
        unsigned const shift = SHIFT[(rctl >> RCTL_MO_SHIFT) & 3];
        uint32_t const hash = ((static_cast<uint32_t>(dst[5]) << 8 | dst[4]) >> shift) & 0xfff;
        return (reg(MTA + 4 * (hash >> 5)) >> (hash & 31)) & 1;
    }
    if (rctl & RCTL_UPE)
        return true;
    uint32_t const lo = get_le32(dst);
    uint32_t const hi = get_le16(dst + 4);
    for (unsigned i = 0; i < RA_ENTRIES; ++i) {
        uint32_t const rah = reg(RA + 8 * i + 4);
        // AV set and AS (bits 17:16) = 00: a destination address.
        if ((rah & RAH_AV) && ((rah >> 16) & 3) == 0 && (rah & 0xffff) == hi && reg(RA + 8 * i) == lo)
            return true;
    }
    return false;
}

void E1000::rx_checksum(std::span<uint8_t const> f, uint8_t& status, uint8_t& errors) const
{
    uint32_t const rxcsum = reg(RXCSUM);
    if (!(rxcsum & (RXCSUM_IPOFL | RXCSUM_TUOFL))) {
        status |= RXD_STAT_IXSM;
        return;
    }
    // IPv4 in an untagged (or stripped) Ethernet II frame only; anything else gets no indication.
    if (f.size() < 14 + 20 || get_be16(&f[12]) != ETHERTYPE_IPV4 || (f[14] >> 4) != 4)
        return;
    size_t const ihl = size_t { f[14] & 0xfu } * 4;
    size_t const total = get_be16(&f[16]);
    if (ihl < 20 || total < ihl || 14 + total > f.size())
        return;
    auto const ip = f.subspan(14, ihl);
    if (rxcsum & RXCSUM_IPOFL) {
        status |= RXD_STAT_IPCS;
        if (hako::net::inet_fold(hako::net::inet_sum(ip)) != 0xffff)
            errors |= RXD_ERR_IPE;
    }
    uint8_t const proto = f[14 + 9];
    bool const fragment = (get_be16(&f[14 + 6]) & 0x3fff) != 0; // MF or a fragment offset
    if (!(rxcsum & RXCSUM_TUOFL) || fragment || (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_))
        return;
    auto const l4 = f.subspan(14 + ihl, total - ihl);
    if (proto == IPPROTO_UDP_ && (l4.size() < 8 || get_be16(&l4[6]) == 0))
        return; // no UDP checksum to check
    if (proto == IPPROTO_TCP_ && l4.size() < 20)
        return;
    // Pseudo-header: source, destination, protocol, length.
    uint32_t sum = hako::net::inet_sum(f.subspan(14 + 12, 8));
    sum = hako::net::inet_sum(l4, sum + proto + static_cast<uint32_t>(l4.size()));
    status |= RXD_STAT_TCPCS;
    if (hako::net::inet_fold(sum) != 0xffff)
        errors |= RXD_ERR_TCPE;
}

void E1000::count_rx(std::span<uint8_t const> frame, size_t wire_len)
{
    ++m_stats.rx_frames;
    m_stats.rx_bytes += frame.size();
    stat_add(STAT_GPRC);
    stat_add(STAT_TPR);
    stat_add64(STAT_GORCL, wire_len);
    stat_add64(STAT_TORL, wire_len);
    stat_size_bucket(STAT_PRC64, wire_len);
    stat_destination(frame, STAT_BPRC, STAT_MPRC);
}

bool E1000::receive(std::span<uint8_t const> frame)
{
    std::lock_guard lock(m_state_lock);
    if (!(reg(RCTL) & RCTL_EN)) {
        ++m_stats.rx_dropped_disabled;
        return true;
    }
    if (frame.size() < hako::net::ETH_MIN_FRAME_LEN || frame.size() > RX_FRAME_MAX) {
        ++m_stats.rx_dropped_bad;
        return true;
    }
    if (!rx_accept(frame)) {
        ++m_stats.rx_filtered;
        return true;
    }

    // The frame as the driver will see it: tag stripped (CTRL.VME), padded, FCS appended (unless SECRC).
    uint8_t* const b = m_rx_buf.data();
    size_t len = frame.size();
    bool vlan = false;
    uint16_t special = 0;
    if ((reg(CTRL) & CTRL_VME) && len >= 18 && get_be16(&frame[12]) == (reg(VET) & 0xffff)) {
        vlan = true;
        special = get_be16(&frame[14]);
        std::memcpy(b, frame.data(), 12);
        std::memcpy(b + 12, frame.data() + 16, len - 16);
        len -= 4;
    } else {
        std::memcpy(b, frame.data(), len);
    }
    if (len < ETH_MIN_PADDED) {
        std::memset(b + len, 0, ETH_MIN_PADDED - len);
        len = ETH_MIN_PADDED;
    }
    size_t const payload_len = len;
    if (!(reg(RCTL) & RCTL_SECRC)) {
        put_le32(b + len, hako::net::ethernet_crc32(std::span<uint8_t const>(b, len)));
        len += 4;
    }
    size_t const wire_len = payload_len + 4 + (vlan ? 4 : 0);
    if (wire_len > (reg(RCTL) & RCTL_LPE ? RX_FRAME_MAX : MAX_FRAME_NO_LPE)) {
        stat_add(STAT_ROC);
        ++m_stats.rx_dropped_bad;
        return true;
    }

    uint32_t const n = reg(RDLEN) / RX_DESC_SIZE;
    uint32_t head = reg(RDH);
    uint32_t const tail = reg(RDT);
    uint64_t const base = static_cast<uint64_t>(reg(RDBAH)) << 32 | reg(RDBAL);
    if (n == 0 || head >= n || tail >= n || base > UINT64_MAX - reg(RDLEN)) {
        ++m_stats.bad_rings;
        HAKO_WARN_RATELIMITED("e1000: receive ring unusable (RDLEN {:#x}, RDH {}, RDT {})", reg(RDLEN), head, tail);
        ++m_stats.rx_no_buffer;
        stat_add(STAT_RNBC);
        m_rx_starved = true;
        return false;
    }
    uint32_t const bufsize = rx_buffer_size();
    uint32_t const needed = static_cast<uint32_t>((len + bufsize - 1) / bufsize);
    uint32_t const available = (tail + n - head) % n;
    if (available < needed) {
        // Not enough descriptors: the backend keeps the frame until the driver moves RDT.
        ++m_stats.rx_no_buffer;
        stat_add(STAT_RNBC);
        m_rx_starved = true;
        set_cause(ICR_RXO);
        return false;
    }

    uint8_t status_last = RXD_STAT_EOP | (vlan ? RXD_STAT_VP : 0);
    uint8_t errors_last = 0;
    rx_checksum(std::span<uint8_t const>(b, payload_len), status_last, errors_last);
    uint32_t const pcss = reg(RXCSUM) & RXCSUM_PCSS_MASK;
    uint16_t const packet_sum
        = pcss < payload_len ? hako::net::inet_fold(hako::net::inet_sum(std::span<uint8_t const>(b + pcss, payload_len - pcss)))
                             : 0;
    size_t offset = 0;
    for (uint32_t i = 0; i < needed; ++i) {
        GuestAddr const daddr(base + static_cast<uint64_t>(head) * RX_DESC_SIZE);
        size_t const chunk = std::min<size_t>(bufsize, len - offset);
        bool const last = i + 1 == needed;
        std::array<uint8_t, RX_DESC_SIZE> desc {};
        uint8_t errors = last ? errors_last : 0;
        if (!m_mem.read(daddr, desc)) {
            ++m_stats.rx_bad_descriptors;
            HAKO_WARN_RATELIMITED("e1000: receive descriptor {} at {:#x} is outside guest RAM", head, daddr.value());
        } else {
            uint64_t const buf = get_le64(&desc[0]);
            if (!m_mem.write(GuestAddr(buf), std::span<uint8_t const>(b + offset, chunk))) {
                ++m_stats.rx_bad_descriptors;
                errors |= RXD_ERR_RXE;
                HAKO_WARN_RATELIMITED("e1000: receive buffer [{:#x}, +{:#x}) is outside guest RAM", buf, chunk);
            }
            // Write back: length, packet checksum, status, errors, special (bytes 8-15).
            std::array<uint8_t, 8> wb {};
            put_le16(&wb[0], static_cast<uint16_t>(chunk));
            put_le16(&wb[2], last ? packet_sum : 0);
            wb[4] = static_cast<uint8_t>(RXD_STAT_DD | (last ? status_last : 0));
            wb[5] = errors;
            put_le16(&wb[6], last && vlan ? special : 0);
            if (!m_mem.write(GuestAddr(daddr.value() + 8), wb))
                ++m_stats.rx_bad_descriptors;
        }
        offset += chunk;
        head = (head + 1) % n;
        reg(RDH) = head;
    }
    count_rx(std::span<uint8_t const>(b, payload_len), wire_len);

    uint32_t causes = ICR_RXT0;
    // RXDMT0: the free descriptors fell to 1/2, 1/4 or 1/8 of the ring (RCTL.RDMTS).
    uint32_t const free_after = (tail + n - head) % n;
    uint32_t const rdmts = (reg(RCTL) >> RCTL_RDMTS_SHIFT) & 3;
    if (rdmts < 3 && free_after <= (n >> (rdmts + 1)))
        causes |= ICR_RXDMT0;
    set_cause(causes);
    return true;
}

} // namespace hako::devices::net
