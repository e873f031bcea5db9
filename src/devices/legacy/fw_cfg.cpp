#include "devices/legacy/fw_cfg.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::legacy {

using memory::GuestAddr;

namespace {

constexpr uint16_t KEY_MASK = static_cast<uint16_t>(~FW_CFG_WRITE_CHANNEL); // the write-channel bit is ignored
constexpr size_t MAX_FILES = FW_CFG_WRITE_CHANNEL - FW_CFG_FILE_FIRST;

uint64_t load_be(std::span<uint8_t const> data)
{
    uint64_t v = 0;
    for (uint8_t b : data)
        v = (v << 8) | b;
    return v;
}

void store_be(uint8_t* p, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; ++i)
        p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
}

} // namespace

FwCfg::FwCfg(memory::GuestMemory const& mem) : m_mem(mem)
{
    m_items[FW_CFG_SIGNATURE] = { 'Q', 'E', 'M', 'U' };
    std::vector<uint8_t> id(4);
    put_le32(id.data(), FW_CFG_VERSION_TRADITIONAL | FW_CFG_VERSION_DMA);
    m_items[FW_CFG_ID] = std::move(id);
    rebuild_directory();
}

void FwCfg::add_item(uint16_t key, std::vector<uint8_t> data)
{
    key &= KEY_MASK;
    if (key >= FW_CFG_FILE_FIRST && key < FW_CFG_ARCH_LOCAL) {
        HAKO_WARN("fw_cfg: key {:#x} is in the file range; use add_file", key);
        return;
    }
    std::lock_guard lock(m_mutex);
    m_items[key] = std::move(data);
}

void FwCfg::add_u16(uint16_t key, uint16_t v)
{
    std::vector<uint8_t> d(2);
    put_le16(d.data(), v);
    add_item(key, std::move(d));
}

void FwCfg::add_u32(uint16_t key, uint32_t v)
{
    std::vector<uint8_t> d(4);
    put_le32(d.data(), v);
    add_item(key, std::move(d));
}

void FwCfg::add_u64(uint16_t key, uint64_t v)
{
    std::vector<uint8_t> d(8);
    put_le64(d.data(), v);
    add_item(key, std::move(d));
}

Result<void> FwCfg::add_file(std::string const& name, std::vector<uint8_t> data)
{
    if (name.empty() || name.size() >= FW_CFG_MAX_FILE_NAME || name.find('\0') != std::string::npos)
        return Error(ErrorKind::InvalidArgument, fmt::format("fw_cfg: bad file name '{}' (1-55 characters)", name));
    if (data.size() > UINT32_MAX)
        return Error(ErrorKind::OutOfRange, fmt::format("fw_cfg: file '{}' is larger than 4 GiB", name));
    std::lock_guard lock(m_mutex);
    if (m_files.size() >= MAX_FILES)
        return Error(ErrorKind::OutOfRange, "fw_cfg: too many files");
    auto it = std::lower_bound(m_files.begin(), m_files.end(), name,
        [](auto const& f, std::string const& n) { return f.first < n; });
    if (it != m_files.end() && it->first == name)
        return Error(ErrorKind::InvalidArgument, fmt::format("fw_cfg: file '{}' already exists", name));
    m_files.insert(it, { name, std::move(data) });
    rebuild_directory();
    return ok();
}

std::optional<uint16_t> FwCfg::file_selector(std::string const& name) const
{
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < m_files.size(); ++i) {
        if (m_files[i].first == name)
            return static_cast<uint16_t>(FW_CFG_FILE_FIRST + i);
    }
    return std::nullopt;
}

uint64_t FwCfg::bad_access_count() const
{
    std::lock_guard lock(m_mutex);
    return m_bad_accesses;
}

