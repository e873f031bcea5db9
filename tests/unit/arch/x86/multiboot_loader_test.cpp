#include <gtest/gtest.h>

#include <algorithm>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "loader_test_util.h"

using namespace hako;
using namespace hako::arch::x86;
using namespace hako::arch::x86::test;

namespace {

constexpr uint64_t MEM_16M = 16 * MiB;
constexpr uint32_t MAGIC = 0x1BADB002;
constexpr uint32_t PAGE_ALIGN = 1, MEMORY_INFO = 2, VIDEO_MODE = 4, AOUT_KLUDGE = 1 << 16;

void put_header(std::vector<uint8_t>& f, size_t off, uint32_t flags)
{
    put_le32(&f[off], MAGIC);
    put_le32(&f[off + 4], flags);
    put_le32(&f[off + 8], static_cast<uint32_t>(0u - MAGIC - flags));
}

// An a.out-kludge kernel: header at file offset 0x40, loaded at 1 MiB: 0x1000 file bytes, BSS to 0x102000.
std::vector<uint8_t> aout_kernel()
{
    auto f = pattern(0x1000, 0x30);
    put_header(f, 0x40, PAGE_ALIGN | MEMORY_INFO | AOUT_KLUDGE);
    put_le32(&f[0x40 + 12], 0x100040); // header_addr
    put_le32(&f[0x40 + 16], 0x100000); // load_addr
    put_le32(&f[0x40 + 20], 0x101000); // load_end_addr
    put_le32(&f[0x40 + 24], 0x102000); // bss_end_addr
    put_le32(&f[0x40 + 28], 0x100080); // entry_addr
    return f;
}

// An ELF32 kernel with the header at the start of its text segment (file offset 0x100).
std::vector<uint8_t> elf_kernel(uint32_t flags = PAGE_ALIGN | MEMORY_INFO)
{
    auto text = pattern(0x800, 0x50);
    put_header(text, 0, flags);
    return build_elf(false, 0x100010, {
        { PT_LOAD, 0x100000, text, 0x800 },
        { PT_LOAD, 0x101000, pattern(0x100, 0x60), 0x3000 },
    }, 0x100);
}

KernelLoadRequest request(std::span<uint8_t const> kernel)
{
    KernelLoadRequest req;
    req.kernel = kernel;
    req.cmdline = "kernel.elf verbose";
    req.memory_map = pc_memory_map(MEM_16M);
    return req;
}

Error load_error(std::vector<uint8_t> const& image, KernelLoadRequest req)
{
    TestRam ram(MEM_16M);
    req.kernel = image;
    auto r = load_kernel(ram.mem, req);
    EXPECT_FALSE(r);
    return r ? Error(ErrorKind::Io, "loaded") : r.error();
}

Error load_error(std::vector<uint8_t> const& image) { return load_error(image, request(image)); }

std::string guest_string(TestRam const& ram, uint64_t addr)
{
    auto p = ram.buf.begin() + static_cast<std::ptrdiff_t>(addr);
    return std::string(p, std::find(p, ram.buf.end(), uint8_t { 0 }));
}

} // namespace

