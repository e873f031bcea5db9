// E1000 transmit: the descriptor ring, packet gathering, checksum insertion and TCP segmentation (SDM 3.3-3.5).
#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/net/e1000.h"
#include "net/checksum.h"
#include "net/packet.h"

namespace hako::devices::net {

using namespace e1000;
using memory::GuestAddr;

namespace {
constexpr size_t ETH_MIN_PADDED = 60;

} // namespace

void E1000::process_tx()
{
    uint32_t const n = reg(TDLEN) / TX_DESC_SIZE;
    uint32_t head = reg(TDH);
    uint32_t const tail = reg(TDT);
    if (head == tail)
        return;
    uint64_t const base = static_cast<uint64_t>(reg(TDBAH)) << 32 | reg(TDBAL);
    if (n == 0 || head >= n || tail >= n || base > UINT64_MAX - reg(TDLEN)) {
        ++m_stats.bad_rings;
        HAKO_WARN_RATELIMITED("e1000: transmit ring unusable (TDLEN {:#x}, TDH {}, TDT {})", reg(TDLEN), head, tail);
        return;
    }
    bool written_back = false;
    // At most one pass over the ring: TDT cannot move while we hold the lock.
    for (uint32_t budget = n; head != tail && budget > 0; --budget) {
        GuestAddr const addr(base + static_cast<uint64_t>(head) * TX_DESC_SIZE);
        std::array<uint8_t, TX_DESC_SIZE> desc {};
        if (!m_mem.read(addr, desc)) {
            ++m_stats.tx_bad_descriptors;
            HAKO_WARN_RATELIMITED("e1000: transmit descriptor {} at {:#x} is outside guest RAM", head, addr.value());
        } else if (uint8_t const cmd = tx_descriptor(desc); cmd & (TXD_CMD_RS | TXD_CMD_RPS)) {
            // Write back DD in the status byte (the same place in every descriptor type).
            std::array<uint8_t, 1> const sta { static_cast<uint8_t>(desc[12] | TXD_STAT_DD) };
            if (m_mem.write(GuestAddr(addr.value() + 12), sta))
                written_back = true;
            else
                ++m_stats.tx_bad_descriptors;
        }
        head = (head + 1) % n;
        reg(TDH) = head;
    }
    set_cause(ICR_TXQE | (written_back ? ICR_TXDW : 0));
}

uint8_t E1000::tx_descriptor(std::span<uint8_t const, TX_DESC_SIZE> d)
{
    uint8_t const cmd = d[11];
    uint64_t const addr = get_le64(&d[0]);
    uint16_t const special = get_le16(&d[14]);
    if (!(cmd & TXD_CMD_DEXT)) {
        // Legacy: addr, length[2], cso, cmd, sta, css, special.
        if (!m_tx.started) {
            m_tx = {};
            m_tx.started = true;
            m_tx.legacy = true;
        }
        tx_append(addr, get_le16(&d[8]));
        if (cmd & TXD_CMD_EOP)
            tx_finish(cmd, d[10], d[13], special);
        return cmd;
    }
    uint32_t const cmd_len = get_le32(&d[8]);
    uint32_t const dtyp = (cmd_len & TXD_DTYP_MASK) >> TXD_DTYP_SHIFT;
    if (dtyp == TXD_DTYP_CONTEXT) {
        m_tx_ctx.ipcss = d[0];
        m_tx_ctx.ipcso = d[1];
        m_tx_ctx.ipcse = get_le16(&d[2]);
        m_tx_ctx.tucss = d[4];
        m_tx_ctx.tucso = d[5];
        m_tx_ctx.tucse = get_le16(&d[6]);
        m_tx_ctx.paylen = cmd_len & TXD_LEN_MASK;
        m_tx_ctx.tucmd = cmd;
        m_tx_ctx.hdr_len = d[13];
        m_tx_ctx.mss = get_le16(&d[14]);
        return cmd;
    }
    if (dtyp == TXD_DTYP_DATA) {
        if (!m_tx.started) {
            m_tx = {};
            m_tx.started = true;
            m_tx.tse = cmd & TXD_CMD_TSE;
            m_tx.popts = d[13]; // valid in the packet's first data descriptor
        }
        tx_append(addr, cmd_len & TXD_LEN_MASK);
        if (cmd & TXD_CMD_EOP)
            tx_finish(cmd, 0, 0, special);
        return cmd;
    }
    ++m_stats.tx_bad_descriptors;
    HAKO_WARN_RATELIMITED("e1000: transmit descriptor of unknown type {}", dtyp);
    return cmd;
}

void E1000::tx_append(uint64_t addr, uint32_t len)
{
    if (len == 0) {
        ++m_stats.tx_zero_length;
        return;
    }
    if (m_tx.bad)
        return;
    if (len > TX_PACKET_MAX - m_tx.len) {
        m_tx.bad = true;
        HAKO_WARN_RATELIMITED("e1000: transmit packet longer than {} bytes", TX_PACKET_MAX);
        return;
    }
    if (!m_mem.read(GuestAddr(addr), std::span<uint8_t>(m_tx_buf).subspan(m_tx.len, len))) {
        m_tx.bad = true;
        ++m_stats.tx_bad_descriptors;
        HAKO_WARN_RATELIMITED("e1000: transmit buffer [{:#x}, +{:#x}) is outside guest RAM", addr, len);
        return;
    }
    m_tx.len += len;
}

void E1000::tx_finish(uint8_t cmd, uint8_t legacy_cso, uint8_t legacy_css, uint16_t special)
{
    bool const vlan = (cmd & TXD_CMD_VLE) && (reg(CTRL) & CTRL_VME);
    TxPacket const p = m_tx;
    if (p.bad) {
        m_tx = {};
        ++m_stats.tx_dropped;
        return;
    }
    auto frame = std::span<uint8_t>(m_tx_buf).first(p.len);
    if (p.tse && !p.legacy) {
        tx_segment_tso(p.len, vlan, special); // reads m_tx.popts
        m_tx = {};
        return;
    }
    m_tx = {};
    if (p.legacy && (cmd & TXD_CMD_IC)) {
        if (tx_insert_checksum(frame, legacy_css, legacy_cso, 0))
            ++m_stats.tx_checksums;
    } else if (!p.legacy) {
        if ((p.popts & TXD_POPTS_IXSM) && tx_insert_checksum(frame, m_tx_ctx.ipcss, m_tx_ctx.ipcso, m_tx_ctx.ipcse))
            ++m_stats.tx_checksums;
        if ((p.popts & TXD_POPTS_TXSM) && tx_insert_checksum(frame, m_tx_ctx.tucss, m_tx_ctx.tucso, m_tx_ctx.tucse))
            ++m_stats.tx_checksums;
    }
    tx_send(frame, vlan, special);
}

bool E1000::tx_insert_checksum(std::span<uint8_t> frame, uint32_t css, uint32_t cso, uint32_t cse)
{
    size_t const end = cse ? std::min<size_t>(size_t { cse } + 1, frame.size()) : frame.size();
    if (css >= end || size_t { cso } + 2 > frame.size()) {
        HAKO_WARN_RATELIMITED("e1000: checksum offsets start {} offset {} end {} outside a {}-byte packet", css, cso,
            cse, frame.size());
        return false;
    }
    uint16_t c = hako::net::inet_checksum(hako::net::inet_sum(frame.subspan(css, end - css)));
    if (c == 0)
        c = 0xffff; // the same value in ones-complement; UDP reserves 0 for "no checksum"
    put_be16(&frame[cso], c);
    return true;
}

void E1000::tx_segment_tso(size_t total, bool vlan, uint16_t vlan_tci)
{
    TxContext const& c = m_tx_ctx;
    bool const ipv4 = c.tucmd & TUCMD_IP;
    bool const tcp = c.tucmd & TUCMD_TCP;
    uint32_t const hdr = c.hdr_len;
    // The header must hold the fields rewritten per segment.
    bool const ip_ok = uint32_t { c.ipcss } + (ipv4 ? 20 : hako::net::IPV6_HEADER_LEN) <= hdr;
    bool const l4_ok = uint32_t { c.tucss } + (tcp ? 20 : 8) <= hdr;
    if (hdr == 0 || hdr > total || c.mss == 0 || !ip_ok || !l4_ok || hdr + uint32_t { c.mss } > TX_FRAME_MAX) {
        ++m_stats.tx_dropped;
        stat_add(STAT_TSCTFC);
        HAKO_WARN_RATELIMITED("e1000: bad TSO context (header {} bytes, MSS {}, IP at {}, L4 at {}) for a {}-byte "
                              "packet", hdr, c.mss, c.ipcss, c.tucss, total);
        return;
    }
    uint8_t const* const src = m_tx_buf.data();
    uint16_t const ip_id = get_be16(src + c.ipcss + 4);
    uint32_t const seq = tcp ? get_be32(src + c.tucss + 4) : 0;
    uint8_t const tcp_flags = tcp ? src[c.tucss + 13] : 0;
    size_t const payload = total - hdr;
    size_t offset = 0;
    uint16_t index = 0;
    ++m_stats.tx_tso_packets;
    stat_add(STAT_TSCTC);
    // At most total / mss + 1 segments: bounded by TX_PACKET_MAX.
    do {
        size_t const chunk = std::min<size_t>(c.mss, payload - offset);
        bool const last = offset + chunk >= payload;
        uint8_t* const f = m_tx_frame.data();
        std::memcpy(f, src, hdr);
        std::memcpy(f + hdr, src + hdr + offset, chunk);
        uint32_t const flen = static_cast<uint32_t>(hdr + chunk);
        auto frame = std::span<uint8_t>(m_tx_frame).first(flen);
        if (ipv4) {
            put_be16(f + c.ipcss + 2, static_cast<uint16_t>(flen - c.ipcss));
            put_be16(f + c.ipcss + 4, static_cast<uint16_t>(ip_id + index));
        } else {
            put_be16(f + c.ipcss + 4, static_cast<uint16_t>(flen - c.ipcss - hako::net::IPV6_HEADER_LEN));
        }
        if (tcp) {
            put_be32(f + c.tucss + 4, seq + static_cast<uint32_t>(offset));
            if (!last)
                f[c.tucss + 13] = static_cast<uint8_t>(tcp_flags & ~(hako::net::TCP_FLAG_FIN | hako::net::TCP_FLAG_PSH));
        } else {
            put_be16(f + c.tucss + 4, static_cast<uint16_t>(flen - c.tucss));
        }
        if ((m_tx.popts & TXD_POPTS_IXSM) && ipv4 && tx_insert_checksum(frame, c.ipcss, c.ipcso, c.ipcse))
            ++m_stats.tx_checksums;
        if ((m_tx.popts & TXD_POPTS_TXSM) && size_t { c.tucso } + 2 <= flen) {
            // The driver left the pseudo-header sum without the length in the field: add this segment's length.
            uint32_t const l4_len = flen - c.tucss;
            put_be16(f + c.tucso, hako::net::inet_fold(uint32_t { get_be16(f + c.tucso) } + l4_len));
            if (tx_insert_checksum(frame, c.tucss, c.tucso, c.tucse))
                ++m_stats.tx_checksums;
        }
        tx_send(frame, vlan, vlan_tci);
        ++m_stats.tx_tso_segments;
        offset += chunk;
        ++index;
    } while (offset < payload);
}

void E1000::tx_send(std::span<uint8_t const> frame, bool vlan, uint16_t vlan_tci)
{
    size_t const tag = vlan ? 4 : 0;
    if (frame.size() < hako::net::ETH_HEADER_LEN || frame.size() + tag > TX_FRAME_MAX) {
        ++m_stats.tx_dropped;
        HAKO_WARN_RATELIMITED("e1000: dropped a {}-byte transmit frame", frame.size());
        return;
    }
    std::span<uint8_t const> out = frame;
    bool const pad = (reg(TCTL) & TCTL_PSP) && frame.size() + tag < ETH_MIN_PADDED;
    if (vlan || pad) {
        uint8_t* w = m_tx_wire.data();
        std::memcpy(w, frame.data(), 12);
        size_t len = 12;
        if (vlan) {
            put_be16(w + 12, static_cast<uint16_t>(reg(VET)));
            put_be16(w + 14, vlan_tci);
            len += 4;
        }
        std::memcpy(w + len, frame.data() + 12, frame.size() - 12);
        len += frame.size() - 12;
        if (pad && len < ETH_MIN_PADDED) {
            std::memset(w + len, 0, ETH_MIN_PADDED - len);
            len = ETH_MIN_PADDED;
        }
        out = std::span<uint8_t const>(m_tx_wire).first(len);
    }
    m_backend->send(out);
    ++m_stats.tx_frames;
    m_stats.tx_bytes += out.size();
    size_t const wire_len = out.size() + 4; // the FCS
    stat_add(STAT_GPTC);
    stat_add(STAT_TPT);
    stat_add64(STAT_GOTCL, wire_len);
    stat_add64(STAT_TOTL, wire_len);
    stat_size_bucket(STAT_PTC64, wire_len);
    stat_destination(out, STAT_BPTC, STAT_MPTC);
}

} // namespace hako::devices::net
