/* netbench: what the CPL0 setup (netbench.c, 32-bit, the guest library) hands to the CPL3 transmit loop
 * (netbench/user.c, 64-bit, built as a flat binary and copied to NB_USER_BASE). Both sides compile this header:
 * fixed-width fields only, and fixed guest-physical addresses (identity-mapped by enter_user64). The host side
 * (bench/virtio_net.py, bench/netbench_recv.c) knows the datagram format below.
 */
#ifndef HAKO_NETBENCH_H
#define HAKO_NETBENCH_H

#include <stdint.h>

#define NB_USER_BASE 0x400000u      /* the 64-bit code and data, at most NB_USER_MAX bytes */
#define NB_USER_MAX 0x100000u
#define NB_USER_STACK_TOP 0x580000u /* 256 KiB of stack below */
#define NB_PARAMS 0x580000u         /* struct nb_params */
#define NB_TX_RING 0x590000u        /* the transmit queue (descriptors, available ring, used ring) */
#define NB_RX_RING 0x5a0000u        /* the receive queue (only for ARP, at CPL0) */
#define NB_RX_BUFS 0x5b0000u        /* NB_RX_COUNT receive buffers of NB_BUF_SIZE */
#define NB_TX_BUFS 0x600000u        /* one NB_BUF_SIZE transmit buffer per descriptor: up to 0x680000 */
#define NB_BUF_SIZE 2048u
#define NB_TX_MAX 256u              /* transmit queue entries asked for */
#define NB_RX_COUNT 16u
#define NB_MIN_RAM 0x800000u

/* Every transmit buffer at NB_TX_BUFS + slot * NB_BUF_SIZE holds, from NB_BUF_OFFSET on, the 12-byte
 * virtio_net_hdr_v1 (all zeros) and then the Ethernet frame; the offset puts the UDP payload on an 8-byte boundary. */
#define NB_BUF_OFFSET 2u
#define NB_VNET_HDR_LEN 12u
#define NB_HEADERS_LEN 42u /* Ethernet 14 + IPv4 20 + UDP 8 */

#define NB_PM_TIMER_HZ 3579545u

/* The UDP payload of every datagram (little-endian): u32 NB_MAGIC, u32 mode index, u64 sequence number (from 0 in
 * each mode), then the payload's remaining bytes are the little-endian bytes of the u64 words NB_WORD(seq, k),
 * k = 0, 1, ..., the last word cut off at the end of the payload. */
#define NB_MAGIC 0x31424e48u /* "HNB1" */
#define NB_PAYLOAD_HDR 16u
#define NB_WORD(seq, k) ((((uint64_t)(seq) << 16) | (uint64_t)(k)) ^ 0xa5a5a5a5a5a5a5a5ull)

/* Modes, in the order they run; the mask bit is 1 << index. */
#define NB_MODE_COUNT 2

struct nb_params {
    uint64_t desc, avail, used; /* guest-physical addresses of the transmit queue's parts */
    uint64_t notify;            /* the queue's notify register (MMIO), written with queue_index */
    uint32_t queue_size;
    uint32_t queue_index;
    uint32_t event_idx;         /* VIRTIO_F_EVENT_IDX negotiated: notify by avail_event, not the NO_NOTIFY flag */
    uint32_t pm_port;           /* ACPI PM timer I/O port */
    uint32_t pm_mask;           /* 0xffffff (24-bit timer) or 0xffffffff (FADT TMR_VAL_EXT) */
    uint32_t quick_frames;      /* 0: run each mode for duration_ms; else this many frames per mode */
    uint32_t duration_ms;
    uint32_t mode_mask;         /* which modes run */
    uint32_t frame_len[NB_MODE_COUNT]; /* Ethernet frame length (no FCS) per mode */
    uint32_t batch;             /* at most this many frames queued per notify check (1..queue size) */
    uint32_t rekick;            /* notify again when frames are outstanding and nothing moved for a while */
    uint32_t avail_idx;         /* the queue's state after the CPL0 part's ARP exchange */
    uint32_t last_used;
    uint8_t src_mac[6], dst_mac[6];
    uint8_t src_ip[4], dst_ip[4]; /* network order */
    uint16_t src_port, dst_port;  /* host order */
};

#endif
