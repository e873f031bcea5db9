#!/usr/bin/env python3
"""The std VGA, screenshot against an image computed here.

Guest modes (guests/vga.c): text, text50, vbe32, vbe16. hako runs the guest with --vga std and takes the screenshot
through its API socket (and once through `hako screenshot`); QEMU (the reference) with -vga std and QMP screendump.
hako's screenshot must equal the expected image pixel for pixel. QEMU draws text with the font its VGA BIOS loaded,
so for text modes the reference is compared cell by cell (background and foreground colour of every cell outside
the blinking cursor); VBE modes are compared pixel for pixel on both.

`seabios` mode: no guest; SeaBIOS (bios-256k.bin) with the VGA BIOS (vgabios-stdvga.bin) in the VGA's ROM BAR
must show its banner on the VGA text screen: hako's screenshot is read back with hako's font and must contain the
banner line SeaBIOS printed on the serial port; QEMU's screendump must be a 720x400 text screen whose first row has
the banner's shape (a non-blank cell exactly where the banner has a non-space character).
`grub-cdrom` mode (hako): the guest argument is Debian's grub-rescue-cdrom.iso, booted by SeaBIOS from the IDE CD-ROM
(--cdrom, --boot cdrom: El Torito over ATAPI) with the std VGA: SeaBIOS must say "Booting from DVD/CD" and GRUB's menu
must reach the serial port (SeaBIOS mirrors int 10h there), then the screenshot, read back with hako's font, must show
GRUB's title line on the VGA text screen. This is the suite's IDE CD-ROM boot; the AHCI one, on hako and QEMU, is
firmware_*_ahci_grub_cdrom.
usage: run-vga-test.py <hako|qemu> <vmm binary> <guest.elf|iso|-> <mode>
"""
import json
import re
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vga_expect as vx  # noqa: E402

failures = []

