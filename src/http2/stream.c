/* Request streams: the head becomes a sy_req, the body is buffered or streamed as for
 * HTTP/1 (same limit, 413 as a response), the request goes through the version-neutral
 * dispatch, and the response calls (sy_req_ops) feed the stream's output queue, which the
 * data provider hands to nghttp2 as the peer's windows allow.
 *
 * The head is copied into the request's own buffer as it arrives (HPACK hands out each field
 * for one call only), so a request is pinned from the start and outlives any read.
 *
 * Zero copy: the provider answers NGHTTP2_DATA_FLAG_NO_COPY, and the DATA writer queues the
 * 9-byte frame header followed by the payload by reference: a file range of a shared
 * descriptor (sent with sendfile by the connection) or a slice of a queued memory block, so
 * file bodies are never read into memory and written bodies are copied once, on the
 * sy_resp_write call, as for HTTP/1. */
#include "http2/h2.h"
#include "core/log.h"
#include "http/access.h"
#include "http/dispatch.h"

#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#define SEG_MIN (16u << 10)
#define SEG_MAX (256u << 10)
#define REF_MIN 4096 /* smaller DATA payloads are copied: a reference costs more than that */

/* ---- the output queue ---- */

static void seg_unref(h2_seg *g)
{
    if (--g->refs == 0)
        sy__free(g);
}

static void seg_unref_cb(const void *data, void *ud)
{
    (void)data;
    seg_unref(ud);
}

static void seg_pop(h2_conn *h, h2_outq *q)
{
    h2_seg *g = q->head;
    q->head = g->next;
    if (!q->head)
        q->tail = NULL;
    if (g->file) {
        q->bytes -= g->flen;
        sy__fileref_unref(g->file);
        sy__free(g);
        return;
    }
    size_t left = g->len - g->pos;
    q->bytes -= left;
    q->mem -= left;
    h->out_mem -= left;
    seg_unref(g);
}

void sy__h2_outq_clear(h2_conn *h, h2_outq *q)
{
    while (q->head)
        seg_pop(h, q);
}

/* Drop segments at the head that have nothing left (keeping a memory tail for appends). */
static void outq_trim(h2_conn *h, h2_outq *q)
{
    while (q->head) {
        h2_seg *g = q->head;
        int empty = g->file ? g->flen == 0 : g->pos == g->len;
        if (!empty || (!g->file && !g->next))
            break;
        seg_pop(h, q);
    }
}

uint8_t *sy__h2_outq_reserve(h2_conn *h, h2_outq *q, size_t want, size_t *got)
{
    (void)h;
    h2_seg *t = q->tail;
    if (t && !t->file) {
        if (t->pos == t->len && t->refs == 1)
            t->pos = t->len = 0; /* all sent and nobody shares it: start over */
        size_t room = t->cap - t->len;
        if (room >= want || room >= 1024) {
            *got = room;
            return t->data + t->len;
        }
    }
    size_t cap = want < SEG_MIN ? SEG_MIN : want > SEG_MAX ? SEG_MAX : want;
    h2_seg *g = sy__malloc(sizeof(*g) + cap);
    if (!g)
        return NULL;
    memset(g, 0, sizeof(*g));
    g->cap = (uint32_t)cap;
    g->refs = 1;
    if (q->tail)
        q->tail->next = g;
    else
        q->head = g;
    q->tail = g;
    *got = cap;
    return g->data;
}

void sy__h2_outq_commit(h2_conn *h, h2_outq *q, size_t n)
{
    q->tail->len += (uint32_t)n;
    q->bytes += n;
    q->mem += n;
    h->out_mem += n;
}

int sy__h2_outq_write(h2_conn *h, h2_outq *q, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        size_t got;
        uint8_t *dst = sy__h2_outq_reserve(h, q, len, &got);
        if (!dst)
            return SY_ENOMEM;
        size_t n = SY_MIN(got, len);
        memcpy(dst, p, n);
        sy__h2_outq_commit(h, q, n);
        p += n;
        len -= n;
    }
    return 0;
}

