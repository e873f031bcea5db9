/* blkbench: virtio-blk read benchmark (bench/virtio_blk.py runs it under hako and QEMU side by side).
 *
 * At CPL0 (32-bit, the library; emulated instruction by instruction on PVM hosts, so only setup happens here): finds
 * the virtio-blk device, negotiates VERSION_1 only, sets up queue 0 with up to 256 entries in its own ring memory
 * and no MSI-X vector, finds the ACPI PM timer in the FADT, fills struct bb_params (blkbench/blkbench.h), copies the
 * 64-bit CPL3 part (blkbench/user.c) to BB_USER_BASE and enters it in long mode at CPL3 with IOPL 3
 * (enter_user64, lib/usermode.S). The CPL3 part runs natively on PVM hosts; it polls, prints and exits by itself.
 *
 * Modes, in order: randread-4k qd1, randread-4k qd32, seqread-1m qd1, seqread-1m qd32 (one 1 MiB descriptor per
 * request). Random offsets are 4 KiB-aligned (xorshift64), sequential ones wrap at the end of the disk.
 *
 * Command line:
 *   ms=N        milliseconds per mode (default 1500)
 *   quick=1     a fixed number of requests per mode instead (requests=N, default 300): the CI smoke test
 *   verify=0|1  check the image pattern BB_PATTERN at the start of the first and last 4 KiB of every read (default 1;
 *               bench/virtio_blk.py writes the image)
 *   modes=MASK  which modes run (bit i = mode i above; default 0xf)
 *   seed=N      xorshift64 seed
 *
 * Exit codes (CPL0 part): 2 no virtio-blk device, 3 feature negotiation, 4 queue setup, 5 no PM timer, 6 too little
 * RAM, 7 the CPL3 image is too large; user.c lists the codes of the CPL3 part. PASS = exit code 0.
 */
#include "guest.h"
#include "blkbench/blkbench.h"

#define VIRTIO_ID_BLOCK 2
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FADT_F_TMR_VAL_EXT (1u << 8)

extern const uint8_t blkbench_user_start[], blkbench_user_end[];

static struct virtio_dev s_dev;
static struct virtq s_q;

static uint32_t cmdline_u32(const char* key, uint32_t def)
{
    uint32_t v;
    return cmdline_get_u32(key, &v) ? v : def;
}

int guest_main(void)
{
    pic_mask_all();
    struct bb_params* p = (struct bb_params*)BB_PARAMS;
    memset(p, 0, sizeof(*p));
    p->duration_ms = cmdline_u32("ms", 1500);
    p->quick_requests = cmdline_u32("quick", 0) ? cmdline_u32("requests", 300) : 0;
    p->verify = cmdline_u32("verify", 1);
    p->mode_mask = cmdline_u32("modes", (1u << BB_MODE_COUNT) - 1);
    p->seed = cmdline_u32("seed", 0x2545f491);

    if (g_mb_info && (g_mb_info->flags & MB_INFO_MEMORY)
        && (uint64_t)g_mb_info->mem_upper * 1024u + 0x100000u < BB_MIN_RAM + 0x100000u)
        fail(6, "blkbench needs %u MiB of RAM, has %u MiB", (BB_MIN_RAM >> 20) + 1, g_mb_info->mem_upper / 1024 + 1);

    const struct acpi_sdt_header* fadt = acpi_find_table("FACP", true);
    if (!fadt || fadt->length < FADT_FLAGS + 4)
        fail(5, "no FADT");
    const uint8_t* f = (const uint8_t*)fadt;
    uint32_t port, flags;
    memcpy(&port, f + FADT_PM_TMR_BLK, 4);
    memcpy(&flags, f + FADT_FLAGS, 4);
    if (port == 0 || port > 0xfffc)
        fail(5, "no PM timer in the FADT (PM_TMR_BLK %x)", port);
    p->pm_port = port;
    p->pm_mask = (flags & FADT_F_TMR_VAL_EXT) ? 0xffffffffu : 0xffffffu;

    if (!virtio_find(VIRTIO_ID_BLOCK, 0, &s_dev))
        fail(2, "no virtio-blk device");
    uint64_t features;
    if (!virtio_negotiate(&s_dev, 0, &features))
        fail(3, "feature negotiation failed");
    if (!virtq_setup_mem(&s_dev, &s_q, 0, 256, (void*)BB_RING, VIRTIO_MSI_NO_VECTOR))
        fail(4, "queue setup failed");
    if (s_q.size < 3 * BB_MAX_QD)
        fail(4, "queue size %u: need %u descriptors", s_q.size, 3 * BB_MAX_QD);
    virtio_driver_ok(&s_dev);
    if (virtio_status(&s_dev) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(4, "status %x after DRIVER_OK", virtio_status(&s_dev));

    p->desc = (uintptr_t)s_q.desc;
    p->avail = (uintptr_t)s_q.avail;
    p->used = (uintptr_t)s_q.used;
    p->notify = s_q.notify;
    p->queue_size = s_q.size;
    p->queue_index = s_q.index;
    p->capacity = virtio_cfg_read32(&s_dev, 0) | ((uint64_t)virtio_cfg_read32(&s_dev, 4) << 32);

    uint32_t user_size = (uint32_t)(blkbench_user_end - blkbench_user_start);
    if (user_size > BB_USER_MAX)
        fail(7, "CPL3 image of %u bytes", user_size);
    void* dst = (void*)BB_USER_BASE;
    const void* src = blkbench_user_start;
    uint32_t n = user_size;
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");

    printf("blkbench: queue %u entries, notify at %x, capacity %u MiB, PM timer port %x (%u-bit), %s\n",
        s_q.size, (uint32_t)s_q.notify, (uint32_t)(p->capacity >> 11), port, p->pm_mask == 0xffffffu ? 24 : 32,
        p->quick_requests ? "quick" : "timed");
    printf("blkbench: entering 64-bit CPL3 (%u bytes at %x)\n", user_size, BB_USER_BASE);
    enter_user64(BB_USER_BASE, BB_USER_STACK_TOP, BB_PARAMS);
}
