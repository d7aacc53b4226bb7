"""Static files under hostile input: special files (FIFO, socket, device) in the document root
must never block a worker nor be opened, and the directory redirect must always answer with a
Location that is one plain, percent-encoded path (no open redirect, no stray bytes)."""
import errno
import os
import re
import socket
import stat

import harness
from harness import Server, connect, eq, main, ok, read_response, request, test

# Generous: the box is loaded. A blocked worker never answers at all, so any bound separates
# the fixed server from the broken one.
WAIT = 10

# What a Location built by the server may contain: "/" then RFC 3986 pchar and "/", with
# anything else percent-encoded; a query after "?" with the same set plus "?".
LOC_PATH = r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-F]{2})(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*/"
LOC_RE = re.compile(r"^(?:" + LOC_PATH + r"|/)(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?$")


def root():
    return harness.ROOT


def setup():
    r = root()
    os.mkfifo(os.path.join(r, "pipe"))
    os.makedirs(os.path.join(r, "fifodir"))
    os.mkfifo(os.path.join(r, "fifodir", "index.html"))
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(os.path.join(r, "sock"))
    u.close()  # the socket file stays behind, with nobody listening
    if os.geteuid() == 0:
        # /dev/null's numbers: a harmless device, enough to see it is refused unopened.
        os.mknod(os.path.join(r, "null"), 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    for d in ["\\evil", "a b", "x\r\ny", "\t/evil", "\u00e9", "q?x#y", "p%41", "sub/deeper",
              "evil"]:
        os.makedirs(os.path.join(r, d), exist_ok=True)


def get(port, target, extra=b""):
    rs = request(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra +
                 b"Connection: close\r\n\r\n", timeout=WAIT)
    ok(rs, "%r: no response" % target)
    return rs[0]


def release_fifo(path):
    """A worker blocked opening the FIFO for reading is let go by a writer showing up."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        return True
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: no reader, nobody was blocked
            raise
        return False


def special_file_refused_while_others_served(target, fifo):
    # One worker: if it blocks, nothing else on the server is answered.
    with Server("--no-access-log", workers=1) as srv:
        try:
            a = connect(srv.port, timeout=WAIT)
            a.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            b = connect(srv.port, timeout=WAIT)
            b.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            rb = read_response(b, WAIT)
            eq(rb.status, 200, "another connection served meanwhile")
            eq(rb.body, b"hello world\n", "its body")
            ra = read_response(a, WAIT)
            eq(ra.status, 404, "%r refused" % target)
            # The server never became a reader of the FIFO (O_PATH opens no file).
            ok(not release_fifo(fifo), "the server holds %s open for reading" % fifo)
            a.close()
            b.close()
        finally:
            release_fifo(fifo)


@test
def fifo_does_not_block_the_worker():
    special_file_refused_while_others_served(b"/pipe", os.path.join(root(), "pipe"))


@test
def fifo_as_directory_index_does_not_block_the_worker():
    special_file_refused_while_others_served(b"/fifodir/",
                                             os.path.join(root(), "fifodir", "index.html"))


@test
def socket_and_device_files_are_not_served():
    with Server("--no-access-log", workers=1) as srv:
        eq(get(srv.port, b"/sock").status, 404, "unix socket file")
        if os.geteuid() == 0:
            eq(get(srv.port, b"/null").status, 404, "character device")
        eq(get(srv.port, b"/hello.txt").status, 200, "regular file still served")
        eq(get(srv.port, b"/sub/").body, b"sub index\n", "regular index still served")


def redirect(port, target, want, extra=b""):
    r = get(port, target, extra)
    eq(r.status, 301, "%r status" % target)
    loc = r.header("location")
    ok(loc is not None, "%r: no Location (head %r)" % (target, r.raw_head))
    ok(LOC_RE.match(loc), "%r: Location %r is not one plain encoded path" % (target, loc))
    eq(loc, want, "%r Location" % target)
    ok(all(0x20 < ord(c) < 0x7f for c in loc), "%r: Location bytes" % target)


@test
def directory_redirect_is_never_protocol_relative():
    with Server("--no-access-log") as srv:
        p = srv.port
        redirect(p, b"/sub", "/sub/")  # the ordinary case is unchanged
        redirect(p, b"//sub", "/sub/")
        redirect(p, b"///sub", "/sub/")
        redirect(p, b"/%2F%2Fsub", "/sub/")
        redirect(p, b"/%2f/%2fevil", "/evil/")
        redirect(p, b"http://x//evil", "/evil/")  # absolute-form keeps only its path
        redirect(p, b"/sub//deeper", "/sub/deeper/")
        # Browsers read "\" as "/", and drop tabs and newlines from URLs.
        redirect(p, b"/%5Cevil", "/%5Cevil/")
        redirect(p, b"/\\evil", "/%5Cevil/")
        redirect(p, b"/%09/evil", "/%09/evil/")


@test
def directory_redirect_encodes_decoded_bytes():
    with Server("--no-access-log") as srv:
        p = srv.port
        redirect(p, b"/a%20b", "/a%20b/")
        redirect(p, b"/x%0d%0ay", "/x%0D%0Ay/")
        redirect(p, b"/%C3%A9", "/%C3%A9/")
        redirect(p, b"/q%3Fx%23y", "/q%3Fx%23y/")
        redirect(p, b"/p%2541", "/p%2541/")


@test
def directory_redirect_keeps_the_query():
    with Server("--no-access-log") as srv:
        p = srv.port
        redirect(p, b"/sub?a=1&b=%41", "/sub/?a=1&b=%41")
        redirect(p, b"//sub?next=//evil/", "/sub/?next=//evil/")
        redirect(p, b"/sub?", "/sub/?")
        # Request-target bytes that are not valid in a URI query are encoded; a lone "%" too.
        redirect(p, b"/sub?x=\"<>\\^`{|}%zz%4", "/sub/?x=%22%3C%3E%5C%5E%60%7B%7C%7D%25zz%254")
        redirect(p, b"/sub?\xc3\xa9", "/sub/?%C3%A9")
        # A fragment is not part of a request-target: refused before any route (400, see
        # docs/http1.md), so it never travels into a Location.
        eq(get(p, b"/sub?a#frag").status, 400, "fragment after a query")
        eq(get(p, b"/sub#frag").status, 400, "fragment")


if __name__ == "__main__":
    main(setup)
