#!/usr/bin/env bash
# Two VMs cannot open one disk image read-write: while a first hako runs a guest on the image, a second one must
# fail with one clear line and status 4; a read-only open by a second VM is refused too (the first writes).
# usage: disk-lock.sh <guest.elf>   Environment: HAKO.
set -u
guest=$1
hako=${HAKO:?HAKO must name the hako binary}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
first=""
cleanup() { [ -n "$first" ] && kill "$first" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
truncate -s 1M "$tmp/disk.img"
mkfifo "$tmp/in"
exec 3<>"$tmp/in"
# The uart guest prints READY and then waits for a line on COM1: the first VM stays up holding the image.
"$hako" run --kernel "$guest" --debug-exit --disk "path=$tmp/disk.img" <"$tmp/in" >"$tmp/first.log" 2>&1 &
first=$!
for _ in $(seq 1 300); do
    grep -q READY "$tmp/first.log" && break
    kill -0 "$first" 2>/dev/null || { echo "FAIL: the first VM exited early:"; cat "$tmp/first.log"; exit 1; }
    sleep 0.1
done
grep -q READY "$tmp/first.log" || { echo "FAIL: the first VM never got ready"; exit 1; }
"$here/expect-error.sh" 4 "Disk image .*disk.img is in use by another process" -- \
    run --kernel "$guest" --debug-exit --disk "path=$tmp/disk.img" || exit 1
"$here/expect-error.sh" 4 "Disk image .*disk.img is in use by another process" -- \
    run --kernel "$guest" --debug-exit --disk "path=$tmp/disk.img,readonly=on" || exit 1
kill -0 "$first" 2>/dev/null || { echo "FAIL: the first VM died"; exit 1; }
echo "PASS: the second VM was refused while the first ran"
