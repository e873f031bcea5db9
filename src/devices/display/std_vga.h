// StdVga: the Bochs/QEMU "std VGA" PCI function (1234:1111, class 0x0300), what SeaBIOS's VGA BIOS
// (vgabios-stdvga.bin) and Linux's bochs-drm drive. The VGA itself is Vga (vga.h); this file is its PCI face and
// the legacy decoders.
//
// BAR 0: the linear framebuffer, 16 MiB, 32-bit prefetchable memory. It is backed by the Vga's video memory and
// offered to the BarMapper as RAM (bar_memory()): hako's KVM mapper maps it as a KVM memory slot, so guest writes
// to the framebuffer never exit. Through a plain bus mapping (unit tests, or if KVM refuses the slot) it still works
// byte by byte through bar_read/bar_write.
// BAR 2: QEMU's MMIO register page (4 KiB): EDID at 0x000 (none: reads 0), the VGA ports 0x3C0-0x3DF at 0x400,
// the DISPI registers at 0x500 (16-bit, index * 2), QEMU's extension registers at 0x600 (size 8, little endian).
// Expansion ROM: the VGA BIOS image given (SeaBIOS copies it to 0xC0000 and runs it first).
// Legacy decoders, always on like on a PC's primary VGA (not gated by the PCI command register): VgaPorts over
// 0x3C0-0x3DF, VgaWindow over 0xA0000-0xBFFFF, DispiPorts over 0x1CE-0x1D0.
// Not modelled: an EDID blob, the bochs-display (no VGA) variant, BAR 0 as a 64-bit BAR.
#pragma once

#include <memory>
#include <vector>

#include "bus/device.h"
#include "devices/display/vga.h"
#include "devices/pci/pci_device.h"

namespace hako::devices::display {

constexpr uint16_t STDVGA_VENDOR_ID = 0x1234;
constexpr uint16_t STDVGA_DEVICE_ID = 0x1111;
constexpr uint32_t PCI_CLASS_DISPLAY_VGA = 0x030000;
constexpr int STDVGA_FB_BAR = 0;
constexpr int STDVGA_MMIO_BAR = 2;

class StdVga final : public pci::PciDevice {
public:
    /// \param vga the VGA core (shared with the legacy decoders)  \param option_rom the VGA BIOS, or empty
    [[nodiscard]] static Result<std::shared_ptr<StdVga>> create(std::shared_ptr<Vga> vga, std::vector<uint8_t> option_rom);

    std::string_view name() const override { return "std-vga"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;
    memory::GuestMemory const* bar_memory(int bar) const override;

    Vga& vga() { return *m_vga; }

protected:
    void reset_device() override { m_vga->reset(); }

private:
    StdVga(std::shared_ptr<Vga> vga, std::vector<uint8_t> option_rom);
    void mmio_read(uint64_t offset, std::span<uint8_t> data);
    void mmio_write(uint64_t offset, std::span<uint8_t const> data);

    std::shared_ptr<Vga> m_vga;
    std::vector<uint8_t> m_rom;
};

/// Ports 0x3C0-0x3DF (offset 0 = 0x3C0); wider accesses are consecutive byte accesses (outw index, data).
class VgaPorts final : public bus::Device {
public:
    explicit VgaPorts(std::shared_ptr<Vga> vga) : m_vga(std::move(vga)) { }
    std::string_view name() const override { return "vga-ports"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    std::shared_ptr<Vga> m_vga;
};

/// The 0xA0000-0xBFFFF window (offset 0 = 0xA0000), byte by byte.
class VgaWindow final : public bus::Device {
public:
    explicit VgaWindow(std::shared_ptr<Vga> vga) : m_vga(std::move(vga)) { }
    std::string_view name() const override { return "vga-window"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    std::shared_ptr<Vga> m_vga;
};

/// Bochs VBE DISPI ports: offset 0 (0x1CE) the index, offset 1 (0x1CF, and 0x1D0 as old Bochs BIOSes use it) the
/// data register, both 16 bits wide.
class DispiPorts final : public bus::Device {
public:
    explicit DispiPorts(std::shared_ptr<Vga> vga) : m_vga(std::move(vga)) { }
    std::string_view name() const override { return "vbe-dispi"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    std::shared_ptr<Vga> m_vga;
};

} // namespace hako::devices::display
