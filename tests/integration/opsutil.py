"""Helpers shared by the operations suites (metrics, logs, config): a minimal WebSocket client
over raw sockets, a Prometheus text parser (the fallback when promtool is missing), and
scraping."""
import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import time

from harness import connect, parse_one, recv_all

KEY = base64.b64encode(b"0123456789abcdef").decode()


def ws_open(port, path="/echo", extra=(), version="13", key=KEY, body=b"", method="GET"):
    """Send an upgrade request; return (socket, parsed response head, bytes after the head)."""
    s = connect(port)
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port,
             "Connection: Upgrade", "Upgrade: websocket"]
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    lines += list(extra)
    if body:
        lines.append("Content-Length: %d" % len(body))
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    data = b""
    s.settimeout(5)
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    return s, status, head.decode(errors="replace"), rest


def frame(opcode, payload=b"", fin=True):
    mask = os.urandom(4)
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def read_frame(s, buf=b"", timeout=5):
    """Read one unmasked server frame: (opcode, payload, rest)."""
    s.settimeout(timeout)
    def need(n):
        nonlocal buf
        while len(buf) < n:
            c = s.recv(65536)
            if not c:
                raise EOFError("connection closed")
            buf += c
    need(2)
    op, ln = buf[0] & 0x0F, buf[1] & 0x7F
    off = 2
    if ln == 126:
        need(4)
        ln = struct.unpack("!H", buf[2:4])[0]
        off = 4
    elif ln == 127:
        need(10)
        ln = struct.unpack("!Q", buf[2:10])[0]
        off = 10
    need(off + ln)
    return op, buf[off:off + ln], buf[off + ln:]


def ws_close(s, code=1000):
    s.sendall(frame(0x8, struct.pack("!H", code)))
    try:
        read_frame(s)
    except (EOFError, OSError):
        pass
    s.close()


def get(port, path, headers=()):
    s = connect(port)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" %
               (path, "".join(h + "\r\n" for h in headers))).encode())
    r, _ = parse_one(recv_all(s))
    s.close()
    if r is None:
        raise AssertionError("no response to GET %s" % path)
    return r


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Parse the text format strictly enough to catch what promtool would: returns
    {(name, frozenset(labels.items())): value} and raises ValueError on a bad line."""
    out, types = {}, {}
    for ln in text.split("\n"):
        if not ln:
            continue
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ", 3)
            if name in types:
                raise ValueError("TYPE twice: " + name)
            types[name] = typ
            continue
        if ln.startswith("# HELP ") or ln.startswith("#"):
            continue
        m = SAMPLE.match(ln)
        if not m:
            raise ValueError("bad sample line: %r" % ln)
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and base not in types:
            raise ValueError("sample before its TYPE: %r" % ln)
        lab = dict(LABEL.findall(labels))
        if labels and ",".join('%s="%s"' % kv for kv in LABEL.findall(labels)) != labels:
            raise ValueError("bad labels: %r" % ln)
        float(value)
        key = (name, frozenset(lab.items()))
        if key in out:
            raise ValueError("duplicate series: %r" % ln)
        out[key] = float(value)
    # histograms: cumulative buckets, +Inf equal to _count
    for name, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for (n, lab), v in out.items():
            if n == name + "_bucket":
                d = dict(lab)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append(
                    (float("inf") if le == "+Inf" else float(le), v))
        for lab, b in series.items():
            b.sort()
            vals = [v for _, v in b]
            if vals != sorted(vals):
                raise ValueError("buckets not cumulative: %s %s" % (name, dict(lab)))
            if b[-1][0] != float("inf"):
                raise ValueError("no +Inf bucket: " + name)
            if out.get((name + "_count", lab)) != b[-1][1]:
                raise ValueError("+Inf bucket != _count: %s %s" % (name, dict(lab)))
    return out


def value(m, name, **labels):
    """Sum of the series of name whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, lab), v in m.items() if n == name and want <= set(lab))


def promtool_check(text):
    """(ran, ok, output): promtool's verdict when it is installed."""
    tool = shutil.which("promtool")
    if not tool:
        return False, True, "promtool not installed"
    r = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    return True, r.returncode == 0, r.stdout + r.stderr


def scrape(port, path="/metrics", headers=()):
    r = get(port, path, headers)
    if r.status != 200:
        raise AssertionError("scrape %s: %d %r" % (path, r.status, r.body[:200]))
    return parse_metrics(r.body.decode()), r


def wait_for(fn, timeout=5):
    t_end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > t_end:
            return v
        time.sleep(0.05)
