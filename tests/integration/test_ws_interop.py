"""WebSocket interop, both ways: Python `websockets` (asyncio, 10.x) and Node `ws` as clients
of `switchyard serve` /echo, with and without permessage-deflate; our CLI client
(`switchyard ws URL`) against Python and Node echo servers and against our own server; the
examples (build/examples/echo_server + build/examples/ws_client).

In TLS mode (SY_TEST_TLS=1 or --tls, see harness.py) the same over wss://: our server on a
self-signed TLS listener (clients: verification off; `switchyard ws --insecure`), the Python
and Node echo servers on a certificate made for the run (`switchyard ws --cacert` verifies
it), the late-echo server wrapped in TLS. The examples have no TLS form and are left out."""
import asyncio
import atexit
import json
import os
import ssl
import subprocess
import sys
import threading
import time

import harness
from harness import Server, eq, main, ok, plain_only, test

import websockets

NODE_WS = "/usr/share/nodejs/ws"
_servers = {}


def srv(name="default"):
    s = _servers.get(name)
    if s is None:
        args = {"default": (), "nodeflate": ("--no-deflate",)}[name]
        s = Server("--no-access-log", *args)
        _servers[name] = s
    return s


def _stop_all():
    for s in list(_servers.values()):
        try:
            s.stop()
        except Exception:  # noqa
            pass
    _servers.clear()


atexit.register(_stop_all)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(url, **kw):
    """websockets.connect, with verification off for wss:// (our self-signed server)."""
    if url.startswith("wss:"):
        kw["ssl"] = harness.client_ssl_context()
    return websockets.connect(url, **kw)


def server_ssl_context():
    """For the peers that serve TLS in TLS mode: the run's certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*harness.self_signed_cert())
    return ctx


def peer_client_args():
    """Our client against a peer server: in TLS mode it verifies the peer's certificate."""
    return ["--cacert", harness.self_signed_cert()[0]] if harness.TLS else []


def our_server_client_args():
    """Our client against our server: in TLS mode its certificate is made at start-up and
    cannot be verified."""
    return ["--insecure"] if harness.TLS else []


def ext_names(header):
    return [e.split(";")[0].strip().lower() for e in (header or "").split(",") if e.strip()]

# ---------------------------------------------------------------------------------------------
# Python websockets client -> our server


async def py_client_session(url, compression):
    big_text = ("0123456789abcdef" * 32768)  # 512 KiB
    big_bin = os.urandom(512 << 10)
    out = {}
    async with ws_connect(url, compression=compression, max_size=4 << 20, open_timeout=5,
                          close_timeout=5) as ws:
        out["ext_header"] = ws.response_headers.get("Sec-WebSocket-Extensions")
        out["extensions"] = [e.name for e in ws.extensions]
        for m in ("hello", "κόσμε \U0001F600", b"\x00\x01\xfe\xff", "", b"", big_text, big_bin,
                  "x" * 100):
            await ws.send(m)
            r = await asyncio.wait_for(ws.recv(), 10)
            eq(type(r), type(m), "echo type for a %d-byte %s" % (len(m), type(m).__name__))
            ok(r == m, "echo of a %d-byte %s differs (got %d)" % (len(m), type(m).__name__,
                                                                  len(r)))
        # a fragmented message (the library sends an iterable as fragments)
        await ws.send(["frag-", "mented ", "κόσμε"])
        eq(await asyncio.wait_for(ws.recv(), 5), "frag-mented κόσμε", "fragmented echo")
        pong = await ws.ping(b"ping-data")
        await asyncio.wait_for(pong, 5)
        await ws.close(code=4000, reason="bye")
        out["close_code"] = ws.close_code
        out["close_reason"] = ws.close_reason
    return out


@test
def python_client_with_deflate():
    r = run(py_client_session(srv().ws_url(), "deflate"))
    eq(ext_names(r["ext_header"]), ["permessage-deflate"], "Sec-WebSocket-Extensions")
    eq(r["extensions"], ["permessage-deflate"], "ws.extensions")
    eq(r["close_code"], 4000, "close code echoed to the client")


@test
def python_client_without_deflate():
    r = run(py_client_session(srv().ws_url(), None))
    eq(r["ext_header"], None, "no extension header when not offered")
    eq(r["extensions"], [], "ws.extensions")
    eq(r["close_code"], 4000, "close code")


