#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "devices/legacy/fw_cfg.h"

using namespace hako;
using namespace hako::devices::legacy;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr uint64_t RAM_BASE = 0x10000;
constexpr size_t RAM_SIZE = 0x10000;

class FwCfgTest : public ::testing::Test {
protected:
    FwCfgTest()
        : m_buf(RAM_SIZE, 0xAA)
        , m_mem(std::move(GuestMemory::from_buffers({ { GuestAddr(RAM_BASE), std::span<uint8_t>(m_buf) } }).value()))
        , m_dev(m_mem)
    {
    }

    void select(uint16_t key)
    {
        uint8_t b[2] = { static_cast<uint8_t>(key), static_cast<uint8_t>(key >> 8) };
        m_dev.write(FW_CFG_PORT_SELECTOR, b);
    }
    uint8_t data8()
    {
        uint8_t b = 0x55;
        m_dev.read(FW_CFG_PORT_DATA, std::span(&b, 1));
        return b;
    }
    std::vector<uint8_t> read_item(uint16_t key, size_t n)
    {
        select(key);
        std::vector<uint8_t> v;
        for (size_t i = 0; i < n; ++i)
            v.push_back(data8());
        return v;
    }
    static void be32(uint8_t* p, uint32_t v)
    {
        for (int i = 0; i < 4; ++i)
            p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
    }
    static uint32_t get_be32(uint8_t const* p)
    {
        return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
    }
    uint8_t* host(uint64_t gpa) { return m_buf.data() + (gpa - RAM_BASE); }
    /// Writes a FWCfgDmaAccess at `at` and starts it with the high/low register pair.
    uint32_t dma(uint64_t at, uint32_t control, uint32_t length, uint64_t address, bool wide = false)
    {
        uint8_t* a = host(at);
        be32(a, control);
        be32(a + 4, length);
        be32(a + 8, static_cast<uint32_t>(address >> 32));
        be32(a + 12, static_cast<uint32_t>(address));
        if (wide) {
            uint8_t r[8];
            be32(r, static_cast<uint32_t>(at >> 32));
            be32(r + 4, static_cast<uint32_t>(at));
            m_dev.write(FW_CFG_PORT_DMA, r);
        } else {
            uint8_t hi[4], lo[4];
            be32(hi, static_cast<uint32_t>(at >> 32));
            be32(lo, static_cast<uint32_t>(at));
            m_dev.write(FW_CFG_PORT_DMA, hi);
            m_dev.write(FW_CFG_PORT_DMA + 4, lo);
        }
        return get_be32(a);
    }

    std::vector<uint8_t> m_buf;
    GuestMemory m_mem;
    FwCfg m_dev;
};

} // namespace

TEST_F(FwCfgTest, SignatureAndIdThroughPorts)
{
    auto sig = read_item(FW_CFG_SIGNATURE, 4);
    EXPECT_EQ(std::string(sig.begin(), sig.end()), "QEMU");
    EXPECT_EQ(data8(), 0); // past the end reads 0
    auto id = read_item(FW_CFG_ID, 4);
    uint32_t v = hako::get_le32(id.data());
    EXPECT_EQ(v, FW_CFG_VERSION_TRADITIONAL | FW_CFG_VERSION_DMA);
    // A wide read of the data port returns consecutive bytes.
    select(FW_CFG_SIGNATURE);
    uint8_t w[4] = {};
    m_dev.read(FW_CFG_PORT_DATA, w);
    EXPECT_EQ(std::memcmp(w, "QEMU", 4), 0);
    // An unknown key reads as zeros.
    EXPECT_EQ(read_item(0x7777 & 0x1f, 2), (std::vector<uint8_t> { 0, 0 }));
}

TEST_F(FwCfgTest, DmaSignatureRegister)
{
    uint8_t r[8] = {};
    m_dev.read(FW_CFG_PORT_DMA, r);
    EXPECT_EQ(std::memcmp(r, "QEMU CFG", 8), 0);
    uint8_t r4[4] = {};
    m_dev.read(FW_CFG_PORT_DMA + 4, r4);
    EXPECT_EQ(std::memcmp(r4, " CFG", 4), 0);
    uint8_t other = 0;
    m_dev.read(2, std::span(&other, 1));
    EXPECT_EQ(other, 0xff);
}

