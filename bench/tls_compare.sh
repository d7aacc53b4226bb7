#!/usr/bin/env bash
# TLS comparison, side by side in one run, every server with the same certificate:
#   http  HTTPS static file with wrk: switchyard vs nginx vs h2o (as bench/http_compare.sh,
#         over https://)
#   ws    WebSocket echo over TLS with bench/ws_load.c (wss://): switchyard vs uWebSockets
#         (uWebSockets.js SSLApp, if bench/peers has it or npm can install it) vs Node `ws`
#         behind Node's https server
#
# Certificate: one self-signed ECDSA P-256 certificate for localhost/127.0.0.1 made with the
# openssl CLI into a temp dir (KEY_TYPE=rsa: RSA 2048); switchyard loads it with
# --tls-cert/--tls-key, nginx, h2o, uWS and Node from the same files.
#
# Cipher: switchyard prefers TLS_AES_128_GCM_SHA256 (its server order). nginx is configured
# the same way (server order, the same TLS 1.2 list, ssl_conf_command Ciphersuites); h2o 2.2
# gets the same TLS 1.2 list and server preference (it has no TLS 1.3 suite setting); wrk
# offers OpenSSL's default order. For WebSocket, ws_load offers AES-128-GCM first
# (--ciphersuites), so servers that follow the client (uWS, Node) pick it too. The tables
# show what each server negotiated with that client.
#
# Rounds: all servers run at the same time; each round visits every server in turn (wrk:
# `wrk -t THREADS -c CONNS -d DURATION`; ws: every scenario in turn), ROUNDS times, so drift
# in machine load hits all alike; the tables show medians over rounds and, for wrk, the median
# of the per-round ratio to switchyard.
#
# WebSocket scenarios (WS_SCENARIOS): small (100 conns x 16 in flight x 32 B), bin64k (10 x 2 x
# 64 KiB), latency (1 x 1 x 32 B, server and client pinned to CPU LAT_CPU), handshake (32
# loops of TCP connect + full TLS handshake + upgrade + close: no resumption). Servers
# (WS_SERVERS): sy (switchyard --workers WORKERS), sy1 (--workers 1, like for like with the
# single-threaded peers), uws, nodews.
#
# PROFILE=1: after the rounds, `perf record -e cpu-clock` on switchyard during one more wrk
# visit and one more bin64k visit; the share of libcrypto/libssl/kernel/switchyard is
# printed (shows where OpenSSL is the limit).
#
# Environment: PARTS ("http ws") DURATION (5) ROUNDS (3) WARMUP (1) CONNS (100) THREADS (2)
#   WORKERS (2) FILE_SIZE (4096) SERVER_CPUS (0,1) CLIENT_CPUS (0,1) LAT_CPU (0)
#   HTTP_SERVERS ("switchyard nginx h2o") WS_SERVERS ("sy sy1 uws nodews")
#   WS_SCENARIOS ("small bin64k latency handshake") KEY_TYPE (ec|rsa) PROFILE
#   SWITCHYARD (build/switchyard) NO_BUILD
# Output: the tables on stdout; bench/results/tls_compare-<stamp>.{log,tsv,txt}.
set -euo pipefail

cd "$(dirname "$0")/.."
PARTS=${PARTS:-http ws}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-100}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
FILE_SIZE=${FILE_SIZE:-4096}
SERVER_CPUS=${SERVER_CPUS:-0,1}
CLIENT_CPUS=${CLIENT_CPUS:-0,1}
LAT_CPU=${LAT_CPU-0}
HTTP_SERVERS=${HTTP_SERVERS:-switchyard nginx h2o}
WS_SERVERS=${WS_SERVERS:-sy sy1 uws nodews}
WS_SCENARIOS=${WS_SCENARIOS:-small bin64k latency handshake}
KEY_TYPE=${KEY_TYPE:-ec}
SWITCHYARD=${SWITCHYARD:-build/switchyard}
PEERS=bench/peers
UWS_PKG=@trufflesuite/uws-js-unofficial
CIPHERS12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
SUITES13="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

log() { echo "tls_compare: $*" >&2; }
. bench/lib.sh # port_free, pick_port, bench_stop
part() { [[ " $PARTS " == *" $1 "* ]]; }
has_ws() { [[ " $WS_SERVERS " == *" $1 "* ]]; }

