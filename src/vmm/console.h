// Console: the terminal side of the guest's serial console.
//
// Guest output goes to stdout. Input comes from stdin: in raw mode with QEMU's escape keys when stdin is a
// terminal (Ctrl-a x quits, Ctrl-a h helps, Ctrl-a Ctrl-a sends Ctrl-a), byte for byte when it is a pipe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include <termios.h>

#include "base/event_loop.h"
#include "base/result.h"

namespace hako::vmm {

class Console final {
public:
    /// `deliver` offers bytes to the guest and returns how many it took; the rest is retried later.
    /// `quit` is called on Ctrl-a x.
    Console(EventLoop& loop, std::function<size_t(std::span<uint8_t const>)> deliver, std::function<void()> quit);
    ~Console();
    Console(Console const&) = delete;
    Console& operator=(Console const&) = delete;

    /// Starts reading stdin (raw mode if it is a terminal).
    [[nodiscard]] Result<void> start();
    /// Writes guest output to stdout. Thread-safe.
    static void write_output(std::span<uint8_t const> bytes);

private:
    void on_input();
    void handle_byte(uint8_t b);
    void flush_pending();
    void restore_terminal();

    EventLoop& m_loop;
    std::function<size_t(std::span<uint8_t const>)> m_deliver;
    std::function<void()> m_quit;
    bool m_is_tty { false };
    bool m_raw { false };
    bool m_escape { false };
    bool m_reading { false };
    bool m_retry_armed { false };
    termios m_saved {};
    std::deque<uint8_t> m_pending; // loop thread only
};

} // namespace hako::vmm
