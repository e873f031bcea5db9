#pragma once
// Image locking that QEMU understands, so hako and QEMU (and qemu-img) keep each other off an image exactly as two
// QEMUs do.
//
// QEMU's file driver (since 2.10) locks single bytes of the image with open file description locks, all of them
// shared (F_RDLCK): byte 100 + n while it *uses* permission n, byte 200 + n while it *refuses to share* permission n
// with others. The permissions are bits: 0 consistent read, 1 write, 2 write-unchanged, 3 resize. Before it relies on
// its locks it tests the other side: nobody may hold 200 + n for a permission n it uses, nor 100 + n for a permission
// n it refuses to share. Read off QEMU 7.2 on Debian 12 (/proc/locks): a read-write disk holds 100, 101 and 201; a
// read-only one 100 and 201; a CD-ROM 100, 201 and 203.
//
// hako takes the same bytes: a read-write image uses consistent read and write and does not share write; a read-only
// image uses consistent read and does not share write. So one writer or any number of readers, between hakos and
// QEMUs alike; qemu-img refuses an image hako is writing, as it refuses one QEMU is writing.

#include <string>

#include "base/result.h"
#include "block/block_device.h"

namespace hako::block {

/// QEMU's lock byte layout (block/file-posix.c's RAW_LOCK_PERM_BASE and RAW_LOCK_SHARED_BASE).
inline constexpr off_t LOCK_PERM_BASE = 100;
inline constexpr off_t LOCK_SHARED_BASE = 200;
enum LockPerm : unsigned { PERM_CONSISTENT_READ = 0, PERM_WRITE = 1, PERM_WRITE_UNCHANGED = 2, PERM_RESIZE = 3 };

/// Takes hako's lock bytes on `fd` (an open of `path`) for a reader or a writer, then checks that no other open file
/// description conflicts. Fails with ErrorKind::Busy ("Disk image X is in use by another process"), or Unsupported
/// when the file system refuses locks. The locks go away when the descriptor's last duplicate is closed.
Result<void> lock_image(int fd, std::string const& path, ReadOnly ro);

} // namespace hako::block
