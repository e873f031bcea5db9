#include "block/qcow2.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "base/checked.h"
#include "block/qcow2_format.h"
#include "block/image_lock.h"

namespace hako::block {

using namespace qcow2;

namespace {

std::string directory_of(std::string const& path)
{
    auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    if (slash == 0)
        return "/";
    return path.substr(0, slash);
}

/// Copies `len` bytes starting `skip` bytes into the concatenation of `bufs` into `out`.
void gather(std::span<std::span<uint8_t const> const> bufs, uint64_t skip, std::span<uint8_t> out)
{
    size_t done = 0;
    for (auto b : bufs) {
        if (done == out.size())
            break;
        if (skip >= b.size()) {
            skip -= b.size();
            continue;
        }
        size_t n = std::min(b.size() - static_cast<size_t>(skip), out.size() - done);
        std::memcpy(out.data() + done, b.data() + skip, n);
        done += n;
        skip = 0;
    }
}

} // namespace

/// L2 tables being changed by one request, applied together by commit().
struct Qcow2Image::WriteBatch {
    struct Table {
        uint64_t offset { 0 };
        bool is_new { false };
        std::vector<uint64_t> entries;
        size_t dirty_lo { SIZE_MAX };
        size_t dirty_hi { 0 };
        void set(size_t i, uint64_t v)
        {
            entries[i] = v;
            dirty_lo = std::min(dirty_lo, i);
            dirty_hi = std::max(dirty_hi, i + 1);
        }
    };
    std::map<uint64_t, Table> tables;                   // by L1 index
    bool new_data { false };                            // clusters written that entries will reference
    std::vector<std::pair<uint64_t, uint64_t>> frees;   // host ranges to release after the entries are durable
};

Qcow2Image::~Qcow2Image() = default;

Error Qcow2Image::corrupt(std::string_view what) const
{
    return Error(ErrorKind::Format, fmt::format("qcow2 image {} is corrupt: {} (see qemu-img check)", m_path, what));
}

// ---------------------------------------------------------------------------------------------------------------
// Opening

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::open(std::string const& path, ReadOnly ro)
{
    BackingChain chain;
    return open(path, ro, chain);
}

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::open(std::string const& path, ReadOnly ro, BackingChain& chain)
{
    if (chain.canonical_paths.size() >= BackingChain::MAX_DEPTH)
        return Error(ErrorKind::Unsupported,
            fmt::format("qcow2 image {}: the backing chain is deeper than {} images", path, BackingChain::MAX_DEPTH));

    std::unique_ptr<Qcow2Image> img(new Qcow2Image());
    img->m_path = path;
    img->m_read_only = ro;
    int const flags = (ro == ReadOnly::Yes ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    img->m_fd = UniqueFd(::open(path.c_str(), flags));
    if (!img->m_fd.valid()) {
        int err = errno;
        ErrorKind kind = err == ENOENT || err == ENOTDIR ? ErrorKind::NotFound
            : err == EACCES || err == EPERM || err == EROFS ? ErrorKind::Permission
                                                            : ErrorKind::Io;
        return Error::from_errno(kind, fmt::format("Cannot open disk image {}", path), err);
    }
    struct stat st {};
    if (::fstat(img->m_fd.get(), &st) < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot stat disk image {}", path));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return Error(ErrorKind::Unsupported,
            fmt::format("Disk image {} is neither a regular file nor a block device", path));

    // The same lock bytes as a raw DiskImage (image_lock.h).
    TRY(lock_image(img->m_fd.get(), path, ro));

    char resolved[PATH_MAX];
    std::string canonical = ::realpath(path.c_str(), resolved) ? std::string(resolved) : path;
    if (std::find(chain.canonical_paths.begin(), chain.canonical_paths.end(), canonical) != chain.canonical_paths.end())
        return Error(ErrorKind::Format, fmt::format("qcow2 image {}: the backing chain loops back to {}", path, canonical));
    chain.canonical_paths.push_back(canonical);

    TRY(img->load(chain));
    return img;
}

Result<void> Qcow2Image::load(BackingChain& chain)
{
    off_t end = ::lseek(m_fd.get(), 0, SEEK_END);
    if (end < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot find the size of disk image {}", m_path));
    auto file_size = static_cast<uint64_t>(end);
    if (file_size < V2_HEADER_LENGTH)
        return Error(ErrorKind::Format,
            fmt::format("qcow2 image {} is {} bytes: too short for a qcow2 header (truncated?)", m_path, file_size));

    std::array<uint8_t, V3_MIN_HEADER_LENGTH + 8> hdr {};
    TRY(pread_zero_fill(0, hdr));
    if (be32(hdr, H_MAGIC) != MAGIC)
        return Error(ErrorKind::Format, fmt::format("Disk image {} is not qcow2 (no QFI\\xfb magic)", m_path));
    m_version = be32(hdr, H_VERSION);
    if (m_version != 2 && m_version != 3)
        return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {}: version {} is not supported (2 and 3 are)", m_path, m_version));

    m_cluster_bits = be32(hdr, H_CLUSTER_BITS);
    if (m_cluster_bits < MIN_CLUSTER_BITS || m_cluster_bits > MAX_CLUSTER_BITS)
        return corrupt(fmt::format("cluster_bits {} is outside 9..21", m_cluster_bits));
    m_cluster_size = 1ull << m_cluster_bits;
    m_l2_entries = m_cluster_size / 8;
    m_file_end = align_up(file_size, m_cluster_size);
    if (m_file_end > MAX_HOST_OFFSET)
        return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {} is larger than 64 PiB", m_path));

    if (m_version == 2) {
        m_header_length = V2_HEADER_LENGTH;
        m_refcount_order = 4;
    } else {
        if (file_size < V3_MIN_HEADER_LENGTH)
            return Error(ErrorKind::Format, fmt::format("qcow2 image {}: truncated version 3 header", m_path));
        m_incompatible = be64(hdr, H_INCOMPATIBLE_FEATURES);
        m_autoclear = be64(hdr, H_AUTOCLEAR_FEATURES);
        (void)be64(hdr, H_COMPATIBLE_FEATURES); // lazy refcounts: we always update refcounts eagerly
        m_refcount_order = be32(hdr, H_REFCOUNT_ORDER);
        m_header_length = be32(hdr, H_HEADER_LENGTH);
        if (m_header_length < V3_MIN_HEADER_LENGTH || m_header_length % 8 != 0 || m_header_length > m_cluster_size
            || m_header_length > file_size)
            return corrupt(fmt::format("header_length {} is invalid", m_header_length));
        if (m_refcount_order > 6)
            return corrupt(fmt::format("refcount_order {} is above 6", m_refcount_order));
        if (m_incompatible & INCOMPAT_DATA_FILE)
            return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {} uses an external data file: not supported", m_path));
        if (m_incompatible & INCOMPAT_COMPRESSION)
            return Error(ErrorKind::Unsupported,
                fmt::format("qcow2 image {} uses a non-zlib compression type (zstd): not supported", m_path));
        if (m_incompatible & INCOMPAT_EXTL2)
            return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {} uses extended L2 entries: not supported", m_path));
        if (uint64_t unknown = m_incompatible & ~INCOMPAT_KNOWN)
            return Error(ErrorKind::Unsupported,
                fmt::format("qcow2 image {} has unknown incompatible features {:#x}", m_path, unknown));
        if (m_header_length > H_COMPRESSION_TYPE && hdr[H_COMPRESSION_TYPE] != 0)
            return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {}: compression type {} is not supported",
                m_path, hdr[H_COMPRESSION_TYPE]));
        if (m_read_only == ReadOnly::No && (m_incompatible & INCOMPAT_CORRUPT))
            return Error(ErrorKind::Unsupported,
                fmt::format("qcow2 image {} is marked corrupt: it can only be opened read-only (repair it with "
                            "qemu-img check -r all)", m_path));
        if (m_read_only == ReadOnly::No && (m_incompatible & INCOMPAT_DIRTY))
            return Error(ErrorKind::Unsupported,
                fmt::format("qcow2 image {} is marked dirty (lazy refcounts not written back): it can only be "
                            "opened read-only (repair it with qemu-img check -r all)", m_path));
    }
    m_refblock_entries = (m_cluster_size * 8) >> m_refcount_order;

    if (uint32_t crypt = be32(hdr, H_CRYPT_METHOD); crypt != 0)
        return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {} is encrypted (method {}): not supported", m_path, crypt));

    m_size = be64(hdr, H_SIZE);
    m_nb_snapshots = be32(hdr, H_NB_SNAPSHOTS);
    if (m_read_only == ReadOnly::No && m_nb_snapshots != 0)
        return Error(ErrorKind::Unsupported,
            fmt::format("qcow2 image {} has {} internal snapshots: it can only be opened read-only", m_path, m_nb_snapshots));

    // The first cluster: header extensions and the backing file name.
    std::vector<uint8_t> first(static_cast<size_t>(m_cluster_size));
    TRY(pread_zero_fill(0, first));
    uint64_t const first_end = std::min(m_cluster_size, file_size);
    std::string backing_format;
    for (uint64_t pos = m_header_length; pos + 8 <= first_end;) {
        uint32_t type = be32(first, static_cast<size_t>(pos));
        uint32_t len = be32(first, static_cast<size_t>(pos + 4));
        if (type == EXT_END)
            break;
        uint64_t data = pos + 8;
        if (data + len > first_end)
            return corrupt(fmt::format("header extension {:#x} runs past the first cluster", type));
        if (type == EXT_BACKING_FORMAT)
            backing_format.assign(first.begin() + static_cast<ptrdiff_t>(data), first.begin() + static_cast<ptrdiff_t>(data + len));
        else if (type == EXT_DATA_FILE)
            return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {} names an external data file: not supported", m_path));
        pos = align_up(data + len, 8);
    }

    std::string backing_name;
    m_backing_offset = be64(hdr, H_BACKING_FILE_OFFSET);
    if (m_backing_offset != 0) {
        m_backing_size = be32(hdr, H_BACKING_FILE_SIZE);
        if (m_backing_size == 0 || m_backing_size > MAX_BACKING_NAME)
            return corrupt(fmt::format("backing file name length {} is outside 1..1023", m_backing_size));
        if (!range_within(m_backing_offset, m_backing_size, first_end))
            return corrupt("the backing file name is not inside the first cluster");
        backing_name.assign(first.begin() + static_cast<ptrdiff_t>(m_backing_offset),
            first.begin() + static_cast<ptrdiff_t>(m_backing_offset + m_backing_size));
        if (backing_name.find('\0') != std::string::npos)
            return corrupt("the backing file name contains a NUL byte");
    }

    TRY(load_tables());

    if (m_read_only == ReadOnly::No && m_version == 3 && m_autoclear != 0) {
        // We do not maintain what the autoclear bits promise (bitmaps): clear them before the first write.
        std::array<uint8_t, 8> zero {};
        TRY(pwrite_full(H_AUTOCLEAR_FEATURES, zero));
        TRY(sync());
        m_autoclear = 0;
    }

    if (!backing_name.empty())
        TRY(open_backing(backing_name, backing_format, chain));
    return ok();
}

Result<void> Qcow2Image::load_tables()
{
    std::array<uint8_t, V2_HEADER_LENGTH> hdr {};
    TRY(pread_zero_fill(0, hdr));
    uint64_t const cs = m_cluster_size;

    // L1 table: large enough for the virtual size, at most 32 MiB, inside the file.
    uint64_t const bytes_per_l1 = cs * m_l2_entries;
    uint32_t const l1_size = be32(hdr, H_L1_SIZE);
    m_l1_offset = be64(hdr, H_L1_TABLE_OFFSET);
    if (m_size > MAX_HOST_OFFSET * 32)
        return corrupt(fmt::format("virtual size {} is absurdly large", m_size));
    m_l1_used = (m_size + bytes_per_l1 - 1) / bytes_per_l1;
    if (l1_size < m_l1_used)
        return corrupt(fmt::format("L1 table of {} entries is too small for a virtual size of {} bytes", l1_size, m_size));
    if (uint64_t{l1_size} * 8 > MAX_L1_BYTES)
        return Error(ErrorKind::Unsupported, fmt::format("qcow2 image {}: L1 table of {} entries is over 32 MiB", m_path, l1_size));
    if (l1_size > 0) {
        if (m_l1_offset % cs != 0 || m_l1_offset == 0)
            return corrupt(fmt::format("L1 table offset {:#x} is not a cluster boundary after the header", m_l1_offset));
        if (!range_within(m_l1_offset, uint64_t{l1_size} * 8, m_file_end))
            return corrupt(fmt::format("L1 table at {:#x} ({} entries) runs past the end of the file", m_l1_offset, l1_size));
        std::vector<uint8_t> raw(size_t{l1_size} * 8);
        TRY(pread_zero_fill(m_l1_offset, raw));
        m_l1 = decode_table(raw);
    }

    // Refcount table: at most 8 MiB, inside the file, not overlapping the header or the L1 table.
    m_reftable_offset = be64(hdr, H_REFCOUNT_TABLE_OFFSET);
    m_reftable_clusters = be32(hdr, H_REFCOUNT_TABLE_CLUSTERS);
    if (m_reftable_clusters == 0 || m_reftable_clusters * cs > MAX_REFTABLE_BYTES)
        return corrupt(fmt::format("refcount table of {} clusters is empty or over 8 MiB", m_reftable_clusters));
    if (m_reftable_offset % cs != 0 || m_reftable_offset == 0
        || !range_within(m_reftable_offset, m_reftable_clusters * cs, m_file_end))
        return corrupt(fmt::format("refcount table offset {:#x} is unaligned or past the end of the file", m_reftable_offset));
    {
        std::vector<uint8_t> raw(static_cast<size_t>(m_reftable_clusters * cs));
        TRY(pread_zero_fill(m_reftable_offset, raw));
        m_reftable = decode_table(raw);
    }

    // Metadata clusters: a data write must never land on one.
    m_metadata.insert(0);
    uint64_t const l1_clusters = (m_l1.size() * 8 + cs - 1) / cs;
    for (uint64_t i = 0; i < l1_clusters; ++i)
        m_metadata.insert((m_l1_offset >> m_cluster_bits) + i);
    for (uint64_t i = 0; i < m_reftable_clusters; ++i) {
        uint64_t c = (m_reftable_offset >> m_cluster_bits) + i;
        if (m_metadata.contains(c))
            return corrupt("the refcount table overlaps the header or the L1 table");
        m_metadata.insert(c);
    }
    for (size_t i = 0; i < m_reftable.size(); ++i) {
        uint64_t e = m_reftable[i];
        if (e == 0)
            continue;
        if ((e & REFT_RESERVED) != 0 || !range_within(e, cs, m_file_end))
            return corrupt(fmt::format("refcount table entry {} ({:#x}) is unaligned or past the end of the file", i, e));
        if (!m_metadata.insert(e >> m_cluster_bits).second)
            return corrupt(fmt::format("refcount block {:#x} overlaps other metadata", e));
    }
    for (size_t i = 0; i < m_l1.size(); ++i) {
        uint64_t e = m_l1[i];
        if ((e & L1E_RESERVED) != 0)
            return corrupt(fmt::format("L1 entry {} ({:#x}) has reserved bits set", i, e));
        uint64_t off = e & OFFSET_MASK;
        if (off == 0)
            continue;
        if (off + cs > m_file_end)
            return corrupt(fmt::format("L1 entry {} points past the end of the file ({:#x})", i, off));
        if (!m_metadata.insert(off >> m_cluster_bits).second)
            return corrupt(fmt::format("L2 table {:#x} (L1 entry {}) overlaps other metadata", off, i));
    }
    return ok();
}

Result<void> Qcow2Image::open_backing(std::string const& name, std::string const& format, BackingChain& chain)
{
    m_backing_path = name.front() == '/' ? name : directory_of(m_path) + "/" + name;
    std::optional<ImageFormat> fmt_given;
    if (!format.empty()) {
        auto f = parse_image_format(format);
        if (!f)
            return Error(ErrorKind::Unsupported,
                fmt::format("qcow2 image {}: backing file {} has format '{}' (hako reads raw and qcow2)", m_path, m_backing_path, format));
        fmt_given = *f;
    }
    // Without a recorded format the probe policy of open_image() applies: raw only, qcow2 magic refused.
    auto backing = open_image(m_backing_path, fmt_given, ReadOnly::Yes, chain);
    if (!backing)
        return backing.error().with_context(fmt::format("qcow2 image {}: backing file", m_path));
    m_backing = std::move(*backing);
    return ok();
}

// ---------------------------------------------------------------------------------------------------------------
// File I/O

Result<void> Qcow2Image::pread_full(uint64_t offset, std::span<uint8_t> out) const
{
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(m_fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::from_errno(ErrorKind::Io, fmt::format("qcow2 image {}: read at {:#x} failed", m_path, offset + done));
        }
        if (n == 0)
            return Error(ErrorKind::Io, fmt::format("qcow2 image {}: unexpected end of file at {:#x}", m_path, offset + done));
        done += static_cast<size_t>(n);
    }
    return ok();
}

