#include "block/image_format.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "block/disk_image.h"
#include "block/qcow2.h"

namespace hako::block {

std::string_view to_string(ImageFormat format)
{
    switch (format) {
    case ImageFormat::Raw:
        return "raw";
    case ImageFormat::Qcow2:
        return "qcow2";
    }
    return "?";
}

Result<ImageFormat> parse_image_format(std::string_view name)
{
    if (name == "raw")
        return ImageFormat::Raw;
    if (name == "qcow2")
        return ImageFormat::Qcow2;
    return Error(ErrorKind::InvalidArgument, fmt::format("Unknown disk image format '{}' (known: raw, qcow2)", name));
}

ImageFormat detect_format(std::span<uint8_t const> first_bytes)
{
    if (first_bytes.size() < 8)
        return ImageFormat::Raw;
    uint32_t magic = (uint32_t { first_bytes[0] } << 24) | (uint32_t { first_bytes[1] } << 16)
        | (uint32_t { first_bytes[2] } << 8) | first_bytes[3];
    uint32_t version = (uint32_t { first_bytes[4] } << 24) | (uint32_t { first_bytes[5] } << 16)
        | (uint32_t { first_bytes[6] } << 8) | first_bytes[7];
    if (magic == Qcow2Image::MAGIC && (version == 2 || version == 3))
        return ImageFormat::Qcow2;
    return ImageFormat::Raw;
}

Result<ImageFormat> detect_format(int fd)
{
    uint8_t buf[8] {};
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = ::pread(fd, buf + got, sizeof buf - got, static_cast<off_t>(got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::from_errno(ErrorKind::Io, "Cannot read the first bytes of a disk image");
        }
        if (n == 0)
            break;
        got += static_cast<size_t>(n);
    }
    return detect_format(std::span<uint8_t const>(buf, got));
}

Result<std::unique_ptr<BlockDevice>> open_image(std::string const& path, std::optional<ImageFormat> format, ReadOnly ro)
{
    BackingChain chain;
    return open_image(path, format, ro, chain);
}

Result<std::unique_ptr<BlockDevice>> open_image(
    std::string const& path, std::optional<ImageFormat> format, ReadOnly ro, BackingChain& chain)
{
    if (!format) {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid())
            return Error::from_errno(errno == ENOENT ? ErrorKind::NotFound : ErrorKind::Io,
                fmt::format("Cannot open disk image {}", path));
        if (TRY(detect_format(fd.get())) == ImageFormat::Qcow2)
            return Error(ErrorKind::Format,
                fmt::format("Disk image {} starts with a qcow2 header but no format was given: hako never probes an "
                            "image into qcow2 (a guest can write that header into a raw disk); say format=qcow2 to "
                            "open it as qcow2, or format=raw to give the guest its raw bytes",
                    path));
        format = ImageFormat::Raw;
    }
    if (*format == ImageFormat::Qcow2)
        return std::unique_ptr<BlockDevice>(TRY(Qcow2Image::open(path, ro, chain)));
    return std::unique_ptr<BlockDevice>(TRY(DiskImage::open(path, ro)));
}

} // namespace hako::block
