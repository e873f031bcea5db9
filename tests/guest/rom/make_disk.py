#!/usr/bin/env python3
"""Makes the 1 MiB raw test boot disk: the boot sector in sector 0, the marker rom/mbr.S reads in sector 1."""
import sys

boot, out = sys.argv[1], sys.argv[2]
sector0 = open(boot, "rb").read()
if len(sector0) != 512 or sector0[510:] != b"\x55\xaa":
    sys.exit(f"make_disk: {boot} is not a 512-byte boot sector")
disk = bytearray(1 << 20)
disk[0:512] = sector0
marker = b"HAKO-SECTOR-ONE"
disk[512:512 + len(marker)] = marker
open(out, "wb").write(disk)
