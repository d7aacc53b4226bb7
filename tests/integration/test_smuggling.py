"""Request smuggling and desync cases against the real binary, in the style of http-garden,
smuggler.py and the HTTP/2 desync research: every ambiguous message gets one error response
and the connection closes, and nothing sent after it is ever read as a request. The rules
and their RFC sections are in docs/http1.md ("What the parser accepts").

Each HTTP/1 case is sent followed by a marker request (GET /hello.txt?m-<n>, Connection:
close). A rejected case must give exactly one response (the error, with Connection: close),
then EOF, and its marker must never reach the access log; an accepted case must give its own
responses and then the marker's 200, so we know where the server thought the message ended.
HTTP/2 cases use python3-h2 with header validation off, so that malformed fields go out."""
import socket
import time

from harness import Server, connect, eq, main, ok, parse_all, read_response, recv_all, test

import h2.config
import h2.connection
import h2.events

S = None
_n = [0]
_rejected_marks = []


def marker():
    _n[0] += 1
    return b"m-%d" % _n[0]


def send(raw, timeout=5, head_requests=()):
    """raw + a marker request; returns (responses, marker, leftover bytes)."""
    m = marker()
    s = connect(S.port)
    try:
        s.sendall(raw + b"GET /hello.txt?" + m + b" HTTP/1.1\r\nHost: x\r\nConnection: close"
                  b"\r\n\r\n")
    except OSError:
        pass  # the server may close before everything is sent
    data = recv_all(s, timeout)
    s.close()
    rs, rest = parse_all(data, head_requests)
    return rs, m, rest


def rejected(name, raw, status=400):
    rs, m, rest = send(raw)
    ok(rs, "%s: no response" % name)
    eq(rs[0].status, status, name)
    conn = [t.strip().lower() for t in (rs[0].header("connection") or "").split(",")]
    ok("close" in conn, name + ": Connection: close (%r)" % rs[0].header("connection"))
    eq(len(rs), 1, name + ": exactly one response, nothing after the error")
    eq(rest, b"", name + ": no bytes after the error response")
    _rejected_marks.append((name, m))


def accepted(name, raw, statuses, body=None, head_requests=()):
    """The case's responses, then the marker's 200: the message ended where we think."""
    rs, m, rest = send(raw, head_requests=head_requests)
    eq([r.status for r in rs], list(statuses) + [200], name + ": statuses")
    if body is not None:
        eq(rs[0].body, body, name + ": body as the handler saw it")
    return rs


def markers_never_served():
    """The marker of every rejected case is absent from the access log."""
    time.sleep(0.3)
    log = "".join(S.log_lines)
    for name, m in _rejected_marks:
        ok(("?" + m.decode() + " ") not in log, "%s: request after the error was served" % name)


POST = b"POST /body HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


# ---- HTTP/1: Content-Length and Transfer-Encoding (RFC 9112 §6) ----