TEST_F(FwCfgTest, NumericItemsAreLittleEndian)
{
    m_dev.add_u32(FW_CFG_NB_CPUS, 0x01020304);
    m_dev.add_u64(FW_CFG_RAM_SIZE, 0x1122334455667788ull);
    EXPECT_EQ(read_item(FW_CFG_NB_CPUS, 4), (std::vector<uint8_t> { 4, 3, 2, 1 }));
    EXPECT_EQ(read_item(FW_CFG_RAM_SIZE, 8), (std::vector<uint8_t> { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }));
    m_dev.add_u16(FW_CFG_E820_TABLE, 0xbeef);
    EXPECT_EQ(read_item(FW_CFG_E820_TABLE, 2), (std::vector<uint8_t> { 0xef, 0xbe }));
    // The write-channel bit of the selector is ignored.
    EXPECT_EQ(read_item(FW_CFG_NB_CPUS | FW_CFG_WRITE_CHANNEL, 1), (std::vector<uint8_t> { 4 }));
}

TEST_F(FwCfgTest, FileDirectorySortedWithSelectors)
{
    ASSERT_TRUE(m_dev.add_file("etc/zeta", { 1, 2, 3 }));
    ASSERT_TRUE(m_dev.add_file("etc/alpha", std::vector<uint8_t>(300, 7)));
    ASSERT_TRUE(m_dev.add_file("bootorder", { 'x' }));
    EXPECT_FALSE(m_dev.add_file("etc/alpha", { 1 }));                 // duplicate
    EXPECT_FALSE(m_dev.add_file(std::string(56, 'a'), { 1 }));        // too long
    EXPECT_TRUE(m_dev.add_file(std::string(55, 'b'), { 9 }));         // longest allowed
    EXPECT_FALSE(m_dev.add_file("", { 1 }));
    m_dev.add_item(FW_CFG_FILE_FIRST, { 1 }); // refused: file range
    auto count_bytes = read_item(FW_CFG_FILE_DIR, 4);
    ASSERT_EQ(get_be32(count_bytes.data()), 4u);
    std::vector<std::string> names;
    for (uint32_t i = 0; i < 4; ++i) {
        auto e = std::vector<uint8_t>(64);
        for (auto& b : e)
            b = data8();
        uint32_t size = get_be32(e.data());
        uint16_t sel = static_cast<uint16_t>(e[4] << 8 | e[5]);
        auto name_end = std::find(e.begin() + 8, e.end(), 0);
        std::string name(e.begin() + 8, name_end);
        names.push_back(name);
        EXPECT_EQ(sel, FW_CFG_FILE_FIRST + i) << name;
        EXPECT_EQ(m_dev.file_selector(name), sel);
        if (name == "etc/alpha") {
            EXPECT_EQ(size, 300u);
        }
        if (name == "etc/zeta") {
            EXPECT_EQ(size, 3u);
        }
    }
    EXPECT_EQ(names, (std::vector<std::string> { "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "bootorder", "etc/alpha", "etc/zeta" }));
    // Select a file and read it byte by byte, then past its end.
    auto sel = *m_dev.file_selector("etc/zeta");
    EXPECT_EQ(read_item(sel, 5), (std::vector<uint8_t> { 1, 2, 3, 0, 0 }));
}

TEST_F(FwCfgTest, DmaReadWithSelectAndZeroFillPastEnd)
{
    ASSERT_TRUE(m_dev.add_file("etc/blob", { 10, 20, 30, 40, 50 }));
    uint16_t sel = *m_dev.file_selector("etc/blob");
    uint64_t dst = RAM_BASE + 0x1000;
    uint32_t status = dma(RAM_BASE + 0x100, static_cast<uint32_t>(sel) << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ, 8, dst);
    EXPECT_EQ(status, 0u);
    EXPECT_EQ(std::vector<uint8_t>(host(dst), host(dst) + 9), (std::vector<uint8_t> { 10, 20, 30, 40, 50, 0, 0, 0, 0xAA }));
    EXPECT_EQ(m_dev.bad_access_count(), 0u);
}

TEST_F(FwCfgTest, DmaSkipThenReadAndTraditionalContinues)
{
    ASSERT_TRUE(m_dev.add_file("etc/blob", { 10, 20, 30, 40, 50 }));
    uint16_t sel = *m_dev.file_selector("etc/blob");
    EXPECT_EQ(dma(RAM_BASE + 0x100, static_cast<uint32_t>(sel) << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_SKIP, 2, 0), 0u);
    uint64_t dst = RAM_BASE + 0x2000;
    EXPECT_EQ(dma(RAM_BASE + 0x100, FW_CFG_DMA_CTL_READ, 2, dst, /*wide=*/true), 0u);
    EXPECT_EQ(host(dst)[0], 30);
    EXPECT_EQ(host(dst)[1], 40);
    EXPECT_EQ(host(dst)[2], 0xAA);
    EXPECT_EQ(data8(), 50); // the traditional interface shares the position
}

TEST_F(FwCfgTest, DmaToBadAddressSetsError)
{
    ASSERT_TRUE(m_dev.add_file("etc/blob", std::vector<uint8_t>(64, 1)));
    uint16_t sel = *m_dev.file_selector("etc/blob");
    uint32_t ctl = static_cast<uint32_t>(sel) << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;
    // Entirely outside RAM.
    EXPECT_EQ(dma(RAM_BASE + 0x100, ctl, 16, 0x1000), FW_CFG_DMA_CTL_ERROR);
    // Straddling the end of RAM.
    EXPECT_EQ(dma(RAM_BASE + 0x100, ctl, 16, RAM_BASE + RAM_SIZE - 8), FW_CFG_DMA_CTL_ERROR);
    EXPECT_EQ(host(RAM_BASE + RAM_SIZE - 8)[0], 0xAA); // nothing was written
    // Zero-fill past the end into a wrapping range.
    EXPECT_EQ(dma(RAM_BASE + 0x100, ctl, 0xffffffff, ~uint64_t { 0 } - 4), FW_CFG_DMA_CTL_ERROR);
    EXPECT_EQ(m_dev.bad_access_count(), 3u);
    // The access structure itself outside RAM: nothing to report to, only counted.
    uint8_t hi[4] = {}, lo[4] = { 0, 0, 0x01, 0 };
    m_dev.write(FW_CFG_PORT_DMA, hi);
    m_dev.write(FW_CFG_PORT_DMA + 4, lo);
    EXPECT_EQ(m_dev.bad_access_count(), 4u);
    // Straddling the end of RAM.
    uint8_t w[8] = {};
    uint64_t at = RAM_BASE + RAM_SIZE - 8;
    for (int i = 0; i < 8; ++i)
        w[i] = static_cast<uint8_t>(at >> (56 - 8 * i));
    m_dev.write(FW_CFG_PORT_DMA, w);
    EXPECT_EQ(m_dev.bad_access_count(), 5u);
}

TEST_F(FwCfgTest, DmaWriteIsRefused)
{
    ASSERT_TRUE(m_dev.add_file("etc/blob", { 1, 2, 3, 4 }));
    uint16_t sel = *m_dev.file_selector("etc/blob");
    uint64_t src = RAM_BASE + 0x3000;
    host(src)[0] = 99;
    EXPECT_EQ(dma(RAM_BASE + 0x100, static_cast<uint32_t>(sel) << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE, 1, src),
        FW_CFG_DMA_CTL_ERROR);
    EXPECT_EQ(read_item(sel, 1), (std::vector<uint8_t> { 1 }));
    EXPECT_EQ(m_dev.bad_access_count(), 1u);
}

TEST_F(FwCfgTest, BadPortAccessesAreAbsorbed)
{
    uint8_t one = 5;
    m_dev.write(FW_CFG_PORT_DATA, std::span(&one, 1)); // data port is read-only
    m_dev.write(FW_CFG_PORT_SELECTOR, std::span(&one, 1)); // 8-bit selector write
    m_dev.write(7, std::span(&one, 1));
    EXPECT_EQ(m_dev.bad_access_count(), 3u);
    // The selection did not change: still the signature.
    select(FW_CFG_SIGNATURE);
    EXPECT_EQ(data8(), 'Q');
}

TEST_F(FwCfgTest, FileRefreshOnSelectKeepsSize)
{
    ASSERT_TRUE(m_dev.add_file("etc/acpi/tables", { 1, 2, 3 }));
    EXPECT_FALSE(m_dev.set_file_refresh("no/such/file", [] { return std::vector<uint8_t> {}; }));
    uint8_t next = 10;
    size_t size = 3;
    ASSERT_TRUE(m_dev.set_file_refresh("etc/acpi/tables", [&] {
        return std::vector<uint8_t>(size, next);
    }));
    auto const key = m_dev.file_selector("etc/acpi/tables").value();
    EXPECT_EQ(read_item(key, 3), (std::vector<uint8_t> { 10, 10, 10 }));
    next = 11;
    EXPECT_EQ(read_item(key, 3), (std::vector<uint8_t> { 11, 11, 11 })); // rebuilt on every select
    size = 4; // a rebuild of another size is refused: the directory's size stays true
    next = 12;
    EXPECT_EQ(read_item(key, 3), (std::vector<uint8_t> { 11, 11, 11 }));
}
