// E1000Eeprom: the 82540EM's serial EEPROM, a 93C46-style Microwire part of 64 16-bit words (8254x SDM 5.3, 5.6),
// reached two ways: bit-banged through EECD (SK clock, CS select, DI in, DO out; what Linux's e1000 does on the
// 82540) and in one step through EERD.
//
// Contents: the MAC address in words 0-2, the PCI IDs the device reports (words 0x0B-0x0E), initialization control
// words that say "full flow control, no wake-up", erased words (0xFFFF) elsewhere, and the checksum word 0x3F chosen
// so that the sum of all 64 words is 0xBABA (SDM 5.6.1).
// Microwire protocol (93C46 x16): with CS high, DI is sampled on each rising SK edge. Leading zeros are ignored until
// the start bit (1); then a 2-bit opcode and a 6-bit address. READ (10b) outputs a dummy 0 on DO, then the word's 16
// bits MSB first, one per rising edge, continuing with the next word (sequential read). Dropping CS ends the command.
// Deliberately not done: WRITE, ERASE, EWEN/EWDS, ERAL/WRAL (the EEPROM is read-only; such commands are counted and
// ignored) and the 256-word 93C66 variant.
// Not thread-safe: the device calls it under its own lock.
#pragma once

#include <array>
#include <cstdint>

#include "devices/net/e1000_regs.h"
#include "net/net_options.h"

namespace hako::devices::net {

class E1000Eeprom final {
public:
    E1000Eeprom(hako::net::MacAddress const& mac, uint16_t device_id, uint16_t subsystem_vendor_id, uint16_t subsystem_id);
    /// A 93C46 with the given contents (the RTL8139 uses the same part and protocol through its 9346CR register).
    explicit E1000Eeprom(std::array<uint16_t, e1000::EEPROM_WORDS> const& words)
        : m_words(words)
    {
    }

    /// A word (addresses beyond the part wrap, as the 6 address bits do).
    uint16_t word(unsigned address) const { return m_words[address % e1000::EEPROM_WORDS]; }

    /// The EECD bits the guest wrote (SK, CS, DI; others ignored). Advances the Microwire state machine.
    void write_pins(uint32_t eecd);
    /// DO as the guest reads it.
    bool data_out() const { return m_do; }
    /// Back to idle (CS dropped), as after a device reset.
    void reset_interface();

    uint64_t unsupported_commands() const { return m_unsupported; }

private:
    enum class State : uint8_t { Idle, Command, Output };
    std::array<uint16_t, e1000::EEPROM_WORDS> m_words {};
    State m_state { State::Idle };
    bool m_sk { false };
    bool m_do { true };
    unsigned m_bits { 0 };   // command bits after the start bit
    uint32_t m_command { 0 };
    unsigned m_address { 0 };
    int m_out_bit { -1 };    // -1: the dummy zero
    uint64_t m_unsupported { 0 };
};

} // namespace hako::devices::net
