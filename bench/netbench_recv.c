/* netbench_recv: the host-side receiver of bench/virtio_net.py. Counts and checks the netbench guest's UDP datagrams
 * (format: tests/guest/guests/netbench/netbench.h) on one socket, with recvmmsg in batches of 64.
 *
 * usage: netbench_recv ADDR PORT      (PORT 0: an ephemeral port)
 * Prints "port N" once bound, then runs until SIGTERM or SIGINT and prints per mode seen
 *   "mode M datagrams N bytes B len L first_ns F last_ns L max_seq S dups D reordered R bad K"
 * (bytes = UDP payload bytes; first/last: CLOCK_MONOTONIC at the receive of the first and last datagram; dups and
 * reordered: sequence numbers seen twice (below 2^24) or below one seen earlier; bad: wrong magic, mode, length or
 * pattern), then "drops D cpu_us U" (D: datagrams the kernel dropped because this socket's buffer was full, from
 * SO_RXQ_OVFL and /proc/self/net/udp; U: this process's user+system CPU time). The socket asks for a 64 MiB receive buffer (SO_RCVBUFFORCE
 * as root, else SO_RCVBUF up to net.core.rmem_max).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tests/guest/guests/netbench/netbench.h"

#define BATCH 64
#define BUF 2048
#define SEEN_BITS (1u << 24)

struct mode_stats {
    uint64_t datagrams, bytes, first_ns, last_ns, max_seq, next_seq, dups, reordered, bad;
    uint32_t len;
    uint8_t* seen;
};

static volatile sig_atomic_t s_stop;
static void on_signal(int sig) { (void)sig; s_stop = 1; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The socket's drop counter from /proc/self/net/udp (the last column of its line, found by inode): it also counts
 * drops after the last datagram received, which SO_RXQ_OVFL cannot report. 0 if not found. */
static uint32_t proc_drops(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return 0;
    FILE* f = fopen("/proc/self/net/udp", "r");
    if (!f)
        return 0;
    char line[512];
    uint32_t drops = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long inode = 0;
        unsigned long d = 0;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops */
        if (sscanf(line, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %*s %*s %lu", &inode, &d) == 2
            && inode == (unsigned long long)sb.st_ino)
            drops = (uint32_t)d;
    }
    fclose(f);
    return drops;
}

static int pattern_ok(const uint8_t* d, uint32_t len, uint64_t seq)
{
    uint32_t k = 0;
    for (uint32_t off = NB_PAYLOAD_HDR; off < len; off += 8, k++) {
        uint64_t w = NB_WORD(seq, k);
        uint32_t n = len - off < 8 ? len - off : 8;
        if (n == 8) {
            uint64_t got;
            memcpy(&got, d + off, 8);
            if (got != w)
                return 0;
        } else {
            for (uint32_t i = 0; i < n; i++)
                if (d[off + i] != (uint8_t)(w >> (8 * i)))
                    return 0;
        }
    }
    return 1;
}

static void account(struct mode_stats* st, const uint8_t* d, uint32_t len, uint64_t t)
{
    uint32_t magic, mode;
    uint64_t seq;
    memcpy(&magic, d, 4);
    memcpy(&mode, d + 4, 4);
    memcpy(&seq, d + 8, 8);
    struct mode_stats* m = &st[mode < NB_MODE_COUNT ? mode : 0];
    if (len < NB_PAYLOAD_HDR || magic != NB_MAGIC || mode >= NB_MODE_COUNT || (m->len && m->len != len)
        || !pattern_ok(d, len, seq)) {
        m->bad++;
        return;
    }
    if (!m->datagrams) {
        m->first_ns = t;
        m->len = len;
    }
    m->datagrams++;
    m->bytes += len;
    m->last_ns = t;
    if (seq < m->next_seq)
        m->reordered++;
    else
        m->next_seq = seq + 1;
    if (seq > m->max_seq)
        m->max_seq = seq;
    if (seq < SEEN_BITS) {
        uint8_t bit = (uint8_t)(1u << (seq & 7));
        if (m->seen[seq >> 3] & bit)
            m->dups++;
        m->seen[seq >> 3] |= bit;
    }
}

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: netbench_recv ADDR PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    int size = 64 << 20, one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) != 0) {
        perror("SO_RXQ_OVFL");
        return 1;
    }
    struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "netbench_recv: bad address %s\n", argv[1]);
        return 2;
    }
    if (bind(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) {
        perror("bind");
        return 1;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr*)&sa, &sl);
    struct sigaction act = { .sa_handler = on_signal }; /* no SA_RESTART: recvmmsg returns EINTR */
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    printf("port %u\n", ntohs(sa.sin_port));
    fflush(stdout);

    struct mode_stats st[NB_MODE_COUNT];
    memset(st, 0, sizeof(st));
    for (int i = 0; i < NB_MODE_COUNT; i++)
        if (!(st[i].seen = calloc(SEEN_BITS / 8, 1)))
            return 1;
    static uint8_t bufs[BATCH][BUF];
    static char ctrl[BATCH][CMSG_SPACE(sizeof(uint32_t))];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    uint32_t drops = 0;
    while (!s_stop) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec) { bufs[i], BUF };
            msgs[i].msg_hdr = (struct msghdr) { .msg_iov = &iov[i], .msg_iovlen = 1, .msg_control = ctrl[i],
                .msg_controllen = sizeof(ctrl[i]) };
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            perror("recvmmsg");
            return 1;
        }
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            account(st, bufs[i], msgs[i].msg_len, t);
            for (struct cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
                    memcpy(&drops, CMSG_DATA(c), sizeof(drops));
        }
    }
    for (int i = 0; i < NB_MODE_COUNT; i++)
        if (st[i].datagrams || st[i].bad)
            printf("mode %d datagrams %llu bytes %llu len %u first_ns %llu last_ns %llu max_seq %llu dups %llu "
                   "reordered %llu bad %llu\n",
                i, (unsigned long long)st[i].datagrams, (unsigned long long)st[i].bytes, st[i].len,
                (unsigned long long)st[i].first_ns, (unsigned long long)st[i].last_ns,
                (unsigned long long)st[i].max_seq, (unsigned long long)st[i].dups,
                (unsigned long long)st[i].reordered, (unsigned long long)st[i].bad);
    uint32_t late = proc_drops(fd);
    if (late > drops)
        drops = late;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("drops %u cpu_us %llu\n", drops,
        (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u
            + (unsigned long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec));
    return 0;
}
