// Qcow2Image: a qcow2 disk image (QEMU's docs/interop/qcow2.txt, versions 2 and 3) behind BlockDevice.
//
// Covered: the header (every field checked against the file: cluster_bits 9..21, the L1 table and refcount table
// inside the file and not overlapping, L1 large enough for the virtual size, header extensions and the backing
// file name inside the first cluster); reads through L1 -> L2 -> data cluster, with unallocated clusters read from
// the backing file (zeros past its end) or as zeros, zero-flag clusters as zeros, and compressed clusters inflated
// with zlib (raw deflate); writes that allocate clusters at the end of the file with refcounts of any width
// (refcount_order 0..6; refcount blocks and the refcount table grow as needed), copy-on-write of the rest of a
// cluster from the backing file, a compressed cluster or a zero cluster; discard and write_zeroes as zero clusters
// (v3) or deallocation (v2 without a backing file); backing files (raw or qcow2, opened read-only, relative names
// resolved against the image's directory, chains of at most BackingChain::MAX_DEPTH, loops refused).
//
// Crash safety: refcounts are raised before anything points at a cluster (a crash can leak a cluster, never share
// one); the data of newly allocated clusters and new L2 tables is made durable (fdatasync) before the L2 entries
// or L1 entries that reference it are written; a cluster's refcount is lowered only after the entry that pointed
// at it is durable. flush() is fdatasync. The image is locked like a raw DiskImage (an OFD lock on the whole file).
//
// A corrupt image gives a clear error at open (header, L1 and refcount tables), or an I/O error for the request
// that meets a bad L2 entry or compressed stream; a data write never lands on a metadata cluster (header, L1,
// refcount table, refcount blocks, L2 tables are tracked) and never past the clusters the image allocated.
//
// Refused: encryption, external data files, extended L2 entries, zstd compression, unknown incompatible
// features. Opened read-only only: images with the dirty or corrupt bit, and images with internal snapshots.
// Deliberately not done: reusing freed clusters (allocation always appends; freed clusters keep refcount 0 until
// `qemu-img convert`), writing compressed clusters, lazy refcounts, bitmaps (their autoclear bit is cleared on a
// read-write open, as the spec requires), shrinking, repairing, and concurrency inside one image (one mutex serialises all
// requests).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "block/block_device.h"
#include "block/image_format.h"

namespace hako::block {

/// What Qcow2Image::check() found.
struct Qcow2CheckReport {
    static constexpr size_t MAX_MESSAGES = 100;
    uint64_t corruptions { 0 };   // refcounts lower than the references (or a bad entry): data may be lost
    uint64_t leaks { 0 };         // refcounts higher than the references: wasted space only
    uint64_t allocated_clusters { 0 }; // guest clusters with data (compressed included)
    uint64_t compressed_clusters { 0 };
    uint64_t total_clusters { 0 };     // guest clusters in the virtual size
    uint64_t image_end { 0 };          // the end of the last cluster in use
    std::vector<std::string> messages; // the first MAX_MESSAGES problems, one line each
};

class Qcow2Image final : public BlockDevice {
public:
    static constexpr uint32_t MAGIC = 0x514649fb; // "QFI\xfb"

