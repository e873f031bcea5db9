#!/usr/bin/env bash
# The network guest test: the net guest (guests/net.c) on the VMM's user networking (libslirp), with a host peer
# (net-peer.py) on 127.0.0.1.
#
# usage: run-net-test.sh <hako|qemu> <net.elf> <echo|echo-lossy|serve> [nic]
#   echo   a host TCP echo server on an ephemeral port; the guest takes a DHCP lease, connects to 10.0.2.2:PORT
#          (slirp maps it to the host's 127.0.0.1), sends 1 MiB, checks the echo and closes; the server must have
#          echoed exactly 1 MiB.
#   echo-lossy  as echo with 256 KiB, but the guest loses every 37th frame each way once TCP starts (drop=37):
#          retransmission (timeouts, fast retransmit, the out-of-order range) on both sides.
#   serve  the guest listens on port 7, forwarded from a free host port (hostfwd=tcp:127.0.0.1:HPORT-:7); once it
#          prints "net: listening" the host connects, sends 64 KiB of the pattern, closes its side and checks the echo.
#   nic    virtio (default) or e1000; passed to the guest as nic= and to the VMM as the NIC model.
# Environment: HAKO, QEMU (as run-guest-test.sh), LOG (the guest's serial log; default: a temp file).
set -u
[ $# -ge 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 mode=$3 nic=${4:-virtio}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-net.XXXXXX")
peer_pid=""
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
log=${LOG:-$tmp/serial.log}
model=""
[ "$nic" = virtio ] || model=",model=$nic"
serve_bytes=65536

echo_bytes=1048576 guest_extra=""
if [ "$mode" = echo-lossy ]; then
    echo_bytes=262144 guest_extra=" drop=37 bytes=$echo_bytes"
fi
case $mode in
    echo|echo-lossy)
        python3 "$here/net-peer.py" echo-server "$tmp/port" 150 >"$tmp/peer.log" 2>&1 &
        peer_pid=$!
        for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
        [ -s "$tmp/port" ] || { echo "run-net-test: FAIL: the echo server did not start"; cat "$tmp/peer.log"; exit 1; }
        port=$(cat "$tmp/port")
        echo "run-net-test: host echo server on 127.0.0.1:$port"
        "$here/run-guest-test.sh" "$vmm" "$guest" 1 --net "user$model" --log "$log" \
            --cmdline "nic=$nic mode=echo port=$port$guest_extra" \
            --expect-output "bytes echoed intact: ok" --expect-output PASS || exit 1
        wait "$peer_pid"
        peer_status=$?
        peer_pid=""
        cat "$tmp/peer.log"
        [ $peer_status -eq 0 ] || { echo "run-net-test: FAIL: the echo server exited with $peer_status"; exit 1; }
        grep -q "echo-server: echoed $echo_bytes bytes" "$tmp/peer.log" \
            || { echo "run-net-test: FAIL: the echo server did not echo exactly $echo_bytes bytes"; exit 1; }
        ;;
    serve)
        hport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        echo "run-net-test: forwarding 127.0.0.1:$hport to guest port 7"
        : >"$log"
        "$here/run-guest-test.sh" "$vmm" "$guest" 1 --net "user,hostfwd=tcp:127.0.0.1:$hport-:7$model" --log "$log" \
            --cmdline "nic=$nic mode=serve listen=7 expect=$serve_bytes" \
            --expect-output "follow the pattern: ok" --expect-output PASS >"$tmp/run.log" 2>&1 &
        run_pid=$!
        while kill -0 "$run_pid" 2>/dev/null && ! grep -q "net: listening" "$log"; do sleep 0.1; done
        client_status=1
        if grep -q "net: listening" "$log"; then
            python3 "$here/net-peer.py" client "$hport" "$serve_bytes" 60
            client_status=$?
        else
            echo "run-net-test: FAIL: the guest never printed \"net: listening\""
        fi
        wait "$run_pid"
        run_status=$?
        cat "$tmp/run.log"
        [ $client_status -eq 0 ] && [ $run_status -eq 0 ] || exit 1
        ;;
    *) echo "run-net-test: mode must be echo, echo-lossy or serve, not $mode" >&2; exit 2 ;;
esac
grep -a "^net: \|^check: " "$log"
echo "run-net-test: ok"
