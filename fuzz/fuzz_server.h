/* A server connection driven by fuzzer bytes, in-process and deterministic, for the
 * *_fuzz.c targets that exercise a protocol's server side (http1_server_fuzz.c,
 * http2_session_fuzz.c).
 *
 * One server with routes of every kind (answering at once, later, with a streamed request
 * body, with a streamed response under backpressure, static files, a WebSocket), one
 * worker and one loop that is never run: the harness does what its epoll_wait would, in a
 * fixed order. Each input gets a real connection (src/net/conn.c) on one end of a socket
 * pair; the harness writes the input into the other end in pieces, tells the connection it
 * is readable, runs the end-of-iteration work, reads and drops the answer, and between
 * pieces does what the control byte asks: answer held requests, advance time (timeouts,
 * timers), stop reading for a while (the server's output then backs up in its queues), begin
 * a graceful shutdown.
 * At the end the client half-closes, then goes; the connection must then be freed, and every
 * held request is finished (its final call must work on a gone connection). */
#ifndef SY_FUZZ_SERVER_H
#define SY_FUZZ_SERVER_H

#include "core/loop.h"
#include "http/app.h"
#include "net/conn.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the server ---- */

static sy_server *fz_srv;
static sy_worker fz_wk;
static sy_loop *fz_loop;
static sy_static *fz_static;

#define FZ_HELD_MAX 32
static sy_req *fz_held[FZ_HELD_MAX];
static size_t fz_nheld;

/* The messages are formatted (that code runs too) and printed only with FZ_LOG set. */
static void fz_log(int level, const char *msg, void *ud)
{
    (void)ud;
    static int show = -1;
    if (show < 0)
        show = getenv("FZ_LOG") != NULL;
    if (show)
        fprintf(stderr, "[%d] %s\n", level, msg);
}

static void fz_access(const sy_access_entry *e, void *ud)
{
    (void)ud;
    if (getenv("FZ_LOG"))
        fprintf(stderr, "access: %s %s %d %s\n", e->method, e->target, e->status, e->protocol);
}

/* /now: answers at once, with the request's fields echoed. */
static void fz_now(sy_req *req, void *ud)
{
    (void)ud;
    char out[512];
    size_t ml = 0, tl = 0, hl = 0, bl = 0;
    const char *m = sy_req_method(req, &ml), *t = sy_req_target(req, &tl);
    const char *h = sy_req_header(req, "host", &hl);
    sy_req_body(req, &bl);
    int n = snprintf(out, sizeof(out), "%.*s %.*s host=%.*s body=%zu\n", (int)SY_MIN(ml, 64), m,
                     (int)SY_MIN(tl, 128), t, (int)SY_MIN(hl, 64), h ? h : "", bl);
    sy_resp_header(req, "X-Fuzz", "1");
    sy_respond(req, 200, "text/plain", out, (size_t)n);
}

/* /later: answers when the harness says (or at the end). */
static void fz_later(sy_req *req, void *ud)
{
    (void)ud;
    if (fz_nheld == FZ_HELD_MAX) {
        sy_respond(req, 503, NULL, "busy\n", 5);
        return;
    }
    fz_held[fz_nheld++] = req;
}

/* Finish the oldest held request, in one of a few ways. */
static void fz_answer_one(unsigned how)
{
    if (!fz_nheld)
        return;
    sy_req *req = fz_held[0];
    memmove(fz_held, fz_held + 1, (--fz_nheld) * sizeof(*fz_held));
    static char block[40000];
    switch (how % 4) {
    case 0:
        sy_respond(req, 200, "text/plain", "later\n", 6);
        break;
    case 1:
        sy_resp_start(req, 201);
        sy_resp_write(req, block, sizeof(block));
        sy_resp_write(req, "tail", 4);
        sy_resp_end(req);
        break;
    case 2:
        sy_resp_header(req, "Content-Length", "10");
        sy_resp_start(req, 200);
        sy_resp_write(req, "short", 5); /* fewer than announced */
        sy_resp_end(req);
        break;
    default:
        sy_resp_end(req); /* no response at all */
        break;
    }
}

/* /body-stream: the request body arrives in pieces; answered at its end. */
static void fz_body_cb(sy_req *req, const void *data, size_t len, int end, int err, void *ud)
{
    (void)data;
    size_t *total = ud;
    *total += len;
    if (err < 0) {
        sy_resp_end(req);
        free(total);
    } else if (end) {
        char out[64];
        int n = snprintf(out, sizeof(out), "got %zu\n", *total);
        sy_respond(req, 200, "text/plain", out, (size_t)n);
        free(total);
    }
}

