#!/usr/bin/env bash
# Run the asynchronous-handler/abort stress test (tests/unit/net/async_abort.c) for longer than
# `make test` does (4 s), under a sanitizer build, several times with fresh seeds. Stops at the
# first failing run and keeps its output.
#   scripts/stress.sh [asan|tsan|plain] [seconds per run] [runs]
#   e.g. scripts/stress.sh asan 60 5      scripts/stress.sh tsan 120 1
# SY_STRESS_CLIENTS and SY_STRESS_WORKERS pass through; to repeat a failing run, set
# SY_STRESS_SEED to the seed it printed.
set -u
cd "$(dirname "$0")/.."
variant=${1:-asan}
secs=${2:-30}
runs=${3:-3}
case $variant in
  asan) san=1; build=build/san ;;
  tsan) san=thread; build=build/tsan ;;
  plain) san=0; build=build ;;
  *) echo "usage: $0 [asan|tsan|plain] [seconds per run] [runs]" >&2; exit 2 ;;
esac
bin=$build/tests/unit/net/async_abort
make SAN=$san -j2 "$bin" >/dev/null || exit 1
log=$(mktemp)
for i in $(seq 1 "$runs"); do
  echo "== run $i/$runs: $variant, $secs s"
  SY_STRESS_SECONDS=$secs timeout $((secs * 3 + 120)) "$bin" >"$log" 2>&1
  rc=$?
  grep -E '^(#|FAIL)|^[0-9]+ passed, ' "$log"
  if [ $rc -ne 0 ]; then
    grep -m1 -A30 -E 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error' "$log"
    echo "run $i failed (exit $rc); full output in $log"
    exit 1
  fi
done
rm -f "$log"
echo "all $runs runs clean"