TEST(MultibootLoader, AoutKludgeWithModules)
{
    auto image = aout_kernel();
    ASSERT_EQ(*detect_kernel_format(image), KernelFormat::Multiboot);
    TestRam ram(MEM_16M);
    auto req = request(image);
    req.modules.push_back({ pattern(0x1234, 1), "initrd.img root=/dev/ram" });
    req.modules.push_back({ pattern(0x10, 2), "" });
    auto entry = load_kernel(ram.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->mode, CpuMode::Protected32);
    EXPECT_EQ(entry->rip, 0x100080u);
    EXPECT_EQ(entry->rax, 0x2BADB002u);
    EXPECT_EQ(entry->rbx, BOOT_INFO_ADDR);

    // Image and BSS.
    EXPECT_TRUE(std::equal(image.begin(), image.end(), ram.buf.begin() + 0x100000));
    EXPECT_TRUE(std::all_of(ram.buf.begin() + 0x101000, ram.buf.begin() + 0x102000, [](uint8_t b) { return b == 0; }));

    // Multiboot information.
    uint64_t mbi = BOOT_INFO_ADDR;
    uint32_t flags = ram.u32(mbi);
    EXPECT_EQ(flags, (1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 9));
    EXPECT_EQ(ram.u32(mbi + 4), 0x9fc00u / 1024);           // mem_lower: 639 KiB
    EXPECT_EQ(ram.u32(mbi + 8), (MEM_16M - 0x100000) / 1024); // mem_upper: up to the end of RAM
    EXPECT_EQ(guest_string(ram, ram.u32(mbi + 16)), req.cmdline);
    EXPECT_EQ(guest_string(ram, ram.u32(mbi + 64)), "hako");

    ASSERT_EQ(ram.u32(mbi + 20), 2u);
    uint64_t mods = ram.u32(mbi + 24);
    uint32_t m0 = ram.u32(mods), m0_end = ram.u32(mods + 4);
    uint32_t m1 = ram.u32(mods + 16), m1_end = ram.u32(mods + 20);
    EXPECT_EQ(m0, 0x102000u); // page-aligned right after the BSS
    EXPECT_EQ(m0_end - m0, 0x1234u);
    EXPECT_EQ(m1 % 4096, 0u);
    EXPECT_GE(m1, m0_end);
    EXPECT_EQ(m1_end - m1, 0x10u);
    EXPECT_EQ(guest_string(ram, ram.u32(mods + 8)), "initrd.img root=/dev/ram");
    EXPECT_EQ(guest_string(ram, ram.u32(mods + 24)), "");
    auto m0_data = pattern(0x1234, 1);
    EXPECT_TRUE(std::equal(m0_data.begin(), m0_data.end(), ram.buf.begin() + m0));

    // Memory map: size 20, then base, length, type.
    ASSERT_EQ(ram.u32(mbi + 44), req.memory_map.size() * 24);
    uint64_t mmap = ram.u32(mbi + 48);
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        EXPECT_EQ(ram.u32(mmap + i * 24), 20u);
        EXPECT_EQ(ram.u64(mmap + i * 24 + 4), req.memory_map[i].addr);
        EXPECT_EQ(ram.u64(mmap + i * 24 + 12), req.memory_map[i].size);
        EXPECT_EQ(ram.u32(mmap + i * 24 + 20), req.memory_map[i].type);
    }
}

TEST(MultibootLoader, AoutKludgeLoadToEndOfFile)
{
    auto image = aout_kernel();
    put_le32(&image[0x40 + 20], 0); // load_end_addr 0: the rest of the file
    put_le32(&image[0x40 + 24], 0); // no BSS
    TestRam ram(MEM_16M);
    ASSERT_TRUE(load_kernel(ram.mem, request(image)));
    EXPECT_TRUE(std::equal(image.begin(), image.end(), ram.buf.begin() + 0x100000));
    EXPECT_EQ(ram.buf[0x101000], 0xcc);
}

TEST(MultibootLoader, Elf32)
{
    auto image = elf_kernel();
    ASSERT_EQ(*detect_kernel_format(image), KernelFormat::Multiboot);
    TestRam ram(MEM_16M);
    auto entry = load_kernel(ram.mem, request(image));
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->rip, 0x100010u);
    EXPECT_EQ(ram.u32(0x100000), MAGIC);
    EXPECT_EQ(ram.buf[0x101000], 0x60);
    EXPECT_EQ(ram.buf[0x103fff], 0);
    EXPECT_EQ(ram.u32(BOOT_INFO_ADDR + 20), 0u); // no modules
}

