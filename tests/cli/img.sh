#!/usr/bin/env bash
# `hako img` against qemu-img as the oracle: every image hako creates, converts or resizes must pass
# `qemu-img check` and read back as qemu-img says; `hako img check` must agree with qemu-img check on a clean image
# and on one with a leaked cluster; bad input gets one line and a non-zero status.
# usage: img.sh   (HAKO: the hako binary)
set -u
hako=$(realpath "${HAKO:-build/hako}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hako-img.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fails=0
ok() { echo "img: ok: $*"; }
bad() { echo "img: FAIL: $*"; fails=$((fails + 1)); }
expect() { # expect STATUS DESCRIPTION CMD...
    local want=$1 what=$2; shift 2
    "$@" >out.txt 2>err.txt
    local got=$?
    if [ "$got" -eq "$want" ]; then ok "$what"; else bad "$what: status $got, expected $want"; cat out.txt err.txt; fi
}

# create: raw and qcow2, sizes in qemu-img's syntax
expect 0 "create raw 64M" "$hako" img create r.raw 64M
[ "$(stat -c %s r.raw)" -eq 67108864 ] && ok "raw size" || bad "raw size $(stat -c %s r.raw)"
expect 0 "create qcow2 1G" "$hako" img create -f qcow2 q.qcow2 1G
expect 0 "qemu-img check of a new qcow2" qemu-img check q.qcow2
qemu-img info --output=json q.qcow2 | grep -q '"virtual-size": 1073741824' && ok "qcow2 virtual size" || bad "qcow2 virtual size"
expect 0 "create with cluster size 4K" "$hako" img create -f qcow2 --cluster-size 4K s.qcow2 10M
qemu-img info s.qcow2 | grep -q "cluster_size: 4096" && ok "cluster size 4096" || bad "cluster size"

# info
expect 0 "info qcow2 (json)" "$hako" img info --json q.qcow2
grep -q '"format": "qcow2"' out.txt && grep -q '"virtual-size": 1073741824' out.txt && ok "info json fields" || bad "info json"

# convert raw -> qcow2 -> raw, content compared by qemu-img
head -c 3000000 /dev/urandom >data.bin
cp data.bin src.raw && truncate -s 16M src.raw
expect 0 "convert raw to qcow2" "$hako" img convert -O qcow2 src.raw c.qcow2
expect 0 "qemu-img check of the converted image" qemu-img check c.qcow2
expect 0 "qemu-img compare raw vs converted" qemu-img compare -f raw -F qcow2 src.raw c.qcow2
expect 0 "convert qcow2 back to raw" "$hako" img convert -f qcow2 -O raw c.qcow2 back.raw
cmp -s src.raw back.raw && ok "round trip identical" || bad "round trip differs"
[ "$(stat -c %b back.raw)" -lt $((16 * 1024 * 1024 / 512)) ] && ok "raw output is sparse" || bad "raw output not sparse"
# qemu-img's compressed image read by hako
qemu-img convert -c -O qcow2 src.raw z.qcow2
expect 0 "convert a compressed qcow2" "$hako" img convert -f qcow2 -O raw z.qcow2 z.raw
cmp -s src.raw z.raw && ok "compressed clusters read" || bad "compressed clusters differ"
# the probe policy: a qcow2 source without -f is refused
expect 4 "convert refuses an unnamed qcow2 source" "$hako" img convert -O raw c.qcow2 nope.raw

# backing files
expect 0 "create with a backing file" "$hako" img create -f qcow2 -b c.qcow2 -F qcow2 top.qcow2
expect 0 "qemu-img compare top vs base" qemu-img compare top.qcow2 c.qcow2
qemu-img info top.qcow2 | grep -q "backing file format: qcow2" && ok "backing format recorded" || bad "backing format"

# resize
expect 0 "resize qcow2 +10G" "$hako" img resize -f qcow2 c.qcow2 +10G
expect 0 "qemu-img check after resize" qemu-img check c.qcow2
qemu-img info --output=json c.qcow2 | grep -q '"virtual-size": 10754195456' && ok "qcow2 grew" || bad "qcow2 size"
qemu-img compare -f raw -F qcow2 src.raw c.qcow2 >out.txt 2>&1 && grep -q "size mismatch" out.txt \
    && ok "data kept (only the size differs, the rest reads as zeros)" || bad "compare after resize"
expect 2 "qcow2 shrink refused" "$hako" img resize -f qcow2 c.qcow2 1M
expect 2 "raw shrink needs --shrink" "$hako" img resize r.raw 1M
expect 0 "raw shrink with --shrink" "$hako" img resize --shrink r.raw 1M
[ "$(stat -c %s r.raw)" -eq 1048576 ] && ok "raw shrunk" || bad "raw size after shrink"

# check: clean, leaked (qemu-img agrees), raw
expect 0 "check a clean image" "$hako" img check c.qcow2
grep -q "No errors were found" out.txt && ok "check message" || bad "check message"
python3 - c.qcow2 <<'PY'
import struct, sys, os
p = sys.argv[1]
with open(p, "r+b") as f:
    h = f.read(104)
    cluster = 1 << struct.unpack(">I", h[20:24])[0]
    reftable = struct.unpack(">Q", h[48:56])[0]
    f.seek(reftable); block = struct.unpack(">Q", f.read(8))[0]
    end = (os.path.getsize(p) + cluster - 1) // cluster
    f.truncate((end + 1) * cluster)
    f.seek(block + 2 * end); f.write(struct.pack(">H", 1))
PY
expect 3 "hako img check finds the leak" "$hako" img check c.qcow2
expect 3 "qemu-img check agrees" qemu-img check c.qcow2
expect 63 "check of a raw image" "$hako" img check -f raw src.raw

# bad input
expect 4 "info of a missing file" "$hako" img info /nonexistent/x.qcow2
expect 2 "bad size" "$hako" img create x.raw lots
expect 2 "bad format" "$hako" img create -f vmdk x.vmdk 1M
expect 4 "create over an existing file" "$hako" img create r.raw 1M
expect 2 "raw with a backing file" "$hako" img create -b c.qcow2 x.raw 1M

[ $fails -eq 0 ] || { echo "img: $fails checks failed"; exit 1; }
echo "img: all checks passed"
