#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/pci_irq.h"
#include "devices/pci/piix3.h"
#include "base/bytes.h"

using namespace hako;
using namespace hako::arch::x86;

namespace {

uint8_t sum8(uint8_t const* p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; ++i)
        s = static_cast<uint8_t>(s + p[i]);
    return s;
}

std::string str(uint8_t const* p, size_t n) { return std::string(p, p + n); }

/// A fake guest-physical address space made of blobs placed at addresses.
class Space {
public:
    void place(uint64_t addr, std::vector<uint8_t> const* blob) { m_blobs.emplace_back(addr, blob); }
    /// The bytes [addr, addr+len), or nullptr if they do not lie inside one blob.
    uint8_t const* at(uint64_t addr, uint64_t len) const
    {
        for (auto const& [base, blob] : m_blobs) {
            if (addr >= base && addr - base <= blob->size() && len <= blob->size() - (addr - base))
                return blob->data() + (addr - base);
        }
        return nullptr;
    }

private:
    std::vector<std::pair<uint64_t, std::vector<uint8_t> const*>> m_blobs;
};

struct Table {
    uint64_t addr;
    uint8_t const* p;
    uint32_t length;
};

/// Checks a standard-header table at addr: present, length sane, checksum 0, expected signature.
Table check_table(Space const& s, uint64_t addr, char const* sig)
{
    uint8_t const* h = s.at(addr, 36);
    EXPECT_NE(h, nullptr) << sig << " header at " << std::hex << addr << " is outside the tables";
    if (!h)
        return { addr, nullptr, 0 };
    uint32_t len = get_le32(h + 4);
    EXPECT_EQ(str(h, 4), sig);
    uint8_t const* p = s.at(addr, len);
    EXPECT_NE(p, nullptr) << sig << " runs past its blob";
    if (!p)
        return { addr, nullptr, 0 };
    EXPECT_EQ(sum8(p, len), 0) << sig << " checksum";
    EXPECT_EQ(str(h + 10, 6), "HAKO  ");
    return { addr, p, len };
}

