/* The HTTP/2 connection: an nghttp2 server session on a sy_bstream.
 *
 * Input: every read goes to nghttp2_session_mem_recv at once; its callbacks build requests
 * (stream.c) and tunnels (tunnel.c). Output: nothing is sent from inside a callback or a
 * response call. They only queue (nghttp2's frames, the streams' own queues) and ask for the
 * send pass, which runs once at the end of the loop turn: it returns window credit for the
 * data the application took, lets nghttp2 write frames into the stream's write queue (DATA
 * payloads by reference: see stream.c), then tells streams whose queue drained. So all the
 * responses of one turn leave in one flush, in frames as full as the windows allow.
 *
 * Backpressure: nghttp2 writes only while the connection's queue is under H2_OUT_HIGH
 * (WOULDBLOCK otherwise; the queue's on_drain resumes it); the data provider hands out
 * only what the peer's windows allow, so a peer that does not open its window keeps the
 * responses in the streams' queues, which the application sees through sy_resp_buffered.
 * Reading stops while the connection's queue is over H2_READ_PAUSE (the peer sends requests
 * and does not read the answers).
 *
 * Errors: a connection error ends with GOAWAY (nghttp2's for protocol errors, ours for
 * floods: flood.h), flushed before the close; a stream error with RST_STREAM. */
#include "http2/h2.h"
#include "http2/server.h"
#include "http2/settings.h"
#include "core/log.h"
#include "http/access.h"

#include <stdio.h>

static ssize_t h2_on_read(sy_bstream *bs, uint8_t *data, size_t len);
static void h2_on_drain(sy_bstream *bs);
static void h2_on_eof(sy_bstream *bs);
static void h2_on_timer(sy_bstream *bs);
static void h2_on_shutdown(sy_bstream *bs);
static void h2_on_close(sy_bstream *bs, int err);

static const sy_bstream_proto h2_proto = {
    "h2", h2_on_read, h2_on_drain, h2_on_eof, h2_on_timer, h2_on_shutdown, h2_on_close, NULL,
};

/* CONTINUATION frames one header block may take: a block as large as the head limit fits in
 * a few 16 KiB frames; a stream of tiny ones is the CONTINUATION flood (CVE-2024-27316). */
#define H2_MAX_CONTINUATIONS 8

static uint64_t now_ms(const h2_conn *h)
{
    return h->bs->loop->now_ms;
}

/* ---- allocation through the library's hooks (so failmalloc tests see nghttp2's too) ---- */

static void *mem_malloc(size_t n, void *ud)
{
    (void)ud;
    return sy__malloc(n);
}

static void mem_free(void *p, void *ud)
{
    (void)ud;
    sy__free(p);
}

static void *mem_calloc(size_t c, size_t n, void *ud)
{
    (void)ud;
    return sy__calloc(c, n);
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return sy__realloc(p, n);
}

static nghttp2_mem h2_mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

/* ---- streams ---- */

h2_stream *sy__h2_stream_new(h2_conn *h, int32_t id)
{
    h2_stream *s = sy__calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->h = h;
    s->id = id;
    s->resp_left = UINT64_MAX;
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    if (h->nstreams++ == 0)
        sy__bs_set_timeout(h->bs, h2_cfg(h)->write_timeout_ms);
    nghttp2_session_set_stream_user_data(h->ng, id, s);
    sy_http_metrics *m = sy__http_metrics(h->w);
    if (m)
        sy__ctr_inc(&m->h2_streams_opened);
    return s;
}

static void stream_unlink(h2_conn *h, h2_stream *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->nstreams--;
}

