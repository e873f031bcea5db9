/* A polled virtio-net driver (VIRTIO 1.2 section 5.1) for the network stack (net.h), over lib/virtio.c.
 *
 * Queues: receiveq1 (0) and transmitq1 (1), up to 64 entries each, one descriptor per 2 KiB buffer at a fixed index
 * (buffer i is descriptor i); every buffer starts with the 12-byte struct virtio_net_hdr_v1 (VERSION_1 is always
 * negotiated, so the header has num_buffers). Features: VIRTIO_NET_F_MAC (the MAC from config space; without it a
 * fixed locally administered MAC) and VIRTIO_NET_F_STATUS (link state, printed). No offloads, no mergeable receive
 * buffers, no control queue, no multiqueue, no interrupts: the used rings are polled and the avail rings say
 * VIRTQ_AVAIL_F_NO_INTERRUPT. The transmit header is all zeros (no checksum offload, no GSO).
 */
#include "guest.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1
#define NET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */
#define CFG_MAC 0
#define CFG_STATUS 6
#define RX_QUEUE 0
#define TX_QUEUE 1
#define QUEUE_SIZE 64
#define BUF_SIZE 2048
#define RX_KICK_BATCH 16
#define TX_WAIT_US 200000

static struct virtio_dev s_dev;
static struct virtq s_rxq, s_txq;
static uint8_t s_rx_bufs[QUEUE_SIZE][BUF_SIZE] __attribute__((aligned(4096)));
static uint8_t s_tx_bufs[QUEUE_SIZE][BUF_SIZE] __attribute__((aligned(4096)));
static uint16_t s_tx_free[QUEUE_SIZE];
static unsigned s_tx_nfree;
static unsigned s_rx_unkicked;

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
    virtq_set_desc(&s_txq, slot, (uint32_t)(uintptr_t)b, NET_HDR_LEN + len, false);
    virtq_publish(&s_txq, slot);
    if (virtq_kick_needed(&s_txq))
        virtq_kick(&s_txq);
    return true;
}

bool virtio_net_init(struct nic* nic)
{
    memset(nic, 0, sizeof(*nic));
    if (!virtio_find(VIRTIO_ID_NET, 0, &s_dev))
        return false;
    uint64_t features;
    if (!virtio_negotiate(&s_dev, (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS), &features))
        return false;
    if (!virtq_setup(&s_dev, &s_rxq, RX_QUEUE, QUEUE_SIZE, 0, VIRTIO_MSI_NO_VECTOR)
        || !virtq_setup(&s_dev, &s_txq, TX_QUEUE, QUEUE_SIZE, 1, VIRTIO_MSI_NO_VECTOR)) {
        printf("virtio-net: queue setup failed\n");
        return false;
    }
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
    if ((features & (1ull << VIRTIO_NET_F_STATUS)) && s_dev.device_cfg)
        printf("virtio-net: link %s\n", (virtio_cfg_read8(&s_dev, CFG_STATUS) & VIRTIO_NET_S_LINK_UP) ? "up" : "down");
    printf("virtio-net: queues %u/%u entries, MAC %02x:%02x:%02x:%02x:%02x:%02x\n", s_rxq.size, s_txq.size,
        nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5]);
    nic->name = "virtio-net";
    nic->send = vnet_send;
    nic->poll_recv = vnet_poll_recv;
    nic->priv = &s_dev;
    return true;
}
