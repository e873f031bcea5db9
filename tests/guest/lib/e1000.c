/* A polled driver for the Intel 82540EM (PCI 8086:100e; 8254x SDM, Intel 317453) for the network stack (net.h).
 *
 * Bring-up, each step checked (failure: a message and false): PCI memory decoding and bus mastering; device reset
 * (CTRL.RST, waits for it to self-clear); all 64 EEPROM words through EERD, whose sum must be 0xBABA; words 0-2
 * (the MAC) again by bit-banging the Microwire interface in EECD, which must agree; receive address 0 must hold the
 * same MAC; the PHY at MDIO address 1 through MDIC (ID 0x0141/0x0C20-ish: the OUI word must be 0x0141 ... printed;
 * link status); STATUS.LU. The interrupt path without an interrupt handler: with INTx disabled in the PCI command
 * register, ICS sets a masked cause (ICR shows it, PCI status INTERRUPT stays clear), then IMS unmasks it (PCI status
 * INTERRUPT set), reading ICR clears it (and the status bit), IMC masks everything again.
 * Rings: 32 receive descriptors with 2 KiB buffers (RCTL: EN, BAM, 2048-byte buffers, the FCS kept and stripped here,
 * as Linux's e1000 does) and 32 legacy transmit descriptors (EOP, IFCS, RS; TCTL: EN, PSP). Everything is polled:
 * the interrupt mask stays clear. ICR causes are still checked once: TXDW after the first transmit, RXT0 after the
 * first receive (the driver reads ICR nowhere else, so the causes accumulate).
 */
#include "guest.h"

#define E1000_VENDOR 0x8086
#define E1000_DEVICE 0x100e

#define REG_CTRL 0x0000
#define REG_STATUS 0x0008
#define REG_EECD 0x0010
#define REG_EERD 0x0014
#define REG_MDIC 0x0020
#define REG_ICR 0x00c0
#define REG_ITR 0x00c4
#define REG_ICS 0x00c8
#define REG_IMS 0x00d0
#define REG_IMC 0x00d8
#define REG_RCTL 0x0100
#define REG_TCTL 0x0400
#define REG_TIPG 0x0410
#define REG_RDBAL 0x2800
#define REG_RDBAH 0x2804
#define REG_RDLEN 0x2808
#define REG_RDH 0x2810
#define REG_RDT 0x2818
#define REG_RDTR 0x2820
#define REG_TDBAL 0x3800
#define REG_TDBAH 0x3804
#define REG_TDLEN 0x3808
#define REG_TDH 0x3810
#define REG_TDT 0x3818
#define REG_MTA 0x5200
#define REG_RAL0 0x5400
#define REG_RAH0 0x5404

#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define STATUS_LU (1u << 1)
#define EECD_SK (1u << 0)
#define EECD_CS (1u << 1)
#define EECD_DI (1u << 2)
#define EECD_DO (1u << 3)
#define EECD_REQ (1u << 6)
#define EECD_GNT (1u << 7)
#define EERD_START (1u << 0)
#define EERD_DONE (1u << 4)
#define MDIC_OP_READ (2u << 26)
#define MDIC_READY (1u << 28)
#define MDIC_ERROR (1u << 30)
#define ICR_TXDW (1u << 0)
#define ICR_TXQE (1u << 1)
#define ICR_LSC (1u << 2)
#define ICR_RXT0 (1u << 7)
#define RCTL_EN (1u << 1)
#define RCTL_BAM (1u << 15)
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)
#define TCTL_CT (0x10u << 4)
#define TCTL_COLD (0x40u << 12)
#define RAH_AV (1u << 31)
#define TXD_CMD_EOP 0x01
#define TXD_CMD_IFCS 0x02
#define TXD_CMD_RS 0x08
#define DESC_DD 0x01
#define RXD_EOP 0x02
#define PCI_STATUS_INTERRUPT 0x08

#define RING 32
#define BUF_SIZE 2048
#define FCS_LEN 4
#define WAIT_US 200000

struct rx_desc {
    uint64_t addr;
    uint16_t length, csum;
    uint8_t status, errors;
    uint16_t special;
} PACKED;
struct tx_desc {
    uint64_t addr;
    uint16_t length;
    uint8_t cso, cmd, status, css;
    uint16_t special;
} PACKED;

