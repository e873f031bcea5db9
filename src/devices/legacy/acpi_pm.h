// AcpiPm: the ACPI fixed-hardware PM register block (ACPI 6.5 section 4.8), laid out like QEMU's PIIX4 PM at
// PORT_ACPI_PM_BASE (see layout.h for the offsets the FADT advertises).
//
// Registers: PM1a_STS (write-1-to-clear: TMR_STS, PWRBTN_STS, WAK_STS...), PM1a_EN, PM1a_CNT (SCI_EN reads as 1,
// because hako has no SMM and is always in ACPI mode; SLP_TYP/SLP_EN: S5 powers off), PM_TMR (24-bit, 3.579545 MHz,
// read-only), GPE0_STS (write-1-to-clear) and GPE0_EN, 2 bytes each. SCI is a level: any enabled status bit set.
//
// Deliberately not modelled: sleep states other than S5 (logged and ignored), the timer overflow interrupt
// (TMR_STS is computed when read, nothing raises SCI for it on its own), PM1b, PM2 and the SMI command port.
// Byte, word and dword accesses anywhere in the block are taken apart byte by byte.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "bus/device.h"
#include "bus/irq_line.h"
#include "bus/system_control.h"

namespace hako::devices::legacy {

class AcpiPm final : public bus::Device {
public:
    // PM1_STS / PM1_EN bits (ACPI tables 4.16, 4.17).
    static constexpr uint16_t TMR_STS = 1 << 0;
    static constexpr uint16_t BM_STS = 1 << 4;
    static constexpr uint16_t GBL_STS = 1 << 5;
    static constexpr uint16_t PWRBTN_STS = 1 << 8;
    static constexpr uint16_t SLPBTN_STS = 1 << 9;
    static constexpr uint16_t RTC_STS = 1 << 10;
    static constexpr uint16_t WAK_STS = 1 << 15;
    static constexpr uint16_t TMR_EN = 1 << 0;
    static constexpr uint16_t GBL_EN = 1 << 5;
    static constexpr uint16_t PWRBTN_EN = 1 << 8;
    static constexpr uint16_t SLPBTN_EN = 1 << 9;
    static constexpr uint16_t RTC_EN = 1 << 10;
    // PM1_CNT bits (ACPI table 4.18).
    static constexpr uint16_t SCI_EN = 1 << 0;
    static constexpr uint16_t BM_RLD = 1 << 1;
    static constexpr uint16_t GBL_RLS = 1 << 2;
    static constexpr uint16_t SLP_TYP_SHIFT = 10;
    static constexpr uint16_t SLP_TYP_MASK = 7 << SLP_TYP_SHIFT;
    static constexpr uint16_t SLP_EN = 1 << 13;
    static constexpr uint64_t PM_TIMER_HZ = 3579545;

    /// \param sci the SCI line (IRQ 9)  \param monotonic_ns a monotonic clock in ns, for PM_TMR
    AcpiPm(bus::SystemControl& system, std::shared_ptr<bus::IrqLine> sci, std::function<int64_t()> monotonic_ns);

    std::string_view name() const override { return "acpi-pm"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    /// The host pressed the power button: sets PWRBTN_STS, raising SCI if the guest enabled it. Thread-safe.
    void press_power_button();

private:
    static bool range_within_block(uint64_t offset, size_t size);
    uint32_t timer_value() const;
    uint8_t read_byte(uint64_t offset);
    uint32_t m_timer_sample { 0 }; // PM_TMR as sampled at the start of the current read (guarded by m_mutex)
    void write_byte(uint64_t offset, uint8_t value, bool& sleep);
    void update_timer_status();
    void update_sci();

    bus::SystemControl& m_system;
    std::shared_ptr<bus::IrqLine> m_sci;
    std::function<int64_t()> m_monotonic_ns;
    int64_t m_start_ns;

    std::mutex m_mutex; // leaf lock; m_sci is driven with it held
    uint16_t m_pm1_sts { 0 };
    uint16_t m_pm1_en { 0 };
    uint16_t m_pm1_cnt { SCI_EN };
    uint16_t m_gpe0_sts { 0 };
    uint16_t m_gpe0_en { 0 };
    uint32_t m_timer_msb { 0 }; // bit 23 of PM_TMR when TMR_STS was last brought up to date
    bool m_sci_level { false };
};

} // namespace hako::devices::legacy
