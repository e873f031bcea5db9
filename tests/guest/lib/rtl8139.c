/* A polled driver for the Realtek RTL8139C+ (PCI 10ec:8139) in C mode for the network stack (net.h), through the
 * I/O BAR (BAR 0).
 *
 * Bring-up, each step checked (failure: a message and false): PCI I/O decoding and bus mastering; CR.RST (waits for
 * it to self-clear; CAPR must read 0xfff0 and CR.BUFE be set afterwards); EEPROM word 0 (0x8129) and the MAC (words
 * 7-9) by bit-banging the 93C46 through 9346CR, which must agree with IDR0-5; BMSR link up and autonegotiation
 * complete. Receive: a 32 KiB ring buffer without RCR.WRAP, so frames that reach its end continue at its start and
 * are copied here in two pieces (accept broadcast and our MAC); CAPR is moved past each frame. Transmit: the four
 * TSD/TSAD slots in turn, each waited on for OWN. Everything is polled: IMR stays clear, except once after the first
 * transmit, where ISR.TOK must be set, unmasking it must raise PCI status INTERRUPT (INTx disabled in the command
 * register) and writing it to ISR must clear both.
 */
#include "guest.h"

#define RTL_VENDOR 0x10ec
#define RTL_DEVICE 0x8139

#define REG_IDR0 0x00
#define REG_MAR0 0x08
#define REG_TSD0 0x10
#define REG_TSAD0 0x20
#define REG_RBSTART 0x30
#define REG_CR 0x37
#define REG_CAPR 0x38
#define REG_CBR 0x3a
#define REG_IMR 0x3c
#define REG_ISR 0x3e
#define REG_TCR 0x40
#define REG_RCR 0x44
#define REG_9346CR 0x50
#define REG_BMSR 0x64

#define CR_BUFE 0x01
#define CR_TE 0x04
#define CR_RE 0x08
#define CR_RST 0x10
#define INT_ROK 0x0001
#define INT_TOK 0x0004
#define TSD_OWN (1u << 13)
#define TSD_TOK (1u << 15)
#define TSD_THRESHOLD_256 (8u << 16)
#define RCR_APM 0x02
#define RCR_AB 0x08
#define RCR_RBLEN_32K (2u << 11)
#define RCR_MXDMA_UNLIMITED (7u << 8)
#define TCR_MXDMA_2048 (7u << 8)
#define TCR_IFG_STD (3u << 24)
#define EE_PROGRAM 0x80
#define EE_CS 0x08
#define EE_SK 0x04
#define EE_DI 0x02
#define EE_DO 0x01
#define RX_ROK 0x0001
#define BMSR_LINK 0x0004
#define BMSR_ANEG_DONE 0x0020
#define PCI_STATUS_INTERRUPT 0x08

#define RX_LEN 32768
#define TX_SLOTS 4
#define TX_BUF 2048
#define FCS_LEN 4
#define WAIT_US 200000

static struct pci_dev s_pci;
static uint16_t s_io;
static uint8_t s_rx_buf[RX_LEN + 16] __attribute__((aligned(16)));
static uint8_t s_tx_bufs[TX_SLOTS][TX_BUF] __attribute__((aligned(16)));
static uint32_t s_rx_off;
static unsigned s_tx_next;
static bool s_tx_checked;
static uint32_t s_rx_wrapped, s_tx_frames, s_rx_frames;

static bool match(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == RTL_VENDOR && d->device == RTL_DEVICE;
}

/* 93C46 (64 x 16): DI is sampled on SK's rising edge; DO is read after it. */
static void ee_out(uint8_t v)
{
    outb((uint16_t)(s_io + REG_9346CR), v);
    delay_us(2);
}

static uint16_t ee_read(unsigned addr)
{
    uint32_t cmd = (6u << 6) | (addr & 0x3f); /* start bit, READ (10), 6 address bits */
    ee_out(EE_PROGRAM);
    ee_out(EE_PROGRAM | EE_CS);
    for (int bit = 8; bit >= 0; bit--) {
        uint8_t di = (cmd >> bit) & 1 ? EE_DI : 0;
        ee_out(EE_PROGRAM | EE_CS | di);
        ee_out(EE_PROGRAM | EE_CS | di | EE_SK);
    }
    ee_out(EE_PROGRAM | EE_CS);
    uint16_t v = 0;
    for (int i = 0; i < 16; i++) {
        ee_out(EE_PROGRAM | EE_CS | EE_SK);
        v = (uint16_t)(v << 1 | (inb((uint16_t)(s_io + REG_9346CR)) & EE_DO));
        ee_out(EE_PROGRAM | EE_CS);
    }
    ee_out(EE_PROGRAM);
    ee_out(0);
    return v;
}

