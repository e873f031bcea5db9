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

Result<Bytes> local(unsigned n)
{
    if (n > 7)
        return Error(ErrorKind::InvalidArgument, fmt::format("AML has Local0-Local7, not Local{}", n));
    return Bytes { static_cast<uint8_t>(LOCAL0_OP + n) };
}

Result<Bytes> arg(unsigned n)
{
    if (n > 6)
        return Error(ErrorKind::InvalidArgument, fmt::format("AML has Arg0-Arg6, not Arg{}", n));
    return Bytes { static_cast<uint8_t>(ARG0_OP + n) };
}

Result<Bytes> if_op(Bytes const& predicate, Bytes const& body)
{
    Bytes inner = predicate;
    append(inner, body);
    return with_pkg({ IF_OP }, inner);
}

Result<Bytes> else_op(Bytes const& body) { return with_pkg({ ELSE_OP }, body); }

Bytes lequal(Bytes const& a, Bytes const& b)
{
    Bytes out { LEQUAL_OP };
    append(out, a);
    append(out, b);
    return out;
}

static Bytes binary_op(uint8_t op, Bytes const& a, Bytes const& b, Bytes const& target)
{
    Bytes out { op };
    append(out, a);
    append(out, b);
    if (target.empty())
        out.push_back(0); // NullName: no target
    else
        append(out, target);
    return out;
}

Bytes and_op(Bytes const& a, Bytes const& b, Bytes const& target) { return binary_op(AND_OP, a, b, target); }
Bytes or_op(Bytes const& a, Bytes const& b, Bytes const& target) { return binary_op(OR_OP, a, b, target); }

Bytes store(Bytes const& value, Bytes const& target)
{
    Bytes out { STORE_OP };
    append(out, value);
    append(out, target);
    return out;
}

Result<Bytes> create_dword_field(Bytes const& source, Bytes const& byte_index, std::string_view name)
{
    Bytes out { CREATE_DWORD_FIELD_OP };
    append(out, source);
    append(out, byte_index);
    append(out, TRY(name_string(name)));
    return out;
}

Result<Bytes> operation_region(std::string_view name, RegionSpace space, uint64_t offset, uint64_t length)
{
    Bytes out { EXT_OP_PREFIX, OP_REGION_OP };
    append(out, TRY(name_string(name)));
    out.push_back(static_cast<uint8_t>(space));
    append(out, integer(offset));
    append(out, integer(length));
    return out;
}

