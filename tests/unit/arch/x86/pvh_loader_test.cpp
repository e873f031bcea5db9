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

// An ELF64 kernel: text at 2 MiB (0x3000 file bytes, 0x5000 in memory), a PVH note with entry 0x200040.
std::vector<uint8_t> synthetic_pvh(uint64_t entry = 0x200040)
{
    return build_elf(true, 0xffffffff81000000ull, {
        { PT_LOAD, 0x200000, pattern(0x3000, 5), 0x5000 },
        { PT_NOTE, 0, pvh_note(entry), 0 },
    });
}

KernelLoadRequest request(std::span<uint8_t const> kernel, uint64_t ram)
{
    KernelLoadRequest req;
    req.kernel = kernel;
    req.cmdline = "console=hvc0 earlyprintk=ttyS0";
    req.memory_map = pc_memory_map(ram);
    req.rsdp_addr = 0xe0000;
    return req;
}

Error load_error(std::vector<uint8_t> const& image)
{
    TestRam ram(MEM_16M);
    auto r = load_kernel(ram.mem, request(image, MEM_16M));
    EXPECT_FALSE(r);
    return r ? Error(ErrorKind::Io, "loaded") : r.error();
}

void check_start_info(TestRam const& ram, KernelLoadRequest const& req, uint32_t nr_modules)
{
    uint64_t si = BOOT_INFO_ADDR;
    EXPECT_EQ(ram.u32(si + 0), 0x336ec578u);
    EXPECT_EQ(ram.u32(si + 4), 1u);
    EXPECT_EQ(ram.u32(si + 8), 0u);
    EXPECT_EQ(ram.u32(si + 12), nr_modules);
    EXPECT_EQ(ram.u64(si + 24), CMDLINE_ADDR);
    EXPECT_EQ(ram.u64(si + 32), req.rsdp_addr);
    uint64_t memmap = ram.u64(si + 40);
    ASSERT_EQ(ram.u32(si + 48), req.memory_map.size());
    ASSERT_GE(memmap, BOOT_INFO_EXTRA);
    for (size_t i = 0; i < req.memory_map.size(); ++i) {
        EXPECT_EQ(ram.u64(memmap + i * 24), req.memory_map[i].addr);
        EXPECT_EQ(ram.u64(memmap + i * 24 + 8), req.memory_map[i].size);
        EXPECT_EQ(ram.u32(memmap + i * 24 + 16), req.memory_map[i].type);
        EXPECT_EQ(ram.u32(memmap + i * 24 + 20), 0u);
    }
    auto cmd = ram.buf.begin() + static_cast<std::ptrdiff_t>(CMDLINE_ADDR);
    EXPECT_EQ(std::string(cmd, std::find(cmd, ram.buf.end(), uint8_t { 0 })), req.cmdline);
}

} // namespace

TEST(PvhLoader, RealDebianVmlinux)
{
    auto image = read_cached_kernel("kernel/vmlinux");
    ASSERT_FALSE(image.empty());
    auto fmt = detect_kernel_format(image);
    ASSERT_TRUE(fmt) << fmt.error().message();
    ASSERT_EQ(*fmt, KernelFormat::PvhElf) << "the Debian vmlinux must carry the PVH entry note";
    auto elf = parse_elf(image);
    ASSERT_TRUE(elf);
    auto pvh_entry = find_pvh_entry(image);
    ASSERT_TRUE(pvh_entry);

    TestRam ram(256 * MiB);
    auto req = request(image, 256 * MiB);
    auto initrd = pattern(2 * MiB + 5, 3);
    req.modules.push_back({ initrd, {} });
    auto entry = load_kernel(ram.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->mode, CpuMode::Protected32);
    EXPECT_EQ(entry->rip, *pvh_entry);
    EXPECT_EQ(entry->rbx, BOOT_INFO_ADDR);
    check_start_info(ram, req, 1);

    // Segments copied, BSS zeroed; the entry lies inside a loaded segment.
    uint64_t kernel_end = 0;
    bool entry_loaded = false;
    for (auto const& seg : elf->loads) {
        auto n = static_cast<size_t>(std::min<uint64_t>(seg.file_size, 4096));
        EXPECT_TRUE(std::equal(image.begin() + static_cast<std::ptrdiff_t>(seg.file_offset),
            image.begin() + static_cast<std::ptrdiff_t>(seg.file_offset + n), ram.buf.begin() + static_cast<std::ptrdiff_t>(seg.paddr)))
            << std::hex << seg.paddr;
        if (seg.mem_size > seg.file_size) {
            EXPECT_EQ(ram.buf[seg.paddr + seg.mem_size - 1], 0);
        }
        kernel_end = std::max(kernel_end, seg.paddr + seg.mem_size);
        entry_loaded |= *pvh_entry >= seg.paddr && *pvh_entry < seg.paddr + seg.mem_size;
    }
    EXPECT_TRUE(entry_loaded);

    // Module 0: the initrd, above the kernel, page-aligned, copied.
    uint64_t modlist = ram.u64(BOOT_INFO_ADDR + 16);
    uint64_t rd = ram.u64(modlist);
    EXPECT_EQ(ram.u64(modlist + 8), initrd.size());
    EXPECT_EQ(rd % 4096, 0u);
    EXPECT_GE(rd, kernel_end);
    EXPECT_LE(rd + initrd.size(), 256 * MiB);
    EXPECT_TRUE(std::equal(initrd.begin(), initrd.end(), ram.buf.begin() + static_cast<std::ptrdiff_t>(rd)));
}

