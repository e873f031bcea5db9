#include "devices/legacy/i8042.h"

#include <algorithm>

#include "base/log.h"

namespace hako::devices::legacy {

namespace {

// Controller commands (written to port 0x64).
constexpr uint8_t CCMD_READ_RAM_FIRST = 0x20; // 0x20 reads the command byte
constexpr uint8_t CCMD_READ_RAM_LAST = 0x3f;
constexpr uint8_t CCMD_WRITE_RAM_FIRST = 0x60; // 0x60 writes the command byte
constexpr uint8_t CCMD_WRITE_RAM_LAST = 0x7f;
constexpr uint8_t CCMD_AUX_DISABLE = 0xa7;
constexpr uint8_t CCMD_AUX_ENABLE = 0xa8;
constexpr uint8_t CCMD_AUX_TEST = 0xa9;
constexpr uint8_t CCMD_SELF_TEST = 0xaa;
constexpr uint8_t CCMD_KBD_TEST = 0xab;
constexpr uint8_t CCMD_KBD_DISABLE = 0xad;
constexpr uint8_t CCMD_KBD_ENABLE = 0xae;
constexpr uint8_t CCMD_READ_INPUT_PORT = 0xc0;
constexpr uint8_t CCMD_READ_OUTPUT_PORT = 0xd0;
constexpr uint8_t CCMD_WRITE_OUTPUT_PORT = 0xd1;
constexpr uint8_t CCMD_WRITE_KBD_OBUF = 0xd2;
constexpr uint8_t CCMD_WRITE_AUX_OBUF = 0xd3;
constexpr uint8_t CCMD_WRITE_AUX = 0xd4;
constexpr uint8_t CCMD_PULSE_FIRST = 0xf0; // 0xf0-0xff: pulse output port bits 0-3 that are 0 in the command

constexpr uint8_t SELF_TEST_OK = 0x55;
constexpr uint8_t INTERFACE_TEST_OK = 0x00;
constexpr uint8_t INPUT_PORT_VALUE = 0x00;
constexpr uint8_t OUTPUT_PORT_RESET = 1 << 0; // active low: 0 holds the CPU in reset
constexpr uint8_t OUTPUT_PORT_A20 = 1 << 1;
constexpr uint8_t OUTPUT_PORT_KBD_OBF = 1 << 4;
constexpr uint8_t OUTPUT_PORT_AUX_OBF = 1 << 5;
constexpr uint8_t COMMAND_BYTE_DEFAULT = I8042::CMD_KBD_INT | I8042::CMD_AUX_INT | I8042::CMD_SYS | I8042::CMD_XLATE;

// PS/2 device replies and commands.
constexpr uint8_t ACK = 0xfa;
constexpr uint8_t RESEND = 0xfe;
constexpr uint8_t BAT_OK = 0xaa;
constexpr uint8_t ECHO = 0xee;
constexpr uint8_t KBD_ID_FIRST = 0xab;
constexpr uint8_t KBD_ID_SECOND = 0x83;
constexpr uint8_t KBD_ID_SECOND_TRANSLATED = 0x41;
constexpr uint8_t MOUSE_ID = 0x00;

constexpr uint8_t KBD_CMD_SET_LEDS = 0xed;
constexpr uint8_t KBD_CMD_ECHO = 0xee;
constexpr uint8_t KBD_CMD_SCANCODE_SET = 0xf0;
constexpr uint8_t KBD_CMD_IDENTIFY = 0xf2;
constexpr uint8_t KBD_CMD_TYPEMATIC = 0xf3;
constexpr uint8_t KBD_CMD_ENABLE = 0xf4;
constexpr uint8_t KBD_CMD_DISABLE = 0xf5;
constexpr uint8_t KBD_CMD_DEFAULTS = 0xf6;
constexpr uint8_t KBD_CMD_SET3_FIRST = 0xf7; // 0xf7-0xfd: scan code set 3 key attributes, acknowledged only
constexpr uint8_t KBD_CMD_SET3_LAST = 0xfd;
constexpr uint8_t KBD_CMD_RESEND = 0xfe;
constexpr uint8_t KBD_CMD_RESET = 0xff;

constexpr uint8_t AUX_CMD_SCALING_11 = 0xe6;
constexpr uint8_t AUX_CMD_SCALING_21 = 0xe7;
constexpr uint8_t AUX_CMD_RESOLUTION = 0xe8;
constexpr uint8_t AUX_CMD_STATUS = 0xe9;
constexpr uint8_t AUX_CMD_STREAM_MODE = 0xea;
constexpr uint8_t AUX_CMD_READ_DATA = 0xeb;
constexpr uint8_t AUX_CMD_RESET_WRAP = 0xec;
constexpr uint8_t AUX_CMD_WRAP_MODE = 0xee;
constexpr uint8_t AUX_CMD_REMOTE_MODE = 0xf0;
constexpr uint8_t AUX_CMD_IDENTIFY = 0xf2;
constexpr uint8_t AUX_CMD_SAMPLE_RATE = 0xf3;
constexpr uint8_t AUX_CMD_ENABLE = 0xf4;
constexpr uint8_t AUX_CMD_DISABLE = 0xf5;
constexpr uint8_t AUX_CMD_DEFAULTS = 0xf6;
constexpr uint8_t AUX_CMD_RESEND = 0xfe;
constexpr uint8_t AUX_CMD_RESET = 0xff;

constexpr uint64_t DATA_OFFSET = 0;
constexpr uint64_t COMMAND_OFFSET = 4;

} // namespace

I8042::I8042(bus::SystemControl& system, std::shared_ptr<bus::IrqLine> kbd_irq, std::shared_ptr<bus::IrqLine> mouse_irq)
    : m_system(system), m_kbd_irq(std::move(kbd_irq)), m_mouse_irq(std::move(mouse_irq))
{
    m_ram[0] = COMMAND_BYTE_DEFAULT;
    m_status |= STATUS_SYS;
}

void I8042::read(uint64_t offset, std::span<uint8_t> data)
{
    if (data.size() != 1 || (offset != DATA_OFFSET && offset != COMMAND_OFFSET)) {
        HAKO_WARN_RATELIMITED("i8042: bad read at offset {} size {}", offset, data.size());
        std::fill(data.begin(), data.end(), uint8_t { 0xff });
        return;
    }
    data[0] = offset == DATA_OFFSET ? read_data() : read_status();
}

void I8042::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (data.size() != 1 || (offset != DATA_OFFSET && offset != COMMAND_OFFSET)) {
        HAKO_WARN_RATELIMITED("i8042: bad write at offset {} size {}", offset, data.size());
        return;
    }
    if (offset == DATA_OFFSET)
        write_data(data[0]);
    else
        write_command(data[0]);
}

