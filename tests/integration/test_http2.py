#!/usr/bin/env python3
"""HTTP/2 against the real switchyard binary: prior knowledge, the h2c upgrade (and when it must
not happen), every demo route answering as over HTTP/1.1, curl, nghttp, h2load, limits and
floods with raw python3-h2 peers, graceful shutdown, RFC 8441 WebSockets over HTTP/2."""
import base64
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa
from harness import (Server, connect, eq, is_closed, main, ok, read_response, recv_all,  # noqa
                     request, test)
from h2client import H2, PREFACE, frame, goaway_code, read_frames  # noqa

import h2.errors  # noqa
import h2.events  # noqa

S = None

ENHANCE_YOUR_CALM = 0xb


def setup():
    global S
    S = Server()


def tool(name):
    return shutil.which(name) is not None


def run(cmd, timeout=60):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def root_file(name):
    with open(os.path.join(harness.ROOT, name), "rb") as f:
        return f.read()


def log_has(srv, text, timeout=3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(text in l for l in srv.log_lines):
            return True
        time.sleep(0.05)
    return False


# ---- prior knowledge: the same routes as over HTTP/1.1 ----


@test
def prior_knowledge_static_file():
    c = H2(S.port)
    r = c.get("/hello.txt")
    eq(r.status, 200, "status")
    eq(r.body, b"hello world\n", "body")
    eq(r.header("content-length"), "12", "content-length")
    ok(r.header("etag"), "etag")
    ok(r.header("date") and r.header("server") == "switchyard", "date/server")
    # no connection-specific fields on HTTP/2
    for n, _ in r.headers:
        ok(n not in ("connection", "keep-alive", "transfer-encoding"), "field %s" % n)
    c.close()


@test
def prior_knowledge_big_file_zero_copy():
    c = H2(S.port)
    r = c.get("/big.bin")
    eq(r.status, 200, "status")
    ok(r.body == root_file("big.bin"), "3 MiB body intact (%d bytes)" % len(r.body))
    c.close()


@test
def head_304_404_405_options():
    c = H2(S.port)
    r = c.wait(c.request("HEAD", "/big.bin"))
    eq(r.status, 200, "HEAD status")
    eq(r.body, b"", "HEAD has no body")
    eq(r.header("content-length"), str(len(root_file("big.bin"))), "HEAD length")
    etag = c.get("/hello.txt").header("etag")
    r = c.get("/hello.txt", headers=[("if-none-match", etag)])
    eq(r.status, 304, "conditional")
    eq(c.get("/no/such/file").status, 404, "404")
    r = c.get("/hello.txt", headers=[("cookie", "a=1"), ("cookie", "b=2"), ("cookie", "c=3")])
    eq(r.status, 200, "split cookies joined")
    r = c.wait(c.request("POST", "/stream", body=b"x"))
    eq(r.status, 405, "405 for a GET-only route")
    r = c.wait(c.request("OPTIONS", "*"))
    eq(r.status, 200, "OPTIONS *")
    ok("OPTIONS" in (r.header("allow") or ""), "Allow")
    c.close()


@test
def bodies_buffered_and_streamed():
    c = H2(S.port)
    data = os.urandom(300000)
    r = c.wait(c.request("POST", "/body", body=data))
    eq(r.status, 200, "echo status")
    ok(r.body == data, "echoed body (%d bytes)" % len(r.body))
    r = c.wait(c.request("POST", "/sum", body=b"abc"))
    eq(r.status, 200, "sum status")
    ok(b"bytes=3 adler32=024d0127" in r.body, "streamed body summed: %r" % r.body)
    r = c.wait(c.request("POST", "/sum"))  # no body at all
    ok(b"bytes=0 " in r.body, "empty streamed body: %r" % r.body)
    c.close()


@test
def streamed_response_and_async_handler():
    c = H2(S.port)
    r = c.get("/stream?5000000")
    eq(r.status, 200, "status")
    eq(len(r.body), 5000000, "streamed bytes")
    ok(r.body[:26] == b"abcdefghijklmnopqrstuvwxyz", "content")
    sids = [c.request("GET", "/delay?%d" % (50 + i * 10)) for i in range(5)]
    for i, sid in enumerate(sids):
        r = c.wait(sid)
        eq(r.status, 200, "delayed status")
        ok(b"delayed" in r.body, "delayed body")
    c.close()


@test
def many_streams_in_parallel():
    c = H2(S.port)
    sids = [c.request("GET", "/hello.txt") for _ in range(50)]
    for sid in sids:
        eq(c.wait(sid).body, b"hello world\n", "parallel body")
    c.close()


@test
def max_body_413():
    with Server("--max-body", "1000") as srv:
        c = H2(srv.port)
        r = c.wait(c.request("POST", "/body", body=b"x" * 5000))
        eq(r.status, 413, "over max_body (no content-length)")
        r = c.wait(c.request("POST", "/body", headers=[("content-length", "5000")],
                             body=b"y" * 5000))
        eq(r.status, 413, "announced over max_body")
        r = c.wait(c.request("POST", "/body", body=b"z" * 100))
        eq(r.body, b"z" * 100, "connection still serves after 413s")
        c.close()


@test
def client_reset_while_handler_holds_request():
    c = H2(S.port)
    sid = c.request("GET", "/delay?300")
    time.sleep(0.05)
    c.conn.reset_stream(sid)
    c.flush()
    sid2 = c.request("GET", "/stream?200000", )
    c.conn.reset_stream(sid2)  # reset a streamed response mid-way
    c.flush()
    time.sleep(0.5)  # the handler's final call comes after the reset (an orphan)
    eq(c.get("/hello.txt").status, 200, "connection fine after resets")
    c.close()
    # the whole connection goes while handlers hold requests (orphans again)
    c = H2(S.port)
    for _ in range(3):
        c.request("GET", "/delay?200")
    c.request("POST", "/sum", body=b"partial", end=False)
    time.sleep(0.05)
    c.sock.close()
    time.sleep(0.4)
    c = H2(S.port)
    eq(c.get("/hello.txt").status, 200, "server fine after connections died under handlers")
    c.close()


@test
def plain_connect_is_refused():
    c = H2(S.port)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.com:443")])
    c.expect(sid)
    c.flush()
    r = c.wait(sid)
    eq(r.status, 501, "plain CONNECT")
    c.close()


@test
def curl_prior_knowledge_and_upgrade():
    if not tool("curl"):
        return
    rc, out, _ = run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                      S.url("/hello.txt")])
    eq(out, b"hello world\n\n2", "curl prior knowledge")
    rc, out, _ = run(["curl", "-s", "--http2", "-w", "\n%{http_version}", S.url("/hello.txt")])
    eq(out, b"hello world\n\n2", "curl --http2 upgrades (101 then HTTP/2)")
    ok(log_has(S, "upgraded=h2c"), "the 101 is logged")
    ok(log_has(S, '"GET /hello.txt HTTP/2.0" 200') and log_has(S, "proto=h2c-upgrade"),
       "the request on stream 1 is logged as h2c-upgrade")
    rc, out, _ = run(["curl", "-s", "--http2", "-d", "posted body", "-w", "\n%{http_version}",
                      S.url("/body")])
    ok(out.startswith(b"posted body"), "curl --http2 POST: %r" % out)


