"""TLS listeners (OpenSSL 3) against real clients: curl over TLS 1.2 and 1.3, `openssl s_client`
for ALPN, SNI, resumption and ciphers, Python's ssl module for close_notify, truncated records
and raw ClientHellos, Python `websockets` and our `switchyard ws` over wss://; plus the bad
inputs (plain HTTP on the TLS port, TLS on the cleartext port, a stalled handshake, a
truncated record) and start-up errors. Certificates are made at test time with the openssl
CLI."""
import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import harness
from harness import Server, eq, main, ok, test

import websockets

CERTS = None


def run(cmd, inp=None, timeout=20):
    return subprocess.run(cmd, input=inp, capture_output=True, timeout=timeout)


def openssl(*args):
    r = run(["openssl"] + list(args))
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))


def cert_path(name):
    return os.path.join(CERTS, name)


def make_certs():
    """a.test and b.test (self-signed, for SNI); a CA with two leaves: `localhost` (with IP
    SANs 127.0.0.1 and ::1) and `only.test` (for name mismatches)."""
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="sy-tls-it-")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for n in ("a", "b"):
        openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=%s.test" % n, "-addext",
                "subjectAltName=DNS:%s.test" % n, "-keyout", cert_path(n + ".key"), "-out",
                cert_path(n + ".crt"))
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=Switchyard Test CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            "-keyout", cert_path("ca.key"), "-out", cert_path("ca.crt"))
    for name, san in (("leaf", "DNS:localhost,IP:127.0.0.1,IP:::1"), ("other", "DNS:only.test")):
        openssl("req", "-new", *ec, "-subj", "/CN=%s" % name, "-keyout",
                cert_path(name + ".key"), "-out", cert_path(name + ".csr"))
        ext = cert_path(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n" % san)
        openssl("x509", "-req", "-in", cert_path(name + ".csr"), "-CA", cert_path("ca.crt"),
                "-CAkey", cert_path("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", ext,
                "-out", cert_path(name + ".crt"))


class TlsServer(Server):
    """`switchyard serve` with one cleartext and one TLS listener: .port / .tls_port."""

    def __init__(self, *extra, tls_args=None, workers=2):
        cmd = [harness.ARGS.bin, "serve", "--workers", str(workers), "--root", harness.ROOT,
               "--verbose", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"]
        cmd += tls_args if tls_args is not None else ["--tls-self-signed"]
        cmd += list(extra)
        Server.__init__(self, cmd=cmd, listen=[None, None])
        self.tls_port = self.ports[1]

    def wait_log(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.err_lines):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError("no log line with %r in:\n%s" % (text, "".join(self.err_lines)))


_shared = {}


def srv():
    """One self-signed server shared by the tests that do not look at its log or limits."""
    if "s" not in _shared:
        _shared["s"] = TlsServer("--no-access-log")
    return _shared["s"]


def curl(*args, timeout=20):
    return run(["curl", "-sS", "--max-time", "15"] + list(args), timeout=timeout)


def s_client(port, *args, inp=b"", timeout=20):
    r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args), inp=inp,
            timeout=timeout)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def insecure_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_connect(port, server_hostname="localhost", ragged_ok=True, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    ctx = insecure_ctx()
    if not ragged_ok:
        # Python sets this by default: an EOF without close_notify would then pass unseen.
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx.wrap_socket(raw, server_hostname=server_hostname, suppress_ragged_eofs=ragged_ok)


def read_to_eof(s):
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b


def memory_handshake(port, name="localhost"):
    """Handshake over a plain socket through ssl.MemoryBIO, so that the test controls every
    byte sent afterwards. Returns (socket, SSLObject, outgoing BIO)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = insecure_ctx().wrap_bio(inc, out, server_hostname=name)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            d = out.read()
            if d:
                s.sendall(d)
            b = s.recv(65536)
            if not b:
                raise AssertionError("EOF during the handshake")
            inc.write(b)
    d = out.read()
    if d:
        s.sendall(d)
    return s, obj, out


def client_hello_bytes():
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = insecure_ctx().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def close_quietly(s):
    """Read what is pending, then close with FIN (closing with unread input sends RST)."""
    s.setblocking(False)
    try:
        while s.recv(65536):
            pass
    except (BlockingIOError, OSError):
        pass
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    time.sleep(0.1)
    s.close()


def hello_ok(port):
    r = curl("-k", "https://127.0.0.1:%d/hello.txt" % port)
    eq(r.stdout, b"hello world\n", "body over TLS (%s)" % r.stderr)


# ---- curl ----

@test
def curl_https_tls13_and_tls12():
    p = srv().tls_port
    r = curl("-k", "-v", "--tlsv1.3", "https://127.0.0.1:%d/hello.txt" % p)
    eq(r.stdout, b"hello world\n", "TLS 1.3 body")
    err = r.stderr.decode()
    ok("SSL connection using TLSv1.3" in err, err)
    ok("ALPN: server accepted h2" in err, err)
    r = curl("-k", "-v", "--tlsv1.2", "--tls-max", "1.2", "https://127.0.0.1:%d/hello.txt" % p)
    eq(r.stdout, b"hello world\n", "TLS 1.2 body")
    err = r.stderr.decode()
    ok("SSL connection using TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256" in err, err)


@test
def old_protocols_and_weak_ciphers_refused():
    p = srv().tls_port
    r = curl("-k", "--tlsv1.1", "--tls-max", "1.1", "https://127.0.0.1:%d/" % p)
    ok(r.returncode != 0, "TLS 1.1 must fail")
    for cipher in ("AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "AES256-GCM-SHA384", "DES-CBC3-SHA"):
        out = s_client(p, "-tls1_2", "-cipher", cipher + ":@SECLEVEL=0")
        ok("Cipher is (NONE)" in out or "handshake failure" in out or "no cipher" in out,
           "%s accepted: %s" % (cipher, out[-400:]))
    out = s_client(p, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")
    ok("Cipher is ECDHE-ECDSA-CHACHA20-POLY1305" in out, out[-400:])


@test
def scan_policy_server_order_renegotiation_info_no_compression():
    """What scripts/tls_scan.sh (testssl.sh) checks, pinned: the server's cipher order wins
    over the client's (TLS 1.2 and 1.3), except that a client putting CHACHA20 first gets it
    (SSL_OP_PRIORITIZE_CHACHA: clients without AES hardware); RFC 5746 renegotiation_info is
    sent; no TLS compression; TLS 1.0 refused."""
    p = srv().tls_port
    out = s_client(p, "-tls1_2", "-cipher",
                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")
    ok("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in out, "server order (1.2): " + out[-600:])
    ok("Secure Renegotiation IS supported" in out, "renegotiation_info: " + out[-600:])
    ok("Compression: NONE" in out, "compression: " + out[-600:])
    out = s_client(p, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256")
    ok("Cipher is TLS_AES_128_GCM_SHA256" in out, "server order (1.3): " + out[-600:])
    out = s_client(p, "-tls1_3", "-ciphersuites",
                   "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")
    ok("Cipher is TLS_CHACHA20_POLY1305_SHA256" in out, "CHACHA20 first: " + out[-600:])
    out = s_client(p, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    ok("Cipher is (NONE)" in out, "TLS 1.0 must fail: " + out[-600:])


@test
def static_file_stream_and_body_over_tls():
    p = srv().tls_port
    with open(os.path.join(harness.ROOT, "big.bin"), "rb") as f:
        big = f.read()
    r = curl("-k", "https://127.0.0.1:%d/big.bin" % p)
    ok(r.stdout == big, "big.bin over TLS: %d of %d bytes" % (len(r.stdout), len(big)))
    r = curl("-k", "--limit-rate", "3M", "https://127.0.0.1:%d/big.bin" % p)
    ok(r.stdout == big, "big.bin to a slow reader")
    r = curl("-k", "-r", "1000-70999", "https://127.0.0.1:%d/big.bin" % p)
    ok(r.stdout in (big[1000:71000], big), "a range of big.bin")
    r = curl("-k", "https://127.0.0.1:%d/stream?5000001" % p)
    eq(len(r.stdout), 5000001, "streamed body length")
    body = os.urandom(4 << 20)
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "--data-binary", "@-",
                        "https://127.0.0.1:%d/body" % p], input=body, capture_output=True,
                       timeout=30)
    ok(r.stdout == body, "4 MiB body echoed over TLS (%d bytes back)" % len(r.stdout))


@test
def keep_alive_and_pipelining_over_tls():
    p = srv().tls_port
    r = curl("-k", "-v", "https://127.0.0.1:%d/hello.txt" % p, "https://127.0.0.1:%d/style.css" % p)
    eq(r.stdout, b"hello world\nbody{}\n", "two requests")
    ok(b"Re-using existing connection" in r.stderr or b"Reusing existing" in r.stderr,
       "one connection: %s" % r.stderr[-300:])
    s = tls_connect(p)
    s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n" * 20 +
              b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    rs, _ = harness.parse_all(read_to_eof(s))
    eq(len(rs), 21, "pipelined responses")
    ok(all(r.body == b"hello world\n" for r in rs), "bodies")
    s.close()


@test
def both_kinds_of_listener_in_one_process():
    s = srv()
    r = curl("http://127.0.0.1:%d/hello.txt" % s.port)
    eq(r.stdout, b"hello world\n", "cleartext port")
    hello_ok(s.tls_port)


@test
def many_clients_at_once():
    p = srv().tls_port
    errors = []

    def client(i):
        try:
            s = tls_connect(p)
            for _ in range(5):
                s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                r = harness.read_response(s)
                if r.body != b"hello world\n":
                    errors.append(r)
            s.close()
        except Exception as e:  # noqa
            errors.append(e)
    ts = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    eq(errors, [], "errors")


# ---- openssl s_client: ALPN, SNI, resumption ----

@test
def alpn():
    p = srv().tls_port
    ok("ALPN protocol: h2" in s_client(p, "-alpn", "h2,http/1.1"), "h2 preferred")
    ok("ALPN protocol: http/1.1" in s_client(p, "-alpn", "http/1.1"), "http/1.1 selected")
    ok("No ALPN negotiated" in s_client(p), "no ALPN offered, none selected")
    out = s_client(p, "-alpn", "h3")
    ok("no application protocol" in out, "an unknown protocol must be refused: " + out[-300:])


@test
def sni_two_names_two_certificates():
    args = ["--tls-cert", cert_path("a.crt"), "--tls-key", cert_path("a.key"),
            "--tls-cert", cert_path("b.crt"), "--tls-key", cert_path("b.key")]
    with TlsServer("--no-access-log", tls_args=args) as s:
        def subject(*a):
            out = s_client(s.tls_port, *a)
            for line in out.splitlines():
                if line.startswith("subject="):
                    return line.split("=", 1)[1].strip()
            raise AssertionError(out[-400:])
        eq(subject("-servername", "a.test"), "CN = a.test", "a.test")
        eq(subject("-servername", "b.test"), "CN = b.test", "b.test")
        eq(subject("-servername", "B.Test"), "CN = b.test", "names are case-insensitive")
        eq(subject("-noservername"), "CN = a.test", "no SNI: the first certificate")
        eq(subject("-servername", "c.test"), "CN = a.test", "unknown name: the first")
        r = curl("-k", "--resolve", "b.test:%d:127.0.0.1" % s.tls_port, "-v",
                 "https://b.test:%d/hello.txt" % s.tls_port)
        eq(r.stdout, b"hello world\n", "request through b.test")
        ok(b"CN=b.test" in r.stderr.replace(b" ", b""), r.stderr[-600:])


@test
def session_resumption():
    p = srv().tls_port
    req = b"GET /hello.txt HTTP/1.0\r\n\r\n"
    d = tempfile.mkdtemp(prefix="sy-sess-")
    try:
        for name, args in (("TLS 1.3 ticket", ["-tls1_3"]), ("TLS 1.2 ticket", ["-tls1_2"]),
                           ("TLS 1.2 session cache", ["-tls1_2", "-no_ticket"])):
            sess = os.path.join(d, name.replace(" ", "_"))
            out = s_client(p, *args, "-sess_out", sess, "-ign_eof", inp=req)
            ok("\nNew, " in out, "%s: first handshake is new: %s" % (name, out[-300:]))
            ok(os.path.exists(sess), "%s: session saved" % name)
            out = s_client(p, *args, "-sess_in", sess, "-ign_eof", inp=req)
            ok("\nReused, " in out, "%s: resumed: %s" % (name, out[-500:]))
            ok("hello world" in out, "%s: response" % name)
    finally:
        shutil.rmtree(d)


def tls_get(ctx, port, session=None):
    """GET /hello.txt over a fresh connection (resuming session if given). Returns (resumed,
    the session after the response: TLS 1.3 tickets arrive after the handshake)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    try:
        s.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        eq(read_to_eof(s).split(b"\r\n\r\n", 1)[-1], b"hello world\n", "response")
        return s.session_reused, s.session
    finally:
        s.close()  # the server closed first (HTTP/1.0): nothing left unread


def version_ctx(v):
    ctx = insecure_ctx()
    ctx.minimum_version = ctx.maximum_version = v
    return ctx


VERSIONS = (("TLS 1.3", ssl.TLSVersion.TLSv1_3), ("TLS 1.2", ssl.TLSVersion.TLSv1_2))


@test
def tickets_resume_on_every_worker_and_listener():
    """Two TLS listeners from the file (two contexts) and two workers (SO_REUSEPORT spreads
    the connections): one ticket resumes on all of them. Before, each context sealed with
    its own OpenSSL-made key, so a ticket from one listener never resumed on the other."""
    conf = os.path.join(CERTS, "two-listeners.yaml")
    tls = "{cert: %s, key: %s}" % (cert_path("leaf.crt"), cert_path("leaf.key"))
    with open(conf, "w") as f:
        f.write("listen:\n  - {address: 127.0.0.1:0, tls: %s}\n"
                "  - {address: 127.0.0.1:0, tls: %s}\n" % (tls, tls))
    s = Server(cmd=[harness.ARGS.bin, "serve", "--config", conf, "--workers", "2", "--root",
                    harness.ROOT, "--no-access-log"], listen=[None, None])
    try:
        for name, v in VERSIONS:
            ctx = version_ctx(v)
            resumed, sess = tls_get(ctx, s.ports[0])
            ok(not resumed and sess.has_ticket, "%s: full handshake, ticket issued" % name)
            eq(sess.ticket_lifetime_hint, 7200, "%s: lifetime hint: 2 rotations of 1 h" % name)
            for i in range(12):
                resumed, _ = tls_get(ctx, s.ports[i % 2], sess)
                ok(resumed, "%s: connection %d to listener %d resumed" % (name, i, i % 2))
    finally:
        eq(s.stop(), 0, "exit status")
        harness.check_sanitizer(s.err_lines)


@test
def ticket_survives_one_rotation_not_its_lifetime():
    """--tls-ticket-rotate 1s (lifetime hint 2 s): a ticket resumes after a rotation (its key
    is then a previous one, and the resumed connection gets a new ticket), and not once its
    lifetime is over and its key retired. The ticket it was renewed into resumes in TLS 1.3
    (a new session) but not in TLS 1.2, where a renewed ticket re-seals the same session and
    master secret, whose life counts from the full handshake. OpenSSL keeps session times in
    whole seconds, so a 2 s lifetime ends 2 to 3 s after issue; a key retires 2 to 3 periods
    after it sealed. The checks sit where each outcome is certain: 1.2 s, 2.3 s (the 1.3
    renewed ticket is 1.1 s old) and 3.4 s. Both versions on one timeline."""
    s = TlsServer("--no-access-log", "--tls-ticket-rotate", "1s")
    try:
        ctxs = [(name, version_ctx(v)) for name, v in VERSIONS]
        t0 = time.monotonic()
        first = [tls_get(ctx, s.tls_port)[1] for _, ctx in ctxs]
        for (name, _), sess in zip(ctxs, first):
            eq(sess.ticket_lifetime_hint, 2, "%s: lifetime hint 2 s" % name)
        time.sleep(max(0, t0 + 1.2 - time.monotonic()))
        renewed = []
        for (name, ctx), sess in zip(ctxs, first):
            resumed, r = tls_get(ctx, s.tls_port, sess)
            ok(resumed, "%s: resumed after one rotation" % name)
            ok(r.has_ticket, "%s: a new ticket" % name)
            renewed.append(r)
        time.sleep(max(0, t0 + 2.3 - time.monotonic()))
        resumed, _ = tls_get(ctxs[0][1], s.tls_port, renewed[0])
        ok(resumed, "TLS 1.3: the renewed ticket resumes")
        time.sleep(max(0, t0 + 3.4 - time.monotonic()))
        for (name, ctx), sess in zip(ctxs, first):
            resumed, _ = tls_get(ctx, s.tls_port, sess)
            ok(not resumed, "%s: expired ticket: full handshake" % name)
        resumed, _ = tls_get(ctxs[1][1], s.tls_port, renewed[1])
        ok(not resumed, "TLS 1.2: the renewed ticket expires with its session")
    finally:
        eq(s.stop(), 0, "exit status")
        harness.check_sanitizer(s.err_lines)


@test
def tickets_off_resume_by_session_id():
    for flags in (["--tls-no-tickets"], ["--tls-ticket-rotate", "0"]):
        s = TlsServer("--no-access-log", *flags)
        try:
            ctx = version_ctx(ssl.TLSVersion.TLSv1_2)
            resumed, sess = tls_get(ctx, s.tls_port)
            ok(not sess.has_ticket, "%s: TLS 1.2: no ticket" % flags)
            resumed, _ = tls_get(ctx, s.tls_port, sess)
            ok(resumed, "%s: TLS 1.2: resumed by session ID (server cache)" % flags)
            out = s_client(s.tls_port, "-tls1_2", "-ign_eof", inp=b"GET / HTTP/1.0\r\n\r\n")
            ok("TLS session ticket:" not in out and "New, " in out, out[-600:])
            # TLS 1.3 tickets then only name a server cache entry: still resumes
            ctx = version_ctx(ssl.TLSVersion.TLSv1_3)
            _, sess = tls_get(ctx, s.tls_port)
            resumed, _ = tls_get(ctx, s.tls_port, sess)
            ok(resumed, "%s: TLS 1.3: resumed from the server cache" % flags)
        finally:
            eq(s.stop(), 0, "exit status")
            harness.check_sanitizer(s.err_lines)


@test
def ticket_rotation_values_are_strict():
    b = harness.ARGS.bin
    for bad in ("1500ms", "90", "1x", "-1s", "100h"):
        r = run([b, "serve", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
                 "--tls-self-signed", "--tls-ticket-rotate", bad], timeout=10)
        err = r.stderr.decode()
        eq(r.returncode, 2, "--tls-ticket-rotate %s: status 2: %s" % (bad, err))
        ok("--tls-ticket-rotate" in err and "listening" not in err, err)
    conf = os.path.join(CERTS, "rotate.yaml")
    for val, good in (("30m", True), ("1500ms", False), ("0", True), ("soon", False)):
        with open(conf, "w") as f:
            f.write("tls_ticket_rotate: %s\n" % val)
        r = run([b, "serve", "--config", conf, "--check-config"], timeout=10)
        eq(r.returncode == 0, good, "tls_ticket_rotate: %s: %s" % (val, r.stderr.decode()))


@test
def renegotiation_refused():
    p = srv().tls_port
    r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % p, "-tls1_2"],
            inp=b"R\n", timeout=20)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    ok("RENEGOTIATING" in out, "s_client tried: " + out[-400:])
    ok("no renegotiation" in out, "refused: " + out[-400:])
    hello_ok(p)