# ---- dependencies ----
pkgs=()
command -v openssl >/dev/null || pkgs+=(openssl)
command -v curl >/dev/null || pkgs+=(curl)
if part http; then
    command -v wrk >/dev/null || pkgs+=(wrk)
    [[ " $HTTP_SERVERS " == *" nginx "* ]] && ! command -v nginx >/dev/null && pkgs+=(nginx-light)
    [[ " $HTTP_SERVERS " == *" h2o "* ]] && ! command -v h2o >/dev/null && pkgs+=(h2o)
fi
if part ws; then
    dpkg -s zlib1g-dev >/dev/null 2>&1 || pkgs+=(zlib1g-dev)
    dpkg -s libssl-dev >/dev/null 2>&1 || pkgs+=(libssl-dev)
    if has_ws uws || has_ws nodews; then command -v node >/dev/null || pkgs+=(nodejs); fi
    has_ws nodews && [[ ! -e /usr/share/nodejs/ws ]] && pkgs+=(node-ws)
    has_ws uws && ! command -v npm >/dev/null && pkgs+=(npm)
fi
[[ -n "${PROFILE:-}" ]] && ! command -v perf >/dev/null && pkgs+=(linux-perf)
if ((${#pkgs[@]})); then
    log "installing ${pkgs[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if part ws && has_ws uws && [[ ! -d "$PEERS/node_modules/$UWS_PKG" ]]; then
    log "npm install $UWS_PKG into $PEERS/node_modules"
    if ! (cd "$PEERS" && npm install --no-save --no-package-lock --no-audit --no-fund --prefix . "$UWS_PKG" >/dev/null 2>&1); then
        log "uWS is not available (npm install failed): skipping it"
        WS_SERVERS=${WS_SERVERS//uws/}
    fi
fi
if [[ -z "${NO_BUILD:-}" ]]; then
    make -j2 "$SWITCHYARD" >/dev/null || { log "build failed"; exit 1; }
fi
[[ -x "$SWITCHYARD" ]] || { log "$SWITCHYARD missing"; exit 1; }

# ---- temp dir: certificate, document root, tools ----
TMP=$(mktemp -d /tmp/tls_compare.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/www"
head -c "$FILE_SIZE" < <(
    printf '<!doctype html><html><head><title>bench</title></head><body>\n'
    while :; do printf '<p>switchyard benchmark page, line of filler text 0123456789</p>\n'; done
) >"$TMP/www/index.html"
chmod -R a+rX "$TMP/www"
key_opts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
[[ $KEY_TYPE == rsa ]] && key_opts=(-newkey rsa:2048)
openssl req -x509 "${key_opts[@]}" -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
chmod 644 "$TMP/key.pem" # h2o reads it after dropping to nobody
CERT=$TMP/cert.pem KEY=$TMP/key.pem
if part ws; then
    cc -O2 -o "$TMP/ws_load" bench/ws_load.c -lz -lssl -lcrypto -pthread || { log "ws_load build failed"; exit 1; }
fi

declare -A PID PORT
cleanup() {
    bench_stop ${PID[@]+"${PID[@]}"}
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_https() { # port pid name
    local got=
    for _ in $(seq 100); do
        if ! kill -0 "$2" 2>/dev/null; then log "$3 exited at start-up"; return 1; fi
        got=$(curl -sk -o /dev/null -w '%{http_code} %{size_download}' "https://127.0.0.1:$1/index.html" || true)
        [[ "$got" == "200 $FILE_SIZE" ]] && return 0
        sleep 0.1
    done
    log "$3 not serving index.html over https on port $1 (last: $got)"
    return 1
}

wait_port() { # port pid name
    for _ in $(seq 100); do
        port_free "$1" || return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    log "$3 did not start"
    return 1
}

start_http() {
    local name=$1 port
    port=$(pick_port)
    case $name in
    switchyard)
        taskset -c "$SERVER_CPUS" "$SWITCHYARD" serve --tls-listen "127.0.0.1:$port" --tls-cert "$CERT" \
            --tls-key "$KEY" --root "$TMP/www" --workers "$WORKERS" --no-access-log >"$TMP/$name.log" 2>&1 &
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
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $CIPHERS12;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites $SUITES13;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:$port ssl;
        root $TMP/www;
        location / { }
    }
}
EOF
        taskset -c "$SERVER_CPUS" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/$name.log" 2>&1 &
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
  ssl:
    certificate-file: $CERT
    key-file: $KEY
    minimum-version: TLSv1.2
    cipher-preference: server
    cipher-suite: "$CIPHERS12"
hosts:
  default:
    paths:
      /:
        file.dir: $TMP/www
EOF
        taskset -c "$SERVER_CPUS" h2o -c "$TMP/h2o/h2o.conf" >"$TMP/$name.log" 2>&1 &
        ;;
    *) log "unknown HTTP server $name"; return 1 ;;
    esac
    PID[$name]=$!
    PORT[$name]=$port
    wait_https "$port" "${PID[$name]}" "$name" || { cat "$TMP/$name.log" >&2; return 1; }
    log "$name on https://127.0.0.1:$port (pid ${PID[$name]})"
}

start_ws() {
    local s=$1 port
    port=$(pick_port)
    case $s in
    sy | sy1)
        local w=$WORKERS
        [[ $s == sy1 ]] && w=1
        taskset -c "$SERVER_CPUS" "$SWITCHYARD" serve --tls-listen "127.0.0.1:$port" --tls-cert "$CERT" \
            --tls-key "$KEY" --root "$TMP/www" --workers "$w" --no-access-log --no-deflate \
            --ws-max-message 67108864 >>"$TMP/$s.log" 2>&1 &
        ;;
    uws)
        TLS_CERT=$CERT TLS_KEY=$KEY taskset -c "$SERVER_CPUS" node "$PEERS/uws_echo.js" "$port" >>"$TMP/$s.log" 2>&1 & ;;
    nodews)
        taskset -c "$SERVER_CPUS" node "$PEERS/node_wss_echo.js" "$port" "$CERT" "$KEY" >>"$TMP/$s.log" 2>&1 & ;;
    *) log "unknown WebSocket server $s"; return 1 ;;
    esac
    PID[$s]=$!
    PORT[$s]=$port
    wait_port "$port" "${PID[$s]}" "$s" || { cat "$TMP/$s.log" >&2; return 1; }
    log "$s on wss://127.0.0.1:$port/echo (pid ${PID[$s]})"
}