static void fz_body_stream(sy_req *req, void *ud)
{
    (void)ud;
    size_t *total = calloc(1, sizeof(*total));
    if (!total || sy_req_on_body(req, fz_body_cb, total) < 0) {
        free(total);
        sy_respond(req, 500, NULL, "x\n", 2);
    }
}

/* /big: a long response written as the queue drains (sy_resp_on_drain). */
typedef struct fz_big {
    size_t left;
} fz_big;

static void fz_big_more(sy_req *req, void *ud)
{
    fz_big *b = ud;
    static char piece[16384];
    while (b->left && sy_resp_buffered(req) < 65536) {
        size_t n = SY_MIN(b->left, sizeof(piece));
        if (sy_resp_write(req, piece, n) < 0)
            b->left = 0;
        else
            b->left -= n;
    }
    if (b->left && sy_resp_on_drain(req, fz_big_more, b) == 0)
        return;
    sy_resp_end(req);
    free(b);
}

static void fz_big_handler(sy_req *req, void *ud)
{
    (void)ud;
    fz_big *b = calloc(1, sizeof(*b));
    if (!b) {
        sy_respond(req, 500, NULL, "x\n", 2);
        return;
    }
    b->left = 1 << 20;
    if (sy_resp_start(req, 200) < 0) {
        sy_resp_end(req);
        free(b);
        return;
    }
    fz_big_more(req, b);
}

/* /ws: a WebSocket echo (over HTTP/1.1 Upgrade and over HTTP/2 extended CONNECT). */
static void fz_ws_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, opcode, data, len);
}

static void fz_ws_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)ws;
    (void)info;
    (void)ud;
}

static char fz_root[64];

