/* The demo routes of `switchyard serve`: the WebSocket echo, /handshake (the switch as the
 * server saw it, then numbers pushed every second), the raw protocols at /raw ("Upgrade:
 * echo" echoes bytes, "Upgrade: upper" upper-cased), /body, /sum, /stream, /delay, /reflect,
 * and the access check in front of /metrics. */
#include "cli/serve.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- WebSocket echo ---- */

void demo_echo_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    (void)ud;
    (void)sy_ws_send(ws, opcode, data, len);
}

/* ---- raw demo protocols ---- */

static void raw_echo_data(sy_stream *s, const void *data, size_t len, void *ud)
{
    int upper = ((const raw_route *)ud)->upper, rc = 0;
    if (!upper) {
        rc = sy_stream_write(s, data, len);
    } else {
        char buf[4096];
        const char *p = data;
        while (len && rc >= 0) {
            size_t n = len < sizeof(buf) ? len : sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (p[i] >= 'a' && p[i] <= 'z') ? (char)(p[i] - 32) : p[i];
            /* Above the high-water mark the rest of this piece is still queued (it was read
             * already); the pause below keeps the next pieces from arriving. */
            int r = sy_stream_write(s, buf, n);
            if (r != SY_STREAM_WRITE_OK)
                rc = r;
            p += n;
            len -= n;
        }
    }
    /* The peer is not reading what we echo: stop reading what it sends (TCP flow control then
     * holds it back) until our output drains. */
    if (rc == SY_STREAM_WRITE_BACKPRESSURE)
        sy_stream_pause_read(s);
}

static void raw_echo_drain(sy_stream *s, void *ud)
{
    (void)ud;
    sy_stream_resume_read(s);
}

/* ud: the route's raw_route (its protocol and limits; 0 keeps the library's default). */
void demo_raw_open(sy_stream *s, sy_req *req, void *ud)
{
    const raw_route *rr = ud;
    (void)req;
    sy_stream_cbs cbs = {.on_data = raw_echo_data, .on_drain = raw_echo_drain};
    sy_stream_set_cbs(s, &cbs, ud);
    if (rr->idle_set)
        (void)sy_stream_set(s, SY_STREAM_OPT_IDLE_TIMEOUT_MS, rr->idle_ms);
    if (rr->high_water) {
        (void)sy_stream_set(s, SY_STREAM_OPT_HIGH_WATER, rr->high_water);
        (void)sy_stream_set(s, SY_STREAM_OPT_LOW_WATER, rr->high_water / 4);
    }
    if (rr->max_buffer)
        (void)sy_stream_set(s, SY_STREAM_OPT_MAX_BUFFER, rr->max_buffer);
}

