// A small ELF reader for kernel images (System V gABI, ELF32 and ELF64, little-endian): the file header, the
// PT_LOAD segments and the notes of PT_NOTE segments. Every offset and size is checked against the file; nothing
// is trusted. It does not read section headers, symbols or relocations: loaders need none of them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hako::arch::x86 {

constexpr uint32_t PT_LOAD = 1;
constexpr uint32_t PT_NOTE = 4;
constexpr uint16_t EM_386 = 3;
constexpr uint16_t EM_X86_64 = 62;
constexpr size_t ELF_MAX_PHDRS = 256; // far more than any kernel has; bounds the work a hostile file causes

struct ElfSegment {
    uint64_t paddr;
    uint64_t vaddr;
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t mem_size;
};

struct ElfNote {
    std::string_view name; // without the terminating NUL
    uint32_t type;
    std::span<uint8_t const> desc;
};

/// A parsed ELF image. Spans and views point into the caller's file bytes.
struct ElfImage {
    bool is_64bit;
    uint16_t machine;
    uint64_t entry;
    std::vector<ElfSegment> loads; // PT_LOAD with p_memsz > 0, file ranges validated
    std::vector<ElfNote> notes;    // from every PT_NOTE segment
};

/// True if the image starts with the ELF magic.
bool is_elf(std::span<uint8_t const> image);

/// Parses a little-endian ELF32 or ELF64 executable. Fails (ErrorKind::Format) on anything outside the file.
[[nodiscard]] Result<ElfImage> parse_elf(std::span<uint8_t const> image);

/// Reads a little-endian integer of `width` bytes (1, 2, 4 or 8) at `offset`, or nullopt if it is past the end.
std::optional<uint64_t> read_le(std::span<uint8_t const> bytes, uint64_t offset, size_t width);

} // namespace hako::arch::x86
