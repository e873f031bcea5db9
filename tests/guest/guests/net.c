/* net: the network stack (lib/net.c) over a NIC driver, against the VMM's user networking (libslirp: 10.0.2.0/24,
 * router 10.0.2.2 = the host's 127.0.0.1, DNS 10.0.2.3, DHCP hands out 10.0.2.15).
 *
 *   nic=virtio       the NIC: virtio (virtio-net, lib/virtio_net.c), e1000 (Intel 82540EM, lib/e1000.c) or
 *                    rtl8139 (Realtek RTL8139C+ in C mode, lib/rtl8139.c), rtl8139cp (the same in C+ mode, with
 *                    checksum offload both ways), ne2k_pci (RTL8029AS, lib/ne2k.c) or pcnet (AMD Am79C970A, lib/pcnet.c)
 *   mode=echo        DHCP; TCP connect to server:port (server= defaults to the DHCP router); sends bytes= (default
 *                    1 MiB) of a pattern while reading the echo back; compares; closes (FIN both ways).
 *   mode=serve       DHCP; listens on listen= (default 7), prints "net: listening", accepts one connection and echoes
 *                    it until the peer closes, then closes. The peer must send the same pattern; with expect=N it
 *                    must send exactly N bytes.
 *   csum=1           ask the NIC driver for checksum offload both ways (virtio-net: CSUM and GUEST_CSUM)
 *   drop=N           (both modes) from the TCP connection on, lose every Nth frame sent and every Nth frame
 *                    received (a wrapper around the NIC): exercises retransmission and out-of-order handling.
 * The pattern: little-endian 32-bit word k of the stream is (k * 0x9E3779B1) ^ 0xA5A5A5A5 (run-net-test.sh makes
 * the same).
 *
 * Exit codes: 2 NIC not found or unknown nic=, 3 no PM timer, 4 DHCP failed, 5 no ARP reply from the router,
 * 6 connect failed, 7 transfer stalled (no progress for 15 s), 8 data mismatch, 9 connection reset or closed early,
 * 10 close failed, 11 nobody connected, 12 bad command line, 13 wrong byte count (serve, expect=), 14 a NIC driver's
 * self-check failed (e1000: interrupt causes not set), 15 a NIC driver found a corrupt receive (rtl8139: a bad ring
 * buffer header; rtl8139cp: a checksum verdict that disagrees with the driver's own; pcnet: a bad receive
 * descriptor).
 */
#include "guest.h"

#define MAX_BYTES (1u << 20)
#define STALL_US 15000000u

static struct nic s_nic;
static struct nic s_lossy;
static uint32_t s_drop_every, s_tx_count, s_rx_count, s_tx_lost, s_rx_lost;
static struct net s_net;
static struct tcp_conn s_conn;
static uint32_t s_out[MAX_BYTES / 4];
static uint32_t s_in[MAX_BYTES / 4];

static bool lossy_send(struct nic* nic, const void* frame, uint32_t len)
{
    (void)nic;
    if (++s_tx_count % s_drop_every == 0) {
        s_tx_lost++;
        return true; /* "sent", and lost on the wire */
    }
    return s_nic.send(&s_nic, frame, len);
}

static uint32_t lossy_poll_recv(struct nic* nic, void* buf)
{
    (void)nic;
    for (;;) {
        uint32_t len = s_nic.poll_recv(&s_nic, buf);
        if (!len || ++s_rx_count % s_drop_every != 0)
            return len;
        s_rx_lost++;
    }
}

static void fill_pattern(uint32_t* w, uint32_t bytes)
{
    for (uint32_t k = 0; k < bytes / 4; k++)
        w[k] = (k * 0x9E3779B1u) ^ 0xA5A5A5A5u;
}

/* The first byte offset where the buffers differ, or `bytes` if none. */
static uint32_t first_mismatch(const uint32_t* a, const uint32_t* b, uint32_t bytes)
{
    for (uint32_t k = 0; k < bytes / 4; k++) {
        if (a[k] != b[k]) {
            const uint8_t* x = (const uint8_t*)(a + k);
            const uint8_t* y = (const uint8_t*)(b + k);
            uint32_t i = 0;
            while (i < 3 && x[i] == y[i])
                i++;
            return k * 4 + i;
        }
    }
    return bytes;
}

static bool parse_ip(const char* s, uint32_t* out)
{
    uint32_t ip = 0;
    for (int part = 0; part < 4; part++) {
        size_t len = 0;
        while (s[len] && s[len] != '.')
            len++;
        uint32_t v;
        if (!parse_u32(s, len, &v) || v > 255 || (part < 3 && s[len] != '.') || (part == 3 && s[len]))
            return false;
        ip = ip << 8 | v;
        s += len + (part < 3);
    }
    *out = ip;
    return true;
}

