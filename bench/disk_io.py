#!/usr/bin/env python3
"""Disk I/O: hako and QEMU side by side, the same guest, image and command line, through virtio-blk, IDE and AHCI,
on raw and qcow2 images.

The guest is tests/guest/guests/blkbench.c: it sets up the disk (dev=virtio|ide|ahci) at CPL0, then runs its polling
loop natively in 64-bit CPL3 (on PVM hosts CPL0 code is emulated instruction by instruction) through four modes:
4 KiB random reads at queue depth 1 and 32, 1 MiB sequential reads at queue depth 1 and 32. virtio-blk keeps the
requests in its virtqueue; AHCI uses NCQ (READ FPDMA QUEUED, one tag per request in flight); IDE has no queue, so
only the depth-1 modes run there (READ DMA EXT through the bus master). Each mode runs for --ms milliseconds timed
with the ACPI PM timer; the guest prints "blkbench: <mode>: N requests in T us".

For each bus and format, each VMM boots the guest --runs times (interleaved: hako, QEMU, hako, ...); the tables give
per mode the median IOPS and MB/s (10^6 bytes) of each VMM and the hako/QEMU ratio. Then, unless --no-exits, for
the buses in --exit-buses (raw images), the exits to userspace per request: perf counts the kvm:kvm_userspace_exit
tracepoint (needs root or perf_event_paranoid <= -1) over two short runs of each mode alone (--exit-requests A,B
requests); (exits_B - exits_A) / (B - A) cancels the boot and output. The guest's own PM timer reads and, for IDE and
AHCI, its status polls (a port or MMIO read each) are in it.

The image (--image-mib, default 256) is a raw file whose every 4 KiB block starts with the guest's check pattern
(blkbench.h BB_PATTERN), so the guest verifies what it reads; the qcow2 image is `qemu-img convert` of it (64 KiB
clusters, fully allocated). Both VMMs use the host page cache (hako: preadv/io_uring; QEMU: its default
cache=writeback, aio=threads). --make-image PATH only writes such a raw image (for the CI test).

Usage: bench/disk_io.py [--runs 3] [--ms 1500] [--buses virtio,ide,ahci] [--formats raw,qcow2]
                        [--hako build/hako] [--guest build/tests/guest/blkbench.elf]
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

MODES = [  # (name as the guest prints it, bytes per request, queue depth), in the guest's order: bit i of modes=
    ("randread-4k qd1", 4096, 1),
    ("randread-4k qd32", 4096, 32),
    ("seqread-1m qd1", 1 << 20, 1),
    ("seqread-1m qd32", 1 << 20, 32),
]
BUSES = ("virtio", "ide", "ahci")
FORMATS = ("raw", "qcow2")
LINE = re.compile(r"blkbench: (\S+ qd\d+): (\d+) requests in (\d+) us")
PATTERN_XOR = 0x484B4F4200000000  # BB_PATTERN in tests/guest/guests/blkbench/blkbench.h


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def modes_for(bus):
    """The modes a bus runs: IDE has no command queue."""
    return [m for m in MODES if bus != "ide" or m[2] == 1]


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


def vmm_command(vmm, args, bus, fmt, image, cmdline):
    cmdline = f"{cmdline} dev={bus}"
    if vmm == "hako":
        disk = f"path={image},format={fmt}" + ("" if bus == "virtio" else f",if={bus}")
        return [args.hako, "run", "--kernel", args.guest, "--cmdline", cmdline, "--debug-exit", "--cpus", "1",
                "--memory", "64M", "--on-reboot", "exit", "--disk", disk]
    device = {"virtio": ["-device", "virtio-blk-pci,drive=d0"],
              "ide": ["-device", "ide-hd,drive=d0,bus=ide.0,unit=0"],
              "ahci": ["-device", "ich9-ahci,id=ahci", "-device", "ide-hd,drive=d0,bus=ahci.0"]}[bus]
    return [args.qemu, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "pc", "-m", "64", "-smp", "1",
            "-nographic", "-no-reboot", "-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", args.guest, "-append", cmdline,
            "-drive", f"file={image},if=none,id=d0,format={fmt}"] + device


def run_guest(vmm, args, bus, fmt, image, cmdline, perf_out=None):
    """Boots the guest once; returns {mode: (requests, us)}. Exits with a clear message on any failure."""
    cmd = vmm_command(vmm, args, bus, fmt, image, cmdline)
    if perf_out:
        cmd = ["perf", "stat", "-x", ",", "-o", perf_out, "-e", "kvm:kvm_userspace_exit", "--"] + cmd
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        sys.exit(f"disk_io.py: {vmm} timed out after {args.timeout} s: {' '.join(cmd)}\n--- output ---\n{out[-3000:]}")
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 1:
        hint = f" (guest failure code {proc.returncode >> 1})" if proc.returncode > 1 and proc.returncode & 1 else ""
        sys.exit(f"disk_io.py: {vmm} exited with status {proc.returncode}, expected 1 (PASS){hint}: "
                 f"{' '.join(cmd)}\n--- output ---\n{out[-3000:]}")
    results = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in LINE.finditer(out)}
    log(f"  {vmm} {bus} {fmt}: {time.monotonic() - start:.1f} s wall, " +
        ", ".join(f"{k}: {v[0]} in {v[1]} us" for k, v in results.items()))
    return results


def perf_count(path):
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2] == "kvm:kvm_userspace_exit":
                if not fields[0].isdigit():
                    sys.exit(f"disk_io.py: perf could not count kvm:kvm_userspace_exit ({fields[0]})")
                return int(fields[0])
    sys.exit(f"disk_io.py: no kvm:kvm_userspace_exit count in {path}")


def perf_usable():
    if not shutil.which("perf"):
        return "perf is not installed"
    probe = subprocess.run(["perf", "stat", "-e", "kvm:kvm_userspace_exit", "--", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if probe.returncode != 0:
        return "perf cannot count kvm:kvm_userspace_exit here: " + probe.stderr.decode(errors="replace").strip()[:200]
    return None


def subset(value, allowed, what):
    items = [v for v in value.split(",") if v]
    for v in items:
        if v not in allowed:
            sys.exit(f"disk_io.py: unknown {what} {v} (one of {', '.join(allowed)})")
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="boots per VMM, bus and format (default 3)")
    ap.add_argument("--ms", type=int, default=1500, help="milliseconds per mode (default 1500)")
    ap.add_argument("--hako", default="build/hako")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--guest", default="build/tests/guest/blkbench.elf")
    ap.add_argument("--image-mib", type=int, default=256)
    ap.add_argument("--timeout", type=int, default=300, help="seconds one boot may take")
    ap.add_argument("--buses", default=",".join(BUSES), help="comma-separated subset of virtio,ide,ahci")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of raw,qcow2")
    ap.add_argument("--no-exits", action="store_true", help="skip counting exits to userspace")
    ap.add_argument("--exit-buses", default="virtio", help="buses whose exits per request are counted (raw)")
    ap.add_argument("--exit-requests", default="200,2200", help="request counts of the two exit-counting runs")
    ap.add_argument("--vmms", default="hako,qemu", help="comma-separated subset of hako,qemu")
    ap.add_argument("--make-image", metavar="PATH", help="only write a raw pattern image of --image-mib MiB to PATH")
    args = ap.parse_args()

    if args.make_image:
        make_image(args.make_image, args.image_mib)
        return
    vmms = subset(args.vmms, ("hako", "qemu"), "VMM")
    buses = subset(args.buses, BUSES, "bus")
    formats = subset(args.formats, FORMATS, "format")
    exit_buses = [b for b in subset(args.exit_buses, BUSES, "bus") if b in buses and "raw" in formats]
    if not os.path.isfile(args.guest):
        sys.exit(f"disk_io.py: no guest image at {args.guest} (build the hako_guests target)")
    if "hako" in vmms and not os.access(args.hako, os.X_OK):
        sys.exit(f"disk_io.py: no hako binary at {args.hako}")
    if "qemu" in vmms and not shutil.which(args.qemu):
        sys.exit(f"disk_io.py: {args.qemu} not found")
    if "qcow2" in formats and not shutil.which("qemu-img"):
        sys.exit("disk_io.py: qemu-img not found (qemu-utils): it makes the qcow2 image")
    if args.image_mib < 2:
        sys.exit("disk_io.py: the image must be at least 2 MiB")

    results = {}  # (bus, fmt) -> {vmm: [run results]}
    exits = {}    # (bus, vmm, mode) -> exits per request
    exit_note = None
    with tempfile.TemporaryDirectory(prefix="hako-blkbench.") as work:
        images = {"raw": os.path.join(work, "disk.img")}
        log(f"writing the {args.image_mib} MiB image {images['raw']}")
        make_image(images["raw"], args.image_mib)
        if "qcow2" in formats:
            images["qcow2"] = os.path.join(work, "disk.qcow2")
            subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", images["raw"], images["qcow2"]],
                           check=True)
        cmdline = f"ms={args.ms}"
        for bus in buses:
            for fmt in formats:
                runs = {v: [] for v in vmms}
                for i in range(args.runs):
                    log(f"{bus} {fmt}: run {i + 1}/{args.runs}")
                    for v in vmms:
                        r = run_guest(v, args, bus, fmt, images[fmt], cmdline)
                        missing = [name for name, _, _ in modes_for(bus) if name not in r]
                        if missing:
                            sys.exit(f"disk_io.py: {v} printed no result for {', '.join(missing)} ({bus}, {fmt})")
                        runs[v].append(r)
                results[(bus, fmt)] = runs

        if not args.no_exits and exit_buses:
            exit_note = perf_usable()
            if exit_note is None:
                a, b = (int(x) for x in args.exit_requests.split(","))
                perf_out = os.path.join(work, "perf.csv")
                for bus in exit_buses:
                    for v in vmms:
                        for bit, (name, _, qd) in enumerate(MODES):
                            if bus == "ide" and qd > 1:
                                continue
                            counts = []
                            for n in (a, b):
                                run_guest(v, args, bus, "raw", images["raw"],
                                          f"quick=1 requests={n} modes={1 << bit}", perf_out)
                                counts.append(perf_count(perf_out))
                            exits[(bus, v, name)] = (counts[1] - counts[0]) / (b - a)
                            log(f"  {v} {bus} {name}: {exits[(bus, v, name)]:.3f} exits to userspace per request")

    date = time.strftime("%Y-%m-%d")
    print(f"{args.image_mib} MiB image in the host page cache, {args.ms} ms per mode, medians of {args.runs} boots "
          f"per VMM ({date})\n")
    both = vmms == ["hako", "qemu"]
    head = "| bus | image | mode |"
    sep = "| --- | --- | --- |"
    for v in vmms:
        head += f" {v} IOPS | {v} MB/s |"
        sep += " --- | --- |"
    if both:
        head += " hako/QEMU |"
        sep += " --- |"
    print(head)
    print(sep)
    for bus in buses:
        for fmt in formats:
            runs = results[(bus, fmt)]
            for name, block, _ in modes_for(bus):
                row = f"| {bus} | {fmt} | {name} |"
                iops = {}
                for v in vmms:
                    iops[v] = statistics.median(r[name][0] * 1e6 / r[name][1] for r in runs[v])
                    row += f" {iops[v]:,.0f} | {iops[v] * block / 1e6:,.1f} |"
                if both:
                    row += f" {iops['hako'] / iops['qemu']:.2f} |"
                print(row)
    if exits:
        print("\nExits to userspace per request (raw image; the guest's timer reads and status polls included):\n")
        head = "| bus | mode |" + "".join(f" {v} |" for v in vmms)
        print(head)
        print("| --- | --- |" + " --- |" * len(vmms))
        for bus in exit_buses:
            for name, _, qd in modes_for(bus):
                print(f"| {bus} | {name} |" + "".join(f" {exits[(bus, v, name)]:.3f} |" for v in vmms))
    if exit_note:
        print(f"\nExits to userspace per request: not measured ({exit_note}).")


if __name__ == "__main__":
    main()
