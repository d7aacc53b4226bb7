#!/usr/bin/env bash
# The headline benchmark in one command (issue 16): switchyard against a featureless C echo
# (the ceiling, bench/peers/ceiling_echo.c), uWebSockets, Node `ws` and libwebsockets on
# WebSocket echo, and against h2o and nginx on a small static file, all in one
# configuration:
#
#   - one worker per server (switchyard --workers 1; the peers are single-threaded;
#     nginx worker_processes 1; h2o num-threads 1), every server pinned to CPU 1 and the
#     load generator (bench/ws_load for every WebSocket server, wrk for HTTP) to CPU 0;
#   - ROUNDS interleaved rounds (every scenario visits every server in turn, round after
#     round), medians over the rounds;
#   - WebSocket (bench/ws_compare.sh): idle (IDLE_CONNS connections opened 256 at a time on
#     a fresh server: RSS per connection, and the rate of that upgrade storm), 100 x 16 x
#     32 B binary, 10 x 4 x 64 KiB binary and text, 4 x 2 x 1 MiB binary;
#   - HTTP/1.1 (bench/http_compare.sh): a 64 B file, wrk -t1 -c64.
#
# It prints one table, a row per figure: each server's median, switchyard over the ceiling
# and over uWebSockets, the target and whether the median meets it; for the targets that
# must hold in every round (storm upgrades >= uWebSockets, HTTP >= 1.2 x h2o) the ratio of
# every round and their minimum.
#
#   bench/headline.sh                                   # 3 rounds x 5 s, ~8 minutes
#   DURATION=1 ROUNDS=1 IDLE_CONNS=2000 bench/headline.sh   # a quick look, ~1 minute
#   BEFORE=/tmp/old/switchyard bench/headline.sh        # + a "before" column, same rounds
#
# Environment: ROUNDS (3) DURATION (5) IDLE_CONNS (10000) K1M (2) HANDSHAKE (unset; 1 adds
#   the 32-loop connect/upgrade/close scenario) SWITCHYARD (build/switchyard) BEFORE (a
#   second switchyard binary: run as sy-b / switchyard-b in the same rounds) NO_BUILD
#   REPORT=STAMP (run nothing: print the table again from the files of that earlier run)
# Output: the table on stdout and in bench/results/headline-STAMP.txt; the scripts' own
# files are bench/results/ws_compare-STAMP.* and http_compare-STAMP.*.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
IDLE_CONNS=${IDLE_CONNS:-10000}
K1M=${K1M:-2}
SWITCHYARD=${SWITCHYARD:-build/switchyard}
BEFORE=${BEFORE:-}

log() { echo "headline: $*" >&2; }
. bench/lib.sh

REPORT=${REPORT:-}
if [[ -n $REPORT ]]; then
    # the settings and the before binary as that run had them
    h=$(head -1 "bench/results/ws_compare-$REPORT.log" 2>/dev/null || true)
    hv() { grep -o " $1=[0-9]*" <<<"$h" | cut -d= -f2 || true; }
    ROUNDS=$(hv rounds) DURATION=$(hv duration) IDLE_CONNS=$(hv idle_conns) K1M=$(hv k1m)
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-?} IDLE_CONNS=${IDLE_CONNS:-?} K1M=${K1M:-2}
    grep -q '^result name=sy-b ' "bench/results/ws_compare-$REPORT.log" 2>/dev/null && BEFORE=${BEFORE:-sy-b}
else
    bench_switchyard "$SWITCHYARD"
    [[ -z $BEFORE ]] || NO_BUILD=1 bench_switchyard "$BEFORE"
fi

WS_SERVERS="ceiling sy uws nodews lws"
HTTP_SERVERS="switchyard h2o nginx"
SCENARIOS="idle small bin64k text64k bin1m"
[[ -n ${HANDSHAKE:-} ]] && SCENARIOS="$SCENARIOS handshake"
if [[ -n $BEFORE ]]; then
    WS_SERVERS="$WS_SERVERS sy-b"
    HTTP_SERVERS="$HTTP_SERVERS switchyard-b"
fi
nws=$(wc -w <<<"$WS_SERVERS")
nhttp=$(wc -w <<<"$HTTP_SERVERS")
nmeas=$(($(wc -w <<<"$SCENARIOS") - 1))
# per server and round: the idle storm (two 1 s holds, ~1 s per 4000 connections), each
# timed scenario (0.5 s warm-up, connect, close: DURATION + 0.7 s); wrk: start-up and a 2 s
# warm-up per server, then DURATION + 0.3 s per round (measured on the 2-core VM)
est=$(awk -v r="$ROUNDS" -v d="$DURATION" -v i="$IDLE_CONNS" -v w="$nws" -v h="$nhttp" -v m="$nmeas" \
    'BEGIN {printf "%.0f", r * w * (2.5 + i / 4000 + m * (d + 0.7)) + h * (2.5 + r * (d + 0.3)) + 5}')