@test
def nghttp_prior_knowledge_and_upgrade():
    if not tool("nghttp"):
        return
    rc, out, err = run(["nghttp", S.url("/hello.txt")])
    eq(out, b"hello world\n", "nghttp prior knowledge (%r)" % err)
    rc, out, err = run(["nghttp", "-u", S.url("/hello.txt")])
    eq(out, b"hello world\n", "nghttp -u (%r)" % err)
    body = os.path.join(harness.ROOT, "hello.txt")
    rc, out, err = run(["nghttp", "-u", "-d", body, S.url("/body")])
    eq(out, b"hello world\n", "nghttp -u with a body (%r)" % err)
    rc, out, err = run(["nghttp", "-d", body, S.url("/body")])
    eq(out, b"hello world\n", "nghttp POST (%r)" % err)


@test
def h2load_prior_knowledge():
    if not tool("h2load"):
        return
    rc, out, err = run(["h2load", "-n", "20000", "-c", "10", "-m", "10", S.url("/hello.txt")],
                       timeout=120)
    text = out.decode()
    ok("20000 succeeded, 0 failed, 0 errored" in text, "h2load: %s" % text[-600:])


# ---- h2c upgrade: when it must not happen ----


def settings_b64(payload=b""):
    return base64.urlsafe_b64encode(payload).rstrip(b"=")


