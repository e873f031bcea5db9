#include "ui/vnc_server.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <rfb/rfb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

namespace hako::ui {

namespace {

// libvncserver logs through two global function pointers; hako sends its messages to its own log.
void vnc_log(char const* format, ...) __attribute__((format(printf, 1, 2)));
void vnc_err(char const* format, ...) __attribute__((format(printf, 1, 2)));

std::string vformat(char const* format, va_list args)
{
    char buf[512];
    int const n = std::vsnprintf(buf, sizeof buf, format, args);
    std::string s(buf, n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof buf - 1));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return s;
}

void vnc_log(char const* format, ...)
{
    va_list args;
    va_start(args, format);
    HAKO_DEBUG("vnc: {}", vformat(format, args));
    va_end(args);
}

void vnc_err(char const* format, ...)
{
    va_list args;
    va_start(args, format);
    HAKO_WARN_RATELIMITED("vnc: {}", vformat(format, args));
    va_end(args);
}

// What is shown before the display has anything to show (a 0x0 frame).
constexpr uint32_t BLANK_WIDTH = 640;
constexpr uint32_t BLANK_HEIGHT = 480;
constexpr long EVENT_WAIT_US = 10'000;

VncServer* server_of(rfbClientPtr client)
{
    return static_cast<VncServer*>(client->screen->screenData);
}

} // namespace

VncServer::VncServer(Hooks hooks) : m_hooks(std::move(hooks)) { }

Result<std::unique_ptr<VncServer>> VncServer::start(VncOptions const& options, Hooks hooks)
{
    std::unique_ptr<VncServer> server(new VncServer(std::move(hooks)));
    TRY(server->listen(options));
    server->m_thread = std::thread([s = server.get()] {
        // Signals belong to the event loop thread.
        sigset_t set;
        sigfillset(&set);
        pthread_sigmask(SIG_SETMASK, &set, nullptr);
        pthread_setname_np(pthread_self(), "vnc");
        s->run();
    });
    return server;
}