/// Follows RSDP -> XSDT/RSDT -> FADT -> FACS/DSDT and MADT and checks every field hako promises.
void check_acpi(Space const& s, uint64_t rsdp_addr, unsigned cpus, std::optional<PciAcpiConfig> pci = std::nullopt)
{
    uint8_t const* r = s.at(rsdp_addr, 36);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(rsdp_addr % 16, 0u);
    EXPECT_EQ(std::memcmp(r, "RSD PTR ", 8), 0);
    EXPECT_EQ(r[15], 2);
    EXPECT_EQ(get_le32(r + 20), 36u);
    EXPECT_EQ(sum8(r, 20), 0) << "RSDP checksum";
    EXPECT_EQ(sum8(r, 36), 0) << "RSDP extended checksum";

    auto xsdt = check_table(s, get_le64(r + 24), "XSDT");
    auto rsdt = check_table(s, get_le32(r + 16), "RSDT");
    ASSERT_TRUE(xsdt.p && rsdt.p);
    ASSERT_EQ((xsdt.length - 36) % 8, 0u);
    ASSERT_EQ((rsdt.length - 36) / 4, (xsdt.length - 36) / 8);
    std::map<std::string, uint64_t> by_sig;
    for (uint32_t i = 0; i < (xsdt.length - 36) / 8; ++i) {
        uint64_t a = get_le64(xsdt.p + 36 + 8 * i);
        EXPECT_EQ(a, get_le32(rsdt.p + 36 + 4 * i)) << "RSDT and XSDT disagree";
        uint8_t const* h = s.at(a, 4);
        ASSERT_NE(h, nullptr);
        by_sig[str(h, 4)] = a;
    }
    ASSERT_TRUE(by_sig.count("FACP"));
    ASSERT_TRUE(by_sig.count("APIC"));
    ASSERT_EQ(by_sig.count("MCFG"), pci ? 1u : 0u);
    ASSERT_EQ(by_sig.size(), pci ? 3u : 2u);
    if (pci) {
        // MCFG: header, 8 reserved bytes, one allocation {base, segment 0, buses 0..n, reserved}.
        auto mcfg = check_table(s, by_sig["MCFG"], "MCFG");
        ASSERT_TRUE(mcfg.p);
        ASSERT_EQ(mcfg.length, MCFG_LENGTH);
        EXPECT_EQ(mcfg.p[8], 1); // revision
        EXPECT_EQ(get_le64(mcfg.p + 36), 0u);
        EXPECT_EQ(get_le64(mcfg.p + 44), pci->ecam_base);
        EXPECT_EQ(get_le16(mcfg.p + 52), 0);
        EXPECT_EQ(mcfg.p[54], 0);
        EXPECT_EQ(mcfg.p[55], pci->ecam_size / (1u << 20) - 1);
        EXPECT_EQ(get_le32(mcfg.p + 56), 0u);
    }

    // FADT.
    auto fadt = check_table(s, by_sig["FACP"], "FACP");
    ASSERT_TRUE(fadt.p);
    uint8_t const* f = fadt.p;
    EXPECT_EQ(fadt.length, FADT_LENGTH);
    EXPECT_EQ(f[8], FADT_REVISION);
    EXPECT_EQ(get_le16(f + 46), 9); // SCI_INT
    EXPECT_EQ(get_le32(f + 48), 0u); // SMI_CMD
    EXPECT_EQ(get_le32(f + 56), PORT_ACPI_PM_BASE + PM1A_EVT_OFFSET);
    EXPECT_EQ(get_le32(f + 64), PORT_ACPI_PM_BASE + PM1A_CNT_OFFSET);
    EXPECT_EQ(get_le32(f + 76), PORT_ACPI_PM_BASE + PM_TMR_OFFSET);
    EXPECT_EQ(get_le32(f + 80), PORT_ACPI_PM_BASE + GPE0_OFFSET);
    EXPECT_EQ(f[88], 4); // PM1_EVT_LEN
    EXPECT_EQ(f[89], 2); // PM1_CNT_LEN
    EXPECT_EQ(f[91], 4); // PM_TMR_LEN
    EXPECT_EQ(f[92], 4); // GPE0_BLK_LEN
    uint32_t flags = get_le32(f + 112);
    EXPECT_EQ(flags, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP);
    EXPECT_EQ(flags & FADT_F_TMR_VAL_EXT, 0u); // 24-bit PM timer
    EXPECT_EQ(get_le16(f + 109), FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042);
    // RESET_REG: System I/O, 8 bits at 0xCF9, value 6.
    EXPECT_EQ(f[116], 1);
    EXPECT_EQ(f[117], 8);
    EXPECT_EQ(get_le64(f + 120), PORT_RESET_CF9);
    EXPECT_EQ(f[128], RESET_REG_VALUE);
    // X_ GAS blocks match the legacy fields.
    struct Gas {
        size_t x, legacy, len;
    } const gas[] = { { 148, 56, 88 }, { 172, 64, 89 }, { 208, 76, 91 }, { 220, 80, 92 } };
    for (auto g : gas) {
        EXPECT_EQ(f[g.x], 1) << g.x;
        EXPECT_EQ(f[g.x + 1], f[g.len] * 8) << g.x;
        EXPECT_EQ(get_le64(f + g.x + 4), get_le32(f + g.legacy)) << g.x;
    }
    // FACS and DSDT pointers, 32- and 64-bit, agree.
    uint64_t facs_addr = get_le32(f + 36);
    EXPECT_EQ(get_le64(f + 132), facs_addr);
    uint64_t dsdt_addr = get_le32(f + 40);
    EXPECT_EQ(get_le64(f + 140), dsdt_addr);
    EXPECT_EQ(facs_addr % 64, 0u);
    uint8_t const* facs = s.at(facs_addr, 64);
    ASSERT_NE(facs, nullptr);
    EXPECT_EQ(std::memcmp(facs, "FACS", 4), 0);
    EXPECT_EQ(get_le32(facs + 4), 64u);

    // DSDT: Name(_S5_, Package(4){0, 0, 0, 0}).
    auto dsdt = check_table(s, dsdt_addr, "DSDT");
    ASSERT_TRUE(dsdt.p);
    std::vector<uint8_t> aml(dsdt.p + 36, dsdt.p + dsdt.length);
    std::vector<uint8_t> s5 = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, SLP_TYP_S5, SLP_TYP_S5, 0, 0 };
    EXPECT_NE(std::search(aml.begin(), aml.end(), s5.begin(), s5.end()), aml.end()) << "_S5 package missing";
    // An empty \_SB scope without PCI; with PCI its contents are checked by iasl and acpiexec below.
    std::vector<uint8_t> sb = { 0x10, 0x06, '\\', '_', 'S', 'B', '_' };
    if (pci)
        sb.erase(sb.begin(), sb.begin() + 2);
    EXPECT_NE(std::search(aml.begin(), aml.end(), sb.begin(), sb.end()), aml.end()) << "\\_SB scope missing";

    // MADT.
    auto madt = check_table(s, by_sig["APIC"], "APIC");
    ASSERT_TRUE(madt.p);
    uint8_t const* m = madt.p;
    EXPECT_EQ(get_le32(m + 36), LAPIC_BASE);
    EXPECT_EQ(get_le32(m + 40), 1u); // PCAT_COMPAT
    unsigned lapics = 0, ioapics = 0, nmis = 0;
    std::map<uint8_t, std::pair<uint32_t, uint16_t>> overrides;
    for (size_t off = 44; off < madt.length;) {
        uint8_t type = m[off], len = m[off + 1];
        ASSERT_GE(len, 2) << "zero-length MADT entry";
        ASSERT_LE(off + len, madt.length);
        switch (type) {
        case 0:
            ASSERT_EQ(len, 8);
            EXPECT_EQ(m[off + 2], lapics);
            EXPECT_EQ(m[off + 3], lapics);
            EXPECT_EQ(get_le32(m + off + 4), 1u);
            ++lapics;
            break;
        case 1:
            ASSERT_EQ(len, 12);
            EXPECT_EQ(m[off + 2], cpus);
            EXPECT_EQ(get_le32(m + off + 4), IOAPIC_BASE);
            EXPECT_EQ(get_le32(m + off + 8), 0u);
            ++ioapics;
            break;
        case 2:
            ASSERT_EQ(len, 10);
            EXPECT_EQ(m[off + 2], 0);
            overrides[m[off + 3]] = { get_le32(m + off + 4), get_le16(m + off + 8) };
            break;
        case 4:
            ASSERT_EQ(len, 6);
            EXPECT_EQ(m[off + 2], 0xff);
            EXPECT_EQ(m[off + 5], 1); // LINT1
            ++nmis;
            break;
        default:
            ADD_FAILURE() << "unexpected MADT entry type " << int(type);
        }
        off += len;
    }
    EXPECT_EQ(lapics, cpus);
    EXPECT_EQ(ioapics, 1u);
    EXPECT_EQ(nmis, 1u);
    ASSERT_EQ(overrides.size(), pci ? 5u : 2u);
    EXPECT_EQ(overrides[0], (std::pair<uint32_t, uint16_t> { 2, 0 }));
    EXPECT_EQ(overrides[9], (std::pair<uint32_t, uint16_t> { 9, 0x0d })); // level, active-high
    if (pci) {
        // The PCI link IRQs are level-triggered and active-high too.
        for (uint8_t irq : { uint8_t { 5 }, uint8_t { 10 }, uint8_t { 11 } })
            EXPECT_EQ(overrides[irq], (std::pair<uint32_t, uint16_t> { irq, 0x0d })) << int(irq);
    }
}