static void rx_copy(uint8_t* out, uint32_t off, uint32_t len)
{
    off %= RX_LEN;
    uint32_t first = len < RX_LEN - off ? len : RX_LEN - off;
    net_copy(out, s_rx_buf + off, first);
    if (first < len) {
        net_copy(out + first, s_rx_buf, len - first);
        s_rx_wrapped++;
    }
}

static uint32_t rtl8139_poll_recv(struct nic* nic, void* buf)
{
    while (!(inb((uint16_t)(s_io + REG_CR)) & CR_BUFE)) {
        uint8_t hdr[4];
        rx_copy(hdr, s_rx_off, 4);
        uint16_t status = (uint16_t)(hdr[0] | hdr[1] << 8);
        uint32_t len = (uint32_t)(hdr[2] | hdr[3] << 8);
        if (!(status & RX_ROK) || len < 14 + FCS_LEN || len > 1536 + FCS_LEN)
            fail(15, "rtl8139: bad receive header at %u: status %x length %u (CBR %u)", s_rx_off, status, len,
                inw((uint16_t)(s_io + REG_CBR)));
        barrier();
        uint32_t frame_len = len - FCS_LEN;
        if (frame_len <= NET_FRAME_MAX)
            rx_copy(buf, s_rx_off + 4, frame_len);
        else
            nic->rx_drops++;
        s_rx_off = (s_rx_off + len + 4 + 3) & ~3u;
        s_rx_off %= RX_LEN;
        outw((uint16_t)(s_io + REG_CAPR), (uint16_t)(s_rx_off - 16));
        outw((uint16_t)(s_io + REG_ISR), INT_ROK);
        if (frame_len <= NET_FRAME_MAX) {
            s_rx_frames++;
            return frame_len;
        }
    }
    return 0;
}

/* After the first transmit: ISR.TOK, and the INTx path with INTx disabled in the PCI command register. */
static void check_interrupt(void)
{
    uint16_t isr = inw((uint16_t)(s_io + REG_ISR));
    outw((uint16_t)(s_io + REG_IMR), INT_TOK);
    bool pending = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    outw((uint16_t)(s_io + REG_ISR), INT_TOK);
    uint16_t isr_after = inw((uint16_t)(s_io + REG_ISR));
    bool pending_after = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    outw((uint16_t)(s_io + REG_IMR), 0);
    printf("rtl8139: after the first transmit ISR %x, unmasked TOK: line %u; cleared: ISR %x, line %u\n", isr,
        pending, isr_after, pending_after);
    if (!(isr & INT_TOK) || !pending || (isr_after & INT_TOK) || pending_after)
        fail(14, "rtl8139: the TOK interrupt cause or its INTx line misbehaved");
}

static bool rtl8139_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (len < 14 || len > NET_FRAME_MAX || len > TX_BUF)
        return false;
    uint16_t tsd = (uint16_t)(s_io + REG_TSD0 + 4 * s_tx_next);
    uint64_t start = time_us();
    while (!(inl(tsd) & TSD_OWN)) {
        if (time_us() - start > WAIT_US) {
            printf("rtl8139: transmit slot %u not done for %u ms (TSD %x)\n", s_tx_next, WAIT_US / 1000, inl(tsd));
            return false;
        }
    }
    net_copy(s_tx_bufs[s_tx_next], frame, len);
    barrier();
    outl((uint16_t)(s_io + REG_TSAD0 + 4 * s_tx_next), (uint32_t)(uintptr_t)s_tx_bufs[s_tx_next]);
    outl(tsd, TSD_THRESHOLD_256 | len); /* OWN clear: the device owns the slot */
    s_tx_next = (s_tx_next + 1) % TX_SLOTS;
    s_tx_frames++;
    if (!s_tx_checked) {
        s_tx_checked = true;
        start = time_us();
        uint32_t v;
        while (((v = inl(tsd)) & (TSD_OWN | TSD_TOK)) != (TSD_OWN | TSD_TOK))
            if (time_us() - start > WAIT_US)
                fail(14, "rtl8139: the first transmit did not complete (TSD %x)", v);
        check_interrupt();
    }
    return true;
}