static int outq_file(h2_outq *q, int fd, off_t off, size_t len)
{
    h2_seg *g = sy__calloc(1, sizeof(*g));
    sy_fileref *f = g ? sy__fileref_new(fd) : NULL;
    if (!f) {
        sy__free(g);
        close(fd);
        return SY_ENOMEM;
    }
    g->file = f;
    g->off = off;
    g->flen = len;
    g->refs = 1;
    if (q->tail)
        q->tail->next = g;
    else
        q->head = g;
    q->tail = g;
    q->bytes += len;
    return 0;
}

size_t sy__h2_buffered(const h2_stream *s)
{
    size_t excess = s->h->out_mem > H2_OUT_SOFT ? s->h->out_mem - H2_OUT_SOFT : 0;
    return s->out.bytes + excess;
}

void sy__h2_kick(h2_stream *s)
{
    if (s->deferred && !s->closed && !s->h->closed) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->h->ng, s->id);
    }
    sy__h2_schedule(s->h);
}

/* ---- the data provider ---- */

ssize_t sy__h2_data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    h2_stream *s = src->ptr;
    (void)ng;
    (void)id;
    (void)buf;
    outq_trim(s->h, &s->out);
    h2_seg *g = s->out.head;
    size_t avail = !g ? 0 : g->file ? g->flen : g->len - g->pos;
    (void)ud;
    if (!avail) {
        if (s->out_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    /* One segment per frame: the writer then sends it with one reference. */
    size_t n = SY_MIN(length, avail);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && !g->next && s->out_end)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* No write_file on the stream (it cannot send files by reference): copy the range. */
static int copy_file_range_out(sy_bstream *bs, int fd, off_t off, size_t n)
{
    while (n) {
        size_t got;
        uint8_t *p = sy__bs_reserve(bs, n, &got);
        if (!p)
            return SY_ENOMEM;
        size_t k = SY_MIN(n, got);
        ssize_t r = pread(fd, p, k, off);
        if (r <= 0)
            return SY_EIO;
        sy__bs_commit(bs, (size_t)r);
        off += r;
        n -= (size_t)r;
    }
    return 0;
}

int sy__h2_data_send(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *ud)
{
    h2_conn *h = ud;
    h2_stream *s = src->ptr;
    sy_bstream *bs = h->bs;
    (void)ng;
    (void)frame; /* never padded: no padding callback is set */
    if (sy__bs_buffered(bs) >= H2_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (sy__bs_write(bs, framehd, 9) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    while (length) {
        outq_trim(h, &s->out);
        h2_seg *g = s->out.head;
        if (!g)
            return NGHTTP2_ERR_CALLBACK_FAILURE; /* the provider promised more than queued */
        int rc;
        size_t n;
        if (g->file) {
            n = SY_MIN(length, g->flen);
            rc = sy__bs_write_file(bs, g->file, g->off, n);
            if (rc == SY_EINVAL)
                rc = copy_file_range_out(bs, g->file->fd, g->off, n);
            g->off += (off_t)n;
            g->flen -= n;
        } else {
            n = SY_MIN(length, (size_t)(g->len - g->pos));
            if (n >= REF_MIN) {
                g->refs++;
                rc = sy__bs_write_ref(bs, g->data + g->pos, n, seg_unref_cb, g);
            } else {
                rc = sy__bs_write(bs, g->data + g->pos, n);
            }
            g->pos += (uint32_t)n;
            s->out.mem -= n;
            h->out_mem -= n;
        }
        s->out.bytes -= n;
        length -= n;
        if (rc < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (s->tun)
        sy__h2_tunnel_sent(s);
    return 0;
}

/* ---- the request head ---- */

/* Append bytes to the request's head buffer; *off receives where they start. Each string
 * is followed by a NUL, as each HTTP/1 one is by a delimiter: a handler that parses a value
 * with strtol or atoi stops at its end on either version, instead of reading on into the
 * next field (HPACK values sit back to back here). */
static int hb_append(sy_req *r, const void *p, size_t n, size_t *off)
{
    if (r->head_len + n + 1 > r->hbuf_cap) {
        size_t cap = SY_MAX(r->hbuf_cap * 2, SY_MAX(r->head_len + n + 1, 1024));
        char *nb = sy__realloc(r->hbuf, cap);
        if (!nb)
            return SY_ENOMEM;
        r->hbuf = nb;
        r->hbuf_cap = cap;
    }
    memcpy(r->hbuf + r->head_len, p, n);
    r->hbuf[r->head_len + n] = '\0';
    *off = r->head_len;
    r->head_len += n + 1;
    return 0;
}

static const char *mode_name(const h2_conn *h)
{
    return h->mode == H2_MODE_TLS ? "h2" : h->mode == H2_MODE_PRIOR ? "h2c" : "h2c-upgrade";
}

int sy__h2_on_begin_request(h2_conn *h, int32_t id)
{
    h2_stream *s = sy__h2_stream_new(h, id);
    sy_req *r = s ? sy__req_get(h->w) : NULL;
    if (!r) {
        if (s)
            nghttp2_session_set_stream_user_data(h->ng, id, s); /* freed on close */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;           /* RST_STREAM */
    }
    s->req = r;
    r->ops = &sy__h2_req_ops;
    r->proto = s;
    r->conn = sy__conn_of(h->bs);
    r->conf = h->conf;
    r->version = 20;
    r->start_us = sy__now_us();
    r->secure = h->mode == H2_MODE_TLS;
    r->protocol = mode_name(h);
    r->head_len = 0; /* the fill of hbuf while the head arrives */
    return 0;
}

/* Header fields that are about one connection (RFC 9113 §8.2.2): never carried by HTTP/2. */
static int connection_specific(const char *n, size_t l)
{
    return sy__ieq(n, l, "connection") || sy__ieq(n, l, "keep-alive") ||
           sy__ieq(n, l, "proxy-connection") || sy__ieq(n, l, "transfer-encoding") ||
           sy__ieq(n, l, "upgrade");
}

int sy__h2_on_header(h2_conn *h, h2_stream *s, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl)
{
    sy_req *r = s->req;
    if (!r || s->head_err || s->head_done)
        return 0;
    s->head_bytes += nl + vl + 32; /* the size HTTP/2 counts (RFC 9113 §6.5.2) */
    if (s->head_bytes > h2_cfg(h)->max_head) {
        s->head_err = 431;
        s->head_detail = "request header fields too large";
        return 0;
    }
    size_t off;
    if (nl && name[0] == ':') {
        /* Pseudo-headers: nghttp2 checked their names, order and repeats. */
        if (hb_append(r, value, vl, &off) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (nl == 7 && !memcmp(name, ":method", 7)) {
            s->m_off = off, s->m_len = vl, s->has_method = 1;
        } else if (nl == 5 && !memcmp(name, ":path", 5)) {
            s->p_off = off, s->p_len = vl, s->has_path = 1;
        } else if (nl == 10 && !memcmp(name, ":authority", 10)) {
            s->a_off = off, s->a_len = vl, s->has_authority = 1;
        } else if (nl == 7 && !memcmp(name, ":scheme", 7)) {
            s->scheme_https = sy__ieq((const char *)value, vl, "https");
        } else if (nl == 9 && !memcmp(name, ":protocol", 9)) {
            s->pr_off = off, s->pr_len = vl, s->has_protocol = 1;
        }
        return 0;
    }
    if (r->nheaders >= r->headers_cap) {
        s->head_err = 431;
        s->head_detail = "too many header fields";
        return 0;
    }
    size_t voff;
    if (hb_append(r, name, nl, &off) < 0 || hb_append(r, value, vl, &voff) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    /* Offsets for now: the buffer may still move. sy__h2_on_head turns them into pointers. */
    sy_field *f = &r->headers[r->nheaders++];
    f->name = (const char *)(uintptr_t)off;
    f->name_len = nl;
    f->value = (const char *)(uintptr_t)voff;
    f->value_len = vl;
    return 0;
}

/* Answer the request ourselves (an error found in the head or body). */
static void answer(h2_stream *s, int status, const char *detail)
{
    sy_req *r = s->req;
    if (r->resp_started)
        return;
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, sy__status_text(status),
                     detail ? detail : "");
    r->detail = detail;
    sy__log(SY_LOG_INFO, "%s: HTTP/2 stream %d: %d: %s", sy__bs_peer(s->h->bs), (int)s->id, status,
            detail ? detail : "");
    sy_respond(r, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static int parse_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (!n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* HTTP/2 may split Cookie into one field per crumb (RFC 9113 §8.2.3); handlers read one
 * Cookie, as in HTTP/1.1: join them with "; " into the first. Works on offsets (before
 * finish_head turns them into pointers), so the buffer may move. */
static void join_cookies(sy_req *r)
{
    size_t first = SIZE_MAX, total = 0, count = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const sy_field *f = &r->headers[i];
        if (f->name_len == 6 && !memcmp(r->hbuf + (uintptr_t)f->name, "cookie", 6)) {
            first = first == SIZE_MAX ? i : first;
            total += f->value_len + 2;
            count++;
        }
    }
    if (count < 2)
        return;
    if (r->head_len + total > r->hbuf_cap) {
        /* Room first: the crumbs are copied from the same buffer. */
        char *nb = sy__realloc(r->hbuf, r->head_len + total);
        if (!nb)
            return; /* no memory: leave the crumbs as they are */
        r->hbuf = nb;
        r->hbuf_cap = r->head_len + total;
    }
    size_t start = r->head_len;
    char *o = r->hbuf + start;
    for (size_t i = first, k = 0; i < r->nheaders;) {
        sy_field *f = &r->headers[i];
        if (!(f->name_len == 6 && !memcmp(r->hbuf + (uintptr_t)f->name, "cookie", 6))) {
            i++;
            continue;
        }
        if (k++) {
            memcpy(o, "; ", 2);
            o += 2;
        }
        memcpy(o, r->hbuf + (uintptr_t)f->value, f->value_len);
        o += f->value_len;
        if (i == first) {
            i++;
            continue;
        }
        memmove(f, f + 1, (r->nheaders - i - 1) * sizeof(*f));
        r->nheaders--;
    }
    *o = '\0'; /* room: total counted "; " for the first crumb too */
    r->headers[first].value = (const char *)(uintptr_t)start;
    r->headers[first].value_len = (size_t)(o - r->hbuf) - start;
    r->head_len = (size_t)(o - r->hbuf) + 1;
}

static void finish_head(h2_stream *s)
{
    sy_req *r = s->req;
    join_cookies(r);
    const char *base = r->hbuf;
    for (size_t i = 0; i < r->nheaders; i++) {
        r->headers[i].name = base + (uintptr_t)r->headers[i].name;
        r->headers[i].value = base + (uintptr_t)r->headers[i].value;
    }
    r->method = s->has_method ? base + s->m_off : "";
    r->method_len = s->has_method ? s->m_len : 0;
    /* CONNECT has no :path; its target is the authority (RFC 9113 §8.5). */
    if (s->has_path) {
        r->target = base + s->p_off;
        r->target_len = s->p_len;
    } else {
        r->target = s->has_authority ? base + s->a_off : "";
        r->target_len = s->has_authority ? s->a_len : 0;
    }
    /* Handlers read the host from Host, as in HTTP/1.1: :authority stands in for it. */
    int n = 0;
    sy_field_find(r->headers, r->nheaders, "host", &n);
    if (!n && s->has_authority && r->nheaders < r->headers_cap) {
        sy_field *f = &r->headers[r->nheaders++];
        f->name = "host";
        f->name_len = 4;
        f->value = base + s->a_off;
        f->value_len = s->a_len;
    }
    r->head_base = r->hbuf;
    r->pinned = 1; /* the head lives in the request already */
    r->head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    s->head_done = 1;
}

/* The host of the request, from :authority or Host (RFC 9113 §8.3.1): each must be a valid,
 * non-empty uri-host[:port] without userinfo, there is at most one Host, and when both are there
 * they must name the same host (compared case-insensitively, a missing port meaning the scheme's
 * default). Otherwise the request could show one host to whatever routed it on :authority
 * and another to the handler, which reads Host. Returns why the request is malformed, or
 * NULL. After finish_head: fields are pointers. */
static const char *authority_check(const h2_stream *s)
{
    const sy_req *r = s->req;
    int n = 0;
    const sy_field *host = sy_field_find(r->headers, r->nheaders, "host", &n);
    const char *a = r->hbuf + s->a_off;
    if (n > 1)
        return "more than one Host header field";
    /* "If these header fields are present, they MUST NOT be empty", nor name an empty host
     * (":80"; RFC 9110 §4.2.1 for http and https). */
    if (s->has_authority && (!sy_field_host_valid(a, s->a_len) || !s->a_len || a[0] == ':'))
        return "invalid or empty :authority (or userinfo in it)";
    if (host && (!sy_field_host_valid(host->value, host->value_len) || !host->value_len ||
                 host->value[0] == ':'))
        return "invalid or empty Host header field value";
    if (s->has_authority && host && host->value != a &&
        !sy_field_host_same(a, s->a_len, host->value, host->value_len,
                            s->scheme_https ? "443" : "80"))
        return "Host header field names another host than :authority";
    return NULL;
}

/* A malformed request (RFC 9113 §8.1.1): stream error PROTOCOL_ERROR, never dispatched. */
static void malformed(h2_conn *h, h2_stream *s, const char *why)
{
    sy__log(SY_LOG_INFO, "%s: HTTP/2 stream %d: malformed request: %s", sy__bs_peer(h->bs),
            (int)s->id, why);
    s->discard = 1;
    s->req->resp_done = 1;
    nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_PROTOCOL_ERROR);
    sy__h2_schedule(h);
}

static void run(h2_stream *s)
{
    sy__http_dispatch(s->req);
}

void sy__h2_on_head(h2_conn *h, h2_stream *s, int end_stream)
{
    sy_req *r = s->req;
    if (!r || s->head_done)
        return;
    finish_head(s);
    if (end_stream) {
        s->in_end = 1;
        r->body_complete = 1;
    }
    if (s->head_err) {
        answer(s, s->head_err, s->head_detail);
        return;
    }
    const char *why = authority_check(s);
    if (why) {
        malformed(h, s, why);
        return;
    }
    if (r->method_len == 7 && !memcmp(r->method, "CONNECT", 7)) {
        if (s->has_protocol) {
            sy__h2_connect(h, s);
            return;
        }
        answer(s, 501, "CONNECT is not supported: this server is not a proxy");
        return;
    }
    const char *detail = NULL;
    int e = sy__req_decode_target(r, &detail);
    if (e < 0) {
        answer(s, e == SY_ENOMEM ? 500 : 400, detail);
        return;
    }
    if (sy__http_route(r)) {
        sy__http_respond_405(r);
        return;
    }
    int n = 0;
    const sy_field *cl = sy_field_find(r->headers, r->nheaders, "content-length", &n);
    uint64_t len;
    if (cl && parse_length(cl->value, cl->value_len, &len) == 0 && len > h2_cfg(h)->max_body) {
        answer(s, 413, "request body larger than the server accepts");
        return;
    }
    if (r->body_complete) {
        run(s);
        return;
    }
    if (sy__http_streams_body(r)) {
        /* Streamed: the handler runs now and receives the body through sy_req_on_body. */
        sy__http_call_handler(r);
        return;
    }
    s->buffering = 1;
}

void sy__h2_on_data(h2_conn *h, h2_stream *s, const uint8_t *data, size_t len)
{
    sy_req *r = s->req;
    s->consume_owed += len;
    if (!r || !s->head_done || s->discard || r->resp_done)
        return;
    r->body_received += len;
    if (r->body_fn || sy__http_streams_body(r)) {
        if (r->body_fn && len && !r->body_end_sent)
            r->body_fn(r, data, len, 0, 0, r->body_ud);
        return;
    }
    uint64_t max = h2_cfg(h)->max_body;
    if (r->body_len + len > max) {
        s->buffering = 0;
        answer(s, 413, "request body too large");
        return;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = SY_MAX(r->body_cap * 2, SY_MAX(r->body_len + len, 4096));
        if (cap > max)
            cap = (size_t)max;
        uint8_t *nb = sy__realloc(r->body, cap);
        if (!nb) {
            s->buffering = 0;
            answer(s, 500, "out of memory for the request body");
            return;
        }
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    s->body_counted += len;
    h->body_bytes += len;
}

void sy__h2_on_end_stream(h2_conn *h, h2_stream *s)
{
    sy_req *r = s->req;
    (void)h;
    s->in_end = 1;
    if (s->kind == H2S_TUNNEL) {
        sy__h2_tunnel_eof(s);
        return;
    }
    if (!r || !s->head_done || r->body_complete)
        return;
    r->body_complete = 1;
    if (s->buffering) {
        s->buffering = 0;
        if (!r->resp_started && !s->discard)
            run(s);
        return;
    }
    if (!s->discard)
        sy__req_body_end(r);
}

void sy__h2_stream_release(h2_conn *h, h2_stream *s, int err)
{
    sy_req *r = s->req;
    if (!r)
        return;
    h->body_bytes -= s->body_counted;
    s->body_counted = 0;
    /* As for HTTP/1 when its connection goes: a handler still working on the request learns
     * it is gone (its writes fail from here on), and the request outlives the stream as an
     * orphan until the handler's final call. */
    sy__req_body_fail(r, err);
    if (r->resp_started && !r->resp_done && r->drain_fn) {
        void (*fn)(sy_req *, void *) = r->drain_fn;
        r->drain_fn = NULL;
        fn(r, r->drain_ud);
    }
    s->req = NULL;
    sy__req_release(h->w, r);
}

/* ---- h2c: the upgraded request on stream 1 ---- */

void sy__h2_upgrade_request(h2_conn *h, const sy_req *src)
{
    h2_stream *s;
    if (sy__h2_on_begin_request(h, 1) != 0 ||
        !(s = nghttp2_session_get_stream_user_data(h->ng, 1)) || !s->req) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, 1, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    char lname[256];
    sy__h2_on_header(h, s, (const uint8_t *)":method", 7, (const uint8_t *)src->method,
                     src->method_len);
    sy__h2_on_header(h, s, (const uint8_t *)":path", 5, (const uint8_t *)src->target,
                     src->target_len);
    for (size_t i = 0; i < src->nheaders; i++) {
        const sy_field *f = &src->headers[i];
        if (connection_specific(f->name, f->name_len) || f->name_len >= sizeof(lname) ||
            sy__ieq(f->name, f->name_len, "http2-settings") || sy__ieq(f->name, f->name_len, "te"))
            continue;
        for (size_t k = 0; k < f->name_len; k++) {
            char c = f->name[k];
            lname[k] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        if (sy__ieq(f->name, f->name_len, "host"))
            sy__h2_on_header(h, s, (const uint8_t *)":authority", 10, (const uint8_t *)f->value,
                             f->value_len);
        sy__h2_on_header(h, s, (const uint8_t *)lname, f->name_len, (const uint8_t *)f->value,
                         f->value_len);
    }
    sy_req *r = s->req;
    if (src->body_len) {
        r->body = sy__malloc(src->body_len);
        if (!r->body) {
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
            return;
        }
        memcpy(r->body, src->body, src->body_len);
        r->body_len = r->body_cap = src->body_len;
    }
    r->body_received = src->body_received;
    r->start_us = src->start_us;
    sy__h2_on_head(h, s, 1);
}

/* ---- the response (sy_req_ops) ---- */

static int stream_gone(const h2_stream *s)
{
    return s->closed || s->h->closed || s->cancelled;
}

int sy__h2_submit_head(h2_stream *s, int status, int has_len, uint64_t body_len, int with_body)
{
    h2_conn *h = s->h;
    sy_req *r = s->req;
    size_t lines = 0;
    for (size_t i = 0; i < r->rh_len; i++)
        lines += r->rh[i] == '\n';
    nghttp2_nv stack_nv[24];
    nghttp2_nv *nva =
        lines + 4 <= SY_ARRAY_LEN(stack_nv) ? stack_nv : sy__malloc((lines + 4) * sizeof(*nva));
    char *names = r->rh_len ? sy__malloc(r->rh_len) : NULL;
    if (!nva || (r->rh_len && !names)) {
        if (nva != stack_nv)
            sy__free(nva);
        sy__free(names);
        return SY_ENOMEM;
    }
    size_t n = 0;
    char st[4] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                  (char)('0' + status % 10), 0};
    char cl[24];
#define NV(nm, nlen, v, vlen)                                                                      \
    nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), (nlen), (vlen), NGHTTP2_NV_FLAG_NONE}
    NV(":status", 7, st, 3);
    NV("server", 6, "switchyard", 10);
    size_t dl;
    const char *date = sy__loop_date(h->bs->loop, &dl); /* "Date: ...\r\n" */
    if (dl > 8)
        NV("date", 4, date + 6, dl - 8);
    /* The application's fields ("Name: value\r\n"), names lowercased (RFC 9113 §8.2). */
    size_t i = 0;
    while (i < r->rh_len) {
        const char *line = r->rh + i;
        const char *end = memchr(line, '\n', r->rh_len - i);
        size_t ll = (size_t)(end - line) + 1;
        const char *colon = memchr(line, ':', ll);
        i += ll;
        if (!colon)
            continue;
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 2;
        size_t vl = (size_t)(end - 1 - v);
        if (connection_specific(line, nl))
            continue;
        char *lo = names + (line - r->rh);
        for (size_t k = 0; k < nl; k++)
            lo[k] = line[k] >= 'A' && line[k] <= 'Z' ? (char)(line[k] + 32) : line[k];
        NV(lo, nl, v, vl);
    }
    if (has_len && !r->has_content_length && status != 204 && status != 304) {
        int cn = snprintf(cl, sizeof(cl), "%llu", (unsigned long long)body_len);
        NV("content-length", 14, cl, (size_t)cn);
    }
#undef NV
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = sy__h2_data_read};
    int rv = nghttp2_submit_response(h->ng, s->id, nva, n, with_body ? &prd : NULL);
    if (nva != stack_nv)
        sy__free(nva);
    sy__free(names);
    if (rv != 0)
        return rv == NGHTTP2_ERR_NOMEM ? SY_ENOMEM : SY_ECLOSED;
    s->submitted = (uint8_t)with_body;
    sy__h2_schedule(h);
    return 0;
}

static int h2_start(sy_req *r, int status, int has_len, uint64_t body_len)
{
    h2_stream *s = r->proto;
    if (r->resp_started)
        return SY_ESTATE;
    if (stream_gone(s))
        return SY_ECLOSED;
    if (status < 200 || status > 999)
        return SY_EINVAL;
    r->resp_started = 1;
    r->status = status;
    s->resp_left = has_len ? body_len : UINT64_MAX;
    int bodyless = r->head_only || status == 204 || status == 304 || (has_len && !body_len);
    return sy__h2_submit_head(s, status, has_len, body_len, !bodyless);
}

static int h2_write(sy_req *r, const void *data, size_t len)
{
    h2_stream *s = r->proto;
    if (stream_gone(s))
        return SY_ECLOSED;
    if (!len)
        return 0;
    if (s->resp_left != UINT64_MAX) {
        if (len > s->resp_left)
            return SY_ERANGE; /* more than the Content-Length announced */
        s->resp_left -= len;
    }
    r->resp_bytes += len;
    if (!s->submitted)
        return 0; /* HEAD, 204, 304: no body on the wire */
    if (s->h->out_mem + len > H2_OUT_HARD)
        return SY_ELIMIT; /* the peer takes nothing and the handler ignores backpressure */
    int e = sy__h2_outq_write(s->h, &s->out, data, len);
    if (e)
        return e;
    sy__h2_kick(s);
    return 0;
}

static int h2_sendfile(sy_req *r, int fd, off_t off, size_t len)
{
    h2_stream *s = r->proto;
    if (stream_gone(s)) {
        close(fd);
        return SY_ECLOSED;
    }
    if (s->resp_left != UINT64_MAX) {
        if (len > s->resp_left) {
            close(fd);
            return SY_ERANGE;
        }
        s->resp_left -= len;
    }
    r->resp_bytes += len;
    if (!s->submitted || !len) {
        close(fd);
        return 0;
    }
    int e;
    if (len <= 16384) {
        /* A small file goes out in one frame anyway: read it now and close the descriptor. */
        size_t got;
        uint8_t *p = sy__h2_outq_reserve(s->h, &s->out, len, &got);
        ssize_t n = p && got >= len ? pread(fd, p, len, off) : -1;
        if (n == (ssize_t)len) {
            sy__h2_outq_commit(s->h, &s->out, len);
            close(fd);
            sy__h2_kick(s);
            return 0;
        }
    }
    e = outq_file(&s->out, fd, off, len);
    if (e)
        return e;
    sy__h2_kick(s);
    return 0;
}

/* Reset the stream: the response cannot be completed. */
static void cancel(h2_stream *s)
{
    if (s->cancelled || s->closed || s->h->closed)
        return;
    s->cancelled = 1;
    s->discard = 1;
    sy__h2_outq_clear(s->h, &s->out);
    nghttp2_submit_rst_stream(s->h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    sy__h2_schedule(s->h);
}

static int h2_end(sy_req *r)
{
    h2_stream *s = r->proto;
    if (r->resp_done)
        return SY_ESTATE;
    r->resp_done = 1;
    if (stream_gone(s))
        return SY_ECLOSED;
    sy__access_log_req(r, r->status);
    if (s->submitted && s->resp_left != UINT64_MAX && s->resp_left && !r->head_only) {
        cancel(s); /* fewer bytes than announced: the client must not take it as complete */
        return 0;
    }
    s->out_end = 1;
    if (!s->in_end) {
        /* Answered before the body was in: the rest of it is not wanted. */
        s->discard = 1;
        s->reset_after = 1;
        s->buffering = 0;
    }
    sy__h2_kick(s);
    return 0;
}

static void h2_abort(sy_req *r, int err)
{
    h2_stream *s = r->proto;
    (void)err;
    r->resp_done = 1;
    cancel(s);
}

static size_t h2_buffered_op(const sy_req *r)
{
    return sy__h2_buffered(r->proto);
}

static int h2_want_drain(sy_req *r)
{
    h2_stream *s = r->proto;
    if (stream_gone(s) || s->h->dying)
        return SY_ECLOSED;
    s->drain_wanted = 1;
    s->drain_seq = s->h->frames_sent;
    sy__h2_schedule(s->h);
    return 0;
}

const sy_req_ops sy__h2_req_ops = {h2_buffered_op, h2_want_drain, h2_start, h2_write,
                                   h2_sendfile,    h2_end,        h2_abort};
