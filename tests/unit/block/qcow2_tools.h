// Helpers for the qcow2 tests: a private temporary directory, running qemu-img/qemu-io (the reference
// implementation, used as the oracle), and reading or patching big-endian fields of an image file.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "temp_image.h"

namespace hako::test {

inline bool have_qemu_tools()
{
    return std::system("qemu-img --version >/dev/null 2>&1") == 0 && std::system("qemu-io --version >/dev/null 2>&1") == 0;
}

/// Runs a shell command, returning its exit status (-1 if it did not exit normally).
inline int run(std::string const& cmd)
{
    int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class TempDir final {
public:
    TempDir()
    {
        std::string tmpl = TempImage::default_dir() + "/hako-qcow2-XXXXXX";
        std::vector<char> name(tmpl.begin(), tmpl.end());
        name.push_back('\0');
        EXPECT_NE(::mkdtemp(name.data()), nullptr);
        m_path = name.data();
    }
    ~TempDir() { (void)run("rm -rf '" + m_path + "'"); }
    TempDir(TempDir const&) = delete;
    TempDir& operator=(TempDir const&) = delete;
    std::string const& path() const { return m_path; }
    std::string file(std::string const& name) const { return m_path + "/" + name; }

private:
    std::string m_path;
};

inline std::vector<uint8_t> read_file(std::string const& path)
{
    std::vector<uint8_t> out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << path;
    struct stat st {};
    ::fstat(fd, &st);
    out.resize(static_cast<size_t>(st.st_size));
    EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
    ::close(fd);
    return out;
}

inline void write_file(std::string const& path, std::vector<uint8_t> const& data)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path;
    EXPECT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    ::close(fd);
}

inline uint64_t get_be(std::vector<uint8_t> const& b, size_t off, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
        v = (v << 8) | b.at(off + i);
    return v;
}

inline void put_be(std::vector<uint8_t>& b, size_t off, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; ++i)
        b.at(off + n - 1 - i) = static_cast<uint8_t>(v >> (8 * i));
}

/// Patches `n` big-endian bytes at `off` in the file.
inline void patch_be(std::string const& path, size_t off, size_t n, uint64_t v)
{
    auto bytes = read_file(path);
    put_be(bytes, off, n, v);
    write_file(path, bytes);
}

} // namespace hako::test
