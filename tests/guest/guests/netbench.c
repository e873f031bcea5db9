/* netbench: virtio-net transmit benchmark (bench/virtio_net.py runs it under hako and QEMU side by side).
 *
 * At CPL0 (32-bit, the library; emulated instruction by instruction on PVM hosts, so only setup happens here): finds
 * the virtio-net device, negotiates VERSION_1, VIRTIO_NET_F_MAC and (unless event_idx=0) VIRTIO_F_EVENT_IDX, sets
 * up receiveq1 with NB_RX_COUNT buffers and transmitq1 with up to NB_TX_MAX entries in its own ring memory, no
 * MSI-X vectors, both polled (VIRTQ_AVAIL_F_NO_INTERRUPT). It resolves the peer's MAC by ARP (slirp answers for
 * its gateway 10.0.2.2; on a tap the host's kernel answers for its address), finds the ACPI PM timer in the FADT,
 * fills struct nb_params (netbench/netbench.h), copies the 64-bit CPL3 part (netbench/user.c) to NB_USER_BASE and
 * enters it in long mode at CPL3 with IOPL 3 (enter_user64, lib/usermode.S). The CPL3 part runs natively on PVM
 * hosts; it transmits UDP datagrams to peer:port, prints and exits by itself. The receive queue is not served
 * after ARP (the device drops what the host sends once its buffers are used up).
 *
 * Modes, in order: "udp-small" (frames of small= bytes, default 64: packets/s), "udp-large" (frames of large=
 * bytes, default 1514, the largest without FCS for a 1500-byte MTU: MB/s). Frame lengths count the Ethernet header,
 * not the FCS; the UDP checksum is 0 (not computed, allowed over IPv4).
 *
 * Command line:
 *   ip=A.B.C.D     the guest's address (default 10.0.2.15, what slirp's DHCP would give)
 *   peer=A.B.C.D   the receiver's address (default 10.0.2.2: slirp forwards it to the host's 127.0.0.1)
 *   port=N         the receiver's UDP port (required); sport=N the source port (default 40000)
 *   ms=N           milliseconds per mode (default 1500)
 *   quick=1        a fixed number of frames per mode instead (frames=N, default 1000): the CI smoke test and the
 *                  exit counting runs
 *   modes=MASK     which modes run (bit i = mode i above; default 3)
 *   small=N large=N  frame lengths (60..1514)
 *   event_idx=0|1  negotiate VIRTIO_F_EVENT_IDX if offered (default 1)
 *   batch=N        at most N frames queued per notify check (default: the queue size)
 *   rekick=1       notify again when frames are outstanding and the device made no progress for a while (user.c)
 *
 * Exit codes (CPL0 part): 2 no virtio-net device, 3 feature negotiation, 4 queue setup, 5 no PM timer, 6 too
 * little RAM, 7 the CPL3 image is too large, 8 bad command line, 9 no ARP reply from the peer; user.c lists the
 * codes of the CPL3 part. PASS = exit code 0.
 */
#include "guest.h"
#include "netbench/netbench.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_F_MAC 5
#define RX_QUEUE 0
#define TX_QUEUE 1
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FADT_F_TMR_VAL_EXT (1u << 8)
#define ARP_TRIES 10
#define ARP_WAIT_US 500000u

extern const uint8_t netbench_user_start[], netbench_user_end[];

static struct virtio_dev s_dev;
static struct virtq s_rxq, s_txq;

static uint32_t cmdline_u32(const char* key, uint32_t def)
{
    uint32_t v;
    return cmdline_get_u32(key, &v) ? v : def;
}

/* "A.B.C.D" into network order bytes; false if malformed. */
static bool parse_ip(const char* s, uint8_t out[4])
{
    for (int part = 0; part < 4; part++) {
        uint32_t v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            v = v * 10 + (uint32_t)(*s++ - '0');
            digits++;
        }
        if (digits == 0 || v > 255 || (part < 3 ? *s++ != '.' : *s != 0))
            return false;
        out[part] = (uint8_t)v;
    }
    return true;
}

static void cmdline_ip(const char* key, const char* def, uint8_t out[4])
{
    char buf[20];
    const char* s = cmdline_get(key, buf, sizeof(buf)) ? buf : def;
    if (!parse_ip(s, out))
        fail(8, "%s=%s is not an IPv4 address", key, s);
}

static uint8_t* rx_buf(uint32_t i) { return (uint8_t*)(NB_RX_BUFS + i * NB_BUF_SIZE); }

