#!/usr/bin/env bash
# Runs hako's whole test suite: layering/docs checks, unit tests (plain and ASan+UBSan), libFuzzer targets,
# and guest tests that run the real hako binary (and QEMU as the reference) on /dev/kvm.
# Usage: scripts/test.sh            (everything; what CI runs through .ci/run)
#        HAKO_TEST_QUICK=1 scripts/test.sh   (skip the sanitizer and fuzz builds)
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${HAKO_JOBS:-$(nproc)}
export HAKO_CACHE=${HAKO_CACHE:-/var/tmp/hako}

scripts/install-deps.sh || exit 1
scripts/fetch-guests.sh || exit 1

passed=0
failed=0
failures=()
details=$(mktemp)
note() { printf '\n=== %s ===\n' "$*"; }

# step NAME CMD...: a check that counts as one test.
step() {
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

# run_ctest NAME BUILD_DIR [ctest args]: runs ctest and adds its counts.
run_ctest() {
  local name=$1 dir=$2; shift 2
  local log
  log=$(mktemp)
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log"
  ctest --test-dir "$dir" --output-on-failure -j "$JOBS" "$@" 2>&1 | tee "$log"
  local line total nfail
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    failed=$((failed + 1)); failures+=("$name: ctest did not finish")
  else
    total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
    nfail=$(echo "$line" | sed -E 's/.*tests passed, ([0-9]+) tests failed.*/\1/')
    passed=$((passed + total - nfail)); failed=$((failed + nfail))
    [ "$nfail" -eq 0 ] || failures+=("$name: $nfail failed")
  fi
  rm -f "$log"
  failed_output "$dir" >>"$details"
}

# failed_output BUILD_DIR: the end of each failed test's output (from ctest's LastTest.log), repeated in the summary so
# that it is in the last lines a CI log shows.
failed_output() {
  local tmp=$1/Testing/Temporary t
  [ -s "$tmp/LastTestsFailed.log" ] || return 0
  while IFS=: read -r _ t; do
    echo "--- $t (last 40 lines of its output) ---"
    awk -v t="$t" '$0 ~ "Testing: " t "$" {on=1; next} on && /" end time: |^[0-9]+\/[0-9]+ Testing: / {exit} on' \
      "$tmp/LastTest.log" | tail -n 40
  done <"$tmp/LastTestsFailed.log"
}

note "static checks"
step check-layers scripts/check-layers.sh
step check-docs scripts/check-docs.sh

note "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && ninja -C build -j "$JOBS" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
note "unit and guest tests"
run_ctest "build" build

if [ -z "${HAKO_TEST_QUICK:-}" ]; then
  # One clang build with AddressSanitizer, UndefinedBehaviorSanitizer (no recovery: any report fails) and libFuzzer's
  # coverage instrumentation serves both the unit tests and the libFuzzer targets: one more build of the core, not two.
  # -O1 with line tables only: the sanitizers' stack traces keep file and line, and the build takes less time. The
  # hako binary is not built there: nothing in this build runs it.
  note "build with clang, ASan+UBSan and libFuzzer (unit tests and fuzz targets)"
  if CC=clang CXX=clang++ cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
      -DHAKO_SANITIZE=ON -DHAKO_FUZZ=ON -DHAKO_TESTS=ON -DHAKO_GUESTS=OFF -DHAKO_WEB=OFF >/dev/null \
      && ninja -C build-san -j "$JOBS" hako_unit_tests hako_fuzz_targets; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    note "unit tests under ASan+UBSan"
    run_ctest "asan" build-san -L unit
    note "libFuzzer targets"
    run_ctest "fuzz" build-san -L fuzz
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    failed=$((failed + 1)); failures+=("sanitizer/fuzz build")
  fi
fi

note "summary"
cat "$details"; rm -f "$details"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
