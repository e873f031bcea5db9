#include "devices/legacy/serial.h"

#include <algorithm>

#include "base/log.h"

namespace hako::devices::legacy {

namespace {

// Register offsets (PC16550D table II).
constexpr uint64_t RBR = 0; // receive buffer (read, DLAB=0); DLL, the divisor latch low, with DLAB=1
constexpr uint64_t THR = 0; // transmit holding (write, DLAB=0)
constexpr uint64_t IER = 1; // DLM, the divisor latch high, with DLAB=1
constexpr uint64_t IIR = 2; // read
constexpr uint64_t FCR = 2; // write
constexpr uint64_t LCR = 3;
constexpr uint64_t MCR = 4;
constexpr uint64_t LSR = 5;
constexpr uint64_t MSR = 6;
constexpr uint64_t SCR = 7;
constexpr uint64_t REGISTER_COUNT = 8;

constexpr uint8_t IER_ERBFI = 1 << 0; // received data available
constexpr uint8_t IER_ETBEI = 1 << 1; // transmitter holding register empty
constexpr uint8_t IER_ELSI = 1 << 2;  // receiver line status
constexpr uint8_t IER_EDSSI = 1 << 3; // modem status
constexpr uint8_t IER_MASK = 0x0f;

constexpr uint8_t IIR_NO_INT = 0x01;
constexpr uint8_t IIR_MSI = 0x00;
constexpr uint8_t IIR_THRI = 0x02;
constexpr uint8_t IIR_RDI = 0x04;
constexpr uint8_t IIR_RLSI = 0x06;
constexpr uint8_t IIR_CTI = 0x0c;
constexpr uint8_t IIR_FIFO_ENABLED = 0xc0;

constexpr uint8_t FCR_FIFO_ENABLE = 1 << 0;
constexpr uint8_t FCR_RCVR_RESET = 1 << 1;
constexpr uint8_t FCR_XMIT_RESET = 1 << 2;
constexpr uint8_t FCR_TRIGGER_MASK = 0xc0;

constexpr uint8_t LCR_DLAB = 1 << 7;

constexpr uint8_t MCR_DTR = 1 << 0;
constexpr uint8_t MCR_RTS = 1 << 1;
constexpr uint8_t MCR_OUT1 = 1 << 2;
constexpr uint8_t MCR_OUT2 = 1 << 3;
constexpr uint8_t MCR_LOOP = 1 << 4;
constexpr uint8_t MCR_MASK = 0x1f;

constexpr uint8_t LSR_DR = 1 << 0;
constexpr uint8_t LSR_OE = 1 << 1;
constexpr uint8_t LSR_THRE = 1 << 5;
constexpr uint8_t LSR_TEMT = 1 << 6;

constexpr uint8_t MSR_DCTS = 1 << 0;
constexpr uint8_t MSR_DDSR = 1 << 1;
constexpr uint8_t MSR_TERI = 1 << 2;
constexpr uint8_t MSR_DDCD = 1 << 3;
constexpr uint8_t MSR_CTS = 1 << 4;
constexpr uint8_t MSR_DSR = 1 << 5;
constexpr uint8_t MSR_RI = 1 << 6;
constexpr uint8_t MSR_DCD = 1 << 7;
constexpr uint8_t MSR_DELTA_MASK = 0x0f;
// Outside loopback the host side is a connected terminal: CTS, DSR and DCD asserted, no ring.
constexpr uint8_t MSR_CONNECTED = MSR_CTS | MSR_DSR | MSR_DCD;

} // namespace

Serial::Serial(std::shared_ptr<bus::IrqLine> irq, Output output)
    : m_irq(std::move(irq)), m_output(std::move(output)), m_msr(MSR_CONNECTED)
{
}

size_t Serial::rx_capacity() const { return (m_fcr & FCR_FIFO_ENABLE) ? FIFO_SIZE : 1; }

size_t Serial::rx_trigger() const
{
    if (!(m_fcr & FCR_FIFO_ENABLE))
        return 1;
    static constexpr size_t LEVELS[4] = { 1, 4, 8, 14 };
    return LEVELS[(m_fcr & FCR_TRIGGER_MASK) >> 6];
}

uint8_t Serial::pending_interrupt() const
{
    if ((m_ier & IER_ELSI) && (m_lsr_errors & LSR_OE))
        return IIR_RLSI;
    if ((m_ier & IER_ERBFI) && !m_rx.empty()) {
        if (m_rx.size() >= rx_trigger())
            return IIR_RDI;
        return IIR_CTI;
    }
    if ((m_ier & IER_ETBEI) && m_thr_ipending)
        return IIR_THRI;
    if ((m_ier & IER_EDSSI) && (m_msr & MSR_DELTA_MASK))
        return IIR_MSI;
    return IIR_NO_INT;
}

void Serial::update_irq()
{
    bool const level = pending_interrupt() != IIR_NO_INT && (m_mcr & MCR_OUT2);
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (m_irq)
        m_irq->set_level(level);
}

uint8_t Serial::loopback_msr() const
{
    uint8_t lines = 0;
    if (m_mcr & MCR_RTS)
        lines |= MSR_CTS;
    if (m_mcr & MCR_DTR)
        lines |= MSR_DSR;
    if (m_mcr & MCR_OUT1)
        lines |= MSR_RI;
    if (m_mcr & MCR_OUT2)
        lines |= MSR_DCD;
    return lines;
}

// Sets the MSR input lines (bits 4-7) and latches the delta bits for what changed.
void Serial::set_msr_lines(uint8_t lines)
{
    uint8_t const old = m_msr;
    uint8_t delta = m_msr & MSR_DELTA_MASK;
    uint8_t const changed = static_cast<uint8_t>(old ^ lines);
    if (changed & MSR_CTS)
        delta |= MSR_DCTS;
    if (changed & MSR_DSR)
        delta |= MSR_DDSR;
    if ((old & MSR_RI) && !(lines & MSR_RI)) // trailing edge of ring indicator
        delta |= MSR_TERI;
    if (changed & MSR_DCD)
        delta |= MSR_DDCD;
    m_msr = static_cast<uint8_t>((lines & 0xf0) | delta);
}

void Serial::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    if (offset >= REGISTER_COUNT || data.size() != 1) {
        ++m_bad_accesses;
        HAKO_WARN_RATELIMITED("serial: bad read at offset {} size {}", offset, data.size());
        std::fill(data.begin(), data.end(), uint8_t { 0xff });
        return;
    }
    data[0] = read_register(offset);
    update_irq();
}