static void print_stats(uint32_t bytes, uint64_t start_us)
{
    uint32_t us = (uint32_t)(time_us() - start_us);
    uint32_t ms = us / 1000 ? us / 1000 : 1;
    const struct net_stats* s = &s_net.stats;
    printf("net: %u bytes in %u ms (%u KiB/s); frames rx %u tx %u dropped %u; tcp segments rx %u tx %u, "
           "retransmission timeouts %u, fast retransmits %u, out of order %u; NIC rx drops %u\n",
        bytes, ms, (bytes / 1024) * 1000 / ms, s->rx_frames, s->tx_frames, s->rx_dropped, s->tcp_rx_segments,
        s->tcp_tx_segments, s->tcp_retransmits, s->tcp_fast_retransmits, s->tcp_out_of_order, s_nic.rx_drops);
    if (s_nic.print_stats)
        s_nic.print_stats(&s_nic);
    if (s_drop_every)
        printf("net: lost on purpose: %u frames sent, %u received\n", s_tx_lost, s_rx_lost);
}

static void mode_echo(void)
{
    uint32_t port, bytes = MAX_BYTES, server = s_net.router;
    char buf[24];
    if (!cmdline_get_u32("port", &port) || port == 0 || port > 65535)
        fail(12, "mode=echo needs port=<host TCP port>");
    if (cmdline_get_u32("bytes", &bytes) && (bytes == 0 || bytes > MAX_BYTES || (bytes & 3)))
        fail(12, "bytes= must be a multiple of 4 in 4..%u", MAX_BYTES);
    if (cmdline_get("server", buf, sizeof(buf)) && !parse_ip(buf, &server))
        fail(12, "bad server=%s", buf);
    fill_pattern(s_out, bytes);

    printf("net: connecting to %u.%u.%u.%u:%u\n", NET_IP_ARGS(server), port);
    if (!tcp_connect(&s_net, server, (uint16_t)port, 10000))
        fail(6, "TCP connect to %u.%u.%u.%u:%u failed", NET_IP_ARGS(server), port);
    printf("net: connected from port %u (peer MSS %u, window %u)\n", s_conn.local_port, s_conn.mss, s_conn.snd_wnd);

    uint64_t start = time_us(), last_progress = start;
    uint32_t sent = 0, got = 0, reported = 0;
    uint8_t* in = (uint8_t*)s_in;
    const uint8_t* out = (const uint8_t*)s_out;
    while (got < bytes) {
        bool progress = false;
        if (sent < bytes) {
            int32_t r = tcp_send(&s_net, out + sent, bytes - sent);
            if (r < 0)
                fail(9, "connection %s after sending %u bytes", s_conn.reset ? "reset" : "closed", sent);
            sent += (uint32_t)r;
            progress = r > 0;
        }
        net_poll(&s_net);
        int32_t r = tcp_recv(&s_net, in + got, bytes - got);
        if (r < 0)
            fail(9, "connection %s after %u of %u bytes came back", s_conn.reset ? "reset" : "closed", got, bytes);
        got += (uint32_t)r;
        uint64_t now = time_us();
        if (r > 0 || progress)
            last_progress = now;
        else if (now - last_progress > STALL_US)
            fail(7, "stalled: sent %u, got back %u, unacked %u, state %s", sent, got, tcp_unacked(&s_net),
                tcp_state_name(s_conn.state));
        if (got - reported >= 262144 || (got == bytes && reported != bytes)) {
            printf("net: %u of %u bytes echoed\n", got, bytes);
            reported = got;
        }
    }
    uint32_t bad = first_mismatch(s_in, s_out, bytes);
    if (bad != bytes)
        fail(8, "echo differs at byte %u: got %02x, sent %02x", bad, in[bad], out[bad]);
    printf("check: %u bytes echoed intact: ok\n", bytes);
    if (!tcp_close(&s_net, true, 10000))
        fail(10, "close failed (state %s)", tcp_state_name(s_conn.state));
    printf("net: closed (%s)\n", tcp_state_name(s_conn.state));
    print_stats(2 * bytes, start);
}

