#!/usr/bin/env bash
# Debian's bzImage booted the QEMU way: SeaBIOS runs QEMU's linuxboot_dma.bin option ROM, which loads the kernel,
# command line and initrd over fw_cfg DMA and enters the kernel's real-mode setup code. Passes when the serial console
# shows SeaBIOS booting the ROM and the kernel's setup code running ("Probing EDD"); the run is then stopped (the
# decompressor that follows takes many minutes in KVM's instruction emulator on hosts without VT-x/AMD-V).
# usage: run-firmware-linux.sh <hako|qemu>
set -u
vmm=$1
cache=${HAKO_CACHE:-/var/tmp/hako}
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
kernel=$cache/kernel/bzImage initrd=$cache/initramfs.cpio.gz
args="console=ttyS0 earlyprintk=ttyS0"
case $vmm in
  # With a second boot ROM present, SeaBIOS must still boot the kernel, and see it first in the "bootorder" file.
  hako) extra=()
        [ -n "${BEV_ROM:-}" ] && extra=(--fw-cfg "name=genroms/hako-bev.bin,file=$BEV_ROM" --debug-exit)
        extra+=(--debugcon "$log.debugcon")
        "${HAKO:-build/hako}" run --firmware /usr/share/seabios/bios-256k.bin --vga none --kernel "$kernel" --initrd "$initrd" \
          --cmdline "$args" --memory 256M "${extra[@]}" </dev/null >"$log" 2>&1 & ;;
  qemu) "${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 256M -nodefaults -nographic \
          -display none -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$args" </dev/null >"$log" 2>&1 & ;;
  *) echo "usage: $0 <hako|qemu>"; exit 2 ;;
esac
pid=$!
found=0
for _ in $(seq 1 180); do
  if grep -q "Booting from ROM" "$log" && grep -aq "Probing EDD\|PPrroobbiinngg  EEDDDD" "$log"; then found=1; break; fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
# hako hands SeaBIOS a "bootorder" file naming the kernel's ROM: SeaBIOS's debug log lists it as entry 1.
if [ "$vmm" = hako ] && ! grep -q "^1: /rom@genroms/linuxboot_dma.bin" "$log.debugcon" 2>/dev/null; then
  echo "FAIL ($vmm): SeaBIOS did not get the kernel's ROM as boot order entry 1"; found=0
fi
if grep -q "hako-bev: booted" "$log"; then echo "FAIL ($vmm): SeaBIOS booted the other ROM, not the kernel"; found=0; fi
if [ $found -eq 1 ]; then echo "PASS ($vmm): SeaBIOS booted linuxboot_dma.bin and the kernel's setup code ran"; exit 0; fi
echo "FAIL ($vmm): no 'Booting from ROM' + 'Probing EDD' within 90 s"; cat "$log"; exit 1
