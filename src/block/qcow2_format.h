// The qcow2 on-disk format (QEMU's docs/interop/qcow2.txt): field offsets, flags, limits and big-endian helpers,
// shared by the files that implement Qcow2Image (qcow2.cpp, qcow2_tools.cpp). Internal to src/block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/checked.h"

namespace hako::block::qcow2 {

// Header field offsets (qcow2.txt "Header").
constexpr size_t H_MAGIC = 0;
constexpr size_t H_VERSION = 4;
constexpr size_t H_BACKING_FILE_OFFSET = 8;
constexpr size_t H_BACKING_FILE_SIZE = 16;
constexpr size_t H_CLUSTER_BITS = 20;
constexpr size_t H_SIZE = 24;
constexpr size_t H_CRYPT_METHOD = 32;
constexpr size_t H_L1_SIZE = 36;
constexpr size_t H_L1_TABLE_OFFSET = 40;
constexpr size_t H_REFCOUNT_TABLE_OFFSET = 48;
constexpr size_t H_REFCOUNT_TABLE_CLUSTERS = 56;
constexpr size_t H_NB_SNAPSHOTS = 60;
constexpr size_t H_INCOMPATIBLE_FEATURES = 72;
constexpr size_t H_COMPATIBLE_FEATURES = 80;
constexpr size_t H_AUTOCLEAR_FEATURES = 88;
constexpr size_t H_REFCOUNT_ORDER = 96;
constexpr size_t H_HEADER_LENGTH = 100;
constexpr size_t H_COMPRESSION_TYPE = 104;
constexpr size_t V2_HEADER_LENGTH = 72;
constexpr size_t V3_MIN_HEADER_LENGTH = 104;

constexpr uint64_t INCOMPAT_DIRTY = 1u << 0;
constexpr uint64_t INCOMPAT_CORRUPT = 1u << 1;
constexpr uint64_t INCOMPAT_DATA_FILE = 1u << 2;
constexpr uint64_t INCOMPAT_COMPRESSION = 1u << 3;
constexpr uint64_t INCOMPAT_EXTL2 = 1u << 4;
constexpr uint64_t INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT;

constexpr uint32_t EXT_END = 0;
constexpr uint32_t EXT_BACKING_FORMAT = 0xe2792aca;
constexpr uint32_t EXT_DATA_FILE = 0x44415441;

// Table entries (qcow2.txt "Cluster mapping", "Host cluster management").
constexpr uint64_t OFLAG_COPIED = 1ull << 63;
constexpr uint64_t OFLAG_COMPRESSED = 1ull << 62;
constexpr uint64_t OFLAG_ZERO = 1ull << 0;
constexpr uint64_t OFFSET_MASK = 0x00fffffffffffe00ull;      // bits 9-55
constexpr uint64_t L1E_RESERVED = ~(OFFSET_MASK | OFLAG_COPIED);
constexpr uint64_t L2E_STD_RESERVED = 0x3f000000000001feull; // bits 1-8 and 56-61
constexpr uint64_t REFT_RESERVED = 0x1ffull;                  // bits 0-8

constexpr uint32_t MIN_CLUSTER_BITS = 9;
constexpr uint32_t MAX_CLUSTER_BITS = 21;
constexpr uint64_t MAX_L1_BYTES = 32 * MiB;
constexpr uint64_t MAX_REFTABLE_BYTES = 8 * MiB;
constexpr uint64_t MAX_HOST_OFFSET = 1ull << 56;
constexpr uint32_t MAX_BACKING_NAME = 1023;
constexpr uint64_t L2_CACHE_BYTES = 4 * MiB;
constexpr size_t MAX_BATCH_TABLES = 16; // a batch touching more L2 tables is committed and restarted

inline uint64_t be(std::span<uint8_t const> b, size_t off, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
        v = (v << 8) | b[off + i];
    return v;
}
inline uint32_t be32(std::span<uint8_t const> b, size_t off) { return static_cast<uint32_t>(be(b, off, 4)); }
inline uint64_t be64(std::span<uint8_t const> b, size_t off) { return be(b, off, 8); }
inline void put_be(std::span<uint8_t> b, size_t off, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; ++i)
        b[off + n - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
}

inline std::vector<uint64_t> decode_table(std::span<uint8_t const> raw)
{
    std::vector<uint64_t> t(raw.size() / 8);
    for (size_t i = 0; i < t.size(); ++i)
        t[i] = be64(raw, i * 8);
    return t;
}
inline std::vector<uint8_t> encode_table(std::span<uint64_t const> t)
{
    std::vector<uint8_t> raw(t.size() * 8);
    for (size_t i = 0; i < t.size(); ++i)
        put_be(raw, i * 8, 8, t[i]);
    return raw;
}

} // namespace hako::block::qcow2