std::string name_at(uint8_t const* p)
{
    EXPECT_EQ(p[55], 0) << "loader file name not NUL-terminated";
    size_t n = 0;
    while (n < 56 && p[n])
        ++n;
    return str(p, n);
}

/// Runs a BIOS linker/loader script the way OVMF does (checksum = 0 - sum over the range, field included),
/// placing each file at a fake address, and returns the address of each file.
std::map<std::string, uint64_t> run_loader(std::vector<uint8_t> const& script,
    std::map<std::string, std::vector<uint8_t>>& files, uint64_t next_high = 0x7ffe0000, uint64_t next_fseg = 0xf0000)
{
    std::map<std::string, uint64_t> addr;
    EXPECT_EQ(script.size() % LOADER_ENTRY_SIZE, 0u);
    for (size_t off = 0; off + LOADER_ENTRY_SIZE <= script.size(); off += LOADER_ENTRY_SIZE) {
        uint8_t const* e = script.data() + off;
        uint32_t cmd = get_le32(e);
        if (cmd == LOADER_CMD_ALLOCATE) {
            auto name = name_at(e + 4);
            uint32_t align = get_le32(e + 60);
            EXPECT_TRUE(files.count(name)) << name;
            EXPECT_FALSE(addr.count(name)) << "allocated twice: " << name;
            EXPECT_TRUE(align && (align & (align - 1)) == 0);
            uint8_t zone = e[64];
            uint64_t& next = zone == LOADER_ZONE_FSEG ? next_fseg : next_high;
            EXPECT_TRUE(zone == LOADER_ZONE_FSEG || zone == LOADER_ZONE_HIGH);
            next = (next + align - 1) & ~uint64_t { align - 1 };
            addr[name] = next;
            next += files[name].size();
            if (zone == LOADER_ZONE_FSEG) {
                EXPECT_LE(next, 0x100000u);
            }
        } else if (cmd == LOADER_CMD_ADD_POINTER) {
            auto dest = name_at(e + 4), src = name_at(e + 60);
            uint32_t offset = get_le32(e + 116);
            uint8_t size = e[120];
            EXPECT_TRUE(addr.count(dest) && addr.count(src)) << "pointer before allocation";
            EXPECT_TRUE(size == 1 || size == 2 || size == 4 || size == 8);
            auto& d = files[dest];
            EXPECT_LE(offset + size, d.size());
            if (offset + size > d.size())
                continue;
            uint64_t v = 0;
            for (uint8_t i = 0; i < size; ++i)
                v |= static_cast<uint64_t>(d[offset + i]) << (8 * i);
            EXPECT_LT(v, files[src].size()) << "pointer value outside the pointee file";
            v += addr[src];
            for (uint8_t i = 0; i < size; ++i)
                d[offset + i] = static_cast<uint8_t>(v >> (8 * i));
        } else if (cmd == LOADER_CMD_ADD_CHECKSUM) {
            auto name = name_at(e + 4);
            uint32_t result = get_le32(e + 60), start = get_le32(e + 64), length = get_le32(e + 68);
            EXPECT_TRUE(addr.count(name));
            auto& d = files[name];
            EXPECT_LT(result, d.size());
            EXPECT_LE(uint64_t { start } + length, d.size());
            EXPECT_EQ(d[result], 0) << "checksum field must be 0 in the file (OVMF sums over it)";
            d[result] = static_cast<uint8_t>(-sum8(d.data() + start, length));
        } else {
            ADD_FAILURE() << "unknown loader command " << cmd;
        }
    }
    return addr;
}

} // namespace

TEST(Acpi, DirectBlobChainIsValid)
{
    for (unsigned cpus : { 1u, 4u, 254u }) {
        SCOPED_TRACE(cpus);
        auto blob = build_acpi_direct(AcpiConfig { cpus }, ACPI_TABLES_ADDR);
        ASSERT_TRUE(blob) << blob.error().message();
        EXPECT_LE(blob->size(), ACPI_TABLES_MAX);
        Space s;
        s.place(ACPI_TABLES_ADDR, &*blob);
        check_acpi(s, ACPI_TABLES_ADDR, cpus);
    }
}

TEST(Acpi, RejectsBadConfig)
{
    EXPECT_FALSE(build_acpi_direct(AcpiConfig { 0 }, ACPI_TABLES_ADDR));
    EXPECT_FALSE(build_acpi_direct(AcpiConfig { 255 }, ACPI_TABLES_ADDR));
    EXPECT_FALSE(build_acpi_direct(AcpiConfig { 2 }, ACPI_TABLES_ADDR + 16)); // FACS needs 64-byte alignment
    EXPECT_FALSE(build_acpi_direct(AcpiConfig { 2 }, 0xffffff00));             // past 4 GiB
    EXPECT_FALSE(build_acpi_fw_cfg(AcpiConfig { 0 }));
    AcpiConfig bad_sci { 2 };
    bad_sci.sci_irq = 16;
    EXPECT_FALSE(build_acpi_fw_cfg(bad_sci));
}

TEST(Acpi, FwCfgFilesThroughSimulatedLoader)
{
    for (unsigned cpus : { 1u, 8u }) {
        SCOPED_TRACE(cpus);
        auto fw = build_acpi_fw_cfg(AcpiConfig { cpus });
        ASSERT_TRUE(fw) << fw.error().message();
        EXPECT_EQ(fw->rsdp.size(), 36u);
        std::map<std::string, std::vector<uint8_t>> files {
            { std::string(ACPI_RSDP_FILE), fw->rsdp },
            { std::string(ACPI_TABLES_FILE), fw->tables },
        };
        auto addr = run_loader(fw->table_loader, files);
        ASSERT_EQ(addr.size(), 2u);
        EXPECT_GE(addr[std::string(ACPI_RSDP_FILE)], 0xe0000u);
        Space s;
        for (auto const& [name, data] : files)
            s.place(addr[name], &data);
        check_acpi(s, addr[std::string(ACPI_RSDP_FILE)], cpus);
    }
}