/* Sends an ARP request for p->dst_ip from descriptor 0 of the transmit queue and waits for its used entry. */
static void arp_request(const struct nb_params* p)
{
    uint8_t* b = (uint8_t*)NB_TX_BUFS;
    memset(b, 0, NB_VNET_HDR_LEN + 60);
    uint8_t* f = b + NB_VNET_HDR_LEN;
    memset(f, 0xff, 6);
    memcpy(f + 6, p->src_mac, 6);
    f[12] = 0x08, f[13] = 0x06;                                /* ARP */
    f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0, f[18] = 6, f[19] = 4; /* Ethernet, IPv4 */
    f[20] = 0, f[21] = 1;                                      /* request */
    memcpy(f + 22, p->src_mac, 6);
    memcpy(f + 28, p->src_ip, 4);
    memcpy(f + 38, p->dst_ip, 4);
    virtq_set_desc(&s_txq, 0, NB_TX_BUFS, NB_VNET_HDR_LEN + 60, false);
    virtq_publish(&s_txq, 0);
    virtq_kick(&s_txq);
    uint32_t id, len;
    uint64_t start = time_us();
    while (!virtq_next_used(&s_txq, &id, &len))
        if (time_us() - start > ARP_WAIT_US)
            fail(9, "the ARP request was not sent (transmit used idx %u)", s_txq.used->idx);
}

/* Polls the receive queue for the peer's ARP reply; re-posts every buffer. */
static bool arp_reply(struct nb_params* p)
{
    uint64_t start = time_us();
    while (time_us() - start < ARP_WAIT_US) {
        uint32_t id, len;
        if (!virtq_next_used(&s_rxq, &id, &len))
            continue;
        if (id >= s_rxq.size)
            fail(9, "receive used entry with id %u", id);
        const uint8_t* f = rx_buf(id) + NB_VNET_HDR_LEN;
        bool match = len >= NB_VNET_HDR_LEN + 42 && len <= NB_BUF_SIZE && f[12] == 0x08 && f[13] == 0x06
            && f[20] == 0 && f[21] == 2 && memcmp(f + 28, p->dst_ip, 4) == 0;
        if (match)
            memcpy(p->dst_mac, f + 22, 6);
        virtq_publish(&s_rxq, (uint16_t)id);
        virtq_kick(&s_rxq);
        if (match)
            return true;
    }
    return false;
}

