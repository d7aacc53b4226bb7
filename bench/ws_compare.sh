#!/usr/bin/env bash
# WebSocket echo comparison: switchyard vs uWebSockets (uWebSockets.js addon) vs
# libwebsockets vs Node `ws`, each without and with permessage-deflate, in one run.
#
# All servers run at the same time on their own ports; every scenario visits every
# server in turn (scenario-major, so slow drift hits all alike). Load comes from
# bench/ws_load.c (compiled here, standalone, -O2).
#
# Scenarios (each measured for DURATION seconds after a 0.5 s warm-up):
#   idle      IDLE_CONNS (10000) idle connections: server RSS growth per connection
#             after the upgrade, and after one 32 B echo on each, and the rate of the
#             upgrade storm that opened them (256 pending at a time). Runs on fresh
#             servers (started anew in every round after the first), so the other
#             scenarios' buffers do not hide the growth
#   small     100 connections x 16 in flight x 32 B binary: messages/s
#   bin64k    10 x K64 (2) in flight x 64 KiB binary (random bytes): MB/s echoed
#   text64k   10 x K64 x 64 KiB text (ASCII words: compresses ~3:1): MB/s echoed
#   bin1m     4 x K1M (2) x 1 MiB binary: MB/s echoed
#   latency   1 x 1 x 32 B: round trip p50/p99 in microseconds; the server (all its
#             threads) and ws_load are moved to CPU $LAT_CPU (0) for it: a same-core
#             round trip (LAT_CPU= leaves them on SERVER_CPUS/CLIENT_CPUS)
#   handshake 32 concurrent loops of connect, upgrade, close: upgrades/s
# Deflate variants: the server enables permessage-deflate and ws_load offers it
# (client_no_context_takeover); the client sends compressed frames.
#
# Servers (SERVERS, default all of them):
#   sy, sy-deflate       build/switchyard serve, --workers $WORKERS (2), --no-deflate for sy
#   sy-b, sy-b-deflate   the same with the binary $SWITCHYARD_B (e.g. a build from before a
#                        change, to see both in the same rounds)
#   ceiling              bench/peers/ceiling_echo.c: a featureless C echo (one thread), the
#                        most a server could get out of this load
#   uws, uws-deflate     bench/peers/uws_echo.js (one thread; deflate = dedicated 256 KiB
#                        compressor + 32 KiB decompressor, replies compressed)
#   lws, lws-deflate     bench/peers/lws_echo.c (one service thread; lws pm_deflate)
#   nodews, nodews-deflate  bench/peers/node_ws_echo.js (Debian node-ws; ws defaults)
# lws-deflate skips bin64k/text64k/bin1m unless LWS_DEFLATE_LARGE=1: Debian's
# libwebsockets 4.1.6 pm_deflate reports zlib errors on 64 KiB compressed messages over
# several connections and then segfaults (see bench/README.md).
#
# Environment: DURATION (3) IDLE_CONNS (10000) WORKERS (2) CLIENT_THREADS (1)
#   SERVER_CPUS (0,1) CLIENT_CPUS (0,1) LAT_CPU (0) SERVERS SCENARIOS ROUNDS (1; median if more)
#   K64 (2) K1M (2) SWITCHYARD (build/switchyard) SWITCHYARD_B (for sy-b) NO_BUILD (unset:
#   make the server first) STAMP (names the output files; the date and time)
# A server that dies is reported (DIED in the table) and restarted for the next scenario.
# Output: table on stdout, raw result lines in bench/results/ws_compare-<stamp>.log.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
WORKERS=${WORKERS:-2}
CLIENT_THREADS=${CLIENT_THREADS:-1}
SERVER_CPUS=${SERVER_CPUS:-0,1}
CLIENT_CPUS=${CLIENT_CPUS:-0,1}
ROUNDS=${ROUNDS:-1}
LAT_CPU=${LAT_CPU-0}
SERVERS=${SERVERS:-sy sy-deflate uws uws-deflate lws lws-deflate nodews nodews-deflate}
SCENARIOS=${SCENARIOS:-idle small bin64k text64k bin1m latency handshake}
K64=${K64:-2}
K1M=${K1M:-2}
SWITCHYARD=${SWITCHYARD:-build/switchyard}
SWITCHYARD_B=${SWITCHYARD_B:-}
PEERS=bench/peers
UWS_PKG=@trufflesuite/uws-js-unofficial