negotiated() { # port -> "TLSv1.3 TLS_AES_128_GCM_SHA256" as a default OpenSSL client gets it
    openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null |
        awk '/^New, / {gsub(",", ""); print $2 "/" $5; exit}'
}

mkdir -p bench/results
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="bench/results/tls_compare-$STAMP"
{
    echo "# tls_compare $STAMP: parts=$PARTS duration=${DURATION}s rounds=$ROUNDS key=$KEY_TYPE workers=$WORKERS server cpus=$SERVER_CPUS client cpus=$CLIENT_CPUS"
    echo "# $(uname -r) $(nproc) cpus; $(openssl version); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); nginx $(nginx -v 2>&1 | sed 's/.*\///'); h2o $(h2o --version 2>/dev/null | head -1 | awk '{print $3}'); node $(node --version 2>/dev/null)"
} >"$OUT.log"
: >"$OUT.txt"
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1;
        printf "%.0f", n * m }'
}

# ---- HTTPS with wrk ----
run_wrk() { # name seconds -> wrk output
    taskset -c "$CLIENT_CPUS" timeout $(($2 + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${2}s" --latency \
        "https://127.0.0.1:${PORT[$1]}/index.html" 2>&1 || true
}

if part http; then
    for s in $HTTP_SERVERS; do start_http "$s"; done
    declare -A CIPHER
    for s in $HTTP_SERVERS; do CIPHER[$s]=$(negotiated "${PORT[$s]}"); done
    printf 'round\tserver\treq_per_s\tp50_us\tp99_us\terrors\n' >"$OUT.tsv"
    for s in $HTTP_SERVERS; do run_wrk "$s" "$WARMUP" >/dev/null; done
    for r in $(seq "$ROUNDS"); do
        for s in $HTTP_SERVERS; do
            out=$(run_wrk "$s" "$DURATION")
            { echo "=== https round $r $s"; echo "$out"; } >>"$OUT.log"
            rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
            p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
            p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
            errs=$(awk '/Socket errors:/ {gsub(/,/, ""); e = $4 + $6 + $8 + $10} /Non-2xx/ {e += $5} END {print e + 0}' <<<"$out")
            [[ -n "$rps" ]] || { rps=0; log "round $r $s: wrk failed: $(tail -2 <<<"$out")"; }
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$rps" "$p50" "$p99" "$errs" >>"$OUT.tsv"
            log "https round $r/$ROUNDS $s: $rps req/s p99 ${p99}us errors $errs"
        done
    done
    {
        echo "HTTPS static ${FILE_SIZE} B file ($KEY_TYPE certificate), wrk -t$THREADS -c$CONNS ${DURATION}s x $ROUNDS rounds (median), $WORKERS workers each"
        first=${HTTP_SERVERS%% *}
        printf '%-12s %10s %8s %8s %7s %9s  %-34s %s\n' server req/s p50_us p99_us errors "vs $first" "negotiated (OpenSSL default client)" "req/s per round"
        for s in $HTTP_SERVERS; do
            ratio=$(awk -F'\t' -v s="$s" -v f="$first" 'NR > 1 && $2 == f {b[$1] = $3} NR > 1 && $2 == s {v[$1] = $3}
                END {for (r in v) if (b[r] > 0) print v[r] / b[r]}' "$OUT.tsv" | median)
            rows=$(awk -F'\t' -v s="$s" 'NR > 1 && $2 == s' "$OUT.tsv")
            printf '%-12s %10.0f %8.0f %8.0f %7s %9.2f  %-34s %s\n' "$s" "$(cut -f3 <<<"$rows" | median)" \
                "$(cut -f4 <<<"$rows" | median)" "$(cut -f5 <<<"$rows" | median)" \
                "$(cut -f6 <<<"$rows" | awk '{e += $1} END {print e + 0}')" "${ratio:-0}" "${CIPHER[$s]}" \
                "$(cut -f3 <<<"$rows" | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')"
        done
    } | tee -a "$OUT.txt"
    if [[ -n "${PROFILE:-}" ]] && [[ " $HTTP_SERVERS " == *" switchyard "* ]]; then
        (run_wrk switchyard "$DURATION" >/dev/null &)
        sleep 0.5
        perf record -e cpu-clock -p "${PID[switchyard]}" -o "$TMP/perf-http.data" -- sleep $((DURATION > 2 ? DURATION - 1 : 1)) >/dev/null 2>&1 || true
        sleep 1.5
        {
            echo "profile (perf record -e cpu-clock) of switchyard during wrk, by DSO:"
            perf report -i "$TMP/perf-http.data" --sort dso --stdio 2>/dev/null | awk '/%/ && !/^#/ {printf "  %s\n", $0}' | head -8 || true
        } | tee -a "$OUT.txt"
    fi
    for s in $HTTP_SERVERS; do kill "${PID[$s]}" 2>/dev/null || true; done
    for s in $HTTP_SERVERS; do wait "${PID[$s]}" 2>/dev/null || true; unset "PID[$s]"; done
fi

# ---- WebSocket over TLS with ws_load ----
scenario_args() {
    case $1 in
    small) echo "-c 100 -k 16 -s 32 --binary" ;;
    bin64k) echo "-c 10 -k 2 -s 64k --binary" ;;
    latency) echo "--latency -s 32" ;;
    handshake) echo "--handshakes -c 32" ;;
    esac
}

