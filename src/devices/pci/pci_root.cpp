#include "devices/pci/pci_root.h"

#include <algorithm>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/pci/intx_router.h"

namespace hako::devices::pci {

namespace {
size_t function_index(uint8_t slot, uint8_t function) { return static_cast<size_t>(slot) * PCI_FUNCTIONS + function; }

/// Forwards to another device with a constant added to the offset (CONFIG_DATA's range of PciConfigIo).
class OffsetWindow final : public bus::Device {
public:
    OffsetWindow(std::shared_ptr<bus::Device> inner, uint64_t add) : m_inner(std::move(inner)), m_add(add) { }
    std::string_view name() const override { return m_inner->name(); }
    void read(uint64_t offset, std::span<uint8_t> data) override { m_inner->read(offset + m_add, data); }
    void write(uint64_t offset, std::span<uint8_t const> data) override { m_inner->write(offset + m_add, data); }

private:
    std::shared_ptr<bus::Device> m_inner;
    uint64_t m_add;
};
} // namespace

void PciRoot::attach_locked(PciDevice& device, uint8_t slot)
{
    if (m_router) {
        if (auto line = m_router->line_for(slot, device.interrupt_pin()))
            device.set_intx_line(std::move(line));
    }
    if (m_mapper)
        device.set_bar_mapper(m_mapper);
}

void PciRoot::reset_all()
{
    std::array<std::shared_ptr<PciDevice>, PCI_SLOTS * PCI_FUNCTIONS> devices;
    {
        std::lock_guard lock(m_lock);
        devices = m_functions;
    }
    for (auto const& d : devices)
        if (d)
            d->reset();
}

void PciRoot::remove_all()
{
    std::array<std::shared_ptr<PciDevice>, PCI_SLOTS * PCI_FUNCTIONS> taken;
    {
        std::lock_guard lock(m_lock);
        taken.swap(m_functions);
    }
    // Destroyed here, outside m_lock: a device's destructor unmaps its BARs through the mapper.
}

Result<uint8_t> PciRoot::add_device(std::shared_ptr<PciDevice> device, std::optional<uint8_t> slot)
{
    if (!device)
        return Error(ErrorKind::InvalidArgument, "No PCI device given");
    std::lock_guard lock(m_lock);
    if (!slot) {
        for (uint8_t s = 0; s < PCI_SLOTS && !slot; ++s) {
            if (!m_functions[function_index(s, 0)])
                slot = s;
        }
        if (!slot)
            return Error(ErrorKind::Busy, fmt::format("No free PCI slot for {}", device->name()));
    }
    if (*slot >= PCI_SLOTS)
        return Error(ErrorKind::OutOfRange, fmt::format("PCI slot {} for {} is out of range", *slot, device->name()));
    auto& entry = m_functions[function_index(*slot, 0)];
    if (entry)
        return Error(ErrorKind::Busy, fmt::format("PCI slot {} for {} is taken by {}", *slot, device->name(), entry->name()));
    attach_locked(*device, *slot);
    device->save_power_on_state();
    entry = std::move(device);
    return *slot;
}

Result<void> PciRoot::add_function(std::shared_ptr<PciDevice> device, uint8_t slot, uint8_t function)
{
    if (!device)
        return Error(ErrorKind::InvalidArgument, "No PCI device given");
    if (slot >= PCI_SLOTS || function == 0 || function >= PCI_FUNCTIONS)
        return Error(ErrorKind::OutOfRange, fmt::format("PCI {:02x}.{} for {} is out of range", slot, function, device->name()));
    std::lock_guard lock(m_lock);
    auto& entry = m_functions[function_index(slot, function)];
    if (entry)
        return Error(ErrorKind::Busy, fmt::format("PCI {:02x}.{} for {} is taken by {}", slot, function, device->name(), entry->name()));
    attach_locked(*device, slot);
    device->save_power_on_state();
    entry = std::move(device);
    return ok();
}

void PciRoot::set_intx_router(std::shared_ptr<IntxRouter> router)
{
    std::lock_guard lock(m_lock);
    m_router = std::move(router);
    if (!m_router)
        return;
    for (size_t i = 0; i < m_functions.size(); ++i) {
        auto const& dev = m_functions[i];
        if (!dev)
            continue;
        if (auto line = m_router->line_for(static_cast<uint8_t>(i / PCI_FUNCTIONS), dev->interrupt_pin()))
            dev->set_intx_line(std::move(line));
    }
}

std::shared_ptr<PciDevice> PciRoot::device_at(uint8_t slot, uint8_t function) const
{
    if (slot >= PCI_SLOTS || function >= PCI_FUNCTIONS)
        return nullptr;
    std::lock_guard lock(m_lock);
    return m_functions[function_index(slot, function)];
}

void PciRoot::config_read(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, std::span<uint8_t> data) const
{
    auto dev = bus == 0 ? device_at(device, function) : nullptr;
    if (!dev) {
        std::fill(data.begin(), data.end(), uint8_t { 0xff });
        return;
    }
    dev->config_read(offset, data);
}

void PciRoot::config_write(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, std::span<uint8_t const> data)
{
    auto dev = bus == 0 ? device_at(device, function) : nullptr;
    if (dev)
        dev->config_write(offset, data);
}

// --- Configuration mechanism #1 ---

namespace {

/// CONFIG_DATA (offsets 4-7 from 0xCF8): byte, word or dword accesses that stay inside the dword.
bool is_data_port_access(uint64_t offset, size_t size)
{
    return offset >= 4 && offset < 8 && (size == 1 || size == 2 || size == 4) && offset - 4 + size <= 4;
}

struct ConfigTarget {
    uint8_t bus, device, function;
    uint16_t reg;
};

/// The function and register a CONFIG_DATA access at `offset` reaches through CONFIG_ADDRESS.
ConfigTarget decode_config_address(uint32_t address, uint64_t offset)
{
    return { static_cast<uint8_t>(address >> 16), static_cast<uint8_t>((address >> 11) & 0x1f),
        static_cast<uint8_t>((address >> 8) & 0x7), static_cast<uint16_t>((address & 0xfc) + (offset - 4)) };
}

} // namespace

void PciConfigIo::read(uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    uint32_t address;
    {
        std::lock_guard lock(m_lock);
        if (offset == 0 && data.size() == 4) {
            store_le(data, m_address);
            return;
        }
        bool const data_port = is_data_port_access(offset, data.size());
        if (!data_port) {
            // Byte/word accesses at 0xCF8 are how Linux probes for mechanism #2: open bus, not an error.
            if (offset != 0) {
                ++m_bad_accesses;
                HAKO_WARN_RATELIMITED("pci-config-io: bad read at {:#x} size {}", 0xcf8 + offset, data.size());
            }
            return;
        }
        address = m_address;
    }
    if (!(address & CONFIG_ADDRESS_ENABLE))
        return;
    auto const t = decode_config_address(address, offset);
    m_root->config_read(t.bus, t.device, t.function, t.reg, data);
}

void PciConfigIo::write(uint64_t offset, std::span<uint8_t const> data)
{
    uint32_t address;
    {
        std::lock_guard lock(m_lock);
        if (offset == 0 && data.size() == 4) {
            // Bits 30:24 are reserved (read as 0), bits 1:0 select type 0 and read as 0.
            m_address = static_cast<uint32_t>(load_le(data)) & 0x80fffffc;
            return;
        }
        bool const data_port = is_data_port_access(offset, data.size());
        if (!data_port) {
            if (offset != 0) {
                ++m_bad_accesses;
                HAKO_WARN_RATELIMITED("pci-config-io: bad write at {:#x} size {}", 0xcf8 + offset, data.size());
            }
            return;
        }
        address = m_address;
    }
    if (!(address & CONFIG_ADDRESS_ENABLE))
        return;
    auto const t = decode_config_address(address, offset);
    m_root->config_write(t.bus, t.device, t.function, t.reg, data);
}

uint64_t PciConfigIo::bad_access_count() const
{
    std::lock_guard lock(m_lock);
    return m_bad_accesses;
}

Result<void> register_config_io(bus::Bus& pio, std::shared_ptr<PciConfigIo> io)
{
    if (!io)
        return Error(ErrorKind::InvalidArgument, "No PCI config I/O device given");
    TRY(pio.insert(PciConfigIo::PORT_CONFIG_ADDRESS, 1, io));
    auto data = std::make_shared<OffsetWindow>(io, PciConfigIo::PORT_CONFIG_DATA - PciConfigIo::PORT_CONFIG_ADDRESS);
    if (auto r = pio.insert(PciConfigIo::PORT_CONFIG_DATA, 4, std::move(data)); !r) {
        pio.remove(PciConfigIo::PORT_CONFIG_ADDRESS);
        return std::move(r).error();
    }
    return ok();
}

// --- ECAM ---

bool PciConfigMmio::decode(uint64_t offset, size_t size, uint8_t& bus, uint8_t& dev, uint8_t& fn, uint16_t& reg)
{
    bool const good = (size == 1 || size == 2 || size == 4) && (offset & 3) + size <= 4 && offset < window_size();
    if (!good) {
        m_bad_accesses.fetch_add(1, std::memory_order_relaxed);
        HAKO_WARN_RATELIMITED("pci-ecam: bad access at {:#x} size {}", offset, size);
        return false;
    }
    bus = static_cast<uint8_t>(offset >> 20);
    dev = static_cast<uint8_t>((offset >> 15) & 0x1f);
    fn = static_cast<uint8_t>((offset >> 12) & 0x7);
    reg = static_cast<uint16_t>(offset & 0xfff);
    return true;
}

void PciConfigMmio::read(uint64_t offset, std::span<uint8_t> data)
{
    uint8_t bus, dev, fn;
    uint16_t reg;
    if (!decode(offset, data.size(), bus, dev, fn, reg)) {
        std::fill(data.begin(), data.end(), uint8_t { 0xff });
        return;
    }
    m_root->config_read(bus, dev, fn, reg, data);
}

void PciConfigMmio::write(uint64_t offset, std::span<uint8_t const> data)
{
    uint8_t bus, dev, fn;
    uint16_t reg;
    if (decode(offset, data.size(), bus, dev, fn, reg))
        m_root->config_write(bus, dev, fn, reg, data);
}

} // namespace hako::devices::pci
