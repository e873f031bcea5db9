#include "arch/x86/acpi.h"

#include <cstring>
#include <iterator>

#include <fmt/format.h>

#include "arch/x86/aml.h"
#include "arch/x86/pci_irq.h"
#include "base/bytes.h"
#include "base/checked.h"

namespace hako::arch::x86 {

namespace {

using Bytes = std::vector<uint8_t>;

constexpr size_t HEADER_SIZE = 36;
constexpr size_t CHECKSUM_OFFSET = 9;
constexpr size_t RSDP_SIZE = 36;
constexpr size_t RSDP_V1_SIZE = 20;
constexpr size_t RSDP_CHECKSUM = 8;
constexpr size_t RSDP_RSDT = 16;
constexpr size_t RSDP_XSDT = 24;
constexpr size_t RSDP_EXT_CHECKSUM = 32;
constexpr size_t FACS_SIZE = 64;
constexpr size_t FACS_ALIGN = 64;

constexpr char OEM_ID[] = "HAKO  ";
constexpr char CREATOR_ID[] = "HAKO";

// FADT field offsets (ACPI 6.0 table 5-34).
constexpr size_t FADT_FIRMWARE_CTRL = 36;
constexpr size_t FADT_DSDT = 40;
constexpr size_t FADT_SCI_INT = 46;
constexpr size_t FADT_SMI_CMD = 48;
constexpr size_t FADT_PM1A_EVT_BLK = 56;
constexpr size_t FADT_PM1A_CNT_BLK = 64;
constexpr size_t FADT_PM_TMR_BLK = 76;
constexpr size_t FADT_GPE0_BLK = 80;
constexpr size_t FADT_PM1_EVT_LEN = 88;
constexpr size_t FADT_PM1_CNT_LEN = 89;
constexpr size_t FADT_PM_TMR_LEN = 91;
constexpr size_t FADT_GPE0_BLK_LEN = 92;
constexpr size_t FADT_P_LVL2_LAT = 96;
constexpr size_t FADT_P_LVL3_LAT = 98;
constexpr size_t FADT_CENTURY = 108;
constexpr size_t FADT_IAPC_BOOT_ARCH = 109;
constexpr size_t FADT_FLAGS = 112;
constexpr size_t FADT_RESET_REG = 116;
constexpr size_t FADT_RESET_VALUE = 128;
constexpr size_t FADT_MINOR_VERSION = 131;
constexpr size_t FADT_X_FIRMWARE_CTRL = 132;
constexpr size_t FADT_X_DSDT = 140;
constexpr size_t FADT_X_PM1A_EVT_BLK = 148;
constexpr size_t FADT_X_PM1A_CNT_BLK = 172;
constexpr size_t FADT_X_PM_TMR_BLK = 208;
constexpr size_t FADT_X_GPE0_BLK = 220;

constexpr uint8_t PM1_EVT_LEN = 4;
constexpr uint8_t PM1_CNT_LEN = 2;
constexpr uint8_t PM_TMR_LEN = 4;
constexpr uint8_t GPE0_BLK_LEN = 4;
constexpr uint8_t CMOS_CENTURY = 0x32;

constexpr uint8_t GAS_SYSTEM_IO = 1;
constexpr uint8_t GAS_ACCESS_BYTE = 1;

// MADT (ACPI 6.0 section 5.2.12).
constexpr uint32_t MADT_PCAT_COMPAT = 1;
constexpr uint8_t MADT_LOCAL_APIC = 0;
constexpr uint8_t MADT_IO_APIC = 1;
constexpr uint8_t MADT_INT_SRC_OVERRIDE = 2;
constexpr uint8_t MADT_LOCAL_APIC_NMI = 4;
constexpr uint32_t MADT_LAPIC_ENABLED = 1;
constexpr uint16_t MPS_INTI_POLARITY_HIGH = 0x1;
constexpr uint16_t MPS_INTI_TRIGGER_LEVEL = 0x3 << 2;
constexpr uint8_t ALL_PROCESSORS = 0xff;

/// A pointer field inside the tables blob: `size` bytes at `offset` that hold the offset of `target` in the blob.
struct Pointer {
    size_t offset;
    uint8_t size;
    size_t target;
};

struct Tables {
    Bytes data;
    std::vector<Pointer> pointers;
    std::vector<std::pair<size_t, size_t>> checksummed; // (table start, length); checksum at start + 9
    size_t rsdt { 0 };
    size_t xsdt { 0 };
};

uint8_t sum8(uint8_t const* p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; ++i)
        s = static_cast<uint8_t>(s + p[i]);
    return s;
}

void put_n(uint8_t* p, uint8_t size, uint64_t v)
{
    for (uint8_t i = 0; i < size; ++i)
        p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t get_n(uint8_t const* p, uint8_t size)
{
    uint64_t v = 0;
    for (uint8_t i = 0; i < size; ++i)
        v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

class TableWriter {
public:
    explicit TableWriter(Tables& t) : m_t(t) {}

    /// Starts a table with a standard header at the next 8-byte boundary; returns its offset.
    size_t begin(char const (&sig)[5], uint8_t revision)
    {
        pad_to(8);
        m_start = m_t.data.size();
        m_t.data.resize(m_start + HEADER_SIZE, 0);
        uint8_t* h = m_t.data.data() + m_start;
        std::memcpy(h, sig, 4);
        h[8] = revision;
        std::memcpy(h + 10, OEM_ID, 6);
        std::memcpy(h + 16, "HAKO", 4);
        std::memcpy(h + 20, sig, 4); // OEM table ID "HAKO<sig>"
        put_le32(h + 24, 1);         // OEM revision
        std::memcpy(h + 28, CREATOR_ID, 4);
        put_le32(h + 32, 1);         // creator revision
        return m_start;
    }

    /// Finishes the current table: writes its length and records it for checksumming.
    void end()
    {
        size_t len = m_t.data.size() - m_start;
        put_le32(m_t.data.data() + m_start + 4, static_cast<uint32_t>(len));
        m_t.checksummed.emplace_back(m_start, len);
    }

    void pad_to(size_t align)
    {
        m_t.data.resize(align_up(m_t.data.size(), align), 0);
    }
    size_t here() const { return m_t.data.size(); }
    void bytes(std::span<uint8_t const> b) { m_t.data.insert(m_t.data.end(), b.begin(), b.end()); }
    void u8(uint8_t v) { m_t.data.push_back(v); }
    void u16(uint16_t v) { put(v, 2); }
    void u32(uint32_t v) { put(v, 4); }
    void put(uint64_t v, uint8_t size)
    {
        size_t at = m_t.data.size();
        m_t.data.resize(at + size);
        put_n(m_t.data.data() + at, size, v);
    }
    /// A pointer field, written as the target's offset in the tables blob.
    void pointer(size_t target, uint8_t size)
    {
        m_t.pointers.push_back(Pointer { here(), size, target });
        put(target, size);
    }
    uint8_t* at(size_t off) { return m_t.data.data() + off; }

private:
    Tables& m_t;
    size_t m_start { 0 };
};

void put_gas(uint8_t* p, uint8_t space, uint8_t bit_width, uint8_t access_size, uint64_t address)
{
    p[0] = space;
    p[1] = bit_width;
    p[2] = 0; // bit offset
    p[3] = access_size;
    put_le64(p + 4, address);
}

constexpr uint64_t MIB = 1ull << 20;
constexpr uint64_t ECAM_BYTES_PER_BUS = MIB;
constexpr uint32_t ISA_BRIDGE_ADR = 0x00010000; // device 1, function 0
constexpr unsigned PCI_FIRST_SLOT = 1;
constexpr unsigned PCI_SLOTS = 32;
constexpr uint8_t PIRQRC_OFFSET = 0x60;          // PIIX3 PIRQRC[A:D]
constexpr uint8_t PIRQRC_DISABLED = 0x80;        // IRQROUTEN
constexpr uint8_t PIRQRC_IRQ = 0x0f;
constexpr uint8_t STA_PRESENT_DISABLED = 0x09;   // present, functioning, not enabled
constexpr uint8_t STA_PRESENT_ENABLED = 0x0b;    // present, enabled, functioning
constexpr char const* LINK_NAMES[] = { "LNKA", "LNKB", "LNKC", "LNKD" };
constexpr char const* PIRQ_FIELDS[] = { "\\_SB.PCI0.ISA.PRQ0", "\\_SB.PCI0.ISA.PRQ1", "\\_SB.PCI0.ISA.PRQ2",
    "\\_SB.PCI0.ISA.PRQ3" };
static_assert(std::size(LINK_NAMES) == PCI_NUM_PIRQS && std::size(PIRQ_FIELDS) == PCI_NUM_PIRQS);

Result<void> check_pci(PciAcpiConfig const& p)
{
    if (p.ecam_size == 0 || p.ecam_size % ECAM_BYTES_PER_BUS != 0 || p.ecam_size > 256 * ECAM_BYTES_PER_BUS
        || p.ecam_base % ECAM_BYTES_PER_BUS != 0)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("ACPI: bad PCI ECAM [{:#x}, +{:#x}): 1-256 buses of 1 MiB, 1 MiB aligned", p.ecam_base, p.ecam_size));
    if (p.ecam_base > IOAPIC_BASE || p.ecam_size > IOAPIC_BASE - p.ecam_base)
        return Error(ErrorKind::InvalidArgument, "ACPI: PCI ECAM must lie below the IOAPIC");
    if (p.ram_low_end < HIGH_MEMORY_START || p.ram_low_end > p.ecam_base)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("ACPI: low RAM end {:#x} must lie between 1 MiB and the ECAM base", p.ram_low_end));
    if (p.mmio64_start < FOUR_GIB || p.mmio64_size == 0 || p.mmio64_size - 1 > ~uint64_t { 0 } - p.mmio64_start)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("ACPI: bad 64-bit PCI window [{:#x}, +{:#x})", p.mmio64_start, p.mmio64_size));
    return {};
}

