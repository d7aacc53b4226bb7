#!/usr/bin/env python3
"""HTTP/2 conformance of `switchyard serve`, modelled on h2spec's sections (RFC 9113, RFC 7540
where h2spec cites it, RFC 7541 for HPACK): every case runs over cleartext prior knowledge and
over TLS (ALPN h2), on raw frames built here (python3-h2 refuses to send most of them).

What a case expects is the reaction the RFC requires:
  connection error  GOAWAY with the code, then the server closes the connection;
  stream error      RST_STREAM with the code on that stream, and the connection still answers
                    a PING (a GOAWAY with the same code is accepted too: RFC 9113 §5.4.1 lets an
                    endpoint treat a stream error as a connection error; the summary counts
                    those as "escalated");
  accepted          the request is answered / a PING sent after it is acknowledged.
A summary per section and transport is printed at the end."""
import atexit
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa
from harness import Server, connect, main, test  # noqa

import hpack  # noqa  (comes with python3-h2)
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH  # noqa

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = range(10)
CODE_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
              4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
              7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 0xb: "ENHANCE_YOUR_CALM"}
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
              "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]

S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)
S_ENABLE_CONNECT_PROTOCOL = 8

WAIT = 4  # seconds a case waits for the reaction it expects (only failing cases wait it out)
PING_DATA = b"h2conf!!"

SRV = None


# ---- frames ----


