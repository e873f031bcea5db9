#!/usr/bin/env python3
"""VMM fixed cost: a tiny guest that exits at once through isa-debug-exit, run by hako and QEMU side by side.

Reports, per configuration, the median wall time of N runs, the median peak RSS, and for hako the time from
main() to the first KVM_RUN (hako -v logs it). Usage: bench/fixed_cost.py [--runs N] [--hako build/hako]
Writes a Markdown table to stdout (bench/RESULTS.md keeps the numbers of a run with the command line).
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time


def build_rom(workdir):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_rom.S")
    obj = os.path.join(workdir, "tiny_rom.o")
    rom = os.path.join(workdir, "tiny_rom.bin")
    subprocess.run(["as", "--32", "-o", obj, src], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", obj, rom], check=True)
    assert os.path.getsize(rom) == 0x10000, "tiny ROM must be 64 KiB"
    return rom


def run_once(cmd, expect_status, workdir):
    # Peak RSS comes from GNU time: a child's ru_maxrss also counts the forked parent's pages before exec, so measuring
    # from this Python process would report Python's size. Wall time includes GNU time's own fork+exec (~1 ms),
    # the same for every configuration.
    rss_file = os.path.join(workdir, "rss")
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    stderr = proc.stderr.decode(errors="replace")
    code = proc.returncode
    if code != expect_status:
        raise SystemExit(f"{' '.join(cmd)}: exit status {code}, expected {expect_status}\n{stderr}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    first_run = None
    m = re.search(r"first KVM_RUN ([0-9.]+) ms after start", stderr)
    if m:
        first_run = float(m.group(1))
    return wall * 1000.0, rss_kib / 1024.0, first_run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--hako", default="build/hako")
    args = ap.parse_args()
    qemu = "qemu-system-x86_64"
    with tempfile.TemporaryDirectory() as work:
        rom = build_rom(work)
        configs = [
            ("hako --firmware (tiny ROM)", [args.hako, "run", "-v", "--firmware", rom, "--debug-exit", "--memory", "64M"]),
            ("QEMU -M microvm -bios (tiny ROM)", [qemu, "-M", "microvm", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
                                                  "-m", "64M", "-nodefaults", "-nographic", "-display", "none",
                                                  "-bios", rom, "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]),
            ("QEMU -M pc -bios (tiny ROM)", [qemu, "-M", "pc", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
                                             "-m", "64M", "-nodefaults", "-nographic", "-display", "none",
                                             "-bios", rom, "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]),
        ]
        results = {}
        # Interleave the configurations so drift on the machine hits them alike.
        for _ in range(args.runs):
            for name, cmd in configs:
                results.setdefault(name, []).append(run_once(cmd, 1, work))
    base = statistics.median(r[0] for r in results[configs[1][0]])
    print(f"| configuration ({args.runs} runs each, interleaved) | median wall ms | vs QEMU microvm | median peak RSS MiB | median ms to first KVM_RUN |")
    print("| --- | --- | --- | --- | --- |")
    for name, _ in configs:
        rs = results[name]
        wall = statistics.median(r[0] for r in rs)
        rss = statistics.median(r[1] for r in rs)
        firsts = [r[2] for r in rs if r[2] is not None]
        first = f"{statistics.median(firsts):.2f}" if firsts else "n/a"
        print(f"| {name} | {wall:.1f} | {wall / base:.2f} | {rss:.1f} | {first} |")


if __name__ == "__main__":
    main()
