// I8042: an Intel 8042-compatible PS/2 controller with a keyboard and a mouse behind it, at ports 0x60 and 0x64.
//
// The controller (IBM PC/AT Technical Reference, "Keyboard controller"): status register (OBF, SYS, A2, INH,
// AUXB), command byte (IRQ1/IRQ12 enables, SYS, interface disables, translation) and its 32-byte RAM (0x20-0x3F
// read, 0x60-0x7F write), commands 0xA7-0xAB, 0xAD/0xAE, 0xC0, 0xD0-0xD4 and the 0xF0-0xFF output pulses (0xFE
// resets the machine, as does clearing output port bit 0 with 0xD1). The keyboard answers the PS/2 device
// commands (reset, identify, scan code set, LEDs, typematic, enable/disable, defaults, echo, resend); the mouse
// answers reset, identify, sample rate, resolution, scaling, status request, stream/remote and enable/disable.
//
// Replies and device data wait in bounded queues (64 bytes per source: controller, keyboard, mouse); the output
// buffer is refilled from them in that order, skipping an interface the command byte disables. IRQ1/IRQ12 is
// a level that is high while the output buffer holds that source's byte and its interrupt is enabled; reading
// the byte drops it before the next byte raises it again, so an edge-triggered PIC sees every byte.
//
// Wiring: I8042 itself takes offset 0 as the data port and offset 4 as the status/command port, so it can be
// inserted once over 0x60-0x64 if nothing else needs 0x61-0x63. On a PC the PIT/speaker port 0x61 sits in
// between, so the usual wiring inserts two I8042Port adapters of one byte each, at 0x60 (Data) and 0x64 (Command).
//
// Deliberately not modelled: scan code translation (the host input layer pushes bytes in the form the guest
// expects; see scancode_set() and translating()), A20 gating (KVM cannot mask A20; writes are logged), parity and
// timeout errors, password and test-mode commands, IntelliMouse extensions (the mouse identifies as a plain
// PS/2 mouse, ID 0x00).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>

#include "bus/device.h"
#include "bus/irq_line.h"
#include "bus/system_control.h"

namespace hako::devices::legacy {

class I8042 final : public bus::Device {
public:
    static constexpr size_t QUEUE_LIMIT = 64;

    // Status register bits.
    static constexpr uint8_t STATUS_OBF = 1 << 0;
    static constexpr uint8_t STATUS_IBF = 1 << 1;
    static constexpr uint8_t STATUS_SYS = 1 << 2;
    static constexpr uint8_t STATUS_A2 = 1 << 3; // last write was to the command port
    static constexpr uint8_t STATUS_INH = 1 << 4; // 1 = keyboard not inhibited
    static constexpr uint8_t STATUS_AUXB = 1 << 5; // output buffer holds mouse data
    // Command byte bits.
    static constexpr uint8_t CMD_KBD_INT = 1 << 0;
    static constexpr uint8_t CMD_AUX_INT = 1 << 1;
    static constexpr uint8_t CMD_SYS = 1 << 2;
    static constexpr uint8_t CMD_KBD_DISABLE = 1 << 4;
    static constexpr uint8_t CMD_AUX_DISABLE = 1 << 5;
    static constexpr uint8_t CMD_XLATE = 1 << 6;

    /// \param kbd_irq IRQ 1  \param mouse_irq IRQ 12
    I8042(bus::SystemControl& system, std::shared_ptr<bus::IrqLine> kbd_irq, std::shared_ptr<bus::IrqLine> mouse_irq);

    std::string_view name() const override { return "i8042"; }
    /// Offset 0 is the data port, offset 4 the status/command port; anything else is open bus.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    uint8_t read_data();
    void write_data(uint8_t value);
    uint8_t read_status();
    void write_command(uint8_t value);

    /// Queues bytes from the host keyboard (dropped past QUEUE_LIMIT, or while the keyboard has scanning off).
    /// Thread-safe.
    void push_keyboard_bytes(std::span<uint8_t const> bytes);
    /// Queues bytes from the host mouse (dropped past QUEUE_LIMIT, or while the mouse is not streaming).
    /// Thread-safe.
    void push_mouse_bytes(std::span<uint8_t const> bytes);

    /// The scan code set the guest selected (1-3) and whether the controller is asked to translate to set 1.
    int scancode_set() const;
    bool translating() const;
    /// Bytes waiting in all queues, excluding the output buffer (for tests and fuzzers).
    size_t queued() const;
    /// How many more bytes the keyboard's / the mouse's queue takes now (the host input layer paces its input so
    /// that a burst, such as a VNC client's pasted text, is not cut). Thread-safe.
    size_t keyboard_room() const;
    size_t mouse_room() const;

private:
    enum class Source : uint8_t { Keyboard, Mouse };
    struct Entry {
        uint8_t byte;
        Source source;
    };

    void queue(std::deque<Entry>& q, uint8_t byte, Source source);
    void reply(uint8_t byte) { queue(m_ctrl_queue, byte, Source::Keyboard); }
    void kbd_reply(uint8_t byte);
    void aux_reply(uint8_t byte) { queue(m_aux_queue, byte, Source::Mouse); }
    void refill();
    void update_irqs();
    void keyboard_command(uint8_t value);
    void mouse_command(uint8_t value);
    void keyboard_defaults();
    void mouse_defaults();
    void request_reset();

    bus::SystemControl& m_system;
    std::shared_ptr<bus::IrqLine> m_kbd_irq;
    std::shared_ptr<bus::IrqLine> m_mouse_irq;

    // Leaf lock; IRQ lines and SystemControl are called with it held (they never call back into the device).
    mutable std::mutex m_mutex;
    uint8_t m_ram[32] {}; // m_ram[0] is the command byte
    uint8_t m_status { STATUS_INH };
    uint8_t m_output_port { 0x03 }; // reset line high (not in reset), A20 on
    uint8_t m_pending_cmd { 0 };    // controller command waiting for its data byte, or 0
    bool m_obf { false };
    Entry m_output { 0, Source::Keyboard };
    std::deque<Entry> m_ctrl_queue, m_kbd_queue, m_aux_queue;
    bool m_kbd_level { false };
    bool m_mouse_level { false };

    // Keyboard device.
    uint8_t m_kbd_pending { 0 }; // device command waiting for its parameter
    uint8_t m_kbd_last { 0 };    // last byte sent, for 0xFE resend
    uint8_t m_kbd_set { 2 };
    uint8_t m_kbd_leds { 0 };
    uint8_t m_kbd_typematic { 0x2b };
    bool m_kbd_scanning { true };

    // Mouse device.
    uint8_t m_aux_pending { 0 };
    uint8_t m_aux_rate { 100 };
    uint8_t m_aux_resolution { 2 };
    bool m_aux_scaling21 { false };
    bool m_aux_remote { false };
    bool m_aux_streaming { false };
};

/// One port of an I8042 for the bus: the data port (0x60) or the status/command port (0x64), one byte each.
class I8042Port final : public bus::Device {
public:
    enum class Kind { Data, Command };
    I8042Port(std::shared_ptr<I8042> controller, Kind kind) : m_controller(std::move(controller)), m_kind(kind) { }

    std::string_view name() const override { return m_kind == Kind::Data ? "i8042-data" : "i8042-command"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

private:
    std::shared_ptr<I8042> m_controller;
    Kind m_kind;
};

} // namespace hako::devices::legacy