# The same lines as guests/vga.c.
TEXT_LINES = [
    (0, 0, 0x1f, "hako VGA text test: the quick brown fox jumps over the lazy dog 0123456789"),
    (1, 2, 0x4e, "Yellow on red !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    (2, 0, 0x02, "green"),
    (2, 6, 0x0b, "cyan"),
    (2, 11, 0x0d, "magenta"),
    (2, 19, 0x70, "black on grey"),
    (2, 33, 0x08, "dark grey"),
    (2, 43, 0x0c, "light red"),
    (24, 60, 0x70, "bottom right line"),
]
CURSOR = (5, 10)


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
        time.sleep(0.1)
    return None


def expected(mode):
    if mode.startswith("vbe"):
        px = []
        for y in range(480):
            for x in range(640):
                r, g, b = x & 0xff, y & 0xff, (x ^ y) & 0xff
                if mode == "vbe16":  # 5:6:5 and back, as a display expands it (top bits repeated)
                    r5, g6, b5 = r >> 3, g >> 2, b >> 3
                    r, g, b = r5 << 3 | r5 >> 2, g6 << 2 | g6 >> 4, b5 << 3 | b5 >> 2
                px.append(r << 16 | g << 8 | b)
        return vx.Image(640, 480, px)
    rows = 50 if mode == "text50" else 25
    cells = {}
    lines = TEXT_LINES + ([(49, 0, 0x0a, "row 49 of 50")] if rows == 50 else [])
    for row, col, attr, text in lines:
        for i, ch in enumerate(text):
            cells[(row, col + i)] = (ord(ch), attr)
    return vx.text_screen(cells, rows, 8 if rows == 50 else 16, CURSOR, (6, 7) if rows == 50 else (13, 14))


def api_get(sock, path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(f"GET /api/v1/{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    resp = b""
    while chunk := s.recv(1 << 20):
        resp += chunk
    head, _, body = resp.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, body


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            reply = json.loads(self.f.readline())
            if "return" in reply or "error" in reply:
                return reply


def compare_exact(got, want, what):
    if not check((got.width, got.height) == (want.width, want.height),
                 f"{what}: size {got.width}x{got.height} (expected {want.width}x{want.height})"):
        return
    bad = [i for i in range(len(want.pixels)) if got.pixels[i] != want.pixels[i]]
    detail = ""
    if bad:
        i = bad[0]
        detail = (f"; first at ({i % want.width}, {i // want.width}): {got.pixels[i]:06x} instead of "
                  f"{want.pixels[i]:06x}")
    check(not bad, f"{what}: every pixel equals the expected image ({len(bad)} differ{detail})")


def compare_cells(got, want, cell_h, what):
    if not check((got.width, got.height) == (want.width, want.height),
                 f"{what}: size {got.width}x{got.height} (expected {want.width}x{want.height})"):
        return
    # Colours compared at the DAC's 6 bits per channel: QEMU widens 6-bit DAC values to 8 bits differently (0x2A to
    # 0xA8 where hako gives 0xAA, repeating the top bits).
    dac6 = lambda p: None if p is None else (p >> 2) & 0x3f3f3f  # noqa: E731
    g, w = vx.cell_map(got, 9, cell_h), vx.cell_map(want, 9, cell_h)
    # At 8 scan lines QEMU shows the top half of the 8x16 font its BIOS loaded (the guest loads no 8x8 font), so
    # glyphs drawn low in the cell (, . _) are blank there: in that mode a cell without foreground only needs its
    # background to match.
    def same(k):
        gb, gf = map(dac6, g[k])
        wb, wf = map(dac6, w[k])
        return gb == wb and (gf == wf or (cell_h == 8 and gf is None))
    bad = [k for k in w if k != CURSOR and not same(k)]
    check(not bad, f"{what}: every cell has the expected colours ({len(bad)} differ"
                   + (f", first {bad[0]}: {g[bad[0]]} instead of {w[bad[0]]})" if bad else ")"))


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("hako", "qemu"):
        sys.exit(__doc__)
    vmm, binary, guest, mode = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="hako-vga.")
    log = os.path.join(tmp, "serial.log")
    sock = os.path.join(tmp, "control.sock")
    shot = os.path.join(tmp, "screen.png")
    grub = mode == "grub-cdrom"
    seabios = mode == "seabios" or grub
    if grub and vmm != "hako":
        sys.exit("run-vga-test: grub-cdrom runs on hako only")
    bios = "/usr/share/seabios/bios-256k.bin"
    if vmm == "hako":
        cmd = [binary, "run", "--memory", "64M", "--vga", "std", "--api-socket", sock, "--on-reboot", "exit"]
        cmd += ["--firmware", bios] if seabios else ["--kernel", guest, "--debug-exit", "--cmdline", f"mode={mode}"]
        cmd += ["--cdrom", guest, "--boot", "cdrom"] if grub else []
    else:
        cmd = [binary, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "pc", "-m", "64", "-nodefaults",
               "-vga", "std", "-display", "none", "-serial", "stdio", "-no-reboot",
               "-qmp", f"unix:{sock},server=on,wait=off"]
        # Without a serial console SeaBIOS talks through its debug port: the marker and banner come from there.
        cmd += ["-bios", bios, "-debugcon", f"file:{log}.debug", "-global", "isa-debugcon.iobase=0x402"] if seabios else ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", guest,
                                                 "-append", f"mode={mode}"]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    watched = log + ".debug" if seabios and vmm == "qemu" else log
    raw = lambda: open(watched, errors="replace").read() if os.path.exists(watched) else ""  # noqa: E731
    # Without terminal escape sequences: SeaBIOS's serial console may move the cursor between a line's characters.
    text = lambda: re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw())  # noqa: E731
    try:
        marker = "GNU GRUB  version" if grub else "No bootable device" if seabios else "vga: ready"
        ok = wait_for(lambda: marker in text() or proc.poll() is not None, 240 if grub else 90) and marker in text()
        if not check(ok, f"the guest reached '{marker}'"):
            print(text())
            return
        if grub:
            check("Booting from DVD/CD" in text(), "SeaBIOS booted from the CD-ROM ('Booting from DVD/CD')")
        if seabios:
            time.sleep(0.5)  # the serial console mirrors each line as it goes to the screen
        if vmm == "hako":
            status, head, body = api_get(sock, "vm.screenshot")
            check(status == 200 and b"image/png" in head.lower(), f"GET vm.screenshot answers 200 image/png ({status})")
            cli = subprocess.run([binary, "screenshot", "--api-socket", sock, shot], capture_output=True, text=True)
            check(cli.returncode == 0 and os.path.exists(shot), f"hako screenshot writes the PNG ({cli.stderr.strip()})")
            if not seabios:
                check(open(shot, "rb").read() == body, "hako screenshot writes what the API returns")
        else:
            r = Qmp(sock).cmd("screendump", filename=shot, format="png")
            check("return" in r, f"QMP screendump ({r})")
            body = open(shot, "rb").read()
        img = vx.decode_png(body)
        print(f"screenshot: {img.width}x{img.height}", flush=True)
        if grub:
            check((img.width, img.height) == (720, 400), f"the VGA shows 80x25 text ({img.width}x{img.height})")
            screen = vx.ocr_text(img) if (img.width, img.height) == (720, 400) else []
            print("screen text:\n" + "\n".join(l.rstrip() for l in screen if l.strip()), flush=True)
            check(any("GNU GRUB  version" in l for l in screen), "the screen shows GRUB's title 'GNU GRUB  version'")
        elif seabios:
            banner = next((l[l.index("SeaBIOS (version"):].strip() for l in text().splitlines()
                           if "SeaBIOS (version" in l), None)
            check(banner is not None, f"SeaBIOS printed its banner on the serial port ({banner})")
            check((img.width, img.height) == (720, 400), f"the VGA shows 80x25 text ({img.width}x{img.height})")
            if banner and (img.width, img.height) == (720, 400):
                if vmm == "hako":
                    screen = vx.ocr_text(img)
                    print("screen text:\n" + "\n".join(l.rstrip() for l in screen if l.strip()), flush=True)
                    check(any(banner in l for l in screen), f"the screen shows '{banner}'")
                cells = vx.cell_map(img)
                shape = "".join("#" if cells[(0, c)][1] is not None else " " for c in range(80)).rstrip()
                want = "".join("#" if ch != " " else " " for ch in banner[:80]).rstrip()
                check(shape == want, f"row 0 has the banner's shape ('{shape}' vs '{want}')")
        else:
            want = expected(mode)
            if vmm == "hako" or mode.startswith("vbe"):
                compare_exact(img, want, f"{vmm} {mode} screenshot")
            else:
                compare_cells(img, want, 8 if mode == "text50" else 16, f"{vmm} {mode} screenshot")
            proc.stdin.write(b"x")
            proc.stdin.flush()
            rc = proc.wait(timeout=60)
            check(rc == 1, f"the guest passed (exit status {rc})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if failures:
        print(f"{len(failures)} check(s) failed; serial log and screenshot in {tmp}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
