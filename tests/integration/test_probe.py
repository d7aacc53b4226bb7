"""`switchyard probe` end to end: against our own server, a fixture that misbehaves in some 70
ways, one per path (tests/fixtures/probe_fixture.py: the WebSocket handshake, frames, refusals,
h2c upgrades with broken HTTP/2 after the 101), and its correct variants that must not be
flagged, TLS peers with bad certificates, third-party servers from
Debian (Python websockets, Node ws, nghttpd, h2o) and nginx as a correct, a stripping, an
HTTP/1.0 and a short-timeout reverse proxy in front of our server. Tests that need a missing
package say "skip" and pass (scripts/deps.sh installs them for CI)."""
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, eq, ok, test  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "probe_fixture.py")
PY = "/usr/bin/python3"
TMP = tempfile.mkdtemp(prefix="sy-probe-")


def probe(url, *args, timeout=30):
    t0 = time.time()
    p = subprocess.run([harness.ARGS.bin, "probe", url, "--json"] + list(args),
                       capture_output=True, timeout=timeout)
    harness.check_sanitizer([p.stderr.decode(errors="replace")])
    try:
        d = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("probe printed no JSON (exit %d): %r %r" %
                             (p.returncode, p.stdout[:500], p.stderr[:500]))
    d["_rc"], d["_t"] = p.returncode, time.time() - t0
    eq(d["exit"], p.returncode, "exit in the JSON")
    return d


def ids(d, min_sev=None):
    order = ["info", "warning", "error", "fatal"]
    return [f["id"] for f in d["findings"]
            if min_sev is None or order.index(f["severity"]) >= order.index(min_sev)]


def find(d, fid):
    for f in d["findings"]:
        if f["id"] == fid:
            return f
    raise AssertionError("no %s in %s" % (fid, [(f["id"], f["message"]) for f in d["findings"]]))


