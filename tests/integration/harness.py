"""Shared helpers for the integration suites: start the real `switchyard` binary on a free
loopback port, talk to it over raw sockets, parse responses, and report results in the
"N passed, N failed" form that tests/run adds up.

TLS mode (SY_TEST_TLS=1 in the environment, or --tls): Server listens with --tls-listen and
--tls-self-signed instead of --listen, and connect() returns a TLS socket with verification
off, so a suite written against raw sockets runs unchanged over TLS. tests/run runs the
WebSocket suites a second time this way ("[tls]" in the suite name)."""
import argparse
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback

TESTS = []
ARGS = None
TLS = os.environ.get("SY_TEST_TLS", "") not in ("", "0")


def test(fn):
    TESTS.append(fn)
    return fn


def plain_only(fn):
    """A test about something that has no TLS form (e.g. a peer that only speaks cleartext):
    left out in TLS mode."""
    fn.plain_only = True
    return fn


def ws_scheme():
    return "wss" if TLS else "ws"


def client_ssl_context():
    """Client side of TLS mode: the server's certificate is self-signed, so no verification
    (the certificate checks live in test_tls.py)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_cert = {}


def self_signed_cert():
    """(cert, key) PEM files for peers that serve TLS in TLS mode (Python or Node echo servers):
    a P-256 certificate for localhost / 127.0.0.1, made once per run with the openssl CLI.
    It is its own CA, so a client can verify it with --cacert."""
    if not _cert:
        import tempfile
        d = tempfile.mkdtemp(prefix="sy-it-cert-")
        crt, key = os.path.join(d, "peer.crt"), os.path.join(d, "peer.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=30)
        _cert.update(crt=crt, key=key)
    return _cert["crt"], _cert["key"]


class Server:
    """A switchyard process listening on 127.0.0.1:<free port>."""

    def __init__(self, *extra, workers=2, binary=None, listen=None, cmd=None):
        binary = binary or ARGS.bin
        self.log_lines = []
        self.err_lines = []
        if cmd is None:
            cmd = [binary, "serve", "--workers", str(workers), "--root", ROOT]
            for l in (listen or ["127.0.0.1:0"]):
                cmd += ["--tls-listen" if TLS else "--listen", l]
            if TLS:
                cmd.append("--tls-self-signed")
            cmd += list(extra)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ports = []
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line:
                break
            self.err_lines.append(line)
            m = re.search(r"listening on .* \(port (\d+)\)", line)
            if m:
                self.ports.append(int(m.group(1)))
                if len(self.ports) == len(listen or [1]):
                    break
        if not self.ports:
            self.proc.kill()
            raise RuntimeError("server did not start: " + "".join(self.err_lines))
        self.port = self.ports[0]
        self._t1 = threading.Thread(target=self._drain, args=(self.proc.stdout, self.log_lines),
                                    daemon=True)
        self._t2 = threading.Thread(target=self._drain, args=(self.proc.stderr, self.err_lines),
                                    daemon=True)
        self._t1.start()
        self._t2.start()

    @staticmethod
    def _drain(f, out):
        for line in iter(f.readline, b""):
            out.append(line.decode(errors="replace"))

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not exit within %ss of signal" % timeout)
        self._t1.join(2)
        self._t2.join(2)
        return self.proc.returncode

    def url(self, path="/", scheme=None):
        return "%s://127.0.0.1:%d%s" % (scheme or ("https" if TLS else "http"), self.port, path)

    def ws_url(self, path="/echo"):
        return "%s://127.0.0.1:%d%s" % (ws_scheme(), self.port, path)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        rc = self.stop()
        check_sanitizer(self.err_lines)
        if rc not in (0, None):
            raise AssertionError("server exited with %r: %s" % (rc, "".join(self.err_lines[-20:])))


def check_sanitizer(lines):
    text = "".join(lines)
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehavior"):
        if marker in text:
            raise AssertionError("sanitizer report from the server:\n" + text[-4000:])


class Sock(socket.socket):
    """A socket that can carry the bytes read past the last response (_sy_buf)."""
    _sy_buf = b""


def connect(port, timeout=5, host="127.0.0.1"):
    """A connected socket; in TLS mode an ssl.SSLSocket after the handshake."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = Sock(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if TLS:
        s = client_ssl_context().wrap_socket(s, server_hostname="localhost")
    return s


def shutdown_write(s):
    """Half-close: the server sees end of input, we can still read. On a TLS socket this is
    the TCP FIN alone (SSLSocket.shutdown would drop the TLS layer for reading; the server
    takes an EOF without close_notify as a plain end of input)."""
    if isinstance(s, ssl.SSLSocket):
        socket.socket.shutdown(s, socket.SHUT_WR)
    else:
        s.shutdown(socket.SHUT_WR)


