#include "arch/x86/aml.h"

#include <fmt/format.h>

namespace hako::arch::x86::aml {

Result<Bytes> pkg_length(size_t body_len)
{
    // One byte holds up to 63; otherwise bits 7-6 of the lead byte count 1-3 following bytes, the lead byte's
    // bits 3-0 hold the low nibble and each following byte eight more bits (ACPI 6.x 20.2.4).
    for (size_t extra = 0; extra <= 3; ++extra) {
        size_t total = body_len + 1 + extra;
        size_t limit = extra == 0 ? 0x40 : (size_t { 1 } << (4 + 8 * extra));
        if (total >= limit)
            continue;
        Bytes out;
        if (extra == 0) {
            out.push_back(static_cast<uint8_t>(total));
            return out;
        }
        out.push_back(static_cast<uint8_t>((extra << 6) | (total & 0x0f)));
        for (size_t i = 0; i < extra; ++i)
            out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
        return out;
    }
    return Error(ErrorKind::OutOfRange, fmt::format("AML package of {} bytes is too large", body_len));
}

static bool is_lead_name_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_name_char(char c) { return is_lead_name_char(c) || (c >= '0' && c <= '9'); }

Result<Bytes> name_string(std::string_view path)
{
    Bytes out;
    size_t i = 0;
    if (!path.empty() && path[0] == '\\') {
        out.push_back(ROOT_CHAR);
        i = 1;
    } else {
        while (i < path.size() && path[i] == '^') {
            out.push_back(PARENT_PREFIX);
            ++i;
        }
    }
    std::vector<std::string_view> segs;
    std::string_view rest = path.substr(i);
    while (!rest.empty()) {
        size_t dot = rest.find('.');
        segs.push_back(rest.substr(0, dot));
        if (dot == std::string_view::npos)
            break;
        rest = rest.substr(dot + 1);
        if (rest.empty())
            return Error(ErrorKind::InvalidArgument, fmt::format("AML name '{}' ends with a dot", path));
    }
    if (segs.size() > 255)
        return Error(ErrorKind::InvalidArgument, "AML name has too many segments");
    if (segs.empty()) {
        if (out.empty())
            return Error(ErrorKind::InvalidArgument, "Empty AML name");
        out.push_back(0); // NullName after a prefix: "\" alone
        return out;
    }
    if (segs.size() == 2)
        out.push_back(DUAL_NAME_PREFIX);
    else if (segs.size() > 2) {
        out.push_back(MULTI_NAME_PREFIX);
        out.push_back(static_cast<uint8_t>(segs.size()));
    }
    for (auto seg : segs) {
        if (seg.empty() || seg.size() > 4 || !is_lead_name_char(seg[0]))
            return Error(ErrorKind::InvalidArgument, fmt::format("Bad AML name segment '{}' in '{}'", seg, path));
        for (size_t k = 0; k < 4; ++k) {
            char c = k < seg.size() ? seg[k] : '_';
            if (!is_name_char(c))
                return Error(ErrorKind::InvalidArgument, fmt::format("Bad AML name character in '{}'", path));
            out.push_back(static_cast<uint8_t>(c));
        }
    }
    return out;
}

Bytes integer(uint64_t v)
{
    if (v == 0)
        return { ZERO_OP };
    if (v == 1)
        return { ONE_OP };
    Bytes out;
    size_t n;
    if (v <= 0xff) {
        out.push_back(BYTE_PREFIX);
        n = 1;
    } else if (v <= 0xffff) {
        out.push_back(WORD_PREFIX);
        n = 2;
    } else if (v <= 0xffffffff) {
        out.push_back(DWORD_PREFIX);
        n = 4;
    } else {
        out.push_back(QWORD_PREFIX);
        n = 8;
    }
    for (size_t i = 0; i < n; ++i)
        out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return out;
}

Result<Bytes> string(std::string_view s)
{
    Bytes out { STRING_PREFIX };
    for (char c : s) {
        auto u = static_cast<uint8_t>(c);
        if (u == 0 || u > 0x7f)
            return Error(ErrorKind::InvalidArgument, "AML strings are ASCII without NUL");
        out.push_back(u);
    }
    out.push_back(0);
    return out;
}

Result<Bytes> eisa_id(std::string_view id)
{
    // Three upper-case letters (5 bits each, 'A' = 1) then four hex digits, stored big-endian in a DWord.
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    if (id.size() != 7)
        return Error(ErrorKind::InvalidArgument, fmt::format("Bad EISA ID '{}'", id));
    uint32_t v = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (id[i] < 'A' || id[i] > 'Z')
            return Error(ErrorKind::InvalidArgument, fmt::format("Bad EISA ID '{}'", id));
        v = (v << 5) | static_cast<uint32_t>(id[i] - 'A' + 1);
    }
    for (size_t i = 3; i < 7; ++i) {
        int h = hex(id[i]);
        if (h < 0)
            return Error(ErrorKind::InvalidArgument, fmt::format("Bad EISA ID '{}'", id));
        v = (v << 4) | static_cast<uint32_t>(h);
    }
    // The 32-bit value is stored byte-swapped (big-endian) in the AML DWord.
    uint32_t swapped = __builtin_bswap32(v);
    Bytes out { DWORD_PREFIX };
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<uint8_t>(swapped >> (8 * i)));
    return out;
}

