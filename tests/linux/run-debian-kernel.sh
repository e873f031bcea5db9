#!/usr/bin/env bash
# Slow test: boots Debian's kernel (from scripts/fetch-guests.sh) with the busybox initramfs under hako.
# It must print "Linux version" and its e820 map on COM1 (earlyprintk). Then one of two endings is accepted:
#  - the kernel reaches the initramfs ("HAKO-READY") and powers off: exit status 0 (hosts with VT-x/AMD-V);
#  - on hosts without VT-x/AMD-V (PVM), KVM's instruction emulator gives up on instructions of the running kernel;
#    hako finishes those it can in userspace (src/emu/: the kernel's `lock cmpxchg16b`s and the `xrstor64` of its FPU
#    init must not stop it) and stops
#    with status 8 and one message naming the instruction bytes and RIP on the first it cannot, never hangs;
#  - on those hosts the kernel may also still be booting when the time limit ends the run (hako then exits on
#    SIGTERM and prints its counters): accepted only once the kernel is past its FPU init (the XSAVE features line)
#    and hako has emulated its XRSTOR, i.e. the run got further than the emulation-failure stops above.
# usage: run-debian-kernel.sh <kernel file> [--cpus N] [--memory SIZE]
set -u
kernel=$1; shift
cache=${HAKO_CACHE:-/var/tmp/hako}
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
timeout 300 "${HAKO:-build/hako}" run --kernel "$kernel" --initrd "$cache/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 earlyprintk=ttyS0 panic=-1" --memory 512M -v "$@" </dev/null >"$log" 2>&1
status=$?
fail() { echo "FAIL: $*"; echo "--- log ($log) ---"; tail -n 40 "$log"; exit 1; }
grep -q "Linux version" "$log" || fail "no 'Linux version' line"
grep -q "BIOS-e820: \[mem 0x0000000000100000-" "$log" || fail "no e820 map"
grep -q "Hypervisor detected: KVM" "$log" || fail "the kernel did not detect KVM (CPUID 0x40000000)"
if [ "$status" -eq 0 ] && grep -q "HAKO-READY" "$log"; then
  echo "PASS: reached userspace and powered off"; exit 0
fi
if [ "$status" -eq 8 ] && ! grep -qE 'vmx|svm' /proc/cpuinfo; then
  grep -qE "Guest stopped: KVM could not emulate .* at RIP 0x[0-9a-f]+ .* bytes \[[0-9a-f ]+\]" "$log" \
    || fail "status 8 without the emulation-failure message"
  grep -E "Guest stopped" "$log" | grep -qE "cmpxchg16b|bytes \[f0 48 0f c7" \
    && fail "stopped at lock cmpxchg16b, which hako emulates in userspace"
  grep -E "Guest stopped" "$log" | grep -qE '`(xsave|xrstor)[a-z0-9]*`' \
    && fail "stopped at an XSAVE-family instruction, which hako emulates in userspace"
  echo "PASS: printed its boot log, then stopped cleanly on a KVM emulation failure (no VT-x/AMD-V on this host):"
  grep "Guest stopped" "$log"
  exit 0
fi
if [ "$status" -eq 124 ] && ! grep -qE 'vmx|svm' /proc/cpuinfo; then
  grep -q "x86/fpu: Enabled xstate features" "$log" || fail "timed out before the kernel's FPU init"
  grep -qE "hako emulated: .*xrstor" "$log" || fail "timed out without hako's counters showing the emulated XRSTOR"
  grep -q "Guest stopped" "$log" && fail "a 'Guest stopped' message and a time-out"
  echo "PASS: still booting at the time limit (no VT-x/AMD-V on this host: KVM's emulator is slow); last lines:"
  grep '^\[' "$log" | tail -n 1
  grep "hako emulated" "$log"
  exit 0
fi
fail "exit status $status"