def frame(ftype, flags, sid, payload=b"", length=None):
    ln = len(payload) if length is None else length
    return struct.pack(">I", ln)[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings(*pairs, flags=0, sid=0):
    return frame(SETTINGS, flags, sid, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def ping(data=PING_DATA, flags=0, sid=0):
    return frame(PING, flags, sid, data)


def rst(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def priority(sid, dep=0, weight=15, exclusive=False):
    return frame(PRIORITY, 0, sid, struct.pack(">IB", dep | (0x80000000 if exclusive else 0),
                                               weight))


def goaway(last=0, code=NO_ERROR, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + debug)


def data(sid, payload, end=False, pad=None):
    flags = END_STREAM if end else 0
    if pad is not None:
        flags |= PADDED
        payload = bytes([pad]) + payload + b"\0" * pad
    return frame(DATA, flags, sid, payload)


def headers(sid, block, end_stream=True, end_headers=True, pad=None, prio=None):
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    payload = block
    if prio is not None:
        flags |= PRIO_FLAG
        dep, weight, excl = prio
        payload = struct.pack(">IB", dep | (0x80000000 if excl else 0), weight) + payload
    if pad is not None:
        flags |= PADDED
        payload = bytes([pad]) + payload + b"\0" * pad
    return frame(HEADERS, flags, sid, payload)


def continuation(sid, block, end_headers=True):
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, sid, block)


# ---- HPACK by hand (RFC 7541) for what an encoder would never produce ----


def hint(value, prefix_bits, first=0):
    """An HPACK integer with an N-bit prefix; first holds the representation's flag bits."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hstr(s, huff=False):
    if isinstance(s, str):
        s = s.encode()
    if huff:
        s = huffman(s)
    return hint(len(s), 7, 0x80 if huff else 0) + s


def lit(name, value, indexing=False):
    """Literal field with a new name: with incremental indexing (0x40) or without (0x00)."""
    return bytes([0x40 if indexing else 0x00]) + hstr(name) + hstr(value)


def huffman(s, pad_bit=1, extra=b""):
    """Huffman-encode s; pad with 1 bits (the EOS prefix) or, for a broken string, 0 bits."""
    acc = nbits = 0
    out = bytearray()
    for ch in s:
        acc = (acc << REQUEST_CODES_LENGTH[ch]) | REQUEST_CODES[ch]
        nbits += REQUEST_CODES_LENGTH[ch]
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xff)
    if nbits:
        pad = 8 - nbits
        out.append(((acc << pad) | ((1 << pad) - 1 if pad_bit else 0)) & 0xff)
    return bytes(out) + extra


# ---- a raw HTTP/2 client connection ----


class Conn:
    def __init__(self, tls, port):
        self.tls = tls
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2", "ALPN did not select h2"
        else:
            self.sock = connect(port, WAIT)
        self.buf = b""
        self.eof = False
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.block = b""
        self.fields = {}  # stream -> the fields of its last complete header block
        self.streams = {}  # stream -> {"status", "body", "ended", "reset"} as frames pass
        self.server_settings = {}
        self.seen = []  # frames read, for failure messages

    # -- io --
    def send(self, *parts):
        self.sock.sendall(b"".join(parts))

    def next(self, deadline):
        """The next frame (type, flags, sid, payload), "EOF", or None at the deadline."""
        while True:
            if len(self.buf) >= 9:
                ln = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + ln:
                    f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") &
                         0x7fffffff, self.buf[9:9 + ln])
                    self.buf = self.buf[9 + ln:]
                    self.seen.append(describe(f))
                    self.decode(f)
                    return f
            if self.eof:
                return "EOF"
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return None
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                b = b""
            if not b:
                self.eof = True
            self.buf += b

    def decode(self, f):
        """Every header block the server sends goes through the one HPACK decoder; what
        arrives for each stream is noted for expect_response."""
        t, fl, sid, p = f
        if sid:
            r = self.streams.setdefault(sid, {"status": None, "body": b"", "ended": False,
                                              "reset": None})
            if t == DATA:
                r["body"] += p[1:len(p) - p[0]] if fl & PADDED else p
            elif t == RST_STREAM and len(p) == 4:
                r["reset"] = int.from_bytes(p, "big")
            if t in (DATA, HEADERS) and fl & END_STREAM:
                r["ended"] = True
        if t == HEADERS:
            if fl & PADDED:
                p = p[1:len(p) - p[0]]
            if fl & PRIO_FLAG:
                p = p[5:]
            self.block = p
        elif t == CONTINUATION:
            self.block += p
        else:
            return
        if fl & END_HEADERS:
            self.fields[sid] = self.dec.decode(self.block)
            self.block = b""
            st = dict(self.fields[sid]).get(":status")
            if st and self.streams[sid]["status"] is None:
                self.streams[sid]["status"] = int(st)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- steps --
    def handshake(self, *extra_settings):
        """Preface and SETTINGS both ways, both acknowledged (as h2spec's Handshake)."""
        self.send(PREFACE, settings(*extra_settings))
        deadline = time.time() + WAIT
        got_settings = got_ack = False
        while not (got_settings and got_ack):
            f = self.next(deadline)
            if f is None or f == "EOF":
                fail("handshake: %s (seen %s)" % ("timeout" if f is None else "closed",
                                                  self.seen))
            t, fl, sid, p = f
            if t == SETTINGS and fl & ACK:
                got_ack = True
            elif t == SETTINGS:
                for i in range(0, len(p), 6):
                    k, v = struct.unpack(">HI", p[i:i + 6])
                    self.server_settings[k] = v
                got_settings = True
                self.send(settings(flags=ACK))
        self.seen = []

    def req(self, path="/", method="GET", extra=(), huff=True):
        hs = [(":method", method), (":scheme", "https" if self.tls else "http"),
              (":path", path), (":authority", "127.0.0.1")] + list(extra)
        return self.enc.encode(hs, huffman=huff)

    def pseudo(self, path="/", method="GET"):
        """The request's pseudo-header fields as separate (name, value) pairs."""
        return [(":method", method), (":scheme", "https" if self.tls else "http"),
                (":path", path), (":authority", "127.0.0.1")]


def describe(f):
    t, fl, sid, p = f
    name = TYPE_NAMES[t] if t < len(TYPE_NAMES) else "type%d" % t
    extra = ""
    if t == GOAWAY and len(p) >= 8:
        extra = " %s %r" % (CODE_NAMES.get(int.from_bytes(p[4:8], "big"), "?"), p[8:60])
    elif t == RST_STREAM and len(p) >= 4:
        extra = " " + CODE_NAMES.get(int.from_bytes(p[:4], "big"), "?")
    return "%s(sid=%d,fl=0x%x,len=%d%s)" % (name, sid, fl, len(p), extra)


class CaseFail(Exception):
    pass


def fail(msg):
    raise CaseFail(msg)


def names(codes):
    return "/".join(CODE_NAMES.get(c, str(c)) for c in codes)


# ---- expectations ----

ESCALATED = []  # cases where a stream error came as a connection error
ESCALATED_NOW = [False]


def wait_eof(c, deadline, what):
    while True:
        f = c.next(deadline)
        if f == "EOF":
            return
        if f is None:
            fail("%s, but the connection stayed open (seen %s)" % (what, c.seen))


def expect_conn_error(c, *codes):
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f is None:
            fail("expected GOAWAY %s: timed out (seen %s)" % (names(codes), c.seen))
        if f == "EOF":
            fail("expected GOAWAY %s: closed without one (seen %s)" % (names(codes), c.seen))
        t, fl, sid, p = f
        if t == GOAWAY:
            code = int.from_bytes(p[4:8], "big")
            if code not in codes:
                fail("expected GOAWAY %s, got %s" % (names(codes), describe(f)))
            wait_eof(c, deadline, "GOAWAY sent")
            return "conn"


def alive(c, what):
    """The connection still works: a PING is acknowledged."""
    c.send(ping(b"alive?!!"))
    expect_ping_ack(c, b"alive?!!", what)


def expect_stream_error(c, stream, *codes):
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f is None:
            fail("expected RST_STREAM %s on %d: timed out (seen %s)" % (names(codes), stream,
                                                                       c.seen))
        if f == "EOF":
            fail("expected RST_STREAM %s on %d: closed (seen %s)" % (names(codes), stream,
                                                                    c.seen))
        t, fl, sid, p = f
        if t == RST_STREAM and sid == stream:
            code = int.from_bytes(p[:4], "big")
            if code not in codes:
                fail("expected RST_STREAM %s, got %s" % (names(codes), describe(f)))
            alive(c, "after the stream error")
            return "stream"
        if t == GOAWAY:
            code = int.from_bytes(p[4:8], "big")
            if code not in codes:
                fail("expected RST_STREAM %s on %d, got %s" % (names(codes), stream,
                                                               describe(f)))
            wait_eof(c, deadline, "GOAWAY sent")
            ESCALATED_NOW[0] = True
            return "conn"


def expect_ping_ack(c, payload=PING_DATA, what=""):
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f is None or f == "EOF":
            fail("expected PING ACK %s: %s (seen %s)" % (what, "timeout" if f is None else
                                                         "closed", c.seen))
        t, fl, sid, p = f
        if t == GOAWAY:
            fail("expected PING ACK %s, got %s" % (what, describe(f)))
        if t == PING and fl & ACK:
            if p != payload:
                fail("PING ACK with %r, expected %r" % (p, payload))
            return "ok"


def expect_response(c, stream, want_end=True, status=None):
    """The response on stream: its HEADERS (and, with want_end, its END_STREAM). Returns
    (status, body)."""
    deadline = time.time() + WAIT
    while True:
        r = c.streams.get(stream)
        if r and r.get("reset") is not None:
            fail("expected a response on %d, got RST_STREAM %s" % (
                stream, CODE_NAMES.get(r["reset"], r["reset"])))
        if r and r.get("status") is not None and (r.get("ended") or not want_end):
            if status is not None and r["status"] != status:
                fail("status %d, expected %d" % (r["status"], status))
            return r["status"], r["body"]
        f = c.next(deadline)
        if f is None or f == "EOF":
            fail("expected a response on %d: %s (seen %s)" % (stream, "timeout" if f is None
                                                               else "closed", c.seen))
        if f[0] == GOAWAY:
            fail("expected a response on %d, got %s" % (stream, describe(f)))


def expect_no_goaway(c):
    """Nothing fatal: a PING sent now is acknowledged."""
    c.send(ping())
    return expect_ping_ack(c)


# ---- the cases ----

CASES = []


def case(section, desc):
    def deco(fn):
        CASES.append((section, desc, fn))
        return fn
    return deco


# 3.5 HTTP/2 Connection Preface


@case("3.5", "the server's first frame is SETTINGS")
def c_preface_ok(c):
    c.send(PREFACE, settings())
    f = c.next(time.time() + WAIT)
    if f in (None, "EOF") or f[0] != SETTINGS or f[1] & ACK:
        fail("first frame %r" % (f,))


@case("3.5", "invalid connection preface -> PROTOCOL_ERROR")
def c_preface_bad(c):
    # h2spec's own case: on cleartext too, a first line naming no HTTP version is a broken
    # HTTP/2 preface, refused with GOAWAY (see first_line_verdict in src/server/server.c)
    c.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("3.5", "a preface that starts right and goes wrong -> PROTOCOL_ERROR")
def c_preface_bad_tail(c):
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("3.5", "preface not followed by SETTINGS -> PROTOCOL_ERROR")
def c_preface_no_settings(c):
    c.send(PREFACE, ping())
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("3.5", "cleartext: a malformed HTTP/1.1 request line stays HTTP/1.1 (400, then closed)")
def c_preface_http1(c):
    if c.tls:
        c.send(b"GET / HTTP/1.1 junk\r\n\r\n")
        return expect_conn_error(c, PROTOCOL_ERROR)
    c.send(b"GET / HTTP/1.1 junk\r\n\r\n")
    deadline = time.time() + WAIT
    while not c.eof and time.time() < deadline:
        c.next(deadline)
    if not c.eof:
        fail("still open")
    if not c.buf.startswith(b"HTTP/1.1 400"):
        fail("answer %r" % c.buf[:60])


# 4.1 Frame Format


@case("4.1", "unknown frame type is ignored")
def c_unknown_type(c):
    c.handshake()
    c.send(frame(0x16, 0, 0, b"\0" * 8), frame(0xff, 0xff, 1, b"x" * 20), ping())
    return expect_ping_ack(c)


@case("4.1", "undefined flags are ignored")
def c_undefined_flags(c):
    c.handshake()
    c.send(ping(flags=0xfe))
    return expect_ping_ack(c)


@case("4.1", "the reserved bit is ignored")
def c_reserved_bit(c):
    c.handshake()
    c.send(frame(PING, 0, 0x80000000, PING_DATA))
    expect_ping_ack(c)
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 0x80000001, c.req()))
    expect_response(c, 1)


# 4.2 Frame Size


@case("4.2", "DATA of 2^14 octets is accepted")
def c_data_16k(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False), data(1, b"a" * 16384, True))
    st, body = expect_response(c, 1, status=200)
    if len(body) != 16384:
        fail("echoed %d bytes" % len(body))


