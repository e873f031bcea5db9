#!/usr/bin/env bash
# Fails if docs/architecture.md or README.md names a repository path that does not exist.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for doc in docs/architecture.md README.md bench/RESULTS.md tests/guest/README.md; do
  [ -f "$doc" ] || continue
  # Paths in backquotes that start with a top-level directory of the repo.
  for p in $(grep -oE '`(src|tests|scripts|bench|docs|\.ci)/[A-Za-z0-9_./<>-]*`' "$doc" | tr -d '`' | sort -u); do
    case "$p" in *'<'*|*'>'*) continue ;; esac  # templates like tests/unit/devices/<family>/
    if [ ! -e "$p" ]; then
      echo "check-docs: $doc names $p, which does not exist"
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "check-docs: every path named in the docs exists"
exit $status
