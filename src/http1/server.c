/* HTTP/1.1 server protocol on a connection.
 *
 * One request at a time: the head is parsed statelessly from the pending bytes, the body is
 * read (buffered or streamed), the handler runs, and only after its response is finished is
 * the next pipelined request parsed, so responses always leave in request order. Slices
 * into the read buffer are used as long as the request lives within one read; a request that
 * outlives it (a body still arriving, an asynchronous handler) is pinned: its head is copied
 * into the request object. */
#include "http1/server.h"
#include "http1/parse.h"
#include "core/log.h"
#include "http/dispatch.h"
#include "http/upgrade.h"

#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

enum { H1_HEAD = 0, H1_BODY, H1_HANDLER };

#define PIPELINE_WRITE_CAP (1u << 20) /* stop reading requests above this much queued output */

typedef struct h1 {
    sy_conn *c;
    sy_worker *w;
    sy_http_conf *conf; /* routes and limits, as when the connection was accepted */
    sy_req *req;
    uint8_t state;
    uint8_t keep_alive;
    uint8_t close_after; /* close once the current response is done */
    uint8_t chunked_resp;
    uint8_t body_done;
    uint8_t in_dispatch;
    uint8_t draining;
    uint8_t got_bytes; /* some bytes of the current head arrived */
    uint8_t peer_eof;  /* the client finished sending: answer what is pending, then close */
    uint8_t closed;    /* the connection is being freed (on_close is running) */
    size_t prev_len;
    uint64_t body_left; /* Content-Length bytes still to read */
    uint64_t resp_left; /* Content-Length bytes of the response still to write */
    uint64_t last_out;  /* bytes_out at the last write-timeout check */
    uint64_t idle_ms;   /* when last seen busy: a response finished or output moved (0: none) */
    uint64_t resp_mark; /* queue position (bytes_out + buffered) where this response began */
    uint64_t head_us;   /* loop time when the current head's first bytes arrived */
    sy_chunked chunked;
    sy_http1_info info;     /* framing and connection semantics of the current request */
    uint64_t head_deadline; /* loop ms by which the first head must be complete, or 0 */
} h1;

static ssize_t h1_on_read(sy_bstream *bs, uint8_t *data, size_t len);
static void h1_on_drain(sy_bstream *bs);
static void h1_on_eof(sy_bstream *bs);
static void h1_on_timer(sy_bstream *bs);
static void h1_on_shutdown(sy_bstream *bs);
static void h1_on_close(sy_bstream *bs, int err);

static const sy_conn_proto h1_proto = {
    "http/1.1", h1_on_read, h1_on_drain, h1_on_eof, h1_on_timer, h1_on_shutdown, h1_on_close, NULL,
};

static int h1_start(sy_req *r, int status, int has_len, uint64_t body_len);
static int h1_write(sy_req *r, const void *data, size_t len);
static int h1_sendfile(sy_req *r, int fd, off_t off, size_t len);
static int h1_end(sy_req *r);
static size_t h1_buffered(const sy_req *r)
{
    return sy__conn_buffered(r->conn);
}

static int h1_want_drain(sy_req *r)
{
    const h1 *h = r->proto;
    if (h->closed || r->conn->closing)
        return SY_ECLOSED;
    sy__conn_want_drain(r->conn);
    return 0;
}

static void next_request(h1 *h);

static void h1_abort(sy_req *r, int err)
{
    h1 *h = r->proto;
    r->resp_done = 1;
    h->keep_alive = 0;
    if (!h->closed) {
        sy__conn_close(h->c, err, 0);
        if (!h->in_dispatch)
            next_request(h);
    }
}

static const sy_req_ops h1_ops = {h1_buffered, h1_want_drain, h1_start, h1_write,
                                  h1_sendfile, h1_end,        h1_abort};

static const sy_http_cfg *cfg_of(const h1 *h)
{
    return &h->conf->cfg;
}

void sy__http1_head_deadline(sy_conn *c, uint64_t deadline_ms)
{
    h1 *h = c->proto_data;
    h->head_deadline = deadline_ms;
}

int sy__http1_attach(sy_conn *c, sy_worker *w)
{
    h1 *h = sy__calloc(1, sizeof(*h));
    if (!h)
        return SY_ENOMEM;
    h->c = c;
    h->w = w;
    h->conf = sy__http_worker_conf(w);
    sy__http_conf_ref(h->conf);
    c->proto = &h1_proto;
    c->proto_data = h;
    const sy_http_cfg *cfg = &h->conf->cfg;
    c->rmax = (uint32_t)SY_MIN(cfg->max_head + 4096, UINT32_MAX);
    /* A connection that never sends a complete head is cut at the header timeout. */
    sy__conn_set_timeout(c, cfg->header_timeout_ms);
    return 0;
}

