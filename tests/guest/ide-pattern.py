#!/usr/bin/env python3
"""The IDE guest's disk (guests/ide.c): `make IMAGE` writes a 4 MiB raw image with the host pattern in every sector;
`check IMAGE` verifies that the sectors the guest wrote (100-103, 200-211, 300-305) hold the guest's pattern and
every other sector still holds the host's."""
import sys

SECTORS = 8192
WRITTEN = set(range(100, 104)) | set(range(200, 212)) | set(range(300, 306))


def orig(s):
    return bytes(((s * 31 + i * 7 + 0x11) ^ (s >> 8)) & 0xFF for i in range(512))


def new(s):
    return bytes((~(s * 5 + i * 3) ^ 0xA5) & 0xFF for i in range(512))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        sys.exit("usage: ide-pattern.py make|check IMAGE")
    mode, path = sys.argv[1], sys.argv[2]
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
