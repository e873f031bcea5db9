#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "loader_test_util.h"

using namespace hako;
using namespace hako::arch::x86;
using namespace hako::arch::x86::test;

namespace {

constexpr uint64_t MEM_256M = 256 * MiB;

// A minimal protocol-2.15 bzImage: one setup sector after the boot sector, then `kernel_size` bytes of kernel.
std::vector<uint8_t> synthetic_bzimage(size_t kernel_size = 0x1000)
{
    std::vector<uint8_t> f(0x400 + kernel_size);
    f[0x1f1] = 1;                        // setup_sects
    put_le16(&f[0x1fe], 0xAA55);         // boot_flag
    f[0x200] = 0xeb;                     // jmp short
    f[0x201] = 0x66;                     // header ends at 0x268
    put_le32(&f[0x202], 0x53726448);     // "HdrS"
    put_le16(&f[0x206], 0x020f);         // version 2.15
    f[0x211] = 0x01;                     // loadflags: LOADED_HIGH
    put_le32(&f[0x22c], 0x37ffffff);     // initrd_addr_max
    put_le16(&f[0x236], 0x0003);         // xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
    put_le32(&f[0x238], 255);            // cmdline_size
    put_le32(&f[0x260], 0x20000);        // init_size
    auto k = pattern(kernel_size, 0x42);
    std::copy(k.begin(), k.end(), f.begin() + 0x400);
    return f;
}

KernelLoadRequest request(std::span<uint8_t const> kernel, uint64_t ram)
{
    KernelLoadRequest req;
    req.kernel = kernel;
    req.cmdline = "console=ttyS0 panic=-1";
    req.memory_map = pc_memory_map(ram);
    return req;
}

Error load_error(std::vector<uint8_t> const& image, uint64_t ram = 16 * MiB)
{
    TestRam ram_(ram);
    auto r = load_kernel(ram_.mem, request(image, ram));
    EXPECT_FALSE(r);
    return r ? Error(ErrorKind::Io, "loaded") : r.error();
}

} // namespace

TEST(LinuxLoader, RealDebianBzImage)
{
    auto image = read_cached_kernel("kernel/bzImage");
    ASSERT_FALSE(image.empty());
    auto fmt = detect_kernel_format(image);
    ASSERT_TRUE(fmt) << fmt.error().message();
    EXPECT_EQ(*fmt, KernelFormat::BzImage);

    auto mem = memory::GuestMemory::create({ { memory::GuestAddr(0), MEM_256M, memory::RegionKind::Ram } });
    ASSERT_TRUE(mem);
    auto req = request(image, MEM_256M);
    auto initrd = pattern(3 * MiB + 123, 9);
    req.modules.push_back({ initrd, {} });
    auto entry = load_kernel(*mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->mode, CpuMode::Long64);
    EXPECT_EQ(entry->rip, 0x100200u);
    EXPECT_EQ(entry->rsi, BOOT_INFO_ADDR);
    EXPECT_EQ(entry->rsp, BOOT_STACK_TOP);

    auto bp = [&](uint64_t off, size_t width) {
        std::vector<uint8_t> b(width);
        EXPECT_TRUE(mem->read(memory::GuestAddr(BOOT_INFO_ADDR + off), b));
        return load_le(b);
    };
    EXPECT_EQ(bp(0x1fe, 2), 0xAA55u);
    EXPECT_EQ(bp(0x202, 4), 0x53726448u);
    EXPECT_EQ(bp(0x210, 1), 0xffu);                      // type_of_loader
    EXPECT_EQ(bp(0x211, 1) & 0x81, 0x81u);               // LOADED_HIGH | CAN_USE_HEAP
    EXPECT_EQ(bp(0x1fa, 2), 0xffffu);                    // vid_mode
    EXPECT_EQ(bp(0x228, 4), CMDLINE_ADDR);               // cmd_line_ptr
    std::vector<uint8_t> cmd(req.cmdline.size() + 1);
    ASSERT_TRUE(mem->read(memory::GuestAddr(CMDLINE_ADDR), cmd));
    EXPECT_EQ(std::string(cmd.begin(), cmd.end() - 1), req.cmdline);
    EXPECT_EQ(cmd.back(), 0);

    // e820 table.
    ASSERT_EQ(bp(0x1e8, 1), req.memory_map.size());
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        EXPECT_EQ(bp(0x2d0 + i * 20, 8), req.memory_map[i].addr) << i;
        EXPECT_EQ(bp(0x2d0 + i * 20 + 8, 8), req.memory_map[i].size) << i;
        EXPECT_EQ(bp(0x2d0 + i * 20 + 16, 4), req.memory_map[i].type) << i;
    }

    // Initrd: page-aligned, above the kernel's init_size, below initrd_addr_max and the top of RAM, copied.
    uint64_t init_size = get_le32(&image[0x260]);
    uint64_t rd = bp(0x218, 4);
    EXPECT_EQ(bp(0x21c, 4), initrd.size());
    EXPECT_EQ(rd % 4096, 0u);
    EXPECT_GE(rd, 0x100000 + init_size);
    EXPECT_LE(rd + initrd.size(), std::min<uint64_t>(MEM_256M, get_le32(&image[0x22c]) + 1ull));
    EXPECT_GT(rd + initrd.size(), MEM_256M - 4096); // as high as possible
    std::vector<uint8_t> rd_back(initrd.size());
    ASSERT_TRUE(mem->read(memory::GuestAddr(rd), rd_back));
    EXPECT_TRUE(rd_back == initrd);

    // The protected-mode kernel at 1 MiB.
    size_t setup_sects = image[0x1f1] ? image[0x1f1] : 4;
    size_t pm = (setup_sects + 1) * 512;
    std::vector<uint8_t> k(image.size() - pm);
    ASSERT_TRUE(mem->read(memory::GuestAddr(0x100000), k));
    EXPECT_TRUE(std::equal(k.begin(), k.end(), image.begin() + static_cast<std::ptrdiff_t>(pm)));
}

