// VGA and Bochs VBE register numbers and bits, named as in IBM's VGA technical reference and in Bochs' vbe.h
// interface description (the DISPI interface QEMU's std VGA and SeaVGABIOS implement).
#pragma once

#include <cstdint>

namespace hako::devices::display {

// Legacy I/O ports (0x3C0-0x3DF; the monochrome aliases 0x3B4/0x3BA are not decoded).
constexpr uint16_t VGA_PORT_BASE = 0x3c0;
constexpr uint16_t VGA_PORT_COUNT = 0x20;
constexpr uint16_t VGA_ATT_W = 0x3c0;      // attribute index / data write (flip-flop)
constexpr uint16_t VGA_ATT_R = 0x3c1;      // attribute data read
constexpr uint16_t VGA_MIS_W = 0x3c2;      // misc output write / input status 0 read
constexpr uint16_t VGA_ENABLE = 0x3c3;     // VGA enable
constexpr uint16_t VGA_SEQ_I = 0x3c4;
constexpr uint16_t VGA_SEQ_D = 0x3c5;
constexpr uint16_t VGA_PEL_MSK = 0x3c6;    // DAC pixel mask
constexpr uint16_t VGA_PEL_IR = 0x3c7;     // DAC read index (write) / DAC state (read)
constexpr uint16_t VGA_PEL_IW = 0x3c8;     // DAC write index
constexpr uint16_t VGA_PEL_D = 0x3c9;      // DAC data (r, g, b)
constexpr uint16_t VGA_FTC_R = 0x3ca;      // feature control read
constexpr uint16_t VGA_MIS_R = 0x3cc;      // misc output read
constexpr uint16_t VGA_GFX_I = 0x3ce;
constexpr uint16_t VGA_GFX_D = 0x3cf;
constexpr uint16_t VGA_CRT_IC = 0x3d4;     // CRTC index (colour)
constexpr uint16_t VGA_CRT_DC = 0x3d5;
constexpr uint16_t VGA_IS1_RC = 0x3da;     // input status 1 (read) / feature control (write)

constexpr unsigned VGA_SEQ_COUNT = 5;
constexpr unsigned VGA_GFX_COUNT = 9;
constexpr unsigned VGA_CRT_COUNT = 0x19;
constexpr unsigned VGA_ATT_COUNT = 0x15;

// Sequencer.
constexpr uint8_t VGA_SEQ_CLOCK_MODE = 1;  // bit 0: 8-dot characters, bit 3: dot clock / 2, bit 5: screen off
constexpr uint8_t VGA_SEQ_PLANE_WRITE = 2; // map mask
constexpr uint8_t VGA_SEQ_CHARACTER_MAP = 3;
constexpr uint8_t VGA_SEQ_MEMORY_MODE = 4; // bit 2: odd/even off (1), bit 3: chain 4
constexpr uint8_t VGA_SR01_CHAR_CLK_8DOTS = 0x01;
constexpr uint8_t VGA_SR01_DOT_CLOCK_DIV2 = 0x08;
constexpr uint8_t VGA_SR01_SCREEN_OFF = 0x20;
constexpr uint8_t VGA_SR04_HOST_OE = 0x04; // set: odd/even addressing off
constexpr uint8_t VGA_SR04_CHN_4M = 0x08;

// Graphics controller.
constexpr uint8_t VGA_GFX_SR_VALUE = 0;
constexpr uint8_t VGA_GFX_SR_ENABLE = 1;
constexpr uint8_t VGA_GFX_COMPARE_VALUE = 2;
constexpr uint8_t VGA_GFX_DATA_ROTATE = 3;
constexpr uint8_t VGA_GFX_PLANE_READ = 4;
constexpr uint8_t VGA_GFX_MODE = 5;       // bits 0-1 write mode, bit 3 read mode, bit 4 odd/even, bits 5-6 shift
constexpr uint8_t VGA_GFX_MISC = 6;       // bit 0 graphics, bits 2-3 memory map
constexpr uint8_t VGA_GFX_COMPARE_MASK = 7;
constexpr uint8_t VGA_GFX_BIT_MASK = 8;

// CRT controller.
constexpr uint8_t VGA_CRTC_H_DISP = 0x01;
constexpr uint8_t VGA_CRTC_OVERFLOW = 0x07;
constexpr uint8_t VGA_CRTC_MAX_SCAN = 0x09;
constexpr uint8_t VGA_CRTC_CURSOR_START = 0x0a;
constexpr uint8_t VGA_CRTC_CURSOR_END = 0x0b;
constexpr uint8_t VGA_CRTC_START_HI = 0x0c;
constexpr uint8_t VGA_CRTC_START_LO = 0x0d;
constexpr uint8_t VGA_CRTC_CURSOR_HI = 0x0e;
constexpr uint8_t VGA_CRTC_CURSOR_LO = 0x0f;
constexpr uint8_t VGA_CRTC_V_SYNC_END = 0x11; // bit 7: registers 0-7 write-protected
constexpr uint8_t VGA_CRTC_V_DISP_END = 0x12;
constexpr uint8_t VGA_CRTC_OFFSET = 0x13;

// Attribute controller.
constexpr uint8_t VGA_ATC_PALETTE_COUNT = 0x10;
constexpr uint8_t VGA_ATC_MODE = 0x10;        // bit 0 graphics, bit 2 line graphics, bit 3 blink, bit 7 P54S
constexpr uint8_t VGA_ATC_PLANE_ENABLE = 0x12;
constexpr uint8_t VGA_ATC_COLOR_PAGE = 0x14;
constexpr uint8_t VGA_AR_ENABLE_DISPLAY = 0x20; // palette address source: set while the screen shows

// Input status 1.
constexpr uint8_t VGA_ST01_DISP_ENABLE = 0x01;
constexpr uint8_t VGA_ST01_V_RETRACE = 0x08;

// Bochs VBE DISPI interface: index port 0x1CE, data port 0x1CF (16-bit).
constexpr uint16_t VBE_DISPI_IOPORT_INDEX = 0x1ce;
constexpr uint16_t VBE_DISPI_IOPORT_COUNT = 3; // 0x1CE-0x1D0: a word access at 0x1CF reaches 0x1D0
constexpr uint16_t VBE_DISPI_INDEX_ID = 0;
constexpr uint16_t VBE_DISPI_INDEX_XRES = 1;
constexpr uint16_t VBE_DISPI_INDEX_YRES = 2;
constexpr uint16_t VBE_DISPI_INDEX_BPP = 3;
constexpr uint16_t VBE_DISPI_INDEX_ENABLE = 4;
constexpr uint16_t VBE_DISPI_INDEX_BANK = 5;
constexpr uint16_t VBE_DISPI_INDEX_VIRT_WIDTH = 6;
constexpr uint16_t VBE_DISPI_INDEX_VIRT_HEIGHT = 7;
constexpr uint16_t VBE_DISPI_INDEX_X_OFFSET = 8;
constexpr uint16_t VBE_DISPI_INDEX_Y_OFFSET = 9;
constexpr uint16_t VBE_DISPI_INDEX_VIDEO_MEMORY_64K = 10;
constexpr uint16_t VBE_DISPI_INDEX_NB = 11;
constexpr uint16_t VBE_DISPI_ID0 = 0xb0c0;
constexpr uint16_t VBE_DISPI_ID5 = 0xb0c5;
constexpr uint16_t VBE_DISPI_ENABLED = 0x01;
constexpr uint16_t VBE_DISPI_GETCAPS = 0x02;
constexpr uint16_t VBE_DISPI_8BIT_DAC = 0x20;
constexpr uint16_t VBE_DISPI_LFB_ENABLED = 0x40;
constexpr uint16_t VBE_DISPI_NOCLEARMEM = 0x80;
constexpr uint16_t VBE_DISPI_MAX_XRES = 1920;
constexpr uint16_t VBE_DISPI_MAX_YRES = 1080;
constexpr uint16_t VBE_DISPI_MAX_BPP = 32;

// QEMU's std VGA MMIO BAR (BAR 2, 4 KiB): EDID, the VGA ports, the DISPI registers, QEMU's extension registers.
constexpr uint64_t STDVGA_MMIO_SIZE = 0x1000;
constexpr uint64_t STDVGA_MMIO_EDID = 0x000;
constexpr uint64_t STDVGA_MMIO_VGA_PORTS = 0x400; // 0x400 + (port - 0x3C0), byte access
constexpr uint64_t STDVGA_MMIO_DISPI = 0x500;     // 0x500 + index * 2, 16-bit
constexpr uint64_t STDVGA_MMIO_QEXT = 0x600;
constexpr uint64_t STDVGA_QEXT_SIZE = 0x08;        // region size register (0x600), byte order (0x604)
constexpr uint32_t STDVGA_QEXT_LITTLE_ENDIAN = 0x1e1e1e1e;

} // namespace hako::devices::display
