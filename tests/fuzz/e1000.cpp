// Fuzzes the E1000 (82540EM) as a hostile driver and network would: guest RAM (64 KiB at 0x10000) is filled from the
// input, then a bounded sequence of operations: register writes (offsets drawn mostly from the registers that
// matter, values from the input), register reads (clear-on-read included), I/O BAR accesses, frames from the network
// of any length, ITR timer expiries with the clock moving, guest RAM writes, and PCI resets. With header byte 0 bit 7
// the rings start in a valid layout inside RAM with TX and RX enabled, and transmit kicks first build a near-valid
// descriptor (legacy, context with or without TSO, data with checksum options) whose lengths, offsets and buffers
// come from the input, so the fuzzer reaches the data paths fast.
//
// Checked beyond "no crash, no hang, no sanitizer report": every frame handed to the backend is 14..16384 bytes;
// the device's transmit count matches what the backend got; every receive() call ends in exactly one outcome
// counter; the INTx line is only driven on changes (StrictIrqLine).
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/e1000.h"
#include "fuzz_fakes.h"
#include "net/backend.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::e1000;
using memory::GuestAddr;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr size_t HEADER = 8;
constexpr size_t MAX_OPS = 96;

using fuzz::check;

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

constexpr std::array<uint32_t, 40> INTERESTING {
    CTRL, STATUS, EECD, EERD, MDIC, ICR, ITR, ICS, IMS, IMC, RCTL, TCTL, RDBAL, RDBAH, RDLEN, RDH, RDT, TDBAL, TDBAH,
    TDLEN, TDH, TDT, RXCSUM, RA, RA + 4, RA + 8, RA + 12, MTA, MTA + 4 * 127, VFTA, VFTA + 4 * 5, VET, STATS_START + 0x88,
    STATS_START + 0x8c, STATS_START + 0x74, PBA, MANC, 0x0004, 0x1fffc, STATS_START + 0xf8,
};

void write_reg(E1000& dev, uint32_t offset, uint32_t value)
{
    std::array<uint8_t, 4> b {};
    store_le(b, value);
    dev.bar_write(E1000::MMIO_BAR, offset, b);
}

