/* console: a virtio-console driver (VIRTIO 1.2 section 5.3) without MULTIPORT, as Linux's hvc0 uses it.
 *
 * Posts four 64-byte receive buffers, writes "READY" on the transmit queue, then waits for a line on the receive
 * queue and answers "pong: <line>" on the transmit queue; with VIRTIO_CONSOLE_F_EMERG_WRITE it also writes "!" through
 * the config space's emerg_wr field. The harness feeds "ping" and checks the answer; COM1 carries progress lines.
 * The wait for input is bounded by spinning (tens of seconds on these hosts).
 *
 * Exit codes: 2 device not found, 3 features, 4 queue setup, 6 no input line, 7 transmit not completed,
 * 8 line too long, 11 device needs reset.
 */
#include "guest.h"

#define VIRTIO_ID_CONSOLE 3
#define F_SIZE 0
#define F_EMERG_WRITE 2
#define RX_BUFS 4
#define RX_LEN 64
#define WAIT_SPINS 200000000u

static struct virtio_dev s_dev;
static struct virtq s_rx, s_tx;
static uint8_t s_rx_buf[RX_BUFS][RX_LEN];
static char s_tx_buf[128];

static void post_rx(unsigned i)
{
    struct virtq_buf b = { (uint32_t)(uintptr_t)s_rx_buf[i], RX_LEN, true };
    virtq_add(&s_rx, &b, 1);
}

static void transmit(const char* s)
{
    size_t n = strlen(s);
    memcpy(s_tx_buf, s, n);
    struct virtq_buf b = { (uint32_t)(uintptr_t)s_tx_buf, (uint32_t)n, false };
    uint16_t head = virtq_add(&s_tx, &b, 1);
    virtq_kick(&s_tx);
    uint32_t id, len;
    for (uint32_t spins = 0; spins < 10000000u; spins++) {
        if (virtq_next_used(&s_tx, &id, &len)) {
            if (id != head)
                fail(7, "transmit: used id %u, expected %u", id, head);
            return;
        }
        cpu_relax();
    }
    fail(7, "transmit of %u bytes not completed", (unsigned)n);
}

int guest_main(void)
{
    if (!virtio_find(VIRTIO_ID_CONSOLE, 0, &s_dev))
        fail(2, "no virtio-console");
    uint64_t features;
    if (!virtio_negotiate(&s_dev, (1ull << F_SIZE) | (1ull << F_EMERG_WRITE), &features))
        fail(3, "feature negotiation");
    if (!virtq_setup(&s_dev, &s_rx, 0, 16, 0, VIRTIO_MSI_NO_VECTOR) || !virtq_setup(&s_dev, &s_tx, 1, 16, 1, VIRTIO_MSI_NO_VECTOR))
        fail(4, "queue setup");
    virtio_driver_ok(&s_dev);
    if (virtio_status(&s_dev) & VIRTIO_STATUS_NEEDS_RESET)
        fail(11, "device needs reset");
    for (unsigned i = 0; i < RX_BUFS; i++)
        post_rx(i);
    virtq_kick(&s_rx);
    if (features & (1ull << F_SIZE))
        printf("console: %u columns, %u rows\n", virtio_cfg_read8(&s_dev, 0) | virtio_cfg_read8(&s_dev, 1) << 8,
            virtio_cfg_read8(&s_dev, 2) | virtio_cfg_read8(&s_dev, 3) << 8);
    printf("console: driver ready\n");
    transmit("READY\n");

    char line[RX_LEN * RX_BUFS + 1];
    uint32_t line_len = 0;
    bool done = false;
    for (uint32_t spins = 0; spins < WAIT_SPINS && !done; spins++) {
        uint32_t id, len;
        if (!virtq_next_used(&s_rx, &id, &len)) {
            cpu_relax();
            continue;
        }
        uint32_t slot = id % RX_BUFS; /* the lib hands out descriptors in order: head i%size for buffer i%4 */
        for (uint32_t i = 0; i < len && i < RX_LEN && !done; i++) {
            char c = (char)s_rx_buf[slot][i];
            if (c == '\n' || c == '\r') {
                done = line_len > 0;
                continue;
            }
            if (line_len >= sizeof(line) - 1)
                fail(8, "input line too long");
            line[line_len++] = c;
        }
        post_rx(slot);
        virtq_kick(&s_rx);
    }
    if (!done)
        fail(6, "no input line arrived");
    line[line_len] = 0;
    printf("console: received '%s'\n", line);
    char reply[RX_LEN * RX_BUFS + 16];
    memcpy(reply, "pong: ", 6);
    memcpy(reply + 6, line, line_len);
    reply[6 + line_len] = '\n';
    reply[7 + line_len] = 0;
    transmit(reply);
    if (features & (1ull << F_EMERG_WRITE)) {
        virtio_cfg_write32(&s_dev, 8, '!');
        printf("console: wrote '!' through emerg_wr\n");
    }
    return 0;
}