static void fz_file(const char *name, size_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/static/%s", fz_root, name); /* the route's path */
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    for (size_t i = 0; i < size; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static void fz_server_init(void)
{
    if (fz_srv)
        return;
    sy_set_log(fz_log, SY_LOG_DEBUG, NULL);
    snprintf(fz_root, sizeof(fz_root), "/tmp/sy-fuzz-%d", (int)getpid());
    char dir[96];
    snprintf(dir, sizeof(dir), "%s/static", fz_root);
    mkdir(fz_root, 0700);
    mkdir(dir, 0700);
    fz_file("small.txt", 100);
    fz_file("big.bin", 200000);
    if (sy_server_new(&fz_srv) < 0 || sy_loop_new(&fz_loop) < 0 ||
        sy_static_new(&fz_static, fz_root) < 0)
        abort();
    sy_server_set(fz_srv, SY_OPT_MAX_BODY, 100000);
    sy_server_set_access_log(fz_srv, fz_access, NULL);
    sy_server_listen(fz_srv, "127.0.0.1:0"); /* an address for the accept hook; never opened */
    sy_server_route(fz_srv, NULL, "/now", SY_ROUTE_EXACT, fz_now, NULL);
    sy_server_route(fz_srv, NULL, "/later", SY_ROUTE_PREFIX, fz_later, NULL);
    sy_server_route(fz_srv, "POST", "/body-stream", SY_ROUTE_STREAM_BODY, fz_body_stream, NULL);
    sy_server_route(fz_srv, "GET", "/big", SY_ROUTE_EXACT, fz_big_handler, NULL);
    sy_server_route(fz_srv, "GET", "/static/", SY_ROUTE_PREFIX, sy_static_handler, fz_static);
    sy_route *ws = sy_server_route(fz_srv, "GET", "/ws", SY_ROUTE_EXACT, NULL, NULL);
    sy_ws_opts *o;
    if (!ws || sy_ws_opts_new(&o) < 0)
        abort();
    sy_ws_cbs cbs = {.on_message = fz_ws_message, .on_close = fz_ws_close};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_ws_opts_set(o, SY_WS_OPT_PING_INTERVAL_MS, 1000);
    sy_ws_opts_add_subprotocol(o, "chat");
    sy_route_websocket(ws, o);
    sy_ws_opts_free(o);
    fz_wk.srv = fz_srv;
    fz_wk.loop = fz_loop;
}

/* ---- the loop's work, done by hand ---- */

static void fz_run_deferred(void)
{
    sy__loop_run_deferred(fz_loop, 100000); /* bounded: a fuzz input must not hang */
}

/* Time passes: the timers due by then fire. */
static void fz_advance(uint64_t ms)
{
    fz_loop->now_ms += ms;
    for (int guard = 0;
         guard < 1000 && fz_loop->heap_len && fz_loop->heap[0]->deadline <= fz_loop->now_ms;
         guard++) {
        sy_timer *t = fz_loop->heap[0];
        sy__timer_stop(fz_loop, t);
        t->cb(t);
        fz_run_deferred();
    }
}

/* ---- one connection ---- */

static sy_transport_ops fz_tp;
static int fz_gone; /* the connection was freed */
static int fz_peer = -1;

static void fz_destroyed(sy_conn *c)
{
    (void)c;
    fz_gone = 1;
}

/* A connection on a fresh socket pair; attach installs the protocol. NULL when it failed. */
static sy_conn *fz_conn_new(int (*attach)(sy_conn *c))
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    fz_tp = sy__tcp_transport;
    fz_tp.destroy = fz_destroyed;
    fz_gone = 0;
    fz_peer = sv[1];
    sy_conn *c = sy__conn_new(fz_loop, sv[0], &fz_tp, NULL, NULL);
    if (!c) {
        close(sv[0]);
        return NULL;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(40000)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sy__conn_set_peer(c, (const struct sockaddr *)&a, sizeof(a));
    if (attach(c) < 0)
        sy__conn_close(c, SY_ENOMEM, 0);
    return c;
}

/* Read and drop what the server sent. */
static void fz_drain_peer(void)
{
    static uint8_t sink[1 << 16];
    while (read(fz_peer, sink, sizeof(sink)) > 0) {
    }
}

/* Let the connection handle what is pending on its socket, as epoll would report it. */
static void fz_service(sy_conn *c, int reading)
{
    for (int round = 0; round < 8 && !fz_gone; round++) {
        fz_run_deferred();
        if (fz_gone)
            return;
        if (reading)
            fz_drain_peer();
        c->io.cb(&c->io, EPOLLIN | (reading ? EPOLLOUT : 0));
        fz_run_deferred();
    }
}

/* Write bytes for the server; what does not fit now is dropped (a stalled peer). */
static void fz_send(sy_conn *c, const uint8_t *p, size_t n, int reading)
{
    while (n && !fz_gone) {
        ssize_t k = write(fz_peer, p, n);
        if (k <= 0) {
            fz_service(c, reading);
            k = write(fz_peer, p, n);
            if (k <= 0)
                return;
        }
        p += k;
        n -= (size_t)k;
        fz_service(c, reading);
    }
}

/* The rest of an input: pieces of sizes and actions chosen by ctl (see the file comment). */
static void fz_drive(sy_conn *c, const uint8_t *data, size_t size, uint8_t ctl)
{
    size_t piece = ctl & 0x80 ? 1 + (ctl & 7) * 3 : 4096;
    int reading = !(ctl & 0x40);
    unsigned step = 0;
    for (size_t off = 0; off < size && !fz_gone; off += piece, step++) {
        fz_send(c, data + off, SY_MIN(piece, size - off), reading || step % 4 == 3);
        if (ctl & 0x20)
            fz_answer_one(step);
        if ((ctl & 0x10) && step % 3 == 2)
            fz_advance(700);
        if ((ctl & 0x02) && step == 2 && !fz_gone && c->proto && c->proto->on_shutdown)
            c->proto->on_shutdown(&c->bs); /* the server is shutting down (graceful) */
        fz_service(c, 1);
    }
    fz_service(c, 1);
}

/* The client goes: half-close, time passes (timeouts), close; then held requests finish. */
static void fz_conn_end(sy_conn *c, uint8_t ctl)
{
    if (!fz_gone) {
        shutdown(fz_peer, SHUT_WR);
        fz_service(c, 1);
        if (ctl & 0x08)
            fz_answer_one(ctl);
        fz_advance(ctl & 0x04 ? 40000 : 10);
        fz_service(c, 1);
    }
    close(fz_peer);
    fz_peer = -1;
    if (!fz_gone) {
        c->io.cb(&c->io, EPOLLIN | EPOLLOUT | EPOLLHUP);
        fz_run_deferred();
    }
    if (!fz_gone) {
        sy__conn_close(c, SY_ECLOSED, 0);
        fz_run_deferred();
    }
    if (!fz_gone)
        abort(); /* a closed connection must be freed at the end of the iteration */
    while (fz_nheld)
        fz_answer_one(fz_nheld);
    fz_run_deferred();
    fz_advance(120000); /* any timer left over must not touch freed memory */
}

#endif
