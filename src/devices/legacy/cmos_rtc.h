// CmosRtc: a Motorola MC146818A real-time clock with its CMOS NVRAM, as at ports 0x70-0x73 on a PC.
//
// Ports (offsets from the base): 0 index for bank 0 (bit 7, the NMI mask, is ignored), 1 data, 2 index for the
// second 128-byte bank (as QEMU's and Intel PCH's extended NVRAM), 3 data. Registers (MC146818A datasheet):
// 0-9 time, alarm and date (BCD or binary per B.DM, 12/24 h per B.24/12, 12 h mode keeps PM in bit 7 of the hour),
// 0x32 century (as the ACPI FADT and QEMU use it), A (UIP, DV, RS), B (SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE),
// C (IRQF, PF, AF, UF: read-and-clear), D (VRT: battery always good). Everything else is plain NVRAM.
//
// Time is the host realtime clock plus a whole-second offset the guest sets by writing the time registers
// (with B.SET held, or one register at a time without it). Flags are brought up to date whenever the guest
// looks, and, when an EventLoop is given, by timers for the periodic (B.PIE, rate from A.RS), alarm (B.AIE,
// with 0xC0-0xFF don't-care values) and update-ended (B.UIE) interrupts. IRQ 8 is asserted when IRQF becomes
// set and deasserted when the guest reads C.
//
// Deliberately not modelled: daylight saving (DSE is stored only), the square-wave output, divider-chain resets
// (DV is stored only), and catching up on alarms missed between two looks when no EventLoop drives the clock.
// The EventLoop, when given, must outlive this object.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "base/event_loop.h"
#include "bus/device.h"
#include "bus/irq_line.h"

namespace hako::devices::legacy {

class CmosRtc final : public bus::Device {
public:
    // Register indices (datasheet figure 2, plus the PC's century byte).
    static constexpr uint8_t REG_SECONDS = 0x00;
    static constexpr uint8_t REG_SECONDS_ALARM = 0x01;
    static constexpr uint8_t REG_MINUTES = 0x02;
    static constexpr uint8_t REG_MINUTES_ALARM = 0x03;
    static constexpr uint8_t REG_HOURS = 0x04;
    static constexpr uint8_t REG_HOURS_ALARM = 0x05;
    static constexpr uint8_t REG_DAY_OF_WEEK = 0x06;
    static constexpr uint8_t REG_DAY_OF_MONTH = 0x07;
    static constexpr uint8_t REG_MONTH = 0x08;
    static constexpr uint8_t REG_YEAR = 0x09;
    static constexpr uint8_t REG_A = 0x0a;
    static constexpr uint8_t REG_B = 0x0b;
    static constexpr uint8_t REG_C = 0x0c;
    static constexpr uint8_t REG_D = 0x0d;
    static constexpr uint8_t REG_CENTURY = 0x32;

    static constexpr uint8_t REG_A_UIP = 1 << 7;
    static constexpr uint8_t REG_A_DV_MASK = 0x70;
    static constexpr uint8_t REG_A_RS_MASK = 0x0f;
    static constexpr uint8_t REG_B_SET = 1 << 7;
    static constexpr uint8_t REG_B_PIE = 1 << 6;
    static constexpr uint8_t REG_B_AIE = 1 << 5;
    static constexpr uint8_t REG_B_UIE = 1 << 4;
    static constexpr uint8_t REG_B_SQWE = 1 << 3;
    static constexpr uint8_t REG_B_DM = 1 << 2;    // 1 = binary, 0 = BCD
    static constexpr uint8_t REG_B_24_12 = 1 << 1; // 1 = 24-hour mode
    static constexpr uint8_t REG_B_DSE = 1 << 0;
    static constexpr uint8_t REG_C_IRQF = 1 << 7;
    static constexpr uint8_t REG_C_PF = 1 << 6;
    static constexpr uint8_t REG_C_AF = 1 << 5;
    static constexpr uint8_t REG_C_UF = 1 << 4;
    static constexpr uint8_t REG_D_VRT = 1 << 7;

    static constexpr size_t NVRAM_SIZE = 256;

    /// \param irq IRQ 8  \param loop drives the interrupt timers; nullptr for none (flags still update when read)
    /// \param clock_ns host realtime in ns since the Unix epoch
    CmosRtc(std::shared_ptr<bus::IrqLine> irq, EventLoop* loop, std::function<int64_t()> clock_ns);
    ~CmosRtc() override;
    CmosRtc(CmosRtc const&) = delete;
    CmosRtc& operator=(CmosRtc const&) = delete;

    std::string_view name() const override { return "cmos-rtc"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// Sets one NVRAM byte (index 0-255 across both banks). The clock registers 0x00-0x0d are refused (logged).
    void set_nvram(uint16_t index, uint8_t value);
    /// Writes the memory-size, CPU-count, equipment and boot-order bytes firmware reads, as QEMU's PC does.
    /// \param low_end end of RAM below 4 GiB  \param high_size bytes of RAM from 4 GiB on  \param cpus vCPU count
    void set_memory_layout(uint64_t low_end, uint64_t high_size, unsigned cpus);

private:
    struct TimerGuard; // keeps timer callbacks from reaching a destroyed device

    struct Clock {
        int64_t seconds;     // guest time, seconds since the epoch
        int64_t subsecond_ns;
    };
    Clock now() const;
    uint8_t read_register(uint8_t index);
    void write_register(uint8_t index, uint8_t value);
    uint8_t encode(unsigned value) const;
    unsigned decode(uint8_t value) const;
    uint8_t encode_hours(unsigned hours) const;
    unsigned decode_hours(uint8_t value) const;
    uint8_t time_register(uint8_t index, int64_t seconds) const;
    void snapshot_time();
    void apply_time_from_registers();
    void refresh_flags();
    void update_irq();
    void reprogram_timers();
    void on_timer();

    std::shared_ptr<bus::IrqLine> m_irq;
    EventLoop* m_loop;
    std::function<int64_t()> m_clock_ns;
    std::shared_ptr<TimerGuard> m_guard;

    // Lock order: TimerGuard::mutex, then m_mutex, then EventLoop's internal lock. m_irq is driven with m_mutex held.
    mutable std::mutex m_mutex;
    std::array<uint8_t, NVRAM_SIZE> m_nvram {};
    uint8_t m_index[2] { 0, 0 }; // bank 0, bank 1
    int64_t m_offset_s { 0 };    // guest time - host time, whole seconds
    int64_t m_last_second { 0 };
    int64_t m_last_period { 0 };
    bool m_irq_level { false };
    std::optional<EventLoop::TimerId> m_periodic_timer;
    int64_t m_periodic_ns { 0 };
    std::optional<EventLoop::TimerId> m_second_timer;
};

} // namespace hako::devices::legacy
