#!/usr/bin/env bash
# HTTP/1.1 static-file comparison: switchyard vs nginx vs h2o, side by side in one run.
#
# Every server serves the same small file (FILE_SIZE bytes, default 4 KiB index.html)
# from one temp root with WORKERS worker threads/processes (default 2). The servers run
# at the same time on their own ports, and wrk visits them in turn, ROUNDS times
# (round-robin, so drift in machine state hits every server alike). Each visit is
# `wrk -t THREADS -c CONNS -d DURATION --latency` after a short untimed warm-up.
# The table shows the median across rounds of requests/s and of p99 latency.
#
# CPU placement: the machine has 2 cores. By default every server runs under
# `taskset -c $SERVER_CPUS` (0,1) and wrk under `taskset -c $CLIENT_CPUS` (0,1): both
# share both cores, identically for every server. Set e.g. SERVER_CPUS=1 CLIENT_CPUS=0
# to split them (then the WORKERS workers share one core).
#
# Servers: switchyard, nginx, h2o, and switchyard-b: a second switchyard binary
# (SWITCHYARD_B, e.g. a build from before a change) run the same way, in the same rounds.
#
# Environment: DURATION (s, 10) ROUNDS (3) CONNS (100) THREADS (wrk threads, 2)
#   WORKERS (2) FILE_SIZE (4096) WARMUP (s, 2) SERVER_CPUS (0,1) CLIENT_CPUS (0,1)
#   SERVERS ("switchyard nginx h2o") SWITCHYARD (build/switchyard) SWITCHYARD_B
#   NO_BUILD (unset) STAMP (names the output files; the date and time)
# Output: the table on stdout; raw wrk output, per-round numbers and the table in
# bench/results/http_compare-<timestamp>.{log,tsv,txt}.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
FILE_SIZE=${FILE_SIZE:-4096}
WARMUP=${WARMUP:-2}
SERVER_CPUS=${SERVER_CPUS:-0,1}
CLIENT_CPUS=${CLIENT_CPUS:-0,1}
SERVERS=${SERVERS:-switchyard nginx h2o}
SWITCHYARD=${SWITCHYARD:-build/switchyard}
SWITCHYARD_B=${SWITCHYARD_B:-}

log() { echo "http_compare: $*" >&2; }
. bench/lib.sh

# ---- dependencies ----
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
[[ " $SERVERS " == *" nginx "* ]] && ! command -v nginx >/dev/null && missing+=(nginx-light)
[[ " $SERVERS " == *" h2o "* ]] && ! command -v h2o >/dev/null && missing+=(h2o)
bench_install ${missing[@]+"${missing[@]}"}
[[ " $SERVERS " == *" switchyard "* ]] && bench_switchyard "$SWITCHYARD"
if [[ " $SERVERS " == *" switchyard-b "* ]]; then
    [[ -n $SWITCHYARD_B ]] || { log "switchyard-b needs SWITCHYARD_B=/path/to/switchyard"; exit 1; }
    bench_switchyard "$SWITCHYARD_B"
fi

# ---- temp root, configs ----
TMP=$(mktemp -d /tmp/http_compare.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/www"
# printable, mildly repetitive HTML of exactly FILE_SIZE bytes
head -c "$FILE_SIZE" < <(
    printf '<!doctype html><html><head><title>bench</title></head><body>\n'
    while :; do printf '<p>switchyard benchmark page, line of filler text 0123456789</p>\n'; done
) > "$TMP/www/index.html"
chmod -R a+rX "$TMP/www"

PIDS=()
cleanup() {
    bench_stop ${PIDS[@]+"${PIDS[@]}"}
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # port pid name
    for _ in $(seq 100); do
        if ! kill -0 "$2" 2>/dev/null; then log "$3 exited at start-up"; return 1; fi
        local got
        got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$1/index.html" || true)
        if [[ "$got" == "200 $FILE_SIZE" ]]; then return 0; fi
        sleep 0.1
    done
    log "$3 not serving index.html on port $1 (last: $got)"
    return 1
}

declare -A PORT
start_server() {
    local name=$1 port
    port=$(pick_port)
    PORT[$name]=$port
    case $name in
    switchyard | switchyard-b)
        local bin=$SWITCHYARD
        [[ $name == switchyard-b ]] && bin=$SWITCHYARD_B
        taskset -c "$SERVER_CPUS" "$bin" serve --listen "127.0.0.1:$port" --root "$TMP/www" \
            --workers "$WORKERS" --no-access-log >"$TMP/$name.log" 2>&1 &
        ;;
    nginx)
        mkdir -p "$TMP/nginx"
        cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        root $TMP/www;
        location / { }
    }
}
EOF
        taskset -c "$SERVER_CPUS" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
            >"$TMP/nginx.log" 2>&1 &
        ;;
    h2o)
        mkdir -p "$TMP/h2o" && chmod 1777 "$TMP/h2o" # h2o drops root for nobody
        cat >"$TMP/h2o/h2o.conf" <<EOF
