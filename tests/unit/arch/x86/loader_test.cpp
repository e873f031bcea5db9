// Loader tests: the real Debian kernel (fetched by scripts/fetch-guests.sh into $HAKO_CACHE, which the test command
// always runs first), synthetic multiboot images built here, and malformed images of every kind.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "base/bytes.h"
#include "base/file.h"

using namespace hako;
using namespace hako::arch::x86;
using memory::GuestAddr;
using memory::GuestMemory;

namespace {

constexpr uint64_t RAM = 256ull << 20;

struct Guest {
    std::vector<uint8_t> low = std::vector<uint8_t>(LOW_RAM_END);
    std::vector<uint8_t> high = std::vector<uint8_t>(RAM - UPPER_RAM_START);
    GuestMemory mem = *GuestMemory::from_buffers({ { GuestAddr(0), low }, { GuestAddr(UPPER_RAM_START), high } });
    std::vector<BootMemoryMapEntry> map()
    {
        std::vector<BootMemoryMapEntry> out;
        for (auto const& e : build_e820(ram_layout(RAM)))
            out.push_back({ e.addr, e.size, e.type });
        return out;
    }
    uint32_t u32(uint64_t addr) { return *mem.read_obj<uint32_t>(GuestAddr(addr)); }
    uint64_t u64(uint64_t addr) { return *mem.read_obj<uint64_t>(GuestAddr(addr)); }
    uint16_t u16(uint64_t addr) { return *mem.read_obj<uint16_t>(GuestAddr(addr)); }
    uint8_t u8(uint64_t addr) { return *mem.read_obj<uint8_t>(GuestAddr(addr)); }
    std::string str(uint64_t addr)
    {
        std::string s;
        for (uint8_t c; (c = u8(addr)) != 0; ++addr)
            s += static_cast<char>(c);
        return s;
    }
};

std::vector<uint8_t> cached(std::string const& name)
{
    char const* env = std::getenv("HAKO_CACHE");
    std::string path = std::string(env ? env : "/var/tmp/hako") + "/kernel/" + name;
    auto data = read_file(path, 512ull << 20);
    if (!data)
        ADD_FAILURE() << path << " is missing: run scripts/fetch-guests.sh (the test command does)";
    return data ? *data : std::vector<uint8_t>();
}

// A multiboot ELF32 kernel: one PT_LOAD of `code` at 1 MiB + `bss` bytes, header in the first page.
std::vector<uint8_t> multiboot_elf(std::vector<uint8_t> const& code, uint32_t bss, uint32_t paddr = 0x100000)
{
    std::vector<uint8_t> f(0x1000 + code.size());
    f[0] = 0x7f, f[1] = 'E', f[2] = 'L', f[3] = 'F', f[4] = 1, f[5] = 1, f[6] = 1;
    put_le16(&f[16], 2);        // ET_EXEC
    put_le16(&f[18], 3);        // EM_386
    put_le32(&f[20], 1);
    put_le32(&f[24], paddr);    // entry
    put_le32(&f[28], 52);       // phoff
    put_le16(&f[40], 52);
    put_le16(&f[42], 32);
    put_le16(&f[44], 1);
    uint8_t* ph = &f[52];
    put_le32(ph, 1);            // PT_LOAD
    put_le32(ph + 4, 0x1000);
    put_le32(ph + 8, paddr);
    put_le32(ph + 12, paddr);
    put_le32(ph + 16, static_cast<uint32_t>(code.size()));
    put_le32(ph + 20, static_cast<uint32_t>(code.size()) + bss);
    // Multiboot header at 0x100.
    put_le32(&f[0x100], 0x1badb002);
    put_le32(&f[0x104], 0x3);
    put_le32(&f[0x108], static_cast<uint32_t>(-(0x1badb002u + 3u)));
    std::copy(code.begin(), code.end(), f.begin() + 0x1000);
    return f;
}

} // namespace