/// Name(path, value) for a value that may have failed to build (keeps TRY un-nested).
Result<Bytes> name_of(std::string_view path, Result<Bytes> const& value)
{
    if (!value)
        return value.error();
    return aml::name(path, *value);
}

/// \_SB.PCI0._CRS: what the root bridge decodes (producer windows) and the config ports it consumes.
Result<Bytes> pci_root_resources(PciAcpiConfig const& p)
{
    using aml::MemoryCaching;
    auto const last_bus = static_cast<uint16_t>(p.ecam_size / ECAM_BYTES_PER_BUS - 1);
    uint64_t const ecam_end = p.ecam_base + p.ecam_size;
    std::vector<Result<Bytes>> parts;
    parts.push_back(aml::word_bus_number(0, last_bus));
    parts.push_back(aml::io_port(0xcf8, 0xcf8, 1, 8)); // CONFIG_ADDRESS/CONFIG_DATA, consumed
    parts.push_back(aml::word_io(0x0000, 0x0cf7));
    parts.push_back(aml::word_io(0x0d00, 0xffff));
    parts.push_back(aml::dword_memory(MemoryCaching::Cacheable, static_cast<uint32_t>(VGA_WINDOW_START),
        static_cast<uint32_t>(VGA_WINDOW_START + VGA_WINDOW_SIZE - 1)));
    if (p.ram_low_end < p.ecam_base)
        parts.push_back(aml::dword_memory(MemoryCaching::NonCacheable, static_cast<uint32_t>(p.ram_low_end),
            static_cast<uint32_t>(p.ecam_base - 1)));
    if (ecam_end < IOAPIC_BASE)
        parts.push_back(aml::dword_memory(MemoryCaching::NonCacheable, static_cast<uint32_t>(ecam_end),
            static_cast<uint32_t>(IOAPIC_BASE - 1)));
    parts.push_back(aml::qword_memory(MemoryCaching::Cacheable, p.mmio64_start, p.mmio64_start + p.mmio64_size - 1));
    Bytes d;
    for (auto& part : parts)
        aml::append(d, TRY(std::move(part)));
    return aml::resource_template(d);
}

