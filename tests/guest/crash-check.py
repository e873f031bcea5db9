#!/usr/bin/env python3
"""Checks a disk after the crash test (run-qcow2-crash-test.sh): the virtio guest with crash=1 wrote generations
base+1.. of 16 tagged 4 KiB blocks each, flushing after each, until the VMM was killed.

  crash-check.py BEFORE.raw AFTER.raw BASE LAST_FLUSHED

For every 512-byte sector: if a flushed generation (BASE < g <= LAST_FLUSHED) wrote it, it must hold the tag of the
last such generation, or of generation LAST_FLUSHED+1 (in flight at the kill) if that one wrote it too; otherwise it
must hold what it held before the run, or generation LAST_FLUSHED+1's tag if that one wrote it. Anything else (a
lost flushed write, garbage, a tag from the wrong place) fails.
"""
import struct
import sys

BLOCKS_PER_GEN = 16
M32 = 0xFFFFFFFF


def crash_block(g, k, nblocks):
    # The guest's crash_block() in uint32 arithmetic.
    h = ((g * 2654435761) & M32) ^ (((k + 1) * 2246822519) & M32)
    h ^= h >> 15
    h = (h * 2654435761) & M32
    h ^= h >> 13
    return h % nblocks


def sector_bytes(g, sector):
    head = b"HAKOGEN!" + struct.pack("<II", g, sector)
    return head + bytes(((g * 31 + sector + i) & 0xFF) for i in range(16, 512))


def main():
    before_path, after_path, base, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    before = open(before_path, "rb").read()
    after = open(after_path, "rb").read()
    if len(before) != len(after):
        print("crash-check: FAIL: the disk changed size: %d -> %d" % (len(before), len(after)))
        return 1
    nblocks = len(after) // 4096
    latest = {}      # sector -> last flushed generation that wrote it
    in_flight = set()
    for g in range(base + 1, last + 2):
        for k in range(BLOCKS_PER_GEN):
            b = crash_block(g, k, nblocks)
            for s in range(b * 8, b * 8 + 8):
                if g <= last:
                    latest[s] = g
                else:
                    in_flight.add(s)
    bad = 0
    checked = set(latest) | in_flight
    for s in sorted(checked):
        got = after[s * 512:(s + 1) * 512]
        ok = []
        if s in latest:
            ok.append(sector_bytes(latest[s], s))
        else:
            ok.append(before[s * 512:(s + 1) * 512])
        if s in in_flight:
            ok.append(sector_bytes(last + 1, s))
        if got not in ok:
            bad += 1
            if bad <= 5:
                tag = got[:16]
                print("crash-check: FAIL: sector %d holds %r, expected generation %s%s" % (
                    s, tag, latest.get(s, "none (old contents)"), " or %d" % (last + 1) if s in in_flight else ""))
    # Sectors no generation of this run touched must be as before.
    untouched_changed = 0
    for s in range(len(after) // 512):
        if s not in checked and after[s * 512:(s + 1) * 512] != before[s * 512:(s + 1) * 512]:
            untouched_changed += 1
            if untouched_changed <= 3:
                print("crash-check: FAIL: sector %d changed but no generation wrote it" % s)
    print("crash-check: generations %d..%d flushed, %d sectors written, %d in flight; %d wrong, %d stray changes" % (
        base + 1, last, len(latest), len(in_flight - set(latest)), bad, untouched_changed))
    return 1 if bad or untouched_changed else 0


if __name__ == "__main__":
    sys.exit(main())
