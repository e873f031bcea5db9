// Fuzzes what a VNC client controls: key events (any 32-bit keysym, down/up, either scan code set) through the
// keymap, pointer events (any 16-bit position, any button mask) through the PS/2 mouse encoder, and frames of
// changing sizes and contents through the dirty-tile tracker. The input is a sequence of 8-byte records:
//   op % 3 == 0: key      bytes 1-4 keysym, byte 5 bit 0 down, bit 1 set 2
//   op % 3 == 1: pointer  bytes 1-2 x, 3-4 y, 5 buttons
//   op % 3 == 2: frame    byte 1 width (0-63), 2 height (0-63), 3-4 pixel index, 5 value (changes one pixel)
// Checked: key events give at most 8 bytes, none for unmapped keysyms, set 1 break codes have bit 7; mouse output
// is whole packets with bit 3 set, at most MAX_PACKETS of them; the tiles reported cover every changed pixel and
// lie inside the frame. Output is also fed to an i8042, whose queues must stay bounded.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "devices/legacy/i8042.h"
#include "fuzz_fakes.h"
#include "ui/dirty_tiles.h"
#include "ui/keymap.h"
#include "ui/ps2_mouse.h"

using namespace hako;

namespace {

uint32_t le32(uint8_t const* p)
{
    return uint32_t { p[0] } | uint32_t { p[1] } << 8 | uint32_t { p[2] } << 16 | uint32_t { p[3] } << 24;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::CountingSystem sys;
    devices::legacy::I8042 ctl(sys, std::make_shared<fuzz::StrictIrqLine>(), std::make_shared<fuzz::StrictIrqLine>());
    ctl.write_data(0xf4); // keyboard: scanning (already on); mouse: enable streaming through 0xD4
    ctl.write_command(0xd4);
    ctl.write_data(0xf4);
    ui::Ps2MouseEncoder mouse;
    ui::DirtyTiles tiles;
    devices::display::Image frame;
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint8_t const* r = data + i;
        switch (r[0] % 3) {
        case 0: {
            uint32_t const keysym = le32(r + 1);
            bool const down = r[5] & 1;
            auto const set = (r[5] & 2) ? ui::ScancodeSet::Set2 : ui::ScancodeSet::Set1;
            auto const bytes = ui::encode_key(keysym, down, set);
            if (bytes.size > 8 || (!ui::key_for_keysym(keysym) && bytes.size != 0))
                std::abort();
            if (set == ui::ScancodeSet::Set1 && !down && bytes.size > 0 && !(bytes.bytes[bytes.size - 1] & 0x80))
                std::abort();
            if (bytes.size <= ctl.keyboard_room())
                ctl.push_keyboard_bytes(bytes.span());
            break;
        }
        case 1: {
            int const x = r[1] | r[2] << 8;
            int const y = r[3] | r[4] << 8;
            auto const packets = mouse.pointer(x, y, r[5]);
            if (packets.size() % 3 != 0 || packets.size() > 3 * ui::Ps2MouseEncoder::MAX_PACKETS)
                std::abort();
            for (size_t p = 0; p < packets.size(); p += 3)
                if (!(packets[p] & ui::Ps2MouseEncoder::ALWAYS_ONE))
                    std::abort();
            if (packets.size() <= ctl.mouse_room())
                ctl.push_mouse_bytes(packets);
            break;
        }
        case 2: {
            uint32_t const w = r[1] % 64, h = r[2] % 64;
            if (w != frame.width || h != frame.height)
                frame = devices::display::Image(w, h);
            auto const previous = tiles.current();
            if (!frame.pixels.empty())
                frame.pixels[(size_t { r[3] } | size_t { r[4] } << 8) % frame.pixels.size()] = r[5];
            auto const changes = tiles.update(frame);
            for (auto const& rect : changes.rects)
                if (rect.width == 0 || rect.height == 0 || rect.x + rect.width > w || rect.y + rect.height > h)
                    std::abort();
            if (!changes.resized && previous.width == w && previous.height == h) {
                for (uint32_t y = 0; y < h; ++y)
                    for (uint32_t x = 0; x < w; ++x) {
                        if (previous.at(x, y) == frame.at(x, y))
                            continue;
                        bool covered = false;
                        for (auto const& rect : changes.rects)
                            covered |= x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height;
                        if (!covered)
                            std::abort();
                    }
            }
            break;
        }
        }
        if (ctl.queued() > 3 * devices::legacy::I8042::QUEUE_LIMIT)
            std::abort();
        while (ctl.read_status() & devices::legacy::I8042::STATUS_OBF && (r[6] & 1))
            (void)ctl.read_data();
    }
    return 0;
}
