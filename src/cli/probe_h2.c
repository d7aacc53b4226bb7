/* The HTTP/2 walks of `switchyard probe`, one per way in: h2c upgrade (HTTP/1.1 Upgrade: h2c),
 * h2c with prior knowledge, h2 via ALPN, and WebSocket over HTTP/2 (RFC 8441 extended
 * CONNECT) on whichever HTTP/2 connection works. nghttp2 is the client (it is sans-I/O too:
 * bytes in with mem_recv, bytes out with mem_send); its callbacks become events for the check
 * core (sy_probe_h2), which holds the rules. */
#include "cli/probe.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

typedef struct h2run {
    probe *P;
    sy_probe_h2 ev;
    int32_t stream; /* the stream whose answer we wait for */
    int stream_done;
    /* RFC 8441: a masked text frame and a ping to send on the CONNECT stream, and the
     * WebSocket session that reads what comes back */
    uint8_t frame[80];
    size_t frame_len, frame_off;
    int frame_ready;
    sy_probe_ws_sess ws;
    int ws_on;
    int first; /* the run's first connection: a refusal there is fatal */
} h2run;

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    h2run *r = ud;
    (void)s;
    if (f->hd.stream_id == r->stream && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA)) {
        r->stream_done = 1; /* the server's side of the stream is over */
        r->ev.stream_ended = 1;
    }
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) {
            r->ev.got_settings = 1;
            for (size_t i = 0; i < f->settings.niv; i++)
                sy_probe_h2_setting(&r->ev, (uint16_t)f->settings.iv[i].settings_id,
                                    f->settings.iv[i].value);
        }
        break;
    case NGHTTP2_GOAWAY:
        r->ev.goaway = 1;
        r->ev.goaway_code = f->goaway.error_code;
        r->ev.goaway_last = (uint32_t)f->goaway.last_stream_id;
        sy_probe_quote(r->ev.goaway_debug, sizeof(r->ev.goaway_debug), f->goaway.opaque_data,
                       f->goaway.opaque_data_len);
        break;
    case NGHTTP2_RST_STREAM:
        if (f->hd.stream_id == r->stream) {
            r->ev.rst = 1;
            r->ev.rst_code = f->rst_stream.error_code;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    h2run *r = ud;
    (void)s;
    (void)flags;
    if (f->hd.stream_id == r->stream && namelen == 7 && !memcmp(name, ":status", 7) &&
        valuelen == 3 && !r->ev.status)
        r->ev.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream, const uint8_t *data,
                   size_t len, void *ud)
{
    h2run *r = ud;
    (void)s;
    (void)flags;
    (void)data;
    if (stream == r->stream) {
        r->ev.data_bytes += len;
        if (r->ws_on && !r->ev.ws_error) {
            static uint8_t tmp[16384];
            for (size_t off = 0; off < len && !r->ws.error;) {
                size_t n = SY_MIN(len - off, sizeof(tmp));
                memcpy(tmp, data + off, n); /* the session unmasks in place */
                sy_probe_ws_sess_feed(&r->ws, tmp, n);
                off += n;
            }
            r->ev.echo_ok = r->ws.got_echo && r->ws.echo_match;
            r->ev.got_pong = r->ws.got_pong;
            if (r->ws.error) {
                r->ev.ws_error = 1;
                snprintf(r->ev.ws_error_detail, sizeof(r->ev.ws_error_detail), "%s",
                         r->ws.error_detail);
                r->ev.ws_error_hint = sy_probe_ws_sess_hint(&r->ws);
            }
        }
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t stream, uint32_t code, void *ud)
{
    h2run *r = ud;
    (void)s;
    if (stream == r->stream) {
        r->stream_done = 1;
        r->ev.stream_ended = 1;
        if (code && !r->ev.rst) {
            r->ev.rst = 1;
            r->ev.rst_code = code;
        }
    }
    return 0;
}

static int on_invalid(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    h2run *r = ud;
    (void)s;
    (void)f;
    if (!r->ev.proto_error) {
        r->ev.proto_error = 1;
        snprintf(r->ev.proto_detail, sizeof(r->ev.proto_detail), "%s", nghttp2_strerror(err));
    }
    return 0;
}

static ssize_t frame_source(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    h2run *r = ud;
    (void)s;
    (void)stream;
    (void)src;
    if (!r->frame_ready || r->frame_off == r->frame_len)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = r->frame_len - r->frame_off;
    if (n > len)
        n = len;
    memcpy(buf, r->frame + r->frame_off, n);
    r->frame_off += n;
    r->ev.echo_sent = 1;
    *flags = 0; /* the stream stays open: it is the WebSocket */
    return (ssize_t)n;
}

static nghttp2_session *new_session(h2run *r)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session *s = NULL;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid);
    nghttp2_session_client_new(&s, cb, r);
    nghttp2_session_callbacks_del(cb);
    return s;
}