Result<void> Qcow2Image::pread_zero_fill(uint64_t offset, std::span<uint8_t> out) const
{
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(m_fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::from_errno(ErrorKind::Io, fmt::format("qcow2 image {}: read at {:#x} failed", m_path, offset + done));
        }
        if (n == 0) {
            std::fill(out.begin() + static_cast<ptrdiff_t>(done), out.end(), uint8_t { 0 });
            break;
        }
        done += static_cast<size_t>(n);
    }
    return ok();
}

Result<void> Qcow2Image::pwrite_full(uint64_t offset, std::span<uint8_t const> in)
{
    if (!range_within(offset, in.size(), m_file_end))
        return Error(ErrorKind::Io, fmt::format("qcow2 image {}: refused a write at {:#x} past the allocated end", m_path, offset));
    size_t done = 0;
    while (done < in.size()) {
        ssize_t n = ::pwrite(m_fd.get(), in.data() + done, in.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::from_errno(ErrorKind::Io, fmt::format("qcow2 image {}: write at {:#x} failed", m_path, offset + done));
        }
        done += static_cast<size_t>(n);
    }
    return ok();
}

Result<void> Qcow2Image::sync()
{
    while (::fdatasync(m_fd.get()) < 0) {
        if (errno != EINTR)
            return Error::from_errno(ErrorKind::Io, fmt::format("qcow2 image {}: fdatasync failed", m_path));
    }
    return ok();
}

