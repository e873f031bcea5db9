// Serial: a 16550A UART (National Semiconductor PC16550D datasheet), as on a PC's COM port.
//
// Registers (offsets 0-7 from the port base): RBR/THR (DLL with LCR.DLAB), IER (DLM with DLAB), IIR/FCR, LCR, MCR,
// LSR, MSR, SCR. 16-byte receive FIFO with the FCR trigger level; interrupt sources in datasheet priority order
// (receiver line status, received data available, character timeout, THR empty, modem status). The IRQ pin is
// gated by MCR.OUT2, as the PC's COM port wiring does. MCR.LOOP loops THR back into the receiver and the modem
// control outputs back into MSR.
//
// Deliberately not modelled: bit timing and the baud rate (transmit is immediate, the divisor is only stored),
// the transmit FIFO (THR empties at once), parity/framing/break errors (only overrun can happen), DMA modes.
// The character timeout interrupt has no clock behind it: it is pending whenever the FIFO holds data below its
// trigger level.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "bus/device.h"
#include "bus/irq_line.h"

namespace hako::devices::legacy {

class Serial final : public bus::Device {
public:
    using Output = std::function<void(std::span<uint8_t const>)>;

    static constexpr size_t FIFO_SIZE = 16;

    /// \param irq the COM port's interrupt line  \param output receives every byte the guest transmits
    Serial(std::shared_ptr<bus::IrqLine> irq, Output output);

    std::string_view name() const override { return "serial"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// Queues host input into the receive FIFO. Thread-safe.
    /// \return how many bytes were taken (at most the FIFO's free space: 16 with FIFOs enabled, 1 without;
    ///         0 in loopback mode, where the serial input is disconnected)
    size_t receive(std::span<uint8_t const> bytes);
    /// True if receive() would take at least one byte now. Thread-safe.
    bool can_receive() const;
    /// Bytes waiting in the receive FIFO (for tests and fuzzers). Thread-safe.
    size_t rx_queued() const;

private:
    uint8_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint8_t value);
    size_t rx_capacity() const;
    size_t rx_trigger() const;
    uint8_t pending_interrupt() const; // IIR low nibble, without the FIFO bits
    uint8_t loopback_msr() const;
    void set_msr_lines(uint8_t lines);
    void update_irq();

    std::shared_ptr<bus::IrqLine> m_irq;
    Output m_output;

    mutable std::mutex m_mutex; // leaf lock; m_irq and m_output are called with it held (they never call back)
    std::deque<uint8_t> m_rx;   // never more than FIFO_SIZE
    uint8_t m_ier { 0 };
    uint8_t m_lcr { 0 };
    uint8_t m_mcr { 0 };
    uint8_t m_lsr_errors { 0 }; // LSR.OE, cleared by reading LSR
    uint8_t m_msr { 0 };
    uint8_t m_scr { 0 };
    uint8_t m_dll { 0x0c }; // 9600 baud, as a BIOS leaves it
    uint8_t m_dlm { 0 };
    uint8_t m_fcr { 0 };    // FIFO enable and trigger bits as last written
    bool m_thr_ipending { false };
    bool m_irq_level { false };
    uint64_t m_bad_accesses { 0 };
};

} // namespace hako::devices::legacy
