#!/usr/bin/env bash
# The AHCI guest test: a 4 MiB raw image with the host's pattern (ide-pattern.py make) as the SATA disk on port 0 of
# the ICH9 AHCI and a 100-block pattern CD image (ide-pattern.py make-cd) as the SATA CD-ROM on port 1; the ahci
# guest reads the disk by DMA and NCQ, writes its own pattern by DMA, NCQ and the PIO protocol and reads it back,
# fails an NCQ read past the end and recovers, reads the CD's capacity and a block, then the host checks the disk
# image (ide-pattern.py check).
# With qcow2 the disk is that image converted to qcow2, checked afterwards with qemu-img check and converted back.
# QEMU's reference: -device ich9-ahci with ide-hd / ide-cd on its buses ahci.0 / ahci.1.
# usage: run-ahci-test.sh <hako|qemu> <ahci.elf> [qcow2]
set -u
[ $# -ge 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 format=${3:-raw}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-ahci.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
image=$tmp/disk.img
python3 "$here/ide-pattern.py" make "$image" || exit 1
python3 "$here/ide-pattern.py" make-cd "$tmp/cd.iso" || exit 1
if [ "$format" = qcow2 ]; then
    qemu-img convert -O qcow2 "$image" "$tmp/disk.qcow2" || exit 1
    image=$tmp/disk.qcow2
fi
case $vmm in
    hako) media=(--disk "path=$image,if=ahci,format=$format" --cdrom "path=$tmp/cd.iso,if=ahci,format=raw") ;;
    qemu) media=(-device ich9-ahci,id=ahci
                 -drive "file=$image,if=none,id=hd,format=$format" -device ide-hd,drive=hd,bus=ahci.0
                 -drive "file=$tmp/cd.iso,if=none,id=cd,media=cdrom,format=raw" -device ide-cd,drive=cd,bus=ahci.1) ;;
    *) echo "run-ahci-test: VMM must be hako or qemu" >&2; exit 2 ;;
esac
# hako keeps the NCQ command error log (READ LOG EXT page 10h); QEMU's ide-hd aborts that command (the guest then
# recovers and goes on), so only hako's run must show the log naming the failed tag.
extra=()
[ "$vmm" = hako ] && extra=(--expect-output "ahci: NCQ error log: tag byte 0x03")
"$here/run-guest-test.sh" "$vmm" "$guest" 1 --expect-output PASS "${extra[@]}" \
    --expect-output "ahci: READ DMA read-back of the NCQ write: sectors 200-207 hold the written pattern" \
    --expect-output "ahci: CD-ROM: READ(10) of block 42 holds its pattern" ${LOG:+--log "$LOG"} -- "${media[@]}" || exit 1
if [ "$format" = qcow2 ]; then
    qemu-img check -q "$image" || { echo "FAIL: qemu-img check found problems in the qcow2 image"; exit 1; }
    qemu-img convert -O raw "$image" "$tmp/back.raw" || exit 1
    image=$tmp/back.raw
fi
python3 "$here/ide-pattern.py" check "$image"