static void h1_free(h1 *h)
{
    if (h->req)
        sy__req_release(h->w, h->req);
    sy__http_conf_unref(h->conf);
    sy__free(h);
}

static void h1_on_close(sy_bstream *bs, int err)
{
    sy_conn *c = sy__conn_of(bs);
    h1 *h = c->proto_data;
    (void)err;
    if (!h)
        return;
    sy_req *r = h->req;
    /* Tell a handler that is still working on this request that it is gone: its writes fail
     * from here on (h->closed). If it still owes its final call, the request outlives the
     * connection as an orphan (sy__req_release) until that call. */
    h->closed = 1;
    /* A streamed body still arriving never will now (the peer went, a write failed, the
     * server stops): tell the handler. An error the server answered by itself has told it
     * already, with its reason (send_error); the helper's guard keeps this to one call. */
    if (r)
        sy__req_body_fail(r, SY_ECLOSED);
    r = h->req;
    if (r && r->resp_started && !r->resp_done && r->drain_fn) {
        void (*fn)(sy_req *, void *) = r->drain_fn;
        r->drain_fn = NULL;
        fn(r, r->drain_ud);
    }
    h1_free(h);
    c->proto_data = NULL;
}

/* ---- responses ---- */

/* Decimal digits of v, written backwards ending at end. Returns where they start. */
static char *put_dec(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* "prefix<decimal v>suffix" into out (big enough): what snprintf did here, for a fraction of
 * its cost on every response. Returns the length. */
static size_t put_line(char *out, const char *prefix, size_t pl, uint64_t v, const char *suffix,
                       size_t sl)
{
    char digits[20];
    char *d = put_dec(digits + sizeof(digits), v);
    size_t dl = (size_t)(digits + sizeof(digits) - d);
    memcpy(out, prefix, pl);
    memcpy(out + pl, d, dl);
    memcpy(out + pl + dl, suffix, sl);
    return pl + dl + sl;
}

static int write_head(h1 *h, sy_req *r, int status, const char *extra, size_t extra_len,
                      int has_len, uint64_t body_len)
{
    char line[128];
    char framing[96];
    size_t date_len;
    const char *date = sy__loop_date(h->c->loop, &date_len);
    const char *reason = sy__status_text(status);
    size_t rl = SY_MIN(strlen(reason), 64);
    char tail[70] = " ";
    memcpy(tail + 1, reason, rl);
    memcpy(tail + 1 + rl, "\r\n", 2);
    size_t nl = put_line(line, "HTTP/1.1 ", 9, (uint64_t)(status < 0 ? 0 : status), tail, rl + 3);
    size_t fl = 0;
    int bodyless = status < 200 || status == 204 || status == 304;
    h->chunked_resp = 0;
    if (!bodyless) {
        if (has_len) {
            if (!r->has_content_length)
                fl = put_line(framing, "Content-Length: ", 16, body_len, "\r\n", 2);
        } else if (!r->has_content_length) {
            if (r->version >= 11 && !r->head_only) {
                static const char te[] = "Transfer-Encoding: chunked\r\n";
                memcpy(framing, te, sizeof(te) - 1);
                fl = sizeof(te) - 1;
                h->chunked_resp = 1;
            } else if (r->version < 11) {
                h->keep_alive = 0; /* the body ends when the connection does */
            }
        }
    }
    if (h->draining || h->close_after)
        h->keep_alive = 0;
    const char *conn_hdr = "";
    if (status == 101)
        conn_hdr = "";
    else if (r->upgrade_hint)
        conn_hdr = h->keep_alive ? "Connection: Upgrade\r\n" : "Connection: Upgrade, close\r\n";
    else if (!h->keep_alive)
        conn_hdr = "Connection: close\r\n";
    else if (r->version < 11)
        conn_hdr = "Connection: keep-alive\r\n";
    static const char server_hdr[] = "Server: switchyard\r\n";
    const struct iovec parts[] = {
        {line, nl},
        {(void *)date, date_len},
        {(void *)server_hdr, sizeof(server_hdr) - 1},
        {r->rh, r->rh_len},
        {(void *)extra, extra_len},
        {framing, fl},
        {(void *)conn_hdr, strlen(conn_hdr)},
        {"\r\n", 2},
    };
    size_t total = 0, got;
    for (size_t i = 0; i < SY_ARRAY_LEN(parts); i++)
        total += parts[i].iov_len;
    uint8_t *p = sy__conn_reserve(h->c, total, &got);
    if (!p)
        return SY_ENOMEM;
    if (got < total) {
        /* A huge header section: it spans chunks, so go through the copying path. */
        for (size_t i = 0; i < SY_ARRAY_LEN(parts); i++) {
            int e = sy__conn_write(h->c, parts[i].iov_base, parts[i].iov_len);
            if (e)
                return e;
        }
        return 0;
    }
    uint8_t *o = p;
    for (size_t i = 0; i < SY_ARRAY_LEN(parts); i++) {
        if (parts[i].iov_len)
            memcpy(o, parts[i].iov_base, parts[i].iov_len);
        o += parts[i].iov_len;
    }
    sy__conn_commit(h->c, total);
    return 0;
}

/* Bytes ever queued on the connection: the difference between two positions is what was
 * queued in between, whether it has left yet or not. */
static uint64_t queue_pos(const sy_conn *c)
{
    return c->bytes_out + sy__conn_buffered(c);
}

static int h1_start(sy_req *r, int status, int has_len, uint64_t body_len)
{
    h1 *h = r->proto;
    if (r->resp_started)
        return SY_ESTATE;
    if (h->closed)
        return SY_ECLOSED;
    if (status < 200 || status > 999)
        return SY_EINVAL;
    r->resp_started = 1;
    r->status = status;
    h->resp_left = has_len ? body_len : UINT64_MAX;
    h->resp_mark = queue_pos(h->c);
    return write_head(h, r, status, NULL, 0, has_len, body_len);
}

static int h1_write(sy_req *r, const void *data, size_t len)
{
    h1 *h = r->proto;
    if (h->closed)
        return SY_ECLOSED;
    if (!len)
        return 0;
    if (h->resp_left != UINT64_MAX) {
        if (len > h->resp_left)
            return SY_ERANGE; /* more than the Content-Length announced */
        h->resp_left -= len;
    }
    r->resp_bytes += len;
    if (r->head_only || r->status == 204 || r->status == 304)
        return 0;
    if (h->chunked_resp) {
        char hdr[24];
        int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
        int e = sy__conn_write(h->c, hdr, (size_t)n);
        e = e ? e : sy__conn_write(h->c, data, len);
        return e ? e : sy__conn_write(h->c, "\r\n", 2);
    }
    return sy__conn_write(h->c, data, len);
}

static int h1_sendfile(sy_req *r, int fd, off_t off, size_t len)
{
    h1 *h = r->proto;
    if (h->closed) {
        close(fd);
        return SY_ECLOSED;
    }
    if (h->resp_left != UINT64_MAX) {
        if (len > h->resp_left) {
            close(fd);
            return SY_ERANGE;
        }
        h->resp_left -= len;
    }
    r->resp_bytes += len;
    if (r->head_only || !len) {
        close(fd);
        return 0;
    }
    if (len <= 16384 && !h->chunked_resp) {
        /* Small files ride in the same writev as the head: read them into the queue. */
        size_t got;
        uint8_t *p = sy__conn_reserve(h->c, len, &got);
        if (p && got >= len) {
            ssize_t n = pread(fd, p, len, off);
            if (n == (ssize_t)len) {
                close(fd);
                sy__conn_commit(h->c, len);
                return 0;
            }
        }
    }
    if (h->chunked_resp) {
        char hdr[24];
        int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
        int e = sy__conn_write(h->c, hdr, (size_t)n);
        e = e ? e : sy__conn_write_file(h->c, fd, off, len);
        return e ? e : sy__conn_write(h->c, "\r\n", 2);
    }
    return sy__conn_write_file(h->c, fd, off, len);
}

static void next_request(h1 *h);

static int h1_end(sy_req *r)
{
    h1 *h = r->proto;
    if (r->resp_done)
        return SY_ESTATE;
    r->resp_done = 1;
    if (h->closed)
        return SY_ECLOSED;
    int e = 0;
    if (h->chunked_resp)
        e = sy__conn_write(h->c, "0\r\n\r\n", 5);
    if (h->resp_left != UINT64_MAX && h->resp_left != 0 && !r->head_only)
        h->keep_alive = 0; /* fewer bytes than announced: the framing is broken, close */
    r->resp_wire_bytes = queue_pos(h->c) - h->resp_mark;
    sy__access_log_req(r, r->status);
    if (h->state == H1_BODY || (r->body_fn && !h->body_done))
        h->close_after = 1; /* answered before the body was read: don't try to resync */
    if (!h->in_dispatch)
        next_request(h);
    return e;
}

/* Between requests, before the next head: the connection is idle only once our output has
 * left. While a response is still leaving (a large file to a slow reader) the timer checks
 * that it moves; a client that stopped reading is cut after the write timeout (or the
 * keep-alive time, if shorter), an idle connection after the keep-alive time. idle_ms is
 * when the connection was last seen doing something (a response finished, output moved). */
static uint64_t between_deadline(const h1 *h)
{
    const sy_http_cfg *cfg = cfg_of(h);
    uint64_t ka = cfg->keepalive_timeout_ms, wt = cfg->write_timeout_ms, d = UINT64_MAX;
    if (ka)
        d = h->idle_ms + ka;
    if (wt && sy__conn_buffered(h->c))
        d = SY_MIN(d, h->idle_ms + wt);
    return d;
}

static void arm_between_requests(h1 *h)
{
    sy_conn *c = h->c;
    if (c->rlen && !sy__conn_buffered(c)) {
        sy__conn_set_timeout(c, cfg_of(h)->header_timeout_ms); /* pipelined bytes wait */
        return;
    }
    uint64_t d = between_deadline(h), now = c->loop->now_ms;
    sy__conn_set_timeout(c, d == UINT64_MAX ? 0 : d > now ? d - now : 1);
}

/* The response is done: reset for the next request, or close. */
static void next_request(h1 *h)
{
    sy_conn *c = h->c;
    sy__req_release(h->w, h->req);
    h->req = NULL;
    h->state = H1_HEAD;
    h->prev_len = 0;
    h->got_bytes = 0;
    if (!h->keep_alive || h->close_after || h->draining) {
        sy__conn_close(c, 0, 1);
        return;
    }
    if (h->peer_eof && !c->rlen && !c->in_read) {
        sy__conn_close(c, 0, 1);
        return;
    }
    h->idle_ms = c->loop->now_ms;
    h->last_out = c->bytes_out;
    arm_between_requests(h);
    if (sy__conn_buffered(c) > PIPELINE_WRITE_CAP) {
        /* The client pipelines faster than it reads: wait for the output to drain. */
        sy__conn_pause_read(c);
        sy__conn_want_drain(c);
        return;
    }
    if (!c->in_read)
        sy__conn_resume_read(c);
}

static void h1_on_drain(sy_bstream *bs)
{
    sy_conn *c = sy__conn_of(bs);
    h1 *h = c->proto_data;
    if (h->state == H1_HEAD) {
        sy__conn_resume_read(c);
    } else if (h->req && h->req->drain_fn && !h->req->resp_done) {
        void (*fn)(sy_req *, void *) = h->req->drain_fn;
        h->req->drain_fn = NULL; /* one call per sy_resp_on_drain */
        fn(h->req, h->req->drain_ud);
    }
}

/* What a streamed body's callback is told when the server answers status by itself. */
static int body_err_of(int status)
{
    switch (status) {
    case 400:
        return SY_EHTTP_CHUNK;
    case 408:
        return SY_ETIMEDOUT;
    case 413:
        return SY_EHTTP_BODY_LARGE;
    default:
        return SY_ECLOSED;
    }
}

/* An error response that ends the connection. */
static void send_error(h1 *h, int status, const char *detail)
{
    sy_req *r = h->req;
    sy_conn *c = h->c;
    h->keep_alive = 0;
    h->close_after = 1;
    if (r && !r->resp_started) {
        char body[256];
        int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, sy__status_text(status),
                         detail ? detail : "");
        r->detail = detail;
        r->rh_len = 0;
        r->has_content_length = 0;
        r->head_only = 0;
        r->proto = h;
        r->ops = &h1_ops;
        r->conn = c;
        if (!r->version)
            r->version = 11;
        sy_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
        r->resp_started = 1;
        r->status = status;
        h->resp_left = UINT64_MAX;
        h->resp_mark = queue_pos(c);
        write_head(h, r, status, NULL, 0, 1, (uint64_t)n);
        sy__conn_write(c, body, (size_t)n);
        r->resp_done = 1;
        r->resp_wire_bytes = queue_pos(c) - h->resp_mark;
        sy__access_log_req(r, status);
    }
    sy__log(SY_LOG_INFO, "%s: HTTP %d: %s", sy__conn_peer_str(c), status, detail ? detail : "");
    h->state = H1_HANDLER;
    sy__conn_close(c, 0, 1);
    /* A handler reading the body as it arrives (SY_ROUTE_STREAM_BODY) holds the request and
     * waits for the body's end: the body failed (malformed chunk, stall, too large), so tell
     * it now, with the reason, and it makes its final call. Not left to h1_on_close: that
     * runs only once the answer is flushed and the linger is over (seconds, or the flush
     * timeout with a peer that does not read), and could only say SY_ECLOSED. The same
     * helper and guard there make it one call either way. */
    if (r)
        sy__req_body_fail(r, body_err_of(status));
}

