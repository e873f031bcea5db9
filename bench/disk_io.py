#!/usr/bin/env python3
"""virtio-blk throughput: hako and QEMU side by side, the same guest, image and command line.

The guest is tests/guest/guests/blkbench.c: it sets up the virtio-blk device at CPL0, then runs its polling loop
natively in 64-bit CPL3 (on PVM hosts CPL0 code is emulated instruction by instruction) through four modes:
4 KiB random reads at queue depth 1 and 32, 1 MiB sequential reads at queue depth 1 and 32. Each mode runs for
--ms milliseconds timed with the ACPI PM timer; the guest prints "blkbench: <mode>: N requests in T us".

Each VMM boots the guest --runs times (interleaved: hako, QEMU, hako, ...); the table gives per mode the median IOPS
and MB/s (10^6 bytes) of each VMM and the hako/QEMU ratio. Then, unless --no-exits, the exits to userspace per
request: perf counts the kvm:kvm_userspace_exit tracepoint (needs root or perf_event_paranoid <= -1) over two
short runs of each mode alone (--exit-requests A,B requests); (exits_B - exits_A) / (B - A) cancels the boot and
output. The guest's own PM timer reads (one userspace exit each, every 256 requests, every 32 for 1 MiB) are in it.

The image (--image-mib, default 256) is a raw file whose every 4 KiB block starts with the guest's check pattern
(blkbench.h BB_PATTERN), so the guest verifies what it reads; both VMMs use the host page cache (hako: preadv;
QEMU: its default cache=writeback, aio=threads). --make-image PATH only writes such an image (for the CI test).

Usage: bench/virtio_blk.py [--runs 3] [--ms 1500] [--hako build/hako] [--guest build/tests/guest/blkbench.elf]
Markdown to stdout (bench/RESULTS.md keeps the numbers of a run with its command line); progress to stderr.
"""
import argparse
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

MODES = [  # (name as the guest prints it, bytes per request), in the guest's order: bit i of modes= is MODES[i]
    ("randread-4k qd1", 4096),
    ("randread-4k qd32", 4096),
    ("seqread-1m qd1", 1 << 20),
    ("seqread-1m qd32", 1 << 20),
]
LINE = re.compile(r"blkbench: (\S+ qd\d+): (\d+) requests in (\d+) us")
PATTERN_XOR = 0x484B4F4200000000  # BB_PATTERN in tests/guest/guests/blkbench/blkbench.h


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_image(path, mib):
    """A raw image: 0xa5 everywhere except the first 8 bytes of every 4 KiB block, BB_PATTERN(byte offset)."""
    chunk = 1 << 20
    with open(path, "wb") as f:
        for base in range(0, mib << 20, chunk):
            buf = bytearray(b"\xa5" * chunk)
            for off in range(0, chunk, 4096):
                struct.pack_into("<Q", buf, off, (base + off) ^ PATTERN_XOR)
            f.write(buf)
        f.flush()
        os.fsync(f.fileno())


def vmm_command(vmm, args, image, cmdline):
    if vmm == "hako":
        return [args.hako, "run", "--kernel", args.guest, "--cmdline", cmdline, "--debug-exit", "--cpus", "1",
                "--memory", "64M", "--on-reboot", "exit", "--disk", f"path={image}"]
    return [args.qemu, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "pc", "-m", "64", "-smp", "1",
            "-nographic", "-no-reboot", "-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", args.guest, "-append", cmdline,
            "-drive", f"file={image},if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0"]


def run_guest(vmm, args, image, cmdline, perf_out=None):
    """Boots the guest once; returns {mode: (requests, us)}. Exits with a clear message on any failure."""
    cmd = vmm_command(vmm, args, image, cmdline)
    if perf_out:
        cmd = ["perf", "stat", "-x", ",", "-o", perf_out, "-e", "kvm:kvm_userspace_exit", "--"] + cmd
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        sys.exit(f"virtio_blk.py: {vmm} timed out after {args.timeout} s: {' '.join(cmd)}\n--- output ---\n{out[-3000:]}")
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 1:
        hint = f" (guest failure code {proc.returncode >> 1})" if proc.returncode > 1 and proc.returncode & 1 else ""
        sys.exit(f"virtio_blk.py: {vmm} exited with status {proc.returncode}, expected 1 (PASS){hint}: "
                 f"{' '.join(cmd)}\n--- output ---\n{out[-3000:]}")
    results = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in LINE.finditer(out)}
    log(f"  {vmm}: {time.monotonic() - start:.1f} s wall, " +
        ", ".join(f"{k}: {v[0]} in {v[1]} us" for k, v in results.items()))
    return results


def perf_count(path):
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2] == "kvm:kvm_userspace_exit":
                if not fields[0].isdigit():
                    sys.exit(f"virtio_blk.py: perf could not count kvm:kvm_userspace_exit ({fields[0]})")
                return int(fields[0])
    sys.exit(f"virtio_blk.py: no kvm:kvm_userspace_exit count in {path}")