/// \_SB.PCI0._PRT: Package{ Package{ (slot << 16) | 0xFFFF, pin (0 = INTA#), link, 0 }, ... }.
Result<Bytes> pci_routing_table()
{
    std::vector<Bytes> entries;
    for (unsigned slot = PCI_FIRST_SLOT; slot < PCI_SLOTS; ++slot) {
        for (uint8_t pin = 0; pin < 4; ++pin) {
            auto pirq = pc_intx_to_pirq(static_cast<uint8_t>(slot), static_cast<uint8_t>(pin + 1));
            if (!pirq || *pirq >= PCI_NUM_PIRQS)
                return Error(ErrorKind::InvalidArgument, "ACPI: no PIRQ for a PCI pin");
            Bytes link = TRY(aml::name_string(LINK_NAMES[*pirq]));
            entries.push_back(TRY(aml::package(
                { aml::integer((uint64_t { slot } << 16) | 0xffff), aml::integer(pin), link, aml::integer(0) })));
        }
    }
    return aml::package(entries);
}

/// \_SB.LNKx: a PCI interrupt link (PNP0C0F) backed by PIIX3's PIRQRC register `pirq`.
Result<Bytes> pci_link(unsigned pirq)
{
    using namespace aml;
    Bytes const field = TRY(name_string(PIRQ_FIELDS[pirq]));
    Bytes const prr0 = TRY(name_string("PRR0"));
    Bytes const prri = TRY(name_string("PRRI"));
    Bytes const arg0 = TRY(arg(0));
    Bytes const disabled_bit = and_op(field, integer(PIRQRC_DISABLED));
    uint32_t const possible[] = { PCI_LINK_IRQS[0], PCI_LINK_IRQS[1], PCI_LINK_IRQS[2], PCI_LINK_IRQS[3] };
    uint32_t const none[] = { 0 };
    static_assert(std::size(possible) == std::size(PCI_LINK_IRQS));
    Bytes const possible_irqs = TRY(interrupt(Trigger::Level, Polarity::ActiveHigh, Sharing::Shared, possible));
    Bytes const no_irq = TRY(interrupt(Trigger::Level, Polarity::ActiveHigh, Sharing::Shared, none));

    Bytes body;
    append(body, TRY(name_of("_HID", eisa_id("PNP0C0F"))));
    append(body, TRY(name("_UID", integer(pirq + 1))));
    append(body, TRY(name_of("_PRS", resource_template(possible_irqs))));
    // _STA: enabled unless IRQROUTEN (bit 7) is set.
    Bytes sta = TRY(if_op(disabled_bit, return_value(integer(STA_PRESENT_DISABLED))));
    append(sta, TRY(else_op(return_value(integer(STA_PRESENT_ENABLED)))));
    append(body, TRY(method("_STA", 0, MethodSync::NotSerialized, sta)));
    // _DIS: set IRQROUTEN.
    append(body, TRY(method("_DIS", 0, MethodSync::NotSerialized, or_op(field, integer(PIRQRC_DISABLED), field))));
    // _CRS: the routed IRQ, or 0 ("not configured") while routing is disabled. Serialized: it creates names.
    Bytes crs = TRY(name_of("PRR0", resource_template(no_irq)));
    append(crs, TRY(create_dword_field(prr0, integer(INTERRUPT_FIRST_IRQ_OFFSET), "PRRI")));
    append(crs, TRY(if_op(lequal(disabled_bit, integer(0)), store(and_op(field, integer(PIRQRC_IRQ)), prri))));
    append(crs, return_value(prr0));
    append(body, TRY(method("_CRS", 0, MethodSync::Serialized, crs)));
    // _SRS(resources): route to the IRQ in the descriptor, which also clears IRQROUTEN.
    Bytes srs = TRY(create_dword_field(arg0, integer(INTERRUPT_FIRST_IRQ_OFFSET), "PRRI"));
    append(srs, store(prri, field));
    append(body, TRY(method("_SRS", 1, MethodSync::Serialized, srs)));
    return device(LINK_NAMES[pirq], body);
}

