#!/usr/bin/env bash
# TLS configuration scan: testssl.sh against a switchyard TLS listener, and a verdict on the
# policy (docs/tls.md, "Configuration scan"). Not part of `make test`: it takes about a minute.
#
#   scripts/tls_scan.sh                  # serve --tls-listen 127.0.0.1:0 --tls-self-signed (ECDSA P-256)
#   KEY_TYPE=rsa scripts/tls_scan.sh     # an RSA 2048 certificate made with openssl (--tls-cert/--tls-key)
#   CERT=a.crt KEY=a.key scripts/tls_scan.sh
#
# testssl.sh (Debian package testssl.sh, installed with apt-get when missing) runs with
# --warnings batch --color 0 --quiet, bounded: the checks in CHECKS (default: protocols,
# cipher categories, forward secrecy, server preference and cipher order, server defaults,
# HTTP headers, vulnerabilities, ciphers per protocol; no client simulation), --openssl-timeout
# 10, the whole run under `timeout 600`. The verdict (exit status 0 when it holds, 1 when not):
#   - SSLv2, SSLv3, TLS 1.0 and 1.1 not offered; TLS 1.2 and 1.3 offered
#   - no NULL, anonymous, export, LOW (DES/RC2/RC4), 3DES/IDEA or obsolete CBC ciphers
#   - the server has a cipher order (SSL_OP_CIPHER_SERVER_PREFERENCE)
#   - secure renegotiation (RFC 5746) supported, client-initiated renegotiation refused,
#     no TLS compression (CRIME)
#   - no HIGH or CRITICAL finding except about the certificate (cert_*: a self-signed test
#     certificate fails the chain of trust and has no CRL/OCSP URI)
# MEDIUM and LOW findings are listed (HTTP headers such as HSTS are the application's choice).
# Output: the summary on stdout; bench/results/tls_scan-STAMP.json (testssl's findings),
# .log (its text output), .txt (the summary).
# Environment: SWITCHYARD (build/switchyard) NO_BUILD KEY_TYPE (self-signed|rsa|ec) CERT KEY
#   CHECKS
set -euo pipefail

cd "$(dirname "$0")/.."
SWITCHYARD=${SWITCHYARD:-build/switchyard}
KEY_TYPE=${KEY_TYPE:-self-signed}
CHECKS=${CHECKS:--p -s -f -P -S -h -U -E}

log() { echo "tls_scan: $*" >&2; }

if ! command -v testssl >/dev/null && ! command -v testssl.sh >/dev/null; then
    log "installing testssl.sh"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
fi
TESTSSL=$(command -v testssl || command -v testssl.sh)
if [[ -z "${NO_BUILD:-}" ]]; then
    make -j2 "$SWITCHYARD" >/dev/null || { log "build failed"; exit 1; }
fi
[[ -x "$SWITCHYARD" ]] || { log "$SWITCHYARD missing"; exit 1; }

