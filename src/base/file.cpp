#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace hako {

Result<std::vector<uint8_t>> read_file(std::string const& path, uint64_t max_size)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        auto kind = errno == ENOENT ? ErrorKind::NotFound : errno == EACCES ? ErrorKind::Permission : ErrorKind::Io;
        return Error::from_errno(kind, fmt::format("Cannot open {}", path));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot stat {}", path));
    if (!S_ISREG(st.st_mode))
        return Error(ErrorKind::Io, fmt::format("{} is not a regular file", path));
    auto const size = static_cast<uint64_t>(st.st_size);
    if (size > max_size)
        return Error(ErrorKind::OutOfRange, fmt::format("{} is too large ({} bytes, at most {})", path, size, max_size));
    std::vector<uint8_t> data(size);
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::read(fd.get(), data.data() + done, size - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::from_errno(ErrorKind::Io, fmt::format("Cannot read {}", path));
        }
        if (n == 0)
            break;
        done += static_cast<size_t>(n);
    }
    data.resize(done);
    return data;
}

} // namespace hako
