/* The composition layer: a sy_server is the network side (src/net: listeners, workers) with
 * the HTTP side (src/http: routes, limits) on top, and the HTTP versions installed on every
 * accepted connection. This is the one place that knows which protocols exist; the layers
 * below only see hooks and plug-ins.
 *
 * On a cleartext connection the first bytes decide: the HTTP/2 connection preface ("PRI * "
 * is how it starts; an invalid rest is HTTP/2's to refuse, with GOAWAY) means HTTP/2 with
 * prior knowledge, anything else HTTP/1.1, which knows nothing of HTTP/2. An HTTP/1.1
 * connection can still switch with "Upgrade: h2c", a server-wide entry of the Upgrade
 * registry. SY_OPT_H2C 0 turns both off. On a TLS connection ALPN decides ("h2"). */
#include "http/app.h"
#include "http/field.h"
#include "http/req.h"
#include "http1/server.h"
#include "http2/server.h"
#include "pubsub/pubsub.h"

/* ---- the first-bytes sniffer ---- */

enum { LINE_HTTP1, LINE_WAIT, LINE_NOT_HTTP };

/* A first line that names no HTTP version at all ("INVALID CONNECTION PREFACE") is neither an
 * HTTP/1 request nor the HTTP/2 preface: on a port that takes prior knowledge, HTTP/2 refuses
 * it (GOAWAY PROTOCOL_ERROR, then close), as an HTTP/2 client that got the preface wrong
 * expects. Anything that names HTTP/ (even a malformed request line) stays HTTP/1's, which
 * answers 400/505 as RFC 9112 asks; so does a line shaped like a request line without a
 * version ("GET /", HTTP/0.9: a method, one space, then "/" or "*"), which HTTP/1 refuses
 * with 400 rather than HTTP/2 with binary frames. Empty lines before the first line are
 * HTTP/1's too (RFC 9112 §2.2 lets a server skip them): the verdict is on the line after
 * them. Non-text bytes (a TLS ClientHello) go to HTTP/1 at once. */
static int first_line_verdict(const uint8_t *p, size_t len)
{
    size_t s = 0, i;
    while (s < len && (p[s] == '\r' || p[s] == '\n'))
        s++;
    if (s >= 8192)
        return LINE_HTTP1;
    for (i = s; i < len && p[i] != '\n'; i++)
        if ((p[i] < 0x20 && p[i] != '\r') || p[i] > 0x7e)
            return LINE_HTTP1;
    if (i == len)
        return len < 8192 ? LINE_WAIT : LINE_HTTP1;
    for (size_t k = s; k + 5 <= i; k++)
        if (sy__ieq((const char *)p + k, 5, "http/"))
            return LINE_HTTP1;
    size_t m = s;
    while (m < i && sy_field_is_tchar(p[m]))
        m++;
    if (m > s && m + 1 < i && p[m] == ' ' && (p[m + 1] == '/' || p[m + 1] == '*'))
        return LINE_HTTP1;
    return LINE_NOT_HTTP;
}

static ssize_t sniff_on_read(sy_bstream *bs, uint8_t *data, size_t len)
{
    sy_worker *w = bs->proto_data;
    sy_conn *c = sy__conn_of(bs);
    size_t n = len < 4 ? len : 4;
    int e;
    if (c->secure) {
        /* TLS: the handshake chose (ALPN); bytes arrive only after it. */
        size_t al;
        const char *alpn = sy__conn_alpn(c, &al);
        if (alpn && al == 2 && memcmp(alpn, "h2", 2) == 0)
            e = sy__http2_attach(bs, w, SY_H2_VIA_TLS);
        else
            e = sy__http1_attach(c, w);
    } else if (memcmp(data, SY_H2_PREFACE, n) == 0) {
        if (len < 4)
            return 0; /* "PRI " may still be coming */
        e = sy__http2_attach(bs, w, SY_H2_VIA_PRIOR_KNOWLEDGE);
    } else {
        int v = first_line_verdict(data, len);
        if (v == LINE_WAIT) {
            if (!c->first_bytes_seen) {
                /* The head's clock starts with its first byte, as HTTP/1's does. */
                c->first_bytes_seen = 1;
                sy__conn_set_timeout(c, sy__http_worker_conf(w)->cfg.header_timeout_ms);
            }
            return 0;
        }
        if (v == LINE_NOT_HTTP) {
            e = sy__http2_attach(bs, w, SY_H2_VIA_PRIOR_KNOWLEDGE);
        } else {
            uint64_t deadline = c->timer.deadline; /* armed at the first byte (below) */
            e = sy__http1_attach(c, w);
            if (e == 0)
                sy__http1_head_deadline(c, deadline);
        }
    }
    /* Nothing consumed: the bytes go to the protocol just installed, at once. */
    return e < 0 ? e : 0;
}

static void sniff_close_now(sy_bstream *bs)
{
    sy__bs_close(bs, 0, SY_CLOSE_NOW);
}

