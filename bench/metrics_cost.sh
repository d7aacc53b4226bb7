#!/usr/bin/env bash
# What the metrics cost: the same server built with the counters (build/switchyard) and without
# them (make METRICS=0: build/nometrics/switchyard, every counter update and the loop-lag clock
# compiled out), side by side on the WebSocket echo (build/bench/ws_load) and on HTTP/1.1
# requests for a small file (wrk, when installed). The two servers run one after the other,
# ROUNDS times, alternating (and swapping which goes first), each with WORKERS workers. For
# each run: throughput, and the server's CPU time (user + system, /proc) per message or
# request, which a box loaded by other work disturbs much less than throughput. The table
# shows medians over rounds and the median of the per-round ratios.
# PAIRED=1 (the default) also runs the two servers at the same time, each under its own
# ws_load, ROUNDS times: both see the same load from the rest of the machine, which takes most
# of the noise out of the ratio.
# With CACHEGRIND=1 (valgrind installed) it also counts the server's user-space instructions
# per echoed message (1 connection, 1 message in flight: one loop iteration per message, the
# worst case for per-iteration costs), start-up subtracted: deterministic, whatever the load.
# Everything on 127.0.0.1, bounded in time (about ROUNDS x 4 x DURATION s).
#
#   bench/metrics_cost.sh                     # 5 rounds x 4 s
#   ROUNDS=3 DURATION=2 bench/metrics_cost.sh # a quick look
set -u
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-4} WORKERS=${WORKERS:-1}
CONNS=${CONNS:-50} INFLIGHT=${INFLIGHT:-4} SIZE=${SIZE:-64}
if [ "${NO_BUILD:-0}" != 1 ]; then
  make -s -j2 all >/dev/null && make -s METRICS=0 -j2 all >/dev/null || exit 1
fi
ON=build/switchyard OFF=build/nometrics/switchyard LOAD=build/bench/ws_load
mkdir -p bench/results
out=bench/results/metrics_cost-$(date +%Y%m%d-%H%M%S).txt
root=$(mktemp -d)
head -c 4096 /dev/urandom | base64 > "$root/index.html"
trap 'rm -rf "$root"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT

