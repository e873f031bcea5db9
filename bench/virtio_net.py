#!/usr/bin/env python3
"""virtio-net transmit throughput, guest to host: hako and QEMU side by side, the same guest and command line.

The guest is tests/guest/guests/netbench.c: it sets up the virtio-net device at CPL0 and learns the peer's MAC by
ARP, then sends UDP datagrams from 64-bit CPL3 (native on PVM hosts, where CPL0 code is emulated) as fast as the
device takes them: 64-byte frames ("udp-small", packets/s), then 1514-byte frames ("udp-large", MB/s), each for --ms
milliseconds timed with the ACPI PM timer; one descriptor per frame in a 256-entry transmit queue, used descriptors
reclaimed by polling, notifies only when the device asks (EVENT_IDX unless --event-idx 0).

Backends (--backend):
  user  the VMMs' user networking (hako: libslirp; QEMU: -netdev user): the guest is 10.0.2.15 and sends to the
        gateway 10.0.2.2, which slirp turns into a host UDP socket sending to 127.0.0.1:PORT.
  tap   (root) a network namespace with a tap (host side 10.0.3.1/24); the guest is 10.0.3.15 and sends to 10.0.3.1.
        Both VMMs run inside the namespace on the tap (hako --net tap=IF; QEMU -netdev tap,ifname=IF,script=no,
        downscript=no, without vhost).
The receiver (bench/netbench_recv.c, built by this script with cc) counts and checks every datagram (magic, mode,
sequence number, payload pattern) with recvmmsg on a 64 MiB socket buffer, and reports the datagrams the kernel
dropped because its buffer was full (SO_RXQ_OVFL) and its own CPU time, so a receiver bottleneck shows.

Each VMM boots the guest --runs times (interleaved: hako, QEMU, hako, ...). Per mode the table gives the medians of
the packets/s and MB/s delivered to the receiver (UDP payload bytes, 10^6 bytes/s, over the receiver's first to last
datagram of the mode), the packets/s the guest put in the queue (its own clock) and the share of those the receiver
got, and the hako/QEMU ratio of the delivered packets/s. Then, unless --no-exits, the exits to userspace per packet:
perf counts kvm:kvm_userspace_exit (root or perf_event_paranoid <= -1) over two quick runs of each mode alone
(--exit-frames A,B frames); (exits_B - exits_A) / (B - A) cancels the boot. The guest's PM timer reads (one every
256 frames) are in it.

--rekick 1 lets the guest notify again when frames are outstanding and nothing moved for 2^16 polls, and the guest
reports how often. The default is 0, as a Linux driver behaves: a device that leaves buffers in the available ring
without asking for a notify then stalls the guest, and the run fails (hako did before requeue_notify; see
bench/RESULTS.md).

--check (the CI smoke test, tests/guest/run-netbench-test.sh): one quick run of --frames frames per mode on each VMM
of --vmms; passes if the guest sent them all and every one is accounted for: received intact, or dropped by the
receiving socket (counted by the kernel); no datagram corrupt or duplicated.

Usage: bench/virtio_net.py [--runs 3] [--ms 1500] [--backend user|tap] [--hako build/hako]
       [--guest build/tests/guest/netbench.elf]
Markdown to stdout (bench/RESULTS.md keeps the numbers of a run with its command line); progress to stderr.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ["udp-small", "udp-large"]  # the guest's order: bit i of modes= is MODES[i], the datagrams' mode field is i
GUEST_LINE = re.compile(r"netbench: (udp-\w+): (\d+) frames of (\d+) bytes in (\d+) us \((\d+) notifies, "
                        r"(\d+) polls with the queue full, (\d+) rekicks")
RECV_LINE = re.compile(r"mode (\d+) datagrams (\d+) bytes (\d+) len (\d+) first_ns (\d+) last_ns (\d+) max_seq (\d+) "
                       r"dups (\d+) reordered (\d+) bad (\d+)")
RECV_END = re.compile(r"drops (\d+) cpu_us (\d+)")
HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    sys.exit(f"virtio_net.py: {msg}")


class UserNet:
    """User networking: nothing to set up."""
    guest_ip, peer_ip, recv_addr = "10.0.2.15", "10.0.2.2", "127.0.0.1"
    prefix = []

    def hako_args(self):
        return ["--net", "user"]

    def qemu_args(self):
        return ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="]

    def close(self):
        pass


class TapNet:
    """A private network namespace holding a tap; the receiver and both VMMs run inside it."""
    guest_ip, peer_ip, recv_addr = "10.0.3.15", "10.0.3.1", "10.0.3.1"

    def __init__(self):
        if os.geteuid() != 0:
            die("--backend tap needs root (network namespace and tap)")
        self.ns = f"hako-nb-{os.getpid()}"
        self.tap = "nbtap0"
        self.prefix = ["ip", "netns", "exec", self.ns]
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        try:
            for cmd in (["ip", "link", "set", "lo", "up"],
                        ["ip", "tuntap", "add", "dev", self.tap, "mode", "tap"],
                        ["ip", "addr", "add", f"{self.peer_ip}/24", "dev", self.tap],
                        ["ip", "link", "set", self.tap, "up"]):
                subprocess.run(self.prefix + cmd, check=True)
        except subprocess.CalledProcessError:
            self.close()
            raise

    def hako_args(self):
        return ["--net", f"tap={self.tap}"]

    def qemu_args(self):
        return ["-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
                "-device", "virtio-net-pci,netdev=n0,romfile="]

    def close(self):
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)


def build_receiver(work):
    out = os.path.join(work, "netbench_recv")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        die("no C compiler (cc) for bench/netbench_recv.c")
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, os.path.join(HERE, "netbench_recv.c")],
                   check=True)
    return out


def vmm_command(vmm, args, net, cmdline):
    if vmm == "hako":
        return [args.hako, "run", "--kernel", args.guest, "--cmdline", cmdline, "--debug-exit", "--cpus", "1",
                "--memory", "64M", "--on-reboot", "exit"] + net.hako_args()
    return [args.qemu, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "pc", "-m", "64", "-smp", "1",
            "-nographic", "-no-reboot", "-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", args.guest, "-append", cmdline] + net.qemu_args()


def run_guest(vmm, args, net, receiver, cmdline, perf_out=None):
    """Boots the guest once with a fresh receiver. Returns (guest {mode: dict}, receiver {mode: dict}, drops, cpu_us);
    exits with a clear message on any failure."""
    recv = subprocess.Popen(net.prefix + [receiver, net.recv_addr, "0"], stdout=subprocess.PIPE, text=True)
    try:
        first = recv.stdout.readline()
        m = re.match(r"port (\d+)", first)
        if not m:
            die(f"the receiver did not start (said {first!r})")
        port = int(m.group(1))
        full_cmdline = f"ip={net.guest_ip} peer={net.peer_ip} port={port} {cmdline}"
        cmd = net.prefix + vmm_command(vmm, args, net, full_cmdline)
        if perf_out:
            cmd = ["perf", "stat", "-x", ",", "-o", perf_out, "-e", "kvm:kvm_userspace_exit", "--"] + cmd
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            die(f"{vmm} timed out after {args.timeout} s: {' '.join(cmd)}\n--- output ---\n{out[-3000:]}")
        out = proc.stdout.decode(errors="replace")
        if args.log:
            with open(args.log, "a") as f:
                f.write(f"--- {' '.join(cmd)}\n{out}\n")
        if proc.returncode != 1:
            hint = f" (guest failure code {proc.returncode >> 1})" if proc.returncode > 1 and proc.returncode & 1 else ""
            die(f"{vmm} exited with status {proc.returncode}, expected 1 (PASS){hint}: {' '.join(cmd)}\n"
                f"--- output ---\n{out[-3000:]}")
        time.sleep(0.3)  # datagrams still in flight in the host's stack
        recv.send_signal(signal.SIGTERM)
        rout, _ = recv.communicate(timeout=30)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    if recv.returncode != 0:
        die(f"the receiver exited with status {recv.returncode}")
    guest = {}
    for g in GUEST_LINE.finditer(out):
        guest[g.group(1)] = {"frames": int(g.group(2)), "len": int(g.group(3)), "us": int(g.group(4)),
                             "notifies": int(g.group(5)), "rekicks": int(g.group(7))}
    got = {}
    for r in RECV_LINE.finditer(rout):
        mode = int(r.group(1))
        if mode < len(MODES):
            got[MODES[mode]] = {k: int(r.group(i)) for i, k in enumerate(
                ("datagrams", "bytes", "len", "first_ns", "last_ns", "max_seq", "dups", "reordered", "bad"), start=2)}
    end = RECV_END.search(rout)
    if not end:
        die(f"no summary from the receiver: {rout!r}")
    drops, cpu_us = int(end.group(1)), int(end.group(2))
    summary = []
    for name, g in guest.items():
        r = got.get(name, {"datagrams": 0})
        summary.append(f"{name}: sent {g['frames']} in {g['us']} us, received {r['datagrams']}, {g['rekicks']} rekicks")
    log(f"  {vmm}: {time.monotonic() - start:.1f} s wall, " + "; ".join(summary) +
        f"; receiver: {drops} socket drops, {cpu_us / 1000:.0f} ms CPU")
    return guest, got, drops, cpu_us


def perf_count(path):
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2] == "kvm:kvm_userspace_exit":
                if not fields[0].isdigit():
                    die(f"perf could not count kvm:kvm_userspace_exit ({fields[0]})")
                return int(fields[0])
    die(f"no kvm:kvm_userspace_exit count in {path}")


def perf_usable():
    if not shutil.which("perf"):
        return "perf is not installed"
    probe = subprocess.run(["perf", "stat", "-e", "kvm:kvm_userspace_exit", "--", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if probe.returncode != 0:
        return "perf cannot count kvm:kvm_userspace_exit here: " + probe.stderr.decode(errors="replace").strip()[:200]
    return None


def check(args, net, receiver):
    """The CI smoke test: every frame sent is accounted for, every datagram intact."""
    failed = False
    for v in args.vmm_list:
        cmdline = f"quick=1 frames={args.frames} event_idx={args.event_idx} rekick={args.rekick}"
        guest, got, drops, _ = run_guest(v, args, net, receiver, cmdline)
        received = 0
        for name in MODES:
            g, r = guest.get(name), got.get(name)
            if not g or g["frames"] != args.frames:
                log(f"check: {v} {name}: the guest did not report {args.frames} frames sent: FAILED")
                failed = True
                continue
            if not r or r["datagrams"] == 0:
                log(f"check: {v} {name}: no datagram received: FAILED")
                failed = True
                continue
            bad = r["bad"] + r["dups"]
            ok = bad == 0 and r["max_seq"] < args.frames
            log(f"check: {v} {name}: {r['datagrams']} of {g['frames']} datagrams of {r['len']} bytes received "
                f"intact, {r['bad']} corrupt, {r['dups']} duplicated, highest sequence {r['max_seq']}: "
                f"{'ok' if ok else 'FAILED'}")
            failed = failed or not ok
            received += r["datagrams"]
        total = args.frames * len(MODES)
        ok = received + drops == total
        log(f"check: {v}: {received} received + {drops} dropped by the receiving socket = {received + drops} of "
            f"{total} sent: {'ok' if ok else 'FAILED'}")
        failed = failed or not ok
    log("FAIL" if failed else "PASS")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="boots per VMM (default 3)")
    ap.add_argument("--ms", type=int, default=1500, help="milliseconds per mode (default 1500)")
    ap.add_argument("--backend", choices=("user", "tap"), default="user")
    ap.add_argument("--hako", default="build/hako")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--guest", default="build/tests/guest/netbench.elf")
    ap.add_argument("--event-idx", type=int, choices=(0, 1), default=1, help="guest negotiates EVENT_IDX (default 1)")
    ap.add_argument("--rekick", type=int, choices=(0, 1), default=0, help="guest re-notifies when stalled (default 0)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds one boot may take")
    ap.add_argument("--no-exits", action="store_true", help="skip counting exits to userspace")
    ap.add_argument("--exit-frames", default="2000,12000", help="frame counts of the two exit-counting runs")
    ap.add_argument("--vmms", default="hako,qemu", help="comma-separated subset of hako,qemu")
    ap.add_argument("--check", action="store_true", help="CI smoke test: one quick run per VMM, all frames checked")
    ap.add_argument("--frames", type=int, default=256, help="frames per mode with --check (default 256)")
    ap.add_argument("--log", help="append every boot's command line and guest output to this file")
    args = ap.parse_args()

    args.vmm_list = [v for v in args.vmms.split(",") if v]
    for v in args.vmm_list:
        if v not in ("hako", "qemu"):
            die(f"unknown VMM {v}")
    if not os.path.isfile(args.guest):
        die(f"no guest image at {args.guest} (build the hako_guests target)")
    if "hako" in args.vmm_list and not os.access(args.hako, os.X_OK):
        die(f"no hako binary at {args.hako}")
    if "qemu" in args.vmm_list and not shutil.which(args.qemu):
        die(f"{args.qemu} not found")

    with tempfile.TemporaryDirectory(prefix="hako-netbench.") as work:
        receiver = build_receiver(work)
        net = TapNet() if args.backend == "tap" else UserNet()
        try:
            if args.check:
                sys.exit(check(args, net, receiver))
            bench(args, net, receiver, work)
        finally:
            net.close()


def bench(args, net, receiver, work):
    vmms = args.vmm_list
    base = f"event_idx={args.event_idx} rekick={args.rekick}"
    results = {v: [] for v in vmms}
    for i in range(args.runs):
        log(f"run {i + 1}/{args.runs}")
        for v in vmms:
            guest, got, drops, cpu_us = run_guest(v, args, net, receiver, f"ms={args.ms} {base}")
            for name in MODES:
                if name not in guest:
                    die(f"{v} printed no result for {name}")
                if name not in got:
                    die(f"the receiver got no datagram of {name} from {v}")
                if got[name]["bad"] or got[name]["dups"]:
                    die(f"{v} {name}: {got[name]['bad']} corrupt and {got[name]['dups']} duplicated datagrams")
            results[v].append((guest, got, drops, cpu_us))

    exits = {}
    exit_note = None
    if not args.no_exits:
        exit_note = perf_usable()
        if exit_note is None:
            a, b = (int(x) for x in args.exit_frames.split(","))
            perf_out = os.path.join(work, "perf.csv")
            for v in vmms:
                for bit, name in enumerate(MODES):
                    counts = []
                    for n in (a, b):
                        run_guest(v, args, net, receiver, f"quick=1 frames={n} modes={1 << bit} {base}", perf_out)
                        counts.append(perf_count(perf_out))
                    exits[(v, name)] = (counts[1] - counts[0]) / (b - a)
                    log(f"  {v} {name}: {exits[(v, name)]:.4f} exits to userspace per packet")

    date = time.strftime("%Y-%m-%d")
    print(f"virtio-net guest to host over {'user networking (slirp)' if args.backend == 'user' else 'a tap'}, "
          f"{args.ms} ms per mode, EVENT_IDX {'on' if args.event_idx else 'off'}, rekick {args.rekick}, "
          f"medians of {args.runs} boots per VMM ({date})\n")
    head, sep = "| mode | frame bytes |", "| --- | --- |"
    for v in vmms:
        head += f" {v} delivered pkt/s | {v} MB/s | {v} sent pkt/s | {v} delivered % | {v} rekicks |"
        sep += " --- | --- | --- | --- | --- |"
    if vmms == ["hako", "qemu"]:
        head += " hako/QEMU delivered |"
        sep += " --- |"
    if exits:
        for v in vmms:
            head += f" {v} exits per packet |"
            sep += " --- |"
    print(head)
    print(sep)
    for name in MODES:
        flen = results[vmms[0]][0][0][name]["len"]
        row = f"| {name} | {flen} |"
        pps = {}
        for v in vmms:
            runs = results[v]

            def span_s(r):
                return max(r["last_ns"] - r["first_ns"], 1) / 1e9
            pps[v] = statistics.median(got[name]["datagrams"] / span_s(got[name]) for _, got, _, _ in runs)
            mbs = statistics.median(got[name]["bytes"] / span_s(got[name]) / 1e6 for _, got, _, _ in runs)
            sent = statistics.median(g[name]["frames"] * 1e6 / g[name]["us"] for g, _, _, _ in runs)
            share = statistics.median(100.0 * got[name]["datagrams"] / g[name]["frames"] for g, got, _, _ in runs)
            rekicks = statistics.median(g[name]["rekicks"] for g, _, _, _ in runs)
            row += f" {pps[v]:,.0f} | {mbs:,.1f} | {sent:,.0f} | {share:.1f} | {rekicks:.0f} |"
        if vmms == ["hako", "qemu"]:
            row += f" {pps['hako'] / pps['qemu']:.2f} |"
        if exits:
            for v in vmms:
                row += f" {exits[(v, name)]:.4f} |"
        print(row)
    print()
    for v in vmms:
        drops = [d for _, _, d, _ in results[v]]
        cpu = [c / 1000 for _, _, _, c in results[v]]
        print(f"Receiver with {v}: socket drops per boot {drops}, CPU ms per boot "
              f"{[round(c) for c in cpu]} (both modes, {2 * args.ms} ms of sending).")
    if exit_note:
        print(f"\nExits to userspace per packet: not measured ({exit_note}).")


if __name__ == "__main__":
    main()
