"""Raw WebSocket framing for the hostile suite (RFC 6455, client side): frames built by hand
(masking, every length form, any opcode or RSV bits), the opening handshake over a plain
socket, and a reader that returns the server's frames one by one. Nothing here hides behind a
client library: an attack needs frames a well-behaved library would never send."""
import base64
import hashlib
import os
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1 = 0x40


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def mask(data, key):
    """XOR data with the 4-byte key (one big-integer XOR: fast enough for megabytes)."""
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length=None, key=None):
    """One client frame. length overrides the announced payload length (the payload given is
    still appended as is), for frames that lie about their size."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    mb = 0x80 if masked else 0
    if n < 126:
        hdr = bytes([b0, mb | n])
    elif n < 65536:
        hdr = bytes([b0, mb | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([b0, mb | 127]) + struct.pack("!Q", n)
    if not masked:
        return hdr + payload
    key = key or os.urandom(4)
    return hdr + key + mask(payload, key)


def zero_key_frame(opcode, payload=b"", fin=True, rsv=0):
    """A masked frame with the all-zero key: the payload goes out as is, so building a flood of
    large frames costs no XOR in Python (the server unmasks it all the same)."""
    return frame(opcode, payload, fin=fin, rsv=rsv, key=b"\0\0\0\0")


def deflate_payload(data, level=9, bits=15):
    """A whole permessage-deflate message body (RFC 7692 §7.2.1: the trailing 00 00 ff ff of
    a sync flush removed)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def handshake(path="/echo", host="127.0.0.1", ext=None, extra=()):
    """(request bytes, key) for an opening handshake."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if ext:
        lines.append("Sec-WebSocket-Extensions: " + ext)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


class Closed(AssertionError):
    """The server closed TCP (or reset it) while a frame was awaited."""


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        p = self.payload[:40] + (b"..." if len(self.payload) > 40 else b"")
        return "<Frame op=%#x fin=%d len=%d %r>" % (self.opcode, self.fin, len(self.payload), p)


class WS:
    """A client WebSocket over a blocking socket with deadlines."""

    def __init__(self, port, path="/echo", ext=None, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        req, key = handshake(path, ext=ext)
        self.sock.sendall(req)
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv(deadline, "the handshake response")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        status = self.head.split("\r\n", 1)[0]
        if not status.startswith("HTTP/1.1 101"):
            raise AssertionError("handshake refused: %r" % status)
        if ("sec-websocket-accept: " + accept_of(key)).lower() not in self.head.lower():
            raise AssertionError("bad Sec-WebSocket-Accept in %r" % self.head)
        self.deflate = "permessage-deflate" in self.head.lower()

    def _recv(self, deadline, what):
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
            raise Closed("server closed TCP while waiting for %s" % what)
        return b

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def recv_frame(self, timeout=5.0):
        deadline = time.time() + timeout
        while len(self.buf) < 2:
            self.buf += self._recv(deadline, "a frame header")
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n, off = b1 & 0x7F, 2
        if n >= 126:
            off = 4 if n == 126 else 10
            while len(self.buf) < off:
                self.buf += self._recv(deadline, "a frame header")
            n = struct.unpack("!H" if off == 4 else "!Q", self.buf[2:off])[0]
        while len(self.buf) < off + n:
            self.buf += self._recv(deadline, "a payload of %d bytes" % n)
        f = Frame(bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, self.buf[off:off + n])
        self.buf = self.buf[off + n:]
        return f

    def recv_message(self, timeout=5.0):
        """(opcode, payload) of the next data message; pings are answered, pongs skipped; a
        close frame raises Closed."""
        deadline = time.time() + timeout
        parts, op = [], None
        while True:
            f = self.recv_frame(max(deadline - time.time(), 0.001))
            if f.opcode == OP_PING:
                self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise Closed("close frame %s %r instead of a message" % (f.code, f.payload[2:]))
            if op is None:
                op = f.opcode
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def echo(self, payload, timeout=5.0):
        """Send a text message and check its echo."""
        self.send_frame(OP_TEXT, payload)
        op, got = self.recv_message(timeout)
        if op != OP_TEXT or got != (payload.encode() if isinstance(payload, str) else payload):
            raise AssertionError("bad echo: op %d, %d bytes %r" % (op, len(got), got[:40]))

    def expect_close(self, code, timeout=5.0):
        """Frames until a close: it must carry code; then the server closes TCP. Data frames
        queued before the close (echoes) are skipped. Returns the close frame."""
        deadline = time.time() + timeout
        while True:
            try:
                f = self.recv_frame(max(deadline - time.time(), 0.001))
            except Closed as e:
                raise AssertionError("expected close %d, but: %s" % (code, e))
            if f.opcode == OP_CLOSE:
                break
        if f.code != code:
            raise AssertionError("close code %s (reason %r), expected %d" %
                                 (f.code, f.payload[2:], code))
        self.expect_eof(max(deadline - time.time(), 1.0))
        return f

    def expect_eof(self, timeout=3.0):
        deadline = time.time() + timeout
        while True:
            try:
                self.buf += self._recv(deadline, "the server to close TCP")
            except Closed:
                return

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
