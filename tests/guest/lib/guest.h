/* The hako test-guest library: everything a freestanding 32-bit multiboot test guest uses.
 *
 * A guest is one .c file with `int guest_main(void)`. The library's entry (entry.S) sets up a stack, its own GDT,
 * the IDT, COM1 and the multiboot info, then calls guest_main(); returning 0 prints "PASS" and exits through
 * isa-debug-exit with code 0 (VMM exit status 1). fail() prints "FAIL: <reason>" and exits with the given code.
 *
 * Everything here runs at CPL0 in 32-bit protected mode without paging. On the project's PVM hosts that is
 * emulated instruction by instruction (~0.5 us each): keep loops short.
 */
#ifndef HAKO_GUEST_H
#define HAKO_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NORETURN __attribute__((noreturn))
#define PACKED __attribute__((packed))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Port I/O, MMIO, CPU instructions ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint32_t mmio_read32(uintptr_t addr) { return *(volatile uint32_t*)addr; }
static inline void mmio_write32(uintptr_t addr, uint32_t v) { *(volatile uint32_t*)addr = v; }

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

struct cpuid_regs {
    uint32_t eax, ebx, ecx, edx;
};
static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
    struct cpuid_regs r;
    __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* ---- String helpers (the compiler may also emit calls to memcpy/memset) ---- */
void* memset(void* dst, int c, size_t n);
void* memcpy(void* dst, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
int strcmp(const char* a, const char* b);
int strncmp(const char* a, const char* b, size_t n);
/* Parses a decimal or 0x-prefixed hex number; returns false on junk or 32-bit overflow. */
bool parse_u32(const char* s, size_t len, uint32_t* out);

/* ---- COM1 16550 (polling output) and printf ---- */
#define COM1 0x3f8
#define UART_RBR 0 /* DLAB=0, read */
#define UART_THR 0 /* DLAB=0, write */
#define UART_IER 1
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_IER_RDI 0x01
#define UART_IER_THRI 0x02
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT2 0x08

void serial_init(void);           /* 115200 8N1, FIFOs on and cleared, interrupts off */
void serial_putc(char c);         /* polls LSR.THRE; "\n" becomes "\r\n" */
void serial_puts(const char* s);
int vprintf(const char* fmt, va_list ap); /* %s %d %u %x %c %p, %llx, width/zero-pad for d/u/x */
int printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Exit ---- */
#define DEBUG_EXIT_PORT 0xf4
#define EXIT_CODE_EXCEPTION 126
NORETURN void exit_guest(uint32_t code); /* VMM exits with status (code << 1) | 1 */
NORETURN void pass(void);               /* prints "PASS", exit_guest(0) */
NORETURN void fail(uint32_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "check: <what>" and fails with `code` unless `ok`. */
void check(bool ok, uint32_t code, const char* what);

/* ---- Multiboot v1 info and command line ---- */
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)
struct mb_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
} PACKED;
struct mb_mmap_entry {
    uint32_t size; /* of the rest of the entry: the next entry is at +size+4 */
    uint64_t addr;
    uint64_t len;
    uint32_t type; /* 1 = RAM */
} PACKED;

extern uint32_t g_mb_magic;
extern const struct mb_info* g_mb_info; /* NULL when the magic was wrong */
const char* mb_cmdline(void);           /* "" if none */
/* Finds `key=value` as a whitespace-separated token; copies value (NUL-terminated) into out. */
bool cmdline_get(const char* key, char* out, size_t out_size);
bool cmdline_get_u32(const char* key, uint32_t* out);
/* Calls fn for each mmap entry; returns the number of entries, -1 if the loader gave no mmap. */
int mb_mmap_foreach(void (*fn)(const struct mb_mmap_entry* e, void* ctx), void* ctx);

/* ---- ACPI ---- */
struct acpi_rsdp {
    char signature[8]; /* "RSD PTR " */
    uint8_t checksum;
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;
    uint32_t length; /* revision >= 2 from here on */
    uint64_t xsdt_address;
    uint8_t extended_checksum;
    uint8_t reserved[3];
} PACKED;
struct acpi_sdt_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} PACKED;

bool acpi_checksum_ok(const void* p, uint32_t len);
/* Scans the first KiB of the EBDA and 0xE0000-0xFFFFF; checks the checksum (and the extended one for rev >= 2). */
const struct acpi_rsdp* acpi_find_rsdp(void);
/* Walks the XSDT (if rev >= 2 and below 4 GiB) or the RSDT; returns the table with a valid checksum, or NULL.
 * Prints why it could not when `verbose`. */