@test
def python_client_deflate_offered_to_no_deflate_server():
    r = run(py_client_session(srv("nodeflate").ws_url(), "deflate"))
    eq(r["ext_header"], None, "--no-deflate server declines")
    eq(r["extensions"], [], "ws.extensions")
    eq(r["close_code"], 4000, "close code")


@test
def python_client_too_big_gets_1009():
    async def go():
        async with ws_connect(srv().ws_url(), compression=None, max_size=None) as ws:
            await ws.send(os.urandom((1 << 20) + 1))
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), 10)
            return ws.close_code
    eq(run(go()), 1009, "close code for a message over the 1 MiB default")

# ---------------------------------------------------------------------------------------------
# Node ws client -> our server

NODE_CLIENT = r"""
const WebSocket = require('%s');
const [url, pmd] = process.argv.slice(1);
// rejectUnauthorized: wss:// to our server's self-signed certificate (TLS mode)
const ws = new WebSocket(url, {perMessageDeflate: pmd === '1', rejectUnauthorized: false});
const big = Buffer.alloc(512 * 1024);
for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 9)) & 0xff;
const msgs = [['t', 'hello'], ['t', 'κόσμε 😀'], ['b', Buffer.from([0, 1, 254, 255])],
              ['t', 'y'.repeat(5000)], ['b', big], ['t', 'z'.repeat(512 * 1024)]];
const res = {ext: null, echoes: [], close: null, error: null};
let i = 0;
function next() {
  if (i === msgs.length) { ws.close(1000, 'done'); return; }
  const [k, m] = msgs[i];
  ws.send(m, {binary: k === 'b'});
}
ws.on('open', () => { res.ext = ws.extensions; next(); });
ws.on('message', (data, isBinary) => {
  const [k, m] = msgs[i];
  const expect = Buffer.isBuffer(m) ? m : Buffer.from(m);
  res.echoes.push({kind: k, binary: isBinary, len: data.length, equal: expect.equals(data)});
  i++; next();
});
const timer = setTimeout(() => {
  res.error = 'timeout'; console.log(JSON.stringify(res)); process.exit(1);
}, 15000);
ws.on('close', (code, reason) => {
  res.close = code; clearTimeout(timer); console.log(JSON.stringify(res));
});
ws.on('error', (e) => { res.error = String(e); });
"""


def node(script, *args, timeout=25):
    r = subprocess.run(["node", "-e", script] + [str(a) for a in args], capture_output=True,
                       timeout=timeout)
    return r


