#!/usr/bin/env bash
# The virtio-blk guest test: a fresh 4 MiB raw image, the virtio guest (dev=blk) writes, flushes and reads it back
# through hako or QEMU, then the host checks the image holds exactly what the guest wrote.
#
# usage: run-virtio-blk-test.sh <hako|qemu> <virtio.elf> <irq: msix|intx> [kill|qcow2]
#   kill: data safety. The guest stops after its FLUSH completes and the harness kills the VMM with SIGKILL; the
#         flushed data must be in the file.
#   qcow2: the disk is a qcow2 image (qemu-img create); afterwards `qemu-img check` must find it consistent and its
#         contents (converted to raw) must hold the guest's pattern.
set -u
[ $# -ge 3 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 irq=$3 mode=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-blk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
image=$tmp/disk.img
if [ "$mode" = qcow2 ]; then
    qemu-img create -q -f qcow2 "$image" 4M || exit 1
    export HAKO_DISK_FORMAT=qcow2
else
    truncate -s 4M "$image"
fi
serial=hako-serial-01
args=(--disk-serial "$serial" --disk "$image" --cmdline "dev=blk irq=$irq serial=$serial")
expected=1
if [ "$mode" = kill ]; then
    args+=(--cmdline "stop_after_flush=1" --kill-after "blk: flushed, waiting to be killed")
    expected=137
else
    args+=(--expect-output PASS --expect-output "blk: read back both ranges intact")
fi
"$here/run-guest-test.sh" "$vmm" "$guest" "$expected" "${args[@]}" ${LOG:+--log "$LOG"} || exit 1
if [ "$mode" = qcow2 ]; then
    qemu-img check -q "$image" || { echo "FAIL: qemu-img check found problems in the qcow2 image"; exit 1; }
    qemu-img convert -O raw "$image" "$tmp/disk.raw" || exit 1
    image=$tmp/disk.raw
fi
python3 "$here/check-blk-pattern.py" "$image"
