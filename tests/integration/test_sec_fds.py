"""Running out of file descriptors (hostile-input audit, issue 4). The server runs with a low
open-file limit and a client opens more connections than it has descriptors for. Accepting
must pause instead of spinning on EMFILE (CPU time of the process stays far below a busy
loop, stderr gets a few lines, not a flood), the connections past the limit get a clean close
instead of hanging, and once descriptors are free again new connections are served. Checked
with one SO_REUSEPORT listener per worker and with the shared listener."""
import os
import select
import socket
import sys
import time

import harness
from harness import Server, connect, eq, main, ok, read_response, test

GET = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"

# Set RLIMIT_NOFILE, then exec the server (the pid stays the same, so /proc/PID is the server).
LAUNCH = ("import os, resource, sys\n"
          "soft, hard = int(sys.argv[1]), int(sys.argv[2])\n"
          "if hard < 0: hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
          "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
          "os.execv(sys.argv[3], sys.argv[3:])\n")

FD_LIMIT = 40
CLIENTS = 70  # well past what FD_LIMIT leaves for connections


def limited_server(soft, hard, *extra):
    cmd = [sys.executable, "-c", LAUNCH, str(soft), str(hard), harness.ARGS.bin, "serve",
           "--workers", "2", "--root", harness.ROOT, "--listen", "127.0.0.1:0",
           "--no-access-log"] + list(extra)
    return Server(cmd=cmd)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def err_bytes(srv):
    return sum(len(l) for l in list(srv.err_lines))


def wait_for(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def closed_by_server(socks, timeout):
    """How many of socks the server closed (EOF or reset) within timeout (or until none more
    closes for a second)."""
    closed = set()
    deadline = time.time() + timeout
    while time.time() < deadline and len(closed) < len(socks):
        live = [s for s in socks if s not in closed]
        wait = max(0.0, deadline - time.time())
        r, _, _ = select.select(live, [], [], min(wait, 1.0) if closed else wait)
        if not r:
            break
        for s in r:
            try:
                if s.recv(1) == b"":
                    closed.add(s)
            except (ConnectionResetError, socket.timeout):
                closed.add(s)
            except BlockingIOError:
                pass
    return len(closed)


def exhaust_and_recover(*extra):
    with limited_server(FD_LIMIT, FD_LIMIT, *extra) as srv:
        pid = srv.proc.pid
        start_err = err_bytes(srv)
        # A working request first: the server is healthy under the low limit.
        s = connect(srv.port)
        s.sendall(GET)
        eq(read_response(s).status, 200, "status before exhaustion")
        s.close()
        socks = []
        try:
            for _ in range(CLIENTS):
                socks.append(connect(srv.port))  # the kernel completes these from the backlog
            # The connections past the limit are closed by the server (not left hanging).
            refused = closed_by_server(socks, 5)
            ok(refused > 0, "no connection past the fd limit was closed by the server")
            ok(refused < CLIENTS, "every connection was closed (%d)" % refused)
            # Exhausted, with connections still arriving: the process must be nearly idle.
            more = [connect(srv.port) for _ in range(5)]
            socks += more
            time.sleep(0.3)
            cpu0 = cpu_seconds(pid)
            time.sleep(2.0)
            cpu = cpu_seconds(pid) - cpu0
            ok(cpu < 0.5, "%.2f s of CPU in 2 s while out of descriptors (a busy loop)" % cpu)
            flood = err_bytes(srv) - start_err
            ok(flood < 2000, "%d bytes on stderr while out of descriptors: %r"
               % (flood, srv.err_lines[-5:]))
        finally:
            for c in socks:
                c.close()
        # Descriptors are free again: accepting resumes (after at most the back-off).
        deadline = time.time() + 10
        while True:
            try:
                s = connect(srv.port)
                s.sendall(GET)
                r = read_response(s, timeout=3)
                s.close()
                break
            except (AssertionError, OSError):
                if time.time() > deadline:
                    raise AssertionError("no request served after the connections closed")
                time.sleep(0.2)
        eq(r.status, 200, "status after recovery")
        ok(wait_for(lambda: any("resumed" in l for l in srv.err_lines), 3),
           "a line when accepting resumes: %r" % srv.err_lines[-5:])
        lines = [l for l in srv.err_lines if "descriptor" in l]
        ok(1 <= len(lines) <= 6, "log lines about descriptors: %r" % lines)
        ok(err_bytes(srv) - start_err < 3000, "stderr: %r" % srv.err_lines[-10:])
        ok(any("limit" in l for l in srv.err_lines[:2]),
           "a warning at startup that the connection limit is above what the fd limit allows: %r"
           % srv.err_lines[:2])


@test
def fd_exhaustion_pauses_accepting_reuseport():
    exhaust_and_recover()


@test
def fd_exhaustion_pauses_accepting_shared_listener():
    exhaust_and_recover("--shared-listener")


@test
def soft_fd_limit_raised_to_hard_limit():
    # Soft limit 40, hard limit inherited: serve raises the soft limit, so CLIENTS
    # connections are all served.
    with limited_server(FD_LIMIT, -1) as srv:
        with open("/proc/%d/limits" % srv.proc.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0].split()
        eq(line[3], line[4], "soft limit raised to the hard limit (%r)" % line)
        socks = []
        try:
            for _ in range(CLIENTS):
                socks.append(connect(srv.port))
            for c in socks:
                c.sendall(GET)
            for c in socks:
                eq(read_response(c).status, 200, "status")
        finally:
            for c in socks:
                c.close()
        ok(not any("descriptor" in l for l in srv.err_lines), "no exhaustion: %r" % srv.err_lines)


if __name__ == "__main__":
    main()
