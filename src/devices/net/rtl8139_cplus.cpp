// Rtl8139 in C+ mode: the transmit and receive descriptor rings, checksum and segmentation offload, VLAN tags and
// the tally counter dump (RTL8139C+ datasheet, "C+ mode"; the descriptor layout is the RTL8169's).
#include <algorithm>
#include <array>
#include <optional>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/net/rtl8139.h"
#include "net/checksum.h"
#include "net/packet.h"

namespace hako::devices::net {

using namespace rtl8139;
using memory::GuestAddr;

namespace {

constexpr size_t MAC_ADDRS = 12;
constexpr size_t VLAN_TAG = 4;
constexpr uint16_t ETHERTYPE_VLAN = 0x8100;

struct Descriptor {
    uint32_t opts1 { 0 };
    uint32_t opts2 { 0 };
    uint64_t addr { 0 };
};

std::optional<Descriptor> read_descriptor(memory::GuestMemory const& mem, uint64_t at)
{
    std::array<uint8_t, DESC_SIZE> d {};
    if (!mem.read(GuestAddr(at), d))
        return std::nullopt;
    return Descriptor { get_le32(&d[0]), get_le32(&d[4]), get_le64(&d[8]) };
}

bool write_le32(memory::GuestMemory const& mem, uint64_t at, uint32_t value)
{
    std::array<uint8_t, 4> b {};
    put_le32(b.data(), value);
    return mem.write(GuestAddr(at), b).has_value();
}

unsigned next_index(unsigned index, uint32_t opts1)
{
    return ((opts1 & DESC_EOR) || index + 1 >= RING_MAX) ? 0 : index + 1;
}

/// The tag as the descriptors carry it: the 802.1Q TCI in network byte order in the low 16 bits.
uint16_t swap16(uint16_t v) { return static_cast<uint16_t>(v >> 8 | v << 8); }

} // namespace

// --- Transmit ---

void Rtl8139::cp_transmit_poll(uint32_t ring_reg, unsigned& index)
{
    if (!cplus_tx() || !(m_regs[CR] & CR_TE))
        return;
    uint64_t const ring = r64(ring_reg);
    bool sent = false;
    unsigned taken = 0;
    // Each descriptor taken is handed back (OWN cleared), so the walk ends at the first one the driver has not
    // filled; a guest flipping OWN from another vCPU cannot keep it going beyond one ring's worth.
    for (; taken < RING_MAX; ++taken) {
        uint64_t const at = ring + uint64_t { index } * DESC_SIZE;
        auto d = read_descriptor(m_mem, at);
        if (!d) {
            ++m_stats.cp_tx_bad;
            HAKO_WARN_RATELIMITED("rtl8139: transmit descriptor {} at {:#x} outside guest RAM", index, at);
            set_cause(INT_TER);
            break;
        }
        if (!(d->opts1 & DESC_OWN))
            break;
        ++m_stats.cp_tx_descriptors;
        if (d->opts1 & DESC_FS) {
            if (m_cp_tx_started) {
                ++m_stats.cp_tx_bad;
                HAKO_WARN_RATELIMITED("rtl8139: transmit frame without LS dropped at the next FS");
            }
            m_cp_tx_started = true;
            m_cp_tx_bad = false;
            m_cp_tx_len = 0;
            m_cp_tx_opts1 = d->opts1;
            m_cp_tx_opts2 = d->opts2;
        } else if (!m_cp_tx_started) {
            m_cp_tx_started = true; // a fragment without its FS: the frame is dropped at its LS
            m_cp_tx_bad = true;
            m_cp_tx_len = 0;
            HAKO_WARN_RATELIMITED("rtl8139: transmit descriptor {} continues a frame that has no FS", index);
        }
        if (!m_cp_tx_bad && !cp_tx_append(d->addr, d->opts1 & TXD_LEN_MASK))
            m_cp_tx_bad = true;
        uint32_t status = d->opts1 & ~(DESC_OWN | TXD_ERROR);
        if (d->opts1 & DESC_LS) {
            if (m_cp_tx_bad) {
                ++m_stats.cp_tx_bad;
                status |= TXD_ERROR;
                set_cause(INT_TER);
            } else {
                cp_tx_finish();
                sent = true;
            }
            m_cp_tx_started = false;
        }
        if (!write_le32(m_mem, at, status)) {
            ++m_stats.cp_tx_bad;
            HAKO_WARN_RATELIMITED("rtl8139: transmit descriptor at {:#x} cannot be written back", at);
        }
        index = next_index(index, d->opts1);
    }
    if (sent)
        set_cause(INT_TOK);
    else if (taken == 0)
        set_cause(INT_TDU);
}

bool Rtl8139::cp_tx_append(uint64_t addr, uint32_t len)
{
    if (len > m_cp_tx_frame.size() - m_cp_tx_len) {
        HAKO_WARN_RATELIMITED("rtl8139: transmit frame longer than {} bytes", m_cp_tx_frame.size());
        return false;
    }
    if (!m_mem.read(GuestAddr(addr), std::span<uint8_t>(m_cp_tx_frame).subspan(m_cp_tx_len, len))) {
        HAKO_WARN_RATELIMITED("rtl8139: transmit buffer [{:#x}, +{:#x}) outside guest RAM", addr, len);
        return false;
    }
    m_cp_tx_len += len;
    return true;
}

void Rtl8139::cp_tx_finish()
{
    auto frame = std::span<uint8_t>(m_cp_tx_frame).first(m_cp_tx_len);
    uint32_t const cmd = m_cp_tx_opts1;
    if (cmd & TXD_LGSEN) {
        size_t const mss = (cmd >> TXD_MSS_SHIFT) & TXD_MSS_MASK;
        auto layout = hako::net::parse_packet(frame);
        size_t segments = 0;
        if (layout) {
            segments = hako::net::segment_tcp(frame, *layout, mss, m_cp_segment,
                [this](std::span<uint8_t const> seg) { cp_tx_emit(seg); });
        }
        if (segments == 0) {
            ++m_stats.cp_tx_bad;
            HAKO_WARN_RATELIMITED("rtl8139: large send of a {}-byte frame with MSS {} that is not TCP over IP (or "
                                  "too large a segment)", frame.size(), mss);
            set_cause(INT_TER);
            return;
        }
        ++m_stats.cp_tx_tso_packets;
        m_stats.cp_tx_tso_segments += segments;
        return;
    }
    if (cmd & (TXD_IPCS | TXD_TCPCS | TXD_UDPCS)) {
        if (auto layout = hako::net::parse_packet(frame)) {
            if ((cmd & TXD_IPCS) && hako::net::fill_ipv4_checksum(frame, *layout))
                ++m_stats.cp_tx_checksums;
            if (((cmd & TXD_TCPCS) && layout->tcp()) || ((cmd & TXD_UDPCS) && layout->udp())) {
                hako::net::fill_l4_checksum(frame, *layout);
                ++m_stats.cp_tx_checksums;
            }
        }
    }
    cp_tx_emit(frame);
}

void Rtl8139::cp_tx_emit(std::span<uint8_t const> frame)
{
    bool const tag = (m_cp_tx_opts2 & TXD_TAGC) != 0;
    size_t const len = frame.size() + (tag ? VLAN_TAG : 0);
    if (frame.size() < hako::net::ETH_HEADER_LEN || len > m_cp_wire.size()) {
        ++m_stats.cp_tx_bad;
        HAKO_WARN_RATELIMITED("rtl8139: dropped a {}-byte transmit frame", frame.size());
        set_cause(INT_TER);
        return;
    }
    uint8_t* w = m_cp_wire.data();
    std::memcpy(w, frame.data(), MAC_ADDRS);
    size_t at = MAC_ADDRS;
    if (tag) {
        put_be16(w + at, ETHERTYPE_VLAN);
        put_be16(w + at + 2, swap16(static_cast<uint16_t>(m_cp_tx_opts2)));
        at += VLAN_TAG;
    }
    std::memcpy(w + at, frame.data() + MAC_ADDRS, frame.size() - MAC_ADDRS);
    at += frame.size() - MAC_ADDRS;
    if (at < ETH_MIN_PADDED) {
        std::memset(w + at, 0, ETH_MIN_PADDED - at);
        at = ETH_MIN_PADDED;
    }
    m_backend->send(std::span<uint8_t const>(w, at));
    ++m_stats.tx_frames;
    m_stats.tx_bytes += at;
}

// --- Receive ---

bool Rtl8139::cp_receive(std::span<uint8_t const> frame, uint16_t c_status)
{
    // The frame as it goes to the guest: the tag stripped (RxVLAN), padded, with its FCS.
    uint8_t* out = m_rx_buf.data();
    uint32_t opts2 = 0;
    size_t len = frame.size();
    if ((r16(CPCR) & CPCR_RX_VLAN) && frame.size() >= hako::net::ETH_HEADER_LEN + VLAN_TAG
        && get_be16(&frame[MAC_ADDRS]) == ETHERTYPE_VLAN) {
        opts2 = RXD_VLAN_TAGGED | swap16(get_be16(&frame[MAC_ADDRS + 2]));
        std::memcpy(out, frame.data(), MAC_ADDRS);
        std::memcpy(out + MAC_ADDRS, frame.data() + MAC_ADDRS + VLAN_TAG, frame.size() - MAC_ADDRS - VLAN_TAG);
        len -= VLAN_TAG;
        ++m_stats.cp_rx_vlan_stripped;
    } else {
        std::memcpy(out, frame.data(), frame.size());
    }
    size_t const padded = std::max(len, ETH_MIN_PADDED);
    std::memset(out + len, 0, padded - len);
    put_le32(out + padded, hako::net::ethernet_crc32(std::span<uint8_t const>(out, padded)));
    size_t const bytes = padded + FCS_LEN;

    uint32_t status = (c_status & RX_MAR) ? RXD_MAR : 0;
    if (r16(CPCR) & CPCR_RX_CSUM) {
        auto const pkt = std::span<uint8_t const>(out, len);
        if (auto layout = hako::net::parse_packet(pkt); layout && !layout->ipv6) {
            ++m_stats.cp_rx_checksums;
            uint32_t const pid = layout->tcp() ? 1 : layout->udp() ? 2 : 3;
            status |= pid << RXD_PID_SHIFT;
            if (!hako::net::ipv4_checksum_ok(pkt, *layout))
                status |= RXD_IP_FAIL;
            if (layout->l4 != 0 && !hako::net::l4_checksum_ok(pkt, *layout))
                status |= layout->tcp() ? RXD_TCP_FAIL : RXD_UDP_FAIL;
        }
    }

    // Enough descriptors owned by the NIC for the whole frame?
    uint64_t const ring = r64(RDSAR);
    std::array<Descriptor, RX_FRAGMENTS_MAX> descs {};
    unsigned count = 0;
    size_t room = 0;
    unsigned index = m_cp_rx_index;
    while (room < bytes) {
        auto d = count < RX_FRAGMENTS_MAX ? read_descriptor(m_mem, ring + uint64_t { index } * DESC_SIZE)
                                          : std::nullopt;
        if (!d) {
            ++m_stats.rx_bad_buffer;
            HAKO_WARN_RATELIMITED("rtl8139: receive descriptor {} of ring {:#x} outside guest RAM, or a frame needs "
                                  "more than {} descriptors", index, ring, RX_FRAGMENTS_MAX);
            set_cause(INT_RER);
            return true;
        }
        if (!(d->opts1 & DESC_OWN)) {
            ++m_stats.cp_rx_no_descriptor;
            w32(MPC, (r32(MPC) + 1) & 0xffffff);
            m_rx_starved = true;
            set_cause(INT_RDU);
            return false;
        }
        descs[count++] = *d;
        room += d->opts1 & RXD_LEN_MASK;
        index = next_index(index, d->opts1);
    }

    // Fill them: data first, then opts2, then opts1 with OWN cleared.
    size_t done = 0;
    index = m_cp_rx_index;
    for (unsigned i = 0; i < count; ++i) {
        Descriptor const& d = descs[i];
        uint64_t const at = ring + uint64_t { index } * DESC_SIZE;
        size_t const chunk = std::min<size_t>(d.opts1 & RXD_LEN_MASK, bytes - done);
        bool const last = i + 1 == count;
        uint32_t opts1 = (d.opts1 & DESC_EOR) | (i == 0 ? DESC_FS : 0);
        if (!m_mem.write(GuestAddr(d.addr), std::span<uint8_t const>(out + done, chunk))) {
            ++m_stats.rx_bad_buffer;
            HAKO_WARN_RATELIMITED("rtl8139: receive buffer [{:#x}, +{:#x}) outside guest RAM", d.addr, chunk);
            write_le32(m_mem, at, opts1 | DESC_LS | RXD_ERROR);
            m_cp_rx_index = next_index(index, d.opts1);
            set_cause(INT_RER);
            return true;
        }
        done += chunk;
        if (last)
            opts1 |= DESC_LS | status | static_cast<uint32_t>(bytes);
        else
            opts1 |= static_cast<uint32_t>(chunk);
        uint32_t const desc_opts2 = last ? opts2 : 0;
        if (!write_le32(m_mem, at + 4, desc_opts2) || !write_le32(m_mem, at, opts1)) {
            ++m_stats.bad_accesses; // read a moment ago, so only a read-only region gets here
            HAKO_WARN_RATELIMITED("rtl8139: receive descriptor at {:#x} cannot be written back", at);
        }
        index = next_index(index, d.opts1);
    }
    m_cp_rx_index = index;
    count_received(frame.size(), c_status);
    set_cause(INT_ROK);
    return true;
}

// --- Tally counters ---

void Rtl8139::dump_tally()
{
    std::array<uint8_t, TALLY_SIZE> t {};
    put_le64(&t[0], m_stats.tx_frames);
    put_le64(&t[8], m_stats.rx_frames);
    put_le64(&t[16], m_stats.tx_aborted + m_stats.cp_tx_bad);
    put_le32(&t[24], static_cast<uint32_t>(m_stats.rx_bad_buffer));
    put_le16(&t[28], static_cast<uint16_t>(m_stats.rx_no_buffer + m_stats.cp_rx_no_descriptor));
    // 30: frame alignment errors, 32: single and 36: multiple collisions: none on a virtual wire.
    put_le64(&t[40], m_stats.rx_unicast);
    put_le64(&t[48], m_stats.rx_broadcast);
    put_le32(&t[56], static_cast<uint32_t>(m_stats.rx_multicast));
    put_le16(&t[60], static_cast<uint16_t>(m_stats.tx_aborted + m_stats.cp_tx_bad));
    // 62: transmit underruns: none.
    uint64_t const at = r64(STATS_ADDR) & ~uint64_t { 0x3f }; // 64-byte aligned; the low bits are commands
    if (m_mem.write(GuestAddr(at), t)) {
        ++m_stats.tally_dumps;
    } else {
        ++m_stats.bad_accesses;
        HAKO_WARN_RATELIMITED("rtl8139: tally counter dump address {:#x} outside guest RAM", at);
    }
    w32(STATS_ADDR, r32(STATS_ADDR) & ~STATS_DUMP);
}

} // namespace hako::devices::net