log() { echo "ws_compare: $*" >&2; }
has() { [[ " $SERVERS " == *" $1"* ]]; }
. bench/lib.sh

# ---- dependencies ----
pkgs=()
dpkg -s zlib1g-dev >/dev/null 2>&1 || pkgs+=(zlib1g-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || pkgs+=(libssl-dev)
if has uws || has nodews; then command -v node >/dev/null || pkgs+=(nodejs); fi
if has uws; then command -v npm >/dev/null || pkgs+=(npm); fi
if has nodews; then [[ -e /usr/share/nodejs/ws ]] || pkgs+=(node-ws); fi
if has lws; then dpkg -s libwebsockets-dev >/dev/null 2>&1 || pkgs+=(libwebsockets-dev); fi
bench_install ${pkgs[@]+"${pkgs[@]}"}
if has uws && [[ ! -d "$PEERS/node_modules/$UWS_PKG" ]]; then
    log "npm install $UWS_PKG into $PEERS/node_modules"
    (cd "$PEERS" && npm install --no-save --no-package-lock --no-audit --no-fund --prefix . "$UWS_PKG" >/dev/null 2>&1) ||
        { log "npm install failed"; exit 1; }
fi
if has "sy " || has sy-deflate; then bench_switchyard "$SWITCHYARD"; fi
if has sy-b; then
    [[ -n $SWITCHYARD_B ]] || { log "sy-b needs SWITCHYARD_B=/path/to/switchyard"; exit 1; }
    bench_switchyard "$SWITCHYARD_B"
fi

# fds: 10000 client sockets in ws_load, 10000 in the server
need_fd=$((IDLE_CONNS + 1000))
((need_fd < 4096)) && need_fd=4096
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < need_fd)); then
    ulimit -Hn "$need_fd" 2>/dev/null || log "warning: cannot raise the hard fd limit ($hard) to $need_fd"
fi
if (($(ulimit -Sn) < need_fd)); then
    ulimit -Sn "$need_fd" 2>/dev/null || log "warning: cannot raise the fd limit to $need_fd (now $(ulimit -Sn))"
fi

TMP=$(mktemp -d /tmp/ws_compare.XXXXXX)
mkdir -p "$TMP/www"
echo ok >"$TMP/www/index.html"
cc -O2 -o "$TMP/ws_load" bench/ws_load.c -lz -lssl -lcrypto -pthread || { log "ws_load build failed"; exit 1; }
if has lws; then
    cc -O2 -o "$TMP/lws_echo" "$PEERS/lws_echo.c" -lwebsockets || { log "lws_echo build failed"; exit 1; }
fi
if has ceiling; then
    cc -O2 -Wall -Wextra -Werror -DCEILING_SY_MASK -Isrc -Iinclude -D_GNU_SOURCE -o "$TMP/ceiling_echo" \
        "$PEERS/ceiling_echo.c" src/ws/mask.c -lcrypto ||
        { log "ceiling_echo build failed"; exit 1; }
fi

declare -A PID PORT
cleanup() {
    bench_stop ${PID[@]+"${PID[@]}"}
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() {
    local s=$1 port d=""
    port=$(pick_port)
    [[ $s == *-deflate ]] && d=deflate
    case $s in
    sy | sy-deflate | sy-b | sy-b-deflate)
        local nd=--no-deflate bin=$SWITCHYARD
        [[ -n $d ]] && nd=
        [[ $s == sy-b* ]] && bin=$SWITCHYARD_B
        taskset -c "$SERVER_CPUS" "$bin" serve --listen "127.0.0.1:$port" --root "$TMP/www" \
            --workers "$WORKERS" --no-access-log --max-conns $((IDLE_CONNS + 10000)) \
            --ws-max-message 67108864 $nd >>"$TMP/$s.log" 2>&1 &
        ;;
    uws | uws-deflate)
        taskset -c "$SERVER_CPUS" node "$PEERS/uws_echo.js" "$port" $d >>"$TMP/$s.log" 2>&1 & ;;
    lws | lws-deflate)
        taskset -c "$SERVER_CPUS" "$TMP/lws_echo" "$port" $d >>"$TMP/$s.log" 2>&1 & ;;
    nodews | nodews-deflate)
        taskset -c "$SERVER_CPUS" node "$PEERS/node_ws_echo.js" "$port" $d >>"$TMP/$s.log" 2>&1 & ;;
    ceiling)
        taskset -c "$SERVER_CPUS" "$TMP/ceiling_echo" "$port" >>"$TMP/$s.log" 2>&1 & ;;
    *) log "unknown server $s"; return 1 ;;
    esac
    PID[$s]=$!
    PORT[$s]=$port
    for _ in $(seq 100); do
        port_free "$port" || return 0
        kill -0 "${PID[$s]}" 2>/dev/null || break
        sleep 0.1
    done
    log "$s did not start:"
    cat "$TMP/$s.log" >&2
    return 1
}