void I8042::queue(std::deque<Entry>& q, uint8_t byte, Source source)
{
    if (q.size() >= QUEUE_LIMIT) {
        HAKO_WARN_RATELIMITED("i8042: queue full, byte {:#x} dropped", byte);
        return;
    }
    q.push_back({ byte, source });
}

void I8042::kbd_reply(uint8_t byte)
{
    m_kbd_last = byte;
    queue(m_kbd_queue, byte, Source::Keyboard);
}

void I8042::refill()
{
    if (m_obf)
        return;
    auto take = [this](std::deque<Entry>& q) {
        if (q.empty())
            return false;
        m_output = q.front();
        q.pop_front();
        m_obf = true;
        return true;
    };
    if (take(m_ctrl_queue))
        return;
    if (!(m_ram[0] & CMD_KBD_DISABLE) && take(m_kbd_queue))
        return;
    if (!(m_ram[0] & CMD_AUX_DISABLE))
        take(m_aux_queue);
}

void I8042::update_irqs()
{
    bool const kbd = m_obf && m_output.source == Source::Keyboard && (m_ram[0] & CMD_KBD_INT);
    bool const mouse = m_obf && m_output.source == Source::Mouse && (m_ram[0] & CMD_AUX_INT);
    if (kbd != m_kbd_level) {
        m_kbd_level = kbd;
        if (m_kbd_irq)
            m_kbd_irq->set_level(kbd);
    }
    if (mouse != m_mouse_level) {
        m_mouse_level = mouse;
        if (m_mouse_irq)
            m_mouse_irq->set_level(mouse);
    }
}