/* A stream is gone (nghttp2 closed it, or the connection went): let go of what it holds. */
static void stream_free(h2_conn *h, h2_stream *s, int err)
{
    s->closed = 1;
    sy__h2_guard_closed(h, s);
    if (s->consume_owed)
        h->conn_owed += s->consume_owed; /* the stream window is gone with it */
    s->consume_owed = 0;
    if (s->kind == H2S_TUNNEL)
        sy__h2_tunnel_release(s, err);
    else
        sy__h2_stream_release(h, s, err);
    sy__h2_outq_clear(h, &s->out);
    stream_unlink(h, s);
    sy_http_metrics *m = sy__http_metrics(h->w);
    if (m)
        sy__ctr_inc(&m->h2_streams_closed);
    if (!h->closed && h->ng)
        nghttp2_session_set_stream_user_data(h->ng, s->id, NULL);
    sy__free(s);
    if (h->nstreams == 0 && !h->closed) {
        h->last_active = now_ms(h);
        uint64_t ka = h2_cfg(h)->keepalive_timeout_ms;
        sy__bs_set_timeout(h->bs, ka);
    }
}

/* ---- ending the connection ---- */

void sy__h2_fail(h2_conn *h, uint32_t code, const char *why)
{
    if (!h->dying) {
        h->dying = 1;
        sy__log(SY_LOG_INFO, "%s: HTTP/2 GOAWAY %s: %s", sy__bs_peer(h->bs),
                nghttp2_http2_strerror(code), why ? why : "");
        nghttp2_session_terminate_session(h->ng, code);
    }
    sy__bs_pause_read(h->bs);
    sy__h2_schedule(h);
}

/* A flood: GOAWAY ENHANCE_YOUR_CALM, and stop processing the input at once. */
static int flood(h2_conn *h, const char *what)
{
    h->fatal = NGHTTP2_ENHANCE_YOUR_CALM;
    h->fatal_why = "see the flood above";
    sy__log(SY_LOG_INFO, "%s: HTTP/2 flood: %s", sy__bs_peer(h->bs), what);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* ---- nghttp2 callbacks ---- */

static ssize_t cb_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    h2_conn *h = ud;
    (void)ng;
    (void)flags;
    if (sy__bs_buffered(h->bs) >= H2_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (sy__bs_write(h->bs, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static int cb_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    h2_conn *h = ud;
    (void)ng;
    if (hd->type == NGHTTP2_SETTINGS) {
        sy__h2_guard_settings_begin(h);
    } else if (hd->type == NGHTTP2_HEADERS) {
        h->cont_frames = 0;
        h->block_bytes = hd->length;
    } else if (hd->type == NGHTTP2_CONTINUATION) {
        h->block_bytes += hd->length;
        if (++h->cont_frames > H2_MAX_CONTINUATIONS ||
            h->block_bytes > 2 * h2_cfg(h)->max_head + 16384)
            return flood(h, "CONTINUATION frames beyond the header limits");
    }
    return 0;
}

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    h2_conn *h = ud;
    (void)ng;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    return sy__h2_on_begin_request(h, frame->hd.stream_id);
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    h2_conn *h = ud;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: not passed on */
    h2_stream *s = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!s)
        return 0;
    return sy__h2_on_header(h, s, name, nl, value, vl);
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    h2_conn *h = ud;
    uint64_t now = now_ms(h);
    h2_stream *s =
        frame->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id) : NULL;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!s)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            sy__h2_on_head(h, s, end);
        else if (end)
            sy__h2_on_end_stream(h, s); /* trailers end the body */
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length <= frame->data.padlen && !end &&
            sy_h2_flood_hit(&h->flood, SY_H2_EV_EMPTY_DATA, now))
            return flood(h, "empty DATA frames");
        if (s && end)
            sy__h2_on_end_stream(h, s);
        break;
    case NGHTTP2_RST_STREAM:
        if (s)
            s->peer_reset = 1;
        if (sy_h2_flood_hit(&h->flood, SY_H2_EV_RESET, now))
            return flood(h, "streams reset by the client (rapid reset)");
        break;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && sy_h2_flood_hit(&h->flood, SY_H2_EV_PING, now))
            return flood(h, "PING frames");
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            sy_h2_flood_hit(&h->flood, SY_H2_EV_SETTINGS, now))
            return flood(h, "SETTINGS frames");
        return sy__h2_guard_settings(h, &frame->settings);
    default:
        break;
    }
    return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    h2_conn *h = ud;
    (void)flags;
    h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s) {
        h->conn_owed += len;
        return 0;
    }
    if (s->kind == H2S_TUNNEL)
        sy__h2_tunnel_data(s, data, len);
    else
        sy__h2_on_data(h, s, data, len);
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    h2_conn *h = ud;
    h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);
    if (s)
        stream_free(h, s, code == NGHTTP2_NO_ERROR ? 0 : SY_ECLOSED);
    return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    h2_conn *h = ud;
    if (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)
        h->frames_sent++;
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        h2_stream *s = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (s && s->kind == H2S_TUNNEL)
            sy__h2_tunnel_ended(s);
        /* The response is complete and the request body is not wanted (answered early):
         * ask the client to stop sending it (RFC 9113 §8.1). */
        if (s && s->reset_after && !s->in_end)
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int cb_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud)
{
    h2_conn *h = ud;
    (void)ng;
    (void)code;
    sy__log(SY_LOG_DEBUG, "%s: HTTP/2: %.*s", sy__bs_peer(h->bs), (int)len, msg);
    return 0;
}

