/* A polled driver for the NE2000-compatible Realtek RTL8029AS (PCI 10ec:8029) for the network stack (net.h), through
 * its I/O BAR (BAR 0): the DP8390 registers at 0x00-0x0F, the remote DMA data port at 0x10, the reset port at 0x1F.
 *
 * Bring-up, each step checked (failure: a message and false): PCI I/O decoding; the NE2000 reset (read and write back
 * the reset port; ISR.RST must come up); the RTL8029 ID bytes in page 0 ('P' 'C'); the station address PROM read
 * through the remote DMA twice, with 16-bit and with 32-bit accesses in word mode (each PROM byte doubled on the
 * 16-bit bus: the MAC, and 'W' 'W' in PROM bytes 0x0E/0x0F, so bytes 0x1C-0x1F read; both reads equal, ISR.RDC at
 * the end); PAR0-5 written and read back in page 1. The 16 KiB of card
 * RAM (pages 0x40-0x7F) holds one transmit buffer (pages 0x40-0x45) and the receive ring (0x46-0x7F) with Linux's
 * convention (BNRY one page behind the next frame). Receive: frames between BNRY + 1 and CURR are fetched with the
 * remote DMA (the 4-byte header, then the frame; the card wraps at PSTOP), each header checked (PRX, next page
 * where the byte count says); accept broadcast and our MAC. Transmit: the frame goes into the card with a remote
 * write, then TPSR/TBCR and CR.TXP; the next send waits for TXP to clear. Bulk transfers use rep insl/outsl. All is
 * polled: IMR stays clear, except once after the first transmit, where ISR.PTX must be set, unmasking it must raise
 * PCI status INTERRUPT (INTx disabled in the command register) and writing it to ISR must clear both.
 */
#include "guest.h"

#define NE_VENDOR 0x10ec
#define NE_DEVICE 0x8029

#define REG_CR 0x00
#define REG_PSTART 0x01 /* page 0 write */
#define REG_PSTOP 0x02
#define REG_BNRY 0x03
#define REG_TPSR 0x04 /* write */
#define REG_TBCR0 0x05
#define REG_TBCR1 0x06
#define REG_ISR 0x07
#define REG_RSAR0 0x08
#define REG_RSAR1 0x09
#define REG_RBCR0 0x0a
#define REG_RBCR1 0x0b
#define REG_ID0 0x0a /* page 0 read: RTL8029AS */
#define REG_ID1 0x0b
#define REG_RCR 0x0c
#define REG_TCR 0x0d
#define REG_DCR 0x0e
#define REG_IMR 0x0f
#define REG_PAR0 0x01 /* page 1 */
#define REG_CURR 0x07
#define REG_MAR0 0x08
#define REG_DATA 0x10
#define REG_RESET 0x1f

#define CR_STP 0x01
#define CR_STA 0x02
#define CR_TXP 0x04
#define CR_RREAD 0x08
#define CR_RWRITE 0x10
#define CR_NODMA 0x20
#define CR_PAGE1 0x40
#define ISR_PRX 0x01
#define ISR_PTX 0x02
#define ISR_TXE 0x08
#define ISR_OVW 0x10
#define ISR_RDC 0x40
#define ISR_RST 0x80
#define DCR_WORD_NORMAL_FIFO8 0x49 /* WTS, LS (no loopback), FIFO threshold 8 bytes: what Linux sets */
#define RCR_AB 0x04
#define RCR_MON 0x20
#define TCR_LOOPBACK 0x02
#define RSR_PRX 0x01
#define PCI_STATUS_INTERRUPT 0x08

#define TX_PAGE 0x40
#define RX_START 0x46
#define RX_STOP 0x80
#define PAGE 256
#define FRAME_BUF (NET_FRAME_MAX + 4 + 4) /* a frame, a VLAN tag's worth of slack, the FCS */
#define WAIT_US 200000

static struct pci_dev s_pci;
static uint16_t s_io;
static uint8_t s_next; /* the page of the next frame to take */
static bool s_tx_checked;
static uint32_t s_tx_frames, s_rx_frames, s_rx_wrapped, s_overruns;
static uint32_t s_dma[(FRAME_BUF + 3) / 4];