static struct pci_dev s_pci;
static uintptr_t s_mmio;
static volatile struct rx_desc s_rx[RING] __attribute__((aligned(128)));
static volatile struct tx_desc s_tx[RING] __attribute__((aligned(128)));
static uint8_t s_rx_bufs[RING][BUF_SIZE] __attribute__((aligned(16)));
static uint8_t s_tx_bufs[RING][BUF_SIZE] __attribute__((aligned(16)));
static unsigned s_rx_next, s_tx_next;
static uint32_t s_icr_seen;
static bool s_tx_checked, s_rx_checked;

static uint32_t rd(uint32_t reg) { return mmio_read32(s_mmio + reg); }
static void wr(uint32_t reg, uint32_t v) { mmio_write32(s_mmio + reg, v); }

static bool match(const struct pci_dev* d, void* ctx)
{
    (void)ctx;
    return d->vendor == E1000_VENDOR && d->device == E1000_DEVICE;
}

static bool wait_bits(uint32_t reg, uint32_t mask, uint32_t want)
{
    uint64_t start = time_us();
    while ((rd(reg) & mask) != want)
        if (time_us() - start > WAIT_US)
            return false;
    return true;
}

/* Microwire: DI is sampled on SK's rising edge; DO is read after it. */
static void ee_clock(uint32_t eecd)
{
    wr(REG_EECD, eecd | EECD_SK);
    delay_us(2);
    wr(REG_EECD, eecd);
    delay_us(2);
}

static bool ee_read_bitbang(unsigned addr, uint16_t* out)
{
    uint32_t eecd = (rd(REG_EECD) & ~(EECD_SK | EECD_DI | EECD_CS)) | EECD_REQ;
    wr(REG_EECD, eecd);
    if (!wait_bits(REG_EECD, EECD_GNT, EECD_GNT))
        return false;
    eecd |= EECD_CS;
    wr(REG_EECD, eecd);
    /* Start bit, READ opcode 10b, 6 address bits. */
    uint32_t command = (0x6u << 6) | (addr & 0x3f);
    for (int bit = 8; bit >= 0; bit--)
        ee_clock((command >> bit) & 1 ? eecd | EECD_DI : eecd);
    uint16_t word = 0;
    for (int bit = 0; bit < 16; bit++) {
        wr(REG_EECD, eecd | EECD_SK);
        delay_us(2);
        word = (uint16_t)(word << 1 | ((rd(REG_EECD) & EECD_DO) ? 1 : 0));
        wr(REG_EECD, eecd);
        delay_us(2);
    }
    wr(REG_EECD, eecd & ~(EECD_CS | EECD_REQ));
    *out = word;
    return true;
}

static bool ee_read_eerd(unsigned addr, uint16_t* out)
{
    wr(REG_EERD, EERD_START | (addr << 8));
    uint64_t start = time_us();
    uint32_t v;
    while (!((v = rd(REG_EERD)) & EERD_DONE))
        if (time_us() - start > WAIT_US)
            return false;
    *out = (uint16_t)(v >> 16);
    return true;
}

static bool phy_read(unsigned reg, uint16_t* out)
{
    wr(REG_MDIC, MDIC_OP_READ | (1u << 21) | (reg << 16));
    uint64_t start = time_us();
    uint32_t v;
    while (!((v = rd(REG_MDIC)) & MDIC_READY))
        if (time_us() - start > WAIT_US)
            return false;
    if (v & MDIC_ERROR)
        return false;
    *out = (uint16_t)v;
    return true;
}

static uint32_t read_icr(void)
{
    uint32_t v = rd(REG_ICR);
    s_icr_seen |= v;
    return v;
}

static uint32_t e1000_poll_recv(struct nic* nic, void* buf)
{
    for (;;) {
        volatile struct rx_desc* d = &s_rx[s_rx_next];
        uint8_t status = d->status;
        if (!(status & DESC_DD))
            return 0;
        barrier();
        uint32_t len = d->length;
        uint32_t frame_len = 0;
        if ((status & RXD_EOP) && !d->errors && len > FCS_LEN + 14 && len - FCS_LEN <= NET_FRAME_MAX) {
            frame_len = len - FCS_LEN;
            net_copy(buf, s_rx_bufs[s_rx_next], frame_len);
        } else {
            nic->rx_drops++;
        }
        d->status = 0;
        barrier();
        wr(REG_RDT, s_rx_next); /* hand the descriptor back */
        s_rx_next = (s_rx_next + 1) % RING;
        if (frame_len && !s_rx_checked) {
            s_rx_checked = true;
            if (!(read_icr() & ICR_RXT0) && !(s_icr_seen & ICR_RXT0))
                fail(14, "e1000: ICR has no RXT0 after the first receive (seen %x)", s_icr_seen);
            printf("e1000: ICR causes after the first receive: %x (RXT0 set): ok\n", s_icr_seen);
        }
        if (frame_len)
            return frame_len;
    }
}