GOOD = settings_b64(struct.pack(">HI", 3, 100) + struct.pack(">HI", 4, 65535))


def upgrade_req(extra, conn=b"Upgrade, HTTP2-Settings"):
    return (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: " + conn +
            b"\r\nUpgrade: h2c\r\n" + extra + b"\r\n")


@test
def h2c_upgrade_raw_then_frames():
    s = connect(S.port)
    s.sendall(upgrade_req(b"HTTP2-Settings: " + GOOD + b"\r\n"))
    r = read_response(s, head_only=True)
    eq(r.status, 101, "switched")
    eq(r.header("upgrade"), "h2c", "Upgrade: h2c")
    c = H2(S.port, sock=s, upgraded=True)
    c.expect(1)
    if s._sy_buf:
        c.feed(s._sy_buf)
    r = c.wait(1)
    eq(r.status, 200, "stream 1 answers the upgrading request")
    eq(r.body, b"hello world\n", "stream 1 body")
    eq(c.get("/hello.txt").body, b"hello world\n", "next stream")
    c.close()


@test
def h2c_not_switched_cases_are_http11():
    cases = {
        "HTTP2-Settings not in Connection": upgrade_req(b"HTTP2-Settings: " + GOOD + b"\r\n",
                                                        conn=b"Upgrade"),
        "two HTTP2-Settings": upgrade_req(b"HTTP2-Settings: " + GOOD + b"\r\nHTTP2-Settings: " +
                                          GOOD + b"\r\n"),
        "no HTTP2-Settings": upgrade_req(b""),
        "bad base64": upgrade_req(b"HTTP2-Settings: AAMAAABk*AAQ\r\n"),
        "padded base64": upgrade_req(b"HTTP2-Settings: AAMAAABkAAQAAP__=\r\n"),
        "invalid settings value": upgrade_req(b"HTTP2-Settings: " +
                                              settings_b64(struct.pack(">HI", 2, 7)) + b"\r\n"),
        "not a whole entry": upgrade_req(b"HTTP2-Settings: " + settings_b64(b"\x00\x03\x00") +
                                         b"\r\n"),
    }
    for name, raw in cases.items():
        rs = request(S.port, raw)
        ok(rs, "%s: an HTTP/1.1 response" % name)
        eq(rs[0].status, 200, name)
        eq(rs[0].body, b"hello world\n", name)
        ok(rs[0].header("upgrade") is None, "%s: no Upgrade in the answer" % name)


@test
def no_h2c_refuses_preface_and_ignores_upgrade():
    with Server("--no-h2c") as srv:
        data = b""
        s = connect(srv.port)
        s.sendall(PREFACE + frame(4, 0, 0))
        data = recv_all(s, 3)
        s.close()
        ok(not data.startswith(b"\x00"), "no HTTP/2 frames: %r" % data[:40])
        ok(data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5") or data == b"",
           "refused: %r" % data[:60])
        rs = request(srv.port, upgrade_req(b"HTTP2-Settings: " + GOOD + b"\r\n"))
        eq(rs[0].status, 200, "Upgrade: h2c ignored")
        rc = subprocess.run(["curl", "-s", "--http2", "-w", "%{http_version}", "-o", "/dev/null",
                             srv.url("/hello.txt")], stdout=subprocess.PIPE).stdout
        eq(rc, b"1.1", "curl --http2 stays on HTTP/1.1")