@case("4.2", "DATA over SETTINGS_MAX_FRAME_SIZE -> FRAME_SIZE_ERROR")
def c_data_too_big(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False), data(1, b"a" * 16385, True))
    return expect_stream_error(c, 1, FRAME_SIZE_ERROR)


@case("4.2", "HEADERS over SETTINGS_MAX_FRAME_SIZE -> FRAME_SIZE_ERROR")
def c_headers_too_big(c):
    c.handshake()
    block = c.req(extra=[("x-dummy%d" % i, "x" * 4000) for i in range(5)], huff=False)
    c.send(headers(1, block))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


@case("4.2", "unknown frame type over SETTINGS_MAX_FRAME_SIZE -> FRAME_SIZE_ERROR")
def c_unknown_too_big(c):
    c.handshake()
    c.send(frame(0x20, 0, 0, b"u" * 16385))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


@case("4.2", "PING over SETTINGS_MAX_FRAME_SIZE -> FRAME_SIZE_ERROR")
def c_ping_too_big(c):
    c.handshake()
    c.send(frame(PING, 0, 0, b"p" * 16400))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


# 4.3 Header Compression and Decompression


@case("4.3", "invalid header block fragment -> COMPRESSION_ERROR")
def c_bad_block(c):
    c.handshake()
    c.send(headers(1, c.req() + b"\x40\x85"))  # a literal cut after its name length
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("4.3", "PRIORITY inside a header block -> PROTOCOL_ERROR")
def c_priority_in_block(c):
    c.handshake()
    block = c.req()
    c.send(headers(1, block[:5], end_headers=False), priority(1), continuation(1, block[5:]))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("4.3", "HEADERS of another stream inside a header block -> PROTOCOL_ERROR")
def c_headers_in_block(c):
    c.handshake()
    block = c.req()
    c.send(headers(1, block[:5], end_headers=False), headers(3, block))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("4.3", "a refused header block still updates the HPACK table")
def c_hpack_after_stream_error(c):
    c.handshake()
    # stream 1 is malformed (uppercase name) but adds "x-kept: 1" to the dynamic table
    block = plain_req(c) + lit("x-kept", "1", indexing=True) + lit("X-Bad", "1")
    c.send(headers(1, block))
    expect_stream_error(c, 1, PROTOCOL_ERROR)
    # stream 3 refers to it by index (62 = the newest dynamic entry)
    c.send(headers(3, plain_req(c) + b"\xbe"))
    expect_response(c, 3)


# 5.1 Stream States


@case("5.1", "idle: DATA -> PROTOCOL_ERROR")
def c_idle_data(c):
    c.handshake()
    c.send(data(1, b"x", True))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1", "idle: RST_STREAM -> PROTOCOL_ERROR")
def c_idle_rst(c):
    c.handshake()
    c.send(rst(1))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1", "idle: WINDOW_UPDATE -> PROTOCOL_ERROR")
def c_idle_wu(c):
    c.handshake()
    c.send(window_update(1, 100))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1", "idle: CONTINUATION -> PROTOCOL_ERROR")