Result<Bytes> pci_aml(PciAcpiConfig const& p)
{
    using namespace aml;
    Bytes isa;
    append(isa, TRY(name("_ADR", integer(ISA_BRIDGE_ADR))));
    append(isa, TRY(operation_region("P40C", RegionSpace::PciConfig, PIRQRC_OFFSET, PCI_NUM_PIRQS)));
    append(isa, TRY(field("P40C", FieldAccess::Byte, FieldUpdate::Preserve,
        { { "PRQ0", 8 }, { "PRQ1", 8 }, { "PRQ2", 8 }, { "PRQ3", 8 } })));

    // Motherboard resources: the ECAM range, so the OS trusts MCFG even without an e820 reservation.
    Bytes res;
    append(res, TRY(name_of("_HID", eisa_id("PNP0C02"))));
    append(res, TRY(name("_UID", integer(1))));
    append(res, TRY(name_of("_CRS", resource_template(memory32_fixed(true, static_cast<uint32_t>(p.ecam_base),
        static_cast<uint32_t>(p.ecam_size))))));

    Bytes pci0;
    append(pci0, TRY(name_of("_HID", eisa_id("PNP0A03"))));
    append(pci0, TRY(name("_ADR", integer(0))));
    append(pci0, TRY(name("_UID", integer(0))));
    append(pci0, TRY(name("_BBN", integer(0))));
    append(pci0, TRY(name("_SEG", integer(0))));
    append(pci0, TRY(name_of("_CRS", pci_root_resources(p))));
    append(pci0, TRY(name_of("_PRT", pci_routing_table())));
    append(pci0, TRY(device("ISA", isa)));
    append(pci0, TRY(device("PDRC", res)));

    Bytes sb = TRY(device("PCI0", pci0));
    for (unsigned i = 0; i < PCI_NUM_PIRQS; ++i)
        append(sb, TRY(pci_link(i)));
    return sb;
}

