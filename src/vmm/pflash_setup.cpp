#include "vmm/pflash_setup.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "block/disk_image.h"
#include "block/memory_image.h"
#include "devices/flash/pflash_cfi01.h"

namespace hako::vmm {

using devices::flash::PFLASH_SECTOR_SIZE;

namespace {

Result<void> check_flash_size(std::string const& what, std::string const& path, uint64_t size)
{
    if (size == 0 || size % PFLASH_SECTOR_SIZE != 0)
        return Error(ErrorKind::Format, fmt::format("{} {} is {} bytes: a flash image must be a non-zero multiple of "
                                                    "{} bytes", what, path, size, PFLASH_SECTOR_SIZE));
    return ok();
}

/// Creates `path` holding `contents`, never replacing a file: written to a temporary file beside it, synced, then
/// linked into place (which fails if `path` appeared meanwhile).
Result<void> create_vars_file(std::string const& path, std::vector<uint8_t> const& contents)
{
    std::string tmp = path + ".XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid())
        return Error::from_errno(errno == EACCES || errno == EPERM || errno == EROFS ? ErrorKind::Permission
                                                                                     : ErrorKind::Io,
            fmt::format("Cannot create the variable store {}", path));
    auto fail = [&](std::string_view what) {
        int const err = errno;
        ::unlink(tmp.c_str());
        return Error::from_errno(ErrorKind::Io, fmt::format("{} {}", what, path), err);
    };
    size_t done = 0;
    while (done < contents.size()) {
        ssize_t const n = ::write(fd.get(), contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail("Cannot write the variable store");
        done += static_cast<size_t>(n);
    }
    if (::fchmod(fd.get(), 0600) != 0 || ::fdatasync(fd.get()) != 0)
        return fail("Cannot write the variable store");
    if (::link(tmp.c_str(), path.c_str()) != 0)
        return fail("Cannot create the variable store");
    ::unlink(tmp.c_str());
    HAKO_INFO("created the variable store {} from its template", path);
    return ok();
}

} // namespace

Result<PflashImages> open_pflash_images(VmConfig::PflashConfig const& config)
{
    PflashImages out;
    out.code = TRY(read_file(config.code, PFLASH_MAX_TOTAL));
    TRY(check_flash_size("Firmware code image", config.code, out.code.size()));

    std::vector<uint8_t> templ;
    if (config.vars_template) {
        templ = TRY(read_file(*config.vars_template, PFLASH_MAX_TOTAL));
        TRY(check_flash_size("Variable store template", *config.vars_template, templ.size()));
    }
    if (config.vars) {
        std::string const& path = *config.vars;
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            if (errno != ENOENT)
                return Error::from_errno(ErrorKind::Io, fmt::format("Variable store {}", path));
            if (!config.vars_template)
                return Error(ErrorKind::NotFound,
                    fmt::format("Variable store {} does not exist, and there is no template to create it from", path));
            TRY(create_vars_file(path, templ));
        }
        auto image = block::DiskImage::open(path, block::ReadOnly::No);
        if (!image)
            return std::move(image).error().with_context("Variable store");
        uint64_t const size = (*image)->size_bytes();
        TRY(check_flash_size("Variable store", path, size));
        if (config.vars_template && size != templ.size())
            return Error(ErrorKind::Format, fmt::format("Variable store {} is {} bytes, but its template {} is {} bytes",
                path, size, *config.vars_template, templ.size()));
        if (size > PFLASH_MAX_TOTAL)
            return Error(ErrorKind::Format, fmt::format("Variable store {} is larger than {} MiB", path,
                PFLASH_MAX_TOTAL >> 20));
        out.vars.resize(size);
        std::span<uint8_t> const bufs[] = { out.vars };
        TRY((*image)->read_vectored(0, bufs));
        out.vars_store = std::move(*image);
    } else if (config.vars_template) {
        out.vars = templ;
        out.vars_store = std::make_shared<block::MemoryImage>(std::move(templ));
    }
    if (out.code.size() + out.vars.size() > PFLASH_MAX_TOTAL)
        return Error(ErrorKind::Format, fmt::format("Firmware flash images of {} bytes together: at most {} MiB",
            out.code.size() + out.vars.size(), PFLASH_MAX_TOTAL >> 20));
    return out;
}

} // namespace hako::vmm