num-threads: $WORKERS
pid-file: $TMP/h2o/h2o.pid
error-log: $TMP/h2o/error.log
listen:
  host: 127.0.0.1
  port: $port
hosts:
  default:
    paths:
      /:
        file.dir: $TMP/www
EOF
        taskset -c "$SERVER_CPUS" h2o -c "$TMP/h2o/h2o.conf" >"$TMP/h2o.log" 2>&1 &
        ;;
    *) log "unknown server $name"; return 1 ;;
    esac
    local pid=$!
    PIDS+=("$pid")
    wait_http "$port" "$pid" "$name" || { cat "$TMP/$name.log" >&2; return 1; }
    log "$name on port $port (pid $pid)"
}

for s in $SERVERS; do start_server "$s"; done

mkdir -p bench/results
LOAD0=$(loadavg)
STAMP=${STAMP:-$(date +%Y%m%d-%H%M%S)}
OUT="bench/results/http_compare-$STAMP"
{
    echo "# http_compare $STAMP: file=${FILE_SIZE}B workers=$WORKERS wrk -t$THREADS -c$CONNS -d${DURATION}s"
    echo "# server cpus=$SERVER_CPUS client cpus=$CLIENT_CPUS rounds=$ROUNDS"
    echo "# $(uname -r) $(nproc) cpus; wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); nginx $(nginx -v 2>&1 | sed 's/.*\///'); h2o $(h2o --version 2>/dev/null | head -1 | awk '{print $3}')"
} >"$OUT.log"
printf 'round\tserver\treq_per_s\tp50_us\tp99_us\terrors\n' >"$OUT.tsv"

to_us() { # wrk latency like 1.23ms / 456.00us / 1.2s -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else if (u == "m") m = 60000000; else m = 1;
        printf "%.0f", n * m }'
}

for s in $SERVERS; do # untimed warm-up
    taskset -c "$CLIENT_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:${PORT[$s]}/index.html" >/dev/null 2>&1 || true
done

for r in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
        out=$(taskset -c "$CLIENT_CPUS" timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
            "http://127.0.0.1:${PORT[$s]}/index.html" 2>&1) || true
        { echo "=== round $r $s"; echo "$out"; } >>"$OUT.log"
        rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        errs=$(awk '/Socket errors:/ {gsub(/,/, ""); e = $4 + $6 + $8 + $10} /Non-2xx/ {e += $5} END {print e + 0}' <<<"$out")
        [[ -n "$rps" ]] || { rps=0; log "round $r $s: wrk failed: $(tail -2 <<<"$out")"; }
        p50=$(to_us "${p50:-0}")
        p99=$(to_us "${p99:-0}")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$rps" "$p50" "$p99" "$errs" >>"$OUT.tsv"
        log "round $r/$ROUNDS $s: $rps req/s p99 ${p99}us errors $errs"
    done
done

# server health after the run
for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || log "a server (pid ${PIDS[$i]}) died during the run"
done

{
    echo "HTTP/1.1 static ${FILE_SIZE} B file, wrk -t$THREADS -c$CONNS ${DURATION}s x $ROUNDS rounds (median), $WORKERS workers each, server cpus $SERVER_CPUS, wrk cpus $CLIENT_CPUS"
    first=${SERVERS%% *}
    printf '%-12s %12s %10s %10s %8s %13s   %s\n' server req/s p50_us p99_us errors "vs $first" "req/s per round"
    for s in $SERVERS; do
        # median over rounds of this server's req/s divided by the first server's in the same round
        ratio=$(awk -F'\t' -v s="$s" -v f="$first" 'NR > 1 && $2 == f {b[$1] = $3} NR > 1 && $2 == s {v[$1] = $3}
            END {for (r in v) if (b[r] > 0) print v[r] / b[r]}' "$OUT.tsv" | median)
        rows=$(awk -F'\t' -v s="$s" 'NR > 1 && $2 == s' "$OUT.tsv")
        rps=$(cut -f3 <<<"$rows" | median)
        p50=$(cut -f4 <<<"$rows" | median)
        p99=$(cut -f5 <<<"$rows" | median)
        errs=$(cut -f6 <<<"$rows" | awk '{e += $1} END {print e + 0}')
        per=$(cut -f3 <<<"$rows" | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')
        printf '%-12s %12.0f %10.0f %10.0f %8s %13.2f   %s\n' "$s" "$rps" "$p50" "$p99" "$errs" "${ratio:-0}" "$per"
    done
} | tee "$OUT.txt"
echo "load average before: $LOAD0, after: $(loadavg) (other processes on the machine skew results)" | tee -a "$OUT.txt"
log "raw output: $OUT.log, per round: $OUT.tsv"