Result<Bytes> build_dsdt_aml(AcpiConfig const& cfg)
{
    Bytes body;
    // \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved.
    auto s5 = TRY(aml::package({ aml::integer(SLP_TYP_S5), aml::integer(SLP_TYP_S5), aml::integer(0), aml::integer(0) }));
    aml::append(body, TRY(aml::name("_S5", s5)));
    Bytes sb;
    if (cfg.pci)
        sb = TRY(pci_aml(*cfg.pci));
    aml::append(body, TRY(aml::scope("\\_SB", sb)));
    return body;
}

Result<Tables> build_tables(AcpiConfig const& cfg)
{
    if (cfg.cpus < 1 || cfg.cpus > ACPI_MAX_CPUS)
        return Error(ErrorKind::InvalidArgument, fmt::format("ACPI: {} CPUs (1-{} supported)", cfg.cpus, ACPI_MAX_CPUS));
    if (cfg.sci_irq >= 16)
        return Error(ErrorKind::InvalidArgument, fmt::format("ACPI: SCI IRQ {} is not an ISA IRQ", cfg.sci_irq));
    if (cfg.pm_base == 0 || cfg.pm_base > 0xffff - PM_BLOCK_SIZE)
        return Error(ErrorKind::InvalidArgument, fmt::format("ACPI: bad PM base {:#x}", cfg.pm_base));
    if (cfg.pci)
        TRY(check_pci(*cfg.pci));

    Tables t;
    TableWriter w(t);

    // FACS: first, so its 64-byte alignment holds relative to a 64-byte aligned blob.
    size_t facs = w.here();
    t.data.resize(facs + FACS_SIZE, 0);
    std::memcpy(w.at(facs), "FACS", 4);
    put_le32(w.at(facs + 4), FACS_SIZE);
    w.at(facs)[32] = 2; // version

    // DSDT.
    size_t dsdt = w.begin("DSDT", 2); // revision 2: 64-bit AML integers
    w.bytes(TRY(build_dsdt_aml(cfg)));
    w.end();

    // FADT.
    size_t fadt = w.begin("FACP", FADT_REVISION);
    t.data.resize(fadt + FADT_LENGTH, 0);
    uint8_t* f = w.at(fadt);
    put_le16(f + FADT_SCI_INT, cfg.sci_irq);
    put_le32(f + FADT_SMI_CMD, 0); // no SMI command port: ACPI mode is always on
    auto evt = static_cast<uint32_t>(cfg.pm_base + PM1A_EVT_OFFSET);
    auto cnt = static_cast<uint32_t>(cfg.pm_base + PM1A_CNT_OFFSET);
    auto tmr = static_cast<uint32_t>(cfg.pm_base + PM_TMR_OFFSET);
    auto gpe = static_cast<uint32_t>(cfg.pm_base + GPE0_OFFSET);
    put_le32(f + FADT_PM1A_EVT_BLK, evt);
    put_le32(f + FADT_PM1A_CNT_BLK, cnt);
    put_le32(f + FADT_PM_TMR_BLK, tmr);
    put_le32(f + FADT_GPE0_BLK, gpe);
    f[FADT_PM1_EVT_LEN] = PM1_EVT_LEN;
    f[FADT_PM1_CNT_LEN] = PM1_CNT_LEN;
    f[FADT_PM_TMR_LEN] = PM_TMR_LEN;
    f[FADT_GPE0_BLK_LEN] = GPE0_BLK_LEN;
    put_le16(f + FADT_P_LVL2_LAT, 101);  // > 100: C2 not supported
    put_le16(f + FADT_P_LVL3_LAT, 1001); // > 1000: C3 not supported
    f[FADT_CENTURY] = CMOS_CENTURY;
    put_le16(f + FADT_IAPC_BOOT_ARCH, FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042);
    put_le32(f + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP);
    put_gas(f + FADT_RESET_REG, GAS_SYSTEM_IO, 8, GAS_ACCESS_BYTE, PORT_RESET_CF9);
    f[FADT_RESET_VALUE] = RESET_REG_VALUE;
    f[FADT_MINOR_VERSION] = 0;
    put_gas(f + FADT_X_PM1A_EVT_BLK, GAS_SYSTEM_IO, PM1_EVT_LEN * 8, 0, evt);
    put_gas(f + FADT_X_PM1A_CNT_BLK, GAS_SYSTEM_IO, PM1_CNT_LEN * 8, 0, cnt);
    put_gas(f + FADT_X_PM_TMR_BLK, GAS_SYSTEM_IO, PM_TMR_LEN * 8, 0, tmr);
    put_gas(f + FADT_X_GPE0_BLK, GAS_SYSTEM_IO, GPE0_BLK_LEN * 8, 0, gpe);
    // FACS and DSDT, both as 32- and 64-bit pointers (equal values, which Linux accepts).
    t.pointers.push_back(Pointer { fadt + FADT_FIRMWARE_CTRL, 4, facs });
    t.pointers.push_back(Pointer { fadt + FADT_DSDT, 4, dsdt });
    t.pointers.push_back(Pointer { fadt + FADT_X_FIRMWARE_CTRL, 8, facs });
    t.pointers.push_back(Pointer { fadt + FADT_X_DSDT, 8, dsdt });
    for (auto const& p : t.pointers) // only the FADT's so far
        put_n(w.at(p.offset), p.size, p.target);
    w.end();

    // MADT.
    size_t madt = w.begin("APIC", 4);
    w.u32(static_cast<uint32_t>(LAPIC_BASE));
    w.u32(MADT_PCAT_COMPAT);
    for (unsigned i = 0; i < cfg.cpus; ++i) {
        w.u8(MADT_LOCAL_APIC);
        w.u8(8);
        w.u8(static_cast<uint8_t>(i)); // ACPI processor UID
        w.u8(static_cast<uint8_t>(i)); // APIC ID
        w.u32(MADT_LAPIC_ENABLED);
    }
    w.u8(MADT_IO_APIC);
    w.u8(12);
    w.u8(static_cast<uint8_t>(cfg.cpus)); // IOAPIC ID
    w.u8(0);
    w.u32(static_cast<uint32_t>(IOAPIC_BASE));
    w.u32(0); // GSI base
    auto iso = [&](uint8_t irq, uint32_t gsi, uint16_t flags) {
        w.u8(MADT_INT_SRC_OVERRIDE);
        w.u8(10);
        w.u8(0); // bus: ISA
        w.u8(irq);
        w.u32(gsi);
        w.u16(flags);
    };
    iso(0, 2, 0); // the PIT's IRQ0 is wired to IOAPIC pin 2 on every PC
    iso(cfg.sci_irq, cfg.sci_irq, MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_LEVEL);
    if (cfg.pci) {
        // PCI links drive their ISA IRQ level-triggered, active-high: say so for each IRQ they may use, so the OS
        // does not program those IOAPIC pins edge-triggered as it would an ISA IRQ.
        for (uint8_t irq : PCI_LINK_IRQS)
            if (irq != cfg.sci_irq)
                iso(irq, irq, MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_LEVEL);
    }
    w.u8(MADT_LOCAL_APIC_NMI);
    w.u8(6);
    w.u8(ALL_PROCESSORS);
    w.u16(0); // flags: conforming
    w.u8(1);  // LINT1
    w.end();

    // MCFG (PCI Firmware Specification 3.0, 4.1.2): one allocation for segment 0, buses 0..n.
    std::vector<size_t> entries { fadt, madt };
    if (cfg.pci) {
        size_t mcfg = w.begin("MCFG", 1);
        w.put(0, 8); // reserved
        w.put(cfg.pci->ecam_base, 8);
        w.u16(0); // PCI segment group
        w.u8(0);  // start bus
        w.u8(static_cast<uint8_t>(cfg.pci->ecam_size / ECAM_BYTES_PER_BUS - 1));
        w.u32(0); // reserved
        w.end();
        entries.push_back(mcfg);
    }

    // RSDT and XSDT list FADT, MADT and MCFG.
    t.rsdt = w.begin("RSDT", 1);
    for (size_t e : entries)
        w.pointer(e, 4);
    w.end();
    t.xsdt = w.begin("XSDT", 1);
    for (size_t e : entries)
        w.pointer(e, 8);
    w.end();
    return t;
}

