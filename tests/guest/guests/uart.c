/* uart: the 16550 interrupt paths. Programs COM1 for interrupts (IER: received data available; THRE when there is
 * something to send; MCR OUT2) on IRQ 4 through the IOAPIC (or the PIC with irq=pic), prints "READY", then waits
 * for the line "ping" on COM1 input (the harness feeds it on the VMM's stdin). The reply "pong" is sent from the
 * THRE interrupt handler. Checks that both the RX and the THRE interrupts happened.
 *
 * The wait is bounded by RTC seconds (60 s of input wait), with an iteration cap as a backstop.
 * Exit codes: 2 IRQ setup, 3 no line received (timeout), 4 wrong line, 5 no RX interrupt, 6 reply not drained /
 * no THRE interrupt, 7 receive overflow.
 */
#include "guest.h"

#define LINE_MAX 64
#define TX_MAX 64

static enum irq_mode s_mode;
static volatile uint32_t s_rx_irqs, s_thre_irqs, s_other_irqs;
static volatile char s_line[LINE_MAX];
static volatile uint32_t s_line_len;
static volatile bool s_line_done, s_overflow;
static volatile char s_tx[TX_MAX];
static volatile uint32_t s_tx_head, s_tx_tail; /* head: next to send; tail: end */

static void uart_isr(struct int_frame* f)
{
    (void)f;
    for (int guard = 0; guard < 16; guard++) {
        uint8_t iir = inb(COM1 + UART_IIR);
        if (iir & 1)
            break; /* no interrupt pending */
        switch ((iir >> 1) & 7) {
        case 2: /* received data available */
        case 6: /* character timeout */
            s_rx_irqs++;
            while (inb(COM1 + UART_LSR) & UART_LSR_DR) {
                char c = (char)inb(COM1 + UART_RBR);
                if (s_line_done)
                    continue;
                if (c == '\n' || c == '\r') {
                    if (s_line_len > 0)
                        s_line_done = true;
                } else if (s_line_len < LINE_MAX - 1) {
                    s_line[s_line_len++] = c;
                } else {
                    s_overflow = true;
                }
            }
            break;
        case 1: /* THR empty */
            s_thre_irqs++;
            for (int n = 0; n < 16 && s_tx_head != s_tx_tail; n++)
                outb(COM1 + UART_THR, (uint8_t)s_tx[s_tx_head++]);
            if (s_tx_head == s_tx_tail)
                outb(COM1 + UART_IER, UART_IER_RDI);
            break;
        case 3: /* line status */
            s_other_irqs++;
            (void)inb(COM1 + UART_LSR);
            break;
        default: /* modem status */
            s_other_irqs++;
            (void)inb(COM1 + UART_MSR);
            break;
        }
    }
    irq_eoi(s_mode, 4);
}

/* Waits until *flag is set, bounded by `seconds` changes of the RTC seconds register and an iteration cap. */
static bool wait_flag(volatile bool* flag, uint32_t seconds)
{
    uint8_t last = cmos_read(0x00);
    uint32_t ticks = 0;
    for (uint32_t i = 0; i < 20000000 && !*flag; i++) {
        uint8_t s = cmos_read(0x00);
        if (s != last) {
            last = s;
            if (++ticks >= seconds)
                return *flag;
        }
    }
    return *flag;
}

static volatile bool s_tx_drained;

int guest_main(void)
{
    s_mode = irq_mode_from_cmdline();
    struct madt_info madt;
    bool have_madt = madt_parse(&madt);
    uint8_t vector;
    if (!irq_setup(s_mode, have_madt ? &madt : NULL, 4, &vector))
        fail(2, "cannot route IRQ 4");
    idt_set_handler(vector, uart_isr);
    /* Drop anything that arrived before we were ready to look for the line. */
    outb(COM1 + UART_FCR, 0x07);
    while (inb(COM1 + UART_LSR) & UART_LSR_DR)
        (void)inb(COM1 + UART_RBR);
    outb(COM1 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    serial_puts("READY\n");
    for (uint32_t i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_TEMT); i++)
        cpu_relax();
    outb(COM1 + UART_IER, UART_IER_RDI);
    sti();

    bool got = wait_flag((volatile bool*)&s_line_done, 60);
    if (got) {
        const char reply[] = "pong\n";
        for (uint32_t i = 0; reply[i]; i++)
            s_tx[s_tx_tail++] = reply[i];
        outb(COM1 + UART_IER, UART_IER_RDI | UART_IER_THRI); /* THR is empty: this raises the THRE interrupt */
        for (uint32_t i = 0; i < 2000000 && s_tx_head != s_tx_tail; i++)
            cpu_relax();
        s_tx_drained = s_tx_head == s_tx_tail;
    }
    cli();
    outb(COM1 + UART_IER, 0);
    for (uint32_t i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_TEMT); i++)
        cpu_relax();
    printf("\nuart: %u RX interrupts, %u THRE interrupts, %u other, %u unexpected vectors\n", s_rx_irqs,
        s_thre_irqs, s_other_irqs, g_unhandled_interrupts);
    check(got, 3, "received a line before the timeout");
    char line[LINE_MAX];
    for (uint32_t i = 0; i < s_line_len; i++)
        line[i] = s_line[i];
    line[s_line_len] = 0;
    printf("uart: received \"%s\"\n", line);
    check(!s_overflow, 7, "line fits the buffer");
    check(strcmp(line, "ping") == 0, 4, "the line is \"ping\"");
    check(s_rx_irqs > 0, 5, "RX data interrupt happened");
    check(s_tx_drained && s_thre_irqs > 0, 6, "reply sent from the THRE interrupt");
    return 0;
}
