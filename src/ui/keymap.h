// Keymap: VNC key events (X11 keysyms) to PS/2 scan codes, independent of the client's keyboard layout.
//
// A keysym is first mapped to the key that produces it on a US (en-us) 104/105-key PC keyboard, as QEMU's default
// "en-us" keymap does: 'a' and 'A' are both the A key, '!' is the 1 key, KP_End and KP_1 are both keypad 1. The
// client sends the modifiers it pressed (Shift, Control, AltGr) as separate key events, so the guest sees the same
// key presses a US keyboard would make. A keysym with no US key (accented letters, dead keys) is dropped.
// The key is then encoded in the scan code set the guest reads: set 2 make/break codes as a PS/2 keyboard sends
// them (break = F0 prefix), or set 1 (break = make | 0x80) when the i8042 translates set 2 (its command byte bit 6,
// what PC firmware and Linux leave on) or the guest selected set 1. Extended keys carry an E0 prefix; Pause is the
// E1 sequence on press only; PrintScreen is the E0 2A E0 37 / E0 12 E0 7C sequence (as without modifiers).
// Not done: scan code set 3 (a guest that selects it gets set 2 codes), the typematic repeat (the client's own
// repeated key-down events are passed on as repeated makes), multimedia and ACPI keys.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace hako::ui {

/// The scan codes the guest reads from the data port.
enum class ScancodeSet : uint8_t { Set1, Set2 };

/// Which set the host must send given the keyboard's selected set (1-3) and the controller's translation bit.
ScancodeSet scancode_set_for(int keyboard_set, bool translating);

/// A physical key of the US keyboard, by its scan codes. `extended` keys send E0 before the code in both sets.
struct PhysicalKey {
    uint8_t set1;
    uint8_t set2;
    bool extended;
    char const* name;
};

/// The special keys whose codes are sequences rather than a single (E0-prefixed) code.
enum class SpecialKey : uint8_t { None, Pause, PrintScreen };

/// The US key a keysym is typed with, or nullopt if it has none.
struct KeyLookup {
    PhysicalKey key;
    SpecialKey special { SpecialKey::None };
};
std::optional<KeyLookup> key_for_keysym(uint32_t keysym);

/// The bytes of one key event: at most 8 (Pause's press in set 2).
struct ScanBytes {
    std::array<uint8_t, 8> bytes {};
    uint8_t size { 0 };
    std::span<uint8_t const> span() const { return { bytes.data(), size }; }
    void push(uint8_t b)
    {
        if (size < bytes.size())
            bytes[size++] = b;
    }
};

/// The scan codes for a key press (down) or release of `keysym`; empty if the keysym has no US key, and for the
/// release of Pause (which sends nothing on release).
ScanBytes encode_key(uint32_t keysym, bool down, ScancodeSet set);
/// The scan codes of a physical key (used by encode_key; public for tests).
ScanBytes encode_physical(KeyLookup const& key, bool down, ScancodeSet set);

/// Every physical key hako knows (for tests): the 104 keys plus the ISO 102nd key and SysRq.
std::span<PhysicalKey const> all_physical_keys();

} // namespace hako::ui
