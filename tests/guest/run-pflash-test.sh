#!/usr/bin/env bash
# The pflash test (tests/guest/pflash/): the project's flat firmware image as pflash unit 0 (read-only) drives a
# 64 KiB VARS flash (unit 1) made by pflash-vars.py; afterwards the VARS file must hold exactly the programmed bytes
# and the erased block, and the firmware image must be unchanged.
# usage: run-pflash-test.sh <hako|qemu> <pflash_fw.bin>
# Environment: HAKO (default build/hako), QEMU (default qemu-system-x86_64), LOG (where the serial log goes).
set -u
vmm=$1 fw=$2
here=$(cd "$(dirname "$0")" && pwd)
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$fw" ] || { echo "FAIL: no firmware image $fw"; exit 1; }
cp "$fw" "$work/code.bin"
python3 "$here/pflash/pflash-vars.py" make "$work/vars.bin" || exit 1
case $vmm in
  hako) timeout 120 "${HAKO:-build/hako}" run -v --firmware "pflash,code=$work/code.bin,vars=$work/vars.bin" \
          --vga none --debug-exit --memory 64M </dev/null >"$log" 2>&1 ;;
  qemu) timeout 120 "${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 64M -nodefaults \
          -nographic -display none -serial stdio -no-reboot \
          -drive "if=pflash,format=raw,unit=0,readonly=on,file=$work/code.bin" \
          -drive "if=pflash,format=raw,unit=1,file=$work/vars.bin" \
          -device isa-debug-exit,iobase=0xf4,iosize=4 </dev/null >"$log" 2>&1 ;;
  *) echo "usage: $0 <hako|qemu> <pflash_fw.bin>"; exit 2 ;;
esac
status=$?
ok=1
[ "$status" -eq 1 ] || { echo "FAIL: exit status $status, expected 1 (the firmware's PASS)"; ok=0; }
grep -q "^PASS" "$log" || { echo "FAIL: the firmware did not print PASS"; ok=0; }
python3 "$here/pflash/pflash-vars.py" check "$work/vars.bin" || ok=0
cmp -s "$fw" "$work/code.bin" || { echo "FAIL: the firmware image (read-only flash) changed"; ok=0; }
if [ "$vmm" = hako ]; then
  # Array reads and instruction fetches come from KVM memory slots: only commands and status/CFI/ID reads exit.
  mmio=$(sed -n 's/.*exits to hako: [0-9]* port I\/O, \([0-9]*\) MMIO.*/\1/p' "$log")
  if [ -z "$mmio" ] || [ "$mmio" -gt 1000 ]; then
    echo "FAIL: ${mmio:-no} MMIO exits (array reads should not exit)"; ok=0
  else
    echo "hako: $mmio MMIO exits"
  fi
fi
if [ $ok -eq 1 ]; then echo "PASS ($vmm)"; exit 0; fi
echo "--- log ($log) ---"; cat "$log"; exit 1
