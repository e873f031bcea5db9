/* A polled driver for the AMD PCnet-PCI II Am79C970A (PCI 1022:2000) for the network stack (net.h), through the I/O
 * BAR (BAR 0), with 32-bit software structures (SWSTYLE 2) as Linux's pcnet32 uses them.
 *
 * Bring-up, each step checked (failure: a message and false): PCI I/O decoding and bus mastering; S_RESET by a word
 * read of RESET, then CSR0 must read STOP (4) and RAP must read back 88, as Linux and iPXE probe; the chip ID in
 * CSR88/89 (low 12 bits 0x003, part number 0x2621); the MAC from the address PROM, which must carry the 'WW'
 * signature and agree with CSR12-14 (or, as QEMU leaves them before INIT, those are zero); then a dword write to RDP switches the window to DWIO mode (BCR18 must show it) and
 * everything after runs in DWIO; BCR20 = 2 must read back with SSIZE32 set; BCR4 must show the link up.
 * Rings: a 28-byte init block (32 receive descriptors with 1536-byte buffers, 16 transmit descriptors, no multicast
 * filter bits) loaded with CSR0.INIT; IDON must come and CSR6 must then hold the length codes and CSR76/78 the
 * lengths (in two's complement as the data sheet says, or plain as QEMU keeps them); STRT must turn on TXON and RXON. Transmit: one descriptor per frame (STP | ENP, OWN written last),
 * then TDMD. Receive: a descriptor whose OWN is clear must hold a whole frame (STP and ENP, no ERR: anything else is
 * a corrupt receive, exit 15); its MCNT includes the FCS. Everything is polled with IENA clear, except once after the
 * first transmit (with every other cause masked in CSR3): CSR0 must show TINT and INTR, setting IENA must raise PCI
 * status INTERRUPT (INTx disabled in the command register), and writing TINT back (write 1 to clear) must clear all
 * three.
 * RAP is left at 0 between calls, so the hot paths touch only RDP: TDMD per frame sent, an RINT acknowledgement per
 * frame received (which also lets the device see the descriptor handed back).
 */
#include "guest.h"

#define PCNET_VENDOR 0x1022
#define PCNET_DEVICE 0x2000

#define WIO_RDP 0x10
#define WIO_RAP 0x12
#define WIO_RESET 0x14
#define DWIO_RDP 0x10
#define DWIO_RAP 0x14
#define DWIO_BDP 0x1c

#define CSR0_INIT 0x0001
#define CSR0_STRT 0x0002
#define CSR0_STOP 0x0004
#define CSR0_TDMD 0x0008
#define CSR0_TXON 0x0010
#define CSR0_RXON 0x0020
#define CSR0_IENA 0x0040
#define CSR0_INTR 0x0080
#define CSR0_IDON 0x0100
#define CSR0_TINT 0x0200
#define CSR0_RINT 0x0400

/* CSR3: BABLM, MISSM, MERRM, RINTM, IDONM (TINTM clear) */
#define CSR3_ALL_BUT_TINT 0x5d00

#define DESC_OWN 0x8000
#define DESC_ERR 0x4000
#define DESC_STP 0x0200
#define DESC_ENP 0x0100
#define PCI_STATUS_INTERRUPT 0x08

#define RX_LOG2 5
#define TX_LOG2 4
#define RX_COUNT (1u << RX_LOG2)
#define TX_COUNT (1u << TX_LOG2)
#define BUF_LEN 1536
#define FCS_LEN 4
#define WAIT_US 200000

struct desc {
    uint32_t addr;
    uint16_t bcnt; /* two's complement, bits 15:12 ones */
    uint16_t status;
    uint32_t misc; /* RMD2: MCNT; TMD2: errors */
    uint32_t user;
};

struct init_block {
    uint16_t mode;
    uint8_t rlen, tlen; /* log2 << 4 */
    uint8_t padr[6];
    uint16_t reserved;
    uint8_t ladrf[8];
    uint32_t rdra, tdra;
};

static struct pci_dev s_pci;
static uint16_t s_io;
static struct init_block s_init __attribute__((aligned(16)));
static volatile struct desc s_rx[RX_COUNT] __attribute__((aligned(16)));
static volatile struct desc s_tx[TX_COUNT] __attribute__((aligned(16)));
static uint8_t s_rx_bufs[RX_COUNT][BUF_LEN] __attribute__((aligned(16)));
static uint8_t s_tx_bufs[TX_COUNT][BUF_LEN] __attribute__((aligned(16)));
static unsigned s_rx_next, s_tx_next;
static bool s_tx_checked;
static uint32_t s_tx_frames, s_rx_frames;

