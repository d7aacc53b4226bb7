#!/usr/bin/env python3
"""The end of input as the server sees it: a client that half-closes while its request is
still being answered gets the answer, then the close, and the server does not spin on the
end of input meanwhile (epoll is level-triggered: a connection that kept watching a closed
input would wake the loop on every turn); a client that closes after its answer is closed at
once. The server skips telling epoll about an end of input when it frees the connection in the
same loop turn anyway, so these pin down the cases where it must still tell."""
import socket
import time

from harness import Server, connect, eq, is_closed, main, ok, parse_all, recv_all, test

GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"


def cpu_ticks(pid):
    """utime + stime of the process, in clock ticks."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


@test
def half_close_while_the_answer_is_pending():
    with Server(workers=1) as srv:
        s = connect(srv.port)
        s.sendall(GET % b"/delay?600")
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.1)  # the end of input is seen, the answer not yet sent
        before = cpu_ticks(srv.proc.pid)
        t0 = time.time()
        data = recv_all(s, timeout=5)
        spent = cpu_ticks(srv.proc.pid) - before
        rs, _ = parse_all(data)
        eq([r.status for r in rs], [200], "answered after the client's half-close")
        ok(time.time() - t0 >= 0.3, "the answer waited for the handler")
        # Spinning on the closed input for 0.5 s would take tens of ticks (10 ms each).
        ok(spent <= 10, "server CPU while waiting: %d ticks" % spent)
        s.close()


@test
def http2_half_close_while_a_stream_is_pending():
    # HTTP/2 keeps reading after the peer's end of input (it finishes the streams in flight):
    # the one case where the connection must stop watching its closed input itself.
    from h2client import H2
    with Server(workers=1) as srv:
        c = H2(srv.port)
        sid = c.request("GET", "/delay?600")
        time.sleep(0.1)
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        before = cpu_ticks(srv.proc.pid)
        r = c.wait(sid, timeout=5)
        spent = cpu_ticks(srv.proc.pid) - before
        eq(r.status, 200, "stream answered after the half-close")
        ok(spent <= 10, "server CPU while waiting: %d ticks" % spent)
        c.close()


@test
def close_after_the_answer():
    with Server(workers=1) as srv:
        for _ in range(20):
            s = connect(srv.port)
            s.sendall(GET % b"/hello.txt")
            rs = []
            data = b""
            while not rs:
                data += s.recv(65536)
                rs, _ = parse_all(data)
            eq(rs[0].status, 200, "answered")
            s.close()
        # The server freed them: a new connection is served as usual.
        s = connect(srv.port)
        s.sendall(GET % b"/hello.txt")
        s.shutdown(socket.SHUT_WR)
        rs, _ = parse_all(recv_all(s))
        eq([r.status for r in rs], [200], "still serving")
        ok(is_closed(s), "closed after the answer to a half-closed request")


if __name__ == "__main__":
    main()
