#!/usr/bin/env python3
"""Fixes the $PnP header checksum and the whole-ROM checksum of an option ROM image in place."""
import sys

path = sys.argv[1]
rom = bytearray(open(path, "rb").read())
assert rom[0:2] == b"\x55\xaa", "not an option ROM"
size = rom[2] * 512
assert len(rom) == size, f"image is {len(rom)} bytes, header says {size}"
pnp = rom[0x1a] | (rom[0x1b] << 8)
assert rom[pnp:pnp + 4] == b"$PnP", "no $PnP header"
length = rom[pnp + 5] * 16
rom[pnp + 9] = 0
rom[pnp + 9] = (-sum(rom[pnp:pnp + length])) & 0xff
rom[size - 1] = 0
rom[size - 1] = (-sum(rom)) & 0xff
open(path, "wb").write(rom)
