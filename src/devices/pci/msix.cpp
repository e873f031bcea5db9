#include "devices/pci/msix.h"

#include <algorithm>
#include <array>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::pci {

Result<std::unique_ptr<MsixCapability>> MsixCapability::create(PciDevice& device, std::shared_ptr<MsiSink> sink,
                                                               Layout const& layout)
{
    auto fail = [&](std::string_view what) {
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: MSI-X: {}", device.name(), what));
    };
    if (!sink)
        return fail("no sink");
    if (layout.vectors == 0 || layout.vectors > MAX_VECTORS)
        return fail("bad vector count");
    if (layout.table_bar >= NUM_BARS || layout.pba_bar >= NUM_BARS || (layout.table_offset & 7) || (layout.pba_offset & 7))
        return fail("bad table or PBA placement");
    auto fits = [&](uint8_t bar, uint64_t offset, uint64_t bytes) {
        auto const kind = device.bar_kind(bar);
        return (kind == BarKind::Mem32 || kind == BarKind::Mem64) && range_within(offset, bytes, device.bar_size(bar));
    };
    uint64_t const tbytes = table_bytes(layout.vectors);
    uint64_t const pbytes = pba_bytes(layout.vectors);
    if (!fits(layout.table_bar, layout.table_offset, tbytes) || !fits(layout.pba_bar, layout.pba_offset, pbytes))
        return fail("table or PBA does not fit its BAR");
    if (layout.table_bar == layout.pba_bar && layout.table_offset < layout.pba_offset + pbytes
        && layout.pba_offset < layout.table_offset + tbytes)
        return fail("table and PBA overlap");
    std::array<uint8_t, 10> body {};
    std::array<uint8_t, 10> mask {};
    put_le16(&body[0], static_cast<uint16_t>(layout.vectors - 1));
    put_le32(&body[2], layout.table_offset | layout.table_bar);
    put_le32(&body[6], layout.pba_offset | layout.pba_bar);
    put_le16(&mask[0], PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE);
    auto const offset = TRY(device.add_capability(PCI_CAP_ID_MSIX, body, mask));
    return std::make_unique<MsixCapability>(device, std::move(sink), offset, layout);
}

MsixCapability::MsixCapability(PciDevice& device, std::shared_ptr<MsiSink> sink, uint8_t offset, Layout const& layout)
    : m_device(device)
    , m_sink(std::move(sink))
    , m_offset(offset)
    , m_layout(layout)
    , m_table(layout.vectors)
    , m_pba(pba_bytes(layout.vectors) / 8)
{
}

void MsixCapability::reset()
{
    std::lock_guard lock(m_lock);
    std::fill(m_table.begin(), m_table.end(), Entry {});
    std::fill(m_pba.begin(), m_pba.end(), uint64_t { 0 });
}

uint16_t MsixCapability::control() const
{
    return static_cast<uint16_t>(m_device.config_load(static_cast<uint16_t>(m_offset + PCI_MSIX_FLAGS), 2));
}

bool MsixCapability::enabled() const { return control() & PCI_MSIX_FLAGS_ENABLE; }
bool MsixCapability::function_masked() const { return control() & PCI_MSIX_FLAGS_MASKALL; }

