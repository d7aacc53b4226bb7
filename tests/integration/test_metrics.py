"""/metrics: the Prometheus text format (checked by promtool when installed, else by a
parser), and each family moving when its event happens: connections per listener, requests
by protocol/method/status, the upgrade funnel and its refusals by reason, WebSocket messages
and close causes, raw streams, HTTP/2, loop lag; access control and the separate listener."""
import os
import socket
import struct
import subprocess
import time

import harness
from harness import Server, connect, eq, main, ok, read_response, recv_all, test
from opsutil import (frame, get, parse_metrics, promtool_check, read_frame, scrape, value,
                     wait_for, ws_close, ws_open)


@test
def text_format_passes_promtool_or_the_parser():
    with Server(workers=2) as srv:
        get(srv.port, "/hello.txt")
        s, st, _, _ = ws_open(srv.port)
        ws_close(s)
        r = get(srv.port, "/metrics")
        eq(r.status, 200, "status")
        ok(r.header("content-type").startswith("text/plain; version=0.0.4"),
           "content type: %r" % r.header("content-type"))
        text = r.body.decode()
        parse_metrics(text)  # raises on a bad line
        ran, good, out = promtool_check(text)
        ok(good, "promtool check metrics: %s" % out)
        print("  (promtool %s)" % ("ran" if ran else "missing: parser only"))


@test
def connections_and_requests_are_counted():
    with Server(workers=2) as srv:
        for _ in range(3):
            eq(get(srv.port, "/hello.txt").status, 200, "GET")
        eq(get(srv.port, "/nope").status, 404, "404")
        s = connect(srv.port)
        s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Connection: close\r\n\r\nabc")
        read_response(s)
        s.close()
        m, _ = scrape(srv.port)
        lst = "127.0.0.1:%d" % srv.port
        ok(value(m, "switchyard_connections_accepted_total", listener=lst) >= 5,
           "accepted on the listener")
        ok(value(m, "switchyard_connections_open", listener=lst) >= 1, "the scrape is open")
        ok(value(m, "switchyard_http_requests_total", protocol="http/1.1", method="GET",
                 status="2xx") >= 3, "GET 2xx")
        ok(value(m, "switchyard_http_requests_total", method="GET", status="4xx") >= 1, "404")
        ok(value(m, "switchyard_http_requests_total", method="POST", status="2xx") >= 1, "POST")
        ok(value(m, "switchyard_connection_sent_bytes_total", listener=lst) > 0, "bytes out")
        ok(value(m, "switchyard_connection_duration_seconds_count") >= 4, "lifetimes observed")
        ok(value(m, "switchyard_loop_iterations_total", worker="0") +
           value(m, "switchyard_loop_iterations_total", worker="1") > 0, "loop iterations")
        ok(value(m, "switchyard_loop_busy_seconds_count") > 0, "loop busy histogram")


@test
def websocket_funnel_messages_and_close_cause():
    with Server(workers=1) as srv:
        s, st, head, _ = ws_open(srv.port)
        eq(st, 101, "switched")
        for i in range(5):
            s.sendall(frame(0x1, b"hello %d" % i))
        rest = b""
        for i in range(5):
            op, p, rest = read_frame(s, rest)
            eq(p, b"hello %d" % i, "echo")
        m1, _ = scrape(srv.port)
        eq(value(m1, "switchyard_upgrade_open", protocol="websocket"), 1, "one open")
        ws_close(s, 1000)
        def closed():
            m, _ = scrape(srv.port)
            return m if value(m, "switchyard_upgrade_closed_total", protocol="websocket") else None
        m = wait_for(closed)
        ok(m, "closed counted")
        for stage in ("requested", "accepted", "first_message", "closed"):
            eq(value(m, "switchyard_upgrade_%s_total" % stage, protocol="websocket"), 1, stage)
        eq(value(m, "switchyard_upgrade_switched_total", protocol="websocket", status="101"), 1,
           "101 sent")
        eq(value(m, "switchyard_upgrade_open", protocol="websocket"), 0, "none open")
        eq(value(m, "switchyard_websocket_messages_received_total"), 5, "messages in")
        eq(value(m, "switchyard_websocket_messages_sent_total"), 5, "messages out")
        eq(value(m, "switchyard_websocket_received_bytes_total"), 5 * 7, "payload bytes in")
        eq(value(m, "switchyard_websocket_closes_total", cause="peer"), 1, "cause peer")
        eq(value(m, "switchyard_websocket_peer_close_codes_total", code="1000"), 1, "code 1000")
        eq(value(m, "switchyard_upgrade_handshake_seconds_count", protocol="websocket"), 1,
           "handshake latency observed")
        eq(value(m, "switchyard_upgrade_duration_seconds_count", protocol="websocket"), 1,
           "lifetime observed")