# ---- clean ends and bad input ----

@test
def close_notify_on_graceful_close():
    p = srv().tls_port
    s = tls_connect(p, ragged_ok=False)
    s.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    data = read_to_eof(s)  # raises SSLEOFError if the server closed without close_notify
    ok(data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello world\n"), repr(data[:80]))
    s.close()


@test
def plain_http_to_the_tls_port():
    with TlsServer() as s:
        data = harness.exchange(s.tls_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        ok(data.startswith(b"HTTP/1.1 400 "), repr(data[:80]))
        ok(b"this port speaks TLS" in data, repr(data))
        s.wait_log("plain HTTP request on a TLS port")
        hello_ok(s.tls_port)


@test
def tls_to_the_cleartext_port():
    with TlsServer() as s:
        r = curl("-k", "https://127.0.0.1:%d/" % s.port)
        ok(r.returncode != 0, "TLS to the cleartext port must fail")
        data = harness.exchange(s.port, client_hello_bytes())
        ok(data.startswith(b"HTTP/1.1 400 "), "the HTTP parser answers 400: %r" % data[:80])
        s.wait_log("HTTP 400")
        r = curl("http://127.0.0.1:%d/hello.txt" % s.port)
        eq(r.stdout, b"hello world\n", "cleartext still served")


@test
def stalled_handshake_is_closed_others_are_served():
    with TlsServer("--header-timeout", "1500", workers=1) as s:
        stalled = socket.create_connection(("127.0.0.1", s.tls_port), timeout=15)
        stalled.sendall(client_hello_bytes()[:11])  # part of a ClientHello, then nothing
        t0 = time.time()
        for _ in range(3):  # the same (only) worker keeps serving meanwhile
            hello_ok(s.tls_port)
        stalled.settimeout(15)
        try:
            b = stalled.recv(100)
        except ConnectionResetError:
            b = b""
        waited = time.time() - t0
        eq(b, b"", "the stalled connection is closed")
        ok(1.0 <= waited < 12, "closed after the timeout (%.1fs)" % waited)
        s.wait_log("TLS handshake failed: timed out")
        stalled.close()


@test
def truncated_record():
    with TlsServer() as s:
        sock, obj, out = memory_handshake(s.tls_port)
        obj.write(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        rec = out.read()
        sock.sendall(rec[:len(rec) // 2])
        time.sleep(0.2)
        close_quietly(sock)
        s.wait_log("truncated record")
        hello_ok(s.tls_port)


@test
def garbage_after_the_handshake():
    with TlsServer() as s:
        sock, obj, out = memory_handshake(s.tls_port)
        sock.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))  # a record that does not decrypt
        ok(harness.is_closed(sock, 5), "closed")
        s.wait_log("TLS error")
        sock.close()
        hello_ok(s.tls_port)


@test
def client_gone_without_close_notify_is_a_plain_eof():
    with TlsServer() as s:
        sock, obj, out = memory_handshake(s.tls_port)
        obj.write(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(out.read())
        time.sleep(0.3)
        close_quietly(sock)
        time.sleep(0.3)
        ok(not any("TLS" in l and "info" in l for l in s.err_lines), "".join(s.err_lines))


@test
def request_then_fin_without_close_notify_is_answered():
    """A request followed at once by a bare TCP FIN (no close_notify: what a cleartext
    client's half-close becomes when it is put under TLS) gets its response, as over
    cleartext. The EOF at a record boundary is a plain end of input: no alert, the write side
    stays usable. (It used to be answered with a decode_error alert and the response was
    dropped whenever the FIN came in the same read as the request, i.e. most of the time.)"""
    p = srv().tls_port
    for i in range(6):
        sock = tls_connect(p)
        sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        socket.socket.shutdown(sock, socket.SHUT_WR)  # the FIN alone: the TLS layer stays
        try:
            data = read_to_eof(sock)
        except ssl.SSLError as e:
            raise AssertionError("try %d: %s instead of the response" % (i, e))
        finally:
            sock.close()
        ok(data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nhello world\n"),
           "try %d: response %r" % (i, data[-200:]))
    hello_ok(p)


@test
def eof_in_the_handshake_is_logged():
    with TlsServer() as s:
        raw = socket.create_connection(("127.0.0.1", s.tls_port), timeout=10)
        hello = client_hello_bytes()
        raw.sendall(hello)
        time.sleep(0.2)
        close_quietly(raw)
        s.wait_log("TLS handshake failed: the peer closed the connection during the handshake")
        hello_ok(s.tls_port)


# ---- WebSocket over wss:// ----

@test
def python_websockets_over_wss():
    p = srv().tls_port

    async def go():
        for compression in ("deflate", None):
            async with websockets.connect("wss://127.0.0.1:%d/echo" % p, ssl=insecure_ctx(),
                                          compression=compression, max_size=None) as ws:
                for m in ("hello", "x" * 100000, os.urandom(300000), b""):
                    await ws.send(m)
                    r = await asyncio.wait_for(ws.recv(), 10)
                    eq(r, m, "echo of %d bytes (%s)" % (len(m), compression))
    asyncio.run(go())


def ws_cli(url, *args, inp=b"hello\nworld\n"):
    return run([harness.ARGS.bin, "ws", url, "--linger", "300"] + list(args), inp=inp)


@test
def switchyard_ws_client_insecure_and_verifying():
    p = srv().tls_port
    r = ws_cli("wss://127.0.0.1:%d/echo" % p, "--insecure")
    eq(r.returncode, 0, "insecure: " + r.stderr.decode())
    eq(r.stdout, b"hello\nworld\n", "echo")
    r = ws_cli("wss://127.0.0.1:%d/echo" % p)
    eq(r.returncode, 1, "a self-signed certificate must not verify")
    ok(b"certificate verify failed" in r.stderr, r.stderr)


@test
def switchyard_ws_client_with_cacert():
    args = ["--tls-cert", cert_path("leaf.crt"), "--tls-key", cert_path("leaf.key")]
    with TlsServer("--no-access-log", tls_args=args) as s:
        for host in ("localhost", "127.0.0.1"):
            r = ws_cli("wss://%s:%d/echo" % (host, s.tls_port), "--cacert", cert_path("ca.crt"))
            eq(r.returncode, 0, "%s: %s" % (host, r.stderr.decode()))
            eq(r.stdout, b"hello\nworld\n", "echo via " + host)
        r = ws_cli("wss://localhost:%d/echo" % s.tls_port, "--cacert", cert_path("a.crt"))
        eq(r.returncode, 1, "another CA must not verify")
        ok(b"certificate verify failed" in r.stderr, r.stderr)
    args = ["--tls-cert", cert_path("other.crt"), "--tls-key", cert_path("other.key")]
    with TlsServer("--no-access-log", tls_args=args) as s:
        r = ws_cli("wss://127.0.0.1:%d/echo" % s.tls_port, "--cacert", cert_path("ca.crt"))
        eq(r.returncode, 1, "wrong name must not verify")
        ok(b"mismatch" in r.stderr, r.stderr)


# ---- start-up ----

@test
def startup_errors_are_one_line_and_status_2():
    b = harness.ARGS.bin
    cases = [
        (["--tls-cert", cert_path("missing.crt"), "--tls-key", cert_path("a.key")],
         "missing.crt: cannot open: No such file"),
        (["--tls-cert", cert_path("a.crt"), "--tls-key", cert_path("b.key")],
         "does not match the certificate"),
        (["--tls-cert", cert_path("leaf.ext"), "--tls-key", cert_path("a.key")],
         "no PEM certificate"),
        (["--tls-cert", cert_path("a.crt")], "pairs"),
        ([], "--tls-self-signed"),
    ]
    for args, want in cases:
        r = run([b, "serve", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"] + args,
                timeout=10)
        err = r.stderr.decode()
        eq(r.returncode, 2, "exit status for %s: %s" % (args, err))
        eq(len(err.splitlines()), 1, "one line: %r" % err)
        ok(want in err, "%r in %r" % (want, err))
        ok("listening" not in err, "nothing listens")


@test
def shared_server_stops_cleanly():
    s = _shared.pop("s", None)
    if s:
        eq(s.stop(), 0, "exit status")
        harness.check_sanitizer(s.err_lines)


def setup():
    make_certs()


if __name__ == "__main__":
    try:
        main(setup)
    finally:
        for s in _shared.values():
            s.proc.kill()
        if CERTS:
            shutil.rmtree(CERTS, ignore_errors=True)
