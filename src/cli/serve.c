/* `switchyard serve`: static files, a WebSocket echo at /echo, a chat at /chat (topics, and
 * across processes with --redis), and demo raw protocols at /raw ("Upgrade: echo" echoes
 * bytes, "Upgrade: upper" echoes them upper-cased). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static sy_server *g_srv;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static volatile sig_atomic_t g_signals;

static void on_signal(int sig)
{
    if (sig == SIGINT && ++g_signals > 1) {
        /* A second Ctrl-C: the person at the terminal does not want to wait for the drain.
         * (A repeated SIGTERM from a supervisor still waits: it asked for a clean stop.) */
        static const char msg[] = "switchyard: second Ctrl-C, exiting now\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(130);
    }
    if (g_srv)
        sy_server_stop(g_srv); /* async-signal-safe */
}

static void access_log(const sy_access_entry *e, void *ud)
{
    FILE *f = ud;
    char line[1024];
    int n = snprintf(line, sizeof(line),
                     "%s \"%s %s HTTP/%d.%d\" %d in=%llu out=%llu %.3fms proto=%s%s%s%s%s%s\n",
                     e->peer, e->method, e->target, e->version / 10, e->version % 10, e->status,
                     (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out,
                     (double)e->duration_us / 1000.0, e->protocol, e->upgraded ? " upgraded=" : "",
                     e->upgraded ? e->upgraded : "", e->detail ? " detail=\"" : "",
                     e->detail ? e->detail : "", e->detail ? "\"" : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    pthread_mutex_lock(&log_mu);
    fwrite(line, 1, (size_t)n, f);
    fflush(f);
    pthread_mutex_unlock(&log_mu);
}

/* The error log: one line per message on stderr. */
static void error_log(int level, const char *msg, void *ud)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)ud;
    fprintf(stderr, "switchyard %s: %s\n", names[level & 3], msg);
}

/* ---- WebSocket echo ---- */

static void echo_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    (void)ud;
    (void)sy_ws_send(ws, opcode, data, len);
}

/* ---- chat: /chat?room=NAME (default lobby) ---- */

/* The accept hook: the room from the query becomes the connection's topic ("room:NAME"). */
static int chat_accept(sy_req *req, const char **reason, void *ud)
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

static void chat_open(sy_ws *ws, void *topic)
{
    int e = sy_ws_subscribe(ws, topic);
    if (e)
        sy_ws_close(ws, 1011, sy_strerror(e));
}

/* Every message goes, unchanged, to everyone in the room (the sender included), on every
 * process sharing the Redis. Only a publish that failed is answered, to the sender alone. */
static void chat_message(sy_ws *ws, int opcode, const void *data, size_t len, void *topic)
{
    int e = sy_server_publish(g_srv, topic, data, len, opcode);
    if (e) {
        char note[160];
        int n = snprintf(note, sizeof(note), "[switchyard] not delivered: %s (%s)", sy_strerror(e),
                         sy_err_name(e));
        (void)sy_ws_send(ws, SY_WS_TEXT, note, (size_t)n);
    }
}

static void chat_close(sy_ws *ws, const sy_ws_close_info *info, void *topic)
{
    (void)ws;
    (void)info;
    free(topic);
}

/* ---- raw demo protocols ---- */

/* Limits for the raw streams (--raw-*); 0 keeps the library's default. */
static struct {
    uint64_t idle_ms, high_water, max_buffer;
    int idle_set;
} raw_limits;