TEST(Loader, DetectsFormatsAndRejectsGarbage)
{
    EXPECT_FALSE(detect_kernel_format({}));
    std::vector<uint8_t> junk(4096, 0x90);
    auto r = detect_kernel_format(junk);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("Not a kernel"), std::string::npos);
    EXPECT_EQ(*detect_kernel_format(multiboot_elf({ 0xf4 }, 0)), KernelFormat::Multiboot);
    // An ELF without PVH note or multiboot header.
    auto elf = multiboot_elf({ 0xf4 }, 0);
    put_le32(&elf[0x100], 0);
    auto e = detect_kernel_format(elf);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message().find("PVH entry note"), std::string::npos);
}

TEST(Loader, DebianBzImage)
{
    auto image = cached("bzImage");
    ASSERT_FALSE(image.empty());
    ASSERT_EQ(*detect_kernel_format(image), KernelFormat::BzImage);
    Guest g;
    KernelLoadRequest req;
    req.kernel = image;
    req.cmdline = "console=ttyS0 earlyprintk=ttyS0";
    req.modules.push_back({ std::vector<uint8_t>(3 * 4096 + 5, 0xab), {} });
    req.memory_map = g.map();
    auto entry = load_kernel(g.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->mode, CpuMode::Long64);
    EXPECT_EQ(entry->rip, 0x100200u);
    EXPECT_EQ(entry->rsi, BOOT_INFO_ADDR);
    uint64_t const bp = BOOT_INFO_ADDR;
    EXPECT_EQ(g.u16(bp + 0x1fe), 0xaa55);
    EXPECT_EQ(g.u32(bp + 0x202), 0x53726448u); // "HdrS"
    EXPECT_EQ(g.u8(bp + 0x210), 0xff);         // type_of_loader
    EXPECT_TRUE(g.u8(bp + 0x211) & 0x80);      // CAN_USE_HEAP
    EXPECT_EQ(g.u32(bp + 0x228), CMDLINE_ADDR);
    EXPECT_EQ(g.str(CMDLINE_ADDR), req.cmdline);
    uint32_t const initrd = g.u32(bp + 0x218);
    EXPECT_EQ(g.u32(bp + 0x21c), 3u * 4096 + 5);
    EXPECT_EQ(initrd % 4096, 0u);
    EXPECT_GE(initrd, 0x100000u + g.u32(bp + 0x260)); // above the kernel's init_size
    EXPECT_LE(initrd + 3u * 4096 + 5, RAM);
    EXPECT_EQ(g.u8(initrd), 0xab);
    ASSERT_EQ(g.u8(bp + 0x1e8), req.memory_map.size());
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        EXPECT_EQ(g.u64(bp + 0x2d0 + 20 * i), req.memory_map[i].addr);
        EXPECT_EQ(g.u64(bp + 0x2d0 + 20 * i + 8), req.memory_map[i].size);
        EXPECT_EQ(g.u32(bp + 0x2d0 + 20 * i + 16), req.memory_map[i].type);
    }
    // The protected-mode kernel sits at 1 MiB: the file from (setup_sects + 1) * 512 on.
    size_t const setup = (image[0x1f1] + 1u) * 512u;
    EXPECT_EQ(g.u32(0x100000), get_le32(&image[setup]));
}

TEST(Loader, BzImageLimits)
{
    auto image = cached("bzImage");
    ASSERT_FALSE(image.empty());
    Guest g;
    KernelLoadRequest req;
    req.kernel = image;
    req.memory_map = g.map();
    req.cmdline = std::string(5000, 'x');
    auto r = load_kernel(g.mem, req);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("Kernel command line too long"), std::string::npos);
    req.cmdline.clear();
    req.modules.push_back({ std::vector<uint8_t>(250ull << 20), {} });
    r = load_kernel(g.mem, req);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("Initrd too large"), std::string::npos);
    // Truncated inside the header, and truncated body.
    req.modules.clear();
    std::vector<uint8_t> head(image.begin(), image.begin() + 0x240);
    req.kernel = head;
    EXPECT_FALSE(load_kernel(g.mem, req));
    std::vector<uint8_t> cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(image.size() / 2));
    req.kernel = cut;
    r = load_kernel(g.mem, req);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("truncated"), std::string::npos);
}

