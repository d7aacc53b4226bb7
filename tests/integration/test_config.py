"""serve --config FILE: the YAML format, --check-config (every problem with its line and
column, exit 2; 0 when valid), flags overriding the file, and SIGHUP reloading routes and
limits for new connections while open connections keep theirs."""
import os
import signal
import subprocess
import tempfile
import time

import harness
from harness import Server, connect, eq, main, ok, read_response, test
from opsutil import frame, get, read_frame, wait_for, ws_close, ws_open

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def write(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(text)
    f.close()
    return f.name


def check(path):
    return subprocess.run([harness.ARGS.bin, "serve", "--config", path, "--check-config"],
                          capture_output=True, text=True, timeout=20)


def serve(path, *extra):
    return Server(cmd=[harness.ARGS.bin, "serve", "--config", path] + list(extra))


def post(port, path, body):
    s = connect(port)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
              % (path.encode(), len(body)) + body)
    r = read_response(s)
    s.close()
    return r


@test
def the_example_file_is_valid():
    r = subprocess.run([harness.ARGS.bin, "serve", "--config", "demo/switchyard.yaml",
                        "--check-config"], capture_output=True, text=True, timeout=20, cwd=REPO)
    eq(r.returncode, 0, "exit 0: %s" % r.stderr)
    ok(": ok" in r.stdout, "says ok: %r" % r.stdout)


@test
def check_config_lists_every_problem_with_line_and_column():
    path = write("""listen:
  - 127.0.0.1:notaport
workers: many
limits:
  max_body: 12 parsecs
  bogus: 1
timeouts:
  header: soon
routes:
  - path: echo
    websocket: {max_message: huge}
  - path: /x
    static: /nonexistent-dir
    raw: echo
metrics:
  path: metrics
logs:
  format: xml
colour: blue
""")
    r = check(path)
    eq(r.returncode, 2, "exit 2")
    want = ["2:5:", "3:10:", "5:13:", "6:3:", "8:11:", "10:11:", "11:30:", "13:13:", "12:5:",
            "16:9:", "18:11:", "19:1:"]
    for w in want:
        ok(path + ":" + w in r.stderr, "problem at %s reported:\n%s" % (w, r.stderr))
    eq(len([l for l in r.stderr.splitlines() if l.startswith(path + ":")]), len(want),
       "one line per problem")
    os.unlink(path)


@test
def yaml_syntax_error_has_a_line():
    path = write("listen: [a\nroutes: {\n")
    r = check(path)
    eq(r.returncode, 2, "exit 2")
    ok(r.stderr.startswith(path + ":2:") and "YAML syntax" in r.stderr, r.stderr)
    os.unlink(path)
    r = check("/nonexistent/switchyard.yaml")
    eq(r.returncode, 2, "a missing file: exit 2")


CONF = """listen: [127.0.0.1:0]
workers: 1
limits:
  max_body: 1KiB
routes:
  - path: /
    static: %(root)s
  - path: /chat
    websocket:
      subprotocols: [chat.v1]
      require_subprotocol: true
  - path: /r
    raw: upper
  - path: /body
    demo: body
  - path: /stats
    metrics: true
logs:
  format: plain
"""


@test
def the_file_decides_the_routes_and_limits():
    path = write(CONF % {"root": harness.ROOT})
    with serve(path) as srv:
        eq(get(srv.port, "/hello.txt").status, 200, "static route")
        eq(get(srv.port, "/stats").status, 200, "metrics at the file's path")
        eq(get(srv.port, "/metrics").status, 404, "not at the default path")
        s, st, head, _ = ws_open(srv.port, "/chat", extra=["Sec-WebSocket-Protocol: chat.v1"])
        eq(st, 101, "chat switches")
        ok("Sec-WebSocket-Protocol: chat.v1" in head, "subprotocol chosen")
        ws_close(s)
        s, st, _, _ = ws_open(srv.port, "/chat")
        eq(st, 400, "subprotocol required")
        s.close()
        s, st, _, _ = ws_open(srv.port, "/echo")
        eq(st, 404, "the demo /echo is not there")
        s.close()
        eq(post(srv.port, "/body", b"x" * 2000).status, 413, "max_body 1KiB from the file")
        eq(post(srv.port, "/body", b"x" * 500).status, 200, "under it")
    with serve(path, "--max-body", "4KiB") as srv:
        eq(post(srv.port, "/body", b"x" * 2000).status, 200, "the flag overrides the file")
    os.unlink(path)


RELOAD_A = """listen: [127.0.0.1:0]
workers: 2
routes:
  - path: /echo
    websocket: echo
  - path: /body
    demo: body
"""
RELOAD_B = """listen: [127.0.0.1:0]
workers: 2
limits:
  max_body: 100
routes:
  - path: /echo2
    websocket: echo
  - path: /body
    demo: body
logs:
  format: json
"""


@test
def sighup_reloads_routes_and_limits_for_new_connections():
    path = write(RELOAD_A)
    with serve(path) as srv:
        old, st, _, _ = ws_open(srv.port, "/echo")
        eq(st, 101, "before: /echo")
        eq(post(srv.port, "/body", b"y" * 500).status, 200, "before: 500 bytes are fine")
        with open(path, "w") as f:
            f.write(RELOAD_B)
        srv.proc.send_signal(signal.SIGHUP)
        ok(wait_for(lambda: any("reloaded" in l for l in srv.err_lines)),
           "reload logged: %r" % srv.err_lines[-3:])
        s, st, _, _ = ws_open(srv.port, "/echo")
        eq(st, 404, "after: /echo is gone for new connections")
        s.close()
        s, st, _, _ = ws_open(srv.port, "/echo2")
        eq(st, 101, "after: /echo2")
        ws_close(s)
        eq(post(srv.port, "/body", b"y" * 500).status, 413, "after: the new limit")
        old.sendall(frame(0x1, b"still here"))
        op, p, _ = read_frame(old)
        eq(p, b"still here", "the connection from before still echoes")
        ws_close(old)
        ok(any(l.startswith("{") for l in srv.log_lines[-2:]), "log format json after reload")
        # A broken file: errors logged, the previous settings kept.
        with open(path, "w") as f:
            f.write("routes: [\n")
        srv.proc.send_signal(signal.SIGHUP)
        ok(wait_for(lambda: any("still serving the previous settings" in l
                                for l in srv.err_lines)), "refused reload logged")
        s, st, _, _ = ws_open(srv.port, "/echo2")
        eq(st, 101, "still B")
        ws_close(s)
    os.unlink(path)


@test
def reload_says_what_needs_a_restart():
    path = write(RELOAD_A)
    with serve(path) as srv:
        with open(path, "w") as f:
            f.write(RELOAD_A.replace("workers: 2", "workers: 3"))
        srv.proc.send_signal(signal.SIGHUP)
        ok(wait_for(lambda: any("workers changed" in l and "restart" in l
                                for l in srv.err_lines)), "restart note: %r" % srv.err_lines[-3:])
    os.unlink(path)


if __name__ == "__main__":
    main()