/* ---- upgrade ---- */

static int do_switch(h1 *h, sy_req *r, const sy_upgrade_entry *e, const char *tok, size_t tl)
{
    sy_conn *c = h->c;
    char extra[160];
    int n =
        snprintf(extra, sizeof(extra), "Upgrade: %.*s\r\nConnection: Upgrade\r\n", (int)tl, tok);
    r->resp_started = 1;
    r->resp_done = 1;
    r->status = 101;
    h->keep_alive = 1; /* no "Connection: close" on a 101 */
    if (write_head(h, r, 101, extra, (size_t)n, 0, 0) < 0) {
        /* Half a 101 may be queued: nothing sane can follow on this connection. */
        sy__conn_close(c, SY_ENOMEM, 0);
        return SY_ENOMEM;
    }
    sy_uplog *log = sy__uplog_begin(r, e, tok, tl);
    if (!log) {
        sy__conn_close(c, SY_ENOMEM, 0);
        return SY_ENOMEM;
    }
    /* Hand the connection over. The opener installs its protocol on c; from here on this
     * HTTP/1 state must not be touched except to free it. */
    c->proto_data = NULL;
    c->proto = NULL;
    int err = e->proto->open(&c->bs, r, e, log);
    h1_free(h);
    if (err < 0 || !c->proto) {
        c->proto = NULL;
        sy__conn_close(c, err < 0 ? err : SY_EINTERNAL, 0);
        return err < 0 ? err : SY_EINTERNAL;
    }
    return 1;
}