def c_idle_cont(c):
    c.handshake()
    c.send(continuation(1, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1", "idle: PRIORITY is accepted")
def c_idle_priority(c):
    c.handshake()
    c.send(priority(3, 0, 200), ping())
    expect_ping_ack(c)
    c.send(headers(1, c.req()))
    expect_response(c, 1)


def half_closed_remote(c):
    """Stream 1 half-closed (remote): the request ended, the answer comes later."""
    c.handshake()
    c.send(headers(1, c.req("/delay?400")))
    return 1


@case("5.1", "half-closed (remote): DATA -> STREAM_CLOSED")
def c_hcr_data(c):
    sid = half_closed_remote(c)
    c.send(data(sid, b"x", True))
    return expect_stream_error(c, sid, STREAM_CLOSED)


@case("5.1", "half-closed (remote): HEADERS -> STREAM_CLOSED")
def c_hcr_headers(c):
    sid = half_closed_remote(c)
    c.send(headers(sid, c.req()))
    return expect_stream_error(c, sid, STREAM_CLOSED)


@case("5.1", "half-closed (remote): CONTINUATION -> STREAM_CLOSED/PROTOCOL_ERROR")
def c_hcr_cont(c):
    sid = half_closed_remote(c)
    c.send(continuation(sid, c.req()))
    return expect_stream_error(c, sid, STREAM_CLOSED, PROTOCOL_ERROR)


@case("5.1", "half-closed (remote): WINDOW_UPDATE, PRIORITY are accepted")
def c_hcr_wu_prio(c):
    sid = half_closed_remote(c)
    c.send(window_update(sid, 1000), priority(sid, 0, 100))
    expect_response(c, sid, status=200)


@case("5.1", "half-closed (remote): RST_STREAM is accepted")
def c_hcr_rst(c):
    sid = half_closed_remote(c)
    c.send(rst(sid))
    expect_no_goaway(c)
    c.send(headers(3, c.req()))
    expect_response(c, 3)


def closed_by_client_reset(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False), rst(1, CANCEL))
    return 1


@case("5.1", "closed (client RST_STREAM): DATA -> STREAM_CLOSED")
def c_rst_data(c):
    sid = closed_by_client_reset(c)
    c.send(data(sid, b"x", True))
    return expect_stream_error(c, sid, STREAM_CLOSED)


@case("5.1", "closed (client RST_STREAM): HEADERS -> STREAM_CLOSED")
def c_rst_headers(c):
    sid = closed_by_client_reset(c)
    c.send(headers(sid, c.req()))
    return expect_stream_error(c, sid, STREAM_CLOSED)


@case("5.1", "closed (client RST_STREAM): CONTINUATION -> STREAM_CLOSED/PROTOCOL_ERROR")
def c_rst_cont(c):
    sid = closed_by_client_reset(c)
    c.send(continuation(sid, c.req()))
    return expect_stream_error(c, sid, STREAM_CLOSED, PROTOCOL_ERROR)


@case("5.1", "closed (client RST_STREAM): PRIORITY is accepted")
def c_rst_priority(c):
    sid = closed_by_client_reset(c)
    c.send(priority(sid, 0, 1))
    return expect_no_goaway(c)


def closed_normally(c):
    c.handshake()
    c.send(headers(1, c.req()))
    expect_response(c, 1)
    return 1


@case("5.1", "closed (both END_STREAM): DATA -> connection error STREAM_CLOSED")
def c_closed_data(c):
    sid = closed_normally(c)
    c.send(data(sid, b"x", True))
    return expect_conn_error(c, STREAM_CLOSED)


@case("5.1", "closed: a DATA flood on a reset stream gets one RST_STREAM")
def c_rst_data_flood(c):
    sid = closed_by_client_reset(c)
    c.send(*[data(sid, b"x") for _ in range(50)])
    expect_stream_error(c, sid, STREAM_CLOSED)
    c.send(ping(b"counted!"))
    expect_ping_ack(c, b"counted!")
    n = sum(1 for d in c.seen if d.startswith("RST_STREAM"))
    if n != 1:
        fail("%d RST_STREAM frames (seen %s)" % (n, c.seen))


@case("5.1", "closed (both END_STREAM): HEADERS -> connection error STREAM_CLOSED")
def c_closed_headers(c):
    sid = closed_normally(c)
    c.send(headers(sid, c.req()))
    return expect_conn_error(c, STREAM_CLOSED)


@case("5.1", "closed (both END_STREAM): CONTINUATION -> STREAM_CLOSED/PROTOCOL_ERROR")
def c_closed_cont(c):
    sid = closed_normally(c)
    c.send(continuation(sid, c.req()))
    return expect_conn_error(c, STREAM_CLOSED, PROTOCOL_ERROR)


@case("5.1", "closed: PRIORITY, WINDOW_UPDATE, RST_STREAM are ignored")
def c_closed_allowed(c):
    sid = closed_normally(c)
    c.send(priority(sid, 0, 7), window_update(sid, 10), rst(sid, CANCEL))
    return expect_no_goaway(c)


@case("5.1", "closed by the server's RST_STREAM: later DATA is ignored")
def c_closed_by_server(c):
    c.handshake()
    # answered (413) before the body came: the server resets the stream (NO_ERROR)
    c.send(headers(1, c.req("/body", "POST", [("content-length", "999999999999")]),
                   end_stream=False))
    expect_response(c, 1, status=413)
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f in (None, "EOF"):
            fail("no RST_STREAM after the early answer (seen %s)" % c.seen)
        if f[0] == RST_STREAM and f[2] == 1:
            break
    c.send(data(1, b"late body", False), data(1, b"more", True))
    expect_no_goaway(c)
    c.send(headers(3, c.req()))
    expect_response(c, 3)


# 5.1.1 Stream Identifiers


@case("5.1.1", "even-numbered stream identifier -> PROTOCOL_ERROR")
def c_even_sid(c):
    c.handshake()
    c.send(headers(2, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1.1", "stream identifier smaller than the previous -> PROTOCOL_ERROR")
def c_smaller_sid(c):
    c.handshake()
    c.send(headers(5, c.req()), headers(3, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1.1", "smaller identifier after the higher stream closed -> PROTOCOL_ERROR")
def c_smaller_sid_later(c):
    c.handshake()
    c.send(headers(5, c.req()))
    expect_response(c, 5)
    c.send(headers(3, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1.1", "the largest stream identifier (2^31-1) first, then nothing lower")
def c_sid_max(c):
    c.handshake()
    c.send(headers(0x7fffffff, c.req()))
    expect_response(c, 0x7fffffff)
    c.send(headers(0x7ffffffd, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("5.1.1", "skipped identifiers are fine; the next higher one is answered")
def c_sid_gaps(c):
    c.handshake()
    c.send(headers(7, c.req()), headers(101, c.req()))
    expect_response(c, 7)
    expect_response(c, 101)


# 5.1.2 Stream Concurrency


@case("5.1.2", "more than SETTINGS_MAX_CONCURRENT_STREAMS -> PROTOCOL_ERROR/REFUSED_STREAM")
def c_concurrency(c):
    c.handshake((S_INITIAL_WINDOW_SIZE, 0))
    n = c.server_settings.get(S_MAX_CONCURRENT_STREAMS)
    if n is None:
        fail("no SETTINGS_MAX_CONCURRENT_STREAMS")
    block = c.req()
    c.send(*[headers(1 + 2 * i, block) for i in range(n + 1)])
    return expect_stream_error(c, 1 + 2 * n, PROTOCOL_ERROR, REFUSED_STREAM)


# 5.3 Stream Priority


@case("5.3.1", "HEADERS that depends on itself -> PROTOCOL_ERROR")
def c_headers_self_dep(c):
    c.handshake()
    c.send(headers(1, c.req(), prio=(1, 15, False)))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("5.3.1", "PRIORITY that depends on itself -> PROTOCOL_ERROR")
def c_priority_self_dep(c):
    c.handshake()
    c.send(priority(1, 1, 15))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("5.3", "HEADERS with priority, PRIORITY with weights/exclusive are accepted")
def c_priority_ok(c):
    c.handshake()
    c.send(priority(3, 0, 0), priority(5, 3, 255, True),
           headers(1, c.req(), prio=(3, 100, True)), priority(1, 5, 1))
    expect_response(c, 1)


@case("5.3", "PRIORITY for an idle stream, then HEADERS on a lower stream")
def c_priority_idle_lower(c):
    c.handshake()
    c.send(priority(9, 0, 15), headers(3, c.req()))
    expect_response(c, 3)


# 5.4 Error Handling


@case("5.4.1", "connection error: GOAWAY (last stream id) then close")
def c_goaway_then_close(c):
    c.handshake()
    c.send(headers(1, c.req()))
    expect_response(c, 1)
    c.send(frame(PING, 0, 0, b"short"))
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f in (None, "EOF"):
            fail("no GOAWAY (seen %s)" % c.seen)
        if f[0] == GOAWAY:
            last, code = struct.unpack(">II", f[3][:8])
            if code != FRAME_SIZE_ERROR or last != 1:
                fail("GOAWAY last=%d code=%d" % (last, code))
            break
    wait_eof(c, deadline, "GOAWAY sent")


@case("5.4.2", "stream error: other streams go on")
def c_stream_error_isolated(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?200")),
           headers(3, c.req() + lit(":bogus", "x")))
    expect_stream_error(c, 3, PROTOCOL_ERROR)
    expect_response(c, 1, status=200)


# 5.5 Extending HTTP/2


@case("5.5", "unknown extension frame is ignored")
def c_ext_ignored(c):
    c.handshake()
    c.send(frame(0xa0, 0x7, 0, b"extension"), ping())
    return expect_ping_ack(c)


@case("5.5", "unknown extension frame inside a header block -> PROTOCOL_ERROR")
def c_ext_in_block(c):
    c.handshake()
    block = c.req()
    c.send(headers(1, block[:4], end_headers=False), frame(0xa0, 0, 1, b"ext"),
           continuation(1, block[4:]))
    return expect_conn_error(c, PROTOCOL_ERROR)


# 6.1 DATA


@case("6.1", "DATA on stream 0 -> PROTOCOL_ERROR")
def c_data_sid0(c):
    c.handshake()
    c.send(data(0, b"x", True))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.1", "DATA with a pad length beyond the payload -> PROTOCOL_ERROR")
def c_data_bad_pad(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False),
           frame(DATA, PADDED | END_STREAM, 1, b"\x06abcde"))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.1", "padded DATA is accepted (padding not in the body)")
def c_data_padded(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False),
           data(1, b"hello ", pad=10), data(1, b"world", True, pad=0))
    st, body = expect_response(c, 1, status=200)
    if body != b"hello world":
        fail("body %r" % body)


@case("6.1", "multiple DATA frames are accepted")
def c_data_multi(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False),
           *[data(1, b"%d," % i) for i in range(10)], data(1, b"", True))
    st, body = expect_response(c, 1, status=200)
    if body != b"0,1,2,3,4,5,6,7,8,9,":
        fail("body %r" % body)


# 6.2 HEADERS


@case("6.2", "HEADERS without END_HEADERS, then PRIORITY -> PROTOCOL_ERROR")
def c_headers_then_priority(c):
    c.handshake()
    c.send(headers(1, c.req(), end_headers=False), priority(1, 0, 15))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.2", "HEADERS without END_HEADERS, then DATA -> PROTOCOL_ERROR")
def c_headers_then_data(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False, end_headers=False),
           data(1, b"x", True))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.2", "HEADERS without END_HEADERS, then HEADERS on another stream -> PROTOCOL_ERROR")
def c_headers_then_headers(c):
    c.handshake()
    c.send(headers(1, c.req(), end_headers=False), headers(3, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.2", "HEADERS without END_HEADERS, then PING -> PROTOCOL_ERROR")
def c_headers_then_ping(c):
    c.handshake()
    c.send(headers(1, c.req(), end_headers=False), ping())
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.2", "HEADERS on stream 0 -> PROTOCOL_ERROR")
def c_headers_sid0(c):
    c.handshake()
    c.send(headers(0, c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.2", "HEADERS with a pad length beyond the payload -> PROTOCOL_ERROR")
def c_headers_bad_pad(c):
    c.handshake()
    block = c.req()
    c.send(frame(HEADERS, PADDED | END_HEADERS | END_STREAM, 1,
                 bytes([len(block) + 1]) + block))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.2", "padded HEADERS is accepted")
def c_headers_padded(c):
    c.handshake()
    c.send(headers(1, c.req(), pad=20))
    expect_response(c, 1)


# 6.3 PRIORITY


@case("6.3", "PRIORITY on stream 0 -> PROTOCOL_ERROR")
def c_priority_sid0(c):
    c.handshake()
    c.send(priority(0, 1, 15))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.3", "PRIORITY with a length other than 5 -> FRAME_SIZE_ERROR")
def c_priority_len(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), frame(PRIORITY, 0, 1, b"\0\0\0\0\x0f\0"))
    return expect_stream_error(c, 1, FRAME_SIZE_ERROR)


# 6.4 RST_STREAM


@case("6.4", "RST_STREAM on stream 0 -> PROTOCOL_ERROR")
def c_rst_sid0(c):
    c.handshake()
    c.send(rst(0))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.4", "RST_STREAM on an idle stream -> PROTOCOL_ERROR")
def c_rst_idle(c):
    c.handshake()
    c.send(headers(1, c.req()), rst(3))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.4", "RST_STREAM with a length other than 4 -> FRAME_SIZE_ERROR")
def c_rst_len(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), frame(RST_STREAM, 0, 1, b"\0\0\0\x08\0"))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


# 6.5 SETTINGS


@case("6.5", "SETTINGS ACK with a payload -> FRAME_SIZE_ERROR")
def c_settings_ack_payload(c):
    c.handshake()
    c.send(settings((S_ENABLE_PUSH, 0), flags=ACK))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


@case("6.5", "SETTINGS on a stream -> PROTOCOL_ERROR")
def c_settings_sid(c):
    c.handshake()
    c.send(settings((S_ENABLE_PUSH, 0), sid=1))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.5", "SETTINGS with a length not a multiple of 6 -> FRAME_SIZE_ERROR")
def c_settings_len(c):
    c.handshake()
    c.send(frame(SETTINGS, 0, 0, b"\0\x02\0\0\0\0\0"))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


@case("6.5", "SETTINGS is acknowledged")
def c_settings_acked(c):
    c.handshake()
    c.send(settings((S_HEADER_TABLE_SIZE, 1000), (S_MAX_FRAME_SIZE, 20000)))
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f in (None, "EOF") or f[0] == GOAWAY:
            fail("no SETTINGS ACK (seen %s)" % c.seen)
        if f[0] == SETTINGS and f[1] & ACK:
            if f[3]:
                fail("ACK with a payload")
            return


@case("6.5.2", "SETTINGS_ENABLE_PUSH 2 -> PROTOCOL_ERROR")
def c_settings_push(c):
    c.handshake()
    c.send(settings((S_ENABLE_PUSH, 2)))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.5.2", "SETTINGS_INITIAL_WINDOW_SIZE 2^31 -> FLOW_CONTROL_ERROR")
def c_settings_window(c):
    c.handshake()
    c.send(settings((S_INITIAL_WINDOW_SIZE, 1 << 31)))
    return expect_conn_error(c, FLOW_CONTROL_ERROR)


@case("6.5.2", "SETTINGS_MAX_FRAME_SIZE below 2^14 -> PROTOCOL_ERROR")
def c_settings_mfs_low(c):
    c.handshake()
    c.send(settings((S_MAX_FRAME_SIZE, 16383)))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.5.2", "SETTINGS_MAX_FRAME_SIZE above 2^24-1 -> PROTOCOL_ERROR")
def c_settings_mfs_high(c):
    c.handshake()
    c.send(settings((S_MAX_FRAME_SIZE, 1 << 24)))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.5.2", "SETTINGS_ENABLE_CONNECT_PROTOCOL 2 -> PROTOCOL_ERROR (RFC 8441)")
def c_settings_connect(c):
    c.handshake()
    c.send(settings((S_ENABLE_CONNECT_PROTOCOL, 2)))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.5.2", "unknown SETTINGS identifier is ignored")
def c_settings_unknown(c):
    c.handshake()
    c.send(settings((0xff, 1), (0x4242, 77)), ping())
    return expect_ping_ack(c)


@case("6.5.3", "the last of several SETTINGS_INITIAL_WINDOW_SIZE values counts")
def c_settings_order(c):
    c.handshake()
    c.send(settings((S_INITIAL_WINDOW_SIZE, 100), (S_INITIAL_WINDOW_SIZE, 1),
                    (S_INITIAL_WINDOW_SIZE, 1)), headers(1, c.req("/hello.txt")))
    expect_data_len(c, 1, 1)


def expect_data_len(c, stream, n):
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f in (None, "EOF") or f[0] == GOAWAY or (f[0] == RST_STREAM and f[2] == stream):
            fail("expected DATA of %d octets on %d (seen %s)" % (n, stream, c.seen))
        if f[0] == DATA and f[2] == stream:
            if len(f[3]) != n:
                fail("DATA of %d octets, expected %d" % (len(f[3]), n))
            return


# 6.7 PING


@case("6.7", "PING is answered with an ACK carrying the same data")
def c_ping(c):
    c.handshake()
    c.send(ping(b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    return expect_ping_ack(c, b"\x01\x02\x03\x04\x05\x06\x07\x08")


@case("6.7", "PING with ACK is not answered")
def c_ping_ack_not_answered(c):
    c.handshake()
    c.send(ping(b"unwanted", flags=ACK), ping(b"expected"))
    return expect_ping_ack(c, b"expected")


@case("6.7", "PING on a stream -> PROTOCOL_ERROR")
def c_ping_sid(c):
    c.handshake()
    c.send(ping(sid=1))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.7", "PING with a length other than 8 -> FRAME_SIZE_ERROR")
def c_ping_len(c):
    c.handshake()
    c.send(frame(PING, 0, 0, b"123456"))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


# 6.8 GOAWAY


@case("6.8", "GOAWAY on a stream -> PROTOCOL_ERROR")
def c_goaway_sid(c):
    c.handshake()
    c.send(frame(GOAWAY, 0, 1, struct.pack(">II", 0, 0)))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.8", "client GOAWAY: streams in flight still finish")
def c_goaway_client(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?200")), goaway(0, NO_ERROR, b"bye"))
    expect_response(c, 1, status=200)


# 6.9 WINDOW_UPDATE


@case("6.9", "WINDOW_UPDATE of 0 on the connection -> PROTOCOL_ERROR")
def c_wu_zero_conn(c):
    c.handshake()
    c.send(window_update(0, 0))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.9", "WINDOW_UPDATE of 0 on a stream -> PROTOCOL_ERROR")
def c_wu_zero_stream(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), window_update(1, 0))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("6.9", "WINDOW_UPDATE with a length other than 4 -> FRAME_SIZE_ERROR")
def c_wu_len(c):
    c.handshake()
    c.send(frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\x01\0"))
    return expect_conn_error(c, FRAME_SIZE_ERROR)


@case("6.9.1", "connection window above 2^31-1 -> FLOW_CONTROL_ERROR")
def c_wu_overflow_conn(c):
    c.handshake()
    c.send(window_update(0, 0x7fffffff), window_update(0, 0x7fffffff))
    return expect_conn_error(c, FLOW_CONTROL_ERROR)


@case("6.9.1", "stream window above 2^31-1 -> FLOW_CONTROL_ERROR (RST_STREAM)")
def c_wu_overflow_stream(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), window_update(1, 0x7fffffff),
           window_update(1, 0x7fffffff))
    r = expect_stream_error(c, 1, FLOW_CONTROL_ERROR)
    if r != "stream":
        fail("a connection error where RST_STREAM is required")


@case("6.9.1", "stream window above 2^31-1 on a GET without END_STREAM (as h2spec)")
def c_wu_overflow_stream_get(c):
    c.handshake()
    c.send(headers(1, c.req(), end_stream=False), window_update(1, 0x7fffffff),
           window_update(1, 0x7fffffff))
    r = expect_stream_error(c, 1, FLOW_CONTROL_ERROR)
    if r != "stream":
        fail("a connection error where RST_STREAM is required")


@case("6.9.1", "initial window of 1: DATA frames of 1 octet")
def c_window_one(c):
    c.handshake((S_INITIAL_WINDOW_SIZE, 1))
    c.send(headers(1, c.req("/hello.txt")))
    expect_data_len(c, 1, 1)
    c.send(window_update(1, 5))
    expect_data_len(c, 1, 5)


@case("6.9.2", "SETTINGS_INITIAL_WINDOW_SIZE changed after HEADERS adjusts open streams")
def c_window_change(c):
    c.handshake((S_INITIAL_WINDOW_SIZE, 0))
    c.send(headers(1, c.req("/hello.txt")))
    expect_response(c, 1, want_end=False)
    c.send(settings((S_INITIAL_WINDOW_SIZE, 1)))
    expect_data_len(c, 1, 1)


@case("6.9.2", "a negative window is tracked")
def c_window_negative(c):
    c.handshake((S_INITIAL_WINDOW_SIZE, 3))
    c.send(headers(1, c.req("/hello.txt")))
    expect_data_len(c, 1, 3)
    c.send(settings((S_INITIAL_WINDOW_SIZE, 1)))  # window 1 - 3 = -2
    c.send(window_update(1, 3))  # -2 + 3 = 1
    expect_data_len(c, 1, 1)


@case("6.9.2", "SETTINGS_INITIAL_WINDOW_SIZE overflowing a stream window -> FLOW_CONTROL_ERROR")
def c_window_settings_overflow(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), window_update(1, 0x7fffffff - 65535),
           settings((S_INITIAL_WINDOW_SIZE, 65536)))
    return expect_conn_error(c, FLOW_CONTROL_ERROR)


# 6.10 CONTINUATION


@case("6.10", "several CONTINUATION frames after HEADERS are accepted")
def c_cont_ok(c):
    c.handshake()
    block = c.req(extra=[("x-long%d" % i, "y" * 1000) for i in range(3)], huff=False)
    parts = [block[:30], block[30:1000], block[1000:2000], block[2000:]]
    c.send(headers(1, parts[0], end_headers=False),
           *[continuation(1, p, end_headers=(i == len(parts) - 2)) for i, p in
             enumerate(parts[1:])])
    expect_response(c, 1)


@case("6.10", "CONTINUATION followed by a non-CONTINUATION frame -> PROTOCOL_ERROR")
def c_cont_then_data(c):
    c.handshake()
    block = c.req("/body", "POST")
    c.send(headers(1, block[:4], end_stream=False, end_headers=False),
           continuation(1, block[4:8], end_headers=False), data(1, b"x", True))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.10", "CONTINUATION on stream 0 -> PROTOCOL_ERROR")
def c_cont_sid0(c):
    c.handshake()
    block = c.req()
    c.send(headers(1, block[:4], end_headers=False), continuation(0, block[4:]))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.10", "CONTINUATION after HEADERS with END_HEADERS -> PROTOCOL_ERROR")
def c_cont_after_end(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), continuation(1, b"\x88"))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.10", "CONTINUATION after CONTINUATION with END_HEADERS -> PROTOCOL_ERROR")
def c_cont_after_cont_end(c):
    c.handshake()
    block = c.req("/delay?300")
    c.send(headers(1, block[:4], end_headers=False), continuation(1, block[4:]),
           continuation(1, b"\x88"))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.10", "CONTINUATION after DATA -> PROTOCOL_ERROR")
def c_cont_after_data(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False), data(1, b"x"),
           continuation(1, b"\x88"))
    return expect_conn_error(c, PROTOCOL_ERROR)


@case("6.10", "CONTINUATION of another stream (interleaved) -> PROTOCOL_ERROR")
def c_cont_other_stream(c):
    c.handshake()
    block = c.req()
    c.send(headers(1, block[:4], end_headers=False), continuation(3, block[4:]))
    return expect_conn_error(c, PROTOCOL_ERROR)


# 7 Error Codes


@case("7", "GOAWAY with an unknown error code has no special effect")
def c_goaway_unknown_code(c):
    c.handshake()
    c.send(goaway(0, 0xdead), ping())
    deadline = time.time() + WAIT
    while True:  # a PING ACK, or the connection closed (the client said goodbye)
        f = c.next(deadline)
        if f is None:
            fail("neither a PING ACK nor a close (seen %s)" % c.seen)
        if f == "EOF" or (f[0] == PING and f[1] & ACK):
            return
        if f[0] == GOAWAY and int.from_bytes(f[3][4:8], "big") != NO_ERROR:
            fail("answered with %s" % describe(f))


@case("7", "RST_STREAM with an unknown error code has no special effect")
def c_rst_unknown_code(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")), rst(1, 0xdead))
    expect_no_goaway(c)


# 8.1 HTTP Request/Response Exchange


def block_of(c, fields):
    """Literals without indexing: the server's HPACK table stays as the encoder knows it."""
    return b"".join(lit(n, v) for n, v in fields)


def plain_req(c, path="/", method="GET"):
    return block_of(c, c.pseudo(path, method))


def expect_malformed(c, fields, body=None):
    c.handshake()
    if body is None:
        c.send(headers(1, block_of(c, fields)))
    else:
        c.send(headers(1, block_of(c, fields), end_stream=False), data(1, body, True))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("8.1", "GET, HEAD, POST are answered")
def c_methods(c):
    c.handshake()
    c.send(headers(1, c.req("/hello.txt")), headers(3, c.req("/hello.txt", "HEAD")),
           headers(5, c.req("/body", "POST"), end_stream=False), data(5, b"posted", True))
    st, body = expect_response(c, 1, status=200)
    if body != b"hello world\n":
        fail("GET body %r" % body)
    st, body = expect_response(c, 3, status=200)
    if body:
        fail("HEAD body %r" % body)
    st, body = expect_response(c, 5, status=200)
    if body != b"posted":
        fail("POST body %r" % body)


@case("8.1", "field values end where they end (a query, then digits in the next field)")
def c_value_bounds(c):
    c.handshake()
    # /delay?MS parses MS with strtol: it must stop at the end of :path, not run on into
    # the :authority that HPACK puts right after it
    c.send(headers(1, c.req("/delay?50")))
    st, body = expect_response(c, 1, status=200)
    if not body.startswith(b"delayed 50 ms"):
        fail("body %r" % body)


@case("8.1", "POST with trailers is answered")
def c_trailers(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST", [("te", "trailers")]), end_stream=False),
           data(1, b"with trailers"), headers(1, lit("x-trailer", "done")))
    st, body = expect_response(c, 1, status=200)
    if body != b"with trailers":
        fail("body %r" % body)


@case("8.1", "trailers without END_STREAM -> PROTOCOL_ERROR")
def c_trailers_no_end(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False), data(1, b"x"),
           headers(1, lit("x-trailer", "1"), end_stream=False))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("8.1", "a pseudo-header field in trailers -> PROTOCOL_ERROR")
def c_trailers_pseudo(c):
    c.handshake()
    c.send(headers(1, c.req("/body", "POST"), end_stream=False), data(1, b"x"),
           headers(1, lit(":method", "POST")))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("8.1.2", "uppercase header field name -> PROTOCOL_ERROR")
def c_uppercase(c):
    return expect_malformed(c, c.pseudo() + [("X-Upper", "1")])


@case("8.1.2", "header field name with a space -> PROTOCOL_ERROR")
def c_name_space(c):
    return expect_malformed(c, c.pseudo() + [("x bad", "1")])


@case("8.1.2", "header field value with CR/LF/NUL -> PROTOCOL_ERROR")
def c_value_crlf(c):
    r = expect_malformed(c, c.pseudo() + [("x-a", "1\r\nx-b: 2")])
    c2 = Conn(c.tls, c.port)
    try:
        c2.port = c.port
        expect_malformed(c2, c2.pseudo() + [("x-a", "nul\0inside")])
    finally:
        c2.close()
    return r


@case("8.1.2.1", "unknown pseudo-header field -> PROTOCOL_ERROR")
def c_unknown_pseudo(c):
    return expect_malformed(c, c.pseudo() + [(":foo", "bar")])


@case("8.1.2.1", "response pseudo-header field (:status) in a request -> PROTOCOL_ERROR")
def c_status_in_request(c):
    return expect_malformed(c, c.pseudo() + [(":status", "200")])


@case("8.1.2.1", "pseudo-header field after a regular field -> PROTOCOL_ERROR")
def c_pseudo_after_regular(c):
    p = c.pseudo()
    return expect_malformed(c, p[:3] + [("x-regular", "1")] + p[3:])


@case("8.1.2.2", "Connection -> PROTOCOL_ERROR")
def c_conn_connection(c):
    return expect_malformed(c, c.pseudo() + [("connection", "keep-alive")])


@case("8.1.2.2", "Keep-Alive -> PROTOCOL_ERROR")
def c_conn_keepalive(c):
    return expect_malformed(c, c.pseudo() + [("keep-alive", "timeout=5")])


@case("8.1.2.2", "Proxy-Connection -> PROTOCOL_ERROR")
def c_conn_proxy(c):
    return expect_malformed(c, c.pseudo() + [("proxy-connection", "keep-alive")])


@case("8.1.2.2", "Transfer-Encoding -> PROTOCOL_ERROR")
def c_conn_te_chunked(c):
    return expect_malformed(c, c.pseudo("/body", "POST") + [("transfer-encoding", "chunked")],
                            body=b"1\r\nx\r\n0\r\n\r\n")


@case("8.1.2.2", "Upgrade -> PROTOCOL_ERROR")
def c_conn_upgrade(c):
    return expect_malformed(c, c.pseudo() + [("upgrade", "websocket")])


@case("8.1.2.2", "TE other than trailers -> PROTOCOL_ERROR")
def c_te_gzip(c):
    return expect_malformed(c, c.pseudo() + [("te", "trailers, gzip")])


@case("8.1.2.2", "TE: trailers is accepted")
def c_te_trailers(c):
    c.handshake()
    c.send(headers(1, block_of(c, c.pseudo() + [("te", "trailers")])))
    expect_response(c, 1)


@case("8.1.2.3", "empty :path -> PROTOCOL_ERROR")
def c_empty_path(c):
    p = c.pseudo()
    p[2] = (":path", "")
    return expect_malformed(c, p)


@case("8.1.2.3", ":path not starting with / -> PROTOCOL_ERROR")
def c_relative_path(c):
    p = c.pseudo()
    p[2] = (":path", "hello.txt")
    return expect_malformed(c, p)


@case("8.1.2.3", "missing :method -> PROTOCOL_ERROR")
def c_no_method(c):
    return expect_malformed(c, c.pseudo()[1:])


@case("8.1.2.3", "missing :scheme -> PROTOCOL_ERROR")
def c_no_scheme(c):
    p = c.pseudo()
    return expect_malformed(c, p[:1] + p[2:])


@case("8.1.2.3", "missing :path -> PROTOCOL_ERROR")
def c_no_path(c):
    p = c.pseudo()
    return expect_malformed(c, p[:2] + p[3:])


@case("8.1.2.3", "duplicated :method -> PROTOCOL_ERROR")
def c_dup_method(c):
    p = c.pseudo()
    return expect_malformed(c, p[:1] + [(":method", "GET")] + p[1:])


@case("8.1.2.3", "duplicated :scheme -> PROTOCOL_ERROR")
def c_dup_scheme(c):
    p = c.pseudo()
    return expect_malformed(c, p[:2] + [p[1]] + p[2:])


@case("8.1.2.3", "duplicated :path -> PROTOCOL_ERROR")
def c_dup_path(c):
    p = c.pseudo()
    return expect_malformed(c, p[:3] + [(":path", "/other")] + p[3:])


@case("8.1.2.3", "duplicated :authority -> PROTOCOL_ERROR")
def c_dup_authority(c):
    return expect_malformed(c, c.pseudo() + [(":authority", "other")])


@case("8.1.2.6", "content-length above the DATA payload -> PROTOCOL_ERROR")
def c_cl_short(c):
    return expect_malformed(c, c.pseudo("/body", "POST") + [("content-length", "10")],
                            body=b"abc")


@case("8.1.2.6", "content-length below the DATA payload -> PROTOCOL_ERROR")
def c_cl_long(c):
    return expect_malformed(c, c.pseudo("/body", "POST") + [("content-length", "1")],
                            body=b"abc")


@case("8.1.2.6", "content-length unlike the sum of several DATA frames -> PROTOCOL_ERROR")
def c_cl_multi(c):
    c.handshake()
    c.send(headers(1, block_of(c, c.pseudo("/body", "POST") + [("content-length", "4")]),
                   end_stream=False), data(1, b"ab"), data(1, b"cd"), data(1, b"ef", True))
    return expect_stream_error(c, 1, PROTOCOL_ERROR)


@case("8.1.2.6", "content-length with a body on a stream that ended at HEADERS -> "
      "PROTOCOL_ERROR")
def c_cl_no_body(c):
    return expect_malformed(c, c.pseudo("/body", "POST") + [("content-length", "5")])


# 8.2 Server Push


@case("8.2", "PUSH_PROMISE from a client -> PROTOCOL_ERROR")
def c_push_promise(c):
    c.handshake()
    c.send(headers(1, c.req("/delay?300")),
           frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + c.req()))
    return expect_conn_error(c, PROTOCOL_ERROR)


# HPACK (RFC 7541)


@case("hpack", "2.3.3 indexed field beyond the tables -> COMPRESSION_ERROR")
def c_hp_index_range(c):
    c.handshake()
    c.send(headers(1, c.req() + hint(70, 7, 0x80)))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "2.3.3 literal with a name index beyond the tables -> COMPRESSION_ERROR")
def c_hp_lit_index_range(c):
    c.handshake()
    c.send(headers(1, c.req() + hint(70, 6, 0x40) + hstr("v")))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "6.1 indexed field with index 0 -> COMPRESSION_ERROR")
def c_hp_index0(c):
    c.handshake()
    c.send(headers(1, c.req() + b"\x80"))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "4.2 table size update after a field -> COMPRESSION_ERROR")
def c_hp_size_update_late(c):
    c.handshake()
    c.send(headers(1, c.req() + hint(100, 5, 0x20)))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "6.3 table size update above SETTINGS_HEADER_TABLE_SIZE -> COMPRESSION_ERROR")
def c_hp_size_update_big(c):
    c.handshake()
    c.send(headers(1, hint(4097, 5, 0x20) + c.req()))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "5.2 Huffman padding longer than 7 bits -> COMPRESSION_ERROR")
