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

/* Shared by both modes: finds the NIC, resets it, reads the MAC from the EEPROM, checks the link. */
static bool bring_up(struct nic* nic)
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
    s_tx_checked = false;
    s_rx_wrapped = s_tx_frames = s_rx_frames = 0;
    return true;
}

bool rtl8139_init(struct nic* nic)
{
    if (!bring_up(nic))
        return false;
    outl((uint16_t)(s_io + REG_RBSTART), (uint32_t)(uintptr_t)s_rx_buf);
    outb((uint16_t)(s_io + REG_CR), CR_RE | CR_TE); /* before RCR and TCR, as Linux's 8139too does */
    outl((uint16_t)(s_io + REG_RCR), RCR_APM | RCR_AB | RCR_RBLEN_32K | RCR_MXDMA_UNLIMITED);
    outl((uint16_t)(s_io + REG_TCR), TCR_IFG_STD | TCR_MXDMA_2048);
    s_rx_off = 0;
    s_tx_next = 0;

    nic->name = "rtl8139";
    nic->send = rtl8139_send;
    nic->poll_recv = rtl8139_poll_recv;
    nic->print_stats = rtl8139_print_stats;
    nic->priv = &s_pci;
    return true;
}

/* ---- C+ mode (nic=rtl8139cp), as Linux's 8139cp drives the chip ----
 * 16-byte descriptors in two 256-byte-aligned rings of CP_RING entries (EOR on the last), CPCR with C+ transmit,
 * receive and receive checksum offload, TPPOLL.NPQ per frame. Transmit asks the NIC for checksums: the driver zeroes
 * the IPv4 header checksum and the TCP/UDP checksum of every IPv4 TCP/UDP frame and sets IPCS and TCPCS/UDPCS, so
 * the peer only gets valid segments if the NIC filled them. Receive checks each frame's descriptor (FS and LS, no
 * error) and compares the NIC's checksum verdict (protocol ID, IP/TCP/UDP failure bits) with its own computation:
 * a disagreement fails the run (exit 15); a frame without a verdict (protocol ID 0: QEMU's model does not classify)
 * is only counted, unless rxcsum=1 asks for a verdict on every TCP/UDP frame. The ISR bits of receive are acknowledged before looking at the ring,
 * which lets a NIC that ran out of descriptors try again. At the end the tally counters are dumped (DumpStats) and
 * must count what was sent and received.
 */
#define REG_STATS 0x10
#define REG_TNPDS 0x20
#define REG_TPPOLL 0xd9
#define REG_CPCR 0xe0
#define REG_RDSAR 0xe4
#define CPCR_TX_ON 0x0001
#define CPCR_RX_ON 0x0002
#define CPCR_MULRW 0x0008
#define CPCR_RX_CSUM 0x0020
#define TPPOLL_NPQ 0x40
#define INT_RER 0x0002
#define INT_RDU 0x0010
#define STATS_DUMP 0x8
#define D_OWN (1u << 31)
#define D_EOR (1u << 30)
#define D_FS (1u << 29)
#define D_LS (1u << 28)
#define TX_IPCS (1u << 18)
#define TX_UDPCS (1u << 17)
#define TX_TCPCS (1u << 16)
#define TX_ERROR (1u << 23)
#define RX_ERROR (1u << 20)
#define RX_PID(s) (((s) >> 16) & 3)
#define RX_IP_FAIL (1u << 15)
#define RX_UDP_FAIL (1u << 14)
#define RX_TCP_FAIL (1u << 13)
#define CP_RING 16
#define CP_BUF 1536

struct cp_desc {
    volatile uint32_t opts1;
    volatile uint32_t opts2;
    volatile uint64_t addr;
};
static struct cp_desc s_cp_tx[CP_RING] __attribute__((aligned(256)));
static struct cp_desc s_cp_rx[CP_RING] __attribute__((aligned(256)));
static uint8_t s_cp_tx_bufs[CP_RING][CP_BUF] __attribute__((aligned(16)));
static uint8_t s_cp_rx_bufs[CP_RING][CP_BUF] __attribute__((aligned(16)));
static uint8_t s_tally[64] __attribute__((aligned(64)));
static unsigned s_cp_tx_head, s_cp_rx_tail;
static uint32_t s_cp_tx_offloaded, s_cp_rx_verified, s_cp_rx_unclassified;
static bool s_cp_want_rx_csum;

