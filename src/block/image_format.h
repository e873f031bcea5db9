// Choosing and opening a disk image format: raw (DiskImage) or qcow2 (Qcow2Image), behind BlockDevice.
//
// Probe policy (the safe one; QEMU warns about the unsafe one): a format the user names is used as given, so
// format=raw means raw even if the first bytes say "QFI\xfb". Without a format, the first bytes are probed, and
// only the answer "raw" is acted on: an image that starts with the qcow2 magic and a known version is REFUSED
// with an error asking for format=qcow2 (or format=raw). So a raw image whose guest wrote a qcow2 header into its
// first sector never silently turns into a qcow2 image (whose backing file name the guest would control) on the
// next boot, and a real qcow2 image is never silently exposed to the guest as raw bytes either. The same policy
// applies to a qcow2 image's backing file when the image does not record the backing format.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "block/block_device.h"

namespace hako::block {

enum class ImageFormat { Raw, Qcow2 };

std::string_view to_string(ImageFormat format);
/// "raw" or "qcow2"; anything else is InvalidArgument.
[[nodiscard]] Result<ImageFormat> parse_image_format(std::string_view name);

/// What the first bytes of an image look like: Qcow2 only for the magic "QFI\xfb" followed by version 2 or 3
/// (big-endian), Raw for anything else (including fewer than 8 bytes).
ImageFormat detect_format(std::span<uint8_t const> first_bytes);
/// detect_format() on the first 8 bytes read from `fd` (pread at offset 0; the file position is untouched).
[[nodiscard]] Result<ImageFormat> detect_format(int fd);

/// The images opened so far along one backing chain (canonical paths, top first): bounds the depth and refuses
/// loops.
struct BackingChain {
    static constexpr size_t MAX_DEPTH = 16;
    std::vector<std::string> canonical_paths;
};

/// Opens `path` as `format`, or, with no format, probes it under the policy above (refusing qcow2 magic).
[[nodiscard]] Result<std::unique_ptr<BlockDevice>> open_image(
    std::string const& path, std::optional<ImageFormat> format, ReadOnly ro);
/// The same, for an image inside a backing chain (used by Qcow2Image for its backing file).
[[nodiscard]] Result<std::unique_ptr<BlockDevice>> open_image(
    std::string const& path, std::optional<ImageFormat> format, ReadOnly ro, BackingChain& chain);

} // namespace hako::block
