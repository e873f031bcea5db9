/* The test guests' network stack: Ethernet, ARP, IPv4, ICMP echo, UDP, a DHCP client and one TCP connection, over
 * the abstract NIC of net.h; and the ACPI PM timer as the clock. See net.h for what it does and does not do.
 * Specs: RFC 826 (ARP), 791 (IPv4), 792 (ICMP), 768 (UDP), 2131/2132 (DHCP), 9293 (TCP), 1071 (checksum);
 * ACPI 6.5 section 5.2.9 (FADT PM_TMR_BLK) and 4.8.3.3 (PM timer).
 */
#include "guest.h"

/* ---- Time: the ACPI PM timer ---- */
#define FADT_PM_TMR_BLK 76
#define FADT_X_PM_TMR_BLK 208
#define PM_TIMER_MASK 0xffffffu
#define PM_US_PER_TICK_Q32 1199864032ull /* 10^6 / 3579545 in 32.32 fixed point */

static uint16_t s_pm_port;
static uint32_t s_pm_last;
static uint64_t s_us;
static uint32_t s_us_frac;

bool pm_timer_init(void)
{
    const struct acpi_sdt_header* fadt = acpi_find_table("FACP", true);
    if (!fadt) {
        printf("net: no FADT, so no PM timer\n");
        return false;
    }
    const uint8_t* f = (const uint8_t*)fadt;
    uint32_t port = 0;
    if (fadt->length >= FADT_PM_TMR_BLK + 4)
        memcpy(&port, f + FADT_PM_TMR_BLK, 4);
    if (port == 0 && fadt->length >= FADT_X_PM_TMR_BLK + 12 && f[FADT_X_PM_TMR_BLK] == 1 /* system I/O */) {
        uint64_t x;
        memcpy(&x, f + FADT_X_PM_TMR_BLK + 4, 8);
        port = (uint32_t)x;
    }
    if (port == 0 || port > 0xfffc) {
        printf("net: the FADT has no PM timer port (PM_TMR_BLK %x)\n", port);
        return false;
    }
    s_pm_port = (uint16_t)port;
    s_pm_last = inl(s_pm_port) & PM_TIMER_MASK;
    s_us = 0;
    s_us_frac = 0;
    printf("net: PM timer at port %x\n", port);
    return true;
}

uint64_t time_us(void)
{
    uint32_t now = inl(s_pm_port) & PM_TIMER_MASK;
    uint32_t delta = (now - s_pm_last) & PM_TIMER_MASK;
    s_pm_last = now;
    uint64_t f = (uint64_t)s_us_frac + (uint64_t)delta * PM_US_PER_TICK_Q32;
    s_us += f >> 32;
    s_us_frac = (uint32_t)f;
    return s_us;
}

void delay_us(uint32_t us)
{
    uint64_t end = time_us() + us;
    while (time_us() < end)
        cpu_relax();
}

/* ---- Helpers ---- */
void net_copy(void* dst, const void* src, uint32_t len)
{
    uint32_t words = len >> 2, bytes = len & 3;
    __asm__ volatile("rep movsl" : "+D"(dst), "+S"(src), "+c"(words) : : "memory");
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(bytes) : : "memory");
}