void Serial::write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_mutex);
    if (offset >= REGISTER_COUNT || data.size() != 1) {
        ++m_bad_accesses;
        HAKO_WARN_RATELIMITED("serial: bad write at offset {} size {}", offset, data.size());
        return;
    }
    write_register(offset, data[0]);
    update_irq();
}

uint8_t Serial::read_register(uint64_t offset)
{
    bool const dlab = m_lcr & LCR_DLAB;
    switch (offset) {
    case RBR: {
        if (dlab)
            return m_dll;
        if (m_rx.empty())
            return 0;
        uint8_t const byte = m_rx.front();
        m_rx.pop_front();
        return byte;
    }
    case IER:
        return dlab ? m_dlm : m_ier;
    case IIR: {
        uint8_t const id = pending_interrupt();
        if (id == IIR_THRI)
            m_thr_ipending = false; // reading IIR when THRE is the source clears it
        uint8_t const fifo = (m_fcr & FCR_FIFO_ENABLE) ? IIR_FIFO_ENABLED : 0;
        return static_cast<uint8_t>(id | fifo);
    }
    case LCR:
        return m_lcr;
    case MCR:
        return m_mcr;
    case LSR: {
        // Transmission is immediate: THR and the shift register are always empty.
        uint8_t lsr = LSR_THRE | LSR_TEMT | m_lsr_errors;
        if (!m_rx.empty())
            lsr |= LSR_DR;
        m_lsr_errors = 0;
        return lsr;
    }
    case MSR: {
        uint8_t const msr = m_msr;
        m_msr &= static_cast<uint8_t>(~MSR_DELTA_MASK);
        return msr;
    }
    case SCR:
        return m_scr;
    default:
        return 0xff;
    }
}

void Serial::write_register(uint64_t offset, uint8_t value)
{
    bool const dlab = m_lcr & LCR_DLAB;
    switch (offset) {
    case THR:
        if (dlab) {
            m_dll = value;
            return;
        }
        if (m_mcr & MCR_LOOP) {
            if (m_rx.size() < rx_capacity())
                m_rx.push_back(value);
            else
                m_lsr_errors |= LSR_OE;
        } else if (m_output) {
            m_output(std::span<uint8_t const>(&value, 1));
        }
        // The byte left at once: THR is empty again, which is a fresh THRE interrupt.
        m_thr_ipending = true;
        return;
    case IER: {
        if (dlab) {
            m_dlm = value;
            return;
        }
        uint8_t const old = m_ier;
        m_ier = value & IER_MASK;
        // Enabling ETBEI while THR is empty raises the THRE interrupt (drivers rely on this to start transmit).
        if ((m_ier & IER_ETBEI) && !(old & IER_ETBEI))
            m_thr_ipending = true;
        return;
    }
    case FCR: {
        bool const was_enabled = m_fcr & FCR_FIFO_ENABLE;
        bool const enable = value & FCR_FIFO_ENABLE;
        // Changing the FIFO enable bit resets both FIFOs; the reset bits self-clear.
        if (was_enabled != enable || (value & FCR_RCVR_RESET)) {
            m_rx.clear();
            m_lsr_errors = 0;
        }
        if (value & FCR_XMIT_RESET)
            m_thr_ipending = (m_ier & IER_ETBEI) != 0;
        m_fcr = static_cast<uint8_t>(value & (FCR_FIFO_ENABLE | FCR_TRIGGER_MASK));
        // Leaving FIFO mode with bytes queued cannot happen (cleared above), so m_rx fits rx_capacity().
        return;
    }
    case LCR:
        m_lcr = value;
        return;
    case MCR: {
        uint8_t const old = m_mcr;
        m_mcr = value & MCR_MASK;
        if (m_mcr & MCR_LOOP)
            set_msr_lines(loopback_msr());
        else if (old & MCR_LOOP)
            set_msr_lines(MSR_CONNECTED);
        return;
    }
    case LSR:
    case MSR:
        return; // factory test registers: writes have no defined effect
    case SCR:
        m_scr = value;
        return;
    default:
        return;
    }
}

size_t Serial::receive(std::span<uint8_t const> bytes)
{
    std::lock_guard lock(m_mutex);
    if (m_mcr & MCR_LOOP)
        return 0;
    size_t const room = rx_capacity() - std::min(m_rx.size(), rx_capacity());
    size_t const n = std::min(room, bytes.size());
    m_rx.insert(m_rx.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    if (n > 0)
        update_irq();
    return n;
}

bool Serial::can_receive() const
{
    std::lock_guard lock(m_mutex);
    return !(m_mcr & MCR_LOOP) && m_rx.size() < rx_capacity();
}

size_t Serial::rx_queued() const
{
    std::lock_guard lock(m_mutex);
    return m_rx.size();
}

} // namespace hako::devices::legacy