static void insl(uint16_t port, void* buf, uint32_t count)
{
    __asm__ volatile("rep insl" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
}

static void outsl(uint16_t port, const void* buf, uint32_t count)
{
    __asm__ volatile("rep outsl" : "+S"(buf), "+c"(count) : "d"(port) : "memory");
}

static void reg_out(uint8_t reg, uint8_t v) { outb((uint16_t)(s_io + reg), v); }
static uint8_t reg_in(uint8_t reg) { return inb((uint16_t)(s_io + reg)); }

static bool match(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == NE_VENDOR && d->device == NE_DEVICE;
}

static bool wait_isr(uint8_t bits, const char* what)
{
    uint64_t start = time_us();
    while (!(reg_in(REG_ISR) & bits))
        if (time_us() - start > WAIT_US) {
            printf("ne2k: %s did not complete (ISR %x)\n", what, reg_in(REG_ISR));
            return false;
        }
    reg_out(REG_ISR, bits);
    return true;
}

/* Sets up a remote DMA of len bytes at card address addr (RSAR, RBCR) and starts it with command rd. */
static void remote_dma(uint16_t addr, uint16_t len, uint8_t rd)
{
    reg_out(REG_CR, CR_STA | CR_NODMA);
    reg_out(REG_RBCR0, (uint8_t)len);
    reg_out(REG_RBCR1, (uint8_t)(len >> 8));
    reg_out(REG_RSAR0, (uint8_t)addr);
    reg_out(REG_RSAR1, (uint8_t)(addr >> 8));
    reg_out(REG_CR, (uint8_t)(CR_STA | rd));
}

/* Reads len bytes (a multiple of 4) at card address addr into s_dma with rep insl. */
static void card_read(uint16_t addr, uint16_t len)
{
    remote_dma(addr, len, CR_RREAD);
    insl((uint16_t)(s_io + REG_DATA), s_dma, len / 4u);
    if (!wait_isr(ISR_RDC, "a remote read"))
        fail(15, "ne2k: the remote DMA read of %u bytes at %x did not end with ISR.RDC", len, addr);
}

static uint8_t read_curr(void)
{
    reg_out(REG_CR, CR_STA | CR_NODMA | CR_PAGE1);
    uint8_t curr = reg_in(REG_CURR);
    reg_out(REG_CR, CR_STA | CR_NODMA);
    return curr;
}

static uint32_t ne2k_poll_recv(struct nic* nic, void* buf)
{
    uint8_t isr = reg_in(REG_ISR);
    if (isr & ISR_OVW) {
        s_overruns++;
        reg_out(REG_ISR, ISR_OVW);
    }
    while (s_next != read_curr()) {
        uint8_t page = s_next;
        card_read((uint16_t)(page * PAGE), 4);
        const uint8_t* hdr = (const uint8_t*)s_dma;
        uint8_t status = hdr[0], next = hdr[1];
        uint32_t count = (uint32_t)(hdr[2] | hdr[3] << 8);
        /* The frame's pages: what the count needs, or one more (the chip's and Linux's count / 256 + 1 for a frame
         * that ends on a page boundary; QEMU reserves room for an FCS it does not store). */
        uint32_t expect = page + (count + PAGE - 1) / PAGE, expect_more = expect + 1;
        if (expect >= RX_STOP)
            expect -= RX_STOP - RX_START;
        if (expect_more >= RX_STOP)
            expect_more -= RX_STOP - RX_START;
        if (!(status & RSR_PRX) || count < 4 + 60 || count > 4 + FRAME_BUF || (next != expect && next != expect_more))
            fail(15, "ne2k: bad receive header at page %x: status %x next %x (expected %x) count %u", page, status,
                next, expect, count);
        uint32_t len = count - 4; /* hako stores the FCS after the frame, QEMU does not: the stack ignores it */
        card_read((uint16_t)(page * PAGE + 4), (uint16_t)((len + 3) & ~3u));
        if (next < page)
            s_rx_wrapped++;
        if (len > NET_FRAME_MAX)
            len = NET_FRAME_MAX;
        net_copy(buf, s_dma, len);
        s_next = next;
        reg_out(REG_BNRY, (uint8_t)(next == RX_START ? RX_STOP - 1 : next - 1));
        reg_out(REG_ISR, ISR_PRX);
        s_rx_frames++;
        (void)nic;
        return len;
    }
    return 0;
}

/* After the first transmit: ISR.PTX, and the INTx path with INTx disabled in the PCI command register. */
static void check_interrupt(void)
{
    uint8_t isr = reg_in(REG_ISR);
    reg_out(REG_IMR, ISR_PTX);
    bool pending = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    reg_out(REG_ISR, ISR_PTX);
    uint8_t isr_after = reg_in(REG_ISR);
    bool pending_after = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    reg_out(REG_IMR, 0);
    printf("ne2k: after the first transmit ISR %x, unmasked PTX: line %u; cleared: ISR %x, line %u\n", isr, pending,
        isr_after, pending_after);
    if (!(isr & ISR_PTX) || !pending || (isr_after & ISR_PTX) || pending_after)
        fail(14, "ne2k: the PTX interrupt cause or its INTx line misbehaved");
}

static bool ne2k_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (len < 14 || len > NET_FRAME_MAX)
        return false;
    uint64_t start = time_us();
    while (reg_in(REG_CR) & CR_TXP)
        if (time_us() - start > WAIT_US) {
            printf("ne2k: the previous transmit is not done after %u ms (ISR %x)\n", WAIT_US / 1000, reg_in(REG_ISR));
            return false;
        }
    reg_out(REG_ISR, ISR_PTX | ISR_TXE);
    uint32_t padded = len < 60 ? 60 : len;
    memset(s_dma, 0, 64);
    net_copy(s_dma, frame, len);
    uint16_t bytes = (uint16_t)((padded + 3) & ~3u);
    remote_dma(TX_PAGE * PAGE, bytes, CR_RWRITE);
    outsl((uint16_t)(s_io + REG_DATA), s_dma, bytes / 4u);
    if (!wait_isr(ISR_RDC, "a remote write"))
        return false;
    reg_out(REG_TPSR, TX_PAGE);
    reg_out(REG_TBCR0, (uint8_t)padded);
    reg_out(REG_TBCR1, (uint8_t)(padded >> 8));
    reg_out(REG_CR, CR_STA | CR_NODMA | CR_TXP);
    s_tx_frames++;
    if (!s_tx_checked) {
        s_tx_checked = true;
        start = time_us();
        while (!(reg_in(REG_ISR) & (ISR_PTX | ISR_TXE)))
            if (time_us() - start > WAIT_US)
                fail(14, "ne2k: the first transmit did not complete (ISR %x)", reg_in(REG_ISR));
        if (reg_in(REG_ISR) & ISR_TXE)
            fail(14, "ne2k: the first transmit was aborted");
        check_interrupt();
    }
    return true;
}