TEST(LinuxLoader, SyntheticImageBootParams)
{
    auto image = synthetic_bzimage();
    TestRam ram(16 * MiB);
    auto req = request(image, 16 * MiB);
    auto entry = load_kernel(ram.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    // Header bytes 0x1f1..0x268 copied, the rest of the zero page cleared (the buffer was filled with 0xcc).
    EXPECT_EQ(ram.buf[BOOT_INFO_ADDR + 0x1f1], 1);
    EXPECT_EQ(ram.u16(BOOT_INFO_ADDR + 0x206), 0x020f);
    EXPECT_EQ(ram.u32(BOOT_INFO_ADDR + 0x260), 0x20000u);
    EXPECT_EQ(ram.buf[BOOT_INFO_ADDR + 0x100], 0);
    EXPECT_EQ(ram.buf[BOOT_INFO_ADDR + 0xfff], 0);
    EXPECT_EQ(ram.u32(BOOT_INFO_ADDR + 0x218), 0u); // no initrd
    EXPECT_EQ(ram.u32(BOOT_INFO_ADDR + 0x21c), 0u);
    EXPECT_EQ(ram.u16(BOOT_INFO_ADDR + 0x224), 0xfe00); // heap_end_ptr
    EXPECT_EQ(ram.buf[BOOT_INFO_ADDR + 0x1e8], 4);
    EXPECT_EQ(ram.u64(BOOT_INFO_ADDR + 0x2d0 + 3 * 20), 0x100000u);
    EXPECT_EQ(ram.buf[0x100000], 0x42);
    EXPECT_EQ(std::memcmp(&ram.buf[CMDLINE_ADDR], "console=ttyS0 panic=-1", 23), 0);
}

TEST(LinuxLoader, InitrdBelowInitrdAddrMax)
{
    auto image = synthetic_bzimage();
    put_le32(&image[0x22c], 0x7fffff); // initrd must end below 8 MiB
    TestRam ram(16 * MiB);
    auto req = request(image, 16 * MiB);
    req.modules.push_back({ pattern(0x1800, 1), {} });
    ASSERT_TRUE(load_kernel(ram.mem, req));
    uint64_t rd = ram.u32(BOOT_INFO_ADDR + 0x218);
    EXPECT_EQ(rd, 0x800000u - 0x2000);
    EXPECT_EQ(ram.u32(BOOT_INFO_ADDR + 0x21c), 0x1800u);
    EXPECT_EQ(ram.buf[rd], 1);
}

TEST(LinuxLoader, EmptyAndShortImages)
{
    EXPECT_EQ(load_error({}).message(), "Kernel image is empty");
    EXPECT_EQ(load_error(std::vector<uint8_t>(10)).kind(), ErrorKind::Format);
    auto e = load_error(std::vector<uint8_t>(4096, 0x90));
    EXPECT_EQ(e.message(), "Not a kernel: no bzImage header, no multiboot header, no ELF");
}

TEST(LinuxLoader, TruncatedHeader)
{
    auto image = synthetic_bzimage();
    image.resize(0x220); // boot flag and HdrS present, the rest of the header cut off
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(e.message().find("truncated"), std::string::npos) << e.message();
}

TEST(LinuxLoader, HeaderLengthPastFile)
{
    auto image = synthetic_bzimage(0);
    image.resize(0x280);
    image[0x201] = 0xff; // header would end at 0x301
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
}

TEST(LinuxLoader, NoKernelAfterSetup)
{
    auto image = synthetic_bzimage();
    image[0x1f1] = 0x40; // setup code runs past the end of the file
    auto e = load_error(image);
    EXPECT_NE(e.message().find("truncated"), std::string::npos) << e.message();
}

TEST(LinuxLoader, SyssizeRoundsUpToAParagraph)
{
    // memtest86+ 6.10's image ends 8 bytes into the last paragraph its syssize counts: loaders accept it.
    auto image = synthetic_bzimage(0x1000 - 8);
    put_le32(&image[0x1f4], 0x100);
    {
        TestRam ram(16 * MiB);
        auto r = load_kernel(ram.mem, request(image, 16 * MiB));
        EXPECT_TRUE(r) << r.error().message();
    }
    // A whole paragraph missing is a cut-off file.
    put_le32(&image[0x1f4], 0x101);
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(e.message().find("truncated"), std::string::npos) << e.message();
}

TEST(LinuxLoader, BadMagicAndOldProtocol)
{
    auto image = synthetic_bzimage();
    image[0x202] = 'X';
    EXPECT_EQ(load_error(image).message(), "Not a kernel: no bzImage header, no multiboot header, no ELF");
    image = synthetic_bzimage();
    put_le16(&image[0x206], 0x020a);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Unsupported);
    image = synthetic_bzimage();
    put_le16(&image[0x236], 0);
    EXPECT_NE(load_error(image).message().find("XLF_KERNEL_64"), std::string::npos);
    image = synthetic_bzimage();
    image[0x211] = 0;
    EXPECT_NE(load_error(image).message().find("LOADED_HIGH"), std::string::npos);
}