for s in $SERVERS; do
    start_server "$s"
    log "$s on port ${PORT[$s]} (pid ${PID[$s]})"
done

mkdir -p bench/results
LOAD0=$(loadavg)
STAMP=${STAMP:-$(date +%Y%m%d-%H%M%S)}
OUT="bench/results/ws_compare-$STAMP"
{
    echo "# ws_compare $STAMP duration=${DURATION}s idle_conns=$IDLE_CONNS workers=$WORKERS client_threads=$CLIENT_THREADS server_cpus=$SERVER_CPUS client_cpus=$CLIENT_CPUS k64=$K64 k1m=$K1M rounds=$ROUNDS"
    echo "# $(uname -r), $(nproc) cpus, node $(node --version 2>/dev/null), libwebsockets $(dpkg-query -W -f '${Version}' libwebsockets-dev 2>/dev/null), node-ws $(dpkg-query -W -f '${Version}' node-ws 2>/dev/null)"
} >"$OUT.log"

scenario_args() { # scenario -> ws_load options
    case $1 in
    idle) echo "--idle $IDLE_CONNS -s 32 --hold 1 --conc 256 --timeout 20" ;;
    small) echo "-c 100 -k 16 -s 32 --binary" ;;
    bin64k) echo "-c 10 -k $K64 -s 64k --binary" ;;
    text64k) echo "-c 10 -k $K64 -s 64k --text" ;;
    bin1m) echo "-c 4 -k $K1M -s 1m --binary" ;;
    latency) echo "--latency -s 32" ;;
    handshake) echo "--handshakes -c 32" ;;
    esac
}

run_one() { # round scenario server
    local r=$1 sc=$2 s=$3 args line extra=""
    if [[ $s == lws-deflate && -z ${LWS_DEFLATE_LARGE:-} ]] && [[ $sc == bin64k || $sc == text64k || $sc == bin1m ]]; then
        echo "result name=$s scenario=$sc round=$r skipped=lws_pmd_bug" >>"$OUT.log"
        return
    fi
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
        log "$s is not running: restarting"
        start_server "$s" || return
    elif [[ $sc == idle && $r -gt 1 ]]; then
        # idle measures growth from a fresh server: start it anew after the other scenarios
        bench_stop "${PID[$s]}"
        start_server "$s" || return
    fi
    args=$(scenario_args "$sc")
    [[ $s == *-deflate ]] && extra=--deflate
    [[ $sc == idle ]] && extra="$extra --pid ${PID[$s]}"
    local ccpus=$CLIENT_CPUS
    if [[ $sc == latency && -n $LAT_CPU ]]; then
        # same-core round trip: cross-core wake-ups cost ~50 us here and land at random
        taskset -a -p -c "$LAT_CPU" "${PID[$s]}" >/dev/null
        ccpus=$LAT_CPU
    fi
    # shellcheck disable=SC2086
    line=$(taskset -c "$ccpus" timeout $((DURATION + 60)) "$TMP/ws_load" $args $extra -t "$DURATION" -w 0.5 \
        -T "$CLIENT_THREADS" -n "$s" "ws://127.0.0.1:${PORT[$s]}/echo" 2>"$TMP/err" | grep '^result ' || true)
    if [[ $sc == latency && -n $LAT_CPU ]]; then
        taskset -a -p -c "$SERVER_CPUS" "${PID[$s]}" >/dev/null 2>&1 || true
    fi
    local err
    err=$(tr '\n' ' ' <"$TMP/err")
    [[ -n $line ]] || line="result name=$s failed=1"
    line="$line scenario=$sc round=$r"
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
        line="$line died=1"
        log "$s DIED during $sc; its log:"
        tail -5 "$TMP/$s.log" >&2
    fi
    [[ -n $err ]] && line="$line stderr=\"$err\""
    echo "$line" >>"$OUT.log"
    log "$line"
}