@test
def invalid_preface_gets_goaway_not_http1():
    s = connect(S.port)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(4, 0, 0))
    frames = read_frames(s, 3)
    s.close()
    ok(frames, "some frames")
    ok(goaway_code(frames) is not None, "GOAWAY: %r" % frames)
    s = connect(S.port)
    s.sendall(b"PRI / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(s, 3)
    ok(not data.startswith(b"HTTP/1.1"), "no HTTP/1 answer for PRI: %r" % data[:30])


@test
def access_log_names_the_protocol():
    c = H2(S.port)
    c.get("/hello.txt?pk")
    c.close()
    ok(log_has(S, '"GET /hello.txt?pk HTTP/2.0" 200') and log_has(S, "proto=h2c"),
       "h2c logged: %r" % S.log_lines[-3:])
    request(S.port, b"GET /hello.txt?one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ok(log_has(S, '"GET /hello.txt?one HTTP/1.1" 200'), "http/1.1 logged")
    ok(any("?one" in l and "proto=http/1.1" in l for l in S.log_lines), "proto=http/1.1")


# ---- limits and floods (raw frames) ----


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Raw:
    """A raw HTTP/2 client: preface and SETTINGS sent, frames built by hand."""

    def __init__(self, port, settings=b""):
        import hpack
        self.enc = hpack.Encoder()
        self.s = connect(port)
        self.s.sendall(PREFACE + frame(4, 0, 0, settings))
        self.next_id = 1

    def headers(self, path, method="GET", end_stream=True, extra=()):
        sid = self.next_id
        self.next_id += 2
        block = self.enc.encode([(":method", method), (":path", path), (":scheme", "http"),
                                 (":authority", "x")] + list(extra))
        return sid, frame(1, 4 | (1 if end_stream else 0), sid, block)

    def send(self, data):
        self.s.sendall(data)

    def goaway(self, timeout=10):
        frames = read_frames(self.s, timeout, until_type=7)
        return goaway_code(frames), frames


@test
def max_concurrent_streams_100():
    r = Raw(S.port)
    frames = read_frames(r.s, 2, until_type=4)
    st = [p for t, fl, sid, p in frames if t == 4 and not fl & 1][0]
    settings = {struct.unpack(">H", st[i:i + 2])[0]: struct.unpack(">I", st[i + 2:i + 6])[0]
                for i in range(0, len(st), 6)}
    eq(settings.get(3), 100, "SETTINGS_MAX_CONCURRENT_STREAMS")
    ok(settings.get(6), "SETTINGS_MAX_HEADER_LIST_SIZE advertised")
    r.send(frame(4, 1, 0))  # ACK theirs
    out = b""
    for _ in range(101):
        out += r.headers("/delay?800")[1]
    r.send(out)
    frames = read_frames(r.s, 3)
    resets = [(sid, int.from_bytes(p, "big")) for t, fl, sid, p in frames if t == 3]
    goaways = [p for t, fl, sid, p in frames if t == 7]
    # The 101st stream is refused: nghttp2 treats it as a connection error (RFC 9113 §5.1.2
    # allows PROTOCOL_ERROR or REFUSED_STREAM); the first 100 are within last_stream_id.
    if goaways:
        eq(int.from_bytes(goaways[0][4:8], "big"), 1, "GOAWAY PROTOCOL_ERROR")
        eq(int.from_bytes(goaways[0][:4], "big"), 199, "the first 100 streams are in")
    else:
        ok(resets and resets[0][0] == 201 and resets[0][1] == 7, "REFUSED_STREAM: %r" % resets)
    r.s.close()


@test
def header_list_too_large_431():
    c = H2(S.port)
    hs = [("x-big-%d" % i, "v" * 7000) for i in range(10)]
    r = c.get("/hello.txt", headers=hs)
    eq(r.status, 431, "header list over SY_OPT_MAX_HEAD")
    eq(c.get("/hello.txt").status, 200, "the connection goes on")
    c.close()


@test
def rapid_reset_goaway():
    r = Raw(S.port)
    out = b""
    for i in range(300):
        sid, f = r.headers("/delay?1000")
        out += f + frame(3, 0, sid, struct.pack(">I", 8))  # RST_STREAM CANCEL
    try:
        r.send(out)
    except OSError:
        pass
    code, frames = r.goaway()
    eq(code, ENHANCE_YOUR_CALM, "GOAWAY ENHANCE_YOUR_CALM after a rapid-reset burst")
    ok(is_closed(r.s, 5), "closed")


@test
def continuation_flood_goaway():
    r = Raw(S.port)
    block = r.enc.encode([(":method", "GET"), (":path", "/"), (":scheme", "http"),
                          (":authority", "x"), ("x-a", "b" * 3000)])
    out = frame(1, 1, 1, block[:10])  # HEADERS without END_HEADERS
    for i in range(10, len(block), 10):
        out += frame(9, 0, 1, block[i:i + 10])
    try:
        r.send(out)
    except OSError:
        pass
    code, frames = r.goaway()
    ok(code is not None and code != 0, "GOAWAY with an error: %r" % code)
    ok(is_closed(r.s, 5), "closed")


@test
def ping_settings_empty_data_floods():
    for name, build in (
            ("PING", lambda r: b"".join(frame(6, 0, 0, struct.pack(">Q", i)) for i in range(150))),
            ("SETTINGS", lambda r: b"".join(frame(4, 0, 0) for i in range(150))),
            ("empty DATA", lambda r: r.headers("/sum", "POST", end_stream=False)[1] +
             b"".join(frame(0, 0, 1) for i in range(150)))):
        r = Raw(S.port)
        try:
            r.send(build(r))
        except OSError:
            pass
        code, frames = r.goaway()
        eq(code, ENHANCE_YOUR_CALM, "%s flood" % name)
        r.s.close()


@test
def closed_window_does_not_pin_memory():
    with Server() as srv:
        r = Raw(srv.port, settings=struct.pack(">HI", 4, 0))  # INITIAL_WINDOW_SIZE 0
        read_frames(r.s, 1, until_type=4)
        r.send(frame(4, 1, 0))
        before = rss_kib(srv.proc.pid)
        out = b""
        for i in range(20):
            out += r.headers("/stream?200000000")[1]
        out += r.headers("/big.bin")[1]
        r.send(out)
        time.sleep(1.5)
        grown = rss_kib(srv.proc.pid) - before
        ok(grown < 48 * 1024, "20 x 200 MB responses into a closed window cost %d KiB" % grown)
        r.send(frame(6, 0, 0, b"12345678"))
        frames = read_frames(r.s, 3, until_type=6)
        ok(any(t == 6 and fl & 1 for t, fl, sid, p in frames), "still answering PING")
        r.s.close()


@test
def idle_connection_goaway():
    with Server("--keepalive-timeout", "500") as srv:
        c = H2(srv.port)
        eq(c.get("/hello.txt").status, 200, "served")
        frames = read_frames(c.sock, 5, until_type=7)
        eq(goaway_code(frames), 0, "idle: GOAWAY NO_ERROR")
        ok(is_closed(c.sock, 5), "then closed")


@test
def stalled_body_is_cut():
    with Server("--write-timeout", "700") as srv:
        c = H2(srv.port)
        sid = c.request("POST", "/body", body=b"part", end=False)
        t0 = time.time()
        ok(is_closed(c.sock, 8), "a body that never ends is cut")
        ok(time.time() - t0 < 6, "within a couple of write timeouts")


# ---- RFC 8441: WebSocket over HTTP/2 ----


def ws_frame(opcode, payload, fin=True, rsv1=False):
    mask = os.urandom(4)
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(buf):
    """Server frames from buf: ([(fin, rsv1, opcode, payload)], rest)."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        n = b1 & 0x7f
        i = 2
        if n == 126:
            if len(buf) < 4:
                break
            n = struct.unpack(">H", buf[2:4])[0]
            i = 4
        elif n == 127:
            if len(buf) < 10:
                break
            n = struct.unpack(">Q", buf[2:10])[0]
            i = 10
        if len(buf) < i + n:
            break
        out.append((bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0f, buf[i:i + n]))
        buf = buf[i + n:]
    return out, buf


class WsOverH2:
    def __init__(self, port, path="/echo", extra=()):
        self.c = H2(port)
        deadline = time.time() + 5
        while 8 not in self.c.remote_settings and time.time() < deadline:
            self.c.pump(0.5)
        self.c.conn.local_settings.acknowledge()  # nothing to wait for
        self.sid = self.c.conn.get_next_available_stream_id()
        hs = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
              (":path", path), (":authority", "127.0.0.1"), ("sec-websocket-version", "13")]
        self.c.conn.send_headers(self.sid, hs + list(extra))
        self.r = self.c.expect(self.sid)
        self.c.flush()
        while self.r.status is None and self.r.reset is None and not self.c.closed:
            if not self.c.pump(5):
                break
        self.buf = b""
        self.inflater = None

    def send(self, opcode, payload, deflate=False):
        if deflate:
            import zlib
            co = zlib.compressobj(wbits=-15)
            payload = co.compress(payload) + co.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]
        self.c.send_body(self.sid, ws_frame(opcode, payload, rsv1=deflate), end=False)

    def recv(self, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.buf += self.r.body
            self.r.body = b""
            frames, self.buf = ws_parse(self.buf)
            if frames:
                fin, rsv1, op, payload = frames[0]
                # push back the others
                rest = b"".join(self._raw(f) for f in frames[1:])
                self.buf = rest + self.buf
                if rsv1:
                    import zlib
                    if self.inflater is None:
                        self.inflater = zlib.decompressobj(wbits=-15)
                    payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
                return op, payload
            if not self.c.pump(max(0.05, deadline - time.time())) and self.c.closed:
                break
        raise AssertionError("no WebSocket frame (reset=%r)" % self.r.reset)

    @staticmethod
    def _raw(f):
        fin, rsv1, op, p = f
        n = len(p)
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
        if n < 126:
            return bytes([b0, n]) + p
        if n < 65536:
            return bytes([b0, 126]) + struct.pack(">H", n) + p
        return bytes([b0, 127]) + struct.pack(">Q", n) + p


@test
def websocket_over_h2_echo():
    w = WsOverH2(S.port)
    eq(w.c.remote_settings.get(8), 1, "SETTINGS_ENABLE_CONNECT_PROTOCOL advertised")
    eq(w.r.status, 200, "extended CONNECT answered 200")
    ok(w.r.header("sec-websocket-accept") is None, "no Sec-WebSocket-Accept over HTTP/2")
    w.send(1, b"hello over h2")
    eq(w.recv(), (1, b"hello over h2"), "text echo")
    big = os.urandom(200000)
    w.send(2, big)
    op, got = w.recv(10)
    eq(op, 2, "binary opcode")
    ok(got == big, "200 KB binary echo through flow control (%d bytes)" % len(got))
    w.send(9, b"ping!")
    eq(w.recv(), (10, b"ping!"), "pong")
    w.send(8, struct.pack(">H", 1000) + b"bye")
    op, payload = w.recv()
    eq(op, 8, "close echoed")
    eq(struct.unpack(">H", payload[:2])[0], 1000, "close code")
    w.c.conn.end_stream(w.sid)
    w.c.flush()
    w.c.wait(w.sid, 5)
    ok(w.r.ended or w.r.reset is not None, "the stream ended")
    eq(w.c.get("/hello.txt").status, 200, "the connection goes on after the WebSocket")
    w.c.close()
    ok(log_has(S, "proto=ws-over-h2") and log_has(S, "upgraded=websocket"),
       "logged as ws-over-h2: %r" % S.log_lines[-3:])


@test
def websocket_over_h2_permessage_deflate():
    w = WsOverH2(S.port, extra=[("sec-websocket-extensions", "permessage-deflate")])
    eq(w.r.status, 200, "status")
    ok("permessage-deflate" in (w.r.header("sec-websocket-extensions") or ""),
       "deflate negotiated: %r" % w.r.headers)
    msg = b"compress me " * 200
    w.send(1, msg, deflate=True)
    eq(w.recv(), (1, msg), "compressed echo")
    w.send(1, b"short", deflate=False)
    eq(w.recv(), (1, b"short"), "uncompressed message on a deflate stream")
    w.c.close()


@test
def websocket_over_h2_refusals():
    w = WsOverH2(S.port, path="/no-such-place")  # the static prefix route: no WebSocket
    eq(w.r.status, 501, "a path without WebSocket")
    w.c.close()
    w = WsOverH2(S.port, path="/hello.txt")
    eq(w.r.status, 501, "a route without WebSocket")
    w.c.close()
    c = H2(S.port)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "smtp"), (":scheme", "http"),
                              (":path", "/echo"), (":authority", "x")], end_stream=True)
    c.expect(sid)
    c.flush()
    r = c.wait(sid)
    eq(r.status, 501, "unknown :protocol")
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                              (":scheme", "http"), (":path", "/echo"), (":authority", "x"),
                              ("sec-websocket-version", "8")], end_stream=True)
    c.expect(sid)
    c.flush()
    r = c.wait(sid)
    eq(r.status, 426, "wrong WebSocket version")
    eq(c.get("/hello.txt").status, 200, "connection fine")
    c.close()


# ---- TLS: h2 by ALPN ----


class TlsServer(Server):
    def __init__(self, *extra):
        cmd = [harness.ARGS.bin, "serve", "--workers", "2", "--root", harness.ROOT,
               "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-self-signed"]
        Server.__init__(self, cmd=cmd + list(extra), listen=[None, None])
        self.tls_port = self.ports[1]


def tls_sock(port, alpn):
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    return s


@test
def tls_alpn_h2_and_http11():
    with TlsServer() as srv:
        url = "https://127.0.0.1:%d/hello.txt" % srv.tls_port
        rc, out, err = run(["curl", "-sk", "-w", "\n%{http_version}", url])
        eq(out, b"hello world\n\n2", "curl https: h2 by ALPN (%r)" % err)
        rc, out, err = run(["curl", "-sk", "--http1.1", "-w", "\n%{http_version}", url])
        eq(out, b"hello world\n\n1.1", "curl --http1.1 over TLS")
        ok(log_has(srv, "proto=h2") and log_has(srv, '"GET /hello.txt HTTP/2.0" 200'),
           "logged as h2: %r" % srv.log_lines[-3:])
        s = tls_sock(srv.tls_port, ["h2"])
        eq(s.selected_alpn_protocol(), "h2", "ALPN h2")
        c = H2(srv.tls_port, sock=s)
        r = c.get("/big.bin")
        ok(r.body == root_file("big.bin"), "big file over TLS h2 (%d bytes)" % len(r.body))
        r = c.wait(c.request("POST", "/body", body=b"over tls"))
        eq(r.body, b"over tls", "body over TLS h2")
        c.close()
        # h2c is never switched to on a TLS connection: served as HTTP/1.1
        s = tls_sock(srv.tls_port, ["http/1.1"])
        s.sendall(upgrade_req(b"HTTP2-Settings: " + GOOD + b"\r\n"))
        data = recv_all(s, 3)
        ok(data.startswith(b"HTTP/1.1 200"), "Upgrade: h2c over TLS is HTTP/1.1: %r" % data[:80])
        ok(b"hello world" in data, "body")
        if tool("h2load"):
            rc, out, err = run(["h2load", "-n", "2000", "-c", "4", "-m", "10",
                                "https://127.0.0.1:%d/hello.txt" % srv.tls_port], timeout=120)
            ok("2000 succeeded, 0 failed, 0 errored" in out.decode(),
               "h2load over TLS: %s" % out.decode()[-500:])


@test
def graceful_shutdown_finishes_streams():
    srv = Server("--drain-timeout", "5000")
    c = H2(srv.port)
    eq(c.get("/hello.txt").status, 200, "served")
    sid = c.request("GET", "/delay?700")
    time.sleep(0.1)
    srv.proc.send_signal(__import__("signal").SIGTERM)
    # python-h2 stops at GOAWAY; the frames that follow are read raw.
    frames = read_frames(c.sock, 10)
    kinds = [(t, sid_) for t, fl, sid_, p in frames]
    ok((7, 0) in kinds, "GOAWAY: %r" % kinds)
    ga = [p for t, fl, s_, p in frames if t == 7][0]
    eq(int.from_bytes(ga[4:8], "big"), 0, "GOAWAY NO_ERROR")
    ok(int.from_bytes(ga[:4], "big") >= sid, "last stream id covers the in-flight stream")
    ok((1, sid) in kinds, "HEADERS of the in-flight stream after the GOAWAY: %r" % kinds)
    data = b"".join(p for t, fl, s_, p in frames if t == 0 and s_ == sid)
    ok(b"delayed 700" in data, "its body: %r" % data)
    ok(any(t == 0 and s_ == sid and fl & 1 for t, fl, s_, p in frames), "END_STREAM")
    ok(is_closed(c.sock, 5), "the connection closed after the last stream")
    srv.__exit__(None, None, None)


@test
def zz_server_exits_clean():
    """Last: the shared server stops cleanly (sanitizer builds check for leaks here)."""
    S.__exit__(None, None, None)


if __name__ == "__main__":
    main(setup)
