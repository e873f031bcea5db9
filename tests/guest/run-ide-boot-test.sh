#!/usr/bin/env bash
# SeaBIOS boots from IDE, on hako and on QEMU (-M pc, the same PIIX3 IDE):
#   disk   the project's boot disk (rom/mbr.S + rom/make_disk.py) as the primary master ATA disk; the boot sector
#          reads sector 1 through int 13h (SeaBIOS's ATA PIO driver) and exits with status 69
#   cdrom  Debian's grub-rescue-cdrom.iso (package grub-rescue-pc) as the secondary master ATAPI CD-ROM with --boot
#          cdrom / -boot d: SeaBIOS's El Torito boot over ATAPI, then GRUB's menu on the serial console (SeaBIOS's
#          serial console mirrors int 10h, --vga none). The VMM is stopped once the menu is there. On PVM hosts the
#          guest's real-mode code is emulated: expect ~30 s.
#   order  the boot disk (primary master, bootindex=2) and the CD-ROM ($ISO, default Debian's grub-rescue-cdrom.iso;
#          bootindex=1): SeaBIOS's bootorder file names the IDE device paths (/pci@i0cf8/ide@1,1/drive@C/disk@U),
#          so it boots the CD first (without a bootorder it boots the hard disk); stopped once it does
# With the bus argument ahci, the same three cases on the ICH9 AHCI instead (QEMU: -device ich9-ahci with ide-hd /
# ide-cd on its ports): the disk on port 0, the CD-ROM on port 1 (port 0 when alone); SeaBIOS's AHCI driver boots
# them, and its bootorder paths are /pci@i0cf8/*@N/drive@P/disk@0.
# usage: run-ide-boot-test.sh <hako|qemu> <disk|cdrom|order> <image> [ide|ahci]
# Environment: HAKO, QEMU, LOG
set -u
[ $# -eq 3 ] || [ $# -eq 4 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
vmm=$1 case=$2 src=$3 bus=${4:-ide}
[ "$bus" = ide ] || [ "$bus" = ahci ] || { echo "run-ide-boot-test: bus must be ide or ahci" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-ideboot.XXXXXX")
log=${LOG:-$tmp/serial.log}
mkdir -p "$(dirname "$log")"
[ -f "$src" ] || { echo "run-ide-boot-test: FAIL: no image $src (grub-rescue-pc installed? scripts/install-deps.sh)"; exit 1; }
case $case in
    disk) cp "$src" "$tmp/disk.img"
          hako_media=(--disk "path=$tmp/disk.img,if=ide") qemu_media=(-drive "file=$tmp/disk.img,if=ide,index=0,format=raw")
          expected=69 texts=("Booting from Hard Disk" "hako-mbr: booted from disk 0x80" "hako-mbr: sector 1 read through int 13h") ;;
    cdrom) hako_media=(--cdrom "$src" --boot cdrom) qemu_media=(-drive "file=$src,if=ide,index=2,media=cdrom,format=raw" -boot d)
           expected=running texts=("Booting from DVD/CD" "GNU GRUB  version") ;;
    order) iso=${ISO:-/usr/lib/grub-rescue/grub-rescue-cdrom.iso}
           cp "$src" "$tmp/disk.img"
           hako_media=(--disk "path=$tmp/disk.img,if=ide,bootindex=2" --cdrom "path=$iso,bootindex=1")
           qemu_media=(-drive "file=$tmp/disk.img,if=none,id=hd,format=raw" -device ide-hd,drive=hd,bus=ide.0,unit=0,bootindex=2
                       -drive "file=$iso,if=none,id=cd,media=cdrom,format=raw" -device ide-cd,drive=cd,bus=ide.1,unit=0,bootindex=1)
           expected=running texts=("Booting from DVD/CD") ;;
    *) echo "run-ide-boot-test: unknown case $case" >&2; exit 2 ;;
esac
if [ "$bus" = ahci ]; then
    case $case in
        disk) hako_media=(--disk "path=$tmp/disk.img,if=ahci")
              qemu_media=(-device ich9-ahci,id=ahci -drive "file=$tmp/disk.img,if=none,id=hd,format=raw"
                          -device ide-hd,drive=hd,bus=ahci.0) ;;
        cdrom) hako_media=(--cdrom "path=$src,if=ahci" --boot cdrom)
               qemu_media=(-device ich9-ahci,id=ahci -drive "file=$src,if=none,id=cd,media=cdrom,format=raw"
                           -device ide-cd,drive=cd,bus=ahci.0 -boot d) ;;
        order) hako_media=(--disk "path=$tmp/disk.img,if=ahci,bootindex=2" --cdrom "path=$iso,if=ahci,bootindex=1")
               qemu_media=(-device ich9-ahci,id=ahci
                           -drive "file=$tmp/disk.img,if=none,id=hd,format=raw" -device ide-hd,drive=hd,bus=ahci.0,bootindex=2
                           -drive "file=$iso,if=none,id=cd,media=cdrom,format=raw" -device ide-cd,drive=cd,bus=ahci.1,bootindex=1) ;;
    esac
fi
case $vmm in
    hako) cmd=("${HAKO:-build/hako}" run --memory 128M --debug-exit --vga none "${hako_media[@]}") ;;
    qemu) cmd=("${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 128M -nodefaults
               -nographic -display none -serial stdio -no-reboot -bios /usr/share/seabios/bios-256k.bin
               "${qemu_media[@]}" -device isa-debug-exit,iobase=0xf4,iosize=4) ;;
    *) echo "run-ide-boot-test: VMM must be hako or qemu" >&2; exit 2 ;;
esac
# The serial log without terminal escape sequences: GRUB's screen reaches it through SeaBIOS's serial console, whose
# cursor moves may fall between the characters of a line.
plain() { sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$1"; }
echo "run-ide-boot-test: ${cmd[*]}"
start=$(date +%s)
"${cmd[@]}" </dev/null >"$log" 2>&1 &
pid=$!
status=running
# Waits (bounded: 220 s) for the last expected line or the VMM's exit.
for _ in $(seq 1 440); do
    if ! kill -0 $pid 2>/dev/null; then
        wait $pid
        status=$?
        break
    fi
    [ "$expected" = running ] && plain "$log" | grep -aqF -- "${texts[-1]}" && break
    sleep 0.5
done
if [ "$status" = running ]; then
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
fi
elapsed=$(( $(date +%s) - start ))
ok=1
[ "$status" = "$expected" ] || { echo "run-ide-boot-test: FAIL: status $status, expected $expected"; ok=0; }
for t in "${texts[@]}"; do
    if plain "$log" | grep -aqF -- "$t"; then echo "run-ide-boot-test: seen '$t'"; else echo "run-ide-boot-test: FAIL: '$t' not seen"; ok=0; fi
done
rm -rf "$tmp"
if [ $ok -eq 1 ]; then echo "run-ide-boot-test: ok ($vmm, $case, ${elapsed} s)"; exit 0; fi
echo "--- serial log, last 3000 bytes ($log) ---"; tail -c 3000 "$log" | tr -d '\033'; exit 1