Bytes rsdp_template()
{
    Bytes r(RSDP_SIZE, 0);
    std::memcpy(r.data(), "RSD PTR ", 8);
    std::memcpy(r.data() + 9, OEM_ID, 6);
    r[15] = 2; // revision: ACPI 2.0+ RSDP with XSDT
    put_le32(r.data() + 20, RSDP_SIZE);
    return r;
}

void set_rsdp_checksums(uint8_t* r)
{
    r[RSDP_CHECKSUM] = 0;
    r[RSDP_EXT_CHECKSUM] = 0;
    r[RSDP_CHECKSUM] = static_cast<uint8_t>(-sum8(r, RSDP_V1_SIZE));
    r[RSDP_EXT_CHECKSUM] = static_cast<uint8_t>(-sum8(r, RSDP_SIZE));
}

void loader_name(uint8_t* p, std::string_view name)
{
    std::memcpy(p, name.data(), std::min(name.size(), LOADER_FILE_NAME_SIZE - 1));
}

Bytes loader_allocate(std::string_view file, uint32_t align, uint8_t zone)
{
    Bytes e(LOADER_ENTRY_SIZE, 0);
    put_le32(e.data(), LOADER_CMD_ALLOCATE);
    loader_name(e.data() + 4, file);
    put_le32(e.data() + 60, align);
    e[64] = zone;
    return e;
}