/* Returns 1 switched, 2 responded (refused), 0 not upgraded, < 0 error. The client's tokens
 * are tried in its order, each against the route's protocols, then the server-wide ones. */
static int try_upgrade(h1 *h, sy_req *r)
{
    const sy_http_app *app = sy__http_app(h->w->srv);
    if (!r->upgrade || !sy__upgrade_entry_at(app, r->route, 0))
        return 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const sy_field *hd = &r->headers[i];
        if (!sy__ieq(hd->name, hd->name_len, "upgrade"))
            continue;
        size_t pos = 0;
        const char *tok;
        size_t tl;
        int rc;
        while ((rc = sy_field_next_token(hd->value, hd->value_len, &pos, &tok, &tl, 1)) == 1) {
            const sy_upgrade_entry *e;
            for (size_t k = 0; (e = sy__upgrade_entry_at(app, r->route, k)) != NULL; k++) {
                if (!sy__upgrade_matches(e, tok, tl))
                    continue;
                const char *reason = NULL;
                int v = sy__upgrade_check(r, e, tok, tl, &reason);
                if (v == SY_UPGRADE_ACCEPT)
                    return do_switch(h, r, e, tok, tl);
                if (v != SY_UPGRADE_DECLINE) {
                    /* A refused upgrade ends the connection: a proxy that does not check
                     * the status would otherwise tunnel whatever the client sends next
                     * to us as if the switch had happened ("WebSocket smuggling"). */
                    h->close_after = 1;
                    sy__upgrade_refuse(r, v, reason);
                    return 2;
                }
            }
        }
        if (rc < 0)
            return 0; /* a malformed Upgrade list: ignore the upgrade, serve normally */
    }
    return 0;
}

