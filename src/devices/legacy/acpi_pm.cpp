#include "devices/legacy/acpi_pm.h"

#include <algorithm>

#include "arch/x86/layout.h"
#include "base/log.h"

namespace hako::devices::legacy {

namespace {
using arch::x86::GPE0_OFFSET;
using arch::x86::PM1A_CNT_OFFSET;
using arch::x86::PM1A_EVT_OFFSET;
using arch::x86::PM_BLOCK_SIZE;
using arch::x86::PM_TMR_OFFSET;

constexpr uint64_t PM1_STS = PM1A_EVT_OFFSET;
constexpr uint64_t PM1_EN = PM1A_EVT_OFFSET + 2;
constexpr uint64_t PM1_CNT = PM1A_CNT_OFFSET;
constexpr uint64_t PM_TMR = PM_TMR_OFFSET;
constexpr uint64_t GPE0_STS = GPE0_OFFSET;
constexpr uint64_t GPE0_EN = GPE0_OFFSET + 2;
constexpr uint32_t PM_TMR_MASK = 0xffffff;

// PM1_STS bits that can raise SCI when their enable bit is set (same positions in PM1_EN).
constexpr uint16_t SCI_SOURCES = AcpiPm::TMR_STS | AcpiPm::GBL_STS | AcpiPm::PWRBTN_STS | AcpiPm::SLPBTN_STS
    | AcpiPm::RTC_STS;
// PM1_CNT bits the guest can write and read back (SLP_EN is write-only, SCI_EN is fixed).
constexpr uint16_t PM1_CNT_WRITABLE = AcpiPm::BM_RLD | AcpiPm::SLP_TYP_MASK;

uint8_t byte_of(uint16_t v, uint64_t index) { return static_cast<uint8_t>(v >> (8 * index)); }
void set_byte(uint16_t& reg, uint64_t index, uint8_t value)
{
    uint16_t const shift = static_cast<uint16_t>(8 * index);
    reg = static_cast<uint16_t>((reg & ~(0xff << shift)) | (value << shift));
}
} // namespace

AcpiPm::AcpiPm(bus::SystemControl& system, std::shared_ptr<bus::IrqLine> sci, std::function<int64_t()> monotonic_ns)
    : m_system(system), m_sci(std::move(sci)), m_monotonic_ns(std::move(monotonic_ns)),
      m_start_ns(m_monotonic_ns ? m_monotonic_ns() : 0)
{
}

uint32_t AcpiPm::timer_value() const
{
    int64_t const now = m_monotonic_ns ? m_monotonic_ns() : m_start_ns;
    // A clock that went backwards (it should not) reads as no time passed.
    uint64_t const ns = now > m_start_ns ? static_cast<uint64_t>(now - m_start_ns) : 0;
    // Split so the multiplication cannot overflow: seconds and the sub-second remainder separately.
    uint64_t const ticks = (ns / 1'000'000'000) * PM_TIMER_HZ + (ns % 1'000'000'000) * PM_TIMER_HZ / 1'000'000'000;
    return static_cast<uint32_t>(ticks & PM_TMR_MASK);
}

void AcpiPm::update_timer_status()
{
    uint32_t const msb = (timer_value() >> 23) & 1;
    // TMR_STS is set whenever bit 23 of the timer changes. Checked when the guest looks, so a change that came
    // and went between two looks (16.7 million ticks, about 4.7 s) is missed; the guest polls far more often.
    if (msb != m_timer_msb) {
        m_timer_msb = msb;
        m_pm1_sts |= TMR_STS;
    }
}

void AcpiPm::update_sci()
{
    bool const level = (m_pm1_sts & m_pm1_en & SCI_SOURCES) != 0 || (m_gpe0_sts & m_gpe0_en) != 0;
    if (level == m_sci_level)
        return;
    m_sci_level = level;
    if (m_sci)
        m_sci->set_level(level);
}

uint8_t AcpiPm::read_byte(uint64_t offset)
{
    if (offset >= PM1_STS && offset < PM1_STS + 2)
        return byte_of(m_pm1_sts, offset - PM1_STS);
    if (offset >= PM1_EN && offset < PM1_EN + 2)
        return byte_of(m_pm1_en, offset - PM1_EN);
    if (offset >= PM1_CNT && offset < PM1_CNT + 2)
        return byte_of(static_cast<uint16_t>(m_pm1_cnt | SCI_EN), offset - PM1_CNT);
    if (offset >= PM_TMR && offset < PM_TMR + 4)
        return static_cast<uint8_t>(m_timer_sample >> (8 * (offset - PM_TMR)));
    if (offset >= GPE0_STS && offset < GPE0_STS + 2)
        return byte_of(m_gpe0_sts, offset - GPE0_STS);
    if (offset >= GPE0_EN && offset < GPE0_EN + 2)
        return byte_of(m_gpe0_en, offset - GPE0_EN);
    return 0xff;
}

void AcpiPm::write_byte(uint64_t offset, uint8_t value, bool& sleep)
{
    if (offset >= PM1_STS && offset < PM1_STS + 2) {
        uint16_t clear = 0;
        set_byte(clear, offset - PM1_STS, value);
        m_pm1_sts = static_cast<uint16_t>(m_pm1_sts & ~clear);
    } else if (offset >= PM1_EN && offset < PM1_EN + 2) {
        set_byte(m_pm1_en, offset - PM1_EN, value);
    } else if (offset >= PM1_CNT && offset < PM1_CNT + 2) {
        uint16_t written = m_pm1_cnt;
        set_byte(written, offset - PM1_CNT, value);
        if (written & SLP_EN)
            sleep = true;
        // GBL_RLS would signal firmware through an SMI; there is no firmware behind hako's ACPI, so it is dropped.
        m_pm1_cnt = static_cast<uint16_t>((written & PM1_CNT_WRITABLE) | SCI_EN);
    } else if (offset >= GPE0_STS && offset < GPE0_STS + 2) {
        uint16_t clear = 0;
        set_byte(clear, offset - GPE0_STS, value);
        m_gpe0_sts = static_cast<uint16_t>(m_gpe0_sts & ~clear);
    } else if (offset >= GPE0_EN && offset < GPE0_EN + 2) {
        set_byte(m_gpe0_en, offset - GPE0_EN, value);
    } else if (offset >= PM_TMR && offset < PM_TMR + 4) {
        HAKO_WARN_RATELIMITED("acpi-pm: write to the read-only PM timer");
    } else {
        HAKO_WARN_RATELIMITED("acpi-pm: write to unknown offset {:#x}", offset);
    }
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data)
{
    if (!range_within_block(offset, data.size())) {
        HAKO_WARN_RATELIMITED("acpi-pm: bad read at offset {:#x} size {}", offset, data.size());
        std::fill(data.begin(), data.end(), uint8_t { 0xff });
        return;
    }
    std::lock_guard lock(m_mutex);
    update_timer_status();
    // One sample of the timer per access: a dword read must not combine bytes of different moments (a carry between
    // them would make the timer jump by 2^24 ticks in the guest's eyes).
    m_timer_sample = timer_value();
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = read_byte(offset + i);
    update_sci();
}

void AcpiPm::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (!range_within_block(offset, data.size())) {
        HAKO_WARN_RATELIMITED("acpi-pm: bad write at offset {:#x} size {}", offset, data.size());
        return;
    }
    bool sleep = false;
    uint8_t slp_typ;
    {
        std::lock_guard lock(m_mutex);
        update_timer_status();
        for (size_t i = 0; i < data.size(); ++i)
            write_byte(offset + i, data[i], sleep);
        slp_typ = static_cast<uint8_t>((m_pm1_cnt & SLP_TYP_MASK) >> SLP_TYP_SHIFT);
        update_sci();
    }
    if (!sleep)
        return;
    if (slp_typ == arch::x86::SLP_TYP_S5) {
        HAKO_INFO("acpi-pm: guest entered S5, powering off");
        m_system.request(bus::SystemEvent::PowerOff);
    } else {
        HAKO_WARN_RATELIMITED("acpi-pm: guest asked for sleep type {}, which hako does not support; ignored", slp_typ);
    }
}

bool AcpiPm::range_within_block(uint64_t offset, size_t size)
{
    return size >= 1 && size <= 4 && offset < PM_BLOCK_SIZE && size <= PM_BLOCK_SIZE - offset;
}

void AcpiPm::press_power_button()
{
    std::lock_guard lock(m_mutex);
    m_pm1_sts |= PWRBTN_STS;
    update_sci();
}

} // namespace hako::devices::legacy
