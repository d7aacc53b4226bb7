/* RFC 8441: extended CONNECT runs an upgradable protocol (WebSocket) on one HTTP/2 stream.
 *
 * The request goes through the same plug-in interface as an HTTP/1.1 Upgrade: the route's
 * entry for :protocol, its check hook, then proto->open on a sy_bstream that this file
 * implements on top of the stream, answered with 200 instead of 101. Mapping:
 *  - DATA in -> proto->on_read. What it does not consume (and everything while it paused
 *    reading) waits here, and its window credit is given back only once consumed, so a peer
 *    cannot send more than its stream window ahead of the protocol: HTTP/2 flow control is
 *    the backpressure, as TCP is on a connection.
 *  - writes -> the stream's output queue -> DATA as the peer's windows allow; buffered is
 *    that queue, on_drain fires when it falls to the low-water mark.
 *  - close: SY_CLOSE_NOW resets the stream (RST_STREAM CANCEL); a flushing close ends it
 *    (END_STREAM after the queue) and waits for the peer's END_STREAM, a linger bounded by
 *    LINGER_MS, then RST_STREAM NO_ERROR.
 *  - the peer's END_STREAM -> proto->on_eof; RST_STREAM or the connection's end -> on_close.
 *  - one timer per tunnel, as a connection has. */
#include "http2/h2.h"
#include "core/log.h"
#include "http/access.h"
#include "http/upgrade.h"

#include <stdio.h>

#define LINGER_MS 2000

typedef struct h2_tunnel {
    sy_bstream bs;
    h2_stream *s;
    sy_timer timer;
    uint8_t *in; /* DATA the protocol has not consumed yet */
    size_t in_len, in_cap;
    uint32_t max_pending, low_water;
    uint64_t bytes_in, bytes_out, sent;
    uint8_t state;        /* SY_BS_OPEN, SY_BS_FLUSHING, SY_BS_CLOSED */
    uint8_t paused;       /* the protocol paused reading */
    uint8_t drain_wanted; /* call on_drain at the low-water mark */
    uint8_t eof_told;     /* proto->on_eof was called */
    uint8_t lingering;    /* our END_STREAM went out: waiting for the peer's */
} h2_tunnel;

static h2_tunnel *tun_of(sy_bstream *bs)
{
    return sy_container_of(bs, h2_tunnel, bs);
}

static const h2_tunnel *ctun_of(const sy_bstream *bs)
{
    return sy_container_of(bs, h2_tunnel, bs);
}

static int gone(const h2_tunnel *t)
{
    return !t->s || t->s->closed || t->s->h->closed;
}

/* ---- input ---- */

/* Offer data to the protocol (it may switch protocols midway, like a connection's). Returns
 * what was consumed. */
static size_t deliver(h2_tunnel *t, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && t->state == SY_BS_OPEN && !t->paused && t->bs.proto) {
        const sy_bstream_proto *p = t->bs.proto;
        ssize_t n = p->on_read(&t->bs, (uint8_t *)data + off, len - off);
        if (n < 0) {
            sy__bs_close(&t->bs, (int)n, SY_CLOSE_NOW);
            return len;
        }
        off += (size_t)n;
        if (t->bs.proto == p)
            break;
    }
    if (t->state != SY_BS_OPEN)
        off = len; /* closing: the rest is dropped */
    if (t->s)
        t->s->consume_owed += off; /* window credit for what the protocol took */
    return off;
}

static int keep(h2_tunnel *t, const uint8_t *data, size_t len)
{
    if (t->in_len + len > t->max_pending + (64u << 10)) {
        /* More than the protocol allows pending plus one window: the peer ignored flow
         * control, or the protocol stopped consuming. */
        sy__bs_close(&t->bs, SY_ELIMIT, SY_CLOSE_NOW);
        return -1;
    }
    if (t->in_len + len > t->in_cap) {
        size_t cap = SY_MAX(t->in_cap * 2, SY_MAX(t->in_len + len, 4096));
        uint8_t *n = sy__realloc(t->in, cap);
        if (!n) {
            sy__bs_close(&t->bs, SY_ENOMEM, SY_CLOSE_NOW);
            return -1;
        }
        t->in = n;
        t->in_cap = cap;
    }
    memcpy(t->in + t->in_len, data, len);
    t->in_len += len;
    return 0;
}

