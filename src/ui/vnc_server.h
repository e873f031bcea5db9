// VncServer: hako's built-in VNC (RFB) server, on libvncserver, for `--vnc`.
//
// One thread ("vnc") owns the libvncserver screen: it waits for client messages (rfbProcessEvents, 10 ms at a
// time), accepts unix-socket clients itself (libvncserver listens on TCP only) and, while a client is connected,
// about 30 times a second renders the display through the `render` hook (the same renderer as screenshots),
// compares the frame with the previous one tile by tile (DirtyTiles) and marks only the changed rectangles
// modified; libvncserver sends them to clients that asked for updates. A frame of a new size resizes the framebuffer (clients that support the DesktopSize
// pseudo-encoding are told). Key events become PS/2 scan codes (keymap.h) in the set the guest reads, pointer
// events PS/2 mouse packets (ps2_mouse.h); both are handed to the `keyboard`/`mouse` hooks on this thread.
// Clients are hostile too: libvncserver parses the protocol; every keysym and position they send goes through the
// bounded encoders. With a password, clients must pass VNC authentication; without one, anyone who can reach the
// socket gets the console, so the default address is the loopback and a unix socket is created with mode 0600.
// Not done: the cursor is the guest's own (drawn in the framebuffer; no cursor-shape updates), clipboard, audio,
// an absolute pointing device (the PS/2 mouse is relative, so the guest's cursor need not follow the client's).
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "devices/display/image.h"
#include "ui/dirty_tiles.h"
#include "ui/keymap.h"
#include "ui/ps2_mouse.h"
#include "ui/vnc_options.h"

struct _rfbScreenInfo;
struct _rfbClientRec;

namespace hako::ui {

class VncServer final {
public:
    struct Hooks {
        std::function<devices::display::Image()> render;           // the screen now
        std::function<void(std::span<uint8_t const>)> keyboard;    // scan code bytes for the keyboard
        std::function<void(std::span<uint8_t const>)> mouse;       // PS/2 packets for the mouse
        std::function<ScancodeSet()> scancode_set;                 // what the guest reads now
        std::function<size_t()> keyboard_room;                     // bytes the keyboard takes now
        std::function<size_t()> mouse_room;                        // bytes the mouse takes now
    };
    /// Input waiting for room in the guest's queues, in whole events; beyond this many events, new ones are dropped.
    static constexpr size_t PENDING_LIMIT = 512;
    static constexpr int REFRESH_MS = 33; // about 30 frames a second

    /// Listens where `options` says and starts the thread.
    [[nodiscard]] static Result<std::unique_ptr<VncServer>> start(VncOptions const& options, Hooks hooks);
    ~VncServer();
    VncServer(VncServer const&) = delete;
    VncServer& operator=(VncServer const&) = delete;

    struct Stats {
        uint64_t frames;        // frames rendered and compared
        uint64_t rects;         // rectangles marked modified
        uint64_t key_events;    // key events from clients
        uint64_t keys_unmapped; // key events whose keysym has no US key (dropped)
        uint64_t pointer_events;
        uint64_t input_dropped; // key events or mouse packets dropped because PENDING_LIMIT were waiting
    };
    Stats stats() const;

private:
    explicit VncServer(Hooks hooks);
    Result<void> listen(VncOptions const& options);
    void run();
    void refresh();
    void accept_unix_clients();
    void key_event(bool down, uint32_t keysym);
    void pointer_event(int buttons, int x, int y);
    void flush_input();
    static void on_key(signed char down, uint32_t keysym, _rfbClientRec* client);
    static void on_pointer(int buttons, int x, int y, _rfbClientRec* client);

    Hooks m_hooks;
    _rfbScreenInfo* m_screen { nullptr };
    std::vector<uint32_t> m_framebuffer; // what clients are sent: the last frame, in the server's pixel format
    std::string m_password;
    char* m_password_list[2] { nullptr, nullptr }; // libvncserver's format: a null-terminated list
    UniqueFd m_unix_listener;
    std::string m_unix_path;
    DirtyTiles m_tiles;
    Ps2MouseEncoder m_mouse; // vnc thread only
    // Input on its way to the guest, paced by the room in the i8042's queues (vnc thread only).
    std::deque<ScanBytes> m_keys_pending;
    std::deque<std::array<uint8_t, 3>> m_mouse_pending;
    std::thread m_thread;
    std::atomic<bool> m_stop { false };
    std::atomic<uint64_t> m_frames { 0 }, m_rects { 0 }, m_keys { 0 }, m_keys_unmapped { 0 }, m_pointer { 0 },
        m_dropped { 0 };
};

} // namespace hako::ui
