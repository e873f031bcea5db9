// Fuzzes the std VGA: its legacy ports, the 0xA0000 window, the DISPI registers, BAR 0 and the MMIO BAR, then the
// renderer over whatever mode the input left (every register, offset and resolution is guest-controlled).
// The input is a sequence of 5-byte records (op, a, b, c, d):
//   op % 8: 0 port write 0x3C0 + a % 32 = b, 1 port read, 2 window write at (a | b << 8 | (c & 1) << 16) = d,
//   3 window read, 4 DISPI write register a % 16 = b | c << 8, 5 DISPI read / index write, 6 MMIO BAR access,
//   7 framebuffer BAR access at a 24-bit offset (writes near the end cross it). A render runs at the end when the
//   input asked for one (a record with op 5 and d == 0xff).
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "devices/display/std_vga.h"
#include "devices/display/vga.h"

using namespace hako::devices::display;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    // One VGA for the whole run (16 MiB of video memory), reset per input.
    static std::shared_ptr<Vga> vga = [] {
        auto v = Vga::create(PowerOnMode::Text80x25);
        if (!v)
            std::abort();
        return std::shared_ptr<Vga>(std::move(*v));
    }();
    static std::shared_ptr<StdVga> pci = [] {
        auto p = StdVga::create(vga, {});
        if (!p)
            std::abort();
        return std::move(*p);
    }();
    vga->reset();
    VgaPorts ports(vga);
    VgaWindow window(vga);
    DispiPorts dispi(vga);
    bool render = false;
    for (size_t i = 0; i + 5 <= size; i += 5) {
        uint8_t const op = data[i] % 8, a = data[i + 1], b = data[i + 2], c = data[i + 3], d = data[i + 4];
        uint8_t buf[4] = { b, c, d, a };
        size_t const len = size_t { 1 } << (d % 3);
        switch (op) {
        case 0:
            ports.write(a % 32, std::span<uint8_t const>(buf, len));
            break;
        case 1:
            ports.read(a % 32, std::span<uint8_t>(buf, len));
            break;
        case 2:
            window.write(a | uint32_t { b } << 8 | uint32_t { c & 1u } << 16, std::span<uint8_t const>(&buf[2], 1));
            break;
        case 3:
            window.read(a | uint32_t { b } << 8 | uint32_t { c & 1u } << 16, std::span<uint8_t>(buf, len));
            break;
        case 4:
            vga->dispi_write(a % 16, static_cast<uint16_t>(b | c << 8));
            break;
        case 5:
            if (d == 0xff)
                render = true;
            else if (a & 1)
                dispi.write(0, std::span<uint8_t const>(&buf[0], 2));
            else
                dispi.read(1, std::span<uint8_t>(buf, 2));
            break;
        case 6:
            if (d & 1)
                pci->bar_write(STDVGA_MMIO_BAR, uint64_t { a } << 4 | (b & 0xf), std::span<uint8_t const>(buf, len));
            else
                pci->bar_read(STDVGA_MMIO_BAR, uint64_t { a } << 4 | (b & 0xf), std::span<uint8_t>(buf, len));
            break;
        case 7: {
            uint64_t const offset = uint64_t { a } << 16 | uint64_t { b } << 8 | c;
            if (d & 1)
                pci->bar_write(STDVGA_FB_BAR, offset, std::span<uint8_t const>(buf, 4));
            else
                pci->bar_read(STDVGA_FB_BAR, offset, std::span<uint8_t>(buf, 4));
            break;
        }
        }
    }
    if (render) {
        Image img = vga->render();
        if (img.pixels.size() != size_t { img.width } * img.height || img.width > 4096 || img.height > 4096)
            std::abort();
    }
    return 0;
}
