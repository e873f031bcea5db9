// Fuzzes the Pcnet (Am79C970A) as a hostile driver and network would: guest RAM (64 KiB at 0x10000) is filled from
// the input, then a bounded sequence of operations: accesses of 1, 2, 4 or 8 bytes through either BAR at any offset
// (mostly RAP/RDP/BDP in both I/O modes), CSR and BCR writes through RAP (mostly the registers that matter: CSR0, the
// init block address, the ring lengths, SWSTYLE), frames from the network of any length and destination, guest RAM
// writes (descriptors handed over and taken back under the device), polls and PCI resets. With header byte 0 bit 7
// the device starts initialised from an init block in RAM (16- or 32-bit, SWSTYLE from the header) with its rings
// in RAM, so the descriptor paths are reached fast.
//
// Checked beyond "no crash, no hang, no sanitizer report": every frame handed to the backend is 14..1522 bytes; the
// device's transmit count matches what the backend got; every receive() call ends in exactly one outcome counter;
// the INTx line is only driven on changes (StrictIrqLine).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/pcnet.h"
#include "fuzz_fakes.h"
#include "net/backend.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::pcnet;
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

constexpr std::array<unsigned, 16> INTERESTING_CSRS {
    0, 0, 0, 1, 2, 3, 4, 5, 8, 15, CSR_SWS, CSR_RCVRL, CSR_XMTRL, CSR_BADR_LO, CSR_BADX_LO, 124,
};
constexpr std::array<unsigned, 6> INTERESTING_BCRS { BCR_MC, BCR_LNKST, BCR_FDC, BCR_BSBC, BCR_SWS, 40 };

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
    auto backend = std::make_shared<fuzz::FrameCountingBackend>(TX_FRAME_MAX);
    auto irq = std::make_shared<fuzz::StrictIrqLine>();
    auto created = Pcnet::create(*mem, backend, hako::net::default_mac(0));
    check(created.has_value());
    auto dev = std::move(*created);
    dev->set_intx_line(irq);

    bool dwio = false;
    auto access_width = [&] { return dwio ? size_t { 4 } : size_t { 2 }; };
    auto write = [&](int bar, uint32_t offset, uint32_t value, size_t len) {
        std::array<uint8_t, 4> b {};
        store_le(b, value);
        dev->bar_write(bar, offset, std::span<uint8_t const>(b).first(len));
        if (offset == DWIO_RDP && len == 4)
            dwio = true;
    };
    auto reg_write = [&](int bar, bool bcr, unsigned index, uint32_t value) {
        size_t const w = access_width();
        write(bar, dwio ? DWIO_RAP : WIO_RAP, index, w);
        write(bar, bcr ? (dwio ? DWIO_BDP : WIO_BDP) : WIO_RDP, value, w);
    };
    if (h[0] & 0x80) {
        // An init block at RAM_BASE, rings after it, the descriptors from the seeded RAM.
        unsigned const style = h[2] & 3;
        uint8_t* ib = ram().data();
        uint32_t const rx_ring = static_cast<uint32_t>(RAM_BASE + 0x100);
        uint32_t const tx_ring = static_cast<uint32_t>(RAM_BASE + 0x2100);
        if (style == 0) {
            put_le16(ib, h[3]);
            put_le16(ib + 16, static_cast<uint16_t>(rx_ring));
            put_le16(ib + 18, static_cast<uint16_t>((h[4] & 7u) << 13 | (rx_ring >> 16)));
            put_le16(ib + 20, static_cast<uint16_t>(tx_ring));
            put_le16(ib + 22, static_cast<uint16_t>((h[5] & 7u) << 13 | (tx_ring >> 16)));
        } else {
            put_le16(ib, h[3]);
            ib[2] = static_cast<uint8_t>(h[4] << 4);
            ib[3] = static_cast<uint8_t>(h[5] << 4);
            put_le32(ib + 20, rx_ring);
            put_le32(ib + 24, tx_ring);
        }
        reg_write(Pcnet::IO_BAR, true, BCR_SWS, style);
        reg_write(Pcnet::IO_BAR, false, 1, static_cast<uint16_t>(RAM_BASE));
        reg_write(Pcnet::IO_BAR, false, 2, static_cast<uint16_t>(RAM_BASE >> 16));
        reg_write(Pcnet::IO_BAR, false, 4, h[6] & 0x01 ? 0x1915u : 0x0915u);
        reg_write(Pcnet::IO_BAR, false, 0, CSR0_INIT | CSR0_STRT | (h[7] & CSR0_IENA));
    }

    uint64_t rx_calls = 0;
    uint64_t rx_refused = 0;
    static std::vector<uint8_t> frame(0x800); // lengths up to 0x7ff, beyond RX_FRAME_MAX
    for (size_t ops = 0; ops < MAX_OPS && pos + 6 <= size; ++ops, pos += 6) {
        uint8_t const op = data[pos];
        uint8_t const a = data[pos + 1];
        uint32_t const value = get_le32(data + pos + 2);
        int const bar = (op & 0x10) ? Pcnet::MMIO_BAR : Pcnet::IO_BAR;
        size_t const len = size_t { 1 } << ((op >> 5) & 3); // 1, 2, 4 or 8 (refused)
        switch (op & 7) {
        case 0: // a raw window access
            if (op & 8) {
                write(bar, a & 0x1f, value, std::min<size_t>(len, 4));
            } else {
                std::array<uint8_t, 8> b {};
                dev->bar_read(bar, a & 0x1f, std::span<uint8_t>(b).first(len));
            }
            break;
        case 1: // a CSR write through RAP/RDP
            reg_write(bar, false, (op & 8) ? a : INTERESTING_CSRS[a % INTERESTING_CSRS.size()], value);
            break;
        case 2: // a BCR write through RAP/BDP
            reg_write(bar, true, (op & 8) ? a : INTERESTING_BCRS[a % INTERESTING_BCRS.size()], value);
            break;
        case 3: { // a frame from the network
            size_t flen = value & 0x7ff;
            std::memset(frame.data(), a, flen);
            if (flen >= 6) {
                auto const m = dev->mac();
                std::array<uint8_t, 6> dst { static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24), a, a,
                    a, a };
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
        case 4: { // guest RAM write: descriptors and buffers change under the device
            size_t const off = (value & 0xffff) % (RAM_SIZE - 4);
            std::memcpy(ram().data() + off, data + pos + 1, 4);
            break;
        }
        case 5: // transmit demand
            reg_write(bar, false, 0, CSR0_TDMD | (value & (CSR0_IENA | CSR0_W1C)));
            break;
        case 6:
            dev->poll();
            break;
        case 7:
            if (a == 0x5a) {
                dev->reset();
                dwio = false;
            } else { // S_RESET by a read of RESET
                std::array<uint8_t, 4> b {};
                dev->bar_read(bar, dwio ? DWIO_RESET : WIO_RESET, std::span<uint8_t>(b).first(access_width()));
            }
            break;
        }
    }
    PcnetStats const s = dev->stats();
    check(s.tx_frames == backend->sent);
    check(rx_refused == s.rx_no_buffer);
    check(rx_calls - rx_refused
        == s.rx_frames + s.rx_overflow + s.rx_bad_dma + s.rx_filtered + s.rx_dropped_stopped + s.rx_dropped_bad);
    return 0;
}
