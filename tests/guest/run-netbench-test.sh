#!/usr/bin/env bash
# The netbench guest in its quick mode (a fixed, small number of frames per mode, no timing checked): keeps the
# benchmark guest of bench/virtio_net.py working. The guest must reach 64-bit CPL3 and send FRAMES UDP datagrams of
# 64 and of 1514-byte frames; the host receiver must account for every one (received with its sequence number and
# payload pattern intact, or dropped by the receiving socket as the kernel counts) with none corrupt or duplicated.
#
# usage: run-netbench-test.sh <hako|qemu> <netbench.elf> <user|tap> [FRAMES]   (tap needs root)
# Environment: HAKO, QEMU (as run-guest-test.sh), LOG (the guest's serial output and the checks; default: stdout).
set -u
[ $# -ge 3 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 backend=$3 frames=${4:-256}
here=$(cd "$(dirname "$0")" && pwd)
args=(--check --vmms "$vmm" --guest "$guest" --backend "$backend" --frames "$frames" --rekick 0
      --hako "${HAKO:-build/hako}" --qemu "${QEMU:-qemu-system-x86_64}" --timeout 120)
if [ -n "${LOG:-}" ]; then
    mkdir -p "$(dirname "$LOG")"
    python3 "$here/../../bench/virtio_net.py" "${args[@]}" --log "$LOG" >"$LOG.out" 2>&1
    status=$?
    cat "$LOG.out"
    exit $status
fi
exec python3 "$here/../../bench/virtio_net.py" "${args[@]}"
