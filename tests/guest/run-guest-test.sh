#!/usr/bin/env bash
# Boots one test guest under hako or QEMU and checks the VMM's exit status and serial output.
#
# usage: run-guest-test.sh <hako|qemu> <guest.elf> <expected-exit-status> [options] [-- <vmm args>]
#   --cpus N             vCPUs (default 1)
#   --memory MIB         guest RAM in MiB (default 64)
#   --cmdline TEXT       guest command line (multiboot); may be repeated, joined with spaces
#   --cmdline-now        append now=$(date +%s) to the command line, taken right before the VMM starts
#   --check-rtc          the guest prints "rtc: unix N": N must lie between the run's start and end (host clock),
#                        so the check holds however long the boot takes (the guest's own check gets slack=timeout)
#   --stdin-text TEXT    feed TEXT (printf escapes allowed, e.g. 'ping\n') on the VMM's stdin once the guest has
#                        printed the --stdin-after marker (default "READY")
#   --stdin-after TEXT   the marker to wait for before feeding stdin
#   --expect-output TEXT the serial log must contain TEXT (may be repeated)
#   --reboot             allow guest resets (QEMU: no -no-reboot)
#   --virtio-rng         add a virtio-rng PCI device
#   --disk FILE          add a disk on image FILE (may be repeated; raw, or $HAKO_DISK_FORMAT): a virtio-blk PCI
#                        device, or with HAKO_DISK_BUS=ide an IDE disk (primary master first), with HAKO_DISK_BUS=ahci
#                        a SATA disk on an AHCI controller (ICH9; port 0 first)
#   --disk-serial S      serial of the disks that follow
#   --net SPEC           a NIC (repeatable: NIC i is QEMU's netdev n<i>): SPEC is hako's --net value, user[,hostfwd=tcp:ADDR:HPORT-:GPORT] or tap=IFNAME, then
#                        [,model=virtio|e1000|rtl8139|ne2k[_pci]|pcnet] (default model virtio); for QEMU it becomes
#                        -netdev user,id=n0[,hostfwd=...] (or tap,id=n0,ifname=IFNAME,script=no,downscript=no)
#                        -device <model's device>,netdev=n0,romfile= (no option ROM)
#   --kill-after TEXT    once the serial log shows TEXT, kill the VMM with SIGKILL (data-safety tests; the expected
#                        exit status is then 137)
#   --timeout SECONDS    default 120
#   --log FILE           where the serial log goes (default: a temp file, removed on success)
#   -- ARGS...           extra arguments for the VMM
# Environment: HAKO (default build/hako), QEMU (default qemu-system-x86_64), NETNS (run the VMM inside this network
# namespace, e.g. where a tap lives).
# The VMM exits with (code << 1) | 1 when the guest writes code to isa-debug-exit (0xf4): PASS is status 1.
set -u

usage() { sed -n '2,28p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
vmm=$1 guest=$2 expected=$3
shift 3
cpus=1 memory=64 cmdline="" cmdline_now=0 stdin_text="" have_stdin=0 stdin_after="READY" reboot=0
timeout_s=120 log="" expects=() extra=() check_rtc=0 virtio_rng=0 disks=() disk_serial="" kill_after="" nets=()
while [ $# -gt 0 ]; do
    case $1 in
        --cpus) cpus=$2; shift 2 ;;
        --memory) memory=$2; shift 2 ;;
        --cmdline) cmdline="${cmdline:+$cmdline }$2"; shift 2 ;;
        --cmdline-now) cmdline_now=1; shift ;;
        --check-rtc) check_rtc=1; shift ;;
        --stdin-text) stdin_text=$2; have_stdin=1; shift 2 ;;
        --stdin-after) stdin_after=$2; shift 2 ;;
        --expect-output) expects+=("$2"); shift 2 ;;
        --reboot) reboot=1; shift ;;
        --virtio-rng) virtio_rng=1; shift ;;
        --disk) disks+=("$2|$disk_serial"); shift 2 ;;
        --disk-serial) disk_serial=$2; shift 2 ;;
        --net) nets+=("$2"); shift 2 ;;
        --kill-after) kill_after=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run-guest-test: unknown option $1" >&2; usage ;;
    esac
done
[ -f "$guest" ] || { echo "run-guest-test: no guest image $guest" >&2; exit 2; }

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/hako-guest.XXXXXX")
keep_log=0
[ -n "$log" ] && keep_log=1
[ -n "$log" ] || log=$tmpdir/serial.log
cleanup() { exec 3>&- 2>/dev/null; rm -rf "$tmpdir"; }
trap cleanup EXIT
: >"$log" 2>/dev/null || { mkdir -p "$(dirname "$log")" && : >"$log"; } || exit 2

