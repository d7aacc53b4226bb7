#!/usr/bin/env python3
"""Write the seed inputs of the server fuzz targets (fuzz_server.h) into
fuzz/seeds/<target>/: a control byte, then what a client sends. The HTTP/2 seeds follow the
traffic of tests/integration/test_http2.py and test_h2_conformance.py (requests to every kind
of route, bodies, trailers, CONTINUATION, resets, PING/SETTINGS/WINDOW_UPDATE, RFC 8441,
a few malformed frames); the HTTP/1 ones that of test_http1.py (keep-alive, pipelining,
chunked bodies, Upgrade to WebSocket and h2c, prior knowledge). Run with /usr/bin/python3
(needs the hpack module of python3-h2); `make fuzz` copies the seeds into the corpus."""
import base64
import os
import struct

import hpack

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(t, fl, sid, p=b""):
    return struct.pack(">I", len(p))[1:] + bytes([t, fl]) + struct.pack(">I", sid) + p


class Out(dict):
    """Seeds by name; each seed is its own connection, so it starts a new HPACK context."""

    def __init__(self, state):
        dict.__init__(self)
        self.state = state

    def __setitem__(self, name, body):
        dict.__setitem__(self, name, body)
        self.state["enc"] = hpack.Encoder()


def h2_seeds():
    state = {"enc": hpack.Encoder()}
    out = Out(state)

    def enc_encode(fields):
        return state["enc"].encode(fields)

    def req(path, method="GET", extra=()):
        return enc_encode([(":method", method), (":scheme", "http"), (":path", path),
                           (":authority", "fuzz")] + list(extra))

    ack = frame(4, 1, 0)
    out["get_now"] = ack + frame(1, 5, 1, req("/now"))
    out["get_many"] = ack + b"".join(frame(1, 5, 1 + 2 * i, req(p)) for i, p in enumerate(
        ["/now", "/later", "/static/small.txt", "/static/big.bin", "/big", "/nope", "/later"]))
    out["post_body"] = ack + frame(1, 4, 1, req("/now", "POST", [("content-length", "10")])) + \
        frame(0, 0, 1, b"hello") + frame(0, 1, 1, b"world")
    out["post_stream"] = ack + frame(1, 4, 3, req("/body-stream", "POST")) + \
        frame(0, 0, 3, b"x" * 3000) + frame(0, 8, 3, b"\x03abc\0\0\0") + \
        frame(1, 5, 3, enc_encode([("x-trailer", "1")]))
    block = req("/later", extra=[("x-long", "y" * 300)])
    out["continuation"] = ack + frame(1, 1, 1, block[:10]) + frame(9, 0, 1, block[10:100]) + \
        frame(9, 4, 1, block[100:])
    out["reset"] = ack + frame(1, 4, 1, req("/later", "POST")) + \
        frame(3, 0, 1, struct.pack(">I", 8)) + frame(0, 0, 1, b"late") + \
        frame(1, 5, 3, req("/big")) + frame(3, 0, 3, struct.pack(">I", 8))
    out["control"] = ack + frame(6, 0, 0, b"12345678") + \
        frame(4, 0, 0, struct.pack(">HI", 4, 1) + struct.pack(">HI", 1, 100)) + \
        frame(1, 5, 1, req("/static/big.bin")) + frame(8, 0, 1, struct.pack(">I", 100000)) + \
        frame(8, 0, 0, struct.pack(">I", 100000)) + frame(2, 0, 5, struct.pack(">IB", 1, 9)) + \
        frame(7, 0, 0, struct.pack(">II", 1, 0))
    out["window0"] = ack + frame(4, 0, 0, struct.pack(">HI", 4, 0)) + \
        b"".join(frame(1, 5, 1 + 2 * i, req("/big")) for i in range(3)) + \
        frame(8, 0, 1, struct.pack(">I", 50000))
    # RFC 8441: extended CONNECT, then a masked WebSocket text frame and a close
    ws = enc_encode([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                     (":path", "/ws"), (":authority", "fuzz"), ("sec-websocket-version", "13"),
                     ("sec-websocket-protocol", "chat"),
                     ("sec-websocket-extensions", "permessage-deflate")])
    mask = b"\x01\x02\x03\x04"
    msg = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hello"))
    close = bytes(b ^ mask[i % 4] for i, b in enumerate(b"\x03\xe8"))
    out["ws"] = ack + frame(1, 4, 1, ws) + frame(0, 0, 1, b"\x81\x85" + mask + msg) + \
        frame(0, 0, 1, b"\x89\x80" + mask) + frame(0, 0, 1, b"\x88\x82" + mask + close)
    # big windows and a client that does not read: the server's queues fill up (drains)
    out["big_windows"] = ack + frame(4, 0, 0, struct.pack(">HI", 4, 0x7fffffff)) + \
        frame(8, 0, 0, struct.pack(">I", 0x7fff0000)) + \
        b"".join(frame(1, 5, 1 + 2 * i, req(p)) for i, p in enumerate(
            ["/big", "/static/big.bin", "/big", "/static/big.bin", "/later"]))
    out["bad_hpack"] = ack + frame(1, 5, 1, req("/now") + b"\xc6")
    out["priority_self"] = ack + frame(1, 4, 1, req("/later")) + \
        frame(2, 0, 1, struct.pack(">IB", 1, 9))
    out["closed_data"] = ack + frame(1, 5, 1, req("/now")) + frame(0, 1, 1, b"x")
    return out


def h1_seeds():
    key = base64.b64encode(b"0123456789abcdef")
    return {
        "get": b"GET /now HTTP/1.1\r\nHost: f\r\n\r\n",
        "pipeline": b"GET /now HTTP/1.1\r\nHost: f\r\n\r\nGET /static/small.txt HTTP/1.1\r\n"
                    b"Host: f\r\n\r\nGET /later HTTP/1.1\r\nHost: f\r\n\r\n"
                    b"HEAD /static/big.bin HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n",
        "post": b"POST /now HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\n\r\nhello",
        "chunked": b"POST /body-stream HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        "big": b"GET /big HTTP/1.1\r\nHost: f\r\n\r\n",
        "ws": b"GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: chat\r\n"
              b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
              b"\x81\x85\x01\x02\x03\x04" + bytes(b ^ b"\x01\x02\x03\x04"[i % 4]
                                                 for i, b in enumerate(b"hello")),
        "h2c": b"GET /now HTTP/1.1\r\nHost: f\r\nConnection: Upgrade, HTTP2-Settings\r\n"
               b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
               b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(4, 1, 0),
        "prior": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) +
                 frame(1, 5, 1, hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"),
                                                        (":path", "/now"), (":authority", "f")])),
        "bad": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n",
        "options": b"OPTIONS * HTTP/1.1\r\nHost: f\r\n\r\nGET /nope HTTP/1.0\r\n\r\n",
    }


def write(target, seeds):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for name, body in seeds.items():
        # plain; small pieces + TLS; answers, time, end; a client that does not read;
        # small pieces and a graceful shutdown
        for ctl in (0x00, 0x85, 0x3c, 0x60, 0x82):
            with open(os.path.join(d, "%s_%02x" % (name, ctl)), "wb") as f:
                f.write(bytes([ctl]) + body)


if __name__ == "__main__":
    write("http2_session_fuzz", h2_seeds())
    write("http1_server_fuzz", h1_seeds())
