/* The input guard in front of nghttp2 (see guard.h for what it checks and why). */
#include "http2/h2.h"
#include "core/log.h"

#define MAX_WINDOW 0x7fffffff

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- the history of client streams ---- */

static int in_hist(const h2_guard *g, int32_t id)
{
    return id > 0 && id <= g->top && g->top - id < 2 * H2_GUARD_HIST;
}

static int hist_get(const h2_guard *g, int32_t id)
{
    if (!in_hist(g, id))
        return H2_HIST_IGNORE; /* too old to know: as nghttp2 does */
    uint32_t k = ((uint32_t)id >> 1) % H2_GUARD_HIST;
    return g->hist[k / 4] >> (k % 4 * 2) & 3;
}

static void hist_set(h2_guard *g, int32_t id, int st)
{
    if (!in_hist(g, id))
        return;
    uint32_t k = ((uint32_t)id >> 1) % H2_GUARD_HIST;
    g->hist[k / 4] =
        (uint8_t)((g->hist[k / 4] & ~(3u << (k % 4 * 2))) | (unsigned)st << (k % 4 * 2));
}

/* HEADERS opens client stream id (above the newest): the ids skipped are closed unopened. */
static void hist_open(h2_guard *g, int32_t id)
{
    int32_t from = g->top; /* -1 before the first stream: the distance needs 64 bits */
    g->top = id;
    if ((int64_t)id - from >= 2 * H2_GUARD_HIST) {
        memset(g->hist, 0, sizeof(g->hist));
    } else {
        for (int32_t i = from + 2; i < id; i += 2)
            hist_set(g, i, H2_HIST_NONE);
    }
    hist_set(g, id, H2_HIST_IGNORE);
}

void sy__h2_guard_init(h2_conn *h, int upgraded)
{
    h2_guard *g = &h->guard;
    g->preface = 24;
    g->want = 9;
    g->top = -1; /* client ids are odd: the first one (1) is above it */
    if (upgraded)
        hist_open(g, 1); /* stream 1 carried the HTTP/1.1 request */
}

void sy__h2_guard_closed(h2_conn *h, const h2_stream *s)
{
    if (!(s->id & 1))
        return;
    hist_set(&h->guard, s->id,
             s->peer_reset ? H2_HIST_RESET
             : s->in_end   ? H2_HIST_ENDED
                           : H2_HIST_IGNORE);
}

/* ---- verdicts ---- */

/* A connection error: nghttp2's input stops here, GOAWAY(code) follows (h2_on_read). */
static int conn_error(h2_conn *h, uint32_t code, const char *why)
{
    h->fatal = (int)code;
    h->fatal_why = why;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* HEADERS or DATA on a client stream that nghttp2 does not know (any more). */
static int late_frame(h2_conn *h, int32_t id)
{
    switch (hist_get(&h->guard, id)) {
    case H2_HIST_NONE:
        return conn_error(h, NGHTTP2_PROTOCOL_ERROR,
                          "a frame opens a stream below one already opened");
    case H2_HIST_ENDED:
        return conn_error(h, NGHTTP2_STREAM_CLOSED, "a frame on a stream after its END_STREAM");
    case H2_HIST_RESET:
        /* Once: the answer to a DATA flood on a reset stream must not be a RST_STREAM flood. */
        hist_set(&h->guard, id, H2_HIST_IGNORE);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_STREAM_CLOSED);
        sy__h2_schedule(h);
        return 0;
    default:
        return 0;
    }
}

static int self_dependent(h2_conn *h, int32_t id)
{
    if (!nghttp2_session_find_stream(h->ng, id))
        return conn_error(h, NGHTTP2_PROTOCOL_ERROR, "PRIORITY: a stream depends on itself");
    nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
    sy__h2_schedule(h);
    return 0;
}

