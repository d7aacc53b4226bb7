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


if __name__ == "__main__":
    main()
