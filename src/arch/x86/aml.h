// A tiny ACPI Machine Language (AML) byte builder: just what hako's DSDT needs.
//
// Encodings follow ACPI 6.x section 20.2 (AML grammar): NameOp, ScopeOp, DeviceOp, MethodOp, PackageOp,
// BufferOp, ReturnOp, integer and string constants, name strings (root/parent prefixes, dual and multi-name
// paths) and PkgLength (20.2.4). Every function returns a self-contained term as bytes; callers concatenate
// them. It does not parse or validate AML semantics (that is iasl's job in the unit tests).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hako::arch::x86::aml {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t ZERO_OP = 0x00;
constexpr uint8_t ONE_OP = 0x01;
constexpr uint8_t NAME_OP = 0x08;
constexpr uint8_t BYTE_PREFIX = 0x0a;
constexpr uint8_t WORD_PREFIX = 0x0b;
constexpr uint8_t DWORD_PREFIX = 0x0c;
constexpr uint8_t STRING_PREFIX = 0x0d;
constexpr uint8_t QWORD_PREFIX = 0x0e;
constexpr uint8_t SCOPE_OP = 0x10;
constexpr uint8_t BUFFER_OP = 0x11;
constexpr uint8_t PACKAGE_OP = 0x12;
constexpr uint8_t METHOD_OP = 0x14;
constexpr uint8_t DUAL_NAME_PREFIX = 0x2e;
constexpr uint8_t MULTI_NAME_PREFIX = 0x2f;
constexpr uint8_t EXT_OP_PREFIX = 0x5b;
constexpr uint8_t DEVICE_OP = 0x82; // after EXT_OP_PREFIX
constexpr uint8_t ROOT_CHAR = 0x5c;   // '\'
constexpr uint8_t PARENT_PREFIX = 0x5e; // '^'
constexpr uint8_t RETURN_OP = 0xa4;

/// The PkgLength encoding of a package whose contents (after the PkgLength) are `body_len` bytes; the encoded
/// value counts the PkgLength bytes themselves. Fails above the 28-bit maximum.
[[nodiscard]] Result<Bytes> pkg_length(size_t body_len);

/// A NameString from an ASL path such as "_S5", "\\_SB", "\\_SB.PCI0.ISA" or "^FOO". Segments shorter than four
/// characters are padded with '_'. Fails on an empty or over-long segment or a character AML does not allow.
[[nodiscard]] Result<Bytes> name_string(std::string_view path);

/// The shortest integer constant for v: ZeroOp, OneOp, or Byte/Word/DWord/QWord prefix.
Bytes integer(uint64_t v);
/// A String constant (ASCII 0x01-0x7f, NUL-terminated by the encoder).
[[nodiscard]] Result<Bytes> string(std::string_view s);
/// An EISA ID such as "PNP0501" compressed to its 32-bit DWord form.
[[nodiscard]] Result<Bytes> eisa_id(std::string_view id);

/// Name(path, value)
[[nodiscard]] Result<Bytes> name(std::string_view path, Bytes const& value);
/// Package(n){elements...}: at most 255 elements (PackageOp, not VarPackageOp).
[[nodiscard]] Result<Bytes> package(std::vector<Bytes> const& elements);
/// Buffer(){bytes}
[[nodiscard]] Result<Bytes> buffer(std::span<uint8_t const> bytes);
/// Scope(path){body}
[[nodiscard]] Result<Bytes> scope(std::string_view path, Bytes const& body);
/// Device(path){body}
[[nodiscard]] Result<Bytes> device(std::string_view path, Bytes const& body);
enum class MethodSync { NotSerialized, Serialized };
/// Method(path, args, sync){body}; args 0-7.
[[nodiscard]] Result<Bytes> method(std::string_view path, unsigned args, MethodSync sync, Bytes const& body);
/// Return(value)
Bytes return_value(Bytes const& value);

// Resource descriptors (ACPI 6.x section 6.4) for ResourceTemplate().
/// IO(Decode16, min, max, align, length): the small I/O port descriptor.
Bytes io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t length);
/// IRQNoFlags(){irq}: edge-triggered, active-high ISA IRQ (0-15).
Bytes irq_no_flags(uint8_t irq);
/// ResourceTemplate(){descriptors}: a Buffer ending with an End Tag (checksum 0 = "not checked").
[[nodiscard]] Result<Bytes> resource_template(Bytes const& descriptors);

/// Appends b to a.
inline void append(Bytes& a, Bytes const& b) { a.insert(a.end(), b.begin(), b.end()); }

} // namespace hako::arch::x86::aml
