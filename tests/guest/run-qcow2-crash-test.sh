#!/usr/bin/env bash
# Crash safety of qcow2 writes: the virtio guest (crash=1) writes and flushes generation after generation of tagged
# blocks scattered over a 64 MiB qcow2 image (so writes allocate clusters and L2 tables), and the VMM is killed with
# SIGKILL at a random moment; ITERATIONS times on the same image. After each kill `qemu-img check` must find no
# corruption (leaked clusters are allowed: qemu-img exit 3), `hako img check` must agree, and crash-check.py must find
# every flushed write in place and nothing else changed.
# usage: run-qcow2-crash-test.sh <hako|qemu> <virtio.elf> [iterations]
# Environment: HAKO, QEMU, CRASH_SEED (for $RANDOM, to replay a run)
set -u
[ $# -ge 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 iterations=${3:-4}
here=$(cd "$(dirname "$0")" && pwd)
hako=${HAKO:-build/hako}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-crash.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
RANDOM=${CRASH_SEED:-$$}
echo "run-qcow2-crash-test: seed ${CRASH_SEED:-$$}"
image=$tmp/disk.qcow2
qemu-img create -q -f qcow2 "$image" 64M || exit 1
# QEMU boots the guest through qboot (0.1 s here; SeaBIOS about 5 s); the guest assigns its PCI BARs itself.
qboot=()
[ -r "${QEMU_QBOOT:-/usr/share/qemu/qboot.rom}" ] && qboot=(-bios "${QEMU_QBOOT:-/usr/share/qemu/qboot.rom}")
for it in $(seq 1 "$iterations"); do
    base=$((it * 100000))
    qemu-img convert -O raw "$image" "$tmp/before.raw" || exit 1
    log=$tmp/serial.$it.log
    case $vmm in
        hako) "$hako" run --kernel "$guest" --debug-exit --memory 64M --disk "path=$image,format=qcow2" \
                  --cmdline "dev=blk crash=1 base=$base" </dev/null >"$log" 2>&1 & ;;
        qemu) "${QEMU:-qemu-system-x86_64}" "${qboot[@]}" -accel kvm -cpu host,-arch-capabilities -M pc -m 64 -nographic -net none \
                  -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$guest" -append "dev=blk crash=1 base=$base" \
                  -drive "file=$image,if=none,id=d0,format=qcow2,cache=writeback" -device virtio-blk-pci,drive=d0 \
                  </dev/null >"$log" 2>&1 & ;;
        *) echo "run-qcow2-crash-test: VMM must be hako or qemu" >&2; exit 2 ;;
    esac
    pid=$!
    for _ in $(seq 600); do
        grep -aq "generation .* flushed" "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -aq "generation .* flushed" "$log"; then
        echo "run-qcow2-crash-test: FAIL: no generation was flushed (iteration $it)"; cat "$log"; exit 1
    fi
    delay_ms=$((RANDOM % 2500))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    pid=""
    last=$(grep -ao "generation [0-9]* flushed" "$log" | tail -n 1 | awk '{print $2}')
    echo "run-qcow2-crash-test: iteration $it: killed ${delay_ms} ms after the first flush, last flushed generation $last"
    qemu-img check -q "$image" >"$tmp/qcheck.txt" 2>&1
    qstatus=$?
    if [ $qstatus -ne 0 ] && [ $qstatus -ne 3 ]; then
        echo "run-qcow2-crash-test: FAIL: qemu-img check found corruption (status $qstatus)"; qemu-img check "$image"; exit 1
    fi
    "$hako" img check -f qcow2 "$image" >"$tmp/check.txt" 2>&1
    hstatus=$?
    if [ $hstatus -ne $qstatus ]; then
        echo "run-qcow2-crash-test: FAIL: hako img check says $hstatus, qemu-img check $qstatus"; cat "$tmp/check.txt"; exit 1
    fi
    [ $qstatus -eq 3 ] && echo "run-qcow2-crash-test: leaked clusters (allowed): $(grep -c Leaked "$tmp/check.txt")"
    qemu-img convert -O raw "$image" "$tmp/after.raw" || exit 1
    python3 "$here/crash-check.py" "$tmp/before.raw" "$tmp/after.raw" "$base" "$last" || exit 1
done
echo "run-qcow2-crash-test: ok ($iterations kills)"
