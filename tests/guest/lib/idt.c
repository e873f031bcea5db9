/* IDT with one stub per vector (entry.S) and a C handler table. Exceptions without a handler fail the test. */
#include "guest.h"

struct idt_entry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t zero;
    uint8_t type_attr;
    uint16_t offset_high;
} PACKED;

struct idt_desc {
    uint16_t limit;
    uint32_t base;
} PACKED;

extern char isr_stubs_start[];
#define ISR_STUB_SIZE 16

static struct idt_entry s_idt[256] __attribute__((aligned(8)));
static int_handler s_handlers[256];
volatile uint32_t g_unhandled_interrupts;

static const char* const EXCEPTION_NAMES[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF(09)", "#TS", "#NP", "#SS", "#GP", "#PF",
    "(15)", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "(22)", "(23)", "(24)", "(25)", "(26)", "(27)", "(28)", "(29)",
    "(30)", "(31)",
};

void isr_dispatch(struct int_frame* f);
void isr_dispatch(struct int_frame* f)
{
    uint32_t v = f->vector & 0xff;
    if (s_handlers[v]) {
        s_handlers[v](f);
        return;
    }
    if (v < 32 && v != 2)
        fail(EXIT_CODE_EXCEPTION, "exception %s (vector %u) error %x at eip %x", EXCEPTION_NAMES[v], v,
            f->error_code, f->eip);
    g_unhandled_interrupts++;
}

void idt_set_handler(uint8_t vector, int_handler fn) { s_handlers[vector] = fn; }

void idt_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t addr = (uint32_t)(uintptr_t)isr_stubs_start + i * ISR_STUB_SIZE;
        s_idt[i].offset_low = (uint16_t)addr;
        s_idt[i].selector = 0x08;
        s_idt[i].zero = 0;
        s_idt[i].type_attr = 0x8E; /* present, DPL0, 32-bit interrupt gate */
        s_idt[i].offset_high = (uint16_t)(addr >> 16);
    }
    struct idt_desc d = { sizeof(s_idt) - 1, (uint32_t)(uintptr_t)s_idt };
    __asm__ volatile("lidt %0" : : "m"(d));
}
