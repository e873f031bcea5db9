#!/usr/bin/env bash
# Runs hako with arguments that must fail, and checks the exit status and that stderr is one clear line.
# usage: expect-error.sh <expected-status> <regex the stderr line must match> -- <hako args...>
# Environment: HAKO (the binary), RUN_AS (optional user to run as, via runuser).
set -u
expected=$1 pattern=$2
shift 2
[ "${1:-}" = "--" ] && shift
hako=${HAKO:?HAKO must name the hako binary}
err=$(mktemp)
trap 'rm -f "$err"' EXIT
if [ -n "${RUN_AS:-}" ]; then
  # The checkout may sit under a directory the other user cannot enter (e.g. /root): run a copy from a fresh
  # world-readable directory instead.
  bindir=$(mktemp -d)
  trap 'rm -f "$err"; rm -rf "$bindir"' EXIT
  cp "$hako" "$bindir/hako"
  chmod 755 "$bindir" "$bindir/hako"
  runuser -u "$RUN_AS" -- "$bindir/hako" "$@" </dev/null >/dev/null 2>"$err"
else
  "$hako" "$@" </dev/null >/dev/null 2>"$err"
fi
status=$?
lines=$(grep -c . "$err")
echo "status $status (expected $expected); stderr:"
cat "$err"
if [ "$status" -ne "$expected" ]; then echo "FAIL: exit status $status, expected $expected"; exit 1; fi
if [ "$lines" -ne 1 ]; then echo "FAIL: stderr has $lines lines, expected exactly one"; exit 1; fi
if ! grep -qE -- "$pattern" "$err"; then echo "FAIL: stderr does not match /$pattern/"; exit 1; fi
echo PASS