@test
def refusals_by_reason():
    with Server("--ws-path", "/echo", "--max-body", "16", workers=1) as srv, \
         Server("--ws-origin", "https://good.example", "--ws-subprotocol", "chat",
                "--ws-require-subprotocol", workers=1) as strict:
        cases = [
            (srv, dict(key="short"), 400, "key"),
            (srv, dict(key=None), 400, "key"),
            (srv, dict(version="8"), 426, "version"),
            (srv, dict(version=None), 426, "version"),
            (srv, dict(method="POST"), 400, "method"),
            (srv, dict(body=b"x" * 100), 413, "body_too_large"),
            (srv, dict(path="/hello.txt"), 200, "not_registered"),
            (strict, dict(extra=["Origin: https://evil.example"]), 403, "origin"),
            (strict, dict(extra=["Origin: https://good.example",
                                 "Sec-WebSocket-Protocol: other"]), 400, "subprotocol"),
        ]
        for server, kw, status, _ in cases:
            s, st, head, _ = ws_open(server.port, **kw)
            eq(st, status, "%r -> %d" % (kw, status))
            s.close()
        for server in (srv, strict):
            m, _ = scrape(server.port)
            want = {}
            for sv, _, _, reason in cases:
                if sv is server:
                    want[reason] = want.get(reason, 0) + 1
            for reason, n in want.items():
                eq(value(m, "switchyard_upgrade_refused_total", protocol="websocket",
                         reason=reason), n, "refused for %s" % reason)
            eq(value(m, "switchyard_upgrade_requested_total", protocol="websocket"),
               sum(want.values()), "requested")
            eq(value(m, "switchyard_upgrade_switched_total", protocol="websocket"), 0,
               "nothing switched")


@test
def raw_streams_and_h2c_are_counted():
    with Server(workers=1) as srv:
        s = connect(srv.port)
        s.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: upper\r\n\r\n"
                  b"abc")
        data = b""
        while b"ABC" not in data:
            data += s.recv(4096)
        s.shutdown(socket.SHUT_WR)
        recv_all(s)
        s.close()
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version}",
                            "--http2-prior-knowledge", "http://127.0.0.1:%d/hello.txt" % srv.port],
                           capture_output=True, text=True, timeout=10)
        eq(r.stdout, "2", "curl spoke h2c")
        def done():
            m, _ = scrape(srv.port)
            return m if value(m, "switchyard_raw_stream_closes_total", cause="eof") else None
        m = wait_for(done)
        ok(m, "raw close counted")
        eq(value(m, "switchyard_upgrade_first_message_total", protocol="raw"), 1, "raw first bytes")
        eq(value(m, "switchyard_upgrade_switched_total", protocol="raw", status="101"), 1, "raw 101")
        ok(value(m, "switchyard_raw_stream_received_bytes_total") >= 3, "raw bytes in")
        ok(value(m, "switchyard_http_requests_total", protocol="h2c", method="GET",
                 status="2xx") >= 1, "h2c request counted")
        ok(value(m, "switchyard_http2_streams_total") >= 1, "h2 stream counted")
        ok(value(m, "switchyard_http2_connections_total") >= 1, "h2 connection counted")


@test
def access_is_loopback_only_unless_public_or_token():
    env = dict(os.environ, SWITCHYARD_TEST_PEERS_REMOTE="1")
    cmd = lambda *a: [harness.ARGS.bin, "serve", "--workers", "1", "--root", harness.ROOT,
                      "--listen", "127.0.0.1:0"] + list(a)
    import harness as h
    def start(*a):
        p = subprocess.Popen(cmd(*a), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        line = p.stderr.readline().decode()
        import re
        port = int(re.search(r"\(port (\d+)\)", line).group(1))
        return p, port
    p, port = start()
    try:
        eq(get(port, "/metrics").status, 403, "a remote client is refused")
    finally:
        p.terminate(); p.wait(10)
    p, port = start("--metrics-token", "s3cret")
    try:
        eq(get(port, "/metrics").status, 403, "no token")
        eq(get(port, "/metrics", ["Authorization: Bearer wrong"]).status, 403, "wrong token")
        eq(get(port, "/metrics", ["Authorization: Bearer s3cret"]).status, 200, "the token")
    finally:
        p.terminate(); p.wait(10)
    p, port = start("--metrics-public")
    try:
        eq(get(port, "/metrics").status, 200, "public")
    finally:
        p.terminate(); p.wait(10)


@test
def separate_listener_and_custom_path():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    mport = probe.getsockname()[1]
    probe.close()
    with Server("--metrics-listen", "127.0.0.1:%d" % mport, "--metrics-path", "/m",
                workers=1) as srv:
        eq(get(srv.port, "/metrics").status, 404, "not on the main listener")
        eq(get(srv.port, "/m").status, 404, "custom path not on the main listener either")
        get(srv.port, "/hello.txt")
        m, _ = wait_for(lambda: _try_scrape(mport, "/m")) or (None, None)
        ok(m is not None, "served on the metrics listener")
        ok(value(m, "switchyard_http_requests_total", method="GET", status="2xx") >= 1,
           "the main server's requests")
    with Server("--no-metrics", workers=1) as srv:
        eq(get(srv.port, "/metrics").status, 404, "--no-metrics")


def _try_scrape(port, path):
    try:
        return scrape(port, path)
    except (OSError, AssertionError):
        return None


if __name__ == "__main__":
    main()
