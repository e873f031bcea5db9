#!/usr/bin/env bash
# memtest86+ (Debian's memtest86+ 6.10, fetched by scripts/fetch-guests.sh) booted as a kernel (the Linux boot
# protocol) with its console on COM1. It must print its banner, measure the CPU clock (its x87 floating-point code:
# a "CLK/Temp: NNNNMHz" figure), size the memory and start test #0 ("Address test, walking ones") with 0 errors;
# the run ends there (a full pass takes hours at KVM-emulator speed). On a host without VT-x/AMD-V (PVM) KVM's
# emulator refuses memtest's x87 instructions (fwait, fldz, fld, faddp, fimul, fistp): QEMU stops at the first one
# (the check for QEMU: an emulation failure before the banner); hako finishes them in userspace (src/emu/x87.cpp)
# and must show them in its counters. With VT-x/AMD-V both VMMs must reach the milestone.
# usage: run-memtest-test.sh <hako|qemu>     Environment: HAKO, QEMU, LOG, HAKO_CACHE
set -u
vmm=$1
image=${HAKO_CACHE:-/var/tmp/hako}/memtest/memtest86+x64.bin
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
[ -f "$image" ] || { echo "FAIL: $image is missing (scripts/fetch-guests.sh)"; exit 1; }
pvm=0
grep -qw -e vmx -e svm /proc/cpuinfo || pvm=1
case $vmm in
  hako) cmd=("${HAKO:-build/hako}" run --kernel "$image" --cmdline "console=ttyS0,115200" --memory 256M -v) ;;
  qemu) cmd=("${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 256M -nodefaults
             -nographic -display none -serial stdio -no-reboot -kernel "$image" -append "console=ttyS0,115200") ;;
  *) echo "usage: run-memtest-test.sh <hako|qemu>" >&2; exit 2 ;;
esac
start=$(date +%s)
"${cmd[@]}" </dev/null >"$log" 2>&1 &
pid=$!
plain() { sed 's/\x1b\[[0-9;?]*[A-Za-z]/ /g' "$log" | tr -s ' '; }
ended=""
for _ in $(seq 360); do # 180 s
  kill -0 "$pid" 2>/dev/null || { ended="exit"; break; }
  if plain | grep -q "Address test, walking ones" && plain | grep -qE "CLK/Temp: [1-9][0-9]*MHz"; then
    ended="milestone"; break
  fi
  grep -aq "emulation failure" "$log" && { ended="emulation failure"; break; }
  sleep 0.5
done
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
echo "run-memtest-test: $vmm ran $(( $(date +%s) - start )) s, ended by: ${ended:-the 180 s limit}"
fail() { echo "FAIL: $*"; echo "--- log ($log) ---"; plain | tail -c 2000; exit 1; }
if [ "$vmm" = qemu ] && [ $pvm -eq 1 ]; then
  [ "$ended" = "emulation failure" ] || fail "QEMU should stop on KVM's emulation failure at memtest's first x87 instruction here"
  plain | grep -q "Memtest86+" && fail "QEMU printed memtest's banner, past the x87 code it cannot run here"
  echo "PASS: QEMU stops at memtest's x87 code (KVM emulation failure, no VT-x/AMD-V on this host)"
  exit 0
fi
[ "$ended" = milestone ] || fail "no 'Address test, walking ones' with a measured clock (ended by: ${ended:-time limit})"
plain | grep -q "Memtest86+ v6" || fail "no banner"
plain | grep -q "Memory *: *2[0-9][0-9]MB" || fail "memory not sized (expected about 256MB)"
plain | grep -qE "Errors: 0" || fail "no 'Errors: 0'"
plain | grep -qE "Errors: [1-9]" && fail "memtest reported errors"
if [ "$vmm" = hako ] && [ $pvm -eq 1 ]; then
  grep -qE "hako emulated: .*fldz" "$log" || fail "hako's counters do not show the emulated x87 instructions"
  grep -q "Guest stopped" "$log" && fail "the guest stopped"
  grep "hako emulated" "$log"
fi
echo "PASS: memtest86+ measured $(plain | grep -oE 'CLK/Temp: [0-9]+MHz' | head -n 1) and started test #0 with 0 errors"
