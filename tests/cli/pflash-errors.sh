#!/usr/bin/env bash
# Bad host input for firmware in flash (--firmware uefi|pflash): each case gives one line on stderr and its exit
# status (expect-error.sh), and no file given to hako is changed or created.
# Environment: HAKO (the binary).
set -u
here=$(cd "$(dirname "$0")" && pwd)
expect=$here/expect-error.sh
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
templ=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$templ" ] || { echo "FAIL: $templ is missing (Debian package ovmf)"; exit 1; }
head -c 4096 /dev/urandom >"$work/small-vars.fd"   # a flash size, but not the template's
head -c 1000 /dev/urandom >"$work/odd.bin"          # not a multiple of 4 KiB
cp "$templ" "$work/ro-vars.fd"; chmod 644 "$work/ro-vars.fd"
head -c 65536 /dev/urandom >"$work/code.bin"
truncate -s 8M "$work/big.fd"
sums() { (cd "$work" && sha256sum ./*); }
before=$(sums)
fail=0
run() { echo "== $*"; "$expect" "$@" || fail=1; }

run 4 "--firmware uefi: /nonexistent/OVMF_CODE.fd is missing \(install Debian's ovmf package" -- \
  run --firmware uefi,code=/nonexistent/OVMF_CODE.fd
run 4 "/nonexistent/VARS.fd is missing \(install Debian's ovmf package" -- \
  run --firmware uefi,vars-template=/nonexistent/VARS.fd
run 4 "Variable store .*small-vars.fd is 4096 bytes, but its template .* is 540672 bytes" -- \
  run --firmware "uefi,vars=$work/small-vars.fd"
run 4 "odd.bin is 1000 bytes: a flash image must be a non-zero multiple of 4096 bytes" -- \
  run --firmware "pflash,code=$work/code.bin,vars=$work/odd.bin"
run 4 "odd.bin is 1000 bytes: a flash image must be a non-zero multiple of 4096 bytes" -- \
  run --firmware "pflash,code=$work/odd.bin"
run 4 "Cannot create the variable store /nonexistent/dir/vars.fd: No such file" -- \
  run --firmware uefi,vars=/nonexistent/dir/vars.fd
run 4 "Variable store .*missing.fd does not exist, and there is no template" -- \
  run --firmware "pflash,code=$work/code.bin,vars=$work/missing.fd"
run 4 "Firmware flash images of .* bytes together: at most 8 MiB" -- \
  run --firmware "pflash,code=$templ,vars-template=$work/big.fd"
run 2 "pflash needs code=FILE" -- run --firmware pflash
run 2 "unknown key 'frob'" -- run --firmware uefi,frob=1
run 2 "vars needs a file name" -- run --firmware uefi,vars=
# Unwritable: an unprivileged user cannot open root's 0644 copy for writing (nor create files in a root directory).
echo "== unwritable vars (as nobody)"
RUN_AS=nobody "$expect" 4 "ro-vars.fd.*Permission denied" -- run --firmware "uefi,vars=$work/ro-vars.fd" || fail=1
RUN_AS=nobody "$expect" 4 "Cannot create the variable store .*new-vars.fd: Permission denied" -- \
  run --firmware "uefi,vars=$work/new-vars.fd" || fail=1
after=$(sums)
if [ "$before" != "$after" ]; then
  echo "FAIL: files changed or appeared:"; diff <(echo "$before") <(echo "$after"); fail=1
fi
[ $fail -eq 0 ] && echo "PASS: every bad flash input refused, no file touched"
exit $fail