Bytes loader_add_pointer(std::string_view dest, std::string_view src, size_t offset, uint8_t size)
{
    Bytes e(LOADER_ENTRY_SIZE, 0);
    put_le32(e.data(), LOADER_CMD_ADD_POINTER);
    loader_name(e.data() + 4, dest);
    loader_name(e.data() + 60, src);
    put_le32(e.data() + 116, static_cast<uint32_t>(offset));
    e[120] = size;
    return e;
}

Bytes loader_add_checksum(std::string_view file, size_t result, size_t start, size_t length)
{
    Bytes e(LOADER_ENTRY_SIZE, 0);
    put_le32(e.data(), LOADER_CMD_ADD_CHECKSUM);
    loader_name(e.data() + 4, file);
    put_le32(e.data() + 60, static_cast<uint32_t>(result));
    put_le32(e.data() + 64, static_cast<uint32_t>(start));
    put_le32(e.data() + 68, static_cast<uint32_t>(length));
    return e;
}

} // namespace

Result<std::vector<uint8_t>> build_acpi_direct(AcpiConfig const& cfg, uint64_t base_gpa)
{
    if (base_gpa % FACS_ALIGN != 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("ACPI: base {:#x} is not 64-byte aligned", base_gpa));
    Tables t = TRY(build_tables(cfg));
    size_t tables_off = align_up(RSDP_SIZE, FACS_ALIGN);
    size_t total = tables_off + t.data.size();
    if (total > ACPI_TABLES_MAX)
        return Error(ErrorKind::OutOfRange, fmt::format("ACPI tables take {} bytes, more than {}", total, ACPI_TABLES_MAX));
    if (base_gpa >= FOUR_GIB || total > FOUR_GIB - base_gpa)
        return Error(ErrorKind::OutOfRange, "ACPI tables must lie below 4 GiB");
    uint64_t tables_gpa = base_gpa + tables_off;

    for (auto const& p : t.pointers)
        put_n(t.data.data() + p.offset, p.size, tables_gpa + get_n(t.data.data() + p.offset, p.size));
    for (auto const& [start, len] : t.checksummed) {
        t.data[start + CHECKSUM_OFFSET] = 0;
        t.data[start + CHECKSUM_OFFSET] = static_cast<uint8_t>(-sum8(t.data.data() + start, len));
    }

    Bytes blob = rsdp_template();
    put_le32(blob.data() + RSDP_RSDT, static_cast<uint32_t>(tables_gpa + t.rsdt));
    put_le64(blob.data() + RSDP_XSDT, tables_gpa + t.xsdt);
    set_rsdp_checksums(blob.data());
    blob.resize(tables_off, 0);
    blob.insert(blob.end(), t.data.begin(), t.data.end());
    return blob;
}

