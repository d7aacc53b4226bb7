"""Topics end to end: the /chat demo route of `switchyard serve` on one process, the chat
example, and two processes sharing one redis-server (started here on a free loopback port):
200 clients over both receive every message once and in one order; then redis-server is killed
and restarted while clients keep talking, and the suite reports what was delivered, what was
reported failed to the senders, and checks that nothing was duplicated, reordered, stuck or
leaked (under the SAN=1 build the servers' sanitizer output is checked at exit)."""
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import websockets

import harness
from harness import Server, eq, main, ok, test


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Redis:
    """A throwaway redis-server on 127.0.0.1 (no persistence), stopped by its PID."""

    def __init__(self, port=None):
        ok(shutil.which("redis-server"), "redis-server is installed (scripts/deps.sh)")
        self.port = port or free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start on port %d" % self.port)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port


def log_count(srv, pattern):
    rx = re.compile(pattern)
    return sum(1 for l in list(srv.err_lines) if rx.search(l))


def wait_log(srv, pattern, count=1, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log_count(srv, pattern) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log: %s" % (pattern, "".join(srv.err_lines[-10:])))


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(port, room=None, **kw):
    q = "" if room is None else "?room=" + room
    return await websockets.connect("ws://127.0.0.1:%d/chat%s" % (port, q), ping_interval=None,
                                    max_queue=None, **kw)


class Listener:
    """Collects every message a connection receives."""

    def __init__(self, ws):
        self.ws = ws
        self.msgs = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        try:
            async for m in self.ws:
                self.msgs.append(m)
        except websockets.ConnectionClosed:
            pass


async def wait_until(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


# ---------------------------------------------------------------------------------------------


@test
def chat_rooms_on_one_process():
    with Server("--no-access-log", workers=3) as s:
        async def go():
            a, b = await connect(s.port, "r1"), await connect(s.port, "r1")
            c, d = await connect(s.port, "r2"), await connect(s.port)
            la, lb, lc, ld = (Listener(x) for x in (a, b, c, d))
            await a.send("hi r1")
            await b.send(b"\x00\x01binary")
            await d.send("lobby " + "z" * 200)  # long enough to be compressed
            ok(await wait_until(lambda: len(la.msgs) == 2 and len(lb.msgs) == 2 and ld.msgs, 5),
               "deliveries: %r %r %r" % (la.msgs, lb.msgs, ld.msgs))
            # Two senders on two connections (maybe two workers): no order between them is
            # promised, only that everyone in the room sees the same one.
            eq(sorted(la.msgs, key=repr), sorted(["hi r1", b"\x00\x01binary"], key=repr),
               "room r1, the sender included")
            eq(lb.msgs, la.msgs, "the same order for both")
            eq(ld.msgs, ["lobby " + "z" * 200], "the default room is lobby")
            await asyncio.sleep(0.2)
            eq(lc.msgs, [], "another room hears nothing")
            try:
                await connect(s.port, "bad/room")
                raise AssertionError("an invalid room name was accepted")
            except websockets.InvalidStatusCode as e:
                eq(e.status_code, 400, "invalid room name")
            for x in (a, b, c, d):
                await x.close()
        run(go())
    ok(any("pubsub: published=3" in l for l in s.err_lines), "stats at exit: %r" % s.err_lines)


@test
def chat_example_program():
    path = os.path.join(harness.ARGS.build, "examples", "chat")
    ok(os.access(path, os.X_OK), "%s is built" % path)
    p = subprocess.Popen([path, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = []
        t = threading.Thread(target=lambda: out.append(p.stdout.readline()), daemon=True)
        t.start()
        t.join(10)
        ok(out and out[0].strip().isdigit(), "the example printed its port: %r" % out)
        port = int(out[0])

        async def go():
            a, b = await connect(port, "x"), await connect(port, "x")
            c = await connect(port)
            la, lb, lc = Listener(a), Listener(b), Listener(c)
            await a.send("from a")
            await c.send("to the lobby")
            ok(await wait_until(lambda: lb.msgs and la.msgs and lc.msgs, 5), "delivered")
            eq((la.msgs, lb.msgs, lc.msgs), (["from a"], ["from a"], ["to the lobby"]), "rooms")
            for x in (a, b, c):
                await x.close()
        run(go())
    finally:
        p.kill()
        p.wait(5)


@test
def one_room_over_http1_and_http2():
    """RFC 8441: a WebSocket on an HTTP/2 stream gets the same request context (the room from
    :path in the accept hook) and the same topics as one over HTTP/1.1."""
    import struct
    from h2client import H2

    def frame(op, payload):  # a masked client frame (mask 0: the payload as is)
        assert len(payload) < 126
        return bytes([0x80 | op, 0x80 | len(payload)]) + b"\0\0\0\0" + payload

    with Server("--no-access-log", workers=2) as s:
        c = H2(s.port)
        deadline = time.time() + 5
        while 8 not in c.remote_settings and time.time() < deadline:
            c.pump(0.5)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                  (":scheme", "http"), (":path", "/chat?room=mix"),
                                  (":authority", "127.0.0.1"), ("sec-websocket-version", "13")])
        r = c.expect(sid)
        c.flush()
        while r.status is None and r.reset is None and c.pump(5):
            pass
        eq(r.status, 200, "extended CONNECT to /chat")

        def h2_recv(timeout=5):
            deadline = time.time() + timeout
            while len(r.body) < 2 and time.time() < deadline:
                c.pump(0.2)
            n = r.body[1] & 0x7f
            while len(r.body) < 2 + n and time.time() < deadline:
                c.pump(0.2)
            msg, r.body = r.body[2:2 + n], r.body[2 + n:]
            return msg

        async def go():
            b = await connect(s.port, "mix")
            lb = Listener(b)
            c.send_body(sid, frame(1, b"from h2"), end=False)
            ok(await wait_until(lambda: lb.msgs, 5), "the HTTP/1.1 client got it")
            eq(lb.msgs, ["from h2"], "over HTTP/1.1")
            eq(h2_recv(), b"from h2", "the HTTP/2 sender got its own message")
            await b.send("from h1")
            eq(h2_recv(), b"from h1", "the HTTP/2 client got the HTTP/1.1 client's message")
            await b.close()
        run(go())
        c.close()


# ---------------------------------------------------------------------------------------------
# Two processes, one Redis.

NCLIENTS = 200
SENDERS = 20
PER_SENDER = 25
PAD = "." * 64  # long enough for permessage-deflate (threshold 64): shared compressed frames


def check_client_order(lists, senders):
    """Each list: no duplicates, each sender's messages in its order; any two lists agree on
    the order of the messages both have (the order Redis saw)."""
    ref = {m: i for i, m in enumerate(lists[0])}
    for n, lst in enumerate(lists):
        eq(len(set(lst)), len(lst), "client %d received a message twice" % n)
        last = {}
        for m in lst:
            sid, seq = m.split(":")[:2]
            ok(int(seq) > last.get(sid, -1), "client %d: %s out of order" % (n, m))
            last[sid] = int(seq)
        common = [ref[m] for m in lst if m in ref]
        ok(common == sorted(common), "client %d disagrees on the order" % n)


@test
def two_processes_share_topics_through_redis_and_survive_its_restart():
    redis = Redis()
    try:
        a = Server("--no-access-log", "--redis", redis.url, "--redis-prefix", "it:", workers=2)
        b = Server("--no-access-log", "--redis", redis.url, "--redis-prefix", "it:", workers=2)
        with a, b:
            for s in (a, b):
                wait_log(s, r"redis: connected to .* subscribed to 'it:\*'")
            report = run(scenario(a, b, redis), timeout=180)
        for s in (a, b):
            eq(log_count(s, r"redis: lost the connection"), 1, "one line for the loss")
            eq(log_count(s, r"redis: connection restored"), 1, "one line for the return")
            stats = [l for l in s.err_lines if "pubsub:" in l]
            ok(stats and "redis_queued=0" in stats[0], "nothing left queued: %r" % stats)
            report.append("server %d: %s" % (s.port, stats[0].strip()))
        print("\n".join("  " + r for r in report))
    finally:
        redis.stop()


@test
def redis_down_from_the_start_queues_up_to_the_bound_then_refuses():
    port = free_port()  # nothing listens there yet
    with Server("--no-access-log", "--redis", "redis://127.0.0.1:%d" % port, workers=2) as s:
        wait_log(s, r"redis: cannot connect to 127\.0\.0\.1:%d" % port)

        async def go():
            ws = await connect(s.port, "q")
            lis = Listener(ws)
            n = 10000 + 40  # the queue holds 10000 publishes
            for k in range(n):
                await ws.send("q:%d" % k)
            notes = lambda: [m for m in lis.msgs if m.startswith("[switchyard] not delivered")]
            ok(await wait_until(lambda: len(notes()) >= 40, 20), "refusals reported to the "
               "sender: %d" % len(notes()))
            ok("SY_EAGAIN" in notes()[0], "the refusal says why: %r" % notes()[0])
            eq(len(notes()), 40, "exactly the publishes beyond the bound were refused")
            lis.msgs.clear()
            redis = Redis(port)
            try:
                wait_log(s, r"redis: connection restored")
                ok(await wait_until(lambda: len(lis.msgs) >= 10000, 30),
                   "the queued publishes go out once Redis is there (%d)" % len(lis.msgs))
                eq(lis.msgs, ["q:%d" % k for k in range(10000)], "all of them, in order")
                await ws.close()
            finally:
                redis.stop()
        run(go())
    eq(log_count(s, r"redis: cannot connect"), 1, "one line while down, however many retries")


async def scenario(a, b, redis):
    report = []
    ports = [a.port if i % 2 == 0 else b.port for i in range(NCLIENTS)]
    # Half the clients negotiate permessage-deflate (the default), half do not.
    wss = await asyncio.gather(*[connect(p, "it", compression=None if i % 4 >= 2 else
                                         "deflate") for i, p in enumerate(ports)])
    ls = [Listener(w) for w in wss]

    # Phase 1: 20 senders (10 on each process), 25 messages each, all at once.
    async def send_all(i):
        for k in range(PER_SENDER):
            await wss[i].send("s%d:%d:%s" % (i, k, PAD))
            await asyncio.sleep(0.002)
    await asyncio.gather(*[send_all(i) for i in range(SENDERS)])
    total = SENDERS * PER_SENDER
    done = await wait_until(lambda: all(len(l.msgs) >= total for l in ls), 60)
    counts = sorted(set(len(l.msgs) for l in ls))
    ok(done, "every client got all %d messages (counts seen: %r)" % (total, counts))
    eq(counts, [total], "and not one more")
    check_client_order([l.msgs for l in ls], SENDERS)
    eq(len({tuple(l.msgs) for l in ls}), 1, "one order for all 200 clients")
    report.append("phase 1: %d clients x %d messages from %d senders on 2 processes: each "
                  "received exactly once, in one order" % (NCLIENTS, total, SENDERS))

    # Phase 2: senders keep talking while redis-server is killed and started again.
    for l in ls:
        l.msgs.clear()
    sent = []
    stop = asyncio.Event()

    async def talk(i):
        k = 0
        while not stop.is_set():
            m = "t%d:%d:%s" % (i, k, PAD)
            try:
                await wss[i].send(m)
            except websockets.ConnectionClosed:
                return
            sent.append(m)
            k += 1
            await asyncio.sleep(0.04)
    talkers = [asyncio.ensure_future(talk(i)) for i in range(10)]
    await asyncio.sleep(0.8)
    redis.kill()
    t_kill = time.time()
    for s in (a, b):
        await wait_until(lambda: log_count(s, r"redis: lost the connection") >= 1, 10)
    await asyncio.sleep(max(0, 1.0 - (time.time() - t_kill)))
    redis.start()
    restored = await wait_until(lambda: all(log_count(s, r"redis: connection restored") >= 1
                                            for s in (a, b)), 15)
    ok(restored, "both processes re-subscribed: %r %r" % (a.err_lines[-3:], b.err_lines[-3:]))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*talkers)
    # After the return: everything arrives again, everywhere.
    await asyncio.gather(*[wss[i].send("u%d:0:%s" % (i, PAD)) for i in range(10)])
    tail = ["u%d:0:%s" % (i, PAD) for i in range(10)]
    ok(await wait_until(lambda: all(all(t in l.msgs for t in tail) for l in ls), 30),
       "messages sent after the restart reach every client")
    await asyncio.sleep(0.3)
    failed_notes = [m for l in ls for m in l.msgs if isinstance(m, str) and
                    m.startswith("[switchyard]")]
    lists = [[m for m in l.msgs if not m.startswith("[switchyard]")] for l in ls]
    check_client_order([l for l in lists if l], 10)
    seen = {}
    for lst in lists:
        for m in lst:
            seen[m] = seen.get(m, 0) + 1
    everywhere = sum(1 for m in sent if seen.get(m, 0) == NCLIENTS)
    partly = sum(1 for m in sent if 0 < seen.get(m, 0) < NCLIENTS)
    nowhere = sum(1 for m in sent if m not in seen)
    eq(everywhere + partly + nowhere, len(sent), "accounting")
    ok(everywhere > len(sent) // 2, "most messages got through (%d of %d)" % (everywhere,
                                                                             len(sent)))
    report.append("phase 2 (redis-server killed, restarted 1 s later): %d messages sent, %d "
                  "reached all %d clients, %d some (a process not yet re-subscribed), %d none "
                  "(in flight when Redis died); %d publishes reported failed to their sender"
                  % (len(sent), everywhere, NCLIENTS, partly, nowhere, len(failed_notes)))
    await asyncio.gather(*[w.close() for w in wss])
    return report


if __name__ == "__main__":
    main()
