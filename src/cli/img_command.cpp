// `hako img`: disk image tools, in the spirit of qemu-img: create, info, check, convert, resize.
//
// Formats are never guessed into something dangerous: -f names the format, and without it the same probe policy as
// `hako run --disk` applies to convert and resize (a file with the qcow2 magic is refused unless -f qcow2 says so);
// info and check, which only read metadata, go by what the first bytes say.
// Exit status: 0 success; 2 usage; 4 bad input (missing, locked or corrupt image); `check` as qemu-img: 2 if it
// found corruption, 3 if it found only leaked clusters, 63 for a format without checks (raw).
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/size.h"
#include "block/disk_image.h"
#include "block/image_format.h"
#include "block/qcow2.h"
#include "cli/commands.h"
#include "vmm/config.h"

namespace hako::cli {

using vmm::exit_status::BAD_INPUT;
using vmm::exit_status::USAGE;

namespace {

constexpr int CHECK_CORRUPT = 2;
constexpr int CHECK_LEAKS = 3;
constexpr int CHECK_UNSUPPORTED = 63;
constexpr size_t CONVERT_CHUNK = 1024 * 1024;

struct ImgOptions {
    std::string file, size, format, backing, backing_format, output_format, dest, cluster_size;
    bool json { false };
    bool shrink { false };
};

int fail(int status, std::string const& message)
{
    std::fprintf(stderr, "hako: %s\n", message.c_str());
    return status;
}

int fail(Error const& e)
{
    return fail(e.kind() == ErrorKind::InvalidArgument ? USAGE : BAD_INPUT, e.message());
}

/// qemu-img's sizes: a bare number is bytes; K, M, G, T (binary) may follow.
std::optional<uint64_t> parse_image_size(std::string_view text)
{
    if (text.empty())
        return std::nullopt;
    if (text.find_first_not_of("0123456789") == std::string_view::npos) {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc {} || p != text.data() + text.size())
            return std::nullopt;
        return v;
    }
    return parse_memory_size(text);
}

std::optional<block::ImageFormat> format_of(std::string const& name)
{
    if (name.empty())
        return std::nullopt;
    auto f = block::parse_image_format(name);
    return f ? std::optional(*f) : std::nullopt;
}

Result<std::unique_ptr<block::BlockDevice>> open_for(ImgOptions const& o, std::string const& path, block::ReadOnly ro)
{
    if (!o.format.empty() && !format_of(o.format))
        return Error(ErrorKind::InvalidArgument, fmt::format("-f {}: the format must be raw or qcow2", o.format));
    return block::open_image(path, format_of(o.format), ro);
}

int create(ImgOptions const& o, bool announce = true)
{
    auto format = format_of(o.format.empty() ? "raw" : o.format);
    if (!format)
        return fail(USAGE, fmt::format("-f {}: the format must be raw or qcow2", o.format));
    uint64_t size = 0;
    if (!o.size.empty()) {
        auto s = parse_image_size(o.size);
        if (!s)
            return fail(USAGE, fmt::format("'{}' is not a size (examples: 10G, 512M, 1048576)", o.size));
        size = *s;
    }
    if (*format == block::ImageFormat::Raw) {
        if (!o.backing.empty())
            return fail(USAGE, "a raw image cannot have a backing file (use -f qcow2)");
        if (o.size.empty())
            return fail(USAGE, "create needs a size for a raw image");
        int fd = ::open(o.file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail(Error::from_errno(ErrorKind::Io, fmt::format("Cannot create {}", o.file)));
        bool const sized = ::ftruncate(fd, static_cast<off_t>(size)) == 0;
        int const err = errno;
        ::close(fd);
        if (!sized)
            return fail(Error::from_errno(ErrorKind::Io, fmt::format("Cannot size {}", o.file), err));
    } else {
        block::Qcow2Image::CreateOptions c;
        if (!o.cluster_size.empty()) {
            auto cs = parse_image_size(o.cluster_size);
            if (!cs || *cs < 512 || *cs > (2u << 20) || (*cs & (*cs - 1)))
                return fail(USAGE, fmt::format("cluster size '{}' must be a power of two from 512 to 2M", o.cluster_size));
            c.cluster_bits = static_cast<uint32_t>(__builtin_ctzll(*cs));
        }
        c.backing_file = o.backing;
        c.backing_format = o.backing_format;
        if (!o.backing.empty()) {
            // The backing file must open as the format given (or as probed), and gives the size when none is given.
            std::string resolved = o.backing;
            if (!resolved.empty() && resolved[0] != '/') {
                auto slash = o.file.rfind('/');
                if (slash != std::string::npos)
                    resolved = o.file.substr(0, slash + 1) + resolved;
            }
            if (!o.backing_format.empty() && !format_of(o.backing_format))
                return fail(USAGE, fmt::format("-F {}: the format must be raw or qcow2", o.backing_format));
            auto backing = block::open_image(resolved, format_of(o.backing_format), block::ReadOnly::Yes);
            if (!backing)
                return fail(backing.error().with_context("backing file"));
            if (o.size.empty())
                size = (*backing)->size_bytes();
        } else if (o.size.empty()) {
            return fail(USAGE, "create needs a size (or a backing file to take it from)");
        }
        if (auto r = block::Qcow2Image::create(o.file, size, c); !r)
            return fail(r.error());
    }
    if (announce)
        std::printf("Formatting '%s', fmt=%s size=%llu%s%s\n", o.file.c_str(), std::string(block::to_string(*format)).c_str(),
        static_cast<unsigned long long>(size), o.backing.empty() ? "" : " backing_file=", o.backing.c_str());
    return 0;
}

/// For the read-only tools (info, check): the format given, or what the first bytes say. Reading a qcow2 image's
/// metadata is safe whatever wrote it; only opening it for a VM or copying its data (convert) needs the user's -f.
Result<block::ImageFormat> read_only_format(ImgOptions const& o)
{
    if (!o.format.empty()) {
        if (auto f = format_of(o.format))
            return *f;
        return Error(ErrorKind::InvalidArgument, fmt::format("-f {}: the format must be raw or qcow2", o.format));
    }
    int fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return Error::from_errno(ErrorKind::NotFound, fmt::format("Cannot open {}", o.file));
    auto probed = block::detect_format(fd);
    ::close(fd);
    return probed;
}

int info(ImgOptions const& o)
{
    auto probed = read_only_format(o);
    if (!probed)
        return fail(probed.error());
    block::ImageFormat const format = *probed;
    struct stat st {};
    if (::stat(o.file.c_str(), &st) != 0)
        return fail(Error::from_errno(ErrorKind::NotFound, fmt::format("Cannot open {}", o.file)));
    nlohmann::json j { { "filename", o.file }, { "format", std::string(block::to_string(format)) },
        { "actual-size", static_cast<uint64_t>(st.st_blocks) * 512 } };
    auto image = block::open_image(o.file, format, block::ReadOnly::Yes);
    if (!image)
        return fail(image.error());
    j["virtual-size"] = (*image)->size_bytes();
    if (auto* q = dynamic_cast<block::Qcow2Image*>(image->get())) {
        j["cluster-size"] = q->cluster_size();
        j["version"] = q->version();
        j["refcount-bits"] = q->refcount_bits();
        if (!q->backing_path().empty())
            j["backing-filename"] = q->backing_path();
    }
    if (o.json) {
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("image: %s\nfile format: %s\nvirtual size: %llu bytes\ndisk size: %llu bytes\n", o.file.c_str(),
        j["format"].get<std::string>().c_str(), static_cast<unsigned long long>(j["virtual-size"].get<uint64_t>()),
        static_cast<unsigned long long>(j["actual-size"].get<uint64_t>()));
    if (j.contains("cluster-size"))
        std::printf("cluster_size: %llu\nversion: %u\nrefcount bits: %u\n",
            static_cast<unsigned long long>(j["cluster-size"].get<uint64_t>()), j["version"].get<unsigned>(),
            j["refcount-bits"].get<unsigned>());
    if (j.contains("backing-filename"))
        std::printf("backing file: %s\n", j["backing-filename"].get<std::string>().c_str());
    return 0;
}

int check(ImgOptions const& o)
{
    auto format = read_only_format(o);
    if (!format)
        return fail(format.error());
    auto image = block::open_image(o.file, *format, block::ReadOnly::Yes);
    if (!image)
        return fail(image.error());
    auto* q = dynamic_cast<block::Qcow2Image*>(image->get());
    if (!q) {
        std::fprintf(stderr, "hako: %s: raw images have no metadata to check\n", o.file.c_str());
        return CHECK_UNSUPPORTED;
    }
    auto r = q->check();
    if (!r)
        return fail(r.error());
    if (o.json) {
        nlohmann::json j { { "filename", o.file }, { "format", "qcow2" }, { "check-errors", 0 },
            { "corruptions", r->corruptions }, { "leaks", r->leaks }, { "allocated-clusters", r->allocated_clusters },
            { "total-clusters", r->total_clusters }, { "compressed-clusters", r->compressed_clusters },
            { "image-end-offset", r->image_end }, { "messages", r->messages } };
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        for (auto const& m : r->messages)
            std::printf("%s\n", m.c_str());
        if (r->corruptions == 0 && r->leaks == 0)
            std::printf("No errors were found on the image.\n");
        if (r->corruptions)
            std::printf("\n%llu errors were found on the image.\nData may be corrupted, or further writes to the image "
                        "may corrupt it.\n", static_cast<unsigned long long>(r->corruptions));
        if (r->leaks)
            std::printf("\n%llu leaked clusters were found on the image.\nThis means waste of disk space, but no harm "
                        "to data.\n", static_cast<unsigned long long>(r->leaks));
        std::printf("%llu/%llu = %.2f%% allocated, %.2f%% compressed clusters\nImage end offset: %llu\n",
            static_cast<unsigned long long>(r->allocated_clusters), static_cast<unsigned long long>(r->total_clusters),
            r->total_clusters ? 100.0 * static_cast<double>(r->allocated_clusters) / static_cast<double>(r->total_clusters) : 0.0,
            r->allocated_clusters ? 100.0 * static_cast<double>(r->compressed_clusters) / static_cast<double>(r->allocated_clusters) : 0.0,
            static_cast<unsigned long long>(r->image_end));
    }
    return r->corruptions ? CHECK_CORRUPT : r->leaks ? CHECK_LEAKS : 0;
}

int convert(ImgOptions const& o)
{
    auto out_format = format_of(o.output_format.empty() ? "raw" : o.output_format);
    if (!out_format)
        return fail(USAGE, fmt::format("-O {}: the format must be raw or qcow2", o.output_format));
    auto src = open_for(o, o.file, block::ReadOnly::Yes);
    if (!src)
        return fail(src.error());
    uint64_t const size = (*src)->size_bytes();
    ImgOptions c;
    c.file = o.dest;
    c.format = std::string(block::to_string(*out_format));
    c.size = std::to_string(size);
    if (!o.cluster_size.empty())
        c.cluster_size = o.cluster_size;
    if (int const status = create(c, false); status != 0)
        return status;
    auto dst = block::open_image(o.dest, out_format, block::ReadOnly::No);
    if (!dst)
        return fail(dst.error());
    // Chunk by chunk; all-zero chunks are skipped, so the destination stays sparse (raw: holes; qcow2: unallocated).
    std::vector<uint8_t> buf(CONVERT_CHUNK);
    for (uint64_t off = 0; off < size; off += CONVERT_CHUNK) {
        auto chunk = std::span<uint8_t>(buf).first(static_cast<size_t>(std::min<uint64_t>(CONVERT_CHUNK, size - off)));
        std::array<std::span<uint8_t>, 1> in { chunk };
        if (auto r = (*src)->read_vectored(off, in); !r)
            return fail(r.error().with_context(fmt::format("reading {} at {}", o.file, off)));
        if (std::all_of(chunk.begin(), chunk.end(), [](uint8_t b) { return b == 0; }))
            continue;
        std::array<std::span<uint8_t const>, 1> out { chunk };
        if (auto r = (*dst)->write_vectored(off, out); !r)
            return fail(r.error().with_context(fmt::format("writing {} at {}", o.dest, off)));
    }
    if (auto r = (*dst)->flush(); !r)
        return fail(r.error());
    return 0;
}

int resize(ImgOptions const& o)
{
    auto image = open_for(o, o.file, block::ReadOnly::No);
    if (!image)
        return fail(image.error());
    uint64_t const old_size = (*image)->size_bytes();
    std::string_view text = o.size;
    int sign = 0;
    if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
        sign = text[0] == '+' ? 1 : -1;
        text.remove_prefix(1);
    }
    auto amount = parse_image_size(text);
    if (!amount)
        return fail(USAGE, fmt::format("'{}' is not a size (examples: 20G, +1G, -512M)", o.size));
    if (sign < 0 && *amount > old_size)
        return fail(USAGE, fmt::format("cannot shrink a {}-byte image by {} bytes", old_size, *amount));
    uint64_t const new_size = sign > 0 ? old_size + *amount : sign < 0 ? old_size - *amount : *amount;
    if (new_size < old_size && !o.shrink)
        return fail(USAGE, "shrinking loses the data past the new end: pass --shrink to do it anyway");
    if (auto* q = dynamic_cast<block::Qcow2Image*>(image->get())) {
        if (auto r = q->resize(new_size); !r)
            return fail(r.error());
    } else if (auto* raw = dynamic_cast<block::DiskImage*>(image->get())) {
        // Through the descriptor that holds the image's lock: no VM can have it open read-write meanwhile.
        if (::ftruncate(raw->direct_fd(), static_cast<off_t>(new_size)) != 0 || ::fsync(raw->direct_fd()) != 0)
            return fail(Error::from_errno(ErrorKind::Io, fmt::format("Cannot resize {}", o.file)));
    } else {
        return fail(BAD_INPUT, fmt::format("{}: resize does not know this image type", o.file));
    }
    std::printf("Image resized.\n");
    return 0;
}

} // namespace

std::function<int()> register_img_command(CLI::App& app)
{
    auto o = std::make_shared<ImgOptions>();
    auto* img = app.add_subcommand("img", "Disk image tools: create, info, check, convert, resize (raw and qcow2)");
    img->require_subcommand(1);

    auto* c = img->add_subcommand("create", "Create an image: hako img create [-f qcow2] [-b BACKING [-F FMT]] FILE [SIZE]");
    c->add_option("-f,--format", o->format, "raw (default) or qcow2");
    c->add_option("-b,--backing", o->backing, "qcow2: a backing file (its size is the default size)");
    c->add_option("-F,--backing-format", o->backing_format, "the backing file's format, recorded in the image");
    c->add_option("--cluster-size", o->cluster_size, "qcow2 cluster size (512 to 2M, default 64K)");
    c->add_option("file", o->file, "The new image (must not exist)")->required();
    c->add_option("size", o->size, "Virtual size: bytes, or with K, M, G, T");

    auto* i = img->add_subcommand("info", "Show an image's format, sizes and backing file");
    i->add_option("-f,--format", o->format, "raw or qcow2 (default: probed)");
    i->add_flag("--json", o->json, "JSON output");
    i->add_option("file", o->file, "The image")->required();

    auto* k = img->add_subcommand("check", "Check a qcow2 image's metadata (refcounts, tables): exit 2 corrupt, 3 leaks");
    k->add_option("-f,--format", o->format, "raw or qcow2 (default: probed)");
    k->add_flag("--json", o->json, "JSON output");
    k->add_option("file", o->file, "The image")->required();

    auto* v = img->add_subcommand("convert", "Copy an image into a new one, sparse: hako img convert [-f FMT] -O FMT SRC DST");
    v->add_option("-f,--format", o->format, "the source's format (default: probed)");
    v->add_option("-O,--output-format", o->output_format, "raw (default) or qcow2");
    v->add_option("--cluster-size", o->cluster_size, "qcow2 cluster size of the destination");
    v->add_option("src", o->file, "The source image")->required();
    v->add_option("dst", o->dest, "The new image (must not exist)")->required();

    auto* r = img->add_subcommand("resize", "Change an image's virtual size: hako img resize [-f FMT] FILE [+|-]SIZE");
    r->add_option("-f,--format", o->format, "raw or qcow2 (default: probed)");
    r->add_flag("--shrink", o->shrink, "allow a smaller size (raw only; the data past it is lost)");
    r->add_option("file", o->file, "The image")->required();
    r->add_option("size", o->size, "New size, or +SIZE / -SIZE")->required();

    return [img, c, i, k, v, r, o]() -> int {
        if (!img->parsed())
            return -1;
        if (c->parsed())
            return create(*o);
        if (i->parsed())
            return info(*o);
        if (k->parsed())
            return check(*o);
        if (v->parsed())
            return convert(*o);
        if (r->parsed())
            return resize(*o);
        return USAGE;
    };
}

} // namespace hako::cli