/* ---- requests ---- */

/* The request (head and, unless streamed, body) is complete: run it. Returns 1 when the
 * connection switched protocols, 0 otherwise. */
static int dispatch(h1 *h)
{
    sy_req *r = h->req;
    sy_conn *c = h->c;
    h->state = H1_HANDLER;
    h->in_dispatch = 1;
    int up = try_upgrade(h, r);
    if (up == 1)
        return 1; /* h is gone */
    if (up < 0)
        return 1; /* the connection is closing */
    if (h->info.upgrade)
        h->close_after = 1; /* asked to switch but did not: see try_upgrade */
    if (up == 0)
        sy__http_dispatch(r);
    h->in_dispatch = 0;
    if (h->req && h->req->resp_done) {
        next_request(h);
    } else if (h->req && !c->closing) {
        /* The handler answers later: keep the request's bytes alive and stop reading. */
        if (sy__req_pin(h->req) < 0) {
            sy__conn_close(c, SY_ENOMEM, 0);
            return 0;
        }
        sy__conn_pause_read(c);
        sy__conn_set_timeout(c, cfg_of(h)->write_timeout_ms);
        h->last_out = c->bytes_out;
    }
    return 0;
}

/* An absolute-form target names the host: handlers reading Host see its authority, not the
 * Host field the client also sent (RFC 9112 §3.2.2: the origin server MUST ignore it), so a
 * request cannot show one host in its target and another to the application. An HTTP/1.0
 * request without Host gets one, when the field array has room. */
