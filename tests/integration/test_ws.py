"""WebSocket conformance (RFC 6455, RFC 7692) against the real `switchyard serve` binary, over
raw sockets, modelled on the Autobahn|Testsuite case groups: framing, ping/pong, reserved bits,
opcodes, fragmentation, UTF-8, close handling, limits, the opening handshake,
permessage-deflate, hostile peers and heartbeats.

Every case asserts the exact server behaviour: the echoed payload, or a close frame with the
exact status code followed by the server closing TCP. The frame encoder/decoder, masking and
the opening handshake are written out here so nothing hides behind a client library."""
import atexit
import base64
import hashlib
import os
import random
import select
import signal
import socket
import ssl
import struct
import threading
import time
import zlib

import harness
from harness import Server, connect, eq, main, ok, parse_one, request, test

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10

# ---------------------------------------------------------------------------------------------
# Shared servers, started on first use and stopped at the end (or at exit).

_servers = {}
_server_args = {
    "default": (),                                       # 1 MiB limit, deflate on
    "big": ("--ws-max-message", str(4 << 20)),          # for 1 MiB frames and more
    "limit": ("--ws-max-message", "65536"),             # limits and bombs
    "nodeflate": ("--no-deflate",),
    # policies: origins, subprotocols (chat preferred over superchat), a second path
    "policy": ("--ws-origin", "https://good.example", "--ws-origin", "http://localhost:8080",
               "--ws-subprotocol", "chat", "--ws-subprotocol", "superchat",
               "--ws-path", "/echo", "--ws-path", "/other"),
    "reqsub": ("--ws-subprotocol", "v2.proto", "--ws-require-subprotocol"),
    "idle": ("--ws-idle-timeout", "400", "--ws-ping-interval", "0"),
}


def srv(name="default"):
    s = _servers.get(name)
    if s is None:
        s = Server("--no-access-log", *_server_args[name])
        _servers[name] = s
    return s


def port(name="default"):
    return srv(name).port


def _stop_all():
    for s in list(_servers.values()):
        try:
            s.stop()
        except Exception:  # noqa
            pass
    _servers.clear()


atexit.register(_stop_all)

# ---------------------------------------------------------------------------------------------
# Frame codec.


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def apply_mask(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, form=None, length=None, key=None):
    """Encode one frame. form: 7, 16 or 64 forces a length encoding (default: minimal);
    length overrides the announced payload length (the payload is still appended as given)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    b0 = (0x80 if fin else 0) | rsv | opcode
    mb = 0x80 if mask else 0
    if form == 7:
        hdr = bytes([b0, mb | n])
    elif form == 16:
        hdr = bytes([b0, mb | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([b0, mb | 127]) + struct.pack("!Q", n)
    if not mask:
        return hdr + payload
    key = key or os.urandom(4)
    return hdr + key + apply_mask(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return "<Frame op=%#x fin=%d rsv=%#x len=%d %r>" % (self.opcode, self.fin, self.rsv,
                                                          len(self.payload), p)


class Closed(AssertionError):
    pass


def deflate_message(comp, data):
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff"), out[-8:]
    return out[:-4]


def parse_extensions(value):
    """'a; x=1; y, b' -> [('a', {'x': '1', 'y': None}), ('b', {})]"""
    out = []
    if not value:
        return out
    for ext in value.split(","):
        parts = [p.strip() for p in ext.split(";")]
        params = {}
        for p in parts[1:]:
            k, eqs, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"') if eqs else None
        out.append((parts[0].lower(), params))
    return out


def handshake_request(path="/echo", key=None, ext=(), extra=(), version="13", host=None):
    key = base64.b64encode(os.urandom(16)).decode() if key is None else key
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % (host or "127.0.0.1"),
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key]
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    for e in ext:
        lines.append("Sec-WebSocket-Extensions: %s" % e)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


class WS:
    """A raw WebSocket client connection (client side: masks its frames)."""

    def __init__(self, port, path="/echo", ext=(), extra=(), timeout=5, early=b""):
        self.sock = connect(port, timeout)
        self.buf = b""
        req, key = handshake_request(path, ext=ext, extra=extra)
        self.sock.sendall(req + early)
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv_some(deadline, "handshake response")
        r, self.buf = parse_one(self.buf, head_only=True)
        self.resp = r
        eq(r.status, 101, "handshake status (%s)" % r.raw_head.split("\r\n")[0])
        eq((r.header("upgrade") or "").lower(), "websocket", "Upgrade header of the 101")
        ok("upgrade" in [t.strip().lower() for t in (r.header("connection") or "").split(",")],
           "Connection: Upgrade in the 101, got %r" % r.header("connection"))
        eq(r.header("sec-websocket-accept"), accept_of(key), "Sec-WebSocket-Accept")
        eq(len(r.all("sec-websocket-accept")), 1, "one Sec-WebSocket-Accept")
        self.ext_header = r.header("sec-websocket-extensions")
        exts = parse_extensions(self.ext_header)
        self.pmd = None
        self.inflater = None
        self.deflater = None
        if exts:
            eq(len(exts), 1, "one negotiated extension")
            eq(exts[0][0], "permessage-deflate", "negotiated extension name")
            self.pmd = exts[0][1]
            self.server_bits = int(self.pmd.get("server_max_window_bits") or 15)
            self.client_bits = int(self.pmd.get("client_max_window_bits") or 15)
            self.inflater = zlib.decompressobj(-self.server_bits)
            self.deflater = zlib.compressobj(6, zlib.DEFLATED, -max(self.client_bits, 9))
        self.send_error = None

    # -- raw I/O --
    def _recv_some(self, deadline, what):
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError("timed out waiting for %s" % what)
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("timed out waiting for %s" % what)
        except ConnectionResetError:
            raise Closed("connection reset while waiting for %s" % what)
        if not b:
            raise Closed("server closed the connection while waiting for %s" % what)
        return b

    def _need(self, n, deadline, what):
        while len(self.buf) < n:
            self.buf += self._recv_some(deadline, what)

    def send(self, data):
        """Send bytes; a peer that already closed is recorded, not raised (failure cases)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.send_error = e

    def send_pieces(self, data, sizes, delay=0.0):
        i = 0
        k = 0
        while i < len(data):
            n = sizes[k % len(sizes)] if isinstance(sizes, (list, tuple)) else sizes
            self.send(data[i:i + n])
            i += n
            k += 1
            if delay:
                time.sleep(delay)

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, payload, **kw))

    def recv_frame(self, timeout=5):
        deadline = time.time() + timeout
        self._need(2, deadline, "a frame header")
        b0, b1 = self.buf[0], self.buf[1]
        ok(not (b1 & 0x80), "server frame is masked (RFC 6455 §5.1 forbids it)")
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline, "a frame header")
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
            ok(n >= 126, "server used a non-minimal 16-bit length for %d bytes" % n)
        elif n == 127:
            self._need(10, deadline, "a frame header")
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
            ok(n >= 65536 and not n >> 63, "server used a bad 64-bit length %d" % n)
        self._need(off + n, deadline, "a frame payload of %d bytes" % n)
        f = Frame(bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, self.buf[off:off + n])
        self.buf = self.buf[off + n:]
        if f.opcode >= 8:
            ok(f.fin and len(f.payload) <= 125, "server control frame %r is invalid" % f)
        return f

    # -- messages --
    def send_text(self, s, **kw):
        self.send_frame(OP_TEXT, s.encode() if isinstance(s, str) else s, **kw)

    def send_compressed(self, opcode, data):
        self.send_frame(opcode, deflate_message(self.deflater, data), rsv=RSV1)

    def recv_message(self, timeout=5):
        """One whole data message: (opcode, payload, compressed). Fails on anything else."""
        deadline = time.time() + timeout
        parts = []
        first = None
        while True:
            f = self.recv_frame(max(deadline - time.time(), 0.01))
            if f.opcode == OP_CLOSE:
                raise AssertionError("expected a message, got a close frame %s %r" %
                                     (f.close_code, f.payload[2:]))
            if f.opcode >= 8:
                raise AssertionError("expected a message, got control frame %r" % f)
            if first is None:
                ok(f.opcode in (OP_TEXT, OP_BINARY), "message starts with %r" % f)
                ok(f.rsv in (0, RSV1), "server frame with RSV bits %#x" % f.rsv)
                ok(f.rsv == 0 or self.pmd is not None,
                   "RSV1 from the server without permessage-deflate")
                first = f
            else:
                eq(f.opcode, OP_CONT, "continuation opcode")
                eq(f.rsv, 0, "RSV bits on a continuation")
            parts.append(f.payload)
            if f.fin:
                break
        data = b"".join(parts)
        compressed = bool(first.rsv & RSV1)
        if compressed:
            if self.pmd is not None and "server_no_context_takeover" in self.pmd:
                self.inflater = zlib.decompressobj(-self.server_bits)
            data = self.inflater.decompress(data + b"\x00\x00\xff\xff")
        return first.opcode, data, compressed

    def expect_echo(self, opcode, payload, timeout=5):
        if isinstance(payload, str):
            payload = payload.encode()
        op, data, _ = self.recv_message(timeout)
        eq(op, opcode, "echo opcode")
        if data != payload:
            raise AssertionError("echo differs: sent %d bytes, got %d bytes (first diff at %s)"
                                 % (len(payload), len(data),
                                    next((i for i in range(min(len(data), len(payload)))
                                          if data[i] != payload[i]), min(len(data),
                                                                          len(payload)))))

    def expect_close(self, code, timeout=5, reason=None):
        """The next frame is a close with this code (None = empty close payload), then the
        server closes TCP without sending anything else."""
        try:
            f = self.recv_frame(timeout)
        except Closed as e:
            raise AssertionError("expected close %s, but: %s" % (code, e))
        if f.opcode != OP_CLOSE:
            raise AssertionError("expected close %s, got %r" % (code, f))
        if code is None:
            eq(f.payload, b"", "empty close payload")
        else:
            eq(f.close_code, code, "close code (reason %r)" % f.payload[2:])
            if reason is not None:
                eq(f.payload[2:], reason, "close reason")
        self.expect_eof()
        return f

    def expect_eof(self, timeout=3):
        eq(self.buf, b"", "bytes after the close frame")
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("server did not close TCP within %ss" % timeout)
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if not b:
                return
            raise AssertionError("data after the close frame: %r" % b[:60])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def fails_with(code, *frames_, port_=None, ext=(), pre_echo=None):
    """Open a connection, send the frames in one write, expect close `code` + TCP close."""
    ws = WS(port_ or port(), ext=ext)
    try:
        ws.send(b"".join(frames_))
        if pre_echo is not None:
            ws.expect_echo(*pre_echo)
        ws.expect_close(code)
    finally:
        ws.close()


