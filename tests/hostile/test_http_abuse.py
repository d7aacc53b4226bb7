#!/usr/bin/env python3
"""Hostile HTTP/1.1 clients against `switchyard serve`: slow heads (slowloris), slow bodies,
header and request-line floods, readers that never read, a connection flood beyond
--max-conns, Upgrade requests with bodies, and requests pipelined behind a refused upgrade.

Every case names the protocol reaction it expects and runs a canary beside the attack (a
normal client doing GETs and WebSocket echoes, common.Canary) that must keep getting correct
answers within a bound. Servers run with small limits and timeouts so each case is quick."""
import concurrent.futures
import os
import select
import socket
import time

from common import (Canary, KiB, MiB, connect, eq, main, ok, read_response,
                    read_until_eof, rss_kib, rss_slack_kib, server, slow, stopped_line, test)
import harness
import wsraw


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_for(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def status_of(data):
    r, _ = harness.parse_one(data, head_only=True)
    return r.status if r else None


# ---------------------------------------------------------------------------------------------
# Slow heads and slow bodies


@test
def slowloris_heads_get_408_at_the_header_timeout():
    """Slowloris: 150 connections trickle a request head one byte at a time (every 100 ms, a
    head that never ends in time) and 50 connect and send nothing.
    Expected: each trickler gets "408 Request Timeout" and is closed --header-timeout (1.5 s)
    after its first byte, however steadily it trickles (the timeout covers the whole head,
    not the gap between bytes); the silent ones are closed without a response at the same
    timeout; canaries (fresh GETs, WebSocket echoes) are answered within the bound meanwhile."""
    ht = 1.5
    head = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400 + b"\r\n\r\n"
    with server("--header-timeout", "1500") as srv, Canary(srv.port):
        trick = [connect(srv.port) for _ in range(150)]
        silent = [connect(srv.port) for _ in range(50)]
        t_conn = time.time()
        for s in trick + silent:
            s.setblocking(False)
        first = {}
        pos = {s: 0 for s in trick}
        data = {s: b"" for s in trick + silent}
        closed = {}
        deadline = time.time() + ht + 4 * slow()
        while len(closed) < len(trick) + len(silent) and time.time() < deadline:
            now = time.time()
            for s in trick:
                if s in closed or data[s] or pos[s] >= len(head):
                    continue
                try:
                    s.send(head[pos[s]:pos[s] + 1])
                    first.setdefault(s, now)
                    pos[s] += 1
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            open_ = [s for s in trick + silent if s not in closed]
            r, _, _ = select.select(open_, [], [], 0.1)
            for s in r:
                try:
                    b = s.recv(65536)
                except ConnectionResetError:
                    b = b""
                except BlockingIOError:
                    continue
                if b:
                    data[s] += b
                else:
                    closed[s] = time.time()
        late = len(trick) + len(silent) - len(closed)
        ok(late == 0, "%d slow connections still open %.1fs after the header timeout" %
           (late, deadline - t_conn - ht))
        slack = 1.0 * slow()
        for s in trick:
            eq(status_of(data[s]), 408, "a trickled head's response")
            took = closed[s] - first[s]
            ok(ht - 0.1 <= took <= ht + slack, "a trickler was closed %.2fs after its first "
               "byte (header timeout %.1fs)" % (took, ht))
            ok(pos[s] < len(head), "a trickler finished its head (%d bytes)" % pos[s])
        for s in silent:
            eq(data[s], b"", "response to a connection that sent nothing")
            took = closed[s] - t_conn
            ok(ht - 0.1 <= took <= ht + slack, "a silent connection was closed after %.2fs "
               "(header timeout %.1fs)" % (took, ht))
        for s in trick + silent:
            s.close()
        print("  150 trickled heads answered 408, 50 silent connections closed, at %.1fs" % ht)


def slow_body_request(port, head, part):
    s = connect(port)
    s.sendall(head + part)
    return s, time.time()


@test
def slow_bodies_get_408_at_the_body_timeout():
    """Slow bodies: complete heads, then part of the body and a stall -- 20 POST /body with
    Content-Length (a buffered body), 20 chunked POST /body stalled inside a chunk, and 20
    POST /sum (a route whose handler streams the body).
    Expected: "408 Request Timeout" --body-timeout (1 s) after the last body byte, then the
    server closes; the canaries are served meanwhile; the server accepts bodies again after."""
    bt = 1.0
    cl = b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    ch = b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    sm = b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    with server("--body-timeout", "1000") as srv, Canary(srv.port):
        kinds = [(cl, b"x" * 100), (ch, b"3e8\r\n" + b"y" * 10), (sm, b"z" * 5000)]
        socks = []
        for head, part in kinds:
            socks += [(head,) + slow_body_request(srv.port, head, part) for _ in range(20)]
        t0 = time.time()

        def wait_one(job):
            head, s, t_sent = job
            data, closed, _ = read_until_eof(s, bt + 4 * slow())
            s.close()
            return head, data, closed, time.time() - t_sent

        with concurrent.futures.ThreadPoolExecutor(64) as ex:
            results = list(ex.map(wait_one, socks))
        for head, data, closed, took in results:
            what = head.split(b"\r\n")[0].decode() + (" chunked" if b"chunked" in head else "")
            ok(closed, "%s: not closed after %.1fs" % (what, took))
            eq(status_of(data), 408, "%s: response status" % what)
            ok(bt - 0.1 <= took <= bt + slow(), "%s: 408 after %.2fs (body timeout %.1fs)" %
               (what, took, bt))
        # A body that keeps coming is not cut: the timeout is the gap between body bytes.
        s = connect(srv.port)
        s.sendall(cl)
        for i in range(4):
            time.sleep(bt * 0.4)
            s.sendall(b"w" * 250)
        r = read_response(s, timeout=5)
        eq((r.status, r.body), (200, b"w" * 1000), "a body arriving in time")
        s.close()
        print("  60 stalled bodies answered 408 after %.1fs" % (time.time() - t0))


# ---------------------------------------------------------------------------------------------
# Header and request-line floods


def one_exchange(port, raw, stream_more=None):
    """Send raw (then, optionally, keep sending stream_more until the server closes); return
    (status or None, seconds)."""
    t0 = time.time()
    s = connect(port, timeout=10)
    try:
        try:
            s.sendall(raw)
            if stream_more:
                for _ in range(200):
                    s.sendall(stream_more)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed, _ = read_until_eof(s, 10)
        ok(closed, "server left the connection open after an oversized head")
        return status_of(data), time.time() - t0
    finally:
        s.close()


@test
def header_and_uri_floods_get_431_and_414():
    """Floods of oversized heads from 16 clients at once for ~2 s: 101 header fields
    (limit 100) -> 431; a 9000-byte request line (limit 8192) -> 414; one 70 KB header value
    (head limit 64 KiB) -> 431; a head that never ends (1 KB header lines streamed without
    end) -> 431 as soon as the limit is crossed, not at the header timeout. Each answered
    connection is closed. Just under the limits (100 fields, a 8100-byte target) is served.
    Canaries are answered within the bound meanwhile."""
    many = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n" +
            b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n")
    fine = (b"GET /hello.txt HTTP/1.1\r\n" +
            b"".join(b"X-H%d: v\r\n" % i for i in range(99)) + b"Host: x\r\n\r\n")
    longline = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    okline = b"GET /hello.txt?" + b"q" * 8100 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    bighead = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n"
    endless = b"GET / HTTP/1.1\r\nHost: x\r\n"
    line = b"X-More: " + b"m" * 1000 + b"\r\n"
    cases = [(many, None, 431), (longline, None, 414), (bighead, None, 431),
             (endless, line, 431)]
    with server("--header-timeout", "5000") as srv, Canary(srv.port):
        base = rss_kib(srv.proc.pid)
        rs = harness.request(srv.port, fine)
        eq([r.status for r in rs], [200], "100 header fields")
        rs = harness.request(srv.port, okline)
        eq([r.status for r in rs], [200], "an 8100-byte target")
        jobs = [cases[i % len(cases)] for i in range(160)]
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda c: (c[2],) + one_exchange(srv.port, c[0], c[1]), jobs))
        for want, got, took in res:
            eq(got, want, "status of an oversized head")
            ok(took < 2 * slow(), "oversized head answered after %.2fs" % took)
        peak = rss_kib(srv.proc.pid)
        ok(peak - base < rss_slack_kib(), "server RSS grew by %d KiB" % (peak - base))
        print("  160 oversized heads refused (431/414)")