run_ws() { # round scenario server [seconds]
    local r=$1 sc=$2 s=$3 d=${4:-$DURATION} line ccpus=$CLIENT_CPUS
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
        log "$s is not running: restarting"
        start_ws "$s" || return 0
    fi
    if [[ $sc == latency && -n $LAT_CPU ]]; then
        taskset -a -p -c "$LAT_CPU" "${PID[$s]}" >/dev/null
        ccpus=$LAT_CPU
    fi
    # shellcheck disable=SC2046
    line=$(taskset -c "$ccpus" timeout $((d + 60)) "$TMP/ws_load" $(scenario_args "$sc") -t "$d" -w 0.5 \
        --ciphersuites "$SUITES13" -n "$s" "wss://127.0.0.1:${PORT[$s]}/echo" 2>"$TMP/err" | grep '^result ' || true)
    if [[ $sc == latency && -n $LAT_CPU ]]; then
        taskset -a -p -c "$SERVER_CPUS" "${PID[$s]}" >/dev/null 2>&1 || true
    fi
    [[ -n $line ]] || line="result name=$s failed=1"
    line="$line scenario=$sc round=$r"
    kill -0 "${PID[$s]}" 2>/dev/null || { line="$line died=1"; log "$s DIED during $sc"; tail -5 "$TMP/$s.log" >&2; }
    [[ -s $TMP/err ]] && line="$line stderr=\"$(tr '\n' ' ' <"$TMP/err")\""
    echo "$line" >>"$OUT.log"
    log "$line"
}

