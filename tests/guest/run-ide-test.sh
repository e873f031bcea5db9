#!/usr/bin/env bash
# The IDE guest test: a 4 MiB raw image with the host's pattern (ide-pattern.py make) as the primary master ATA disk
# of the PIIX3 IDE; the ide guest reads it by PIO and bus master DMA, writes its own pattern both ways and reads it
# back, then the host checks the image file (ide-pattern.py check).
# usage: run-ide-test.sh <hako|qemu> <ide.elf>
set -u
[ $# -eq 2 ] || { sed -n '2,5p' "$0" >&2; exit 2; }
vmm=$1 guest=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-ide.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
image=$tmp/disk.img
python3 "$here/ide-pattern.py" make "$image" || exit 1
case $vmm in
    hako) disk=(--disk "path=$image,if=ide") ;;
    qemu) disk=(-drive "file=$image,if=ide,index=0,format=raw,media=disk") ;;
    *) echo "run-ide-test: VMM must be hako or qemu" >&2; exit 2 ;;
esac
"$here/run-guest-test.sh" "$vmm" "$guest" 1 --expect-output PASS \
    --expect-output "ide: READ MULTIPLE EXT read-back of the DMA write: sectors 200-211 hold the written pattern" \
    --expect-output "ide: read past the end refused" ${LOG:+--log "$LOG"} -- "${disk[@]}" || exit 1
python3 "$here/ide-pattern.py" check "$image"