// ---------------------------------------------------------------------------------------------------------------
// Mapping and reads

Result<Qcow2Image::Mapping> Qcow2Image::decode_l2_entry(uint64_t guest, uint64_t entry) const
{
    auto bad = [&](std::string_view why) {
        return Error(ErrorKind::Io,
            fmt::format("qcow2 image {}: L2 entry {:#x} for guest offset {:#x} is corrupt: {}", m_path, entry, guest, why));
    };
    Mapping m;
    m.entry = entry;
    m.copied = (entry & OFLAG_COPIED) != 0;
    if (entry & OFLAG_COMPRESSED) {
        if (m.copied)
            return bad("compressed with the COPIED flag");
        uint32_t const x = 62 - (m_cluster_bits - 8);
        m.kind = Mapping::Kind::Compressed;
        m.host = entry & ((1ull << x) - 1);
        uint64_t sectors = ((entry & ~(OFLAG_COPIED | OFLAG_COMPRESSED)) >> x) + 1;
        m.compressed_len = sectors * 512 - (m.host & 511);
        if (m.host >= MAX_HOST_OFFSET || m.host + m.compressed_len > m_file_end + 512)
            return bad("compressed data past the end of the file");
        return m;
    }
    if (entry & L2E_STD_RESERVED)
        return bad("reserved bits set");
    m.host = entry & OFFSET_MASK;
    if (m.host % m_cluster_size != 0)
        return bad("host cluster offset not aligned to a cluster");
    if (entry & OFLAG_ZERO) {
        if (m_version < 3)
            return bad("zero flag in a version 2 image");
        m.kind = Mapping::Kind::Zero;
        return m;
    }
    if (m.host == 0) {
        if (m.copied)
            return bad("COPIED flag on an unallocated cluster");
        m.kind = Mapping::Kind::Unallocated;
        return m;
    }
    if (m.host + m_cluster_size > m_file_end)
        return bad("data cluster past the end of the file");
    m.kind = Mapping::Kind::Data;
    return m;
}

