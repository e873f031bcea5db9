#!/usr/bin/env bash
# The network guest test: the net guest (guests/net.c) on the VMM's user networking (libslirp), with a host peer
# (net-peer.py) on 127.0.0.1, or on a tap.
#
# usage: run-net-test.sh <hako|qemu> <net.elf> <[tap-]echo|echo-lossy|echo-ctrl|echo-second-nic|[tap-]serve|tap-echo-csum>
#                      [nic]
#   echo   a host TCP echo server on an ephemeral port; the guest takes a DHCP lease, connects to 10.0.2.2:PORT
#          (slirp maps it to the host's 127.0.0.1), sends 1 MiB, checks the echo and closes; the server must have
#          echoed exactly 1 MiB.
#   echo-lossy  as echo with 256 KiB, but the guest loses every 37th frame each way once TCP starts (drop=37):
#          retransmission (timeouts, fast retransmit, the out-of-order range) on both sides.
#   serve  the guest listens on port 7, forwarded from a free host port (hostfwd=tcp:127.0.0.1:HPORT-:7); once it
#          prints "net: listening" the host connects, sends 64 KiB of the pattern, closes its side and checks the echo.
#   echo-second-nic  echo through the second of two virtio-net NICs, each on its own user network (nic_index=1):
#          several NICs per VM, each with its own backend and MAC (the guest prints the MAC: 52:54:00:12:34:57).
#   echo-ctrl  echo after the guest driver used the control queue (ctrl=1): promiscuous mode off, empty filter
#          tables and a new MAC (MAC_ADDR_SET): the device must then deliver what is addressed to the new MAC.
#   tap-*  the same over a tap (needs root): a private network namespace holds the tap (host side 10.0.3.1/24),
#          dnsmasq serving the guest 10.0.3.15 by DHCP, the peer, and the VMM (--net tap=IFNAME); serve connects to
#          10.0.3.15:7 directly. tap-echo-csum: echo with the guest driver's checksum offload both ways (csum=1): the
#          driver must report partial checksums sent and received.
#   nic    virtio (default), e1000, rtl8139, rtl8139cp, ne2k_pci or pcnet; passed to the guest as nic= and to the VMM as
#          the NIC model (rtl8139cp: the rtl8139 model, driven in C+ mode with checksum offload; on hako the guest also
#          demands the NIC's receive checksum verdict on every TCP/UDP frame, rxcsum=1, which QEMU's model does not give).
# Environment: HAKO, QEMU (as run-guest-test.sh), LOG (the guest's serial log; default: a temp file).
set -u
[ $# -ge 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
vmm=$1 guest=$2 mode=$3 nic=${4:-virtio}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-net.XXXXXX")
peer_pid="" dnsmasq_pid="" netns=""
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    [ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null
    [ -n "$netns" ] && ip netns del "$netns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
log=${LOG:-$tmp/serial.log}
model=""
[ "$nic" = virtio ] || model=",model=${nic%cp}"
serve_bytes=65536

echo_bytes=1048576 guest_extra=""
netspec=user$model peer_addr=127.0.0.1 extra_expect=()
if [ "$mode" = echo-lossy ]; then
    echo_bytes=262144 guest_extra=" drop=37 bytes=$echo_bytes"
fi
if [ "$nic" = rtl8139cp ] && [ "$vmm" = hako ]; then
    guest_extra+=" rxcsum=1"
fi
if [ "$mode" = echo-second-nic ]; then
    guest_extra=" nic_index=1" extra_expect=(--expect-output "MAC 52:54:00:12:34:57")
    second_nic=1
    mode=echo
elif [ "$mode" = echo-ctrl ]; then
    guest_extra=" ctrl=1" extra_expect=(--expect-output "control queue: promiscuous off, filter tables empty, MAC now")
    mode=echo
fi
# peer CMD...: runs a peer command on the host side of the guest's network.
peer() { NET_PEER_ADDR=$peer_addr "$@"; }
case $mode in
    tap-*)
        [ "$(id -u)" -eq 0 ] || { echo "run-net-test: FAIL: tap modes need root (network namespace and tap)"; exit 1; }
        netns=hako-net-$$ tap=htap0 peer_addr=10.0.3.1
        ip netns add "$netns" || { echo "run-net-test: FAIL: ip netns add $netns"; netns=""; exit 1; }
        ip netns exec "$netns" ip link set lo up \
            && ip netns exec "$netns" ip tuntap add dev $tap mode tap \
            && ip netns exec "$netns" ip addr add $peer_addr/24 dev $tap \
            && ip netns exec "$netns" ip link set $tap up \
            || { echo "run-net-test: FAIL: could not make tap $tap in $netns"; exit 1; }
        ip netns exec "$netns" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=$tap --bind-interfaces \
            --dhcp-range=10.0.3.15,10.0.3.15,255.255.255.0,1h --dhcp-option=option:router,$peer_addr \
            --dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" >"$tmp/dnsmasq.log" 2>&1 &
        dnsmasq_pid=$!
        export NETNS=$netns
        peer() { NET_PEER_ADDR=$peer_addr ip netns exec "$netns" "$@"; }
        netspec=tap=$tap$model
        if [ "$mode" = tap-echo-csum ]; then
            guest_extra=" csum=1"
            extra_expect=(--expect-output "checksum offload tx on rx on")
        fi
        echo "run-net-test: tap $tap in network namespace $netns, host side $peer_addr, dnsmasq for the guest"
        mode=${mode#tap-}
        mode=${mode%-csum}
        ;;
esac
case $mode in
    echo|echo-lossy)
        peer python3 "$here/net-peer.py" echo-server "$tmp/port" 150 >"$tmp/peer.log" 2>&1 &
        peer_pid=$!
        for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
        [ -s "$tmp/port" ] || { echo "run-net-test: FAIL: the echo server did not start"; cat "$tmp/peer.log"; exit 1; }
        port=$(cat "$tmp/port")
        echo "run-net-test: host echo server on $peer_addr:$port"
        nets=(--net "$netspec")
        [ -n "${second_nic:-}" ] && nets=(--net "$netspec" --net "$netspec") # the guest uses the second
        "$here/run-guest-test.sh" "$vmm" "$guest" 1 "${nets[@]}" --log "$log" \
            --cmdline "nic=$nic mode=echo port=$port$guest_extra" "${extra_expect[@]}" \
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
        if [ -n "$netns" ]; then
            hport=7 peer_addr=10.0.3.15
            echo "run-net-test: connecting to the guest at $peer_addr:7 over the tap"
        else
            hport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            netspec="user,hostfwd=tcp:127.0.0.1:$hport-:7$model"
            echo "run-net-test: forwarding 127.0.0.1:$hport to guest port 7"
        fi
        : >"$log"
        "$here/run-guest-test.sh" "$vmm" "$guest" 1 --net "$netspec" --log "$log" \
            --cmdline "nic=$nic mode=serve listen=7 expect=$serve_bytes$guest_extra" \
            --expect-output "follow the pattern: ok" --expect-output PASS >"$tmp/run.log" 2>&1 &
        run_pid=$!
        while kill -0 "$run_pid" 2>/dev/null && ! grep -q "net: listening" "$log"; do sleep 0.1; done
        client_status=1
        if grep -q "net: listening" "$log"; then
            peer python3 "$here/net-peer.py" client "$hport" "$serve_bytes" 60
            client_status=$?
        else
            echo "run-net-test: FAIL: the guest never printed \"net: listening\""
        fi
        wait "$run_pid"
        run_status=$?
        cat "$tmp/run.log"
        [ $client_status -eq 0 ] && [ $run_status -eq 0 ] || exit 1
        ;;
    *) echo "run-net-test: mode must be [tap-]echo, echo-lossy, echo-ctrl, echo-second-nic, [tap-]serve or tap-echo-csum, not $3" >&2; exit 2 ;;
esac
grep -a "^net: \|^check: \|^virtio-net: checksum\|^virtio-net: control" "$log"
if [ "$3" = tap-echo-csum ]; then
    # "...: N frames sent with a partial checksum, M received with one, ...": both must be non-zero.
    counts=$(grep -a "^virtio-net: checksum offload tx on rx on" "$log" | sed -E 's/.*: ([0-9]+) frames sent[^,]*, ([0-9]+) received.*/\1 \2/')
    read -r sent_partial received_partial <<<"$counts"
    [ "${sent_partial:-0}" -gt 0 ] && [ "${received_partial:-0}" -gt 0 ] \
        || { echo "run-net-test: FAIL: checksum offload was not used both ways ($counts)"; exit 1; }
fi
echo "run-net-test: ok"
