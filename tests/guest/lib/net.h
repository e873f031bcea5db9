/* The test guests' network stack (lib/net.c) and NIC drivers: a tiny IPv4 stack over an abstract NIC.
 *
 * One interface, one TCP connection at a time, everything polled (no interrupts). What it does:
 *   Ethernet II; ARP (answers requests for our address, resolves on-link addresses and the router, learns the
 *   sender of every IPv4 frame from an on-link address); IPv4 (header checksum checked and set, DF, no fragments:
 *   fragments are dropped); ICMP echo reply; UDP (checksums set, checked when nonzero); a DHCP client
 *   (DISCOVER/OFFER/REQUEST/ACK: address, netmask, router, DNS server); TCP (RFC 793/9293 subset): active and
 *   passive open, MSS option, in-order data with a bounded send window (the peer's window, at most NET_TCP_SNDBUF),
 *   go-back-N retransmission on a timeout with exponential backoff, fast retransmit of one segment on the third
 *   duplicate ACK, receive with one out-of-order range kept past a hole (other out-of-order segments are dropped;
 *   each is ACKed at once as a duplicate), ACKs otherwise coalesced per net_poll(), FIN close both ways, RST.
 * What it does not: IP options, fragments, SACK, window scaling, timestamps, congestion control, urgent data, TCP
 * keepalive, more than one connection, TIME_WAIT (a connection that reached it counts as closed).
 *
 * Time comes from the ACPI PM timer (FADT PM_TMR_BLK, 3.579545 MHz, 24 bits extended in software): it works on any
 * VMM with an ACPI PM block, and needs no calibration. Read it at least every 4.6 s (net_poll() does).
 */
#ifndef HAKO_GUEST_NET_H
#define HAKO_GUEST_NET_H

#include <stdbool.h>
#include <stdint.h>

/* ---- Time (ACPI PM timer) ---- */
/* Finds PM_TMR_BLK (or X_PM_TMR_BLK in system I/O space) in the FADT; false (with a message) if there is none. */
bool pm_timer_init(void);
/* Microseconds since pm_timer_init(), monotonic; the 24-bit counter must be read at least every 4.6 s. */
uint64_t time_us(void);
/* Busy-waits (reading the PM timer) for `us` microseconds. */
void delay_us(uint32_t us);

/* ---- The NIC interface: what a driver provides to the stack ---- */
#define NET_FRAME_MAX 1514 /* Ethernet frame without FCS: 14-byte header + 1500-byte MTU */
#define NET_FRAME_MIN 60   /* the stack pads shorter frames */
struct nic {
    const char* name; /* for messages, e.g. "virtio-net" */
    uint8_t mac[6];
    /* Queues one Ethernet frame (destination MAC first, no FCS, 14 <= len <= NET_FRAME_MAX) for sending; the frame
     * is copied before it returns. false if the NIC had no room (after a short bounded wait) or failed. */
    bool (*send)(struct nic* nic, const void* frame, uint32_t len);
    /* Copies the next received frame (no FCS) into buf (NET_FRAME_MAX bytes) and returns its length; 0 if none is
     * waiting. Never blocks. Frames longer than NET_FRAME_MAX are dropped by the driver. */
    uint32_t (*poll_recv)(struct nic* nic, void* buf);
    /* Optional (may be NULL): prints the driver's own counters, e.g. offload use, at the end of a run. */
    void (*print_stats)(struct nic* nic);
    void* priv;        /* the driver's state */
    uint32_t rx_drops; /* counted by the driver */
    uint32_t rx_mss;   /* 0: TCP peers may send full frames (MSS 1460); a driver may ask for smaller segments */
};