field() { # key scenario server -> median over rounds
    awk -v sc="$2" -v s="$3" -v k="$1" '
        /^result / {
            delete f
            for (i = 2; i <= NF; i++) {
                if (substr($i, 1, 7) == "stderr=") break
                p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1)
            }
            if (f["name"] != s || f["scenario"] != sc) next
            if ("died" in f) died = 1
            if ("failed" in f) { failed = 1; next }
            if (k in f) { if (k == "tls") t = f[k]; else v[++n] = f[k] + 0 }
        }
        END {
            if (k == "tls") { print (t == "" ? "-" : t); exit }
            if (n == 0) { print (died ? "DIED" : failed ? "FAIL" : "-"); exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf (m >= 100 ? "%.0f" : "%.1f"), m
            if (died) printf "!"
        }' "$OUT.log"
}

if part ws && [[ -n ${WS_SERVERS// /} ]]; then
    for s in $WS_SERVERS; do start_ws "$s"; done
    for r in $(seq "$ROUNDS"); do
        for sc in $WS_SCENARIOS; do
            for s in $WS_SERVERS; do run_ws "$r" "$sc" "$s"; done
        done
    done
    {
        echo "WebSocket echo over TLS ($KEY_TYPE certificate), ${DURATION}s x $ROUNDS rounds (median); sy = switchyard --workers $WORKERS, sy1 = --workers 1, peers single-threaded; ws_load offers $SUITES13"
        printf '%-8s %10s %9s %8s %8s %8s %8s  %-30s %s\n' server "32B msg/s" "64K MB/s" "p50 us" "p99 us" "hs/s" errors negotiated "32B p99 under load (us)"
        printf '%-8s %10s %9s %8s %8s %8s %8s\n' "" "100x16" "10x2" "1x1" "1x1" "32 loops" ""
        for s in $WS_SERVERS; do
            errs=$(awk -v s="$s" '/^result / && $0 ~ ("name=" s " ") { if (match($0, /errors=[0-9]+/)) e += substr($0, RSTART + 7, RLENGTH - 7); if ($0 ~ / died=1/) d++ } END { printf "%d%s", e, (d ? "+died" : "") }' "$OUT.log")
            printf '%-8s %10s %9s %8s %8s %8s %8s  %-30s %s\n' "$s" "$(field msgs_per_s small "$s")" \
                "$(field mb_per_s bin64k "$s")" "$(field p50_us latency "$s")" "$(field p99_us latency "$s")" \
                "$(field hs_per_s handshake "$s")" "$errs" "$(field tls small "$s")" "$(field p99_us small "$s")"
        done
    } | tee -a "$OUT.txt"
    if [[ -n "${PROFILE:-}" ]] && has_ws sy; then
        for sc in small bin64k; do
            # shellcheck disable=SC2046
            (taskset -c "$CLIENT_CPUS" "$TMP/ws_load" $(scenario_args $sc) -t "$DURATION" -w 0.5 \
                --ciphersuites "$SUITES13" "wss://127.0.0.1:${PORT[sy]}/echo" >/dev/null 2>&1 &)
            sleep 1
            perf record -e cpu-clock -p "${PID[sy]}" -o "$TMP/perf-ws.data" -- sleep $((DURATION > 2 ? DURATION - 1 : 1)) >/dev/null 2>&1 || true
            sleep 1.5
            {
                echo "profile (perf record -e cpu-clock) of sy during $sc, by DSO, then the top symbols:"
                perf report -i "$TMP/perf-ws.data" --sort dso --stdio 2>/dev/null | awk '/%/ && !/^#/ {printf "  %s\n", $0}' | head -6 || true
                perf report -i "$TMP/perf-ws.data" --sort dso,symbol --stdio 2>/dev/null | awk '/%/ && !/^#/ {printf "  %s\n", $0}' | head -10 || true
            } | tee -a "$OUT.txt"
        done
    fi
fi
echo "load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine skew results)" | tee -a "$OUT.txt"
log "raw output: $OUT.log"
