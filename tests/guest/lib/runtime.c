/* Guest runtime: string helpers, COM1 16550 polling driver, printf, exit through isa-debug-exit, the multiboot
 * info and command line, CMOS access, and the C entry point. */
#include "guest.h"

/* ---- String helpers ---- */
void* memset(void* dst, int c, size_t n)
{
    uint8_t* d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

void* memcpy(void* dst, const void* src, size_t n)
{
    uint8_t* d = dst;
    const uint8_t* s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

int memcmp(const void* a, const void* b, size_t n)
{
    const uint8_t* x = a;
    const uint8_t* y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char* s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strncmp(const char* a, const char* b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return (uint8_t)a[i] < (uint8_t)b[i] ? -1 : 1;
        if (!a[i])
            return 0;
    }
    return 0;
}

int strcmp(const char* a, const char* b) { return strncmp(a, b, (size_t)-1); }

bool parse_u32(const char* s, size_t len, uint32_t* out)
{
    uint32_t v = 0;
    uint32_t base = 10;
    size_t i = 0;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i == len)
        return false;
    for (; i < len; i++) {
        char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return false;
        if (v > (0xFFFFFFFFu - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

/* ---- COM1 ---- */
void serial_init(void)
{
    outb(COM1 + UART_IER, 0x00);
    outb(COM1 + UART_LCR, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01);        /* divisor 1: 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + UART_LCR, 0x03); /* 8N1 */
    outb(COM1 + UART_FCR, 0x07); /* FIFO enable, clear RX and TX */
    outb(COM1 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
}

void serial_putc(char c)
{
    if (c == '\n')
        serial_putc('\r');
    /* Bounded: a VMM that never sets THRE must not hang the guest forever. */
    for (uint32_t i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_THRE); i++)
        cpu_relax();
    outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_puts(const char* s)
{
    while (*s)
        serial_putc(*s++);
}

/* ---- printf ---- */
static void put_uint(uint32_t v, uint32_t base, int width, char pad)
{
    char buf[12];
    int n = 0;
    do {
        uint32_t d = v % base; /* 32-bit division only: no libgcc */
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (width-- > n)
        serial_putc(pad);
    while (n)
        serial_putc(buf[--n]);
}

int vprintf(const char* fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            serial_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0;
        int longs = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char* s = va_arg(ap, const char*);
            serial_puts(s ? s : "(null)");
            break;
        }
        case 'c':
            serial_putc((char)va_arg(ap, int));
            break;
        case 'd': {
            int32_t v = va_arg(ap, int32_t);
            if (v < 0) {
                serial_putc('-');
                put_uint(0u - (uint32_t)v, 10, width, pad);
            } else {
                put_uint((uint32_t)v, 10, width, pad);
            }
            break;
        }
        case 'u':
            put_uint(va_arg(ap, uint32_t), 10, width, pad);
            break;
        case 'x':
            if (longs >= 2) {
                uint64_t v = va_arg(ap, uint64_t);
                if (v >> 32) {
                    put_uint((uint32_t)(v >> 32), 16, width > 8 ? width - 8 : 0, pad);
                    put_uint((uint32_t)v, 16, 8, '0');
                } else {
                    put_uint((uint32_t)v, 16, width, pad);
                }
            } else {
                put_uint(va_arg(ap, uint32_t), 16, width, pad);
            }
            break;
        case 'p':
            serial_puts("0x");
            put_uint((uint32_t)(uintptr_t)va_arg(ap, void*), 16, 8, '0');
            break;
        case '%':
            serial_putc('%');
            break;
        default:
            serial_putc('%');
            serial_putc(*fmt);
            if (!*fmt)
                return 0;
        }
    }
    return 0;
}

int printf(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    return 0;
}

/* ---- Exit ---- */
void exit_guest(uint32_t code)
{
    /* Let the UART drain (bounded) so the last line reaches the host before the VMM exits. */
    for (uint32_t i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_TEMT); i++)
        cpu_relax();
    outl(DEBUG_EXIT_PORT, code);
    /* No isa-debug-exit device: nothing else to do. */
    for (;;) {
        cli();
        hlt();
    }
}

void pass(void)
{
    serial_puts("PASS\n");
    exit_guest(0);
}

void fail(uint32_t code, const char* fmt, ...)
{
    va_list ap;
    serial_puts("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    serial_puts("\n");
    exit_guest(code ? code : 1);
}

void check(bool ok, uint32_t code, const char* what)
{
    printf("check: %s: %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        fail(code, "%s", what);
}

/* ---- Multiboot ---- */
uint32_t g_mb_magic;
const struct mb_info* g_mb_info;

const char* mb_cmdline(void)
{
    if (!g_mb_info || !(g_mb_info->flags & MB_INFO_CMDLINE) || !g_mb_info->cmdline)
        return "";
    return (const char*)(uintptr_t)g_mb_info->cmdline;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool cmdline_get(const char* key, char* out, size_t out_size)
{
    const char* p = mb_cmdline();
    size_t key_len = strlen(key);
    while (*p) {
        while (is_space(*p))
            p++;
        const char* tok = p;
        while (*p && !is_space(*p))
            p++;
        size_t tok_len = (size_t)(p - tok);
        if (tok_len > key_len && tok[key_len] == '=' && strncmp(tok, key, key_len) == 0) {
            size_t n = tok_len - key_len - 1;
            if (n + 1 > out_size)
                return false;
            memcpy(out, tok + key_len + 1, n);
            out[n] = 0;
            return true;
        }
    }
    return false;
}

bool cmdline_get_u32(const char* key, uint32_t* out)
{
    char buf[24];
    if (!cmdline_get(key, buf, sizeof(buf)))
        return false;
    return parse_u32(buf, strlen(buf), out);
}

int mb_mmap_foreach(void (*fn)(const struct mb_mmap_entry* e, void* ctx), void* ctx)
{
    if (!g_mb_info || !(g_mb_info->flags & MB_INFO_MMAP))
        return -1;
    uint32_t p = g_mb_info->mmap_addr;
    uint32_t end = p + g_mb_info->mmap_length;
    int n = 0;
    while (p < end && n < 1024) {
        const struct mb_mmap_entry* e = (const struct mb_mmap_entry*)(uintptr_t)p;
        if (e->size < 20)
            break; /* malformed: would not advance past the fields */
        fn(e, ctx);
        n++;
        p += e->size + 4;
    }
    return n;
}

/* ---- CMOS ---- */
uint8_t cmos_read(uint8_t reg)
{
    outb(CMOS_INDEX, reg & 0x7f);
    return inb(CMOS_DATA);
}

void cmos_write(uint8_t reg, uint8_t v)
{
    outb(CMOS_INDEX, reg & 0x7f);
    outb(CMOS_DATA, v);
}

/* ---- Entry ---- */
void guest_start(uint32_t magic, uint32_t info);
void guest_start(uint32_t magic, uint32_t info)
{
    serial_init();
    g_mb_magic = magic;
    g_mb_info = magic == MULTIBOOT_BOOTLOADER_MAGIC ? (const struct mb_info*)(uintptr_t)info : NULL;
    idt_init();
    if (!g_mb_info)
        fail(125, "bad multiboot magic %x", magic);
    int rc = guest_main();
    if (rc == 0)
        pass();
    fail((uint32_t)rc, "guest_main returned %d", rc);
}