def recv_all(s, timeout=5):
    """Read until the peer closes (or timeout); returns bytes."""
    s.settimeout(timeout)
    chunks = []
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except socket.timeout:
        pass
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def exchange(port, data, timeout=5):
    """Send data, half-close, read everything until the server closes."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        try:
            shutdown_write(s)
        except OSError:
            pass
        return recv_all(s, timeout)
    finally:
        s.close()


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name-lower, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n == name.lower()]

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.headers)


def parse_one(data, head_only=False):
    """Parse one response from the start of data; returns (Response, rest) or (None, data)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None, data
    head = data[:end].decode("latin-1")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    status = int(m.group(1))
    headers = []
    for l in lines[1:]:
        n, _, v = l.partition(":")
        headers.append((n.strip().lower(), v.strip()))
    rest = data[end + 4:]
    r = Response(status, m.group(2), headers, b"", head)
    if head_only or status in (101, 204, 304) or status < 200:
        return r, rest
    cl = r.header("content-length")
    if r.header("transfer-encoding") == "chunked":
        body = b""
        while True:
            le = rest.find(b"\r\n")
            if le < 0:
                return None, data
            size = int(rest[:le].split(b";")[0], 16)
            if len(rest) < le + 2 + size + 2:
                return None, data
            body += rest[le + 2:le + 2 + size]
            rest = rest[le + 2 + size + 2:]
            if size == 0:
                break
        r.body = body
        return r, rest
    if cl is not None:
        n = int(cl)
        if len(rest) < n:
            return None, data
        r.body = rest[:n]
        return r, rest[n:]
    r.body = rest  # close-delimited
    return r, b""


def parse_all(data, head_requests=()):
    out = []
    i = 0
    while data:
        r, data2 = parse_one(data, head_only=i in head_requests)
        if r is None:
            break
        out.append(r)
        data = data2
        i += 1
    return out, data


def request(port, raw, timeout=5):
    """Send raw bytes, read to close, return the list of responses."""
    data = exchange(port, raw, timeout)
    rs, _ = parse_all(data)
    return rs


def read_response(s, timeout=5, head_only=False):
    """Read exactly one response from an open socket (keeps the connection)."""
    s.settimeout(timeout)
    buf = getattr(s, "_sy_buf", b"")
    while True:
        r, rest = parse_one(buf, head_only) if buf else (None, buf)
        if r is not None and (r.header("content-length") is not None or
                              r.header("transfer-encoding") or r.status in (101, 204, 304) or
                              head_only):
            s._sy_buf = rest
            return r
        try:
            b = s.recv(65536)
        except socket.timeout:
            b = b""
        if not b:
            if r is not None:
                s._sy_buf = b""
                return r
            raise AssertionError("connection closed/timed out before a full response: %r" % buf)
        buf += b


def is_closed(s, timeout=2):
    """True when the server closed the connection (EOF) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what or "value", b, a))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


ROOT = None


def make_root():
    """A fresh document root with known files, a directory, a big file, and ways out of the
    root (a symlink to /etc, a secret file beside the root) for traversal tests."""
    import tempfile
    base = tempfile.mkdtemp(prefix="sy-it-")
    root = os.path.join(base, "www")
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(base, "secret.txt"), "w") as f:
        f.write("SECRET outside the root\n")
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!doctype html><title>root</title>index\n")
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("hello world\n")
    with open(os.path.join(root, "sub", "index.html"), "w") as f:
        f.write("sub index\n")
    with open(os.path.join(root, "style.css"), "w") as f:
        f.write("body{}\n")
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 17))
    os.symlink("/etc", os.path.join(root, "etc-link"))
    os.symlink("../secret.txt", os.path.join(root, "secret-link.txt"))
    os.symlink("hello.txt", os.path.join(root, "inner-link.txt"))
    return root


def main(setup=None):
    global ARGS, ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/switchyard")
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", default=None, help="run tests whose name contains this")
    ap.add_argument("--tls", action="store_true", help="TLS mode (as SY_TEST_TLS=1)")
    ARGS = ap.parse_args()
    global TLS
    TLS = TLS or ARGS.tls
    if TLS:
        os.environ["SY_TEST_TLS"] = "1"  # for child processes that look (node tests)
        print("TLS mode: servers on --tls-listen with --tls-self-signed")
    ARGS.bin = os.path.abspath(ARGS.bin)
    ROOT = make_root()
    if setup:
        setup()
    passed = failed = 0
    for t in TESTS:
        if ARGS.k and ARGS.k not in t.__name__:
            continue
        if TLS and getattr(t, "plain_only", False):
            print("skip %s (cleartext only)" % t.__name__)
            continue
        t0 = time.time()
        try:
            t()
            passed += 1
            print("ok %s (%.2fs)" % (t.__name__, time.time() - t0))
        except Exception as e:  # noqa
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e))
            traceback.print_exc(limit=int(os.environ.get("SY_TB", "3")), file=sys.stdout)
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