/* NIC drivers. Each finds its device, sets it up for polling and fills *nic; false (with a message) if absent. */
bool virtio_net_init(struct nic* nic);
bool e1000_init(struct nic* nic); /* lib/e1000.c: Intel 82540EM */
bool rtl8139_init(struct nic* nic); /* lib/rtl8139.c: Realtek RTL8139C+ in C mode */
bool rtl8139cp_init(struct nic* nic); /* lib/rtl8139.c: the same NIC in C+ (descriptor) mode */
bool pcnet_init(struct nic* nic); /* lib/pcnet.c: AMD PCnet-PCI II Am79C970A, SWSTYLE 2 */
bool ne2k_init(struct nic* nic); /* lib/ne2k.c: Realtek RTL8029AS (NE2000 PCI) */

/* RFC 1071 for drivers that offload checksums: the one's complement sum of len bytes (from an even offset) added to
 * sum, in native byte order, and its folded complement (store it with a native 16-bit store). */
uint32_t net_csum_add(uint32_t sum, const void* data, uint32_t len);
uint16_t net_csum_fold(uint32_t sum);

/* A fast copy (rep movsl) for drivers and the stack; runtime.c's memcpy copies byte by byte. */
void net_copy(void* dst, const void* src, uint32_t len);

/* ---- Addresses: host byte order uint32_t, 10.0.2.15 = NET_IP(10, 0, 2, 15) ---- */
#define NET_IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
/* printf("%u.%u.%u.%u", NET_IP_ARGS(ip)) */
#define NET_IP_ARGS(ip) (unsigned)((ip) >> 24), (unsigned)(((ip) >> 16) & 0xff), (unsigned)(((ip) >> 8) & 0xff), \
                        (unsigned)((ip) & 0xff)

/* ---- The stack ---- */
#define NET_ARP_ENTRIES 8
#define NET_TCP_SNDBUF 32768 /* power of two */
#define NET_TCP_RCVBUF 32768 /* power of two; the receive window never exceeds it (no window scaling) */

enum tcp_state {
    TCP_CLOSED,
    TCP_LISTEN,
    TCP_SYN_SENT,
    TCP_SYN_RCVD,
    TCP_ESTABLISHED,
    TCP_FIN_WAIT_1,
    TCP_FIN_WAIT_2,
    TCP_CLOSE_WAIT,
    TCP_CLOSING,
    TCP_LAST_ACK,
    TCP_TIME_WAIT,
};

struct net_stats {
    uint32_t rx_frames, tx_frames, rx_dropped; /* rx_dropped: malformed, bad checksum, not for us */
    uint32_t tcp_rx_segments, tcp_tx_segments, tcp_retransmits, tcp_fast_retransmits, tcp_out_of_order;
};

struct net {
    struct nic* nic;
    uint32_t ip, netmask, router, dns; /* after DHCP (or set by hand) */
    uint32_t dhcp_server;
    struct {
        uint32_t ip;
        uint8_t mac[6];
    } arp[NET_ARP_ENTRIES];
    unsigned arp_next;
    uint16_t ip_id;
    /* An optional hook for UDP datagrams to ports the stack does not handle itself. */
    void (*udp_rx)(struct net* n, uint32_t src_ip, uint16_t src_port, uint16_t dst_port, const uint8_t* data,
        uint32_t len);
    struct {
        uint32_t xid;
        int stage; /* 0 idle, 1 waiting for OFFER, 2 waiting for ACK, 3 bound, -1 NAK */
        uint32_t offered, server, netmask, router, dns;
    } dhcp;
    struct tcp_conn* tcp; /* net_tcp_attach() */
    struct net_stats stats;
};