TEST(MultibootLoader, HeaderMustBeValidAndEarly)
{
    auto image = aout_kernel();
    put_le32(&image[0x40 + 8], 0); // bad checksum
    EXPECT_FALSE(find_multiboot_header(image));
    EXPECT_EQ(load_error(image).message(), "Not a kernel: no bzImage header, no multiboot header, no ELF");

    std::vector<uint8_t> late(0x3000);
    put_header(late, 0x2000, MEMORY_INFO); // past the first 8 KiB
    EXPECT_FALSE(find_multiboot_header(late));
    std::vector<uint8_t> misaligned(0x1000);
    put_header(misaligned, 0x42, MEMORY_INFO);
    EXPECT_FALSE(find_multiboot_header(misaligned));
    std::vector<uint8_t> short_header(0x46);
    put_le32(&short_header[0x40], MAGIC); // header cut off by the end of the file
    EXPECT_FALSE(find_multiboot_header(short_header));
}

TEST(MultibootLoader, RefusesVideoModeAndUnknownRequiredFlags)
{
    auto image = elf_kernel(MEMORY_INFO | VIDEO_MODE);
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(e.message().find("video"), std::string::npos) << e.message();
    image = elf_kernel(MEMORY_INFO | (1 << 5));
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Unsupported);
    image = elf_kernel(MEMORY_INFO | (1 << 20)); // optional bits are fine
    TestRam ram(MEM_16M);
    EXPECT_TRUE(load_kernel(ram.mem, request(image)));
}

TEST(MultibootLoader, MalformedAoutFields)
{
    auto image = aout_kernel();
    put_le32(&image[0x40 + 20], 0x180000); // load_end_addr beyond the file: truncated
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    image = aout_kernel();
    put_le32(&image[0x40 + 12], 0xf0000); // header_addr below load_addr
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    image = aout_kernel();
    put_le32(&image[0x40 + 12], 0x200000); // header would be before the file start
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    image = aout_kernel();
    put_le32(&image[0x40 + 24], 0x100800); // bss_end below load_end
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    image = aout_kernel();
    put_le32(&image[0x40 + 28], 0x200000); // entry outside the image
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    image = aout_kernel();
    put_le32(&image[0x40 + 24], 0xfffff000); // BSS to almost 4 GiB: outside RAM
    EXPECT_EQ(load_error(image).kind(), ErrorKind::OutOfRange);
    image = aout_kernel();
    image.resize(0x50); // address fields cut off
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
}

TEST(MultibootLoader, NotElfWithoutKludge)
{
    std::vector<uint8_t> image(0x1000);
    put_header(image, 0, MEMORY_INFO);
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(e.message().find("must be ELF"), std::string::npos) << e.message();
}

TEST(MultibootLoader, ElfSegmentsOutsideRam)
{
    auto image = elf_kernel();
    put_le32(&image[ELF32_EHDR + ELF32_PHDR + 12], 0xfffff000); // segment 1 p_paddr near 4 GiB, memsz 0x3000
    EXPECT_EQ(load_error(image).kind(), ErrorKind::OutOfRange);
    image = elf_kernel();
    put_le32(&image[ELF32_EHDR + 12], 0x1000); // over hako's boot structures
    EXPECT_EQ(load_error(image).kind(), ErrorKind::OutOfRange);
    image = elf_kernel();
    image.resize(0x300); // segment data truncated
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
}

TEST(MultibootLoader, ModulesAndCommandLinesTooLarge)
{
    auto image = aout_kernel();
    auto req = request(image);
    req.modules.push_back({ std::vector<uint8_t>(15 * MiB), "big" });
    auto e = load_error(image, req);
    EXPECT_EQ(e.kind(), ErrorKind::OutOfRange);
    EXPECT_NE(e.message().find("do not fit"), std::string::npos) << e.message();

    req = request(image);
    req.cmdline = std::string(CMDLINE_MAX, 'c');
    EXPECT_EQ(load_error(image, req).message().rfind("Kernel command line too long", 0), 0u);
    req = request(image);
    req.modules.assign(65, Module { { 1 }, {} });
    EXPECT_EQ(load_error(image, req).kind(), ErrorKind::OutOfRange);
}
