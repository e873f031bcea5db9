/* A polled virtio-net driver (VIRTIO 1.2 section 5.1) for the network stack (net.h), over lib/virtio.c.
 *
 * Queues: receiveq1 (0) and transmitq1 (1), up to 64 entries each, one descriptor per 2 KiB buffer at a fixed index
 * (buffer i is descriptor i); every buffer starts with the 12-byte struct virtio_net_hdr_v1 (VERSION_1 is always
 * negotiated, so the header has num_buffers). Features: VIRTIO_NET_F_MAC (the MAC from config space; without it a
 * fixed locally administered MAC) and VIRTIO_NET_F_STATUS (link state, printed). No offloads, no mergeable receive
 * buffers, no control queue, no multiqueue, no interrupts: the used rings are polled and the avail rings say
 * VIRTQ_AVAIL_F_NO_INTERRUPT. The transmit header is all zeros (no GSO).
 *
 * With csum=1 on the command line the driver also negotiates VIRTIO_NET_F_CSUM and VIRTIO_NET_F_GUEST_CSUM where
 * offered (hako and QEMU offer them on a tap), and does what a NIC with checksum offload does for the stack, which
 * itself always computes full checksums: on transmit it replaces a TCP or UDP checksum over IPv4 by the partial one
 * (the folded pseudo-header sum) and sets VIRTIO_NET_HDR_F_NEEDS_CSUM with csum_start/csum_offset, so the host
 * must complete it; on receive it completes a frame flagged NEEDS_CSUM at csum_start/csum_offset before the stack
 * (which verifies every checksum) sees it. If the device or the host got either side wrong, the stack or the peer
 * drops the segments and the transfer fails. print_stats reports how many frames went each way.
 *
 * nic_index=N drives the Nth virtio-net function instead of the first (a VM with several NICs).
 *
 * With ctrl=1 it negotiates the control queue (VIRTIO_NET_F_CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR; queue 2, polled) and,
 * before the stack starts, turns promiscuous mode and all-multicast off, installs empty MAC filter tables, and moves
 * the NIC to a new MAC (the configured one with the last byte XOR 0x80) with MAC_ADDR_SET, checking every ack and
 * that config space shows the new MAC. From then on the device must filter on the new MAC: if it kept the old one,
 * the DHCP and TCP replies addressed to the new MAC never arrive.
 */
#include "guest.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23
#define CTRL_QUEUE 2
#define CTRL_RX 0
#define CTRL_RX_PROMISC 0
#define CTRL_RX_ALLMULTI 1
#define CTRL_MAC 1
#define CTRL_MAC_TABLE_SET 0
#define CTRL_MAC_ADDR_SET 1
#define CTRL_WAIT_US 2000000
#define VIRTIO_NET_S_LINK_UP 1
#define NET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */
#define HDR_F_NEEDS_CSUM 1
#define HDR_F_DATA_VALID 2
#define CFG_MAC 0
#define CFG_STATUS 6
#define RX_QUEUE 0
#define TX_QUEUE 1
#define QUEUE_SIZE 64
#define BUF_SIZE 2048
#define RX_KICK_BATCH 16
#define TX_WAIT_US 200000

static struct virtio_dev s_dev;
static struct virtq s_rxq, s_txq, s_ctrlq;
static uint8_t s_ctrl_cmd[64] __attribute__((aligned(64)));
static uint8_t s_ctrl_ack;
static uint8_t s_rx_bufs[QUEUE_SIZE][BUF_SIZE] __attribute__((aligned(4096)));
static uint8_t s_tx_bufs[QUEUE_SIZE][BUF_SIZE] __attribute__((aligned(4096)));
static uint16_t s_tx_free[QUEUE_SIZE];
static unsigned s_tx_nfree;
static unsigned s_rx_unkicked;
static bool s_tx_csum, s_rx_csum;
static uint32_t s_tx_partial, s_rx_partial, s_rx_data_valid, s_rx_bad_hdr;