STAMP=${REPORT:-$(date +%Y%m%d-%H%M%S)}
mkdir -p bench/results
OUT=bench/results/headline-$STAMP
WSLOG=bench/results/ws_compare-$STAMP.log
HTSV=bench/results/http_compare-$STAMP.tsv
LOAD0=$(loadavg)
T0=$(date +%s)
rc=0
if [[ -z $REPORT ]]; then
    log "$ROUNDS rounds x ${DURATION}s; WebSocket: $WS_SERVERS; HTTP: $HTTP_SERVERS"
    log "expected duration: about $(((est + 30) / 60)) min ($est s); load average now $LOAD0"
    STAMP=$STAMP SERVERS="$WS_SERVERS" SCENARIOS="$SCENARIOS" WORKERS=1 SERVER_CPUS=1 CLIENT_CPUS=0 \
        LAT_CPU='' ROUNDS=$ROUNDS DURATION=$DURATION IDLE_CONNS=$IDLE_CONNS K64=4 K1M=$K1M NO_BUILD=1 \
        SWITCHYARD=$SWITCHYARD SWITCHYARD_B=$BEFORE bench/ws_compare.sh || { log "ws_compare.sh failed"; rc=1; }
    STAMP=$STAMP SERVERS="$HTTP_SERVERS" WORKERS=1 THREADS=1 CONNS=64 FILE_SIZE=64 SERVER_CPUS=1 \
        CLIENT_CPUS=0 ROUNDS=$ROUNDS DURATION=$DURATION NO_BUILD=1 SWITCHYARD=$SWITCHYARD \
        SWITCHYARD_B=$BEFORE bench/http_compare.sh || { log "http_compare.sh failed"; rc=1; }
fi

# ---- figures ----
ws_vals() { # scenario server key -> "round value" per round that has it
    [[ -f $WSLOG ]] || return 0
    awk -v sc="$1" -v s="$2" -v k="$3" '/^result / {
        delete f
        for (i = 2; i <= NF; i++) {
            if (substr($i, 1, 7) == "stderr=") break
            p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1)
        }
        if (f["name"] == s && f["scenario"] == sc && !("failed" in f) && (k in f)) print f["round"], f[k]
    }' "$WSLOG"
}
http_vals() { # server -> "round req/s" (rounds where wrk failed left out)
    [[ -f $HTSV ]] || return 0
    awk -F'\t' -v s="$1" 'NR > 1 && $2 == s && $3 > 0 {print $1, $3}' "$HTSV"
}
med() { cut -d' ' -f2 | median; }
num() { # a median for the table: - when missing
    [[ -n $1 ]] || { echo -; return; }
    awk -v v="$1" 'BEGIN {printf (v >= 100 ? "%.0f" : "%.1f"), v}'
}
ratio() { # a b -> a/b, - when either is missing
    [[ -n $1 && -n $2 ]] || { echo -; return; }
    awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f", a / b}'
}
holds() { # a op b [factor]: a >= (ge) or <= (le) factor x b; false when a or b is missing
    [[ -n $1 && -n $3 ]] || return 1
    awk -v a="$1" -v op="$2" -v b="$3" -v f="${4:-1}" 'BEGIN {exit !(op == "ge" ? a >= f * b : a <= f * b)}'
}
verdict() { # a op b [factor] -> yes / NO / n/a (a figure is missing)
    if [[ -z $1 || -z $3 ]]; then echo n/a; elif holds "$@"; then echo yes; else echo NO; fi
}
per_round() { # "round value" lines of a, of b -> "a/b per round" list
    awk 'NR == FNR {b[$1] = $2; next} ($1 in b) && b[$1] > 0 {printf "%s%.2f", (n++ ? " " : ""), $2 / b[$1]}' "$2" "$1"
}
list_min() { tr ' ' '\n' | sort -g | head -1; }

W=(ceiling uws nodews lws sy)
[[ -n $BEFORE ]] && W+=(sy-b)
hdr_fmt='%-30s %9s %9s %9s %9s %10s'
[[ -n $BEFORE ]] && hdr_fmt="$hdr_fmt %9s"
hdr_fmt="$hdr_fmt %8s %7s"
[[ -n $BEFORE ]] && hdr_fmt="$hdr_fmt %9s"
hdr_fmt="$hdr_fmt  %-28s %s\n"

row() { # label scenario key target-kind
    local label=$1 sc=$2 k=$3 kind=$4 s target="-" met="" cells=()
    declare -A M
    for s in "${W[@]}"; do
        M[$s]=$(ws_vals "$sc" "$s" "$k" | med)
        cells+=("$(num "${M[$s]}")")
    done
    cells+=("$(ratio "${M[sy]}" "${M[ceiling]}")" "$(ratio "${M[sy]}" "${M[uws]}")")
    [[ -n $BEFORE ]] && cells+=("$(ratio "${M[sy]}" "${M[sy-b]}")")
    case $kind in
    bin64k)
        target="sy >= uWS, >= 0.95 ceiling"
        met=$(verdict "${M[sy]}" ge "${M[uws]}")
        [[ $met == yes ]] && met=$(verdict "${M[sy]}" ge "${M[ceiling]}" 0.95)
        ;;
    text64k)
        local bin
        bin=$(ws_vals bin64k sy mb_per_s | med)
        target="sy text/bin $(ratio "${M[sy]}" "$bin") >= 0.95"
        met=$(verdict "${M[sy]}" ge "$bin" 0.95)
        ;;
    idle)
        target="sy <= 0.8 uWS"
        met=$(verdict "${M[sy]}" le "${M[uws]}" 0.8)
        ;;
    storm)
        local pr mn
        pr=$(per_round <(ws_vals idle sy storm_hs_per_s) <(ws_vals idle uws storm_hs_per_s))
        mn=$(list_min <<<"$pr")
        target="sy >= uWS every round"
        met=$(verdict "$mn" ge 1)
        met="$met (sy/uWS per round: ${pr:--}; min ${mn:--})"
        ;;
    esac
    # shellcheck disable=SC2059
    printf "$hdr_fmt" "$label" "${cells[@]}" "$target" "$met"
}

