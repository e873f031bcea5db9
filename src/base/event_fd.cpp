#include "base/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace hako {

Result<EventFd> EventFd::create(int flags)
{
    int fd = ::eventfd(0, EFD_CLOEXEC | flags);
    if (fd < 0)
        return Error::from_errno(ErrorKind::Io, "eventfd");
    return EventFd(UniqueFd(fd));
}

void EventFd::signal(uint64_t n) const
{
    [[maybe_unused]] auto r = ::write(m_fd.get(), &n, sizeof n);
}

uint64_t EventFd::consume() const
{
    uint64_t v = 0;
    if (::read(m_fd.get(), &v, sizeof v) != sizeof v)
        return 0;
    return v;
}

} // namespace hako
