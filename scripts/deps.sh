#!/usr/bin/env bash
# Install the Debian packages that building and testing Switchyard need, only when missing.
set -euo pipefail
# libhiredis-dev, redis-server: topics across processes (src/pubsub) and their tests.
# libyaml-dev: `serve --config` files. prometheus: its promtool checks /metrics (the package
# also brings a server, kept from starting below).
need=(build-essential pkg-config libssl-dev openssl zlib1g-dev libnghttp2-dev curl python3
      python3-websockets python3-cryptography nodejs node-ws chromium
      nginx-light nghttp2-server h2o python3-h2 nghttp2-client libhiredis-dev redis-server
      libyaml-dev prometheus)
# npm comes with the machine's Node.js; Debian's npm package only when it is missing.
command -v npm >/dev/null 2>&1 || need+=(npm)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages and not root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installing prometheus would start its server (with or without systemd): a policy-rc.d
  # that answers 101 forbids invoke-rc.d to start anything during this install. Removed
  # afterwards unless it was there before.
  policy=/usr/sbin/policy-rc.d
  ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && ours=1
  fi
  trap '[ "$ours" = 1 ] && rm -f "$policy"' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ "$ours" = 1 ] && rm -f "$policy"
  trap - EXIT
  # With systemd the unit is still enabled for the next boot: disable it (tests need only
  # promtool). Without systemd there is nothing to disable.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 &&
     [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# playwright-core (npm) drives Debian's chromium for the demo-page test; it never downloads a
# browser of its own.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/tests/integration/node_modules/playwright-core" ]; then
  echo "deps: npm install playwright-core (tests/integration)"
  (cd "$here/tests/integration" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent)
fi
