// Fuzzes the Ne2kPci (RTL8029AS, NE2000 PCI) as a hostile driver and network would: a bounded sequence of
// operations: register writes and reads of 1, 2 or 4 bytes at any I/O BAR offset (mostly the DP8390 registers,
// under any page), data port transfers in byte and word mode, remote DMA set-ups with any address and count,
// transmit commands with any TPSR/TBCR, frames from the network of any length and destination, ring pointers
// (PSTART/PSTOP/CURR/BNRY) set to anything, reset port reads and PCI resets. With header byte 0 bit 7 the NIC starts
// with a sane ring (Linux's layout) and accepts everything, so the data paths are reached fast.
//
// Checked beyond "no crash, no hang, no sanitizer report": every frame handed to the backend is 14..1518 bytes; the
// device's transmit count (minus loopback) matches what the backend got; every receive() call and every loopback
// transmit ends in exactly one outcome counter; the INTx line is only driven on changes (StrictIrqLine).
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/net/ne2k_pci.h"
#include "fuzz_fakes.h"
#include "net/backend.h"

using namespace hako;
using namespace hako::devices::net;
using namespace hako::devices::net::ne2k;

namespace {

constexpr size_t HEADER = 4;
constexpr size_t MAX_OPS = 192;

using fuzz::check;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    uint8_t const* h = data;
    auto backend = std::make_shared<fuzz::FrameCountingBackend>(TX_SIZE_MAX);
    auto irq = std::make_shared<fuzz::StrictIrqLine>();
    auto created = Ne2kPci::create(backend, hako::net::default_mac(0));
    check(created.has_value());
    auto dev = std::move(*created);
    dev->set_intx_line(irq);

    auto write = [&](uint32_t offset, uint32_t value, size_t len) {
        std::array<uint8_t, 4> b {};
        store_le(b, value);
        dev->bar_write(Ne2kPci::IO_BAR, offset, std::span<uint8_t const>(b).first(len));
    };
    auto reg = [&](uint32_t offset, uint8_t value) { write(offset, value, 1); };
    if (h[0] & 0x80) {
        reg(CR, CR_STP | CR_RD_ABORT);
        reg(DCR, h[1] & 1 ? 0x49 : 0x48);
        reg(PSTART, 0x46);
        reg(PSTOP, 0x80);
        reg(BNRY, 0x7f);
        reg(CR, CR_STP | CR_RD_ABORT | 0x40);
        reg(CURR, 0x46);
        reg(CR, CR_STA | CR_RD_ABORT);
        reg(RCR, h[2] & 0x3f);
        reg(TCR, h[3] & 0x06);
        reg(IMR, h[1] >> 1);
    }

    uint64_t rx_calls = 0;
    uint64_t rx_refused = 0;
    static std::vector<uint8_t> frame(0x800); // lengths up to 0x7ff, beyond RX_FRAME_MAX
    size_t pos = HEADER;
    for (size_t ops = 0; ops < MAX_OPS && pos + 5 <= size; ++ops, pos += 5) {
        uint8_t const op = data[pos];
        uint8_t const a = data[pos + 1];
        uint32_t const value = static_cast<uint32_t>(data[pos + 2] | data[pos + 3] << 8 | data[pos + 4] << 16);
        size_t const len = size_t { 1 } << ((op >> 4) & 3); // 1, 2, 4 or 8 (refused)
        switch (op & 7) {
        case 0: // a register write under the page the input picks
            reg(CR, static_cast<uint8_t>((value & 0xc0) | CR_RD_ABORT | ((value >> 8) & 3)));
            reg(a & 0x0f, static_cast<uint8_t>(value >> 16));
            break;
        case 1: { // any access anywhere in the BAR (and past it)
            if (op & 8) {
                write(a & 0x3f, value, std::min<size_t>(len, 4));
            } else {
                std::array<uint8_t, 8> b {};
                dev->bar_read(Ne2kPci::IO_BAR, a & 0x3f, std::span<uint8_t>(b).first(len));
            }
            break;
        }
        case 2: // a remote DMA command with any address and count
            reg(CR, CR_RD_ABORT); // page 0, started or stopped as before
            reg(RSAR0, a);
            reg(RSAR1, static_cast<uint8_t>(value));
            reg(RBCR0, static_cast<uint8_t>(value >> 8));
            reg(RBCR1, static_cast<uint8_t>(value >> 16) & 0x07);
            reg(CR, static_cast<uint8_t>(CR_STA | ((op & 8) ? CR_RD_WRITE : CR_RD_READ)));
            break;
        case 3: { // data port transfers
            unsigned const n = 1 + (a & 0x3f);
            for (unsigned i = 0; i < n; ++i) {
                if (op & 8) {
                    write(DATA, value, len == 8 ? 4 : len);
                } else {
                    std::array<uint8_t, 4> b {};
                    dev->bar_read(Ne2kPci::IO_BAR, DATA, std::span<uint8_t>(b).first(len == 8 ? 4 : len));
                }
            }
            break;
        }
        case 4: { // a frame from the network
            size_t const flen = value & 0x7ff;
            std::memset(frame.data(), a, flen);
            if (flen >= 6) {
                auto const m = dev->mac();
                if (a & 1)
                    std::memcpy(frame.data(), m.data(), 6);
                else if (a & 2)
                    std::memset(frame.data(), 0xff, 6);
            }
            ++rx_calls;
            if (!dev->receive(std::span<uint8_t const>(frame).first(flen)))
                ++rx_refused;
            break;
        }
        case 5: // a transmit with any TPSR and length
            reg(CR, CR_STA | CR_RD_ABORT);
            reg(TPSR, a);
            reg(TBCR0, static_cast<uint8_t>(value));
            reg(TBCR1, static_cast<uint8_t>(value >> 8) & 0x07);
            reg(CR, CR_STA | CR_RD_ABORT | CR_TXP);
            break;
        case 6: // ring pointers set to anything
            reg(CR, CR_RD_ABORT | (value & CR_STA));
            reg(op & 8 ? PSTART : PSTOP, a);
            reg(BNRY, static_cast<uint8_t>(value >> 8));
            reg(CR, CR_RD_ABORT | 0x40 | (value & CR_STA));
            reg(CURR, static_cast<uint8_t>(value >> 16));
            reg(CR, CR_RD_ABORT | (value & CR_STA));
            break;
        case 7:
            if (a == 0x5a) {
                dev->reset();
            } else if (a & 1) {
                std::array<uint8_t, 1> b {};
                dev->bar_read(Ne2kPci::IO_BAR, RESET, b);
            } else {
                backend->flush();
            }
            break;
        }
    }
    Ne2kPciStats const s = dev->stats();
    check(s.tx_frames - s.tx_loopback == backend->sent);
    check(rx_refused <= s.rx_no_buffer); // loopback frames may be refused too
    check(rx_calls + s.tx_loopback
        == s.rx_frames + s.rx_filtered + s.rx_dropped_stopped + s.rx_dropped_bad + s.rx_monitor + s.rx_bad_ring
            + s.rx_no_buffer);
    return 0;
}