/* Move bytes until done() or the deadline; stops on close or a fatal library error. */
static void run(h2run *r, nghttp2_session *s, pconn *c, double deadline, int (*done)(h2run *))
{
    static uint8_t buf[16384];
    while (!done(r)) {
        const uint8_t *out;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(s, &out)) > 0)
            if (probe_write(c, out, (size_t)n, deadline) != 0) {
                r->ev.closed = 1;
                return;
            }
        if (n < 0 || done(r))
            return;
        ssize_t got = probe_read(c, buf, sizeof(buf), deadline);
        if (got == PN_TIMEOUT) {
            r->ev.timed_out = 1;
            return;
        }
        if (got <= 0) {
            r->ev.closed = 1;
            return;
        }
        sy_probe_h2_scan_feed(&r->ev, buf, (size_t)got);
        ssize_t rv = nghttp2_session_mem_recv(s, buf, (size_t)got);
        if (rv < 0) {
            if (!r->ev.proto_error) {
                r->ev.proto_error = 1;
                snprintf(r->ev.proto_detail, sizeof(r->ev.proto_detail), "%s",
                         nghttp2_strerror((int)rv));
            }
            return;
        }
    }
}

static int settings_seen(h2run *r)
{
    return r->ev.got_settings || r->ev.goaway || sy_probe_h2_broken(&r->ev);
}

/* A GOAWAY ends the wait only when it leaves our stream out (its last stream is below). */
static int goaway_refuses(h2run *r)
{
    return r->ev.goaway && r->ev.goaway_last < (uint32_t)r->stream;
}

static int stream_answered(h2run *r)
{
    return r->ev.status || r->stream_done || goaway_refuses(r) || sy_probe_h2_broken(&r->ev);
}

static int echo_back(h2run *r)
{
    return r->ev.echo_ok || r->ev.ws_error || r->stream_done || goaway_refuses(r);
}

static int echo_or_pong(h2run *r)
{
    return echo_back(r) || r->ev.got_pong;
}

/* ":status 200", or "no answer". */
static const char *status_text(int status, char out[24])
{
    if (!status)
        return "no answer";
    snprintf(out, 24, ":status %d", status);
    return out;
}

static void add_header(nghttp2_nv *nv, size_t *n, const char *name, const char *value)
{
    nv[*n].name = (uint8_t *)name;
    nv[*n].namelen = strlen(name);
    nv[*n].value = (uint8_t *)value;
    nv[*n].valuelen = strlen(value);
    nv[*n].flags = NGHTTP2_NV_FLAG_NONE;
    (*n)++;
}