void sy__h2_tunnel_data(h2_stream *s, const uint8_t *data, size_t len)
{
    h2_tunnel *t = s->tun;
    if (!t || t->state != SY_BS_OPEN) {
        s->consume_owed += len;
        return;
    }
    t->bytes_in += len;
    if (t->in_len || t->paused) {
        keep(t, data, len);
        return;
    }
    size_t n = deliver(t, data, len);
    if (n < len && t->state == SY_BS_OPEN)
        keep(t, data + n, len - n);
}

void sy__h2_tunnel_eof(h2_stream *s)
{
    sy__h2_schedule(s->h); /* told in the send pass, after any input still waiting */
}

/* The send pass: pending input (if the protocol reads), then the peer's end. */
void sy__h2_tunnel_flush(h2_stream *s)
{
    h2_tunnel *t = s->tun;
    if (!t || t->state != SY_BS_OPEN)
        return;
    if (t->in_len && !t->paused) {
        size_t n = deliver(t, t->in, t->in_len);
        if (t->in && n < t->in_len)
            memmove(t->in, t->in + n, t->in_len - n);
        t->in_len -= SY_MIN(n, t->in_len);
        if (!t->in_len) {
            sy__free(t->in);
            t->in = NULL;
            t->in_cap = 0;
        }
    }
    if (s->in_end && !t->in_len && !t->eof_told && t->state == SY_BS_OPEN && t->bs.proto) {
        t->eof_told = 1;
        if (t->bs.proto->on_eof)
            t->bs.proto->on_eof(&t->bs);
        else
            sy__bs_close(&t->bs, 0, SY_CLOSE_FLUSH);
    }
}

int sy__h2_tunnel_drain(h2_stream *s)
{
    h2_tunnel *t = s->tun;
    if (!t || !t->drain_wanted || s->out.bytes > t->low_water || t->state == SY_BS_CLOSED)
        return 0;
    t->drain_wanted = 0;
    if (t->bs.proto && t->bs.proto->on_drain)
        t->bs.proto->on_drain(&t->bs);
    return 1;
}

void sy__h2_tunnel_sent(h2_stream *s)
{
    (void)s;
}

void sy__h2_tunnel_ended(h2_stream *s)
{
    h2_tunnel *t = s->tun;
    if (t && t->state == SY_BS_FLUSHING && !t->lingering) {
        /* Our side is done; the peer's END_STREAM closes the stream. Don't wait forever. */
        t->lingering = 1;
        sy__timer_start(t->bs.loop, &t->timer, t->bs.loop->now_ms + LINGER_MS);
    }
}

void sy__h2_tunnel_shutdown(h2_stream *s)
{
    h2_tunnel *t = s->tun;
    if (t && t->state == SY_BS_OPEN && t->bs.proto && t->bs.proto->on_shutdown)
        t->bs.proto->on_shutdown(&t->bs);
}

/* ---- the byte-stream ops ---- */

static int tun_write(sy_bstream *bs, const void *data, size_t len)
{
    h2_tunnel *t = tun_of(bs);
    if (t->state != SY_BS_OPEN || gone(t))
        return SY_ECLOSED;
    int e = sy__h2_outq_write(t->s->h, &t->s->out, data, len);
    if (e)
        return e;
    t->bytes_out += len;
    sy__h2_kick(t->s);
    return 0;
}

static int tun_write_ref(sy_bstream *bs, const void *data, size_t len,
                         void (*free_fn)(const void *data, void *ud), void *ud)
{
    /* Copied into the stream's queue (DATA frames are cut to the peer's windows anyway). */
    int e = tun_write(bs, data, len);
    if (free_fn)
        free_fn(data, ud);
    return e;
}

static uint8_t *tun_reserve(sy_bstream *bs, size_t want, size_t *got)
{
    h2_tunnel *t = tun_of(bs);
    if (gone(t))
        return NULL;
    return sy__h2_outq_reserve(t->s->h, &t->s->out, want, got);
}

static void tun_commit(sy_bstream *bs, size_t n)
{
    h2_tunnel *t = tun_of(bs);
    if (gone(t) || t->state != SY_BS_OPEN)
        return; /* what was built is dropped with the queue */
    sy__h2_outq_commit(t->s->h, &t->s->out, n);
    t->bytes_out += n;
    sy__h2_kick(t->s);
}

