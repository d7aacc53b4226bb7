#!/usr/bin/env bash
# `make bench`: every comparison in one go, each bounded in time. Quick settings by default
# (about 5 minutes in all); FULL=1 uses each script's own defaults (three long rounds).
# Results land in bench/results/. Each script can also be run alone (see bench/README.md).
# The headline table (bench/headline.sh, `make headline`, ~8 minutes) is not part of it.
set -u
cd "$(dirname "$0")/.."
if [ "${FULL:-0}" != 1 ]; then
  export DURATION=${DURATION:-3} ROUNDS=${ROUNDS:-1}
fi
export NO_BUILD=1 # make bench has just built everything
rc=0
# metrics_cost.sh needs build/nometrics (make METRICS=0), which make bench does not build.
make -s METRICS=0 -j2 all >/dev/null 2>&1 || echo "make METRICS=0 failed: metrics_cost.sh will stop"
for s in bench/http_compare.sh bench/ws_compare.sh bench/h2_compare.sh bench/pubsub_compare.sh \
  bench/metrics_cost.sh; do
  [ -x "$s" ] || continue
  echo "== $s"
  "$s" || { echo "$s failed (exit $?)"; rc=1; }
done
exit $rc
