#!/usr/bin/env bash
# A/B two switchyard binaries on cleartext load, interleaved, with the server's CPU time per
# message as well as the rate (CPU per message moves far less than the rate when other work
# shares the machine).
#
#   A=/path/old/switchyard B=build/switchyard bench/ab_compare.sh
#
# Both servers run at the same time (`serve --workers WORKERS --no-deflate --no-access-log`,
# one temp root with a FILE_SIZE index.html). Each round measures, in turn on A and B (A first
# in odd rounds, B first in even ones):
#   ws32   ws_load -c 100 -k 16 -s 32 --binary   (as bench/ws_compare.sh "small")
#   ws64k  ws_load -c 10 -k 2 -s 64k --binary    (as "bin64k")
#   http   wrk -t2 -c100 GET /index.html         (as bench/http_compare.sh)
# each for DURATION seconds, reading the server's utime+stime (/proc/PID/stat) around it.
# The table gives medians over rounds of the rate, of CPU microseconds per message (or
# request), and of the per-round B/A ratios, with every round's figures.
#
# Environment: A B (binaries; B defaults to build/switchyard) A_NAME B_NAME (before, after)
#   ROUNDS (3) DURATION (3) WORKERS (2) FILE_SIZE (4096) SCENARIOS ("ws32 ws64k http")
#   SERVER_CPUS (0,1) CLIENT_CPUS (0,1)
# Output: the table on stdout and in bench/results/ab_compare-<stamp>.{txt,tsv}.
set -euo pipefail

cd "$(dirname "$0")/.."
A=${A:?A=path of the first switchyard binary}
B=${B:-build/switchyard}
A_NAME=${A_NAME:-before}
B_NAME=${B_NAME:-after}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
WORKERS=${WORKERS:-2}
FILE_SIZE=${FILE_SIZE:-4096}
SCENARIOS=${SCENARIOS:-ws32 ws64k http}
SERVER_CPUS=${SERVER_CPUS:-0,1}
CLIENT_CPUS=${CLIENT_CPUS:-0,1}
for x in "$A" "$B"; do [[ -x $x ]] || { echo "ab_compare: $x is not an executable" >&2; exit 2; }; done
command -v wrk >/dev/null || [[ " $SCENARIOS " != *" http "* ]] || {
    echo "ab_compare: wrk is missing (apt-get install wrk)" >&2
    exit 2
}

