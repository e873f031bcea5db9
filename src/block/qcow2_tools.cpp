// Qcow2Image's maintenance operations, for `hako img`: create (with a backing file), resize (grow) and check
// (refcounts recomputed from the tables and compared with the stored ones, as qemu-img check does).
#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "base/checked.h"
#include "block/qcow2.h"
#include "block/qcow2_format.h"

namespace hako::block {

using namespace qcow2;

Result<void> Qcow2Image::create(std::string const& path, uint64_t size, CreateOptions const& options)
{
    uint32_t const cluster_bits = options.cluster_bits;
    if (cluster_bits < MIN_CLUSTER_BITS || cluster_bits > MAX_CLUSTER_BITS)
        return Error(ErrorKind::InvalidArgument, fmt::format("qcow2 cluster_bits {} is outside 9..21", cluster_bits));
    uint64_t const cs = 1ull << cluster_bits;
    uint64_t const per_l1 = cs * (cs / 8);
    if (size > MAX_HOST_OFFSET || size % 512 != 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("qcow2 size {} is not a multiple of 512 up to 64 PiB", size));
    uint64_t const l1_entries = (size + per_l1 - 1) / per_l1;
    uint64_t const l1_clusters = std::max<uint64_t>(1, (l1_entries * 8 + cs - 1) / cs);
    uint64_t const refblock_entries = cs * 8 / 16;
    uint64_t const clusters = 3 + l1_clusters; // header, refcount table, refcount block, L1
    if (options.backing_file.size() > MAX_BACKING_NAME || options.backing_file.find('\0') != std::string::npos)
        return Error(ErrorKind::InvalidArgument, "qcow2 backing file name must be 1..1023 bytes without NUL");
    if (options.backing_file.empty() && !options.backing_format.empty())
        return Error(ErrorKind::InvalidArgument, "a qcow2 backing format needs a backing file");
    // Header, then the backing format extension (if any), the end extension, and the backing file name.
    uint64_t const ext_len = options.backing_format.empty() ? 0 : 8 + align_up(options.backing_format.size(), 8);
    uint64_t const name_offset = V3_MIN_HEADER_LENGTH + ext_len + 8;
    if (name_offset + options.backing_file.size() > cs)
        return Error(ErrorKind::InvalidArgument, "the qcow2 backing file name does not fit in the first cluster");
    if (l1_entries * 8 > MAX_L1_BYTES || clusters > refblock_entries)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("qcow2 size {} needs a larger cluster size than {}", size, cs));