def text_payload(n, seed=0):
    r = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
    return bytes(r.choice(alphabet) for _ in range(n)) if n < 4096 else \
        (bytes(r.choice(alphabet) for _ in range(4096)) * (n // 4096 + 1))[:n]


SIZES = [0, 1, 125, 126, 127, 65535, 65536]

# ---------------------------------------------------------------------------------------------
# 1. Framing


@test
def framing_text_echo_sizes():
    ws = WS(port())
    for n in SIZES:
        p = text_payload(n, n)
        ws.send_text(p)
        f = ws.recv_frame()
        eq((f.opcode, f.fin, f.rsv), (OP_TEXT, True, 0), "echo frame of %d text bytes" % n)
        eq(f.payload, p, "text echo of %d bytes" % n)
    ws.close()


@test
def framing_binary_echo_sizes():
    ws = WS(port())
    for n in SIZES:
        p = os.urandom(n)
        ws.send_frame(OP_BINARY, p)
        f = ws.recv_frame()
        eq((f.opcode, f.fin, f.rsv), (OP_BINARY, True, 0), "echo frame of %d binary bytes" % n)
        eq(f.payload, p, "binary echo of %d bytes" % n)
    ws.close()


@test
def framing_1mib_text_and_binary():
    ws = WS(port("big"))
    t = text_payload(1 << 20, 7)
    b = os.urandom(1 << 20)
    ws.send_text(t)
    ws.expect_echo(OP_TEXT, t, timeout=15)
    ws.send_frame(OP_BINARY, b)
    ws.expect_echo(OP_BINARY, b, timeout=15)
    b3 = os.urandom(3 << 20)
    ws.send_frame(OP_BINARY, b3)
    ws.expect_echo(OP_BINARY, b3, timeout=20)
    ws.close()


@test
def framing_byte_by_byte():
    ws = WS(port())
    p126 = os.urandom(130)
    data = (frame(OP_TEXT, b"") + frame(OP_TEXT, b"hello") + frame(OP_BINARY, p126) +
            frame(OP_PING, b"pp") + frame(OP_TEXT, b"x" * 125))
    ws.send_pieces(data, 1, delay=0.0005)
    ws.expect_echo(OP_TEXT, b"")
    ws.expect_echo(OP_TEXT, b"hello")
    ws.expect_echo(OP_BINARY, p126)
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_PONG, b"pp"), "pong after byte-by-byte ping")
    ws.expect_echo(OP_TEXT, b"x" * 125)
    ws.close()


@test
def framing_small_pieces():
    """Autobahn 1.1.8/1.2.8 style: 64 KiB frames chopped into odd pieces; headers split too."""
    ws = WS(port())
    t = text_payload(65535, 3)
    b = os.urandom(70000)
    ws.send_pieces(frame(OP_TEXT, t), 997)
    ws.expect_echo(OP_TEXT, t)
    ws.send_pieces(frame(OP_BINARY, b), [1, 2, 3, 5, 7, 11, 13, 1021, 4093])
    ws.expect_echo(OP_BINARY, b)
    # several frames in one write, the last split mid-header
    many = b"".join(frame(OP_TEXT, "m%d" % i) for i in range(50))
    whole = many + frame(OP_BINARY, b"tail" * 40)
    ws.send(whole[:-165])  # 3 bytes into the last frame's 8-byte header
    time.sleep(0.05)
    ws.send(whole[-165:])
    for i in range(50):
        ws.expect_echo(OP_TEXT, "m%d" % i)
    ws.expect_echo(OP_BINARY, b"tail" * 40)
    ws.close()


@test
def framing_frames_right_after_handshake():
    """Frames sent in the same write as the handshake request must not be lost."""
    ws = WS(port(), early=frame(OP_TEXT, "early") + frame(OP_BINARY, b"\x00\x01"))
    ws.expect_echo(OP_TEXT, "early")
    ws.expect_echo(OP_BINARY, b"\x00\x01")
    ws.close()


