#include "vmm/console.h"

#include <cstring>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/log.h"

namespace hako::vmm {

constexpr uint8_t CTRL_A = 0x01;
constexpr size_t MAX_PENDING = 64 * 1024; // stop reading stdin while the guest is this far behind

Console::Console(EventLoop& loop, std::function<size_t(std::span<uint8_t const>)> deliver, std::function<void()> quit)
    : m_loop(loop), m_deliver(std::move(deliver)), m_quit(std::move(quit))
{
}

Console::~Console()
{
    if (m_reading)
        m_loop.remove_fd(STDIN_FILENO);
    restore_terminal();
}

void Console::restore_terminal()
{
    if (m_raw) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &m_saved);
        m_raw = false;
    }
}

Result<void> Console::start()
{
    m_is_tty = ::isatty(STDIN_FILENO) == 1;
    if (m_is_tty && ::tcgetattr(STDIN_FILENO, &m_saved) == 0) {
        termios raw = m_saved;
        ::cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR; // keep our own messages readable
        if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            m_raw = true;
    }
    auto r = m_loop.add_fd(STDIN_FILENO, EPOLLIN, [this](uint32_t) { on_input(); });
    if (!r) {
        // stdin is a regular file or /dev/null (epoll refuses those): feed it all in now.
        uint8_t buf[4096];
        ssize_t n;
        while ((n = ::read(STDIN_FILENO, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; ++i)
                m_pending.push_back(buf[i]);
        }
        flush_pending();
        return ok();
    }
    m_reading = true;
    return ok();
}

void Console::write_output(std::span<uint8_t const> bytes)
{
    static std::mutex out_mutex;
    std::lock_guard lock(out_mutex);
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(STDOUT_FILENO, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // stdout closed: guest output is dropped, the guest runs on
        done += static_cast<size_t>(n);
    }
}

void Console::on_input()
{
    uint8_t buf[1024];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        // EOF: the guest keeps running without input.
        m_loop.remove_fd(STDIN_FILENO);
        m_reading = false;
        return;
    }
    for (ssize_t i = 0; i < n; ++i)
        handle_byte(buf[i]);
    flush_pending();
}

void Console::handle_byte(uint8_t b)
{
    if (!m_is_tty) {
        m_pending.push_back(b);
        return;
    }
    if (m_escape) {
        m_escape = false;
        switch (b) {
        case 'x':
        case 'X':
            restore_terminal();
            std::fputs("\r\nhako: terminated by Ctrl-a x\r\n", stderr);
            m_quit();
            return;
        case 'h':
        case 'H':
        case '?':
            std::fputs("\r\nC-a h    print this help\r\nC-a x    exit hako\r\nC-a C-a  send C-a\r\n", stderr);
            return;
        case CTRL_A:
            m_pending.push_back(CTRL_A);
            return;
        default:
            return;
        }
    }
    if (b == CTRL_A) {
        m_escape = true;
        return;
    }
    m_pending.push_back(b);
}

void Console::flush_pending()
{
    while (!m_pending.empty()) {
        uint8_t chunk[256];
        size_t n = 0;
        for (auto it = m_pending.begin(); it != m_pending.end() && n < sizeof chunk; ++it)
            chunk[n++] = *it;
        size_t taken = m_deliver(std::span<uint8_t const>(chunk, n));
        m_pending.erase(m_pending.begin(), m_pending.begin() + static_cast<std::ptrdiff_t>(taken));
        if (taken < n)
            break;
    }
    if (m_pending.empty())
        return;
    // The guest's receive FIFO is full: retry shortly (a UART at 115200 baud drains ~11 bytes per ms).
    if (m_reading && m_pending.size() > MAX_PENDING) {
        m_loop.remove_fd(STDIN_FILENO);
        m_reading = false;
    }
    if (!m_retry_armed) {
        m_retry_armed = true;
        m_loop.add_timer(std::chrono::milliseconds(1), std::chrono::nanoseconds(0), [this] {
            m_retry_armed = false;
            flush_pending();
        });
    }
}

} // namespace hako::vmm