static size_t tun_buffered(const sy_bstream *bs)
{
    const h2_tunnel *t = ctun_of(bs);
    return gone(t) ? 0 : t->s->out.bytes;
}

static void tun_want_drain(sy_bstream *bs)
{
    h2_tunnel *t = tun_of(bs);
    t->drain_wanted = 1;
    if (!gone(t))
        sy__h2_schedule(t->s->h);
}

static void tun_pause(sy_bstream *bs)
{
    tun_of(bs)->paused = 1;
}

static void tun_resume(sy_bstream *bs)
{
    h2_tunnel *t = tun_of(bs);
    if (!t->paused)
        return;
    t->paused = 0;
    if (!gone(t))
        sy__h2_schedule(t->s->h); /* pending input goes in the send pass */
}

static void tun_set_timeout(sy_bstream *bs, uint64_t ms)
{
    h2_tunnel *t = tun_of(bs);
    if (t->state != SY_BS_OPEN)
        return; /* the close owns the timer now */
    if (!ms)
        sy__timer_stop(bs->loop, &t->timer);
    else
        sy__timer_start(bs->loop, &t->timer, bs->loop->now_ms + ms);
}

static void tun_close(sy_bstream *bs, int err, int how)
{
    h2_tunnel *t = tun_of(bs);
    if (t->state == SY_BS_CLOSED || (t->state == SY_BS_FLUSHING && how != SY_CLOSE_NOW))
        return;
    if (gone(t)) {
        t->state = SY_BS_CLOSED;
        return;
    }
    h2_stream *s = t->s;
    if (how == SY_CLOSE_NOW) {
        t->state = SY_BS_CLOSED;
        sy__timer_stop(bs->loop, &t->timer);
        sy__h2_outq_clear(s->h, &s->out);
        nghttp2_submit_rst_stream(s->h->ng, NGHTTP2_FLAG_NONE, s->id,
                                  err ? NGHTTP2_CANCEL : NGHTTP2_NO_ERROR);
        sy__h2_schedule(s->h);
        return;
    }
    /* Flush, then END_STREAM; a queue the peer never takes is cut by the write timeout. */
    t->state = SY_BS_FLUSHING;
    s->out_end = 1;
    uint64_t wt = h2_cfg(s->h)->write_timeout_ms;
    sy__timer_start(bs->loop, &t->timer, bs->loop->now_ms + (wt ? wt : 30000));
    sy__h2_kick(s);
}

static int tun_state(const sy_bstream *bs)
{
    const h2_tunnel *t = ctun_of(bs);
    return gone(t) ? SY_BS_CLOSED : t->state;
}

static void tun_set_limits(sy_bstream *bs, uint32_t max_pending_input, uint32_t low_water)
{
    h2_tunnel *t = tun_of(bs);
    t->max_pending = max_pending_input;
    t->low_water = low_water;
}

static uint64_t tun_delivered(const sy_bstream *bs)
{
    const h2_tunnel *t = ctun_of(bs);
    return t->bytes_out - (gone(t) ? 0 : SY_MIN(t->bytes_out, t->s->out.bytes));
}

static void tun_counts(const sy_bstream *bs, uint64_t *in, uint64_t *out)
{
    const h2_tunnel *t = ctun_of(bs);
    *in = t->bytes_in;
    *out = t->bytes_out;
}

static const char *tun_peer(const sy_bstream *bs)
{
    const h2_tunnel *t = ctun_of(bs);
    return t->s ? sy__bs_peer(t->s->h->bs) : "-";
}

static const sy_bstream_ops tun_ops = {
    tun_write,     tun_write_ref, tun_reserve,     tun_commit, tun_buffered, tun_want_drain,
    tun_pause,     tun_resume,    tun_set_timeout, tun_close,  tun_state,    tun_set_limits,
    tun_delivered, tun_counts,    tun_peer,        NULL,       NULL,         NULL,
};