static bool e1000_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (len < 14 || len > NET_FRAME_MAX)
        return false;
    volatile struct tx_desc* d = &s_tx[s_tx_next];
    uint64_t start = time_us();
    while (!(d->status & DESC_DD)) {
        if (time_us() - start > WAIT_US) {
            printf("e1000: transmit descriptor %u not done for %u ms (TDH %u TDT %u)\n", s_tx_next, WAIT_US / 1000,
                rd(REG_TDH), rd(REG_TDT));
            return false;
        }
    }
    net_copy(s_tx_bufs[s_tx_next], frame, len);
    d->addr = (uint32_t)(uintptr_t)s_tx_bufs[s_tx_next];
    d->length = (uint16_t)len;
    d->cso = 0;
    d->css = 0;
    d->special = 0;
    d->cmd = TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS;
    d->status = 0;
    barrier();
    s_tx_next = (s_tx_next + 1) % RING;
    wr(REG_TDT, s_tx_next);
    if (!s_tx_checked) {
        s_tx_checked = true;
        /* Descriptors may complete later on other devices; wait for the write-back. */
        while (!(d->status & DESC_DD))
            if (time_us() - start > WAIT_US)
                fail(14, "e1000: the first transmit descriptor was not written back");
        uint32_t icr = read_icr();
        if (!(s_icr_seen & ICR_TXDW))
            fail(14, "e1000: ICR has no TXDW after the first transmit (ICR %x)", icr);
        printf("e1000: ICR causes after the first transmit: %x (TXDW set): ok\n", s_icr_seen);
    }
    return true;
}

/* The interrupt path with INTx disabled: causes, mask, PCI status INTERRUPT, read-to-clear. */
static bool check_interrupt_causes(void)
{
    pci_write16(&s_pci, PCI_COMMAND, (uint16_t)(pci_read16(&s_pci, PCI_COMMAND) | PCI_CMD_INTX_DISABLE));
    wr(REG_IMC, 0xffffffff);
    (void)rd(REG_ICR);
    wr(REG_ICS, ICR_LSC);
    uint32_t icr_masked = rd(REG_ICR);
    bool pending_masked = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    uint32_t icr_after = rd(REG_ICR);
    wr(REG_ICS, ICR_LSC);
    wr(REG_IMS, ICR_LSC);
    bool pending = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    uint32_t icr = rd(REG_ICR);
    bool pending_after = pci_read16(&s_pci, 0x06) & PCI_STATUS_INTERRUPT;
    wr(REG_IMC, 0xffffffff);
    printf("e1000: ICS->ICR %x then %x (masked, line %u); unmasked: line %u, ICR %x, then line %u\n", icr_masked,
        icr_after, pending_masked, pending, icr, pending_after);
    return (icr_masked & ICR_LSC) && icr_after == 0 && !pending_masked && pending && (icr & ICR_LSC) && !pending_after;
}