static void raw_echo_data(sy_stream *s, const void *data, size_t len, void *ud)
{
    int upper = ud != NULL, rc = 0;
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

static void raw_open(sy_stream *s, sy_req *req, void *ud)
{
    (void)req;
    sy_stream_cbs cbs = {.on_data = raw_echo_data, .on_drain = raw_echo_drain};
    sy_stream_set_cbs(s, &cbs, ud);
    if (raw_limits.idle_set)
        (void)sy_stream_set(s, SY_STREAM_OPT_IDLE_TIMEOUT_MS, raw_limits.idle_ms);
    if (raw_limits.high_water) {
        (void)sy_stream_set(s, SY_STREAM_OPT_HIGH_WATER, raw_limits.high_water);
        (void)sy_stream_set(s, SY_STREAM_OPT_LOW_WATER, raw_limits.high_water / 4);
    }
    if (raw_limits.max_buffer)
        (void)sy_stream_set(s, SY_STREAM_OPT_MAX_BUFFER, raw_limits.max_buffer);
}

static void raw_plain(sy_req *req, void *ud)
{
    (void)ud;
    static const char body[] = "This endpoint speaks raw protocols: send\r\n"
                               "  Connection: upgrade\r\n  Upgrade: echo   (or: upper)\r\n";
    sy_respond(req, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

static void body_echo(sy_req *req, void *ud)
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

static void sum_handler(sy_req *req, void *ud)
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

static void stream_handler(sy_req *req, void *ud)
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

static void delay_handler(sy_req *req, void *ud)
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
static const char *reflect_token;

static void reflect_handler(sy_req *req, void *ud)
{
    (void)ud;
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

/* Loopback addresses only: 127.0.0.0/8, [::1], localhost. */
static int is_loopback_listen(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]:", 6) ||
           !strncmp(addr, "localhost:", 10);
}

/* Every connection is a descriptor, and the soft open-file limit is often 1024 where the hard
 * limit allows far more: take all we may. sy_server_start warns when --max-conns still does
 * not fit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max; /* Linux keeps the hard limit finite (at most fs.nr_open) */
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: switchyard serve [options]\n"
           "  --listen ADDR:PORT     listen address (repeatable; default 127.0.0.1:8080;\n"
           "                         \"[::1]:8080\" for IPv6, port 0 picks a free port)\n"
           "  --root DIR             static files (default: ./demo when present)\n"
           "  --workers N            worker threads (default: number of CPUs)\n"
           "  --shared-listener      one listening socket for all workers (idle workers take\n"
           "                         new connections) instead of one SO_REUSEPORT socket each\n"
           "  --max-conns N          open connection limit (default 10000)\n"
           "  --header-timeout MS    time to receive a request head (default 10000)\n"
           "  --write-timeout MS     a response (or a closing flush) that makes no progress\n"
           "                         this long is cut (default 30000)\n"
           "  --keepalive-timeout MS idle keep-alive time (default 60000)\n"
           "  --body-timeout MS      max gap between body bytes (default 30000)\n"
           "  --drain-timeout MS     graceful shutdown limit (default 5000)\n"
           "  --max-body BYTES       request body limit (default 8388608)\n"
           "  --ws-max-message BYTES WebSocket message limit (default 1048576)\n"
           "  --ws-ping-interval MS  server ping after this idle time, 0 = off (default 30000)\n"
           "  --ws-pong-timeout MS   close when no traffic answers a ping within (default 10000)\n"
           "  --no-deflate           do not negotiate permessage-deflate\n"
           "  --ws-path PATH         WebSocket echo endpoint (repeatable; default /echo)\n"
           "  --ws-subprotocol NAME  supported subprotocol, most preferred first (repeatable)\n"
           "  --ws-require-subprotocol  refuse (400) handshakes offering none of them\n"
           "  --ws-origin ORIGIN     allowed Origin (repeatable; default: any)\n"
           "  --ws-idle-timeout MS   close (1001) after this long without traffic (default off)\n"
           "  --ws-deflate-window N  our deflate window bits 8..15 (default 15)\n"
           "  --ws-deflate-memlevel N  zlib memLevel 1..9 (default 8)\n"
           "  --ws-deflate-budget BYTES  process-wide zlib memory cap (default 256 MiB)\n"
           "  --ws-backpressure P    buffer|drop|close when a client reads too slowly\n"
           "  --ws-high-water BYTES  queued bytes that mean backpressure (default 1 MiB)\n"
           "  --ws-max-buffer BYTES  hard cap of queued bytes per connection (default 16 MiB)\n"
           "  --raw-idle-timeout MS  close a raw stream after this long with nothing moving\n"
           "                         either way, 0 = off (default 60000)\n"
           "  --raw-high-water BYTES raw echo stops reading above this (default 1 MiB)\n"
           "  --raw-max-buffer BYTES hard cap of queued bytes per raw stream (default 16 MiB)\n"
           "  --tls-listen ADDR:PORT TLS listen address (repeatable; HTTPS and wss://)\n"
           "  --tls-cert FILE        PEM certificate (chain may follow), with --tls-key FILE\n"
           "  --tls-key FILE         its PEM private key; repeat the pair for more names (SNI;\n"
           "                         the first pair is the default)\n"
           "  --tls-self-signed      generate a certificate for localhost at start (testing)\n"
           "  --no-h2c               cleartext listeners speak HTTP/1.1 only (no HTTP/2 with\n"
           "                         prior knowledge, Upgrade: h2c ignored)\n"
           "  --redis URL            share /chat rooms (and all topics) with every process\n"
           "                         using this Redis: redis://HOST:PORT\n"
           "  --redis-prefix P       Redis channel prefix (default \"switchyard:\")\n"
           "  --no-access-log        no access log on stdout\n"
           "  --reflect-token T      serve /reflect (see below) to requests that carry\n"
           "                         X-Switchyard-Reflect-Token: T, on any listener\n"
           "  --no-reflect           no /reflect route (default: on when every listener is\n"
           "                         on loopback, off otherwise)\n"
           "  --verbose              log protocol errors on stderr\n"
           "Routes: / static files, /echo WebSocket echo, /chat?room=NAME WebSocket chat\n"
           "        (every message to everyone in the room), /raw raw echo (Upgrade: echo|upper),\n"
           "        /body echoes a POSTed body, /sum streams a POSTed body and answers\n"
           "        its length and Adler-32 in a chunked response, /stream?BYTES sends\n"
           "        BYTES generated bytes with flow control, /delay?MS answers after MS ms\n"
           "        (from another thread), /reflect answers with the request line, fields\n"
           "        and body as received (for `switchyard probe`; see --reflect-token).\n");
}

/* An early exit of serve: free what was made so far (LeakSanitizer checks every exit). */
static int bail(sy_server *srv, sy_ws_opts *wo, sy_static *st, int rc)
{
    sy_ws_opts_free(wo);
    sy_static_free(st);
    sy_server_free(srv);
    return rc;
}

int sy_cli_serve(int argc, char **argv)
{
    enum {
        O_LISTEN = 1,
        O_ROOT,
        O_WORKERS,
        O_MAXCONNS,
        O_HTO,
        O_WTO,
        O_KATO,
        O_BTO,
        O_DTO,
        O_MAXBODY,
        O_WSMAX,
        O_WSPING,
        O_WSPONG,
        O_NODEFLATE,
        O_NOLOG,
        O_VERBOSE,
        O_HELP,
        O_WSPATH,
        O_WSSUB,
        O_WSREQSUB,
        O_WSORIGIN,
        O_WSIDLE,
        O_WSWIN,
        O_WSMEM,
        O_WSBUDGET,
        O_WSBP,
        O_WSHIGH,
        O_WSMAXBUF,
        O_SHARED,
        O_RAWIDLE,
        O_RAWHIGH,
        O_RAWMAXBUF,
        O_TLSLISTEN, /* the four TLS options, in this order (src/cli/tls.c) */
        O_TLSCERT,
        O_TLSKEY,
        O_TLSSELF,
        O_RTOKEN,
        O_NOREFLECT,
        O_NOH2C,
        O_REDIS,
        O_REDISPFX
    };
    static const struct option longopts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"root", required_argument, 0, O_ROOT},
        {"workers", required_argument, 0, O_WORKERS},
        {"max-conns", required_argument, 0, O_MAXCONNS},
        {"header-timeout", required_argument, 0, O_HTO},
        {"write-timeout", required_argument, 0, O_WTO},
        {"keepalive-timeout", required_argument, 0, O_KATO},
        {"body-timeout", required_argument, 0, O_BTO},
        {"drain-timeout", required_argument, 0, O_DTO},
        {"max-body", required_argument, 0, O_MAXBODY},
        {"ws-max-message", required_argument, 0, O_WSMAX},
        {"ws-ping-interval", required_argument, 0, O_WSPING},
        {"ws-pong-timeout", required_argument, 0, O_WSPONG},
        {"no-deflate", no_argument, 0, O_NODEFLATE},
        {"no-access-log", no_argument, 0, O_NOLOG},
        {"verbose", no_argument, 0, O_VERBOSE},
        {"help", no_argument, 0, O_HELP},
        {"ws-path", required_argument, 0, O_WSPATH},
        {"ws-subprotocol", required_argument, 0, O_WSSUB},
        {"ws-require-subprotocol", no_argument, 0, O_WSREQSUB},
        {"ws-origin", required_argument, 0, O_WSORIGIN},
        {"ws-idle-timeout", required_argument, 0, O_WSIDLE},
        {"ws-deflate-window", required_argument, 0, O_WSWIN},
        {"ws-deflate-memlevel", required_argument, 0, O_WSMEM},
        {"ws-deflate-budget", required_argument, 0, O_WSBUDGET},
        {"ws-backpressure", required_argument, 0, O_WSBP},
        {"ws-high-water", required_argument, 0, O_WSHIGH},
        {"ws-max-buffer", required_argument, 0, O_WSMAXBUF},
        {"shared-listener", no_argument, 0, O_SHARED},
        {"raw-idle-timeout", required_argument, 0, O_RAWIDLE},
        {"raw-high-water", required_argument, 0, O_RAWHIGH},
        {"raw-max-buffer", required_argument, 0, O_RAWMAXBUF},
        {"tls-listen", required_argument, 0, O_TLSLISTEN},
        {"tls-cert", required_argument, 0, O_TLSCERT},
        {"tls-key", required_argument, 0, O_TLSKEY},
        {"tls-self-signed", no_argument, 0, O_TLSSELF},
        {"reflect-token", required_argument, 0, O_RTOKEN},
        {"no-reflect", no_argument, 0, O_NOREFLECT},
        {"no-h2c", no_argument, 0, O_NOH2C},
        {"redis", required_argument, 0, O_REDIS},
        {"redis-prefix", required_argument, 0, O_REDISPFX},
        {0, 0, 0, 0},
    };
    const char *listens[16];
    size_t nlisten = 0;
    sy_cli_tls tls = {0};
    const char *root = NULL;
    int access = 1, deflate = 1, reflect = -1; /* -1: on when every listener is loopback */
    uint64_t ws_max = 1u << 20, ws_ping = 30000, ws_pong = 10000;
    const char *ws_paths[16];
    size_t nws = 0;
    const char *redis = NULL, *redis_prefix = NULL;
    sy_server *srv;
    sy_ws_opts *wo;
    if (sy_server_new(&srv) < 0 || sy_ws_opts_new(&wo) < 0) {
        fprintf(stderr, "switchyard: out of memory\n");
        return 1;
    }
    sy_static *st = NULL;
    /* Numeric flags and their units; every other flag takes text or nothing. */
    static const struct {
        int opt, kind;
    } kinds[] = {
        {O_WORKERS, SY_CLI_COUNT}, {O_MAXCONNS, SY_CLI_COUNT}, {O_WSWIN, SY_CLI_COUNT},
        {O_WSMEM, SY_CLI_COUNT},   {O_HTO, SY_CLI_TIME},       {O_WTO, SY_CLI_TIME},
        {O_KATO, SY_CLI_TIME},     {O_BTO, SY_CLI_TIME},       {O_DTO, SY_CLI_TIME},
        {O_WSPING, SY_CLI_TIME},   {O_WSPONG, SY_CLI_TIME},    {O_WSIDLE, SY_CLI_TIME},
        {O_RAWIDLE, SY_CLI_TIME},  {O_MAXBODY, SY_CLI_SIZE},   {O_WSMAX, SY_CLI_SIZE},
        {O_WSBUDGET, SY_CLI_SIZE}, {O_WSHIGH, SY_CLI_SIZE},    {O_WSMAXBUF, SY_CLI_SIZE},
        {O_RAWHIGH, SY_CLI_SIZE},  {O_RAWMAXBUF, SY_CLI_SIZE},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t v = 0;
        int kind = 0;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            if (kinds[k].opt == c)
                kind = kinds[k].kind;
        if (kind && sy_cli_value(longopts[c - 1].name, optarg, kind, &v) < 0) {
            return bail(srv, wo, st, 2);
        }
        int err = 0;
        switch (c) {
        case O_LISTEN:
            if (nlisten < 16)
                listens[nlisten++] = optarg;
            break;
        case O_ROOT:
            root = optarg;
            break;
        case O_WORKERS:
            err = sy_server_set(srv, SY_OPT_WORKERS, v);
            break;
        case O_MAXCONNS:
            err = sy_server_set(srv, SY_OPT_MAX_CONNS, v);
            break;
        case O_HTO:
            err = sy_server_set(srv, SY_OPT_HEADER_TIMEOUT_MS, v);
            break;
        case O_WTO:
            err = sy_server_set(srv, SY_OPT_WRITE_TIMEOUT_MS, v);
            break;
        case O_KATO:
            err = sy_server_set(srv, SY_OPT_KEEPALIVE_TIMEOUT_MS, v);
            break;
        case O_BTO:
            err = sy_server_set(srv, SY_OPT_BODY_TIMEOUT_MS, v);
            break;
        case O_DTO:
            err = sy_server_set(srv, SY_OPT_DRAIN_TIMEOUT_MS, v);
            break;
        case O_MAXBODY:
            err = sy_server_set(srv, SY_OPT_MAX_BODY, v);
            break;
        case O_WSMAX:
            ws_max = v;
            break;
        case O_WSPING:
            ws_ping = v;
            break;
        case O_WSPONG:
            ws_pong = v;
            break;
        case O_NODEFLATE:
            deflate = 0;
            break;
        case O_NOLOG:
            access = 0;
            break;
        case O_WSPATH:
            if (optarg[0] != '/' || nws >= 16)
                err = SY_EINVAL;
            else
                ws_paths[nws++] = optarg;
            break;
        case O_WSSUB:
            err = sy_ws_opts_add_subprotocol(wo, optarg);
            break;
        case O_WSREQSUB:
            err = sy_ws_opts_set(wo, SY_WS_OPT_REQUIRE_SUBPROTOCOL, 1);
            break;
        case O_WSORIGIN:
            err = sy_ws_opts_add_origin(wo, optarg);
            break;
        case O_WSIDLE:
            err = sy_ws_opts_set(wo, SY_WS_OPT_IDLE_TIMEOUT_MS, v);
            break;
        case O_WSWIN:
            err = sy_ws_opts_set(wo, SY_WS_OPT_DEFLATE_WINDOW_BITS, v);
            break;
        case O_WSMEM:
            err = sy_ws_opts_set(wo, SY_WS_OPT_DEFLATE_MEM_LEVEL, v);
            break;
        case O_WSBUDGET:
            sy_ws_set_deflate_budget(v);
            break;
        case O_WSBP:
            err = sy_ws_opts_set(wo, SY_WS_OPT_BACKPRESSURE_POLICY,
                                 !strcmp(optarg, "buffer")  ? SY_WS_BP_BUFFER
                                 : !strcmp(optarg, "drop")  ? SY_WS_BP_DROP
                                 : !strcmp(optarg, "close") ? SY_WS_BP_CLOSE
                                                            : 99);
            break;
        case O_WSHIGH:
            err = sy_ws_opts_set(wo, SY_WS_OPT_HIGH_WATER, v);
            if (!err)
                err = sy_ws_opts_set(wo, SY_WS_OPT_LOW_WATER, v / 4);
            break;
        case O_WSMAXBUF:
            err = sy_ws_opts_set(wo, SY_WS_OPT_MAX_BUFFER, v);
            break;
        case O_SHARED:
            err = sy_server_set(srv, SY_OPT_SHARED_LISTENER, 1);
            break;
        case O_RAWIDLE:
            raw_limits.idle_ms = v;
            raw_limits.idle_set = 1;
            err = v > UINT32_MAX ? SY_ERANGE : 0;
            break;
        case O_RAWHIGH:
            raw_limits.high_water = v;
            err = v ? 0 : SY_ERANGE;
            break;
        case O_RAWMAXBUF:
            raw_limits.max_buffer = v;
            err = v ? 0 : SY_ERANGE;
            break;
        case O_TLSLISTEN:
        case O_TLSCERT:
        case O_TLSKEY:
        case O_TLSSELF:
            err = sy_cli_tls_opt(&tls, c - O_TLSLISTEN, optarg);
            break;
        case O_RTOKEN:
            reflect_token = optarg;
            reflect = 1;
            err = optarg[0] ? 0 : SY_EINVAL;
            break;
        case O_NOREFLECT:
            reflect = 0;
            break;
        case O_NOH2C:
            err = sy_server_set(srv, SY_OPT_H2C, 0);
            break;
        case O_REDIS:
            redis = optarg;
            break;
        case O_REDISPFX:
            redis_prefix = optarg;
            break;
        case O_VERBOSE:
            sy_set_log(error_log, SY_LOG_INFO, NULL);
            break;
        case O_HELP:
            usage(stdout);
            return bail(srv, wo, st, 0);
        default:
            /* getopt said what was wrong; the whole help would bury it. */
            fprintf(stderr, "see switchyard serve --help\n");
            return bail(srv, wo, st, 2);
        }
        if (err) {
            fprintf(stderr, "switchyard: invalid value for --%s: %s (%s)\n", longopts[c - 1].name,
                    optarg, sy_strerror(err));
            return bail(srv, wo, st, 2);
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "switchyard serve: unexpected argument '%s' (see switchyard serve --help)\n",
                argv[optind]);
        return bail(srv, wo, st, 2);
    }
    if (nlisten == 0 && tls.nlisten == 0)
        listens[nlisten++] = "127.0.0.1:8080";
    for (size_t i = 0; i < nlisten; i++) {
        int err = sy_server_listen(srv, listens[i]);
        if (err) {
            fprintf(stderr, "switchyard: bad listen address '%s': %s\n", listens[i],
                    sy_strerror(err));
            return bail(srv, wo, st, 2);
        }
    }
    if (sy_cli_tls_listen(srv, &tls) != 0) {
        return bail(srv, wo, st, 2);
    }
    if (!root && access_ok("demo/index.html"))
        root = "demo";
    if (root && sy_static_new(&st, root) < 0) {
        fprintf(stderr, "switchyard: cannot open root directory '%s': %s\n", root, strerror(errno));
        return bail(srv, wo, st, 2);
    }
    if (st)
        sy_server_route(srv, NULL, "/", SY_ROUTE_PREFIX, sy_static_handler, st);

    sy_ws_cbs cbs = {.on_message = echo_message};
    sy_ws_opts_set_cbs(wo, &cbs, NULL);
    sy_ws_opts_set(wo, SY_WS_OPT_DEFLATE, (uint64_t)deflate);
    sy_ws_opts_set(wo, SY_WS_OPT_MAX_MESSAGE, ws_max);
    sy_ws_opts_set(wo, SY_WS_OPT_PING_INTERVAL_MS, ws_ping);
    sy_ws_opts_set(wo, SY_WS_OPT_PONG_TIMEOUT_MS, ws_pong);
    if (nws == 0)
        ws_paths[nws++] = "/echo";
    for (size_t i = 0; i < nws; i++) {
        sy_route *echo = sy_server_route(srv, NULL, ws_paths[i], SY_ROUTE_EXACT, NULL, NULL);
        if (!echo || sy_route_websocket(echo, wo) < 0) {
            fprintf(stderr, "switchyard: cannot register a WebSocket route at %s\n", ws_paths[i]);
            return bail(srv, wo, st, 1);
        }
    }
    /* /chat: the echo's settings, its own callbacks and accept hook. */
    sy_ws_cbs chat_cbs = {.on_open = chat_open, .on_message = chat_message, .on_close = chat_close};
    sy_ws_opts_set_cbs(wo, &chat_cbs, NULL);
    sy_ws_opts_set_accept(wo, chat_accept);
    sy_route *chat = sy_server_route(srv, NULL, "/chat", SY_ROUTE_EXACT, NULL, NULL);
    if (!chat || sy_route_websocket(chat, wo) < 0) {
        fprintf(stderr, "switchyard: cannot register the /chat route\n");
        return bail(srv, wo, st, 1);
    }
    if (redis) {
        int e = sy_server_set_redis(srv, redis, redis_prefix);
        if (e) {
            fprintf(stderr, "switchyard: invalid value for --redis: %s (%s)\n", redis,
                    sy_strerror(e));
            return bail(srv, wo, st, 2);
        }
    }
    sy_ws_opts_free(wo);
    sy_route *raw = sy_server_route(srv, NULL, "/raw", SY_ROUTE_EXACT, raw_plain, NULL);
    sy_route_upgrade_raw(raw, "echo", NULL, raw_open, NULL);
    sy_route_upgrade_raw(raw, "upper", NULL, raw_open, (void *)1);
    sy_route *req = sy_server_route(srv, NULL, "/raw-only", SY_ROUTE_UPGRADE_REQUIRED, NULL, NULL);
    sy_route_upgrade_raw(req, "echo", NULL, raw_open, NULL);
    sy_server_route(srv, "POST", "/body", SY_ROUTE_EXACT, body_echo, NULL);
    sy_server_route(srv, "POST", "/sum", SY_ROUTE_STREAM_BODY, sum_handler, NULL);
    sy_server_route(srv, "GET", "/stream", SY_ROUTE_EXACT, stream_handler, NULL);
    sy_server_route(srv, "GET", "/delay", SY_ROUTE_EXACT, delay_handler, NULL);
    if (reflect < 0) {
        reflect = 1;
        for (size_t i = 0; i < nlisten; i++)
            reflect &= is_loopback_listen(listens[i]);
        for (size_t i = 0; i < tls.nlisten; i++)
            reflect &= is_loopback_listen(tls.listens[i]);
    }
    if (reflect)
        sy_server_route(srv, NULL, "/reflect", SY_ROUTE_EXACT, reflect_handler, NULL);
    if (access)
        sy_server_set_access_log(srv, access_log, stdout);

    raise_fd_limit();
    int err = sy_server_start(srv);
    if (err) {
        fprintf(stderr, "switchyard: cannot start: %s\n", sy_strerror(err));
        sy_server_free(srv);
        sy_static_free(st);
        return 1;
    }
    g_srv = srv;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (size_t i = 0; i < nlisten + tls.nlisten; i++) {
        /* The URLs a person can open (a wildcard address is reachable as localhost). */
        const char *addr = i < nlisten ? listens[i] : tls.listens[i - nlisten];
        char host[128];
        const char *colon = strrchr(addr, ':');
        size_t hl = colon ? (size_t)(colon - addr) : 0;
        snprintf(host, sizeof(host), "%.*s", (int)(hl < sizeof(host) - 1 ? hl : sizeof(host) - 1),
                 addr);
        if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
            snprintf(host, sizeof(host), "localhost");
        int secure = i >= nlisten, port = sy_server_port(srv, i);
        fprintf(stderr,
                "switchyard: listening on %s://%s:%d/ (port %d), WebSocket echo %s://%s:%d%s%s%s\n",
                secure ? "https" : "http", host, port, port, secure ? "wss" : "ws", host, port,
                ws_paths[0], st ? ", files from " : "", st ? root : "");
    }
    fflush(stderr);
    sy_server_wait(srv);
    sy_server_stats stats;
    sy_server_get_stats(srv, &stats);
    if (stats.rejected_conns)
        fprintf(stderr, "switchyard: %llu connections were refused over --max-conns\n",
                (unsigned long long)stats.rejected_conns);
    if (stats.published || stats.publish_refused || stats.redis_received)
        fprintf(stderr,
                "switchyard: pubsub: published=%llu refused=%llu delivered=%llu dropped=%llu "
                "redis_received=%llu redis_failed=%llu redis_queued=%llu\n",
                (unsigned long long)stats.published, (unsigned long long)stats.publish_refused,
                (unsigned long long)stats.delivered, (unsigned long long)stats.dropped,
                (unsigned long long)stats.redis_received, (unsigned long long)stats.redis_failed,
                (unsigned long long)stats.redis_queued);
    fprintf(stderr, "switchyard: stopped\n");
    g_srv = NULL;
    sy_server_free(srv);
    sy_static_free(st);
    return 0;
}
