#include "devices/pci/pci_device.h"

#include <algorithm>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::pci {

namespace {

constexpr uint16_t COMMAND_WRITABLE = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
constexpr uint16_t STATUS_W1C = PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT
    | PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY;
constexpr uint64_t IO_SPACE_END = 0x10000;
constexpr uint64_t MEM32_SPACE_END = uint64_t { 1 } << 32;
constexpr uint32_t ROM_ADDRESS_MASK = 0xfffff800;

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool valid_access(uint16_t offset, size_t size, size_t space)
{
    return (size == 1 || size == 2 || size == 4) && (offset & 3u) + size <= 4 && range_within(offset, size, space);
}

uint16_t bar_offset(int bar) { return bar == ROM_BAR ? PCI_ROM_ADDRESS : static_cast<uint16_t>(PCI_BASE_ADDRESS_0 + 4 * bar); }

} // namespace

PciDevice::PciDevice(PciIdentity const& identity, ConfigSpaceSize size)
    : m_size(size == ConfigSpaceSize::Extended ? PCIE_CONFIG_SPACE_SIZE : PCI_CONFIG_SPACE_SIZE)
{
    store_locked(PCI_VENDOR_ID, 2, identity.vendor_id);
    store_locked(PCI_DEVICE_ID, 2, identity.device_id);
    store_locked(PCI_REVISION_ID, 1, identity.revision);
    store_locked(PCI_CLASS_PROG, 1, identity.class_code & 0xff);
    store_locked(PCI_CLASS_PROG + 1, 2, (identity.class_code >> 8) & 0xffff);
    store_locked(PCI_HEADER_TYPE, 1, identity.header_type & PCI_HEADER_TYPE_MULTI_FUNCTION);
    store_locked(PCI_SUBSYSTEM_VENDOR_ID, 2, identity.subsystem_vendor_id);
    store_locked(PCI_SUBSYSTEM_ID, 2, identity.subsystem_id);
    store_locked(PCI_INTERRUPT_PIN, 1, identity.interrupt_pin <= 4 ? identity.interrupt_pin : 0);
    set_write_mask(PCI_COMMAND, 2, COMMAND_WRITABLE);
    set_w1c_mask(PCI_STATUS, 2, STATUS_W1C);
    set_write_mask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    set_write_mask(PCI_LATENCY_TIMER, 1, 0xff);
    set_write_mask(PCI_INTERRUPT_LINE, 1, 0xff);
}

PciDevice::~PciDevice()
{
    if (!m_mapper)
        return;
    for (int i = 0; i <= ROM_BAR; ++i) {
        Bar const& b = m_bars[static_cast<size_t>(i)];
        if (b.mapped)
            m_mapper->unmap_bar(*this, i, b.kind == BarKind::Io, b.mapped_addr, b.size);
    }
}

uint32_t PciDevice::load_locked(uint16_t offset, size_t size) const
{
    if (!range_within(offset, size, m_size) || size > 4)
        return 0xffffffff;
    return static_cast<uint32_t>(load_le(std::span<uint8_t const>(m_config).subspan(offset, size)));
}

void PciDevice::store_locked(uint16_t offset, size_t size, uint32_t value)
{
    if (!range_within(offset, size, m_size) || size > 4)
        return;
    store_le(std::span<uint8_t>(m_config).subspan(offset, size), value);
}

uint32_t PciDevice::config_load(uint16_t offset, size_t size) const
{
    std::lock_guard lock(m_lock);
    return load_locked(offset, size);
}

void PciDevice::config_store(uint16_t offset, size_t size, uint32_t value)
{
    std::lock_guard lock(m_lock);
    store_locked(offset, size, value);
}

void PciDevice::set_write_mask(uint16_t offset, size_t size, uint32_t mask)
{
    std::lock_guard lock(m_lock);
    if (range_within(offset, size, m_size) && size <= 4)
        store_le(std::span<uint8_t>(m_wmask).subspan(offset, size), mask);
}

void PciDevice::set_w1c_mask(uint16_t offset, size_t size, uint32_t mask)
{
    std::lock_guard lock(m_lock);
    if (range_within(offset, size, m_size) && size <= 4)
        store_le(std::span<uint8_t>(m_w1c).subspan(offset, size), mask);
}

