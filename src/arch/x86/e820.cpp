#include "arch/x86/e820.h"

#include <algorithm>

#include "base/bytes.h"

namespace hako::arch::x86 {

static void add(std::vector<E820Entry>& map, uint64_t start, uint64_t end, uint32_t type)
{
    if (end > start)
        map.push_back(E820Entry { start, end - start, type });
}

std::vector<E820Entry> build_e820(RamLayout ram)
{
    std::vector<E820Entry> map;
    uint64_t low_end = std::min(ram.low_end, E820_TOP_RESERVED_START);
    add(map, 0, std::min(low_end, EBDA_START), E820_RAM);
    add(map, EBDA_START, LOW_RAM_END, E820_RESERVED);
    add(map, BIOS_AREA_START, HIGH_MEMORY_START, E820_RESERVED);
    if (low_end > HIGH_MEMORY_START)
        add(map, HIGH_MEMORY_START, low_end, E820_RAM);
    add(map, PCI_ECAM_BASE, PCI_ECAM_BASE + PCI_ECAM_SIZE, E820_RESERVED); // Linux wants MMCONFIG reserved
    add(map, E820_TOP_RESERVED_START, FOUR_GIB, E820_RESERVED);
    if (ram.high_size > 0) {
        auto end = checked_add(FOUR_GIB, ram.high_size);
        add(map, FOUR_GIB, end ? *end : ~uint64_t { 0 }, E820_RAM);
    }
    return map;
}

std::vector<E820Entry> fw_cfg_e820_entries(RamLayout ram)
{
    std::vector<E820Entry> map;
    add(map, 0, std::min(ram.low_end, FOUR_GIB), E820_RAM);
    add(map, PCI_ECAM_BASE, PCI_ECAM_BASE + PCI_ECAM_SIZE, E820_RESERVED); // SeaBIOS copies reserved entries
    if (ram.high_size > 0) {
        auto end = checked_add(FOUR_GIB, ram.high_size);
        add(map, FOUR_GIB, end ? *end : ~uint64_t { 0 }, E820_RAM);
    }
    return map;
}

std::vector<uint8_t> e820_fw_cfg_blob(std::span<E820Entry const> entries)
{
    std::vector<uint8_t> blob(entries.size() * E820_FW_CFG_ENTRY_SIZE);
    uint8_t* p = blob.data();
    for (auto const& e : entries) {
        put_le64(p, e.addr);
        put_le64(p + 8, e.size);
        put_le32(p + 16, e.type);
        p += E820_FW_CFG_ENTRY_SIZE;
    }
    return blob;
}

} // namespace hako::arch::x86
