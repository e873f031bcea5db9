// A small ELF reader for kernel images: the file header, PT_LOAD segments and notes, every offset bounds-checked.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"

namespace hako::arch::x86 {

struct ElfSegment {
    uint64_t paddr;
    uint64_t vaddr;
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t mem_size;
};

struct ElfNote {
    std::string_view name;        // without the NUL
    uint32_t type;
    std::span<uint8_t const> desc;
};

struct ElfImage {
    bool is_64bit;
    uint16_t machine;
    uint64_t entry;
    std::vector<ElfSegment> loads; // PT_LOAD, validated against the file
    std::vector<ElfNote> notes;    // from PT_NOTE segments
};

bool is_elf(std::span<uint8_t const> image);
/// Parses an ELF32 or ELF64 little-endian executable. Fails on anything out of the file's bounds.
[[nodiscard]] Result<ElfImage> parse_elf(std::span<uint8_t const> image);

} // namespace hako::arch::x86