TEST(Acpi, FwCfgTablesMatchDirectTables)
{
    // The same tables either way: loading the fw_cfg files where the direct blob puts them gives its bytes.
    auto fw = build_acpi_fw_cfg(AcpiConfig { 3 });
    auto direct = build_acpi_direct(AcpiConfig { 3 }, ACPI_TABLES_ADDR);
    ASSERT_TRUE(fw && direct);
    ASSERT_EQ(direct->size(), 64 + fw->tables.size());
    std::map<std::string, std::vector<uint8_t>> files {
        { std::string(ACPI_RSDP_FILE), fw->rsdp },
        { std::string(ACPI_TABLES_FILE), fw->tables },
    };
    auto addr = run_loader(fw->table_loader, files, ACPI_TABLES_ADDR + 64, ACPI_TABLES_ADDR);
    ASSERT_EQ(addr[std::string(ACPI_RSDP_FILE)], ACPI_TABLES_ADDR);
    ASSERT_EQ(addr[std::string(ACPI_TABLES_FILE)], ACPI_TABLES_ADDR + 64);
    std::vector<uint8_t> loaded = files[std::string(ACPI_RSDP_FILE)];
    loaded.resize(64, 0);
    auto const& t = files[std::string(ACPI_TABLES_FILE)];
    loaded.insert(loaded.end(), t.begin(), t.end());
    EXPECT_EQ(loaded, *direct);
}

TEST(Aml, PkgLengthEncodings)
{
    EXPECT_EQ(*aml::pkg_length(0), (aml::Bytes { 0x01 }));
    EXPECT_EQ(*aml::pkg_length(62), (aml::Bytes { 0x3f }));
    // 63 bytes of body: total 65 with a two-byte PkgLength = 0x41 -> lead 0x41 (count 1, nibble 1), then 0x04.
    EXPECT_EQ(*aml::pkg_length(63), (aml::Bytes { 0x41, 0x04 }));
    EXPECT_EQ(*aml::pkg_length(4093), (aml::Bytes { 0x4f, 0xff }));
    EXPECT_EQ(*aml::pkg_length(4094), (aml::Bytes { 0x81, 0x00, 0x01 })); // 4097 = 0x1001
    EXPECT_EQ(aml::pkg_length((size_t { 1 } << 28) - 5)->size(), 4u);
    EXPECT_FALSE(aml::pkg_length(size_t { 1 } << 28));
}

TEST(Aml, NamesIntegersAndStrings)
{
    EXPECT_EQ(*aml::name_string("_S5"), (aml::Bytes { '_', 'S', '5', '_' }));
    EXPECT_EQ(*aml::name_string("\\_SB"), (aml::Bytes { '\\', '_', 'S', 'B', '_' }));
    EXPECT_EQ(*aml::name_string("\\_SB.PCI0"), (aml::Bytes { '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0' }));
    EXPECT_EQ(aml::name_string("^A.B.C")->size(), 1u + 2u + 12u);
    EXPECT_FALSE(aml::name_string("TOOLONG"));
    EXPECT_FALSE(aml::name_string("1ABC"));
    EXPECT_FALSE(aml::name_string("A..B"));
    EXPECT_FALSE(aml::name_string("lower"));
    EXPECT_EQ(aml::integer(0), (aml::Bytes { 0x00 }));
    EXPECT_EQ(aml::integer(1), (aml::Bytes { 0x01 }));
    EXPECT_EQ(aml::integer(0x80), (aml::Bytes { 0x0a, 0x80 }));
    EXPECT_EQ(aml::integer(0x1234), (aml::Bytes { 0x0b, 0x34, 0x12 }));
    EXPECT_EQ(aml::integer(0x12345678), (aml::Bytes { 0x0c, 0x78, 0x56, 0x34, 0x12 }));
    EXPECT_EQ(aml::integer(0x100000000ull).size(), 9u);
    EXPECT_EQ(*aml::string("ab"), (aml::Bytes { 0x0d, 'a', 'b', 0 }));
    // PNP0501 -> 0x0105D041 stored as bytes 41 D0 05 01.
    EXPECT_EQ(*aml::eisa_id("PNP0501"), (aml::Bytes { 0x0c, 0x41, 0xd0, 0x05, 0x01 }));
    EXPECT_FALSE(aml::eisa_id("PNP05"));
}