Result<std::vector<uint64_t> const*> Qcow2Image::l2_table(uint64_t l2_offset)
{
    ++m_l2_cache_clock;
    for (auto& c : m_l2_cache) {
        if (c.offset == l2_offset) {
            c.last_use = m_l2_cache_clock;
            return &c.entries;
        }
    }
    std::vector<uint8_t> raw(static_cast<size_t>(m_cluster_size));
    TRY(pread_zero_fill(l2_offset, raw));
    l2_cache_store(l2_offset, decode_table(raw));
    for (auto& c : m_l2_cache)
        if (c.offset == l2_offset)
            return &c.entries;
    return Error(ErrorKind::Io, "qcow2: L2 cache lost a table"); // unreachable
}

void Qcow2Image::l2_cache_store(uint64_t l2_offset, std::vector<uint64_t> entries)
{
    ++m_l2_cache_clock;
    for (auto& c : m_l2_cache) {
        if (c.offset == l2_offset) {
            c.entries = std::move(entries);
            c.last_use = m_l2_cache_clock;
            return;
        }
    }
    size_t const max_tables = std::max<size_t>(2, static_cast<size_t>(L2_CACHE_BYTES / m_cluster_size));
    if (m_l2_cache.size() >= max_tables) {
        auto oldest = std::min_element(m_l2_cache.begin(), m_l2_cache.end(),
            [](CachedL2 const& a, CachedL2 const& b) { return a.last_use < b.last_use; });
        m_l2_cache.erase(oldest);
    }
    m_l2_cache.push_back(CachedL2 { l2_offset, std::move(entries), m_l2_cache_clock });
}

Result<Qcow2Image::Mapping> Qcow2Image::lookup(uint64_t guest)
{
    uint64_t const cluster = guest >> m_cluster_bits;
    uint64_t const l1_index = cluster / m_l2_entries;
    if (l1_index >= m_l1.size())
        return Mapping {};
    uint64_t const l2_offset = m_l1[l1_index] & OFFSET_MASK;
    if (l2_offset == 0)
        return Mapping {};
    auto const* table = TRY(l2_table(l2_offset));
    return decode_l2_entry(guest, (*table)[cluster % m_l2_entries]);
}