# ---------------------------------------------------------------------------------------------
# Readers that never read


@test
def readers_that_never_read_responses_are_cut():
    """10 clients pipeline 50 GETs of a 3 MiB file each, and 10 GET /stream?20000000000
    (20 GB, written with flow control), and none of them reads.
    Expected: server memory stays bounded by what it may queue -- static files go out by
    sendfile (nothing buffered), /stream stops writing at ~1 MiB queued -- so RSS grows by at
    most 20 x 1.1 MiB (+ allocator slack); each connection is closed --write-timeout (1 s)
    after its output stopped moving (the client, reading afterwards, finds the end of the
    stream after a few MB: the kernel's buffers); the 49 pipelined requests behind each
    file are not answered meanwhile (each would hold the file open: ~1800 fit in one read);
    canaries are served meanwhile."""
    wt = 1.0
    with server("--write-timeout", "1000") as srv, Canary(srv.port, fresh=False):
        pid = srv.proc.pid
        time.sleep(0.2)
        base_fds, base = fd_count(pid), rss_kib(pid)
        socks = []
        for i in range(10):
            s = connect(srv.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
            socks.append(s)
        for i in range(10):
            s = connect(srv.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
            s.sendall(b"GET /stream?20000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        peak, peak_fds = base, base_fds
        t0 = time.time()
        gone = False
        while time.time() - t0 < wt + 4 * slow():
            peak = max(peak, rss_kib(pid))
            peak_fds = max(peak_fds, fd_count(pid))
            if time.time() - t0 > wt and fd_count(pid) <= base_fds:
                gone = True
                break
            time.sleep(0.05)
        took = time.time() - t0
        bound = 20 * (MiB + 128 * KiB) // KiB + rss_slack_kib()
        ok(peak - base <= bound, "server RSS grew by %d KiB (bound %d KiB)" %
           (peak - base, bound))
        # A queued file response holds its file open until it has left: requests pipelined
        # behind one must wait, whether or not they came in the same read.
        ok(peak_fds - base_fds <= 2 * len(socks), "%d descriptors for %d connections" %
           (peak_fds - base_fds, len(socks)))
        ok(gone, "the non-reading connections were still open after %.1fs (%d fds, %d before)"
           % (took, fd_count(pid), base_fds))
        for s in socks:
            data, closed, _ = read_until_eof(s, 10)
            ok(closed, "a cut connection did not end")
            ok(len(data) < 64 * MiB, "a cut connection still delivered %d MB" % (len(data) >> 20))
            s.close()
        print("  20 stalled readers cut after %.1fs; server RSS +%d KiB (bound %d KiB)" %
              (took, peak - base, bound))


@test
def slow_but_steady_download_is_not_cut():
    """The other side of the previous case: a client reading a 24 MB file at ~8 MB/s (a
    3 s download, longer than --keepalive-timeout 1 s; the write timeout is 1 s too) must get
    the whole file. Expected: the response is not idle while it is still leaving, so neither
    the keep-alive nor the write timeout cuts it (before the fix it ended after ~11 MB, at the
    keep-alive timeout: a truncated response)."""
    with server("--write-timeout", "1000", "--keepalive-timeout", "1000") as srv:
        s = connect(srv.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * KiB)
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        got, head, t0, rate = 0, b"", time.time(), 8 * MiB
        s.settimeout(5)
        while True:
            b = s.recv(256 * KiB)
            if not b:
                break
            if len(head) < 4096 and b"\r\n\r\n" not in head:
                head += b
                i = head.find(b"\r\n\r\n")
                if i >= 0:
                    got = len(head) - i - 4
                continue
            got += len(b)
            if got >= HUGE:
                break
            time.sleep(max(0.0, t0 + got / rate - time.time()))  # read at ~rate
        s.close()
        ok(head.startswith(b"HTTP/1.1 200"), "status %r" % head[:20])
        eq(got, HUGE, "bytes of the file received in %.1fs" % (time.time() - t0))


# ---------------------------------------------------------------------------------------------
# Connection flood


@test
def connection_flood_beyond_max_conns_is_refused_and_recovers():
    """--max-conns 40: 38 idle connections plus the canary's two fill the limit, then 300
    more connect at once.
    Expected: each of the 300 is closed at once (EOF with no byte, within 1 s: accepted and
    closed, never left hanging in the backlog) and counted (the server's exit line says
    'refused over --max-conns' with exactly 300); the canary's connections, opened before,
    keep being served; once the fillers leave, new clients are served again."""
    with server("--max-conns", "40") as srv:
        pid = srv.proc.pid
        with Canary(srv.port, fresh=False):
            time.sleep(0.1)
            base = fd_count(pid)
            fill = [connect(srv.port) for _ in range(38)]
            ok(wait_for(lambda: fd_count(pid) >= base + 38, 5), "the fillers were not accepted")
            flood = []
            for _ in range(300):
                s = socket.socket()
                s.connect(("127.0.0.1", srv.port))  # the kernel completes it; then refused
                flood.append((s, time.time()))
            bound = 1.0 * slow()
            sel = [s for s, _ in flood]
            started = dict(flood)
            done = {}
            deadline = time.time() + bound + 3
            while sel and time.time() < deadline:
                r, _, _ = select.select(sel, [], [], 0.1)
                for s in r:
                    try:
                        b = s.recv(100)
                    except ConnectionResetError:
                        b = b""
                    eq(b, b"", "bytes sent to a refused connection")
                    done[s] = time.time() - started[s]
                    sel.remove(s)
            eq(len(sel), 0, "refused connections left open")
            worst = max(done.values())
            ok(worst <= bound, "a refused connection was closed after %.2fs" % worst)
            for s, _ in flood:
                s.close()
            # the canary was served all along; now free the slots
            for s in fill:
                s.close()
        ok(wait_for(lambda: fd_count(pid) <= base - 2, 5), "the fillers' slots were not freed")
        for _ in range(20):
            rs = harness.request(srv.port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
                                 b"Connection: close\r\n\r\n")
            eq([r.status for r in rs], [200], "a new client after the flood")
        ws = wsraw.WS(srv.port)
        ws.echo("after the flood")
        ws.close()
    eq(stopped_line(srv), 300, "connections counted as refused")
    print("  300 refused (worst %.0f ms), counted; recovered" % (worst * 1000))


# ---------------------------------------------------------------------------------------------
# Upgrades with bodies, and what follows a refused upgrade


UPG_WS = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
UPG_RAW = b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"


@test
def upgrade_with_a_large_body_gets_413():
    """Upgrade requests carrying bodies, with --max-body 64 KiB: a WebSocket handshake and a
    raw upgrade announcing Content-Length 100 MiB -> 413 at once, no 101, closed (the body is
    never read); a chunked body that grows past the limit -> 413 once 64 KiB arrived, closed;
    a raw upgrade with a 1000-byte body (under the limit) -> the body is read as the request's
    and the switch follows: the next bytes are the stream's (echoed), the body is not.
    Canaries are answered meanwhile."""
    with server("--max-body", "64KiB") as srv, Canary(srv.port):
        for head in (UPG_WS, UPG_RAW):
            s = connect(srv.port)
            s.sendall(head + b"Content-Length: 104857600\r\n\r\n" + b"B" * 1000)
            data, closed, took = read_until_eof(s, 5)
            s.close()
            eq(status_of(data), 413, "an upgrade announcing 100 MiB")
            ok(closed and took < slow(), "not closed at once (%.2fs)" % took)
            ok(b"101 Switching" not in data, "switched after a 413")
        s = connect(srv.port)
        s.sendall(UPG_WS + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            for _ in range(64):
                s.sendall(b"1000\r\n" + b"C" * 4096 + b"\r\n")
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed, _ = read_until_eof(s, 5)
        s.close()
        eq(status_of(data), 413, "a chunked upgrade body past the limit")
        ok(closed, "the connection stays open after 413")
        s = connect(srv.port)
        s.sendall(UPG_RAW + b"Content-Length: 1000\r\n\r\n" + b"D" * 1000 + b"after")
        r = read_response(s)
        eq(r.status, 101, "a raw upgrade with a body under the limit")
        got = s._sy_buf
        s.settimeout(5)
        while len(got) < 5:
            b = s.recv(100)
            ok(b, "stream closed")
            got += b
        eq(got, b"after", "the stream's first bytes (the body is the request's)")
        s.close()


@test
def pipelined_requests_after_a_refused_upgrade_are_not_answered():
    """A refused or declined upgrade ends the connection, so whatever was pipelined behind it
    (a GET, WebSocket frames) is never answered: Sec-WebSocket-Version 8 -> 426 only; a
    handshake without a key -> 400 only (the masked frame behind it is not echoed); an
    unknown protocol on an upgrade-only route -> 426 only; Upgrade: websocket on a plain file
    -> the file (200) only. Each is then closed. Canaries are answered meanwhile."""
    get = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    cases = [
        (UPG_WS.replace(b"Version: 13", b"Version: 8") + b"\r\n" + get * 3, 426),
        (UPG_WS.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"") + b"\r\n" +
         wsraw.frame(wsraw.OP_TEXT, b"smuggled") + get, 400),
        (b"GET /raw-only HTTP/1.1\r\nHost: x\r\nUpgrade: bogus\r\nConnection: Upgrade\r\n\r\n"
         + get * 2, 426),
        (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"\r\n" + get * 2, 200),
    ]
    with server() as srv, Canary(srv.port):
        for raw, want in cases:
            for _ in range(10):
                s = connect(srv.port)
                s.sendall(raw)  # no half-close: the server must close by itself
                data, closed, took = read_until_eof(s, 5)
                s.close()
                ok(closed and took < slow(), "not closed after the refusal (%.2fs)" % took)
                rs, rest = harness.parse_all(data)
                eq([r.status for r in rs], [want], "responses to %r" % raw.split(b"\r\n")[0])
                eq(rest, b"", "bytes after the refusal")
                ok(b"smuggled" not in data, "the pipelined frame was answered")


HUGE = 24 * MiB


def setup():
    with open(os.path.join(harness.ROOT, "huge.bin"), "wb") as f:
        f.truncate(HUGE)


if __name__ == "__main__":
    main(setup)