def node_client(pmd):
    url = srv().ws_url()
    r = node(NODE_CLIENT % NODE_WS, url, "1" if pmd else "0")
    ok(r.stdout.strip(), "node client printed nothing (rc %d): %s" % (r.returncode,
                                                                       r.stderr.decode()[-800:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    eq(res["error"], None, "node client error")
    eq(len(res["echoes"]), 6, "echoes received")
    for e in res["echoes"]:
        ok(e["equal"], "echo differs: %r" % e)
        eq(e["binary"], e["kind"] == "b", "echo frame type")
    eq(res["close"], 1000, "close code seen by node")
    return res


@test
def node_client_with_deflate():
    res = node_client(True)
    eq(res["ext"], "permessage-deflate", "node ws.extensions")


@test
def node_client_without_deflate():
    res = node_client(False)
    eq(res["ext"], "", "node ws.extensions")

# ---------------------------------------------------------------------------------------------
# Echo servers for our client


class PyEchoServer:
    """A websockets (asyncio) echo server in a thread; records each connection's negotiated
    extension header and the close code it saw."""

    def __init__(self, compression):
        self.compression = compression
        self.sessions = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        ok(self.ready.wait(10), "python echo server started")

    async def _handler(self, ws, path=None):
        sess = {"ext": ws.response_headers.get("Sec-WebSocket-Extensions"), "close": None}
        self.sessions.append(sess)
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass
        sess["close"] = ws.close_code

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await websockets.serve(
                self._handler, "127.0.0.1", 0, compression=self.compression,
                ssl=server_ssl_context() if harness.TLS else None)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def url(self, path="/"):
        return "%s://127.0.0.1:%d%s" % (harness.ws_scheme(), self.port, path)

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        fut = asyncio.run_coroutine_threadsafe(close(), self.loop)
        try:
            fut.result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


NODE_SERVER = r"""
const WebSocket = require('%s');
const [pmdArg, cert, key] = process.argv.slice(1);
const pmd = pmdArg === '1';
let wss;
if (cert) {  // TLS mode: wss:// on an https server with the run's certificate
  const fs = require('fs');
  const https = require('https');
  const server = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)});
  wss = new WebSocket.WebSocketServer({server, perMessageDeflate: pmd});
  server.listen(0, '127.0.0.1', () => console.log('PORT ' + server.address().port));
} else {
  wss = new WebSocket.WebSocketServer({host: '127.0.0.1', port: 0, perMessageDeflate: pmd});
  wss.on('listening', () => console.log('PORT ' + wss.address().port));
}
wss.on('connection', (ws) => {
  console.log('EXT ' + JSON.stringify(ws.extensions));
  ws.on('error', (e) => console.log('ERROR ' + e));
  ws.on('message', (data, isBinary) => ws.send(data, {binary: isBinary}));
  ws.on('close', (code) => console.log('CLOSE ' + code));
});
setTimeout(() => process.exit(0), 60000);
"""


class NodeEchoServer:
    def __init__(self, pmd):
        args = list(harness.self_signed_cert()) if harness.TLS else []
        self.proc = subprocess.Popen(["node", "-e", NODE_SERVER % NODE_WS, "1" if pmd else "0"] +
                                     args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        line = self._readline(10)
        ok(line.startswith("PORT "), "node server said %r" % line)
        self.port = int(line.split()[1])
        threading.Thread(target=self._drain, daemon=True).start()

    def _readline(self, timeout):
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0].decode().strip() if out else ""

    def _drain(self):
        for l in iter(self.proc.stdout.readline, b""):
            self.lines.append(l.decode().strip())

    def url(self, path="/"):
        return "%s://127.0.0.1:%d%s" % (harness.ws_scheme(), self.port, path)

    def wait_for(self, prefix, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for l in self.lines:
                if l.startswith(prefix):
                    return l
            time.sleep(0.05)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)

# ---------------------------------------------------------------------------------------------
# Our client


LINES = ["hello", "κόσμε \U0001F600", "x" * 5000, "spaces  and\ttabs", "last line"]


def our_client(url, *args, stdin_lines=LINES, timeout=20):
    data = "".join(l + "\n" for l in stdin_lines).encode()
    r = subprocess.run([harness.ARGS.bin, "ws", url] + list(args), input=data,
                       capture_output=True, timeout=timeout)
    return r


def check_echo_output(r, lines=LINES, what=""):
    out = r.stdout.decode()
    eq(out.split("\n")[:-1], lines, "%s printed echoes (stderr: %s)" % (what, r.stderr.decode()))
    eq(r.returncode, 0, "%s exit status (stderr: %s)" % (what, r.stderr.decode()))


@test
def our_client_vs_python_server():
    for comp in ("deflate", None):
        es = PyEchoServer(comp)
        try:
            url = es.url()
            for deflate_flag in ([], ["--no-deflate"]):
                what = "python server comp=%s client %s" % (comp, deflate_flag or "deflate")
                # --count N: the client closes after the N-th echo
                r = our_client(url, "--count", str(len(LINES)), *deflate_flag,
                               *peer_client_args())
                check_echo_output(r, what=what + " --count")
                negotiated = comp is not None and not deflate_flag
                eq(ext_names(es.sessions[-1]["ext"]),
                   ["permessage-deflate"] if negotiated else [], what + " negotiated extension")
                eq("extensions: permessage-deflate" in r.stderr.decode(), negotiated,
                   what + " client reports the extension (%r)" % r.stderr.decode())
                deadline = time.time() + 3
                while es.sessions[-1]["close"] is None and time.time() < deadline:
                    time.sleep(0.05)
                eq(es.sessions[-1]["close"], 1000, what + " close code seen by the server")
        finally:
            es.stop()


@test
def our_client_stdin_eof_prints_all_echoes():
    """Lines piped in, then EOF: the client closes with 1000 once the replies have come in;
    every echo is printed (RFC 6455 §7.1.2: the peer may keep sending until it sees our
    close, so what arrives after our close must still be delivered)."""
    es = PyEchoServer("deflate")
    try:
        r = our_client(es.url(), *peer_client_args())
        check_echo_output(r, what="stdin EOF, python server")
    finally:
        es.stop()
    r = our_client(srv().ws_url(), *our_server_client_args())
    check_echo_output(r, what="stdin EOF, our server")


class LateEchoServer:
    """A raw one-connection WebSocket server that holds its echoes back until the client's
    close arrives, then sends them, then its close reply (RFC 6455 §5.5.1 lets an endpoint
    finish sending before it answers a close)."""

    def __init__(self):
        import socket
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        self.received = []
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import base64
        import hashlib
        import struct
        try:
            self.ls.settimeout(10)
            c, _ = self.ls.accept()
            c.settimeout(10)
            if harness.TLS:
                c = server_ssl_context().wrap_socket(c, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(65536)
            head, buf = buf.split(b"\r\n\r\n", 1)
            key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
                   if l.lower().startswith(b"sec-websocket-key:")][0]
            acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                   .digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")

            def need(n):
                nonlocal buf
                while len(buf) < n:
                    b = c.recv(65536)
                    if not b:
                        raise EOFError("client went away")
                    buf += b
            while True:
                need(2)
                op, n = buf[0] & 15, buf[1] & 127
                off = 2
                if n == 126:
                    need(4)
                    n, off = struct.unpack("!H", buf[2:4])[0], 4
                elif n == 127:
                    need(10)
                    n, off = struct.unpack("!Q", buf[2:10])[0], 10
                need(off + 4 + n)
                mask = buf[off:off + 4]
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[off + 4:off + 4 + n]))
                buf = buf[off + 4 + n:]
                if op == 8:
                    self.close_payload = payload
                    break
                self.received.append((op, payload))
            out = b""
            for op, p in self.received:
                hdr = bytes([0x80 | op]) + (bytes([len(p)]) if len(p) < 126 else
                                            bytes([126]) + struct.pack("!H", len(p)))
                out += hdr + p
            c.sendall(out + b"\x88\x02\x03\xe8")
            if isinstance(c, ssl.SSLSocket):
                # close_notify, and the TCP FIN; SSLSocket.shutdown would skip the former
                c = c.unwrap()
            c.shutdown(1)
            c.settimeout(5)
            while c.recv(65536):
                pass
            c.close()
        except Exception as e:  # noqa
            self.error = repr(e)
        finally:
            self.ls.close()


@test
def our_client_prints_messages_arriving_after_its_close():
    ls = LateEchoServer()
    r = our_client("%s://127.0.0.1:%d/" % (harness.ws_scheme(), ls.port), *peer_client_args())
    ls.thread.join(10)
    eq(ls.error, None, "late echo server")
    eq(len(ls.received), len(LINES), "messages the server got")
    eq(ls.close_payload, b"\x03\xe8", "client close frame (1000, no reason)")
    check_echo_output(r, what="echoes sent after the client's close")


@test
def our_client_vs_node_server():
    for pmd in (True, False):
        ns = NodeEchoServer(pmd)
        try:
            url = ns.url()
            for deflate_flag in ([], ["--no-deflate"]):
                what = "node server pmd=%s client %s" % (pmd, deflate_flag or "deflate")
                ns.lines.clear()
                r = our_client(url, "--count", str(len(LINES)), *deflate_flag,
                               *peer_client_args())
                check_echo_output(r, what=what)
                ext = ns.wait_for("EXT ")
                ok(ext is not None, what + ": node saw no connection")
                negotiated = pmd and not deflate_flag
                eq(json.loads(ext[4:]), "permessage-deflate" if negotiated else "",
                   what + " negotiated extension")
                eq(ns.wait_for("CLOSE "), "CLOSE 1000", what + " close code seen by node")
        finally:
            ns.stop()


@test
def our_client_vs_our_server():
    url = srv().ws_url()
    tls = our_server_client_args()
    r = our_client(url, "--count", str(len(LINES)), *tls)
    check_echo_output(r, what="our server")
    ok("extensions: permessage-deflate" in r.stderr.decode(),
       "deflate negotiated with our server: %r" % r.stderr.decode())
    r = our_client(url, "--count", str(len(LINES)), "--no-deflate", *tls)
    check_echo_output(r, what="our server --no-deflate")
    ok("extensions" not in r.stderr.decode(), "no extension: %r" % r.stderr.decode())
    # --binary: sent as binary, printed as hex
    r = our_client(url, "--count", "2", "--binary", *tls, stdin_lines=["AB", "\u00ff"])
    eq(r.stdout.decode().split("\n")[:-1], ["4142", "c3bf"], "binary echoes in hex")
    eq(r.returncode, 0, "exit status --binary")
    # a custom header and a subprotocol the server does not speak: still connects
    r = our_client(url, "--count", "1", "-H", "X-Test: 1", "--subprotocol", "chat", *tls,
                   stdin_lines=["one"])
    check_echo_output(r, ["one"], what="-H/--subprotocol")


@test
def our_client_exit_status_handshake_failure():
    r = our_client(srv().ws_url("/no-such-path"), *our_server_client_args(), stdin_lines=["x"])
    eq(r.returncode, 1, "exit status for a 404 handshake (stderr %r)" % r.stderr.decode())
    # nothing listening
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    r = our_client("%s://127.0.0.1:%d/" % (harness.ws_scheme(), free), stdin_lines=["x"])
    eq(r.returncode, 1, "exit status when nothing listens")


@test
def our_client_exit_status_error_close():
    with Server("--no-access-log", "--ws-max-message", "16") as s:
        r = our_client(s.ws_url(), "--count", "1", *our_server_client_args(),
                       stdin_lines=["y" * 100])
        eq(r.returncode, 3, "exit status after close 1009 (stderr %r)" % r.stderr.decode())
        ok("1009" in r.stderr.decode(), "1009 reported: %r" % r.stderr.decode())

# ---------------------------------------------------------------------------------------------
# Examples


def example(name):
    p = os.path.join(harness.ARGS.build, "examples", name)
    ok(os.access(p, os.X_OK), "%s is built" % p)
    return p


@test
@plain_only  # the example server has no TLS listener
def examples_ws_client_with_echo_server():
    es = subprocess.Popen([example("echo_server"), "0"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        out = []
        t = threading.Thread(target=lambda: out.append(es.stdout.readline()), daemon=True)
        t.start()
        t.join(10)
        ok(out and out[0].strip().isdigit(), "echo_server printed its port: %r" % out)
        p = int(out[0])
        for msg in ("hello", "κόσμε", "z" * 3000):
            r = subprocess.run([example("ws_client"), "ws://127.0.0.1:%d/echo" % p, msg],
                               capture_output=True, timeout=15)
            eq(r.stdout.decode(), msg + "\n", "ws_client output")
            eq(r.stderr.decode(), "closed with 1000\n", "ws_client close report")
            eq(r.returncode, 0, "ws_client exit status")
        # Python websockets against the example server too
        async def go():
            async with websockets.connect("ws://127.0.0.1:%d/echo" % p) as ws:
                await ws.send("via python")
                return await asyncio.wait_for(ws.recv(), 5), ws.response_headers.get(
                    "Sec-WebSocket-Extensions")
        got, hdr = run(go())
        eq(got, "via python", "python client vs example server")
        eq(ext_names(hdr), ["permessage-deflate"], "example server negotiates deflate")
    finally:
        es.kill()
        es.wait(5)


@test
@plain_only  # the example client verifies certificates, ours is self-signed
def examples_ws_client_with_our_server():
    r = subprocess.run([example("ws_client"), "ws://127.0.0.1:%d/echo" % srv().port, "hi there"],
                       capture_output=True, timeout=15)
    eq(r.stdout.decode(), "hi there\n", "ws_client output")
    eq(r.stderr.decode(), "closed with 1000\n", "ws_client close report")
    eq(r.returncode, 0, "exit status")


@test
def zz_shared_servers_exit_cleanly():
    for name, s in list(_servers.items()):
        rc = s.stop()
        harness.check_sanitizer(s.err_lines)
        eq(rc, 0, "exit status of the %s server" % name)
    _servers.clear()


if __name__ == "__main__":
    main()
