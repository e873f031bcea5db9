#!/usr/bin/env bash
# Boots firmware (SeaBIOS) with the project's PnP boot ROM (tests/guest/rom/bev_rom.S) as fw_cfg genroms/hako-bev.bin,
# under hako or QEMU, and checks the exit status and that the serial console shows the expected lines.
# usage: run-firmware-test.sh <hako|qemu> <bios image> <rom|-> <expected status> <expected text>...
# Environment: HAKO (default build/hako), QEMU (default qemu-system-x86_64), LOG (where the serial log goes),
#   DISK (a raw image attached as a virtio-blk disk; the ROM may then be "-" for none),
#   EXTRA_ARGS (more VMM arguments, split at spaces).
set -u
vmm=$1 bios=$2 rom=$3 expected=$4
shift 4
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
[ -f "$bios" ] || { echo "FAIL: no firmware image $bios"; exit 1; }
hako_extra=() qemu_extra=()
if [ "$rom" != "-" ]; then
  hako_extra+=(--fw-cfg "name=genroms/hako-bev.bin,file=$rom")
  qemu_extra+=(-fw_cfg "name=genroms/hako-bev.bin,file=$rom")
fi
if [ -n "${DISK:-}" ]; then
  hako_extra+=(--disk "path=$DISK")
  qemu_extra+=(-drive "file=$DISK,if=none,id=disk0,format=raw" -device virtio-blk-pci,drive=disk0)
fi
if [ -n "${EXTRA_ARGS:-}" ]; then
  read -r -a extra <<<"$EXTRA_ARGS"
  hako_extra+=("${extra[@]}")
  qemu_extra+=("${extra[@]}")
fi
case $vmm in
  hako) timeout 120 "${HAKO:-build/hako}" run --firmware "$bios" --vga none "${hako_extra[@]}" \
          --debug-exit --debugcon "$log.debugcon" --memory 64M </dev/null >"$log" 2>&1 ;;
  qemu) timeout 120 "${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 64M -nodefaults \
          -nographic -display none -serial stdio -no-reboot -bios "$bios" "${qemu_extra[@]}" \
          -device isa-debug-exit,iobase=0xf4,iosize=4 </dev/null >"$log" 2>&1 ;;
  *) echo "usage: $0 <hako|qemu> ..."; exit 2 ;;
esac
status=$?
ok=1
[ "$status" -eq "$expected" ] || { echo "FAIL: exit status $status, expected $expected"; ok=0; }
# hako: SeaBIOS's debug log (port 0x402) must have reached the --debugcon file.
if [ "$vmm" = hako ] && ! grep -q "Found QEMU fw_cfg" "$log.debugcon" 2>/dev/null; then
  echo "FAIL: the --debugcon file lacks SeaBIOS's debug log"; ok=0
fi
for text in "$@"; do
  grep -qF -- "$text" "$log" || { echo "FAIL: serial output lacks '$text'"; ok=0; }
done
if [ $ok -eq 1 ]; then echo "PASS ($vmm, $(basename "$bios"))"; exit 0; fi
echo "--- serial log ($log) ---"; cat "$log"; exit 1