static void authority_wins(sy_req *r, const sy_http1_request *pr, const sy_http1_info *info)
{
    if (info->host) {
        sy_field *f = &r->headers[info->host - pr->headers];
        f->value = info->authority;
        f->value_len = info->authority_len;
    } else if (r->nheaders < r->headers_cap) {
        sy_field *f = &r->headers[r->nheaders++];
        f->name = "Host";
        f->name_len = 4;
        f->value = info->authority;
        f->value_len = info->authority_len;
    }
}

/* Head parsed: validate, route, set up the body. Returns 0 to continue, < 0 when an error
 * response was sent (the connection is closing). */
static int begin_request(h1 *h, const sy_http1_request *pr, const char *base, size_t head_len)
{
    sy_req *r = h->req;
    const sy_http_cfg *cfg = cfg_of(h);
    const char *detail = NULL;
    r->ops = &h1_ops;
    r->proto = h;
    r->conn = h->c;
    r->conf = h->conf;
    r->method = pr->method;
    r->method_len = pr->method_len;
    r->target = pr->target;
    r->target_len = pr->target_len;
    r->version = 10 + pr->minor_version;
    r->nheaders = pr->num_headers;
    r->head_base = base;
    r->head_len = head_len;
    r->start_us = sy__now_us();
    r->recv_us = h->head_us;
    r->head_only = pr->method_len == 4 && memcmp(pr->method, "HEAD", 4) == 0;
    r->secure = h->c->secure;
    r->protocol = pr->minor_version ? "http/1.1" : "http/1.0";
    int e = sy_http1_analyze(pr, &h->info, &detail);
    if (e < 0) {
        send_error(h, sy_http1_error_status(e), detail);
        return e;
    }
    h->keep_alive = h->info.keep_alive;
    /* Only HTTP/1.1 can switch (RFC 9110 §7.8), and only when Connection lists "upgrade".
     * "Connection: close, upgrade" does not switch: the client asked for the connection to
     * end after this response, so the request is served as it is and the connection closed
     * (a route that requires the upgrade answers 426). */
    r->upgrade =
        r->version == 11 && h->info.conn_upgrade && h->info.keep_alive ? h->info.upgrade : NULL;
    if (h->info.authority)
        authority_wins(r, pr, &h->info);
    if ((e = sy__req_decode_target(r, &detail)) < 0) {
        send_error(h, e == SY_ENOMEM ? 500 : 400, detail);
        return e;
    }
    int mismatch = sy__http_route(r);
    if (r->upgrade)
        sy__upgrade_note_first_token(r); /* the upgrade funnel: requested */
    h->body_done = 0;
    h->body_left = 0;
    if (h->info.body == SY_HTTP1_BODY_LENGTH) {
        if (h->info.content_length > cfg->max_body) {
            send_error(h, 413, "request body larger than the server accepts");
            return SY_EHTTP_BODY_LARGE;
        }
        h->body_left = h->info.content_length;
    } else if (h->info.body == SY_HTTP1_BODY_CHUNKED) {
        sy_chunked_init(&h->chunked);
    }
    int has_body = h->info.body == SY_HTTP1_BODY_CHUNKED || h->body_left > 0;
    if (!r->route && mismatch) {
        h->state = H1_HANDLER;
        if (has_body)
            h->close_after = 1;
        h->in_dispatch = 1;
        sy__http_respond_405(r);
        h->in_dispatch = 0;
        next_request(h);
        return -1;
    }
    if (has_body && h->info.expect_continue && r->version >= 11) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        sy__conn_write(h->c, cont, sizeof(cont) - 1);
    }
    if (!has_body) {
        h->body_done = 1;
        r->body_complete = 1;
        return 0;
    }
    h->state = H1_BODY;
    sy__conn_set_timeout(h->c, cfg->body_timeout_ms);
    if (sy__http_streams_body(r)) {
        /* Streamed: the handler runs now and receives the body through sy_req_on_body. */
        h->state = H1_HANDLER;
        h->in_dispatch = 1;
        sy__http_call_handler(r);
        h->in_dispatch = 0;
        if (r->resp_done) {
            /* Answered before reading the body: the rest of the body is not read. */
            h->close_after = 1;
            next_request(h);
            return -1;
        }
        h->state = H1_BODY;
    }
    return 0;
}