@test
def content_length_and_transfer_encoding_together():
    rejected("CL.TE", POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")
    rejected("TE.CL", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
             b"8\r\nSMUGGLED\r\n0\r\n\r\n")
    rejected("TE.CL zero", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
             b"0\r\n\r\n")
    rejected("CL.TE identity", POST + b"Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\n"
             b"hello")
    rejected("CL.TE Upgrade", b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
             b"Upgrade: echo\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    markers_never_served()


@test
def content_length_values():
    for v in [b"5, 6", b"-5", b"+5", b"1 0", b"0x5", b"5.0", b"5e0", b"", b"5,", b",5", b"5,,5",
              b"18446744073709551616", b"99999999999999999999999999", b"\"5\""]:
        rejected("Content-Length %r" % v, POST + b"Content-Length: " + v + b"\r\n\r\nhello")
    rejected("two different", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
    rejected("same then different", POST + b"Content-Length: 5\r\nContent-Length: 5, 6\r\n\r\n")
    # RFC 9112 §6.3 (5): identical values, as fields or a list, are one valid length
    accepted("two identical", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
             [200], b"hello")
    accepted("identical list", POST + b"Content-Length: 5, 5\r\n\r\nhello", [200], b"hello")
    accepted("leading zeros", POST + b"Content-Length: 005\r\n\r\nhello", [200], b"hello")
    accepted("OWS", POST + b"Content-Length: \t5\t\r\n\r\nhello", [200], b"hello")
    # not Content-Length at all: the bytes after the head are the next request ("hello" + GET)
    rs, _, _ = send(POST + b"Content_Length: 5\r\nContent-Length: 0\r\n\r\n")
    eq([r.status for r in rs], [200, 200], "Content_Length is another field")
    markers_never_served()


@test
def transfer_encoding_values():
    for v in [b"chunked, gzip", b"gzip", b"identity", b"chunked, identity", b"chunked, chunked",
              b"xchunked", b"chunkedx", b"chunked;q=1", b"\"chunked\"", b"chunked chunked",
              b"", b",", b"chu nked", b"chunked\x0b", b"\x0cchunked", b"chunked\x00"]:
        rejected("Transfer-Encoding %r" % v, POST + b"Transfer-Encoding: " + v + b"\r\n\r\n"
                 b"0\r\n\r\n")
    rejected("TE twice", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
             b"\r\n0\r\n\r\n")
    rejected("TE chunked then gzip", POST + b"Transfer-Encoding: chunked\r\n"
             b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n")
    rejected("space before colon", POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n")
    rejected("tab before colon", POST + b"Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n")
    rejected("obs-fold", POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n")
    rejected("obs-fold tab", POST + b"X: y\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    rejected("TE in HTTP/1.0", b"POST /body HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n")
    # well framed but a coding we cannot undo: 501, still closed
    rejected("unknown coding", POST + b"Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501)
    rejected("gzip then chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501)
    for v in [b"chunked", b"Chunked", b"CHUNKED", b"\tchunked ", b", chunked", b"chunked,"]:
        accepted("Transfer-Encoding %r" % v, POST + b"Transfer-Encoding: " + v + b"\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", [200], b"hello")
    markers_never_served()


# ---- HTTP/1: field syntax (RFC 9110 §5, RFC 9112 §5) ----

@test
def field_syntax():
    G = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
    for name, raw in [
        ("bare CR in value", G + b"X: a\rb\r\n\r\n"),
        ("CR before CRLF", G + b"X: a\r\r\n\r\n"),
        ("bare LF line", G + b"X: a\nY: b\r\n\r\n"),
        ("LF-only head", b"GET /hello.txt HTTP/1.1\nHost: x\n\n"),
        ("LF-only end", G + b"\n"),
        ("LF request line", b"GET /hello.txt HTTP/1.1\nHost: x\r\n\r\n"),
        ("NUL in value", G + b"X: a\x00b\r\n\r\n"),
        ("NUL in name", G + b"X\x00: b\r\n\r\n"),
        ("CTL in value", G + b"X: a\x01b\r\n\r\n"),
        ("DEL in value", G + b"X: a\x7fb\r\n\r\n"),
        ("VT in value", G + b"X: a\x0bb\r\n\r\n"),
        ("space in name", G + b"Bad Header: x\r\n\r\n"),
        ("space before colon", G + b"Host : y\r\n\r\n"),
        ("non-token name", G + b"X(y): z\r\n\r\n"),
        ("8-bit name", G + b"X\xff: z\r\n\r\n"),
        ("empty name", G + b": z\r\n\r\n"),
        ("no colon", G + b"Xyz\r\n\r\n"),
        ("obs-fold", G + b"X: a\r\n b\r\n\r\n"),
        ("whitespace before first field", b"GET /hello.txt HTTP/1.1\r\n Host: x\r\n\r\n"),
    ]:
        rejected(name, raw)
    # obs-text in a value is allowed (RFC 9110 §5.5)
    accepted("obs-text", G + b"X: caf\xc3\xa9\r\n\r\n", [200])
    markers_never_served()


# ---- HTTP/1: chunked bodies (RFC 9112 §7.1) ----

@test
def chunk_sizes_and_lines():
    for name, body in [
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n"),
        ("trailing space", b"5 \r\nhello\r\n0\r\n\r\n"),
        ("trailing tab", b"5\t\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("negative", b"-5\r\nhello\r\n0\r\n\r\n"),
        ("plus", b"+5\r\nhello\r\n0\r\n\r\n"),
        ("17 hex digits", b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("2^64 + 5", b"ffffffffffffffff5\r\nhello\r\n0\r\n\r\n"),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n"),
        ("bare CR after size", b"5\rhello\r\n0\r\n\r\n"),
        ("missing CRLF after data", b"5\r\nhelloX\r\n0\r\n\r\n"),
        ("LF after data", b"5\r\nhello\n0\r\n\r\n"),
        ("data longer than size", b"3\r\nhello\r\n0\r\n\r\n"),
        ("bare LF last chunk", b"5\r\nhello\r\n0\n\r\n"),
        ("bare LF final line", b"5\r\nhello\r\n0\r\n\n"),
        ("ext without name", b"5;\r\nhello\r\n0\r\n\r\n"),
        ("ext with space in value", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
        ("ext quoted CR", b"5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n"),
        ("ext quoted LF", b"5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n"),
        ("ext unterminated quote", b"5;a=\"b\r\nhello\r\n0\r\n\r\n"),
        ("ext bare LF", b"5;a\nhello\r\n0\r\n\r\n"),
        ("ext line over 4 KiB", b"5;a=" + b"b" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
        ("ext over 16 KiB in all", (b"1;" + b"e" * 4000 + b"\r\nx\r\n") * 5 + b"0\r\n\r\n"),
    ]:
        rejected("chunked: " + name, CHUNKED + body)
    accepted("zero-padded size", CHUNKED + b"000000000000000000005\r\nhello\r\n0\r\n\r\n", [200],
             b"hello")
    accepted("uppercase hex", CHUNKED + b"A\r\n0123456789\r\n0\r\n\r\n", [200], b"0123456789")
    accepted("extensions", CHUNKED + b"5 ; a = b ;c=\"q;\\\"x\"\r\nhello\r\n0;z\r\n\r\n", [200],
             b"hello")
    markers_never_served()


@test
def trailers_are_not_applied():
    # Framing fields in the trailer section are read and thrown away (RFC 9110 §6.5.1).
    accepted("Content-Length trailer", CHUNKED + b"1\r\nx\r\n0\r\nContent-Length: 50\r\n\r\n",
             [200], b"x")
    accepted("Transfer-Encoding trailer", CHUNKED + b"1\r\nx\r\n0\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n", [200], b"x")
    accepted("Host trailer", CHUNKED + b"1\r\nx\r\n0\r\nHost: evil\r\n\r\n", [200], b"x")
    rejected("trailer space before colon", CHUNKED + b"1\r\nx\r\n0\r\nX : y\r\n\r\n")
    rejected("trailer obs-fold", CHUNKED + b"1\r\nx\r\n0\r\nX: y\r\n z\r\n\r\n")
    rejected("trailer bare LF", CHUNKED + b"1\r\nx\r\n0\r\nX: y\n\r\n")
    rejected("trailer NUL", CHUNKED + b"1\r\nx\r\n0\r\nX: \x00\r\n\r\n")
    rejected("trailer too large", CHUNKED + b"1\r\nx\r\n0\r\n" + b"X: yyyyyyyy\r\n" * 1000 +
             b"\r\n")
    markers_never_served()


# ---- HTTP/1: request line (RFC 9112 §3) ----

@test
def request_line():
    for name, raw, status in [
        ("two spaces after method", b"GET  /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("two spaces before version", b"GET /hello.txt  HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("tab separator", b"GET\t/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("tab before version", b"GET /hello.txt\tHTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("space after version", b"GET /hello.txt HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
        ("leading space", b" GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("lowercase http", b"GET /hello.txt http/1.1\r\nHost: x\r\n\r\n", 400),
        ("HTTP/1.10", b"GET /hello.txt HTTP/1.10\r\nHost: x\r\n\r\n", 400),
        ("HTTP/11", b"GET /hello.txt HTTP/11\r\nHost: x\r\n\r\n", 400),
        ("HTTP/1.2", b"GET /hello.txt HTTP/1.2\r\nHost: x\r\n\r\n", 505),
        ("HTTP/2.0 on the text path", b"GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("HTTP/0.9 version", b"GET /hello.txt HTTP/0.9\r\nHost: x\r\n\r\n", 505),
        # HTTP/0.9's simple request: HTTP/1 refuses it (not HTTP/2 with binary frames)
        ("no version", b"GET /hello.txt\r\n\r\n", 400),
        ("three empty lines first", b"\r\n\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("bare LF empty line first", b"\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("fragment", b"GET /hello.txt#x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("fragment with dot-dot", b"GET /sub/#/../hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("relative target", b"GET hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("asterisk on GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("control in target", b"GET /hello\x01.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("DEL in method", b"G\x7fT /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("long request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ]:
        rejected(name, raw, status)
    # RFC 9112 §2.2: one or two empty lines before a request are skipped
    accepted("one empty line first", b"\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", [200])
    accepted("two empty lines first", b"\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
             [200])
    # methods are case-sensitive tokens: an unknown one is 501 (RFC 9110 §9.1), the framing is
    # intact so the connection goes on; a known one the resource lacks is 405 with Allow
    accepted("lowercase method", b"get /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", [501])
    accepted("long method", b"A" * 4000 + b" /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", [501])
    rs = accepted("405", b"PUT /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", [405])
    eq(rs[0].header("allow"), "GET, HEAD", "405 lists the allowed methods (RFC 9110 §15.5.6)")
    markers_never_served()


# ---- HTTP/1: Host and absolute-form (RFC 9112 §3.2) ----

@test
def host_field():
    for name, raw in [
        ("missing in HTTP/1.1", b"GET /hello.txt HTTP/1.1\r\n\r\n"),
        ("twice", b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        ("twice differing", b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
        ("twice in HTTP/1.0", b"GET /hello.txt HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("userinfo", b"GET /hello.txt HTTP/1.1\r\nHost: u@a\r\n\r\n"),
        ("space", b"GET /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n"),
        ("slash", b"GET /hello.txt HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        ("bad port", b"GET /hello.txt HTTP/1.1\r\nHost: a:8x\r\n\r\n"),
        ("backslash", b"GET /hello.txt HTTP/1.1\r\nHost: a\\b\r\n\r\n"),
        ("comma list", b"GET /hello.txt HTTP/1.1\r\nHost: a, b\r\n\r\n"),
    ]:
        rejected("Host " + name, raw)
    accepted("empty Host", b"GET /hello.txt HTTP/1.1\r\nHost:\r\n\r\n", [200])
    accepted("HTTP/1.0 without Host", b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n"
             b"\r\n", [200])
    markers_never_served()


@test
def absolute_form_authority_wins():
    rs = accepted("absolute-form", b"GET http://a.example/reflect HTTP/1.1\r\n"
                  b"Host: b.example\r\n\r\n", [200])
    ok(b"\r\nHost: a.example\r\n" in rs[0].body and b"b.example" not in rs[0].body,
       "the handler sees the target's host: %r" % rs[0].body)
    rs = accepted("absolute-form https, port", b"GET HTTPS://A.example:8443/reflect?q HTTP/1.1"
                  b"\r\nHost: b.example\r\n\r\n", [200])
    ok(b"\r\nHost: A.example:8443\r\n" in rs[0].body, "host with port: %r" % rs[0].body)
    rs = accepted("absolute-form HTTP/1.0 without Host",
                  b"GET http://a.example/reflect HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                  [200])
    ok(b"\r\nHost: a.example\r\n" in rs[0].body, "Host supplied: %r" % rs[0].body)
    for name, target in [("userinfo", b"http://u@a.example/hello.txt"),
                         ("user and password", b"http://u:p@a.example/hello.txt"),
                         ("empty host", b"http:///hello.txt"),
                         ("port only", b"http://:80/hello.txt"),
                         ("other scheme", b"ftp://a.example/hello.txt"),
                         ("invalid host", b"http://a{b}/hello.txt"),
                         ("fragment", b"http://a.example/hello.txt#f")]:
        rejected("absolute-form " + name, b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\n"
                 b"\r\n")
    rejected("absolute-form without Host", b"GET http://a.example/hello.txt HTTP/1.1\r\n\r\n")
    markers_never_served()


# ---- HTTP/1: bodies, Expect, pipelining ----

@test
def bodies_on_any_method_are_honoured():
    inner = b"GET /hello.txt?inner HTTP/1.1\r\nHost: x\r\n\r\n"
    accepted("GET with a body", b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
             b"\r\n" % len(inner) + inner, [200], b"hello world\n")
    accepted("HEAD with a body", b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
             b"\r\n" % len(inner) + inner + b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
             [200, 200], head_requests=(0,))
    accepted("GET with a chunked body", b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n",
             [200], b"hello world\n")
    rs = accepted("OPTIONS with a body", b"OPTIONS /reflect HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(inner) + inner, [200])
    ok(rs[0].body.endswith(b"\r\n\r\n" + inner), "the body reached the handler: %r" % rs[0].body)
    # answered without reading the body (405): closed, the body never parsed as requests
    rejected("OPTIONS with a body, no route", b"OPTIONS /hello.txt HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: %d\r\n\r\n" % len(inner) + inner, 405)
    time.sleep(0.3)
    ok("?inner " not in "".join(S.log_lines), "a body was served as a request")
    markers_never_served()


@test
def expect_100_continue():
    def exp(raw):
        s = connect(S.port)
        s.sendall(raw)
        data = recv_all(s, 3)
        s.close()
        return data
    data = exp(POST + b"Content-Length: 999999999999\r\nExpect: 100-continue\r\n\r\n")
    ok(data.startswith(b"HTTP/1.1 413 "), "413 first, no 100: %r" % data[:60])
    ok(b" 100 " not in data, "no 100 Continue before an error")
    data = exp(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
    ok(data.startswith(b"HTTP/1.1 405 "), "405 first, no 100: %r" % data[:60])
    data = exp(POST + b"Content-Length: 5\r\nExpect: 100-continue\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    ok(data.startswith(b"HTTP/1.1 400 "), "framing error first, no 100: %r" % data[:60])
    data = exp(POST + b"Content-Length: 5\r\nExpect: something-else\r\n\r\nhello")
    ok(data.startswith(b"HTTP/1.1 417 "), "417: %r" % data[:60])
    s = connect(S.port)
    s.sendall(POST + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        got += s.recv(1)
    eq(got, b"HTTP/1.1 100 Continue\r\n\r\n", "100 Continue for a request we will take")
    s.sendall(b"hello")
    r = read_response(s)
    eq((r.status, r.body), (200, b"hello"), "then the answer")
    s.close()


@test
def nothing_after_a_closing_response():
    rs, m, _ = send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    eq([r.status for r in rs], [200], "Connection: close ends the exchange")
    _rejected_marks.append(("after Connection: close", m))
    rs, m, _ = send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    eq([r.status for r in rs], [200], "HTTP/1.0 without keep-alive ends the exchange")
    _rejected_marks.append(("after HTTP/1.0", m))
    markers_never_served()


# ---- HTTP/1: Upgrade (RFC 9110 §7.8) ----

@test
def upgrade_reads_the_body_first():
    s = connect(S.port)
    s.sendall(b"POST /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nAFTER")
    r = read_response(s)
    eq(r.status, 101, "switched after the chunked body")
    got = s._sy_buf
    while len(got) < 5:
        got += s.recv(100)
    eq(got, b"AFTER", "only the bytes after the body reach the new protocol")
    s.close()


@test
def no_101_for_a_request_in_error():
    U = b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
    rejected("upgrade, bad chunked body", b"POST" + U[3:] + b"Transfer-Encoding: chunked\r\n\r\n"
             b"zz\r\n")
    rejected("upgrade, bad Host", U.replace(b"Host: x", b"Host: a b") + b"\r\n")
    rejected("upgrade, differing lengths", U + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n")
    rejected("upgrade, body too large", U + b"Content-Length: 999999999999\r\n\r\n", 413)
    rejected("upgrade, unknown expectation", U + b"Expect: x\r\n\r\n", 417)
    markers_never_served()


@test
def connection_close_and_upgrade_does_not_switch():
    rs, m, rest = send(b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close, upgrade\r\n"
                       b"Upgrade: echo\r\n\r\n")
    eq([r.status for r in rs], [200], "served without switching, then closed")
    eq(rs[0].header("connection"), "close", "says it closes")
    _rejected_marks.append(("close, upgrade", m))
    rejected("close, upgrade on an upgrade-only route", b"GET /raw-only HTTP/1.1\r\nHost: x\r\n"
             b"Connection: upgrade, close\r\nUpgrade: echo\r\n\r\n", 426)
    markers_never_served()


# ---- HTTP/2 (RFC 9113 §8.1.1, §8.2, §8.3) ----

def h2_request(headers, body=None, timeout=3):
    """One request on a fresh prior-knowledge connection. Returns (status or None, body,
    RST_STREAM code or None, GOAWAY code or None)."""
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                    validate_outbound_headers=False,
                                    normalize_outbound_headers=False,
                                    validate_inbound_headers=False)
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    s = connect(S.port, timeout)
    s.sendall(c.data_to_send())
    c.send_headers(1, headers, end_stream=body is None)
    if body is not None:
        c.send_data(1, body, end_stream=True)
    s.sendall(c.data_to_send())
    status, data, rst, goaway, done = None, b"", None, None, False
    try:
        while not done:
            b = s.recv(65536)
            if not b:
                break
            for ev in c.receive_data(b):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
                elif isinstance(ev, h2.events.StreamReset):
                    rst, done = ev.error_code, True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    goaway, done = ev.error_code, True
            s.sendall(c.data_to_send())
    except socket.timeout:
        pass
    s.close()
    return status, data, rst, goaway


def h2_get(path=b"/reflect", authority=b"a.example", extra=(), method=b"GET"):
    hs = [(b":method", method), (b":scheme", b"http"), (b":path", path)]
    if authority is not None:
        hs.append((b":authority", authority))
    return hs + list(extra)


PROTOCOL_ERROR = 1


@test
def h2_host_and_authority():
    st, body, rst, _ = h2_get_run(h2_get(extra=[(b"host", b"b.example")]))
    eq((st, rst), (None, PROTOCOL_ERROR), "Host naming another host than :authority")
    st, body, rst, _ = h2_get_run(h2_get(extra=[(b"host", b"a.example:81")]))
    eq((st, rst), (None, PROTOCOL_ERROR), "another port")
    for name, hs in [("userinfo in :authority", h2_get(authority=b"u@a.example")),
                     ("userinfo in Host", h2_get(authority=None, extra=[(b"host", b"u@a")])),
                     ("two Hosts", h2_get(extra=[(b"host", b"a.example"),
                                                 (b"host", b"a.example")])),
                     ("space in :authority", h2_get(authority=b"a b")),
                     ("empty :authority", h2_get(authority=b"")),
                     ("empty host in :authority", h2_get(authority=b":80")),
                     ("empty Host", h2_get(authority=None, extra=[(b"host", b"")])),
                     ("empty host in Host", h2_get(authority=None, extra=[(b"host", b":80")]))]:
        st, body, rst, _ = h2_get_run(hs)
        eq((st, rst), (None, PROTOCOL_ERROR), name)
    # the same host, normalized: served, and the handler sees one host
    for hs, want in [(h2_get(extra=[(b"host", b"A.EXAMPLE")]), b"A.EXAMPLE"),
                     (h2_get(extra=[(b"host", b"a.example:80")]), b"a.example:80"),
                     (h2_get(), b"a.example"),
                     (h2_get(authority=None, extra=[(b"host", b"c.example")]), b"c.example")]:
        st, body, rst, _ = h2_get_run(hs)
        eq(st, 200, "served: %r" % hs)
        ok(b"\r\nhost: " + want + b"\r\n" in body, "one host for the handler: %r" % body)
        eq(body.lower().count(b"\r\nhost: "), 1, "exactly one Host: %r" % body)


def h2_get_run(hs, body=None):
    return h2_request(hs, body)


@test
def h2_malformed_requests_never_dispatched():
    P = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"a")]
    cases = [
        ("Connection", h2_get(extra=[(b"connection", b"close")])),
        ("Keep-Alive", h2_get(extra=[(b"keep-alive", b"1")])),
        ("Proxy-Connection", h2_get(extra=[(b"proxy-connection", b"close")])),
        ("Transfer-Encoding", h2_get(extra=[(b"transfer-encoding", b"chunked")])),
        ("Upgrade", h2_get(extra=[(b"upgrade", b"h2c")])),
        ("TE gzip", h2_get(extra=[(b"te", b"gzip")])),
        ("TE trailers, gzip", h2_get(extra=[(b"te", b"trailers, gzip")])),
        ("uppercase name", h2_get(extra=[(b"X-Up", b"1")])),
        ("name with colon", h2_get(extra=[(b"x:y", b"1")])),
        ("name with space", h2_get(extra=[(b"x y", b"1")])),
        ("name with CRLF", h2_get(extra=[(b"x\r\ny", b"1")])),
        ("empty name", h2_get(extra=[(b"", b"1")])),
        ("value with CRLF", h2_get(extra=[(b"x-a", b"b\r\nx-injected: 1")])),
        ("value with LF", h2_get(extra=[(b"x-a", b"b\nGET /hello.txt HTTP/1.1")])),
        ("value with CR", h2_get(extra=[(b"x-a", b"b\rc")])),
        ("value with NUL", h2_get(extra=[(b"x-a", b"b\x00c")])),
        ("value with leading space", h2_get(extra=[(b"x-a", b" b")])),
        ("value with trailing tab", h2_get(extra=[(b"x-a", b"b\t")])),
        (":method with space", h2_get(method=b"GET /x")),
        (":method with CRLF", h2_get(method=b"GET\r\n")),
        (":path with space", h2_get(path=b"/reflect HTTP/1.1\r\nX: y")),
        (":path with space only", h2_get(path=b"/reflect x")),
        ("empty :path", h2_get(path=b"")),
        ("absolute :path", h2_get(path=b"http://b.example/reflect")),
        ("missing :method", [(b":scheme", b"http"), (b":path", b"/"), (b":authority", b"a")]),
        ("missing :scheme", [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a")]),
        ("missing :path", [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a")]),
        ("duplicated :path", h2_get(extra=[(b":path", b"/x")])),
        ("unknown pseudo", h2_get()[:3] + [(b":foo", b"bar"), (b":authority", b"a")]),
        ("pseudo after regular", [(b":method", b"GET"), (b":scheme", b"http"), (b"x", b"1"),
                                  (b":path", b"/"), (b":authority", b"a")]),
        (":protocol without CONNECT", h2_get()[:3] + [(b":protocol", b"websocket"),
                                                      (b":authority", b"a")]),
        ("CONNECT with :path", [(b":method", b"CONNECT"), (b":authority", b"a:443"),
                                (b":path", b"/")]),
    ]
    for name, hs in cases:
        st, body, rst, goaway = h2_request(hs)
        ok(st is None and (rst == PROTOCOL_ERROR or goaway == PROTOCOL_ERROR),
           "%s: want a PROTOCOL_ERROR, got status %r rst %r goaway %r" % (name, st, rst, goaway))
    # content-length against DATA
    for name, cl, data in [("content-length above DATA", b"10", b"hello"),
                           ("content-length below DATA", b"2", b"hello"),
                           ("content-length with a sign", b"+5", b"hello"),
                           ("content-length list", b"5, 5", b"hello"),
                           ("content-length empty", b"", b"hello")]:
        st, body, rst, goaway = h2_request(P + [(b":path", b"/body"), (b"content-length", cl)],
                                           data)
        ok(st is None and rst == PROTOCOL_ERROR, "%s: status %r rst %r" % (name, st, rst))
    st, body, rst, _ = h2_request(P + [(b":path", b"/body"), (b"content-length", b"5"),
                                       (b"content-length", b"5")], b"hello")
    ok(st is None and rst == PROTOCOL_ERROR, "two content-length fields: %r %r" % (st, rst))
    # fragment in :path: answered 400 (the request is well formed for HTTP/2, not its target)
    st, body, rst, _ = h2_request(h2_get(path=b"/hello.txt#x"))
    eq(st, 400, ":path with a fragment")
    # CONNECT without :protocol: not a proxy
    st, body, rst, _ = h2_request([(b":method", b"CONNECT"), (b":authority", b"a:443")])
    eq(st, 501, "CONNECT")
    # the connection serves well-formed requests after all that (fresh one: same server)
    st, body, rst, _ = h2_request(h2_get(extra=[(b"te", b"trailers"), (b"x-a", b"b\tc")]))
    eq(st, 200, "a well-formed request")
    eq(body, b"GET /reflect HTTP/2.0\r\nte: trailers\r\nx-a: b\tc\r\nhost: a.example\r\n\r\n",
       "the request as the handler saw it")


@test
def h2_values_never_split_a_log_line():
    before = len(S.log_lines)
    for v in [b"a\r\nb", b"a\nb", b"a\rb"]:
        h2_request(h2_get(path=b"/hello.txt?inj", extra=[(b"user-agent", v)]))
        h2_request(h2_get(path=b"/hello.txt?inj\r\nx"))
    time.sleep(0.3)
    for line in S.log_lines[before:]:
        ok(line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line,
           "log line split: %r" % line)
        ok("?inj" not in line, "a malformed request was dispatched: %r" % line)


@test
def quotes_in_targets_do_not_forge_log_fields():
    # '"' and '\\' are VCHARs a target may carry (HTTP/1 and :path): the plain access line
    # writes them as \xHH, so the quoted request and the fields after it stay what they are.
    s = connect(S.port)
    s.sendall(b'GET /hello.txt?q=x"%20200%20in=1\\ HTTP/1.1\r\nHost: x\r\n'
              b'Connection: close\r\n\r\n')
    recv_all(s, 3)
    s.close()
    h2_request(h2_get(path=b'/hello.txt?h2="q"'))
    time.sleep(0.3)
    log = "".join(S.log_lines)
    ok('"GET /hello.txt?q=x\\x22%20200%20in=1\\x5c HTTP/1.1" 200 ' in log,
       "HTTP/1 target escaped: %r" % log[-600:])
    ok('"GET /hello.txt?h2=\\x22q\\x22 HTTP/2.0" 200 ' in log,
       "HTTP/2 :path escaped: %r" % log[-600:])


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