Result<void> Qcow2Image::read_backing(uint64_t guest, std::span<uint8_t> out)
{
    size_t n = 0;
    if (m_backing && guest < m_backing->size_bytes())
        n = static_cast<size_t>(std::min<uint64_t>(out.size(), m_backing->size_bytes() - guest));
    if (n > 0) {
        std::span<uint8_t> const one[] = { out.first(n) };
        TRY(m_backing->read_vectored(guest, one));
    }
    std::fill(out.begin() + static_cast<ptrdiff_t>(n), out.end(), uint8_t { 0 });
    return ok();
}

Result<void> Qcow2Image::inflate_cluster(uint64_t guest, Mapping const& m)
{
    if (m_inflated_entry == m.entry && !m_inflated.empty())
        return ok();
    m_inflated_entry = 0;
    std::vector<uint8_t> in(static_cast<size_t>(m.compressed_len));
    TRY(pread_zero_fill(m.host, in));
    m_inflated.assign(static_cast<size_t>(m_cluster_size), 0);

    z_stream zs {};
    if (inflateInit2(&zs, -15) != Z_OK) // raw deflate; the largest window accepts any smaller one qcow2 writers use
        return Error(ErrorKind::Io, "qcow2: inflateInit2 failed");
    zs.next_in = in.data();
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = m_inflated.data();
    zs.avail_out = static_cast<uInt>(m_inflated.size());
    int rc = inflate(&zs, Z_FINISH);
    bool const full = zs.avail_out == 0;
    inflateEnd(&zs);
    if (!full || (rc != Z_STREAM_END && rc != Z_OK && rc != Z_BUF_ERROR))
        return Error(ErrorKind::Io,
            fmt::format("qcow2 image {}: compressed cluster for guest offset {:#x} does not inflate to a cluster", m_path, guest));
    m_inflated_entry = m.entry;
    return ok();
}

Result<void> Qcow2Image::read_cluster_part(uint64_t guest, std::span<uint8_t> out)
{
    uint64_t const in_cluster = guest & (m_cluster_size - 1);
    Mapping m = TRY(lookup(guest));
    switch (m.kind) {
    case Mapping::Kind::Unallocated:
        return read_backing(guest, out);
    case Mapping::Kind::Zero:
        std::fill(out.begin(), out.end(), uint8_t { 0 });
        return ok();
    case Mapping::Kind::Data:
        return pread_zero_fill(m.host + in_cluster, out);
    case Mapping::Kind::Compressed:
        TRY(inflate_cluster(guest, m));
        std::memcpy(out.data(), m_inflated.data() + in_cluster, out.size());
        return ok();
    }
    return ok();
}

Result<void> Qcow2Image::check_request(uint64_t offset, uint64_t len, std::string_view what, bool write) const
{
    if (write && m_read_only == ReadOnly::Yes)
        return Error(ErrorKind::Permission, fmt::format("Disk image {} is read-only: {} refused", m_path, what));
    if (!range_within(offset, len, m_size))
        return Error(ErrorKind::OutOfRange,
            fmt::format("Disk image {}: {} of {} bytes at offset {} is outside the image ({} bytes)", m_path, what, len,
                offset, m_size));
    return ok();
}

Result<void> Qcow2Image::read_vectored(uint64_t offset, std::span<std::span<uint8_t> const> bufs)
{
    uint64_t total = 0;
    for (auto b : bufs)
        total += b.size();
    TRY(check_request(offset, total, "read", false));
    std::lock_guard guard(m_lock);
    uint64_t pos = offset;
    for (auto b : bufs) {
        size_t done = 0;
        while (done < b.size()) {
            uint64_t room = m_cluster_size - (pos & (m_cluster_size - 1));
            size_t n = static_cast<size_t>(std::min<uint64_t>(room, b.size() - done));
            TRY(read_cluster_part(pos, b.subspan(done, n)));
            done += n;
            pos += n;
        }
    }
    return ok();
}

Result<void> Qcow2Image::read_at(uint64_t offset, std::span<uint8_t> out)
{
    std::span<uint8_t> const one[] = { out };
    return read_vectored(offset, one);
}

Result<void> Qcow2Image::write_at(uint64_t offset, std::span<uint8_t const> in)
{
    std::span<uint8_t const> const one[] = { in };
    return write_vectored(offset, one);
}

// ---------------------------------------------------------------------------------------------------------------
// Writes

Result<size_t> Qcow2Image::batch_table(uint64_t guest, WriteBatch& batch)
{
    uint64_t const l1_index = (guest >> m_cluster_bits) / m_l2_entries;
    if (batch.tables.contains(l1_index))
        return static_cast<size_t>((guest >> m_cluster_bits) % m_l2_entries);
    if (l1_index >= m_l1.size())
        return Error(ErrorKind::Io, fmt::format("qcow2 image {}: guest offset {:#x} is past the L1 table", m_path, guest));
    WriteBatch::Table t;
    uint64_t const l1e = m_l1[l1_index];
    if ((l1e & OFFSET_MASK) != 0) {
        if (!(l1e & OFLAG_COPIED))
            return Error(ErrorKind::Io,
                fmt::format("qcow2 image {}: L2 table {:#x} is shared (refcount above one): writing it is not supported",
                    m_path, l1e & OFFSET_MASK));
        t.offset = l1e & OFFSET_MASK;
        t.entries = *TRY(l2_table(t.offset));
    } else {
        t.offset = TRY(allocate_clusters(1));
        t.is_new = true;
        t.entries.assign(static_cast<size_t>(m_l2_entries), 0);
        m_metadata.insert(t.offset >> m_cluster_bits);
    }
    batch.tables.emplace(l1_index, std::move(t));
    return static_cast<size_t>((guest >> m_cluster_bits) % m_l2_entries);
}

