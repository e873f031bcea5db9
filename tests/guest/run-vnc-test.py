#!/usr/bin/env python3
"""The VNC server (--vnc) with a real RFB client written here (RFB 3.8: handshake, None or VNC authentication,
SetPixelFormat, SetEncodings Raw + DesktopSize, FramebufferUpdateRequest, KeyEvent).

Modes:
  screen-text, screen-vbe32   the vga guest draws (guests/vga.c); the framebuffer the client receives must equal the
                              screenshot pixel for pixel (hako: `hako screenshot`; QEMU: QMP screendump). hako
                              listens on TCP 127.0.0.1 in screen-text, on a unix socket in screen-vbe32.
  keys-xlate, keys-set2, keys-set1
                              the kbd guest (guests/kbd.c) in that keyboard mode; the client types KEYS and the guest
                              must read exactly the scan codes of a US keyboard in that set (tables below, written
                              from the scan code references, not from hako's tables).
  mouse                       the kbd guest with its PS/2 mouse streaming; the client moves the pointer (+10 right,
                              10 down, a 290-pixel drag with the left button); the guest's packets must add up to
                              that movement (PS/2 Y up), with the button states in order and no overflow.
  password                    --vnc with password=: the wrong password is refused (SecurityResult failed), the
                              right one gets the ServerInit.
QEMU is the reference: the same client against `-vnc unix:...` (password through a secret object).
usage: run-vnc-test.py <hako|qemu> <vmm binary> <guest build dir> <mode>
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vga_expect as vx  # noqa: E402

failures = []
PASSWORD = "hako-pw"


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def wait_for(fn, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return None


def vnc_des(password, challenge):
    """VNC authentication: DES-ECB of the 16-byte challenge, the key being the password's 8 bytes with each byte's
    bits reversed (RFB 3.8, 7.2.2). DES comes from the openssl command (its legacy provider)."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode().ljust(8, b"\0")[:8])
    r = subprocess.run(["openssl", "enc", "-des-ecb", "-nopad", "-K", key.hex(), "-provider", "legacy",
                        "-provider", "default"], input=challenge, capture_output=True, check=True)
    return r.stdout


class AuthFailed(Exception):
    pass


class Rfb:
    def __init__(self, address, password=None):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(address)
        version = self.recv(12)
        if not version.startswith(b"RFB 003."):
            raise ValueError(f"not an RFB server: {version!r}")
        self.s.sendall(b"RFB 003.008\n")
        n = self.recv(1)[0]
        if n == 0:
            raise AuthFailed(self.reason())
        types = list(self.recv(n))
        if password is None:
            if 1 not in types:
                raise AuthFailed(f"server offers {types}, not None (1)")
            self.s.sendall(b"\x01")
        else:
            if 2 not in types:
                raise AuthFailed(f"server offers {types}, not VNC authentication (2)")
            self.s.sendall(b"\x02")
            self.s.sendall(vnc_des(password, self.recv(16)))
        if struct.unpack(">I", self.recv(4))[0] != 0:
            raise AuthFailed(self.reason())
        self.s.sendall(b"\x01")  # ClientInit: shared
        self.width, self.height = struct.unpack(">HH", self.recv(4))
        self.recv(16)  # the server's pixel format
        self.name = self.recv(struct.unpack(">I", self.recv(4))[0])
        # 32 bpp, depth 24, little endian, true colour, 8 bits each, red at 16, green at 8, blue at 0.
        self.s.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        self.s.sendall(struct.pack(">BxHii", 2, 2, 0, -223))  # Raw, DesktopSize
        self.fb = [0] * (self.width * self.height)

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"server closed the connection ({len(buf)} of {n} bytes)")
            buf += chunk
        return buf

    def reason(self):
        try:
            return self.recv(struct.unpack(">I", self.recv(4))[0]).decode(errors="replace")
        except (ConnectionError, OSError):
            return "(no reason)"

    def request(self, incremental):
        self.s.sendall(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0, self.width, self.height))

    def read_update(self):
        """Reads server messages until one framebuffer update has been applied."""
        while True:
            kind = self.recv(1)[0]
            if kind == 0:
                _, nrects = struct.unpack(">BH", self.recv(3))
                for _ in range(nrects):
                    x, y, w, h, enc = struct.unpack(">HHHHi", self.recv(12))
                    if enc == -223:
                        self.width, self.height = w, h
                        self.fb = [0] * (w * h)
                    elif enc == 0:
                        data = memoryview(self.recv(w * h * 4)).cast("I")
                        for row in range(h):
                            base = (y + row) * self.width + x
                            self.fb[base:base + w] = [p & 0xffffff for p in data[row * w:(row + 1) * w]]
                    else:
                        raise ValueError(f"unexpected encoding {enc}")
                return
            if kind == 1:  # SetColourMapEntries
                _, _, n = struct.unpack(">BHH", self.recv(5))
                self.recv(6 * n)
            elif kind == 2:  # Bell
                pass
            elif kind == 3:  # ServerCutText
                self.recv(3)
                self.recv(struct.unpack(">I", self.recv(4))[0])
            else:
                raise ValueError(f"unexpected server message {kind}")

    def key(self, keysym, down):
        self.s.sendall(struct.pack(">BBxxI", 4, 1 if down else 0, keysym))

    def pointer(self, x, y, buttons):
        self.s.sendall(struct.pack(">BBHH", 5, buttons, x, y))

    def tap(self, keysym):
        self.key(keysym, True)
        self.key(keysym, False)


