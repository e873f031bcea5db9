#include "ui/keymap.h"

#include <gtest/gtest.h>
#include <set>
#include <vector>

namespace hako::ui {
namespace {

std::vector<uint8_t> bytes(uint32_t keysym, bool down, ScancodeSet set)
{
    auto const b = encode_key(keysym, down, set);
    return { b.span().begin(), b.span().end() };
}

using V = std::vector<uint8_t>;

// Make and break in both sets for a non-extended key.
void expect_plain(uint32_t keysym, uint8_t set1, uint8_t set2)
{
    SCOPED_TRACE(testing::Message() << "keysym " << std::hex << keysym);
    EXPECT_EQ(bytes(keysym, true, ScancodeSet::Set1), V({ set1 }));
    EXPECT_EQ(bytes(keysym, false, ScancodeSet::Set1), V({ static_cast<uint8_t>(set1 | 0x80) }));
    EXPECT_EQ(bytes(keysym, true, ScancodeSet::Set2), V({ set2 }));
    EXPECT_EQ(bytes(keysym, false, ScancodeSet::Set2), V({ 0xf0, set2 }));
}

void expect_extended(uint32_t keysym, uint8_t set1, uint8_t set2)
{
    SCOPED_TRACE(testing::Message() << "keysym " << std::hex << keysym);
    EXPECT_EQ(bytes(keysym, true, ScancodeSet::Set1), V({ 0xe0, set1 }));
    EXPECT_EQ(bytes(keysym, false, ScancodeSet::Set1), V({ 0xe0, static_cast<uint8_t>(set1 | 0x80) }));
    EXPECT_EQ(bytes(keysym, true, ScancodeSet::Set2), V({ 0xe0, set2 }));
    EXPECT_EQ(bytes(keysym, false, ScancodeSet::Set2), V({ 0xe0, 0xf0, set2 }));
}

TEST(Keymap, LettersBothCasesAreTheSameKey)
{
    // a..z in keyboard order of their set 1 codes is not alphabetical: the table of the reference, letter by letter.
    struct L {
        char c;
        uint8_t s1, s2;
    };
    constexpr L letters[] = { { 'a', 0x1e, 0x1c }, { 'b', 0x30, 0x32 }, { 'c', 0x2e, 0x21 }, { 'd', 0x20, 0x23 },
        { 'e', 0x12, 0x24 }, { 'f', 0x21, 0x2b }, { 'g', 0x22, 0x34 }, { 'h', 0x23, 0x33 }, { 'i', 0x17, 0x43 },
        { 'j', 0x24, 0x3b }, { 'k', 0x25, 0x42 }, { 'l', 0x26, 0x4b }, { 'm', 0x32, 0x3a }, { 'n', 0x31, 0x31 },
        { 'o', 0x18, 0x44 }, { 'p', 0x19, 0x4d }, { 'q', 0x10, 0x15 }, { 'r', 0x13, 0x2d }, { 's', 0x1f, 0x1b },
        { 't', 0x14, 0x2c }, { 'u', 0x16, 0x3c }, { 'v', 0x2f, 0x2a }, { 'w', 0x11, 0x1d }, { 'x', 0x2d, 0x22 },
        { 'y', 0x15, 0x35 }, { 'z', 0x2c, 0x1a } };
    static_assert(sizeof letters / sizeof letters[0] == 26);
    for (auto const& l : letters) {
        expect_plain(static_cast<uint32_t>(l.c), l.s1, l.s2);
        expect_plain(static_cast<uint32_t>(l.c - 'a' + 'A'), l.s1, l.s2);
    }
}

TEST(Keymap, DigitsAndTheirShiftedSymbols)
{
    constexpr char const* digits = "1234567890";
    constexpr char const* shifted = "!@#$%^&*()";
    constexpr uint8_t s1[] = { 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b };
    constexpr uint8_t s2[] = { 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45 };
    for (int i = 0; i < 10; ++i) {
        expect_plain(static_cast<uint32_t>(digits[i]), s1[i], s2[i]);
        expect_plain(static_cast<uint32_t>(shifted[i]), s1[i], s2[i]);
    }
}

TEST(Keymap, Punctuation)
{
    expect_plain(' ', 0x39, 0x29);
    expect_plain('-', 0x0c, 0x4e);
    expect_plain('_', 0x0c, 0x4e);
    expect_plain('=', 0x0d, 0x55);
    expect_plain('+', 0x0d, 0x55);
    expect_plain('[', 0x1a, 0x54);
    expect_plain('{', 0x1a, 0x54);
    expect_plain(']', 0x1b, 0x5b);
    expect_plain('}', 0x1b, 0x5b);
    expect_plain('\\', 0x2b, 0x5d);
    expect_plain('|', 0x2b, 0x5d);
    expect_plain(';', 0x27, 0x4c);
    expect_plain(':', 0x27, 0x4c);
    expect_plain('\'', 0x28, 0x52);
    expect_plain('"', 0x28, 0x52);
    expect_plain('`', 0x29, 0x0e);
    expect_plain('~', 0x29, 0x0e);
    expect_plain(',', 0x33, 0x41);
    expect_plain('<', 0x33, 0x41);
    expect_plain('.', 0x34, 0x49);
    expect_plain('>', 0x34, 0x49);
    expect_plain('/', 0x35, 0x4a);
    expect_plain('?', 0x35, 0x4a);
}

TEST(Keymap, EveryPrintableAsciiCharacterHasAKey)
{
    for (uint32_t c = 0x20; c < 0x7f; ++c)
        EXPECT_TRUE(key_for_keysym(c).has_value()) << "character " << static_cast<char>(c);
}

TEST(Keymap, FunctionKeys)
{
    constexpr uint8_t s1[] = { 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x57, 0x58 };
    constexpr uint8_t s2[] = { 0x05, 0x06, 0x04, 0x0c, 0x03, 0x0b, 0x83, 0x0a, 0x01, 0x09, 0x78, 0x07 };
    for (uint32_t i = 0; i < 12; ++i)
        expect_plain(0xffbe + i, s1[i], s2[i]); // XK_F1..XK_F12
}

TEST(Keymap, EditingAndControlKeys)
{
    expect_plain(0xff1b, 0x01, 0x76); // Escape
    expect_plain(0xff08, 0x0e, 0x66); // BackSpace
    expect_plain(0xff09, 0x0f, 0x0d); // Tab
    expect_plain(0xfe20, 0x0f, 0x0d); // ISO_Left_Tab (Shift+Tab)
    expect_plain(0xff0d, 0x1c, 0x5a); // Return
    expect_plain(0xffe5, 0x3a, 0x58); // Caps_Lock
    expect_plain(0xff7f, 0x45, 0x77); // Num_Lock
    expect_plain(0xff14, 0x46, 0x7e); // Scroll_Lock
    expect_plain(0xff15, 0x54, 0x84); // Sys_Req
}

TEST(Keymap, Modifiers)
{
    expect_plain(0xffe1, 0x2a, 0x12);    // Shift_L
    expect_plain(0xffe2, 0x36, 0x59);    // Shift_R
    expect_plain(0xffe3, 0x1d, 0x14);    // Control_L
    expect_extended(0xffe4, 0x1d, 0x14); // Control_R
    expect_plain(0xffe9, 0x38, 0x11);    // Alt_L
    expect_extended(0xffea, 0x38, 0x11); // Alt_R
    expect_extended(0xfe03, 0x38, 0x11); // ISO_Level3_Shift (AltGr)
    expect_extended(0xffeb, 0x5b, 0x1f); // Super_L
    expect_extended(0xffec, 0x5c, 0x27); // Super_R
    expect_extended(0xffe7, 0x5b, 0x1f); // Meta_L
    expect_extended(0xff67, 0x5d, 0x2f); // Menu
}

TEST(Keymap, ArrowsAndNavigationAreExtended)
{
    expect_extended(0xff52, 0x48, 0x75); // Up
    expect_extended(0xff54, 0x50, 0x72); // Down
    expect_extended(0xff51, 0x4b, 0x6b); // Left
    expect_extended(0xff53, 0x4d, 0x74); // Right
    expect_extended(0xff50, 0x47, 0x6c); // Home
    expect_extended(0xff57, 0x4f, 0x69); // End
    expect_extended(0xff55, 0x49, 0x7d); // Prior
    expect_extended(0xff56, 0x51, 0x7a); // Next
    expect_extended(0xff63, 0x52, 0x70); // Insert
    expect_extended(0xffff, 0x53, 0x71); // Delete
}

TEST(Keymap, Keypad)
{
    constexpr uint8_t s1[] = { 0x52, 0x4f, 0x50, 0x51, 0x4b, 0x4c, 0x4d, 0x47, 0x48, 0x49 };
    constexpr uint8_t s2[] = { 0x70, 0x69, 0x72, 0x7a, 0x6b, 0x73, 0x74, 0x6c, 0x75, 0x7d };
    for (uint32_t i = 0; i < 10; ++i)
        expect_plain(0xffb0 + i, s1[i], s2[i]); // XK_KP_0..XK_KP_9
    // Num Lock off: the same keys.
    expect_plain(0xff9e, 0x52, 0x70); // KP_Insert = KP_0
    expect_plain(0xff9c, 0x4f, 0x69); // KP_End = KP_1
    expect_plain(0xff99, 0x50, 0x72); // KP_Down = KP_2
    expect_plain(0xff9b, 0x51, 0x7a); // KP_Next = KP_3
    expect_plain(0xff96, 0x4b, 0x6b); // KP_Left = KP_4
    expect_plain(0xff9d, 0x4c, 0x73); // KP_Begin = KP_5
    expect_plain(0xff98, 0x4d, 0x74); // KP_Right = KP_6
    expect_plain(0xff95, 0x47, 0x6c); // KP_Home = KP_7
    expect_plain(0xff97, 0x48, 0x75); // KP_Up = KP_8
    expect_plain(0xff9a, 0x49, 0x7d); // KP_Prior = KP_9
    expect_plain(0xff9f, 0x53, 0x71); // KP_Delete = KP_Decimal
    expect_plain(0xffae, 0x53, 0x71); // KP_Decimal
    expect_plain(0xffaa, 0x37, 0x7c); // KP_Multiply
    expect_plain(0xffad, 0x4a, 0x7b); // KP_Subtract
    expect_plain(0xffab, 0x4e, 0x79); // KP_Add
    expect_extended(0xffaf, 0x35, 0x4a); // KP_Divide
    expect_extended(0xff8d, 0x1c, 0x5a); // KP_Enter
}

TEST(Keymap, PauseIsOneSequenceOnPressAndNothingOnRelease)
{
    for (uint32_t keysym : { 0xff13u, 0xff6bu }) { // Pause, Break
        EXPECT_EQ(bytes(keysym, true, ScancodeSet::Set1), V({ 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 }));
        EXPECT_EQ(bytes(keysym, true, ScancodeSet::Set2), V({ 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 }));
        EXPECT_TRUE(bytes(keysym, false, ScancodeSet::Set1).empty());
        EXPECT_TRUE(bytes(keysym, false, ScancodeSet::Set2).empty());
    }
}

TEST(Keymap, PrintScreen)
{
    EXPECT_EQ(bytes(0xff61, true, ScancodeSet::Set1), V({ 0xe0, 0x2a, 0xe0, 0x37 }));
    EXPECT_EQ(bytes(0xff61, false, ScancodeSet::Set1), V({ 0xe0, 0xb7, 0xe0, 0xaa }));
    EXPECT_EQ(bytes(0xff61, true, ScancodeSet::Set2), V({ 0xe0, 0x12, 0xe0, 0x7c }));
    EXPECT_EQ(bytes(0xff61, false, ScancodeSet::Set2), V({ 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12 }));
}

TEST(Keymap, KeysymsWithoutAUsKeyAreDropped)
{
    for (uint32_t keysym : { 0u, 0x1fu, 0x7fu, 0xe9u /* eacute */, 0xfe51u /* dead_acute */, 0x20acu /* EuroSign */,
             0x1000000u, 0xffffffffu }) {
        EXPECT_FALSE(key_for_keysym(keysym).has_value()) << std::hex << keysym;
        EXPECT_TRUE(bytes(keysym, true, ScancodeSet::Set2).empty());
    }
}

TEST(Keymap, TableCodesAreUniqueAndValid)
{
    std::set<std::pair<uint8_t, bool>> set1, set2;
    for (auto const& k : all_physical_keys()) {
        std::string_view const name = k.name;
        EXPECT_LT(k.set1, 0x80) << name; // bit 7 is the set 1 break bit
        if (name == "Pause" || name == "Print")
            continue; // sequence keys: their codes are those of other keys inside E0/E1 sequences
        EXPECT_TRUE(set1.insert({ k.set1, k.extended }).second) << name;
        EXPECT_TRUE(set2.insert({ k.set2, k.extended }).second) << name;
        EXPECT_NE(k.set2, 0xf0) << name;
        EXPECT_NE(k.set2, 0xe0) << name;
    }
    EXPECT_EQ(all_physical_keys().size(), 106u); // 104 keys + the ISO 102nd key + SysRq
}

TEST(Keymap, SetSelection)
{
    EXPECT_EQ(scancode_set_for(2, true), ScancodeSet::Set1);  // PC default: set 2 translated by the controller
    EXPECT_EQ(scancode_set_for(2, false), ScancodeSet::Set2); // Linux i8042.direct, or a guest turning XLATE off
    EXPECT_EQ(scancode_set_for(1, false), ScancodeSet::Set1);
    EXPECT_EQ(scancode_set_for(3, false), ScancodeSet::Set2); // set 3 is not done: the closest is set 2
}

} // namespace
} // namespace hako::ui
