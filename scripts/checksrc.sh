#!/usr/bin/env bash
# Source checks: banned C functions in the library (src/, outside src/cli), raw allocation
# outside src/core/mem.c, the layer rules (includes and names), and clang-format
# conformance. Prints "N passed, N failed".
cd "$(dirname "$0")/.."
pass=0 fail=0
report() { # name, offending lines
  if [ -n "$2" ]; then echo "FAIL $1"; echo "$2" | head -20; fail=$((fail + 1))
  else echo "ok $1"; pass=$((pass + 1)); fi
}
mapfile -t lib < <(git ls-files 'src/*.c' 'src/*.h' | grep -v '^src/cli/')
report "no banned string functions in the library" \
  "$(grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|sscanf|gets)\(' "${lib[@]}" | grep -v snprintf)"
report "allocation only through sy__malloc and friends" \
  "$(grep -nE '(^|[^_a-z])(malloc|calloc|realloc|free)\(' "${lib[@]}" | grep -v '^src/core/mem.c')"
# Layers, bottom up: core < net < tls (a transport) < http (version-neutral) < http1, http2,
# ws (protocols) < pubsub (topics over ws; with redis, a hiredis client on our loop, beside
# the protocols) < server, client (composition) < cli. A layer includes only itself and what
# is below it, except that protocols never include each other or tls: they meet through
# the plug-in and byte-stream interfaces, and no protocol knows whether TLS is there.
allowed() { # layer -> the src/ folders its files may include
  case $1 in
    core) echo "core" ;;
    net) echo "core net" ;;
    tls) echo "core net tls" ;;
    http) echo "core net http" ;;
    http1) echo "core net http http1" ;;
    http2) echo "core net http http2" ;;
    ws) echo "core net http ws" ;;
    probe) echo "core http ws probe" ;;
    redis) echo "core redis" ;;
    pubsub) echo "core net http ws redis pubsub" ;;
    *) echo "*" ;;
  esac
}
bad=""
for f in "${lib[@]}"; do
  layer=${f#src/}; layer=${layer%%/*}
  ok=$(allowed "$layer")
  [ "$ok" = "*" ] && continue
  while IFS= read -r inc; do
    dir=${inc%%/*}
    [ "$dir" = "$inc" ] && continue # same-folder or non-layer include
    [ -d "src/$dir" ] || continue
    case " $ok " in *" $dir "*) ;; *) bad="$bad
$f includes $inc (layer $layer may include: $ok)" ;; esac
  done < <(grep -oE '^#include "[^"]+"' "$f" | sed -E 's/#include "(.*)"/\1/')
done
report "layers: includes only go down (core<net<tls<http<http1|http2|ws<server|client)" "${bad#
}"
# Names: the network layer speaks of connections and streams, never of a protocol.
report "layers: src/net names no protocol" \
  "$(grep -nE '\b(sy_req|sy_route|sy_ws|sy__ws|sy_http|sy__http|sy_stream_|SY_UPGRADE|http1|websocket)' \
      src/net/*.[ch] | grep -vE '^[^:]+:[0-9]+:\s*(/\*|\*)')"
report "layers: no protocol names TLS or OpenSSL" \
  "$(grep -nE '\b(SSL_|sy_tls|sy__tls|openssl/ssl)' src/http/*.[ch] src/http1/*.[ch] src/ws/*.[ch] \
      $(ls src/http2/*.[ch] 2>/dev/null) | grep -vE '^[^:]+:[0-9]+:\s*(/\*|\*)')"
if command -v clang-format >/dev/null; then
  bad=""
  for f in $(git ls-files '*.c' '*.h' | grep -v '^bench/peers/node_modules/'); do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
  done
  report "clang-format clean" "$bad"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
