/* blkbench: what the CPL0 setup (blkbench.c, 32-bit, the guest library) hands to the CPL3 benchmark loop
 * (blkbench/user.c, 64-bit, built as a flat binary and copied to BB_USER_BASE). Both sides compile this header:
 * fixed-width fields only, and fixed guest-physical addresses (identity-mapped by enter_user64).
 */
#ifndef HAKO_BLKBENCH_H
#define HAKO_BLKBENCH_H

#include <stdint.h>

#define BB_USER_BASE 0x400000u      /* the 64-bit code and data, at most BB_USER_MAX bytes */
#define BB_USER_MAX 0x100000u
#define BB_USER_STACK_TOP 0x580000u /* 256 KiB of stack below */
#define BB_PARAMS 0x580000u         /* struct bb_params */
#define BB_RING 0x590000u           /* the virtqueue (descriptors, available ring, used ring) */
#define BB_HDRS 0x5a0000u           /* one 16-byte virtio_blk_outhdr per slot */
#define BB_STATUS 0x5a1000u         /* one status byte per slot, 16 bytes apart */
#define BB_DATA 0x1000000u          /* one BB_MAX_BS data buffer per slot: 16 MiB .. 48 MiB */
#define BB_MAX_BS 0x100000u
#define BB_MAX_QD 32u
#define BB_MIN_RAM (BB_DATA + BB_MAX_QD * BB_MAX_BS)

#define BB_PM_TIMER_HZ 3579545u

/* The image holds, at the start of every 4 KiB block at byte offset o, the little-endian u64 BB_PATTERN(o)
 * (bench/disk_io.py writes it). With verify=1 the guest checks it in what it reads. */
#define BB_PATTERN(o) ((uint64_t)(o) ^ 0x484b4f4200000000ull)

/* Modes, in the order they run; the mask bit is 1 << index. */
#define BB_MODE_COUNT 4

/* The disk's bus (cmdline dev=virtio|ide|ahci). */
#define BB_DEV_VIRTIO 0u
#define BB_DEV_IDE 1u   /* PIIX3 IDE primary master, LBA48 READ DMA EXT through bus master DMA: queue depth 1 only */
#define BB_DEV_AHCI 2u  /* AHCI port, READ FPDMA QUEUED (NCQ) with up to 32 tags */
#define BB_PRDT BB_RING /* IDE: the PRD table (16 entries of 64 KiB for 1 MiB) */
#define BB_AHCI_TABLES 0x5b0000u      /* AHCI: command list (32 headers of 32 bytes) at +0 */
#define BB_AHCI_FIS 0x400u            /* received FIS area (256 bytes) */
#define BB_AHCI_CMD_TABLES 0x800u     /* command table of slot s at + s * BB_AHCI_CMD_TABLE_SIZE */
#define BB_AHCI_CMD_TABLE_SIZE 0x100u /* the command FIS (64 bytes), ATAPI command, one PRD entry at +0x80 */
#define BB_AHCI_TABLES_SIZE (BB_AHCI_CMD_TABLES + 32u * BB_AHCI_CMD_TABLE_SIZE)

struct bb_params {
    uint64_t desc, avail, used; /* guest-physical addresses of the queue's parts */
    uint64_t notify;            /* the queue's notify register (MMIO), written with queue_index */
    uint64_t capacity;          /* in 512-byte sectors */
    uint32_t queue_size;
    uint32_t queue_index;
    uint32_t pm_port;           /* ACPI PM timer I/O port */
    uint32_t pm_mask;           /* 0xffffff (24-bit timer) or 0xffffffff (FADT TMR_VAL_EXT) */
    uint32_t quick_requests;    /* 0: run each mode for duration_ms; else this many requests per mode */
    uint32_t duration_ms;
    uint32_t verify;            /* check BB_PATTERN in the data read */
    uint32_t mode_mask;         /* which modes run */
    uint64_t seed;              /* xorshift64 state, nonzero */
    uint32_t dev;               /* BB_DEV_* */
    uint32_t ide_cmd;           /* IDE: command block ports (0x1f0), control port (0x3f6), bus master base */
    uint32_t ide_ctl;
    uint32_t ide_bm;
    uint64_t ahci_port_regs;    /* AHCI: the port's registers (ABAR + 0x100 + 0x80 * port) */
    uint64_t ahci_tables;       /* AHCI: command list (1 KiB), received FIS (256 B), 32 command tables of 512 B */
};

#endif
