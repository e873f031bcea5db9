/* memsize: the memory map. Sums the RAM (type 1) entries of the multiboot mmap and checks the total against
 * mem=<MiB> from the command line: a PC map loses a little to the EBDA, the BIOS area and firmware-reserved pages,
 * so the rule is mem - 1 MiB <= RAM <= mem. Also checks that no RAM is reported in the VGA hole (0xA0000-0xBFFFF)
 * or overlapping another entry, and that fw_cfg (signature "QEMU", RAM size key 0x03 through PIO and, if offered,
 * DMA, and the "etc/e820" file if present) agrees with mem= exactly. With fw_cfg=optional on the command line a
 * missing fw_cfg is reported but not a failure.
 *
 * Exit codes: 2 no mem=, 3 no mmap, 4 RAM total out of range, 5 RAM in the VGA hole, 6 fw_cfg missing,
 * 7 fw_cfg RAM size mismatch, 8 fw_cfg DMA failed or disagrees, 9 etc/e820 mismatch, 10 overlapping entries.
 */
#include "guest.h"

#define MIB (1024ull * 1024ull)
#define MAX_RANGES 64

struct mmap_sum {
    uint64_t ram;
    uint32_t entries;
    bool ram_in_vga_hole;
    uint32_t ranges;
    uint64_t start[MAX_RANGES], end[MAX_RANGES];
};

static const char* type_name(uint32_t t)
{
    switch (t) {
    case 1: return "RAM";
    case 2: return "reserved";
    case 3: return "ACPI";
    case 4: return "NVS";
    case 5: return "bad";
    default: return "other";
    }
}

static void add_entry(const struct mb_mmap_entry* e, void* ctx)
{
    struct mmap_sum* s = ctx;
    printf("  mmap: %016llx - %016llx %s (%u)\n", e->addr, e->addr + e->len, type_name(e->type), e->type);
    s->entries++;
    if (e->type != 1 || e->len == 0)
        return;
    s->ram += e->len;
    if (e->addr < 0xC0000 && e->addr + e->len > 0xA0000)
        s->ram_in_vga_hole = true;
    if (s->ranges < MAX_RANGES) {
        s->start[s->ranges] = e->addr;
        s->end[s->ranges] = e->addr + e->len;
        s->ranges++;
    }
}

static uint32_t to_kib(uint64_t v) { return (uint32_t)(v >> 10); }

int guest_main(void)
{
    uint32_t mem_mib;
    if (!cmdline_get_u32("mem", &mem_mib) || mem_mib == 0)
        fail(2, "no mem=<MiB> on the command line");
    uint64_t mem = (uint64_t)mem_mib * MIB;
    char opt[16];
    bool fw_cfg_optional = cmdline_get("fw_cfg", opt, sizeof(opt)) && strcmp(opt, "optional") == 0;

    printf("memsize: multiboot mem_lower %u KiB mem_upper %u KiB\n", g_mb_info->mem_lower, g_mb_info->mem_upper);
    static struct mmap_sum sum;
    if (mb_mmap_foreach(add_entry, &sum) <= 0)
        fail(3, "the loader passed no memory map");
    printf("memsize: %u entries, RAM %u KiB, mem= %u KiB\n", sum.entries, to_kib(sum.ram), to_kib(mem));
    check(sum.ram <= mem && sum.ram + MIB >= mem, 4, "mmap RAM total within [mem - 1 MiB, mem]");
    check(!sum.ram_in_vga_hole, 5, "no RAM in the VGA hole 0xA0000-0xBFFFF");
    bool overlap = false;
    for (uint32_t a = 0; a < sum.ranges; a++)
        for (uint32_t b = a + 1; b < sum.ranges; b++)
            if (sum.start[a] < sum.end[b] && sum.start[b] < sum.end[a])
                overlap = true;
    check(!overlap, 10, "RAM entries do not overlap");

    if (!fw_cfg_present()) {
        if (fw_cfg_optional) {
            printf("memsize: no fw_cfg (signature not \"QEMU\"), skipped: fw_cfg=optional\n");
            return 0;
        }
        fail(6, "fw_cfg signature is not \"QEMU\"");
    }
    check(true, 0, "fw_cfg signature \"QEMU\"");
    uint64_t fw_ram;
    fw_cfg_read_pio(FW_CFG_RAM_SIZE, &fw_ram, sizeof(fw_ram)); /* little-endian, as is the guest */
    printf("memsize: fw_cfg RAM size (key 0x03) %llx\n", fw_ram);
    check(fw_ram == mem, 7, "fw_cfg RAM size equals mem=");

    if (fw_cfg_dma_supported()) {
        uint64_t dma_ram = 0;
        bool ok = fw_cfg_read_dma(FW_CFG_RAM_SIZE, &dma_ram, sizeof(dma_ram));
        printf("memsize: fw_cfg DMA read of key 0x03: %s, %llx\n", ok ? "ok" : "error", dma_ram);
        check(ok && dma_ram == mem, 8, "fw_cfg DMA read agrees");
    } else {
        printf("memsize: fw_cfg DMA interface not offered\n");
    }

    uint16_t key;
    uint32_t size;
    if (fw_cfg_find_file("etc/e820", &key, &size)) {
        printf("memsize: etc/e820 is key %x, %u bytes\n", key, size);
        static uint8_t buf[20 * 64];
        if (size % 20 != 0 || size > sizeof(buf))
            fail(9, "etc/e820 size %u is not a multiple of 20 or too large", size);
        fw_cfg_read_pio(key, buf, size);
        uint64_t e820_ram = 0;
        for (uint32_t i = 0; i < size; i += 20) {
            uint64_t addr, len;
            uint32_t type;
            memcpy(&addr, buf + i, 8);
            memcpy(&len, buf + i + 8, 8);
            memcpy(&type, buf + i + 16, 4);
            printf("  etc/e820: %016llx - %016llx %s (%u)\n", addr, addr + len, type_name(type), type);
            if (type == 1)
                e820_ram += len;
        }
        printf("memsize: etc/e820 RAM %u KiB\n", to_kib(e820_ram));
        check(e820_ram == mem, 9, "etc/e820 RAM total equals mem=");
    } else {
        printf("memsize: no etc/e820 file\n");
    }
    return 0;
}
