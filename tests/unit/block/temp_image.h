// A temporary raw image file for DiskImage and virtio-blk tests: created with a byte pattern, read back from the
// host side with its own file descriptor, removed on destruction.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace hako::test {

class TempImage final {
public:
    /// A file of `size` bytes in `dir`, byte i holding pattern_byte(i).
    explicit TempImage(uint64_t size, std::string const& dir = default_dir())
    {
        std::string tmpl = dir + "/hako-disk-XXXXXX";
        std::vector<char> name(tmpl.begin(), tmpl.end());
        name.push_back('\0');
        int fd = ::mkstemp(name.data());
        EXPECT_GE(fd, 0) << "mkstemp in " << dir;
        m_path = name.data();
        std::vector<uint8_t> data(static_cast<size_t>(size));
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = pattern_byte(i);
        EXPECT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
        ::close(fd);
    }
    ~TempImage() { ::unlink(m_path.c_str()); }
    TempImage(TempImage const&) = delete;
    TempImage& operator=(TempImage const&) = delete;

    static std::string default_dir()
    {
        char const* t = std::getenv("TMPDIR");
        return t && *t ? t : "/tmp";
    }
    static uint8_t pattern_byte(uint64_t i) { return static_cast<uint8_t>((i * 7 + (i >> 9)) ^ 0x5a); }

    std::string const& path() const { return m_path; }
    /// The file's bytes [offset, offset+len), read through a separate descriptor.
    std::vector<uint8_t> read(uint64_t offset, size_t len) const
    {
        std::vector<uint8_t> out(len);
        int fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(::pread(fd, out.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
        ::close(fd);
        return out;
    }
    uint64_t file_size() const
    {
        struct stat st {};
        EXPECT_EQ(::stat(m_path.c_str(), &st), 0);
        return static_cast<uint64_t>(st.st_size);
    }

private:
    std::string m_path;
};

} // namespace hako::test
