#!/usr/bin/env bash
# Firmware boot order: a bootable virtio-blk disk (rom/mbr.S, exits with status 69) and a virtio-net NIC whose option
# ROM is the project's BEV boot ROM (rom/bev_rom.S, exits with status 67). hako runs without --firmware, so this also
# checks that SeaBIOS is the default firmware. Which one boots is the test:
#   default       no order given: SeaBIOS boots the hard disk first (69)
#   bootindex     the NIC bootindex=1, the disk bootindex=2: the NIC's ROM first (67); QEMU: the same properties
#   boot-net      hako --boot net (67)
#   boot-disk     hako --boot disk,net (69)
# usage: run-boot-order-test.sh <hako|qemu> <mbr-disk.img> <bev-net-rom> <case>
# Environment: HAKO, QEMU, LOG
set -u
[ $# -eq 4 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
vmm=$1 disk_src=$2 rom=$3 case=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-boot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$disk_src" "$tmp/disk.img"
log=${LOG:-$tmp/serial.log}
mkdir -p "$(dirname "$log")"
disk_extra="" net_extra="" qdisk_extra="" qnet_extra="" boot=() expected=69 text="hako-mbr: booted"
case $case in
    default) ;;
    bootindex) disk_extra=",bootindex=2" net_extra=",bootindex=1" qdisk_extra=",bootindex=2" qnet_extra=",bootindex=1"
               expected=67 text="hako-bev: booted" ;;
    boot-net) boot=(--boot net) expected=67 text="hako-bev: booted" ;;
    boot-disk) boot=(--boot disk,net) ;;
    *) echo "run-boot-order-test: unknown case $case" >&2; exit 2 ;;
esac
case $vmm in
    hako) cmd=("${HAKO:-build/hako}" run --memory 64M --debug-exit --vga none --disk "path=$tmp/disk.img$disk_extra"
               --net "user,romfile=$rom$net_extra" "${boot[@]}") ;;
    qemu) [ ${#boot[@]} -eq 0 ] || { echo "run-boot-order-test: $case is a hako option test" >&2; exit 2; }
          cmd=("${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 64M -nodefaults -nographic
               -display none -serial stdio -no-reboot -bios /usr/share/seabios/bios-256k.bin
               -drive "file=$tmp/disk.img,if=none,id=d0,format=raw" -device "virtio-blk-pci,drive=d0$qdisk_extra"
               -netdev user,id=n0 -device "virtio-net-pci,netdev=n0,romfile=$rom$qnet_extra"
               -device isa-debug-exit,iobase=0xf4,iosize=4) ;;
    *) echo "run-boot-order-test: VMM must be hako or qemu" >&2; exit 2 ;;
esac
echo "run-boot-order-test: ${cmd[*]}"
timeout 120 "${cmd[@]}" </dev/null >"$log" 2>&1
status=$?
if [ $status -ne $expected ] || ! grep -aq "$text" "$log"; then
    echo "run-boot-order-test: FAIL: status $status (expected $expected), \"$text\" $(grep -aq "$text" "$log" && echo seen || echo missing)"
    tail -c 1500 "$log"
    exit 1
fi
echo "run-boot-order-test: ok ($case: $text, status $status)"
