#include "arch/x86/elf.h"

#include "base/bytes.h"
#include "base/checked.h"

namespace hako::arch::x86 {

constexpr uint32_t PT_LOAD = 1;
constexpr uint32_t PT_NOTE = 4;
constexpr uint16_t ET_EXEC = 2;
constexpr uint16_t ET_DYN = 3;
constexpr size_t MAX_PHDRS = 256;

bool is_elf(std::span<uint8_t const> image)
{
    return image.size() >= 16 && image[0] == 0x7f && image[1] == 'E' && image[2] == 'L' && image[3] == 'F';
}

static Error bad(std::string_view what) { return Error(ErrorKind::Format, fmt::format("Bad ELF image: {}", what)); }

Result<ElfImage> parse_elf(std::span<uint8_t const> image)
{
    if (!is_elf(image))
        return bad("no ELF magic");
    uint8_t const cls = image[4];
    if (cls != 1 && cls != 2)
        return bad("unknown class");
    if (image[5] != 1)
        return bad("not little-endian");
    ElfImage elf {};
    elf.is_64bit = cls == 2;
    size_t const ehdr_size = elf.is_64bit ? 64 : 52;
    if (image.size() < ehdr_size)
        return bad("truncated file header");
    uint8_t const* p = image.data();
    uint16_t const type = get_le16(p + 16);
    if (type != ET_EXEC && type != ET_DYN)
        return bad("not an executable");
    elf.machine = get_le16(p + 18);
    uint64_t phoff;
    uint16_t phentsize, phnum;
    if (elf.is_64bit) {
        elf.entry = get_le64(p + 24);
        phoff = get_le64(p + 32);
        phentsize = get_le16(p + 54);
        phnum = get_le16(p + 56);
    } else {
        elf.entry = get_le32(p + 24);
        phoff = get_le32(p + 28);
        phentsize = get_le16(p + 42);
        phnum = get_le16(p + 44);
    }
    size_t const min_phent = elf.is_64bit ? 56 : 32;
    if (phnum == 0 || phnum > MAX_PHDRS)
        return bad(fmt::format("{} program headers", phnum));
    if (phentsize < min_phent)
        return bad("program header entries too small");
    auto table = checked_mul(phnum, phentsize);
    if (!table || !range_within(phoff, *table, image.size()))
        return bad("program headers past the end of the file");

    for (uint16_t i = 0; i < phnum; ++i) {
        uint8_t const* ph = p + phoff + static_cast<uint64_t>(i) * phentsize;
        uint32_t const ptype = get_le32(ph);
        uint64_t offset, vaddr, paddr, filesz, memsz;
        if (elf.is_64bit) {
            offset = get_le64(ph + 8);
            vaddr = get_le64(ph + 16);
            paddr = get_le64(ph + 24);
            filesz = get_le64(ph + 32);
            memsz = get_le64(ph + 40);
        } else {
            offset = get_le32(ph + 4);
            vaddr = get_le32(ph + 8);
            paddr = get_le32(ph + 12);
            filesz = get_le32(ph + 16);
            memsz = get_le32(ph + 20);
        }
        if (ptype != PT_LOAD && ptype != PT_NOTE)
            continue;
        if (!range_within(offset, filesz, image.size()))
            return bad(fmt::format("segment {} runs past the end of the file (truncated?)", i));
        if (ptype == PT_LOAD) {
            if (memsz < filesz)
                return bad(fmt::format("segment {} is smaller in memory than in the file", i));
            if (!checked_add(paddr, memsz))
                return bad(fmt::format("segment {} wraps the address space", i));
            elf.loads.push_back({ paddr, vaddr, offset, filesz, memsz });
            continue;
        }
        // Notes: namesz, descsz, type, name (4-aligned), desc (4-aligned).
        uint64_t pos = offset;
        uint64_t const end = offset + filesz;
        while (end - pos >= 12) {
            uint8_t const* n = p + pos;
            uint32_t const namesz = get_le32(n), descsz = get_le32(n + 4), ntype = get_le32(n + 8);
            uint64_t const name_off = pos + 12;
            uint64_t const desc_off = name_off + align_up(namesz, 4);
            uint64_t const next = desc_off + align_up(descsz, 4);
            if (next > end || next <= pos)
                break;
            std::string_view name(static_cast<char const*>(static_cast<void const*>(p + name_off)), namesz ? namesz - 1 : 0);
            elf.notes.push_back({ name, ntype, image.subspan(desc_off, descsz) });
            pos = next;
        }
    }
    if (elf.loads.empty())
        return bad("no loadable segments");
    return elf;
}

} // namespace hako::arch::x86
