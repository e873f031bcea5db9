// Helpers shared by the PCI unit tests: a configurable test function, a recording BarMapper, fake IRQ lines.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "bus/irq_line.h"
#include "devices/pci/msi.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::pci::test {

class TestDevice : public PciDevice {
public:
    explicit TestDevice(PciIdentity const& id = default_identity(), ConfigSpaceSize size = ConfigSpaceSize::Conventional)
        : PciDevice(id, size)
    {
    }
    static PciIdentity default_identity()
    {
        PciIdentity id;
        id.vendor_id = 0x1af4;
        id.device_id = 0x1000;
        id.class_code = 0x020000;
        id.revision = 1;
        id.subsystem_vendor_id = 0x1af4;
        id.subsystem_id = 0x0001;
        id.interrupt_pin = 1;
        return id;
    }
    std::string_view name() const override { return "test-dev"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override
    {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = static_cast<uint8_t>(static_cast<uint64_t>(bar) * 0x10 + offset + i);
    }
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override
    {
        writes.push_back({ bar, offset, load_le(data) });
    }
    void config_written(uint16_t offset, size_t size) override { written.push_back({ offset, size }); }

    struct Write {
        int bar;
        uint64_t offset;
        uint64_t value;
    };
    std::vector<Write> writes;
    std::vector<std::pair<uint16_t, size_t>> written;
};

struct MapEvent {
    bool map;
    int bar;
    bool is_io;
    uint64_t addr;
    uint64_t size;
    bool operator==(MapEvent const&) const = default;
};

class RecordingMapper final : public BarMapper {
public:
    void map_bar(PciDevice&, int bar, bool is_io, uint64_t addr, uint64_t size) override
    {
        events.push_back({ true, bar, is_io, addr, size });
    }
    void unmap_bar(PciDevice&, int bar, bool is_io, uint64_t addr, uint64_t size) override
    {
        events.push_back({ false, bar, is_io, addr, size });
    }
    std::vector<MapEvent> events;
};

class FakeIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        if (asserted != level)
            ++changes;
        level = asserted;
    }
    bool level { false };
    int changes { 0 };
};

class RecordingSink final : public MsiSink {
public:
    void deliver(uint64_t address, uint32_t data) override { messages.emplace_back(address, data); }
    std::vector<std::pair<uint64_t, uint32_t>> messages;
};

inline uint32_t cfg_read(PciDevice& dev, uint16_t offset, size_t size)
{
    uint8_t buf[4] {};
    dev.config_read(offset, std::span<uint8_t>(buf, size));
    return static_cast<uint32_t>(load_le(std::span<uint8_t const>(buf, size)));
}

inline void cfg_write(PciDevice& dev, uint16_t offset, size_t size, uint32_t value)
{
    uint8_t buf[4] {};
    store_le(std::span<uint8_t>(buf, size), value);
    dev.config_write(offset, std::span<uint8_t const>(buf, size));
}

} // namespace hako::devices::pci::test