void demo_raw_plain(sy_req *req, void *ud)
{
    (void)ud;
    static const char body[] = "This endpoint speaks raw protocols: send\r\n"
                               "  Connection: upgrade\r\n  Upgrade: echo   (or: upper)\r\n";
    sy_respond(req, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

void demo_body(sy_req *req, void *ud)
{
    (void)ud;
    size_t len;
    const void *b = sy_req_body(req, &len);
    sy_respond(req, 200, "application/octet-stream", b, len);
}

/* /sum: a streamed body (never buffered whole) answered with a streamed, chunked response. */
typedef struct sum_state {
    uint64_t bytes;
    uint32_t adler;
} sum_state;

static void sum_body(sy_req *req, const void *data, size_t len, int end, int err, void *ud)
{
    sum_state *st = ud;
    if (err < 0) {
        free(st);
        sy_resp_end(req); /* the final call releases the request (it returns SY_ECLOSED) */
        return;
    }
    const unsigned char *p = data;
    uint32_t a = st->adler & 0xffff, b = st->adler >> 16;
    for (size_t i = 0; i < len; i++) {
        a = (a + p[i]) % 65521;
        b = (b + a) % 65521;
    }
    st->adler = (b << 16) | a;
    st->bytes += len;
    if (!end)
        return;
    char line[96];
    int n = snprintf(line, sizeof(line), "bytes=%llu adler32=%08x\n", (unsigned long long)st->bytes,
                     st->adler);
    free(st);
    sy_resp_header(req, "Content-Type", "text/plain");
    /* Errors need no checks in between: after a failure the later calls fail too, and the
     * final sy_resp_end releases the request whatever happened. */
    (void)sy_resp_start(req, 200);
    (void)sy_resp_write(req, "streamed response\n", 18);
    (void)sy_resp_write(req, line, (size_t)n);
    (void)sy_resp_end(req);
}

void demo_sum(sy_req *req, void *ud)
{
    (void)ud;
    sum_state *st = calloc(1, sizeof(*st));
    if (!st) {
        sy_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    st->adler = 1;
    /* With no body at all the end arrives right after this handler returns. */
    sy_req_on_body(req, sum_body, st);
}

/* /stream?BYTES: a generated body of BYTES bytes, written as the client reads it (flow
 * control through sy_resp_buffered / sy_resp_on_drain: never more than ~1 MiB queued). */
static void stream_more(sy_req *req, void *ud)
{
    uint64_t *left = ud;
    static char block[65536];
    if (!block[0])
        for (size_t i = 0; i < sizeof(block); i++)
            block[i] = (char)('a' + i % 26);
    while (*left && sy_resp_buffered(req) < (1u << 20)) {
        size_t n = *left < sizeof(block) ? (size_t)*left : sizeof(block);
        if (sy_resp_write(req, block, n) < 0) {
            *left = 0;
            break;
        }
        *left -= n;
    }
    if (*left && sy_resp_on_drain(req, stream_more, left) == 0)
        return;
    free(left);
    (void)sy_resp_end(req);
}

void demo_stream(sy_req *req, void *ud)
{
    (void)ud;
    size_t ql;
    const char *q = sy_req_query(req, &ql);
    char num[24] = "1048576";
    if (q && ql && ql < sizeof(num)) {
        memcpy(num, q, ql);
        num[ql] = 0;
    }
    uint64_t *left = malloc(sizeof(*left));
    if (!left) {
        sy_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    *left = strtoull(num, NULL, 10);
    sy_resp_header(req, "Content-Type", "text/plain");
    if (sy_resp_start(req, 200) < 0) {
        free(left);
        (void)sy_resp_end(req); /* the final call, even after a failure */
        return;
    }
    stream_more(req, left);
}

/* /delay?MS: answers from the loop after MS milliseconds, via another thread and
 * sy_loop_post: a handler that responds later (the request stays valid meanwhile). */
typedef struct delayed {
    sy_req *req;
    long ms;
} delayed;

static void delayed_respond(sy_loop *loop, void *ud)
{
    delayed *d = ud;
    (void)loop;
    char body[64];
    size_t tl;
    const char *t = sy_req_target(d->req, &tl);
    int n = snprintf(body, sizeof(body), "delayed %ld ms: %.*s\n", d->ms, (int)tl, t);
    sy_respond(d->req, 200, "text/plain", body, (size_t)n);
    free(d);
}

static void *delay_thread(void *arg)
{
    delayed *d = arg;
    struct timespec ts = {d->ms / 1000, (d->ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    if (sy_loop_post(sy_req_loop(d->req), delayed_respond, d) != 0) {
        /* The loop is gone (the server was freed): its connection is too, so the final call
         * may come from this thread; it only releases the request. */
        sy_resp_end(d->req);
        free(d);
    }
    return NULL;
}

void demo_delay(sy_req *req, void *ud)
{
    (void)ud;
    size_t ql;
    const char *q = sy_req_query(req, &ql);
    delayed *d = malloc(sizeof(*d));
    pthread_t th;
    if (!d) {
        sy_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    d->req = req;
    d->ms = q && ql < 6 ? strtol(q, NULL, 10) : 100;
    if (pthread_create(&th, NULL, delay_thread, d) != 0) {
        free(d);
        sy_respond(req, 503, "text/plain", "no thread\n", 10);
        return;
    }
    pthread_detach(th);
}

/* ---- /reflect: the request as this server received it ---- */

/* `switchyard probe` sends a marked request through whatever sits in front of this server
 * and compares it with this answer: fields stripped, added or rewritten, the hop's version.
 * It shows the request's own fields, so it is on by default only when every listener is on
 * loopback; elsewhere it needs --reflect-token (a header X-Switchyard-Reflect-Token). */
void demo_reflect(sy_req *req, void *ud)
{
    const char *reflect_token = ud;
    size_t tl = 0, ml, bl, nl, vl;
    const char *tok = sy_req_header(req, "X-Switchyard-Reflect-Token", &tl);
    if (reflect_token && (!tok || tl != strlen(reflect_token) || memcmp(tok, reflect_token, tl))) {
        sy_respond(req, 403, "text/plain", "reflect: token required\n", 24);
        return;
    }
    const char *m = sy_req_method(req, &ml), *t = sy_req_target(req, &tl), *n, *v;
    const void *body = sy_req_body(req, &bl);
    size_t cap = ml + tl + 16 + bl + 2;
    for (size_t i = 0; sy_req_header_at(req, i, &n, &nl, &v, &vl) == 0; i++)
        cap += nl + vl + 4;
    char *out = malloc(cap + 1);
    if (!out) {
        sy_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    int ver = sy_req_version(req);
    size_t o = (size_t)snprintf(out, cap + 1, "%.*s %.*s HTTP/%d.%d\r\n", (int)ml, m, (int)tl, t,
                                ver / 10, ver % 10);
    for (size_t i = 0; sy_req_header_at(req, i, &n, &nl, &v, &vl) == 0; i++)
        o += (size_t)snprintf(out + o, cap + 1 - o, "%.*s: %.*s\r\n", (int)nl, n, (int)vl, v);
    memcpy(out + o, "\r\n", 2);
    o += 2;
    if (bl)
        memcpy(out + o, body, bl);
    o += bl;
    sy_resp_header(req, "X-Switchyard-Reflect", "1");
    sy_resp_header(req, "Cache-Control", "no-store");
    sy_respond(req, 200, "text/plain; charset=utf-8", out, o);
    free(out);
}

/* ---- chat: /chat?room=NAME (default lobby) ---- */

sy_server *demo_chat_server; /* where /chat publishes */

/* The accept hook: the room from the query becomes the connection's topic ("room:NAME"). */
int demo_chat_accept(sy_req *req, const char **reason, void *ud)
{
    (void)ud;
    size_t ql;
    const char *q = sy_req_query(req, &ql);
    const char *room = "lobby";
    size_t rl = 5;
    for (size_t i = 0; q && i < ql;) {
        size_t end = i;
        while (end < ql && q[end] != '&')
            end++;
        if (end - i > 5 && memcmp(q + i, "room=", 5) == 0) {
            room = q + i + 5;
            rl = end - i - 5;
        }
        i = end + 1;
    }
    for (size_t i = 0; i < rl; i++) {
        char c = room[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.') ||
            rl > 64) {
            *reason = "room names are 1..64 of [A-Za-z0-9._-]";
            return 400;
        }
    }
    char *topic = malloc(rl + 6);
    if (!topic) {
        *reason = "out of memory";
        return 503;
    }
    memcpy(topic, "room:", 5);
    memcpy(topic + 5, room, rl);
    topic[rl + 5] = 0;
    sy_req_set_open_ud(req, topic, free);
    return 0;
}

void demo_chat_open(sy_ws *ws, void *topic)
{
    int e = sy_ws_subscribe(ws, topic);
    if (e)
        sy_ws_close(ws, 1011, sy_strerror(e));
}

/* Every message goes, unchanged, to everyone in the room (the sender included), on every
 * process sharing the Redis. Only a publish that failed is answered, to the sender alone. */
void demo_chat_message(sy_ws *ws, int opcode, const void *data, size_t len, void *topic)
{
    int e = sy_server_publish(demo_chat_server, topic, data, len, opcode);
    if (e) {
        char note[160];
        int n = snprintf(note, sizeof(note), "[switchyard] not delivered: %s (%s)", sy_strerror(e),
                         sy_err_name(e));
        (void)sy_ws_send(ws, SY_WS_TEXT, note, (size_t)n);
    }
}

void demo_chat_close(sy_ws *ws, const sy_ws_close_info *info, void *topic)
{
    (void)ws;
    (void)info;
    free(topic);
}

/* ---- /handshake: the switch itself, shown to the page ---- */

/* A growing text for the JSON message. */
typedef struct jbuf {
    char *b;
    size_t n, cap;
} jbuf;

static void jput(jbuf *j, const char *s, size_t n)
{
    if (j->n + n + 1 > j->cap) {
        size_t cap = j->cap * 2 + n + 256;
        char *nb = realloc(j->b, cap);
        if (!nb)
            return;
        j->b = nb;
        j->cap = cap;
    }
    memcpy(j->b + j->n, s, n);
    j->n += n;
    j->b[j->n] = 0;
}

static void jstr(jbuf *j, const char *s, size_t n)
{
    jput(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jput(j, esc, 2);
        } else if (c == '\r') {
            jput(j, "\\r", 2);
        } else if (c == '\n') {
            jput(j, "\\n", 2);
        } else if (c < 0x20 || c >= 0x7f) {
            /* Header bytes are not necessarily UTF-8: shown as Latin-1 code points. */
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jput(j, esc, 6);
        } else {
            jput(j, (const char *)&s[i], 1);
        }
    }
    jput(j, "\"", 1);
}

static void jkey(jbuf *j, const char *k)
{
    jput(j, j->n > 1 ? ",\"" : "\"", j->n > 1 ? 2 : 1);
    jput(j, k, strlen(k));
    jput(j, "\":", 2);
}

/* The open /handshake sockets, for the pusher thread. sy_ws_send_async takes a reference, so
 * a socket found here under the lock is valid: on_close removes it under the same lock before
 * the handle can go. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static sy_ws *reg[256];
static size_t nreg;

void demo_handshake_open(sy_ws *ws, void *ud)
{
    (void)ud;
    const sy_req *r = sy_ws_request(ws);
    jbuf j = {0};
    jput(&j, "{", 1);
    jkey(&j, "type");
    jstr(&j, "handshake", 9);
    if (r) {
        size_t ml, tl, nl, vl, rl;
        const char *m = sy_req_method(r, &ml), *t = sy_req_target(r, &tl), *n, *v;
        int ver = sy_req_version(r);
        char line[600];
        jbuf req = {0};
        int k = ver >= 20 ? snprintf(line, sizeof(line),
                                     ":method: %.*s\r\n:path: %.*s\r\n"
                                     ":protocol: websocket\r\n",
                                     (int)ml, m, (int)tl, t)
                          : snprintf(line, sizeof(line), "%.*s %.*s HTTP/%d.%d\r\n", (int)ml, m,
                                     (int)tl, t, ver / 10, ver % 10);
        jput(&req, line, (size_t)k);
        for (size_t i = 0; sy_req_header_at(r, i, &n, &nl, &v, &vl) == 0; i++) {
            jput(&req, n, nl);
            jput(&req, ": ", 2);
            jput(&req, v, vl);
            jput(&req, "\r\n", 2);
        }
        jkey(&j, "request");
        jstr(&j, req.b ? req.b : "", req.n);
        free(req.b);
        jbuf resp = {0};
        const char *rh = sy_req_response_headers(r, &rl);
        if (ver >= 20)
            k = snprintf(line, sizeof(line), ":status: 200\r\nserver: switchyard\r\n");
        else
            k = snprintf(line, sizeof(line),
                         "HTTP/1.1 101 Switching Protocols\r\nServer: switchyard\r\n");
        jput(&resp, line, (size_t)k);
        jput(&resp, rh, rl);
        if (ver < 20)
            jput(&resp, "Upgrade: websocket\r\nConnection: Upgrade\r\n", 41);
        jkey(&j, "response");
        jstr(&j, resp.b ? resp.b : "", resp.n);
        free(resp.b);
        jkey(&j, "http_version");
        jstr(&j, ver >= 20 ? "HTTP/2" : "HTTP/1.1", ver >= 20 ? 6 : 8);
        jkey(&j, "via");
        const char *via = ver >= 20 ? "extended CONNECT (RFC 8441), answered 200"
                                    : "Upgrade: websocket, answered 101 Switching Protocols";
        jstr(&j, via, strlen(via));
        snprintf(line, sizeof(line), "%016llx", (unsigned long long)sy_req_id(r));
        jkey(&j, "request_id");
        jstr(&j, line, strlen(line));
        const char *peer = sy_req_peer(r);
        jkey(&j, "peer");
        jstr(&j, peer, strlen(peer));
    }
    const char *sub = sy_ws_subprotocol(ws), *ext = sy_ws_extensions(ws);
    jkey(&j, "subprotocol");
    jstr(&j, sub, strlen(sub));
    jkey(&j, "extensions");
    jstr(&j, ext, strlen(ext));
    jput(&j, "}", 1);
    if (j.b)
        (void)sy_ws_send(ws, SY_WS_TEXT, j.b, j.n);
    free(j.b);
    pthread_mutex_lock(&reg_mu);
    if (nreg < SY_ARRAY_LEN_CLI(reg))
        reg[nreg++] = ws;
    pthread_mutex_unlock(&reg_mu);
}

void demo_handshake_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)info;
    (void)ud;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < nreg; i++)
        if (reg[i] == ws) {
            reg[i] = reg[--nreg];
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

/* ---- numbers pushed to the page ---- */

static sy_server *push_srv;
static pthread_t push_thread;
static int push_running;
static pthread_mutex_t push_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t push_cv = PTHREAD_COND_INITIALIZER;
static int push_stop;

/* The metrics text gathered from sy_server_metrics_write; want counts every byte offered, so
 * a piece dropped for lack of memory shows (j.n != want). */
typedef struct metrics_text {
    jbuf j;
    size_t want;
} metrics_text;

static void metrics_piece(const char *data, size_t len, void *ud)
{
    metrics_text *t = ud;
    t->want += len;
    jput(&t->j, data, len);
}

/* The metrics text, reduced to what the page shows: totals by metric name, and a few series
 * by their full name. */
static void metrics_json(sy_server *srv, jbuf *j)
{
    static const struct {
        const char *key, *series; /* series: a name (summed over labels) or name{labels} */
    } show[] = {
        {"connections_open", "switchyard_connections_open"},
        {"connections_total", "switchyard_connections_accepted_total"},
        {"requests_total", "switchyard_http_requests_total"},
        {"upgrades_requested", "switchyard_upgrade_requested_total"},
        {"upgrades_switched", "switchyard_upgrade_switched_total"},
        {"upgrades_refused", "switchyard_upgrade_refused_total"},
        {"websockets_open", "switchyard_upgrade_open{protocol=\"websocket\"}"},
        {"raw_streams_open", "switchyard_upgrade_open{protocol=\"raw\"}"},
        {"h2_streams_open", "switchyard_http2_streams_open"},
        {"messages_in", "switchyard_websocket_messages_received_total"},
        {"messages_out", "switchyard_websocket_messages_sent_total"},
        {"bytes_in", "switchyard_connection_received_bytes_total"},
        {"bytes_out", "switchyard_connection_sent_bytes_total"},
        {"deflate_bytes", "switchyard_deflate_memory_bytes"},
        {"deflate_budget", "switchyard_deflate_memory_budget_bytes"},
        {"handshake_seconds_sum", "switchyard_upgrade_handshake_seconds_sum"},
        {"handshake_count", "switchyard_upgrade_handshake_seconds_count"},
        {"loop_busy_seconds_sum", "switchyard_loop_busy_seconds_sum"},
        {"loop_iterations", "switchyard_loop_iterations_total"},
    };
    double val[SY_ARRAY_LEN_CLI(show)] = {0};
    /* One pass into a growing buffer: sizing with sy_server_metrics(srv, NULL, 0) and then
     * filling would race the running server (the text grows between the two calls, and the
     * page was sent zeros whenever it did). */
    metrics_text t = {{0}, 0};
    char *text = NULL;
    if (sy_server_metrics_write(srv, metrics_piece, &t) == 0 && t.j.b && t.j.n == t.want)
        text = t.j.b;
    if (text) {
        for (char *l = text; l && *l;) {
            char *nl = strchr(l, '\n');
            if (nl)
                *nl = 0;
            char *sp = strrchr(l, ' ');
            if (l[0] != '#' && sp) {
                *sp = 0;
                size_t base = strcspn(l, "{");
                for (size_t i = 0; i < SY_ARRAY_LEN_CLI(show); i++)
                    if (!strcmp(l, show[i].series) ||
                        (strlen(show[i].series) == base && !strncmp(l, show[i].series, base)))
                        val[i] += strtod(sp + 1, NULL);
            }
            l = nl ? nl + 1 : NULL;
        }
    }
    free(t.j.b);
    jput(j, "{", 1);
    jkey(j, "type");
    jstr(j, "metrics", 7);
    for (size_t i = 0; i < SY_ARRAY_LEN_CLI(show); i++) {
        char num[48];
        int k = snprintf(num, sizeof(num), "%.6g", val[i]);
        jkey(j, show[i].key);
        jput(j, num, (size_t)k);
    }
    jput(j, "}", 1);
}

void demo_handshake_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (opcode == SY_WS_TEXT && len == 7 && !memcmp(data, "metrics", 7) && push_srv) {
        jbuf j = {0};
        metrics_json(push_srv, &j);
        if (j.b)
            (void)sy_ws_send(ws, SY_WS_TEXT, j.b, j.n);
        free(j.b);
        return;
    }
    (void)sy_ws_send(ws, opcode, data, len); /* an echo: the page measures round trips */
}

static void *push_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&push_mu);
    while (!push_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&push_cv, &push_mu, &ts);
        if (push_stop)
            break;
        pthread_mutex_unlock(&push_mu);
        pthread_mutex_lock(&reg_mu);
        size_t any = nreg;
        pthread_mutex_unlock(&reg_mu);
        if (any) {
            jbuf j = {0};
            metrics_json(push_srv, &j);
            pthread_mutex_lock(&reg_mu);
            for (size_t i = 0; j.b && i < nreg; i++)
                (void)sy_ws_send_async(reg[i], SY_WS_TEXT, j.b, j.n);
            pthread_mutex_unlock(&reg_mu);
            free(j.b);
        }
        pthread_mutex_lock(&push_mu);
    }
    pthread_mutex_unlock(&push_mu);
    return NULL;
}

int demo_push_start(sy_server *srv)
{
    push_srv = srv;
    push_stop = 0;
    if (pthread_create(&push_thread, NULL, push_main, NULL) != 0)
        return -1;
    push_running = 1;
    return 0;
}

void demo_push_stop(void)
{
    if (!push_running)
        return;
    pthread_mutex_lock(&push_mu);
    push_stop = 1;
    pthread_cond_signal(&push_cv);
    pthread_mutex_unlock(&push_mu);
    pthread_join(push_thread, NULL);
    push_running = 0;
}

/* ---- /metrics: loopback only, unless public or the token is shown ---- */

static int peer_is_loopback(const char *peer)
{
    return !strncmp(peer, "127.", 4) || !strncmp(peer, "[::1]:", 6) ||
           !strncmp(peer, "[::ffff:127.", 12);
}

void serve_metrics_handler(sy_req *req, void *ud)
{
    const metrics_policy *p = ud;
    /* Tests have only loopback peers: this makes them count as remote. */
    const char *as_remote = getenv("SWITCHYARD_TEST_PEERS_REMOTE");
    int ok =
        p->public_ || (peer_is_loopback(sy_req_peer(req)) && !(as_remote && as_remote[0] == '1'));
    if (!ok && p->token[0]) {
        size_t al;
        const char *a = sy_req_header(req, "Authorization", &al);
        size_t tl = strlen(p->token);
        ok = a && al == 7 + tl && !strncasecmp(a, "Bearer ", 7) && !memcmp(a + 7, p->token, tl);
    }
    if (!ok) {
        static const char body[] = "403 Forbidden: /metrics answers loopback clients only (see "
                                   "serve --metrics-public and --metrics-token)\n";
        sy_respond(req, 403, "text/plain; charset=utf-8", body, sizeof(body) - 1);
        return;
    }
    sy_metrics_handler(req, p->srv);
}