def c_hp_huff_long_pad(c):
    c.handshake()
    c.send(headers(1, c.req() + b"\x00" + hstr("x-test") +
                   hint(len(huffman(b"test", extra=b"\xff")), 7, 0x80) +
                   huffman(b"test", extra=b"\xff")))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "5.2 Huffman padding with 0 bits -> COMPRESSION_ERROR")
def c_hp_huff_zero_pad(c):
    c.handshake()
    v = huffman(b"test", pad_bit=0)
    c.send(headers(1, c.req() + b"\x00" + hstr("x-test") + hint(len(v), 7, 0x80) + v))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "5.2 Huffman string with the EOS symbol -> COMPRESSION_ERROR")
def c_hp_huff_eos(c):
    c.handshake()
    v = b"\xff\xff\xff\xff"
    c.send(headers(1, c.req() + b"\x00" + hstr("x-test") + hint(len(v), 7, 0x80) + v))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "5.2 string length beyond the block -> COMPRESSION_ERROR")
def c_hp_string_overrun(c):
    c.handshake()
    c.send(headers(1, c.req() + b"\x00\x06x-test\x7f\x10abc"))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "5.1 integer overflow -> COMPRESSION_ERROR")
def c_hp_int_overflow(c):
    c.handshake()
    c.send(headers(1, c.req() + b"\xff" + b"\xff" * 10 + b"\x01"))
    return expect_conn_error(c, COMPRESSION_ERROR)