Result<Bytes> name(std::string_view path, Bytes const& value)
{
    Bytes out { NAME_OP };
    append(out, TRY(name_string(path)));
    append(out, value);
    return out;
}

static Result<Bytes> with_pkg(Bytes prefix, Bytes const& body)
{
    append(prefix, TRY(pkg_length(body.size())));
    append(prefix, body);
    return prefix;
}

Result<Bytes> package(std::vector<Bytes> const& elements)
{
    if (elements.size() > 255)
        return Error(ErrorKind::InvalidArgument, "AML Package has more than 255 elements");
    Bytes body { static_cast<uint8_t>(elements.size()) };
    for (auto const& e : elements)
        append(body, e);
    return with_pkg({ PACKAGE_OP }, body);
}

Result<Bytes> buffer(std::span<uint8_t const> bytes)
{
    Bytes body = integer(bytes.size());
    body.insert(body.end(), bytes.begin(), bytes.end());
    return with_pkg({ BUFFER_OP }, body);
}

Result<Bytes> scope(std::string_view path, Bytes const& body)
{
    Bytes inner = TRY(name_string(path));
    append(inner, body);
    return with_pkg({ SCOPE_OP }, inner);
}

Result<Bytes> device(std::string_view path, Bytes const& body)
{
    Bytes inner = TRY(name_string(path));
    append(inner, body);
    return with_pkg({ EXT_OP_PREFIX, DEVICE_OP }, inner);
}

Result<Bytes> method(std::string_view path, unsigned args, MethodSync sync, Bytes const& body)
{
    if (args > 7)
        return Error(ErrorKind::InvalidArgument, "AML methods take at most 7 arguments");
    Bytes inner = TRY(name_string(path));
    // MethodFlags: bits 0-2 ArgCount, bit 3 SerializeFlag, bits 4-7 SyncLevel (0).
    inner.push_back(static_cast<uint8_t>(args | (sync == MethodSync::Serialized ? 0x08u : 0u)));
    append(inner, body);
    return with_pkg({ METHOD_OP }, inner);
}

Bytes return_value(Bytes const& value)
{
    Bytes out { RETURN_OP };
    append(out, value);
    return out;
}

Bytes io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t length)
{
    // Small resource type 0x08 (I/O port), length 7; information bit 0 = 16-bit decode.
    return { 0x47, 0x01, static_cast<uint8_t>(min), static_cast<uint8_t>(min >> 8), static_cast<uint8_t>(max),
        static_cast<uint8_t>(max >> 8), align, length };
}

Bytes irq_no_flags(uint8_t irq)
{
    // Small resource type 0x04 (IRQ), length 2: a 16-bit mask, no flags byte (edge, active-high).
    uint16_t mask = static_cast<uint16_t>(1u << (irq & 15));
    return { 0x22, static_cast<uint8_t>(mask), static_cast<uint8_t>(mask >> 8) };
}

Result<Bytes> resource_template(Bytes const& descriptors)
{
    Bytes all = descriptors;
    all.push_back(0x79); // End Tag, small type 0x0f, length 1
    all.push_back(0x00);
    return buffer(all);
}

} // namespace hako::arch::x86::aml
