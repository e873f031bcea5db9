// Fuzzes the Rtl8139 (RTL8139C+ in C and C+ mode) as a hostile driver and network would: guest RAM (64 KiB at 0x10000) is
// filled from the input, then a bounded sequence of operations: register writes and reads of 1, 2 or 4 bytes through
// either BAR at any offset (mostly the registers that matter), frames from the network of any length and
// destination, guest RAM writes, 9346CR bit-banging and PCI resets. With header byte 0 bit 7 the receive buffer
// starts inside RAM with RE and TE set and the transmit buffers point into RAM, so the data paths are reached fast;
// with bit 6 C+ mode is entered (CPCR from header byte 6) with both descriptor rings inside RAM, and operations write
// descriptors that point into RAM and poke TPPOLL.
//
// Checked beyond "no crash, no hang, no sanitizer report": every frame handed to the backend is 14..4114 bytes; the
// device's transmit count matches what the backend got; every receive() call ends in exactly one outcome counter;
// the INTx line is only driven on changes (StrictIrqLine).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/rtl8139.h"
#include "fuzz_fakes.h"
#include "net/backend.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::rtl8139;
using memory::GuestAddr;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;
constexpr size_t HEADER = 8;
constexpr size_t MAX_OPS = 128;

using fuzz::check;

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

