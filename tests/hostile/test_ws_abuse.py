#!/usr/bin/env python3
"""Hostile WebSocket and raw-stream clients against `switchyard serve`: echo floods from
clients that never read, ping floods, fragment floods, oversized frames and messages, and
deflate bombs. Frames are built by hand (wsraw.py).

Every case names the protocol reaction it expects, bounds the server's memory where the
attack aims at it (VmRSS against the documented caps), and runs a canary beside the attack
(common.Canary: GETs and WebSocket echoes that must stay correct and quick)."""
import os
import select
import struct
import time

from common import (Canary, KiB, MiB, connect, eq, main, ok, read_response, read_until_eof,
                    rss_kib, rss_slack_kib, server, slow, test)
import wsraw
from wsraw import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, WS


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def flood(socks, chunk, limit, stall_s=0.5, deadline_s=10.0, on_tick=None):
    """Send chunk over and over on every socket without reading (non-blocking) until each
    sent `limit` bytes, was closed, or accepted nothing for stall_s. Returns bytes sent per
    socket."""
    sent = {s: 0 for s in socks}
    pos = {s: 0 for s in socks}
    last = {s: time.time() for s in socks}
    live = set(socks)
    for s in socks:
        s.setblocking(False)
    t_end = time.time() + deadline_s
    view = memoryview(chunk)
    while live and time.time() < t_end:
        _, w, _ = select.select([], list(live), [], 0.05)
        now = time.time()
        for s in w:
            try:
                n = s.send(view[pos[s]:])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                live.discard(s)
                continue
            sent[s] += n
            pos[s] = (pos[s] + n) % len(chunk)
            last[s] = now
            if sent[s] >= limit:
                live.discard(s)
        for s in list(live):
            if now - last[s] >= stall_s:
                live.discard(s)
        if on_tick:
            on_tick()
    for s in socks:
        s.setblocking(True)
    return sent


class Peak:
    """The server's VmRSS: baseline at creation, peak over sample() calls."""

    def __init__(self, pid):
        self.pid = pid
        self.base = self.peak = rss_kib(pid)

    def sample(self):
        self.peak = max(self.peak, rss_kib(self.pid))

    def check(self, bound_kib, what):
        self.sample()
        grew = self.peak - self.base
        bound = bound_kib + rss_slack_kib()
        ok(grew <= bound, "%s: server RSS grew by %d KiB (bound %d KiB)" % (what, grew, bound))
        return grew, bound


