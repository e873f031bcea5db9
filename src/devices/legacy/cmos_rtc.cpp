#include "devices/legacy/cmos_rtc.h"

#include <algorithm>

#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::legacy {

namespace {

constexpr int64_t NS_PER_SECOND = 1'000'000'000;
constexpr int64_t UIP_WINDOW_NS = 244'000; // UIP is high for the 244 us before each update (datasheet)
constexpr uint8_t REG_A_DEFAULT = 0x26;   // DV = 010 (32.768 kHz time base), RS = 0110 (1024 Hz)
constexpr uint8_t REG_B_DEFAULT = CmosRtc::REG_B_24_12;
constexpr uint8_t CLOCK_REGISTER_END = 0x0e; // 0x00-0x0d belong to the clock
constexpr uint8_t ALARM_DONT_CARE = 0xc0;

// NVRAM bytes firmware reads (QEMU's pc_cmos_init, SeaBIOS's CMOS_* names).
constexpr uint8_t CMOS_FLOPPY_TYPES = 0x10;
constexpr uint8_t CMOS_EQUIPMENT = 0x14;
constexpr uint8_t CMOS_MEM_BASE_LOW = 0x15;
constexpr uint8_t CMOS_MEM_BASE_HIGH = 0x16;
constexpr uint8_t CMOS_MEM_EXTD_LOW = 0x17;
constexpr uint8_t CMOS_MEM_EXTD_HIGH = 0x18;
constexpr uint8_t CMOS_CHECKSUM_HIGH = 0x2e; // sum of 0x10-0x2d
constexpr uint8_t CMOS_CHECKSUM_LOW = 0x2f;
constexpr uint8_t CMOS_MEM_EXTD2_LOW = 0x30;
constexpr uint8_t CMOS_MEM_EXTD2_HIGH = 0x31;
constexpr uint8_t CMOS_MEM_ABOVE_16M_LOW = 0x34;
constexpr uint8_t CMOS_MEM_ABOVE_16M_HIGH = 0x35;
constexpr uint8_t CMOS_BOOT_FLAG1 = 0x38; // third boot device (bits 4-7), floppy signature check off (bit 0)
constexpr uint8_t CMOS_BOOT_FLAG2 = 0x3d; // second boot device (bits 4-7), first (bits 0-3)
constexpr uint8_t CMOS_MEM_HIGH_LOW = 0x5b; // 3 bytes: RAM above 4 GiB in 64 KiB units
constexpr uint8_t CMOS_CPU_COUNT = 0x5f;    // CPUs - 1
constexpr uint8_t EQUIPMENT_FPU = 0x02;
constexpr uint8_t EQUIPMENT_PS2_MOUSE = 0x04;
constexpr uint8_t BOOT_DEVICE_HDD = 2, BOOT_DEVICE_CDROM = 3, BOOT_DEVICE_NETWORK = 4;

int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        --q;
    return q;
}

// Days since 1970-01-01 of a proleptic Gregorian date (y >= 0), and back. Eras of 400 years (146097 days).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2 ? 1 : 0;
    int64_t const era = floor_div(y, 400);
    int64_t const yoe = y - era * 400;                                  // [0, 399]
    int64_t const mp = m > 2 ? m - 3 : m + 9;                           // March = 0
    int64_t const doy = (153 * mp + 2) / 5 + static_cast<int64_t>(d) - 1; // [0, 365]
    int64_t const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          // [0, 146096]
    return era * 146097 + doe - 719468;
}

struct Civil {
    int64_t year;
    unsigned month; // 1-12
    unsigned day;   // 1-31
};

