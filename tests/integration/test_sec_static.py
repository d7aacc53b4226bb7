"""Static files under hostile input: special files (FIFO, socket, device) in the document root
must never block a worker nor be opened."""
import errno
import os
import socket
import stat

import harness
from harness import Server, connect, eq, main, ok, read_response, request, test

# Generous: the box is loaded. A blocked worker never answers at all, so any bound separates
# the fixed server from the broken one.
WAIT = 10


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


if __name__ == "__main__":
    main(setup)
