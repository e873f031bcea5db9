#include "devices/ide/piix3_ide.h"

#include "base/log.h"
#include "bus/device.h"

namespace hako::devices::ide {

namespace {
constexpr uint32_t CLASS_IDE = 0x010180; // IDE, bus master, both channels compatibility mode (fixed)
constexpr uint16_t SIDETIM = 0x44;

pci::PciIdentity piix3_ide_identity()
{
    pci::PciIdentity id;
    id.vendor_id = Piix3Ide::VENDOR_ID;
    id.device_id = Piix3Ide::DEVICE_ID;
    id.class_code = CLASS_IDE;
    return id;
}

class CommandPorts final : public bus::Device {
public:
    explicit CommandPorts(std::shared_ptr<IdeChannel> channel) : m_channel(std::move(channel)) { }
    std::string_view name() const override { return "ide-command"; }
    void read(uint64_t offset, std::span<uint8_t> data) override { m_channel->command_read(offset, data); }
    void write(uint64_t offset, std::span<uint8_t const> data) override { m_channel->command_write(offset, data); }

private:
    std::shared_ptr<IdeChannel> m_channel;
};

class ControlPort final : public bus::Device {
public:
    explicit ControlPort(std::shared_ptr<IdeChannel> channel) : m_channel(std::move(channel)) { }
    std::string_view name() const override { return "ide-control"; }
    void read(uint64_t, std::span<uint8_t> data) override
    {
        uint8_t const status = m_channel->alt_status();
        for (auto& b : data)
            b = status;
    }
    void write(uint64_t, std::span<uint8_t const> data) override
    {
        if (!data.empty())
            m_channel->device_control(data[0]);
    }

private:
    std::shared_ptr<IdeChannel> m_channel;
};
} // namespace

Result<std::shared_ptr<Piix3Ide>> Piix3Ide::create(
    memory::GuestMemory const& mem, std::array<std::shared_ptr<bus::IrqLine>, 2> irqs)
{
    auto dev = std::make_shared<Piix3Ide>(mem, std::move(irqs));
    TRY(dev->add_bar(BM_BAR, pci::BarKind::Io, 2 * BM_CHANNEL_SIZE));
    std::weak_ptr<Piix3Ide> weak = dev;
    for (auto& ch : dev->m_channels)
        ch->set_bus_master_enabled([weak] {
            auto d = weak.lock();
            return d && (d->config_load(pci::PCI_COMMAND, 2) & pci::PCI_COMMAND_MASTER);
        });
    return dev;
}

Piix3Ide::Piix3Ide(memory::GuestMemory const& mem, std::array<std::shared_ptr<bus::IrqLine>, 2> irqs)
    : PciDevice(piix3_ide_identity())
{
    for (size_t i = 0; i < 2; ++i)
        m_channels[i] = std::make_shared<IdeChannel>(mem, std::move(irqs[i]));
    set_write_mask(IDETIM, 4, 0xffffffff); // IDETIM primary, secondary
    set_write_mask(SIDETIM, 1, 0xff);
}

void Piix3Ide::enable_decode()
{
    constexpr uint16_t IDE_DECODE_ENABLE = 0x8000;
    config_store(IDETIM, 2, IDE_DECODE_ENABLE);
    config_store(IDETIM + 2, 2, IDE_DECODE_ENABLE);
}

void Piix3Ide::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    if (bar != BM_BAR || offset >= 2 * BM_CHANNEL_SIZE) {
        std::fill(data.begin(), data.end(), 0xff);
        return;
    }
    m_channels[offset / BM_CHANNEL_SIZE]->bus_master_read(offset % BM_CHANNEL_SIZE, data);
}

void Piix3Ide::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    if (bar != BM_BAR || offset >= 2 * BM_CHANNEL_SIZE)
        return;
    m_channels[offset / BM_CHANNEL_SIZE]->bus_master_write(offset % BM_CHANNEL_SIZE, data);
}

void Piix3Ide::reset_device()
{
    for (auto& ch : m_channels)
        ch->reset();
}

std::shared_ptr<bus::Device> make_command_ports(std::shared_ptr<IdeChannel> channel)
{
    return std::make_shared<CommandPorts>(std::move(channel));
}

std::shared_ptr<bus::Device> make_control_port(std::shared_ptr<IdeChannel> channel)
{
    return std::make_shared<ControlPort>(std::move(channel));
}

} // namespace hako::devices::ide
