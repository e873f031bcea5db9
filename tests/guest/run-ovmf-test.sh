#!/usr/bin/env bash
# Debian's OVMF (package ovmf) as CFI flash: OVMF_CODE_4M.fd read-only at the top of 4 GiB, a variable store made
# from OVMF_VARS_4M.fd directly below it (hako: --firmware uefi,vars=FILE creates FILE from the template; QEMU:
# -drive if=pflash with a copy). OVMF must start executing from the flash. On a host without VT-x/AMD-V (PVM) KVM's
# instruction emulator refuses an x87 instruction (fwait) in the SEC phase: QEMU stops there (the check: the stop is
# inside the code flash, in 32-bit protected mode); hako finishes it in userspace (src/emu/) and must have emulated
# that fwait, then either still run after 20 s or stop with its one-line message on a later instruction. With
# hardware virtualization OVMF runs on; the check is then that it is still running after 20 s.
# usage: run-ovmf-test.sh <hako|qemu>     Environment: HAKO, QEMU, LOG.
set -u
vmm=$1
code=/usr/share/OVMF/OVMF_CODE_4M.fd templ=/usr/share/OVMF/OVMF_VARS_4M.fd
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$code" "$templ"; do [ -f "$f" ] || { echo "FAIL: $f is missing (Debian package ovmf)"; exit 1; }; done
sum_before=$(sha256sum "$code" "$templ")
code_size=$(stat -c %s "$code")
code_base=$(( 0x100000000 - code_size ))
pvm=0
grep -qw -e vmx -e svm /proc/cpuinfo || pvm=1
case $vmm in
  hako)
    timeout 20 "${HAKO:-build/hako}" run --firmware "uefi,vars=$work/vars.fd" --vga none --memory 256M -v \
      </dev/null >"$log" 2>&1
    status=$?
    ;;
  qemu)
    cp "$templ" "$work/vars.fd"
    "${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 256M -nodefaults -nographic \
      -display none -serial stdio -no-reboot \
      -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd" \
      </dev/null >"$log" 2>&1 &
    pid=$!
    # QEMU pauses on a KVM internal error instead of exiting: wait for it (bounded), then end it.
    status=124
    for _ in $(seq 600); do
      if grep -q "emulation failure" "$log"; then status=8; sleep 0.5; break; fi
      kill -0 $pid 2>/dev/null || { wait $pid; status=$?; break; }
      sleep 0.1
    done
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    rip=$(sed -n 's/^EIP=\([0-9a-f]*\) .*/0x\1/p' "$log" | head -1)
    grep -q "^CS =.* CS32 " "$log" || rip=""
    ;;
  *) echo "usage: $0 <hako|qemu>"; exit 2 ;;
esac
ok=1
if [ $pvm -eq 1 ] && [ "$vmm" = hako ]; then
  if ! grep -qE "instructions KVM refused and hako emulated:.* fwait" "$log"; then
    echo "FAIL: hako did not finish OVMF's fwait in userspace"; ok=0
  elif [ "$status" -eq 124 ]; then
    echo "hako: OVMF got past SEC's x87 instructions and still ran after 20 s: $(grep "hako emulated" "$log")"
  elif [ "$status" -eq 8 ] && grep -qE "Guest stopped: KVM could not emulate .* at RIP 0x[0-9a-f]+ .* bytes" "$log"; then
    echo "hako: OVMF got past SEC's x87 instructions, then stopped: $(grep "Guest stopped" "$log")"
  else
    echo "FAIL: status $status after the emulated fwait"; ok=0
  fi
elif [ $pvm -eq 1 ]; then
  if [ "$status" -ne 8 ] || [ -z "$rip" ]; then
    echo "FAIL: status $status, no emulation failure in 32-bit protected mode reported"; ok=0
  elif [ $(( rip )) -lt $code_base ] || [ $(( rip )) -gt $(( 0xffffffff )) ]; then
    echo "FAIL: stopped at $rip, outside the code flash [$(printf %#x $code_base), 4 GiB)"; ok=0
  else
    echo "$vmm: OVMF ran from the code flash and stopped at $rip (KVM's emulator, this host)"
  fi
elif [ "$status" -ne 124 ]; then
  echo "FAIL: status $status: OVMF should still be running after 20 s"; ok=0
fi
[ "$(sha256sum "$code" "$templ")" = "$sum_before" ] || { echo "FAIL: Debian's OVMF images changed"; ok=0; }
if [ ! -f "$work/vars.fd" ] || [ "$(stat -c %s "$work/vars.fd")" -ne "$(stat -c %s "$templ")" ]; then
  echo "FAIL: the variable store $work/vars.fd was not created with the template's size"; ok=0
fi
if [ $ok -eq 1 ]; then echo "PASS ($vmm)"; exit 0; fi
echo "--- log ($log) ---"; cat "$log"; exit 1