@test
def framing_concurrent_connections():
    conns = [WS(port()) for _ in range(30)]
    for r in range(5):
        for i, ws in enumerate(conns):
            ws.send_text("c%d-r%d" % (i, r))
    for r in range(5):
        for i, ws in enumerate(conns):
            ws.expect_echo(OP_TEXT, "c%d-r%d" % (i, r))
    for ws in conns:
        ws.send_frame(OP_CLOSE, close_payload(1000))
        ws.expect_close(1000)
        ws.close()

# ---------------------------------------------------------------------------------------------
# 2. Ping / pong


@test
def ping_payload_echoed_in_pong():
    ws = WS(port())
    for p in (b"", b"hello", bytes(range(125)), os.urandom(60)):
        ws.send_frame(OP_PING, p)
        f = ws.recv_frame()
        eq((f.opcode, f.fin, f.rsv), (OP_PONG, True, 0), "pong frame")
        eq(f.payload, p, "pong payload")
    ws.close()


@test
def ping_125_bytes_ok_then_echo():
    ws = WS(port())
    p = b"\xfe" * 125
    ws.send_frame(OP_PING, p)
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_PONG, p), "pong of a 125-byte ping")
    ws.send_text("still open")
    ws.expect_echo(OP_TEXT, "still open")
    ws.close()


@test
def ping_126_bytes_is_1002():
    fails_with(1002, frame(OP_PING, b"x" * 126))
    # also a ping announcing 126 via the 16-bit form, header only (fail on the first 2 bytes)
    fails_with(1002, frame(OP_PING, b"", form=16, length=126))


@test
def ping_ten_in_a_row_and_chopped():
    ws = WS(port())
    ws.send(b"".join(frame(OP_PING, b"p%d" % i) for i in range(10)))
    for i in range(10):
        f = ws.recv_frame()
        eq((f.opcode, f.payload), (OP_PONG, b"p%d" % i), "pong %d" % i)
    ws.send_pieces(frame(OP_PING, b"chopped ping payload"), 1, delay=0.001)
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_PONG, b"chopped ping payload"), "pong of a chopped ping")
    ws.close()


@test
def unsolicited_pong_ignored():
    ws = WS(port())
    ws.send(frame(OP_PONG, b"unsolicited") + frame(OP_PONG, b"") + frame(OP_TEXT, "after"))
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_TEXT, b"after"), "first frame after two pongs")
    ws.close()

# ---------------------------------------------------------------------------------------------
# 3. Reserved bits


@test
def rsv_bits_without_extension_1002():
    cases = [(OP_TEXT, RSV1), (OP_TEXT, RSV2), (OP_TEXT, RSV3), (OP_BINARY, RSV1 | RSV2),
             (OP_BINARY, RSV1 | RSV2 | RSV3), (OP_PING, RSV1), (OP_CLOSE, RSV3)]
    for op, rsv in cases:
        try:
            fails_with(1002, frame(op, b"hello" if op != OP_CLOSE else close_payload(1000),
                                   rsv=rsv))
        except AssertionError as e:
            raise AssertionError("opcode %#x rsv %#x: %s" % (op, rsv, e))


@test
def rsv_echo_first_then_1002_and_no_pong():
    """Autobahn 3.3: a valid echo, the bad frame, then a ping that must not be answered."""
    fails_with(1002, frame(OP_TEXT, "hello"), frame(OP_TEXT, "bad", rsv=RSV2),
               frame(OP_PING, b"nope"), pre_echo=(OP_TEXT, "hello"))


@test
def rsv2_rsv3_with_deflate_1002():
    ext = ("permessage-deflate",)
    fails_with(1002, frame(OP_TEXT, "x", rsv=RSV2), ext=ext)
    fails_with(1002, frame(OP_TEXT, "x", rsv=RSV1 | RSV3), ext=ext)
    fails_with(1002, frame(OP_PING, b"x", rsv=RSV1), ext=ext)

# ---------------------------------------------------------------------------------------------
# 4. Opcodes


@test
def reserved_opcodes_1002():
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        try:
            fails_with(1002, frame(OP_TEXT, "hello"), frame(op, b"payload"),
                       frame(OP_PING, b"nope"), pre_echo=(OP_TEXT, "hello"))
        except AssertionError as e:
            raise AssertionError("opcode %#x: %s" % (op, e))


@test
def reserved_opcode_empty_payload_1002():
    fails_with(1002, frame(5, b""))
    fails_with(1002, frame(0xB, b""))

# ---------------------------------------------------------------------------------------------
# 5. Fragmentation


@test
def fragmented_text_echo_as_one_message():
    ws = WS(port())
    ws.send(frame(OP_TEXT, "Hel", fin=False) + frame(OP_CONT, "lo", fin=False) +
            frame(OP_CONT, " world"))
    f = ws.recv_frame()
    eq((f.opcode, f.fin, f.payload), (OP_TEXT, True, b"Hello world"), "reassembled text")
    ws.close()


@test
def fragmented_binary_with_empty_fragments():
    ws = WS(port())
    a, b = os.urandom(1000), os.urandom(70000)
    ws.send(frame(OP_BINARY, b"", fin=False) + frame(OP_CONT, a, fin=False) +
            frame(OP_CONT, b"", fin=False) + frame(OP_CONT, b, fin=False) + frame(OP_CONT, b""))
    f = ws.recv_frame()
    eq((f.opcode, f.fin), (OP_BINARY, True), "reassembled binary frame")
    eq(f.payload, a + b, "reassembled binary payload")
    # all-empty fragmented message
    ws.send(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False) + frame(OP_CONT, b""))
    ws.expect_echo(OP_TEXT, b"")
    ws.close()


@test
def fragments_in_separate_writes():
    ws = WS(port())
    parts = [os.urandom(n) for n in (1, 300, 65536, 2, 5000)]
    for i, p in enumerate(parts):
        ws.send_frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(parts) - 1)
        time.sleep(0.01)
    ws.expect_echo(OP_BINARY, b"".join(parts))
    ws.close()


@test
def ping_between_fragments_answered_first():
    ws = WS(port())
    ws.send(frame(OP_TEXT, "frag1-", fin=False) + frame(OP_PING, b"mid") +
            frame(OP_CONT, "frag2-", fin=False) + frame(OP_PONG, b"unsolicited") +
            frame(OP_CONT, "frag3"))
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_PONG, b"mid"), "pong comes before the message")
    ws.expect_echo(OP_TEXT, "frag1-frag2-frag3")
    # the same, with the ping in a separate write while the message waits
    ws.send_frame(OP_TEXT, "a", fin=False)
    ws.send_frame(OP_PING, b"wait")
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_PONG, b"wait"), "pong while the message is incomplete")
    ws.send_frame(OP_CONT, "b")
    ws.expect_echo(OP_TEXT, "ab")
    ws.close()


@test
def continuation_without_start_1002():
    fails_with(1002, frame(OP_CONT, "orphan"))
    fails_with(1002, frame(OP_CONT, "orphan", fin=False))
    # a finished message, then a stray continuation
    fails_with(1002, frame(OP_TEXT, "done"), frame(OP_CONT, "stray"), pre_echo=(OP_TEXT, "done"))