const struct acpi_sdt_header* acpi_find_table(const char* sig, bool verbose);

#define MADT_MAX_CPUS 64
#define MADT_MAX_OVERRIDES 16
struct madt_info {
    uint32_t lapic_addr;
    uint32_t flags;
    uint32_t cpu_count;                  /* enabled LAPIC entries */
    uint8_t apic_ids[MADT_MAX_CPUS];
    uint32_t ioapic_count;
    uint32_t ioapic_addr;                /* the first IOAPIC */
    uint32_t ioapic_gsi_base;
    uint32_t override_count;
    struct {
        uint8_t source_irq;
        uint32_t gsi;
        uint16_t flags;
    } overrides[MADT_MAX_OVERRIDES];
};
/* Finds and parses the MADT ("APIC"); returns false (with a message) if absent or malformed. */
bool madt_parse(struct madt_info* out);
/* ISA IRQ -> GSI through the interrupt source overrides; *flags gets the MPS INTI flags (0 = bus default). */
uint32_t madt_irq_to_gsi(const struct madt_info* m, uint8_t irq, uint16_t* flags);

/* ---- Local APIC (xAPIC MMIO), IOAPIC, 8259 PIC ---- */
#define LAPIC_DEFAULT_BASE 0xFEE00000u
#define LAPIC_ID 0x20
#define LAPIC_VERSION 0x30
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_ICR_DELIVERY_PENDING (1u << 12)
#define LAPIC_ICR_LEVEL_ASSERT (1u << 14)
#define LAPIC_ICR_TRIGGER_LEVEL (1u << 15)
#define LAPIC_DM_FIXED 0x000
#define LAPIC_DM_NMI 0x400
#define LAPIC_DM_INIT 0x500
#define LAPIC_DM_STARTUP 0x600
#define LAPIC_DM_EXTINT 0x700
#define LAPIC_LVT_MASKED (1u << 16)
#define SPURIOUS_VECTOR 0xFF

extern uint32_t g_lapic_base;
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
void lapic_enable(void);          /* IA32_APIC_BASE global enable, SVR enable with vector 0xFF, TPR 0 */
uint8_t lapic_id(void);
void lapic_eoi(void);
/* Writes ICR (high then low) and waits, bounded, for the delivery status to clear; false on timeout. */
bool lapic_send_ipi(uint8_t dest_apic_id, uint32_t icr_low);

#define IOAPIC_DEFAULT_BASE 0xFEC00000u
#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REDTBL(n) (0x10 + 2 * (n))
#define IOAPIC_RTE_MASKED (1u << 16)
#define IOAPIC_RTE_LEVEL (1u << 15)
#define IOAPIC_RTE_ACTIVE_LOW (1u << 13)
extern uint32_t g_ioapic_base;
uint32_t ioapic_read(uint32_t reg);
void ioapic_write(uint32_t reg, uint32_t v);
uint32_t ioapic_max_redir(void);
/* Programs the redirection entry for `gsi`: fixed delivery, physical destination `dest`; polarity and trigger from
 * the MPS INTI flags (bits 0-1 polarity, 2-3 trigger; 0 = ISA default: high, edge). */
void ioapic_route(uint32_t gsi, uint8_t vector, uint8_t dest, uint16_t inti_flags);
void ioapic_mask(uint32_t gsi);

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
void pic_remap(uint8_t base1, uint8_t base2); /* ICW1-4, leaves all IRQs masked */
void pic_mask_all(void);
void pic_unmask(uint8_t irq);                 /* also unmasks the cascade for irq >= 8 */
void pic_eoi(uint8_t irq);

/* One way to get an ISA IRQ delivered: through the IOAPIC (default) or the 8259 (cmdline irq=pic, which also sets
 * LAPIC LINT0 to ExtINT). Returns the vector the IRQ arrives on; the handler must call irq_eoi(). */
enum irq_mode { IRQ_MODE_IOAPIC, IRQ_MODE_PIC };
enum irq_mode irq_mode_from_cmdline(void);
bool irq_setup(enum irq_mode mode, const struct madt_info* madt, uint8_t irq, uint8_t* vector_out);
void irq_eoi(enum irq_mode mode, uint8_t irq);
#define IRQ_VECTOR_BASE 0x20 /* ISA IRQ n -> vector 0x20 + n, both modes */