static void tun_timer(sy_timer *tm)
{
    h2_tunnel *t = sy_container_of(tm, h2_tunnel, timer);
    if (t->state != SY_BS_OPEN) {
        /* The flush or the linger ran out: end the stream now. */
        if (!gone(t)) {
            nghttp2_submit_rst_stream(t->s->h->ng, NGHTTP2_FLAG_NONE, t->s->id,
                                      t->lingering ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
            sy__h2_schedule(t->s->h);
        }
        t->state = SY_BS_CLOSED;
        return;
    }
    if (t->bs.proto && t->bs.proto->on_timer)
        t->bs.proto->on_timer(&t->bs);
    else
        sy__bs_close(&t->bs, SY_ETIMEDOUT, SY_CLOSE_NOW);
}

void sy__h2_tunnel_release(h2_stream *s, int err)
{
    h2_tunnel *t = s->tun;
    if (s->req) {
        sy_req *r = s->req;
        s->req = NULL;
        sy__req_release(s->h->w, r);
    }
    if (!t)
        return;
    const sy_bstream_proto *p = t->bs.proto;
    t->bs.proto = NULL;
    t->state = SY_BS_CLOSED;
    if (p && p->on_close)
        p->on_close(&t->bs, err);
    sy__timer_stop(t->bs.loop, &t->timer);
    sy__timer_release(t->bs.loop, 1);
    sy__free(t->in);
    sy__free(t);
    s->tun = NULL;
}

/* ---- extended CONNECT ---- */

static void refuse(sy_req *r, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, sy__status_text(status), why);
    r->detail = why;
    sy_respond(r, status, "text/plain; charset=utf-8", body, (size_t)n);
}

void sy__h2_connect(h2_conn *h, h2_stream *s)
{
    sy_req *r = s->req;
    const char *tok = r->hbuf + s->pr_off;
    size_t tl = s->pr_len;
    const char *detail = NULL;
    if (sy__req_decode_target(r, &detail) < 0) {
        refuse(r, 400, detail ? detail : "bad :path");
        return;
    }
    int mismatch = 0;
    r->route = sy__route_match(h->conf, r->path, r->path_len, "GET", 3, &mismatch);
    sy__upgrade_note_request(r, tok, tl); /* the upgrade funnel: requested */
    if (!r->route) {
        refuse(r, 404, "no such resource");
        return;
    }
    const sy_upgrade_entry *e = NULL;
    for (size_t k = 0; k < r->route->nupgrades && !e; k++)
        if (sy__upgrade_matches(&r->route->upgrades[k], tok, tl))
            e = &r->route->upgrades[k];
    if (!e) {
        refuse(r, 501, "this resource does not speak the requested :protocol");
        return;
    }
    const char *reason = NULL;
    int v = sy__upgrade_check(r, e, tok, tl, &reason);
    if (v == SY_UPGRADE_DECLINE) {
        refuse(r, 400, "the protocol declined this request");
        return;
    }
    if (v != SY_UPGRADE_ACCEPT) {
        sy__upgrade_refuse(r, v, reason);
        return;
    }
    h2_tunnel *t = sy__calloc(1, sizeof(*t));
    if (!t || sy__timer_reserve(h->bs->loop, 1) < 0) {
        sy__free(t);
        refuse(r, 503, "out of memory");
        return;
    }
    t->s = s;
    t->bs.ops = &tun_ops;
    t->bs.loop = h->bs->loop;
    t->timer.cb = tun_timer;
    t->max_pending = 1u << 16;
    t->low_water = H2_STREAM_LOW;
    /* 200 instead of 101, with what the check hook added (RFC 8441 §5); the stream stays
     * open in both directions. */
    r->resp_started = 1;
    r->status = 200;
    if (sy__h2_submit_head(s, 200, 0, 0, 1) < 0) {
        sy__timer_release(t->bs.loop, 1);
        sy__free(t);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    r->resp_done = 1;
    s->kind = H2S_TUNNEL;
    s->tun = t;
    if (tl == 9 && !memcmp(tok, "websocket", 9))
        r->protocol = "ws-over-h2";
    sy_uplog *log = sy__uplog_begin(r, e, tok, tl);
    int err = log ? e->proto->open(&t->bs, r, e, log) : SY_ENOMEM;
    /* The request was needed only for the switch. */
    s->req = NULL;
    sy__req_release(h->w, r);
    if (err < 0 || !t->bs.proto) {
        t->bs.proto = NULL;
        tun_close(&t->bs, err < 0 ? err : SY_EINTERNAL, SY_CLOSE_NOW);
    }
}