void FwCfg::rebuild_directory()
{
    // be32 count, then per file {be32 size, be16 select, be16 reserved, char name[56]}, sorted by name.
    std::vector<uint8_t> dir(4 + m_files.size() * FW_CFG_FILE_DIR_ENTRY_SIZE, 0);
    store_be(dir.data(), 4, m_files.size());
    for (size_t i = 0; i < m_files.size(); ++i) {
        uint8_t* e = dir.data() + 4 + i * FW_CFG_FILE_DIR_ENTRY_SIZE;
        store_be(e, 4, m_files[i].second.size());
        store_be(e + 4, 2, FW_CFG_FILE_FIRST + i);
        std::memcpy(e + 8, m_files[i].first.data(), m_files[i].first.size());
    }
    m_items[FW_CFG_FILE_DIR] = std::move(dir);
}

std::vector<uint8_t> const* FwCfg::lookup(uint16_t key) const
{
    if (key >= FW_CFG_FILE_FIRST && key < FW_CFG_ARCH_LOCAL) {
        size_t index = key - FW_CFG_FILE_FIRST;
        return index < m_files.size() ? &m_files[index].second : nullptr;
    }
    auto it = m_items.find(key);
    return it == m_items.end() ? nullptr : &it->second;
}

void FwCfg::select(uint16_t key)
{
    m_selected = key & KEY_MASK;
    m_offset = 0;
    if (m_selected < FW_CFG_FILE_FIRST || m_selected >= FW_CFG_ARCH_LOCAL || m_refresh.empty())
        return;
    size_t const index = m_selected - FW_CFG_FILE_FIRST;
    if (index >= m_files.size())
        return;
    auto& [name, data] = m_files[index];
    auto it = m_refresh.find(name);
    if (it == m_refresh.end())
        return;
    auto fresh = it->second();
    if (fresh.size() != data.size()) {
        HAKO_WARN_RATELIMITED("fw_cfg: {} rebuilt with {} bytes instead of {}: kept as it was", name, fresh.size(),
            data.size());
        return;
    }
    data = std::move(fresh);
}

Result<void> FwCfg::set_file_refresh(std::string const& name, std::function<std::vector<uint8_t>()> refresh)
{
    std::lock_guard lock(m_mutex);
    bool const exists = std::any_of(m_files.begin(), m_files.end(), [&](auto const& f) { return f.first == name; });
    if (!exists)
        return Error(ErrorKind::InvalidArgument, fmt::format("fw_cfg: no file {}", name));
    m_refresh[name] = std::move(refresh);
    return ok();
}

void FwCfg::bad_access(std::string_view what, uint64_t offset, size_t size)
{
    ++m_bad_accesses;
    HAKO_WARN_RATELIMITED("fw_cfg: {} (port offset {:#x}, {} bytes)", what, offset, size);
}

void FwCfg::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    if (offset == FW_CFG_PORT_DATA) {
        auto const* item = lookup(m_selected);
        for (auto& b : data) {
            if (item && m_offset < item->size())
                b = (*item)[m_offset++];
            else
                b = 0;
        }
        return;
    }
    if (offset >= FW_CFG_PORT_DMA && range_within(offset, data.size(), FW_CFG_PORT_COUNT)) {
        uint8_t sig[8];
        store_be(sig, 8, FW_CFG_DMA_SIGNATURE);
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = sig[offset - FW_CFG_PORT_DMA + i];
        return;
    }
    std::fill(data.begin(), data.end(), 0xff);
}

void FwCfg::write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_mutex);
    if (offset == FW_CFG_PORT_SELECTOR && data.size() == 2) {
        select(static_cast<uint16_t>(load_le(data)));
        return;
    }
    if (offset == FW_CFG_PORT_DMA && data.size() == 4) {
        m_dma_addr = load_be(data) << 32;
        return;
    }
    if (offset == FW_CFG_PORT_DMA + 4 && data.size() == 4) {
        uint64_t addr = m_dma_addr | load_be(data);
        m_dma_addr = 0;
        dma_transfer(addr);
        return;
    }
    if (offset == FW_CFG_PORT_DMA && data.size() == 8) {
        m_dma_addr = 0;
        dma_transfer(load_be(data));
        return;
    }
    bad_access(offset == FW_CFG_PORT_DATA ? "write to the read-only data port" : "unsupported write", offset, data.size());
}