TEST(PvhLoader, SyntheticElf64)
{
    auto image = synthetic_pvh();
    TestRam ram(MEM_16M);
    auto req = request(image, MEM_16M);
    auto entry = load_kernel(ram.mem, req);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->rip, 0x200040u);
    check_start_info(ram, req, 0);
    EXPECT_EQ(ram.u64(BOOT_INFO_ADDR + 16), 0u); // no module list
    auto text = pattern(0x3000, 5);
    EXPECT_TRUE(std::equal(text.begin(), text.end(), ram.buf.begin() + 0x200000));
    EXPECT_TRUE(std::all_of(ram.buf.begin() + 0x203000, ram.buf.begin() + 0x205000, [](uint8_t b) { return b == 0; }));
    EXPECT_EQ(ram.buf[0x205000], 0xcc); // nothing past p_memsz
}

TEST(PvhLoader, SyntheticElf32With4ByteNote)
{
    auto image = build_elf(false, 0x200000, {
        { PT_NOTE, 0, pvh_note(0x200010, 4), 0 },
        { PT_LOAD, 0x200000, pattern(0x100, 1), 0x100 },
    });
    TestRam ram(MEM_16M);
    auto entry = load_kernel(ram.mem, request(image, MEM_16M));
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(entry->rip, 0x200010u);
}

TEST(PvhLoader, InitrdTooLarge)
{
    auto image = synthetic_pvh();
    TestRam ram(MEM_16M);
    auto req = request(image, MEM_16M);
    req.modules.push_back({ std::vector<uint8_t>(14 * MiB), {} });
    auto r = load_kernel(ram.mem, req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message().rfind("Initrd too large for guest memory", 0), 0u) << r.error().message();
    EXPECT_EQ(ram.buf[0x200000], 0xcc); // checked before anything was written
}

TEST(PvhLoader, CommandLineTooLong)
{
    auto image = synthetic_pvh();
    TestRam ram(MEM_16M);
    auto req = request(image, MEM_16M);
    req.cmdline = std::string(CMDLINE_MAX, 'a');
    auto r = load_kernel(ram.mem, req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message().rfind("Kernel command line too long", 0), 0u);
}

TEST(PvhLoader, ElfWithoutNoteOrMultibootHeader)
{
    auto image = build_elf(true, 0x200000, { { PT_LOAD, 0x200000, pattern(0x100, 1), 0x100 } });
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(e.message().find("PVH"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("multiboot"), std::string::npos) << e.message();
}

TEST(PvhLoader, MalformedElf)
{
    auto good = synthetic_pvh();
    // Truncated file header.
    auto image = std::vector<uint8_t>(good.begin(), good.begin() + 40);
    image.resize(64, 0); // long enough for detection, but e_phoff etc. now point nowhere
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    EXPECT_EQ(load_error(std::vector<uint8_t>(good.begin(), good.begin() + 70)).kind(), ErrorKind::Format);

    // Program headers past the end of the file.
    image = good;
    put_le64(&image[32], image.size() - 8);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);

    // Absurd program header count.
    image = good;
    put_le16(&image[56], 0xffff);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);

    // Segment file bytes past the end (truncated segment).
    image = good;
    image.resize(image.size() - 0x1000);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);

    // p_filesz > p_memsz.
    image = good;
    put_le64(&image[phdr64_field(0, 40)], 0x100);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);

    // Bad ELF class, big-endian.
    image = good;
    image[4] = 3;
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    image = good;
    image[5] = 2;
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
}

TEST(PvhLoader, SegmentsOutsideRam)
{
    auto image = synthetic_pvh();
    put_le64(&image[phdr64_field(0, 24)], 0x40000000); // p_paddr 1 GiB, RAM is 16 MiB
    auto e = load_error(image);
    EXPECT_EQ(e.kind(), ErrorKind::OutOfRange);
    EXPECT_NE(e.message().find("outside guest RAM"), std::string::npos) << e.message();

    image = synthetic_pvh();
    put_le64(&image[phdr64_field(0, 24)], 0xfffffffffffff000ull); // p_paddr + p_memsz overflows
    EXPECT_EQ(load_error(image).kind(), ErrorKind::OutOfRange);

    image = synthetic_pvh();
    put_le64(&image[phdr64_field(0, 24)], 0xfff000); // straddles the end of RAM
    EXPECT_EQ(load_error(image).kind(), ErrorKind::OutOfRange);

    image = synthetic_pvh();
    put_le64(&image[phdr64_field(0, 24)], 0x7000); // over the boot structures
    EXPECT_EQ(load_error(image).kind(), ErrorKind::OutOfRange);
}

TEST(PvhLoader, BadNotes)
{
    // Entry above 4 GiB.
    EXPECT_EQ(load_error(synthetic_pvh(0x100000000ull)).kind(), ErrorKind::Format);
    // A note whose descsz runs past its segment.
    auto image = synthetic_pvh();
    auto note_off = get_le64(&image[phdr64_field(1, 8)]);
    put_le32(&image[note_off + 4], 0x7fffffff);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
    // Descriptor of an odd size: no usable entry.
    auto odd = build_elf(true, 0, {
        { PT_LOAD, 0x200000, pattern(0x100, 1), 0x100 },
        { PT_NOTE, 0, make_note("Xen", 18, { 1, 2 }), 0 },
    });
    EXPECT_EQ(load_error(odd).kind(), ErrorKind::Format);
    // A note header cut short.
    image = synthetic_pvh();
    put_le64(&image[phdr64_field(1, 32)], 8);
    EXPECT_EQ(load_error(image).kind(), ErrorKind::Format);
}
