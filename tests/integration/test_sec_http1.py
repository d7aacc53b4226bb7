"""Regressions from the hostile-input audit (HTTP/1 side): an empty streamed body is answered,
refused or declined upgrades end the connection (no "WebSocket smuggling" behind a proxy
that does not check the status), and handlers answering later survive clients that reset."""
import socket
import struct
import threading
import time

from harness import Server, connect, eq, is_closed, main, ok, read_response, recv_all, test

S = None


def wait_close_wait_free(port, before, timeout=5):
    """Connections stuck in CLOSE_WAIT on the server side of this port (a leak's symptom)."""
    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline:
        n = 0
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                lport = int(parts[1].split(":")[1], 16)
                if lport == port and parts[3] == "08":  # CLOSE_WAIT
                    n += 1
        if n <= before:
            return n
        time.sleep(0.1)
    return n


@test
def streamed_body_with_content_length_zero_is_answered():
    s = connect(S.port)
    s.sendall(b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    r = read_response(s, timeout=5)
    eq(r.status, 200, "status")
    ok(b"bytes=0 " in r.body, "sum of an empty body: %r" % r.body)
    # keep-alive still works after it
    s.sendall(b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    r = read_response(s, timeout=5)
    ok(b"bytes=3 " in r.body, "second request on the connection: %r" % r.body)
    s.close()


@test
def streamed_body_empty_chunked_is_answered():
    s = connect(S.port)
    s.sendall(b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    r = read_response(s, timeout=5)
    ok(b"bytes=0 " in r.body, "empty chunked body: %r" % r.body)
    s.close()


@test
def empty_bodies_leave_no_connection_behind():
    socks = []
    for _ in range(20):
        s = connect(S.port)
        s.sendall(b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
        socks.append(s)
    for s in socks:
        data = recv_all(s, timeout=5)
        ok(data.startswith(b"HTTP/1.1 200"), "answered: %r" % data[:40])
        s.close()
    eq(wait_close_wait_free(S.port, 0), 0, "server connections in CLOSE_WAIT")


def upgrade_request(path, token, extra=b""):
    return (b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " +
            token + b"\r\n" + extra + b"\r\n")


@test
def refused_websocket_upgrade_closes_connection():
    # No Sec-WebSocket-Key: the handshake gate refuses with 400.
    s = connect(S.port)
    s.sendall(upgrade_request(b"/echo", b"websocket", b"Sec-WebSocket-Version: 13\r\n"))
    r = read_response(s)
    eq(r.status, 400, "refused")
    eq(r.header("connection"), "close", "Connection: close on a refused upgrade")
    # A smuggled request after the refusal must not be answered.
    try:
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass
    ok(is_closed(s), "connection closed after the refusal")
    s.close()


@test
def declined_upgrade_served_then_closed():
    # An unknown protocol is ignored and the request served, but the connection then ends.
    s = connect(S.port)
    s.sendall(upgrade_request(b"/hello.txt", b"nonsense/1"))
    r = read_response(s)
    eq(r.status, 200, "served normally")
    eq(r.header("connection"), "close", "Connection: close after an upgrade not taken")
    ok(is_closed(s), "closed")
    s.close()


@test
def upgrade_required_426_closes():
    s = connect(S.port)
    s.sendall(upgrade_request(b"/raw-only", b"nothing-we-know"))
    r = read_response(s)
    eq(r.status, 426, "426")
    ok("close" in (r.header("connection") or "").lower(), "Connection lists close")
    ok(is_closed(s), "closed")
    s.close()


@test
def plain_keepalive_unaffected():
    s = connect(S.port)
    for _ in range(3):
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(s)
        eq(r.status, 200, "status")
        eq(r.header("connection"), None, "keep-alive")
    s.close()


def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


@test
def delayed_handlers_survive_resets():
    # /delay answers from another thread; clients reset before, during and after the answer.
    # Meanwhile other clients must get exactly their own answers.
    errors = []

    def victim(i):
        try:
            s = connect(S.port)
            s.sendall(b"GET /delay?%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i % 7))
            time.sleep((i % 5) / 1000.0)
            rst(s)
        except OSError:
            pass

    def honest(i):
        try:
            s = connect(S.port)
            s.sendall(b"GET /delay?%d&id=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i % 3, i))
            r = read_response(s, timeout=10)
            want = b"&id=%d\n" % i
            if r.status != 200 or not r.body.endswith(want):
                errors.append("client %d got %r" % (i, r.body))
            s.close()
        except Exception as e:  # noqa: BLE001
            errors.append("client %d: %s" % (i, e))

    threads = []
    for i in range(200):
        t = threading.Thread(target=victim if i % 2 else honest, args=(i,))
        t.start()
        threads.append(t)
        if len(threads) >= 40:
            for t in threads:
                t.join()
            threads = []
    for t in threads:
        t.join()
    eq(errors, [], "every honest client got its own answer")
    s = connect(S.port)
    s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    eq(read_response(s).status, 200, "server still serves")
    s.close()


@test
def closing_flush_to_a_peer_that_never_reads_is_cut():
    # A response that ends the connection (Connection: close), far bigger than the socket
    # buffers, to a client that never reads: the closing flush stalls and must not hold the
    # only connection slot past the write timeout.
    with Server("--max-conns", "1", "--write-timeout", "1000", workers=1) as srv:
        s = connect(srv.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = b"x" * (4 << 20)
        s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.time() + 10
        served = False
        while time.time() < deadline and not served:
            time.sleep(0.5)
            try:
                t = connect(srv.port, timeout=2)
                t.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = recv_all(t, timeout=2)
                served = data.startswith(b"HTTP/1.1 200")
                t.close()
            except OSError:
                pass
        s.close()
        ok(served, "the stalled closing flush gave its slot back")


def setup():
    global S
    S = Server()


if __name__ == "__main__":
    import atexit
    import harness

    def fin():
        if S:
            S.stop()
            harness.check_sanitizer(S.err_lines)
    atexit.register(fin)
    main(setup)