{
    echo "Headline $STAMP: switchyard $SWITCHYARD${BEFORE:+ (before: $BEFORE)}, $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo +dirty)"
    echo "one worker per server, servers on CPU 1, load generator on CPU 0; ${DURATION}s per measurement, median of $ROUNDS interleaved round(s)"
    echo
    echo "WebSocket echo, bench/ws_load for every server"
    heads=(figure ceiling uWS "Node ws" lws Switchyard)
    [[ -n $BEFORE ]] && heads+=(before)
    heads+=(sy/ceil sy/uWS)
    [[ -n $BEFORE ]] && heads+=(sy/before)
    # shellcheck disable=SC2059
    printf "$hdr_fmt" "${heads[@]}" target "met (median)"
    row "32 B binary, 100x16: msg/s" small msgs_per_s -
    row "64 KiB binary, 10x4: MB/s" bin64k mb_per_s bin64k
    row "64 KiB text (UTF-8), 10x4: MB/s" text64k mb_per_s text64k
    row "1 MiB binary, 4x$K1M: MB/s" bin1m mb_per_s -
    row "idle RSS B/conn, $IDLE_CONNS conns" idle per_conn_open_b idle
    row "  after one 32 B echo each" idle per_conn_msg_b -
    row "upgrade storm hs/s, 256 pend" idle storm_hs_per_s storm
    [[ -n ${HANDSHAKE:-} ]] && row "upgrades/s, 32 loops" handshake hs_per_s -
    echo
    echo "HTTP/1.1 static 64 B file, wrk -t1 -c64, one worker each: req/s"
    H=(switchyard h2o nginx)
    [[ -n $BEFORE ]] && H+=(switchyard-b)
    declare -A HM
    line=$(printf '%-12s' "")
    for s in "${H[@]}"; do line="$line $(printf '%12s' "$s")"; done
    echo "$line   sy/h2o  sy/nginx$([[ -n $BEFORE ]] && echo '  sy/before')"
    for r in $(seq "$ROUNDS") median; do
        line=$(printf '%-12s' "$([[ $r == median ]] && echo median || echo "round $r")")
        for s in "${H[@]}"; do
            if [[ $r == median ]]; then HM[$s]=$(http_vals "$s" | med); else HM[$s]=$(http_vals "$s" | awk -v r="$r" '$1 == r {print $2}'); fi
            line="$line $(printf '%12s' "$(num "${HM[$s]}")")"
        done
        line="$line $(printf '%8s %9s' "$(ratio "${HM[switchyard]}" "${HM[h2o]}")" "$(ratio "${HM[switchyard]}" "${HM[nginx]}")")"
        [[ -n $BEFORE ]] && line="$line $(printf '%10s' "$(ratio "${HM[switchyard]}" "${HM[switchyard-b]}")")"
        echo "$line"
    done
    pr=$(per_round <(http_vals switchyard) <(http_vals h2o))
    mn=$(list_min <<<"$pr")
    met=$(verdict "$mn" ge 1.2)
    echo "target: switchyard >= 1.2 x h2o in every round: sy/h2o per round ${pr:--}, min ${mn:--}: $met"
    echo
    # anything that went wrong in the runs
    odd=$(
        [[ -f $WSLOG ]] && grep '^result ' "$WSLOG" | grep -E ' (errors=[1-9]|stalled=[1-9]|failed=1|died=1|stderr=)' |
            sed -E 's/^result (name=[^ ]+).*(scenario=[^ ]+ round=[0-9]+)(.*)$/  ws: \1 \2\3/' | cut -c1-200
        [[ -f $HTSV ]] && awk -F'\t' 'NR > 1 && ($3 == 0 || $6 > 0) {print "  http: round " $1 " " $2 ": req/s " $3 ", errors " $6}' "$HTSV"
        [[ -f $WSLOG ]] || echo "  ws_compare.sh wrote no results"
        [[ -f $HTSV ]] || echo "  http_compare.sh wrote no results"
    ) || true
    if [[ -n $odd ]]; then echo "problems in the runs:"; echo "$odd"; else echo "no errors, stalls or failed runs"; fi
    echo "load average before: $LOAD0, after: $(loadavg); took $(($(date +%s) - T0)) s"
    echo "raw: $WSLOG, $HTSV"
} | tee "$OUT.txt"
log "table: $OUT.txt"
exit $rc