namespace {

std::string make_temp_dir()
{
    char tmpl[] = "/tmp/hako-acpi-XXXXXX";
    char* d = mkdtemp(tmpl);
    return d ? std::string(d) : std::string();
}

void write_file(std::string const& path, uint8_t const* p, size_t n)
{
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    EXPECT_EQ(std::fwrite(p, 1, n, f), n);
    std::fclose(f);
}

std::string read_text(std::string const& path)
{
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace

// Disassembles hako's DSDT (and a DSDT with devices built by the AML helpers) with ACPICA's iasl: a real AML
// parser must accept the bytes. This test fails, not skips, when iasl is missing (Debian package acpica-tools).
TEST(Acpi, IaslDisassemblesDsdt)
{
    ASSERT_EQ(std::system("command -v iasl > /dev/null 2>&1"), 0)
        << "iasl not found: install the acpica-tools package (apt-get install acpica-tools)";
    auto blob = build_acpi_direct(AcpiConfig { 2 }, ACPI_TABLES_ADDR);
    ASSERT_TRUE(blob);
    Space s;
    s.place(ACPI_TABLES_ADDR, &*blob);
    uint8_t const* f = nullptr;
    uint64_t xsdt = get_le64(blob->data() + 24);
    uint8_t const* x = s.at(xsdt, 36 + 8);
    ASSERT_NE(x, nullptr);
    f = s.at(get_le64(x + 36), FADT_LENGTH);
    ASSERT_NE(f, nullptr);
    uint8_t const* dsdt = s.at(get_le32(f + 40), 36);
    ASSERT_NE(dsdt, nullptr);
    uint32_t len = get_le32(dsdt + 4);

    std::string dir = make_temp_dir();
    ASSERT_FALSE(dir.empty());
    write_file(dir + "/dsdt.aml", dsdt, len);
    write_file(dir + "/facp.dat", f, FADT_LENGTH);
    std::string cmd = "cd " + dir + " && iasl -d dsdt.aml > iasl.log 2>&1 && iasl -d facp.dat >> iasl.log 2>&1";
    int rc = std::system(cmd.c_str());
    std::string log = read_text(dir + "/iasl.log");
    ASSERT_EQ(rc, 0) << log;
    std::string dsl = read_text(dir + "/dsdt.dsl");
    EXPECT_NE(dsl.find("Name (_S5, Package (0x04)"), std::string::npos) << dsl;
    EXPECT_NE(dsl.find("Scope (\\_SB)"), std::string::npos) << dsl;
    std::string facp = read_text(dir + "/facp.dsl");
    EXPECT_NE(facp.find("Fixed ACPI Description Table"), std::string::npos) << facp;
    EXPECT_EQ(facp.find("Invalid"), std::string::npos) << facp;
    EXPECT_EQ(facp.find("Incorrect"), std::string::npos) << facp;
    EXPECT_EQ(log.find("rror"), std::string::npos) << log;
    std::system(("rm -rf " + dir).c_str());
}

// --- The PCI host bridge (DSDT \_SB.PCI0, links, MCFG) ---

namespace {

AcpiConfig pci_config(uint64_t memory, unsigned cpus = 2)
{
    AcpiConfig cfg { cpus };
    cfg.pci = pci_acpi_config(ram_layout(memory));
    return cfg;
}

/// A table of the direct blob (at ACPI_TABLES_ADDR) by signature, through the XSDT (the DSDT through the FADT).
std::vector<uint8_t> direct_table(std::vector<uint8_t> const& blob, char const* sig)
{
    Space s;
    s.place(ACPI_TABLES_ADDR, &blob);
    uint8_t const* x = s.at(get_le64(blob.data() + 24), 36);
    if (!x)
        return {};
    uint32_t xlen = get_le32(x + 4);
    x = s.at(get_le64(blob.data() + 24), xlen);
    for (uint32_t i = 0; x && i < (xlen - 36) / 8; ++i) {
        uint64_t a = get_le64(x + 36 + 8 * i);
        uint8_t const* h = s.at(a, 36);
        if (!h)
            return {};
        if (std::string(sig) == "DSDT" && str(h, 4) == "FACP") {
            a = get_le32(h + 40);
            h = s.at(a, 36);
        } else if (str(h, 4) != sig) {
            continue;
        }
        if (!h || str(h, 4) != sig)
            return {};
        uint8_t const* p = s.at(a, get_le32(h + 4));
        return p ? std::vector<uint8_t>(p, p + get_le32(h + 4)) : std::vector<uint8_t> {};
    }
    return {};
}

std::string run(std::string const& cmd)
{
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
        return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    pclose(p);
    return out;
}

/// What acpiexec printed for one "evaluate": an integer, a buffer's bytes, or a package's lines.
struct Evaluated {
    std::string text;
    std::optional<uint64_t> integer() const
    {
        auto at = text.find("] = ");
        if (text.find("[Integer]") == std::string::npos || at == std::string::npos)
            return std::nullopt;
        return std::stoull(text.substr(at + 4), nullptr, 16);
    }
    std::vector<uint8_t> buffer() const
    {
        std::vector<uint8_t> out;
        std::istringstream in(text);
        std::string line;
        bool in_buffer = false;
        while (std::getline(in, line)) {
            if (line.find("[Buffer] Length") != std::string::npos) {
                // Short buffers continue on the same line ("= 0000: 89 ..."), longer ones on the next lines.
                in_buffer = true;
                line = line.substr(line.find('=') + 1);
                if (line.find(':') == std::string::npos)
                    continue;
            }
            if (!in_buffer)
                continue;
            auto colon = line.find(':');
            if (colon == std::string::npos)
                break;
            std::istringstream hex(line.substr(colon + 1, line.find("//") - colon - 1));
            std::string byte;
            while (hex >> byte)
                out.push_back(static_cast<uint8_t>(std::stoul(byte, nullptr, 16)));
        }
        return out;
    }
};

/// Splits acpiexec's batch output into one block per "Evaluating ..." line, in command order.
std::vector<Evaluated> split_evaluations(std::string const& out)
{
    std::vector<Evaluated> blocks;
    size_t at = out.find("Evaluating ");
    while (at != std::string::npos) {
        size_t next = out.find("\nEvaluating ", at + 1);
        blocks.push_back({ out.substr(at, next == std::string::npos ? std::string::npos : next + 1 - at) });
        at = next == std::string::npos ? next : next + 1;
    }
    return blocks;
}

std::vector<uint8_t> interrupt_crs(uint32_t irq)
{
    return { 0x89, 0x06, 0x00, 0x09, 0x01, static_cast<uint8_t>(irq), 0, 0, 0, 0x79, 0x00 };
}

} // namespace

TEST(AcpiPci, DirectBlobChainIsValid)
{
    // Below 3 GiB, exactly 3 GiB, and with RAM above 4 GiB.
    for (uint64_t memory : { 512ull << 20, 3ull << 30, 6ull << 30 }) {
        SCOPED_TRACE(memory);
        auto cfg = pci_config(memory);
        auto blob = build_acpi_direct(cfg, ACPI_TABLES_ADDR);
        ASSERT_TRUE(blob) << blob.error().message();
        EXPECT_LE(blob->size(), ACPI_TABLES_MAX);
        Space s;
        s.place(ACPI_TABLES_ADDR, &*blob);
        check_acpi(s, ACPI_TABLES_ADDR, 2, cfg.pci);
    }
}

TEST(AcpiPci, FwCfgFilesThroughSimulatedLoader)
{
    auto cfg = pci_config(6ull << 30);
    auto fw = build_acpi_fw_cfg(cfg);
    ASSERT_TRUE(fw) << fw.error().message();
    std::map<std::string, std::vector<uint8_t>> files {
        { std::string(ACPI_RSDP_FILE), fw->rsdp },
        { std::string(ACPI_TABLES_FILE), fw->tables },
    };
    auto addr = run_loader(fw->table_loader, files);
    Space s;
    for (auto const& [name, data] : files)
        s.place(addr[name], &data);
    check_acpi(s, addr[std::string(ACPI_RSDP_FILE)], 2, cfg.pci);

    // And placed where the direct blob goes, the loaded files are the direct blob byte for byte.
    std::map<std::string, std::vector<uint8_t>> files2 {
        { std::string(ACPI_RSDP_FILE), fw->rsdp },
        { std::string(ACPI_TABLES_FILE), fw->tables },
    };
    run_loader(fw->table_loader, files2, ACPI_TABLES_ADDR + 64, ACPI_TABLES_ADDR);
    std::vector<uint8_t> loaded = files2[std::string(ACPI_RSDP_FILE)];
    loaded.resize(64, 0);
    auto const& t = files2[std::string(ACPI_TABLES_FILE)];
    loaded.insert(loaded.end(), t.begin(), t.end());
    auto direct = build_acpi_direct(cfg, ACPI_TABLES_ADDR);
    ASSERT_TRUE(direct);
    EXPECT_EQ(loaded, *direct);
}

TEST(AcpiPci, RejectsBadPciConfig)
{
    auto bad = [](auto mutate) {
        auto cfg = pci_config(2ull << 30);
        mutate(*cfg.pci);
        return !build_acpi_direct(cfg, ACPI_TABLES_ADDR) && !build_acpi_fw_cfg(cfg);
    };
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ecam_size = 0; }));
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ecam_size = 512ull << 20; }));        // > 256 buses
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ecam_size = (1ull << 20) + 4096; })); // not whole buses
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ecam_base += 4096; }));
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ecam_base = 0xf8000000; }));           // runs into the IOAPIC
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ram_low_end = PCI_ECAM_BASE + 1; }));  // RAM over ECAM
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.ram_low_end = 0x80000; }));            // window over the VGA hole
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.mmio64_start = 0x80000000; }));        // 64-bit window below 4 GiB
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.mmio64_size = 0; }));
    EXPECT_TRUE(bad([](PciAcpiConfig& p) { p.mmio64_start = ~0ull - 0xfff; }));     // wraps
    EXPECT_FALSE(bad([](PciAcpiConfig&) {}));
    // A smaller ECAM: fewer buses in MCFG and in _CRS.
    auto cfg = pci_config(1ull << 30);
    cfg.pci->ecam_size = 64ull << 20;
    auto blob = build_acpi_direct(cfg, ACPI_TABLES_ADDR);
    ASSERT_TRUE(blob);
    auto mcfg = direct_table(*blob, "MCFG");
    ASSERT_EQ(mcfg.size(), MCFG_LENGTH);
    EXPECT_EQ(mcfg[55], 63);
}