log() { echo "ab_compare: $*" >&2; }
TMP=$(mktemp -d /tmp/ab_compare.XXXXXX)
chmod 755 "$TMP"
declare -A PID PORT BIN
cleanup() {
    for k in "${!PID[@]}"; do kill "${PID[$k]}" 2>/dev/null || true; done
    for k in "${!PID[@]}"; do wait "${PID[$k]}" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/www"
head -c "$FILE_SIZE" < <(while :; do printf '<p>switchyard benchmark page, line of filler text 0123456789</p>\n'; done) \
    >"$TMP/www/index.html"
cc -O2 -o "$TMP/ws_load" bench/ws_load.c -lz -lssl -lcrypto -pthread || { log "ws_load build failed"; exit 1; }

BIN[$A_NAME]=$A
BIN[$B_NAME]=$B
for k in "$A_NAME" "$B_NAME"; do
    taskset -c "$SERVER_CPUS" "${BIN[$k]}" serve --listen 127.0.0.1:0 --root "$TMP/www" --workers "$WORKERS" \
        --no-deflate --no-access-log --ws-max-message 67108864 >"$TMP/$k.log" 2>&1 &
    PID[$k]=$!
done
for k in "$A_NAME" "$B_NAME"; do
    for _ in $(seq 100); do
        PORT[$k]=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$TMP/$k.log" | head -1)
        [[ -n ${PORT[$k]} ]] && break
        sleep 0.1
    done
    [[ -n ${PORT[$k]} ]] || { log "$k did not start:"; cat "$TMP/$k.log" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/results
OUT="bench/results/ab_compare-$STAMP"
printf 'round\tname\tscenario\trate\tcpu_us\tload\n' >"$OUT.tsv"

measure() { # round name scenario
    local r=$1 k=$2 sc=$3 t0 t1 out rate secs load
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(cpu_ticks "${PID[$k]}")
    case $sc in
    ws32 | ws64k)
        local args="-c 100 -k 16 -s 32 --binary"
        [[ $sc == ws64k ]] && args="-c 10 -k 2 -s 64k --binary"
        # shellcheck disable=SC2086
        out=$(taskset -c "$CLIENT_CPUS" "$TMP/ws_load" $args -t "$DURATION" -w 0 "ws://127.0.0.1:${PORT[$k]}/echo" 2>&1 || true)
        rate=$(grep -o 'msgs_per_s=[0-9]*' <<<"$out" | cut -d= -f2)
        # the CPU window also holds the connects and the close handshakes: count the time
        # around the measured window at the same rate (a slight overestimate of CPU/msg,
        # the same for both binaries)
        secs=$(awk -v d="$DURATION" 'BEGIN {print d + 0.3}')
        ;;
    http)
        out=$(taskset -c "$CLIENT_CPUS" wrk -t2 -c100 -d"${DURATION}s" "http://127.0.0.1:${PORT[$k]}/index.html" 2>&1 || true)
        rate=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
        secs=$DURATION
        ;;
    esac
    t1=$(cpu_ticks "${PID[$k]}")
    rate=${rate:-0}
    local cpu
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v r="$rate" -v s="$secs" 'BEGIN {printf "%.3f", (r > 0 ? t / hz * 1e6 / (r * s) : 0)}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$k" "$sc" "$rate" "$cpu" "$load" >>"$OUT.tsv"
    log "round $r $k $sc: $rate/s, $cpu us CPU each (load $load)"
}

for r in $(seq "$ROUNDS"); do
    order="$A_NAME $B_NAME"
    ((r % 2)) || order="$B_NAME $A_NAME"
    for sc in $SCENARIOS; do
        for k in $order; do measure "$r" "$k" "$sc"; done
    done
done

{
    echo "A/B, cleartext, $WORKERS workers: $A_NAME = $A, $B_NAME = $B; $ROUNDS interleaved rounds x ${DURATION}s; medians (per round)"
    printf '%-7s %-18s %10s %10s %7s   %-18s %-18s\n' scenario figure "$A_NAME" "$B_NAME" "B/A" "$A_NAME per round" "$B_NAME per round"
    for sc in $SCENARIOS; do
        for col in 4 5; do
            awk -F'\t' -v sc="$sc" -v col="$col" -v a="$A_NAME" -v b="$B_NAME" -v rounds="$ROUNDS" '
                function med(v, n,   i, j, t) {
                    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                    return n == 0 ? 0 : n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                }
                NR > 1 && $3 == sc && $2 == a { va[$1] = $col }
                NR > 1 && $3 == sc && $2 == b { vb[$1] = $col }
                END {
                    for (r = 1; r <= rounds; r++) {
                        if (r in va) { xa[++na] = va[r]; la = la sprintf("%s%g", na > 1 ? " " : "", va[r]) }
                        if (r in vb) { xb[++nb] = vb[r]; lb = lb sprintf("%s%g", nb > 1 ? " " : "", vb[r]) }
                        if ((r in va) && (r in vb) && va[r] > 0) rr[++nr] = vb[r] / va[r]
                    }
                    unit = col == 4 ? (sc == "http" ? "req/s" : "msg/s") : (sc == "http" ? "CPU us/request" : "CPU us/msg")
                    printf "%-7s %-18s %10g %10g %7.3f   %-18s %-18s\n", sc, unit, med(xa, na), med(xb, nb), med(rr, nr), la, lb
                }' "$OUT.tsv"
        done
    done
    echo "1-minute load average during the run: $(awk -F'\t' 'NR > 1 {print $6}' "$OUT.tsv" | sort -g | sed -n '1p;$p' | paste -sd- -) (2 CPUs)"
} | tee "$OUT.txt"
log "per measurement: $OUT.tsv"