/* The TCP connection (one per guest). */
struct tcp_conn {
    enum tcp_state state;
    bool reset;        /* a RST ended it */
    bool fin_received; /* the peer closed its direction: tcp_recv() returns -1 once the data is read */
    uint16_t local_port, remote_port;
    uint32_t remote_ip;
    uint32_t iss, irs;
    uint32_t snd_una, snd_nxt, snd_max; /* snd_max: the highest sequence number sent (go-back-N rewinds snd_nxt) */
    uint32_t snd_wnd;                    /* the peer's window */
    uint32_t mss;
    uint32_t sbuf_len;                   /* unacknowledged + unsent bytes, from snd_una */
    bool fin_queued;                     /* tcp_close() called: FIN goes after the buffered data */
    uint32_t fin_seq;                    /* our FIN's sequence number, once fin_queued */
    uint32_t rbuf_head, rbuf_len;
    uint32_t rcv_nxt, rcv_wnd_sent;      /* rcv_wnd_sent: the window last advertised */
    uint32_t rcv_ack_sent;               /* the acknowledgment number last sent */
    uint32_t ooo_seq, ooo_len;           /* the one out-of-order range kept (already in rbuf past the hole) */
    bool ack_pending;
    uint32_t dup_acks;                   /* duplicate ACKs in a row */
    uint64_t rto_deadline;               /* 0: timer off */
    uint32_t rto_us;
    uint8_t sbuf[NET_TCP_SNDBUF];
    uint8_t rbuf[NET_TCP_RCVBUF];
};

/* Starts the stack on `nic` (addresses zero until DHCP). Needs pm_timer_init() first. */
void net_init(struct net* n, struct nic* nic);
/* Processes every frame waiting on the NIC (ARP, ICMP, UDP, DHCP, TCP), then sends what TCP has to send (ACKs, data,
 * retransmissions on timeouts). Call it in every wait loop. */
void net_poll(struct net* n);
/* DHCP DISCOVER/OFFER/REQUEST/ACK (retried every second); sets ip, netmask, router, dns. false on timeout or NAK. */
bool net_dhcp(struct net* n, uint32_t timeout_ms);
/* The MAC for `ip` (the router's for off-link addresses) from the table, or by ARP requests (every 500 ms) until
 * timeout_ms. */
bool net_arp_resolve(struct net* n, uint32_t ip, uint8_t mac[6], uint32_t timeout_ms);
/* Sends one IPv4 datagram (payload <= 1480 bytes); false if the next hop's MAC is unknown (an ARP request is sent)
 * or the NIC refused. `dst` 0xffffffff is broadcast. */
bool net_ip_send(struct net* n, uint32_t dst, uint8_t proto, const void* payload, uint32_t len);
bool net_udp_send(struct net* n, uint32_t dst, uint16_t src_port, uint16_t dst_port, const void* data, uint32_t len);

/* TCP. The connection object is passed to net_tcp_attach() once; then: */
void net_tcp_attach(struct net* n, struct tcp_conn* c);
/* Active open to ip:port from an ephemeral local port; waits until ESTABLISHED. false on timeout, RST or refusal. */
bool tcp_connect(struct net* n, uint32_t ip, uint16_t port, uint32_t timeout_ms);
/* Passive open: accepts the first SYN to `port` (from anyone); waits until ESTABLISHED. */
bool tcp_listen_accept(struct net* n, uint16_t port, uint32_t timeout_ms);
/* Puts up to len bytes in the send buffer (as many as fit) and sends what the window allows. Returns the bytes
 * taken (0 if the buffer is full), -1 if the connection cannot send (closed, reset, after tcp_close). */
int32_t tcp_send(struct net* n, const void* data, uint32_t len);
/* Takes up to len received bytes. Returns the count, 0 if none is waiting, -1 once the peer's FIN came and every
 * byte was read, or on reset. */
int32_t tcp_recv(struct net* n, void* buf, uint32_t len);
/* Bytes sent but not yet acknowledged plus bytes not yet sent. */
uint32_t tcp_unacked(struct net* n);
/* Sends FIN after the buffered data and waits (polling) until our FIN is acknowledged and, if `wait_peer_fin`, the
 * peer's FIN came too. false on timeout or reset. */
bool tcp_close(struct net* n, bool wait_peer_fin, uint32_t timeout_ms);
const char* tcp_state_name(enum tcp_state s);

#endif