Result<void> VncServer::listen(VncOptions const& options)
{
    rfbLog = vnc_log;
    rfbErr = vnc_log; // while starting, a failure is reported once, as hako's error (one line)
    int argc = 1;
    char name[] = "hako";
    char* argv[] = { name, nullptr };
    m_screen = rfbGetScreen(&argc, argv, static_cast<int>(BLANK_WIDTH), static_cast<int>(BLANK_HEIGHT), 8, 3, 4);
    if (!m_screen)
        return Error(ErrorKind::Io, "VNC: cannot create the server");
    m_framebuffer.assign(size_t { BLANK_WIDTH } * BLANK_HEIGHT, 0);
    // SAFETY of the cast: libvncserver reads the framebuffer as bytes; it is 4-byte pixels in the server format.
    m_screen->frameBuffer = static_cast<char*>(static_cast<void*>(m_framebuffer.data()));
    m_screen->desktopName = "hako";
    m_screen->alwaysShared = TRUE;
    m_screen->screenData = this;
    m_screen->kbdAddEvent = on_key;
    m_screen->ptrAddEvent = on_pointer;
    m_screen->cursor = nullptr; // the guest draws its own cursor; the framebuffer is exactly what the VGA shows
    m_screen->ipv6port = 0;     // no IPv6 listener (libvncserver would listen on every address)
    m_screen->httpPort = 0;
    m_screen->http6Port = 0;
    if (options.password) {
        m_password = *options.password;
        m_password_list[0] = m_password.data();
        m_screen->authPasswdData = static_cast<void*>(m_password_list);
        m_screen->passwordCheck = rfbCheckPasswordByList;
    }
    if (options.kind == VncOptions::Kind::Tcp) {
        in_addr addr {};
        if (inet_pton(AF_INET, options.host.c_str(), &addr) != 1)
            return Error(ErrorKind::InvalidArgument, fmt::format("VNC: '{}' is not an IPv4 address", options.host));
        m_screen->listenInterface = addr.s_addr;
        m_screen->port = options.port;
    } else {
        m_screen->port = 0; // no TCP listener: clients come from the unix socket
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd.valid())
            return Error::from_errno(ErrorKind::Io, "VNC: socket");
        sockaddr_un sa {};
        sa.sun_family = AF_UNIX;
        if (options.path.size() >= sizeof sa.sun_path)
            return Error(ErrorKind::InvalidArgument, "VNC: unix socket path too long");
        std::memcpy(sa.sun_path, options.path.c_str(), options.path.size() + 1);
        struct stat st {};
        if (::lstat(options.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
            ::unlink(options.path.c_str()); // a stale socket from an earlier run
        mode_t const old_mask = ::umask(0077);
        int const r = ::bind(fd.get(), static_cast<sockaddr const*>(static_cast<void const*>(&sa)), sizeof sa);
        ::umask(old_mask);
        if (r != 0)
            return Error::from_errno(ErrorKind::Io, fmt::format("VNC: cannot bind {}", options.path));
        if (::listen(fd.get(), 8) != 0)
            return Error::from_errno(ErrorKind::Io, "VNC: listen");
        m_unix_listener = std::move(fd);
        m_unix_path = options.path;
    }
    rfbInitServer(m_screen);
    if (options.kind == VncOptions::Kind::Tcp && m_screen->listenSock == RFB_INVALID_SOCKET)
        return Error(ErrorKind::Io,
            fmt::format("VNC: cannot listen on {}:{} (address in use or not on this host?)", options.host, options.port));
    rfbErr = vnc_err;
    if (options.kind == VncOptions::Kind::Tcp)
        HAKO_INFO("VNC server on {}:{}", options.host, options.port);
    else
        HAKO_INFO("VNC server on unix:{}", options.path);
    return ok();
}

VncServer::~VncServer()
{
    m_stop = true;
    if (m_thread.joinable())
        m_thread.join();
    if (m_screen) {
        rfbShutdownServer(m_screen, TRUE);
        rfbScreenCleanup(m_screen);
    }
    if (!m_unix_path.empty())
        ::unlink(m_unix_path.c_str());
}

void VncServer::run()
{
    using Clock = std::chrono::steady_clock;
    auto next_frame = Clock::now();
    while (!m_stop.load(std::memory_order_relaxed)) {
        accept_unix_clients();
        // Nobody watching, nothing rendered: a client's first update may show the last frame rendered, and the
        // next refresh (within REFRESH_MS) sends what changed since.
        if (m_screen->clientHead && Clock::now() >= next_frame) {
            refresh();
            next_frame = Clock::now() + std::chrono::milliseconds(REFRESH_MS);
        }
        rfbProcessEvents(m_screen, EVENT_WAIT_US);
        flush_input();
    }
}

void VncServer::accept_unix_clients()
{
    if (!m_unix_listener.valid())
        return;
    for (int i = 0; i < 8; ++i) {
        int const fd = ::accept4(m_unix_listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                HAKO_WARN_RATELIMITED("vnc: accept: {}", std::strerror(errno));
            return;
        }
        // libvncserver takes the socket (and closes it when the client goes).
        rfbNewClient(m_screen, fd);
    }
}

void VncServer::refresh()
{
    devices::display::Image frame = m_hooks.render();
    if (frame.width == 0 || frame.height == 0 || frame.pixels.size() != size_t { frame.width } * frame.height)
        frame = devices::display::Image(BLANK_WIDTH, BLANK_HEIGHT);
    auto const changes = m_tiles.update(std::move(frame));
    m_frames.fetch_add(1, std::memory_order_relaxed);
    auto const& image = m_tiles.current();
    rfbPixelFormat const& f = m_screen->serverFormat;
    auto convert = [&f](uint32_t rgb) {
        uint32_t const r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;
        return (r << f.redShift) | (g << f.greenShift) | (b << f.blueShift);
    };
    if (changes.resized) {
        // libvncserver switches to the new buffer (and recomputes the pixel format) before the old one is freed.
        std::vector<uint32_t> fb(image.pixels.size());
        rfbNewFramebuffer(m_screen, static_cast<char*>(static_cast<void*>(fb.data())), static_cast<int>(image.width),
            static_cast<int>(image.height), 8, 3, 4);
        m_screen->cursor = nullptr;
        std::swap(fb, m_framebuffer);
        std::transform(image.pixels.begin(), image.pixels.end(), m_framebuffer.begin(), convert);
        rfbMarkRectAsModified(m_screen, 0, 0, static_cast<int>(image.width), static_cast<int>(image.height));
        m_rects.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    for (Rect const& r : changes.rects) {
        for (uint32_t y = r.y; y < r.y + r.height; ++y) {
            size_t const row = size_t { y } * image.width;
            std::transform(image.pixels.begin() + static_cast<std::ptrdiff_t>(row + r.x),
                image.pixels.begin() + static_cast<std::ptrdiff_t>(row + r.x + r.width),
                m_framebuffer.begin() + static_cast<std::ptrdiff_t>(row + r.x), convert);
        }
        rfbMarkRectAsModified(m_screen, static_cast<int>(r.x), static_cast<int>(r.y), static_cast<int>(r.x + r.width),
            static_cast<int>(r.y + r.height));
    }
    m_rects.fetch_add(changes.rects.size(), std::memory_order_relaxed);
}

void VncServer::on_key(signed char down, uint32_t keysym, _rfbClientRec* client)
{
    server_of(client)->key_event(down != 0, keysym);
}

void VncServer::on_pointer(int buttons, int x, int y, _rfbClientRec* client)
{
    server_of(client)->pointer_event(buttons, x, y);
}

void VncServer::key_event(bool down, uint32_t keysym)
{
    m_keys.fetch_add(1, std::memory_order_relaxed);
    ScanBytes const bytes = encode_key(keysym, down, m_hooks.scancode_set());
    if (bytes.size == 0) {
        if (!key_for_keysym(keysym)) {
            m_keys_unmapped.fetch_add(1, std::memory_order_relaxed);
            HAKO_DEBUG("vnc: keysym {:#x} has no key on a US keyboard", keysym);
        }
        return;
    }
    if (m_keys_pending.size() >= PENDING_LIMIT) {
        m_dropped.fetch_add(1, std::memory_order_relaxed);
        HAKO_WARN_RATELIMITED("vnc: {} key events wait for the guest; key event dropped", PENDING_LIMIT);
        return;
    }
    m_keys_pending.push_back(bytes);
    flush_input();
}

void VncServer::flush_input()
{
    // Whole events only, and only as many as the guest's queues take: a key's bytes are never cut in two.
    if (!m_keys_pending.empty()) {
        size_t room = m_hooks.keyboard_room();
        while (!m_keys_pending.empty() && m_keys_pending.front().size <= room) {
            room -= m_keys_pending.front().size;
            m_hooks.keyboard(m_keys_pending.front().span());
            m_keys_pending.pop_front();
        }
    }
    if (!m_mouse_pending.empty()) {
        size_t room = m_hooks.mouse_room();
        while (!m_mouse_pending.empty() && room >= 3) {
            room -= 3;
            m_hooks.mouse(m_mouse_pending.front());
            m_mouse_pending.pop_front();
        }
    }
}

void VncServer::pointer_event(int buttons, int x, int y)
{
    m_pointer.fetch_add(1, std::memory_order_relaxed);
    auto const packets = m_mouse.pointer(x, y, static_cast<uint8_t>(buttons & 0xff));
    for (size_t i = 0; i + 3 <= packets.size(); i += 3) {
        if (m_mouse_pending.size() >= PENDING_LIMIT) {
            m_dropped.fetch_add(1, std::memory_order_relaxed);
            HAKO_WARN_RATELIMITED("vnc: {} mouse packets wait for the guest; packet dropped", PENDING_LIMIT);
            continue;
        }
        m_mouse_pending.push_back({ packets[i], packets[i + 1], packets[i + 2] });
    }
    flush_input();
}

VncServer::Stats VncServer::stats() const
{
    return { m_frames.load(std::memory_order_relaxed), m_rects.load(std::memory_order_relaxed),
        m_keys.load(std::memory_order_relaxed), m_keys_unmapped.load(std::memory_order_relaxed),
        m_pointer.load(std::memory_order_relaxed), m_dropped.load(std::memory_order_relaxed) };
}

} // namespace hako::ui