@test
def new_data_frame_inside_fragmented_message_1002():
    fails_with(1002, frame(OP_TEXT, "start", fin=False), frame(OP_TEXT, "again"))
    fails_with(1002, frame(OP_BINARY, b"start", fin=False), frame(OP_TEXT, "again", fin=False))
    fails_with(1002, frame(OP_TEXT, "start", fin=False), frame(OP_BINARY, b"x"))


@test
def fragmented_control_frames_1002():
    fails_with(1002, frame(OP_PING, b"frag", fin=False), frame(OP_CONT, b"ment"))
    fails_with(1002, frame(OP_PONG, b"frag", fin=False), frame(OP_CONT, b"ment"))
    fails_with(1002, frame(OP_CLOSE, close_payload(1000), fin=False))

# ---------------------------------------------------------------------------------------------
# 6. UTF-8

VALID_UTF8 = [
    "κόσμε", "Hello-µ@ßöäüàá-UTF-8!!", "\u0080", "\u07ff", "\u0800", "\uffff", "\ufffd",
    "\U00010000", "\U0010ffff", "emoji \U0001F600 and CJK \u4e2d\u6587", "\ud7ff\ue000",
    "a" * 200 + "\U0001F600",
]

INVALID_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",  # surrogate U+D800
    b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf",
    b"\xe0\x9f\xbf", b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",
    b"\xc2", b"\xe1\x80", b"\xf0\x90\x80", b"abc\xc2", b"\xc2\x41", b"\xe1\x80\x41",
    b"ok" * 100 + b"\xf5\x80\x80\x80",
]


@test
def utf8_valid_multibyte_echo():
    ws = WS(port())
    for s in VALID_UTF8:
        ws.send_text(s)
        ws.expect_echo(OP_TEXT, s)
    ws.close()


@test
def utf8_code_points_split_across_fragments():
    ws = WS(port())
    raw = "κόσμε \U0001F600 \u0800".encode()
    # every split point into two fragments
    for i in range(len(raw) + 1):
        ws.send(frame(OP_TEXT, raw[:i], fin=False) + frame(OP_CONT, raw[i:]))
        ws.expect_echo(OP_TEXT, raw)
    # one byte per fragment (Autobahn 6.2.4)
    ws.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, raw[i:i + 1], fin=i == len(raw) - 1)
                     for i in range(len(raw))))
    ws.expect_echo(OP_TEXT, raw)
    # a single frame chopped byte by byte on the wire
    ws.send_pieces(frame(OP_TEXT, raw), 1)
    ws.expect_echo(OP_TEXT, raw)
    ws.close()


@test
def utf8_invalid_sequences_1007():
    for bad in INVALID_UTF8:
        try:
            fails_with(1007, frame(OP_TEXT, bad))
        except AssertionError as e:
            raise AssertionError("payload %r: %s" % (bad, e))


@test
def utf8_invalid_in_binary_is_fine():
    ws = WS(port())
    ws.send_frame(OP_BINARY, b"\xff\xfe\xc0\xaf")
    ws.expect_echo(OP_BINARY, b"\xff\xfe\xc0\xaf")
    ws.close()


@test
def utf8_fail_fast_single_frame():
    """A text frame announcing 100000 bytes whose first bytes are invalid: the server must
    fail at once (RFC 6455 §8.1), not wait for the rest of the frame."""
    ws = WS(port())
    t0 = time.time()
    ws.send(frame(OP_TEXT, b"hello\xc0\xafworld", length=100000))
    ws.expect_close(1007, timeout=2)
    ok(time.time() - t0 < 1.5, "fail-fast took %.2fs" % (time.time() - t0))
    ws.close()


@test
def utf8_fail_fast_first_fragment():
    """Autobahn 6.4.1/6.4.2: invalid bytes in the first fragment of a message whose later
    fragments never come."""
    ws = WS(port())
    ws.send(frame(OP_TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80",
                  fin=False))
    ws.expect_close(1007, timeout=2)
    ws.close()
    ws = WS(port())
    ws.send(frame(OP_TEXT, b"valid start ", fin=False) +
            frame(OP_CONT, b"\xed\xa0\x80 and the rest never comes", length=50000, fin=False))
    ws.expect_close(1007, timeout=2)
    ws.close()


@test
def utf8_invalid_split_across_fragments_1007():
    fails_with(1007, frame(OP_TEXT, b"\xce", fin=False), frame(OP_CONT, b"\x41"))
    fails_with(1007, frame(OP_TEXT, b"ab\xed", fin=False), frame(OP_CONT, b"\xa0\x80"))
    fails_with(1007, frame(OP_TEXT, b"\xf4", fin=False), frame(OP_CONT, b"\x90", fin=False),
               frame(OP_CONT, b"\x80\x80"))
    # the message ends inside a sequence
    fails_with(1007, frame(OP_TEXT, b"ok\xe2\x82", fin=False), frame(OP_CONT, b""))
    fails_with(1007, frame(OP_TEXT, b"ok\xe2", fin=False), frame(OP_CONT, b"\x82"))

# ---------------------------------------------------------------------------------------------
# 7. Close handling

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@test
def close_valid_codes_echoed():
    for i, code in enumerate(VALID_CODES):
        ws = WS(port())
        ws.send_frame(OP_CLOSE, close_payload(code, "reason" if i % 2 else ""))
        try:
            ws.expect_close(code)
        except AssertionError as e:
            raise AssertionError("code %d: %s" % (code, e))
        ws.close()


@test
def close_invalid_codes_1002():
    for code in INVALID_CODES:
        try:
            fails_with(1002, frame(OP_CLOSE, close_payload(code)))
        except AssertionError as e:
            raise AssertionError("code %d: %s" % (code, e))


@test
def close_one_byte_payload_1002():
    fails_with(1002, frame(OP_CLOSE, b"\x03"))


@test
def close_reason_valid_utf8():
    ws = WS(port())
    ws.send_frame(OP_CLOSE, close_payload(1000, "κόσμε \U0001F600 bye"))
    ws.expect_close(1000)
    ws.close()
    # the longest allowed reason: 123 bytes (125-byte control payload)
    ws = WS(port())
    ws.send_frame(OP_CLOSE, close_payload(1001, "r" * 123))
    ws.expect_close(1001)
    ws.close()


@test
def close_126_byte_payload_1002():
    fails_with(1002, frame(OP_CLOSE, close_payload(1000, "r" * 124)))


@test
def close_reason_invalid_utf8_1007():
    fails_with(1007, frame(OP_CLOSE, close_payload(1000, b"bad \xce\xba\xe1\xbd\xb9\xed\xa0\x80")))
    fails_with(1007, frame(OP_CLOSE, close_payload(1000, b"\xc2")))


@test
def close_empty_gets_empty_close():
    ws = WS(port())
    ws.send_frame(OP_CLOSE, b"")
    ws.expect_close(None)
    ws.close()


@test
def close_then_server_closes_tcp_without_client_eof():
    """After the close exchange the server closes TCP first (RFC 6455 §7.1.1) even though
    the client keeps its side open."""
    ws = WS(port())
    ws.send_text("bye soon")
    ws.expect_echo(OP_TEXT, "bye soon")
    t0 = time.time()
    ws.send_frame(OP_CLOSE, close_payload(1000))
    ws.expect_close(1000, timeout=2)
    ok(time.time() - t0 < 1.5, "TCP close took %.2fs" % (time.time() - t0))
    ws.close()


