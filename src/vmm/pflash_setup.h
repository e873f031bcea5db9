// The host side of --firmware uefi|pflash: reading and checking the flash images before a machine is built, and
// creating a persistent variable store from its template. Every check happens before anything is written: a bad
// file gives one error and is left as it was.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "block/block_device.h"
#include "vmm/config.h"

namespace hako::vmm {

/// QEMU's limit on the flash mapped below 4 GiB (hw/i386/pc_sysfw.c): it stays clear of the LAPIC and IOAPIC.
constexpr uint64_t PFLASH_MAX_TOTAL = 8ull << 20;

struct PflashImages {
    std::vector<uint8_t> code;                      // unit 0, read-only
    std::vector<uint8_t> vars;                      // unit 1's contents; empty: no unit 1
    std::shared_ptr<block::BlockDevice> vars_store; // the vars file (locked), or an in-memory copy
};

/// Reads the code image, and the vars file (creating it from the template if it is missing) or the template.
/// Sizes: each a non-zero multiple of 4 KiB, together at most PFLASH_MAX_TOTAL, and a vars file exactly as large as
/// its template when there is one.
[[nodiscard]] Result<PflashImages> open_pflash_images(VmConfig::PflashConfig const& config);

} // namespace hako::vmm