# Server and client on different CPUs when there are two or more (SERVER_CPUS, CLIENT_CPUS).
ncpu=$(nproc)
SERVER_CPUS=${SERVER_CPUS:-0} CLIENT_CPUS=${CLIENT_CPUS:-$((ncpu > 1 ? 1 : 0))}
start() { # binary -> sets pid, port
  taskset -c "$SERVER_CPUS" "$1" serve --listen 127.0.0.1:0 --workers "$WORKERS" --no-access-log --root "$root" \
    2>"$root/err" >/dev/null &
  pid=$!
  for _ in $(seq 50); do
    port=$(grep -o '(port [0-9]*)' "$root/err" | head -1 | tr -dc 0-9)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$root/err")" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null; pid=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

ws_run() { # -> "msgs/s cpu_us_per_msg"
  local t0 t1 line
  t0=$(cpu_ticks)
  line=$(taskset -c "$CLIENT_CPUS" "$LOAD" -c "$CONNS" -k "$INFLIGHT" -s "$SIZE" -t "$DURATION" \
    -w 0 "ws://127.0.0.1:$port/echo" 2>/dev/null)
  t1=$(cpu_ticks)
  local rate=$(grep -o 'msgs_per_s=[0-9.]*' <<<"$line" | cut -d= -f2)
  local n=$(grep -o ' msgs=[0-9]*' <<<"$line" | cut -d= -f2)
  echo "${rate:-0} $(awk -v d=$((t1 - t0)) -v n="${n:-0}" -v hz="$hz" \
    'BEGIN {printf "%.3f", n ? d / hz * 1e6 / n : 0}')"
}
http_run() { # -> "requests/s cpu_us_per_request"
  command -v wrk >/dev/null || { echo "0 0"; return; }
  local t0 t1 out
  t0=$(cpu_ticks)
  out=$(taskset -c "$CLIENT_CPUS" wrk -t1 -c50 -d"${DURATION}s" \
    "http://127.0.0.1:$port/index.html" 2>/dev/null)
  t1=$(cpu_ticks)
  local rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "${rate:-0} $(awk -v d=$((t1 - t0)) -v n="${n:-0}" -v hz="$hz" \
    'BEGIN {printf "%.3f", n ? d / hz * 1e6 / n : 0}')"
}

declare -a ws_on ws_off http_on http_off wcpu_on wcpu_off hcpu_on hcpu_off
for r in $(seq "$ROUNDS"); do
  order="on off"
  [ $((r % 2)) = 0 ] && order="off on" # a load that drifts over time favours neither
  for which in $order; do
    bin=$ON; [ $which = off ] && bin=$OFF
    start "$bin"
    read -r w wc <<<"$(ws_run)"
    read -r h hc <<<"$(http_run)"
    stop
    eval "ws_$which+=(\"$w\"); wcpu_$which+=(\"$wc\")"
    eval "http_$which+=(\"$h\"); hcpu_$which+=(\"$hc\")"
    echo "round $r metrics=$which ws_msgs_s=$w ws_cpu_us_per_msg=$wc http_req_s=$h" \
      "http_cpu_us_per_req=$hc" | tee -a "$out"
  done
done
paired_line=""
if [ "${PAIRED:-1}" = 1 ]; then
  declare -a p_on p_off pc_on pc_off
  for r in $(seq "$ROUNDS"); do
    start "$ON"; pid_on=$pid; port_on=$port; : >"$root/err"
    start "$OFF"; pid_off=$pid; port_off=$port
    t0_on=$(awk '{print $14 + $15}' "/proc/$pid_on/stat")
    t0_off=$(awk '{print $14 + $15}' "/proc/$pid_off/stat")
    taskset -c "$CLIENT_CPUS" "$LOAD" -c "$CONNS" -k "$INFLIGHT" -s "$SIZE" -t "$DURATION" -w 0 \
      "ws://127.0.0.1:$port_on/echo" >"$root/on.out" 2>/dev/null &
    l1=$!
    taskset -c "$CLIENT_CPUS" "$LOAD" -c "$CONNS" -k "$INFLIGHT" -s "$SIZE" -t "$DURATION" -w 0 \
      "ws://127.0.0.1:$port_off/echo" >"$root/off.out" 2>/dev/null &
    l2=$!
    wait $l1 $l2
    t1_on=$(awk '{print $14 + $15}' "/proc/$pid_on/stat")
    t1_off=$(awk '{print $14 + $15}' "/proc/$pid_off/stat")
    kill "$pid_on" "$pid_off"; wait "$pid_on" "$pid_off" 2>/dev/null; pid=
    for w in on off; do
      n=$(grep -o ' msgs=[0-9]*' "$root/$w.out" | cut -d= -f2)
      rate=$(grep -o 'msgs_per_s=[0-9.]*' "$root/$w.out" | cut -d= -f2)
      eval "d=\$((t1_$w - t0_$w))"
      cpu=$(awk -v d="$d" -v n="${n:-0}" -v hz="$hz" 'BEGIN {printf "%.3f", n ? d / hz * 1e6 / n : 0}')
      eval "p_$w+=(\"${rate:-0}\"); pc_$w+=(\"$cpu\")"
      echo "paired round $r metrics=$w ws_msgs_s=$rate ws_cpu_us_per_msg=$cpu" | tee -a "$out"
    done
  done
  paired_line="${p_on[*]};${p_off[*]};${pc_on[*]};${pc_off[*]}"
fi
ir_per_msg() { # binary -> user-space instructions per echoed message, start-up subtracted
  local cg=$root/cg n base full
  for secs in 0.05 "$DURATION"; do
    rm -f "$cg"
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$cg" "$1" serve \
      --listen 127.0.0.1:0 --workers 1 --no-access-log --root "$root" 2>"$root/err" >/dev/null &
    pid=$!
    port=
    for _ in $(seq 100); do
      port=$(grep -o '(port [0-9]*)' "$root/err" | head -1 | tr -dc 0-9)
      [ -n "$port" ] && break
      sleep 0.2
    done
    local m=$("$LOAD" -c 1 -k 1 -s "$SIZE" -t "$secs" -w 0 "ws://127.0.0.1:$port/echo" 2>/dev/null |
      grep -o ' msgs=[0-9]*' | cut -d= -f2)
    stop
    local ir=$(awk '/^summary/ {print $2}' "$cg")
    if [ "$secs" = 0.05 ]; then base=$ir; n0=$m; else full=$ir; n=$m; fi
  done
  awk -v a="$base" -v b="$full" -v n0="$n0" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / (n - n0)}'
}
cg_line=""
if [ "${CACHEGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
  ir_on=$(ir_per_msg "$ON"); ir_off=$(ir_per_msg "$OFF")
  cg_line="$ir_on $ir_off"
  echo "cachegrind: instructions per message, 1 connection x 1 in flight: on $ir_on off $ir_off" |
    tee -a "$out"
fi
python3 - "$out" "${ws_on[*]}" "${ws_off[*]}" "${http_on[*]}" "${http_off[*]}" \
  "${wcpu_on[*]}" "${wcpu_off[*]}" "${hcpu_on[*]}" "${hcpu_off[*]}" "$paired_line" "$cg_line" <<'PY' | tee -a "$out"
import statistics, sys
out, *cols = sys.argv[1:]
cg = cols.pop().split()
paired = cols.pop()
won, woff, hon, hoff, wcon, wcoff, hcon, hcoff = [[float(x or 0) for x in c.split()] for c in cols]
def row(name, on, off, higher_is_better):
    if not any(off):
        return "%-34s (not run)" % name
    ratios = [a / b for a, b in zip(on, off) if b]
    r = statistics.median(ratios)
    cost = (1 - r) if higher_is_better else (r - 1)
    return "%-34s on %11.3f   off %11.3f   on/off %.4f   cost %+.2f%%" % (
        name, statistics.median(on), statistics.median(off), r, cost * 100)
print(row("WebSocket echo, msgs/s", won, woff, True))
print(row("WebSocket echo, server CPU us/msg", wcon, wcoff, False))
print(row("HTTP/1.1 GET, req/s", hon, hoff, True))
print(row("HTTP/1.1 GET, server CPU us/req", hcon, hcoff, False))
if paired:
    pon, poff, pcon, pcoff = [[float(x or 0) for x in c.split()] for c in paired.split(";")]
    print(row("paired: WebSocket msgs/s", pon, poff, True))
    print(row("paired: server CPU us/msg", pcon, pcoff, False))
if cg:
    a, b = float(cg[0]), float(cg[1])
    print("%-34s on %11.1f   off %11.1f   on/off %.4f   cost %+.2f%%" % (
        "WebSocket echo, user instr/msg", a, b, a / b, (a / b - 1) * 100))
PY
echo "results: $out"