@test
def close_data_after_close_ignored():
    """Autobahn 7.1.x: text, ping, second close after the client's close are not answered."""
    ws = WS(port())
    ws.send(frame(OP_TEXT, "before") + frame(OP_CLOSE, close_payload(1000)) +
            frame(OP_TEXT, "after") + frame(OP_PING, b"after") +
            frame(OP_CLOSE, close_payload(1001)))
    ws.expect_echo(OP_TEXT, "before")
    ws.expect_close(1000)
    ws.close()


@test
def close_in_the_middle_of_fragmented_message():
    ws = WS(port())
    ws.send(frame(OP_TEXT, "part", fin=False) + frame(OP_CLOSE, close_payload(1000)))
    ws.expect_close(1000)
    ws.close()


@test
def close_after_large_message():
    ws = WS(port())
    p = os.urandom(512 << 10)
    ws.send(frame(OP_BINARY, p) + frame(OP_PING, b"x") + frame(OP_CLOSE, close_payload(1000)))
    ws.expect_echo(OP_BINARY, p)
    f = ws.recv_frame()
    eq((f.opcode, f.payload), (OP_PONG, b"x"), "pong before close")
    ws.expect_close(1000)
    ws.close()

# ---------------------------------------------------------------------------------------------
# 8. Limits


@test
def limit_message_at_and_over_max_1009():
    ws = WS(port("limit"))
    p = os.urandom(65536)
    ws.send_frame(OP_BINARY, p)
    ws.expect_echo(OP_BINARY, p)
    ws.close()
    fails_with(1009, frame(OP_BINARY, os.urandom(65537)), port_=port("limit"))
    fails_with(1009, frame(OP_TEXT, text_payload(65537)), port_=port("limit"))


@test
def limit_announced_length_fails_fast():
    """A frame announcing 2^40 bytes: close 1009 as soon as the size is known."""
    ws = WS(port("limit"))
    ws.send(frame(OP_BINARY, b"x" * 100, length=1 << 40))
    ws.expect_close(1009, timeout=2)
    ws.close()


@test
def limit_fragmented_message_1009():
    fails_with(1009, frame(OP_BINARY, os.urandom(30000), fin=False),
               frame(OP_CONT, os.urandom(30000), fin=False), frame(OP_CONT, os.urandom(30000)),
               port_=port("limit"))
    # many small fragments adding up (Autobahn 9.x style)
    fails_with(1009, *[frame(OP_TEXT if i == 0 else OP_CONT, b"y" * 1000, fin=i == 69)
                       for i in range(70)], port_=port("limit"))
    # exactly at the limit in fragments: fine
    ws = WS(port("limit"))
    parts = [os.urandom(16384) for _ in range(4)]
    ws.send(b"".join(frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == 3)
                     for i, p in enumerate(parts)))
    ws.expect_echo(OP_BINARY, b"".join(parts))
    ws.close()


@test
def limit_compressed_message_1009():
    ws = WS(port("limit"), ext=("permessage-deflate",))
    ok(ws.pmd is not None, "deflate negotiated")
    data = os.urandom(70000)  # incompressible: the compressed frame is over the limit too
    ws.send_compressed(OP_BINARY, data)
    ws.expect_close(1009)
    ws.close()
    ws = WS(port("limit"), ext=("permessage-deflate",))
    data = text_payload(66000, 5)  # compressible: the frame is small, the message is not
    ws.send_compressed(OP_TEXT, data)
    ws.expect_close(1009)
    ws.close()


@test
def limit_64bit_length_msb_set_1002():
    fails_with(1002, frame(OP_BINARY, b"abc", form=64, length=(1 << 63) + 3))
    fails_with(1002, frame(OP_BINARY, b"abc", form=64, length=0xFFFFFFFFFFFFFFFF))


@test
def limit_non_minimal_length_1002():
    fails_with(1002, frame(OP_TEXT, b"hello", form=16))
    fails_with(1002, frame(OP_TEXT, b"hello", form=64))
    fails_with(1002, frame(OP_BINARY, os.urandom(200), form=64))
    fails_with(1002, frame(OP_PING, b"", form=16))


@test
def limit_unmasked_client_frame_1002():
    fails_with(1002, frame(OP_TEXT, "hello", mask=False))
    fails_with(1002, frame(OP_TEXT, "ok"), frame(OP_PING, b"x", mask=False),
               pre_echo=(OP_TEXT, "ok"))

# ---------------------------------------------------------------------------------------------
# 9. Opening handshake


def raw_handshake(req):
    rs = request(port(), req)
    ok(rs, "no response to %r" % req[:60])
    return rs[0]


@test
def policy_origin_allow_list():
    p = port("policy")
    req, _ = handshake_request(extra=("Origin: https://evil.example",))
    r = request(p, req)[0]
    eq(r.status, 403, "foreign Origin refused")
    ok(b"Origin" in r.body, "the body says why: %r" % r.body)
    req, _ = handshake_request(extra=())
    eq(request(p, req)[0].status, 403, "no Origin with an allow-list")
    ws = WS(p, extra=("Origin: HTTPS://GOOD.EXAMPLE",))  # case-insensitive
    ws.send_text("ok")
    ws.expect_echo(OP_TEXT, "ok")
    ws.close()


@test
def policy_subprotocol_server_preference():
    p = port("policy")
    cases = [("superchat, chat", "chat"), ("superchat", "superchat"), ("a, b", None),
             ("Chat", None), ("x, superchat, y, chat", "chat")]
    for offered, want in cases:
        ws = WS(p, extra=("Origin: http://localhost:8080", "Sec-WebSocket-Protocol: " + offered))
        eq(ws.resp.header("sec-websocket-protocol"), want, "offered %r" % offered)
        ws.close()
    # offers spread over two fields count together
    ws = WS(p, extra=("Origin: http://localhost:8080", "Sec-WebSocket-Protocol: superchat",
                      "Sec-WebSocket-Protocol: chat"))
    eq(ws.resp.header("sec-websocket-protocol"), "chat", "two fields")
    ws.close()
    # a second configured path works the same
    ws = WS(p, path="/other", extra=("Origin: http://localhost:8080",))
    ws.send_text("other")
    ws.expect_echo(OP_TEXT, "other")
    ws.close()


@test
def policy_required_subprotocol():
    p = port("reqsub")
    req, _ = handshake_request(extra=("Sec-WebSocket-Protocol: v1.proto",))
    r = request(p, req)[0]
    eq(r.status, 400, "no acceptable subprotocol")
    ok(b"subprotocol" in r.body, "reason in the body: %r" % r.body)
    eq(request(p, handshake_request()[0])[0].status, 400, "none offered")
    ws = WS(p, extra=("Sec-WebSocket-Protocol: v1.proto, v2.proto",))
    eq(ws.resp.header("sec-websocket-protocol"), "v2.proto", "the supported one")
    ws.close()


@test
def policy_idle_timeout_closes_1001():
    ws = WS(port("idle"))
    ws.send_text("x")
    ws.expect_echo(OP_TEXT, "x")
    t0 = time.time()
    ws.expect_close(1001, timeout=5)
    ok(0.3 <= time.time() - t0 <= 3, "closed after %.2fs idle (timeout 0.4s)" % (time.time() - t0))
    ws.close()


