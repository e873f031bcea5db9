/* balloon: a virtio-balloon driver (VIRTIO 1.2 section 5.5) as Linux's virtio_balloon does it, driven by the host.
 *
 * The guest touches a pool of 8192 pages (32 MiB from 16 MiB up, each page's first word written), prints
 * "balloon: pool touched", and then follows the host's target (num_pages): inflating by giving PFNs from the pool on
 * the inflate queue, deflating by giving them back on the deflate queue, writing `actual` after each step and
 * printing "balloon: settled at N pages" whenever it reaches the target. A deflated page must read zero: the host
 * released it when it was inflated (hako and QEMU both discard). A statistics buffer sits on the stats queue; when
 * the host returns it, the guest refills it (total memory, free memory = pages not in the balloon, minor faults =
 * how many times it was refilled) and adds it again. After `phases=N` settles (default 3) it passes.
 * Configuration changes arrive by MSI-X (entry 0), queue interrupts on entry 1; a device without MSI-X (QEMU's
 * virtio-balloon-pci) interrupts through INTx and the ISR says which (bit 0 queue, bit 1 configuration).
 *
 * Exit codes: 2 device not found, 3 features, 4 queue setup, 5 MSI-X, 6 a request not completed, 7 a deflated page
 * kept its contents, 8 target beyond the pool, 11 device needs reset.
 */
#include "guest.h"

#define VIRTIO_ID_BALLOON 5
#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define CONFIG_VECTOR 0x42
#define QUEUE_VECTOR 0x41
#define POOL_BASE 0x1000000u /* 16 MiB */
#define POOL_PAGES 8192u
#define BATCH 256u
#define WAIT_SPINS 20000000u

static struct virtio_dev s_dev;
static struct virtq s_inflate, s_deflate, s_stats;
static bool s_have_stats;
static volatile uint32_t s_config_irqs, s_queue_irqs;
static uint32_t s_pfns[BATCH] __attribute__((aligned(64)));
static struct {
    uint16_t tag;
    uint64_t value;
} PACKED s_stat_buf[4];
static uint32_t s_refills;

static void config_isr(struct int_frame* f)
{
    (void)f;
    s_config_irqs++;
    lapic_eoi();
}

static void queue_isr(struct int_frame* f)
{
    (void)f;
    s_queue_irqs++;
    lapic_eoi();
}

static void intx_isr(struct int_frame* f)
{
    (void)f;
    uint8_t isr = virtio_read_isr(&s_dev); /* read clears and deasserts */
    if (isr & 2)
        s_config_irqs++;
    if (isr & 1)
        s_queue_irqs++;
    lapic_eoi();
}

static void fill_stats(uint32_t actual)
{
    s_stat_buf[0].tag = 5; /* total memory */
    s_stat_buf[0].value = 64ull << 20;
    s_stat_buf[1].tag = 4; /* free memory */
    s_stat_buf[1].value = (uint64_t)(POOL_PAGES - actual) * 4096;
    s_stat_buf[2].tag = 3; /* minor faults: the refill count, so the host can see fresh figures */
    s_stat_buf[2].value = s_refills;
    s_stat_buf[3].tag = 6; /* available memory */
    s_stat_buf[3].value = (uint64_t)(POOL_PAGES - actual) * 4096;
}

static void add_stats(uint32_t actual)
{
    fill_stats(actual);
    struct virtq_buf b = { (uint32_t)(uintptr_t)s_stat_buf, sizeof(s_stat_buf), false };
    virtq_add(&s_stats, &b, 1);
    virtq_kick(&s_stats);
}

/* One batch of PFNs on `q`; waits for the device to use it. */
static void give_pfns(struct virtq* q, uint32_t n)
{
    struct virtq_buf b = { (uint32_t)(uintptr_t)s_pfns, n * 4, false };
    uint16_t head = virtq_add(q, &b, 1);
    virtq_kick(q);
    uint32_t id, len;
    for (uint32_t spins = 0; spins < WAIT_SPINS; spins++) {
        if (virtq_next_used(q, &id, &len)) {
            if (id != head)
                fail(6, "used id %u, expected %u", id, head);
            return;
        }
        cpu_relax();
    }
    if (virtio_status(&s_dev) & VIRTIO_STATUS_NEEDS_RESET)
        fail(11, "device needs reset");
    fail(6, "the device did not use %u PFNs on queue %u", n, q->index);
}