TEST(Loader, DebianVmlinuxThroughPvh)
{
    auto image = cached("vmlinux");
    ASSERT_FALSE(image.empty());
    ASSERT_EQ(*detect_kernel_format(image), KernelFormat::PvhElf);
    Guest g;
    KernelLoadRequest req;
    req.kernel = image;
    req.cmdline = "console=ttyS0";
    req.modules.push_back({ std::vector<uint8_t>(8192, 0xcd), {} });
    req.memory_map = g.map();
    req.rsdp_addr = ACPI_TABLES_ADDR;
    auto entry = load_kernel(g.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->mode, CpuMode::Protected32);
    EXPECT_EQ(entry->rbx, BOOT_INFO_ADDR);
    EXPECT_GE(entry->rip, 0x1000000u); // Debian's kernel is linked at 16 MiB
    uint64_t const si = BOOT_INFO_ADDR;
    EXPECT_EQ(g.u32(si), 0x336ec578u);
    EXPECT_EQ(g.u32(si + 4), 1u);
    EXPECT_EQ(g.u32(si + 12), 1u); // one module
    EXPECT_EQ(g.str(g.u64(si + 24)), "console=ttyS0");
    EXPECT_EQ(g.u64(si + 32), ACPI_TABLES_ADDR);
    EXPECT_EQ(g.u32(si + 48), req.memory_map.size());
    uint64_t const mod = g.u64(si + 16);
    EXPECT_EQ(g.u64(mod + 8), 8192u);
    EXPECT_EQ(g.u8(g.u64(mod)), 0xcd);
    EXPECT_EQ(g.u64(g.u64(si + 40) + 24 * 2 + 8), req.memory_map[2].size);
}

TEST(Loader, MultibootElfAndAout)
{
    Guest g;
    KernelLoadRequest req;
    auto image = multiboot_elf({ 0xfa, 0xf4, 0xeb, 0xfd }, 0x2000);
    req.kernel = image;
    req.cmdline = "cpus=2 mem=256";
    req.modules.push_back({ { 1, 2, 3 }, "first" });
    req.modules.push_back({ { 4, 5 }, "second" });
    req.memory_map = g.map();
    auto entry = load_kernel(g.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->mode, CpuMode::Protected32);
    EXPECT_EQ(entry->rax, 0x2badb002u);
    EXPECT_EQ(entry->rip, 0x100000u);
    uint64_t const mbi = entry->rbx;
    EXPECT_EQ(g.u8(0x100000), 0xfa);
    EXPECT_EQ(g.u32(0x100004), 0u); // bss zeroed
    uint32_t const flags = g.u32(mbi);
    EXPECT_TRUE(flags & (1u << 0) && flags & (1u << 2) && flags & (1u << 3) && flags & (1u << 6));
    EXPECT_EQ(g.u32(mbi + 4), 639u);                     // mem_lower KiB
    EXPECT_EQ(g.u32(mbi + 8), (RAM - 0x100000) / 1024);  // mem_upper KiB
    EXPECT_EQ(g.str(g.u32(mbi + 16)), "cpus=2 mem=256");
    ASSERT_EQ(g.u32(mbi + 20), 2u);
    uint32_t const mods = g.u32(mbi + 24);
    uint32_t const m0 = g.u32(mods), m1 = g.u32(mods + 16);
    EXPECT_EQ(m0 % 4096, 0u);
    EXPECT_GE(m0, 0x102000u); // after the kernel's bss
    EXPECT_EQ(g.u32(mods + 4) - m0, 3u);
    EXPECT_EQ(g.u8(m1), 4);
    EXPECT_EQ(g.str(g.u32(mods + 8)), "first");
    EXPECT_EQ(g.str(g.u32(mods + 16 + 8)), "second");
    uint32_t const mmap_len = g.u32(mbi + 44), mmap = g.u32(mbi + 48);
    EXPECT_EQ(mmap_len, 24u * req.memory_map.size());
    EXPECT_EQ(g.u32(mmap), 20u);
    EXPECT_EQ(g.u64(mmap + 4 + 24), req.memory_map[1].addr);

    // The a.out kludge: header at 0x40, loaded at 2 MiB with 0x1000 bytes of bss.
    std::vector<uint8_t> aout(0x200, 0x90);
    put_le32(&aout[0x40], 0x1badb002);
    put_le32(&aout[0x44], 0x10002);
    put_le32(&aout[0x48], static_cast<uint32_t>(-(0x1badb002u + 0x10002u)));
    put_le32(&aout[0x4c], 0x200040); // header_addr
    put_le32(&aout[0x50], 0x200000); // load_addr
    put_le32(&aout[0x54], 0x200200); // load_end_addr
    put_le32(&aout[0x58], 0x201200); // bss_end_addr
    put_le32(&aout[0x5c], 0x200100); // entry
    req.kernel = aout;
    req.modules.clear();
    entry = load_kernel(g.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->rip, 0x200100u);
    EXPECT_EQ(g.u32(0x200040), 0x1badb002u);
}

