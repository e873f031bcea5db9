// A tiny ACPI Machine Language (AML) byte builder: just what hako's DSDT needs.
//
// Encodings follow ACPI 6.x section 20.2 (AML grammar): NameOp, ScopeOp, DeviceOp, MethodOp, PackageOp,
// BufferOp, ReturnOp, OperationRegionOp, FieldOp, IfOp/ElseOp, LEqualOp, AndOp, OrOp, StoreOp,
// CreateDWordFieldOp, LocalX/ArgX, integer and string constants, name strings (root/parent prefixes, dual and
// multi-name paths) and PkgLength (20.2.4); and the resource descriptors of section 6.4 a PCI host bridge and its
// interrupt links need. Every function returns a self-contained term as bytes; callers concatenate them. It does
// not parse or validate AML semantics (that is iasl's and acpiexec's job in the unit tests).
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
constexpr uint8_t LOCAL0_OP = 0x60; // Local0..Local7: 0x60..0x67
constexpr uint8_t ARG0_OP = 0x68;   // Arg0..Arg6: 0x68..0x6e
constexpr uint8_t STORE_OP = 0x70;
constexpr uint8_t AND_OP = 0x7b;
constexpr uint8_t OR_OP = 0x7d;
constexpr uint8_t CREATE_DWORD_FIELD_OP = 0x8a;
constexpr uint8_t LEQUAL_OP = 0x93;
constexpr uint8_t IF_OP = 0xa0;
constexpr uint8_t ELSE_OP = 0xa1;
constexpr uint8_t OP_REGION_OP = 0x80; // after EXT_OP_PREFIX
constexpr uint8_t FIELD_OP = 0x81;     // after EXT_OP_PREFIX

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

/// LocalN (0-7) and ArgN (0-6) as operands or targets.
[[nodiscard]] Result<Bytes> local(unsigned n);
[[nodiscard]] Result<Bytes> arg(unsigned n);
/// If(predicate){body}; an else_op() term may follow it directly.
[[nodiscard]] Result<Bytes> if_op(Bytes const& predicate, Bytes const& body);
/// Else{body}
[[nodiscard]] Result<Bytes> else_op(Bytes const& body);
/// LEqual(a, b)
Bytes lequal(Bytes const& a, Bytes const& b);
/// And(a, b, target) and Or(a, b, target); an empty target is encoded as NullName (result not stored).
Bytes and_op(Bytes const& a, Bytes const& b, Bytes const& target = {});
Bytes or_op(Bytes const& a, Bytes const& b, Bytes const& target = {});
/// Store(value, target)
Bytes store(Bytes const& value, Bytes const& target);
/// CreateDWordField(source_buffer, byte_index, name)
[[nodiscard]] Result<Bytes> create_dword_field(Bytes const& source, Bytes const& byte_index, std::string_view name);

enum class RegionSpace : uint8_t { SystemMemory = 0, SystemIO = 1, PciConfig = 2 };
/// OperationRegion(name, space, offset, length)
[[nodiscard]] Result<Bytes> operation_region(std::string_view name, RegionSpace space, uint64_t offset, uint64_t length);
enum class FieldAccess : uint8_t { Any = 0, Byte = 1, Word = 2, DWord = 3, QWord = 4 };
enum class FieldUpdate : uint8_t { Preserve = 0, WriteAsOnes = 1, WriteAsZeros = 2 };
struct FieldUnit {
    std::string_view name; // one NameSeg
    unsigned bits;         // 1 .. 2^28 - 1
};
/// Field(region, access, NoLock, update){units...}
[[nodiscard]] Result<Bytes> field(std::string_view region, FieldAccess access, FieldUpdate update,
    std::vector<FieldUnit> const& units);

// Resource descriptors (ACPI 6.x section 6.4) for ResourceTemplate().
/// IO(Decode16, min, max, align, length): the small I/O port descriptor.
Bytes io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t length);
/// IRQNoFlags(){irq}: edge-triggered, active-high ISA IRQ (0-15).
Bytes irq_no_flags(uint8_t irq);
/// Memory32Fixed(ReadWrite or ReadOnly, base, length)
Bytes memory32_fixed(bool read_write, uint32_t base, uint32_t length);

// Address space descriptors (6.4.3.5), all ResourceProducer, MinFixed, MaxFixed, PosDecode, granularity 0,
// translation 0, length max - min + 1 (as a bridge's windows are written). They fail if min > max or the range
// covers the whole address space (its length would not fit).
/// WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, len)
[[nodiscard]] Result<Bytes> word_bus_number(uint16_t min, uint16_t max);
/// WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, len)
[[nodiscard]] Result<Bytes> word_io(uint16_t min, uint16_t max);
enum class MemoryCaching : uint8_t { NonCacheable = 0, Cacheable = 1, WriteCombining = 2, Prefetchable = 3 };
/// DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, caching, ReadWrite, 0, min, max, 0, len)
[[nodiscard]] Result<Bytes> dword_memory(MemoryCaching caching, uint32_t min, uint32_t max);
/// QWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, caching, ReadWrite, 0, min, max, 0, len)
[[nodiscard]] Result<Bytes> qword_memory(MemoryCaching caching, uint64_t min, uint64_t max);

enum class Trigger : uint8_t { Level, Edge };
enum class Polarity : uint8_t { ActiveHigh, ActiveLow };
enum class Sharing : uint8_t { Exclusive, Shared };
/// Interrupt(ResourceConsumer, trigger, polarity, sharing){irqs...}: the extended interrupt descriptor
/// (6.4.3.6), 1-255 interrupt numbers.
[[nodiscard]] Result<Bytes> interrupt(Trigger trigger, Polarity polarity, Sharing sharing, std::span<uint32_t const> irqs);
/// Offset of the first interrupt number in an interrupt() descriptor (for CreateDWordField in _CRS/_SRS).
constexpr size_t INTERRUPT_FIRST_IRQ_OFFSET = 5;

/// ResourceTemplate(){descriptors}: a Buffer ending with an End Tag (checksum 0 = "not checked").
[[nodiscard]] Result<Bytes> resource_template(Bytes const& descriptors);

/// Appends b to a.
inline void append(Bytes& a, Bytes const& b) { a.insert(a.end(), b.begin(), b.end()); }

} // namespace hako::arch::x86::aml