Result<void> Qcow2Image::write_cluster_part(uint64_t guest, std::span<uint8_t const> data, WriteBatch& batch)
{
    uint64_t const in_cluster = guest & (m_cluster_size - 1);
    uint64_t const cluster_start = guest - in_cluster;
    uint64_t const l1_index = (guest >> m_cluster_bits) / m_l2_entries;

    // Overwriting an allocated cluster we own needs no metadata change at all.
    {
        Mapping m = TRY(lookup(guest));
        bool const in_batch = batch.tables.contains(l1_index);
        if (!in_batch && m.kind == Mapping::Kind::Data && m.copied) {
            if (is_metadata(m.host))
                return Error(ErrorKind::Io,
                    fmt::format("qcow2 image {}: L2 entry for guest offset {:#x} points at metadata ({:#x}): write refused",
                        m_path, guest, m.host));
            return pwrite_full(m.host + in_cluster, data);
        }
    }

    size_t const index = TRY(batch_table(guest, batch));
    auto& table = batch.tables.at(l1_index);
    Mapping m = TRY(decode_l2_entry(guest, table.entries[index]));
    if (m.kind == Mapping::Kind::Data && m.copied) {
        if (is_metadata(m.host))
            return Error(ErrorKind::Io, fmt::format("qcow2 image {}: write to metadata at {:#x} refused", m_path, m.host));
        return pwrite_full(m.host + in_cluster, data);
    }

    // A new cluster (or a preallocated zero cluster we own): its full contents are written before any entry
    // points at it.
    std::vector<uint8_t> buf;
    std::span<uint8_t const> full = data;
    if (data.size() != m_cluster_size) {
        buf.assign(static_cast<size_t>(m_cluster_size), 0);
        switch (m.kind) {
        case Mapping::Kind::Unallocated:
            TRY(read_backing(cluster_start, buf));
            break;
        case Mapping::Kind::Compressed:
            TRY(inflate_cluster(guest, m));
            buf = m_inflated;
            break;
        case Mapping::Kind::Data: // not COPIED: shared with a snapshot or inconsistent; copy it
            TRY(pread_zero_fill(m.host, buf));
            break;
        case Mapping::Kind::Zero:
            break;
        }
        std::memcpy(buf.data() + in_cluster, data.data(), data.size());
        full = buf;
    }
    uint64_t host = 0;
    if (m.kind == Mapping::Kind::Zero && m.copied && m.host != 0 && !is_metadata(m.host)) {
        host = m.host; // reuse the preallocation
    } else {
        host = TRY(allocate_clusters(1));
    }
    TRY(pwrite_full(host, full));
    batch.new_data = true;
    table.set(index, host | OFLAG_COPIED);
    if (m.kind == Mapping::Kind::Compressed)
        batch.frees.emplace_back(m.host & ~uint64_t { 511 }, m.compressed_len + (m.host & 511));
    return ok();
}

Result<void> Qcow2Image::commit(WriteBatch& batch)
{
    bool any_new_table = false;
    for (auto& [l1_index, t] : batch.tables) {
        if (t.is_new) {
            TRY(pwrite_full(t.offset, encode_table(t.entries)));
            any_new_table = true;
        }
    }
    // Data and new L2 tables reach the disk before any entry that references them.
    if (batch.new_data || any_new_table)
        TRY(sync());
    for (auto& [l1_index, t] : batch.tables) {
        if (!t.is_new && t.dirty_lo < t.dirty_hi) {
            auto raw = encode_table(std::span<uint64_t const>(t.entries).subspan(t.dirty_lo, t.dirty_hi - t.dirty_lo));
            TRY(pwrite_full(t.offset + t.dirty_lo * 8, raw));
        }
        if (t.is_new) {
            uint64_t const l1e = t.offset | OFLAG_COPIED;
            std::array<uint8_t, 8> raw {};
            put_be(raw, 0, 8, l1e);
            TRY(pwrite_full(m_l1_offset + l1_index * 8, raw));
            m_l1[l1_index] = l1e;
        }
        l2_cache_store(t.offset, std::move(t.entries));
    }
    batch.tables.clear();
    batch.new_data = false;
    if (!batch.frees.empty()) {
        // The entries that pointed at these clusters are durable before their refcounts drop.
        TRY(sync());
        for (auto [host, len] : batch.frees)
            TRY(release_range(host, len));
        batch.frees.clear();
    }
    return ok();
}

Result<void> Qcow2Image::write_vectored(uint64_t offset, std::span<std::span<uint8_t const> const> bufs)
{
    uint64_t total = 0;
    for (auto b : bufs)
        total += b.size();
    TRY(check_request(offset, total, "write", true));
    std::lock_guard guard(m_lock);
    WriteBatch batch;
    std::vector<uint8_t> piece(static_cast<size_t>(std::min<uint64_t>(total, m_cluster_size)));
    for (uint64_t done = 0; done < total;) {
        uint64_t const pos = offset + done;
        uint64_t const room = m_cluster_size - (pos & (m_cluster_size - 1));
        size_t const n = static_cast<size_t>(std::min<uint64_t>(room, total - done));
        std::span<uint8_t> chunk(piece.data(), n);
        gather(bufs, done, chunk);
        TRY(write_cluster_part(pos, chunk, batch));
        if (batch.tables.size() >= MAX_BATCH_TABLES)
            TRY(commit(batch));
        done += n;
    }
    return commit(batch);
}

Result<void> Qcow2Image::flush()
{
    std::lock_guard guard(m_lock);
    return sync();
}

