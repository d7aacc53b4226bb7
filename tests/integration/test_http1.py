"""HTTP/1.1 against the real switchyard binary: keep-alive, pipelining, bodies, 100-continue,
HTTP/1.0, static files and traversal, every error status, request smuggling, timeouts,
connection limits and graceful shutdown. Raw sockets for exact bytes, curl for a real client."""
import os
import signal
import socket
import subprocess
import threading
import time

from harness import (Server, connect, eq, exchange, is_closed, main, ok, parse_all,
                     read_response, recv_all, request, test)

GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"


def curl(*args, timeout=20):
    r = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), capture_output=True,
                       timeout=timeout)
    return r


S = None


@test
def keep_alive_two_requests_one_connection():
    s = connect(S.port)
    s.sendall(GET % b"/hello.txt")
    r1 = read_response(s)
    eq(r1.status, 200, "status")
    eq(r1.body, b"hello world\n", "body")
    ok(r1.header("connection") is None, "no Connection: close on keep-alive")
    ok(r1.header("date") is not None, "Date header")
    s.sendall(GET % b"/hello.txt")
    r2 = read_response(s)
    eq(r2.status, 200, "second status")
    s.close()


@test
def pipelined_requests_answered_in_order():
    reqs = b"".join([GET % b"/hello.txt", GET % b"/nope", GET % b"/style.css",
                     b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    data = exchange(S.port, reqs)
    rs, rest = parse_all(data, head_requests=(3,))
    eq([r.status for r in rs], [200, 404, 200, 200, 200], "statuses in order")
    eq(rs[2].header("content-type"), "text/css; charset=utf-8", "css type")
    eq(rs[3].header("content-length"), "12", "HEAD content-length")
    eq(rs[4].header("connection"), "close", "last has Connection: close")
    eq(rest, b"", "no bytes after the HEAD response body")


@test
def pipelined_byte_by_byte():
    s = connect(S.port)
    reqs = (GET % b"/hello.txt") * 3
    for i in range(len(reqs)):
        s.sendall(reqs[i:i + 1])
    s.shutdown(socket.SHUT_WR)
    rs, _ = parse_all(recv_all(s))
    eq([r.status for r in rs], [200, 200, 200], "three responses")
    s.close()


@test
def http10_without_and_with_keepalive():
    rs = request(S.port, b"GET /hello.txt HTTP/1.0\r\n\r\n")
    eq(rs[0].status, 200, "1.0 status")
    eq(rs[0].header("connection"), "close", "1.0 closes")
    s = connect(S.port)
    s.sendall(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = read_response(s)
    eq(r.header("connection"), "keep-alive", "1.0 keep-alive echoed")
    s.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    r = read_response(s)
    eq(r.status, 200, "second 1.0 request on the kept connection")
    ok(is_closed(s), "closed after the non-keep-alive 1.0 request")


@test
def post_body_content_length_and_chunked():
    rs = request(S.port, b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         b"Connection: close\r\n\r\nhello")
    eq(rs[0].status, 200, "status")
    eq(rs[0].body, b"hello", "echo")
    body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n"
    rs = request(S.port, b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n" + body)
    eq(rs[0].status, 200, "chunked status")
    eq(rs[0].body, b"Wikipedia in\r\n\r\nchunks.", "chunked echo")


@test
def chunked_upload_with_curl():
    data = os.urandom(200000)
    path = "/tmp/sy-upload.bin"
    with open(path, "wb") as f:
        f.write(data)
    r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
             S.url("/body"), "-o", "/tmp/sy-upload.out", "-w", "%{http_code}")
    eq(r.stdout, b"200", "curl status (stderr %r)" % r.stderr)
    with open("/tmp/sy-upload.out", "rb") as f:
        eq(f.read() == data, True, "echoed body identical")


@test
def streamed_body_and_chunked_response():
    import zlib
    data = os.urandom(3000000)
    with open("/tmp/sy-sum.bin", "wb") as f:
        f.write(data)
    want = b"streamed response\nbytes=%d adler32=%08x\n" % (len(data), zlib.adler32(data))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        r = curl(*extra, "--data-binary", "@/tmp/sy-sum.bin", S.url("/sum"), "-D", "-")
        head, _, body = r.stdout.rpartition(b"\r\n\r\n")
        eq(body, want, "streamed sum %r" % extra)
        ok(b"Transfer-Encoding: chunked" in head, "chunked response")
    # raw: the chunked framing of the response itself
    rs = request(S.port, b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         b"Connection: close\r\n\r\nabc")
    eq(rs[0].header("transfer-encoding"), "chunked", "TE")
    eq(rs[0].body, b"streamed response\nbytes=3 adler32=024d0127\n", "body")


@test
def streamed_response_with_flow_control():
    r = curl(S.url("/stream?60000000"), "-o", "/dev/null", "-w", "%{http_code} %{size_download}")
    eq(r.stdout, b"200 60000000", "60 MB streamed")
    # A client that stops reading, then goes away: the server keeps at most ~1 MiB queued
    # and releases the request's state when the connection dies (ASan run checks leaks).
    s = connect(S.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.sendall(b"GET /stream?500000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    rss = int(open("/proc/%d/status" % S.proc.pid).read().split("VmRSS:")[1].split()[0])
    ok(rss < 100 * 1024, "server RSS %d KiB while a client stalls a 500 MB response" % rss)
    s.close()
    time.sleep(0.2)
    s = connect(S.port)
    s.sendall(GET % b"/hello.txt")
    eq(read_response(s).status, 200, "still serving")
    s.close()


@test
def async_handler_keeps_pipelined_order():
    """/delay answers 150 ms later from another thread; the pipelined requests behind it
    wait, and all come back in order with the delayed one's request intact."""
    reqs = (b"GET /delay?150 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 3000 + b"\r\n\r\n" +
            GET % b"/hello.txt" + b"GET /delay?10 HTTP/1.1\r\nHost: x\r\n\r\n" +
            b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    t0 = time.time()
    rs, _ = parse_all(exchange(S.port, reqs))
    eq([r.status for r in rs], [200, 200, 200, 200], "four responses")
    eq(rs[0].body, b"delayed 150 ms: /delay?150\n", "first, delayed (its target intact)")
    eq(rs[1].body, b"hello world\n", "second")
    eq(rs[2].body, b"delayed 10 ms: /delay?10\n", "third")
    ok(time.time() - t0 >= 0.15, "really delayed")


@test
def async_handler_outlives_its_connection():
    """The client leaves before the delayed answer: the handler's late sy_respond must find
    the request intact and release it (no crash, no leak under ASan), others unaffected."""
    for _ in range(3):
        s = connect(S.port)
        s.sendall(b"GET /delay?200 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    time.sleep(0.5)
    s = connect(S.port)
    s.sendall(b"GET /delay?5 HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(s)
    eq(r.body, b"delayed 5 ms: /delay?5\n", "later requests unaffected")
    s.close()


@test
def expect_100_continue():
    s = connect(S.port)
    s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    s.settimeout(5)
    first = s.recv(4096)
    ok(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), "100 Continue first: %r" % first)
    s.sendall(b"abcd")
    s._sy_buf = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    r = read_response(s)
    eq(r.status, 200, "final status")
    eq(r.body, b"abcd", "body")
    # Too large: final 413 without 100, and the connection closes.
    s2 = connect(S.port)
    s2.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
               b"Expect: 100-continue\r\n\r\n")
    r = read_response(s2)
    eq(r.status, 413, "too large")
    ok(is_closed(s2), "closed after 413")


@test
def expect_with_curl():
    r = curl("-H", "Expect: 100-continue", "--data-binary", "x" * 2000, S.url("/body"),
             "-w", "\n%{http_code}")
    ok(r.stdout.endswith(b"\n200"), "curl 100-continue post: %r" % r.stdout[-40:])


@test
def head_and_options_star():
    rs = request(S.port, b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # HEAD: Content-Length of the file, no body bytes
    data = exchange(S.port, b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    ok(b"Content-Length: %d" % (3 * 1024 * 1024 + 17) in head, "HEAD content-length")
    eq(body, b"", "HEAD has no body")
    rs = request(S.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 200, "OPTIONS *")
    ok(rs[0].header("allow") is not None, "Allow header")


@test
def static_files_types_etag_304():
    rs = request(S.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 200, "index")
    ok(b"index" in rs[0].body, "index body")
    eq(rs[0].header("content-type"), "text/html; charset=utf-8", "html type")
    etag = rs[0].header("etag")
    lm = rs[0].header("last-modified")
    ok(etag and lm, "ETag and Last-Modified present")
    rs = request(S.port, b"GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag.encode() +
                 b"\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 304, "If-None-Match")
    eq(rs[0].body, b"", "304 body")
    rs = request(S.port, b"GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: " + lm.encode() +
                 b"\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 304, "If-Modified-Since")
    rs = request(S.port, b"GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 301, "directory redirect")
    eq(rs[0].header("location"), "/sub/", "location")
    rs = request(S.port, b"GET /sub/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].body, b"sub index\n", "sub index")
    rs = request(S.port, b"GET /inner-link.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 200, "symlink inside the root is fine")


@test
def big_file_with_curl_sendfile():
    r = curl(S.url("/big.bin"), "-o", "/tmp/sy-big.out", "-w", "%{http_code} %{size_download}")
    eq(r.stdout, b"200 %d" % (3 * 1024 * 1024 + 17), "curl download")
    with open("/tmp/sy-big.out", "rb") as a, open(os.path.join(ROOT(), "big.bin"), "rb") as b:
        eq(a.read() == b.read(), True, "identical bytes")


def ROOT():
    import harness
    return harness.ROOT


@test
def path_traversal_is_impossible():
    cases = [b"/../secret.txt", b"/%2e%2e/secret.txt", b"/sub/../../secret.txt",
             b"/%2E%2E/%2E%2E/etc/passwd", b"/etc-link/passwd", b"/secret-link.txt",
             b"/sub/%2e%2e/%2e%2e/secret.txt", b"/..%2fsecret.txt", b"/.%2e/secret.txt"]
    for c in cases:
        rs = request(S.port, b"GET " + c + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        ok(rs and rs[0].status in (400, 403, 404), "%r gave %r" % (c, rs and rs[0].status))
        ok(b"SECRET" not in rs[0].body and b"root:" not in rs[0].body, "%r leaked" % c)
    rs = request(S.port, b"GET /hello%00.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 400, "encoded NUL")


def expect_error(raw, status, what):
    s = connect(S.port)
    s.sendall(raw)
    data = recv_all(s, 5)
    s.close()
    rs, _ = parse_all(data)
    ok(rs, "%s: no response (got %r)" % (what, data[:200]))
    eq(rs[0].status, status, what)
    eq(rs[0].header("connection"), "close", what + ": Connection: close")
    eq(len(rs), 1, what + ": exactly one response, then closed")


@test
def error_statuses():
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400, "space in name")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n", 400, "space before colon")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400, "obs-fold")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400, "bare CR")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400, "NUL")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400, "CTL")
    expect_error(b"GET / HTTP/1.1\r\n\r\n", 400, "missing Host")
    expect_error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Hosts")
    expect_error(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "long URI")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431,
                 "too many headers")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431,
                 "head too large")
    expect_error(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version 2.0")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
                 "TE not ending in chunked")
    expect_error(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n"
                 b"0\r\n\r\n", 501, "unknown coding")
    expect_error(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413,
                 "body too large")
    expect_error(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"zz\r\n", 400, "bad chunk size")
    expect_error(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"fffffffffffffffffff\r\n", 400, "chunk size overflow")
    expect_error(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"1;a b\r\nx\r\n0\r\n\r\n", 400, "bad chunk extension")
    expect_error(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"1\r\nx\r\n0\r\nBad Trailer\r\n\r\n", 400, "bad trailer")
    expect_error(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417, "expectation")
    expect_error(b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad method")


@test
def error_does_not_harm_other_connections():
    good = connect(S.port)
    good.sendall(GET % b"/hello.txt")
    eq(read_response(good).status, 200, "before")
    expect_error(b"GET / HTTP/1.1\r\nX : y\r\n\r\n", 400, "bad one")
    good.sendall(GET % b"/hello.txt")
    eq(read_response(good).status, 200, "after")
    good.close()


@test
def smuggling_cases_rejected():
    cases = {
        "CL.TE": b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        "TE.CL": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        "dup CL": b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Content-Length: 6\r\n\r\nhello!",
        "CL list": b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
        "TE space colon": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
                          b"\r\n0\r\n\r\n",
        "TE xchunked": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "TE chunked,identity": b"POST /body HTTP/1.1\r\nHost: x\r\n"
                               b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "TE twice": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "TE vtab": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\x0b\r\n\r\n",
        "TE obs-fold": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
        "TE in 1.0": b"POST /body HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
        "bare LF in header": b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
        "CL negative": b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "CL plus": b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
        "chunk LF only": b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"1\nx\r\n0\r\n\r\n",
    }
    for name, raw in cases.items():
        s = connect(S.port)
        s.sendall(raw)
        data = recv_all(s, 5)
        s.close()
        rs, _ = parse_all(data)
        ok(rs, "%s: no response" % name)
        ok(rs[0].status in (400, 501), "%s: status %d" % (name, rs[0].status))
        eq(len(rs), 1, "%s: nothing smuggled after the error" % name)


@test
def curl_basics():
    r = curl(S.url("/hello.txt"), "-w", "%{http_code} %{http_version}")
    eq(r.stdout, b"hello world\n200 1.1", "curl GET")
    r = curl("--http1.0", S.url("/hello.txt"), "-w", "%{http_code}")
    eq(r.stdout, b"hello world\n200", "curl 1.0")
    r = curl(S.url("/hello.txt"), S.url("/style.css"), "-w", "%{num_connects} ")
    ok(b"\n1 " in r.stdout and r.stdout.endswith(b"\n0 "),
       "curl reused the connection: %r" % r.stdout)


# ---- the Upgrade matrix ----

def upgrade_req(path, upgrade, connection="Upgrade", version=b"1.1", extra=b""):
    return (b"GET " + path + b" HTTP/" + version + b"\r\nHost: x\r\nConnection: " +
            connection.encode() + b"\r\nUpgrade: " + upgrade.encode() + b"\r\n" + extra + b"\r\n")


@test
def upgrade_accepted_with_leftover_bytes():
    s = connect(S.port)
    # The bytes after the head arrive in the same packet and must reach the new protocol.
    s.sendall(upgrade_req(b"/raw", "echo") + b"leftover-bytes!")
    r = read_response(s)
    eq(r.status, 101, "101")
    eq(r.header("upgrade"), "echo", "Upgrade header")
    eq(r.header("connection").lower(), "upgrade", "Connection header")
    got = s._sy_buf
    s.settimeout(5)
    while len(got) < 15:
        got += s.recv(100)
    eq(got, b"leftover-bytes!", "leftover echoed")
    s.sendall(b"more")
    eq(s.recv(100), b"more", "stream continues")
    s.shutdown(socket.SHUT_WR)
    ok(is_closed(s), "closes after the client's EOF")


@test
def upgrade_unknown_token_ignored():
    rs = request(S.port, upgrade_req(b"/raw", "foo/2, bar", "Upgrade, close"))
    eq(rs[0].status, 200, "unknown token: served normally")
    ok(b"raw protocols" in rs[0].body, "plain handler body")
    rs = request(S.port, upgrade_req(b"/hello.txt", "echo", "Upgrade, close"))
    eq(rs[0].status, 200, "route without upgrades: served normally")


@test
def upgrade_requires_connection_token():
    rs = request(S.port, upgrade_req(b"/raw", "echo", "keep-alive, close"))
    eq(rs[0].status, 200, "no 'upgrade' in Connection: ignored")


@test
def upgrade_ignored_for_http10():
    rs = request(S.port, upgrade_req(b"/raw", "echo", version=b"1.0"))
    eq(rs[0].status, 200, "HTTP/1.0 upgrade ignored")


@test
def upgrade_required_426():
    rs = request(S.port, b"GET /raw-only HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq(rs[0].status, 426, "426")
    eq(rs[0].header("upgrade"), "echo", "Upgrade lists the protocols")
    ok("upgrade" in rs[0].header("connection").lower(), "Connection: Upgrade")


@test
def upgrade_picks_client_order():
    s = connect(S.port)
    s.sendall(upgrade_req(b"/raw", "nope, upper, echo") + b"abc")
    r = read_response(s)
    eq(r.status, 101, "101")
    eq(r.header("upgrade"), "upper", "first supported in client order")
    got = s._sy_buf
    while len(got) < 3:
        got += s.recv(10)
    eq(got, b"ABC", "upper protocol active")
    s.close()
    s = connect(S.port)
    s.sendall(upgrade_req(b"/raw", "echo, upper") + b"abc")
    r = read_response(s)
    eq(r.header("upgrade"), "echo", "client order again")
    s.close()


@test
def upgrade_case_insensitive_and_lists():
    s = connect(S.port)
    s.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\nconnection: keep-alive,  UPGRADE\r\n"
              b"upgrade: ECHO/1.0\r\n\r\nhi")
    r = read_response(s)
    eq(r.status, 101, "case-insensitive tokens")
    s.close()


@test
def upgrade_after_body_is_read():
    s = connect(S.port)
    s.sendall(b"POST /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
              b"Content-Length: 5\r\n\r\nBODY!after")
    r = read_response(s)
    eq(r.status, 101, "upgrade with a body: body read first")
    got = s._sy_buf
    while len(got) < 5:
        got += s.recv(10)
    eq(got, b"after", "only the bytes after the body are echoed")
    s.close()


@test
def access_log_lines():
    request(S.port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    s = connect(S.port)
    s.sendall(upgrade_req(b"/raw", "echo") + b"x")
    read_response(s)
    s.close()
    time.sleep(0.3)
    log = "".join(S.log_lines)
    ok('"GET /hello.txt HTTP/1.1" 200' in log, "request line logged: %r" % log[-500:])
    ok("upgraded=echo" in log and " 101 " in log, "upgrade logged: %r" % log[-500:])


# ---- timeouts, limits, shutdown (their own servers) ----

@test
def slowloris_cut_while_others_served():
    with Server("--header-timeout", "1000", "--no-access-log") as srv:
        slow = connect(srv.port)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        results = []

        def client():
            try:
                s = connect(srv.port)
                s.sendall(GET % b"/hello.txt")
                results.append(read_response(s).status)
                s.close()
            except Exception as e:  # noqa
                results.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(100)]
        for t in threads:
            t.start()
        # keep trickling bytes: a slowloris never finishes the head
        for _ in range(4):
            time.sleep(0.4)
            try:
                slow.sendall(b"X-a: b\r\n")
            except OSError:
                break
        for t in threads:
            t.join()
        eq(results.count(200), 100, "all 100 normal clients served: %r" % results[:5])
        data = recv_all(slow, 5)
        ok(time.time() - t0 < 4, "cut near the header timeout")
        rs, _ = parse_all(data)
        ok(rs and rs[0].status == 408, "408 for the slow client: %r" % data[:100])


@test
def keepalive_idle_timeout_closes():
    with Server("--keepalive-timeout", "500", "--no-access-log") as srv:
        s = connect(srv.port)
        s.sendall(GET % b"/hello.txt")
        read_response(s)
        t0 = time.time()
        ok(is_closed(s, 5), "idle connection closed")
        ok(time.time() - t0 < 3, "within the keep-alive timeout")


@test
def body_timeout_408():
    with Server("--body-timeout", "500", "--no-access-log") as srv:
        s = connect(srv.port)
        s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        rs, _ = parse_all(recv_all(s, 5))
        eq(rs[0].status, 408, "stalled body")


@test
def connection_limit_accept_and_close():
    with Server("--max-conns", "3", "--workers", "1", "--no-access-log", workers=1) as srv:
        held = [connect(srv.port) for _ in range(3)]
        time.sleep(0.2)
        extra = connect(srv.port)
        ok(is_closed(extra, 3), "over the limit: closed at once")
        for h in held:
            h.sendall(GET % b"/hello.txt")
            eq(read_response(h).status, 200, "held connections still served")
            h.close()
        time.sleep(0.3)
        s = connect(srv.port)
        s.sendall(GET % b"/hello.txt")
        eq(read_response(s).status, 200, "slots freed")
        s.close()
    ok(any("1 connections were refused" in l for l in srv.err_lines),
       "the refusal is counted: %r" % srv.err_lines[-3:])


@test
def graceful_shutdown_finishes_inflight():
    srv = Server("--drain-timeout", "3000", "--no-access-log")
    idle = connect(srv.port)
    busy = connect(srv.port)
    # A request whose body is still arriving when the signal comes.
    busy.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
    time.sleep(0.2)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ok(is_closed(idle, 3), "idle keep-alive connection closed at shutdown")
    busy.sendall(b"def")
    r = read_response(busy)
    eq(r.status, 200, "in-flight request finished")
    eq(r.body, b"abcdef", "its body")
    eq(r.header("connection"), "close", "with Connection: close")
    t0 = time.time()
    rc = srv.stop(timeout=10)
    eq(rc, 0, "exit status")
    ok(time.time() - t0 < 5, "exited within the drain time")
    try:
        connect(srv.port, timeout=1)
        raise AssertionError("still accepting after shutdown")
    except OSError:
        pass


@test
def graceful_shutdown_forces_after_drain_timeout():
    srv = Server("--drain-timeout", "500", "--no-access-log")
    stuck = connect(srv.port)
    stuck.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    time.sleep(0.2)
    t0 = time.time()
    rc = srv.stop(timeout=10)
    eq(rc, 0, "exit status")
    ok(time.time() - t0 < 3, "forced close after the drain timeout")


@test
def shared_listener_mode():
    srv = Server("--shared-listener", "--no-access-log", workers=2)
    socks = [connect(srv.port) for _ in range(8)]
    for s in socks:
        s.sendall(GET % b"/hello.txt")
    for s in socks:
        eq(read_response(s).status, 200, "served")
        s.close()
    eq(srv.stop(), 0, "clean exit")
    try:
        connect(srv.port, timeout=1)
        raise AssertionError("still accepting after shutdown")
    except OSError:
        pass


@test
def ipv6_and_several_listeners():
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        print("skip: no IPv6 loopback")
        return
    with Server("--no-access-log", listen=["127.0.0.1:0", "[::1]:0"]) as srv:
        eq(len(srv.ports), 2, "two listeners")
        s = connect(srv.ports[1], host="::1")
        s.sendall(GET % b"/hello.txt")
        eq(read_response(s).status, 200, "served over IPv6")
        s.close()
        s = connect(srv.ports[0])
        s.sendall(GET % b"/hello.txt")
        eq(read_response(s).status, 200, "served over IPv4")
        s.close()


def setup():
    global S
    S = Server()


if __name__ == "__main__":
    import atexit
    import harness

    def fin():
        if S:
            S.stop()
            harness.check_sanitizer(S.err_lines)
    atexit.register(fin)
    main(setup)