/* ---- the send pass ---- */

void sy__h2_schedule(h2_conn *h)
{
    if (!h->closed)
        sy__defer(h->bs->loop, &h->d);
}

/* Give the peer window credit back for the DATA the application took. */
static void give_credit(h2_conn *h)
{
    size_t budget = SY_MAX((size_t)h2_cfg(h)->max_body, (size_t)H2_BODY_BUDGET_MIN);
    for (h2_stream *s = h->streams; s; s = s->next) {
        if (!s->consume_owed || (s->buffering && h->body_bytes > budget))
            continue; /* buffered bodies over the budget: the peer waits */
        nghttp2_session_consume(h->ng, s->id, s->consume_owed);
        s->consume_owed = 0;
    }
    if (h->conn_owed) {
        nghttp2_session_consume_connection(h->ng, h->conn_owed);
        h->conn_owed = 0;
    }
}

/* Tell streams whose queue fell to the low-water mark. Returns how many were told.
 * A drain is an event, as on a connection: output moved since it was asked for, and the
 * queue is now low. A queue that was low already and does not move (a closed window, an
 * empty queue) does not call again and again a handler that writes nothing and asks anew:
 * that spun the loop without end. */
static int fire_drains(h2_conn *h)
{
    int n = 0;
    for (h2_stream *s = h->streams; s; s = s->next) {
        if (s->kind == H2S_TUNNEL) {
            n += sy__h2_tunnel_drain(s);
            continue;
        }
        if (!s->drain_wanted || sy__h2_buffered(s) > H2_STREAM_LOW ||
            s->drain_seq == h->frames_sent)
            continue;
        s->drain_wanted = 0;
        sy_req *r = s->req;
        if (r && r->drain_fn && !r->resp_done) {
            void (*fn)(sy_req *, void *) = r->drain_fn;
            r->drain_fn = NULL; /* one call per sy_resp_on_drain */
            fn(r, r->drain_ud);
            n++;
        }
    }
    return n;
}