TMP=$(mktemp -d /tmp/tls_scan.XXXXXX)
PID=
cleanup() {
    if [[ -n $PID ]]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/www"
echo "tls scan" >"$TMP/www/index.html"

tls_args=(--tls-self-signed)
if [[ -n "${CERT:-}" ]]; then
    tls_args=(--tls-cert "$CERT" --tls-key "${KEY:?KEY must go with CERT}")
    KEY_TYPE="files $CERT"
elif [[ $KEY_TYPE == rsa || $KEY_TYPE == ec ]]; then
    key_opts=(-newkey rsa:2048)
    [[ $KEY_TYPE == ec ]] && key_opts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    openssl req -x509 "${key_opts[@]}" -nodes -days 90 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
    tls_args=(--tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem")
elif [[ $KEY_TYPE != self-signed ]]; then
    log "KEY_TYPE must be self-signed, rsa or ec"; exit 2
fi

"$SWITCHYARD" serve --tls-listen 127.0.0.1:0 "${tls_args[@]}" --root "$TMP/www" --workers 1 \
    --no-access-log >"$TMP/server.log" 2>&1 &
PID=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on https:.* (port \([0-9]*\)).*/\1/p' "$TMP/server.log" | head -1)
    [[ -n $port ]] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
[[ -n $port ]] || { log "the server did not start:"; cat "$TMP/server.log" >&2; exit 1; }
log "switchyard ($KEY_TYPE certificate) on 127.0.0.1:$port; running testssl.sh (about a minute)"

mkdir -p bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="bench/results/tls_scan-$STAMP"
rc=0
# shellcheck disable=SC2086
timeout 600 "$TESTSSL" --quiet --warnings batch --color 0 --ip one --nodns min \
    --openssl-timeout 10 $CHECKS --jsonfile "$OUT.json" "127.0.0.1:$port" >"$OUT.log" 2>&1 || rc=$?
kill -0 "$PID" 2>/dev/null || { log "the server died during the scan:"; tail -5 "$TMP/server.log" >&2; exit 1; }
if [[ ! -s "$OUT.json" ]]; then
    log "testssl.sh wrote no findings (exit $rc); its output:"
    tail -20 "$OUT.log" >&2
    exit 1
fi

version=$("$TESTSSL" --version 2>/dev/null | grep -m1 ' from ' | grep -o '[0-9][0-9.]*[0-9]' | head -1 || true)
set +e
/usr/bin/python3 - "$OUT.json" "$KEY_TYPE" "$version" <<'EOF' | tee "$OUT.txt"
import json
import sys

path, key_type, version = sys.argv[1:4]
findings = json.load(open(path))
by_id = {f["id"]: f for f in findings}
problems = []


def finding(i):
    f = by_id.get(i)
    if f is None:
        problems.append("%s: not in the scan's findings (scan incomplete?)" % i)
        return ""
    return f["finding"]


def expect(i, ok, want):
    got = finding(i)
    if i in by_id and not ok(got):
        problems.append("%s: %r (want %s)" % (i, got, want))
    return got


rows = []
for i in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
    rows.append((i, expect(i, lambda v: v.startswith("not offered"), "not offered")))
for i in ("TLS1_2", "TLS1_3"):
    rows.append((i, expect(i, lambda v: v.startswith("offered"), "offered")))
for i in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
          "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"):
    rows.append((i, expect(i, lambda v: v.startswith("not offered"), "not offered")))
rows.append(("cipher_order", expect("cipher_order", lambda v: "server" in v, "server")))
for i in ("cipherorder_TLSv1_2", "cipherorder_TLSv1_3"):
    rows.append((i, finding(i)))
rows.append(("secure_renego", expect("secure_renego", lambda v: v.startswith("supported"),
                                     "supported")))
rows.append(("secure_client_renego", expect("secure_client_renego",
                                            lambda v: v.startswith("not vulnerable"),
                                            "not vulnerable")))
rows.append(("CRIME_TLS", expect("CRIME_TLS", lambda v: v.startswith("not vulnerable"),
                                 "not vulnerable")))
severe = [f for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
about_cert = [f for f in severe if f["id"].startswith("cert")]
for f in severe:
    if f not in about_cert:
        problems.append("%s %s: %s" % (f["severity"], f["id"], f["finding"]))
vulns = [f for f in findings if f["id"] in (
    "heartbleed", "CCS", "ticketbleed", "ROBOT", "CRIME_TLS", "BREACH", "POODLE_SSL",
    "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4")]

print("TLS configuration scan: testssl.sh %s, switchyard with a %s certificate"
      % (version or "?", key_type))
for i, v in rows:
    print("  %-22s %s" % (i, v))
print("  vulnerabilities        %s" % ", ".join(
    "%s %s" % (f["id"], "ok" if f["severity"] in ("OK", "INFO") else f["severity"])
    for f in vulns))
print("HIGH/CRITICAL about the certificate (expected for a test certificate):")
for f in about_cert:
    print("  %-8s %-22s %s" % (f["severity"], f["id"], f["finding"]))
others = [f for f in findings if f["severity"] in ("MEDIUM", "LOW", "WARN")]
if others:
    print("MEDIUM/LOW/WARN (listed, not failing):")
    for f in others:
        print("  %-8s %-22s %s" % (f["severity"], f["id"], f["finding"]))
if problems:
    print("VERDICT: FAIL")
    for p in problems:
        print("  " + p)
    sys.exit(1)
print("VERDICT: PASS (no weak protocol or cipher, server cipher order, secure renegotiation, "
      "no compression, nothing HIGH/CRITICAL but the test certificate)")
EOF
verdict=${PIPESTATUS[0]}
set -e
log "findings: $OUT.json, testssl output: $OUT.log, summary: $OUT.txt"
exit "$verdict"