void I8042::request_reset()
{
    HAKO_INFO("i8042: guest pulsed the reset line");
    m_system.request(bus::SystemEvent::Reset);
}

uint8_t I8042::read_data()
{
    std::lock_guard lock(m_mutex);
    uint8_t const byte = m_output.byte; // with the buffer empty, the last byte is read again, as on hardware
    m_obf = false;
    update_irqs(); // drop the line before the next byte raises it: an edge per byte
    refill();
    update_irqs();
    return byte;
}

uint8_t I8042::read_status()
{
    std::lock_guard lock(m_mutex);
    uint8_t status = m_status;
    if (m_obf) {
        status |= STATUS_OBF;
        if (m_output.source == Source::Mouse)
            status |= STATUS_AUXB;
    }
    return status;
}

void I8042::write_command(uint8_t value)
{
    std::lock_guard lock(m_mutex);
    m_status |= STATUS_A2;
    m_pending_cmd = 0; // a new command abandons one still waiting for its data byte
    if (value >= CCMD_READ_RAM_FIRST && value <= CCMD_READ_RAM_LAST) {
        reply(m_ram[value & 0x1f]);
    } else if (value >= CCMD_WRITE_RAM_FIRST && value <= CCMD_WRITE_RAM_LAST) {
        m_pending_cmd = value;
    } else if (value >= CCMD_PULSE_FIRST) {
        if (!(value & OUTPUT_PORT_RESET))
            request_reset();
    } else {
        switch (value) {
        case CCMD_AUX_DISABLE:
            m_ram[0] |= CMD_AUX_DISABLE;
            break;
        case CCMD_AUX_ENABLE:
            m_ram[0] &= static_cast<uint8_t>(~CMD_AUX_DISABLE);
            break;
        case CCMD_AUX_TEST:
        case CCMD_KBD_TEST:
            reply(INTERFACE_TEST_OK);
            break;
        case CCMD_SELF_TEST:
            m_status |= STATUS_SYS;
            reply(SELF_TEST_OK);
            break;
        case CCMD_KBD_DISABLE:
            m_ram[0] |= CMD_KBD_DISABLE;
            break;
        case CCMD_KBD_ENABLE:
            m_ram[0] &= static_cast<uint8_t>(~CMD_KBD_DISABLE);
            break;
        case CCMD_READ_INPUT_PORT:
            reply(INPUT_PORT_VALUE);
            break;
        case CCMD_READ_OUTPUT_PORT: {
            uint8_t port = m_output_port & static_cast<uint8_t>(~(OUTPUT_PORT_KBD_OBF | OUTPUT_PORT_AUX_OBF));
            if (m_obf)
                port |= m_output.source == Source::Mouse ? OUTPUT_PORT_AUX_OBF : OUTPUT_PORT_KBD_OBF;
            reply(port);
            break;
        }
        case CCMD_WRITE_OUTPUT_PORT:
        case CCMD_WRITE_KBD_OBUF:
        case CCMD_WRITE_AUX_OBUF:
        case CCMD_WRITE_AUX:
            m_pending_cmd = value;
            break;
        default:
            HAKO_WARN_RATELIMITED("i8042: unknown controller command {:#x}", value);
            break;
        }
    }
    refill();
    update_irqs();
}

void I8042::write_data(uint8_t value)
{
    std::lock_guard lock(m_mutex);
    m_status &= static_cast<uint8_t>(~STATUS_A2);
    uint8_t const pending = m_pending_cmd;
    m_pending_cmd = 0;
    if (pending >= CCMD_WRITE_RAM_FIRST && pending <= CCMD_WRITE_RAM_LAST) {
        m_ram[pending & 0x1f] = value;
        if ((pending & 0x1f) == 0) {
            if (value & CMD_SYS)
                m_status |= STATUS_SYS;
            else
                m_status &= static_cast<uint8_t>(~STATUS_SYS);
        }
    } else if (pending == CCMD_WRITE_OUTPUT_PORT) {
        if ((value ^ m_output_port) & OUTPUT_PORT_A20)
            HAKO_WARN_RATELIMITED("i8042: A20 gate change to {} ignored", (value & OUTPUT_PORT_A20) ? "on" : "off");
        m_output_port = value;
        if (!(value & OUTPUT_PORT_RESET))
            request_reset();
    } else if (pending == CCMD_WRITE_KBD_OBUF) {
        queue(m_ctrl_queue, value, Source::Keyboard);
    } else if (pending == CCMD_WRITE_AUX_OBUF) {
        queue(m_ctrl_queue, value, Source::Mouse);
    } else if (pending == CCMD_WRITE_AUX) {
        mouse_command(value);
    } else {
        keyboard_command(value);
    }
    refill();
    update_irqs();
}

