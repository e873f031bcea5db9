#!/usr/bin/env bash
# The IDE guest test: a 4 MiB raw image with the host's pattern (ide-pattern.py make) as the primary master ATA disk
# of the PIIX3 IDE; the ide guest reads it by PIO and bus master DMA, writes its own pattern both ways and reads it
# back, then the host checks the image file (ide-pattern.py check).
# With qcow2 the disk is that image converted to qcow2, checked afterwards with qemu-img check and converted back.
# usage: run-ide-test.sh <hako|qemu> <ide.elf> [qcow2]
set -u
[ $# -ge 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 format=${3:-raw}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-ide.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
image=$tmp/disk.img
python3 "$here/ide-pattern.py" make "$image" || exit 1
if [ "$format" = qcow2 ]; then
    qemu-img convert -O qcow2 "$image" "$tmp/disk.qcow2" || exit 1
    image=$tmp/disk.qcow2
fi
case $vmm in
    hako) disk=(--disk "path=$image,if=ide,format=$format") ;;
    qemu) disk=(-drive "file=$image,if=ide,index=0,format=$format,media=disk") ;;
    *) echo "run-ide-test: VMM must be hako or qemu" >&2; exit 2 ;;
esac
"$here/run-guest-test.sh" "$vmm" "$guest" 1 --expect-output PASS \
    --expect-output "ide: READ MULTIPLE EXT read-back of the DMA write: sectors 200-211 hold the written pattern" \
    --expect-output "ide: read past the end refused" ${LOG:+--log "$LOG"} -- "${disk[@]}" || exit 1
if [ "$format" = qcow2 ]; then
    qemu-img check -q "$image" || { echo "FAIL: qemu-img check found problems in the qcow2 image"; exit 1; }
    qemu-img convert -O raw "$image" "$tmp/back.raw" || exit 1
    image=$tmp/back.raw
fi
python3 "$here/ide-pattern.py" check "$image"