/* The frame in g->hd starts now (nghttp2 has read everything before it). 0 or an error. */
static int judge(h2_conn *h)
{
    h2_guard *g = &h->guard;
    uint8_t type = g->hd[3];
    int32_t id = (int32_t)(get32(g->hd + 5) & 0x7fffffff);
    if (type == NGHTTP2_PRIORITY) {
        if (id == 0)
            return conn_error(h, NGHTTP2_PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (g->have == 14 && (int32_t)(get32(g->hd + 9) & 0x7fffffff) == id)
            return self_dependent(h, id);
        return 0;
    }
    if ((type != NGHTTP2_HEADERS && type != NGHTTP2_DATA) || !(id & 1))
        return 0; /* even ids are never the client's: nghttp2 refuses them itself */
    if (type == NGHTTP2_HEADERS && id > g->top) {
        hist_open(g, id);
        return 0;
    }
    if (id > g->top || nghttp2_session_find_stream(h->ng, id))
        return 0; /* idle, or open: nghttp2's to judge */
    return late_frame(h, id);
}

/* The frame header (9 bytes) is in: does the verdict need more, and how much to skip. */
static void header_done(h2_guard *g)
{
    uint32_t len = get32(g->hd) >> 8;
    if (g->hd[3] == NGHTTP2_PRIORITY && len == 5 && g->want == 9) {
        g->want = 14; /* the dependency too */
        return;
    }
    g->skip = len - (uint32_t)(g->have - 9);
}

static ssize_t feed(h2_conn *h, const uint8_t *p, size_t n)
{
    return n ? nghttp2_session_mem_recv(h->ng, p, n) : 0;
}

ssize_t sy__h2_guard_recv(h2_conn *h, const uint8_t *data, size_t len)
{
    h2_guard *g = &h->guard;
    size_t pos = 0, fed = 0;
    while (pos < len) {
        if (g->preface || g->skip) {
            uint32_t *left = g->preface ? &g->preface : &g->skip;
            size_t n = SY_MIN((size_t)*left, len - pos);
            *left -= (uint32_t)n;
            pos += n;
            continue;
        }
        size_t n = SY_MIN((size_t)(g->want - g->have), len - pos);
        memcpy(g->hd + g->have, data + pos, n);
        g->have = (uint8_t)(g->have + n);
        pos += n;
        if (g->have < g->want)
            break;
        if (g->want == 9)
            header_done(g);
        if (g->have < g->want)
            continue; /* a PRIORITY payload to collect */
        /* The frame began in this input at start (or before it: then all of it is fed). */
        size_t start = pos > g->have ? pos - g->have : 0;
        ssize_t rv = feed(h, data + fed, start - fed);
        if (rv < 0)
            return rv;
        fed = start;
        if (nghttp2_session_want_read(h->ng) && (rv = judge(h)) != 0)
            return rv;
        g->have = 0;
        g->want = 9;
    }
    ssize_t rv = feed(h, data + fed, len - fed);
    return rv < 0 ? rv : (ssize_t)len;
}

/* ---- SETTINGS_INITIAL_WINDOW_SIZE (§6.9.2) ---- */

void sy__h2_guard_settings_begin(h2_conn *h)
{
    h2_guard *g = &h->guard;
    g->max_window = -1;
    g->init_window =
        (int32_t)nghttp2_session_get_remote_settings(h->ng, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
    for (const h2_stream *s = h->streams; s; s = s->next) {
        int32_t w = nghttp2_session_get_stream_remote_window_size(h->ng, s->id);
        g->max_window = SY_MAX(g->max_window, w);
    }
}

int sy__h2_guard_settings(h2_conn *h, const nghttp2_settings *f)
{
    const h2_guard *g = &h->guard;
    if (g->max_window < 0 || (f->hd.flags & NGHTTP2_FLAG_ACK))
        return 0;
    /* Each value applies in turn to the windows as they were: one over the limit is enough. */
    for (size_t i = 0; i < f->niv; i++) {
        if (f->iv[i].settings_id != NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE)
            continue;
        if ((int64_t)g->max_window + f->iv[i].value - g->init_window > MAX_WINDOW)
            return conn_error(h, NGHTTP2_FLOW_CONTROL_ERROR,
                              "SETTINGS_INITIAL_WINDOW_SIZE takes a stream window over 2^31-1");
    }
    return 0;
}