static void send_pass(h2_conn *h)
{
    sy_bstream *bs = h->bs;
    if (sy__bs_state(bs) == SY_BS_CLOSED)
        return;
    give_credit(h);
    for (h2_stream *s = h->streams; s; s = s->next)
        if (s->kind == H2S_TUNNEL)
            sy__h2_tunnel_flush(s);
    for (int round = 0; round < 4; round++) {
        int rv = nghttp2_session_send(h->ng);
        if (rv < 0) {
            sy__log(SY_LOG_INFO, "%s: HTTP/2 send: %s", sy__bs_peer(bs), nghttp2_strerror(rv));
            sy__bs_close(bs, rv == NGHTTP2_ERR_NOMEM ? SY_ENOMEM : SY_EIO, SY_CLOSE_NOW);
            return;
        }
        if (h->dying || !fire_drains(h))
            break; /* drains wrote more: send it in this turn too */
    }
    int want_write = nghttp2_session_want_write(h->ng);
    if (sy__bs_state(bs) != SY_BS_OPEN)
        return;
    if ((!want_write && !nghttp2_session_want_read(h->ng)) || (h->dying && !want_write) ||
        ((h->draining || h->peer_eof) && h->nstreams == 0 && !want_write)) {
        sy__bs_close(bs, 0, SY_CLOSE_FLUSH);
        return;
    }
    size_t queued = sy__bs_buffered(bs);
    if (want_write && queued >= H2_OUT_HIGH)
        sy__bs_want_drain(bs); /* nghttp2 waits for room: on_drain sends again */
    if (queued >= H2_READ_PAUSE && !h->paused) {
        h->paused = 1;
        sy__bs_pause_read(bs);
        sy__bs_want_drain(bs);
    }
}

static void defer_cb(sy_deferred *d)
{
    h2_conn *h = sy_container_of(d, h2_conn, d);
    if (h->free_in_defer) {
        sy__free(h);
        return;
    }
    send_pass(h);
}

/* ---- the byte-stream protocol ---- */

static ssize_t h2_on_read(sy_bstream *bs, uint8_t *data, size_t len)
{
    h2_conn *h = bs->proto_data;
    if (h->dying)
        return (ssize_t)len;
    h->last_active = now_ms(h);
    ssize_t n = sy__h2_guard_recv(h, data, len);
    if (n < 0) {
        uint32_t code = h->fatal                            ? (uint32_t)h->fatal
                        : n == NGHTTP2_ERR_FLOODED          ? NGHTTP2_ENHANCE_YOUR_CALM
                        : n == NGHTTP2_ERR_NOMEM            ? NGHTTP2_INTERNAL_ERROR
                        : n == NGHTTP2_ERR_CALLBACK_FAILURE ? NGHTTP2_INTERNAL_ERROR
                                                            : NGHTTP2_PROTOCOL_ERROR;
        sy__h2_fail(h, code, h->fatal ? h->fatal_why : nghttp2_strerror((int)n));
        return (ssize_t)len;
    }
    sy__h2_schedule(h);
    return (ssize_t)len;
}

static void h2_on_drain(sy_bstream *bs)
{
    h2_conn *h = bs->proto_data;
    if (h->paused && !h->dying) {
        h->paused = 0;
        sy__bs_resume_read(bs);
    }
    sy__h2_schedule(h);
}

static void h2_on_eof(sy_bstream *bs)
{
    h2_conn *h = bs->proto_data;
    /* Nothing more arrives: finish the streams in flight (within their windows), then go. */
    h->peer_eof = 1;
    sy__h2_schedule(h);
}

/* Is anything waiting for the peer: a body still arriving, output it has not taken? */
static int waits_on_peer(const h2_conn *h)
{
    if (sy__bs_buffered(h->bs))
        return 1;
    for (const h2_stream *s = h->streams; s; s = s->next) {
        if (s->kind != H2S_REQUEST)
            continue;
        if (s->out.bytes || (!s->in_end && !s->discard && s->req && !s->req->resp_done))
            return 1;
    }
    return 0;
}

static void h2_on_timer(sy_bstream *bs)
{
    h2_conn *h = bs->proto_data;
    const sy_http_cfg *cfg = h2_cfg(h);
    uint64_t now = now_ms(h), in, out;
    if (h->dying) {
        sy__bs_close(bs, SY_ETIMEDOUT, SY_CLOSE_NOW);
        return;
    }
    if (h->nstreams == 0) {
        uint64_t ka = cfg->keepalive_timeout_ms;
        if (!ka)
            return;
        if (now - h->last_active >= ka) {
            /* Idle: say goodbye properly (GOAWAY NO_ERROR), then close. */
            nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
            h->dying = 1;
            sy__bs_set_timeout(bs, 2000);
            sy__h2_schedule(h);
            return;
        }
        sy__bs_set_timeout(bs, h->last_active + ka - now);
        return;
    }
    sy__bs_counts(bs, &in, &out);
    int moved = in != h->last_in || out != h->last_out;
    h->last_in = in;
    h->last_out = out;
    if (!moved && waits_on_peer(h)) {
        sy__log(SY_LOG_INFO, "%s: HTTP/2: nothing moved for %llu ms, closing", sy__bs_peer(bs),
                (unsigned long long)cfg->write_timeout_ms);
        sy__bs_close(bs, SY_ETIMEDOUT, SY_CLOSE_NOW);
        return;
    }
    if (cfg->write_timeout_ms)
        sy__bs_set_timeout(bs, cfg->write_timeout_ms);
}