Civil civil_from_days(int64_t z)
{
    z += 719468;
    int64_t const era = floor_div(z, 146097);
    int64_t const doe = z - era * 146097;
    int64_t const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t const mp = (5 * doy + 2) / 153;
    auto const day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
    auto const month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
    return { yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

// Rate select to period (datasheet table 3, 32.768 kHz time base): 1 and 2 repeat 8 and 9; 0 is off.
int64_t periodic_ns(uint8_t rs)
{
    if (rs == 0)
        return 0;
    if (rs < 3)
        rs = static_cast<uint8_t>(rs + 7);
    return static_cast<int64_t>((uint64_t { 1 } << (rs - 1)) * NS_PER_SECOND / 32768);
}

bool is_time_register(uint8_t index)
{
    switch (index) {
    case CmosRtc::REG_SECONDS:
    case CmosRtc::REG_MINUTES:
    case CmosRtc::REG_HOURS:
    case CmosRtc::REG_DAY_OF_WEEK:
    case CmosRtc::REG_DAY_OF_MONTH:
    case CmosRtc::REG_MONTH:
    case CmosRtc::REG_YEAR:
    case CmosRtc::REG_CENTURY:
        return true;
    default:
        return false;
    }
}

} // namespace

struct CmosRtc::TimerGuard {
    explicit TimerGuard(CmosRtc* r) : rtc(r) { }
    std::mutex mutex;
    CmosRtc* rtc;
};

CmosRtc::CmosRtc(std::shared_ptr<bus::IrqLine> irq, EventLoop* loop, std::function<int64_t()> clock_ns)
    : m_irq(std::move(irq)), m_loop(loop), m_clock_ns(std::move(clock_ns)),
      m_guard(std::make_shared<TimerGuard>(this))
{
    m_nvram[REG_A] = REG_A_DEFAULT;
    m_nvram[REG_B] = REG_B_DEFAULT;
    m_nvram[REG_D] = REG_D_VRT;
    m_last_second = now().seconds;
    if (int64_t const period = periodic_ns(REG_A_DEFAULT & REG_A_RS_MASK); period > 0 && m_clock_ns)
        m_last_period = floor_div(m_clock_ns(), period);
}

CmosRtc::~CmosRtc()
{
    std::optional<EventLoop::TimerId> periodic, second;
    {
        std::lock_guard lock(m_mutex);
        periodic = m_periodic_timer;
        second = m_second_timer;
    }
    if (m_loop) {
        if (periodic)
            m_loop->cancel_timer(*periodic);
        if (second)
            m_loop->cancel_timer(*second);
    }
    // A callback the loop already took out may still be about to run: it checks rtc under the guard's lock.
    std::lock_guard lock(m_guard->mutex);
    m_guard->rtc = nullptr;
}

CmosRtc::Clock CmosRtc::now() const
{
    int64_t const host = m_clock_ns ? m_clock_ns() : 0;
    int64_t const s = floor_div(host, NS_PER_SECOND);
    return { s + m_offset_s, host - s * NS_PER_SECOND };
}

uint8_t CmosRtc::encode(unsigned value) const
{
    value %= 100;
    if (m_nvram[REG_B] & REG_B_DM)
        return static_cast<uint8_t>(value);
    return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

unsigned CmosRtc::decode(uint8_t value) const
{
    if (m_nvram[REG_B] & REG_B_DM)
        return value;
    return static_cast<unsigned>((value >> 4) * 10 + (value & 0x0f)); // garbage BCD decodes to garbage, bounded
}

uint8_t CmosRtc::encode_hours(unsigned hours) const
{
    if (m_nvram[REG_B] & REG_B_24_12)
        return encode(hours);
    unsigned const h12 = hours % 12 == 0 ? 12 : hours % 12;
    return static_cast<uint8_t>(encode(h12) | (hours >= 12 ? 0x80 : 0));
}

unsigned CmosRtc::decode_hours(uint8_t value) const
{
    if (m_nvram[REG_B] & REG_B_24_12)
        return decode(value);
    bool const pm = value & 0x80;
    return decode(static_cast<uint8_t>(value & 0x7f)) % 12 + (pm ? 12 : 0);
}

uint8_t CmosRtc::time_register(uint8_t index, int64_t seconds) const
{
    int64_t const days = floor_div(seconds, 86400);
    auto const sod = static_cast<unsigned>(seconds - days * 86400);
    switch (index) {
    case REG_SECONDS:
        return encode(sod % 60);
    case REG_MINUTES:
        return encode(sod / 60 % 60);
    case REG_HOURS:
        return encode_hours(sod / 3600);
    case REG_DAY_OF_WEEK: // 1 = Sunday; 1970-01-01 was a Thursday
        return encode(static_cast<unsigned>(days - floor_div(days + 4, 7) * 7 + 4) % 7 + 1);
    case REG_DAY_OF_MONTH:
        return encode(civil_from_days(days).day);
    case REG_MONTH:
        return encode(civil_from_days(days).month);
    case REG_YEAR:
        return encode(static_cast<unsigned>(civil_from_days(days).year % 100));
    case REG_CENTURY:
        return encode(static_cast<unsigned>(civil_from_days(days).year / 100));
    default:
        return 0xff;
    }
}

// Freezes the running time into the registers (B.SET going up, or a single register about to be changed).
void CmosRtc::snapshot_time()
{
    int64_t const s = now().seconds;
    for (uint8_t index : { REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH,
             REG_YEAR, REG_CENTURY })
        m_nvram[index] = time_register(index, s);
}

// Makes the time in the registers the running time. Out-of-range fields are clamped, so any bytes give a time.
void CmosRtc::apply_time_from_registers()
{
    unsigned const sec = std::min(decode(m_nvram[REG_SECONDS]), 59u);
    unsigned const min = std::min(decode(m_nvram[REG_MINUTES]), 59u);
    unsigned const hour = std::min(decode_hours(m_nvram[REG_HOURS]), 23u);
    unsigned const day = std::clamp(decode(m_nvram[REG_DAY_OF_MONTH]), 1u, 31u);
    unsigned const month = std::clamp(decode(m_nvram[REG_MONTH]), 1u, 12u);
    int64_t const year = std::min(decode(m_nvram[REG_CENTURY]), 99u) * 100 + std::min(decode(m_nvram[REG_YEAR]), 99u);
    int64_t const guest = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
    int64_t const host = m_clock_ns ? m_clock_ns() : 0;
    m_offset_s = guest - floor_div(host, NS_PER_SECOND);
    m_last_second = guest;
}

// Brings PF, AF and UF up to date with the clock, and IRQF with them (IRQF = PF.PIE + AF.AIE + UF.UIE).
void CmosRtc::refresh_flags()
{
    uint8_t const b = m_nvram[REG_B];
    Clock const c = now();
    if (c.seconds != m_last_second) {
        m_last_second = c.seconds;
        if (!(b & REG_B_SET)) {
            m_nvram[REG_C] |= REG_C_UF;
            bool alarm = true;
            for (auto [alarm_reg, time_reg] : { std::pair { REG_SECONDS_ALARM, REG_SECONDS },
                     std::pair { REG_MINUTES_ALARM, REG_MINUTES }, std::pair { REG_HOURS_ALARM, REG_HOURS } }) {
                uint8_t const want = m_nvram[alarm_reg];
                if ((want & ALARM_DONT_CARE) != ALARM_DONT_CARE && want != time_register(time_reg, c.seconds))
                    alarm = false;
            }
            if (alarm)
                m_nvram[REG_C] |= REG_C_AF;
        }
    }
    int64_t const period = periodic_ns(m_nvram[REG_A] & REG_A_RS_MASK);
    if (period > 0) {
        int64_t const host = m_clock_ns ? m_clock_ns() : 0;
        int64_t const tick = floor_div(host, period);
        if (tick != m_last_period) {
            m_last_period = tick;
            m_nvram[REG_C] |= REG_C_PF;
        }
    }
    uint8_t const enabled = b & (REG_B_PIE | REG_B_AIE | REG_B_UIE); // same bit positions as PF, AF, UF
    if (m_nvram[REG_C] & enabled)
        m_nvram[REG_C] |= REG_C_IRQF;
    update_irq();
}

void CmosRtc::update_irq()
{
    bool const level = m_nvram[REG_C] & REG_C_IRQF;
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (m_irq)
        m_irq->set_level(level);
}

void CmosRtc::reprogram_timers()
{
    if (!m_loop)
        return;
    uint8_t const b = m_nvram[REG_B];
    int64_t const period = (b & REG_B_PIE) ? periodic_ns(m_nvram[REG_A] & REG_A_RS_MASK) : 0;
    if (m_periodic_timer && period != m_periodic_ns) {
        m_loop->cancel_timer(*m_periodic_timer);
        m_periodic_timer.reset();
    }
    std::weak_ptr<TimerGuard> guard = m_guard;
    auto callback = [guard] {
        if (auto g = guard.lock()) {
            std::lock_guard lock(g->mutex);
            if (g->rtc)
                g->rtc->on_timer();
        }
    };
    if (period > 0 && !m_periodic_timer) {
        m_periodic_ns = period;
        m_periodic_timer = m_loop->add_timer(std::chrono::nanoseconds(period), std::chrono::nanoseconds(period), callback);
    }
    bool const want_second = (b & (REG_B_UIE | REG_B_AIE)) && !(b & REG_B_SET);
    if (want_second && !m_second_timer) {
        // First shot just after the next second boundary of the (host-aligned) clock, then every second.
        int64_t const to_boundary = NS_PER_SECOND - now().subsecond_ns + 1000;
        m_second_timer = m_loop->add_timer(std::chrono::nanoseconds(to_boundary),
            std::chrono::nanoseconds(NS_PER_SECOND), callback);
    } else if (!want_second && m_second_timer) {
        m_loop->cancel_timer(*m_second_timer);
        m_second_timer.reset();
    }
}

void CmosRtc::on_timer()
{
    std::lock_guard lock(m_mutex);
    refresh_flags();
}

uint8_t CmosRtc::read_register(uint8_t index)
{
    uint8_t const b = m_nvram[REG_B];
    if (is_time_register(index))
        return (b & REG_B_SET) ? m_nvram[index] : time_register(index, now().seconds);
    switch (index) {
    case REG_A: {
        uint8_t a = m_nvram[REG_A] & static_cast<uint8_t>(~REG_A_UIP);
        if (!(b & REG_B_SET) && now().subsecond_ns >= NS_PER_SECOND - UIP_WINDOW_NS)
            a |= REG_A_UIP;
        return a;
    }
    case REG_C: {
        refresh_flags();
        uint8_t const c = m_nvram[REG_C];
        m_nvram[REG_C] = 0;
        update_irq();
        return c;
    }
    case REG_D:
        return REG_D_VRT;
    default:
        return m_nvram[index];
    }
}

void CmosRtc::write_register(uint8_t index, uint8_t value)
{
    uint8_t const b = m_nvram[REG_B];
    if (is_time_register(index)) {
        if (b & REG_B_SET) {
            m_nvram[index] = value;
        } else {
            snapshot_time();
            m_nvram[index] = value;
            apply_time_from_registers();
        }
        return;
    }
    switch (index) {
    case REG_A: {
        m_nvram[REG_A] = value & static_cast<uint8_t>(~REG_A_UIP);
        // A new rate starts counting from now: the first periodic flag comes a full new period later.
        int64_t const period = periodic_ns(m_nvram[REG_A] & REG_A_RS_MASK);
        if (period > 0 && m_clock_ns)
            m_last_period = floor_div(m_clock_ns(), period);
        break;
    }
    case REG_B: {
        uint8_t nb = value;
        if (nb & REG_B_SET)
            nb &= static_cast<uint8_t>(~REG_B_UIE); // setting SET clears UIE (datasheet)
        if ((nb & REG_B_SET) && !(b & REG_B_SET))
            snapshot_time();
        m_nvram[REG_B] = nb;
        if (!(nb & REG_B_SET) && (b & REG_B_SET))
            apply_time_from_registers();
        break;
    }
    case REG_C:
    case REG_D:
        HAKO_WARN_RATELIMITED("cmos-rtc: write {:#x} to read-only register {:#x}", value, index);
        return;
    default:
        m_nvram[index] = value;
        return;
    }
    refresh_flags();
    reprogram_timers();
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (offset >= 4 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("cmos-rtc: bad read at offset {} size {}", offset, data.size());
        return;
    }
    std::lock_guard lock(m_mutex);
    switch (offset) {
    case 0:
    case 2:
        return; // the index ports are write-only
    case 1:
        data[0] = read_register(m_index[0]);
        return;
    case 3:
        data[0] = m_nvram[0x80u + m_index[1]];
        return;
    }
}

void CmosRtc::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (offset >= 4 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("cmos-rtc: bad write at offset {} size {}", offset, data.size());
        return;
    }
    std::lock_guard lock(m_mutex);
    uint8_t const value = data[0];
    switch (offset) {
    case 0:
        m_index[0] = value & 0x7f; // bit 7 masks NMI on a PC: there is no NMI source to mask
        return;
    case 1:
        write_register(m_index[0], value);
        return;
    case 2:
        m_index[1] = value & 0x7f;
        return;
    case 3:
        m_nvram[0x80u + m_index[1]] = value;
        return;
    }
}

void CmosRtc::set_nvram(uint16_t index, uint8_t value)
{
    if (index >= NVRAM_SIZE || index < CLOCK_REGISTER_END) {
        HAKO_WARN("cmos-rtc: set_nvram refuses index {:#x}", index);
        return;
    }
    std::lock_guard lock(m_mutex);
    m_nvram[index] = value;
}

void CmosRtc::set_memory_layout(uint64_t low_end, uint64_t high_size, unsigned cpus)
{
    std::lock_guard lock(m_mutex);
    auto put16 = [this](uint8_t low, uint8_t high, uint64_t v) {
        m_nvram[low] = static_cast<uint8_t>(v);
        m_nvram[high] = static_cast<uint8_t>(v >> 8);
    };
    put16(CMOS_MEM_BASE_LOW, CMOS_MEM_BASE_HIGH, 640);
    uint64_t const extended_kib = low_end > MiB ? std::min<uint64_t>((low_end - MiB) / KiB, 0xffff) : 0;
    put16(CMOS_MEM_EXTD_LOW, CMOS_MEM_EXTD_HIGH, extended_kib);
    put16(CMOS_MEM_EXTD2_LOW, CMOS_MEM_EXTD2_HIGH, extended_kib);
    uint64_t const above_16m = low_end > 16 * MiB ? std::min<uint64_t>((low_end - 16 * MiB) / (64 * KiB), 0xffff) : 0;
    put16(CMOS_MEM_ABOVE_16M_LOW, CMOS_MEM_ABOVE_16M_HIGH, above_16m);
    uint64_t const high_units = std::min<uint64_t>(high_size / (64 * KiB), 0xffffff);
    m_nvram[CMOS_MEM_HIGH_LOW] = static_cast<uint8_t>(high_units);
    m_nvram[CMOS_MEM_HIGH_LOW + 1] = static_cast<uint8_t>(high_units >> 8);
    m_nvram[CMOS_MEM_HIGH_LOW + 2] = static_cast<uint8_t>(high_units >> 16);
    m_nvram[CMOS_CPU_COUNT] = static_cast<uint8_t>(cpus > 0 ? std::min(cpus - 1, 0xffu) : 0);
    m_nvram[CMOS_FLOPPY_TYPES] = 0; // no floppy drives
    m_nvram[CMOS_EQUIPMENT] = EQUIPMENT_FPU | EQUIPMENT_PS2_MOUSE; // no floppies, EGA/VGA display
    m_nvram[CMOS_BOOT_FLAG2] = static_cast<uint8_t>(BOOT_DEVICE_CDROM << 4 | BOOT_DEVICE_HDD);
    m_nvram[CMOS_BOOT_FLAG1] = static_cast<uint8_t>(BOOT_DEVICE_NETWORK << 4);
    unsigned sum = 0;
    for (uint8_t i = CMOS_FLOPPY_TYPES; i < CMOS_CHECKSUM_HIGH; ++i)
        sum += m_nvram[i];
    put16(CMOS_CHECKSUM_LOW, CMOS_CHECKSUM_HIGH, sum);
}

} // namespace hako::devices::legacy