static uint16_t rd16le(const uint8_t* p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr16le(uint8_t* p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Receive: completes the partial checksum of a NEEDS_CSUM frame (flags and offsets from the device's header). */
static bool complete_rx_csum(const uint8_t* hdr, uint8_t* frame, uint32_t len)
{
    if (hdr[0] & HDR_F_DATA_VALID)
        s_rx_data_valid++;
    if (!(hdr[0] & HDR_F_NEEDS_CSUM))
        return true;
    uint32_t start = rd16le(hdr + 6), off = rd16le(hdr + 8);
    if (!s_rx_csum || start < 14 || (start & 1) || start + off + 2 > len) {
        s_rx_bad_hdr++;
        return false;
    }
    /* The field holds the pseudo-header sum: the sum over [start, len) with it included is the checksum. */
    uint16_t c = net_csum_fold(net_csum_add(0, frame + start, len - start));
    memcpy(frame + start + off, &c, 2);
    s_rx_partial++;
    return true;
}

/* Transmit: turns a complete TCP/UDP-over-IPv4 checksum into a partial one and fills the header. */
static void offload_tx_csum(uint8_t* hdr, uint8_t* frame, uint32_t len)
{
    if (!s_tx_csum || len < 14 + 20 || frame[12] != 0x08 || frame[13] != 0x00)
        return;
    const uint8_t* ip = frame + 14;
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4, total = (uint32_t)ip[2] << 8 | ip[3];
    uint8_t proto = ip[9];
    uint32_t csum_off = proto == 6 ? 16 : proto == 17 ? 6 : 0;
    if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || 14 + total > len || !csum_off || total - ihl < csum_off + 2)
        return;
    uint32_t l4 = total - ihl;
    if (proto == 17 && frame[14 + ihl + 6] == 0 && frame[14 + ihl + 7] == 0)
        return; /* a UDP datagram without a checksum stays without one */
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = proto;
    pseudo[10] = (uint8_t)(l4 >> 8);
    pseudo[11] = (uint8_t)l4;
    uint16_t partial = (uint16_t)~net_csum_fold(net_csum_add(0, pseudo, 12));
    memcpy(frame + 14 + ihl + csum_off, &partial, 2);
    hdr[0] = HDR_F_NEEDS_CSUM;
    wr16le(hdr + 6, (uint16_t)(14 + ihl));
    wr16le(hdr + 8, (uint16_t)csum_off);
    s_tx_partial++;
}

/* One control command: class, code, data; waits (bounded) for the device's ack. */
static bool ctrl_command(uint8_t cls, uint8_t code, const void* data, uint32_t len)
{
    s_ctrl_cmd[0] = cls;
    s_ctrl_cmd[1] = code;
    memcpy(s_ctrl_cmd + 2, data, len);
    s_ctrl_ack = 0xee;
    struct virtq_buf bufs[2] = {
        { (uint32_t)(uintptr_t)s_ctrl_cmd, 2 + len, false },
        { (uint32_t)(uintptr_t)&s_ctrl_ack, 1, true },
    };
    virtq_add(&s_ctrlq, bufs, 2);
    virtq_kick(&s_ctrlq);
    uint64_t start = time_us();
    uint32_t id, used_len;
    while (!virtq_next_used(&s_ctrlq, &id, &used_len)) {
        if (time_us() - start > CTRL_WAIT_US) {
            printf("virtio-net: control command %u.%u: no answer\n", cls, code);
            return false;
        }
    }
    if (used_len != 1 || s_ctrl_ack != 0) {
        printf("virtio-net: control command %u.%u: ack %u (used length %u)\n", cls, code, s_ctrl_ack, used_len);
        return false;
    }
    return true;
}

/* ctrl=1: RX mode off, empty filter tables, a new MAC; false (with a message) if the device disagrees. */
static bool ctrl_setup(struct nic* nic)
{
    uint8_t off = 0;
    uint8_t tables[8] = { 0 }; /* two empty tables: le32 0, le32 0 */
    uint8_t mac[6];
    memcpy(mac, nic->mac, 6);
    mac[5] ^= 0x80;
    if (!ctrl_command(CTRL_RX, CTRL_RX_PROMISC, &off, 1) || !ctrl_command(CTRL_RX, CTRL_RX_ALLMULTI, &off, 1)
        || !ctrl_command(CTRL_MAC, CTRL_MAC_TABLE_SET, tables, sizeof(tables))
        || !ctrl_command(CTRL_MAC, CTRL_MAC_ADDR_SET, mac, 6))
        return false;
    for (unsigned i = 0; i < 6; i++) {
        if (virtio_cfg_read8(&s_dev, CFG_MAC + i) != mac[i]) {
            printf("virtio-net: config space MAC byte %u is %02x after MAC_ADDR_SET, not %02x\n", i,
                virtio_cfg_read8(&s_dev, CFG_MAC + i), mac[i]);
            return false;
        }
    }
    memcpy(nic->mac, mac, 6);
    printf("virtio-net: control queue: promiscuous off, filter tables empty, MAC now %02x:%02x:%02x:%02x:%02x:%02x\n",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return true;
}

static void vnet_print_stats(struct nic* nic)
{
    (void)nic;
    printf("virtio-net: checksum offload tx %s rx %s: %u frames sent with a partial checksum, %u received with one, "
           "%u received DATA_VALID, %u bad headers\n",
        s_tx_csum ? "on" : "off", s_rx_csum ? "on" : "off", s_tx_partial, s_rx_partial, s_rx_data_valid,
        s_rx_bad_hdr);
}

static void rx_kick(void)
{
    if (s_rx_unkicked && virtq_kick_needed(&s_rxq))
        virtq_kick(&s_rxq);
    s_rx_unkicked = 0;
}

static uint32_t vnet_poll_recv(struct nic* nic, void* buf)
{
    uint32_t id, len;
    while (virtq_next_used(&s_rxq, &id, &len)) {
        if (id >= s_rxq.size) {
            nic->rx_drops++; /* a broken device: the buffer is lost */
            continue;
        }
        uint32_t frame_len = 0;
        if (len > NET_HDR_LEN + 14 && len - NET_HDR_LEN <= NET_FRAME_MAX) {
            frame_len = len - NET_HDR_LEN;
            net_copy(buf, s_rx_bufs[id] + NET_HDR_LEN, frame_len);
            if (!complete_rx_csum(s_rx_bufs[id], buf, frame_len)) {
                frame_len = 0;
                nic->rx_drops++;
            }
        } else {
            nic->rx_drops++;
        }
        virtq_publish(&s_rxq, (uint16_t)id);
        if (++s_rx_unkicked >= RX_KICK_BATCH)
            rx_kick();
        if (frame_len)
            return frame_len;
    }
    rx_kick();
    return 0;
}

static void tx_reclaim(void)
{
    uint32_t id, len;
    while (virtq_next_used(&s_txq, &id, &len))
        if (id < s_txq.size && s_tx_nfree < s_txq.size)
            s_tx_free[s_tx_nfree++] = (uint16_t)id;
}

static bool vnet_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (len < 14 || len > NET_FRAME_MAX)
        return false;
    tx_reclaim();
    if (!s_tx_nfree) {
        uint64_t start = time_us();
        while (!s_tx_nfree && time_us() - start < TX_WAIT_US)
            tx_reclaim();
        if (!s_tx_nfree) {
            printf("virtio-net: transmit queue full for %u ms (used idx %u)\n", TX_WAIT_US / 1000,
                s_txq.used->idx);
            return false;
        }
    }
    uint16_t slot = s_tx_free[--s_tx_nfree];
    uint8_t* b = s_tx_bufs[slot];
    memset(b, 0, NET_HDR_LEN);
    net_copy(b + NET_HDR_LEN, frame, len);
    offload_tx_csum(b, b + NET_HDR_LEN, len);
    virtq_set_desc(&s_txq, slot, (uint32_t)(uintptr_t)b, NET_HDR_LEN + len, false);
    virtq_publish(&s_txq, slot);
    if (virtq_kick_needed(&s_txq))
        virtq_kick(&s_txq);
    return true;
}

bool virtio_net_init(struct nic* nic)
{
    memset(nic, 0, sizeof(*nic));
    uint32_t nth = 0; /* nic_index=N: the Nth virtio-net function (several NICs per VM) */
    cmdline_get_u32("nic_index", &nth);
    if (!virtio_find(VIRTIO_ID_NET, nth, &s_dev))
        return false;
    uint64_t features, wanted = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
    uint32_t csum = 0, ctrl = 0;
    if (cmdline_get_u32("csum", &csum) && csum)
        wanted |= (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM);
    if (cmdline_get_u32("ctrl", &ctrl) && ctrl)
        wanted |= (1ull << VIRTIO_NET_F_CTRL_VQ) | (1ull << VIRTIO_NET_F_CTRL_RX) | (1ull << VIRTIO_NET_F_CTRL_MAC_ADDR);
    if (!virtio_negotiate(&s_dev, wanted, &features))
        return false;
    s_tx_csum = (features >> VIRTIO_NET_F_CSUM) & 1;
    s_rx_csum = (features >> VIRTIO_NET_F_GUEST_CSUM) & 1;
    if (csum)
        printf("virtio-net: checksum offload asked: tx %s, rx %s\n", s_tx_csum ? "on" : "not offered",
            s_rx_csum ? "on" : "not offered");
    if (!virtq_setup(&s_dev, &s_rxq, RX_QUEUE, QUEUE_SIZE, 0, VIRTIO_MSI_NO_VECTOR)
        || !virtq_setup(&s_dev, &s_txq, TX_QUEUE, QUEUE_SIZE, 1, VIRTIO_MSI_NO_VECTOR)) {
        printf("virtio-net: queue setup failed\n");
        return false;
    }
    bool const have_ctrl = ctrl && (features & (1ull << VIRTIO_NET_F_CTRL_VQ)) && (features & (1ull << VIRTIO_NET_F_CTRL_RX))
        && (features & (1ull << VIRTIO_NET_F_CTRL_MAC_ADDR));
    if (ctrl && !have_ctrl) {
        printf("virtio-net: ctrl=1 but the device does not offer the control queue features\n");
        return false;
    }
    if (have_ctrl && !virtq_setup(&s_dev, &s_ctrlq, CTRL_QUEUE, 16, 2, VIRTIO_MSI_NO_VECTOR)) {
        printf("virtio-net: control queue setup failed\n");
        return false;
    }
    if (have_ctrl)
        virtq_set_no_interrupt(&s_ctrlq, true);
    virtq_set_no_interrupt(&s_rxq, true);
    virtq_set_no_interrupt(&s_txq, true);
    if ((features & (1ull << VIRTIO_NET_F_MAC)) && s_dev.device_cfg) {
        for (unsigned i = 0; i < 6; i++)
            nic->mac[i] = virtio_cfg_read8(&s_dev, CFG_MAC + i);
    } else {
        static const uint8_t fallback[6] = { 0x02, 0x00, 0x00, 0x12, 0x34, 0x56 };
        memcpy(nic->mac, fallback, 6);
        printf("virtio-net: no VIRTIO_NET_F_MAC, using a locally administered MAC\n");
    }
    for (uint16_t i = 0; i < s_rxq.size; i++) {
        virtq_set_desc(&s_rxq, i, (uint32_t)(uintptr_t)s_rx_bufs[i], BUF_SIZE, true);
        virtq_publish(&s_rxq, i);
    }
    s_tx_nfree = 0;
    for (uint16_t i = 0; i < s_txq.size; i++)
        s_tx_free[s_tx_nfree++] = (uint16_t)(s_txq.size - 1 - i);
    virtio_driver_ok(&s_dev);
    uint8_t status = virtio_status(&s_dev);
    if (status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
        printf("virtio-net: device status %x after DRIVER_OK\n", status);
        return false;
    }
    virtq_kick(&s_rxq);
    if (have_ctrl && !ctrl_setup(nic))
        return false;
    if ((features & (1ull << VIRTIO_NET_F_STATUS)) && s_dev.device_cfg)
        printf("virtio-net: link %s\n", (virtio_cfg_read8(&s_dev, CFG_STATUS) & VIRTIO_NET_S_LINK_UP) ? "up" : "down");
    printf("virtio-net: queues %u/%u entries, MAC %02x:%02x:%02x:%02x:%02x:%02x\n", s_rxq.size, s_txq.size,
        nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5]);
    nic->name = "virtio-net";
    nic->send = vnet_send;
    nic->poll_recv = vnet_poll_recv;
    nic->print_stats = vnet_print_stats;
    nic->priv = &s_dev;
    return true;
}
