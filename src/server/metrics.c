/* /metrics: the Prometheus text exposition format (version 0.0.4) from the per-worker
 * counters of every layer, summed over the workers at scrape time. This is the one place
 * that sees them all (src/net: listeners, connections, loops; src/http: requests, the
 * upgrade funnel, WebSocket, raw streams, HTTP/2; src/ws: deflate memory). */
#include "http/app.h"
#include "http/req.h"
#include "ws/pmd.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

/* ---- output: a small buffer flushed to the caller's function ---- */

typedef struct mw {
    void (*fn)(const char *data, size_t len, void *ud);
    void *ud;
    char buf[4096];
    size_t len;
} mw;

static void mw_flush(mw *o)
{
    if (o->len)
        o->fn(o->buf, o->len, o->ud);
    o->len = 0;
}

static void mw_put(mw *o, const char *s, size_t n)
{
    while (n) {
        if (o->len == sizeof(o->buf))
            mw_flush(o);
        size_t k = SY_MIN(n, sizeof(o->buf) - o->len);
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void mw_printf(mw *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mw_printf(mw *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        mw_put(o, line, SY_MIN((size_t)n, sizeof(line) - 1));
}

static void head(mw *o, const char *name, const char *type, const char *help)
{
    mw_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Microseconds as seconds, exactly ("0.00005", "2.5", "3600"). */
static const char *secs(char *b, size_t cap, uint64_t us)
{
    int n = snprintf(b, cap, "%" PRIu64 ".%06" PRIu64, us / 1000000u, us % 1000000u);
    while (n > 0 && b[n - 1] == '0')
        b[--n] = 0;
    if (n > 0 && b[n - 1] == '.')
        b[--n] = 0;
    return b;
}

/* A histogram summed over several sy_hist of the same bounds. labels: "" or `a="b",` */
static void hist_out(mw *o, const char *name, const char *labels, const sy_hist *const *hs,
                     size_t nh, const sy_hist_bounds *b)
{
    uint64_t cum = 0, count = 0, sum = 0;
    char le[32], sb[32];
    for (size_t i = 0; i <= b->n; i++) {
        for (size_t k = 0; k < nh; k++)
            cum += sy__ctr_get(&hs[k]->bucket[i]);
        if (i < b->n)
            mw_printf(o, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, labels,
                      secs(le, sizeof(le), b->le_us[i]), cum);
    }
    for (size_t k = 0; k < nh; k++) {
        count += sy__ctr_get(&hs[k]->count);
        sum += sy__ctr_get(&hs[k]->sum_us);
    }
    /* +Inf is the count: buckets and count are read at slightly different moments, and the
     * format wants them consistent. */
    if (cum > count)
        count = cum;
    mw_printf(o, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, count);
    size_t ll = strlen(labels);
    if (ll)
        mw_printf(o, "%s_sum{%.*s} %s\n%s_count{%.*s} %" PRIu64 "\n", name, (int)ll - 1, labels,
                  secs(sb, sizeof(sb), sum), name, (int)ll - 1, labels, count);
    else
        mw_printf(o, "%s_sum %s\n%s_count %" PRIu64 "\n", name, secs(sb, sizeof(sb), sum), name,
                  count);
}

/* A label value with \, " and newlines escaped. */
static void label_value(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in && o + 3 < cap; in++) {
        if (*in == '\\' || *in == '"') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o] = 0;
}

/* The listener's label: its address with the port actually bound. */
static void listener_label(const sy_listen_addr *a, char *out, size_t cap)
{
    char text[300];
    const char *colon = strrchr(a->text, ':');
    int hl = colon ? (int)(colon - a->text) : (int)strlen(a->text);
    snprintf(text, sizeof(text), "%s%.*s:%d", a->tp ? "tls://" : "", hl, a->text, a->port);
    label_value(out, cap, text);
}

static sy_http_metrics *hm(const sy_server *s, size_t w)
{
    return sy__http_metrics(&s->workers[w]);
}

/* Sum one counter of the HTTP metrics over the workers; off is its byte offset. */
static uint64_t sum_http(const sy_server *s, size_t off)
{
    uint64_t v = 0;
    for (size_t w = 0; w < s->nworkers; w++) {
        sy_http_metrics *m = hm(s, w);
        if (m)
            v += sy__ctr_get((const sy_ctr *)((const char *)m + off));
    }
    return v;
}

#define SUM(field) sum_http(s, offsetof(sy_http_metrics, field))

static const char *const up_names[SY_UP_N] = {"websocket", "raw", "h2c", "other"};
static const char *const proto_names[SY_MP_N] = {"http/1.0", "http/1.1", "h2", "h2c",
                                                 "h2c-upgrade"};
static const char *const method_names[SY_MM_N] = {"GET",     "HEAD",  "POST",    "PUT",  "DELETE",
                                                  "OPTIONS", "PATCH", "CONNECT", "other"};
static const char *const refusal_names[SY_REFUSE_N] = {
    "other",  "method",         "version",        "key",      "origin",    "subprotocol", "app",
    "memory", "body_too_large", "not_registered", "declined", "not_found", "bad_request"};
static const char *const cause_names[SY_MW_CAUSES] = {
    "unknown", "peer",         "local",         "protocol", "too_big",  "ping_timeout",
    "idle",    "backpressure", "close_timeout", "abnormal", "shutdown", "handshake"};
static const char *const raw_names[SY_MR_N] = {"eof", "idle", "limit", "io", "memory", "other"};

static void net_section(mw *o, const sy_server *s)
{
    char lab[320];
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } per_listener[] = {
        {"switchyard_connections_accepted_total", "counter", "Connections accepted.",
         offsetof(sy_listen_stats, accepted)},
        {"switchyard_connections_refused_total", "counter",
         "Connections closed at once because the connection limit was reached.",
         offsetof(sy_listen_stats, refused)},
        {"switchyard_connections_closed_total", "counter", "Accepted connections closed.",
         offsetof(sy_listen_stats, closed)},
        {"switchyard_connection_received_bytes_total", "counter",
         "Bytes received on connections (after TLS decryption).",
         offsetof(sy_listen_stats, bytes_in)},
        {"switchyard_connection_sent_bytes_total", "counter",
         "Bytes sent on connections (before TLS encryption).",
         offsetof(sy_listen_stats, bytes_out)},
    };
    head(o, "switchyard_connections_open", "gauge", "Connections open now.");
    for (size_t a = 0; a < s->naddrs; a++) {
        uint64_t acc = 0, closed = 0;
        for (size_t w = 0; w < s->nworkers; w++) {
            if (a >= s->workers[w].nlisteners)
                continue;
            acc += sy__ctr_get(&s->workers[w].listeners[a].stats.accepted);
            closed += sy__ctr_get(&s->workers[w].listeners[a].stats.closed);
        }
        listener_label(&s->addrs[a], lab, sizeof(lab));
        mw_printf(o, "switchyard_connections_open{listener=\"%s\"} %" PRIu64 "\n", lab,
                  acc > closed ? acc - closed : 0);
    }
    for (size_t k = 0; k < SY_ARRAY_LEN(per_listener); k++) {
        head(o, per_listener[k].name, per_listener[k].type, per_listener[k].help);
        for (size_t a = 0; a < s->naddrs; a++) {
            uint64_t v = 0;
            for (size_t w = 0; w < s->nworkers; w++)
                if (a < s->workers[w].nlisteners)
                    v += sy__ctr_get(
                        (const sy_ctr *)((const char *)&s->workers[w].listeners[a].stats +
                                         per_listener[k].off));
            listener_label(&s->addrs[a], lab, sizeof(lab));
            mw_printf(o, "%s{listener=\"%s\"} %" PRIu64 "\n", per_listener[k].name, lab, v);
        }
    }
    head(o, "switchyard_connections_fd_refused_total", "counter",
         "Connections closed unanswered because file descriptors ran out.");
    mw_printf(o, "switchyard_connections_fd_refused_total %zu\n",
              atomic_load_explicit(&((sy_server *)s)->fd_refused_conns, memory_order_relaxed));
    head(o, "switchyard_accept_errors_total", "counter",
         "accept() failures for lack of descriptors or memory.");
    mw_printf(o, "switchyard_accept_errors_total %zu\n",
              atomic_load_explicit(&((sy_server *)s)->accept_errors, memory_order_relaxed));
    const sy_hist *hs[256];
    size_t nh = 0;
    for (size_t w = 0; w < s->nworkers && nh < SY_ARRAY_LEN(hs); w++)
        hs[nh++] = &s->workers[w].conn_lifetime;
    head(o, "switchyard_connection_duration_seconds", "histogram",
         "Lifetime of accepted connections, observed when they close.");
    hist_out(o, "switchyard_connection_duration_seconds", "", hs, nh, &sy__hist_lifetime);
}

static void http_section(mw *o, const sy_server *s)
{
    head(o, "switchyard_http_requests_total", "counter",
         "Requests answered, by protocol, method and status class.");
    for (int p = 0; p < SY_MP_N; p++)
        for (int m = 0; m < SY_MM_N; m++)
            for (int c = 0; c < 6; c++) {
                uint64_t v = SUM(requests[p][m][c]);
                if (v || (p == SY_MP_HTTP11 && m == SY_MM_GET && c == 2))
                    mw_printf(o,
                              "switchyard_http_requests_total{protocol=\"%s\",method=\"%s\","
                              "status=\"%s\"} %" PRIu64 "\n",
                              proto_names[p], method_names[m],
                              c ? (const char *[]){"", "1xx", "2xx", "3xx", "4xx", "5xx"}[c]
                                : "other",
                              v);
            }
    const sy_hist *hs[256];
    size_t nh = 0;
    for (size_t w = 0; w < s->nworkers && nh < SY_ARRAY_LEN(hs); w++)
        if (hm(s, w))
            hs[nh++] = &hm(s, w)->request_duration;
    head(o, "switchyard_http_request_duration_seconds", "histogram",
         "Request head received to response done.");
    hist_out(o, "switchyard_http_request_duration_seconds", "", hs, nh, &sy__hist_latency);

    static const struct {
        const char *name, *help;
        size_t off;
    } funnel[] = {
        {"switchyard_upgrade_requested_total",
         "Requests asking to switch protocols (Upgrade, or HTTP/2 extended CONNECT).",
         offsetof(sy_http_metrics, up_requested)},
        {"switchyard_upgrade_accepted_total", "Upgrade requests the protocol's checks accepted.",
         offsetof(sy_http_metrics, up_accepted)},
        {"switchyard_upgrade_first_message_total",
         "Switched connections that received a first message (WebSocket) or bytes (raw).",
         offsetof(sy_http_metrics, up_first_message)},
        {"switchyard_upgrade_closed_total", "Switched connections closed.",
         offsetof(sy_http_metrics, up_closed)},
    };
    for (size_t f = 0; f < SY_ARRAY_LEN(funnel); f++) {
        head(o, funnel[f].name, "counter", funnel[f].help);
        for (int k = 0; k < SY_UP_N; k++)
            mw_printf(o, "%s{protocol=\"%s\"} %" PRIu64 "\n", funnel[f].name, up_names[k],
                      sum_http(s, funnel[f].off + (size_t)k * sizeof(sy_ctr)));
    }
    head(o, "switchyard_upgrade_switched_total", "counter",
         "Switches answered: 101 Switching Protocols (HTTP/1.1) or 200 (HTTP/2, RFC 8441).");
    for (int k = 0; k < SY_UP_N; k++)
        for (int h2 = 0; h2 < 2; h2++)
            mw_printf(
                o, "switchyard_upgrade_switched_total{protocol=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                up_names[k], h2 ? "200" : "101", SUM(up_switched[k][h2]));
    head(o, "switchyard_upgrade_open", "gauge", "Switched connections open now.");
    for (int k = 0; k < SY_UP_N; k++) {
        uint64_t sw = SUM(up_switched[k][0]) + SUM(up_switched[k][1]), cl = SUM(up_closed[k]);
        mw_printf(o, "switchyard_upgrade_open{protocol=\"%s\"} %" PRIu64 "\n", up_names[k],
                  sw > cl ? sw - cl : 0);
    }
    head(o, "switchyard_upgrade_refused_total", "counter",
         "Upgrade requests that did not switch, by reason.");
    for (int k = 0; k < SY_UP_N; k++)
        for (int r = 0; r < SY_REFUSE_N; r++)
            mw_printf(
                o, "switchyard_upgrade_refused_total{protocol=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                up_names[k], refusal_names[r], SUM(up_refused[k][r]));
    static const struct {
        const char *name, *help;
        int lifetime;
    } hists[] = {
        {"switchyard_upgrade_handshake_seconds",
         "First byte of the upgrade request to the switch answered.", 0},
        {"switchyard_upgrade_duration_seconds", "Lifetime of switched connections.", 1},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(hists); i++) {
        head(o, hists[i].name, "histogram", hists[i].help);
        for (int k = 0; k < SY_UP_N; k++) {
            nh = 0;
            for (size_t w = 0; w < s->nworkers && nh < SY_ARRAY_LEN(hs); w++)
                if (hm(s, w))
                    hs[nh++] =
                        hists[i].lifetime ? &hm(s, w)->up_lifetime[k] : &hm(s, w)->up_handshake[k];
            char lab[64];
            snprintf(lab, sizeof(lab), "protocol=\"%s\",", up_names[k]);
            hist_out(o, hists[i].name, lab, hs, nh,
                     hists[i].lifetime ? &sy__hist_lifetime : &sy__hist_latency);
        }
    }
}

static void ws_section(mw *o, const sy_server *s)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } plain[] = {
        {"switchyard_websocket_messages_received_total", "WebSocket messages received.",
         offsetof(sy_http_metrics, ws_msgs_in)},
        {"switchyard_websocket_messages_sent_total", "WebSocket messages sent.",
         offsetof(sy_http_metrics, ws_msgs_out)},
        {"switchyard_websocket_received_bytes_total",
         "WebSocket message payload bytes received (after inflate).",
         offsetof(sy_http_metrics, ws_bytes_in)},
        {"switchyard_websocket_sent_bytes_total",
         "WebSocket message payload bytes sent (before deflate).",
         offsetof(sy_http_metrics, ws_bytes_out)},
        {"switchyard_raw_stream_received_bytes_total", "Bytes received by raw streams.",
         offsetof(sy_http_metrics, raw_bytes_in)},
        {"switchyard_raw_stream_sent_bytes_total", "Bytes sent by closed raw streams.",
         offsetof(sy_http_metrics, raw_bytes_out)},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(plain); i++) {
        head(o, plain[i].name, "counter", plain[i].help);
        mw_printf(o, "%s %" PRIu64 "\n", plain[i].name, sum_http(s, plain[i].off));
    }
    head(o, "switchyard_websocket_closes_total", "counter",
         "WebSocket connections closed, by cause.");
    for (int c = 1; c < SY_MW_CAUSES - 1; c++) /* "handshake" is the client's only */
        mw_printf(o, "switchyard_websocket_closes_total{cause=\"%s\"} %" PRIu64 "\n",
                  cause_names[c], SUM(ws_close_cause[c]));
    head(o, "switchyard_websocket_peer_close_codes_total", "counter",
         "Close codes received from WebSocket peers.");
    for (int k = 0; k < SY_MW_CODES; k++) {
        uint64_t v = SUM(ws_peer_code[k]);
        char code[16];
        if (k < 16)
            snprintf(code, sizeof(code), "%d", 1000 + k);
        else
            snprintf(code, sizeof(code), "%s",
                     k == SY_MW_CODE_3XXX   ? "3xxx"
                     : k == SY_MW_CODE_4XXX ? "4xxx"
                                            : "other");
        if (v || k == 0 || k == 1)
            mw_printf(o, "switchyard_websocket_peer_close_codes_total{code=\"%s\"} %" PRIu64 "\n",
                      code, v);
    }
    head(o, "switchyard_raw_stream_closes_total", "counter", "Raw streams closed, by cause.");
    for (int k = 0; k < SY_MR_N; k++)
        mw_printf(o, "switchyard_raw_stream_closes_total{cause=\"%s\"} %" PRIu64 "\n", raw_names[k],
                  SUM(raw_close[k]));
    uint64_t co = SUM(h2_conns_opened), cc = SUM(h2_conns_closed);
    uint64_t so = SUM(h2_streams_opened), sc = SUM(h2_streams_closed);
    head(o, "switchyard_http2_connections_total", "counter", "HTTP/2 connections started.");
    mw_printf(o, "switchyard_http2_connections_total %" PRIu64 "\n", co);
    head(o, "switchyard_http2_connections_open", "gauge", "HTTP/2 connections open now.");
    mw_printf(o, "switchyard_http2_connections_open %" PRIu64 "\n", co > cc ? co - cc : 0);
    head(o, "switchyard_http2_streams_total", "counter", "HTTP/2 streams opened by clients.");
    mw_printf(o, "switchyard_http2_streams_total %" PRIu64 "\n", so);
    head(o, "switchyard_http2_streams_open", "gauge",
         "HTTP/2 streams open now (requests and tunnels).");
    mw_printf(o, "switchyard_http2_streams_open %" PRIu64 "\n", so > sc ? so - sc : 0);
    head(o, "switchyard_deflate_memory_bytes", "gauge",
         "zlib memory reserved for permessage-deflate (process-wide).");
    mw_printf(o, "switchyard_deflate_memory_bytes %" PRIu64 "\n", sy_pmd_budget_used());
    head(o, "switchyard_deflate_memory_budget_bytes", "gauge",
         "Cap on zlib memory for permessage-deflate (0: none).");
    mw_printf(o, "switchyard_deflate_memory_budget_bytes %" PRIu64 "\n", sy_pmd_budget());
}

static void loop_section(mw *o, const sy_server *s)
{
    head(o, "switchyard_loop_iterations_total", "counter", "Event loop iterations, per worker.");
    for (size_t w = 0; w < s->nworkers; w++)
        if (s->workers[w].loop)
            mw_printf(o, "switchyard_loop_iterations_total{worker=\"%zu\"} %" PRIu64 "\n", w,
                      sy__ctr_get(&s->workers[w].loop->stats.busy.count));
    static const struct {
        const char *name, *help;
        int lag;
    } hists[] = {
        {"switchyard_loop_busy_seconds",
         "Time an event loop iteration spent working (events, timers, writes): how long a new "
         "event may wait.",
         0},
        {"switchyard_loop_timer_lag_seconds",
         "How late the first due timer of an iteration ran (1 ms resolution).", 1},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(hists); i++) {
        head(o, hists[i].name, "histogram", hists[i].help);
        for (size_t w = 0; w < s->nworkers; w++) {
            if (!s->workers[w].loop)
                continue;
            const sy_loop_stats *ls = &s->workers[w].loop->stats;
            const sy_hist *h = hists[i].lag ? &ls->timer_lag : &ls->busy;
            char lab[32];
            snprintf(lab, sizeof(lab), "worker=\"%zu\",", w);
            hist_out(o, hists[i].name, lab, &h, 1, &sy__hist_latency);
        }
    }
}

SY_EXPORT int sy_server_metrics_write(const sy_server *s,
                                      void (*fn)(const char *data, size_t len, void *ud), void *ud)
{
    if (!s || !fn)
        return SY_EINVAL;
    mw *o = sy__malloc(sizeof(*o));
    if (!o)
        return SY_ENOMEM;
    o->fn = fn;
    o->ud = ud;
    o->len = 0;
    head(o, "switchyard_info", "gauge", "The server's version.");
    mw_printf(o, "switchyard_info{version=\"%s\"} 1\n", SY_VERSION);
    head(o, "switchyard_workers", "gauge", "Worker threads (one event loop each).");
    mw_printf(o, "switchyard_workers %zu\n", s->nworkers);
    net_section(o, s);
    http_section(o, s);
    ws_section(o, s);
    loop_section(o, s);
    mw_flush(o);
    sy__free(o);
    return 0;
}

typedef struct fixed_buf {
    char *buf;
    size_t cap, len;
} fixed_buf;

static void to_fixed(const char *data, size_t len, void *ud)
{
    fixed_buf *f = ud;
    if (f->len < f->cap) {
        size_t k = SY_MIN(len, f->cap - f->len);
        memcpy(f->buf + f->len, data, k);
    }
    f->len += len;
}

SY_EXPORT ssize_t sy_server_metrics(const sy_server *s, char *buf, size_t cap)
{
    fixed_buf f = {buf, cap ? cap - 1 : 0, 0};
    int e = sy_server_metrics_write(s, to_fixed, &f);
    if (e < 0)
        return e;
    if (cap)
        buf[SY_MIN(f.len, cap - 1)] = 0;
    return (ssize_t)f.len;
}

/* ---- the handler: the text gathered into one growing buffer, then one response ---- */

typedef struct grow_buf {
    char *buf;
    size_t cap, len;
    int oom;
} grow_buf;

static void to_grow(const char *data, size_t len, void *ud)
{
    grow_buf *g = ud;
    if (g->oom)
        return;
    if (g->len + len > g->cap) {
        size_t cap = SY_MAX(g->cap * 2, g->len + len + 16384);
        char *n = sy__realloc(g->buf, cap);
        if (!n) {
            g->oom = 1;
            return;
        }
        g->buf = n;
        g->cap = cap;
    }
    memcpy(g->buf + g->len, data, len);
    g->len += len;
}

SY_EXPORT void sy_metrics_handler(sy_req *req, void *srv)
{
    grow_buf g = {0};
    if (sy_server_metrics_write(srv, to_grow, &g) < 0 || g.oom) {
        sy__free(g.buf);
        sy_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    sy_resp_header(req, "Cache-Control", "no-store");
    sy_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", g.buf, g.len);
    sy__free(g.buf);
}
