#!/usr/bin/env bash
# Builds hako serve's web UI (web/) into OUT_DIR: `npm ci` (exact versions from web/package-lock.json, into
# web/node_modules, skipped when that is already current) and esbuild through web/build.mjs. CMake runs it for the
# `web` target (BUILD/web); `hako serve` serves that directory at / (or --web-dir DIR).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out=$(realpath -m "$1")
cd "$(dirname "$0")/../web"
command -v npm >/dev/null || { echo "build-web: npm is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs "$out"