# What the client types, and the bytes a US PS/2 keyboard sends for it: (keysyms pressed in order, released in
# reverse), set 1 bytes, set 2 bytes.
XK = {"Shift_L": 0xffe1, "Control_R": 0xffe4, "Alt_R": 0xffea, "Super_L": 0xffeb, "Menu": 0xff67, "F1": 0xffbe,
      "F12": 0xffc9, "Up": 0xff52, "Delete": 0xffff, "Home": 0xff50, "KP_Enter": 0xff8d, "KP_Divide": 0xffaf,
      "KP_End": 0xff9c, "Pause": 0xff13, "Print": 0xff61, "Escape": 0xff1b, "BackSpace": 0xff08, "Return": 0xff0d}
KEYS = [
    ([ord("a")], "1e 9e", "1c f0 1c"),
    ([XK["Shift_L"], ord("Z")], "2a 2c ac aa", "12 1a f0 1a f0 12"),
    ([XK["Shift_L"], ord("!")], "2a 02 82 aa", "12 16 f0 16 f0 12"),
    ([ord("1")], "02 82", "16 f0 16"),
    ([ord("/")], "35 b5", "4a f0 4a"),
    ([ord(" ")], "39 b9", "29 f0 29"),
    ([XK["Return"]], "1c 9c", "5a f0 5a"),
    ([XK["BackSpace"]], "0e 8e", "66 f0 66"),
    ([XK["Escape"]], "01 81", "76 f0 76"),
    ([XK["F1"]], "3b bb", "05 f0 05"),
    ([XK["F12"]], "58 d8", "07 f0 07"),
    ([XK["Control_R"]], "e0 1d e0 9d", "e0 14 e0 f0 14"),
    ([XK["Alt_R"]], "e0 38 e0 b8", "e0 11 e0 f0 11"),
    ([XK["Super_L"]], "e0 5b e0 db", "e0 1f e0 f0 1f"),
    ([XK["Menu"]], "e0 5d e0 dd", "e0 2f e0 f0 2f"),
    ([XK["Up"]], "e0 48 e0 c8", "e0 75 e0 f0 75"),
    ([XK["Home"]], "e0 47 e0 c7", "e0 6c e0 f0 6c"),
    ([XK["Delete"]], "e0 53 e0 d3", "e0 71 e0 f0 71"),
    ([XK["KP_Enter"]], "e0 1c e0 9c", "e0 5a e0 f0 5a"),
    ([XK["KP_Divide"]], "e0 35 e0 b5", "e0 4a e0 f0 4a"),
    ([XK["KP_End"]], "4f cf", "69 f0 69"),
    ([XK["Print"]], "e0 2a e0 37 e0 b7 e0 aa", "e0 12 e0 7c e0 f0 7c e0 f0 12"),
    ([XK["Pause"]], "e1 1d 45 e1 9d c5", "e1 14 77 e1 f0 14 f0 77"),
]