static void ne2k_print_stats(struct nic* nic)
{
    (void)nic;
    printf("ne2k: %u frames sent, %u received, %u wrapped around the ring's end, %u ring overruns seen\n",
        s_tx_frames, s_rx_frames, s_rx_wrapped, s_overruns);
}

/* The 32-byte PROM through the remote DMA in word mode: 16-bit reads (width 2), or 32-bit reads (width 4). */
static bool read_prom(uint8_t prom[32], unsigned width)
{
    remote_dma(0, 32, CR_RREAD);
    for (unsigned i = 0; i < 32; i += width) {
        uint32_t v = width == 4 ? inl((uint16_t)(s_io + REG_DATA)) : inw((uint16_t)(s_io + REG_DATA));
        for (unsigned b = 0; b < width; b++)
            prom[i + b] = (uint8_t)(v >> (8 * b));
    }
    return wait_isr(ISR_RDC, "the PROM read");
}

bool ne2k_init(struct nic* nic)
{
    memset(nic, 0, sizeof(*nic));
    if (!pci_find(match, 0, 0, &s_pci))
        return false;
    bool is_io;
    uint64_t bar0 = pci_bar_address(&s_pci, 0, &is_io);
    if (!is_io || !bar0 || bar0 > 0xffff) {
        printf("ne2k: BAR0 is not an I/O BAR (%x)\n", (uint32_t)bar0);
        return false;
    }
    s_io = (uint16_t)bar0;
    pci_write16(&s_pci, PCI_COMMAND,
        (uint16_t)(pci_read16(&s_pci, PCI_COMMAND) | PCI_CMD_IO | PCI_CMD_INTX_DISABLE));

    outb((uint16_t)(s_io + REG_RESET), inb((uint16_t)(s_io + REG_RESET)));
    if (!wait_isr(ISR_RST, "the reset"))
        return false;
    reg_out(REG_CR, CR_STP | CR_NODMA);
    uint8_t id0 = reg_in(REG_ID0), id1 = reg_in(REG_ID1);
    printf("ne2k: PCI %02x:%02x.%u %04x:%04x, registers at I/O %x, ID %02x %02x\n", s_pci.bus, s_pci.slot, s_pci.fn,
        s_pci.vendor, s_pci.device, s_io, id0, id1);
    if (id0 != 'P' || id1 != 'C') {
        printf("ne2k: not an RTL8029 ('P' 'C' expected)\n");
        return false;
    }
    reg_out(REG_DCR, DCR_WORD_NORMAL_FIFO8);
    reg_out(REG_RBCR0, 0);
    reg_out(REG_RBCR1, 0);
    reg_out(REG_IMR, 0);
    reg_out(REG_ISR, 0xff);
    reg_out(REG_RCR, RCR_MON);
    reg_out(REG_TCR, TCR_LOOPBACK);

    uint8_t prom16[32], prom32[32];
    if (!read_prom(prom16, 2) || !read_prom(prom32, 4))
        return false;
    for (unsigned i = 0; i < 6; i++) {
        if (prom16[2 * i] != prom16[2 * i + 1]) {
            printf("ne2k: PROM byte %u is not doubled (%02x %02x)\n", i, prom16[2 * i], prom16[2 * i + 1]);
            return false;
        }
        nic->mac[i] = prom16[2 * i];
    }
    printf("ne2k: PROM MAC %02x:%02x:%02x:%02x:%02x:%02x, signature %02x %02x %02x %02x\n", nic->mac[0],
        nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5], prom16[28], prom16[29], prom16[30],
        prom16[31]);
    if (prom16[28] != 'W' || prom16[29] != 'W' || prom16[30] != 'W' || prom16[31] != 'W'
        || memcmp(prom16, prom32, 32) != 0) {
        printf("ne2k: no 'WW' signature, or the 16- and 32-bit PROM reads differ\n");
        return false;
    }

    reg_out(REG_CR, CR_STP | CR_NODMA);
    reg_out(REG_TPSR, TX_PAGE);
    reg_out(REG_PSTART, RX_START);
    reg_out(REG_BNRY, RX_STOP - 1);
    reg_out(REG_PSTOP, RX_STOP);
    reg_out(REG_ISR, 0xff);
    reg_out(REG_CR, CR_STP | CR_NODMA | CR_PAGE1);
    for (unsigned i = 0; i < 6; i++)
        reg_out((uint8_t)(REG_PAR0 + i), nic->mac[i]);
    for (unsigned i = 0; i < 6; i++)
        if (reg_in((uint8_t)(REG_PAR0 + i)) != nic->mac[i]) {
            printf("ne2k: PAR%u reads back %02x\n", i, reg_in((uint8_t)(REG_PAR0 + i)));
            return false;
        }
    for (unsigned i = 0; i < 8; i++)
        reg_out((uint8_t)(REG_MAR0 + i), 0);
    reg_out(REG_CURR, RX_START);
    reg_out(REG_CR, CR_STA | CR_NODMA);
    reg_out(REG_ISR, 0xff);
    reg_out(REG_TCR, 0);
    reg_out(REG_RCR, RCR_AB);
    s_next = RX_START;
    s_tx_checked = false;
    s_tx_frames = s_rx_frames = s_rx_wrapped = s_overruns = 0;

    /* At most 5 ring pages per received frame: QEMU's ne2000 takes CURR == BNRY for an empty ring, so a full-size
     * frame (6 pages) that fills its ring up to BNRY exactly makes it overwrite the unread frames with the next one
     * (it only writes while 6 pages are free, so smaller frames never fill it exactly). hako's ring, like the
     * DP8390's, is full at CURR == BNRY. */
    nic->rx_mss = 1200;
    nic->name = "ne2k";
    nic->send = ne2k_send;
    nic->poll_recv = ne2k_poll_recv;
    nic->print_stats = ne2k_print_stats;
    nic->priv = &s_pci;
    return true;
}
