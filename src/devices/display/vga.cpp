#include "devices/display/vga.h"

#include <algorithm>

#include "base/log.h"

namespace hako::devices::display {

namespace {

// Mode 3 (80x25 text, 9x16 characters, 720x400) as the IBM VGA BIOS programs it.
constexpr std::array<uint8_t, VGA_SEQ_COUNT> MODE3_SEQ { 0x03, 0x00, 0x03, 0x00, 0x02 };
constexpr std::array<uint8_t, VGA_CRT_COUNT> MODE3_CRT { 0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f,
    0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff };
constexpr std::array<uint8_t, VGA_GFX_COUNT> MODE3_GFX { 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff };
constexpr std::array<uint8_t, VGA_ATT_COUNT> MODE3_ATT { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
    0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00 };
constexpr uint8_t MODE3_MISC = 0x67;

constexpr uint32_t TEXT_COLUMNS = 80, TEXT_ROWS = 25;

uint8_t rotate_right(uint8_t v, unsigned n)
{
    n &= 7;
    return static_cast<uint8_t>((v >> n) | (v << ((8 - n) & 7)));
}

uint32_t expand_bits(uint8_t bits4) // bit p of bits4 -> 0xFF in byte p
{
    uint32_t out = 0;
    for (unsigned p = 0; p < 4; ++p)
        if (bits4 & (1u << p))
            out |= 0xffu << (8 * p);
    return out;
}

} // namespace

Result<std::unique_ptr<Vga>> Vga::create(PowerOnMode mode)
{
    auto vram = TRY(memory::GuestMemory::create({ { memory::GuestAddr(0), VRAM_SIZE, memory::RegionKind::Ram } }));
    return std::unique_ptr<Vga>(new Vga(std::move(vram), mode));
}

Vga::Vga(memory::GuestMemory vram, PowerOnMode mode) : m_vram(std::move(vram)), m_power_on(mode)
{
    // The span of the whole region was validated by the check span() does; it stays valid as long as m_vram.
    auto all = m_vram.span(memory::GuestAddr(0), VRAM_SIZE);
    if (all)
        m_bytes = all->bytes();
    std::lock_guard lock(m_lock);
    reset_locked();
}

void Vga::bad(char const* what, uint32_t where, uint32_t value) const
{
    m_bad.fetch_add(1, std::memory_order_relaxed);
    HAKO_WARN_RATELIMITED("vga: {} {:#x} (value {:#x}) ignored", what, where, value);
}

void Vga::reset()
{
    std::lock_guard lock(m_lock);
    reset_locked();
}

void Vga::reset_locked()
{
    m_misc = 0;
    m_vga_enable = 0;
    m_feature = 0;
    m_seq_index = m_gfx_index = m_crt_index = m_att_index = 0;
    m_seq.fill(0);
    m_gfx.fill(0);
    m_crt.fill(0);
    m_att.fill(0);
    m_att_flipflop = false;
    m_st01 = 0;
    m_latch.fill(0);
    m_dac.fill(0);
    m_pel_mask = 0xff;
    m_dac_read = m_dac_write = 0;
    m_dac_state = 0;
    m_dispi_index = 0;
    m_vbe.fill(0);
    m_vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
    m_vbe[VBE_DISPI_INDEX_BPP] = 8;
    m_vbe_getcaps = false;
    m_vbe_line_offset = 0;
    if (m_power_on == PowerOnMode::Text80x25)
        set_text_mode_locked();
}

void Vga::set_text_mode_locked()
{
    m_misc = MODE3_MISC;
    m_vga_enable = 1;
    m_seq = MODE3_SEQ;
    m_crt = MODE3_CRT;
    m_gfx = MODE3_GFX;
    m_att = MODE3_ATT;
    m_att_index = VGA_AR_ENABLE_DISPLAY;
    // The DAC's first 64 entries hold the EGA colours (index bits 5-0 = r g b R G B: 1/3 and 2/3 intensity).
    for (unsigned i = 0; i < 256; ++i) {
        auto level = [i](unsigned hi, unsigned lo) {
            return static_cast<uint8_t>(i < 64 ? ((i >> hi) & 1) * 0x2a + ((i >> lo) & 1) * 0x15 : 0);
        };
        m_dac[i * 3] = level(2, 5);
        m_dac[i * 3 + 1] = level(1, 4);
        m_dac[i * 3 + 2] = level(0, 3);
    }
    // An empty page: spaces, light grey on black (plane 0 characters, plane 1 attributes).
    for (uint32_t i = 0; i < TEXT_COLUMNS * TEXT_ROWS; ++i) {
        vram_set(size_t { i } * 4, ' ');
        vram_set(size_t { i } * 4 + 1, 0x07);
    }
}

// ---- Ports 0x3C0-0x3DF --------------------------------------------------------------------------------------------

bool Vga::colour_ports_locked(uint16_t port) const
{
    // The CRTC and input status 1 answer at 0x3Dx only while misc output selects colour addressing.
    bool const crt_port = port == VGA_CRT_IC || port == VGA_CRT_DC || port == VGA_IS1_RC;
    return !crt_port || (m_misc & 0x01);
}

uint8_t Vga::port_read(uint16_t port)
{
    std::lock_guard lock(m_lock);
    if (!colour_ports_locked(port))
        return 0xff;
    switch (port) {
    case VGA_ATT_W:
        return m_att_flipflop ? 0xff : m_att_index;
    case VGA_ATT_R: {
        uint8_t const i = m_att_index & 0x1f;
        return i < VGA_ATT_COUNT ? m_att[i] : 0xff;
    }
    case VGA_MIS_W:
        return 0x10; // input status 0: switch sense
    case VGA_ENABLE:
        return m_vga_enable;
    case VGA_SEQ_I:
        return m_seq_index;
    case VGA_SEQ_D:
        return m_seq_index < VGA_SEQ_COUNT ? m_seq[m_seq_index] : 0xff;
    case VGA_PEL_MSK:
        return m_pel_mask;
    case VGA_PEL_IR:
        return m_dac_state;
    case VGA_PEL_IW:
        return static_cast<uint8_t>(m_dac_write / 3);
    case VGA_PEL_D: {
        uint8_t const mask = (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC) ? 0xff : 0x3f;
        uint8_t const v = static_cast<uint8_t>(m_dac[m_dac_read] & mask);
        m_dac_read = static_cast<uint16_t>((m_dac_read + 1) % m_dac.size());
        return v;
    }
    case VGA_FTC_R:
        return m_feature;
    case VGA_MIS_R:
        return m_misc;
    case VGA_GFX_I:
        return m_gfx_index;
    case VGA_GFX_D:
        return m_gfx_index < VGA_GFX_COUNT ? m_gfx[m_gfx_index] : 0xff;
    case VGA_CRT_IC:
        return m_crt_index;
    case VGA_CRT_DC:
        return m_crt_index < VGA_CRT_COUNT ? m_crt[m_crt_index] : 0xff;
    case VGA_IS1_RC:
        // Alternate retrace and display enable on every read: polling loops see both states.
        m_st01 ^= VGA_ST01_V_RETRACE | VGA_ST01_DISP_ENABLE;
        m_att_flipflop = false;
        return m_st01;
    default:
        return 0xff;
    }
}

void Vga::port_write(uint16_t port, uint8_t value)
{
    std::lock_guard lock(m_lock);
    if (!colour_ports_locked(port))
        return;
    switch (port) {
    case VGA_ATT_W:
        if (!m_att_flipflop) {
            m_att_index = value & 0x3f;
        } else {
            uint8_t const i = m_att_index & 0x1f;
            if (i < VGA_ATT_COUNT)
                m_att[i] = i < VGA_ATC_PALETTE_COUNT ? static_cast<uint8_t>(value & 0x3f) : value;
            else
                bad("attribute register", i, value);
        }
        m_att_flipflop = !m_att_flipflop;
        return;
    case VGA_MIS_W:
        m_misc = value;
        return;
    case VGA_ENABLE:
        m_vga_enable = value & 1;
        return;
    case VGA_SEQ_I:
        m_seq_index = value & 0x1f;
        return;
    case VGA_SEQ_D:
        if (m_seq_index < VGA_SEQ_COUNT)
            m_seq[m_seq_index] = value;
        else
            bad("sequencer register", m_seq_index, value);
        return;
    case VGA_PEL_MSK:
        m_pel_mask = value;
        return;
    case VGA_PEL_IR:
        m_dac_read = static_cast<uint16_t>(value * 3);
        m_dac_state = 3;
        return;
    case VGA_PEL_IW:
        m_dac_write = static_cast<uint16_t>(value * 3);
        m_dac_state = 0;
        return;
    case VGA_PEL_D:
        m_dac[m_dac_write] = value;
        m_dac_write = static_cast<uint16_t>((m_dac_write + 1) % m_dac.size());
        return;
    case VGA_GFX_I:
        m_gfx_index = value & 0x0f;
        return;
    case VGA_GFX_D:
        if (m_gfx_index < VGA_GFX_COUNT)
            m_gfx[m_gfx_index] = value;
        else
            bad("graphics register", m_gfx_index, value);
        return;
    case VGA_CRT_IC:
        m_crt_index = value & 0x3f;
        return;
    case VGA_CRT_DC:
        if (m_crt_index >= VGA_CRT_COUNT) {
            bad("CRTC register", m_crt_index, value);
            return;
        }
        if ((m_crt[VGA_CRTC_V_SYNC_END] & 0x80) && m_crt_index <= VGA_CRTC_OVERFLOW) {
            // Write-protected: only the line compare bit 4 of the overflow register can change.
            if (m_crt_index == VGA_CRTC_OVERFLOW)
                m_crt[VGA_CRTC_OVERFLOW] = static_cast<uint8_t>((m_crt[VGA_CRTC_OVERFLOW] & ~0x10) | (value & 0x10));
            return;
        }
        m_crt[m_crt_index] = value;
        return;
    case VGA_IS1_RC:
        m_feature = value; // feature control
        return;
    default:
        bad("port write", port, value);
        return;
    }
}

// ---- The 0xA0000 window ------------------------------------------------------------------------------------------

bool Vga::window_offset_locked(uint32_t offset, uint32_t& out) const
{
    static constexpr uint32_t BASES[4] = { 0, 0, 0x10000, 0x18000 };
    static constexpr uint32_t SIZES[4] = { 0x20000, 0x10000, 0x8000, 0x8000 };
    unsigned const map = (m_gfx[VGA_GFX_MISC] >> 2) & 3;
    if (offset < BASES[map] || offset - BASES[map] >= SIZES[map])
        return false;
    out = offset - BASES[map];
    return true;
}

uint8_t Vga::window_read(uint32_t offset)
{
    std::lock_guard lock(m_lock);
    if (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED) {
        // VBE banked access: 64 KiB at 0xA0000 shows bank BANK of video memory.
        if (offset >= 0x10000)
            return 0xff;
        return vram_at((size_t { m_vbe[VBE_DISPI_INDEX_BANK] } << 16) + offset);
    }
    uint32_t a = 0;
    if (!window_offset_locked(offset, a))
        return 0xff;
    if (m_seq[VGA_SEQ_MEMORY_MODE] & VGA_SR04_CHN_4M)
        return vram_at(a);
    if (m_gfx[VGA_GFX_MODE] & 0x10) {
        // Odd/even: even offsets read plane 0 (or 2), odd ones plane 1 (or 3), at plane address offset / 2.
        unsigned const plane = (m_gfx[VGA_GFX_PLANE_READ] & 2) | (a & 1);
        return vram_at(size_t { a >> 1 } * 4 + plane);
    }
    size_t const base = size_t { a & (PLANE_SIZE - 1) } * 4;
    for (unsigned p = 0; p < 4; ++p)
        m_latch[p] = vram_at(base + p);
    if (!(m_gfx[VGA_GFX_MODE] & 0x08))
        return m_latch[m_gfx[VGA_GFX_PLANE_READ] & 3];
    // Read mode 1: a bit is set where every plane in "colour don't care" matches "colour compare".
    uint8_t differ = 0;
    for (unsigned p = 0; p < 4; ++p) {
        if (!(m_gfx[VGA_GFX_COMPARE_MASK] & (1u << p)))
            continue;
        uint8_t const want = (m_gfx[VGA_GFX_COMPARE_VALUE] & (1u << p)) ? 0xff : 0x00;
        differ = static_cast<uint8_t>(differ | (m_latch[p] ^ want));
    }
    return static_cast<uint8_t>(~differ);
}

void Vga::window_write(uint32_t offset, uint8_t value)
{
    std::lock_guard lock(m_lock);
    if (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED) {
        if (offset < 0x10000)
            vram_set((size_t { m_vbe[VBE_DISPI_INDEX_BANK] } << 16) + offset, value);
        return;
    }
    uint32_t a = 0;
    if (!window_offset_locked(offset, a))
        return;
    uint8_t const map_mask = m_seq[VGA_SEQ_PLANE_WRITE] & 0x0f;
    if (m_seq[VGA_SEQ_MEMORY_MODE] & VGA_SR04_CHN_4M) {
        if (map_mask & (1u << (a & 3)))
            vram_set(a, value);
        return;
    }
    if (!(m_seq[VGA_SEQ_MEMORY_MODE] & VGA_SR04_HOST_OE)) {
        // Odd/even: even offsets write planes 0 and 2, odd ones 1 and 3, as the map mask allows.
        for (unsigned p = a & 1; p < 4; p += 2)
            if (map_mask & (1u << p))
                vram_set(size_t { a >> 1 } * 4 + p, value);
        return;
    }
    // Planar write through the graphics controller.
    uint8_t const mode = m_gfx[VGA_GFX_MODE] & 3;
    uint8_t const rotate = m_gfx[VGA_GFX_DATA_ROTATE] & 7;
    uint8_t const function = (m_gfx[VGA_GFX_DATA_ROTATE] >> 3) & 3;
    uint32_t const set_reset = expand_bits(m_gfx[VGA_GFX_SR_VALUE] & 0x0f);
    uint32_t const sr_enable = expand_bits(m_gfx[VGA_GFX_SR_ENABLE] & 0x0f);
    uint8_t bit_mask = m_gfx[VGA_GFX_BIT_MASK];
    uint32_t data = 0;
    switch (mode) {
    case 0: {
        uint8_t const v = rotate_right(value, rotate);
        data = (uint32_t { v } * 0x01010101u & ~sr_enable) | (set_reset & sr_enable);
        break;
    }
    case 1: // the latches, unchanged
        data = uint32_t { m_latch[0] } | uint32_t { m_latch[1] } << 8 | uint32_t { m_latch[2] } << 16
            | uint32_t { m_latch[3] } << 24;
        bit_mask = 0xff;
        break;
    case 2:
        data = expand_bits(value & 0x0f);
        break;
    case 3:
        bit_mask = static_cast<uint8_t>(bit_mask & rotate_right(value, rotate));
        data = set_reset;
        break;
    }
    uint32_t const latches = uint32_t { m_latch[0] } | uint32_t { m_latch[1] } << 8 | uint32_t { m_latch[2] } << 16
        | uint32_t { m_latch[3] } << 24;
    if (mode != 1) {
        switch (function) {
        case 1: data &= latches; break;
        case 2: data |= latches; break;
        case 3: data ^= latches; break;
        default: break;
        }
    }
    uint32_t const mask = uint32_t { bit_mask } * 0x01010101u;
    data = (data & mask) | (latches & ~mask);
    size_t const base = size_t { a & (PLANE_SIZE - 1) } * 4;
    for (unsigned p = 0; p < 4; ++p)
        if (map_mask & (1u << p))
            vram_set(base + p, static_cast<uint8_t>(data >> (8 * p)));
}

// ---- Bochs VBE DISPI ----------------------------------------------------------------------------------------------

uint16_t Vga::dispi_index() const
{
    std::lock_guard lock(m_lock);
    return m_dispi_index;
}

void Vga::set_dispi_index(uint16_t index)
{
    std::lock_guard lock(m_lock);
    m_dispi_index = index;
}

uint16_t Vga::dispi_read(uint16_t index)
{
    std::lock_guard lock(m_lock);
    if (index >= VBE_DISPI_INDEX_NB)
        return 0xffff;
    if (m_vbe_getcaps) {
        if (index == VBE_DISPI_INDEX_XRES)
            return VBE_DISPI_MAX_XRES;
        if (index == VBE_DISPI_INDEX_YRES)
            return VBE_DISPI_MAX_YRES;
        if (index == VBE_DISPI_INDEX_BPP)
            return VBE_DISPI_MAX_BPP;
    }
    if (index == VBE_DISPI_INDEX_VIDEO_MEMORY_64K)
        return static_cast<uint16_t>(VRAM_SIZE >> 16);
    return m_vbe[index];
}

void Vga::dispi_write(uint16_t index, uint16_t value)
{
    std::lock_guard lock(m_lock);
    switch (index) {
    case VBE_DISPI_INDEX_ID:
        if (value >= VBE_DISPI_ID0 && value <= VBE_DISPI_ID5)
            m_vbe[index] = value;
        else
            bad("DISPI ID", index, value);
        return;
    case VBE_DISPI_INDEX_XRES:
    case VBE_DISPI_INDEX_YRES:
    case VBE_DISPI_INDEX_BPP:
    case VBE_DISPI_INDEX_VIRT_WIDTH:
    case VBE_DISPI_INDEX_X_OFFSET:
    case VBE_DISPI_INDEX_Y_OFFSET:
        m_vbe[index] = value;
        if (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED)
            vbe_fixup_locked();
        return;
    case VBE_DISPI_INDEX_BANK:
        if (uint64_t { value } << 16 < VRAM_SIZE)
            m_vbe[index] = value;
        else
            bad("DISPI bank", index, value);
        return;
    case VBE_DISPI_INDEX_ENABLE:
        vbe_enable_locked(value);
        return;
    default:
        bad("DISPI register", index, value); // VIRT_HEIGHT and the memory size are computed
        return;
    }
}

void Vga::vbe_fixup_locked()
{
    auto& r = m_vbe;
    uint16_t bpp = r[VBE_DISPI_INDEX_BPP];
    if (bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32)
        bpp = 8;
    r[VBE_DISPI_INDEX_BPP] = bpp;
    uint64_t const bytes_pp = (bpp + 7u) / 8u;
    uint16_t xres = std::clamp<uint16_t>(static_cast<uint16_t>(r[VBE_DISPI_INDEX_XRES] & ~7u), 8, VBE_DISPI_MAX_XRES);
    uint16_t yres = std::clamp<uint16_t>(r[VBE_DISPI_INDEX_YRES], 1, VBE_DISPI_MAX_YRES);
    r[VBE_DISPI_INDEX_XRES] = xres;
    r[VBE_DISPI_INDEX_YRES] = yres;
    uint64_t virt_width = std::max(r[VBE_DISPI_INDEX_VIRT_WIDTH], xres);
    if (virt_width * bytes_pp * yres > VRAM_SIZE)
        virt_width = xres; // xres * yres * 4 always fits in 16 MiB
    uint64_t const line = virt_width * bytes_pp;
    uint64_t const virt_height = std::min<uint64_t>(VRAM_SIZE / line, 0xffff);
    r[VBE_DISPI_INDEX_VIRT_WIDTH] = static_cast<uint16_t>(virt_width);
    r[VBE_DISPI_INDEX_VIRT_HEIGHT] = static_cast<uint16_t>(virt_height);
    r[VBE_DISPI_INDEX_X_OFFSET] = static_cast<uint16_t>(std::min<uint64_t>(r[VBE_DISPI_INDEX_X_OFFSET], virt_width - xres));
    r[VBE_DISPI_INDEX_Y_OFFSET] = static_cast<uint16_t>(std::min<uint64_t>(r[VBE_DISPI_INDEX_Y_OFFSET], virt_height - yres));
    m_vbe_line_offset = line;
}

void Vga::vbe_enable_locked(uint16_t value)
{
    m_vbe_getcaps = (value & VBE_DISPI_GETCAPS) != 0;
    bool const was_enabled = (m_vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED) != 0;
    m_vbe[VBE_DISPI_INDEX_ENABLE] = static_cast<uint16_t>(value & (VBE_DISPI_ENABLED | VBE_DISPI_8BIT_DAC
        | VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM));
    if (!(value & VBE_DISPI_ENABLED))
        return;
    vbe_fixup_locked();
    if (!was_enabled) {
        m_vbe[VBE_DISPI_INDEX_BANK] = 0;
        if (!(value & VBE_DISPI_NOCLEARMEM)) {
            size_t const visible = std::min<uint64_t>(m_vbe_line_offset * m_vbe[VBE_DISPI_INDEX_YRES], VRAM_SIZE);
            std::fill_n(m_bytes.begin(), std::min(visible, m_bytes.size()), uint8_t { 0 });
        }
        // Legacy registers as a graphics mode with linear (chain 4) access, 64 KiB at 0xA0000, as Bochs sets them.
        m_gfx[VGA_GFX_MISC] = static_cast<uint8_t>((m_gfx[VGA_GFX_MISC] & ~0x0c) | 0x05);
        m_seq[VGA_SEQ_MEMORY_MODE] = static_cast<uint8_t>(m_seq[VGA_SEQ_MEMORY_MODE] | VGA_SR04_CHN_4M);
        m_att[VGA_ATC_MODE] = static_cast<uint8_t>(m_att[VGA_ATC_MODE] | 0x01);
    }
}

} // namespace hako::devices::display