TEST(AcpiPci, PciConfigFollowsLayout)
{
    auto p = pci_acpi_config(ram_layout(6ull << 30));
    EXPECT_EQ(p.ram_low_end, PCI_HOLE_START);
    EXPECT_EQ(p.mmio64_start, 0x1c0000000u); // 4 GiB + 3 GiB of RAM, 1 GiB aligned
    EXPECT_EQ(p.mmio64_size, PCI_MMIO64_SIZE);
    EXPECT_EQ(p.ecam_base, PCI_ECAM_BASE);
    EXPECT_EQ(p.ecam_size, PCI_ECAM_SIZE);
    auto small = pci_acpi_config(ram_layout(512ull << 20));
    EXPECT_EQ(small.ram_low_end, 512ull << 20);
    EXPECT_EQ(small.mmio64_start, FOUR_GIB);
}

// iasl disassembles the PCI DSDT and the MCFG without complaint, and the ASL says what hako means.
TEST(AcpiPci, IaslDisassemblesPciTables)
{
    ASSERT_EQ(std::system("command -v iasl > /dev/null 2>&1"), 0) << "iasl not found: install acpica-tools";
    auto blob = build_acpi_direct(pci_config(6ull << 30), ACPI_TABLES_ADDR);
    ASSERT_TRUE(blob);
    auto dsdt = direct_table(*blob, "DSDT");
    auto mcfg = direct_table(*blob, "MCFG");
    ASSERT_FALSE(dsdt.empty());
    ASSERT_FALSE(mcfg.empty());
    std::string dir = make_temp_dir();
    ASSERT_FALSE(dir.empty());
    write_file(dir + "/dsdt.aml", dsdt.data(), dsdt.size());
    write_file(dir + "/mcfg.dat", mcfg.data(), mcfg.size());
    int rc = std::system(("cd " + dir + " && iasl -d dsdt.aml > iasl.log 2>&1 && iasl -d mcfg.dat >> iasl.log 2>&1").c_str());
    std::string log = read_text(dir + "/iasl.log");
    ASSERT_EQ(rc, 0) << log;
    EXPECT_EQ(log.find("rror"), std::string::npos) << log;
    std::string dsl = read_text(dir + "/dsdt.dsl");
    EXPECT_EQ(dsl.find("Incorrect"), std::string::npos) << dsl;
    for (char const* want : {
             "Device (PCI0)",
             "Name (_HID, EisaId (\"PNP0A03\")",
             "Name (_BBN, Zero)",
             "Name (_SEG, Zero)",
             "Device (ISA)",
             "Name (_ADR, 0x00010000)",
             "OperationRegion (P40C, PCI_Config, 0x60, 0x04)",
             "Field (P40C, ByteAcc, NoLock, Preserve)",
             "Name (_HID, EisaId (\"PNP0C02\")",
             "Memory32Fixed (ReadWrite,\n                        0xE0000000,         // Address Base\n"
             "                        0x10000000,         // Address Length",
             "Device (LNKD)",
             "Name (_HID, EisaId (\"PNP0C0F\")",
             "Name (_UID, 0x04)",
             "Interrupt (ResourceConsumer, Level, ActiveHigh, Shared, ,, )",
             "Method (_SRS, 1, Serialized)",
             "\\_SB.PCI0.ISA.PRQ3 |= 0x80",
             "Name (_PRT, Package (0x7C)",
         })
        EXPECT_NE(dsl.find(want), std::string::npos) << "missing: " << want;
    std::string mcfg_dsl = read_text(dir + "/mcfg.dsl");
    EXPECT_NE(mcfg_dsl.find("Base Address : 00000000E0000000"), std::string::npos) << mcfg_dsl;
    EXPECT_NE(mcfg_dsl.find("End Bus Number : FF"), std::string::npos) << mcfg_dsl;
    EXPECT_EQ(mcfg_dsl.find("Incorrect"), std::string::npos) << mcfg_dsl;
    std::system(("rm -rf " + dir).c_str());
}