def perf_usable():
    if not shutil.which("perf"):
        return "perf is not installed"
    probe = subprocess.run(["perf", "stat", "-e", "kvm:kvm_userspace_exit", "--", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if probe.returncode != 0:
        return "perf cannot count kvm:kvm_userspace_exit here: " + probe.stderr.decode(errors="replace").strip()[:200]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="boots per VMM (default 3)")
    ap.add_argument("--ms", type=int, default=1500, help="milliseconds per mode (default 1500)")
    ap.add_argument("--hako", default="build/hako")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--guest", default="build/tests/guest/blkbench.elf")
    ap.add_argument("--image-mib", type=int, default=256)
    ap.add_argument("--timeout", type=int, default=300, help="seconds one boot may take")
    ap.add_argument("--no-exits", action="store_true", help="skip counting exits to userspace")
    ap.add_argument("--exit-requests", default="200,2200", help="request counts of the two exit-counting runs")
    ap.add_argument("--vmms", default="hako,qemu", help="comma-separated subset of hako,qemu")
    ap.add_argument("--make-image", metavar="PATH", help="only write a pattern image of --image-mib MiB to PATH")
    args = ap.parse_args()

    if args.make_image:
        make_image(args.make_image, args.image_mib)
        return
    vmms = [v for v in args.vmms.split(",") if v]
    for v in vmms:
        if v not in ("hako", "qemu"):
            sys.exit(f"virtio_blk.py: unknown VMM {v}")
    if not os.path.isfile(args.guest):
        sys.exit(f"virtio_blk.py: no guest image at {args.guest} (build the hako_guests target)")
    if "hako" in vmms and not os.access(args.hako, os.X_OK):
        sys.exit(f"virtio_blk.py: no hako binary at {args.hako}")
    if "qemu" in vmms and not shutil.which(args.qemu):
        sys.exit(f"virtio_blk.py: {args.qemu} not found")
    if args.image_mib < 2:
        sys.exit("virtio_blk.py: the image must be at least 2 MiB")

    with tempfile.TemporaryDirectory(prefix="hako-blkbench.") as work:
        image = os.path.join(work, "disk.img")
        log(f"writing the {args.image_mib} MiB image {image}")
        make_image(image, args.image_mib)
        cmdline = f"ms={args.ms}"
        results = {v: [] for v in vmms}
        for i in range(args.runs):
            log(f"run {i + 1}/{args.runs}")
            for v in vmms:
                r = run_guest(v, args, image, cmdline)
                missing = [name for name, _ in MODES if name not in r]
                if missing:
                    sys.exit(f"virtio_blk.py: {v} printed no result for {', '.join(missing)}")
                results[v].append(r)

        exits = {}
        exit_note = None
        if not args.no_exits:
            exit_note = perf_usable()
            if exit_note is None:
                a, b = (int(x) for x in args.exit_requests.split(","))
                perf_out = os.path.join(work, "perf.csv")
                for v in vmms:
                    for bit, (name, _) in enumerate(MODES):
                        counts = []
                        for n in (a, b):
                            run_guest(v, args, image, f"quick=1 requests={n} modes={1 << bit}", perf_out)
                            counts.append(perf_count(perf_out))
                        exits[(v, name)] = (counts[1] - counts[0]) / (b - a)
                        log(f"  {v} {name}: {exits[(v, name)]:.3f} exits to userspace per request")

    date = time.strftime("%Y-%m-%d")
    print(f"virtio-blk, {args.image_mib} MiB raw image in the host page cache, {args.ms} ms per mode, "
          f"medians of {args.runs} boots per VMM ({date})\n")
    head = "| mode |"
    sep = "| --- |"
    for v in vmms:
        head += f" {v} IOPS | {v} MB/s |"
        sep += " --- | --- |"
    if vmms == ["hako", "qemu"]:
        head += " hako/QEMU |"
        sep += " --- |"
    if exits:
        for v in vmms:
            head += f" {v} exits to userspace per request |"
            sep += " --- |"
    print(head)
    print(sep)
    for name, block in MODES:
        row = f"| {name} |"
        iops = {}
        for v in vmms:
            iops[v] = statistics.median(r[name][0] * 1e6 / r[name][1] for r in results[v])
            row += f" {iops[v]:,.0f} | {iops[v] * block / 1e6:,.1f} |"
        if vmms == ["hako", "qemu"]:
            row += f" {iops['hako'] / iops['qemu']:.2f} |"
        if exits:
            for v in vmms:
                row += f" {exits[(v, name)]:.3f} |"
        print(row)
    if exit_note:
        print(f"\nExits to userspace per request: not measured ({exit_note}). FIXME: hako's API "
              "(GET /api/v1/vm.counters) has device counters but no vCPU exit counts yet.")


if __name__ == "__main__":
    main()