/* GET on an open HTTP/2 session; then, when the server allows it, RFC 8441. */
static void h2_requests(probe *P, const char *path, nghttp2_session *s, h2run *r, pconn *c,
                        int prior, double t0)
{
    double deadline = probe_now_ms() + P->timeout_ms;
    char st[24];
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 1);
    nghttp2_nv nv[8];
    size_t n = 0;
    add_header(nv, &n, ":method", "GET");
    add_header(nv, &n, ":scheme", P->tls ? "https" : "http");
    add_header(nv, &n, ":authority", P->hostport);
    add_header(nv, &n, ":path", P->target);
    add_header(nv, &n, "user-agent", "switchyard-probe/" SY_VERSION);
    r->stream = nghttp2_submit_request(s, NULL, nv, n, NULL, NULL);
    if (r->stream > 0)
        r->ev.max_stream = r->ev.expect_stream = (uint32_t)r->stream;
    run(r, s, c, deadline, stream_answered);
    if (!r->ev.got_settings && probe_tls_refused(P, path, c, r->first, "request"))
        return; /* a TLS alert, not an HTTP/2 problem */
    sy_probe_h2_check(&P->rep, path, prior ? SY_PROBE_H2_PRIOR : SY_PROBE_H2_ALPN, &r->ev);
    sy_probe_step_add(&P->rep, path, "request", r->ev.status > 0, probe_now_ms() - t0,
                      "GET %s -> %s", P->target, status_text(r->ev.status, st));
    if (!r->ev.got_settings)
        return;
    /* RFC 8441 on the same connection. */
    const char *wpath = "rfc8441";
    h2run saved = *r;
    sy_probe_h2_init(&r->ev);
    r->ev.scan = saved.ev.scan; /* the same byte stream goes on */
    r->ev.first_type = saved.ev.first_type;
    r->ev.max_stream = saved.ev.max_stream;
    r->ev.got_settings = 1;
    r->ev.enable_connect_protocol = saved.ev.enable_connect_protocol;
    r->stream_done = 0;
    if (r->ev.enable_connect_protocol == 1 && !saved.ev.goaway) {
        double t1 = probe_now_ms();
        deadline = t1 + P->timeout_ms;
        n = 0;
        add_header(nv, &n, ":method", "CONNECT");
        add_header(nv, &n, ":protocol", "websocket");
        add_header(nv, &n, ":scheme", P->tls ? "https" : "http");
        add_header(nv, &n, ":authority", P->hostport);
        add_header(nv, &n, ":path", P->target);
        add_header(nv, &n, "sec-websocket-version", "13");
        if (P->origin)
            add_header(nv, &n, "origin", P->origin);
        nghttp2_data_provider dp = {.read_callback = frame_source};
        r->stream = nghttp2_submit_request(s, NULL, nv, n, &dp, NULL);
        if (r->stream > 0)
            r->ev.max_stream = r->ev.expect_stream = (uint32_t)r->stream;
        if (r->stream < 0) {
            r->ev.proto_error = 1;
            snprintf(r->ev.proto_detail, sizeof(r->ev.proto_detail), "%s",
                     nghttp2_strerror(r->stream));
        } else {
            run(r, s, c, deadline, stream_answered);
            if (r->ev.status == 200 && !r->stream_done) {
                /* A message, then a ping: an echo endpoint answers the message first, so a
                 * pong without the echo means no echo (after a short grace, as on HTTP/1.1). */
                static const uint8_t mask[4] = {1, 2, 3, 4};
                sy_probe_ws_sess_init(&r->ws, 0);
                r->ws_on = 1;
                r->frame_len = sy_probe_ws_frame(r->frame, sizeof(r->frame), SY_WS_OP_TEXT,
                                                 "switchyard probe h2", 19, mask);
                r->frame_len +=
                    sy_probe_ws_frame(r->frame + r->frame_len, sizeof(r->frame) - r->frame_len,
                                      SY_WS_OP_PING, "h2ping", 6, mask);
                sy_probe_ws_sess_sent(&r->ws, SY_WS_OP_TEXT, "switchyard probe h2", 19);
                sy_probe_ws_sess_sent(&r->ws, SY_WS_OP_PING, "h2ping", 6);
                r->frame_ready = 1;
                nghttp2_session_resume_data(s, r->stream);
                double t2 = probe_now_ms();
                run(r, s, c, deadline, echo_or_pong);
                if (!echo_back(r) && r->ev.got_pong) {
                    double grace = probe_now_ms() + SY_MAX(250.0, 4 * (probe_now_ms() - t2));
                    run(r, s, c, grace < deadline ? grace : deadline, echo_back);
                }
                sy_probe_ws_sess_free(&r->ws);
                r->ws_on = 0;
            }
        }
        sy_probe_step_add(&P->rep, wpath, "connect", r->ev.status == 200, probe_now_ms() - t1,
                          ":protocol websocket -> %s%s", status_text(r->ev.status, st),
                          r->ev.echo_ok    ? ", the message came back"
                          : r->ev.got_pong ? ", a pong came back (no echo)"
                                           : "");
    }
    sy_probe_h2_check(&P->rep, wpath, SY_PROBE_H2_WS, &r->ev);
}