@test
def handshake_success_headers():
    ws = WS(port())
    r = ws.resp
    eq(r.header("sec-websocket-extensions"), None, "no extension when none offered")
    eq(r.header("sec-websocket-protocol"), None, "no subprotocol when none offered")
    eq(r.header("content-length"), None, "no Content-Length on a 101")
    eq(r.header("transfer-encoding"), None, "no Transfer-Encoding on a 101")
    ws.close()


@test
def handshake_tolerant_header_forms():
    """Header values are case-insensitive tokens/lists (Firefox sends 'keep-alive, Upgrade')."""
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /echo HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\n"
           "connection: keep-alive, Upgrade\r\nsec-websocket-key:   %s  \r\n"
           "sec-websocket-version: 13\r\n\r\n" % key).encode()
    s = connect(port())
    s.sendall(req + frame(OP_TEXT, "hi"))
    data = b""
    deadline = time.time() + 5
    while b"\r\n\r\n" not in data and time.time() < deadline:
        b = s.recv(65536)
        if not b:
            break
        data += b
    r, rest = parse_one(data, head_only=True)
    ok(r is not None, "a response: %r" % data)
    eq(r.status, 101, "status")
    eq(r.header("sec-websocket-accept"), accept_of(key), "accept for a key with whitespace")
    s.settimeout(5)
    while len(rest) < 4:
        rest += s.recv(65536)
    eq(rest[:4], b"\x81\x02hi", "echo after a tolerant handshake")
    s.close()


