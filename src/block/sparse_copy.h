#pragma once
// Copying a disk image file the way `cp --sparse=always --reflink=auto` does, for `hako serve`'s VM clone: the copy
// has the source's exact size, and the source's holes stay holes (a 100 GiB image with 2 GiB of data costs 2 GiB).
//
// Methods, tried in this order, each falling back to the next where the file system refuses it:
//   1. Reflink: one FICLONE ioctl; the copy shares the source's blocks (btrfs, XFS with reflink, bcachefs).
//   2. CopyFileRange: the source's data extents, found with SEEK_DATA/SEEK_HOLE, copied by copy_file_range() in
//      pieces of at most COPY_PIECE bytes (the kernel copies, or shares blocks where it can); holes are skipped.
//   3. ReadWrite: the same extents through one buffer of READ_WRITE_BUFFER bytes, and blocks of zeros inside them
//      are left as holes too. Also what a file system without SEEK_DATA gets (its whole file is one extent).
// Memory is bounded by that one buffer. The copy stops between pieces when `stop` is requested (the caller removes
// the half-written target). It does not handle a source that changes while it is copied (the daemon copies images
// of stopped VMs); a source that shrinks meanwhile is reported as an error.

#include <cstdint>
#include <stop_token>

#include "base/result.h"

namespace hako::block {

enum class CopyMethod { Reflink, CopyFileRange, ReadWrite };

inline constexpr uint64_t COPY_PIECE = 16 * 1024 * 1024;
inline constexpr size_t READ_WRITE_BUFFER = 1024 * 1024;
inline constexpr size_t ZERO_BLOCK = 4096; // ReadWrite leaves an all-zero block of this size as a hole

/// Copies regular file `src_fd` into `dst_fd` (a regular file opened for writing, normally empty), whole. `first` is
/// the method to start with (tests force the later ones). Returns the method that did the copy; on failure (ErrorKind
/// Io with the system's error, e.g. "No space left on device"; Busy when stopped) the target holds a partial copy.
[[nodiscard]] Result<CopyMethod> copy_sparse(int src_fd, int dst_fd, std::stop_token stop = {},
    CopyMethod first = CopyMethod::Reflink);

char const* copy_method_name(CopyMethod method);

} // namespace hako::block