Result<AcpiFwCfg> build_acpi_fw_cfg(AcpiConfig const& cfg)
{
    Tables t = TRY(build_tables(cfg));
    AcpiFwCfg out;
    out.rsdp = rsdp_template();
    put_le32(out.rsdp.data() + RSDP_RSDT, static_cast<uint32_t>(t.rsdt));
    put_le64(out.rsdp.data() + RSDP_XSDT, t.xsdt);
    // Checksum fields stay 0: OVMF computes the checksum over the range including the field.

    auto add = [&](Bytes const& e) { out.table_loader.insert(out.table_loader.end(), e.begin(), e.end()); };
    // Allocations first, then every pointer, then the checksums (which cover the relocated pointers).
    add(loader_allocate(ACPI_TABLES_FILE, FACS_ALIGN, LOADER_ZONE_HIGH));
    add(loader_allocate(ACPI_RSDP_FILE, 16, LOADER_ZONE_FSEG));
    for (auto const& p : t.pointers)
        add(loader_add_pointer(ACPI_TABLES_FILE, ACPI_TABLES_FILE, p.offset, p.size));
    add(loader_add_pointer(ACPI_RSDP_FILE, ACPI_TABLES_FILE, RSDP_RSDT, 4));
    add(loader_add_pointer(ACPI_RSDP_FILE, ACPI_TABLES_FILE, RSDP_XSDT, 8));
    for (auto const& [start, len] : t.checksummed)
        add(loader_add_checksum(ACPI_TABLES_FILE, start + CHECKSUM_OFFSET, start, len));
    add(loader_add_checksum(ACPI_RSDP_FILE, RSDP_CHECKSUM, 0, RSDP_V1_SIZE));
    add(loader_add_checksum(ACPI_RSDP_FILE, RSDP_EXT_CHECKSUM, 0, RSDP_SIZE));
    out.tables = std::move(t.data);
    return out;
}

} // namespace hako::arch::x86