@test
def handshake_missing_key_400():
    r = raw_handshake(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
    eq(r.status, 400, "status")


@test
def handshake_bad_key_400():
    for key in (base64.b64encode(os.urandom(15)).decode(), base64.b64encode(os.urandom(17)).decode(),
                "not base64 at all!!!!!==", "", "dGhlIHNhbXBsZSBub25jZQ"):
        req, _ = handshake_request(key=key)
        if key == "":
            req = req.replace(b"Sec-WebSocket-Key: \r\n", b"Sec-WebSocket-Key:\r\n")
        r = raw_handshake(req)
        eq(r.status, 400, "status for key %r" % key)


@test
def handshake_two_keys_400():
    req, _ = handshake_request(extra=("Sec-WebSocket-Key: %s" %
                                      base64.b64encode(os.urandom(16)).decode(),))
    eq(raw_handshake(req).status, 400, "status with two Sec-WebSocket-Key fields")


@test
def handshake_version_8_426():
    req, _ = handshake_request(version="8")
    r = raw_handshake(req)
    eq(r.status, 426, "status")
    eq(r.header("sec-websocket-version"), "13", "Sec-WebSocket-Version in the 426")


@test
def handshake_post_400():
    # RFC 6455 §4.1 requires GET; §4.2.1: a non-conforming handshake gets an HTTP error (the
    # WebSocket gate in src/ws/server.c answers 400, not the router's 405).
    req, _ = handshake_request()
    req = req.replace(b"GET /echo", b"POST /echo").replace(b"\r\n\r\n",
                                                           b"\r\nContent-Length: 0\r\n\r\n")
    r = raw_handshake(req)
    ok(r.status != 101, "POST must not be upgraded")
    eq(r.status, 400, "status of a POST handshake")


@test
def handshake_upgrade_without_connection_is_plain_http():
    key = base64.b64encode(os.urandom(16)).decode()
    r = raw_handshake(("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    eq(r.status, 404, "plain GET /echo (no plain handler)")
    eq(r.header("sec-websocket-accept"), None, "no accept header")


@test
def handshake_http10_not_upgraded():
    key = base64.b64encode(os.urandom(16)).decode()
    r = raw_handshake(("GET /echo HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    eq(r.status, 404, "HTTP/1.0 handshake is served as plain HTTP")
    eq(r.header("sec-websocket-accept"), None, "no accept header")


@test
def handshake_unknown_path_404():
    req, _ = handshake_request(path="/no-such-ws")
    r = raw_handshake(req)
    eq(r.status, 404, "websocket handshake on a missing path")

# ---------------------------------------------------------------------------------------------
# 10. permessage-deflate (RFC 7692)


def negotiate(*offers, p=None):
    ws = WS(p or port(), ext=offers)
    return ws


@test
def pmd_negotiation_plain_offer():
    ws = negotiate("permessage-deflate")
    ok(ws.pmd is not None, "permessage-deflate accepted")
    eq(ws.pmd, {}, "no parameters in the response to a plain offer (got %r)" % ws.ext_header)
    ws.close()


@test
def pmd_negotiation_client_max_window_bits():
    ws = negotiate("permessage-deflate; client_max_window_bits")
    ok(ws.pmd is not None, "accepted")
    v = ws.pmd.get("client_max_window_bits", "15")
    ok(v is not None and v.isdigit() and 8 <= int(v) <= 15,
       "client_max_window_bits in the response must have a value 8..15: %r" % ws.ext_header)
    # and the negotiated parameters actually work
    data = text_payload(5000, 11)
    ws.send_compressed(OP_TEXT, data)
    ws.expect_echo(OP_TEXT, data)
    ws.close()
    ws = negotiate("permessage-deflate")
    ok("client_max_window_bits" not in ws.pmd,
       "client_max_window_bits not offered, so it must not be answered (RFC 7692 §7.1.2.2)")
    ws.close()


@test
def pmd_negotiation_server_max_window_bits_10():
    ws = negotiate("permessage-deflate; server_max_window_bits=10")
    ok(ws.pmd is not None, "accepted")
    v = ws.pmd.get("server_max_window_bits")
    ok(v is not None and v.isdigit() and 8 <= int(v) <= 10,
       "response must carry server_max_window_bits <= 10 (RFC 7692 §7.1.2.1): %r" % ws.ext_header)
    # distances of 2000..6000 bytes: a server using a window larger than 2^bits would produce
    # back-references the 2^bits inflater cannot resolve.
    block = os.urandom(2000)
    data = block * 3 + os.urandom(100) + block
    ws.send_frame(OP_BINARY, data)
    op, got, compressed = ws.recv_message()
    eq(got, data, "echo inflated with a %s-bit window" % v)
    ok(compressed, "server compressed a 6 KB message")
    ws.close()


@test
def pmd_negotiation_server_no_context_takeover():
    ws = negotiate("permessage-deflate; server_no_context_takeover")
    ok(ws.pmd is not None and "server_no_context_takeover" in ws.pmd,
       "response must include server_no_context_takeover: %r" % ws.ext_header)
    data = text_payload(3000, 21)
    for _ in range(3):
        ws.send_frame(OP_TEXT, data)
        op, got, compressed = ws.recv_message()  # fresh inflater for every message
        eq(got, data, "echo inflated without context")
        ok(compressed, "compressed echo")
    ws.close()


@test
def pmd_negotiation_invalid_then_valid_offer():
    for offers, want in [
            (("permessage-deflate; server_max_window_bits=7, permessage-deflate",), {}),
            (("permessage-deflate; bogus_param, permessage-deflate; client_max_window_bits",),
             None),
            (("permessage-deflate; server_no_context_takeover=1",
              "permessage-deflate; server_no_context_takeover"), "snct"),
            (("permessage-deflate; server_max_window_bits=16, "
              "permessage-deflate; server_max_window_bits=12",), "smwb12")]:
        ws = negotiate(*offers)
        ok(ws.pmd is not None, "second offer accepted for %r" % (offers,))
        if want == {}:
            eq(ws.pmd, {}, "response to %r" % (offers,))
        elif want == "snct":
            ok("server_no_context_takeover" in ws.pmd, "response %r" % ws.ext_header)
        elif want == "smwb12":
            v = ws.pmd.get("server_max_window_bits")
            ok(v is not None and 8 <= int(v) <= 12, "response %r" % ws.ext_header)
        data = text_payload(1000, 1)
        ws.send_compressed(OP_TEXT, data)
        ws.expect_echo(OP_TEXT, data)
        ws.close()


@test
def pmd_negotiation_only_invalid_offers():
    for offer in ("permessage-deflate; server_max_window_bits=16",
                  "permessage-deflate; server_max_window_bits=7",
                  "permessage-deflate; server_max_window_bits",
                  "permessage-deflate; server_max_window_bits=010",
                  "permessage-deflate; client_max_window_bits=7",
                  "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                  "permessage-deflate; unknown=1",
                  "permessage-deflate; server_no_context_takeover=yes"):
        ws = negotiate(offer)
        eq(ws.ext_header, None, "no extension for the invalid offer %r" % offer)
        ws.send_text("plain")
        ws.expect_echo(OP_TEXT, "plain")
        ws.close()


@test
def pmd_unknown_extension_ignored():
    ws = negotiate("x-webkit-deflate-frame")
    eq(ws.ext_header, None, "unknown extension alone")
    ws.close()
    ws = negotiate("x-foo; bar=1, permessage-deflate")
    eq(ws.ext_header is not None and parse_extensions(ws.ext_header)[0][0], "permessage-deflate",
       "only permessage-deflate answered")
    ws.close()


@test
def pmd_disabled_server_declines():
    ws = WS(port("nodeflate"), ext=("permessage-deflate; client_max_window_bits",))
    eq(ws.ext_header, None, "--no-deflate answers no extension")
    fails_with(1002, frame(OP_TEXT, "x", rsv=RSV1), port_=port("nodeflate"),
               ext=("permessage-deflate",))
    ws.close()


@test
def pmd_compressed_echo_context_takeover():
    ws = negotiate("permessage-deflate; client_max_window_bits")
    msgs = [(OP_TEXT, text_payload(200, 1)), (OP_TEXT, text_payload(200, 1)),
            (OP_BINARY, os.urandom(100) * 5), (OP_TEXT, "κόσμε " * 40),
            (OP_BINARY, bytes(1000)), (OP_TEXT, text_payload(100000, 9))]
    for i, (op, m) in enumerate(msgs):
        if isinstance(m, str):
            m = m.encode()
        ws.send_compressed(op, m)
        got_op, got, compressed = ws.recv_message()
        eq((got_op, got), (op, m), "compressed echo %d" % i)
        ok(compressed, "server compresses a %d-byte echo (threshold 64)" % len(m))
    # uncompressed messages may be mixed in (RSV1 is per message)
    ws.send_text("plain in between")
    ws.expect_echo(OP_TEXT, "plain in between")
    ws.send_compressed(OP_TEXT, text_payload(200, 1))
    ws.expect_echo(OP_TEXT, text_payload(200, 1))
    # empty compressed message (a lone 0x00 after stripping the tail works too)
    ws.send_compressed(OP_TEXT, b"")
    ws.expect_echo(OP_TEXT, b"")
    ws.send_frame(OP_BINARY, b"\x00", rsv=RSV1)
    ws.expect_echo(OP_BINARY, b"")
    ws.close()


@test
def pmd_fragmented_compressed_message():
    ws = negotiate("permessage-deflate")
    data = text_payload(30000, 13) + "κόσμε".encode() * 100
    comp = deflate_message(ws.deflater, data)
    a, b = len(comp) // 3, 2 * len(comp) // 3
    ws.send(frame(OP_TEXT, comp[:a], fin=False, rsv=RSV1) + frame(OP_CONT, comp[a:b], fin=False) +
            frame(OP_CONT, comp[b:]))
    ws.expect_echo(OP_TEXT, data)
    # a fragment boundary inside a multi-byte character after inflation, one byte per frame
    data = "ü€😀".encode() * 30
    comp = deflate_message(ws.deflater, data)
    ws.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, comp[i:i + 1],
                           fin=i == len(comp) - 1, rsv=RSV1 if i == 0 else 0)
                     for i in range(len(comp))))
    ws.expect_echo(OP_TEXT, data)
    ws.close()


@test
def pmd_rsv1_on_continuation_1002():
    ws = negotiate("permessage-deflate")
    comp = deflate_message(ws.deflater, text_payload(2000, 3))
    ws.send(frame(OP_TEXT, comp[:100], fin=False, rsv=RSV1) +
            frame(OP_CONT, comp[100:], rsv=RSV1))
    ws.expect_close(1002)
    ws.close()
    ws = negotiate("permessage-deflate")
    ws.send(frame(OP_TEXT, "plain", fin=False) + frame(OP_CONT, b"x", rsv=RSV1))
    ws.expect_close(1002)
    ws.close()


@test
def pmd_decompression_bomb_1009():
    ws = WS(port("limit"), ext=("permessage-deflate",))
    comp = deflate_message(zlib.compressobj(9, zlib.DEFLATED, -15), bytes(50 << 20))
    ok(len(comp) < 60000, "bomb is %d bytes" % len(comp))
    t0 = time.time()
    ws.send_frame(OP_BINARY, comp, rsv=RSV1)
    ws.expect_close(1009)
    ok(time.time() - t0 < 2, "bomb rejected in %.2fs" % (time.time() - t0))
    ws.close()
    # a small bomb: 5 KB of compressed data past a 64 KiB limit
    ws = WS(port("limit"), ext=("permessage-deflate",))
    comp = deflate_message(zlib.compressobj(9, zlib.DEFLATED, -15), b"A" * (5 << 20))
    ok(len(comp) < 8000, "small bomb is %d bytes" % len(comp))
    ws.send_frame(OP_TEXT, comp, rsv=RSV1)
    ws.expect_close(1009)
    ws.close()


@test
def pmd_invalid_compressed_data_1007():
    ws = negotiate("permessage-deflate")
    ws.send_frame(OP_BINARY, b"\xff\xff\xff\xff garbage", rsv=RSV1)
    ws.expect_close(1007)
    ws.close()


@test
def pmd_compressed_invalid_utf8_1007():
    ws = negotiate("permessage-deflate")
    ws.send_compressed(OP_TEXT, b"valid then \xed\xa0\x80 invalid" * 10)
    ws.expect_close(1007)
    ws.close()

# ---------------------------------------------------------------------------------------------
# 11. Hostile peers


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@test
def hostile_ping_flood():
    ws = WS(port())
    n = 5000
    ws.send(b"".join(frame(OP_PING, b"%d" % i) for i in range(n)) + frame(OP_TEXT, "done"))
    last = -1
    count = 0
    deadline = time.time() + 20
    while True:
        f = ws.recv_frame(max(deadline - time.time(), 0.01))
        if f.opcode == OP_TEXT:
            eq(f.payload, b"done", "echo after the flood")
            break
        eq(f.opcode, OP_PONG, "frame during the flood")
        i = int(f.payload)
        ok(i > last, "pongs out of order: %d after %d" % (i, last))
        last = i
        count += 1
    # RFC 6455 §5.5.3 lets a busy endpoint answer only the latest ping; the latest must be.
    eq(last, n - 1, "the last ping is answered")
    ws.close()
    other = WS(port())
    other.send_text("alive")
    other.expect_echo(OP_TEXT, "alive", timeout=2)
    other.close()
    ok(srv().proc.poll() is None, "server still running")


@test
def hostile_slow_reader_bounded_memory():
    """A client that pushes large messages to /echo but never reads the echoes: the server
    must stop reading (backpressure) or drop it, not buffer without bound."""
    s = srv()
    slow = WS(s.port)
    msg = frame(OP_BINARY, os.urandom(512 << 10))
    base = vmrss_kb(s.proc.pid)
    peak = base
    sent = 0
    target = 300 << 20
    slow.sock.setblocking(False)
    deadline = time.time() + 5
    view = memoryview(msg)
    pos = 0
    last_sample = 0
    echo_times = []
    probe = WS(s.port)
    closed_by_server = False
    while sent < target and time.time() < deadline:
        try:
            n = slow.sock.send(view[pos:])
            sent += n
            pos = (pos + n) % len(msg)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            select.select([], [slow.sock], [], 0.1)
        except (BrokenPipeError, ConnectionResetError):
            closed_by_server = True
            break
        if time.time() - last_sample > 0.2:
            last_sample = time.time()
            peak = max(peak, vmrss_kb(s.proc.pid))
            t0 = time.time()
            probe.send_text("probe")
            probe.expect_echo(OP_TEXT, "probe", timeout=2)
            echo_times.append(time.time() - t0)
    peak = max(peak, vmrss_kb(s.proc.pid))
    ok(peak < 200 * 1024, "server RSS grew to %d MB (base %d MB) after %d MB pushed" %
       (peak // 1024, base // 1024, sent >> 20))
    ok(echo_times, "probe echoes were measured")
    ok(max(echo_times) < 1.0, "probe echo took %.2fs while the slow reader pushed" %
       max(echo_times))
    ok(s.proc.poll() is None, "server still running")
    slow.close()
    probe.send_text("after")
    probe.expect_echo(OP_TEXT, "after", timeout=2)
    probe.close()
    # the slow connection's memory is released once it is gone
    time.sleep(0.5)
    print("  slow reader: pushed %d MB%s, server RSS base %d MB peak %d MB now %d MB" %
          (sent >> 20, " (server closed it)" if closed_by_server else "", base // 1024,
           peak // 1024, vmrss_kb(s.proc.pid) // 1024))

# ---------------------------------------------------------------------------------------------
# 12. Heartbeats and shutdown


def ping_server():
    return Server("--no-access-log", "--ws-ping-interval", "300")


@test
def heartbeat_ping_after_idle():
    with ping_server() as sp:
        ws = WS(sp.port)
        t0 = time.time()
        f = ws.recv_frame(timeout=3)
        dt = time.time() - t0
        eq((f.opcode, f.payload), (OP_PING, b""), "server heartbeat frame")
        ok(0.25 <= dt <= 2.0, "ping arrived after %.2fs (interval 0.3s)" % dt)
        ws.send_frame(OP_PONG, f.payload)
        ws.send_text("after pong")
        ws.expect_echo(OP_TEXT, "after pong")
        ws.send_frame(OP_CLOSE, close_payload(1000))
        ws.expect_close(1000)
        ws.close()


@test
def heartbeat_next_ping_one_interval_after_pong():
    """After the pong the connection is idle again: the next ping is due one ping interval
    later (a regression test: the timer once stayed armed at the old pong deadline)."""
    with ping_server() as sp:
        ws = WS(sp.port)
        f = ws.recv_frame(timeout=3)
        eq(f.opcode, OP_PING, "first heartbeat")
        ws.send_frame(OP_PONG, f.payload)
        t1 = time.time()
        try:
            f = ws.recv_frame(timeout=2.5)
        except AssertionError:
            raise AssertionError("no second ping within 2.5s of answering the first "
                                 "(ping interval 0.3s)")
        eq(f.opcode, OP_PING, "second heartbeat")
        ok(0.25 <= time.time() - t1 <= 2.0, "second ping after %.2fs" % (time.time() - t1))
        ws.close()


@test
def heartbeat_no_pong_closes():
    """A peer that never answers pings is disconnected once the pong timeout passes."""
    with Server("--ws-ping-interval", "300", "--ws-pong-timeout", "400", "--no-access-log") as sp:
        ws = WS(sp.port)
        t0 = time.time()
        f = ws.recv_frame(timeout=3)
        eq(f.opcode, OP_PING, "heartbeat")
        ws.sock.settimeout(5)
        try:
            while ws.sock.recv(4096):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
        dt = time.time() - t0
        ok(0.6 <= dt <= 3.0, "closed %.2fs after connecting (ping 0.3s + pong timeout 0.4s)" % dt)
        ws.close()


@test
def heartbeat_traffic_defers_ping():
    """No ping while messages flow every 30 ms (the interval counts idle time)."""
    with ping_server() as sp:
        ws = WS(sp.port)
        prev = time.time()
        for i in range(40):
            t = time.time()
            ws.send_text("busy %d" % i)
            f = ws.recv_frame()
            if f.opcode == OP_PING:
                # The server saw message i-1 no earlier than `prev`; a ping is only allowed
                # once 0.3 s passed since then (a stalled test process may cause that).
                gap = time.time() - prev
                ok(gap >= 0.3, "ping %.3fs after the previous message (interval 0.3s)" % gap)
                ws.send_frame(OP_PONG, f.payload)
                f = ws.recv_frame()
            eq((f.opcode, f.payload), (OP_TEXT, b"busy %d" % i), "echo %d" % i)
            prev = t
            time.sleep(0.03)
        f = ws.recv_frame(timeout=3)
        eq(f.opcode, OP_PING, "ping once the traffic stops")
        ws.close()


@test
def shutdown_sends_1001():
    sp = Server("--no-access-log", "--drain-timeout", "3000")
    try:
        ws = WS(sp.port)
        ws.send_text("x")
        ws.expect_echo(OP_TEXT, "x")
        sp.proc.send_signal(signal.SIGTERM)
        f = ws.recv_frame(timeout=5)
        eq((f.opcode, f.close_code), (OP_CLOSE, 1001), "close frame on shutdown")
        ws.send_frame(OP_CLOSE, close_payload(1001))
        ws.expect_eof(timeout=5)
        ws.close()
        sp.proc.wait(10)
    finally:
        rc = sp.stop()
    harness.check_sanitizer(sp.err_lines)
    eq(rc, 0, "server exit status after SIGTERM")


@test
def zz_shared_servers_exit_cleanly():
    for name, s in list(_servers.items()):
        rc = s.stop()
        harness.check_sanitizer(s.err_lines)
        eq(rc, 0, "exit status of the %s server" % name)
    _servers.clear()


if __name__ == "__main__":
    main()
