#!/usr/bin/env bash
# HTTP/2 static-file comparison with h2load: switchyard vs nghttpd vs h2o (those installed),
# cleartext with prior knowledge, one small file, side by side in one run.
#
# Two shapes per server: many streams on few connections (CONNS_MUX connections x STREAMS
# concurrent streams, default 10 x 100) and one stream per connection (CONNS_ONE x 1, default
# 100). Each visit is `h2load -D DURATION -t THREADS` after a short warm-up; ROUNDS rounds
# visit the servers in turn. The table shows the median requests/s and the failures.
# Bounded: DURATION (s, 5) x ROUNDS (1) x 2 shapes x servers.
#
# Environment: DURATION ROUNDS THREADS (2) WORKERS (2) FILE_SIZE (4096) CONNS_MUX STREAMS
#   CONNS_ONE SERVERS ("switchyard nghttpd h2o") SWITCHYARD (build/switchyard) NO_BUILD
# Installs nghttp2-client (h2load) when missing; nghttpd (nghttp2-server) and h2o are used
# when present (INSTALL_PEERS=1 installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
FILE_SIZE=${FILE_SIZE:-4096}
CONNS_MUX=${CONNS_MUX:-10}
STREAMS=${STREAMS:-100}
CONNS_ONE=${CONNS_ONE:-100}
SERVERS=${SERVERS:-switchyard nghttpd h2o}
SWITCHYARD=${SWITCHYARD:-build/switchyard}

log() { echo "h2_compare: $*" >&2; }

pkgs=()
command -v h2load >/dev/null || pkgs+=(nghttp2-client)
if [ "${INSTALL_PEERS:-0}" = 1 ]; then
  command -v nghttpd >/dev/null || pkgs+=(nghttp2-server)
  command -v h2o >/dev/null || pkgs+=(h2o)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  log "installing ${pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
[ -n "${NO_BUILD:-}" ] || make -j2 all >/dev/null

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/root" bench/results
head -c "$FILE_SIZE" /dev/urandom >"$tmp/root/index.html"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A url
for s in $SERVERS; do
  port=$(free_port)
  case $s in
    switchyard)
      "$SWITCHYARD" serve --listen "127.0.0.1:$port" --root "$tmp/root" --workers "$WORKERS" \
        --no-access-log 2>"$tmp/$s.err" & pids+=($!) ;;
    nghttpd)
      command -v nghttpd >/dev/null || { log "nghttpd not installed: skipped"; continue; }
      nghttpd --no-tls -n "$WORKERS" -d "$tmp/root" "$port" >/dev/null 2>&1 & pids+=($!) ;;
    h2o)
      command -v h2o >/dev/null || { log "h2o not installed: skipped"; continue; }
      cat >"$tmp/h2o.conf" <<CONF
listen:
  host: 127.0.0.1
  port: $port
num-threads: $WORKERS
hosts:
  default:
    paths:
      /:
        file.dir: $tmp/root
CONF
      h2o -c "$tmp/h2o.conf" >/dev/null 2>&1 & pids+=($!) ;;
    *) log "unknown server $s"; continue ;;
  esac
  url[$s]="http://127.0.0.1:$port/index.html"
done
sleep 1

stamp=$(date +%Y%m%d-%H%M%S)
out="bench/results/h2_compare-$stamp"
printf '%-12s %-22s %12s %8s\n' server shape "req/s" failed | tee "$out.txt"
for round in $(seq "$ROUNDS"); do
  for s in "${!url[@]}"; do
    for shape in "mux $CONNS_MUX $STREAMS" "one $CONNS_ONE 1"; do
      set -- $shape
      h2load -D 1 -t "$THREADS" -c "$2" -m "$3" "${url[$s]}" >/dev/null 2>&1 || true
      res=$(h2load -D "$DURATION" -t "$THREADS" -c "$2" -m "$3" "${url[$s]}" 2>&1 | tee -a "$out.log")
      rps=$(echo "$res" | sed -n 's/.*finished in .*, \([0-9.]*\) req\/s.*/\1/p')
      failed=$(echo "$res" | sed -n 's/.* \([0-9]*\) failed.*/\1/p' | head -1)
      printf '%-12s %-22s %12s %8s\n' "$s" "$1 ${2}c x ${3}s" "${rps:-?}" "${failed:-?}" | tee -a "$out.txt"
    done
  done
done
log "results in $out.txt"