bool FwCfg::is_ram(uint64_t addr, uint64_t len) const
{
    auto end = checked_add(addr, len);
    if (!end)
        return false;
    for (auto const& r : m_mem.regions()) {
        if (r.kind == memory::RegionKind::Ram && addr >= r.base.value() && range_within(addr - r.base.value(), len, r.size))
            return true;
    }
    return false;
}

void FwCfg::dma_transfer(uint64_t access_addr)
{
    uint8_t access[FW_CFG_DMA_ACCESS_SIZE];
    if (!is_ram(access_addr, sizeof(access)) || !m_mem.read(GuestAddr(access_addr), access)) {
        bad_access(fmt::format("DMA access structure at {:#x} is outside guest RAM", access_addr), FW_CFG_PORT_DMA, 8);
        return;
    }
    auto control = static_cast<uint32_t>(load_be(std::span(access, 4)));
    auto length = static_cast<uint32_t>(load_be(std::span(access + 4, 4)));
    uint64_t address = load_be(std::span(access + 8, 8));

    if (control & FW_CFG_DMA_CTL_SELECT)
        select(static_cast<uint16_t>(control >> 16));
    bool ok = true;
    if (control & FW_CFG_DMA_CTL_READ) {
        ok = dma_data(FW_CFG_DMA_CTL_READ, length, address);
    } else if (control & FW_CFG_DMA_CTL_WRITE) {
        bad_access(fmt::format("DMA write to item {:#x} refused (items are read-only)", m_selected), FW_CFG_PORT_DMA, 8);
        ok = false;
    } else if (control & FW_CFG_DMA_CTL_SKIP) {
        ok = dma_data(FW_CFG_DMA_CTL_SKIP, length, address);
    }

    uint8_t status[4];
    store_be(status, 4, ok ? 0 : FW_CFG_DMA_CTL_ERROR);
    // The access structure was checked to lie in RAM above; the guest cannot unmap it meanwhile.
    if (!m_mem.write(GuestAddr(access_addr), status))
        bad_access("DMA status write failed", FW_CFG_PORT_DMA, 8);
}

bool FwCfg::dma_data(uint32_t op, uint32_t length, uint64_t address)
{
    auto const* item = lookup(m_selected);
    bool read = op == FW_CFG_DMA_CTL_READ;
    uint64_t remaining = length;
    while (remaining > 0) {
        uint64_t chunk;
        if (!item || m_offset >= item->size()) {
            // Past the end (or no such item): reads are zero-filled, the position does not move.
            chunk = remaining;
            if (read) {
                if (!is_ram(address, chunk)) {
                    bad_access(fmt::format("DMA read into {:#x}+{:#x} is outside guest RAM", address, chunk), FW_CFG_PORT_DMA, 8);
                    return false;
                }
                auto span = m_mem.span(GuestAddr(address), chunk);
                if (!span)
                    return false;
                span->fill(0);
            }
        } else {
            chunk = std::min<uint64_t>(remaining, item->size() - m_offset);
            if (read) {
                std::span<uint8_t const> src(item->data() + m_offset, static_cast<size_t>(chunk));
                if (!is_ram(address, chunk) || !m_mem.write(GuestAddr(address), src)) {
                    bad_access(fmt::format("DMA read into {:#x}+{:#x} is outside guest RAM", address, chunk), FW_CFG_PORT_DMA, 8);
                    return false;
                }
            }
            m_offset += chunk;
        }
        remaining -= chunk;
        if (remaining > 0 && read) {
            auto next = checked_add(address, chunk);
            if (!next) {
                bad_access("DMA address wraps around", FW_CFG_PORT_DMA, 8);
                return false;
            }
            address = *next;
        }
    }
    return true;
}

} // namespace hako::devices::legacy
