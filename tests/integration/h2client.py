"""A small HTTP/2 client over python3-h2 for the tests: prior knowledge or after a raw
HTTP/1.1 upgrade, whole responses, raw frames for hostile-peer tests."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import connect  # noqa

import h2.config  # noqa
import h2.connection  # noqa
import h2.events  # noqa
import h2.settings  # noqa

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Resp:
    def __init__(self):
        self.headers = []
        self.body = b""
        self.ended = False
        self.reset = None  # error code of a RST_STREAM

    @property
    def status(self):
        for n, v in self.headers:
            if n == ":status":
                return int(v)
        return None

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None


class H2:
    """One HTTP/2 connection. auto_ack: give window credit back as data arrives."""

    def __init__(self, port, timeout=5, settings=None, sock=None, upgraded=False):
        self.sock = sock or connect(port, timeout)
        self.sock.settimeout(timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_inbound_headers=False,
                                        validate_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        if upgraded:
            self.conn.initiate_upgrade_connection()
        else:
            self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.resps = {}
        self.terminated = None  # ConnectionTerminated event
        self.closed = False
        self.remote_settings = {}
        self.auto_ack = True
        self.events = []
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, end=True, authority="127.0.0.1"):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", "http"),
              (":authority", authority)] + list(headers)
        self.conn.send_headers(sid, hs, end_stream=end and body is None)
        self.resps[sid] = Resp()
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        off = 0
        while off < len(body):
            win = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if win <= 0:
                self.pump(1)
                continue
            chunk = body[off:off + win]
            self.conn.send_data(sid, chunk)
            off += len(chunk)
            self.flush()
        if end:
            self.conn.end_stream(sid)
        self.flush()

    def pump(self, timeout=5):
        """Read once (up to timeout); process events. Returns False on EOF/timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, OSError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        return self.feed(data)

    def feed(self, data):
        """Process bytes received by other means (e.g. those after a raw 101)."""
        try:
            evs = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for ev in evs:
            self.events.append(ev)
            sid = getattr(ev, "stream_id", None)
            r = self.resps.setdefault(sid, Resp()) if sid else None
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.InformationalResponseReceived)):
                r.headers = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                r.body += ev.data
                if self.auto_ack and ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                r.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                r.reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                for k, v in ev.changed_settings.items():
                    self.remote_settings[int(k)] = v.new_value
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def wait(self, sid, timeout=10):
        deadline = time.time() + timeout
        r = self.resps[sid]
        while not (r.ended or r.reset is not None) and time.time() < deadline:
            if not self.pump(max(0.05, deadline - time.time())) and self.closed:
                break
        return r

    def wait_terminated(self, timeout=10):
        deadline = time.time() + timeout
        while self.terminated is None and not self.closed and time.time() < deadline:
            self.pump(max(0.05, deadline - time.time()))
        return self.terminated

    def expect(self, sid):
        return self.resps.setdefault(sid, Resp())

    def get(self, path, **kw):
        return self.wait(self.request("GET", path, **kw))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def read_frames(sock, timeout=3, until_type=None):
    """Read raw frames until EOF/timeout (or a frame of until_type); returns [(type, flags,
    sid, payload)]."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, OSError):
            break
        if not b:
            break
        buf += b
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            t, fl = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
            out.append((t, fl, sid, buf[9:9 + ln]))
            buf = buf[9 + ln:]
            if until_type is not None and t == until_type:
                return out
    return out


def goaway_code(frames):
    for t, fl, sid, p in frames:
        if t == 7:
            return int.from_bytes(p[4:8], "big")
    return None
