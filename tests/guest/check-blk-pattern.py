#!/usr/bin/env python3
"""Checks that a disk image holds what the virtio guest (guests/virtio.c, dev=blk) writes: its pattern in sectors
0-7 and 2048-2063, and zeros (the image was created empty) in the sectors between and after them."""
import sys


def pattern(sector, i):
    return ((sector * 7 + i * 13 + (i >> 9)) ^ 0x5A) & 0xFF


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check-blk-pattern.py IMAGE")
    data = open(sys.argv[1], "rb").read()
    bad = 0
    for first, count in ((0, 8), (2048, 16)):
        for s in range(first, first + count):
            want = bytes(pattern(s, i) for i in range(512))
            got = data[s * 512:(s + 1) * 512]
            if got != want:
                print(f"check-blk-pattern: sector {s} differs")
                bad += 1
    for s in (8, 100, 2047, 2064, len(data) // 512 - 1):
        if any(data[s * 512:(s + 1) * 512]):
            print(f"check-blk-pattern: sector {s} should be zero")
            bad += 1
    if bad:
        sys.exit(1)
    print("check-blk-pattern: the guest's 24 sectors are in the image, the rest is untouched")


if __name__ == "__main__":
    main()