Result<bool> Qcow2Image::zero_cluster(uint64_t guest, ZeroMode mode, WriteBatch& batch)
{
    Mapping m = TRY(lookup(guest));
    uint64_t const l1_index = (guest >> m_cluster_bits) / m_l2_entries;
    if (batch.tables.contains(l1_index)) {
        auto const& t = batch.tables.at(l1_index);
        m = TRY(decode_l2_entry(guest, t.entries[static_cast<size_t>((guest >> m_cluster_bits) % m_l2_entries)]));
    }
    if (m.kind == Mapping::Kind::Zero && !(mode == ZeroMode::ZeroUnmap && m.host != 0))
        return true; // already reads as zeros
    if (m.kind == Mapping::Kind::Unallocated && !m_backing)
        return true;
    if (m_version < 3 && m_backing) {
        // No zero flag: only real zeros hide the backing file.
        if (mode == ZeroMode::Discard)
            return false;
        std::vector<uint8_t> zeros(static_cast<size_t>(m_cluster_size), 0);
        TRY(write_cluster_part(guest, zeros, batch));
        return true;
    }
    size_t const index = TRY(batch_table(guest, batch));
    auto& table = batch.tables.at(l1_index);
    uint64_t entry = 0;
    bool const keep = mode == ZeroMode::ZeroKeep && m.kind == Mapping::Kind::Data && m.copied && m_version >= 3;
    if (keep) {
        entry = m.host | OFLAG_COPIED | OFLAG_ZERO;
    } else {
        entry = m_version >= 3 ? OFLAG_ZERO : 0;
        if ((m.kind == Mapping::Kind::Data || m.kind == Mapping::Kind::Zero) && m.copied && m.host != 0
            && !is_metadata(m.host))
            batch.frees.emplace_back(m.host, m_cluster_size);
        else if (m.kind == Mapping::Kind::Compressed)
            batch.frees.emplace_back(m.host & ~uint64_t { 511 }, m.compressed_len + (m.host & 511));
    }
    table.set(index, entry);
    return true;
}

Result<bool> Qcow2Image::zero_range(uint64_t offset, uint64_t len, ZeroMode mode)
{
    std::lock_guard guard(m_lock);
    WriteBatch batch;
    bool all_done = true;
    uint64_t const end = offset + len;
    std::vector<uint8_t> zeros;
    for (uint64_t pos = offset; pos < end;) {
        uint64_t const in_cluster = pos & (m_cluster_size - 1);
        uint64_t const n = std::min(m_cluster_size - in_cluster, end - pos);
        bool const whole = n == m_cluster_size || (in_cluster == 0 && pos + n == m_size && m_size == end);
        if (!whole) {
            if (mode == ZeroMode::Discard) {
                all_done = false;
            } else {
                zeros.assign(static_cast<size_t>(n), 0);
                TRY(write_cluster_part(pos, zeros, batch));
            }
        } else {
            // Skip a whole L2 range quickly when it is unallocated and nothing shows through.
            uint64_t const l1_index = (pos >> m_cluster_bits) / m_l2_entries;
            uint64_t const range = m_cluster_size * m_l2_entries;
            if (!m_backing && in_cluster == 0 && (m_l1[l1_index] & OFFSET_MASK) == 0 && !batch.tables.contains(l1_index)) {
                uint64_t next = std::min(end, (pos / range + 1) * range);
                pos = next;
                continue;
            }
            if (!TRY(zero_cluster(pos, mode, batch)))
                all_done = false;
        }
        if (batch.tables.size() >= MAX_BATCH_TABLES)
            TRY(commit(batch));
        pos += n;
    }
    TRY(commit(batch));
    return all_done;
}

Result<DiscardOutcome> Qcow2Image::discard(uint64_t offset, uint64_t len)
{
    TRY(check_request(offset, len, "discard", true));
    if (len == 0)
        return DiscardOutcome::Ignored;
    bool all = TRY(zero_range(offset, len, ZeroMode::Discard));
    return all ? DiscardOutcome::Punched : DiscardOutcome::Ignored;
}

Result<ZeroOutcome> Qcow2Image::write_zeroes(uint64_t offset, uint64_t len, MayUnmap may_unmap)
{
    TRY(check_request(offset, len, "write zeroes", true));
    if (len == 0)
        return ZeroOutcome::Written;
    TRY(zero_range(offset, len, may_unmap == MayUnmap::Yes ? ZeroMode::ZeroUnmap : ZeroMode::ZeroKeep));
    return may_unmap == MayUnmap::Yes ? ZeroOutcome::Punched : ZeroOutcome::Written;
}

// ---------------------------------------------------------------------------------------------------------------
// Refcounts and allocation

Result<uint64_t> Qcow2Image::get_refcount(uint64_t host)
{
    uint64_t const cluster = host >> m_cluster_bits;
    uint64_t const ti = cluster / m_refblock_entries;
    if (ti >= m_reftable.size() || m_reftable[ti] == 0)
        return uint64_t { 0 };
    uint64_t const bits = 1ull << m_refcount_order;
    uint64_t const bit_offset = (cluster % m_refblock_entries) * bits;
    size_t const width = static_cast<size_t>(std::max<uint64_t>(1, bits / 8));
    std::array<uint8_t, 8> raw {};
    TRY(pread_zero_fill(m_reftable[ti] + bit_offset / 8, std::span<uint8_t>(raw.data(), width)));
    uint64_t v = be(raw, 0, width);
    if (bits < 8)
        v = (v >> (bit_offset % 8)) & ((1ull << bits) - 1);
    return v;
}