@case("hpack", "every field representation, Huffman or not, is accepted")
def c_hp_representations(c):
    c.handshake()
    sid = 1
    reps = []
    for huff in (False, True):
        # with incremental indexing, without indexing, never indexed; indexed and new names
        for first, bits in ((0x40, 6), (0x00, 4), (0x10, 4)):
            reps.append(hint(32, bits, first) + hstr("a=b", huff))  # static 32: cookie
            reps.append(bytes([first]) + hstr("x-new", huff) + hstr("value", huff))
    reps.append(hint(62, 7, 0x80))  # indexed: the newest entry the literals above added
    for r in reps:
        c.send(headers(sid, plain_req(c) + r))
        expect_response(c, sid)
        sid += 2
    # dynamic table size updates at the start of a block, one and two of them
    c.send(headers(sid, hint(0, 5, 0x20) + hint(4096, 5, 0x20) + plain_req(c)))
    expect_response(c, sid)
    sid += 2
    c.send(headers(sid, hint(1024, 5, 0x20) + plain_req(c)))
    expect_response(c, sid)


@case("hpack", "a header list over SETTINGS_MAX_HEADER_LIST_SIZE is refused (431)")
def c_hp_list_size(c):
    c.handshake()
    limit = c.server_settings.get(S_MAX_HEADER_LIST_SIZE)
    if not limit:
        fail("no SETTINGS_MAX_HEADER_LIST_SIZE")
    fields = [("x-f%d" % i, "v" * 1000) for i in range(limit // 1000 + 2)]
    block = c.req(extra=fields)
    chunks = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    c.send(headers(1, chunks[0], end_headers=len(chunks) == 1),
           *[continuation(1, p, end_headers=(i == len(chunks) - 2)) for i, p in
             enumerate(chunks[1:])])
    deadline = time.time() + WAIT
    while True:
        f = c.next(deadline)
        if f in (None, "EOF") or f[0] == GOAWAY:
            fail("no answer (seen %s)" % c.seen)
        if f[0] == RST_STREAM and f[2] == 1:
            return  # refused as a stream error: also fine
        if f[0] == HEADERS and f[2] == 1:
            break
    st = int(dict(c.fields[1])[":status"])
    if st != 431:
        fail("status %d" % st)
    c.send(headers(3, c.req()))
    expect_response(c, 3)


# ---- running ----

RESULTS = {}  # (section, transport) -> [passed, failed]


def make_test(section, desc, fn, tls):
    transport = "tls" if tls else "h2c"

    def t():
        port = SRV.tls_port if tls else SRV.port
        c = Conn(tls, port)
        c.port = port
        res = RESULTS.setdefault((section, transport), [0, 0])
        try:
            ESCALATED_NOW[0] = False
            fn(c)
            if ESCALATED_NOW[0]:
                ESCALATED.append("%s %s (%s)" % (section, desc, transport))
            res[0] += 1
        except CaseFail as e:
            res[1] += 1
            raise AssertionError("[%s %s] %s: %s" % (transport, section, desc, e))
        except Exception:
            res[1] += 1
            raise
        finally:
            c.close()
    t.__name__ = "%s_%s_%s" % (transport, section.replace(".", "_"), fn.__name__[2:])
    return t


class TlsServer(Server):
    def __init__(self):
        cmd = [harness.ARGS.bin, "serve", "--workers", "1", "--root", harness.ROOT,
               "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-self-signed"]
        Server.__init__(self, cmd=cmd, listen=[None, None])
        self.tls_port = self.ports[1]


def setup():
    global SRV
    SRV = TlsServer()
    # with -k the last test (which stops it) may not run: never leave the server behind
    atexit.register(lambda: SRV.proc.poll() is None and SRV.proc.kill())


def register():
    for tls in (False, True):
        for section, desc, fn in CASES:
            test(make_test(section, desc, fn, tls))

    @test
    def zz_summary_and_clean_exit():
        print("\nsection   h2c         tls")
        secs = []
        for section, _, _ in CASES:
            if section not in secs:
                secs.append(section)
        for s in secs:
            a = RESULTS.get((s, "h2c"), [0, 0])
            b = RESULTS.get((s, "tls"), [0, 0])
            print("%-8s  %2d/%-2d pass  %2d/%-2d pass" % (s, a[0], a[0] + a[1], b[0], b[0] + b[1]))
        if ESCALATED:
            print("stream errors answered as connection errors (allowed, RFC 9113 §5.4.1):")
            for e in ESCALATED:
                print("  " + e)
        SRV.__exit__(None, None, None)


register()

if __name__ == "__main__":
    main(setup)
