#!/usr/bin/env python3
"""Raw upgraded streams against hostile peers: a client that sends into the /raw echo and never
reads must not make the server buffer without bound (flow control pushes back on it through
TCP), and idle or stuck raw streams must not hold connection slots forever (idle timeout)."""
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, connect, eq, is_closed, main, ok, read_response, request,  # noqa
                     test)

MiB = 1 << 20


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def upgrade(port, token="echo"):
    s = connect(port)
    s.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " +
              token.encode() + b"\r\n\r\n")
    r = read_response(s)
    eq(r.status, 101, "upgraded to %s" % token)
    eq(s._sy_buf, b"", "nothing after the 101")
    return s


def roundtrip(s, data):
    s.settimeout(5)
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        b = s.recv(65536)
        ok(b, "stream closed during a round trip")
        got += b
    return got


class Pattern:
    """A deterministic byte stream (so echoes can be checked without keeping what was sent)."""

    def __init__(self):
        self.block = bytes((i * 7 + 3) & 0xff for i in range(251 * 1024))

    def at(self, off, n):
        bl = len(self.block)
        out = bytearray()
        while n:
            i = off % bl
            k = min(n, bl - i)
            out += self.block[i:i + k]
            off += k
            n -= k
        return bytes(out)


PAT = Pattern()


def flood(s, limit, stall_s=2.0, deadline_s=40.0, sent=0):
    """Send PAT bytes without reading (non-blocking) until `limit` bytes went out, or nothing
    was accepted for stall_s seconds. Returns (bytes sent, stalled)."""
    s.setblocking(False)
    t_end = time.time() + deadline_s
    last = time.time()
    try:
        while sent < limit and time.time() < t_end:
            _, w, _ = select.select([], [s], [], 0.2)
            if not w:
                if time.time() - last >= stall_s:
                    return sent, True
                continue
            try:
                n = s.send(PAT.at(sent, min(256 * 1024, limit - sent)))
            except BlockingIOError:
                n = 0
            if n:
                sent += n
                last = time.time()
            elif time.time() - last >= stall_s:
                return sent, True
        return sent, False
    finally:
        s.setblocking(True)


def drain_check(s, sent, received=0, timeout=30):
    """Read the echo of everything sent so far and compare it with the pattern."""
    s.settimeout(5)
    t_end = time.time() + timeout
    while received < sent:
        ok(time.time() < t_end, "echo incomplete after %ss: %d of %d" % (timeout, received, sent))
        b = s.recv(min(1 << 20, sent - received))
        ok(b, "stream closed after %d of %d echoed bytes" % (received, sent))
        if b != PAT.at(received, len(b)):
            raise AssertionError("echo differs at offset %d" % received)
        received += len(b)
    return received


def flood_bounded(token):
    with Server("--no-access-log", workers=1) as srv:
        pid = srv.proc.pid
        # Warm up the pools (chunks, write queues) so that they do not count as growth.
        w = upgrade(srv.port, token)
        roundtrip(w, b"x" * 300000)
        w.close()
        time.sleep(0.2)
        base = rss_kib(pid)
        s = upgrade(srv.port, token)
        sent, stalled = flood(s, 200 * MiB)
        grown = (rss_kib(pid) - base) / 1024.0
        ok(stalled and sent < 64 * MiB,
           "client not blocked by flow control: sent %.1f MiB (stalled=%s)" % (sent / MiB, stalled))
        ok(grown < 64, "server RSS grew by %.1f MiB while a client did not read" % grown)
        # The stream is still healthy: once the client reads, the server resumes and every
        # byte comes back in order.
        if token == "echo":
            drain_check(s, sent)
            eq(roundtrip(s, b"after"), b"after", "stream continues after the flood")
        s.close()


@test
def raw_echo_flood_without_reading_is_bounded():
    flood_bounded("echo")


@test
def raw_upper_flood_without_reading_is_bounded():
    flood_bounded("upper")


def upgrade_log_line(srv, timeout=3):
    t_end = time.time() + timeout
    while time.time() < t_end:
        lines = [l for l in srv.log_lines if "upgraded=echo" in l]
        if lines:
            return lines
        time.sleep(0.05)
    return []


@test
def raw_idle_streams_release_their_slots():
    with Server("--raw-idle-timeout", "1000", "--max-conns", "2", workers=1) as srv:
        a = upgrade(srv.port)
        b = upgrade(srv.port)
        eq(roundtrip(a, b"hello"), b"hello", "stream a works")
        t0 = time.time()
        # Both slots are taken: a third client is turned away.
        c = connect(srv.port)
        ok(is_closed(c, 3), "a third connection is refused over --max-conns 2")
        c.close()
        ok(is_closed(a, 6) and is_closed(b, 6), "idle raw streams are closed by the timeout")
        ok(time.time() - t0 >= 0.8, "not closed before the timeout")
        a.close()
        b.close()
        time.sleep(0.2)
        rs = request(srv.port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        eq(rs[0].status, 200, "a new client is served after the idle streams were closed")
        lines = upgrade_log_line(srv)
        ok(lines and all("idle" in l for l in lines), "access log gives the cause: %r" % lines)


@test
def raw_stuck_streams_release_their_slots():
    # Clients that send into the echo and never read: the server stops reading them, and then
    # nothing moves in either direction, which is idle too.
    with Server("--raw-idle-timeout", "1000", "--max-conns", "2", workers=1) as srv:
        socks = []
        for _ in range(2):
            s = upgrade(srv.port)
            sent, stalled = flood(s, 64 * MiB, stall_s=1.0)
            ok(stalled, "client blocked")
            socks.append(s)
        t_end = time.time() + 8
        while time.time() < t_end and len(upgrade_log_line(srv, 0.1)) < 2:
            time.sleep(0.1)
        lines = upgrade_log_line(srv)
        eq(len(lines), 2, "both stuck streams closed (log: %r)" % lines)
        ok(all("idle" in l for l in lines), "closed for idleness: %r" % lines)
        for s in socks:
            s.close()
        rs = request(srv.port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        eq(rs[0].status, 200, "a new client is served")


@test
def raw_active_streams_outlive_the_idle_timeout():
    # 2 s (not 1) leaves room for a loaded machine descheduling the client for a while.
    with Server("--raw-idle-timeout", "2000", workers=1) as srv:
        # Traffic in small steps keeps a stream open well past the timeout.
        s = upgrade(srv.port)
        t_end = time.time() + 5
        while time.time() < t_end:
            eq(roundtrip(s, b"tick"), b"tick", "echo while active")
            time.sleep(0.3)
        s.close()
        # A peer that reads slowly is not idle: the server's output moves. It keeps sending
        # too, so the echo always has something to say.
        s = upgrade(srv.port)
        sent, stalled = flood(s, 64 * MiB, stall_s=1.0)
        ok(stalled, "client blocked by flow control")
        received = 0
        t_end = time.time() + 5
        while time.time() < t_end:
            time.sleep(0.25)
            s.settimeout(2)
            want = 256 * 1024
            while want:
                b = s.recv(want)
                ok(b, "slow reader cut after %d bytes" % received)
                if b != PAT.at(received, len(b)):
                    raise AssertionError("echo differs at offset %d" % received)
                received += len(b)
                want -= len(b)
            sent, _ = flood(s, sent + 256 * 1024, stall_s=0.05, sent=sent)
        drain_check(s, sent, received)
        eq(roundtrip(s, b"still here"), b"still here", "stream alive after slow reading")
        s.close()


if __name__ == "__main__":
    main()
