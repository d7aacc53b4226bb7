#!/usr/bin/env bash
# Broadcast fan-out comparison: one publisher, SUBS subscribers in one room, side by side:
#   sy        build/switchyard serve /chat (topics), --workers $WORKERS (2)
#   sy-redis  two switchyard processes (--workers 1 each) sharing a local redis-server, the
#             subscribers spread over both: the Redis path (PUBLISH, PSUBSCRIBE, fan-out)
#   uws       bench/peers/uws_pubsub.js: uWebSockets subscribe + app.publish (uWS.js addon
#             from npm, as bench/ws_compare.sh gets it)
#   nodews    bench/peers/node_ws_broadcast.js: Node `ws` with a broadcast loop
# For each size in SIZES (32 1024) and subscriber count in SUBS (1000; "1000 10000" for
# both), bench/pubsub_load.c publishes binary messages with WINDOW (32) outstanding and
# reports deliveries per second (messages x subscribers) and the delivery latency p50/p99
# (publisher's send to a subscriber's receive). No compression anywhere.
# Bounded: DURATION (3) seconds per cell after a 0.5 s warm-up; not part of `make test`.
# Environment: DURATION SIZES SUBS WINDOW WORKERS CLIENT_THREADS (2) SERVERS SWITCHYARD
# Output: a table on stdout, raw lines in bench/results/pubsub_compare-<stamp>.log.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-3}
SIZES=${SIZES:-32 1024}
SUBS=${SUBS:-1000}
WINDOW=${WINDOW:-32}
WORKERS=${WORKERS:-2}
CLIENT_THREADS=${CLIENT_THREADS:-2}
SERVERS=${SERVERS:-sy sy-redis uws nodews}
SWITCHYARD=${SWITCHYARD:-build/switchyard}
PEERS=bench/peers
UWS_PKG=@trufflesuite/uws-js-unofficial

log() { echo "pubsub_compare: $*" >&2; }
. bench/lib.sh # port_free, pick_port, bench_stop
has() { [[ " $SERVERS " == *" $1 "* ]]; }

pkgs=()
if has uws || has nodews; then command -v node >/dev/null || pkgs+=(nodejs); fi
if has uws; then command -v npm >/dev/null || pkgs+=(npm); fi
if has nodews; then [[ -e /usr/share/nodejs/ws ]] || pkgs+=(node-ws); fi
if has sy-redis; then command -v redis-server >/dev/null || pkgs+=(redis-server); fi
if ((${#pkgs[@]})); then
    log "installing ${pkgs[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if has uws && [[ ! -d "$PEERS/node_modules/$UWS_PKG" ]]; then
    log "npm install $UWS_PKG into $PEERS/node_modules"
    (cd "$PEERS" && npm install --no-save --no-package-lock --no-audit --no-fund --prefix . "$UWS_PKG" >/dev/null 2>&1) ||
        { log "npm install failed: uws left out"; SERVERS=${SERVERS/uws/}; }
fi
make -j2 "$SWITCHYARD" build/bench/pubsub_load >/dev/null || { log "build failed"; exit 1; }

max_subs=0
for n in $SUBS; do ((n > max_subs)) && max_subs=$n; done
need_fd=$((2 * max_subs + 1000))
if (($(ulimit -Sn) < need_fd)); then
    ulimit -Sn "$need_fd" 2>/dev/null || log "warning: cannot raise the fd limit to $need_fd (now $(ulimit -Sn))"
fi

TMP=$(mktemp -d /tmp/pubsub_compare.XXXXXX)
mkdir -p bench/results
OUT=bench/results/pubsub_compare-$(date +%Y%m%d-%H%M%S).log
declare -a PIDS=()
cleanup() {
    bench_stop ${PIDS[@]+"${PIDS[@]}"}
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
    for _ in $(seq 100); do port_free "$1" || return 0; sleep 0.05; done
    return 1
}

# Start server $1; sets URL to the URLs to load.
start() {
    local p p2 rp
    case $1 in
    sy)
        p=$(pick_port)
        "$SWITCHYARD" serve --listen "127.0.0.1:$p" --workers "$WORKERS" --no-access-log \
            --no-deflate --max-conns $((max_subs + 1000)) >>"$TMP/sy.log" 2>&1 &
        PIDS+=($!)
        wait_port "$p"
        URL="ws://127.0.0.1:$p/chat?room=bench"
        ;;
    sy-redis)
        rp=$(pick_port)
        redis-server --port "$rp" --save '' --appendonly no --bind 127.0.0.1 >"$TMP/redis.log" 2>&1 &
        PIDS+=($!)
        wait_port "$rp"
        p=$(pick_port)
        p2=$(pick_port)
        for q in $p $p2; do
            "$SWITCHYARD" serve --listen "127.0.0.1:$q" --workers 1 --no-access-log --no-deflate \
                --max-conns $((max_subs + 1000)) --redis "redis://127.0.0.1:$rp" >>"$TMP/sy-redis.log" 2>&1 &
            PIDS+=($!)
            wait_port "$q"
        done
        sleep 0.3 # subscribed
        URL="ws://127.0.0.1:$p/chat?room=bench ws://127.0.0.1:$p2/chat?room=bench"
        ;;
    uws)
        p=$(pick_port)
        node "$PEERS/uws_pubsub.js" "$p" >>"$TMP/uws.log" 2>&1 &
        PIDS+=($!)
        wait_port "$p"
        URL="ws://127.0.0.1:$p/chat?room=bench"
        ;;
    nodews)
        p=$(pick_port)
        node "$PEERS/node_ws_broadcast.js" "$p" >>"$TMP/nodews.log" 2>&1 &
        PIDS+=($!)
        wait_port "$p"
        URL="ws://127.0.0.1:$p/chat?room=bench"
        ;;
    esac
}

declare -A URLS
for s in $SERVERS; do
    URL=
    start "$s"
    URLS[$s]=$URL
done

printf '%-9s %6s %6s %14s %10s %10s\n' server subs bytes delivered/s p50_us p99_us
for n in $SUBS; do
    for size in $SIZES; do
        for s in $SERVERS; do
            # shellcheck disable=SC2086
            line=$(build/bench/pubsub_load -n "$n" -s "$size" -w "$WINDOW" -T "$CLIENT_THREADS" \
                -t "$DURATION" ${URLS[$s]} 2>>"$OUT" || echo "result FAILED")
            echo "$s $line" >>"$OUT"
            d=$(sed -nE 's/.*delivered_per_s=([0-9]+).*/\1/p' <<<"$line")
            p50=$(sed -nE 's/.*p50_us=([0-9]+).*/\1/p' <<<"$line")
            p99=$(sed -nE 's/.*p99_us=([0-9]+).*/\1/p' <<<"$line")
            printf '%-9s %6s %6s %14s %10s %10s\n' "$s" "$n" "$size" "${d:-FAILED}" "${p50:--}" "${p99:--}"
        done
    done
done
log "raw results in $OUT"