static int body_append(h1 *h, sy_req *r, const char *p, size_t n)
{
    r->body_received += n;
    if (r->body_fn || sy__http_streams_body(r)) {
        if (r->body_fn && n)
            r->body_fn(r, p, n, 0, 0, r->body_ud);
        return 0;
    }
    if (r->body_len + n > cfg_of(h)->max_body)
        return SY_EHTTP_BODY_LARGE;
    if (r->body_len + n > r->body_cap) {
        size_t cap = SY_MAX(r->body_cap * 2, SY_MAX(r->body_len + n, 4096));
        if (cap > cfg_of(h)->max_body)
            cap = (size_t)cfg_of(h)->max_body;
        uint8_t *nb = sy__realloc(r->body, cap);
        if (!nb)
            return SY_ENOMEM;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    return 0;
}

/* Feed body bytes. Returns bytes consumed or < 0 after an error response. */
static ssize_t read_body(h1 *h, uint8_t *data, size_t len)
{
    sy_req *r = h->req;
    size_t off = 0;
    if (h->info.body == SY_HTTP1_BODY_LENGTH) {
        size_t n = (size_t)SY_MIN((uint64_t)len, h->body_left);
        int e = body_append(h, r, (const char *)data, n);
        if (e < 0) {
            send_error(h, e == SY_ENOMEM ? 500 : 413, "request body too large");
            return e;
        }
        h->body_left -= n;
        off = n;
        if (h->body_left == 0)
            h->body_done = r->body_complete = 1;
    } else {
        while (off < len && !h->body_done) {
            sy_chunked_ev ev;
            const char *d, *detail = NULL;
            size_t dl;
            ssize_t n = sy_chunked_feed(&h->chunked, (const char *)data + off, len - off, &ev, &d,
                                        &dl, &detail);
            if (n < 0) {
                send_error(h, 400, detail ? detail : "malformed chunked body");
                return n;
            }
            off += (size_t)n;
            if (ev == SY_CHUNKED_DATA) {
                int e = body_append(h, r, d, dl);
                if (e < 0) {
                    send_error(h, e == SY_ENOMEM ? 500 : 413, "request body too large");
                    return e;
                }
            } else if (ev == SY_CHUNKED_DONE) {
                h->body_done = r->body_complete = 1;
            } else if (n == 0) {
                break;
            }
        }
    }
    if (!h->body_done)
        sy__conn_set_timeout(h->c, cfg_of(h)->body_timeout_ms);
    return (ssize_t)off;
}

static ssize_t h1_on_read(sy_bstream *bs, uint8_t *data, size_t len)
{
    sy_conn *c = sy__conn_of(bs);
    h1 *h = c->proto_data;
    const sy_http_cfg *cfg = cfg_of(h);
    size_t off = 0;
    while (off < len && !c->closing) {
        if (h->state == H1_HEAD) {
            if (sy__conn_buffered(c) > PIPELINE_WRITE_CAP) {
                /* Requests pipelined in this same read wait too (each may hold a file
                 * open until its response has left): on_drain resumes reading. */
                sy__conn_pause_read(c);
                sy__conn_want_drain(c);
                break;
            }
            if (!h->req) {
                h->req = sy__req_get(h->w);
                if (!h->req)
                    return SY_ENOMEM;
            }
            if (!h->got_bytes) {
                h->got_bytes = 1;
                h->head_us = c->loop->now_us;
                /* The head's clock starts at its first byte, which a protocol sniffer in front
                 * may have seen earlier (head_deadline): a slow head gets no extra time. */
                uint64_t now = c->loop->now_ms, ms = cfg->header_timeout_ms;
                if (h->head_deadline && ms)
                    ms = h->head_deadline > now ? h->head_deadline - now : 1;
                h->head_deadline = 0;
                sy__conn_set_timeout(c, ms);
            }
            sy_http1_limits lim = {(size_t)cfg->max_request_line, (size_t)cfg->max_head,
                                   (size_t)cfg->max_headers};
            sy_http1_request pr;
            const char *detail = NULL;
            ssize_t n =
                sy_http1_parse_request((const char *)data + off, len - off, h->prev_len, &lim, &pr,
                                       h->req->headers, h->req->headers_cap, &detail);
            if (n == 0) {
                if (h->peer_eof) {
                    sy__conn_close(c, 0, 1); /* an incomplete head will never complete */
                    return (ssize_t)len;
                }
                h->prev_len = len - off;
                return (ssize_t)off;
            }
            if (n < 0) {
                send_error(h, sy_http1_error_status((int)n), detail);
                return (ssize_t)len;
            }
            h->prev_len = 0;
            const char *base = (const char *)data + off;
            off += (size_t)n;
            if (begin_request(h, &pr, base, (size_t)n) < 0) {
                if (c->closing)
                    return (ssize_t)len;
                continue; /* answered (e.g. 405) and ready for the next request */
            }
            if (h->state == H1_HEAD) {
                /* no body: run it now */
                if (dispatch(h))
                    return (ssize_t)off; /* switched: the rest goes to the new protocol */
            }
            continue;
        }
        if (h->state == H1_BODY) {
            ssize_t n = read_body(h, data + off, len - off);
            if (n < 0)
                return (ssize_t)len;
            off += (size_t)n;
            if (!h->body_done)
                break;
            sy_req *r = h->req;
            int streamed = r->body_fn || sy__http_streams_body(r);
            if (streamed) {
                h->state = H1_HANDLER;
                h->in_dispatch = 1;
                sy__req_body_end(r);
                h->in_dispatch = 0;
                if (h->req && h->req->resp_done)
                    next_request(h);
                continue;
            }
            if (dispatch(h))
                return (ssize_t)off;
            continue;
        }
        /* H1_HANDLER: a response is in progress; pipelined bytes wait. */
        sy__conn_pause_read(c);
        break;
    }
    /* A request that outlives this read (body still arriving, handler answering later, or
     * the connection closing under a handler that holds it) gets its own copy of the head
     * now, while the read buffer still holds it. */
    if (h->state != H1_HEAD && h->req && !h->req->pinned)
        if (sy__req_pin(h->req) < 0 && !c->closing)
            return SY_ENOMEM;
    if (h->peer_eof && h->state == H1_HEAD && off == len && !c->closing)
        sy__conn_close(c, 0, 1);
    return (ssize_t)off;
}

static void h1_on_eof(sy_bstream *bs)
{
    sy_conn *c = sy__conn_of(bs);
    h1 *h = c->proto_data;
    if (h->state == H1_HANDLER) {
        /* The client half-closed after sending: answer it (and whatever it pipelined before
         * closing), then close. */
        h->peer_eof = 1;
        return;
    }
    sy__conn_close(c, 0, 1);
}

static void h1_on_timer(sy_bstream *bs)
{
    sy_conn *c = sy__conn_of(bs);
    h1 *h = c->proto_data;
    switch (h->state) {
    case H1_HEAD: {
        uint64_t now = c->loop->now_ms;
        int out = sy__conn_buffered(c) != 0;
        if (out && c->bytes_out != h->last_out) {
            /* The previous response is still leaving: busy, not idle. */
            h->last_out = c->bytes_out;
            h->idle_ms = now;
            arm_between_requests(h);
        } else if (h->got_bytes || (c->rlen && !out)) {
            send_error(h, 408, "the request head did not arrive in time");
        } else if (h->idle_ms && now < between_deadline(h)) {
            arm_between_requests(h);
        } else {
            if (out)
                sy__log(SY_LOG_INFO, "%s: the client stopped reading its responses",
                        sy__conn_peer_str(c));
            sy__conn_close(c, SY_ETIMEDOUT, 0); /* stalled, or an idle keep-alive connection */
        }
        return;
    }
    case H1_BODY:
        send_error(h, 408, "the request body stalled");
        return;
    case H1_HANDLER:
        if (sy__conn_buffered(c) && c->bytes_out == h->last_out) {
            sy__conn_close(c, SY_ETIMEDOUT, 0); /* the client stopped reading */
            return;
        }
        h->last_out = c->bytes_out;
        sy__conn_set_timeout(c, cfg_of(h)->write_timeout_ms);
        return;
    }
}

static void h1_on_shutdown(sy_bstream *bs)
{
    sy_conn *c = sy__conn_of(bs);
    h1 *h = c->proto_data;
    h->draining = 1;
    if (h->state == H1_HEAD && !h->got_bytes && !c->rlen)
        sy__conn_close(c, 0, 1);
}