static uint16_t be16(const uint8_t* p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Where the TCP/UDP checksum field of an IPv4 frame is (0: not IPv4 TCP/UDP, or a fragment). */
static uint32_t l4_csum_field(const uint8_t* f, uint32_t len, uint32_t* ihl_out, uint8_t* proto_out)
{
    if (len < 14 + 20 || be16(f + 12) != 0x0800 || (f[14] >> 4) != 4)
        return 0;
    uint32_t ihl = (uint32_t)(f[14] & 15) * 4, total = be16(f + 16);
    uint8_t proto = f[14 + 9];
    if (ihl < 20 || total < ihl || 14 + total > len || (be16(f + 20) & 0x3fff))
        return 0;
    uint32_t field = proto == 6 ? 16 : proto == 17 ? 6 : 0;
    if (!field || total - ihl < field + 2)
        return 0;
    *ihl_out = ihl;
    *proto_out = proto;
    return 14 + ihl + field;
}

/* Whether the IPv4 header and TCP/UDP checksums of a frame verify (UDP 0: none). */
static void own_verdict(const uint8_t* f, uint32_t len, uint32_t ihl, uint8_t proto, bool* ip_ok, bool* l4_ok)
{
    const uint8_t* ip = f + 14;
    uint32_t l4_len = be16(ip + 2) - ihl;
    *ip_ok = net_csum_fold(net_csum_add(0, ip, ihl)) == 0;
    if (proto == 17 && !(ip[ihl + 6] | ip[ihl + 7])) {
        *l4_ok = true;
        return;
    }
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = proto;
    pseudo[10] = (uint8_t)(l4_len >> 8);
    pseudo[11] = (uint8_t)l4_len;
    (void)len;
    *l4_ok = net_csum_fold(net_csum_add(net_csum_add(0, pseudo, 12), ip + ihl, l4_len)) == 0;
}

static uint32_t cp_poll_recv(struct nic* nic, void* buf)
{
    uint16_t isr = inw((uint16_t)(s_io + REG_ISR));
    if (isr & (INT_ROK | INT_RER | INT_RDU))
        outw((uint16_t)(s_io + REG_ISR), isr & (INT_ROK | INT_RER | INT_RDU));
    for (;;) {
        struct cp_desc* d = &s_cp_rx[s_cp_rx_tail];
        uint32_t status = d->opts1;
        if (status & D_OWN)
            return 0;
        barrier();
        uint32_t len = (status & 0x1fff) - FCS_LEN;
        uint32_t ret = 0;
        if ((status & (D_FS | D_LS)) != (D_FS | D_LS) || (status & RX_ERROR) || len < 14 || len > NET_FRAME_MAX) {
            printf("rtl8139cp: receive descriptor %u status %x\n", s_cp_rx_tail, status);
            nic->rx_drops++;
        } else {
            uint8_t* f = s_cp_rx_bufs[s_cp_rx_tail];
            uint32_t ihl;
            uint8_t proto;
            if (l4_csum_field(f, len, &ihl, &proto)) {
                bool ip_ok, l4_ok;
                own_verdict(f, len, ihl, proto, &ip_ok, &l4_ok);
                unsigned want_pid = proto == 6 ? 1 : 2;
                bool nic_ip_ok = !(status & RX_IP_FAIL);
                bool nic_l4_ok = !(status & (proto == 6 ? RX_TCP_FAIL : RX_UDP_FAIL));
                if (RX_PID(status) == 0) {
                    s_cp_rx_unclassified++; /* no verdict: the driver checks in software, as 8139cp does */
                } else if (RX_PID(status) != want_pid || nic_ip_ok != ip_ok || nic_l4_ok != l4_ok) {
                    fail(15, "rtl8139cp: the NIC's checksum verdict (status %x) disagrees: protocol %u, IP %s, L4 %s",
                        status, proto, ip_ok ? "ok" : "bad", l4_ok ? "ok" : "bad");
                } else {
                    s_cp_rx_verified++;
                }
            }
            net_copy(buf, f, len);
            s_rx_frames++;
            ret = len;
        }
        d->opts2 = 0;
        d->addr = (uint32_t)(uintptr_t)s_cp_rx_bufs[s_cp_rx_tail];
        barrier();
        d->opts1 = D_OWN | (s_cp_rx_tail == CP_RING - 1 ? D_EOR : 0) | CP_BUF;
        s_cp_rx_tail = (s_cp_rx_tail + 1) % CP_RING;
        if (ret)
            return ret;
    }
}

static bool cp_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (len < 14 || len > NET_FRAME_MAX)
        return false;
    struct cp_desc* d = &s_cp_tx[s_cp_tx_head];
    uint64_t start = time_us();
    while (d->opts1 & D_OWN)
        if (time_us() - start > WAIT_US) {
            printf("rtl8139cp: transmit descriptor %u not done for %u ms (%x)\n", s_cp_tx_head, WAIT_US / 1000,
                d->opts1);
            return false;
        }
    if (d->opts1 & TX_ERROR)
        fail(14, "rtl8139cp: transmit descriptor %u came back with an error (%x)", s_cp_tx_head, d->opts1);
    uint8_t* b = s_cp_tx_bufs[s_cp_tx_head];
    net_copy(b, frame, len);
    uint32_t cmd = 0, ihl;
    uint8_t proto;
    uint32_t field = l4_csum_field(b, len, &ihl, &proto);
    if (field) { /* leave both checksums to the NIC */
        b[14 + 10] = b[14 + 11] = 0;
        b[field] = b[field + 1] = 0;
        cmd = TX_IPCS | (proto == 6 ? TX_TCPCS : TX_UDPCS);
        s_cp_tx_offloaded++;
    }
    d->opts2 = 0;
    d->addr = (uint32_t)(uintptr_t)b;
    barrier();
    d->opts1 = D_OWN | D_FS | D_LS | (s_cp_tx_head == CP_RING - 1 ? D_EOR : 0) | cmd | len;
    barrier();
    outb((uint16_t)(s_io + REG_TPPOLL), TPPOLL_NPQ);
    s_cp_tx_head = (s_cp_tx_head + 1) % CP_RING;
    s_tx_frames++;
    if (!s_tx_checked) {
        s_tx_checked = true;
        start = time_us();
        while (d->opts1 & D_OWN)
            if (time_us() - start > WAIT_US)
                fail(14, "rtl8139cp: the first transmit did not complete (%x)", d->opts1);
        check_interrupt();
    }
    return true;
}