def start(vmm, binary, guest, cmdline, tmp, vnc_spec, qemu_vnc, extra_qemu=()):
    log = os.path.join(tmp, "serial.log")
    sock = os.path.join(tmp, "control.sock")
    if vmm == "hako":
        cmd = [binary, "run", "--memory", "64M", "--vga", "std", "--api-socket", sock, "--on-reboot", "exit",
               "--kernel", guest, "--debug-exit", "--cmdline", cmdline, "--vnc", vnc_spec]
    else:
        cmd = [binary, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "pc", "-m", "64", "-nodefaults",
               "-vga", "std", "-display", "none", "-serial", "stdio", "-no-reboot",
               "-qmp", f"unix:{sock},server=on,wait=off", "-vnc", qemu_vnc, *extra_qemu,
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", guest, "-append", cmdline]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    return proc, log, sock


def serial(log):
    return open(log, errors="replace").read() if os.path.exists(log) else ""


def finish(proc):
    proc.stdin.write(b"x")
    proc.stdin.flush()
    rc = proc.wait(timeout=60)
    check(rc == 1, f"the guest passed (exit status {rc})")


def screenshot(vmm, binary, sock, tmp):
    shot = os.path.join(tmp, "screen.png")
    if vmm == "hako":
        r = subprocess.run([binary, "screenshot", "--api-socket", sock, shot], capture_output=True, text=True)
        check(r.returncode == 0, f"hako screenshot ({r.stderr.strip()})")
    else:
        import json
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        f = s.makefile("rw")
        f.readline()
        for c in ({"execute": "qmp_capabilities"},
                  {"execute": "screendump", "arguments": {"filename": shot, "format": "png"}}):
            f.write(json.dumps(c) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        check("return" in reply, f"QMP screendump ({reply})")
    return vx.decode_png(open(shot, "rb").read())


def connect(address, password=None):
    return wait_for(lambda: try_connect(address, password), 30)


def try_connect(address, password):
    try:
        return Rfb(address, password)
    except (FileNotFoundError, ConnectionRefusedError):
        return None


def screen_test(vmm, binary, guest_dir, mode, tmp):
    guest_mode = mode.split("-", 1)[1]
    tcp = vmm == "hako" and guest_mode == "text"
    if tcp:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        address, spec = ("127.0.0.1", port), f"127.0.0.1:{port}"
    else:
        address = os.path.join(tmp, "vnc.sock")
        spec = f"unix:{address}"
    proc, log, sock = start(vmm, binary, os.path.join(guest_dir, "vga.elf"), f"mode={guest_mode}", tmp, spec,
                            f"unix:{address}" if not tcp else "")
    try:
        if not check(wait_for(lambda: "vga: ready" in serial(log) or proc.poll() is not None)
                     and "vga: ready" in serial(log), "the guest reached 'vga: ready'"):
            print(serial(log))
            return
        want = screenshot(vmm, binary, sock, tmp)
        print(f"screenshot: {want.width}x{want.height}", flush=True)
        client = connect(address)
        if not check(client is not None, f"an RFB client connects ({spec if vmm == 'hako' else address})"):
            return
        print(f"server: {client.width}x{client.height} '{client.name.decode(errors='replace')}'", flush=True)
        # The screen is still now; the server renders on its own timer, so updates are read until the client's
        # copy matches (first a full update, then incremental ones), within a bound.
        client.request(False)
        client.read_update()
        deadline = time.time() + 30
        updates = 1
        while ((client.width, client.height) != (want.width, want.height) or client.fb != want.pixels) \
                and time.time() < deadline:
            client.request(True)
            client.read_update()
            updates += 1
        check((client.width, client.height) == (want.width, want.height),
              f"the VNC framebuffer is {client.width}x{client.height} like the screenshot")
        if (client.width, client.height) == (want.width, want.height):
            bad = [i for i in range(len(want.pixels)) if client.fb[i] != want.pixels[i]]
            detail = f"; first at ({bad[0] % want.width}, {bad[0] // want.width})" if bad else ""
            check(not bad, f"every pixel the client received equals the screenshot's ({len(bad)} differ{detail}; "
                           f"{updates} updates)")
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def keys_test(vmm, binary, guest_dir, mode, tmp):
    kbd_mode = mode.split("-", 1)[1]
    address = os.path.join(tmp, "vnc.sock")
    proc, log, sock = start(vmm, binary, os.path.join(guest_dir, "kbd.elf"), f"mode={kbd_mode}", tmp,
                            f"unix:{address}", f"unix:{address}")
    try:
        if not check(wait_for(lambda: "kbd: ready" in serial(log) or proc.poll() is not None)
                     and "kbd: ready" in serial(log), "the guest reached 'kbd: ready'"):
            print(serial(log))
            return
        print(next(l for l in serial(log).splitlines() if "keyboard reports set" in l), flush=True)
        client = connect(address)
        if not check(client is not None, "an RFB client connects"):
            return
        set1 = kbd_mode in ("xlate", "set1")
        expected = []
        got = lambda: [int(b, 16) for b in re.findall(r"kbd: byte ([0-9a-f]{2})\r?\n", serial(log))]  # noqa
        # hako gets all keys in one burst (far more than the i8042's 64-byte queue: its VNC server must hold them
        # back until the guest has room, and lose none); QEMU one key at a time, as a person types, because its
        # PS/2 queue holds 16 bytes and drops the rest of a burst.
        burst = vmm == "hako"
        for keysyms, s1, s2 in KEYS:
            for k in keysyms:
                client.key(k, True)
            for k in reversed(keysyms):
                client.key(k, False)
            expected += [int(b, 16) for b in (s1 if set1 else s2).split()]
            if not burst:
                wait_for(lambda: len(got()) >= len(expected) or proc.poll() is not None, 30)
        wait_for(lambda: len(got()) >= len(expected) or proc.poll() is not None, 120)
        received = got()
        first_bad = next((i for i in range(min(len(received), len(expected))) if received[i] != expected[i]), None)
        check(received == expected,
              f"the guest read the {'set 1' if set1 else 'set 2'} codes of {len(KEYS)} keys: {len(received)} bytes "
              f"for {len(expected)} expected" + (f", first difference at byte {first_bad}" if first_bad is not None
                                                  else ""))
        if received != expected:
            print("expected:", " ".join(f"{b:02x}" for b in expected))
            print("received:", " ".join(f"{b:02x}" for b in received))
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def mouse_test(vmm, binary, guest_dir, tmp):
    address = os.path.join(tmp, "vnc.sock")
    proc, log, sock = start(vmm, binary, os.path.join(guest_dir, "kbd.elf"), "mode=xlate", tmp, f"unix:{address}",
                            f"unix:{address}")
    try:
        if not check(wait_for(lambda: "kbd: ready" in serial(log) or proc.poll() is not None)
                     and "kbd: ready" in serial(log), "the guest reached 'kbd: ready'"):
            print(serial(log))
            return
        client = connect(address)
        if not check(client is not None, "an RFB client connects"):
            return
        got = lambda: [int(b, 16) for b in re.findall(r"kbd: mouse ([0-9a-f]{2})\r?\n", serial(log))]  # noqa
        # One event at a time (QEMU's PS/2 queue is 16 bytes): each but the first moves or clicks, so the guest
        # reports at least one more packet before the next is sent.
        for i, (x, y, b) in enumerate(((100, 100, 0), (110, 100, 0), (110, 110, 0), (110, 110, 1), (400, 110, 1),
                                       (400, 110, 0))):
            before = len(got())
            client.pointer(x, y, b)
            if i > 0:
                wait_for(lambda: len(got()) >= before + 3 or proc.poll() is not None, 30)

        def decoded():
            data = got()
            packets = [data[i:i + 3] for i in range(0, len(data) - len(data) % 3, 3)]
            dx = sum(p[1] - (256 if p[0] & 0x10 else 0) for p in packets)
            dy = sum(p[2] - (256 if p[0] & 0x20 else 0) for p in packets)
            states = []
            for p in packets:
                if not states or states[-1] != p[0] & 7:
                    states.append(p[0] & 7)
            return packets, dx, dy, states
        wait_for(lambda: decoded()[1:] == (300, -10, [0, 1, 0]) or proc.poll() is not None, 60)
        packets, dx, dy, states = decoded()
        print("packets:", " ".join("".join(f"{b:02x}" for b in p) for p in packets), flush=True)
        check(len(got()) % 3 == 0 and all(p[0] & 0x08 and not p[0] & 0xc0 for p in packets),
              f"{len(packets)} whole packets, bit 3 set, no overflow")
        check((dx, dy) == (300, -10), f"the packets add up to the pointer's movement ({dx}, {dy}) = (300, -10)")
        check(states == [0, 1, 0], f"the button states in order: {states} = [0, 1, 0]")
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def password_test(vmm, binary, guest_dir, tmp):
    address = os.path.join(tmp, "vnc.sock")
    proc, log, sock = start(vmm, binary, os.path.join(guest_dir, "vga.elf"), "mode=text", tmp,
                            f"unix:{address},password={PASSWORD}", f"unix:{address},password-secret=vncpw",
                            ["-object", f"secret,id=vncpw,data={PASSWORD}"])
    try:
        if not check(wait_for(lambda: "vga: ready" in serial(log) or proc.poll() is not None)
                     and "vga: ready" in serial(log), "the guest reached 'vga: ready'"):
            print(serial(log))
            return
        wait_for(lambda: os.path.exists(address), 30)
        for password, what in ((None, "no authentication"), ("wrong", "a wrong password"),
                               (PASSWORD[:-1] + "X", "a password differing in its last character")):
            try:
                Rfb(address, password)
                check(False, f"a client with {what} is refused")
            except AuthFailed as e:
                check(True, f"a client with {what} is refused ({e})")
            except ConnectionError as e:
                check(True, f"a client with {what} is refused (connection closed: {e})")
        try:
            client = Rfb(address, PASSWORD)
            client.request(False)
            client.read_update()
            check(client.width > 0 and client.height > 0,
                  f"the right password gets the ServerInit and a framebuffer ({client.width}x{client.height})")
        except (AuthFailed, ConnectionError) as e:
            check(False, f"the right password is accepted ({e})")
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("hako", "qemu"):
        sys.exit(__doc__)
    vmm, binary, guest_dir, mode = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="hako-vnc.")
    if mode.startswith("screen-"):
        screen_test(vmm, binary, guest_dir, mode, tmp)
    elif mode.startswith("keys-"):
        keys_test(vmm, binary, guest_dir, mode, tmp)
    elif mode == "mouse":
        mouse_test(vmm, binary, guest_dir, tmp)
    elif mode == "password":
        password_test(vmm, binary, guest_dir, tmp)
    else:
        sys.exit(f"unknown mode {mode}")
    if failures:
        print(f"{len(failures)} check(s) failed; logs in {tmp}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