def step(d, path, name):
    for s in d["steps"]:
        if s["path"] == path and s["name"] == name:
            return s
    raise AssertionError("no step %s/%s in %s" % (path, name, d["steps"]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Proc:
    """A helper process that prints 'port N' (and maybe 'tls-port N') when it is ready."""

    def __init__(self, cmd, want=("port",), cwd=None, wait_port=None):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=cwd, start_new_session=True)
        self.ports = {}
        deadline = time.time() + 10
        if wait_port:  # a server that prints nothing: wait until it accepts
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", wait_port), 0.2).close()
                    self.ports["port"] = wait_port
                    return
                except OSError:
                    if self.proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.stop()
            raise RuntimeError("%s did not start: %s" % (cmd[0], self.proc.stdout.read()[-2000:]))
        while len(self.ports) < len(want) and time.time() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            m = re.match(r"(\S+) (\d+)$", line.strip())
            if m:
                self.ports[m.group(1)] = int(m.group(2))
        if len(self.ports) < len(want):
            self.stop()
            raise RuntimeError("%s did not start" % cmd)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def skip(why):
    print("skip: %s" % why)


# ---- our own server ----

@test
def own_server_all_green():
    with Server("--no-access-log") as s:
        d = probe(s.url("/echo", "ws"))
        eq(d["_rc"], 0, "exit (%s)" % d["findings"])
        eq(ids(d, "warning"), [], "problems")
        for name in ("connect", "handshake", "round-trip", "ping", "close"):
            ok(step(d, "websocket", name)["ok"], name)
        ok("echo matched" in step(d, "websocket", "round-trip")["detail"], "echo")
        for name in ("bad-version", "unmasked", "h2c-smuggle"):
            ok(step(d, "security", name)["ok"], name)
        ok(step(d, "reflect", "reflect")["ok"], "the reflect route answered")
        ok(d["_t"] < 5, "the whole walk took %.1f s" % d["_t"])


@test
def own_server_http2_paths_all_green():
    # h2c upgrade, prior knowledge and RFC 8441 against our own server.
    with Server("--no-access-log") as s:
        d = probe(s.url("/echo"), "--protocol", "all")
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok(step(d, "h2c-upgrade", "upgrade")["ok"], "h2c upgrade switched")
        ok(step(d, "h2c-prior", "preface")["ok"], "prior knowledge")
        ok(step(d, "rfc8441", "connect")["ok"], "extended CONNECT accepted")
    with Server("--no-access-log", "--no-h2c") as s:
        d = probe(s.url("/echo"), "--protocol", "h2c")
        ok(d["_rc"] != 0 or ids(d), "with --no-h2c the probe reports h2c as not available")


@test
def own_server_subprotocol_and_plain_output():
    with Server("--no-access-log", "--ws-subprotocol", "chat") as s:
        d = probe(s.url("/echo", "ws"), "--subprotocol", "chat", "--origin", "http://x.test")
        eq(d["_rc"], 0, "exit (%s)" % d["findings"])
        ok("subprotocol chat" in step(d, "websocket", "handshake")["detail"], "chat selected")
        p = subprocess.run([harness.ARGS.bin, "probe", s.url("/echo", "ws")],
                           capture_output=True, timeout=30)
        out = p.stdout.decode()
        eq(p.returncode, 0, "exit")
        ok("\033[" not in out, "no colours when piped")
        ok("all good" in out and "handshake" in out, out)


@test
def own_server_not_a_websocket_path():
    with Server("--no-access-log") as s:
        d = probe(s.url("/hello.txt", "ws"))
        eq(d["_rc"], 1, "exit")
        f = find(d, "WS_NOT_SWITCHED_200")
        ok("text/plain" in f["wire"], f["wire"])
        ok(f["causes"] and f["fix"], "causes and fix")


@test
def own_server_idle_kept_alive_by_pings():
    with Server("--no-access-log", "--ws-ping-interval", "300") as s:
        d = probe(s.url("/echo", "ws"), "--idle", "1", "--path-only")
        eq(d["_rc"], 0, "exit (%s)" % d["findings"])
        ok("WS_IDLE_SURVIVED" in ids(d), ids(d))
        ok("WS_IDLE_PINGS" in ids(d), ids(d))
        ok(step(d, "websocket", "idle")["ok"], "idle step")


@test
def reflect_route_token():
    with Server("--no-access-log", "--reflect-token", "s3cret") as s:
        r = harness.request(s.port, b"GET /reflect HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        eq(r[0].status, 403, "without the token")
        r = harness.request(s.port, b"POST /reflect?q=1 HTTP/1.1\r\nHost: x\r\nX-Switchyard-Reflect-"
                            b"Token: s3cret\r\nX-Odd:  spaced \r\nContent-Length: 4\r\n"
                            b"Connection: close\r\n\r\nbody")
        eq(r[0].status, 200, "with the token")
        ok(r[0].body.startswith(b"POST /reflect?q=1 HTTP/1.1\r\nHost: x\r\n"), r[0].body)
        ok(b"X-Odd: spaced\r\n" in r[0].body and r[0].body.endswith(b"\r\n\r\nbody"), r[0].body)
        d = probe(s.url("/echo", "ws"), "--reflect-token", "s3cret")
        ok(step(d, "reflect", "reflect")["ok"], "reflected with the token")
        d = probe(s.url("/echo", "ws"))
        eq(step(d, "reflect", "reflect")["ok"], None, "no reflection without the token")
    with Server("--no-access-log", "--no-reflect") as s:
        r = harness.request(s.port, b"GET /reflect HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        eq(r[0].status, 404, "--no-reflect")


@test
def help_and_findings_documented():
    p = subprocess.run([harness.ARGS.bin, "probe", "--help"], capture_output=True, timeout=10)
    eq(p.returncode, 0, "--help")
    text = p.stdout.decode()
    for opt in ("--protocol", "--path-only", "--json", "--header", "--origin", "--subprotocol",
                "--timeout", "--idle", "--insecure", "--cacert", "--reflect", "--reflect-token",
                "--no-color", "--list-findings", "exit status"):
        ok(opt in text, "--help mentions %s" % opt)
    p = subprocess.run([harness.ARGS.bin, "probe", "--list-findings"], capture_output=True,
                       timeout=10)
    found = [l.split()[0] for l in p.stdout.decode().splitlines() if l.strip()]
    ok(len(found) >= 60, "finding count %d" % len(found))
    doc = open(os.path.join(HERE, "..", "..", "docs", "probe.md")).read()
    missing = [i for i in found if "`%s`" % i not in doc]
    eq(missing, [], "finding IDs missing from docs/probe.md")
    eq(subprocess.run([harness.ARGS.bin, "probe", "nope://x"], capture_output=True).returncode,
       2, "bad URL")


# ---- the misbehaving fixture ----

FIX = {}
CAT = {}


def catalogue():
    if not CAT:
        p = subprocess.run([harness.ARGS.bin, "probe", "--list-findings", "--json"],
                           capture_output=True, timeout=10)
        CAT.update({e["id"]: e["severity"] for e in json.loads(p.stdout)})
    return CAT


def fixture():
    if "p" not in FIX:
        FIX["p"] = Proc([PY, FIXTURE])
    return FIX["p"].ports["port"]


# path, extra probe options, the finding that must be named, exit status
FAULTS = [
    ("bad-accept", [], "WS_ACCEPT_MISMATCH", 1),
    ("hex-accept", [], "WS_ACCEPT_MISMATCH", 1),
    ("no-upgrade", [], "WS_UPGRADE_MISSING", 1),
    ("no-connection", [], "WS_CONNECTION_MISSING", 1),
    ("ok-200", [], "WS_NOT_SWITCHED_200", 1),
    ("proxy-400", [], "WS_REFUSED_400", 1),
    ("unsolicited-subprotocol", [], "WS_SUBPROTOCOL_UNSOLICITED", 1),
    ("unechoed-subprotocol", ["--subprotocol", "chat"], "WS_SUBPROTOCOL_NOT_SELECTED", 1),
    ("bad-extension", [], "WS_EXTENSION_INVALID", 1),
    ("unsolicited-extension", [], "WS_EXTENSION_UNSOLICITED", 1),
    ("unmasked-ok", [], "SEC_UNMASKED_ACCEPTED", 1),
    ("any-version", [], "SEC_BAD_VERSION_ACCEPTED", 1),
    ("flood", [], "WS_FLOOD", 1),
    ("garbage", [], "HTTP_NOT_HTTP", 1),
    ("endless-header", [], "HTTP_HEAD_TOO_LARGE", 1),
    ("endless-chunked", [], "HTTP_BODY_UNBOUNDED", 1),
    ("h2c-lenient", [], "SEC_H2C_WITHOUT_SETTINGS_TOKEN", 1),
    ("close-after-101", [], "WS_CLOSED_AFTER_UPGRADE", 1),
    ("no-pong", ["--timeout", "1"], "WS_NO_PONG", 1),
    ("masked-server", [], "WS_FRAME_INVALID", 1),
    ("no-close-reply", [], "WS_CLOSE_NO_REPLY", 1),
    ("black-hole", ["--timeout", "1"], "NET_TIMEOUT", 2),
    # the 101's fields
    ("upgrade-other", [], "WS_UPGRADE_WRONG", 1),
    ("upgrade-several", [], "WS_UPGRADE_WRONG", 1),
    ("upgrade-twice", [], "WS_UPGRADE_WRONG", 1),
    ("connection-other", [], "WS_CONNECTION_MISSING", 1),
    ("no-accept", [], "WS_ACCEPT_MISSING", 1),
    ("accept-no-guid", [], "WS_ACCEPT_MISMATCH", 1),
    ("accept-b64-hex", [], "WS_ACCEPT_MISMATCH", 1),
    ("accept-twice", [], "WS_ACCEPT_MISMATCH", 1),
    ("http10-101", [], "HTTP_VERSION_10", 1),
    ("bare-lf", [], "HTTP_BAD_RESPONSE", 1),
    ("frames-in-head", [], "HTTP_BAD_RESPONSE", 1),
    ("version-in-101", [], "WS_VERSION_MISMATCH", 1),
    ("several-subprotocols", ["--subprotocol", "chat", "--subprotocol", "superchat"],
     "WS_SUBPROTOCOL_UNSOLICITED", 1),
    ("ext-unknown-param", [], "WS_EXTENSION_INVALID", 1),
    # refusals
    ("status-400", [], "WS_REFUSED_400", 1),
    ("status-401", [], "WS_FORBIDDEN", 1),
    ("status-403", [], "WS_FORBIDDEN", 1),
    ("status-404", [], "WS_NOT_FOUND", 1),
    ("status-426", [], "WS_UPGRADE_REQUIRED_426", 1),
    ("status-426-bare", [], "WS_UPGRADE_REQUIRED_426", 1),
    ("status-426-v8", [], "WS_UPGRADE_REQUIRED_426", 1),
    ("status-426-tls", [], "WS_UPGRADE_REQUIRED_426", 1),
    ("redirect-wss", [], "WS_REDIRECT", 1),
    ("redirect-path", [], "WS_REDIRECT", 1),
    ("status-500", [], "WS_UNEXPECTED_STATUS", 1),
    ("status-503", [], "WS_BAD_GATEWAY", 1),
    # after the 101
    ("rsv-frame", [], "WS_FRAME_INVALID", 1),
    ("bad-utf8", [], "WS_FRAME_INVALID", 1),
    ("close-code-1005", [], "WS_FRAME_INVALID", 1),
    ("close-code-1006", [], "WS_FRAME_INVALID", 1),
    ("close-code-1015", [], "WS_FRAME_INVALID", 1),
    ("close-code-999", [], "WS_FRAME_INVALID", 1),
    ("close-code-5000", [], "WS_FRAME_INVALID", 1),
    ("close-1byte", [], "WS_FRAME_INVALID", 1),
    ("close-bad-reason", [], "WS_FRAME_INVALID", 1),
    ("close-at-once", [], "WS_CLOSED_BY_SERVER", 1),
    ("slow-head", ["--timeout", "0.3"], "NET_TIMEOUT", 1),
]

# What the finding must say (in its message or wire hint), and its severity when it differs
# from the catalogue's.
SAYS = {
    "upgrade-other": "h2c",
    "upgrade-several": "several protocols",
    "upgrade-twice": "2 Upgrade fields",
    "accept-no-guid": "GUID is not appended",
    "accept-b64-hex": "hex digits",
    "accept-twice": "2 times",
    "http10-101": "HTTP/1.0",
    "bare-lf": "bare LF",
    "frames-in-head": "before the empty line",
    "version-in-101": "Sec-WebSocket-Version: 8",
    "several-subprotocols": "several subprotocols",
    "status-401": "WWW-Authenticate: Bearer",
    "status-426-bare": "neither Upgrade nor Sec-WebSocket-Version",
    "status-426-v8": "version 8",
    "status-426-tls": "wss://",
    "redirect-wss": "wss://",
    "redirect-path": "/elsewhere",
    "rsv-frame": "RSV2",
    "bad-utf8": "UTF-8",
    "close-code-1005": "1005",
    "close-code-1006": "1006",
    "close-code-1015": "1015",
    "close-code-999": "999",
    "close-code-5000": "5000",
    "close-1byte": "1-byte",
    "close-bad-reason": "UTF-8",
    "close-at-once": "1008",
    "slow-head": "step: handshake",
    "masked-server": "masked",
}
SEVERITY = {"http10-101": "error", "bare-lf": "error", "slow-head": "error"}


def fault_test(path, extra, fid, code):
    def t():
        d = probe("ws://127.0.0.1:%d/%s" % (fixture(), path), *extra)
        f = find(d, fid)
        eq(d["_rc"], code, "exit (%s)" % ids(d))
        ok(f["message"] and f["fix"], "a sentence and a fix")
        ok(d["_t"] < 6, "bounded in time: %.1f s" % d["_t"])
        if path == "black-hole":
            ok("step: handshake" in f["message"], f["message"])
        if path == "hex-accept":
            ok("hex" in f["wire"], f["wire"])
        if path == "proxy-400":
            ok("nginx" in f["wire"] and "WebSocket fields" in f["wire"], f["wire"])
        if path == "garbage":
            ok("garbage" in f["message"], f["message"])
        if path == "ok-200":
            eq(ids(d, "warning"), ["WS_NOT_SWITCHED_200"], "only the real problem")
        if path in SAYS:
            ok(SAYS[path] in f["message"] + " " + f["wire"], (f["message"], f["wire"]))
        eq(f["severity"], SEVERITY.get(path, catalogue()[fid]), "severity of %s" % fid)
        # one fault, one problem: nothing else on the handshake's path is a warning or worse
        if path not in ("flood", "no-pong", "black-hole", "endless-header", "endless-chunked",
                        "garbage"):
            others = [x["id"] for x in d["findings"] if x["path"] == "websocket" and
                      x["severity"] != "info" and x["id"] != fid]
            eq(others, [], "other problems named for /%s" % path)
    t.__name__ = "fixture_" + path.replace("-", "_")
    return t


for _f in FAULTS:
    test(fault_test(*_f))


@test
def fixture_correct_variants_not_flagged():
    """Correct servers in unusual shapes: mixed-case tokens and OWS after the accept value,
    a message glued to the 101 in the same write, a head that arrives in pieces, an interim
    100 Continue before the 101."""
    port = fixture()
    for path in ("echo", "upgrade-mixed-case", "glued-frame", "slow-head", "interim-100"):
        d = probe("ws://127.0.0.1:%d/%s" % (port, path))
        eq(ids(d, "warning"), [], "problems on /%s" % path)
        eq(d["_rc"], 0, "exit for /%s" % path)
        ok(step(d, "websocket", "close")["ok"], "the session ran to its close on /%s" % path)
    d = probe("ws://127.0.0.1:%d/glued-frame" % port)
    ok("WS_UNSOLICITED_MESSAGES" in ids(d), "the welcome message is a note: %s" % ids(d))


# path, the finding that must be named on the h2c-upgrade walk, what it must say
H2C_FAULTS = [
    ("h2c-http1-after-101", "H2_NO_SETTINGS", "HTTP/1.1 200 OK"),
    ("h2c-headers-first", "H2_NO_SETTINGS", "HEADERS"),
    ("h2c-push-2", "H2_PROTOCOL_ERROR", "SETTINGS_ENABLE_PUSH = 2"),
    ("h2c-window-big", "H2_PROTOCOL_ERROR", "SETTINGS_INITIAL_WINDOW_SIZE = 2147483648"),
    ("h2c-frame-small", "H2_PROTOCOL_ERROR", "SETTINGS_MAX_FRAME_SIZE = 1000"),
    ("h2c-goaway", "H2_GOAWAY", "before answering"),
    ("h2c-goaway-error", "H2_GOAWAY", "PROTOCOL_ERROR"),
    ("h2c-wrong-stream", "H2_PROTOCOL_ERROR", "stream 3"),
    ("h2c-no-answer", "H2_NO_RESPONSE", "on stream 1 after the 101"),
    ("h2c-bad-101", "H2C_UPGRADE_INVALID", "websocket"),
]


def h2c_fault_test(path, fid, says):
    def t():
        d = probe("http://127.0.0.1:%d/%s" % (fixture(), path), "--timeout", "2")
        eq(d["_rc"], 1, "exit (%s)" % ids(d))
        mine = [x for x in d["findings"] if x["path"] == "h2c-upgrade" and x["severity"] != "info"]
        eq([x["id"] for x in mine], [fid], "the h2c-upgrade walk names one problem")
        ok(says in mine[0]["message"] + " " + mine[0]["wire"], mine[0])
        eq(mine[0]["severity"], catalogue()[fid], "severity")
        ok(d["_t"] < 4, "bounded in time: %.1f s" % d["_t"])
    t.__name__ = "fixture_" + path.replace("-", "_")
    return t


for _f in H2C_FAULTS:
    test(h2c_fault_test(*_f))


@test
def fixture_h2c_good_not_flagged():
    d = probe("http://127.0.0.1:%d/h2c-good" % fixture())
    eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
    ok(step(d, "h2c-upgrade", "response")["ok"], "stream 1 answered")


@test
def fixture_memory_bounded():
    """A flood, an endless head and an endless body cost the probe bounded memory."""
    port = fixture()
    for path in ("flood", "endless-header", "endless-chunked"):
        probe("ws://127.0.0.1:%d/%s" % (port, path), "--path-only")
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ok(rss_kb < 80 * 1024, "max RSS of a child %d KiB" % rss_kb)


# ---- TLS ----

def make_cert(name, cn, sans, days_from, days_to):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
            .sign(key, hashes.SHA256()))
    c, k = os.path.join(TMP, name + ".crt"), os.path.join(TMP, name + ".key")
    with open(c, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(k, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return c, k


def tls_fixture(name, cn, sans, days_from, days_to):
    c, k = make_cert(name, cn, sans, days_from, days_to)
    return Proc([PY, FIXTURE, "--tls-cert", c, "--tls-key", k], want=("port", "tls-port")), c


@test
def tls_good_certificate():
    fx, ca = tls_fixture("good", "localhost", ["localhost"], -1, 30)
    with fx:
        d = probe("wss://localhost:%d/echo" % fx.ports["tls-port"], "--cacert", ca)
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        eq(d["tls"]["alpn"], "http/1.1", "ALPN")
        ok(d["tls"]["host_ok"] and "localhost" in d["tls"]["subject"], d["tls"])
        ok(step(d, "websocket", "tls")["ok"], "tls step")
        d = probe("wss://localhost:%d/echo" % fx.ports["tls-port"])
        eq(d["_rc"], 1, "self-signed without --cacert")
        ok("self-signed" in find(d, "TLS_CERT_UNTRUSTED")["message"], "named")
        d = probe("wss://localhost:%d/echo" % fx.ports["tls-port"], "--insecure")
        eq(d["_rc"], 0, "--insecure turns certificate problems into notes")
        # A cleartext server that waits for a request line never answers a ClientHello...
        d = probe("wss://localhost:%d/echo" % fx.ports["port"], "--timeout", "1")
        eq(d["_rc"], 2, "TLS to a cleartext port")
        f = find(d, "NET_TIMEOUT")
        ok("step: tls" in f["message"] and "cleartext" in f["wire"], f)
    # ... and one that answers the bytes with an HTTP error fails the handshake at once.
    with Server("--no-access-log") as s:
        d = probe(s.url("/echo", "wss"), "--timeout", "2")
        eq(d["_rc"], 2, "TLS to our cleartext port")
        ok("cleartext" in find(d, "TLS_HANDSHAKE_FAILED")["wire"], "cause named")


@test
def tls_expired_and_wrong_host():
    fx, ca = tls_fixture("expired", "localhost", ["localhost"], -30, -2)
    with fx:
        d = probe("wss://localhost:%d/echo" % fx.ports["tls-port"], "--cacert", ca)
        eq(d["_rc"], 1, "exit")
        ok("expired" in find(d, "TLS_CERT_EXPIRED")["message"], "expired")
        ok(step(d, "websocket", "round-trip")["ok"], "the rest is still checked")
    fx, ca = tls_fixture("other", "other.test", ["other.test"], -1, 30)
    with fx:
        d = probe("wss://localhost:%d/echo" % fx.ports["tls-port"], "--cacert", ca)
        eq(d["_rc"], 1, "exit")
        ok("localhost" in find(d, "TLS_CERT_NAME_MISMATCH")["message"], "named")


@test
def tls_soon_expiring_and_h2c_over_tls_check():
    fx, ca = tls_fixture("soon", "localhost", ["localhost"], -1, 3)
    with fx:
        d = probe("wss://localhost:%d/h2c-lenient" % fx.ports["tls-port"], "--cacert", ca)
        find(d, "TLS_CERT_EXPIRES_SOON")
        find(d, "SEC_H2C_OVER_TLS")
        eq(d["_rc"], 1, "exit")


@test
def tls_broken_handshakes():
    """A peer that refuses every ClientHello with an alert, one whose ServerHello selects an
    ALPN protocol nobody offered, a server that requires a client certificate, and a correct
    TLS server without h2 asked for h2."""
    c, k = make_cert("faults", "localhost", ["localhost"], -1, 30)
    with Proc([PY, FIXTURE, "--tls-cert", c, "--tls-key", k, "--tls-faults"],
              want=("port", "tls-port", "alert-port", "bad-alpn-port", "client-cert-port")) as p:
        d = probe("wss://localhost:%d/echo" % p.ports["client-cert-port"], "--cacert", c,
                  "--timeout", "2")
        eq(d["_rc"], 2, "exit (%s)" % ids(d))
        f = find(d, "TLS_HANDSHAKE_FAILED")
        ok("client certificate" in f["wire"] and "step: " in f["message"], f)
        ok("NET_CLOSED" not in ids(d), ids(d))
        d = probe("https://localhost:%d/" % p.ports["client-cert-port"], "--cacert", c,
                  "--timeout", "2")
        eq(d["_rc"], 2, "exit over https:// too (%s)" % ids(d))
        ok("client certificate" in find(d, "TLS_HANDSHAKE_FAILED")["wire"], "named")
        d = probe("wss://localhost:%d/echo" % p.ports["alert-port"], "--timeout", "2")
        eq(d["_rc"], 2, "exit")
        f = find(d, "TLS_HANDSHAKE_FAILED")
        ok("step: tls" in f["message"] and "alert" in f["wire"], f)
        for url in ("wss://localhost:%d/echo", "https://localhost:%d/"):
            d = probe(url % p.ports["bad-alpn-port"], "--timeout", "2")
            eq(d["_rc"], 1, "exit (%s)" % ids(d))
            f = find(d, "TLS_ALPN_UNEXPECTED")
            ok('"foo"' in f["message"] and "step: tls" in f["message"], f["message"])
            eq(f["severity"], "error", "severity")
            eq(ids(d, "warning"), ["TLS_ALPN_UNEXPECTED"], "only the real problem")
            ok(d["_t"] < 4, "bounded: %.1f s" % d["_t"])
    fx, ca = tls_fixture("noh2", "localhost", ["localhost"], -1, 30)
    with fx:
        d = probe("https://localhost:%d/" % fx.ports["tls-port"], "--cacert", ca)
        eq(d["_rc"], 0, "no h2 on a TLS port is a note (%s)" % ids(d))
        ok("http/1.1" in find(d, "H2_ALPN_NOT_H2")["message"], "the selected protocol named")
        eq(ids(d, "warning"), [], "no problems")


def own_tls_server(*tls_args):
    cmd = [harness.ARGS.bin, "serve", "--workers", "2", "--root", harness.ROOT,
           "--no-access-log", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"]
    return Server(cmd=cmd + list(tls_args), listen=[None, None])


@test
def own_server_wss_and_h2_alpn():
    c, k = make_cert("own", "localhost", ["localhost"], -1, 60)
    with own_tls_server("--tls-cert", c, "--tls-key", k) as s:
        d = probe("wss://localhost:%d/echo" % s.ports[1], "--cacert", c, "--protocol", "all")
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok(d["tls"]["version"] in ("TLSv1.3", "TLSv1.2"), d["tls"])
        for name in ("tls", "handshake", "round-trip", "ping", "close"):
            ok(step(d, "websocket", name)["ok"], name)
        ok(step(d, "security", "h2c-smuggle")["ok"], "no h2c over TLS")
        # Our server speaks HTTP/2: ALPN selects h2, and WebSocket over HTTP/2 works.
        ok(step(d, "h2", "alpn")["ok"], "ALPN selected h2: %s" % ids(d))
        ok(step(d, "h2", "request")["ok"], "an HTTP/2 request over TLS")
        ok(step(d, "rfc8441", "connect")["ok"], "RFC 8441 over TLS")
    with own_tls_server("--tls-self-signed") as s:
        d = probe("wss://localhost:%d/echo" % s.ports[1])
        eq(d["_rc"], 1, "a self-signed certificate is a problem")
        find(d, "TLS_CERT_UNTRUSTED")
        ok(step(d, "websocket", "round-trip")["ok"], "the rest is still checked")


# ---- third-party WebSocket servers ----

PYWS = r'''
import asyncio, websockets
async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as srv:
        print("port", srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
'''

NODEWS = r'''
const WebSocket = require(process.argv[process.argv.length - 1]);
const wss = new WebSocket.Server({host: '127.0.0.1', port: 0});
wss.on('listening', () => console.log('port ' + wss.address().port));
wss.on('connection', ws => { ws.on('error', () => {});
  ws.on('message', (m, bin) => ws.send(m, {binary: bin})); });
'''


@test
def python_websockets_server():
    try:
        import websockets  # noqa: F401
    except ImportError:
        return skip("python3-websockets")
    with Proc([PY, "-c", PYWS]) as p:
        d = probe("ws://127.0.0.1:%d/" % p.ports["port"])
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok("echo matched" in step(d, "websocket", "round-trip")["detail"], "echo")


@test
def node_ws_server():
    mod = "/usr/share/nodejs/ws"
    if not shutil.which("node") or not os.path.isdir(mod):
        return skip("node-ws")
    with Proc(["node", "-e", NODEWS, mod]) as p:
        d = probe("ws://127.0.0.1:%d/" % p.ports["port"], "--subprotocol", "chat")
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok("subprotocol chat" in step(d, "websocket", "handshake")["detail"], "chat")


# ---- nginx in front of our server ----

NGINX_CONF = """worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p; fastcgi_temp_path %(d)s/f;
  uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      proxy_pass http://127.0.0.1:%(up)d;
%(extra)s
    }
  }
}
"""

WS_LINES = """      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";"""


def nginx(up, extra):
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        return None
    d = tempfile.mkdtemp(prefix="nginx-", dir=TMP)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF % {"d": d, "port": port, "up": up, "extra": extra})
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    return Proc([exe, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                 os.path.join(d, "error.log"), "-g", "daemon off; pid %s/nginx.pid;" % d],
                wait_port=port)


@test
def nginx_correct_proxy():
    with Server("--no-access-log") as s:
        n = nginx(s.port, WS_LINES)
        if not n:
            return skip("nginx")
        with n:
            d = probe("ws://127.0.0.1:%d/echo" % n.ports["port"])
            eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
            ok(step(d, "reflect", "reflect")["ok"], "reflected through nginx")
            ok("Host" in find(d, "PROXY_REWROTE_HEADERS")["message"], "Host rewritten")


@test
def nginx_stripping_proxy_named():
    """HTTP/1.1 upstream but without the Upgrade/Connection lines."""
    with Server("--no-access-log") as s:
        n = nginx(s.port, "      proxy_http_version 1.1;")
        if not n:
            return skip("nginx")
        with n:
            d = probe("ws://127.0.0.1:%d/echo" % n.ports["port"])
            eq(d["_rc"], 1, "exit")
            got = ids(d)
            ok("PROXY_STRIPPED_UPGRADE" in got and "PROXY_STRIPPED_CONNECTION" in got, got)
            ok("PROXY_HTTP10_UPSTREAM" not in got, got)
            f = find(d, "PROXY_STRIPPED_UPGRADE")
            ok("nginx" in f["wire"], f["wire"])
            ok(any("proxy_set_header Upgrade" in l for l in f["fix"]), f["fix"])
            main = [x for x in d["findings"] if x["path"] == "websocket"]
            ok(main and main[0]["severity"] == "error", main)
            ok("reflect route shows the cause" in main[0]["wire"], main[0]["wire"])


@test
def nginx_http10_proxy_named():
    """nginx's defaults: HTTP/1.0 upstream, no Upgrade/Connection."""
    with Server("--no-access-log") as s:
        n = nginx(s.port, "")
        if not n:
            return skip("nginx")
        with n:
            d = probe("ws://127.0.0.1:%d/echo" % n.ports["port"])
            eq(d["_rc"], 1, "exit")
            f = find(d, "PROXY_HTTP10_UPSTREAM")
            ok(any("proxy_http_version 1.1" in l for l in f["fix"]), f["fix"])
            find(d, "PROXY_STRIPPED_UPGRADE")


@test
def nginx_idle_timeout_cut():
    with Server("--no-access-log", "--ws-ping-interval", "0") as s:
        n = nginx(s.port, WS_LINES + "\n      proxy_read_timeout 1s;")
        if not n:
            return skip("nginx")
        with n:
            d = probe("ws://127.0.0.1:%d/echo" % n.ports["port"], "--idle", "4", "--path-only")
            eq(d["_rc"], 1, "exit")
            f = find(d, "WS_IDLE_CUT")
            ok("proxy_read_timeout" in f["wire"], f["wire"])
            secs = float(re.search(r"after ([\d.]+) s", f["message"]).group(1))
            ok(0.5 < secs < 3.5, "cut after %.1f s" % secs)


# ---- HTTP/2 servers ----

@test
def nghttpd_h2c_and_h2():
    exe = shutil.which("nghttpd")
    if not exe:
        return skip("nghttp2-server")
    root = tempfile.mkdtemp(prefix="h2root-", dir=TMP)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("hi\n")
    port = free_port()
    with Proc([exe, "--no-tls", "-d", root, "-a", "127.0.0.1", str(port)], wait_port=port):
        d = probe("http://127.0.0.1:%d/" % port)
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok(step(d, "h2c-prior", "request")["ok"], "prior knowledge GET")
        find(d, "H2_WS_NOT_ADVERTISED")
    c, k = make_cert("nghttpd", "localhost", ["localhost"], -1, 30)
    port = free_port()
    with Proc([exe, "-d", root, "-a", "127.0.0.1", str(port), k, c], wait_port=port):
        d = probe("https://localhost:%d/" % port, "--cacert", c)
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok(step(d, "h2", "alpn")["ok"] and step(d, "h2", "request")["ok"], "h2 via ALPN")


@test
def h2o_h2c_upgrade():
    exe = shutil.which("h2o")
    if not exe:
        return skip("h2o")
    d0 = tempfile.mkdtemp(prefix="h2o-", dir=TMP)
    with open(os.path.join(d0, "index.html"), "w") as f:
        f.write("hi\n")
    port = free_port()
    conf = os.path.join(d0, "h2o.conf")
    with open(conf, "w") as f:
        # As root h2o would switch to "nobody"; stay who we are.
        user = "user: root\n" if os.geteuid() == 0 else ""
        f.write("listen:\n  host: 127.0.0.1\n  port: %d\n%s"
                "hosts:\n  default:\n    paths:\n      /:\n        file.dir: %s\n"
                % (port, user, d0))
    with Proc([exe, "-c", conf], wait_port=port):
        d = probe("http://127.0.0.1:%d/" % port)
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        ok(step(d, "h2c-upgrade", "upgrade")["ok"], "h2c upgrade: %s" % d["steps"])
        ok(step(d, "h2c-upgrade", "response")["ok"], "response on stream 1")


H2FIX = os.path.join(HERE, "..", "fixtures", "probe_h2_fixture.py")


def have_h2():
    try:
        import h2  # noqa: F401
        return True
    except ImportError:
        return False


@test
def rfc8441_websocket_over_h2():
    if not have_h2():
        return skip("python3-h2")
    with Proc([PY, H2FIX]) as p:
        d = probe("http://127.0.0.1:%d/" % p.ports["port"])
        eq(d["_rc"], 0, "exit (%s)" % [(f["id"], f["message"]) for f in d["findings"]])
        s = step(d, "rfc8441", "connect")
        ok(s["ok"] and "the message came back" in s["detail"], s)
        ok("H2_WS_NOT_ADVERTISED" not in ids(d), ids(d))
    with Proc([PY, H2FIX, "--reject"]) as p:
        d = probe("http://127.0.0.1:%d/" % p.ports["port"])
        eq(d["_rc"], 1, "exit")
        ok("501" in find(d, "H2_WS_REJECTED")["message"], "status named")


@test
def rfc8441_broken_servers():
    if not have_h2():
        return skip("python3-h2")
    # mode, the finding on the rfc8441 path, exit status
    for mode, fid, code in (("no-ecp", "H2_WS_NOT_ADVERTISED", 0),
                            ("no-echo", "H2_WS_NO_ECHO", 0),
                            ("raw-echo", "WS_FRAME_INVALID", 1),
                            ("end-stream", "WS_CLOSED_AFTER_UPGRADE", 1)):
        with Proc([PY, H2FIX, "--mode", mode]) as p:
            d = probe("http://127.0.0.1:%d/" % p.ports["port"], "--timeout", "2")
            eq(d["_rc"], code, "exit for %s (%s)" % (mode, ids(d)))
            f = find(d, fid)
            eq(f["path"], "rfc8441", "path")
            eq(f["severity"], catalogue()[fid], "severity")
            eq([x["id"] for x in d["findings"] if x["severity"] != "info" and x["id"] != fid], [],
               "nothing else is a problem for %s" % mode)
            ok(d["_t"] < 3, "bounded: %.1f s" % d["_t"])
            if mode == "raw-echo":
                ok("masked" in f["message"], f["message"])
            if mode == "no-echo":
                ok("ping" in f["message"], "the pong ends the wait: %s" % f["message"])


def teardown():
    if "p" in FIX:
        FIX["p"].stop()
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    try:
        harness.main()
    finally:
        teardown()