    std::vector<uint8_t> img(static_cast<size_t>(clusters * cs), 0);
    put_be(img, H_MAGIC, 4, MAGIC);
    put_be(img, H_VERSION, 4, 3);
    put_be(img, H_CLUSTER_BITS, 4, cluster_bits);
    put_be(img, H_SIZE, 8, size);
    put_be(img, H_L1_SIZE, 4, l1_entries);
    put_be(img, H_L1_TABLE_OFFSET, 8, 3 * cs);
    put_be(img, H_REFCOUNT_TABLE_OFFSET, 8, cs);
    put_be(img, H_REFCOUNT_TABLE_CLUSTERS, 4, 1);
    put_be(img, H_REFCOUNT_ORDER, 4, 4);
    put_be(img, H_HEADER_LENGTH, 4, V3_MIN_HEADER_LENGTH);
    put_be(img, static_cast<size_t>(cs), 8, 2 * cs); // refcount table entry 0 -> the block in cluster 2
    for (uint64_t i = 0; i < clusters; ++i)
        put_be(img, static_cast<size_t>(2 * cs + 2 * i), 2, 1);
    size_t pos = V3_MIN_HEADER_LENGTH;
    if (!options.backing_format.empty()) {
        put_be(img, pos, 4, EXT_BACKING_FORMAT);
        put_be(img, pos + 4, 4, options.backing_format.size());
        std::copy(options.backing_format.begin(), options.backing_format.end(), img.begin() + static_cast<ptrdiff_t>(pos + 8));
        pos += static_cast<size_t>(ext_len);
    }
    put_be(img, pos, 8, 0); // end of extensions
    if (!options.backing_file.empty()) {
        put_be(img, H_BACKING_FILE_OFFSET, 8, name_offset);
        put_be(img, H_BACKING_FILE_SIZE, 4, options.backing_file.size());
        std::copy(options.backing_file.begin(), options.backing_file.end(), img.begin() + static_cast<ptrdiff_t>(name_offset));
    }

    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid())
        return Error::from_errno(errno == EEXIST ? ErrorKind::Busy : ErrorKind::Io, fmt::format("Cannot create {}", path));
    size_t done = 0;
    while (done < img.size()) {
        ssize_t n = ::pwrite(fd.get(), img.data() + done, img.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return Error::from_errno(ErrorKind::Io, fmt::format("Cannot write {}", path));
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot sync {}", path));
    return ok();
}

Result<void> Qcow2Image::resize(uint64_t new_size)
{
    std::lock_guard lock(m_lock);
    if (m_read_only == ReadOnly::Yes)
        return Error(ErrorKind::Permission, fmt::format("qcow2 image {} is open read-only", m_path));
    if (new_size % 512 != 0 || new_size > MAX_HOST_OFFSET)
        return Error(ErrorKind::InvalidArgument, fmt::format("qcow2 size {} is not a multiple of 512 up to 64 PiB", new_size));
    if (new_size < m_size)
        return Error(ErrorKind::Unsupported,
            fmt::format("qcow2 image {}: shrinking ({} to {} bytes) is not supported", m_path, m_size, new_size));
    uint64_t const per_l1 = m_cluster_size * m_l2_entries;
    uint64_t const need = (new_size + per_l1 - 1) / per_l1;
    if (need * 8 > MAX_L1_BYTES)
        return Error(ErrorKind::InvalidArgument, fmt::format("qcow2 size {} needs too large an L1 table", new_size));
    std::array<uint8_t, 24> fields {}; // size, crypt_method, l1_size, l1_table_offset: header bytes 24..47
    uint64_t l1_offset = m_l1_offset;
    uint64_t const old_l1_clusters = (m_l1.size() * 8 + m_cluster_size - 1) / m_cluster_size;
    std::vector<uint64_t> table = m_l1;
    if (need > m_l1.size()) {
        // A larger L1 table at the end of the file, durable before the header points at it; the old one is freed
        // once the header is.
        table.resize(need, 0);
        uint64_t const clusters = (need * 8 + m_cluster_size - 1) / m_cluster_size;
        l1_offset = TRY(allocate_clusters(clusters));
        auto raw = encode_table(table);
        raw.resize(static_cast<size_t>(clusters * m_cluster_size), 0);
        TRY(pwrite_full(l1_offset, raw));
        TRY(sync());
        for (uint64_t i = 0; i < clusters; ++i)
            m_metadata.insert((l1_offset >> m_cluster_bits) + i);
    }
    put_be(fields, 0, 8, new_size);
    put_be(fields, 12, 4, table.size());
    put_be(fields, 16, 8, l1_offset);
    TRY(pwrite_full(H_SIZE, fields));
    TRY(sync());
    if (l1_offset != m_l1_offset && old_l1_clusters > 0) {
        for (uint64_t i = 0; i < old_l1_clusters; ++i)
            m_metadata.erase((m_l1_offset >> m_cluster_bits) + i);
        TRY(release_range(m_l1_offset, old_l1_clusters * m_cluster_size));
        TRY(sync());
    }
    m_l1 = std::move(table);
    m_l1_offset = l1_offset;
    m_l1_used = need;
    m_size = new_size;
    return ok();
}

Result<Qcow2CheckReport> Qcow2Image::check()
{
    std::lock_guard lock(m_lock);
    if (m_nb_snapshots != 0)
        return Error(ErrorKind::Unsupported,
            fmt::format("qcow2 image {} has internal snapshots: check does not follow their tables", m_path));
    Qcow2CheckReport report;
    auto problem = [&report](uint64_t& counter, std::string message) {
        ++counter;
        if (report.messages.size() < Qcow2CheckReport::MAX_MESSAGES)
            report.messages.push_back(std::move(message));
    };
    uint64_t const cs = m_cluster_size;
    uint64_t const file_clusters = m_file_end / cs;
    if (file_clusters > (1ull << 28))
        return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {} is too large to check", m_path));
    std::vector<uint32_t> refs(static_cast<size_t>(file_clusters), 0);
    auto reference = [&](uint64_t host, uint64_t len, std::string_view what) {
        if (len == 0)
            return;
        if (host + len > m_file_end) {
            problem(report.corruptions, fmt::format("ERROR {} at {:#x} (+{}) is past the end of the file", what, host, len));
            return;
        }
        for (uint64_t c = host / cs; c <= (host + len - 1) / cs; ++c)
            ++refs[static_cast<size_t>(c)];
    };
    std::vector<std::pair<uint64_t, std::string>> want_copied; // clusters whose entry has COPIED set

    reference(0, cs, "header");
    reference(m_l1_offset, m_l1.size() * 8, "L1 table");
    reference(m_reftable_offset, m_reftable_clusters * cs, "refcount table");
    for (uint64_t e : m_reftable)
        if (e != 0)
            reference(e, cs, "refcount block");
    report.total_clusters = (m_size + cs - 1) / cs;
    for (size_t i = 0; i < m_l1.size(); ++i) {
        uint64_t const l2 = m_l1[i] & OFFSET_MASK;
        if (l2 == 0)
            continue;
        reference(l2, cs, "L2 table");
        if (m_l1[i] & OFLAG_COPIED)
            want_copied.emplace_back(l2, "L2 table");
        auto entries = l2_table(l2);
        if (!entries) {
            problem(report.corruptions, fmt::format("ERROR L2 table at {:#x}: {}", l2, entries.error().message()));
            continue;
        }
        std::vector<uint64_t> const l2e = **entries; // copy: decode may touch the cache
        for (size_t j = 0; j < l2e.size(); ++j) {
            if (l2e[j] == 0)
                continue;
            uint64_t const guest = (uint64_t { i } * m_l2_entries + j) * cs;
            auto m = decode_l2_entry(guest, l2e[j]);
            if (!m) {
                problem(report.corruptions, fmt::format("ERROR {}", m.error().message()));
                continue;
            }
            switch (m->kind) {
            case Mapping::Kind::Data:
                ++report.allocated_clusters;
                reference(m->host, cs, "data cluster");
                if (m->copied)
                    want_copied.emplace_back(m->host, "data cluster");
                break;
            case Mapping::Kind::Zero:
                if (m->host != 0) {
                    reference(m->host, cs, "preallocated zero cluster");
                    if (m->copied)
                        want_copied.emplace_back(m->host, "zero cluster");
                }
                break;
            case Mapping::Kind::Compressed:
                ++report.allocated_clusters;
                ++report.compressed_clusters;
                reference(m->host, m->compressed_len, "compressed data");
                break;
            case Mapping::Kind::Unallocated: break;
            }
        }
    }

    // Stored refcounts against the references found, for every cluster of the file (as qemu-img check: a refcount
    // past the end of the file describes no cluster and is not counted).
    for (uint64_t c = 0; c < file_clusters; ++c) {
        uint64_t const stored = TRY(get_refcount(c * cs));
        uint64_t const found = refs[static_cast<size_t>(c)];
        if (stored == found)
            continue;
        if (stored < found)
            problem(report.corruptions,
                fmt::format("ERROR cluster {} refcount={} reference={}", c, stored, found));
        else
            problem(report.leaks, fmt::format("Leaked cluster {} refcount={} reference={}", c, stored, found));
    }
    for (auto const& [host, what] : want_copied) {
        uint64_t const stored = TRY(get_refcount(host));
        if (stored != 1)
            problem(report.corruptions,
                fmt::format("ERROR OFLAG_COPIED {} at {:#x}: refcount={}", what, host, stored));
    }
    report.image_end = m_file_end;
    return report;
}

} // namespace hako::block
