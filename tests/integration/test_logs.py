"""Logs: access lines (requests; switches and closes of upgraded connections) in the plain
format and as JSON (--log-format json), with the request id, protocol, status, the whole
response's bytes, the duration and the close cause; the server's own lines in the same
format."""
import json
import struct
import time

from harness import Server, connect, eq, main, ok, read_response, test
from opsutil import frame, get, read_frame, wait_for, ws_close, ws_open


def json_lines(lines):
    out = []
    for l in lines:
        l = l.strip()
        if l:
            out.append(json.loads(l))  # every line must be JSON
    return out


def wait_lines(srv, pred, timeout=5):
    return wait_for(lambda: [l for l in list(srv.log_lines) if pred(l)], timeout)


@test
def json_access_lines_for_requests_switches_and_closes():
    with Server("--log-format", "json", workers=1) as srv:
        r = get(srv.port, "/hello.txt")
        eq(r.status, 200, "GET")
        s, st, _, _ = ws_open(srv.port)
        eq(st, 101, "switched")
        s.sendall(frame(0x1, b"hi"))
        read_frame(s)
        ws_close(s, 4001)
        ok(wait_lines(srv, lambda l: '"event":"close"' in l), "a close line")
        recs = json_lines(srv.log_lines)
        req = [x for x in recs if x["event"] == "request" and x["target"] == "/hello.txt"]
        eq(len(req), 1, "one request line")
        x = req[0]
        for k in ("ts", "id", "peer", "method", "protocol", "status", "bytes_in", "bytes_out",
                  "duration_ms"):
            ok(k in x, "request line has %s: %r" % (k, x))
        eq(x["protocol"], "http/1.1", "protocol")
        eq(x["status"], 200, "status")
        body = len(r.body)
        ok(x["bytes_out"] > body, "bytes_out counts the head too (%d > %d)" % (x["bytes_out"],
                                                                               body))
        sw = [x for x in recs if x["event"] == "switch"]
        cl = [x for x in recs if x["event"] == "close"]
        eq(len(sw), 1, "one switch line")
        eq(len(cl), 1, "one close line")
        eq(sw[0]["id"], cl[0]["id"], "switch and close share the request id")
        ok(sw[0]["id"] != x["id"], "ids differ between requests")
        eq(sw[0]["status"], 101, "101")
        eq(sw[0]["upgraded"], "websocket", "upgraded")
        eq(cl[0]["close_cause"], "peer", "close cause")
        eq(cl[0]["close_code"], 4001, "close code")
        ok(cl[0]["bytes_in"] > 0 and cl[0]["duration_ms"] > 0, "bytes and duration")
        # the server's own lines are JSON too
        own = [json.loads(l) for l in srv.err_lines if l.strip()]
        ok(any(o.get("type") == "log" and "listening on" in o.get("msg", "") for o in own),
           "start-up line as JSON: %r" % srv.err_lines[:2])


@test
def plain_lines_carry_id_cause_and_code():
    with Server(workers=1) as srv:
        get(srv.port, "/hello.txt")
        s, st, _, _ = ws_open(srv.port)
        s.sendall(frame(0x1, b"x" * 2000000))  # over the 1 MiB limit: closed with 1009
        try:
            while True:
                op, p, _ = read_frame(s)
                if op == 0x8:
                    eq(struct.unpack("!H", p[:2])[0], 1009, "1009")
                    break
        except (EOFError, OSError):
            pass
        s.close()
        lines = wait_lines(srv, lambda l: "upgraded=websocket" in l)
        ok(lines, "close line")
        ok(" cause=too-big" in lines[0] and " code=1009" in lines[0], "cause and code: %r" %
           lines[0])
        ok(" id=" in lines[0], "id")
        sw = [l for l in srv.log_lines if "switched=websocket" in l]
        eq(len(sw), 1, "one switch line")
        req = [l for l in srv.log_lines if "/hello.txt" in l]
        ok(req and " id=" in req[0] and "proto=http/1.1" in req[0], "request line: %r" % req)


@test
def json_error_lines():
    with Server("--log-format", "json", "--verbose", workers=1) as srv:
        s = connect(srv.port)
        s.sendall(b"GET / HTTP/1.1 junk\r\n\r\n")  # a malformed HTTP/1.1 request line: 400
        read_response(s)
        s.close()
        ok(wait_for(lambda: any('"level":"info"' in l for l in srv.err_lines)),
           "an info line from the library")
        for l in srv.err_lines:
            if l.strip():
                json.loads(l)


if __name__ == "__main__":
    main()