for r in $(seq "$ROUNDS"); do
    for sc in $SCENARIOS; do
        for s in $SERVERS; do run_one "$r" "$sc" "$s"; done
    done
done

# ---- table ----
field() { # scenario server key -> median over rounds (or - / DIED / skip)
    awk -v sc="$2" -v s="$3" -v k="$1" '
        /^result / {
            delete f
            for (i = 2; i <= NF; i++) {
                if (substr($i, 1, 7) == "stderr=") break
                p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1)
            }
            if (f["name"] != s || f["scenario"] != sc) next
            if ("skipped" in f) { skip = 1; next }
            if ("died" in f) died = 1
            if ("failed" in f) { failed = 1; next }
            if (k in f) v[++n] = f[k] + 0
        }
        END {
            if (skip) { print "skip"; exit }
            if (n == 0) { print (died ? "DIED" : failed ? "FAIL" : "-"); exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            fmt = (m >= 100 ? "%.0f" : "%.1f")
            printf fmt, m
            if (died) printf "!"
        }' "$OUT.log"
}
{
    echo "WebSocket echo, ${DURATION}s per measurement, switchyard --workers $WORKERS, peers single-threaded, ws_load -T $CLIENT_THREADS; server cpus $SERVER_CPUS, client cpus $CLIENT_CPUS${LAT_CPU:+, latency: both on cpu $LAT_CPU}"
    printf '%-15s %10s %9s %9s %9s %8s %8s %8s %11s %11s %10s %7s\n' server "32B msg/s" "64K bin" "64K text" "1M bin" "p50 us" "p99 us" "hs/s" "idle B/conn" "+1msg B/c" "storm hs/s" errors
    printf '%-15s %10s %9s %9s %9s %8s %8s %8s %11s %11s %10s %7s\n' "" "100x16" "10x$K64 MB/s" "10x$K64 MB/s" "4x$K1M MB/s" "1x1" "1x1" "32 loops" "$IDLE_CONNS conns" "" "256 pend" ""
    for s in $SERVERS; do
        errs=$(awk -v s="$s" '/^result / && $0 ~ ("name=" s " ") { if (match($0, /errors=[0-9]+/)) e += substr($0, RSTART + 7, RLENGTH - 7); if ($0 ~ / stalled=[1-9]/) st++; if ($0 ~ / died=1/) d++ } END { printf "%d%s%s", e, (st ? "+stall" : ""), (d ? "+died" : "") }' "$OUT.log")
        printf '%-15s %10s %9s %9s %9s %8s %8s %8s %11s %11s %10s %7s\n' "$s" \
            "$(field msgs_per_s small "$s")" "$(field mb_per_s bin64k "$s")" "$(field mb_per_s text64k "$s")" \
            "$(field mb_per_s bin1m "$s")" "$(field p50_us latency "$s")" "$(field p99_us latency "$s")" \
            "$(field hs_per_s handshake "$s")" "$(field per_conn_open_b idle "$s")" "$(field per_conn_msg_b idle "$s")" \
            "$(field storm_hs_per_s idle "$s")" "$errs"
    done
    echo "p99 round trip under load (us): small / bin64k / text64k / bin1m"
    for s in $SERVERS; do
        printf '  %-15s %9s %9s %9s %9s\n' "$s" "$(field p99_us small "$s")" "$(field p99_us bin64k "$s")" \
            "$(field p99_us text64k "$s")" "$(field p99_us bin1m "$s")"
    done
} | tee "$OUT.txt"
echo "load average before: $LOAD0, after: $(loadavg) (other processes on the machine skew results)" | tee -a "$OUT.txt"
log "raw result lines: $OUT.log"
