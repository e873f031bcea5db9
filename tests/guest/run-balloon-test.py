#!/usr/bin/env python3
"""The virtio-balloon guest (guests/balloon.c) driven by the host: targets 8 MiB, 4 MiB, then 0.

hako: targets through the API socket (PUT vm.balloon), progress and statistics through GET vm.balloon, and the
host-side effect checked: hako's resident memory drops by most of the 8 MiB when the guest inflates (the pages were
touched before). QEMU (reference): the same targets through QMP `balloon` (whose value is the guest's memory size,
not the balloon's) and `query-balloon`.
usage: run-balloon-test.py hako HAKO GUEST | qemu QEMU GUEST
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

QBOOT = os.environ.get("QEMU_QBOOT", "/usr/share/qemu/qboot.rom")


def qboot():
    """QEMU's qboot firmware (0.1 s to the guest here, SeaBIOS about 5 s; the guest assigns its PCI BARs itself)."""
    return ["-bios", QBOOT] if os.access(QBOOT, os.R_OK) else []

MEM_MIB = 64
failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def wait_for(fn, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return None


def log_has(log, text):
    return text in open(log, errors="replace").read()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Api:
    def __init__(self, path):
        self.path = path

    def call(self, method, path, body=None):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        data = json.dumps(body).encode() if body is not None else b""
        s.sendall(f"{method} /api/v1/{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(data)}\r\n\r\n"
                  .encode() + data)
        resp = b""
        while chunk := s.recv(65536):
            resp += chunk
        head, _, payload = resp.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), (json.loads(payload) if payload.strip() else None)


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


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("hako", "qemu"):
        sys.exit(__doc__)
    vmm, binary, guest = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="hako-balloon.")
    log = os.path.join(tmp, "serial.log")
    sock = os.path.join(tmp, "control.sock")
    if vmm == "hako":
        cmd = [binary, "run", "--kernel", guest, "--debug-exit", "--memory", f"{MEM_MIB}M", "--balloon", "target_mib=0",
               "--api-socket", sock]
    else:
        cmd = [binary, "-accel", "kvm", "-cpu", "host,-arch-capabilities", *qboot(), "-M", "pc", "-m", str(MEM_MIB),
               "-nographic", "-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", guest,
               "-no-reboot", "-device", "virtio-balloon-pci", "-qmp", f"unix:{sock},server=on,wait=off"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        check(wait_for(lambda: log_has(log, "balloon: driver ready") or proc.poll() is not None)
              and proc.poll() is None, "the guest touched its pool and started the driver")
        if vmm == "hako":
            api = Api(sock)
            # vmm=hako: the host process's own pid (hako is exec'd directly).
            before = rss_kib(proc.pid)

            def set_target(mib):
                status, _ = api.call("PUT", "vm.balloon", {"target_mib": mib})
                check(status == 204, f"PUT vm.balloon target_mib={mib} is accepted")

            def actual_mib():
                status, body = api.call("GET", "vm.balloon")
                return body["actual_mib"] if status == 200 else None
        else:
            qmp = Qmp(sock)

            def set_target(mib):
                r = qmp.cmd("balloon", value=(MEM_MIB - mib) << 20)
                check("return" in r, f"QMP balloon to {MEM_MIB - mib} MiB is accepted")

            def actual_mib():
                r = qmp.cmd("query-balloon")
                return MEM_MIB - (r["return"]["actual"] >> 20) if "return" in r else None

        for phase, mib in enumerate((8, 4, 0), 1):
            set_target(mib)
            pages = mib << 8
            marker = f"balloon: settled at {pages} pages"
            ok = wait_for(lambda: log_has(log, marker) or proc.poll() is not None) and log_has(log, marker)
            check(ok, f"phase {phase}: the guest settled at {mib} MiB ({pages} pages)")
            if vmm == "hako" and ok and phase < 3:
                check(wait_for(lambda: actual_mib() == mib, 10) is not None, f"phase {phase}: the API reports actual {mib} MiB")
            if vmm == "hako" and phase == 1 and ok:
                after = rss_kib(proc.pid)
                freed = before - after
                check(freed >= 6 * 1024, f"hako's RSS dropped by {freed} KiB (>= 6 MiB of the 8 MiB inflated)")
                status, b1 = api.call("GET", "vm.balloon")
                check(status == 200 and b1["stats"].get("total-memory") == MEM_MIB << 20,
                      f"the guest's statistics arrive (total-memory {b1['stats'].get('total-memory')})")
                # The GET asked for fresh figures: the guest refills its buffer (minor-faults counts refills).
                fresh = wait_for(lambda: (api.call("GET", "vm.balloon")[1]["stats"].get("minor-faults", 0)
                                          > b1["stats"].get("minor-faults", 0)), 10)
                check(fresh is not None, "asking for statistics gets fresher figures from the guest")
                check(api.call("PUT", "vm.balloon", {"target_mib": 4096})[0] == 400, "a target beyond memory is a 400")
                check(api.call("PUT", "vm.balloon", {"size": 1})[0] == 400, "a body without target_mib is a 400")
        rc = proc.wait(timeout=60)
        check(rc == 1, f"the guest passed (exit status {rc})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print("----- serial log -----")
        print(open(log, errors="replace").read()[-3000:])
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
