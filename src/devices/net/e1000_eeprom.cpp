#include "devices/net/e1000_eeprom.h"

namespace hako::devices::net {

using namespace e1000;

namespace {
// Word addresses (SDM table 5-2).
constexpr unsigned WORD_ICW1 = 0x0a;
constexpr unsigned WORD_SUBSYSTEM_ID = 0x0b;
constexpr unsigned WORD_SUBSYSTEM_VENDOR = 0x0c;
constexpr unsigned WORD_DEVICE_ID = 0x0d;
constexpr unsigned WORD_VENDOR_ID = 0x0e;
constexpr unsigned WORD_ICW2 = 0x0f;
constexpr unsigned WORD_ICW3_PORT_A = 0x24;
constexpr uint16_t ICW1_SIGNATURE = 0x4000; // bits 15:14 = 01b: a valid image
constexpr uint16_t ICW1_LOAD_IDS = 0x0003;  // load the subsystem and device IDs from the EEPROM
constexpr uint16_t ICW2_PAUSE_ASM_DIR = 0x3000; // advertise symmetric and asymmetric pause
constexpr uint16_t INTEL_VENDOR_ID = 0x8086;
constexpr unsigned OPCODE_READ = 2;
constexpr unsigned COMMAND_BITS = 2 + 6; // opcode and address after the start bit
} // namespace

E1000Eeprom::E1000Eeprom(hako::net::MacAddress const& mac, uint16_t device_id, uint16_t subsystem_vendor_id,
    uint16_t subsystem_id)
{
    m_words.fill(0xffff);
    for (unsigned i = 0; i < 3; ++i)
        m_words[i] = static_cast<uint16_t>(mac[2 * i] | mac[2 * i + 1] << 8);
    for (unsigned i = 3; i < 0x0a; ++i)
        m_words[i] = 0;
    m_words[WORD_ICW1] = ICW1_SIGNATURE | ICW1_LOAD_IDS;
    m_words[WORD_SUBSYSTEM_ID] = subsystem_id;
    m_words[WORD_SUBSYSTEM_VENDOR] = subsystem_vendor_id;
    m_words[WORD_DEVICE_ID] = device_id;
    m_words[WORD_VENDOR_ID] = INTEL_VENDOR_ID;
    m_words[WORD_ICW2] = ICW2_PAUSE_ASM_DIR;
    m_words[WORD_ICW3_PORT_A] = 0; // no APM wake-up
    uint16_t sum = 0;
    for (unsigned i = 0; i < EEPROM_CHECKSUM_WORD; ++i)
        sum = static_cast<uint16_t>(sum + m_words[i]);
    m_words[EEPROM_CHECKSUM_WORD] = static_cast<uint16_t>(EEPROM_SUM - sum);
}

void E1000Eeprom::reset_interface()
{
    m_state = State::Idle;
    m_sk = false;
    m_do = true;
    m_bits = 0;
    m_command = 0;
    m_out_bit = -1;
}

void E1000Eeprom::write_pins(uint32_t eecd)
{
    bool const cs = eecd & EECD_CS;
    bool const sk = eecd & EECD_SK;
    bool const di = eecd & EECD_DI;
    if (!cs) {
        reset_interface();
        m_sk = sk;
        return;
    }
    bool const rising = sk && !m_sk;
    m_sk = sk;
    if (!rising)
        return;
    switch (m_state) {
    case State::Idle:
        if (di) { // the start bit; zeros before it are ignored
            m_state = State::Command;
            m_bits = 0;
            m_command = 0;
        }
        break;
    case State::Command:
        m_command = m_command << 1 | (di ? 1u : 0u);
        if (++m_bits == COMMAND_BITS) {
            unsigned const opcode = m_command >> 6;
            m_address = m_command & (EEPROM_WORDS - 1);
            if (opcode == OPCODE_READ) {
                m_state = State::Output;
                m_out_bit = -1;
                m_do = false; // the dummy zero
            } else {
                // WRITE (01), ERASE (11), and the 00 group (EWEN, EWDS, ERAL, WRAL): a read-only part ignores them.
                ++m_unsupported;
                m_state = State::Idle;
                m_do = true; // "ready"
            }
        }
        break;
    case State::Output:
        if (++m_out_bit == 16) {
            m_out_bit = 0;
            m_address = (m_address + 1) % EEPROM_WORDS;
        }
        m_do = (m_words[m_address] >> (15 - m_out_bit)) & 1;
        break;
    }
}

} // namespace hako::devices::net
