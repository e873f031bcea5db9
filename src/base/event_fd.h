// EventFd: an owned eventfd(2), used to wake threads, for ioeventfd/irqfd and to stop the event loop.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace hako {

class EventFd final {
public:
    [[nodiscard]] static Result<EventFd> create(int flags = 0);
    int fd() const { return m_fd.get(); }
    /// Adds n to the counter; a failure here only means the counter is saturated, which still wakes readers.
    void signal(uint64_t n = 1) const;
    /// Reads and clears the counter (returns 0 if non-blocking and nothing was pending).
    uint64_t consume() const;

private:
    explicit EventFd(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

} // namespace hako
