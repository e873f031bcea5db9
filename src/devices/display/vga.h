// Vga: the VGA core of hako's std VGA (vga_pci.h): the register file, video memory with its planar access paths,
// the Bochs VBE DISPI interface, and the renderer that turns the current mode into an Image.
//
// Registers (IBM VGA technical reference): attribute controller (0x3C0/0x3C1, index/data flip-flop reset by a read
// of input status 1), misc output (0x3C2 write, 0x3CC read; bit 0 selects the colour CRTC addresses 0x3D4/0x3DA,
// which are ignored while it is clear), input status 0 and 1 (vertical retrace and display enable toggle on every
// read so polling loops end), sequencer, DAC (pixel mask, read/write index, r/g/b data with auto-increment, 6-bit
// unless VBE's 8-bit DAC is on), graphics controller, CRT controller (registers 0-7 write-protected by CR11 bit 7).
// Video memory: 16 MiB. The legacy VGA planes are its first 256 KiB, interleaved: byte 4 * a + p is plane p at
// plane address a. The 0xA0000 window follows GR06's memory map and the access mode: chain 4 (SR04 bit 3), odd/even
// (SR04 bit 2 clear for writes, GR05 bit 4 for reads; plane address = offset / 2) or planar (latches, write modes
// 0-3 with set/reset, rotate, logical function and bit mask, read modes 0-1 with colour compare / don't care).
// Bochs VBE DISPI (index 0x1CE, data 0x1CF): ID (0xB0C0-0xB0C5), XRES, YRES, BPP (8, 15, 16, 24, 32), ENABLE
// (with GETCAPS, 8-bit DAC, LFB, no-clear), BANK (64 KiB banks at 0xA0000), virtual width/height, X/Y offset and
// the memory size; values are fixed up on every write so the visible area always lies inside video memory.
// Rendering: text modes (8 or 9 dot characters drawn with hako's font, font.h: 8x16 for character heights above 8,
// else 8x8; blink attribute; line-graphics 9th column; cursor), 16-colour planar graphics, 256-colour graphics
// (mode 13h; logical resolution, e.g. 320x200), VBE modes. A screenshot shows the blink phase in which blinking
// characters and the cursor are visible.
// Deliberately not modelled: the monochrome ports 0x3B4/0x3BA, fonts the guest loads into plane 2 (the host font is
// used), line compare (split screen), horizontal pixel panning, CGA-compatible shift mode (drawn as 16-colour
// planar), VBE 4 bpp, the light pen and feature connector.
//
// Thread safety: every public method takes m_lock; vCPU threads and the event loop call them concurrently. The
// linear framebuffer (vram()) is also written by the guest directly, without exits.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "base/result.h"
#include "devices/display/image.h"
#include "devices/display/vga_regs.h"
#include "memory/guest_memory.h"

namespace hako::devices::display {

/// What the VGA shows before anything programs it.
enum class PowerOnMode {
    Unprogrammed, // all registers zero (firmware boot: the VGA BIOS sets a mode)
    Text80x25,    // mode 3 as a BIOS leaves it (direct boot, where hako plays the firmware's part)
};

class Vga final {
public:
    static constexpr uint64_t VRAM_SIZE = 16ull << 20;
    static constexpr uint32_t PLANE_SIZE = 64 * 1024;
    static constexpr uint32_t WINDOW_SIZE = 0x20000; // 0xA0000-0xBFFFF

    /// Maps the video memory (anonymous, zeroed).
    [[nodiscard]] static Result<std::unique_ptr<Vga>> create(PowerOnMode mode);

    /// The video memory: one region at address 0 of VRAM_SIZE bytes (BAR 0 maps it as guest memory).
    memory::GuestMemory const& vram() const { return m_vram; }

    /// Legacy ports 0x3C0-0x3DF: one byte at `port`. Other ports read 0xFF.
    uint8_t port_read(uint16_t port);
    void port_write(uint16_t port, uint8_t value);
    /// The 0xA0000-0xBFFFF window: one byte at `offset` (< WINDOW_SIZE) from 0xA0000.
    uint8_t window_read(uint32_t offset);
    void window_write(uint32_t offset, uint8_t value);
    /// The DISPI index (port 0x1CE) and the register it selects (port 0x1CF).
    uint16_t dispi_index() const;
    void set_dispi_index(uint16_t index);
    uint16_t dispi_read(uint16_t index);
    void dispi_write(uint16_t index, uint16_t value);

    /// Back to the power-on state (registers, DAC, VBE off); video memory keeps its contents except that the
    /// Text80x25 power-on mode clears the text page.
    void reset();

    /// Draws what the monitor would show now.
    Image render() const;

    struct Stats {
        uint64_t bad_accesses; // writes to read-only or unknown registers, window accesses outside the map
    };
    Stats stats() const { return { m_bad.load(std::memory_order_relaxed) }; }

private:
    explicit Vga(memory::GuestMemory vram, PowerOnMode mode);
    void reset_locked();
    void set_text_mode_locked();
    uint8_t vram_at(size_t index) const { return index < m_bytes.size() ? m_bytes[index] : 0xff; }
    void vram_set(size_t index, uint8_t v) const
    {
        if (index < m_bytes.size())
            m_bytes[index] = v;
    }
    bool window_offset_locked(uint32_t offset, uint32_t& out) const;
    bool colour_ports_locked(uint16_t port) const;
    void vbe_fixup_locked();
    void vbe_enable_locked(uint16_t value);
    void bad(char const* what, uint32_t where, uint32_t value) const;

    // Renderer (vga_render.cpp), called with m_lock held.
    uint32_t dac_rgb_locked(uint8_t index) const;
    uint32_t attribute_rgb_locked(uint8_t index) const;
    Image render_text_locked() const;
    Image render_graphics_locked() const;
    Image render_vbe_locked() const;
    uint32_t vertical_display_lines_locked() const;

    memory::GuestMemory m_vram;
    std::span<uint8_t> m_bytes; // all of m_vram
    PowerOnMode const m_power_on;

    mutable std::mutex m_lock;
    uint8_t m_misc { 0 };
    uint8_t m_vga_enable { 0 };
    uint8_t m_feature { 0 };
    uint8_t m_seq_index { 0 };
    std::array<uint8_t, VGA_SEQ_COUNT> m_seq {};
    uint8_t m_gfx_index { 0 };
    std::array<uint8_t, VGA_GFX_COUNT> m_gfx {};
    uint8_t m_crt_index { 0 };
    std::array<uint8_t, VGA_CRT_COUNT> m_crt {};
    uint8_t m_att_index { 0 };  // includes the palette address source bit (0x20)
    bool m_att_flipflop { false }; // false: the next 0x3C0 write is an index
    std::array<uint8_t, VGA_ATT_COUNT> m_att {};
    uint8_t m_st01 { 0 };
    std::array<uint8_t, 4> m_latch {};
    // DAC: 256 entries of r, g, b.
    std::array<uint8_t, 256 * 3> m_dac {};
    uint8_t m_pel_mask { 0xff };
    uint16_t m_dac_read { 0 };  // entry * 3 + component
    uint16_t m_dac_write { 0 };
    uint8_t m_dac_state { 0 };  // 0x3C7 read: 0 after a write-index set, 3 after a read-index set
    // VBE DISPI.
    uint16_t m_dispi_index { 0 };
    std::array<uint16_t, VBE_DISPI_INDEX_NB> m_vbe {};
    bool m_vbe_getcaps { false };
    uint64_t m_vbe_line_offset { 0 }; // bytes per line of the virtual screen
    mutable std::atomic<uint64_t> m_bad { 0 };
};

} // namespace hako::devices::display
