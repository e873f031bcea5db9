#!/usr/bin/env python3
"""The virtio-console guest (guests/console.c): the guest writes READY on the virtio console, the host answers
"ping", the guest replies "pong: ping" on the virtio console (and "!" through emerg_wr when offered).

hako: `--console virtio` puts the terminal (here: pipes) on the virtio console. QEMU (reference): virtio-serial-pci
with a virtconsole on a unix socket chardev (the guest does not take MULTIPORT, so port 0 is the console).
usage: run-console-test.py hako HAKO GUEST | qemu QEMU GUEST
"""
import os
import select
import socket
import subprocess
import sys
import tempfile
import time

QBOOT = os.environ.get("QEMU_QBOOT", "/usr/share/qemu/qboot.rom")


def qboot():
    """QEMU's qboot firmware (0.1 s to the guest here, SeaBIOS about 5 s; the guest assigns its PCI BARs itself)."""
    return ["-bios", QBOOT] if os.access(QBOOT, os.R_OK) else []


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("hako", "qemu"):
        sys.exit(__doc__)
    vmm, binary, guest = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="hako-console.")
    if vmm == "hako":
        cmd = [binary, "run", "--kernel", guest, "--debug-exit", "--console", "virtio"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out_fd, write = proc.stdout.fileno(), lambda b: (proc.stdin.write(b), proc.stdin.flush())
    else:
        sock = os.path.join(tmp, "console.sock")
        log = open(os.path.join(tmp, "serial.log"), "w")
        cmd = [binary, "-accel", "kvm", "-cpu", "host,-arch-capabilities", *qboot(), "-M", "pc", "-m", "64", "-nographic",
               "-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", guest, "-no-reboot",
               "-device", "virtio-serial-pci", "-chardev", f"socket,id=c0,path={sock},server=on,wait=off",
               "-device", "virtconsole,chardev=c0"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        s = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                s.connect(sock)
                break
            except OSError:
                time.sleep(0.05)
        out_fd, write = s.fileno(), s.sendall
    seen = b""
    fed = False
    deadline = time.time() + 60
    while time.time() < deadline:
        r, _, _ = select.select([out_fd], [], [], 0.2)
        if r:
            chunk = os.read(out_fd, 65536)
            if not chunk:
                break
            seen += chunk
        if not fed and b"READY" in seen:
            write(b"ping\n")
            fed = True
        if b"pong: ping" in seen and (vmm == "qemu" or proc.poll() is not None):
            break
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    if vmm == "qemu":
        seen += open(os.path.join(tmp, "serial.log"), "rb").read()
    text = seen.decode(errors="replace")
    ok = rc == 1 and fed and "pong: ping" in text and "PASS" in text
    print(text)
    print(f"run-console-test: {'PASS' if ok else 'FAIL'} ({vmm}: exit status {rc}, fed {fed})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