void PciDevice::config_read(uint16_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    std::lock_guard lock(m_lock);
    if (!valid_access(offset, data.size(), m_size)) {
        // Reads past a conventional device's 256 bytes through ECAM are normal (Linux probes 0x100).
        if (offset < m_size || data.size() > 4) {
            ++m_bad_accesses;
            HAKO_WARN_RATELIMITED("pci {}: bad config read at {:#x} size {}", name(), offset, data.size());
        }
        return;
    }
    std::copy_n(m_config.begin() + offset, data.size(), data.begin());
}

void PciDevice::config_write(uint16_t offset, std::span<uint8_t const> data)
{
    {
        std::lock_guard lock(m_lock);
        if (!valid_access(offset, data.size(), m_size)) {
            if (offset < m_size || data.size() > 4) {
                ++m_bad_accesses;
                HAKO_WARN_RATELIMITED("pci {}: bad config write at {:#x} size {}", name(), offset, data.size());
            }
            return;
        }
        for (size_t i = 0; i < data.size(); ++i) {
            size_t const at = offset + i;
            uint8_t const wm = m_wmask[at];
            uint8_t value = static_cast<uint8_t>((m_config[at] & ~wm) | (data[i] & wm));
            value = static_cast<uint8_t>(value & ~(data[i] & m_w1c[at]));
            m_config[at] = value;
        }
        update_intx_locked();
        update_mappings_locked();
    }
    config_written(offset, data.size());
}

void PciDevice::config_written(uint16_t, size_t) { }

void PciDevice::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    HAKO_DEBUG("pci {}: unhandled read of BAR {} at {:#x}", name(), bar, offset);
}

void PciDevice::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    HAKO_DEBUG("pci {}: unhandled write of {} bytes to BAR {} at {:#x}", name(), data.size(), bar, offset);
}

