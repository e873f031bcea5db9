#!/usr/bin/env bash
# The blkbench guest in its quick mode (a fixed, small number of requests per mode, no timing checked): keeps the
# benchmark guest of bench/disk_io.py working. An 8 MiB pattern image (written by bench/disk_io.py; converted to
# qcow2 by qemu-img for the qcow2 runs), every read's pattern verified by the guest, which must reach 64-bit CPL3
# and print one result line per mode (IDE: the queue depth 32 modes are skipped, as IDE has no command queue).
#
# usage: run-blkbench-test.sh <hako|qemu> <blkbench.elf> [virtio|ide|ahci] [raw|qcow2]
#        (environment: HAKO, QEMU, LOG as for run-guest-test.sh)
set -u
[ $# -ge 2 ] && [ $# -le 4 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 bus=${3:-virtio} format=${4:-raw}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-blkbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 "$here/../../bench/disk_io.py" --make-image "$tmp/disk.img" --image-mib 8 || exit 1
image=$tmp/disk.img
if [ "$format" = qcow2 ]; then
    qemu-img convert -f raw -O qcow2 "$tmp/disk.img" "$tmp/disk.qcow2" || exit 1
    image=$tmp/disk.qcow2
fi
requests=300
qd32=("--expect-output" "blkbench: randread-4k qd32: $requests requests in"
      "--expect-output" "blkbench: seqread-1m qd32: $requests requests in")
[ "$bus" = ide ] && qd32=("--expect-output" "blkbench: randread-4k qd32: skipped"
                          "--expect-output" "blkbench: seqread-1m qd32: skipped")
HAKO_DISK_BUS=$bus HAKO_DISK_FORMAT=$format \
"$here/run-guest-test.sh" "$vmm" "$guest" 1 --disk "$image" --cmdline "quick=1 requests=$requests verify=1 dev=$bus" \
    --expect-output "blkbench: randread-4k qd1: $requests requests in" \
    --expect-output "blkbench: seqread-1m qd1: $requests requests in" \
    "${qd32[@]}" \
    --expect-output PASS ${LOG:+--log "$LOG"}