static void h2_on_shutdown(sy_bstream *bs)
{
    h2_conn *h = bs->proto_data;
    if (h->draining || h->dying)
        return;
    /* Graceful: streams the client opened so far are finished; it opens no more here. */
    h->draining = 1;
    for (h2_stream *s = h->streams; s; s = s->next)
        if (s->kind == H2S_TUNNEL)
            sy__h2_tunnel_shutdown(s); /* WebSockets say goodbye (1001) */
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    sy__h2_schedule(h);
}

static void h2_on_close(sy_bstream *bs, int err)
{
    h2_conn *h = bs->proto_data;
    if (!h)
        return;
    h->closed = 1;
    sy_http_metrics *m = sy__http_metrics(h->w);
    if (m)
        sy__ctr_inc(&m->h2_conns_closed);
    /* Every stream goes with the connection; handlers still holding a request get SY_ECLOSED
     * from here on and their final call releases it (req.h). */
    while (h->streams)
        stream_free(h, h->streams, err ? err : SY_ECLOSED);
    nghttp2_session_del(h->ng);
    h->ng = NULL;
    bs->proto_data = NULL;
    sy__http_conf_unref(h->conf);
    h->conf = NULL;
    if (sy__deferred_queued(&h->d))
        h->free_in_defer = 1; /* the loop still holds the send pass: free it there */
    else
        sy__free(h);
}

/* ---- setup ---- */

static int any_upgrade_route(const sy_http_conf *a)
{
    for (size_t i = 0; i < a->nroutes; i++)
        if (a->routes[i]->nupgrades)
            return 1;
    return 0;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, sy__h2_data_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, cb_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cbs, cb_error);
    return cbs;
}

/* A session on bs with our SETTINGS queued; not yet installed. */
static h2_conn *h2_new(sy_bstream *bs, sy_worker *w, int mode)
{
    h2_conn *h = sy__calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->bs = bs;
    h->w = w;
    h->conf = sy__http_worker_conf(w);
    h->mode = (uint8_t)mode;
    h->d.cb = defer_cb;
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt = NULL;
    if (!cbs || nghttp2_option_new(&opt) != 0) {
        if (cbs)
            nghttp2_session_callbacks_del(cbs);
        sy__free(h);
        return NULL;
    }
    /* Window credit goes back only for data the application took (give_credit). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* A peer that makes us queue SETTINGS/PING ACKs faster than it reads them is flooding. */
    nghttp2_option_set_max_outbound_ack(opt, 100);
    nghttp2_option_set_no_closed_streams(opt, 1);
    int rv = nghttp2_session_server_new3(&h->ng, cbs, h, opt, &h2_mem);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0) {
        sy__free(h);
        return NULL;
    }
    h->connect_proto = (uint8_t)any_upgrade_route(h->conf);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         (uint32_t)SY_MIN(h->conf->cfg.max_head, UINT32_MAX)},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv,
                                SY_ARRAY_LEN(iv) - (h->connect_proto ? 0 : 1)) != 0) {
        nghttp2_session_del(h->ng);
        sy__free(h);
        return NULL;
    }
    h->last_active = bs->loop->now_ms;
    sy__http_conf_ref(h->conf);
    sy__h2_guard_init(h, mode == H2_MODE_UPGRADE);
    return h;
}