/* h2c: an HTTP/1.1 upgrade, then prior knowledge on a second connection. */
void probe_walk_h2c(probe *P)
{
    static char buf[SY_PROBE_MAX_HEAD + 4096], req[4096];
    static sy_probe_head h;
    const char *path = "h2c-upgrade";
    pconn c;
    if (probe_open(P, path, &c, NULL, 0, 0, 0) == 0) {
        static const uint16_t ids[] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS};
        static const uint32_t vals[] = {100};
        uint8_t raw[6] = {0, 3, 0, 0, 0, 100};
        char b64[32];
        sy_probe_h2_settings_b64(b64, sizeof(b64), ids, vals, 1);
        size_t n = sy_probe_h2c_request(req, sizeof(req), P->hostport, P->target, b64, 1), len = 0;
        double t0 = probe_now_ms();
        int ok = probe_write(&c, req, n, t0 + P->timeout_ms) == 0;
        /* A server that speaks only HTTP/2 sends its SETTINGS at once, whatever the request
         * says: that is an ignored upgrade, not a broken HTTP/1 answer. */
        ssize_t got = ok ? probe_read(&c, buf, sizeof(buf), t0 + P->timeout_ms) : PN_ERR;
        if (got > 0)
            len = (size_t)got;
        const char *kind = got > 0 ? sy_probe_classify_bytes((uint8_t *)buf, len) : NULL;
        if (kind && strstr(kind, "HTTP/2")) {
            sy_probe_finding *f = sy_probe_add(&P->rep, path, SY_PF_H2C_UPGRADE_IGNORED,
                                               "The server answered the h2c upgrade with HTTP/2 "
                                               "frames instead of an HTTP/1.1 response.");
            sy_probe_hint(f, "%s", kind);
            sy_probe_step_add(&P->rep, path, "upgrade", -1, probe_now_ms() - t0,
                              "HTTP/2 frames, no 101");
        } else if (ok &&
                   probe_read_head(P, path, &c, buf, sizeof(buf), &len, &h, 0, "h2c upgrade")) {
            int sw = sy_probe_h2c_check_101(&P->rep, path, &h, 0, 0);
            /* not switching is a choice (a note); only a broken 101 is a failed step */
            sy_probe_step_add(&P->rep, path, "upgrade",
                              sw                ? 1
                              : h.status == 101 ? 0
                                                : -1,
                              probe_now_ms() - t0, "Upgrade: h2c -> %d", h.status);
            if (sw) {
                char st[24];
                h2run r = {.P = P, .stream = 1};
                sy_probe_h2_init(&r.ev);
                r.ev.max_stream = r.ev.expect_stream = 1; /* the upgrade request's stream */
                nghttp2_session *s = new_session(&r);
                if (s && nghttp2_session_upgrade2(s, raw, sizeof(raw), 0, NULL) == 0) {
                    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
                    if (len > h.head_len)
                        sy_probe_h2_scan_feed(&r.ev, (uint8_t *)buf + h.head_len, len - h.head_len);
                    if (len > h.head_len && nghttp2_session_mem_recv(s, (uint8_t *)buf + h.head_len,
                                                                     len - h.head_len) < 0)
                        r.ev.proto_error = 1;
                    run(&r, s, &c, probe_now_ms() + P->timeout_ms, stream_answered);
                    sy_probe_h2_check(&P->rep, path, SY_PROBE_H2_UPGRADE, &r.ev);
                    sy_probe_step_add(&P->rep, path, "response", r.ev.status > 0,
                                      probe_now_ms() - t0, "stream 1 -> %s",
                                      status_text(r.ev.status, st));
                }
                nghttp2_session_del(s);
            }
        }
    }
    probe_close(&c);

    path = "h2c-prior";
    if (probe_open(P, path, &c, NULL, 0, 0, 0) == 0) {
        h2run r = {.P = P};
        sy_probe_h2_init(&r.ev);
        nghttp2_session *s = new_session(&r);
        double t0 = probe_now_ms();
        /* Peek at the first answer: an HTTP/1 server answers the preface with "HTTP/1.1 400",
         * which is a refusal, not an HTTP/2 protocol error. */
        nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
        const uint8_t *out;
        ssize_t n;
        int sent_ok = 1;
        while ((n = nghttp2_session_mem_send(s, &out)) > 0)
            sent_ok &= probe_write(&c, out, (size_t)n, t0 + P->timeout_ms) == 0;
        ssize_t got = sent_ok ? probe_read(&c, buf, sizeof(buf), t0 + P->timeout_ms) : PN_ERR;
        if (got > 0 && got >= 5 && !memcmp(buf, "HTTP/", 5)) {
            sy_probe_add(&P->rep, path, SY_PF_H2_PRIOR_KNOWLEDGE_REFUSED,
                         "The server answered the HTTP/2 preface in HTTP/1 (\"%.12s\").", buf);
            sy_probe_step_add(&P->rep, path, "preface", -1, probe_now_ms() - t0, "HTTP/1 answer");
        } else if (got > 0) {
            sy_probe_h2_scan_feed(&r.ev, (uint8_t *)buf, (size_t)got);
            if (nghttp2_session_mem_recv(s, (uint8_t *)buf, (size_t)got) < 0)
                r.ev.proto_error = 1;
            run(&r, s, &c, t0 + P->timeout_ms, settings_seen);
            sy_probe_step_add(&P->rep, path, "preface", r.ev.got_settings, probe_now_ms() - t0,
                              r.ev.got_settings ? "SETTINGS received" : "no SETTINGS");
            if (r.ev.got_settings)
                h2_requests(P, path, s, &r, &c, 1, t0);
            else
                sy_probe_h2_check(&P->rep, path, SY_PROBE_H2_PRIOR, &r.ev);
        } else {
            r.ev.closed = got != PN_TIMEOUT;
            r.ev.timed_out = got == PN_TIMEOUT;
            sy_probe_h2_check(&P->rep, path, SY_PROBE_H2_PRIOR, &r.ev);
            sy_probe_step_add(&P->rep, path, "preface", 0, probe_now_ms() - t0, "%s",
                              got == PN_TIMEOUT ? "no answer" : "connection closed");
        }
        nghttp2_session_del(s);
    }
    probe_close(&c);
}