constexpr std::array<uint32_t, 24> INTERESTING {
    IDR0, MAR0, TSD0, TSD0 + 4, TSD0 + 8, TSD0 + 12, TSAD0, TSAD0 + 12, RBSTART, CR, CAPR, CBR, IMR, ISR, TCR, RCR,
    TCTR, MPC, CR9346, CONFIG1, BMCR, TSAD_SUMMARY, CPCR, 0xfc,
};

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
    auto backend = std::make_shared<fuzz::FrameCountingBackend>(Rtl8139::CP_TX_WIRE_MAX);
    auto irq = std::make_shared<fuzz::StrictIrqLine>();
    int64_t now = 0;
    Rtl8139Options options;
    options.clock_ns = [&now] { return now; };
    auto created = Rtl8139::create(*mem, backend, hako::net::default_mac(0), std::move(options));
    check(created.has_value());
    auto dev = std::move(*created);
    dev->set_intx_line(irq);

    auto write = [&](int bar, uint32_t offset, uint32_t value, size_t len) {
        std::array<uint8_t, 4> b {};
        store_le(b, value);
        dev->bar_write(bar, offset, std::span<uint8_t const>(b).first(len));
    };
    if (h[0] & 0x80) {
        // The receive buffer at the start of RAM (its length and WRAP from the header), transmit buffers after it.
        write(Rtl8139::IO_BAR, RBSTART, static_cast<uint32_t>(RAM_BASE + (h[2] & 0x3f) * 4), 4);
        write(Rtl8139::IO_BAR, CR, CR_RE | CR_TE, 1);
        write(Rtl8139::IO_BAR, RCR, h[3] & 0x8f, 4); // accept bits and WRAP; 8 KiB
        for (uint32_t i = 0; i < 4; ++i)
            write(Rtl8139::IO_BAR, TSAD0 + 4 * i, static_cast<uint32_t>(RAM_BASE + 0x4000 + 0x800 * i), 4);
        write(Rtl8139::IO_BAR, IMR, static_cast<uint32_t>(h[4] | h[5] << 8), 2);
    }
    bool const cplus = (h[0] & 0x40) != 0;
    uint64_t const tx_ring = RAM_BASE + (h[2] & 0x3fu) * 256;
    uint64_t const rx_ring = RAM_BASE + 0x8000 + (h[7] & 0x3fu) * 256;
    if (cplus) {
        write(Rtl8139::IO_BAR, CPCR, h[6] & (CPCR_TX_ON | CPCR_RX_ON | CPCR_RX_CSUM | CPCR_RX_VLAN), 2);
        write(Rtl8139::IO_BAR, TNPDS, static_cast<uint32_t>(tx_ring), 4);
        write(Rtl8139::IO_BAR, RDSAR, static_cast<uint32_t>(rx_ring), 4);
        write(Rtl8139::IO_BAR, CR, CR_RE | CR_TE, 1);
    }

    uint64_t rx_calls = 0;
    uint64_t rx_refused = 0;
    static std::vector<uint8_t> frame(0x800); // lengths up to 0x7ff, beyond RX_FRAME_MAX
    for (size_t ops = 0; ops < MAX_OPS && pos + 6 <= size; ++ops, pos += 6) {
        uint8_t const op = data[pos];
        uint8_t const a = data[pos + 1];
        uint32_t const value = get_le32(data + pos + 2);
        int const bar = (op & 0x10) ? Rtl8139::MMIO_BAR : Rtl8139::IO_BAR;
        size_t const len = size_t { 1 } << ((op >> 5) & 3); // 1, 2, 4 or 8 (refused)
        uint32_t const offset = (op & 8) ? a : INTERESTING[a % INTERESTING.size()];
        switch (op & 7) {
        case 0:
        case 1: // register write
            write(bar, offset, value, std::min<size_t>(len, 4));
            break;
        case 2: { // register read
            std::array<uint8_t, 8> b {};
            dev->bar_read(bar, offset, std::span<uint8_t>(b).first(len));
            break;
        }
        case 3: { // a frame from the network
            size_t flen = value & 0x7ff;
            std::memset(frame.data(), a, flen);
            if (flen >= 6) {
                auto const m = dev->mac();
                std::array<uint8_t, 6> dst { static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8), a, a, a, a };
                if (a & 1)
                    std::memcpy(frame.data(), m.data(), 6);
                else if (a & 2)
                    std::memset(frame.data(), 0xff, 6);
                else
                    std::memcpy(frame.data(), dst.data(), 6);
            }
            ++rx_calls;
            if (!dev->receive(std::span<uint8_t const>(frame).first(flen)))
                ++rx_refused;
            break;
        }
        case 4: { // guest RAM write, or (C+) a descriptor whose buffer is inside RAM
            if (cplus && (a & 0x80)) {
                uint64_t const ring = (a & 0x40) ? rx_ring : tx_ring;
                size_t const at = static_cast<size_t>(ring - RAM_BASE) + DESC_SIZE * (a & 0x1f);
                uint32_t const opts1 = (value & 0xf80007ff) | DESC_OWN;
                put_le32(ram().data() + at, opts1);
                put_le32(ram().data() + at + 4, value >> 11 & 0x2ffff);
                put_le64(ram().data() + at + 8, RAM_BASE + (value >> 16 & 0x7fff));
                break;
            }
            size_t const off = (value & 0xffff) % (RAM_SIZE - 4);
            std::memcpy(ram().data() + off, data + pos + 1, 4);
            break;
        }
        case 5: // a transmit: TSDn with OWN clear and a size from the input, or (C+) a TPPOLL write
            if (cplus && (a & 0x80))
                write(bar, TPPOLL, value & 0xff, 1);
            else
                write(bar, TSD0 + 4 * (a & 3), value & 0x3fff & ~TSD_OWN, 4);
            break;
        case 6: // the driver consumes: CAPR to CBR - 16 or anywhere; time passes
            now += static_cast<int64_t>(value & 0xfffff);
            if (a & 1) {
                write(bar, CAPR, value, 2);
            } else {
                std::array<uint8_t, 2> cbr {};
                dev->bar_read(bar, CBR, cbr);
                write(bar, CAPR, static_cast<uint16_t>(get_le16(cbr.data()) - 16), 2);
            }
            break;
        case 7:
            if (a == 0x5a)
                dev->reset();
            else // 9346CR bit-banging (the EEPROM state machine)
                write(bar, CR9346, value & 0xff, 1);
            break;
        }
    }
    Rtl8139Stats const s = dev->stats();
    check(s.tx_frames == backend->sent);
    check(rx_refused == s.rx_no_buffer + s.cp_rx_no_descriptor);
    check(rx_calls - rx_refused
        == s.rx_frames + s.rx_filtered + s.rx_dropped_disabled + s.rx_dropped_bad + s.rx_bad_buffer);
    return 0;
}
