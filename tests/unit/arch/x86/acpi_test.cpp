#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
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
void check_acpi(Space const& s, uint64_t rsdp_addr, unsigned cpus)
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
    std::vector<uint8_t> sb = { 0x10, 0x06, '\\', '_', 'S', 'B', '_' };
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
    ASSERT_EQ(overrides.size(), 2u);
    EXPECT_EQ(overrides[0], (std::pair<uint32_t, uint16_t> { 2, 0 }));
    EXPECT_EQ(overrides[9], (std::pair<uint32_t, uint16_t> { 9, 0x0d })); // level, active-high
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
