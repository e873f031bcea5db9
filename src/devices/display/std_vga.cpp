#include "devices/display/std_vga.h"

#include <algorithm>
#include <bit>

#include "base/bytes.h"
#include "base/log.h"

namespace hako::devices::display {

namespace {

pci::PciIdentity stdvga_identity()
{
    pci::PciIdentity id;
    id.vendor_id = STDVGA_VENDOR_ID;
    id.device_id = STDVGA_DEVICE_ID;
    id.class_code = PCI_CLASS_DISPLAY_VGA;
    id.revision = 2; // with the MMIO BAR and QEMU's extension registers
    id.subsystem_vendor_id = 0x1af4;
    id.subsystem_id = 0x1100;
    return id;
}

} // namespace

StdVga::StdVga(std::shared_ptr<Vga> vga, std::vector<uint8_t> option_rom)
    : PciDevice(stdvga_identity()), m_vga(std::move(vga)), m_rom(std::move(option_rom))
{
}

Result<std::shared_ptr<StdVga>> StdVga::create(std::shared_ptr<Vga> vga, std::vector<uint8_t> option_rom)
{
    std::shared_ptr<StdVga> dev(new StdVga(std::move(vga), std::move(option_rom)));
    TRY(dev->add_bar(STDVGA_FB_BAR, pci::BarKind::Mem32, Vga::VRAM_SIZE, pci::Prefetchable::Yes));
    TRY(dev->add_bar(STDVGA_MMIO_BAR, pci::BarKind::Mem32, STDVGA_MMIO_SIZE));
    if (!dev->m_rom.empty())
        TRY(dev->add_rom_bar(std::bit_ceil(std::max<uint64_t>(2048, dev->m_rom.size()))));
    return dev;
}

memory::GuestMemory const* StdVga::bar_memory(int bar) const
{
    return bar == STDVGA_FB_BAR ? &m_vga->vram() : nullptr;
}

void StdVga::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (bar == pci::ROM_BAR) {
        for (size_t i = 0; i < data.size() && offset + i < m_rom.size(); ++i)
            data[i] = m_rom[offset + i];
    } else if (bar == STDVGA_FB_BAR) {
        // Only without a KVM slot: the framebuffer byte by byte.
        if (auto r = m_vga->vram().read(memory::GuestAddr(offset), data); !r)
            std::fill(data.begin(), data.end(), uint8_t { 0xff });
    } else if (bar == STDVGA_MMIO_BAR) {
        mmio_read(offset, data);
    }
}

void StdVga::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    if (bar == STDVGA_FB_BAR) {
        if (auto r = m_vga->vram().write(memory::GuestAddr(offset), data); !r)
            HAKO_WARN_RATELIMITED("std-vga: framebuffer write at {:#x} outside video memory", offset);
    } else if (bar == STDVGA_MMIO_BAR) {
        mmio_write(offset, data);
    }
}

void StdVga::mmio_read(uint64_t offset, std::span<uint8_t> data)
{
    size_t const n = data.size();
    if (offset < STDVGA_MMIO_VGA_PORTS) {
        std::fill(data.begin(), data.end(), uint8_t { 0 }); // no EDID
    } else if (offset < STDVGA_MMIO_VGA_PORTS + VGA_PORT_COUNT) {
        for (size_t i = 0; i < n; ++i) {
            uint64_t const o = offset - STDVGA_MMIO_VGA_PORTS + i;
            data[i] = o < VGA_PORT_COUNT ? m_vga->port_read(static_cast<uint16_t>(VGA_PORT_BASE + o)) : 0xff;
        }
    } else if (offset >= STDVGA_MMIO_DISPI && offset < STDVGA_MMIO_DISPI + VBE_DISPI_INDEX_NB * 2 && n == 2
               && offset % 2 == 0) {
        store_le(data, m_vga->dispi_read(static_cast<uint16_t>((offset - STDVGA_MMIO_DISPI) / 2)));
    } else if (offset == STDVGA_MMIO_QEXT && n == 4) {
        store_le(data, STDVGA_QEXT_SIZE);
    } else if (offset == STDVGA_MMIO_QEXT + 4 && n == 4) {
        store_le(data, STDVGA_QEXT_LITTLE_ENDIAN);
    }
}

void StdVga::mmio_write(uint64_t offset, std::span<uint8_t const> data)
{
    size_t const n = data.size();
    if (offset >= STDVGA_MMIO_VGA_PORTS && offset < STDVGA_MMIO_VGA_PORTS + VGA_PORT_COUNT) {
        for (size_t i = 0; i < n; ++i) {
            uint64_t const o = offset - STDVGA_MMIO_VGA_PORTS + i;
            if (o < VGA_PORT_COUNT)
                m_vga->port_write(static_cast<uint16_t>(VGA_PORT_BASE + o), data[i]);
        }
    } else if (offset >= STDVGA_MMIO_DISPI && offset < STDVGA_MMIO_DISPI + VBE_DISPI_INDEX_NB * 2 && n == 2
               && offset % 2 == 0) {
        m_vga->dispi_write(static_cast<uint16_t>((offset - STDVGA_MMIO_DISPI) / 2), static_cast<uint16_t>(load_le(data)));
    } else {
        HAKO_WARN_RATELIMITED("std-vga: MMIO write of {} bytes at {:#x} ignored", n, offset);
    }
}

void VgaPorts::read(uint64_t offset, std::span<uint8_t> data)
{
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < VGA_PORT_COUNT ? m_vga->port_read(static_cast<uint16_t>(VGA_PORT_BASE + offset + i)) : 0xff;
}

void VgaPorts::write(uint64_t offset, std::span<uint8_t const> data)
{
    for (size_t i = 0; i < data.size(); ++i)
        if (offset + i < VGA_PORT_COUNT)
            m_vga->port_write(static_cast<uint16_t>(VGA_PORT_BASE + offset + i), data[i]);
}

void VgaWindow::read(uint64_t offset, std::span<uint8_t> data)
{
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < Vga::WINDOW_SIZE ? m_vga->window_read(static_cast<uint32_t>(offset + i)) : 0xff;
}

void VgaWindow::write(uint64_t offset, std::span<uint8_t const> data)
{
    for (size_t i = 0; i < data.size(); ++i)
        if (offset + i < Vga::WINDOW_SIZE)
            m_vga->window_write(static_cast<uint32_t>(offset + i), data[i]);
}

void DispiPorts::read(uint64_t offset, std::span<uint8_t> data)
{
    uint16_t const v = offset == 0 ? m_vga->dispi_index() : m_vga->dispi_read(m_vga->dispi_index());
    store_le(data, v);
}

void DispiPorts::write(uint64_t offset, std::span<uint8_t const> data)
{
    auto const v = static_cast<uint16_t>(load_le(data));
    if (offset == 0)
        m_vga->set_dispi_index(v);
    else
        m_vga->dispi_write(m_vga->dispi_index(), v);
}

} // namespace hako::devices::display