bool MsixCapability::vector_masked(uint16_t vector) const
{
    std::lock_guard lock(m_lock);
    return vector >= m_table.size() || (m_table[vector].control & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

bool MsixCapability::pending(uint16_t vector) const
{
    std::lock_guard lock(m_lock);
    return pending_locked(vector);
}

uint64_t MsixCapability::bad_access_count() const
{
    std::lock_guard lock(m_lock);
    return m_bad_accesses;
}

bool MsixCapability::pending_locked(uint16_t vector) const
{
    return vector < m_table.size() && ((m_pba[vector / 64] >> (vector % 64)) & 1);
}

void MsixCapability::set_pending_locked(uint16_t vector, bool pending)
{
    uint64_t const bit = uint64_t { 1 } << (vector % 64);
    m_pba[vector / 64] = pending ? (m_pba[vector / 64] | bit) : (m_pba[vector / 64] & ~bit);
}

MsixCapability::Region MsixCapability::region_of(int bar, uint64_t offset, size_t size, uint64_t& rel) const
{
    (void)size;
    if (bar == m_layout.table_bar && offset >= m_layout.table_offset && offset - m_layout.table_offset < table_bytes(m_layout.vectors)) {
        rel = offset - m_layout.table_offset;
        return Region::Table;
    }
    if (bar == m_layout.pba_bar && offset >= m_layout.pba_offset && offset - m_layout.pba_offset < pba_bytes(m_layout.vectors)) {
        rel = offset - m_layout.pba_offset;
        return Region::Pba;
    }
    return Region::None;
}

bool MsixCapability::good_access(uint64_t rel, size_t size)
{
    if ((size == 4 && rel % 4 == 0) || (size == 8 && rel % 8 == 0))
        return true;
    ++m_bad_accesses;
    HAKO_WARN_RATELIMITED("pci {}: MSI-X access of {} bytes at table/PBA offset {:#x} ignored", m_device.name(), size, rel);
    return false;
}

uint32_t MsixCapability::entry_dword_locked(uint64_t rel) const
{
    Entry const& e = m_table[rel / PCI_MSIX_ENTRY_SIZE];
    switch (rel % PCI_MSIX_ENTRY_SIZE) {
    case PCI_MSIX_ENTRY_LOWER_ADDR:
        return e.address_lo;
    case PCI_MSIX_ENTRY_UPPER_ADDR:
        return e.address_hi;
    case PCI_MSIX_ENTRY_DATA:
        return e.data;
    default:
        return e.control;
    }
}

void MsixCapability::write_entry_dword_locked(uint64_t rel, uint32_t value)
{
    Entry& e = m_table[rel / PCI_MSIX_ENTRY_SIZE];
    switch (rel % PCI_MSIX_ENTRY_SIZE) {
    case PCI_MSIX_ENTRY_LOWER_ADDR:
        e.address_lo = value & 0xfffffffc; // bits 1:0 are reserved for dword alignment
        break;
    case PCI_MSIX_ENTRY_UPPER_ADDR:
        e.address_hi = value;
        break;
    case PCI_MSIX_ENTRY_DATA:
        e.data = value;
        break;
    default:
        e.control = value & PCI_MSIX_ENTRY_CTRL_MASKBIT;
        break;
    }
}

bool MsixCapability::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    uint64_t rel = 0;
    auto const region = region_of(bar, offset, data.size(), rel);
    if (region == Region::None)
        return false;
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    std::lock_guard lock(m_lock);
    if (!good_access(rel, data.size()))
        return true;
    if (region == Region::Table) {
        uint64_t value = entry_dword_locked(rel);
        if (data.size() == 8)
            value |= static_cast<uint64_t>(entry_dword_locked(rel + 4)) << 32;
        store_le(data, value);
    } else {
        uint64_t const word = m_pba[rel / 8];
        store_le(data, word >> (8 * (rel % 8)));
    }
    return true;
}

bool MsixCapability::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    uint64_t rel = 0;
    auto const region = region_of(bar, offset, data.size(), rel);
    if (region == Region::None)
        return false;
    std::lock_guard lock(m_lock);
    if (!good_access(rel, data.size()))
        return true;
    if (region == Region::Pba) {
        ++m_bad_accesses;
        HAKO_WARN_RATELIMITED("pci {}: write to the read-only MSI-X PBA ignored", m_device.name());
        return true;
    }
    uint64_t const value = load_le(data);
    write_entry_dword_locked(rel, static_cast<uint32_t>(value));
    if (data.size() == 8)
        write_entry_dword_locked(rel + 4, static_cast<uint32_t>(value >> 32));
    deliver_pending_locked();
    return true;
}

void MsixCapability::config_written(uint16_t offset, size_t size)
{
    size_t const flags = size_t { m_offset } + PCI_MSIX_FLAGS;
    if (offset + size <= flags || offset >= flags + 2)
        return;
    std::lock_guard lock(m_lock);
    deliver_pending_locked();
}

void MsixCapability::deliver_pending_locked()
{
    uint16_t const ctrl = control();
    if (!(ctrl & PCI_MSIX_FLAGS_ENABLE) || (ctrl & PCI_MSIX_FLAGS_MASKALL))
        return;
    for (size_t w = 0; w < m_pba.size(); ++w) {
        if (m_pba[w] == 0)
            continue;
        for (unsigned b = 0; b < 64; ++b) {
            auto const vector = static_cast<uint16_t>(w * 64 + b);
            if (!pending_locked(vector) || (m_table[vector].control & PCI_MSIX_ENTRY_CTRL_MASKBIT))
                continue;
            set_pending_locked(vector, false);
            Entry const& e = m_table[vector];
            m_sink->deliver((static_cast<uint64_t>(e.address_hi) << 32) | e.address_lo, e.data);
        }
    }
}

bool MsixCapability::notify(uint16_t vector)
{
    uint16_t const ctrl = control();
    if (!(ctrl & PCI_MSIX_FLAGS_ENABLE))
        return false;
    std::lock_guard lock(m_lock);
    if (vector >= m_table.size()) {
        ++m_bad_accesses;
        HAKO_WARN_RATELIMITED("pci {}: MSI-X vector {} does not exist", m_device.name(), vector);
        return true;
    }
    Entry const& e = m_table[vector];
    if ((ctrl & PCI_MSIX_FLAGS_MASKALL) || (e.control & PCI_MSIX_ENTRY_CTRL_MASKBIT)) {
        set_pending_locked(vector, true);
        return true;
    }
    m_sink->deliver((static_cast<uint64_t>(e.address_hi) << 32) | e.address_lo, e.data);
    return true;
}

} // namespace hako::devices::pci
