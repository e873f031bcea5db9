#include "ui/keymap.h"

#include <string_view>

namespace hako::ui {

namespace {

// The US keyboard: set 1 and set 2 codes of each key (IBM PS/2 keyboard technical reference; Microsoft's "Keyboard
// Scan Code Specification"). Letters, digits and punctuation keys are named by their unshifted character.
constexpr PhysicalKey KEYS[] = {
    { 0x01, 0x76, false, "Escape" },
    { 0x02, 0x16, false, "1" }, { 0x03, 0x1e, false, "2" }, { 0x04, 0x26, false, "3" }, { 0x05, 0x25, false, "4" },
    { 0x06, 0x2e, false, "5" }, { 0x07, 0x36, false, "6" }, { 0x08, 0x3d, false, "7" }, { 0x09, 0x3e, false, "8" },
    { 0x0a, 0x46, false, "9" }, { 0x0b, 0x45, false, "0" },
    { 0x0c, 0x4e, false, "-" }, { 0x0d, 0x55, false, "=" }, { 0x0e, 0x66, false, "Backspace" },
    { 0x0f, 0x0d, false, "Tab" },
    { 0x10, 0x15, false, "q" }, { 0x11, 0x1d, false, "w" }, { 0x12, 0x24, false, "e" }, { 0x13, 0x2d, false, "r" },
    { 0x14, 0x2c, false, "t" }, { 0x15, 0x35, false, "y" }, { 0x16, 0x3c, false, "u" }, { 0x17, 0x43, false, "i" },
    { 0x18, 0x44, false, "o" }, { 0x19, 0x4d, false, "p" }, { 0x1a, 0x54, false, "[" }, { 0x1b, 0x5b, false, "]" },
    { 0x1c, 0x5a, false, "Enter" }, { 0x1d, 0x14, false, "Control_L" },
    { 0x1e, 0x1c, false, "a" }, { 0x1f, 0x1b, false, "s" }, { 0x20, 0x23, false, "d" }, { 0x21, 0x2b, false, "f" },
    { 0x22, 0x34, false, "g" }, { 0x23, 0x33, false, "h" }, { 0x24, 0x3b, false, "j" }, { 0x25, 0x42, false, "k" },
    { 0x26, 0x4b, false, "l" }, { 0x27, 0x4c, false, ";" }, { 0x28, 0x52, false, "'" }, { 0x29, 0x0e, false, "`" },
    { 0x2a, 0x12, false, "Shift_L" }, { 0x2b, 0x5d, false, "\\" },
    { 0x2c, 0x1a, false, "z" }, { 0x2d, 0x22, false, "x" }, { 0x2e, 0x21, false, "c" }, { 0x2f, 0x2a, false, "v" },
    { 0x30, 0x32, false, "b" }, { 0x31, 0x31, false, "n" }, { 0x32, 0x3a, false, "m" }, { 0x33, 0x41, false, "," },
    { 0x34, 0x49, false, "." }, { 0x35, 0x4a, false, "/" }, { 0x36, 0x59, false, "Shift_R" },
    { 0x37, 0x7c, false, "KP_Multiply" }, { 0x38, 0x11, false, "Alt_L" }, { 0x39, 0x29, false, "space" },
    { 0x3a, 0x58, false, "Caps_Lock" },
    { 0x3b, 0x05, false, "F1" }, { 0x3c, 0x06, false, "F2" }, { 0x3d, 0x04, false, "F3" }, { 0x3e, 0x0c, false, "F4" },
    { 0x3f, 0x03, false, "F5" }, { 0x40, 0x0b, false, "F6" }, { 0x41, 0x83, false, "F7" }, { 0x42, 0x0a, false, "F8" },
    { 0x43, 0x01, false, "F9" }, { 0x44, 0x09, false, "F10" },
    { 0x45, 0x77, false, "Num_Lock" }, { 0x46, 0x7e, false, "Scroll_Lock" },
    { 0x47, 0x6c, false, "KP_7" }, { 0x48, 0x75, false, "KP_8" }, { 0x49, 0x7d, false, "KP_9" },
    { 0x4a, 0x7b, false, "KP_Subtract" },
    { 0x4b, 0x6b, false, "KP_4" }, { 0x4c, 0x73, false, "KP_5" }, { 0x4d, 0x74, false, "KP_6" },
    { 0x4e, 0x79, false, "KP_Add" },
    { 0x4f, 0x69, false, "KP_1" }, { 0x50, 0x72, false, "KP_2" }, { 0x51, 0x7a, false, "KP_3" },
    { 0x52, 0x70, false, "KP_0" }, { 0x53, 0x71, false, "KP_Decimal" },
    { 0x54, 0x84, false, "Sys_Req" }, // Alt+PrintScreen
    { 0x56, 0x61, false, "less" },    // the ISO 102nd key
    { 0x57, 0x78, false, "F11" }, { 0x58, 0x07, false, "F12" },
    // Extended keys: E0 prefix.
    { 0x1c, 0x5a, true, "KP_Enter" }, { 0x1d, 0x14, true, "Control_R" }, { 0x35, 0x4a, true, "KP_Divide" },
    { 0x38, 0x11, true, "Alt_R" },
    { 0x47, 0x6c, true, "Home" }, { 0x48, 0x75, true, "Up" }, { 0x49, 0x7d, true, "Page_Up" },
    { 0x4b, 0x6b, true, "Left" }, { 0x4d, 0x74, true, "Right" }, { 0x4f, 0x69, true, "End" },
    { 0x50, 0x72, true, "Down" }, { 0x51, 0x7a, true, "Page_Down" }, { 0x52, 0x70, true, "Insert" },
    { 0x53, 0x71, true, "Delete" },
    { 0x5b, 0x1f, true, "Super_L" }, { 0x5c, 0x27, true, "Super_R" }, { 0x5d, 0x2f, true, "Menu" },
    // The two sequence keys: their codes here are those after E0 / E1 in the sequences encode_physical() sends.
    { 0x37, 0x7c, true, "Print" }, { 0x45, 0x77, false, "Pause" },
};
constexpr size_t KEY_COUNT = sizeof KEYS / sizeof KEYS[0];

constexpr std::optional<size_t> index_of(std::string_view name)
{
    for (size_t i = 0; i < KEY_COUNT; ++i)
        if (name == KEYS[i].name)
            return i;
    return std::nullopt;
}

// The unshifted character of the US key that types an ASCII character (shifted characters are typed with Shift on
// the same key).
constexpr char unshifted(char c)
{
    if (c >= 'A' && c <= 'Z')
        return static_cast<char>(c - 'A' + 'a');
    constexpr std::string_view SHIFTED = "!@#$%^&*()_+{}|:\"~<>?";
    constexpr std::string_view BASE = "1234567890-=[]\\;'`,./";
    if (auto const p = SHIFTED.find(c); p != std::string_view::npos)
        return BASE[p];
    return c;
}

// X11 keysyms (X Window System Protocol, appendix A; keysymdef.h) for the non-printing keys.
struct KeysymName {
    uint32_t keysym;
    char const* key;
};
constexpr KeysymName FUNCTION_KEYSYMS[] = {
    { 0xff08, "Backspace" }, { 0xff09, "Tab" }, { 0xfe20, "Tab" } /* ISO_Left_Tab, Shift+Tab */,
    { 0xff0d, "Enter" }, { 0xff13, "Pause" }, { 0xff14, "Scroll_Lock" }, { 0xff15, "Sys_Req" },
    { 0xff1b, "Escape" }, { 0xff50, "Home" }, { 0xff51, "Left" }, { 0xff52, "Up" }, { 0xff53, "Right" },
    { 0xff54, "Down" }, { 0xff55, "Page_Up" }, { 0xff56, "Page_Down" }, { 0xff57, "End" }, { 0xff61, "Print" },
    { 0xff63, "Insert" }, { 0xff67, "Menu" }, { 0xff6b, "Pause" } /* Break: Ctrl+Pause on the same key */,
    { 0xff7f, "Num_Lock" }, { 0xffff, "Delete" },
    // Keypad, with Num Lock on and off (the same keys).
    { 0xff8d, "KP_Enter" }, { 0xff95, "KP_7" }, { 0xff96, "KP_4" }, { 0xff97, "KP_8" }, { 0xff98, "KP_6" },
    { 0xff99, "KP_2" }, { 0xff9a, "KP_9" }, { 0xff9b, "KP_3" }, { 0xff9c, "KP_1" }, { 0xff9d, "KP_5" },
    { 0xff9e, "KP_0" }, { 0xff9f, "KP_Decimal" }, { 0xffaa, "KP_Multiply" }, { 0xffab, "KP_Add" },
    { 0xffac, "KP_Decimal" } /* KP_Separator */, { 0xffad, "KP_Subtract" }, { 0xffae, "KP_Decimal" },
    { 0xffaf, "KP_Divide" }, { 0xffb0, "KP_0" }, { 0xffb1, "KP_1" }, { 0xffb2, "KP_2" }, { 0xffb3, "KP_3" },
    { 0xffb4, "KP_4" }, { 0xffb5, "KP_5" }, { 0xffb6, "KP_6" }, { 0xffb7, "KP_7" }, { 0xffb8, "KP_8" },
    { 0xffb9, "KP_9" }, { 0xffbd, "=" } /* KP_Equal: no such key on a PC keypad */,
    { 0xffbe, "F1" }, { 0xffbf, "F2" }, { 0xffc0, "F3" }, { 0xffc1, "F4" }, { 0xffc2, "F5" }, { 0xffc3, "F6" },
    { 0xffc4, "F7" }, { 0xffc5, "F8" }, { 0xffc6, "F9" }, { 0xffc7, "F10" }, { 0xffc8, "F11" }, { 0xffc9, "F12" },
    // Modifiers.
    { 0xffe1, "Shift_L" }, { 0xffe2, "Shift_R" }, { 0xffe3, "Control_L" }, { 0xffe4, "Control_R" },
    { 0xffe5, "Caps_Lock" }, { 0xffe7, "Super_L" } /* Meta_L */, { 0xffe8, "Super_R" } /* Meta_R */,
    { 0xffe9, "Alt_L" }, { 0xffea, "Alt_R" }, { 0xffeb, "Super_L" }, { 0xffec, "Super_R" },
    { 0xfe03, "Alt_R" } /* ISO_Level3_Shift (AltGr) */, { 0xff7e, "Alt_R" } /* Mode_switch */,
};

// Resolved once at compile time: keysym -> index into KEYS (a name not in KEYS is a compile error: value() of an
// empty optional in a constant expression).
struct KeysymIndex {
    uint32_t keysym;
    uint8_t index;
};
constexpr auto FUNCTION_INDEX = [] {
    std::array<KeysymIndex, sizeof FUNCTION_KEYSYMS / sizeof FUNCTION_KEYSYMS[0]> out {};
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = { FUNCTION_KEYSYMS[i].keysym, static_cast<uint8_t>(index_of(FUNCTION_KEYSYMS[i].key).value()) };
    return out;
}();

// Printable ASCII (keysyms 0x20-0x7e equal their character) -> index into KEYS, or 0xff.
constexpr auto ASCII_INDEX = [] {
    std::array<uint8_t, 0x5f> out {};
    for (size_t c = 0x20; c < 0x7f; ++c) {
        char const base = unshifted(static_cast<char>(c));
        char const name[2] = { base, 0 };
        auto const i = c == ' ' ? index_of("space") : index_of(std::string_view(name, 1));
        out[c - 0x20] = i ? static_cast<uint8_t>(*i) : uint8_t { 0xff };
    }
    return out;
}();
static_assert(KEY_COUNT < 0xff);

constexpr uint8_t PREFIX_E0 = 0xe0;
constexpr uint8_t PREFIX_E1 = 0xe1;
constexpr uint8_t SET2_BREAK = 0xf0;
constexpr uint8_t SET1_BREAK = 0x80;

} // namespace

ScancodeSet scancode_set_for(int keyboard_set, bool translating)
{
    // With translation on, the controller turns the keyboard's set 2 into set 1 for the guest; the host input layer
    // sends the result. (A keyboard in set 1 behind translation would be translated twice; guests do not do that,
    // and set 1 is the closest.)
    if (translating || keyboard_set == 1)
        return ScancodeSet::Set1;
    return ScancodeSet::Set2;
}

std::span<PhysicalKey const> all_physical_keys()
{
    return { KEYS, KEY_COUNT };
}

std::optional<KeyLookup> key_for_keysym(uint32_t keysym)
{
    std::optional<size_t> index;
    if (keysym >= 0x20 && keysym < 0x7f) {
        uint8_t const i = ASCII_INDEX[keysym - 0x20];
        if (i != 0xff)
            index = i;
    } else {
        for (auto const& e : FUNCTION_INDEX)
            if (e.keysym == keysym)
                index = e.index;
    }
    if (!index)
        return std::nullopt;
    KeyLookup out { KEYS[*index], SpecialKey::None };
    std::string_view const name = out.key.name;
    if (name == "Pause")
        out.special = SpecialKey::Pause;
    else if (name == "Print")
        out.special = SpecialKey::PrintScreen;
    return out;
}

ScanBytes encode_physical(KeyLookup const& key, bool down, ScancodeSet set)
{
    ScanBytes out;
    bool const set1 = set == ScancodeSet::Set1;
    auto simple = [&](uint8_t s1, uint8_t s2, bool extended) {
        if (extended)
            out.push(PREFIX_E0);
        if (set1) {
            out.push(down ? s1 : static_cast<uint8_t>(s1 | SET1_BREAK));
        } else {
            if (!down)
                out.push(SET2_BREAK);
            out.push(s2);
        }
    };
    switch (key.special) {
    case SpecialKey::Pause:
        // Make only: E1 + Control make + Num Lock make, then the same breaks.
        if (!down)
            return out;
        for (bool const brk : { false, true }) {
            out.push(PREFIX_E1);
            if (set1) {
                out.push(brk ? uint8_t { 0x9d } : uint8_t { 0x1d });
                out.push(brk ? uint8_t { 0xc5 } : uint8_t { 0x45 });
            } else {
                if (brk)
                    out.push(SET2_BREAK);
                out.push(0x14);
                if (brk)
                    out.push(SET2_BREAK);
                out.push(0x77);
            }
        }
        return out;
    case SpecialKey::PrintScreen:
        // A fake Shift (E0 2A / E0 12) around the E0 37 / E0 7C code; the release in reverse order.
        if (down) {
            simple(0x2a, 0x12, true);
            simple(0x37, 0x7c, true);
        } else {
            simple(0x37, 0x7c, true);
            simple(0x2a, 0x12, true);
        }
        return out;
    case SpecialKey::None:
        break;
    }
    simple(key.key.set1, key.key.set2, key.key.extended);
    return out;
}

ScanBytes encode_key(uint32_t keysym, bool down, ScancodeSet set)
{
    auto const key = key_for_keysym(keysym);
    if (!key)
        return {};
    return encode_physical(*key, down, set);
}

} // namespace hako::ui