TEST(LinuxLoader, KernelLargerThanRam)
{
    auto image = synthetic_bzimage();
    put_le32(&image[0x260], 0xfffffff0); // init_size: 4 GiB
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::OutOfRange);
    EXPECT_NE(e.message().find("more than guest RAM"), std::string::npos) << e.message();
}

TEST(LinuxLoader, CommandLineTooLong)
{
    auto image = synthetic_bzimage();
    put_le32(&image[0x238], 10);
    TestRam ram(16 * MiB);
    auto req = request(image, 16 * MiB);
    req.cmdline = "0123456789";
    EXPECT_TRUE(load_kernel(ram.mem, req));
    req.cmdline = "0123456789a";
    auto r = load_kernel(ram.mem, req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "Kernel command line too long (11 bytes, the kernel accepts at most 10)");
    // hako's own limit applies even when the kernel claims more.
    put_le32(&image[0x238], 0xffffffff);
    req.cmdline = std::string(CMDLINE_MAX, 'x');
    r = load_kernel(ram.mem, req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::OutOfRange);
}

TEST(LinuxLoader, InitrdTooLarge)
{
    auto image = synthetic_bzimage();
    TestRam ram(16 * MiB);
    auto req = request(image, 16 * MiB);
    req.modules.push_back({ std::vector<uint8_t>(15 * MiB), {} });
    auto r = load_kernel(ram.mem, req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::OutOfRange);
    EXPECT_EQ(r.error().message().rfind("Initrd too large for guest memory", 0), 0u) << r.error().message();
    // Nothing was written: the failure is detected before the kernel is copied.
    EXPECT_EQ(ram.buf[0x100000], 0xcc);
}

TEST(LinuxLoader, TooManyMemoryMapEntriesOrInitrds)
{
    auto image = synthetic_bzimage();
    TestRam ram(16 * MiB);
    auto req = request(image, 16 * MiB);
    req.memory_map.assign(129, BootMemoryMapEntry { 0x100000, 0x1000, 1 });
    EXPECT_FALSE(load_kernel(ram.mem, req));
    req = request(image, 16 * MiB);
    req.modules.resize(2);
    EXPECT_FALSE(load_kernel(ram.mem, req));
}

TEST(LinuxLoader, NoRamInMemoryMapForInitrd)
{
    auto image = synthetic_bzimage();
    TestRam ram(16 * MiB);
    auto req = request(image, 16 * MiB);
    req.memory_map = { { 0, 0x9fc00, 1 } };
    req.modules.push_back({ std::vector<uint8_t>(4096), {} });
    auto r = load_kernel(ram.mem, req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message().rfind("Initrd too large", 0), 0u);
}
