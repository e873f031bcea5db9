#include "devices/pci/bar_mapper.h"

#include <algorithm>
#include <string>

#include "base/log.h"

namespace hako::devices::pci {

namespace {
/// One mapped BAR on a bus: forwards (offset) to the device's bar_read/bar_write(bar, offset).
class BarWindow final : public bus::Device {
public:
    BarWindow(std::weak_ptr<PciDevice> device, int bar, std::string name)
        : m_device(std::move(device)), m_bar(bar), m_name(std::move(name))
    {
    }
    std::string_view name() const override { return m_name; }
    void read(uint64_t offset, std::span<uint8_t> data) override
    {
        if (auto dev = m_device.lock())
            dev->bar_read(m_bar, offset, data);
        else
            std::fill(data.begin(), data.end(), uint8_t { 0xff });
    }
    void write(uint64_t offset, std::span<uint8_t const> data) override
    {
        if (auto dev = m_device.lock())
            dev->bar_write(m_bar, offset, data);
    }

private:
    std::weak_ptr<PciDevice> m_device;
    int m_bar;
    std::string m_name;
};
} // namespace

void BusBarMapper::map_bar(PciDevice& device, int bar, bool is_io, uint64_t addr, uint64_t size)
{
    std::lock_guard lock(m_lock);
    Key const key { &device, bar };
    if (auto it = m_mapped.find(key); it != m_mapped.end()) {
        (it->second.is_io ? m_pio : m_mmio).remove(it->second.addr);
        m_mapped.erase(it);
    }
    auto weak = device.weak_from_this();
    if (weak.expired()) {
        m_failed.fetch_add(1, std::memory_order_relaxed);
        HAKO_WARN_RATELIMITED("pci {}: BAR {} not mapped: the device is not owned by a shared_ptr", device.name(), bar);
        return;
    }
    auto window = std::make_shared<BarWindow>(std::move(weak), bar, fmt::format("{}-bar{}", device.name(), bar));
    auto& target = is_io ? m_pio : m_mmio;
    if (auto r = target.insert(addr, size, std::move(window)); !r) {
        m_failed.fetch_add(1, std::memory_order_relaxed);
        HAKO_WARN_RATELIMITED("pci {}: BAR {} not mapped at {:#x}: {}", device.name(), bar, addr, r.error().message());
        return;
    }
    m_mapped.emplace(key, Mapping { is_io, addr });
}

void BusBarMapper::unmap_bar(PciDevice& device, int bar, bool, uint64_t, uint64_t)
{
    std::lock_guard lock(m_lock);
    auto it = m_mapped.find(Key { &device, bar });
    if (it == m_mapped.end())
        return; // never made it onto the bus
    (it->second.is_io ? m_pio : m_mmio).remove(it->second.addr);
    m_mapped.erase(it);
}

size_t BusBarMapper::mapped_count() const
{
    std::lock_guard lock(m_lock);
    return m_mapped.size();
}

} // namespace hako::devices::pci