void I8042::keyboard_defaults()
{
    m_kbd_set = 2;
    m_kbd_typematic = 0x2b;
    m_kbd_leds = 0;
}

void I8042::keyboard_command(uint8_t value)
{
    if (uint8_t const pending = m_kbd_pending) {
        m_kbd_pending = 0;
        switch (pending) {
        case KBD_CMD_SET_LEDS:
            m_kbd_leds = value & 0x07;
            kbd_reply(ACK);
            return;
        case KBD_CMD_TYPEMATIC:
            m_kbd_typematic = value & 0x7f;
            kbd_reply(ACK);
            return;
        case KBD_CMD_SCANCODE_SET:
            if (value == 0) {
                kbd_reply(ACK);
                static constexpr uint8_t TRANSLATED[4] = { 0, 0x43, 0x41, 0x3f };
                kbd_reply((m_ram[0] & CMD_XLATE) ? TRANSLATED[m_kbd_set] : m_kbd_set);
            } else if (value <= 3) {
                m_kbd_set = value;
                kbd_reply(ACK);
            } else {
                kbd_reply(RESEND);
            }
            return;
        default:
            break;
        }
    }
    switch (value) {
    case KBD_CMD_SET_LEDS:
    case KBD_CMD_TYPEMATIC:
    case KBD_CMD_SCANCODE_SET:
        m_kbd_pending = value;
        kbd_reply(ACK);
        return;
    case KBD_CMD_ECHO:
        kbd_reply(ECHO);
        return;
    case KBD_CMD_IDENTIFY:
        kbd_reply(ACK);
        kbd_reply(KBD_ID_FIRST);
        kbd_reply((m_ram[0] & CMD_XLATE) ? KBD_ID_SECOND_TRANSLATED : KBD_ID_SECOND);
        return;
    case KBD_CMD_ENABLE:
        m_kbd_queue.clear();
        m_kbd_scanning = true;
        kbd_reply(ACK);
        return;
    case KBD_CMD_DISABLE:
        m_kbd_queue.clear();
        keyboard_defaults();
        m_kbd_scanning = false;
        kbd_reply(ACK);
        return;
    case KBD_CMD_DEFAULTS:
        m_kbd_queue.clear();
        keyboard_defaults();
        kbd_reply(ACK);
        return;
    case KBD_CMD_RESEND:
        kbd_reply(m_kbd_last);
        return;
    case KBD_CMD_RESET:
        m_kbd_queue.clear();
        keyboard_defaults();
        m_kbd_scanning = true;
        kbd_reply(ACK);
        kbd_reply(BAT_OK);
        return;
    default:
        if (value >= KBD_CMD_SET3_FIRST && value <= KBD_CMD_SET3_LAST) {
            kbd_reply(ACK);
            return;
        }
        HAKO_WARN_RATELIMITED("i8042: unknown keyboard command {:#x}", value);
        kbd_reply(RESEND);
        return;
    }
}

void I8042::mouse_defaults()
{
    m_aux_rate = 100;
    m_aux_resolution = 2;
    m_aux_scaling21 = false;
    m_aux_remote = false;
    m_aux_streaming = false;
}

