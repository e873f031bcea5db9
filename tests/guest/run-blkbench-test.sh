#!/usr/bin/env bash
# The blkbench guest in its quick mode (a fixed, small number of requests per mode, no timing checked): keeps the
# benchmark guest of bench/virtio_blk.py working. An 8 MiB pattern image (written by bench/virtio_blk.py), every
# read's pattern verified by the guest, which must reach 64-bit CPL3 and print one result line per mode.
#
# usage: run-blkbench-test.sh <hako|qemu> <blkbench.elf>     (environment: HAKO, QEMU, LOG as for run-guest-test.sh)
set -u
[ $# -eq 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
vmm=$1 guest=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-blkbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 "$here/../../bench/virtio_blk.py" --make-image "$tmp/disk.img" --image-mib 8 || exit 1
requests=300
"$here/run-guest-test.sh" "$vmm" "$guest" 1 --disk "$tmp/disk.img" --cmdline "quick=1 requests=$requests verify=1" \
    --expect-output "blkbench: 64-bit code at CPL3" \
    --expect-output "blkbench: randread-4k qd1: $requests requests in" \
    --expect-output "blkbench: randread-4k qd32: $requests requests in" \
    --expect-output "blkbench: seqread-1m qd1: $requests requests in" \
    --expect-output "blkbench: seqread-1m qd32: $requests requests in" \
    --expect-output PASS ${LOG:+--log "$LOG"}
