#!/usr/bin/env python3
"""Wraps a flat 64-bit kernel body (entry at +0x200) in a bzImage real-mode setup header (boot protocol 2.15).
usage: make-bzimage.py BODY.bin OUT.bzImage"""
import struct
import sys

body = open(sys.argv[1], "rb").read()
body += b"\0" * (-len(body) % 16)
setup_sects = 1
setup = bytearray(512 * (setup_sects + 1))
setup[0x1f1] = setup_sects
struct.pack_into("<I", setup, 0x1f4, len(body) // 16)      # syssize
struct.pack_into("<H", setup, 0x1fe, 0xaa55)               # boot_flag
setup[0x200] = 0xeb                                        # jump (no real-mode code: 64-bit entry only)
setup[0x201] = 0x264 - 0x202                               # header length
setup[0x202:0x206] = b"HdrS"
struct.pack_into("<H", setup, 0x206, 0x020f)               # protocol 2.15
setup[0x211] = 0x01                                        # loadflags: LOADED_HIGH
struct.pack_into("<I", setup, 0x214, 0x100000)             # code32_start
struct.pack_into("<I", setup, 0x22c, 0x7fffffff)           # initrd_addr_max
struct.pack_into("<I", setup, 0x230, 0x200000)             # kernel_alignment
struct.pack_into("<H", setup, 0x236, 0x0001)               # xloadflags: XLF_KERNEL_64
struct.pack_into("<I", setup, 0x238, 2047)                 # cmdline_size
struct.pack_into("<Q", setup, 0x258, 0x100000)             # pref_address
struct.pack_into("<I", setup, 0x260, len(body) + 0x10000)  # init_size
open(sys.argv[2], "wb").write(bytes(setup) + body)