int guest_main(void)
{
    pic_mask_all();
    struct nb_params* p = (struct nb_params*)NB_PARAMS;
    memset(p, 0, sizeof(*p));
    p->duration_ms = cmdline_u32("ms", 1500);
    p->quick_frames = cmdline_u32("quick", 0) ? cmdline_u32("frames", 1000) : 0;
    p->mode_mask = cmdline_u32("modes", (1u << NB_MODE_COUNT) - 1);
    p->frame_len[0] = cmdline_u32("small", 64);
    p->frame_len[1] = cmdline_u32("large", 1514);
    for (unsigned m = 0; m < NB_MODE_COUNT; m++)
        if (p->frame_len[m] < 60 || p->frame_len[m] > 1514)
            fail(8, "frame length %u is outside 60..1514", p->frame_len[m]);
    uint32_t port = cmdline_u32("port", 0), sport = cmdline_u32("sport", 40000);
    if (port == 0 || port > 65535 || sport == 0 || sport > 65535)
        fail(8, "port=%u sport=%u: both must be in 1..65535", port, sport);
    p->dst_port = (uint16_t)port;
    p->src_port = (uint16_t)sport;
    cmdline_ip("ip", "10.0.2.15", p->src_ip);
    cmdline_ip("peer", "10.0.2.2", p->dst_ip);
    bool want_event_idx = cmdline_u32("event_idx", 1) != 0;

    if (g_mb_info && (g_mb_info->flags & MB_INFO_MEMORY)
        && (uint64_t)g_mb_info->mem_upper * 1024u + 0x100000u < NB_MIN_RAM)
        fail(6, "netbench needs %u MiB of RAM", NB_MIN_RAM >> 20);

    const struct acpi_sdt_header* fadt = acpi_find_table("FACP", true);
    if (!fadt || fadt->length < FADT_FLAGS + 4)
        fail(5, "no FADT");
    uint32_t pm_port, flags;
    memcpy(&pm_port, (const uint8_t*)fadt + FADT_PM_TMR_BLK, 4);
    memcpy(&flags, (const uint8_t*)fadt + FADT_FLAGS, 4);
    if (pm_port == 0 || pm_port > 0xfffc || !pm_timer_init())
        fail(5, "no PM timer in the FADT (PM_TMR_BLK %x)", pm_port);
    p->pm_port = pm_port;
    p->pm_mask = (flags & FADT_F_TMR_VAL_EXT) ? 0xffffffffu : 0xffffffu;

    if (!virtio_find(VIRTIO_ID_NET, 0, &s_dev))
        fail(2, "no virtio-net device");
    uint64_t features, wanted = 1ull << VIRTIO_NET_F_MAC;
    if (want_event_idx)
        wanted |= 1ull << VIRTIO_F_EVENT_IDX;
    if (!virtio_negotiate(&s_dev, wanted, &features))
        fail(3, "feature negotiation failed");
    if (!(features & (1ull << VIRTIO_NET_F_MAC)) || !s_dev.device_cfg)
        fail(3, "the device offers no MAC (VIRTIO_NET_F_MAC)");
    p->event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
    if (!virtq_setup_mem(&s_dev, &s_rxq, RX_QUEUE, NB_RX_COUNT, (void*)NB_RX_RING, VIRTIO_MSI_NO_VECTOR)
        || !virtq_setup_mem(&s_dev, &s_txq, TX_QUEUE, NB_TX_MAX, (void*)NB_TX_RING, VIRTIO_MSI_NO_VECTOR))
        fail(4, "queue setup failed");
    if (s_txq.size < 16)
        fail(4, "transmit queue of %u entries", s_txq.size);
    virtq_set_no_interrupt(&s_rxq, true);
    virtq_set_no_interrupt(&s_txq, true);
    for (uint16_t i = 0; i < s_rxq.size; i++) {
        virtq_set_desc(&s_rxq, i, (uint32_t)(uintptr_t)rx_buf(i), NB_BUF_SIZE, true);
        virtq_publish(&s_rxq, i);
    }
    virtio_driver_ok(&s_dev);
    if (virtio_status(&s_dev) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(4, "status %x after DRIVER_OK", virtio_status(&s_dev));
    virtq_kick(&s_rxq);
    for (unsigned i = 0; i < 6; i++)
        p->src_mac[i] = virtio_cfg_read8(&s_dev, i);

    bool resolved = false;
    for (unsigned t = 0; t < ARP_TRIES && !resolved; t++) {
        arp_request(p);
        resolved = arp_reply(p);
    }
    if (!resolved)
        fail(9, "no ARP reply from %u.%u.%u.%u", p->dst_ip[0], p->dst_ip[1], p->dst_ip[2], p->dst_ip[3]);

    p->desc = (uintptr_t)s_txq.desc;
    p->avail = (uintptr_t)s_txq.avail;
    p->used = (uintptr_t)s_txq.used;
    p->notify = s_txq.notify;
    p->queue_size = s_txq.size;
    p->queue_index = s_txq.index;
    p->avail_idx = s_txq.avail_idx;
    p->last_used = s_txq.last_used;
    p->rekick = cmdline_u32("rekick", 0);
    p->batch = cmdline_u32("batch", s_txq.size);
    if (p->batch == 0 || p->batch > s_txq.size)
        fail(8, "batch=%u must be in 1..%u", p->batch, s_txq.size);

    uint32_t user_size = (uint32_t)(netbench_user_end - netbench_user_start);
    if (user_size > NB_USER_MAX)
        fail(7, "CPL3 image of %u bytes", user_size);
    void* dst = (void*)NB_USER_BASE;
    const void* src = netbench_user_start;
    uint32_t n = user_size;
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");

    printf("netbench: MAC %02x:%02x:%02x:%02x:%02x:%02x %u.%u.%u.%u -> %u.%u.%u.%u:%u at %02x:%02x:%02x:%02x:%02x:%02x\n",
        p->src_mac[0], p->src_mac[1], p->src_mac[2], p->src_mac[3], p->src_mac[4], p->src_mac[5], p->src_ip[0],
        p->src_ip[1], p->src_ip[2], p->src_ip[3], p->dst_ip[0], p->dst_ip[1], p->dst_ip[2], p->dst_ip[3], port,
        p->dst_mac[0], p->dst_mac[1], p->dst_mac[2], p->dst_mac[3], p->dst_mac[4], p->dst_mac[5]);
    printf("netbench: transmit queue %u entries, notify at %x, event_idx %u, batch %u, PM timer port %x, %s\n",
        s_txq.size, (uint32_t)s_txq.notify, p->event_idx, p->batch, pm_port, p->quick_frames ? "quick" : "timed");
    printf("netbench: entering 64-bit CPL3 (%u bytes at %x)\n", user_size, NB_USER_BASE);
    enter_user64(NB_USER_BASE, NB_USER_STACK_TOP, NB_PARAMS);
}
