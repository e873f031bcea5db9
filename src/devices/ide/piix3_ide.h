// Piix3Ide: function 1 of the Intel 82371SB PIIX3, the PCI IDE controller (8086:7010, class 0x010180: mass
// storage, IDE, both channels in compatibility mode and not switchable, bus master capable), as SeaBIOS and Linux's
// ata_piix drive it. Two IdeChannels on the legacy ports (primary 0x1F0-0x1F7 + 0x3F6 on IRQ 14, secondary
// 0x170-0x177 + 0x376 on IRQ 15: IdeCommandPorts and IdeControlPort, always decoded as in QEMU) and the bus master
// registers in BAR 4 (16 bytes of I/O: primary at 0-7, secondary at 8-15; 82371SB datasheet 2.4, SFF-8038i).
// Configuration registers kept writable: IDETIM primary/secondary (0x40-0x43, bit 15 "IDE decode enable", which
// ata_piix checks to see a channel is on; hako decodes the ports whatever it says) and SIDETIM (0x44).
// DMA needs the PCI command register's bus master enable, as on the real part.
// Deliberately not modelled: PCI native mode, the timing registers' effect, the interrupt pin (legacy IRQs only).
#pragma once

#include <array>
#include <memory>

#include "devices/ide/ide_channel.h"
#include "devices/pci/pci_device.h"

namespace hako::bus {
class Device;
}

namespace hako::devices::ide {

constexpr uint16_t PRIMARY_COMMAND_PORT = 0x1f0;
constexpr uint16_t PRIMARY_CONTROL_PORT = 0x3f6;
constexpr uint16_t SECONDARY_COMMAND_PORT = 0x170;
constexpr uint16_t SECONDARY_CONTROL_PORT = 0x376;
constexpr uint8_t PRIMARY_IRQ = 14;
constexpr uint8_t SECONDARY_IRQ = 15;

class Piix3Ide final : public pci::PciDevice {
public:
    static constexpr uint16_t VENDOR_ID = 0x8086;
    static constexpr uint16_t DEVICE_ID = 0x7010;
    static constexpr int BM_BAR = 4;
    static constexpr uint16_t IDETIM = 0x40;
    static constexpr uint8_t FUNCTION = 1;

    /// \param irqs the primary and secondary channels' interrupt lines
    [[nodiscard]] static Result<std::shared_ptr<Piix3Ide>> create(
        memory::GuestMemory const& mem, std::array<std::shared_ptr<bus::IrqLine>, 2> irqs);
    Piix3Ide(memory::GuestMemory const& mem, std::array<std::shared_ptr<bus::IrqLine>, 2> irqs);

    std::string_view name() const override { return "piix3-ide"; }
    IdeChannel& channel(unsigned index) { return *m_channels[index & 1]; }
    std::shared_ptr<IdeChannel> channel_ptr(unsigned index) { return m_channels[index & 1]; }

    /// Sets IDE decode enable for both channels in IDETIM, as a BIOS does (for direct boot, where there is none).
    void enable_decode();

    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;

protected:
    void reset_device() override;

private:
    std::array<std::shared_ptr<IdeChannel>, 2> m_channels;
};

/// The 8 command block ports of a channel on the PIO bus.
std::shared_ptr<bus::Device> make_command_ports(std::shared_ptr<IdeChannel> channel);
/// The channel's control block register (alternate status / device control), one port.
std::shared_ptr<bus::Device> make_control_port(std::shared_ptr<IdeChannel> channel);

} // namespace hako::devices::ide