static void h2_install(h2_conn *h)
{
    sy_bstream *bs = h->bs;
    bs->proto = &h2_proto;
    bs->proto_data = h;
    sy_http_metrics *m = sy__http_metrics(h->w);
    if (m)
        sy__ctr_inc(&m->h2_conns_opened);
    /* nghttp2 consumes all input; the queue's low-water mark is where sending resumes. */
    sy__bs_set_limits(bs, 1 << 16, H2_OUT_HIGH / 2);
    /* The client's preface and first request must come in the time a request head may take. */
    sy__bs_set_timeout(bs, h2_cfg(h)->header_timeout_ms ? h2_cfg(h)->header_timeout_ms
                                                        : h2_cfg(h)->keepalive_timeout_ms);
    sy__h2_schedule(h);
}

int sy__http2_attach(sy_bstream *bs, sy_worker *w, int via)
{
    h2_conn *h = h2_new(bs, w, via == SY_H2_VIA_TLS ? H2_MODE_TLS : H2_MODE_PRIOR);
    if (!h)
        return SY_ENOMEM;
    h2_install(h);
    return 0;
}

/* ---- h2c: the Upgrade plug-in (RFC 7540 §3.2) ---- */

/* What the check hook decoded, for the opener. */
typedef struct h2c_state {
    size_t len;
    uint8_t payload[512];
} h2c_state;

int sy__h2c_check(sy_req *r, const char *token, const char **reason, void *ud)
{
    (void)token;
    (void)reason;
    (void)ud;
    /* h2c is cleartext only (RFC 7540 §3.2); over TLS, HTTP/2 is chosen by ALPN. */
    if (r->secure || r->version != 11)
        return SY_UPGRADE_DECLINE;
    int n = 0;
    const sy_field *f = sy_field_find(r->headers, r->nheaders, "http2-settings", &n);
    if (n != 1)
        return SY_UPGRADE_DECLINE;
    /* HTTP2-Settings is hop-by-hop: the client must say so (§3.2.1). */
    int listed = 0;
    for (size_t i = 0; i < r->nheaders && !listed; i++) {
        const sy_field *c = &r->headers[i];
        if (sy__ieq(c->name, c->name_len, "connection"))
            listed = sy_field_list_has(c->value, c->value_len, "http2-settings");
    }
    if (!listed)
        return SY_UPGRADE_DECLINE;
    h2c_state *st = sy__malloc(sizeof(*st));
    if (!st)
        return SY_UPGRADE_DECLINE;
    ssize_t len = sy_h2_settings_decode(f->value, f->value_len, st->payload, sizeof(st->payload));
    if (len < 0) {
        sy__free(st);
        return SY_UPGRADE_DECLINE;
    }
    st->len = (size_t)len;
    r->upgrade_state = st;
    r->upgrade_state_free = sy__free;
    return SY_UPGRADE_ACCEPT;
}

static int h2c_open(sy_bstream *bs, sy_req *r, const sy_upgrade_entry *e, sy_uplog *log)
{
    (void)e;
    const h2c_state *st = r->upgrade_state;
    h2_conn *h = st ? h2_new(bs, r->worker, H2_MODE_UPGRADE) : NULL;
    if (!h) {
        sy__uplog_end(log, bs, "memory", 0, "out of memory");
        return SY_ENOMEM;
    }
    int head = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    int rv = nghttp2_session_upgrade2(h->ng, st->payload, st->len, head, NULL);
    h2_install(h);
    /* The connection's own line: the 101 (the requests that follow log their own). */
    sy__uplog_end(log, bs, NULL, 0, NULL);
    if (rv != 0) {
        sy__h2_fail(h, NGHTTP2_INTERNAL_ERROR, "the upgraded request could not be set up");
        return 0;
    }
    /* The request that carried the upgrade is answered on stream 1 (half-closed: its body
     * came with it). */
    sy__h2_upgrade_request(h, r);
    return 0;
}

const sy_upgrade_proto sy__h2c_upgrade = {"h2c", h2c_open, NULL};