int guest_main(void)
{
    uint32_t phases = 3;
    cmdline_get_u32("phases", &phases);
    for (uint32_t p = 0; p < POOL_PAGES; p++)
        *(volatile uint32_t*)(uintptr_t)(POOL_BASE + p * 4096) = 0xa5a50000u | p;
    printf("balloon: pool touched (%u pages at %x)\n", POOL_PAGES, POOL_BASE);

    if (!virtio_find(VIRTIO_ID_BALLOON, 0, &s_dev))
        fail(2, "no virtio-balloon");
    lapic_enable();
    pic_remap(IRQ_VECTOR_BASE, IRQ_VECTOR_BASE + 8);
    bool msix = s_dev.msix_cap != 0;
    if (msix) {
        idt_set_handler(CONFIG_VECTOR, config_isr);
        idt_set_handler(QUEUE_VECTOR, queue_isr);
        if (!virtio_msix_setup(&s_dev, 0, CONFIG_VECTOR) || !virtio_msix_setup(&s_dev, 1, QUEUE_VECTOR))
            fail(5, "MSI-X setup");
    } else {
        struct madt_info madt;
        if (!madt_parse(&madt) || s_dev.pci.irq_pin == 0 || s_dev.pci.irq_line == 0 || s_dev.pci.irq_line >= 16)
            fail(5, "no MSI-X and no usable INTx");
        if (madt.ioapic_count)
            g_ioapic_base = madt.ioapic_addr;
        uint16_t flags;
        uint32_t gsi = madt_irq_to_gsi(&madt, s_dev.pci.irq_line, &flags);
        idt_set_handler(QUEUE_VECTOR, intx_isr);
        ioapic_route(gsi - madt.ioapic_gsi_base, QUEUE_VECTOR, lapic_id(), 0x0d); /* PCI: level, active high */
        printf("balloon: no MSI-X: INTx IRQ %u\n", s_dev.pci.irq_line);
    }
    uint16_t const vq_vector = msix ? 1 : VIRTIO_MSI_NO_VECTOR;
    uint64_t features;
    if (!virtio_negotiate(&s_dev, (1ull << F_STATS_VQ) | (1ull << F_DEFLATE_ON_OOM), &features))
        fail(3, "feature negotiation");
    s_have_stats = features & (1ull << F_STATS_VQ);
    if (msix && !virtio_set_config_vector(&s_dev, 0))
        fail(5, "config vector refused");
    if (!virtq_setup(&s_dev, &s_inflate, 0, 16, 0, vq_vector) || !virtq_setup(&s_dev, &s_deflate, 1, 16, 1, vq_vector)
        || (s_have_stats && !virtq_setup(&s_dev, &s_stats, 2, 16, 2, vq_vector)))
        fail(4, "queue setup");
    virtio_driver_ok(&s_dev);
    if (s_have_stats)
        add_stats(0);
    printf("balloon: driver ready (stats queue %s, deflate-on-oom %s)\n", s_have_stats ? "yes" : "no",
        features & (1ull << F_DEFLATE_ON_OOM) ? "yes" : "no");

    /* The balloon starts empty (actual 0); each later settle at a new size is one phase. The first target can
     * arrive before this loop starts, so the start is not counted as a settle. */
    uint32_t actual = 0, settled = 0, last_settled = 0;
    sti();
    for (;;) {
        /* A stats request: the device gave the buffer back. */
        uint32_t id, len;
        if (s_have_stats && virtq_next_used(&s_stats, &id, &len)) {
            s_refills++;
            add_stats(actual);
        }
        uint32_t target = virtio_cfg_read32(&s_dev, 0);
        if (target > POOL_PAGES)
            fail(8, "target %u pages is beyond the pool of %u", target, POOL_PAGES);
        if (target > actual) {
            uint32_t n = target - actual < BATCH ? target - actual : BATCH;
            for (uint32_t i = 0; i < n; i++)
                s_pfns[i] = (POOL_BASE >> 12) + actual + i;
            give_pfns(&s_inflate, n);
            actual += n;
            virtio_cfg_write32(&s_dev, 4, actual);
            continue;
        }
        if (target < actual) {
            uint32_t n = actual - target < BATCH ? actual - target : BATCH;
            for (uint32_t i = 0; i < n; i++)
                s_pfns[i] = (POOL_BASE >> 12) + actual - 1 - i;
            give_pfns(&s_deflate, n);
            for (uint32_t i = 0; i < n; i++) {
                uint32_t v = *(volatile uint32_t*)(uintptr_t)(s_pfns[i] << 12);
                if (v != 0)
                    fail(7, "deflated page %x still holds %x: it was not released when inflated", s_pfns[i], v);
            }
            actual -= n;
            virtio_cfg_write32(&s_dev, 4, actual);
            continue;
        }
        if (actual != last_settled) {
            last_settled = actual;
            printf("balloon: settled at %u pages (%u config interrupts)\n", actual, s_config_irqs);
            if (++settled >= phases)
                break;
        }
        /* Wait for a configuration change or a stats request. */
        cli();
        uint32_t c = s_config_irqs, q = s_queue_irqs;
        if (virtio_cfg_read32(&s_dev, 0) == actual && c == s_config_irqs && q == s_queue_irqs) {
            sti();
            hlt();
        }
        sti();
    }
    cli();
    printf("balloon: %u phases done, stats refilled %u times\n", phases, s_refills);
    return 0;
}