static void rtl8139_print_stats(struct nic* nic)
{
    (void)nic;
    printf("rtl8139: %u frames sent, %u received, %u wrapped around the receive buffer's end\n", s_tx_frames,
        s_rx_frames, s_rx_wrapped);
}

bool rtl8139_init(struct nic* nic)
{
    memset(nic, 0, sizeof(*nic));
    if (!pci_find(match, 0, 0, &s_pci))
        return false;
    bool is_io;
    uint64_t bar0 = pci_bar_address(&s_pci, 0, &is_io);
    if (!is_io || !bar0 || bar0 > 0xffff) {
        printf("rtl8139: BAR0 is not an I/O BAR (%x)\n", (uint32_t)bar0);
        return false;
    }
    s_io = (uint16_t)bar0;
    pci_write16(&s_pci, PCI_COMMAND,
        (uint16_t)(pci_read16(&s_pci, PCI_COMMAND) | PCI_CMD_IO | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE));
    printf("rtl8139: PCI %02x:%02x.%u %04x:%04x rev %02x, registers at I/O %x, TCR %x\n", s_pci.bus, s_pci.slot,
        s_pci.fn, s_pci.vendor, s_pci.device, pci_read8(&s_pci, 0x08), s_io, inl((uint16_t)(s_io + REG_TCR)));

    outb((uint16_t)(s_io + REG_CR), CR_RST);
    uint64_t start = time_us();
    while (inb((uint16_t)(s_io + REG_CR)) & CR_RST)
        if (time_us() - start > WAIT_US) {
            printf("rtl8139: CR.RST did not clear\n");
            return false;
        }
    uint16_t capr = inw((uint16_t)(s_io + REG_CAPR));
    if (!(inb((uint16_t)(s_io + REG_CR)) & CR_BUFE)) {
        printf("rtl8139: after reset the receive buffer is not empty (CAPR %x CBR %x)\n", capr,
            inw((uint16_t)(s_io + REG_CBR)));
        return false;
    }

    uint16_t id = ee_read(0);
    for (unsigned i = 0; i < 3; i++) {
        uint16_t w = ee_read(7 + i);
        nic->mac[2 * i] = (uint8_t)w;
        nic->mac[2 * i + 1] = (uint8_t)(w >> 8);
    }
    printf("rtl8139: EEPROM id %04x, MAC %02x:%02x:%02x:%02x:%02x:%02x\n", id, nic->mac[0], nic->mac[1], nic->mac[2],
        nic->mac[3], nic->mac[4], nic->mac[5]);
    if (id != 0x8129) {
        printf("rtl8139: EEPROM word 0 is not 8129\n");
        return false;
    }
    for (unsigned i = 0; i < 6; i++)
        if (inb((uint16_t)(s_io + REG_IDR0 + i)) != nic->mac[i]) {
            printf("rtl8139: IDR%u %02x differs from the EEPROM's MAC\n", i, inb((uint16_t)(s_io + REG_IDR0 + i)));
            return false;
        }
    uint16_t bmsr = inw((uint16_t)(s_io + REG_BMSR));
    printf("rtl8139: BMSR %04x (link %s, autonegotiation %s)\n", bmsr, (bmsr & BMSR_LINK) ? "up" : "down",
        (bmsr & BMSR_ANEG_DONE) ? "complete" : "incomplete");
    if (!(bmsr & BMSR_LINK))
        return false;

    for (unsigned i = 0; i < 8; i++)
        outb((uint16_t)(s_io + REG_MAR0 + i), 0);
    outw((uint16_t)(s_io + REG_IMR), 0);
    outw((uint16_t)(s_io + REG_ISR), 0xffff);
    outl((uint16_t)(s_io + REG_RBSTART), (uint32_t)(uintptr_t)s_rx_buf);
    outb((uint16_t)(s_io + REG_CR), CR_RE | CR_TE); /* before RCR and TCR, as Linux's 8139too does */
    outl((uint16_t)(s_io + REG_RCR), RCR_APM | RCR_AB | RCR_RBLEN_32K | RCR_MXDMA_UNLIMITED);
    outl((uint16_t)(s_io + REG_TCR), TCR_IFG_STD | TCR_MXDMA_2048);
    s_rx_off = 0;
    s_tx_next = 0;
    s_tx_checked = false;
    s_rx_wrapped = s_tx_frames = s_rx_frames = 0;

    nic->name = "rtl8139";
    nic->send = rtl8139_send;
    nic->poll_recv = rtl8139_poll_recv;
    nic->print_stats = rtl8139_print_stats;
    nic->priv = &s_pci;
    return true;
}