static inline uint16_t get16(const uint8_t* p) { return (uint16_t)((uint16_t)p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t* p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t* p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void put32(uint8_t* p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The one's complement sum (RFC 1071) of len bytes starting at an even offset of the checksummed data, added to
 * `sum`, in the machine's byte order: storing the folded complement with a native 16-bit store gives the right
 * bytes. 16 bytes per loop iteration with an adc chain (the loop's lea/dec keep CF). */
uint32_t net_csum_add(uint32_t sum, const void* data, uint32_t len)
{
    const uint8_t* p = data;
    uint32_t blocks = len >> 4;
    if (blocks) {
        __asm__ volatile("clc\n"
                         "1: adcl (%[p]), %[s]\n"
                         "adcl 4(%[p]), %[s]\n"
                         "adcl 8(%[p]), %[s]\n"
                         "adcl 12(%[p]), %[s]\n"
                         "leal 16(%[p]), %[p]\n"
                         "decl %[n]\n"
                         "jnz 1b\n"
                         "adcl $0, %[s]\n"
                         : [s] "+r"(sum), [p] "+r"(p), [n] "+r"(blocks)
                         :
                         : "cc", "memory");
    }
    len &= 15;
    uint64_t acc = sum;
    while (len >= 2) {
        acc += (uint32_t)p[0] | (uint32_t)p[1] << 8;
        p += 2;
        len -= 2;
    }
    if (len)
        acc += p[0];
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t net_csum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put_csum(uint8_t* p, uint16_t c) { memcpy(p, &c, 2); }

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len)
{
    uint8_t ph[12];
    put32(ph, src);
    put32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = proto;
    put16(ph + 10, len);
    return net_csum_add(0, ph, 12);
}

/* ---- Frames ---- */
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IP_HLEN 20
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define L4_OFF (ETH_HLEN + IP_HLEN)
#define IP_BROADCAST 0xffffffffu

static uint8_t s_tx[NET_FRAME_MAX + 2] __attribute__((aligned(16)));
static uint8_t s_arp_tx[64] __attribute__((aligned(16)));
static uint8_t s_rx[NET_FRAME_MAX + 2] __attribute__((aligned(16)));
static const uint8_t BROADCAST_MAC[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static bool nic_send(struct net* n, uint8_t* frame, uint32_t len)
{
    if (len < NET_FRAME_MIN) {
        memset(frame + len, 0, NET_FRAME_MIN - len);
        len = NET_FRAME_MIN;
    }
    n->stats.tx_frames++;
    return n->nic->send(n->nic, frame, len);
}

static void eth_header(struct net* n, uint8_t* frame, const uint8_t* dst, uint16_t type)
{
    memcpy(frame, dst, 6);
    memcpy(frame + 6, n->nic->mac, 6);
    put16(frame + 12, type);
}

void net_init(struct net* n, struct nic* nic)
{
    memset(n, 0, sizeof(*n));
    n->nic = nic;
    n->ip_id = (uint16_t)time_us();
}

/* ---- ARP ---- */
static bool on_link(struct net* n, uint32_t ip) { return n->ip && (ip & n->netmask) == (n->ip & n->netmask); }

static const uint8_t* arp_lookup(struct net* n, uint32_t ip)
{
    for (unsigned i = 0; i < NET_ARP_ENTRIES; i++)
        if (n->arp[i].ip == ip && ip)
            return n->arp[i].mac;
    return NULL;
}

static void arp_learn(struct net* n, uint32_t ip, const uint8_t* mac, bool insert)
{
    if (!ip || ip == IP_BROADCAST)
        return;
    for (unsigned i = 0; i < NET_ARP_ENTRIES; i++) {
        if (n->arp[i].ip == ip) {
            memcpy(n->arp[i].mac, mac, 6);
            return;
        }
    }
    if (!insert)
        return;
    unsigned i = n->arp_next++ % NET_ARP_ENTRIES;
    n->arp[i].ip = ip;
    memcpy(n->arp[i].mac, mac, 6);
}

static void arp_send(struct net* n, uint16_t op, const uint8_t* dst_mac, const uint8_t* target_mac, uint32_t target_ip)
{
    uint8_t* f = s_arp_tx;
    eth_header(n, f, dst_mac, ETH_P_ARP);
    uint8_t* a = f + ETH_HLEN;
    put16(a, 1);          /* htype Ethernet */
    put16(a + 2, ETH_P_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, n->nic->mac, 6);
    put32(a + 14, n->ip);
    memcpy(a + 18, target_mac, 6);
    put32(a + 24, target_ip);
    nic_send(n, f, ETH_HLEN + 28);
}

static void arp_input(struct net* n, const uint8_t* a, uint32_t len)
{
    if (len < 28 || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) {
        n->stats.rx_dropped++;
        return;
    }
    uint16_t op = get16(a + 6);
    uint32_t sender_ip = get32(a + 14), target_ip = get32(a + 24);
    bool for_us = n->ip && target_ip == n->ip;
    arp_learn(n, sender_ip, a + 8, for_us);
    if (op == 1 && for_us)
        arp_send(n, 2, a + 8, a + 8, sender_ip);
}

static uint32_t next_hop(struct net* n, uint32_t dst) { return on_link(n, dst) || !n->router ? dst : n->router; }

bool net_arp_resolve(struct net* n, uint32_t ip, uint8_t mac[6], uint32_t timeout_ms)
{
    uint32_t hop = next_hop(n, ip);
    uint64_t start = time_us(), last = 0;
    bool sent = false;
    for (;;) {
        const uint8_t* m = arp_lookup(n, hop);
        if (m) {
            memcpy(mac, m, 6);
            return true;
        }
        uint64_t now = time_us();
        if (now - start >= (uint64_t)timeout_ms * 1000)
            return false;
        if (!sent || now - last >= 500000) {
            static const uint8_t zero[6];
            arp_send(n, 1, BROADCAST_MAC, zero, hop);
            sent = true;
            last = now;
        }
        net_poll(n);
    }
}

/* ---- IPv4 ---- */
/* Sends the l4_len bytes already at s_tx + L4_OFF to dst. */
static bool ip_output(struct net* n, uint32_t dst, uint8_t proto, uint32_t l4_len)
{
    const uint8_t* mac;
    if (dst == IP_BROADCAST || (n->ip && dst == (n->ip | ~n->netmask))) {
        mac = BROADCAST_MAC;
    } else {
        uint32_t hop = next_hop(n, dst);
        mac = arp_lookup(n, hop);
        if (!mac) {
            static const uint8_t zero[6];
            arp_send(n, 1, BROADCAST_MAC, zero, hop);
            return false;
        }
    }
    uint8_t* f = s_tx;
    eth_header(n, f, mac, ETH_P_IP);
    uint8_t* ip = f + ETH_HLEN;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, IP_HLEN + l4_len);
    put16(ip + 4, n->ip_id++);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = proto;
    put_csum(ip + 10, 0);
    put32(ip + 12, n->ip);
    put32(ip + 16, dst);
    put_csum(ip + 10, net_csum_fold(net_csum_add(0, ip, IP_HLEN)));
    return nic_send(n, f, ETH_HLEN + IP_HLEN + l4_len);
}

bool net_ip_send(struct net* n, uint32_t dst, uint8_t proto, const void* payload, uint32_t len)
{
    if (len > NET_FRAME_MAX - L4_OFF)
        return false;
    net_copy(s_tx + L4_OFF, payload, len);
    return ip_output(n, dst, proto, len);
}

static void icmp_input(struct net* n, uint32_t src, const uint8_t* p, uint32_t len)
{
    if (len < 8 || net_csum_fold(net_csum_add(0, p, len)) != 0) {
        n->stats.rx_dropped++;
        return;
    }
    if (p[0] != 8 || p[1] != 0) /* only echo requests */
        return;
    uint8_t* r = s_tx + L4_OFF;
    net_copy(r, p, len);
    r[0] = 0;
    put_csum(r + 2, 0);
    put_csum(r + 2, net_csum_fold(net_csum_add(0, r, len)));
    ip_output(n, src, IP_PROTO_ICMP, len);
}

/* ---- UDP and DHCP ---- */
bool net_udp_send(struct net* n, uint32_t dst, uint16_t src_port, uint16_t dst_port, const void* data, uint32_t len)
{
    if (len > NET_FRAME_MAX - L4_OFF - 8)
        return false;
    uint8_t* u = s_tx + L4_OFF;
    put16(u, src_port);
    put16(u + 2, dst_port);
    put16(u + 4, 8 + len);
    put_csum(u + 6, 0);
    net_copy(u + 8, data, len);
    uint16_t c = net_csum_fold(net_csum_add(pseudo_sum(n->ip, dst, IP_PROTO_UDP, 8 + len), u, 8 + len));
    put_csum(u + 6, c ? c : 0xffff);
    return ip_output(n, dst, IP_PROTO_UDP, 8 + len);
}

#define DHCP_CLIENT_PORT 68
#define DHCP_SERVER_PORT 67
#define DHCP_MAGIC 0x63825363u
#define DHCP_LEN 548 /* BOOTP header (236) + cookie + options, padded to the size servers expect */
#define DHCPDISCOVER 1
#define DHCPOFFER 2
#define DHCPREQUEST 3
#define DHCPACK 5
#define DHCPNAK 6

static void dhcp_send(struct net* n, uint8_t type)
{
    static uint8_t m[DHCP_LEN];
    memset(m, 0, sizeof(m));
    m[0] = 1; /* BOOTREQUEST */
    m[1] = 1;
    m[2] = 6;
    put32(m + 4, n->dhcp.xid);
    put16(m + 10, 0x8000); /* broadcast replies: we have no address yet */
    memcpy(m + 28, n->nic->mac, 6);
    put32(m + 236, DHCP_MAGIC);
    uint8_t* o = m + 240;
    *o++ = 53;
    *o++ = 1;
    *o++ = type;
    if (type == DHCPREQUEST) {
        *o++ = 50;
        *o++ = 4;
        put32(o, n->dhcp.offered);
        o += 4;
        *o++ = 54;
        *o++ = 4;
        put32(o, n->dhcp.server);
        o += 4;
    }
    *o++ = 55; /* parameter request list: netmask, router, DNS */
    *o++ = 3;
    *o++ = 1;
    *o++ = 3;
    *o++ = 6;
    *o++ = 255;
    net_udp_send(n, IP_BROADCAST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, m, DHCP_LEN);
}

static void dhcp_input(struct net* n, uint32_t src, const uint8_t* m, uint32_t len)
{
    if (len < 240 || m[0] != 2 || get32(m + 4) != n->dhcp.xid || memcmp(m + 28, n->nic->mac, 6) != 0
        || get32(m + 236) != DHCP_MAGIC)
        return;
    uint8_t type = 0;
    uint32_t server = src, mask = 0, router = 0, dns = 0;
    for (uint32_t i = 240; i < len;) {
        uint8_t opt = m[i];
        if (opt == 255)
            break;
        if (opt == 0) {
            i++;
            continue;
        }
        if (i + 2 > len || i + 2 + m[i + 1] > len)
            break;
        uint8_t olen = m[i + 1];
        const uint8_t* v = m + i + 2;
        if (opt == 53 && olen >= 1)
            type = v[0];
        else if (opt == 54 && olen >= 4)
            server = get32(v);
        else if (opt == 1 && olen >= 4)
            mask = get32(v);
        else if (opt == 3 && olen >= 4)
            router = get32(v);
        else if (opt == 6 && olen >= 4)
            dns = get32(v);
        i += 2u + olen;
    }
    uint32_t yiaddr = get32(m + 16);
    if (type == DHCPOFFER && n->dhcp.stage == 1) {
        n->dhcp.offered = yiaddr;
        n->dhcp.server = server;
        n->dhcp.stage = 2;
        printf("dhcp: offer %u.%u.%u.%u from %u.%u.%u.%u\n", NET_IP_ARGS(yiaddr), NET_IP_ARGS(server));
    } else if (type == DHCPACK && n->dhcp.stage == 2 && yiaddr == n->dhcp.offered) {
        n->dhcp.netmask = mask ? mask : 0xffffff00u;
        n->dhcp.router = router;
        n->dhcp.dns = dns;
        n->dhcp.stage = 3;
    } else if (type == DHCPNAK && n->dhcp.stage == 2) {
        n->dhcp.stage = -1;
    }
}

bool net_dhcp(struct net* n, uint32_t timeout_ms)
{
    n->dhcp.xid = (uint32_t)time_us() ^ get32(n->nic->mac + 2);
    n->dhcp.stage = 1;
    uint64_t start = time_us(), last = start;
    dhcp_send(n, DHCPDISCOVER);
    int sent_stage = 1;
    for (;;) {
        net_poll(n);
        uint64_t now = time_us();
        if (n->dhcp.stage == 3) {
            n->ip = n->dhcp.offered;
            n->netmask = n->dhcp.netmask;
            n->router = n->dhcp.router;
            n->dns = n->dhcp.dns;
            n->dhcp_server = n->dhcp.server;
            return true;
        }
        if (n->dhcp.stage < 0) {
            printf("dhcp: NAK\n");
            return false;
        }
        if (now - start >= (uint64_t)timeout_ms * 1000) {
            printf("dhcp: no %s within %u ms\n", n->dhcp.stage == 1 ? "OFFER" : "ACK", timeout_ms);
            return false;
        }
        if (n->dhcp.stage != sent_stage || now - last >= 1000000) {
            sent_stage = n->dhcp.stage;
            dhcp_send(n, sent_stage == 1 ? DHCPDISCOVER : DHCPREQUEST);
            last = now;
        }
    }
}

static void tcp_input(struct net* n, uint32_t src, const uint8_t* seg, uint32_t len);

static void udp_input(struct net* n, uint32_t src, uint32_t dst, const uint8_t* u, uint32_t len)
{
    if (len < 8 || get16(u + 4) < 8 || get16(u + 4) > len) {
        n->stats.rx_dropped++;
        return;
    }
    len = get16(u + 4);
    if ((u[6] | u[7]) && net_csum_fold(net_csum_add(pseudo_sum(src, dst, IP_PROTO_UDP, len), u, len)) != 0) {
        n->stats.rx_dropped++;
        return;
    }
    uint16_t sport = get16(u), dport = get16(u + 2);
    if (dport == DHCP_CLIENT_PORT && sport == DHCP_SERVER_PORT)
        dhcp_input(n, src, u + 8, len - 8);
    else if (n->udp_rx)
        n->udp_rx(n, src, sport, dport, u + 8, len - 8);
}

static void ip_input(struct net* n, const uint8_t* frame, uint32_t len)
{
    const uint8_t* ip = frame + ETH_HLEN;
    len -= ETH_HLEN;
    uint32_t hlen = (uint32_t)(ip[0] & 15) * 4;
    if (len < IP_HLEN || (ip[0] >> 4) != 4 || hlen < IP_HLEN || hlen > len) {
        n->stats.rx_dropped++;
        return;
    }
    uint32_t total = get16(ip + 2);
    if (total < hlen || total > len || net_csum_fold(net_csum_add(0, ip, hlen)) != 0 || (get16(ip + 6) & 0x3fff) != 0) {
        n->stats.rx_dropped++; /* truncated, bad checksum, or a fragment */
        return;
    }
    uint32_t src = get32(ip + 12), dst = get32(ip + 16);
    if (n->ip && dst != n->ip && dst != IP_BROADCAST && dst != (n->ip | ~n->netmask)) {
        n->stats.rx_dropped++;
        return;
    }
    if (on_link(n, src))
        arp_learn(n, src, frame + 6, true);
    const uint8_t* l4 = ip + hlen;
    uint32_t l4_len = total - hlen;
    switch (ip[9]) {
    case IP_PROTO_ICMP:
        if (n->ip)
            icmp_input(n, src, l4, l4_len);
        break;
    case IP_PROTO_UDP:
        udp_input(n, src, dst, l4, l4_len);
        break;
    case IP_PROTO_TCP:
        if (n->ip && dst == n->ip) {
            if (net_csum_fold(net_csum_add(pseudo_sum(src, dst, IP_PROTO_TCP, l4_len), l4, l4_len)) != 0) {
                n->stats.rx_dropped++;
                return;
            }
            tcp_input(n, src, l4, l4_len);
        }
        break;
    default:
        break;
    }
}

static void eth_input(struct net* n, const uint8_t* f, uint32_t len)
{
    if (len < ETH_HLEN || (memcmp(f, n->nic->mac, 6) != 0 && memcmp(f, BROADCAST_MAC, 6) != 0)) {
        n->stats.rx_dropped++;
        return;
    }
    uint16_t type = get16(f + 12);
    if (type == ETH_P_ARP)
        arp_input(n, f + ETH_HLEN, len - ETH_HLEN);
    else if (type == ETH_P_IP)
        ip_input(n, f, len);
}

/* ---- TCP ---- */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_HLEN 20
#define TCP_OUR_MSS (NET_FRAME_MAX - L4_OFF - TCP_HLEN) /* 1460 */
#define TCP_DEFAULT_MSS 536
#define TCP_RTO_INITIAL_US 500000u
#define TCP_RTO_MAX_US 8000000u
#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((a) - (b)) > 0)

const char* tcp_state_name(enum tcp_state s)
{
    static const char* const names[] = { "CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
        "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT" };
    return (unsigned)s < ARRAY_SIZE(names) ? names[s] : "?";
}

void net_tcp_attach(struct net* n, struct tcp_conn* c)
{
    n->tcp = c;
    c->state = TCP_CLOSED;
}

/* Builds and sends one segment; data comes from up to two pieces (the send ring may wrap). */
static void tcp_emit(struct net* n, uint16_t sport, uint32_t dst, uint16_t dport, uint32_t seq, uint32_t ack,
    uint8_t flags, uint32_t wnd, const uint8_t* d1, uint32_t l1, const uint8_t* d2, uint32_t l2)
{
    uint8_t* t = s_tx + L4_OFF;
    uint32_t hlen = (flags & TCP_SYN) ? TCP_HLEN + 4 : TCP_HLEN;
    put16(t, sport);
    put16(t + 2, dport);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = (uint8_t)((hlen / 4) << 4);
    t[13] = flags;
    put16(t + 14, wnd > 0xffff ? 0xffff : wnd);
    put_csum(t + 16, 0);
    put16(t + 18, 0);
    if (flags & TCP_SYN) {
        t[20] = 2; /* MSS option */
        t[21] = 4;
        put16(t + 22, n->nic->rx_mss && n->nic->rx_mss < TCP_OUR_MSS ? n->nic->rx_mss : TCP_OUR_MSS);
    }
    if (l1)
        net_copy(t + hlen, d1, l1);
    if (l2)
        net_copy(t + hlen + l1, d2, l2);
    uint32_t seg_len = hlen + l1 + l2;
    put_csum(t + 16, net_csum_fold(net_csum_add(pseudo_sum(n->ip, dst, IP_PROTO_TCP, seg_len), t, seg_len)));
    n->stats.tcp_tx_segments++;
    ip_output(n, dst, IP_PROTO_TCP, seg_len);
}

static void tcp_segment_wnd(struct net* n, struct tcp_conn* c, uint32_t seq, uint8_t flags, uint32_t len,
    bool keep_window);
static uint32_t rcv_window(struct tcp_conn* c) { return NET_TCP_RCVBUF - c->rbuf_len; }

/* Copies len bytes of stream data, starting `gap` bytes after rcv_nxt, to where they belong in the receive ring. */
static void rbuf_put(struct tcp_conn* c, uint32_t gap, const uint8_t* data, uint32_t len)
{
    uint32_t pos = (c->rbuf_head + c->rbuf_len + gap) & (NET_TCP_RCVBUF - 1);
    uint32_t l1 = NET_TCP_RCVBUF - pos < len ? NET_TCP_RCVBUF - pos : len;
    net_copy(c->rbuf + pos, data, l1);
    if (len > l1)
        net_copy(c->rbuf, data + l1, len - l1);
}

/* A segment of the connection: seq, flags, len bytes of the send buffer starting at sequence number seq. */
static void tcp_segment(struct net* n, struct tcp_conn* c, uint32_t seq, uint8_t flags, uint32_t len)
{
    tcp_segment_wnd(n, c, seq, flags, len, false);
}

/* keep_window: a duplicate ACK says the same window as the ACK before it (if it still fits), or the peer does not
 * count it as a duplicate (RFC 5681 section 2). */
static void tcp_segment_wnd(struct net* n, struct tcp_conn* c, uint32_t seq, uint8_t flags, uint32_t len,
    bool keep_window)
{
    const uint8_t* d1 = NULL;
    const uint8_t* d2 = NULL;
    uint32_t l1 = 0, l2 = 0;
    if (len) {
        uint32_t pos = (seq - c->iss - 1) & (NET_TCP_SNDBUF - 1);
        l1 = NET_TCP_SNDBUF - pos < len ? NET_TCP_SNDBUF - pos : len;
        l2 = len - l1;
        d1 = c->sbuf + pos;
        d2 = c->sbuf;
    }
    uint32_t wnd = rcv_window(c);
    if (keep_window && c->rcv_ack_sent == c->rcv_nxt && c->rcv_wnd_sent <= wnd)
        wnd = c->rcv_wnd_sent;
    c->rcv_wnd_sent = wnd;
    c->rcv_ack_sent = c->rcv_nxt;
    if (flags & TCP_ACK)
        c->ack_pending = false;
    tcp_emit(n, c->local_port, c->remote_ip, c->remote_port, seq, (flags & TCP_ACK) ? c->rcv_nxt : 0, flags, wnd,
        d1, l1, d2, l2);
}

static void tcp_arm_timer(struct tcp_conn* c, uint64_t now) { c->rto_deadline = now + c->rto_us; }

static void tcp_output(struct net* n, struct tcp_conn* c)
{
    uint64_t now = time_us();
    bool probe = false;
    if (c->rto_deadline && now >= c->rto_deadline) {
        /* Timeout: go back to the first unacknowledged byte and send from there (go-back-N). */
        n->stats.tcp_retransmits++;
        c->rto_us = c->rto_us * 2 > TCP_RTO_MAX_US ? TCP_RTO_MAX_US : c->rto_us * 2;
        c->snd_nxt = c->snd_una;
        c->rto_deadline = 0;
        probe = true;
    }
    switch (c->state) {
    case TCP_SYN_SENT:
    case TCP_SYN_RCVD:
        if (c->snd_nxt == c->iss) {
            tcp_segment(n, c, c->iss, c->state == TCP_SYN_SENT ? TCP_SYN : TCP_SYN | TCP_ACK, 0);
            c->snd_nxt = c->snd_max = c->iss + 1;
            tcp_arm_timer(c, now);
        }
        return;
    case TCP_ESTABLISHED:
    case TCP_CLOSE_WAIT:
    case TCP_FIN_WAIT_1:
    case TCP_CLOSING:
    case TCP_LAST_ACK: {
        uint32_t data_end = c->snd_una + c->sbuf_len;
        uint32_t wnd = c->snd_wnd < NET_TCP_SNDBUF ? c->snd_wnd : NET_TCP_SNDBUF;
        if (wnd == 0 && probe)
            wnd = 1; /* zero-window probe */
        for (;;) {
            uint32_t in_flight = c->snd_nxt - c->snd_una;
            if (SEQ_LT(c->snd_nxt, data_end)) {
                uint32_t len = data_end - c->snd_nxt;
                if (len > c->mss)
                    len = c->mss;
                if (in_flight >= wnd)
                    break;
                if (len > wnd - in_flight)
                    len = wnd - in_flight;
                uint8_t flags = TCP_ACK;
                if (c->snd_nxt + len == data_end)
                    flags |= TCP_PSH;
                tcp_segment(n, c, c->snd_nxt, flags, len);
                c->snd_nxt += len;
            } else if (c->fin_queued && c->snd_nxt == c->fin_seq) {
                tcp_segment(n, c, c->fin_seq, TCP_FIN | TCP_ACK, 0);
                c->snd_nxt = c->fin_seq + 1;
            } else {
                break;
            }
            if (SEQ_GT(c->snd_nxt, c->snd_max))
                c->snd_max = c->snd_nxt;
            if (!c->rto_deadline)
                tcp_arm_timer(c, now);
        }
        /* Unsent data behind a zero window: keep the timer running to probe. */
        if (!c->rto_deadline
            && (SEQ_LT(c->snd_una, data_end) || (c->fin_queued && SEQ_LEQ(c->snd_una, c->fin_seq))))
            tcp_arm_timer(c, now);
        break;
    }
    default:
        break;
    }
    if (c->ack_pending && c->state >= TCP_ESTABLISHED)
        tcp_segment(n, c, c->snd_nxt, TCP_ACK, 0);
}

static void tcp_reset_reply(struct net* n, uint32_t src, const uint8_t* seg, uint32_t dlen)
{
    uint8_t flags = seg[13];
    if (flags & TCP_RST)
        return;
    uint32_t seq = get32(seg + 4), ack = get32(seg + 8);
    if (flags & TCP_ACK)
        tcp_emit(n, get16(seg + 2), src, get16(seg), ack, 0, TCP_RST, 0, NULL, 0, NULL, 0);
    else
        tcp_emit(n, get16(seg + 2), src, get16(seg),  0,
            seq + dlen + ((flags & TCP_SYN) ? 1u : 0u) + ((flags & TCP_FIN) ? 1u : 0u), TCP_RST | TCP_ACK, 0, NULL, 0,
            NULL, 0);
}

static uint32_t tcp_parse_mss(const uint8_t* seg, uint32_t hlen)
{
    for (uint32_t i = TCP_HLEN; i < hlen;) {
        uint8_t kind = seg[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hlen || seg[i + 1] < 2 || i + seg[i + 1] > hlen)
            break;
        if (kind == 2 && seg[i + 1] == 4) {
            uint32_t mss = get16(seg + i + 2);
            if (mss < 64)
                mss = 64;
            return mss > TCP_OUR_MSS ? TCP_OUR_MSS : mss;
        }
        i += seg[i + 1];
    }
    return TCP_DEFAULT_MSS;
}

static void tcp_start(struct tcp_conn* c)
{
    static uint32_t s_iss_counter;
    c->reset = c->fin_received = c->fin_queued = c->ack_pending = false;
    c->dup_acks = 0;
    c->ooo_len = 0;
    c->iss = (uint32_t)time_us() * 2654435761u + (s_iss_counter += 0x10000);
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->snd_wnd = 0;
    c->mss = TCP_DEFAULT_MSS;
    c->sbuf_len = c->rbuf_head = c->rbuf_len = 0;
    c->rto_deadline = 0;
    c->rto_us = TCP_RTO_INITIAL_US;
}

/* Our FIN has been acknowledged: move on. */
static void tcp_fin_acked(struct tcp_conn* c)
{
    if (c->state == TCP_FIN_WAIT_1)
        c->state = TCP_FIN_WAIT_2;
    else if (c->state == TCP_CLOSING)
        c->state = TCP_TIME_WAIT;
    else if (c->state == TCP_LAST_ACK)
        c->state = TCP_CLOSED;
}

static void tcp_input(struct net* n, uint32_t src, const uint8_t* seg, uint32_t len)
{
    struct tcp_conn* c = n->tcp;
    if (len < TCP_HLEN) {
        n->stats.rx_dropped++;
        return;
    }
    uint32_t hlen = (uint32_t)(seg[12] >> 4) * 4;
    if (hlen < TCP_HLEN || hlen > len) {
        n->stats.rx_dropped++;
        return;
    }
    uint16_t sport = get16(seg), dport = get16(seg + 2);
    uint32_t seq = get32(seg + 4), ack = get32(seg + 8), wnd = get16(seg + 14);
    uint8_t flags = seg[13];
    const uint8_t* data = seg + hlen;
    uint32_t dlen = len - hlen;
    n->stats.tcp_rx_segments++;

    bool match = c && c->state != TCP_CLOSED && dport == c->local_port
        && (c->state == TCP_LISTEN || (src == c->remote_ip && sport == c->remote_port));
    if (!match) {
        tcp_reset_reply(n, src, seg, dlen);
        return;
    }
    uint64_t now = time_us();
    switch (c->state) {
    case TCP_LISTEN:
        if (flags & TCP_RST)
            return;
        if (flags & TCP_ACK) {
            tcp_reset_reply(n, src, seg, dlen);
            return;
        }
        if (!(flags & TCP_SYN))
            return;
        tcp_start(c);
        c->remote_ip = src;
        c->remote_port = sport;
        c->irs = seq;
        c->rcv_nxt = seq + 1;
        c->mss = tcp_parse_mss(seg, hlen);
        c->snd_wnd = wnd;
        c->state = TCP_SYN_RCVD;
        tcp_output(n, c); /* SYN-ACK */
        return;
    case TCP_SYN_SENT:
        if ((flags & TCP_ACK) && ack != c->iss + 1) {
            tcp_reset_reply(n, src, seg, dlen);
            return;
        }
        if (flags & TCP_RST) {
            if (flags & TCP_ACK) {
                c->state = TCP_CLOSED;
                c->reset = true;
            }
            return;
        }
        if ((flags & TCP_SYN) && (flags & TCP_ACK)) {
            c->irs = seq;
            c->rcv_nxt = seq + 1;
            c->mss = tcp_parse_mss(seg, hlen);
            c->snd_una = c->snd_nxt = c->snd_max = c->iss + 1;
            c->snd_wnd = wnd;
            c->state = TCP_ESTABLISHED;
            c->rto_deadline = 0;
            c->rto_us = TCP_RTO_INITIAL_US;
            c->ack_pending = true;
        }
        return;
    default:
        break;
    }

    /* Synchronized states. */
    if (flags & TCP_RST) {
        /* Accept a RST whose sequence number lies in the window we advertised. */
        if (SEQ_LEQ(c->rcv_nxt, seq) && SEQ_LEQ(seq, c->rcv_nxt + (c->rcv_wnd_sent ? c->rcv_wnd_sent : 1))) {
            c->state = TCP_CLOSED;
            c->reset = true;
        }
        return;
    }
    if (flags & TCP_SYN) {
        if (c->state == TCP_SYN_RCVD && seq == c->irs)
            c->snd_nxt = c->iss; /* our SYN-ACK was lost: send it again */
        else
            c->ack_pending = true;
        return;
    }
    if (!(flags & TCP_ACK))
        return;
    if (c->state == TCP_SYN_RCVD) {
        if (ack != c->iss + 1) {
            tcp_reset_reply(n, src, seg, dlen);
            return;
        }
        c->state = TCP_ESTABLISHED;
        c->snd_una = c->snd_nxt = c->iss + 1;
        c->rto_deadline = 0;
        c->rto_us = TCP_RTO_INITIAL_US;
    }

    /* ACK */
    if (SEQ_GT(ack, c->snd_max)) {
        c->ack_pending = true; /* acknowledges something we never sent */
        return;
    }
    if (ack == c->snd_una && !dlen && !(flags & TCP_FIN) && wnd == c->snd_wnd && c->snd_una != c->snd_max) {
        /* A duplicate ACK: the third one means a lost segment; send it again at once (fast retransmit). */
        if (++c->dup_acks == 3) {
            uint32_t len = c->snd_max - c->snd_una;
            if (len > c->sbuf_len)
                len = c->sbuf_len;
            if (len > c->mss)
                len = c->mss;
            if (len) {
                n->stats.tcp_fast_retransmits++;
                tcp_segment(n, c, c->snd_una, TCP_ACK, len);
                tcp_arm_timer(c, now);
            }
        }
    }
    if (SEQ_GT(ack, c->snd_una)) {
        c->dup_acks = 0;
        uint32_t acked = ack - c->snd_una;
        bool fin_acked = c->fin_queued && ack == c->fin_seq + 1;
        uint32_t data_acked = fin_acked ? acked - 1 : acked;
        if (data_acked > c->sbuf_len)
            data_acked = c->sbuf_len;
        c->sbuf_len -= data_acked;
        c->snd_una = ack;
        if (SEQ_LT(c->snd_nxt, c->snd_una))
            c->snd_nxt = c->snd_una;
        c->rto_us = TCP_RTO_INITIAL_US;
        c->rto_deadline = 0;
        if (c->snd_una != c->snd_max)
            tcp_arm_timer(c, now);
        if (fin_acked)
            tcp_fin_acked(c);
    }
    if (SEQ_LEQ(c->snd_una, ack))
        c->snd_wnd = wnd;

    /* Data and FIN */
    bool fin = flags & TCP_FIN;
    if (!dlen && !fin)
        return;
    if (c->state != TCP_ESTABLISHED && c->state != TCP_FIN_WAIT_1 && c->state != TCP_FIN_WAIT_2) {
        c->ack_pending = true; /* a retransmission after the peer's FIN: ACK it again */
        return;
    }
    int32_t off = (int32_t)(c->rcv_nxt - seq);
    if (off < 0) {
        /* A hole before this segment. Keep it if it starts or extends the one out-of-order range (its bytes go
         * where they belong in the ring), and send a duplicate ACK at once (not coalesced), so the peer's fast
         * retransmit (three duplicate ACKs) fills the hole. A FIN out of order is dropped (the peer resends it). */
        n->stats.tcp_out_of_order++;
        uint32_t gap = (uint32_t)-off;
        if (dlen && gap + dlen <= rcv_window(c)) {
            if (!c->ooo_len || seq == c->ooo_seq + c->ooo_len) {
                if (!c->ooo_len)
                    c->ooo_seq = seq;
                rbuf_put(c, gap, data, dlen);
                c->ooo_len += dlen;
            }
        }
        tcp_segment_wnd(n, c, c->snd_nxt, TCP_ACK, 0, true);
        return;
    }
    if ((uint32_t)off < dlen) {
        uint32_t take = dlen - (uint32_t)off;
        uint32_t room = rcv_window(c);
        if (take > room) {
            take = room;
            fin = false; /* the FIN comes after the bytes we could not take */
        }
        rbuf_put(c, 0, data + off, take);
        c->rbuf_len += take;
        c->rcv_nxt += take;
        /* The hole before the out-of-order range is filled: take the range too (its bytes are in place). */
        if (c->ooo_len && SEQ_LEQ(c->ooo_seq, c->rcv_nxt)) {
            uint32_t end = c->ooo_seq + c->ooo_len;
            if (SEQ_GT(end, c->rcv_nxt)) {
                c->rbuf_len += end - c->rcv_nxt;
                c->rcv_nxt = end;
                fin = fin && seq + dlen == end;
            }
            c->ooo_len = 0;
        }
    }
    c->ack_pending = true;
    if (fin && seq + dlen == c->rcv_nxt) {
        c->rcv_nxt++;
        c->fin_received = true;
        if (c->state == TCP_ESTABLISHED)
            c->state = TCP_CLOSE_WAIT;
        else if (c->state == TCP_FIN_WAIT_1)
            c->state = TCP_CLOSING;
        else
            c->state = TCP_TIME_WAIT;
    }
}

void net_poll(struct net* n)
{
    for (int i = 0; i < 64; i++) {
        uint32_t len = n->nic->poll_recv(n->nic, s_rx);
        if (!len)
            break;
        n->stats.rx_frames++;
        eth_input(n, s_rx, len);
    }
    if (n->tcp)
        tcp_output(n, n->tcp);
}

static bool tcp_wait(struct net* n, enum tcp_state until, uint32_t timeout_ms)
{
    uint64_t start = time_us();
    while (time_us() - start < (uint64_t)timeout_ms * 1000) {
        net_poll(n);
        if (n->tcp->state == until)
            return true;
        if (n->tcp->state == TCP_CLOSED)
            return false;
    }
    return false;
}

bool tcp_connect(struct net* n, uint32_t ip, uint16_t port, uint32_t timeout_ms)
{
    struct tcp_conn* c = n->tcp;
    uint8_t mac[6];
    if (!net_arp_resolve(n, ip, mac, timeout_ms)) {
        printf("tcp: no ARP reply for the next hop to %u.%u.%u.%u\n", NET_IP_ARGS(ip));
        return false;
    }
    tcp_start(c);
    c->local_port = (uint16_t)(49152 + ((uint32_t)time_us() & 0x3fff));
    c->remote_ip = ip;
    c->remote_port = port;
    c->state = TCP_SYN_SENT;
    tcp_output(n, c);
    if (tcp_wait(n, TCP_ESTABLISHED, timeout_ms))
        return true;
    printf("tcp: connect to %u.%u.%u.%u:%u failed: %s in %s\n", NET_IP_ARGS(ip), port,
        c->reset ? "reset" : "timeout", tcp_state_name(c->state));
    c->state = TCP_CLOSED;
    return false;
}

bool tcp_listen_accept(struct net* n, uint16_t port, uint32_t timeout_ms)
{
    struct tcp_conn* c = n->tcp;
    tcp_start(c);
    c->local_port = port;
    c->state = TCP_LISTEN;
    uint64_t start = time_us();
    while (time_us() - start < (uint64_t)timeout_ms * 1000) {
        net_poll(n);
        if (c->state == TCP_ESTABLISHED)
            return true;
        if (c->state == TCP_CLOSED) /* reset during the handshake: listen again */
            c->state = TCP_LISTEN;
    }
    printf("tcp: nobody connected to port %u in %u ms (%s)\n", port, timeout_ms, tcp_state_name(c->state));
    c->state = TCP_CLOSED;
    return false;
}

int32_t tcp_send(struct net* n, const void* data, uint32_t len)
{
    struct tcp_conn* c = n->tcp;
    if (c->reset || c->fin_queued || (c->state != TCP_ESTABLISHED && c->state != TCP_CLOSE_WAIT))
        return -1;
    uint32_t room = NET_TCP_SNDBUF - c->sbuf_len;
    uint32_t take = len < room ? len : room;
    if (take) {
        uint32_t pos = (c->snd_una + c->sbuf_len - c->iss - 1) & (NET_TCP_SNDBUF - 1);
        uint32_t l1 = NET_TCP_SNDBUF - pos < take ? NET_TCP_SNDBUF - pos : take;
        net_copy(c->sbuf + pos, data, l1);
        if (take > l1)
            net_copy(c->sbuf, (const uint8_t*)data + l1, take - l1);
        c->sbuf_len += take;
        tcp_output(n, c);
    }
    return (int32_t)take;
}

int32_t tcp_recv(struct net* n, void* buf, uint32_t len)
{
    struct tcp_conn* c = n->tcp;
    uint32_t take = len < c->rbuf_len ? len : c->rbuf_len;
    if (take) {
        uint32_t l1 = NET_TCP_RCVBUF - c->rbuf_head < take ? NET_TCP_RCVBUF - c->rbuf_head : take;
        net_copy(buf, c->rbuf + c->rbuf_head, l1);
        if (take > l1)
            net_copy((uint8_t*)buf + l1, c->rbuf, take - l1);
        c->rbuf_head = (c->rbuf_head + take) & (NET_TCP_RCVBUF - 1);
        c->rbuf_len -= take;
        /* The window opened by a quarter of the buffer since we last said: tell the peer. */
        if (rcv_window(c) >= c->rcv_wnd_sent + NET_TCP_RCVBUF / 4)
            c->ack_pending = true;
        return (int32_t)take;
    }
    if (c->reset || c->fin_received || c->state == TCP_CLOSED)
        return -1;
    return 0;
}

uint32_t tcp_unacked(struct net* n) { return n->tcp->sbuf_len; }

bool tcp_close(struct net* n, bool wait_peer_fin, uint32_t timeout_ms)
{
    struct tcp_conn* c = n->tcp;
    if (c->reset)
        return false;
    if (!c->fin_queued) {
        if (c->state == TCP_ESTABLISHED)
            c->state = TCP_FIN_WAIT_1;
        else if (c->state == TCP_CLOSE_WAIT)
            c->state = TCP_LAST_ACK;
        else
            return false;
        c->fin_queued = true;
        c->fin_seq = c->snd_una + c->sbuf_len;
        tcp_output(n, c);
    }
    uint64_t start = time_us();
    for (;;) {
        enum tcp_state s = c->state;
        bool our_fin_acked = s == TCP_FIN_WAIT_2 || s == TCP_TIME_WAIT || (s == TCP_CLOSED && !c->reset);
        if (c->reset)
            return false;
        if (our_fin_acked && (!wait_peer_fin || c->fin_received))
            return true;
        if (time_us() - start >= (uint64_t)timeout_ms * 1000) {
            printf("tcp: close timed out in %s (unacked %u)\n", tcp_state_name(s), c->sbuf_len);
            return false;
        }
        net_poll(n);
    }
}