[ $cmdline_now -eq 1 ] && cmdline="${cmdline:+$cmdline }now=$(date +%s)"
[ $check_rtc -eq 1 ] && cmdline="${cmdline:+$cmdline }slack=$timeout_s"
run_start=$(date +%s)

case $vmm in
    hako)
        hako_bin=${HAKO:-build/hako}
        [ -x "$hako_bin" ] || { echo "run-guest-test: FAIL: no hako binary at $hako_bin (set HAKO)" >&2; exit 1; }
        cmd=("$hako_bin" run --kernel "$guest" --cmdline "$cmdline" --debug-exit --cpus "$cpus"
             --memory "$memory")
        [ $reboot -eq 1 ] || cmd+=(--on-reboot exit) # as QEMU's -no-reboot: a guest reset ends the run, status 0
        for d in "${disks[@]}"; do
            serial=${d#*|} spec="path=${d%%|*}"
            [ -n "$serial" ] && spec+=",serial=$serial"
            [ -n "${HAKO_DISK_FORMAT:-}" ] && spec+=",format=$HAKO_DISK_FORMAT"
            case ${HAKO_DISK_BUS:-virtio} in
                virtio) ;;
                ide|ahci) spec+=",if=$HAKO_DISK_BUS" ;;
                *) echo "run-guest-test: FAIL: HAKO_DISK_BUS=$HAKO_DISK_BUS: virtio, ide or ahci" >&2; exit 1 ;;
            esac
            cmd+=(--disk "$spec")
        done
        [ $virtio_rng -eq 1 ] && cmd+=(--device virtio-rng)
        for net in "${nets[@]}"; do cmd+=(--net "$net"); done
        ;;
    qemu)
        cmd=("${QEMU:-qemu-system-x86_64}" -accel kvm -cpu host,-arch-capabilities -M pc -m "$memory" -smp "$cpus"
             -nographic -net none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$guest"
             -append "$cmdline")
        # Firmware: qboot (same package as SeaBIOS) reaches the guest in 0.1 s; SeaBIOS (QEMU's default) takes
        # about 5 s here, since firmware code runs in KVM's instruction emulator on these hosts. qboot loads the
        # multiboot guest, the e820 map and the ACPI tables as SeaBIOS does, but assigns no PCI BARs or interrupt
        # lines: the guests' library does that itself when it finds no BAR assigned (lib/pci.c), as SeaBIOS would.
        qboot=${QEMU_QBOOT:-/usr/share/qemu/qboot.rom}
        [ -r "$qboot" ] && cmd+=(-bios "$qboot")
        [ $reboot -eq 1 ] || cmd+=(-no-reboot)
        n=0
        for d in "${disks[@]}"; do
            serial=${d#*|}
            cmd+=(-drive "file=${d%%|*},if=none,id=disk$n,format=${HAKO_DISK_FORMAT:-raw},cache=writeback")
            case ${HAKO_DISK_BUS:-virtio} in
                virtio) cmd+=(-device "virtio-blk-pci,drive=disk$n${serial:+,serial=$serial}") ;;
                ide) cmd+=(-device "ide-hd,drive=disk$n,bus=ide.$((n / 2)),unit=$((n % 2))${serial:+,serial=$serial}") ;;
                ahci)
                    [ $n -eq 0 ] && cmd+=(-device ich9-ahci,id=ahci)
                    cmd+=(-device "ide-hd,drive=disk$n,bus=ahci.$n${serial:+,serial=$serial}") ;;
                *) echo "run-guest-test: FAIL: HAKO_DISK_BUS=$HAKO_DISK_BUS: virtio, ide or ahci" >&2; exit 1 ;;
            esac
            n=$((n + 1))
        done
        [ $virtio_rng -eq 1 ] && cmd+=(-device virtio-rng-pci)
        for n in "${!nets[@]}"; do
            net=${nets[$n]}
            netdev="" model=virtio
            IFS=, read -r -a net_opts <<<"$net"
            case ${net_opts[0]} in
                user) backend=user,id=n$n ;;
                tap=*) backend="tap,id=n$n,ifname=${net_opts[0]#tap=},script=no,downscript=no" ;;
                *) echo "run-guest-test: --net must start with user or tap=IFNAME, not $net" >&2; exit 2 ;;
            esac
            for o in "${net_opts[@]:1}"; do
                case $o in
                    model=*) model=${o#model=} ;;
                    *) netdev+=",$o" ;;
                esac
            done
            case $model in
                virtio) nic_dev=virtio-net-pci ;;
                e1000) nic_dev=e1000 ;;
                rtl8139) nic_dev=rtl8139 ;;
                ne2k|ne2k_pci) nic_dev=ne2k_pci ;;
                pcnet) nic_dev=pcnet ;;
                *) echo "run-guest-test: unknown NIC model $model" >&2; exit 2 ;;
            esac
            cmd+=(-netdev "$backend$netdev" -device "$nic_dev,netdev=n$n,romfile=")
        done
        ;;
    *) echo "run-guest-test: VMM must be hako or qemu, not $vmm" >&2; exit 2 ;;