void I8042::mouse_command(uint8_t value)
{
    if (uint8_t const pending = m_aux_pending) {
        m_aux_pending = 0;
        if (pending == AUX_CMD_SAMPLE_RATE)
            m_aux_rate = value;
        else
            m_aux_resolution = value & 0x03;
        aux_reply(ACK);
        return;
    }
    switch (value) {
    case AUX_CMD_SCALING_11:
    case AUX_CMD_SCALING_21:
        m_aux_scaling21 = value == AUX_CMD_SCALING_21;
        aux_reply(ACK);
        return;
    case AUX_CMD_RESOLUTION:
    case AUX_CMD_SAMPLE_RATE:
        m_aux_pending = value;
        aux_reply(ACK);
        return;
    case AUX_CMD_STATUS:
        aux_reply(ACK);
        aux_reply(static_cast<uint8_t>((m_aux_remote ? 0x40 : 0) | (m_aux_streaming ? 0x20 : 0)
            | (m_aux_scaling21 ? 0x10 : 0)));
        aux_reply(m_aux_resolution);
        aux_reply(m_aux_rate);
        return;
    case AUX_CMD_STREAM_MODE:
    case AUX_CMD_REMOTE_MODE:
        m_aux_remote = value == AUX_CMD_REMOTE_MODE;
        aux_reply(ACK);
        return;
    case AUX_CMD_READ_DATA: // a packet with no movement and no buttons
        aux_reply(ACK);
        aux_reply(0x08);
        aux_reply(0x00);
        aux_reply(0x00);
        return;
    case AUX_CMD_RESET_WRAP:
    case AUX_CMD_WRAP_MODE: // wrap (echo) mode is not modelled
    case AUX_CMD_RESEND:
        aux_reply(ACK);
        return;
    case AUX_CMD_IDENTIFY:
        aux_reply(ACK);
        aux_reply(MOUSE_ID);
        return;
    case AUX_CMD_ENABLE:
        m_aux_streaming = true;
        aux_reply(ACK);
        return;
    case AUX_CMD_DISABLE:
        m_aux_streaming = false;
        aux_reply(ACK);
        return;
    case AUX_CMD_DEFAULTS:
        mouse_defaults();
        aux_reply(ACK);
        return;
    case AUX_CMD_RESET:
        m_aux_queue.clear();
        mouse_defaults();
        aux_reply(ACK);
        aux_reply(BAT_OK);
        aux_reply(MOUSE_ID);
        return;
    default:
        HAKO_WARN_RATELIMITED("i8042: unknown mouse command {:#x}", value);
        aux_reply(RESEND);
        return;
    }
}

void I8042::push_keyboard_bytes(std::span<uint8_t const> bytes)
{
    std::lock_guard lock(m_mutex);
    if (!m_kbd_scanning)
        return;
    for (uint8_t b : bytes)
        queue(m_kbd_queue, b, Source::Keyboard);
    refill();
    update_irqs();
}

void I8042::push_mouse_bytes(std::span<uint8_t const> bytes)
{
    std::lock_guard lock(m_mutex);
    if (!m_aux_streaming || m_aux_remote)
        return;
    for (uint8_t b : bytes)
        queue(m_aux_queue, b, Source::Mouse);
    refill();
    update_irqs();
}

int I8042::scancode_set() const
{
    std::lock_guard lock(m_mutex);
    return m_kbd_set;
}

bool I8042::translating() const
{
    std::lock_guard lock(m_mutex);
    return m_ram[0] & CMD_XLATE;
}

size_t I8042::queued() const
{
    std::lock_guard lock(m_mutex);
    return m_ctrl_queue.size() + m_kbd_queue.size() + m_aux_queue.size();
}

size_t I8042::keyboard_room() const
{
    std::lock_guard lock(m_mutex);
    return QUEUE_LIMIT - std::min(QUEUE_LIMIT, m_kbd_queue.size());
}

size_t I8042::mouse_room() const
{
    std::lock_guard lock(m_mutex);
    return QUEUE_LIMIT - std::min(QUEUE_LIMIT, m_aux_queue.size());
}

void I8042Port::read(uint64_t offset, std::span<uint8_t> data)
{
    if (offset != 0 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("i8042: bad read at port offset {} size {}", offset, data.size());
        std::fill(data.begin(), data.end(), uint8_t { 0xff });
        return;
    }
    data[0] = m_kind == Kind::Data ? m_controller->read_data() : m_controller->read_status();
}

void I8042Port::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (offset != 0 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("i8042: bad write at port offset {} size {}", offset, data.size());
        return;
    }
    if (m_kind == Kind::Data)
        m_controller->write_data(data[0]);
    else
        m_controller->write_command(data[0]);
}

} // namespace hako::devices::legacy
