// SMBIOS tables checked by structure and decoded by dmidecode (Debian's dmidecode as the oracle): the tables are
// written in dmidecode's --dump-bin layout (entry point at 0, table at 0x20) and read back with --from-dump.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "arch/x86/smbios.h"

using namespace hako::arch::x86;

namespace {

uint8_t sum(std::vector<uint8_t> const& b, size_t from, size_t to)
{
    uint8_t s = 0;
    for (size_t i = from; i < to; ++i)
        s = static_cast<uint8_t>(s + b[i]);
    return s;
}

/// dmidecode's decoding of the tables (or "" if it could not run).
std::string dmidecode(SmbiosBlobs const& blobs)
{
    char path[] = "/tmp/hako-smbios-XXXXXX";
    int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    std::vector<uint8_t> dump(0x20 + blobs.tables.size(), 0);
    std::copy(blobs.anchor.begin(), blobs.anchor.end(), dump.begin());
    dump[24] = 0x20; // the table address, as dmidecode --dump-bin writes it
    uint8_t const fix = static_cast<uint8_t>(-sum(std::vector<uint8_t>(dump.begin() + 16, dump.begin() + 31), 0, 15));
    dump[21] = static_cast<uint8_t>(dump[21] + fix);
    std::copy(blobs.tables.begin(), blobs.tables.end(), dump.begin() + 0x20);
    EXPECT_EQ(::write(fd, dump.data(), dump.size()), static_cast<ssize_t>(dump.size()));
    ::close(fd);
    std::string out;
    std::string const cmd = std::string("dmidecode --from-dump ") + path + " 2>&1";
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
            out.append(buf, n);
        EXPECT_EQ(::pclose(p), 0) << out;
    }
    ::unlink(path);
    return out;
}

size_t count(std::string const& text, std::string const& what)
{
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1))
        ++n;
    return n;
}

} // namespace

TEST(Smbios, EntryPointIsConsistentWithTheTable)
{
    SmbiosConfig c;
    c.cpus = 3;
    c.ram = ram_layout(512ull << 20);
    auto b = build_smbios(c);
    ASSERT_EQ(b.anchor.size(), 31u);
    EXPECT_EQ(std::string(b.anchor.begin(), b.anchor.begin() + 4), "_SM_");
    EXPECT_EQ(std::string(b.anchor.begin() + 16, b.anchor.begin() + 21), "_DMI_");
    EXPECT_EQ(sum(b.anchor, 0, 31), 0) << "entry point checksum";
    EXPECT_EQ(sum(b.anchor, 16, 31), 0) << "intermediate checksum";
    EXPECT_EQ(b.anchor[22] | b.anchor[23] << 8, static_cast<int>(b.tables.size()));
    // Walk the structures: 1, 3, 4 x3, 16, 17, 19, 32, 127; each ends with a double NUL.
    std::vector<int> types;
    size_t pos = 0;
    while (pos < b.tables.size()) {
        types.push_back(b.tables[pos]);
        size_t p = pos + b.tables[pos + 1];
        while (p + 1 < b.tables.size() && !(b.tables[p] == 0 && b.tables[p + 1] == 0))
            ++p;
        pos = p + 2;
    }
    EXPECT_EQ(pos, b.tables.size());
    EXPECT_EQ(types, (std::vector<int> { 1, 3, 4, 4, 4, 16, 17, 19, 32, 127 }));
    EXPECT_EQ(b.anchor[28] | b.anchor[29] << 8, static_cast<int>(types.size()));
}

TEST(Smbios, DmidecodeReadsWhatWeWrote)
{
    SmbiosConfig c;
    c.version = "0.1.0";
    c.serial = "HAKO-1234";
    c.uuid = { 0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78 };
    c.cpus = 2;
    c.cpuid_signature = 0x000806ec;
    c.ram = ram_layout(6ull << 30); // 3 GiB below the PCI hole... and the rest above 4 GiB
    auto out = dmidecode(build_smbios(c));
    ASSERT_FALSE(out.empty());
    EXPECT_NE(out.find("SMBIOS 2.8 present."), std::string::npos) << out;
    EXPECT_NE(out.find("Manufacturer: hako"), std::string::npos);
    EXPECT_NE(out.find("Product Name: hako virtual machine"), std::string::npos);
    EXPECT_NE(out.find("Serial Number: HAKO-1234"), std::string::npos);
    EXPECT_NE(out.find("UUID: 12345678-1234-5678-9abc-def012345678"), std::string::npos) << out;
    EXPECT_EQ(count(out, "Processor Information"), 2u);
    EXPECT_NE(out.find("Maximum Capacity: 6 GB"), std::string::npos) << out;
    EXPECT_NE(out.find("Size: 6 GB"), std::string::npos) << out;
    EXPECT_EQ(count(out, "Memory Array Mapped Address"), 2u);
    EXPECT_NE(out.find("Starting Address: 0x00100000000"), std::string::npos) << out;
    EXPECT_EQ(out.find("OUT OF SPEC"), std::string::npos) << out;
    EXPECT_EQ(out.find("Invalid"), std::string::npos) << out;
    EXPECT_EQ(out.find("<BAD INDEX>"), std::string::npos) << out;
}

TEST(Smbios, LargeMemorySplitsIntoSixteenGigabyteDevices)
{
    SmbiosConfig c;
    c.ram = ram_layout(40ull << 30);
    auto out = dmidecode(build_smbios(c));
    EXPECT_EQ(count(out, "Memory Device\n"), 3u) << out;
    EXPECT_NE(out.find("Maximum Capacity: 40 GB"), std::string::npos) << out;
    EXPECT_EQ(count(out, "Size: 16 GB"), 2u) << out;
    EXPECT_EQ(count(out, "Size: 8 GB"), 1u) << out;
}
