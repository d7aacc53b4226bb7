"""Shared pieces of the hostile-client suites: the integration harness (server start-up,
result lines), the sanitizer-build scale factor, server memory from /proc, and the canary:
normal clients that keep asking for correct answers while an attack runs."""
import os
import random
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import Server, connect, eq, main, ok, read_response, test  # noqa: E402,F401
import wsraw  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20


def san():
    """True for the ASan/UBSan build (tests/run passes --build build/san)."""
    return os.path.basename(os.path.normpath(harness.ARGS.build)) == "san"


def slow():
    """How much slower the build under test is allowed to be: time bounds are multiplied by
    this (HOSTILE_SLOW overrides; 3 under the sanitizers)."""
    v = os.environ.get("HOSTILE_SLOW")
    if v:
        return float(v)
    return 3.0 if san() else 1.0


def canary_bound():
    """Seconds a canary request may take while an attack runs: 1 s (3 s under ASan)."""
    return 1.0 * slow()


def server(*args, workers=2):
    """A `switchyard serve` on a free loopback port, without the access log (the attacks
    would fill it), plus args."""
    return Server("--no-access-log", *args, workers=workers)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def rss_slack_kib():
    """Allowance on top of a computed memory bound: allocator slack; under ASan also its
    quarantine (freed memory kept up to 256 MiB by default) and redzones."""
    return (320 if san() else 48) * 1024


def stopped_line(srv):
    """The server's 'N connections were refused over --max-conns' count at exit (0 if none)."""
    for line in srv.err_lines:
        if "connections were refused over --max-conns" in line:
            return int(line.split("switchyard: ", 1)[1].split()[0])
    return 0


def read_until_eof(s, timeout):
    """Everything the peer sends until it closes: (bytes, closed?, seconds waited)."""
    t0 = time.time()
    data = b""
    s.settimeout(0.2)
    while time.time() - t0 < timeout:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, True, time.time() - t0
        if not b:
            return data, True, time.time() - t0
        data += b
    return data, False, time.time() - t0


class Canary:
    """Normal clients beside an attack: a background thread that, every `period` seconds,
    GETs /hello.txt (on a fresh connection, or on one keep-alive connection opened before the
    attack when fresh=False) and echoes a message over a WebSocket opened before the attack.
    Every answer must be correct and come within `bound` seconds; check() (run on leaving the
    with block) fails the test otherwise."""

    def __init__(self, port, fresh=True, ws=True, http=True, period=0.05, bound=None,
                 name="canary"):
        self.port, self.fresh, self.period, self.name = port, fresh, period, name
        self.bound = bound or canary_bound()
        self.lat = []
        self.errors = []
        self.stop_ev = threading.Event()
        self.http = http
        self.keep = None
        if http and not fresh:
            self.keep = connect(port, timeout=10)
        self.ws = wsraw.WS(port, timeout=10) if ws else None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        # Quick attacks: let the canary finish a few rounds (it ran beside the attack).
        deadline = time.time() + 3 * self.bound
        while len(self.lat) < 3 and not self.errors and time.time() < deadline:
            time.sleep(0.01)
        self.stop_ev.set()
        self.thread.join(30)
        if self.ws:
            self.ws.close()
        if self.keep:
            self.keep.close()
        if exc_type is None:
            self.check()

    def _get(self):
        req = b"GET /hello.txt HTTP/1.1\r\nHost: canary\r\n\r\n"
        if self.fresh:
            s = connect(self.port, timeout=self.bound * 2 + 5)
            try:
                s.sendall(req)
                r = read_response(s, timeout=self.bound * 2 + 5)
            finally:
                s.close()
        else:
            self.keep.sendall(req)
            r = read_response(self.keep, timeout=self.bound * 2 + 5)
        eq((r.status, r.body), (200, b"hello world\n"), "canary GET /hello.txt")

    def _timed(self, what, fn):
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # noqa
            self.errors.append("%s %s after %.2fs: %s" % (self.name, what, time.time() - t0, e))
            return False
        self.lat.append((time.time() - t0, what))
        return True

    def _run(self):
        rnd = random.Random(7)
        while not self.stop_ev.is_set():
            if self.http and not self._timed("GET", self._get):
                return
            if self.ws:
                word = "canary-%d" % rnd.getrandbits(32)
                if not self._timed("echo", lambda: self.ws.echo(word, self.bound * 2 + 5)):
                    return
            self.stop_ev.wait(self.period)

    def summary(self):
        if not self.lat:
            return "%s: no answers" % self.name
        ts = sorted(t for t, _ in self.lat)
        return "%s: %d answers, median %.1f ms, max %.1f ms" % (
            self.name, len(ts), 1000 * ts[len(ts) // 2], 1000 * ts[-1])

    def check(self, min_answers=3):
        print("  " + self.summary())
        ok(not self.errors, "%s failed: %s" % (self.name, "; ".join(self.errors[:3])))
        ok(len(self.lat) >= min_answers, "%s got only %d answers" % (self.name, len(self.lat)))
        worst = max(self.lat)
        ok(worst[0] <= self.bound, "%s %s took %.2fs (bound %.1fs)" % (
            self.name, worst[1], worst[0], self.bound))