    /// Opens and locks `path` as qcow2, and its backing chain read-only. Errors: NotFound/Permission (open),
    /// Busy (locked elsewhere), Format (not qcow2, or a corrupt header/table), Unsupported (a feature above).
    [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> open(std::string const& path, ReadOnly ro);
    /// The same, as one link of a backing chain.
    [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> open(
        std::string const& path, ReadOnly ro, BackingChain& chain);

    struct CreateOptions {
        uint32_t cluster_bits { 16 };
        std::string backing_file {}; // stored as given (relative names resolve against the image's directory)
        std::string backing_format {}; // "raw" or "qcow2" in the backing format extension; empty: none
    };
    /// Creates a new, empty version 3 image at `path` (which must not exist): `size` bytes of virtual disk,
    /// clusters of 1 << cluster_bits bytes (9..21), 16-bit refcounts, optionally a backing file. The file holds only
    /// the header (with the backing format extension and name), the refcount table and one block, and the L1 table.
    [[nodiscard]] static Result<void> create(std::string const& path, uint64_t size, CreateOptions const& options);
    [[nodiscard]] static Result<void> create(std::string const& path, uint64_t size, uint32_t cluster_bits = 16)
    {
        return create(path, size, CreateOptions { .cluster_bits = cluster_bits });
    }

    /// Grows the virtual disk to `new_size` (a multiple of 512): a larger L1 table is written at the end of the
    /// file before the header points at it. Shrinking is refused (Unsupported). Not while requests are running.
    [[nodiscard]] Result<void> resize(uint64_t new_size);
    /// Recomputes every cluster's refcount from the header, tables and L2 entries and compares it with the stored
    /// one (qemu-img check without repair). Images with internal snapshots are refused (Unsupported).
    [[nodiscard]] Result<Qcow2CheckReport> check();

    ~Qcow2Image() override;

    std::string const& path() const override { return m_path; }
    bool read_only() const override { return m_read_only == ReadOnly::Yes; }
    uint64_t size_bytes() const override { return m_size; }

    [[nodiscard]] Result<void> read_vectored(uint64_t offset, std::span<std::span<uint8_t> const> bufs) override;
    [[nodiscard]] Result<void> write_vectored(uint64_t offset, std::span<std::span<uint8_t const> const> bufs) override;
    [[nodiscard]] Result<void> flush() override;
    [[nodiscard]] Result<DiscardOutcome> discard(uint64_t offset, uint64_t len) override;
    [[nodiscard]] Result<ZeroOutcome> write_zeroes(uint64_t offset, uint64_t len, MayUnmap may_unmap) override;

    /// Single-buffer conveniences.
    [[nodiscard]] Result<void> read_at(uint64_t offset, std::span<uint8_t> out);
    [[nodiscard]] Result<void> write_at(uint64_t offset, std::span<uint8_t const> in);

    uint32_t version() const { return m_version; }
    uint64_t cluster_size() const { return m_cluster_size; }
    uint32_t refcount_bits() const { return 1u << m_refcount_order; }
    /// The backing file as resolved (empty without one), and the open backing image (null without one).
    std::string const& backing_path() const { return m_backing_path; }
    BlockDevice const* backing() const { return m_backing.get(); }

private:
    /// Where a guest cluster's data lives.
    struct Mapping {
        enum class Kind { Unallocated, Zero, Data, Compressed } kind { Kind::Unallocated };
        uint64_t entry { 0 }; // the raw L2 entry (0 if the L2 table is absent)
        uint64_t host { 0 };  // Data: the host cluster (a preallocated Zero cluster too); Compressed: the byte offset
        uint64_t compressed_len { 0 }; // Compressed: bytes from `host` that hold the stream (sector-granular)
        bool copied { false };         // the entry's COPIED flag (refcount exactly one)
    };
    struct WriteBatch;
    struct CachedL2 {
        uint64_t offset;
        std::vector<uint64_t> entries;
        uint64_t last_use;
    };
    enum class ZeroMode { Discard, ZeroUnmap, ZeroKeep };

    Qcow2Image() = default;
    [[nodiscard]] Result<void> load(BackingChain& chain);
    [[nodiscard]] Result<void> load_tables();
    [[nodiscard]] Result<void> open_backing(std::string const& name, std::string const& format, BackingChain& chain);
    [[nodiscard]] Error corrupt(std::string_view what) const;

    // File I/O (whole transfers, EINTR and short counts retried).
    [[nodiscard]] Result<void> pread_full(uint64_t offset, std::span<uint8_t> out) const;
    /// Like pread_full, but bytes past the end of the file read as zeros.
    [[nodiscard]] Result<void> pread_zero_fill(uint64_t offset, std::span<uint8_t> out) const;
    [[nodiscard]] Result<void> pwrite_full(uint64_t offset, std::span<uint8_t const> in);
    [[nodiscard]] Result<void> sync();

    // Mapping.
    [[nodiscard]] Result<Mapping> decode_l2_entry(uint64_t guest, uint64_t entry) const;
    [[nodiscard]] Result<Mapping> lookup(uint64_t guest);
    [[nodiscard]] Result<std::vector<uint64_t> const*> l2_table(uint64_t l2_offset);
    void l2_cache_store(uint64_t l2_offset, std::vector<uint64_t> entries);
    [[nodiscard]] Result<void> read_cluster_part(uint64_t guest, std::span<uint8_t> out);
    [[nodiscard]] Result<void> read_backing(uint64_t guest, std::span<uint8_t> out);
    [[nodiscard]] Result<void> inflate_cluster(uint64_t guest, Mapping const& m);

    // Writes.
    [[nodiscard]] Result<void> check_request(uint64_t offset, uint64_t len, std::string_view what, bool write) const;
    [[nodiscard]] Result<size_t> batch_table(uint64_t guest, WriteBatch& batch);
    [[nodiscard]] Result<void> write_cluster_part(uint64_t guest, std::span<uint8_t const> data, WriteBatch& batch);
    [[nodiscard]] Result<bool> zero_cluster(uint64_t guest, ZeroMode mode, WriteBatch& batch);
    [[nodiscard]] Result<void> commit(WriteBatch& batch);
    [[nodiscard]] Result<bool> zero_range(uint64_t offset, uint64_t len, ZeroMode mode);

    // Refcounts and allocation.
    [[nodiscard]] Result<uint64_t> get_refcount(uint64_t host);
    [[nodiscard]] Result<void> set_refcount(uint64_t host, uint64_t value);
    [[nodiscard]] Result<void> ensure_refblock(uint64_t table_index);
    [[nodiscard]] Result<void> grow_reftable(uint64_t min_entries);
    [[nodiscard]] Result<uint64_t> allocate_clusters(uint64_t count);
    [[nodiscard]] Result<void> release_range(uint64_t host, uint64_t len);
    bool is_metadata(uint64_t host) const { return m_metadata.contains(host >> m_cluster_bits); }

    mutable std::mutex m_lock;
    std::string m_path;
    UniqueFd m_fd;
    ReadOnly m_read_only { ReadOnly::Yes };

    uint32_t m_version { 0 };
    uint32_t m_cluster_bits { 0 };
    uint64_t m_cluster_size { 0 };
    uint64_t m_l2_entries { 0 };
    uint64_t m_size { 0 };
    uint64_t m_l1_offset { 0 };
    uint64_t m_l1_used { 0 }; // entries the virtual size needs (<= m_l1.size())
    std::vector<uint64_t> m_l1;
    uint64_t m_reftable_offset { 0 };
    uint64_t m_reftable_clusters { 0 };
    std::vector<uint64_t> m_reftable;
    uint32_t m_refcount_order { 4 };
    uint64_t m_refblock_entries { 0 };
    uint32_t m_nb_snapshots { 0 };
    uint64_t m_incompatible { 0 };
    uint64_t m_autoclear { 0 };
    uint32_t m_header_length { 0 };
    uint64_t m_backing_offset { 0 };
    uint32_t m_backing_size { 0 };
    uint64_t m_file_end { 0 }; // where the next cluster is allocated (cluster-aligned, >= the file size at open)

    std::unordered_set<uint64_t> m_metadata; // host cluster indices holding metadata
    std::vector<CachedL2> m_l2_cache;
    uint64_t m_l2_cache_clock { 0 };
    uint64_t m_inflated_entry { 0 }; // the compressed L2 entry whose data m_inflated holds (0: none)
    std::vector<uint8_t> m_inflated;

    std::string m_backing_path;
    std::unique_ptr<BlockDevice> m_backing;
};

} // namespace hako::block