// ACPICA's acpiexec loads the DSDT into a real AML interpreter and evaluates the PCI objects. It simulates the
// PCI_Config operation region with memory that starts zeroed (PRQ0-3 = 0: routed, IRQ 0) and keeps what the
// methods write, so _DIS/_SRS/_STA/_CRS can be checked end to end; a small SSDT compiled here by iasl indexes
// _PRT (acpiexec's debugger cannot print the whole 124-entry package: its output buffer overflows).
TEST(AcpiPci, AcpiexecEvaluatesPciObjects)
{
    ASSERT_EQ(std::system("command -v acpiexec > /dev/null 2>&1 && command -v iasl > /dev/null 2>&1"), 0)
        << "acpiexec/iasl not found: install acpica-tools";
    auto cfg = pci_config(6ull << 30);
    auto blob = build_acpi_direct(cfg, ACPI_TABLES_ADDR);
    ASSERT_TRUE(blob);
    auto dsdt = direct_table(*blob, "DSDT");
    ASSERT_FALSE(dsdt.empty());
    std::string dir = make_temp_dir();
    ASSERT_FALSE(dir.empty());
    write_file(dir + "/dsdt.dat", dsdt.data(), dsdt.size());
    std::string const helper = "DefinitionBlock (\"\", \"SSDT\", 2, \"HAKO\", \"PRTTEST\", 1)\n"
                               "{\n"
                               "    External (\\_SB.PCI0._PRT, PkgObj)\n"
                               "    Method (PRTN, 0) { Return (SizeOf (\\_SB.PCI0._PRT)) }\n"
                               "    Method (PRTE, 1) { Return (DerefOf (Index (\\_SB.PCI0._PRT, Arg0))) }\n"
                               "}\n";
    std::vector<uint8_t> const helper_bytes(helper.begin(), helper.end());
    write_file(dir + "/helper.asl", helper_bytes.data(), helper_bytes.size());
    ASSERT_EQ(std::system(("cd " + dir + " && iasl helper.asl > helper.log 2>&1").c_str()), 0)
        << read_text(dir + "/helper.log");

    // Link methods, in order; each "evaluate" gives one block of output.
    std::vector<std::string> cmds = {
        "evaluate \\_SB.LNKA._STA",                                        // 0: PRQ0 = 0: enabled
        "evaluate \\_SB.LNKA._DIS",                                        // 1
        "evaluate \\_SB.LNKA._STA",                                        // 2: disabled
        "evaluate \\_SB.LNKA._CRS",                                        // 3: IRQ 0 while disabled
        "evaluate \\_SB.LNKA._SRS (89 06 00 09 01 0A 00 00 00 79 00)",     // 4: route to IRQ 10
        "evaluate \\_SB.LNKA._STA",                                        // 5: enabled
        "evaluate \\_SB.LNKA._CRS",                                        // 6: IRQ 10
        "evaluate \\_SB.LNKC._SRS (89 06 00 09 01 0B 00 00 00 79 00)",     // 7: LNKC to IRQ 11
        "evaluate \\_SB.LNKC._CRS",                                        // 8
        "evaluate \\_SB.LNKB._CRS",                                        // 9: untouched: IRQ 0
        "evaluate \\_SB.LNKD._DIS",                                        // 10
        "evaluate \\_SB.LNKD._STA",                                        // 11
        "evaluate \\_SB.LNKA._STA",                                        // 12: LNKD's _DIS left LNKA alone
        "evaluate \\_SB.LNKA._PRS",                                        // 13
        "evaluate \\_SB.LNKB._UID",                                        // 14
        "evaluate \\PRTN",                                                 // 15
    };
    size_t const first_prt = cmds.size();
    for (unsigned i = 0; i < 124; ++i)
        cmds.push_back("evaluate \\PRTE " + std::to_string(i));
    // The commands go to the debugger's stdin: -b takes at most 1023 characters.
    std::string script;
    for (auto const& c : cmds)
        script += c + "\n";
    script += "quit\n";
    std::vector<uint8_t> const script_bytes(script.begin(), script.end());
    write_file(dir + "/cmds.txt", script_bytes.data(), script_bytes.size());
    std::string out = run("cd " + dir + " && timeout 120 acpiexec dsdt.dat helper.aml < cmds.txt 2>&1");
    EXPECT_EQ(out.find("ACPI Error"), std::string::npos) << out;
    EXPECT_EQ(out.find("ACPI Exception"), std::string::npos) << out;
    auto ev = split_evaluations(out);
    ASSERT_EQ(ev.size(), cmds.size()) << out.substr(0, 4000);

    EXPECT_EQ(ev[0].integer(), 0x0bu) << ev[0].text;
    EXPECT_EQ(ev[2].integer(), 0x09u) << ev[2].text;
    EXPECT_EQ(ev[3].buffer(), interrupt_crs(0)) << ev[3].text;
    EXPECT_EQ(ev[5].integer(), 0x0bu) << ev[5].text;
    EXPECT_EQ(ev[6].buffer(), interrupt_crs(10)) << ev[6].text;
    EXPECT_EQ(ev[8].buffer(), interrupt_crs(11)) << ev[8].text;
    EXPECT_EQ(ev[9].buffer(), interrupt_crs(0)) << ev[9].text;
    EXPECT_EQ(ev[11].integer(), 0x09u) << ev[11].text;
    EXPECT_EQ(ev[12].integer(), 0x0bu) << ev[12].text;
    EXPECT_EQ(ev[13].buffer(), (std::vector<uint8_t> { 0x89, 0x12, 0x00, 0x09, 0x04, 5, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0,
                                   0, 11, 0, 0, 0, 0x79, 0x00 }))
        << ev[13].text;
    EXPECT_EQ(ev[14].integer(), 2u) << ev[14].text;
    EXPECT_EQ(ev[15].integer(), 124u) << ev[15].text;
    // _PRT entry i: slot i/4 + 1, pin i%4 (INTA# = 0), link by the PC wiring (slot - 1 + pin) & 3, written out
    // here independently of arch/x86/pci_irq.h.
    for (unsigned i = 0; i < 124; ++i) {
        auto const& e = ev[first_prt + i].text;
        unsigned slot = i / 4 + 1, pin = i % 4;
        char link = static_cast<char>('A' + ((slot - 1 + pin) & 3));
        std::ostringstream want;
        want << "[Package] Contains 4 Elements:\n    [Integer] = " << std::uppercase << std::hex << std::setw(16)
             << std::setfill('0') << ((uint64_t { slot } << 16) | 0xffff) << "\n    [Integer] = " << std::setw(16) << pin
             << "\n    [Object Reference] = ";
        EXPECT_NE(e.find(want.str()), std::string::npos) << "entry " << i << ":\n" << e;
        EXPECT_NE(e.find(std::string("Name LNK") + link + " Device"), std::string::npos) << "entry " << i << ":\n" << e;
    }

    // _CRS of the root bridge, decoded by ACPICA's resource manager (AcpiGetCurrentResources).
    std::string res = run("cd " + dir + " && timeout 60 acpiexec -b 'resources \\_SB.PCI0' dsdt.dat 2>&1");
    std::vector<std::pair<std::string, std::string>> ranges;
    std::istringstream in(res.substr(std::min(res.find("Evaluating _CRS"), res.size())));
    std::string line, min;
    while (std::getline(in, line)) {
        auto value = [&] { return line.substr(line.find(':') + 2); };
        if (line.find("Address Minimum :") != std::string::npos)
            min = value();
        else if (line.find("Address Maximum :") != std::string::npos)
            ranges.emplace_back(min, value());
    }
    std::vector<std::pair<std::string, std::string>> const want_ranges = {
        { "0000", "00FF" },                          // buses
        { "0CF8", "0CF8" },                          // config ports
        { "0000", "0CF7" },                          // I/O below them
        { "0D00", "FFFF" },                          // I/O above them
        { "000A0000", "000BFFFF" },                  // VGA
        { "C0000000", "DFFFFFFF" },                  // low RAM end .. ECAM
        { "F0000000", "FEBFFFFF" },                  // ECAM end .. IOAPIC
        { "00000001C0000000", "00000009BFFFFFFF" },  // 64-bit window: 32 GiB after RAM
    };
    EXPECT_EQ(ranges, want_ranges) << res;
    EXPECT_EQ(res.find("Could not evaluate _CRS"), std::string::npos) << res;
    std::system(("rm -rf " + dir).c_str());
}

TEST(AcpiPci, RoutingFormulaMatchesPiix3)
{
    // The _PRT uses arch/x86/pci_irq.h; PIIX3's intx_to_pirq must be the same wiring.
    for (uint8_t slot = 0; slot < 32; ++slot)
        for (uint8_t pin = 0; pin <= 5; ++pin)
            EXPECT_EQ(pc_intx_to_pirq(slot, pin), devices::pci::intx_to_pirq(slot, pin)) << int(slot) << " " << int(pin);
    // The DSDT's P40C region (PCI_Config 0x60-0x63) and its bit tests (0x80 disabled, IRQ in 0x0F) are the PIIX3
    // model's registers: acpi.cpp cannot include devices/, so pin them here.
    using devices::pci::Piix3IsaBridge;
    EXPECT_EQ(Piix3IsaBridge::PIRQRC, 0x60);
    EXPECT_EQ(Piix3IsaBridge::PIRQRC_IRQROUTEN, 0x80);
    EXPECT_EQ(Piix3IsaBridge::PIRQRC_IRQ_MASK, 0x0f);
    EXPECT_EQ(devices::pci::NUM_PIRQS, 4u);
}
