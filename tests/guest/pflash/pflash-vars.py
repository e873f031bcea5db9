#!/usr/bin/env python3
"""The VARS flash image of the pflash test (tests/guest/pflash/pflash_fw.c).
make FILE: 64 KiB, byte i = (7i + 3) & 0xff, block 1 (0x1000-0x1fff) erased (0xff).
check FILE: the image after the firmware ran: exactly the programmed bytes and the erased block 2 differ."""
import sys

SIZE, SECTOR = 0x10000, 0x1000


def pattern():
    b = bytearray(((7 * i + 3) & 0xff) for i in range(SIZE))
    b[SECTOR:2 * SECTOR] = b"\xff" * SECTOR
    return b


def expected():
    b = pattern()
    b[SECTOR + 0x10] = 0x25
    b[SECTOR + 0x20:SECTOR + 0x22] = (0x1234).to_bytes(2, "little")
    b[SECTOR + 0x24:SECTOR + 0x28] = (0xdeadbeef).to_bytes(4, "little")
    b[2 * SECTOR:3 * SECTOR] = b"\xff" * SECTOR
    return b


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "make":
        with open(path, "wb") as f:
            f.write(pattern())
        return 0
    data = open(path, "rb").read()
    want = expected()
    if len(data) != SIZE:
        print(f"FAIL: {path} is {len(data)} bytes, expected {SIZE}")
        return 1
    diffs = [i for i in range(SIZE) if data[i] != want[i]]
    if diffs:
        print(f"FAIL: {len(diffs)} bytes differ from the expected image, first at {diffs[0]:#x}: "
              f"{data[diffs[0]]:#04x} (want {want[diffs[0]]:#04x})")
        return 1
    print("vars image: programmed bytes and erased block persisted, nothing else changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