TEST(Loader, MalformedMultiboot)
{
    Guest g;
    KernelLoadRequest req;
    req.memory_map = g.map();
    // Segment outside guest RAM.
    auto outside = multiboot_elf({ 0xf4 }, 0, 0x40000000);
    req.kernel = outside;
    EXPECT_FALSE(load_kernel(g.mem, req));
    // Segment below 1 MiB (over hako's boot structures).
    auto low = multiboot_elf({ 0xf4 }, 0, 0x8000);
    req.kernel = low;
    EXPECT_FALSE(load_kernel(g.mem, req));
    // p_paddr + p_memsz wraps.
    auto wrap = multiboot_elf({ 0xf4 }, 0xfffff000, 0x100000);
    req.kernel = wrap;
    EXPECT_FALSE(load_kernel(g.mem, req));
    // Segment data past the end of the file.
    auto trunc = multiboot_elf(std::vector<uint8_t>(64, 0x90), 0);
    trunc.resize(0x1000 + 16);
    req.kernel = trunc;
    EXPECT_FALSE(load_kernel(g.mem, req));
    // Absurd program header count.
    auto phnum = multiboot_elf({ 0xf4 }, 0);
    put_le16(&phnum[44], 0xffff);
    req.kernel = phnum;
    EXPECT_FALSE(load_kernel(g.mem, req));
    // Unknown required feature bit.
    auto feat = multiboot_elf({ 0xf4 }, 0);
    put_le32(&feat[0x104], 0x3 | 0x8);
    put_le32(&feat[0x108], static_cast<uint32_t>(-(0x1badb002u + 0xbu)));
    req.kernel = feat;
    EXPECT_FALSE(load_kernel(g.mem, req));
    // Command lines larger than the area.
    auto ok_image = multiboot_elf({ 0xf4 }, 0);
    req.kernel = ok_image;
    req.cmdline = std::string(CMDLINE_MAX, 'y');
    EXPECT_FALSE(load_kernel(g.mem, req));
}

TEST(Loader, Firmware)
{
    std::vector<uint8_t> low(LOW_RAM_END), upper(0x100000 - UPPER_RAM_START), rom(0x20000);
    auto mem = *GuestMemory::from_buffers(
        { { GuestAddr(0), low }, { GuestAddr(UPPER_RAM_START), upper }, { GuestAddr(firmware_base(0x20000)), rom } });
    std::vector<uint8_t> image(0x20000);
    for (size_t i = 0; i < image.size(); ++i)
        image[i] = static_cast<uint8_t>(i * 7);
    ASSERT_TRUE(load_firmware(mem, image));
    EXPECT_EQ(rom, image);
    EXPECT_EQ(*mem.read_obj<uint8_t>(GuestAddr(0xfffff)), image.back());
    EXPECT_EQ(*mem.read_obj<uint8_t>(GuestAddr(0xe0000)), image[0]);
    std::vector<uint8_t> odd(0x10001);
    auto r = load_firmware(mem, odd);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("multiple of 64 KiB"), std::string::npos);
    std::vector<uint8_t> big(0x40000); // no ROM region of that size
    EXPECT_FALSE(load_firmware(mem, big));
}