static bool match(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == PCNET_VENDOR && d->device == PCNET_DEVICE;
}

/* Word I/O (before the switch to DWIO). */
static uint16_t wio_csr(unsigned index)
{
    outw((uint16_t)(s_io + WIO_RAP), (uint16_t)index);
    return inw((uint16_t)(s_io + WIO_RDP));
}

/* Double-word I/O; RAP goes back to 0 afterwards. */
static uint16_t csr_read(unsigned index)
{
    outl((uint16_t)(s_io + DWIO_RAP), index);
    uint16_t v = (uint16_t)inl((uint16_t)(s_io + DWIO_RDP));
    outl((uint16_t)(s_io + DWIO_RAP), 0);
    return v;
}

static void csr_write(unsigned index, uint16_t v)
{
    outl((uint16_t)(s_io + DWIO_RAP), index);
    outl((uint16_t)(s_io + DWIO_RDP), v);
    outl((uint16_t)(s_io + DWIO_RAP), 0);
}

static uint16_t bcr_read(unsigned index)
{
    outl((uint16_t)(s_io + DWIO_RAP), index);
    uint16_t v = (uint16_t)inl((uint16_t)(s_io + DWIO_BDP));
    outl((uint16_t)(s_io + DWIO_RAP), 0);
    return v;
}

static void bcr_write(unsigned index, uint16_t v)
{
    outl((uint16_t)(s_io + DWIO_RAP), index);
    outl((uint16_t)(s_io + DWIO_BDP), v);
    outl((uint16_t)(s_io + DWIO_RAP), 0);
}

/* CSR0 with RAP already 0 (the hot paths). */
static void csr0_write(uint16_t v) { outl((uint16_t)(s_io + DWIO_RDP), v); }
static uint16_t csr0_read(void) { return (uint16_t)inl((uint16_t)(s_io + DWIO_RDP)); }

static uint32_t pcnet_poll_recv(struct nic* nic, void* buf)
{
    while (true) {
        volatile struct desc* d = &s_rx[s_rx_next];
        uint16_t status = d->status;
        if (status & DESC_OWN)
            return 0;
        barrier();
        uint32_t mcnt = d->misc & 0xfff;
        if ((status & (DESC_ERR | DESC_STP | DESC_ENP)) != (DESC_STP | DESC_ENP) || mcnt < 14 + FCS_LEN
            || mcnt > BUF_LEN)
            fail(15, "pcnet: bad receive descriptor %u: status %x MCNT %u", s_rx_next, status, mcnt);
        uint32_t len = mcnt - FCS_LEN;
        bool keep = len <= NET_FRAME_MAX;
        if (keep)
            net_copy(buf, s_rx_bufs[s_rx_next], len);
        else
            nic->rx_drops++;
        d->misc = 0;
        d->bcnt = (uint16_t)(-BUF_LEN | 0xf000);
        barrier();
        d->status = DESC_OWN;
        s_rx_next = (s_rx_next + 1) % RX_COUNT;
        csr0_write(CSR0_RINT); /* acknowledge; the device also sees the descriptor handed back */
        if (keep) {
            s_rx_frames++;
            return len;
        }
    }
}

/* After the first transmit: TINT, and the INTx path with INTx disabled in the PCI command register. Every other
 * cause is masked in CSR3 meanwhile (frames may arrive at any time), so INTR and the line follow TINT alone. */
static void check_interrupt(void)
{
    csr_write(3, CSR3_ALL_BUT_TINT);
    uint16_t csr0 = csr0_read();
    csr0_write(CSR0_IENA);
    bool pending = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    csr0_write(CSR0_TINT | CSR0_IENA);
    uint16_t csr0_after = csr0_read();
    bool pending_after = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    csr0_write(0); /* IENA off again */
    csr_write(3, 0);
    printf("pcnet: after the first transmit CSR0 %x, IENA set: line %u; TINT cleared: CSR0 %x, line %u\n", csr0,
        pending, csr0_after, pending_after);
    if ((csr0 & (CSR0_TINT | CSR0_INTR)) != (CSR0_TINT | CSR0_INTR) || !pending
        || (csr0_after & (CSR0_TINT | CSR0_INTR)) || pending_after)
        fail(14, "pcnet: the TINT interrupt cause or its INTx line misbehaved");
}