esac
cmd+=("${extra[@]}")
[ -n "${NETNS:-}" ] && cmd=(ip netns exec "$NETNS" "${cmd[@]}") # ip execs the VMM: same pid, same signals
echo "run-guest-test: ${cmd[*]}"

fifo=$tmpdir/stdin
mkfifo "$fifo"
exec 3<>"$fifo" # keeps a writer open, so the VMM never sees EOF on stdin before we are done
timeout --kill-after=10 "$timeout_s" "${cmd[@]}" <"$fifo" >"$log" 2>&1 &
pid=$!

fed=0
if [ $have_stdin -eq 1 ]; then
    # Wait for the marker (bounded by the VMM's own timeout: stop when it exits).
    while kill -0 "$pid" 2>/dev/null; do
        if grep -qF -- "$stdin_after" "$log"; then
            printf "$stdin_text" >&3
            fed=1
            break
        fi
        sleep 0.1
    done
fi
killed=0
if [ -n "$kill_after" ]; then
    while kill -0 "$pid" 2>/dev/null; do
        if grep -qF -- "$kill_after" "$log"; then
            # The VMM is the child of timeout(1): kill it, not timeout.
            pkill -KILL -P "$pid" 2>/dev/null && killed=1
            echo "run-guest-test: saw \"$kill_after\", killed the VMM with SIGKILL"
            break
        fi
        sleep 0.1
    done
fi
wait "$pid"
status=$?
run_end=$(date +%s)
exec 3>&-

failed=0
if [ -n "$kill_after" ] && [ $killed -eq 0 ]; then
    echo "run-guest-test: FAIL: the guest never printed \"$kill_after\" (status $status)"
    failed=1
elif [ $killed -eq 1 ]; then
    [ "$status" -eq 137 ] || { echo "run-guest-test: FAIL: status $status after SIGKILL, expected 137"; failed=1; }
elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "run-guest-test: FAIL: timed out after ${timeout_s} s"
    failed=1
elif [ "$status" -ne "$expected" ]; then
    echo "run-guest-test: FAIL: VMM exit status $status, expected $expected"
    if [ $((status & 1)) -eq 1 ] && [ "$status" -gt 1 ]; then
        echo "run-guest-test: (the guest reported failure code $((status >> 1)))"
    fi
    failed=1
fi
if [ $have_stdin -eq 1 ] && [ $fed -eq 0 ]; then
    echo "run-guest-test: FAIL: the guest never printed \"$stdin_after\", stdin was not fed"
    failed=1
fi
if [ $check_rtc -eq 1 ]; then
    rtc=$(sed -n 's/.*rtc: unix \([0-9]*\).*/\1/p' "$log" | head -n 1)
    if [ -z "$rtc" ] || [ "$rtc" -lt $((run_start - 2)) ] || [ "$rtc" -gt $((run_end + 2)) ]; then
        echo "run-guest-test: FAIL: guest RTC ${rtc:-(none)} outside the run's host time [$run_start, $run_end]"
        failed=1
    else
        echo "run-guest-test: guest RTC $rtc within the run's host time [$run_start, $run_end]"
    fi
fi
for e in "${expects[@]}"; do
    if ! grep -qF -- "$e" "$log"; then
        echo "run-guest-test: FAIL: output lacks \"$e\""
        failed=1
    fi
done

if [ $failed -ne 0 ]; then
    echo "----- serial log -----"
    cat -v "$log"
    echo "-----------------------------"
    exit 1
fi
echo "run-guest-test: ok (exit status $status)"
[ $keep_log -eq 1 ] && echo "run-guest-test: serial log in $log"
[ $keep_log -eq 1 ] || rm -f "$log"
exit 0