/* ---- IDT ---- */
struct int_frame {
    uint32_t edi, esi, ebp, esp_dummy, ebx, edx, ecx, eax; /* pusha */
    uint32_t vector, error_code;
    uint32_t eip, cs, eflags;                              /* pushed by the CPU */
};
typedef void (*int_handler)(struct int_frame* f);
void idt_init(void); /* every vector has a stub; exceptions fail the test, unhandled interrupts are counted */
void idt_set_handler(uint8_t vector, int_handler fn);
extern volatile uint32_t g_unhandled_interrupts;

/* ---- CMOS / RTC ---- */
#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
uint8_t cmos_read(uint8_t reg);  /* keeps NMI enabled (bit 7 clear) */
void cmos_write(uint8_t reg, uint8_t v);

/* ---- QEMU fw_cfg ---- */
#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_ID_DMA (1u << 1)
bool fw_cfg_present(void);                        /* the signature reads "QEMU" */
void fw_cfg_read_pio(uint16_t key, void* buf, uint32_t len);
bool fw_cfg_dma_supported(void);                  /* FW_CFG_ID bit 1 and the DMA port reads "QEMU CFG" */
bool fw_cfg_read_dma(uint16_t key, void* buf, uint32_t len); /* false on the DMA error bit or a timeout */
/* Looks `name` up in the file directory (read through PIO); returns false if absent. */
bool fw_cfg_find_file(const char* name, uint16_t* key, uint32_t* size);

/* ---- PCI (configuration mechanism #1, bus 0) ---- */
struct pci_dev {
    uint8_t bus, slot, fn;
    uint16_t vendor, device;
    uint16_t subsys_vendor, subsys_id;
    uint8_t irq_line, irq_pin;
};
uint32_t pci_read32(const struct pci_dev* d, uint8_t off);
uint16_t pci_read16(const struct pci_dev* d, uint8_t off);
uint8_t pci_read8(const struct pci_dev* d, uint8_t off);
void pci_write32(const struct pci_dev* d, uint8_t off, uint32_t v);
void pci_write16(const struct pci_dev* d, uint8_t off, uint16_t v);
void pci_write8(const struct pci_dev* d, uint8_t off, uint8_t v);
/* Finds the nth (0-based) function on bus 0 for which match() is true (any vendor if match is NULL). */
bool pci_find(bool (*match)(const struct pci_dev* d, void* ctx), void* ctx, unsigned nth, struct pci_dev* out);
/* A BAR's address (64-bit BARs combined; *is_io set); 0 if unassigned or absent. */
uint64_t pci_bar_address(const struct pci_dev* d, int bar, bool* is_io);
/* The config offset of capability `id` after `after` (0: from the start of the list); 0 if none. */
uint8_t pci_find_cap(const struct pci_dev* d, uint8_t id, uint8_t after);
#define PCI_COMMAND 0x04
#define PCI_CMD_IO 0x1
#define PCI_CMD_MEMORY 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_CAP_MSIX 0x11
#define PCI_CAP_VENDOR 0x09

/* ---- virtio over PCI (modern interface, split virtqueues) ---- */
struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} PACKED;
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
} PACKED;
struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
} PACKED;
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[];
} PACKED;
#define VIRTQ_MAX 64 /* the library's queues hold up to 64 descriptors */
struct virtq {
    uint16_t index, size;
    volatile struct virtq_desc* desc;
    volatile struct virtq_avail* avail;
    volatile struct virtq_used* used;
    uint16_t avail_idx, last_used, next_desc;
    uintptr_t notify;
    bool notify_is_port; /* legacy interface: notify is an I/O port */
};
struct virtio_dev {
    struct pci_dev pci;
    uintptr_t common, isr, device_cfg, notify_base;
    uint32_t notify_mult;
    uint8_t msix_cap;
    uintptr_t msix_table;
    uint16_t msix_entries;
};
struct virtq_buf {
    uint32_t addr;
    uint32_t len;
    bool device_writes;
};
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_STATUS_ACK 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128
/* Finds the nth virtio device of `type` (modern ID 0x1040+type, or transitional with subsystem ID = type), enables
 * memory decoding and bus mastering, and maps its capabilities. false (with a message) if absent or incomplete. */
bool virtio_find(uint16_t type, unsigned nth, struct virtio_dev* out);
/* Reset, ACKNOWLEDGE, DRIVER, features (wanted & offered, plus VERSION_1), FEATURES_OK. Returns the negotiated
 * features in *features; false if the device refused. */