static void mode_serve(void)
{
    uint32_t port = 7, expect = 0;
    char tmp[12];
    if (cmdline_get("listen", tmp, sizeof(tmp)) && (!cmdline_get_u32("listen", &port) || port == 0 || port > 65535))
        fail(12, "bad listen=");
    cmdline_get_u32("expect", &expect);
    if (expect > MAX_BYTES)
        fail(12, "expect= above %u", MAX_BYTES);
    fill_pattern(s_out, MAX_BYTES);

    printf("net: listening on %u.%u.%u.%u:%u\n", NET_IP_ARGS(s_net.ip), port);
    if (!tcp_listen_accept(&s_net, (uint16_t)port, 90000))
        fail(11, "nobody connected to port %u", port);
    printf("net: connection from %u.%u.%u.%u:%u\n", NET_IP_ARGS(s_conn.remote_ip), s_conn.remote_port);

    uint64_t start = time_us(), last_progress = start;
    uint32_t got = 0, echoed = 0;
    uint8_t* in = (uint8_t*)s_in;
    bool peer_done = false;
    while (!peer_done || echoed < got) {
        bool progress = false;
        if (!peer_done) {
            if (got == MAX_BYTES)
                fail(13, "the peer sent more than %u bytes", MAX_BYTES);
            int32_t r = tcp_recv(&s_net, in + got, MAX_BYTES - got);
            if (r < 0) {
                if (s_conn.reset)
                    fail(9, "connection reset after %u bytes", got);
                peer_done = true;
                printf("net: peer closed after %u bytes\n", got);
            } else {
                got += (uint32_t)r;
                progress = r > 0;
            }
        }
        if (echoed < got) {
            int32_t r = tcp_send(&s_net, in + echoed, got - echoed);
            if (r < 0)
                fail(9, "connection %s after echoing %u bytes", s_conn.reset ? "reset" : "closed", echoed);
            echoed += (uint32_t)r;
            progress = progress || r > 0;
        }
        net_poll(&s_net);
        uint64_t now = time_us();
        if (progress)
            last_progress = now;
        else if (now - last_progress > STALL_US)
            fail(7, "stalled: got %u, echoed %u, unacked %u, state %s", got, echoed, tcp_unacked(&s_net),
                tcp_state_name(s_conn.state));
    }
    if (!tcp_close(&s_net, true, 10000))
        fail(10, "close failed (state %s)", tcp_state_name(s_conn.state));
    printf("net: echoed %u bytes, closed (%s)\n", got, tcp_state_name(s_conn.state));
    uint32_t whole = got & ~3u;
    uint32_t bad = first_mismatch(s_in, s_out, whole);
    if (bad != whole)
        fail(8, "the peer's data differs from the pattern at byte %u", bad);
    printf("check: the peer's %u bytes follow the pattern: ok\n", got);
    if (expect && got != expect)
        fail(13, "the peer sent %u bytes, expected %u", got, expect);
    print_stats(2 * got, start);
}

int guest_main(void)
{
    char nic[16] = "virtio", mode[16] = "echo";
    cmdline_get("nic", nic, sizeof(nic));
    cmdline_get("mode", mode, sizeof(mode));
    if (strcmp(mode, "echo") != 0 && strcmp(mode, "serve") != 0)
        fail(12, "unknown mode=%s", mode);
    if (!pm_timer_init())
        fail(3, "no ACPI PM timer");
    bool found = false;
    if (strcmp(nic, "virtio") == 0)
        found = virtio_net_init(&s_nic);
    else if (strcmp(nic, "e1000") == 0)
        found = e1000_init(&s_nic);
    else if (strcmp(nic, "rtl8139") == 0)
        found = rtl8139_init(&s_nic);
    else if (strcmp(nic, "rtl8139cp") == 0)
        found = rtl8139cp_init(&s_nic);
    else if (strcmp(nic, "pcnet") == 0)
        found = pcnet_init(&s_nic);
    else if (strcmp(nic, "ne2k_pci") == 0)
        found = ne2k_init(&s_nic);
    else
        fail(2, "unknown nic=%s", nic);
    if (!found)
        fail(2, "no %s NIC", nic);
    net_init(&s_net, &s_nic);
    net_tcp_attach(&s_net, &s_conn);

    uint64_t t0 = time_us();
    if (!net_dhcp(&s_net, 10000))
        fail(4, "DHCP failed");
    printf("net: DHCP lease %u.%u.%u.%u mask %u.%u.%u.%u router %u.%u.%u.%u DNS %u.%u.%u.%u (server %u.%u.%u.%u, "
           "%u ms)\n",
        NET_IP_ARGS(s_net.ip), NET_IP_ARGS(s_net.netmask), NET_IP_ARGS(s_net.router), NET_IP_ARGS(s_net.dns),
        NET_IP_ARGS(s_net.dhcp_server), (uint32_t)(time_us() - t0) / 1000);
    if (!s_net.router)
        fail(4, "the lease has no router");
    uint8_t mac[6];
    if (!net_arp_resolve(&s_net, s_net.router, mac, 5000))
        fail(5, "no ARP reply from the router %u.%u.%u.%u", NET_IP_ARGS(s_net.router));
    printf("net: router is at %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

    if (cmdline_get_u32("drop", &s_drop_every) && s_drop_every) {
        if (s_drop_every < 2)
            fail(12, "drop= must be at least 2");
        s_lossy = s_nic;
        s_lossy.send = lossy_send;
        s_lossy.poll_recv = lossy_poll_recv;
        s_net.nic = &s_lossy;
        printf("net: losing every %uth frame each way from now on\n", s_drop_every);
    }
    if (strcmp(mode, "echo") == 0)
        mode_echo();
    else
        mode_serve();
    return 0;
}