static void cp_print_stats(struct nic* nic)
{
    (void)nic;
    memset(s_tally, 0, sizeof(s_tally));
    outl((uint16_t)(s_io + REG_STATS + 4), 0);
    outl((uint16_t)(s_io + REG_STATS), (uint32_t)(uintptr_t)s_tally | STATS_DUMP);
    uint64_t start = time_us();
    while (inl((uint16_t)(s_io + REG_STATS)) & STATS_DUMP)
        if (time_us() - start > WAIT_US)
            fail(14, "rtl8139cp: the tally counter dump did not complete");
    uint32_t tx_ok, rx_ok;
    memcpy(&tx_ok, s_tally, 4);
    memcpy(&rx_ok, s_tally + 8, 4);
    printf("rtl8139cp: %u frames sent (%u with checksums left to the NIC), %u received (%u checksum verdicts "
           "checked, %u TCP/UDP frames without one); tally counters: %u sent, %u received\n", s_tx_frames,
        s_cp_tx_offloaded, s_rx_frames, s_cp_rx_verified, s_cp_rx_unclassified, tx_ok, rx_ok);
    if (!s_cp_tx_offloaded || (s_cp_want_rx_csum && (!s_cp_rx_verified || s_cp_rx_unclassified))
        || tx_ok < s_tx_frames || rx_ok < s_rx_frames)
        fail(14, "rtl8139cp: offloads unused or tally counters short");
}

bool rtl8139cp_init(struct nic* nic)
{
    if (!bring_up(nic))
        return false;
    memset((void*)s_cp_tx, 0, sizeof(s_cp_tx));
    for (unsigned i = 0; i < CP_RING; i++) {
        s_cp_rx[i].opts2 = 0;
        s_cp_rx[i].addr = (uint32_t)(uintptr_t)s_cp_rx_bufs[i];
        s_cp_rx[i].opts1 = D_OWN | (i == CP_RING - 1 ? D_EOR : 0) | CP_BUF;
    }
    s_cp_tx[CP_RING - 1].opts1 = D_EOR;
    s_cp_tx_head = s_cp_rx_tail = 0;
    s_cp_tx_offloaded = s_cp_rx_verified = s_cp_rx_unclassified = 0;
    uint32_t want = 0;
    s_cp_want_rx_csum = cmdline_get_u32("rxcsum", &want) && want;
    outw((uint16_t)(s_io + REG_CPCR), CPCR_TX_ON | CPCR_RX_ON | CPCR_MULRW | CPCR_RX_CSUM);
    outl((uint16_t)(s_io + REG_RDSAR), (uint32_t)(uintptr_t)s_cp_rx);
    outl((uint16_t)(s_io + REG_RDSAR + 4), 0);
    outl((uint16_t)(s_io + REG_TNPDS), (uint32_t)(uintptr_t)s_cp_tx);
    outl((uint16_t)(s_io + REG_TNPDS + 4), 0);
    outb((uint16_t)(s_io + REG_CR), CR_RE | CR_TE);
    outl((uint16_t)(s_io + REG_RCR), RCR_APM | RCR_AB | RCR_MXDMA_UNLIMITED);
    outl((uint16_t)(s_io + REG_TCR), TCR_IFG_STD | TCR_MXDMA_2048);
    printf("rtl8139cp: C+ mode, CPCR %04x, rings of %u descriptors\n", inw((uint16_t)(s_io + REG_CPCR)), CP_RING);

    nic->name = "rtl8139cp";
    nic->send = cp_send;
    nic->poll_recv = cp_poll_recv;
    nic->print_stats = cp_print_stats;
    nic->priv = &s_pci;
    return true;
}
