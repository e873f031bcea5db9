#include "arch/x86/elf.h"

#include <fmt/format.h>

#include "base/bytes.h"
#include "base/checked.h"

namespace hako::arch::x86 {

namespace {

constexpr uint8_t ELFCLASS32 = 1;
constexpr uint8_t ELFCLASS64 = 2;
constexpr uint8_t ELFDATA2LSB = 1;
constexpr uint16_t ET_EXEC = 2;
constexpr uint16_t ET_DYN = 3;
constexpr size_t EI_CLASS = 4;
constexpr size_t EI_DATA = 5;
constexpr size_t EHDR32_SIZE = 52;
constexpr size_t EHDR64_SIZE = 64;
constexpr size_t PHDR32_SIZE = 32;
constexpr size_t PHDR64_SIZE = 56;

Error format_error(std::string msg) { return Error(ErrorKind::Format, std::move(msg)); }

// Walks the notes of one PT_NOTE segment: namesz, descsz, type, then name and desc each padded to 4 bytes.
Result<void> parse_notes(std::span<uint8_t const> seg, std::vector<ElfNote>& out)
{
    uint64_t off = 0;
    while (off < seg.size()) {
        if (seg.size() - off < 12)
            return format_error("ELF note header is truncated");
        uint64_t namesz = *read_le(seg, off, 4);
        uint64_t descsz = *read_le(seg, off + 4, 4);
        auto type = static_cast<uint32_t>(*read_le(seg, off + 8, 4));
        uint64_t name_off = off + 12;
        uint64_t desc_off = name_off + align_up(namesz, 4); // namesz < 2^32: no overflow
        uint64_t next = desc_off + align_up(descsz, 4);
        if (!range_within(name_off, namesz, seg.size()) || !range_within(desc_off, descsz, seg.size()))
            return format_error("ELF note runs past its segment");
        std::string_view name;
        if (namesz > 0) {
            auto const* p = seg.data() + name_off;
            size_t len = static_cast<size_t>(namesz);
            if (p[len - 1] == 0)
                --len;
            name = std::string_view(static_cast<char const*>(static_cast<void const*>(p)), len);
        }
        out.push_back(ElfNote { name, type, seg.subspan(static_cast<size_t>(desc_off), static_cast<size_t>(descsz)) });
        off = next;
    }
    return ok();
}

} // namespace

std::optional<uint64_t> read_le(std::span<uint8_t const> bytes, uint64_t offset, size_t width)
{
    if (!range_within(offset, width, bytes.size()))
        return std::nullopt;
    return load_le(bytes.subspan(static_cast<size_t>(offset), width));
}

bool is_elf(std::span<uint8_t const> image)
{
    return image.size() >= 4 && image[0] == 0x7f && image[1] == 'E' && image[2] == 'L' && image[3] == 'F';
}

Result<ElfImage> parse_elf(std::span<uint8_t const> image)
{
    if (!is_elf(image))
        return format_error("Not an ELF file (bad magic)");
    if (image.size() < EHDR32_SIZE)
        return format_error(fmt::format("ELF header is truncated ({} bytes)", image.size()));
    uint8_t cls = image[EI_CLASS];
    if (cls != ELFCLASS32 && cls != ELFCLASS64)
        return format_error(fmt::format("ELF class {} is neither ELF32 nor ELF64", cls));
    if (image[EI_DATA] != ELFDATA2LSB)
        return format_error("ELF file is not little-endian");
    bool is64 = cls == ELFCLASS64;
    if (is64 && image.size() < EHDR64_SIZE)
        return format_error(fmt::format("ELF64 header is truncated ({} bytes)", image.size()));

    auto type = static_cast<uint16_t>(*read_le(image, 16, 2));
    if (type != ET_EXEC && type != ET_DYN)
        return format_error(fmt::format("ELF file is not an executable (e_type {})", type));

    ElfImage elf {};
    elf.is_64bit = is64;
    elf.machine = static_cast<uint16_t>(*read_le(image, 18, 2));
    uint64_t phoff, phentsize, phnum;
    if (is64) {
        elf.entry = *read_le(image, 24, 8);
        phoff = *read_le(image, 32, 8);
        phentsize = *read_le(image, 54, 2);
        phnum = *read_le(image, 56, 2);
    } else {
        elf.entry = *read_le(image, 24, 4);
        phoff = *read_le(image, 28, 4);
        phentsize = *read_le(image, 42, 2);
        phnum = *read_le(image, 44, 2);
    }
    size_t const want_phentsize = is64 ? PHDR64_SIZE : PHDR32_SIZE;
    if (phnum == 0)
        return format_error("ELF file has no program headers");
    if (phnum > ELF_MAX_PHDRS)
        return format_error(fmt::format("ELF file has {} program headers, at most {} are accepted", phnum, ELF_MAX_PHDRS));
    if (phentsize < want_phentsize)
        return format_error(fmt::format("ELF program header size {} is too small", phentsize));
    if (!range_within(phoff, phnum * phentsize, image.size()))
        return format_error("ELF program headers run past the end of the file");

    for (uint64_t i = 0; i < phnum; ++i) {
        uint64_t ph = phoff + i * phentsize;
        auto p_type = static_cast<uint32_t>(*read_le(image, ph, 4));
        ElfSegment seg {};
        if (is64) {
            seg.file_offset = *read_le(image, ph + 8, 8);
            seg.vaddr = *read_le(image, ph + 16, 8);
            seg.paddr = *read_le(image, ph + 24, 8);
            seg.file_size = *read_le(image, ph + 32, 8);
            seg.mem_size = *read_le(image, ph + 40, 8);
        } else {
            seg.file_offset = *read_le(image, ph + 4, 4);
            seg.vaddr = *read_le(image, ph + 8, 4);
            seg.paddr = *read_le(image, ph + 12, 4);
            seg.file_size = *read_le(image, ph + 16, 4);
            seg.mem_size = *read_le(image, ph + 20, 4);
        }
        if (p_type != PT_LOAD && p_type != PT_NOTE)
            continue;
        if (!range_within(seg.file_offset, seg.file_size, image.size()))
            return format_error(fmt::format("ELF segment {} (offset {:#x}, {:#x} bytes) runs past the end of the file", i,
                seg.file_offset, seg.file_size));
        if (p_type == PT_NOTE) {
            TRY(parse_notes(image.subspan(static_cast<size_t>(seg.file_offset), static_cast<size_t>(seg.file_size)), elf.notes));
            continue;
        }
        if (seg.file_size > seg.mem_size)
            return format_error(fmt::format("ELF segment {} has p_filesz {:#x} larger than p_memsz {:#x}", i, seg.file_size,
                seg.mem_size));
        if (!checked_add(seg.paddr, seg.mem_size))
            return Error(ErrorKind::OutOfRange, fmt::format("ELF segment {} address {:#x} + {:#x} overflows", i, seg.paddr,
                seg.mem_size));
        if (seg.mem_size > 0)
            elf.loads.push_back(seg);
    }
    if (elf.loads.empty())
        return format_error("ELF file has no loadable segments");
    return elf;
}

} // namespace hako::arch::x86