def wait_fds(pid, at_most, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fd_count(pid) <= at_most:
            return True
        time.sleep(0.05)
    return fd_count(pid) <= at_most


# ---------------------------------------------------------------------------------------------
# Readers that never read


@test
def websocket_echo_flood_without_reading_is_bounded_then_closed():
    """8 clients send 64 KiB binary messages to /echo as fast as they can and never read the
    echoes. Expected: at 1 MiB queued (--ws-high-water) the server stops reading from such a
    client, so TCP stops it; server memory stays under 8 x (1 MiB queue + 1 MiB max message +
    64 KiB read) plus slack; the stalled connection then gets no pong to the server's
    heartbeat (--ws-ping-interval 1 s, --ws-pong-timeout 1 s) and is closed (1006) about 2 s
    later; canaries are served throughout."""
    msg = wsraw.zero_key_frame(OP_BINARY, bytes(64 * KiB))
    with server("--ws-ping-interval", "1000", "--ws-pong-timeout", "1000") as srv, \
            Canary(srv.port, fresh=False):
        pid = srv.proc.pid
        base_fds = fd_count(pid)
        rss = Peak(pid)
        socks = [WS(srv.port).sock for _ in range(8)]
        t0 = time.time()
        sent = flood(socks, msg, 1 << 40, stall_s=0.5, deadline_s=10, on_tick=rss.sample)
        grew, bound = rss.check(8 * (2 * MiB + 64 * KiB) // KiB, "echo flood")
        ok(all(v < 200 * MiB for v in sent.values()), "a flood was never stopped: %r" %
           sorted(sent.values()))
        ok(wait_fds(pid, base_fds, 2 + 4 * slow()), "stalled WebSockets still open %.1fs after "
           "the flood (%d fds, %d before)" % (time.time() - t0, fd_count(pid), base_fds))
        took = time.time() - t0
        for s in socks:
            data, closed, _ = read_until_eof(s, 10)
            ok(closed, "a closed WebSocket did not end")
            s.close()
        print("  pushed %d MB into 8 sockets; server RSS +%d KiB (bound %d); closed after %.1fs" %
              (sum(sent.values()) >> 20, grew, bound, took))


@test
def websocket_backpressure_close_policy_closes_a_reader_that_never_reads():
    """--ws-backpressure close, heartbeats off: a client sends 512 KiB messages to /echo and
    never reads. Expected: once 1 MiB of echoes waits (the high-water mark) the server sends
    close 1008 (behind the queued echoes: the client finds it once it reads) and closes;
    canaries are served meanwhile. Before the fix the server only stopped reading there: the
    policy was checked at the next send, which a paused echo never makes, so whether such a
    client was closed depended on how reads split the messages (with 512 KiB messages: never,
    and with heartbeats off it held its queue for good)."""
    msg = wsraw.zero_key_frame(OP_BINARY, bytes(512 * KiB))
    with server("--ws-backpressure", "close", "--ws-ping-interval", "0") as srv, \
            Canary(srv.port):
        ws = WS(srv.port)
        # enough to fill the kernel's buffers (~10 MB) and then the server's queue; after its
        # close the server reads and discards until the flush ends: stop there
        flood([ws.sock], msg, 32 * MiB, stall_s=0.5, deadline_s=10)
        ws.expect_close(1008, timeout=5 * slow())
        ws.close()


@test
def raw_stream_flood_without_reading_is_bounded_then_closed():
    """4 clients upgrade to the /raw echo and send without reading. Expected: the echo stops
    reading at --raw-high-water (256 KiB) queued, so memory stays under 4 x (256 KiB + 64 KiB
    read) plus slack; nothing moves either way, so each stream is closed by
    --raw-idle-timeout (1 s) within two timeouts; canaries are served meanwhile."""
    with server("--raw-idle-timeout", "1000", "--raw-high-water", "256KiB") as srv, \
            Canary(srv.port, fresh=False):
        pid = srv.proc.pid
        base_fds = fd_count(pid)
        rss = Peak(pid)
        socks = []
        for _ in range(4):
            s = connect(srv.port)
            s.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                      b"Upgrade: echo\r\n\r\n")
            r = read_response(s)
            eq(r.status, 101, "raw upgrade")
            socks.append(s)
        t0 = time.time()
        sent = flood(socks, bytes(range(256)) * 256, 1 << 40, stall_s=0.5, on_tick=rss.sample)
        grew, bound = rss.check(4 * 320, "raw flood")
        # Closed by the idle timeout once nothing moves: normally 2 s after the flood. The
        # bound allows for a loaded machine (the kernel may keep taking bytes for a while,
        # which is progress); a stream that is never closed still fails it.
        ok(wait_fds(pid, base_fds, 2 + 8 * slow()), "stalled raw streams still open %.1fs after "
           "the flood" % (time.time() - t0))
        for s in socks:
            data, closed, _ = read_until_eof(s, 10)
            ok(closed, "a closed stream did not end")
            s.close()
        print("  pushed %d MB; server RSS +%d KiB (bound %d); closed after %.1fs" %
              (sum(sent.values()) >> 20, grew, bound, time.time() - t0))


# ---------------------------------------------------------------------------------------------
# Control and fragment floods


@test
def ping_flood_is_answered_in_order_with_bounded_memory():
    """20,000 pings with 125-byte payloads, sent without reading the pongs, then a text
    message. Expected: the server answers pings in order (it may skip some, RFC 6455 §5.5.3,
    but the last one is answered), stops reading while 1 MiB of pongs wait, so its memory
    stays under 1 MiB + 64 KiB plus slack; once the client reads, the pongs and then the echo
    arrive; canaries are served meanwhile."""
    with server() as srv, Canary(srv.port):
        rss = Peak(srv.proc.pid)
        ws = WS(srv.port)
        n = 20000
        pings = b"".join(wsraw.frame(OP_PING, b"%08d" % i + b"p" * 117) for i in range(n))
        pings += wsraw.frame(OP_TEXT, b"done")
        sent = flood([ws.sock], pings, len(pings), stall_s=0.5, on_tick=rss.sample)[ws.sock]
        grew, bound = rss.check((MiB + 64 * KiB) // KiB, "ping flood")
        last, count = -1, 0
        view = memoryview(pings)
        ws.sock.setblocking(True)
        deadline = time.time() + 20 * slow()
        while True:
            if sent < len(pings):
                # the server read everything it could; send the rest while reading
                ws.sock.setblocking(False)
                try:
                    sent += ws.sock.send(view[sent:])
                except BlockingIOError:
                    pass
                ws.sock.setblocking(True)
            f = ws.recv_frame(max(deadline - time.time(), 0.01))
            if f.opcode == OP_TEXT:
                eq(f.payload, b"done", "the message after the flood")
                break
            eq(f.opcode, OP_PONG, "frame during the flood")
            i = int(f.payload[:8])
            ok(i > last, "pong %d after %d" % (i, last))
            last, count = i, count + 1
        eq(last, n - 1, "the last ping's pong")
        ws.close()
        print("  %d pongs for %d pings; server RSS +%d KiB (bound %d)" % (count, n, grew, bound))


@test
def fragment_floods_are_assembled_or_refused():
    """Messages cut into tiny continuation frames. Expected: 50,000 one-byte fragments come
    back as one 50,000-byte message; 200,000 empty continuation frames between a first and a
    last fragment cost the server only CPU (echoed within 5 s); fragments that add up past
    --ws-max-message (64 KiB here) get close 1009 at the fragment that crosses the limit,
    then TCP close; canaries are served meanwhile."""
    with server("--ws-max-message", "64KiB") as srv, Canary(srv.port):
        ws = WS(srv.port)
        payload = bytes(ord("a") + i % 26 for i in range(50000))
        frames = [wsraw.frame(OP_TEXT, payload[:1], fin=False)]
        frames += [wsraw.frame(OP_CONT, payload[i:i + 1], fin=False)
                   for i in range(1, len(payload) - 1)]
        frames.append(wsraw.frame(OP_CONT, payload[-1:]))
        t0 = time.time()
        ws.send(b"".join(frames))
        op, got = ws.recv_message(10 * slow())
        eq((op, got), (OP_TEXT, payload), "the message of 50,000 fragments")
        t1 = time.time()
        empty = wsraw.frame(OP_CONT, b"", fin=False)
        ws.send(wsraw.frame(OP_TEXT, b"start-", fin=False) + empty * 200000 +
                wsraw.frame(OP_CONT, b"end"))
        op, got = ws.recv_message(10 * slow())
        eq((op, got), (OP_TEXT, b"start-end"), "a message with 200,000 empty fragments")
        t2 = time.time()
        ok(t2 - t1 < 5 * slow(), "200,000 empty fragments took %.1fs" % (t2 - t1))
        piece = bytes(1000)
        over = [wsraw.frame(OP_BINARY, piece, fin=False)]
        over += [wsraw.frame(OP_CONT, piece, fin=False) for _ in range(100)]
        try:
            ws.send(b"".join(over))
        except (BrokenPipeError, ConnectionResetError):
            pass
        ws.expect_close(1009)
        ws.close()
        print("  50,000 fragments in %.2fs, 200,000 empty ones in %.2fs" % (t1 - t0, t2 - t1))


# ---------------------------------------------------------------------------------------------
# Oversized frames and messages, deflate bombs


@test
def oversized_frames_and_messages_get_1009():
    """Frames larger than --ws-max-message (1 MiB). Expected: a header announcing 2^40 bytes
    gets close 1009 at once, before any payload (nothing is allocated for it; before the fix
    the server waited for the first payload byte, which may never come); a frame of
    1 MiB + 1 gets 1009; a length with the most significant bit set (invalid, RFC 6455
    §5.2) gets 1002; 30 connections that announce exactly 1 MiB and send 1 KB of it cost at
    most 30 x 1 MiB; a message of exactly 1 MiB is echoed; canaries are served meanwhile."""
    with server() as srv, Canary(srv.port):
        ws = WS(srv.port)
        ws.send(b"\x82\xff" + struct.pack("!Q", 1 << 40) + b"\0\0\0\0")
        ws.expect_close(1009)
        ws.close()
        ws = WS(srv.port)
        try:
            ws.send(wsraw.zero_key_frame(OP_BINARY, bytes(MiB + 1)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        ws.expect_close(1009)
        ws.close()
        ws = WS(srv.port)
        ws.send(b"\x82\xff" + struct.pack("!Q", 1 << 63) + b"\0\0\0\0")
        ws.expect_close(1002)
        ws.close()
        rss = Peak(srv.proc.pid)
        held = []
        for _ in range(30):
            w = WS(srv.port)
            w.send(b"\x82\xff" + struct.pack("!Q", MiB) + b"\0\0\0\0" + bytes(1000))
            held.append(w)
        time.sleep(0.3)
        grew, bound = rss.check(30 * (MiB + 64 * KiB) // KiB, "30 announced 1 MiB frames")
        for w in held:
            w.close()
        ws = WS(srv.port)
        ws.send(wsraw.zero_key_frame(OP_BINARY, bytes(MiB)))
        op, got = ws.recv_message(10)
        eq((op, len(got)), (OP_BINARY, MiB), "a message of exactly the limit")
        ws.close()


@test
def deflate_bombs_get_1009_with_bounded_memory():
    """permessage-deflate bombs against --ws-max-message 1 MiB: 8 clients each send one
    message of ~50 KB that inflates to 50 MiB, and one sends a bomb cut into 100
    fragments. Expected: close 1009 once 1 MiB has been inflated (not after inflating it
    all: within 2 s), memory under 8 x (1 MiB message + 64 KiB zlib window state) plus
    slack; then a client sending small bombs that stay just under the limit (1 MiB of zeros,
    ~1 KB each) for 2 s is echoed, slowed by the inflate rate limit rather than closed, and
    the canaries are served meanwhile."""
    bomb = wsraw.deflate_payload(bytes(50 * MiB))
    ok(len(bomb) < 64 * KiB, "bomb is %d bytes" % len(bomb))
    with server() as srv, Canary(srv.port):
        rss = Peak(srv.proc.pid)
        bombers = [WS(srv.port, ext="permessage-deflate") for _ in range(8)]
        for w in bombers:
            ok(w.deflate, "permessage-deflate negotiated")
        t0 = time.time()
        for w in bombers:
            w.send(wsraw.frame(OP_BINARY, bomb, rsv=RSV1))
        for w in bombers:
            w.expect_close(1009, timeout=5 * slow())
            w.close()
        took = time.time() - t0
        ok(took < 2 * slow(), "8 bombs refused after %.1fs" % took)
        w = WS(srv.port, ext="permessage-deflate")
        step = len(bomb) // 100 + 1
        parts = [bomb[i:i + step] for i in range(0, len(bomb), step)]
        frames = [wsraw.frame(OP_BINARY, parts[0], fin=False, rsv=RSV1)]
        frames += [wsraw.frame(OP_CONT, p, fin=False) for p in parts[1:-1]]
        frames.append(wsraw.frame(OP_CONT, parts[-1]))
        try:
            w.send(b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):
            pass
        w.expect_close(1009, timeout=5 * slow())
        w.close()
        grew, bound = rss.check(8 * (MiB + 64 * KiB) // KiB, "deflate bombs")
        # Bombs just under the limit: served, not refused; the rate limit paces them.
        w = WS(srv.port, ext="permessage-deflate")
        small = wsraw.frame(OP_BINARY, wsraw.deflate_payload(bytes(MiB - 1)), rsv=RSV1)
        t1, echoed = time.time(), 0
        w.sock.settimeout(10)
        while time.time() - t1 < 2:
            w.send(small)
            f = w.recv_frame(10 * slow())
            while not f.fin:
                f = w.recv_frame(10 * slow())
            echoed += 1
        w.close()
        rss.check(8 * (MiB + 64 * KiB) // KiB + 4 * 1024, "small bombs")
        print("  8 bombs refused in %.2fs, RSS +%d KiB (bound %d); %d small bombs echoed in 2 s" %
              (took, grew, bound, echoed))


if __name__ == "__main__":
    main()