Result<void> Qcow2Image::set_refcount(uint64_t host, uint64_t value)
{
    uint64_t const bits = 1ull << m_refcount_order;
    if (bits < 64 && value >= (1ull << bits))
        return Error(ErrorKind::Io, fmt::format("qcow2 image {}: refcount {} does not fit in {} bits", m_path, value, bits));
    uint64_t const cluster = host >> m_cluster_bits;
    uint64_t const ti = cluster / m_refblock_entries;
    TRY(ensure_refblock(ti));
    uint64_t const bit_offset = (cluster % m_refblock_entries) * bits;
    size_t const width = static_cast<size_t>(std::max<uint64_t>(1, bits / 8));
    uint64_t const at = m_reftable[ti] + bit_offset / 8;
    std::array<uint8_t, 8> raw {};
    if (bits < 8) {
        TRY(pread_zero_fill(at, std::span<uint8_t>(raw.data(), 1)));
        uint64_t const shift = bit_offset % 8;
        uint64_t const mask = ((1ull << bits) - 1) << shift;
        raw[0] = static_cast<uint8_t>((raw[0] & ~mask) | (value << shift));
    } else {
        put_be(raw, 0, width, value);
    }
    return pwrite_full(at, std::span<uint8_t const>(raw.data(), width));
}

Result<void> Qcow2Image::ensure_refblock(uint64_t table_index)
{
    if (table_index >= m_reftable.size())
        TRY(grow_reftable(table_index + 1));
    if (m_reftable[table_index] != 0)
        return ok();
    if (m_file_end + m_cluster_size > MAX_HOST_OFFSET)
        return Error(ErrorKind::Io, fmt::format("qcow2 image {} is full (64 PiB)", m_path));
    uint64_t const block = m_file_end;
    m_file_end += m_cluster_size;
    std::vector<uint8_t> zeros(static_cast<size_t>(m_cluster_size), 0);
    TRY(pwrite_full(block, zeros));
    TRY(sync());
    std::array<uint8_t, 8> raw {};
    put_be(raw, 0, 8, block);
    TRY(pwrite_full(m_reftable_offset + table_index * 8, raw));
    m_reftable[table_index] = block;
    m_metadata.insert(block >> m_cluster_bits);
    return set_refcount(block, 1); // the block may count itself; its table entry is set, so this terminates
}

Result<void> Qcow2Image::grow_reftable(uint64_t min_entries)
{
    uint64_t const cs = m_cluster_size;
    uint64_t want = std::max<uint64_t>({ min_entries, m_reftable.size() * 2, 1 });
    uint64_t clusters = 0;
    uint64_t table_offset = m_file_end;
    for (;;) {
        clusters = (want * 8 + cs - 1) / cs;
        // The table must cover itself and the refcount blocks that describe it (a few clusters of slack).
        uint64_t const covered_end = table_offset + (2 * clusters + 4) * cs;
        uint64_t const needed = (covered_end >> m_cluster_bits) / m_refblock_entries + 1;
        if (needed <= clusters * cs / 8)
            break;
        want = needed;
    }
    if (clusters * cs > MAX_REFTABLE_BYTES)
        return Error(ErrorKind::Io, fmt::format("qcow2 image {}: the refcount table would exceed 8 MiB", m_path));
    if (table_offset + clusters * cs > MAX_HOST_OFFSET)
        return Error(ErrorKind::Io, fmt::format("qcow2 image {} is full (64 PiB)", m_path));
    m_file_end += clusters * cs;

    std::vector<uint64_t> table = m_reftable;
    table.resize(static_cast<size_t>(clusters * cs / 8), 0);
    TRY(pwrite_full(table_offset, encode_table(table)));
    TRY(sync());
    std::array<uint8_t, 12> hdr {};
    put_be(hdr, 0, 8, table_offset);
    put_be(hdr, 8, 4, clusters);
    TRY(pwrite_full(H_REFCOUNT_TABLE_OFFSET, hdr));
    TRY(sync());

    uint64_t const old_offset = m_reftable_offset;
    uint64_t const old_clusters = m_reftable_clusters;
    m_reftable = std::move(table);
    m_reftable_offset = table_offset;
    m_reftable_clusters = clusters;
    for (uint64_t i = 0; i < clusters; ++i) {
        m_metadata.insert((table_offset >> m_cluster_bits) + i);
        TRY(set_refcount(table_offset + i * cs, 1));
    }
    for (uint64_t i = 0; i < old_clusters; ++i) {
        uint64_t const c = old_offset + i * cs;
        m_metadata.erase(c >> m_cluster_bits);
        uint64_t rc = TRY(get_refcount(c));
        if (rc > 0)
            TRY(set_refcount(c, rc - 1));
    }
    return ok();
}

Result<uint64_t> Qcow2Image::allocate_clusters(uint64_t count)
{
    uint64_t const start = m_file_end;
    if (start + count * m_cluster_size > MAX_HOST_OFFSET)
        return Error(ErrorKind::Io, fmt::format("qcow2 image {} is full (64 PiB)", m_path));
    m_file_end += count * m_cluster_size;
    for (uint64_t i = 0; i < count; ++i)
        TRY(set_refcount(start + i * m_cluster_size, 1));
    return start;
}

Result<void> Qcow2Image::release_range(uint64_t host, uint64_t len)
{
    if (len == 0)
        return ok();
    uint64_t const first = host >> m_cluster_bits;
    uint64_t const last = (host + len - 1) >> m_cluster_bits;
    for (uint64_t c = first; c <= last; ++c) {
        uint64_t const at = c << m_cluster_bits;
        if (at >= m_file_end || m_metadata.contains(c))
            continue;
        uint64_t rc = TRY(get_refcount(at));
        if (rc > 0)
            TRY(set_refcount(at, rc - 1));
    }
    return ok();
}

} // namespace hako::block
