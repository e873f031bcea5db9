#!/usr/bin/env python3
"""Emulated NIC models, hako against QEMU's model of the same NIC: the same test guest, side by side in one go.

The guest is tests/guest/guests/net.c with its own driver for each model (tests/guest/lib/): it takes a DHCP lease and
pushes --bytes through a TCP echo server on the host (tests/guest/run-net-test.sh mode "echo": 1 MiB each way by
default), sending while it reads the echo back, all polled. Its TCP stack keeps at most 32 KiB in flight with no
window scaling and no congestion control, so this measures the whole path (the guest driver's register and
descriptor traffic, the device model, the backend, the host's TCP) as a driver would use it, not the NIC alone.
The guest's own report gives the bytes moved both ways, the time (ACPI PM timer) and the Ethernet frames it
sent and received; from them: MB/s (10^6 bytes/s, both directions) and frames/s (both directions).

On hosts without VT-x (PVM, as on the project's machines) the guest's CPL0 driver and stack run in KVM's
instruction emulator, so every model is bound by the emulation of the guest code as much as by the device; read
the ratios between VMMs, not the absolute numbers.

Backends (--backend): user (the VMMs' user networking: hako libslirp, QEMU -netdev user) or tap (root: a tap in a
private network namespace, dnsmasq for DHCP; run-net-test.sh's tap-echo).

Usage: bench/nic_models.py [--runs 3] [--models virtio,e1000,rtl8139,rtl8139cp,...] [--backend user|tap]
                           [--hako build/hako] [--guest build/tests/guest/net.elf]
Markdown to stdout; progress to stderr. Each model's runs are interleaved: hako, QEMU, hako, ...
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN_NET = os.path.join(ROOT, "tests", "guest", "run-net-test.sh")
REPORT = re.compile(r"net: (\d+) bytes in (\d+) ms \(\d+ KiB/s\); frames rx (\d+) tx (\d+)")
QEMU_NAMES = {"virtio": "virtio-net-pci", "rtl8139cp": "rtl8139 (driven in C+ mode)"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_once(vmm, model, args):
    with tempfile.TemporaryDirectory() as tmp:
        serial = os.path.join(tmp, "serial.log")
        env = dict(os.environ, HAKO=args.hako, QEMU=args.qemu, LOG=serial)
        mode = "tap-echo" if args.backend == "tap" else "echo"
        proc = subprocess.run([RUN_NET, vmm, args.guest, mode, model], env=env, capture_output=True, text=True,
                              timeout=300)
        text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
        m = REPORT.search(text)
        if proc.returncode != 0 or not m:
            log(f"  {vmm} {model}: FAILED (exit {proc.returncode})\n{proc.stdout[-1500:]}")
            return None
        nbytes, ms, rx, tx = (int(g) for g in m.groups())
        secs = ms / 1000.0
        return {"mbs": nbytes / secs / 1e6, "fps": (rx + tx) / secs, "ms": ms}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--models", default="virtio,e1000,rtl8139,rtl8139cp")
    p.add_argument("--backend", choices=["user", "tap"], default="user")
    p.add_argument("--hako", default=os.path.join(ROOT, "build", "hako"))
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--guest", default=os.path.join(ROOT, "build", "tests", "guest", "net.elf"))
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    results = {}
    for model in models:
        for i in range(args.runs):
            for vmm in ("hako", "qemu"):
                log(f"{model}: run {i + 1}/{args.runs} on {vmm}")
                r = run_once(vmm, model, args)
                if r:
                    log(f"  {r['mbs']:.3f} MB/s, {r['fps']:.0f} frames/s")
                results.setdefault((model, vmm), []).append(r)

    print(f"Command: `python3 bench/nic_models.py --runs {args.runs} --models {args.models} --backend {args.backend}`\n")
    print("| model (QEMU device) | hako MB/s | hako frames/s | QEMU MB/s | QEMU frames/s | hako/QEMU (MB/s) | failed runs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    failed_any = False
    for model in models:
        cells = []
        med = {}
        failed = 0
        for vmm in ("hako", "qemu"):
            ok = [r for r in results.get((model, vmm), []) if r]
            failed += len(results.get((model, vmm), [])) - len(ok)
            if ok:
                med[vmm] = statistics.median(r["mbs"] for r in ok)
                cells += [f"{med[vmm]:.3f}", f"{statistics.median(r['fps'] for r in ok):,.0f}"]
            else:
                cells += ["-", "-"]
        ratio = f"{med['hako'] / med['qemu']:.2f}" if "hako" in med and "qemu" in med else "-"
        failed_any |= failed > 0
        print(f"| {model} ({QEMU_NAMES.get(model, model)}) | " + " | ".join(cells) + f" | {ratio} | {failed} |")
    return 1 if failed_any else 0


if __name__ == "__main__":
    sys.exit(main())