Result<Bytes> field(std::string_view region, FieldAccess access, FieldUpdate update, std::vector<FieldUnit> const& units)
{
    Bytes inner = TRY(name_string(region));
    // FieldFlags: bits 0-3 AccessType, bit 4 LockRule (0 = NoLock), bits 5-6 UpdateRule.
    inner.push_back(static_cast<uint8_t>(static_cast<unsigned>(access) | (static_cast<unsigned>(update) << 5)));
    for (auto const& u : units) {
        Bytes seg = TRY(name_string(u.name));
        if (seg.size() != 4)
            return Error(ErrorKind::InvalidArgument, fmt::format("AML field unit '{}' must be one NameSeg", u.name));
        if (u.bits == 0)
            return Error(ErrorKind::InvalidArgument, fmt::format("AML field unit '{}' has no bits", u.name));
        append(inner, seg);
        // A NamedField's width uses the PkgLength encoding, but the value is the bit count itself.
        if (u.bits < 0x40) {
            inner.push_back(static_cast<uint8_t>(u.bits));
            continue;
        }
        size_t extra = 1;
        while (extra <= 3 && (uint64_t { u.bits } >> (4 + 8 * extra)) != 0)
            ++extra;
        if (extra > 3)
            return Error(ErrorKind::OutOfRange, fmt::format("AML field unit '{}' is too wide", u.name));
        inner.push_back(static_cast<uint8_t>((extra << 6) | (u.bits & 0x0f)));
        for (size_t i = 0; i < extra; ++i)
            inner.push_back(static_cast<uint8_t>(u.bits >> (4 + 8 * i)));
    }
    return with_pkg({ EXT_OP_PREFIX, FIELD_OP }, inner);
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

Bytes memory32_fixed(bool read_write, uint32_t base, uint32_t length)
{
    // Large resource type 0x06 (32-bit fixed memory range), length 9; information bit 0 = read/write.
    Bytes out { 0x86, 0x09, 0x00, static_cast<uint8_t>(read_write ? 1 : 0) };
    for (uint32_t v : { base, length })
        for (int i = 0; i < 4; ++i)
            out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return out;
}

namespace {

constexpr uint8_t ADDRESS_SPACE_MEMORY = 0;
constexpr uint8_t ADDRESS_SPACE_IO = 1;
constexpr uint8_t ADDRESS_SPACE_BUS = 2;
// General flags: bit 3 _MAF (max fixed), bit 2 _MIF (min fixed), bit 1 _DEC (0 = positive decode), bit 0
// 0 = producer (a bridge's window).
constexpr uint8_t ADDRESS_FLAGS_PRODUCER_FIXED = 0x0c;
constexpr uint8_t IO_RANGE_ENTIRE = 0x03;  // _RNG: ISA and non-ISA ranges
constexpr uint8_t MEMORY_READ_WRITE = 0x01; // _RW

/// A Word (0x88), DWord (0x87) or QWord (0x8a) address space descriptor of `size` bytes per field.
Result<Bytes> address_space(uint8_t tag, unsigned size, uint8_t type, uint8_t type_flags, uint64_t min, uint64_t max)
{
    uint64_t const limit = size == 8 ? ~uint64_t { 0 } : (uint64_t { 1 } << (8 * size)) - 1;
    if (min > max || max > limit || (min == 0 && max == limit))
        return Error(ErrorKind::InvalidArgument, fmt::format("Bad AML address range [{:#x}, {:#x}]", min, max));
    Bytes out { tag };
    unsigned const len = 3 + 5 * size;
    out.push_back(static_cast<uint8_t>(len));
    out.push_back(static_cast<uint8_t>(len >> 8));
    out.push_back(type);
    out.push_back(ADDRESS_FLAGS_PRODUCER_FIXED);
    out.push_back(type_flags);
    // Granularity, minimum, maximum, translation offset, length.
    for (uint64_t v : { uint64_t { 0 }, min, max, uint64_t { 0 }, max - min + 1 })
        for (unsigned i = 0; i < size; ++i)
            out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return out;
}

} // namespace

Result<Bytes> word_bus_number(uint16_t min, uint16_t max)
{
    return address_space(0x88, 2, ADDRESS_SPACE_BUS, 0, min, max);
}

Result<Bytes> word_io(uint16_t min, uint16_t max)
{
    return address_space(0x88, 2, ADDRESS_SPACE_IO, IO_RANGE_ENTIRE, min, max);
}

static uint8_t memory_flags(MemoryCaching caching)
{
    // Type-specific flags: bits 2-1 _MEM, bit 0 _RW.
    return static_cast<uint8_t>((static_cast<unsigned>(caching) << 1) | MEMORY_READ_WRITE);
}

Result<Bytes> dword_memory(MemoryCaching caching, uint32_t min, uint32_t max)
{
    return address_space(0x87, 4, ADDRESS_SPACE_MEMORY, memory_flags(caching), min, max);
}

Result<Bytes> qword_memory(MemoryCaching caching, uint64_t min, uint64_t max)
{
    return address_space(0x8a, 8, ADDRESS_SPACE_MEMORY, memory_flags(caching), min, max);
}

Result<Bytes> interrupt(Trigger trigger, Polarity polarity, Sharing sharing, std::span<uint32_t const> irqs)
{
    if (irqs.empty() || irqs.size() > 255)
        return Error(ErrorKind::InvalidArgument, "An AML Interrupt descriptor lists 1-255 interrupts");
    // Large resource type 0x09; flags: bit 0 consumer, bit 1 edge (0 = level), bit 2 active-low, bit 3 shared.
    size_t const len = 2 + 4 * irqs.size();
    Bytes out { 0x89, static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8) };
    out.push_back(static_cast<uint8_t>(0x01 | (trigger == Trigger::Edge ? 0x02 : 0) | (polarity == Polarity::ActiveLow ? 0x04 : 0)
        | (sharing == Sharing::Shared ? 0x08 : 0)));
    out.push_back(static_cast<uint8_t>(irqs.size()));
    for (uint32_t irq : irqs)
        for (int i = 0; i < 4; ++i)
            out.push_back(static_cast<uint8_t>(irq >> (8 * i)));
    return out;
}

Result<Bytes> resource_template(Bytes const& descriptors)
{
    Bytes all = descriptors;
    all.push_back(0x79); // End Tag, small type 0x0f, length 1
    all.push_back(0x00);
    return buffer(all);
}

} // namespace hako::arch::x86::aml
