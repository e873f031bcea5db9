/* QEMU fw_cfg: selector 0x510, data 0x511, DMA address 0x514 (big-endian, the low half at 0x518 triggers). */
#include "guest.h"

struct fw_cfg_dma_access {
    uint32_t control; /* big-endian, as are the two below */
    uint32_t length;
    uint64_t address;
} PACKED;

#define FW_CFG_DMA_CTL_ERROR 0x01
#define FW_CFG_DMA_CTL_READ 0x02
#define FW_CFG_DMA_CTL_SELECT 0x08

void fw_cfg_read_pio(uint16_t key, void* buf, uint32_t len)
{
    outw(FW_CFG_PORT_SEL, key);
    uint8_t* b = buf;
    for (uint32_t i = 0; i < len; i++)
        b[i] = inb(FW_CFG_PORT_DATA);
}

bool fw_cfg_present(void)
{
    char sig[4];
    fw_cfg_read_pio(FW_CFG_SIGNATURE, sig, 4);
    return memcmp(sig, "QEMU", 4) == 0;
}

bool fw_cfg_dma_supported(void)
{
    uint32_t id;
    fw_cfg_read_pio(FW_CFG_ID, &id, 4);
    if (!(id & FW_CFG_ID_DMA))
        return false;
    /* The DMA address register reads back the signature "QEMU CFG" (big-endian 64-bit). */
    uint32_t hi = bswap32(inl(FW_CFG_PORT_DMA));
    uint32_t lo = bswap32(inl(FW_CFG_PORT_DMA + 4));
    return hi == 0x51454d55 && lo == 0x20434647;
}

static struct fw_cfg_dma_access s_dma __attribute__((aligned(16)));

bool fw_cfg_read_dma(uint16_t key, void* buf, uint32_t len)
{
    s_dma.control = bswap32(((uint32_t)key << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ);
    s_dma.length = bswap32(len);
    s_dma.address = (uint64_t)bswap32((uint32_t)(uintptr_t)buf) << 32; /* big-endian 64-bit, upper half zero */
    barrier();
    uint32_t addr = (uint32_t)(uintptr_t)&s_dma;
    outl(FW_CFG_PORT_DMA, 0);                  /* high 32 bits, big-endian: zero */
    outl(FW_CFG_PORT_DMA + 4, bswap32(addr));  /* low 32 bits: starts the transfer */
    for (uint32_t i = 0; i < 100000; i++) {
        uint32_t ctl = bswap32(*(volatile uint32_t*)&s_dma.control);
        if (ctl & FW_CFG_DMA_CTL_ERROR)
            return false;
        if (ctl == 0)
            return true;
        cpu_relax();
    }
    return false;
}

bool fw_cfg_find_file(const char* name, uint16_t* key, uint32_t* size)
{
    uint32_t count_be;
    fw_cfg_read_pio(FW_CFG_FILE_DIR, &count_be, 4);
    uint32_t count = bswap32(count_be);
    if (count > 4096)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        struct {
            uint32_t size;
            uint16_t select;
            uint16_t reserved;
            char name[56];
        } PACKED f;
        uint8_t* b = (uint8_t*)&f;
        for (uint32_t j = 0; j < sizeof(f); j++) /* continue reading the selected item */
            b[j] = inb(FW_CFG_PORT_DATA);
        f.name[55] = 0;
        if (strcmp(f.name, name) == 0) {
            *key = bswap16(f.select);
            *size = bswap32(f.size);
            return true;
        }
    }
    return false;
}