static bool pcnet_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (len < 14 || len > NET_FRAME_MAX || len > BUF_LEN)
        return false;
    volatile struct desc* d = &s_tx[s_tx_next];
    uint64_t start = time_us();
    while (d->status & DESC_OWN) {
        if (time_us() - start > WAIT_US) {
            printf("pcnet: transmit descriptor %u not done for %u ms (status %x)\n", s_tx_next, WAIT_US / 1000,
                d->status);
            return false;
        }
    }
    net_copy(s_tx_bufs[s_tx_next], frame, len);
    d->addr = (uint32_t)(uintptr_t)s_tx_bufs[s_tx_next];
    d->bcnt = (uint16_t)(-len | 0xf000);
    d->misc = 0;
    barrier();
    d->status = DESC_OWN | DESC_STP | DESC_ENP;
    csr0_write(CSR0_TDMD);
    s_tx_next = (s_tx_next + 1) % TX_COUNT;
    s_tx_frames++;
    if (!s_tx_checked) {
        s_tx_checked = true;
        start = time_us();
        while (d->status & DESC_OWN)
            if (time_us() - start > WAIT_US)
                fail(14, "pcnet: the first transmit did not complete (status %x)", d->status);
        if (d->status & DESC_ERR)
            fail(14, "pcnet: the first transmit failed (status %x, TMD2 %x)", d->status, d->misc);
        check_interrupt();
    }
    return true;
}

static void pcnet_print_stats(struct nic* nic)
{
    (void)nic;
    printf("pcnet: %u frames sent, %u received, %u missed (CSR112)\n", s_tx_frames, s_rx_frames, csr_read(112));
}

