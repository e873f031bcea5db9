#include "devices/pci/resource_setup.h"

#include <algorithm>
#include <array>
#include <vector>

#include "base/bytes.h"
#include "devices/pci/piix3.h"

namespace hako::devices::pci {

namespace {

class ConfigAccess {
public:
    ConfigAccess(PciRoot& root, uint8_t slot, uint8_t fn) : m_root(root), m_slot(slot), m_fn(fn) { }
    uint32_t read32(uint16_t off) const
    {
        std::array<uint8_t, 4> b {};
        m_root.config_read(0, m_slot, m_fn, off, b);
        return get_le32(b.data());
    }
    uint8_t read8(uint16_t off) const
    {
        std::array<uint8_t, 1> b {};
        m_root.config_read(0, m_slot, m_fn, off, b);
        return b[0];
    }
    void write32(uint16_t off, uint32_t v)
    {
        std::array<uint8_t, 4> b {};
        put_le32(b.data(), v);
        m_root.config_write(0, m_slot, m_fn, off, b);
    }
    void write8(uint16_t off, uint8_t v)
    {
        std::array<uint8_t, 1> b { v };
        m_root.config_write(0, m_slot, m_fn, off, b);
    }

private:
    PciRoot& m_root;
    uint8_t m_slot, m_fn;
};

struct BarRequest {
    uint8_t slot, fn;
    int bar;
    bool io, is64;
    uint64_t size;
};

class Allocator {
public:
    Allocator(uint64_t start, uint64_t end) : m_next(start), m_end(end) { }
    std::optional<uint64_t> take(uint64_t size)
    {
        uint64_t const addr = (m_next + size - 1) & ~(size - 1);
        if (addr < m_next || addr > m_end || size > m_end - addr)
            return std::nullopt;
        m_next = addr + size;
        return addr;
    }

private:
    uint64_t m_next, m_end;
};

} // namespace

Result<void> assign_pci_resources(PciRoot& root, PciResourceWindows const& windows, std::optional<uint8_t> piix3_slot)
{
    if (piix3_slot) {
        ConfigAccess isa(root, *piix3_slot, 0);
        for (uint16_t i = 0; i < NUM_PIRQS; ++i)
            isa.write8(static_cast<uint16_t>(Piix3IsaBridge::PIRQRC + i), DEFAULT_PIRQ_IRQS[i]);
    }

    // Size every BAR first, then place the largest first so alignment wastes nothing.
    std::vector<BarRequest> requests;
    for (uint8_t slot = 0; slot < PCI_SLOTS; ++slot) {
        for (uint8_t fn = 0; fn < PCI_FUNCTIONS; ++fn) {
            ConfigAccess cfg(root, slot, fn);
            if ((cfg.read32(PCI_VENDOR_ID) & 0xffff) == 0xffff) {
                if (fn == 0)
                    break;
                continue;
            }
            bool const multi = (cfg.read8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MULTI_FUNCTION) != 0;
            if ((cfg.read8(PCI_HEADER_TYPE) & 0x7f) == 0) {
                for (int bar = 0; bar < NUM_BARS; ++bar) {
                    auto const off = static_cast<uint16_t>(PCI_BASE_ADDRESS_0 + 4 * bar);
                    uint32_t const old = cfg.read32(off);
                    cfg.write32(off, 0xffffffff);
                    uint32_t const mask = cfg.read32(off);
                    cfg.write32(off, old);
                    if (mask == 0 || mask == 0xffffffff)
                        continue;
                    bool const io = (mask & PCI_BASE_ADDRESS_SPACE_IO) != 0;
                    bool const is64 = !io && (mask & 0x6) == PCI_BASE_ADDRESS_MEM_TYPE_64 && bar + 1 < NUM_BARS;
                    uint64_t size_mask = io ? (mask & ~0x3u) | 0xffff0000u : mask & ~0xfu;
                    if (is64) {
                        auto const hi_off = static_cast<uint16_t>(off + 4);
                        uint32_t const old_hi = cfg.read32(hi_off);
                        cfg.write32(hi_off, 0xffffffff);
                        size_mask |= uint64_t { cfg.read32(hi_off) } << 32;
                        cfg.write32(hi_off, old_hi);
                    } else {
                        size_mask |= 0xffffffff00000000ull;
                    }
                    uint64_t const size = ~size_mask + 1;
                    if (size != 0 && (size & (size - 1)) == 0)
                        requests.push_back(BarRequest { slot, fn, bar, io, is64, size });
                    if (is64)
                        ++bar;
                }
            }
            uint8_t const pin = cfg.read8(PCI_INTERRUPT_PIN);
            if (auto pirq = intx_to_pirq(slot, pin); pirq && piix3_slot)
                cfg.write8(PCI_INTERRUPT_LINE, DEFAULT_PIRQ_IRQS[*pirq]);
            if (fn == 0 && !multi)
                break;
        }
    }
    std::stable_sort(requests.begin(), requests.end(), [](auto const& a, auto const& b) { return a.size > b.size; });

    Allocator io(windows.io_start, windows.io_end);
    Allocator mmio32(windows.mmio32_start, windows.mmio32_end);
    Allocator mmio64(windows.mmio64_start, windows.mmio64_end);
    for (auto const& r : requests) {
        std::optional<uint64_t> addr;
        if (r.io)
            addr = io.take(r.size);
        else {
            addr = mmio32.take(r.size);
            if (!addr && r.is64)
                addr = mmio64.take(r.size);
        }
        if (!addr)
            return Error(ErrorKind::Unsupported,
                fmt::format("PCI {:02x}.{} BAR {}: no room for {:#x} bytes of {} space", r.slot, r.fn, r.bar, r.size,
                    r.io ? "I/O" : "memory"));
        ConfigAccess cfg(root, r.slot, r.fn);
        auto const off = static_cast<uint16_t>(PCI_BASE_ADDRESS_0 + 4 * r.bar);
        uint32_t const flags = cfg.read32(off) & (r.io ? 0x3u : 0xfu);
        cfg.write32(off, static_cast<uint32_t>(*addr) | flags);
        if (r.is64)
            cfg.write32(static_cast<uint16_t>(off + 4), static_cast<uint32_t>(*addr >> 32));
    }
    return ok();
}

} // namespace hako::devices::pci
