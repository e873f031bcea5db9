#!/usr/bin/env python3
"""The IDE and AHCI guests' disk (guests/ide.c, guests/ahci.c): `make IMAGE` writes a 4 MiB raw image with the host
pattern in every sector; `check IMAGE` verifies that the sectors the guest wrote (100-103, 200-211, 300-305) hold the
guest's pattern and every other sector still holds the host's. `make-cd IMAGE` writes the AHCI guest's CD image:
100 blocks of 2048 bytes, block b starting with b (little-endian u32), byte i after that (7b + i) mod 256."""
import sys

SECTORS = 8192
WRITTEN = set(range(100, 104)) | set(range(200, 212)) | set(range(300, 306))


def orig(s):
    return bytes(((s * 31 + i * 7 + 0x11) ^ (s >> 8)) & 0xFF for i in range(512))


def new(s):
    return bytes((~(s * 5 + i * 3) ^ 0xA5) & 0xFF for i in range(512))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check", "make-cd"):
        sys.exit("usage: ide-pattern.py make|check|make-cd IMAGE")
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "make-cd":
        with open(path, "wb") as f:
            for b in range(100):
                f.write(b.to_bytes(4, "little") + bytes((b * 7 + i) & 0xFF for i in range(4, 2048)))
        return
    if mode == "make":
        with open(path, "wb") as f:
            for s in range(SECTORS):
                f.write(orig(s))
        return
    data = open(path, "rb").read()
    if len(data) != SECTORS * 512:
        sys.exit(f"ide-pattern: the image is {len(data)} bytes, expected {SECTORS * 512}")
    bad = [s for s in range(SECTORS) if data[s * 512:(s + 1) * 512] != (new(s) if s in WRITTEN else orig(s))]
    if bad:
        sys.exit(f"ide-pattern: {len(bad)} sectors differ, first {bad[:8]}")
    print(f"ide-pattern: the guest's {len(WRITTEN)} sectors are in the image, the other {SECTORS - len(WRITTEN)} untouched")


if __name__ == "__main__":
    main()
