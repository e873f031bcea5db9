// Image locks against QEMU's protocol (block/image_lock.h): the bytes hako takes, read back with OFD lock probes
// from another open file description, and QEMU's own qemu-io as the other party in both directions.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "block/disk_image.h"
#include "block/image_lock.h"
#include "block/qcow2.h"
#include "temp_image.h"

using namespace hako;
using namespace hako::block;
using hako::test::TempImage;

namespace {

constexpr uint64_t IMAGE_SIZE = 1024 * 1024;

/// Whether any open file description other than a fresh one holds a lock on `byte` of `path`.
bool byte_held(std::string const& path, off_t byte)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = byte;
    lock.l_len = 1;
    EXPECT_EQ(::fcntl(fd, F_OFD_GETLK, &lock), 0);
    ::close(fd);
    return lock.l_type != F_UNLCK;
}

int run(std::string const& cmd)
{
    int status = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_qemu_io() { return run("command -v qemu-io") == 0; }

} // namespace

TEST(ImageLockTest, ReadWriteOpenTakesQemusBytesForAWriter)
{
    TempImage file(IMAGE_SIZE);
    auto disk = DiskImage::open(file.path(), ReadOnly::No);
    ASSERT_TRUE(disk);
    EXPECT_TRUE(byte_held(file.path(), LOCK_PERM_BASE + PERM_CONSISTENT_READ));
    EXPECT_TRUE(byte_held(file.path(), LOCK_PERM_BASE + PERM_WRITE));
    EXPECT_TRUE(byte_held(file.path(), LOCK_SHARED_BASE + PERM_WRITE));
    // Everything else is free: hako shares consistent reads, unchanged writes and resizes, and takes no other byte.
    for (off_t b : { off_t { 0 }, off_t { 99 }, off_t { 102 }, off_t { 103 }, off_t { 104 }, off_t { 200 }, off_t { 202 },
             off_t { 203 }, off_t { 204 } })
        EXPECT_FALSE(byte_held(file.path(), b)) << "byte " << b;
}

TEST(ImageLockTest, ReadOnlyOpenTakesQemusBytesForAReader)
{
    TempImage file(IMAGE_SIZE);
    auto disk = DiskImage::open(file.path(), ReadOnly::Yes);
    ASSERT_TRUE(disk);
    EXPECT_TRUE(byte_held(file.path(), LOCK_PERM_BASE + PERM_CONSISTENT_READ));
    EXPECT_FALSE(byte_held(file.path(), LOCK_PERM_BASE + PERM_WRITE));
    EXPECT_TRUE(byte_held(file.path(), LOCK_SHARED_BASE + PERM_WRITE));
    EXPECT_FALSE(byte_held(file.path(), LOCK_SHARED_BASE + PERM_CONSISTENT_READ));
}

TEST(ImageLockTest, Qcow2TakesTheSameBytes)
{
    TempImage dir_probe(512); // only for its directory
    std::string img = dir_probe.path() + ".qcow2";
    ASSERT_TRUE(Qcow2Image::create(img, IMAGE_SIZE));
    {
        auto disk = Qcow2Image::open(img, ReadOnly::No);
        ASSERT_TRUE(disk);
        EXPECT_TRUE(byte_held(img, LOCK_PERM_BASE + PERM_WRITE));
        EXPECT_TRUE(byte_held(img, LOCK_SHARED_BASE + PERM_WRITE));
        auto reader = DiskImage::open(img, ReadOnly::Yes);
        ASSERT_FALSE(reader);
        EXPECT_EQ(reader.error().kind(), ErrorKind::Busy);
    }
    ::unlink(img.c_str());
}

TEST(ImageLockTest, QemuIsRefusedWhileHakoWritesAndSharesWhileHakoReads)
{
    if (!have_qemu_io())
        GTEST_FAIL() << "qemu-io not found (scripts/install-deps.sh installs qemu-utils)";
    TempImage file(IMAGE_SIZE);
    // qemu-img convert reads its source without sharing write (qemu-io -r would share everything, as a debugging
    // tool does); qemu-io's write needs the write permission, which neither a hako writer nor a hako reader shares.
    std::string const copy = file.path() + ".copy";
    std::string const read_cmd = "qemu-img convert -f raw -O raw '" + file.path() + "' '" + copy + "'";
    std::string const write_cmd = "qemu-io -f raw -c 'write 0 512' '" + file.path() + "'";
    ASSERT_EQ(run(read_cmd), 0); // nothing holds the image yet
    {
        auto writer = DiskImage::open(file.path(), ReadOnly::No);
        ASSERT_TRUE(writer);
        EXPECT_NE(run(read_cmd), 0);
        EXPECT_NE(run(write_cmd), 0);
    }
    {
        auto reader = DiskImage::open(file.path(), ReadOnly::Yes);
        ASSERT_TRUE(reader);
        EXPECT_EQ(run(read_cmd), 0); // readers share
        EXPECT_NE(run(write_cmd), 0);
    }
    ::unlink(copy.c_str());
}

TEST(ImageLockTest, HakoIsRefusedWhileQemuIoHoldsTheImage)
{
    if (!have_qemu_io())
        GTEST_FAIL() << "qemu-io not found (scripts/install-deps.sh installs qemu-utils)";
    TempImage file(IMAGE_SIZE);
    // qemu-io without -c keeps the image open (read-write) until its standard input closes.
    FILE* qemu = ::popen(("exec qemu-io -f raw '" + file.path() + "' >/dev/null 2>&1").c_str(), "w");
    ASSERT_NE(qemu, nullptr);
    bool held = false;
    for (int i = 0; i < 300 && !held; ++i) { // up to 30 s for qemu-io to start; not a timing assertion
        held = byte_held(file.path(), LOCK_PERM_BASE + PERM_WRITE);
        if (!held)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(held) << "qemu-io never locked the image";
    auto reader = DiskImage::open(file.path(), ReadOnly::Yes);
    ASSERT_FALSE(reader);
    EXPECT_EQ(reader.error().kind(), ErrorKind::Busy);
    auto writer = DiskImage::open(file.path(), ReadOnly::No);
    ASSERT_FALSE(writer);
    EXPECT_EQ(writer.error().kind(), ErrorKind::Busy);
    ::pclose(qemu); // closes qemu-io's input: it exits and lets go
    EXPECT_TRUE(DiskImage::open(file.path(), ReadOnly::No));
}