bool e1000_init(struct nic* nic)
{
    memset(nic, 0, sizeof(*nic));
    if (!pci_find(match, 0, 0, &s_pci))
        return false;
    bool is_io;
    uint64_t bar0 = pci_bar_address(&s_pci, 0, &is_io);
    if (is_io || !bar0 || bar0 >> 32) {
        printf("e1000: BAR0 is not a 32-bit memory BAR (%x)\n", (uint32_t)bar0);
        return false;
    }
    s_mmio = (uintptr_t)bar0;
    pci_write16(&s_pci, PCI_COMMAND, (uint16_t)(pci_read16(&s_pci, PCI_COMMAND) | PCI_CMD_MEMORY | PCI_CMD_MASTER));
    printf("e1000: PCI %02x:%02x.%u %04x:%04x subsystem %04x:%04x, registers at %x\n", s_pci.bus, s_pci.slot, s_pci.fn,
        s_pci.vendor, s_pci.device, s_pci.subsys_vendor, s_pci.subsys_id, (uint32_t)s_mmio);

    wr(REG_IMC, 0xffffffff);
    wr(REG_CTRL, rd(REG_CTRL) | CTRL_RST);
    delay_us(1000);
    if (!wait_bits(REG_CTRL, CTRL_RST, 0)) {
        printf("e1000: CTRL.RST did not clear\n");
        return false;
    }
    wr(REG_IMC, 0xffffffff);
    (void)rd(REG_ICR);

    /* EEPROM: every word through EERD, checksum, then the MAC again by bit-banging. */
    uint16_t words[64];
    uint16_t sum = 0;
    for (unsigned i = 0; i < 64; i++) {
        if (!ee_read_eerd(i, &words[i])) {
            printf("e1000: EERD read of word %u timed out\n", i);
            return false;
        }
        sum = (uint16_t)(sum + words[i]);
    }
    if (sum != 0xbaba) {
        printf("e1000: EEPROM checksum %04x, expected baba\n", sum);
        return false;
    }
    for (unsigned i = 0; i < 3; i++) {
        uint16_t w = 0;
        if (!ee_read_bitbang(i, &w) || w != words[i]) {
            printf("e1000: Microwire read of word %u gave %04x, EERD %04x\n", i, w, words[i]);
            return false;
        }
        nic->mac[2 * i] = (uint8_t)w;
        nic->mac[2 * i + 1] = (uint8_t)(w >> 8);
    }
    printf("e1000: EEPROM checksum baba: ok; MAC %02x:%02x:%02x:%02x:%02x:%02x (EERD and Microwire agree)\n",
        nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5]);
    uint32_t ral = rd(REG_RAL0), rah = rd(REG_RAH0);
    uint32_t want_ral = (uint32_t)words[0] | (uint32_t)words[1] << 16;
    if (ral != want_ral || (rah & 0xffff) != words[2] || !(rah & RAH_AV)) {
        printf("e1000: receive address 0 is %x/%x, not the EEPROM's MAC\n", ral, rah);
        return false;
    }

    uint16_t id1, id2, bmsr;
    if (!phy_read(2, &id1) || !phy_read(3, &id2) || !phy_read(1, &bmsr)) {
        printf("e1000: MDIC read of the PHY failed\n");
        return false;
    }
    printf("e1000: PHY id %04x:%04x, status %04x (link %s, autonegotiation %s), STATUS %x\n", id1, id2, bmsr,
        (bmsr & 4) ? "up" : "down", (bmsr & 0x20) ? "complete" : "incomplete", rd(REG_STATUS));
    if (id1 != 0x0141 || !(rd(REG_STATUS) & STATUS_LU)) {
        printf("e1000: unexpected PHY or no link\n");
        return false;
    }
    wr(REG_CTRL, rd(REG_CTRL) | CTRL_SLU);

    if (!check_interrupt_causes()) {
        printf("e1000: interrupt cause check failed\n");
        return false;
    }
    printf("e1000: ICS/IMS/ICR/IMC and PCI status INTERRUPT: ok\n");

    for (unsigned i = 0; i < 128; i++)
        wr(REG_MTA + 4 * i, 0);
    for (unsigned i = 0; i < RING; i++) {
        s_rx[i].addr = (uint32_t)(uintptr_t)s_rx_bufs[i];
        s_rx[i].status = 0;
        s_tx[i].addr = 0;
        s_tx[i].cmd = 0;
        s_tx[i].status = DESC_DD; /* free */
    }
    wr(REG_RDBAL, (uint32_t)(uintptr_t)s_rx);
    wr(REG_RDBAH, 0);
    wr(REG_RDLEN, sizeof(s_rx));
    wr(REG_RDH, 0);
    wr(REG_RDT, RING - 1);
    wr(REG_RDTR, 0);
    wr(REG_TDBAL, (uint32_t)(uintptr_t)s_tx);
    wr(REG_TDBAH, 0);
    wr(REG_TDLEN, sizeof(s_tx));
    wr(REG_TDH, 0);
    wr(REG_TDT, 0);
    wr(REG_TIPG, 10 | 8 << 10 | 6 << 20);
    wr(REG_ITR, 0);
    wr(REG_RCTL, RCTL_EN | RCTL_BAM); /* 2048-byte buffers, FCS kept */
    wr(REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
    s_rx_next = 0;
    s_tx_next = 0;
    s_icr_seen = 0;
    s_tx_checked = s_rx_checked = false;
    (void)rd(REG_ICR);

    nic->name = "e1000";
    nic->send = e1000_send;
    nic->poll_recv = e1000_poll_recv;
    nic->priv = &s_pci;
    return true;
}