/// Driver mode: a near-valid transmit descriptor of the kind the operand picks at ring index `index`.
void build_tx_desc(uint32_t index, uint8_t a, uint32_t value)
{
    uint8_t* d = ram().data() + TX_DESC_SIZE * (index % 16);
    uint64_t const buf = RAM_BASE + 0x2000 + (value & 0x3fff);
    uint32_t const len = (value >> 14) & 0x7ff;
    uint8_t const rs = (a & 8) ? TXD_CMD_RS : 0;
    uint8_t const eop = (a & 4) ? TXD_CMD_EOP : 0;
    std::memset(d, 0, TX_DESC_SIZE);
    switch (a & 3) {
    case 0: // legacy, maybe with IC and a VLAN tag
        put_le64(d, buf);
        put_le16(d + 8, static_cast<uint16_t>(len));
        d[10] = static_cast<uint8_t>(value >> 25);
        d[11] = static_cast<uint8_t>(eop | rs | (a & 16 ? TXD_CMD_IC : 0) | (a & 32 ? TXD_CMD_VLE : 0));
        d[13] = static_cast<uint8_t>(a >> 6) * 14;
        break;
    case 1: { // context: IPv4 or IPv6, TCP or UDP, TSE
        bool const ipv4 = !(a & 16);
        bool const tcp = !(a & 32);
        d[0] = 14;
        d[1] = 24;
        put_le16(d + 2, ipv4 ? 33 : 0);
        d[4] = ipv4 ? 34 : 54;
        d[5] = static_cast<uint8_t>(d[4] + (tcp ? 16 : 6));
        uint8_t const tucmd = static_cast<uint8_t>((ipv4 ? TUCMD_IP : 0) | (tcp ? TUCMD_TCP : 0)
            | (a & 64 ? TXD_CMD_TSE : 0) | TXD_CMD_DEXT);
        put_le32(d + 8, (value & 0xffff) | static_cast<uint32_t>(tucmd) << 24);
        d[13] = (a & 128) ? static_cast<uint8_t>(value >> 24) : static_cast<uint8_t>(d[4] + (tcp ? 20 : 8));
        put_le16(d + 14, static_cast<uint16_t>(((value >> 16) & 0x7ff) + 1));
        break;
    }
    default: // data
        put_le64(d, buf);
        put_le32(d + 8, len | TXD_DTYP_DATA << TXD_DTYP_SHIFT
                | static_cast<uint32_t>(eop | rs | (a & 16 ? TXD_CMD_TSE : 0) | (a & 32 ? TXD_CMD_VLE : 0)
                      | TXD_CMD_DEXT) << 24);
        d[13] = static_cast<uint8_t>(a >> 6); // POPTS IXSM/TXSM
        break;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    uint8_t const* h = data;
    size_t const seed = std::min<size_t>(static_cast<size_t>(h[1]) * 64, size - HEADER);
    std::fill(ram().begin(), ram().end(), 0);
    std::memcpy(ram().data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;

    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(ram()) } });
    if (!mem)
        return 0;
    auto backend = std::make_shared<fuzz::FrameCountingBackend>(E1000::TX_FRAME_MAX);
    auto irq = std::make_shared<fuzz::StrictIrqLine>();
    int64_t now = 0;
    E1000Options options;
    options.clock_ns = [&now] { return now; };
    auto created = E1000::create(*mem, backend, hako::net::default_mac(0), std::move(options));
    check(created.has_value());
    auto dev = std::move(*created);
    dev->set_intx_line(irq);

    if (h[0] & 0x80) {
        // Valid rings: TX at 0x10000 (16 entries), RX at 0x10100 (16 entries), data anywhere the input says.
        write_reg(*dev, TDBAL, static_cast<uint32_t>(RAM_BASE));
        write_reg(*dev, TDLEN, 16 * TX_DESC_SIZE);
        write_reg(*dev, RDBAL, static_cast<uint32_t>(RAM_BASE + 0x100));
        write_reg(*dev, RDLEN, 16 * RX_DESC_SIZE);
        write_reg(*dev, RDT, h[2] & 15);
        write_reg(*dev, RCTL, RCTL_EN | RCTL_BAM | (h[3] & 1 ? RCTL_UPE | RCTL_MPE : 0) | (uint32_t { h[3] } & 6) << 15
                | (h[3] & 0x10 ? RCTL_LPE : 0) | (h[3] & 0x20 ? RCTL_VFE : 0) | (h[3] & 0x40 ? RCTL_SECRC : 0));
        write_reg(*dev, TCTL, TCTL_EN | TCTL_PSP);
        write_reg(*dev, IMS, h[4]);
        write_reg(*dev, ITR, h[5]);
        write_reg(*dev, CTRL, h[6] & 1 ? CTRL_VME : 0);
    }

    uint32_t tdt = 0;
    uint64_t rx_calls = 0;
    uint64_t rx_refused = 0;
    static std::vector<uint8_t> frame(E1000::RX_FRAME_MAX + 64);
    for (size_t ops = 0; ops < MAX_OPS && pos + 6 <= size; ++ops, pos += 6) {
        uint8_t const op = data[pos];
        uint32_t const value = get_le32(data + pos + 2);
        uint8_t const a = data[pos + 1];
        switch (op & 7) {
        case 0:
        case 1: { // register write
            uint32_t const offset = (op & 8) ? (value >> 8 & 0x7fff) * 4 : INTERESTING[a % INTERESTING.size()];
            write_reg(*dev, offset, (op & 8) ? value & 0xff : value);
            break;
        }
        case 2: { // register read, any size
            std::array<uint8_t, 8> b {};
            size_t const len = size_t { 1 } << (a & 3);
            uint64_t const offset = (op & 8) ? value % (MMIO_SIZE + 8) : INTERESTING[a % INTERESTING.size()];
            dev->bar_read(E1000::MMIO_BAR, offset, std::span<uint8_t>(b).first(len));
            break;
        }
        case 3: { // a frame from the network
            size_t len = value & 0x7ff;
            if (a & 0x80)
                len = E1000::RX_FRAME_MAX - 4 + (a & 15);
            std::memset(frame.data(), a, len);
            if (len >= 6 && !(a & 2)) {
                // Our MAC, or a destination made of the operand (multicast and broadcast bits included).
                std::array<uint8_t, 6> dst { static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                    static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24), a, a };
                std::memcpy(frame.data(), (a & 1) ? dev->mac().data() : dst.data(), 6);
            }
            if (len >= 16 && (a & 4)) {
                put_le16(frame.data() + 12, 0x0081); // 0x8100 big-endian
                frame[14] = static_cast<uint8_t>(value >> 16);
            }
            ++rx_calls;
            if (!dev->receive(std::span<uint8_t const>(frame).first(len)))
                ++rx_refused;
            break;
        }
        case 4: { // guest RAM write (descriptors, buffers)
            size_t const off = (value & 0xffff) % (RAM_SIZE - 4);
            std::memcpy(ram().data() + off, data + pos + 1, 4);
            break;
        }
        case 5: { // I/O BAR
            std::array<uint8_t, 4> b {};
            store_le(b, value);
            uint64_t const offset = (a & 1) ? E1000::IODATA : E1000::IOADDR;
            if (a & 2)
                dev->bar_write(E1000::IO_BAR, offset, std::span<uint8_t const>(b).first(a & 4 ? 2 : 4));
            else
                dev->bar_read(E1000::IO_BAR, offset, b);
            break;
        }
        case 6: // time passes; the ITR timer fires
            now += static_cast<int64_t>(value & 0xfffff);
            dev->itr_timer_expired();
            break;
        case 7:
            if (a == 0x5a)
                dev->reset();
            else if (h[0] & 0x80) {
                build_tx_desc(tdt, a, value);
                tdt = (tdt + 1) % 16;
                write_reg(*dev, TDT, tdt);
            } else {
                write_reg(*dev, TDT, value & 0x1f); // a transmit kick
            }
            break;
        }
    }
    E1000Stats const s = dev->stats();
    if (std::getenv("HAKO_FUZZ_NET_STATS"))
        std::fprintf(stderr, "e1000: tx %llu tso %llu csum %llu txdrop %llu rx %llu filtered %llu nobuf %llu irq %llu\n",
            static_cast<unsigned long long>(s.tx_frames), static_cast<unsigned long long>(s.tx_tso_segments),
            static_cast<unsigned long long>(s.tx_checksums), static_cast<unsigned long long>(s.tx_dropped),
            static_cast<unsigned long long>(s.rx_frames), static_cast<unsigned long long>(s.rx_filtered),
            static_cast<unsigned long long>(s.rx_no_buffer), static_cast<unsigned long long>(s.interrupts));
    check(s.tx_frames == backend->sent);
    check(rx_refused == s.rx_no_buffer);
    check(rx_calls - rx_refused == s.rx_frames + s.rx_filtered + s.rx_dropped_disabled + s.rx_dropped_bad);
    return 0;
}