bool pcnet_init(struct nic* nic)
{
    memset(nic, 0, sizeof(*nic));
    if (!pci_find(match, 0, 0, &s_pci))
        return false;
    bool is_io;
    uint64_t bar0 = pci_bar_address(&s_pci, 0, &is_io);
    if (!is_io || !bar0 || bar0 > 0xffff) {
        printf("pcnet: BAR0 is not an I/O BAR (%x)\n", (uint32_t)bar0);
        return false;
    }
    s_io = (uint16_t)bar0;
    pci_write16(&s_pci, PCI_COMMAND,
        (uint16_t)(pci_read16(&s_pci, PCI_COMMAND) | PCI_CMD_IO | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE));

    inw((uint16_t)(s_io + WIO_RESET));
    uint16_t csr0 = wio_csr(0);
    outw((uint16_t)(s_io + WIO_RAP), 88);
    uint16_t rap = inw((uint16_t)(s_io + WIO_RAP));
    uint32_t id = wio_csr(88) | (uint32_t)wio_csr(89) << 16;
    printf("pcnet: PCI %02x:%02x.%u %04x:%04x rev %02x, registers at I/O %x; after reset CSR0 %x, RAP %u, chip ID %x\n",
        s_pci.bus, s_pci.slot, s_pci.fn, s_pci.vendor, s_pci.device, pci_read8(&s_pci, 0x08), s_io, csr0, rap, id);
    if (csr0 != CSR0_STOP || rap != 88) {
        printf("pcnet: the word I/O probe failed\n");
        return false;
    }
    if ((id & 0xfff) != 0x003 || ((id >> 12) & 0xffff) != 0x2621) {
        printf("pcnet: not a PCnet-PCI II 79C970A\n");
        return false;
    }
    for (unsigned i = 0; i < 6; i++)
        nic->mac[i] = inb((uint16_t)(s_io + i));
    printf("pcnet: MAC %02x:%02x:%02x:%02x:%02x:%02x (APROM)\n", nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3],
        nic->mac[4], nic->mac[5]);
    /* CSR12-14 (PADR): the EEPROM's MAC after H_RESET on the chip (hako); QEMU leaves them 0 until INIT. */
    uint16_t padr[3];
    bool padr_mac = true, padr_zero = true;
    for (unsigned i = 0; i < 3; i++) {
        padr[i] = wio_csr(12 + i);
        padr_mac = padr_mac && padr[i] == (uint16_t)(nic->mac[2 * i] | nic->mac[2 * i + 1] << 8);
        padr_zero = padr_zero && padr[i] == 0;
    }
    printf("pcnet: CSR12-14 %04x %04x %04x (%s)\n", padr[0], padr[1], padr[2],
        padr_mac ? "the MAC" : padr_zero ? "zero" : "neither the MAC nor zero");
    if (!padr_mac && !padr_zero)
        return false;
    if (inb((uint16_t)(s_io + 14)) != 0x57 || inb((uint16_t)(s_io + 15)) != 0x57) {
        printf("pcnet: no WW signature in the APROM\n");
        return false;
    }

    /* A dword write to RDP (RAP 0: CSR0, STOP) switches to DWIO. */
    outw((uint16_t)(s_io + WIO_RAP), 0);
    outl((uint16_t)(s_io + DWIO_RDP), CSR0_STOP);
    uint16_t bcr18 = bcr_read(18);
    bcr_write(20, 2);
    uint16_t bcr20 = bcr_read(20);
    uint16_t bcr4 = bcr_read(4);
    printf("pcnet: BCR18 %04x (DWIO %s), BCR20 %04x (SWSTYLE %u, SSIZE32 %u), BCR4 %04x (link %s)\n", bcr18,
        (bcr18 & 0x80) ? "on" : "off", bcr20, bcr20 & 0xff, (bcr20 >> 8) & 1, bcr4, (bcr4 & 0x8000) ? "up" : "down");
    if (!(bcr18 & 0x80) || (bcr20 & 0x1ff) != 0x102 || !(bcr4 & 0x8000))
        return false;

    for (unsigned i = 0; i < RX_COUNT; i++) {
        s_rx[i].addr = (uint32_t)(uintptr_t)s_rx_bufs[i];
        s_rx[i].bcnt = (uint16_t)(-BUF_LEN | 0xf000);
        s_rx[i].misc = 0;
        s_rx[i].status = DESC_OWN;
    }
    for (unsigned i = 0; i < TX_COUNT; i++) {
        s_tx[i].addr = 0;
        s_tx[i].status = 0;
    }
    memset(&s_init, 0, sizeof(s_init));
    s_init.rlen = RX_LOG2 << 4;
    s_init.tlen = TX_LOG2 << 4;
    memcpy(s_init.padr, nic->mac, 6);
    s_init.rdra = (uint32_t)(uintptr_t)s_rx;
    s_init.tdra = (uint32_t)(uintptr_t)s_tx;
    barrier();
    uint32_t ib = (uint32_t)(uintptr_t)&s_init;
    csr_write(1, (uint16_t)ib);
    csr_write(2, (uint16_t)(ib >> 16));
    csr_write(4, 0x0915); /* auto-pad transmits; counter overflow, TXSTRT and jabber interrupts masked (as Linux) */
    csr0_write(CSR0_INIT);
    uint64_t start = time_us();
    while (!((csr0 = csr0_read()) & CSR0_IDON))
        if (time_us() - start > WAIT_US) {
            printf("pcnet: no IDON after INIT (CSR0 %x)\n", csr0);
            return false;
        }
    uint16_t csr6 = csr_read(6), rcvrl = csr_read(76), xmtrl = csr_read(78);
    csr0_write(CSR0_IDON | CSR0_STRT);
    csr0 = csr0_read();
    printf("pcnet: initialised: CSR6 %04x CSR76 %04x CSR78 %04x, started: CSR0 %x\n", csr6, rcvrl, xmtrl, csr0);
    /* CSR76/78: the data sheet's two's complement (hako); QEMU keeps the plain lengths. */
    if (csr6 != (TX_LOG2 << 12 | RX_LOG2 << 8) || (rcvrl != (uint16_t)-RX_COUNT && rcvrl != RX_COUNT)
        || (xmtrl != (uint16_t)-TX_COUNT && xmtrl != TX_COUNT)) {
        printf("pcnet: the ring lengths from the init block are wrong\n");
        return false;
    }
    if ((csr0 & (CSR0_TXON | CSR0_RXON)) != (CSR0_TXON | CSR0_RXON))
        return false;
    s_rx_next = s_tx_next = 0;
    s_tx_checked = false;
    s_tx_frames = s_rx_frames = 0;

    nic->name = "pcnet";
    nic->send = pcnet_send;
    nic->poll_recv = pcnet_poll_recv;
    nic->print_stats = pcnet_print_stats;
    nic->priv = &s_pci;
    return true;
}