static void sniff_on_timer(sy_bstream *bs)
{
    sy_conn *c = sy__conn_of(bs);
    /* Part of a first line arrived, too slowly: that is HTTP/1's 408 to send. HTTP/1 sees
     * the bytes first (they are still incomplete, so it takes none), then the timeout. */
    if (c->rlen && sy__http1_attach(c, bs->proto_data) == 0 &&
        c->proto->on_read(bs, c->rbuf, c->rlen) == 0 && !c->closing) {
        c->proto->on_timer(bs);
        return;
    }
    sy__bs_close(bs, SY_ETIMEDOUT, SY_CLOSE_NOW);
}

static const sy_bstream_proto sniff_proto = {
    "sniff", sniff_on_read, NULL, sniff_close_now, sniff_on_timer, sniff_close_now, NULL, NULL,
};

static int accept_conn(sy_conn *c, sy_worker *w, size_t addr_idx)
{
    const sy_http_app *app = sy__http_app(w->srv);
    const sy_http_cfg *cfg = &sy__http_worker_conf(w)->cfg;
    /* A listener with a transport plug-in is a TLS listener: requests learn they are secure
     * (no h2c there), and HTTP/2 comes by ALPN. */
    c->secure = w->srv->addrs[addr_idx].tp != NULL;
    if (!app->h2c && !c->secure)
        return sy__http1_attach(c, w);
    c->proto = &sniff_proto;
    c->proto_data = w;
    sy__conn_set_timeout(c, cfg->header_timeout_ms ? cfg->header_timeout_ms
                                                   : cfg->keepalive_timeout_ms);
    return 0;
}

/* ---- h2c ---- */

static int h2c_check(sy_req *r, const char *token, const char **reason, void *ud)
{
    if (!r->worker || !sy__http_app(r->worker->srv)->h2c)
        return SY_UPGRADE_DECLINE;
    return sy__h2c_check(r, token, reason, ud);
}

static void free_app(sy_server *srv)
{
    sy__http_app_free(sy__http_app(srv));
    srv->app = NULL;
    sy__pubsub_free(srv->pubsub);
    srv->pubsub = NULL;
}

/* Before its loop is freed: the worker's topics (and Redis connections), its request cache
 * (and the HTTP side's state with it). */
static void worker_free(sy_worker *w)
{
    sy__pubsub_worker_free(w);
    sy__http_req_cache_clear(w);
}

/* A worker's loop was made: the HTTP side's state (counters, request ids), then its topics. */
static int worker_init(sy_worker *w)
{
    int e = sy__http_worker_init(w);
    return e < 0 ? e : sy__pubsub_worker_init(w);
}

/* Connections reserve room for the largest per-connection state of the protocols they may
 * switch to (the WebSocket engine: one allocation for both); none when no route has one.
 * Decided from the routes at start: a reload that brings bigger state gets it allocated
 * apart (sy__bs_tail says no), which is only slower. */
static size_t conn_tail(sy_server *srv)
{
    const sy_http_app *a = sy__http_app(srv);
    const sy_http_conf *conf = a->conf;
    size_t most = 0;
    for (size_t i = 0; conf && i < conf->nroutes; i++)
        for (size_t k = 0; k < conf->routes[i]->nupgrades; k++)
            most = SY_MAX(most, conf->routes[i]->upgrades[k].conn_state);
    for (size_t k = 0; k < a->nupgrades; k++)
        most = SY_MAX(most, a->upgrades[k].conn_state);
    return most;
}

static const sy_net_hooks http_hooks = {
    .accept = accept_conn,
    .worker_free = worker_free,
    .server_free = free_app,
    .worker_init = worker_init,
    .stats = sy__pubsub_stats,
    .conn_tail = conn_tail,
};

SY_EXPORT int sy_server_new(sy_server **out)
{
    sy_server *s;
    int e = sy__server_new(&s);
    if (e < 0)
        return e;
    s->hooks = &http_hooks;
    s->app = sy__http_app_new();
    sy_upgrade_entry h2c = {.token = "h2c", .proto = &sy__h2c_upgrade, .check = h2c_check};
    s->pubsub = sy__pubsub_new(s);
    if (!s->app || !s->pubsub || sy__http_app_add_upgrade(s->app, &h2c) < 0) {
        sy_server_free(s);
        return SY_ENOMEM;
    }
    *out = s;
    return 0;
}

SY_EXPORT int sy_server_set(sy_server *s, enum sy_server_opt opt, uint64_t v)
{
    if (opt == SY_OPT_WRITE_TIMEOUT_MS && !s->started)
        s->cfg.flush_timeout_ms = v; /* the network side cuts stalled closing flushes too */
    int e = sy__server_set_net(s, opt, v);
    if (e != SY_EINVAL)
        return e;
    /* Running: the HTTP limits go to a route set being built (sy_server_reload_begin). */
    return sy__http_app_set(sy__http_app(s), s->started, opt, v);
}
