/* rtc: the MC146818 CMOS RTC. Reads the date (UIP handshake, BCD or binary and 12/24-hour per register B) and
 * compares it with now=<unix seconds> from the command line (within 5 s, or slack=<s>); checks register D VRT; runs the periodic
 * interrupt at 1024 Hz (register A rate 6, B.PIE) on IRQ 8 through the IOAPIC (or the PIC with irq=pic) and
 * requires at least 3 interrupts within a bounded wait.
 *
 * Exit codes: 2 no now=, 3 UIP never cleared, 4 time mismatch, 5 VRT clear, 6 IRQ setup, 7 periodic timeout,
 * 8 bad date fields.
 */
#include "guest.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
#define RTC_CENTURY 0x32
#define REG_A_UIP 0x80
#define REG_B_PIE 0x40
#define REG_B_DM_BINARY 0x04
#define REG_B_24H 0x02
#define REG_C_IRQF 0x80
#define REG_C_PF 0x40
#define REG_D_VRT 0x80

struct rtc_time {
    uint32_t sec, min, hour, day, mon, year, century;
};

static bool wait_uip_clear(void)
{
    for (uint32_t i = 0; i < 200000; i++) {
        if (!(cmos_read(RTC_REG_A) & REG_A_UIP))
            return true;
    }
    return false;
}

static void read_raw(struct rtc_time* t)
{
    t->sec = cmos_read(RTC_SECONDS);
    t->min = cmos_read(RTC_MINUTES);
    t->hour = cmos_read(RTC_HOURS);
    t->day = cmos_read(RTC_DAY_OF_MONTH);
    t->mon = cmos_read(RTC_MONTH);
    t->year = cmos_read(RTC_YEAR);
    t->century = cmos_read(RTC_CENTURY);
}

static uint32_t bcd(uint32_t v) { return (v & 0x0f) + (v >> 4) * 10; }

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil, 32-bit, years >= 1970). */
static uint32_t days_from_civil(uint32_t y, uint32_t m, uint32_t d)
{
    y -= m <= 2;
    uint32_t era = y / 400;
    uint32_t yoe = y - era * 400;
    uint32_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static volatile uint32_t s_periodic;
static volatile uint32_t s_rtc_irqs;
static enum irq_mode s_mode;

static void rtc_isr(struct int_frame* f)
{
    (void)f;
    s_rtc_irqs++;
    uint8_t c = cmos_read(RTC_REG_C); /* reading C acknowledges: the RTC drops IRQ 8 */
    if (c & REG_C_PF)
        s_periodic++;
    irq_eoi(s_mode, 8);
}

int guest_main(void)
{
    uint32_t now;
    if (!cmdline_get_u32("now", &now))
        fail(2, "no now=<unix seconds> on the command line");

    uint8_t reg_b = cmos_read(RTC_REG_B);
    printf("rtc: register A %x B %x D %x\n", cmos_read(RTC_REG_A), reg_b, cmos_read(RTC_REG_D));

    struct rtc_time t, t2;
    bool stable = false;
    for (int tries = 0; tries < 5 && !stable; tries++) {
        if (!wait_uip_clear())
            fail(3, "register A UIP never cleared");
        read_raw(&t);
        if (!wait_uip_clear())
            fail(3, "register A UIP never cleared");
        read_raw(&t2);
        stable = memcmp(&t, &t2, sizeof(t)) == 0;
    }
    printf("rtc: raw %x-%x-%x %x:%x:%x century %x\n", t.year, t.mon, t.day, t.hour, t.min, t.sec, t.century);
    bool pm = false;
    if (!(reg_b & REG_B_24H)) {
        pm = (t.hour & 0x80) != 0;
        t.hour &= 0x7f;
    }
    if (!(reg_b & REG_B_DM_BINARY)) {
        t.sec = bcd(t.sec);
        t.min = bcd(t.min);
        t.hour = bcd(t.hour);
        t.day = bcd(t.day);
        t.mon = bcd(t.mon);
        t.year = bcd(t.year);
        t.century = bcd(t.century);
    }
    if (!(reg_b & REG_B_24H)) {
        if (t.hour == 12)
            t.hour = 0;
        if (pm)
            t.hour += 12;
    }
    uint32_t full_year = (t.century >= 19 && t.century <= 21 ? t.century * 100 : 2000) + t.year;
    printf("rtc: %u-%02u-%02u %02u:%02u:%02u (%s, %s)\n", full_year, t.mon, t.day, t.hour, t.min, t.sec,
        (reg_b & REG_B_DM_BINARY) ? "binary" : "BCD", (reg_b & REG_B_24H) ? "24h" : "12h");
    if (t.sec > 59 || t.min > 59 || t.hour > 23 || t.day < 1 || t.day > 31 || t.mon < 1 || t.mon > 12
        || full_year < 1970)
        fail(8, "date fields out of range");
    uint32_t rtc_unix = days_from_civil(full_year, t.mon, t.day) * 86400 + t.hour * 3600 + t.min * 60 + t.sec;
    uint32_t diff = rtc_unix > now ? rtc_unix - now : now - rtc_unix;
    printf("rtc: unix %u, now= %u, difference %u s\n", rtc_unix, now, diff);
    uint32_t slack = 5;
    (void)cmdline_get_u32("slack", &slack);
    printf("rtc: allowed difference %u s\n", slack);
    check(diff <= slack, 4, "RTC time within the allowed difference of now=");

    check((cmos_read(RTC_REG_D) & REG_D_VRT) != 0, 5, "register D VRT set");

    /* Periodic interrupt. */
    s_mode = irq_mode_from_cmdline();
    struct madt_info madt;
    bool have_madt = madt_parse(&madt);
    uint8_t vector;
    if (!irq_setup(s_mode, have_madt ? &madt : NULL, 8, &vector))
        fail(6, "cannot route IRQ 8");
    idt_set_handler(vector, rtc_isr);
    cmos_write(RTC_REG_A, (uint8_t)((cmos_read(RTC_REG_A) & 0xf0) | 6)); /* 1024 Hz */
    (void)cmos_read(RTC_REG_C);
    cmos_write(RTC_REG_B, (uint8_t)(cmos_read(RTC_REG_B) | REG_B_PIE));
    sti();
    uint32_t i;
    for (i = 0; i < 3000000 && s_periodic < 3; i++)
        cpu_relax();
    cli();
    cmos_write(RTC_REG_B, (uint8_t)(cmos_read(RTC_REG_B) & ~REG_B_PIE));
    printf("rtc: %u periodic interrupts (%u IRQ 8 entries, %u unexpected) after %u iterations\n", s_periodic,
        s_rtc_irqs, g_unhandled_interrupts, i);
    check(s_periodic >= 3, 7, "periodic interrupt fired at least 3 times");
    return 0;
}
