"""Rough edges a new user hits: refusing to share a port with another process."""
import socket
import subprocess

import harness
from harness import Server, eq, main, ok, test


def start_fails(port):
    r = subprocess.run([harness.ARGS.bin, "serve", "--listen", "127.0.0.1:%d" % port,
                        "--root", harness.ROOT], capture_output=True, text=True, timeout=10)
    return r


@test
def second_switchyard_on_the_same_port_refuses_to_start():
    with Server(workers=2) as s:
        r = start_fails(s.port)
        ok(r.returncode != 0, "second server exits with an error")
        ok("address already in use" in r.stderr, "says why: %r" % r.stderr)


@test
def another_program_on_the_port_says_address_in_use():
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen()
    try:
        r = start_fails(lst.getsockname()[1])
        ok(r.returncode != 0, "exits with an error")
        ok("address already in use" in r.stderr, "says why: %r" % r.stderr)
        ok("unresolvable" not in r.stderr, "not a bad-address message")
    finally:
        lst.close()


@test
def access_log_out_counts_the_whole_response():
    with Server(workers=1) as srv:
        s = harness.connect(srv.port)
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        wire = harness.recv_all(s)
        s.close()
        import re
        import time
        deadline = time.time() + 3
        m = None
        while time.time() < deadline and not m:
            m = re.search(r'"GET /hello.txt HTTP/1.1" 200 in=\d+ out=(\d+)', "".join(srv.log_lines))
            time.sleep(0.05)
        ok(m is not None, "logged: %r" % srv.log_lines[-3:])
        eq(int(m.group(1)), len(wire), "out= is the whole response as sent (head and body)")


def serve_args(*args):
    return subprocess.run([harness.ARGS.bin, "serve", "--listen", "127.0.0.1:0"] + list(args),
                          capture_output=True, text=True, timeout=10)


@test
def bad_flag_values_are_refused_with_one_line():
    for args, want in [(["--workers", "abc"], "--workers abc"),
                       (["--max-body", "12xyz"], "--max-body 12xyz"),
                       (["--ws-max-message", "64 MiB"], "--ws-max-message"),
                       (["--header-timeout", "soon"], "--header-timeout soon"),
                       (["stray"], "unexpected argument 'stray'"),
                       (["--bogus"], "see switchyard serve --help")]:
        r = serve_args(*args)
        eq(r.returncode, 2, "exit 2 for %r" % args)
        ok(want in r.stderr, "%r names the problem: %r" % (args, r.stderr))
        ok(len(r.stderr.splitlines()) <= 2, "short message, not the whole help: %r" % r.stderr)


@test
def size_and_time_units_are_understood():
    # 1k of body is 1024 bytes: a 1000-byte body passes, a 2000-byte one gets 413.
    with Server("--max-body", "1k", "--header-timeout", "10s", "--ws-max-message", "64MiB",
                workers=1) as srv:
        for n, status in [(1000, 200), (2000, 413)]:
            s = harness.connect(srv.port)
            s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % n + b"x" * n)
            data = harness.recv_all(s)
            s.close()
            ok(data.startswith(b"HTTP/1.1 %d" % status), "%d-byte body: %r" % (n, data[:40]))
        ok(any("http://127.0.0.1:%d/" % srv.port in l for l in srv.err_lines),
           "start-up names the URL: %r" % srv.err_lines[:2])
        ok(any("ws://127.0.0.1:%d/echo" % srv.port in l for l in srv.err_lines),
           "and the WebSocket URL")


@test
def second_ctrl_c_exits_at_once():
    import signal
    import time
    srv = Server("--drain-timeout", "20000", workers=1)
    s = harness.connect(srv.port)
    s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")  # in flight
    time.sleep(0.2)
    srv.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    ok(srv.proc.poll() is None, "the first Ctrl-C drains (the request is in flight)")
    t0 = time.time()
    srv.proc.send_signal(signal.SIGINT)
    srv.proc.wait(5)
    ok(time.time() - t0 < 3, "the second Ctrl-C exits at once")
    eq(srv.proc.returncode, 130, "exit status 130")
    s.close()


def ws_cli(args, stdin):
    return subprocess.run([harness.ARGS.bin, "ws"] + args, input=stdin, capture_output=True,
                          text=True, timeout=20)


@test
def ws_count_is_exact():
    with Server(workers=1) as srv:
        # All four echoes can arrive in one read; --count 2 prints two.
        r = ws_cli([srv.url("/echo", "ws"), "--count", "2"], "a\nb\nc\nd\n")
        eq(r.stdout.splitlines(), ["a", "b"], "exactly two messages printed")


@test
def ws_commands_ping_and_close_with_code():
    with Server(workers=1) as srv:
        r = ws_cli([srv.url("/echo", "ws"), "--commands"], "hi\n/ping x\n//slash\n/close 4001 bye\n")
        eq(r.stdout.splitlines(), ["hi", "/slash"], "messages, with //text sent as /text")
        ok("code 4001 bye" in r.stderr, "closed with the code and reason given: %r" % r.stderr)


@test
def ws_refused_connection_says_why():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    port = lst.getsockname()[1]
    lst.close()  # nothing listens there now
    r = ws_cli(["ws://127.0.0.1:%d/x" % port], "")
    eq(r.returncode, 1, "exit 1")
    ok("refused" in r.stderr.lower(), "names the refusal: %r" % r.stderr)


@test
def ws_failed_handshake_shows_server_reason():
    with Server(workers=1) as srv:
        r = ws_cli([srv.url("/echo", "ws"), "-H", "Sec-WebSocket-Version: 8"], "")
        eq(r.returncode, 1, "exit 1")
        ok("400" in r.stderr or "426" in r.stderr, "status shown: %r" % r.stderr)
        ok("Sec-WebSocket-Version" in r.stderr, "the server's reason shown: %r" % r.stderr)


if __name__ == "__main__":
    main()