/* h2 via ALPN on TLS. */
void probe_walk_h2(probe *P)
{
    const char *path = "h2";
    static const char alpn[] = "\x02h2\x08http/1.1";
    pconn c;
    int first = !P->connected;
    if (probe_open(P, path, &c, alpn, sizeof(alpn) - 1, 0, 1) == 0) {
        double t0 = probe_now_ms();
        if (strcmp(c.alpn, "h2") != 0) {
            /* Nothing is sent on http/1.1 here: listen a moment for a refusal that TLS 1.3
             * sends after the handshake (a required client certificate). */
            char tmp[64];
            if (probe_read(&c, tmp, sizeof(tmp), t0 + SY_MIN(300, P->timeout_ms)) == PN_ERR &&
                probe_tls_refused(P, path, &c, first, "tls")) {
                probe_close(&c);
                return;
            }
            sy_probe_add(&P->rep, path, SY_PF_H2_ALPN_NOT_H2,
                         "The probe offered h2 and http/1.1 with ALPN; the server selected %s.",
                         c.alpn[0] ? c.alpn : "none");
            sy_probe_step_add(&P->rep, path, "alpn", -1, -1, "selected %s",
                              c.alpn[0] ? c.alpn : "none");
        } else {
            sy_probe_step_add(&P->rep, path, "alpn", 1, -1, "selected h2");
            h2run r = {.P = P, .first = first};
            sy_probe_h2_init(&r.ev);
            nghttp2_session *s = new_session(&r);
            if (s)
                h2_requests(P, path, s, &r, &c, 0, t0);
            nghttp2_session_del(s);
        }
    }
    probe_close(&c);
}