Result<void> PciDevice::add_bar(int bar, BarKind kind, uint64_t size, Prefetchable prefetchable)
{
    if (bar < 0 || bar >= NUM_BARS || (kind == BarKind::Mem64 && bar == NUM_BARS - 1))
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: no BAR {} for this kind", name(), bar));
    if (kind != BarKind::Io && kind != BarKind::Mem32 && kind != BarKind::Mem64)
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: BAR {} needs an IO or memory kind", name(), bar));
    uint64_t const min = kind == BarKind::Io ? 4 : 16;
    uint64_t const max = kind == BarKind::Io ? IO_SPACE_END : kind == BarKind::Mem32 ? (uint64_t { 1 } << 31) : (uint64_t { 1 } << 63);
    if (!is_power_of_two(size) || size < min || size > max)
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: bad size {:#x} for BAR {}", name(), size, bar));
    std::lock_guard lock(m_lock);
    auto taken = [&](int i) {
        auto const& b = m_bars[static_cast<size_t>(i)];
        return b.kind != BarKind::Unused || b.upper_half;
    };
    if (taken(bar) || (kind == BarKind::Mem64 && taken(bar + 1)))
        return Error(ErrorKind::Busy, fmt::format("pci {}: BAR {} is already declared", name(), bar));
    uint16_t const reg = bar_offset(bar);
    uint64_t const addr_mask = ~(size - 1);
    uint32_t const prefetch = prefetchable == Prefetchable::Yes ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0;
    switch (kind) {
    case BarKind::Io:
        store_locked(reg, 4, PCI_BASE_ADDRESS_SPACE_IO);
        store_le(std::span<uint8_t>(m_wmask).subspan(reg, 4), addr_mask & 0xfffffffc);
        break;
    case BarKind::Mem32:
        store_locked(reg, 4, prefetch);
        store_le(std::span<uint8_t>(m_wmask).subspan(reg, 4), addr_mask & 0xfffffff0);
        break;
    default: // Mem64
        store_locked(reg, 4, PCI_BASE_ADDRESS_MEM_TYPE_64 | prefetch);
        store_le(std::span<uint8_t>(m_wmask).subspan(reg, 4), addr_mask & 0xfffffff0);
        store_le(std::span<uint8_t>(m_wmask).subspan(reg + 4u, 4), addr_mask >> 32);
        break;
    }
    m_bars[static_cast<size_t>(bar)] = Bar { kind, size, false, 0, false };
    if (kind == BarKind::Mem64)
        m_bars[static_cast<size_t>(bar + 1)].upper_half = true;
    return ok();
}

Result<void> PciDevice::add_rom_bar(uint64_t size)
{
    if (!is_power_of_two(size) || size < 2 * KiB || size > 16 * MiB)
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: bad ROM size {:#x}", name(), size));
    std::lock_guard lock(m_lock);
    if (m_bars[ROM_BAR].kind != BarKind::Unused)
        return Error(ErrorKind::Busy, fmt::format("pci {}: ROM BAR is already declared", name()));
    store_locked(PCI_ROM_ADDRESS, 4, 0);
    store_le(std::span<uint8_t>(m_wmask).subspan(PCI_ROM_ADDRESS, 4), (~(size - 1) & ROM_ADDRESS_MASK) | PCI_ROM_ADDRESS_ENABLE);
    m_bars[ROM_BAR] = Bar { BarKind::Rom, size, false, 0, false };
    return ok();
}

Result<uint8_t> PciDevice::add_capability(uint8_t id, std::span<uint8_t const> body, std::span<uint8_t const> write_mask)
{
    if (!write_mask.empty() && write_mask.size() != body.size())
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: capability {:#x} mask size", name(), id));
    std::lock_guard lock(m_lock);
    uint64_t const at = align_up(m_next_free, 4);
    if (!range_within(at, 2 + body.size(), PCI_CONFIG_SPACE_SIZE))
        return Error(ErrorKind::OutOfRange, fmt::format("pci {}: no room for capability {:#x}", name(), id));
    auto const offset = static_cast<uint8_t>(at);
    m_config[at] = id;
    m_config[at + 1] = 0;
    std::copy(body.begin(), body.end(), m_config.begin() + static_cast<std::ptrdiff_t>(at + 2));
    if (!write_mask.empty())
        std::copy(write_mask.begin(), write_mask.end(), m_wmask.begin() + static_cast<std::ptrdiff_t>(at + 2));
    if (m_last_cap == 0)
        m_config[PCI_CAPABILITY_LIST] = offset;
    else
        m_config[m_last_cap + 1u] = offset;
    m_last_cap = offset;
    m_next_free = static_cast<uint16_t>(at + 2 + body.size());
    store_locked(PCI_STATUS, 2, load_locked(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    return offset;
}

uint64_t PciDevice::bar_address_locked(int bar) const
{
    if (bar < 0 || bar > ROM_BAR)
        return 0;
    Bar const& b = m_bars[static_cast<size_t>(bar)];
    uint16_t const reg = bar_offset(bar);
    uint32_t const low = load_locked(reg, 4);
    switch (b.kind) {
    case BarKind::Io:
        return low & 0xfffffffc;
    case BarKind::Mem32:
        return low & 0xfffffff0;
    case BarKind::Mem64:
        return (static_cast<uint64_t>(load_locked(static_cast<uint16_t>(reg + 4), 4)) << 32) | (low & 0xfffffff0);
    case BarKind::Rom:
        return low & ROM_ADDRESS_MASK;
    case BarKind::Unused:
        break;
    }
    return 0;
}

PciDevice::Placement PciDevice::wanted_placement_locked(int bar) const
{
    Bar const& b = m_bars[static_cast<size_t>(bar)];
    if (b.kind == BarKind::Unused)
        return {};
    auto const command = load_locked(PCI_COMMAND, 2);
    bool const is_io = b.kind == BarKind::Io;
    if (!(command & (is_io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)))
        return {};
    uint16_t const reg = bar_offset(bar);
    uint32_t const low = load_locked(reg, 4);
    auto const wm_low = static_cast<uint32_t>(load_le(std::span<uint8_t const>(m_wmask).subspan(reg, 4)));
    if (b.kind == BarKind::Rom) {
        if (!(low & PCI_ROM_ADDRESS_ENABLE))
            return {};
        uint32_t const addr_bits = wm_low & ROM_ADDRESS_MASK;
        if ((low & addr_bits) == addr_bits)
            return {}; // sizing
    } else if (wm_low != 0 && (low & wm_low) == wm_low) {
        return {}; // the all-ones sizing state
    }
    if (b.kind == BarKind::Mem64) {
        auto const hi_reg = static_cast<uint16_t>(reg + 4);
        auto const wm_high = static_cast<uint32_t>(load_le(std::span<uint8_t const>(m_wmask).subspan(hi_reg, 4)));
        if (wm_high != 0 && (load_locked(hi_reg, 4) & wm_high) == wm_high)
            return {};
    }
    uint64_t const addr = bar_address_locked(bar);
    auto const end = checked_add(addr, b.size);
    if (addr == 0 || !end)
        return {};
    if (is_io && *end > IO_SPACE_END)
        return {};
    if ((b.kind == BarKind::Mem32 || b.kind == BarKind::Rom) && *end > MEM32_SPACE_END)
        return {};
    return { true, addr };
}

void PciDevice::update_mappings_locked()
{
    if (!m_mapper)
        return;
    for (int i = 0; i <= ROM_BAR; ++i) {
        Bar& b = m_bars[static_cast<size_t>(i)];
        if (b.kind == BarKind::Unused)
            continue;
        bool const is_io = b.kind == BarKind::Io;
        auto const want = wanted_placement_locked(i);
        if (b.mapped && (!want.valid || want.addr != b.mapped_addr)) {
            m_mapper->unmap_bar(*this, i, is_io, b.mapped_addr, b.size);
            b.mapped = false;
        }
        if (!b.mapped && want.valid) {
            m_mapper->map_bar(*this, i, is_io, want.addr, b.size);
            b.mapped = true;
            b.mapped_addr = want.addr;
        }
    }
}

void PciDevice::save_power_on_state()
{
    std::lock_guard lock(m_lock);
    m_power_on = m_config;
    m_power_on_saved = true;
}

void PciDevice::reset()
{
    {
        std::lock_guard lock(m_lock);
        if (m_power_on_saved)
            m_config = m_power_on;
        m_intx_level = false;
        update_mappings_locked();
        update_intx_locked();
    }
    reset_device();
}

void PciDevice::set_bar_mapper(std::shared_ptr<BarMapper> mapper)
{
    std::lock_guard lock(m_lock);
    if (m_mapper) {
        for (int i = 0; i <= ROM_BAR; ++i) {
            Bar& b = m_bars[static_cast<size_t>(i)];
            if (b.mapped)
                m_mapper->unmap_bar(*this, i, b.kind == BarKind::Io, b.mapped_addr, b.size);
            b.mapped = false;
        }
    }
    m_mapper = std::move(mapper);
    update_mappings_locked();
}

void PciDevice::update_intx_locked()
{
    bool const want = m_intx_level && !(load_locked(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);
    if (want == m_intx_line_level)
        return;
    m_intx_line_level = want;
    if (m_intx_line)
        m_intx_line->set_level(want);
}

void PciDevice::set_intx_line(std::shared_ptr<bus::IrqLine> line)
{
    std::lock_guard lock(m_lock);
    if (m_intx_line && m_intx_line_level)
        m_intx_line->set_level(false);
    m_intx_line = std::move(line);
    m_intx_line_level = false;
    update_intx_locked();
}

void PciDevice::set_intx(bool asserted)
{
    std::lock_guard lock(m_lock);
    m_intx_level = asserted;
    uint32_t status = load_locked(PCI_STATUS, 2);
    status = asserted ? (status | PCI_STATUS_INTERRUPT) : (status & ~uint32_t { PCI_STATUS_INTERRUPT });
    store_locked(PCI_STATUS, 2, status);
    update_intx_locked();
}

uint64_t PciDevice::bar_address(int bar) const
{
    std::lock_guard lock(m_lock);
    return bar_address_locked(bar);
}

uint64_t PciDevice::bar_size(int bar) const
{
    if (bar < 0 || bar > ROM_BAR)
        return 0;
    std::lock_guard lock(m_lock);
    auto const& b = m_bars[static_cast<size_t>(bar)];
    return b.kind == BarKind::Unused ? 0 : b.size;
}

BarKind PciDevice::bar_kind(int bar) const
{
    if (bar < 0 || bar > ROM_BAR)
        return BarKind::Unused;
    std::lock_guard lock(m_lock);
    return m_bars[static_cast<size_t>(bar)].kind;
}

uint8_t PciDevice::interrupt_pin() const { return static_cast<uint8_t>(config_load(PCI_INTERRUPT_PIN, 1)); }

uint64_t PciDevice::bad_access_count() const
{
    std::lock_guard lock(m_lock);
    return m_bad_accesses;
}

} // namespace hako::devices::pci
