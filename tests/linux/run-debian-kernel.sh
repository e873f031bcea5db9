#!/usr/bin/env bash
# Slow test: boots Debian's kernel (from scripts/fetch-guests.sh) with the busybox initramfs under hako.
# It must print "Linux version" and its e820 map on COM1 (earlyprintk). Then one of two endings is accepted:
#  - the kernel reaches the initramfs ("HAKO-READY") and powers off: exit status 0 (hosts with VT-x/AMD-V);
#  - on hosts without VT-x/AMD-V (PVM), KVM's instruction emulator gives up on instructions of the running kernel;
#    hako finishes those it can in userspace (src/emu/: the kernel's `lock cmpxchg16b`s and the `xrstor64` of its FPU
#    init must not stop it) and stops
#    with status 8 and one message naming the instruction bytes and RIP on the first it cannot, never hangs;
#  - on those hosts the kernel, with every instruction above finished in userspace, boots on for minutes: the run is
#    ended (SIGTERM; hako prints its counters) once the kernel has printed "$MILESTONE" (default "Freeing SMP
#    alternatives memory", past its FPU init and the patching of its alternatives, about 2 minutes here), or at the
#    300 s limit; accepted only once the kernel is past its FPU init (the XSAVE features line), hako has emulated its
#    XRSTOR, and nothing stopped the guest. The script says which milestone ended the run.
# usage: run-debian-kernel.sh <kernel file> [--cpus N] [--memory SIZE]      Environment: HAKO, LOG, MILESTONE
set -u
kernel=$1; shift
cache=${HAKO_CACHE:-/var/tmp/hako}
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
milestone=${MILESTONE:-Freeing SMP alternatives memory}
pvm=0
grep -qwE 'vmx|svm' /proc/cpuinfo || pvm=1
start=$(date +%s)
"${HAKO:-build/hako}" run --kernel "$kernel" --initrd "$cache/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 earlyprintk=ttyS0 panic=-1" --memory 512M -v "$@" </dev/null >"$log" 2>&1 &
pid=$!
ended=""
for _ in $(seq 600); do # 300 s
  kill -0 "$pid" 2>/dev/null || break
  if [ $pvm -eq 1 ] && grep -aqF "$milestone" "$log"; then ended="milestone"; break; fi
  sleep 0.5
done
if kill -0 "$pid" 2>/dev/null; then
  [ -n "$ended" ] || ended="time limit"
  kill -TERM "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null
fi
wait "$pid"
status=$?
[ -z "$ended" ] || status=124
echo "run-debian-kernel: hako ran $(( $(date +%s) - start )) s${ended:+, ended at the $ended}"
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
  grep -q "x86/fpu: Enabled xstate features" "$log" || fail "ended ($ended) before the kernel's FPU init"
  grep -qE "hako emulated: .*xrstor" "$log" || fail "ended ($ended) without hako's counters showing the emulated XRSTOR"
  grep -q "Guest stopped" "$log" && fail "a 'Guest stopped' message and a run ended by the $ended"
  echo "PASS: still booting when the $ended ended the run (no VT-x/AMD-V on this host: KVM's emulator is slow); last line:"
  grep -a '^\[' "$log" | tail -n 1 | tr -d '\r'
  grep "hako emulated" "$log"
  exit 0
fi
fail "exit status $status"