bool virtio_negotiate(struct virtio_dev* v, uint64_t wanted, uint64_t* features);
/* Sets up queue `index` with `size` entries (<= VIRTQ_MAX) in the library's static ring memory (slot 0-3) and
 * MSI-X vector `vector` (VIRTIO_MSI_NO_VECTOR for none); false if the device refuses. */
bool virtq_setup(struct virtio_dev* v, struct virtq* q, uint16_t index, uint16_t size, unsigned slot, uint16_t vector);
/* The same in caller-provided ring memory (16-byte aligned, virtq_mem_size(size) bytes), for queues larger than
 * VIRTQ_MAX: descriptor table, available ring, used ring, back to back. */
bool virtq_setup_mem(struct virtio_dev* v, struct virtq* q, uint16_t index, uint16_t size, void* ring_mem,
    uint16_t vector);
size_t virtq_mem_size(uint16_t size);
void virtio_driver_ok(struct virtio_dev* v);
uint8_t virtio_status(struct virtio_dev* v);
uint8_t virtio_read_isr(struct virtio_dev* v);
uint8_t virtio_cfg_read8(struct virtio_dev* v, uint32_t off);
uint32_t virtio_cfg_read32(struct virtio_dev* v, uint32_t off);
/* Adds a chain of n buffers (readable ones first) and publishes it; returns the head. Does not notify. */
uint16_t virtq_add(struct virtq* q, const struct virtq_buf* bufs, unsigned n);
void virtq_kick(struct virtq* q);
/* Takes the next used entry; false if none. */
bool virtq_next_used(struct virtq* q, uint32_t* id, uint32_t* len);
/* Selects MSI-X table entry `entry` for configuration change notifications; false if the device refuses. */
bool virtio_set_config_vector(struct virtio_dev* v, uint16_t entry);
void virtio_cfg_write32(struct virtio_dev* v, uint32_t off, uint32_t value);
/* For drivers that keep one descriptor per buffer at a fixed index (virtio-net): writes descriptor idx as a single
 * buffer (no chain), and puts a chain head in the available ring (no notify). */
void virtq_set_desc(struct virtq* q, uint16_t idx, uint32_t addr, uint32_t len, bool device_writes);
void virtq_publish(struct virtq* q, uint16_t head);
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1
/* Asks the device not to interrupt for used buffers (a hint; polling drivers set it). */
void virtq_set_no_interrupt(struct virtq* q, bool no_interrupt);
/* Whether the device wants notifications (VIRTQ_USED_F_NO_NOTIFY clear); call after publishing, before kicking. */
bool virtq_kick_needed(struct virtq* q);
/* The legacy (virtio 0.9.5) interface of a transitional device, through its I/O BAR 0: what old drivers, SeaBIOS
 * and iPXE use. virtio_legacy_start() resets, negotiates (a subset of the low 32 feature bits), sets up queue
 * `index` at its fixed size in the library's ring memory `slot` (legacy layout: used ring on the next 4 KiB
 * boundary), and sets DRIVER_OK. MSI-X must be off (device config then starts at 0x14). false if the device has no
 * I/O BAR 0 or refuses. */
bool virtio_legacy_start(struct virtio_dev* v, uint32_t wanted, struct virtq* q, uint16_t index, unsigned slot);
uint16_t virtio_legacy_port(struct virtio_dev* v);
/* MSI-X: programs table entry `entry` to deliver `vector` to this CPU's LAPIC, unmasked; enables MSI-X. */
bool virtio_msix_setup(struct virtio_dev* v, unsigned entry, uint8_t vector);

/* ---- Byte order ---- */
static inline uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }
static inline uint16_t bswap16(uint16_t v) { return __builtin_bswap16(v); }

/* ---- Network stack and NIC drivers ---- */
#include "net.h"

/* ---- 64-bit user mode (usermode.S) ---- */
/* Identity-maps the first 4 GiB (2 MiB pages, user-accessible), switches to 64-bit long mode and enters `entry`
 * at CPL3 with RSP = stack, RDI = arg, IOPL 3 and interrupts off (SYSEXIT with REX.W, which KVM's emulator does;
 * IRETQ after #UD on AMD hardware). The 64-bit code must not return; it exits through isa-debug-exit itself. */
NORETURN void enter_user64(uint32_t entry, uint32_t stack, uint32_t arg);

/* The guest's entry point, called with interrupts off after the library is set up. */
int guest_main(void);

#endif
