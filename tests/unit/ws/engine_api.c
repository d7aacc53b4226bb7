/* The WebSocket engine through the public API, server and client in one process over
 * loopback: fragmented sends, zero-copy sends, pings and pongs, backpressure and drain,
 * close codes, reasons and causes, the max-message limit, cross-thread sends. */
#include "harness.h"
#include "switchyard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int zc_freed;
static atomic_int server_drains;
static atomic_int server_bp_seen;
static atomic_int server_close_code;
static atomic_int server_close_cause;
static atomic_int server_pongs;

static void zc_free(const void *data, void *ud)
{
    (void)data;
    (void)ud;
    atomic_fetch_add(&zc_freed, 1);
}

static char big[256 * 1024];

static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (len == 4 && !memcmp(data, "frag", 4)) {
        sy_ws_send_fragment(ws, SY_WS_TEXT, "one-", 4, 0);
        sy_ws_send_fragment(ws, 0, "two-", 4, 0);
        sy_ws_send_fragment(ws, 0, "three", 5, 1);
    } else if (len == 2 && !memcmp(data, "zc", 2)) {
        static const char msg[] = "zero-copy payload";
        sy_ws_send_zc(ws, SY_WS_BINARY, msg, sizeof(msg) - 1, zc_free, NULL);
    } else if (len == 4 && !memcmp(data, "ping", 4)) {
        sy_ws_ping(ws, "hb", 2);
        sy_ws_send(ws, SY_WS_TEXT, "pinged", 6);
    } else if (len == 2 && !memcmp(data, "bp", 2)) {
        /* Queue until the high-water mark says BACKPRESSURE; the client reads it all. */
        int r = SY_WS_SEND_OK, n = 0;
        while (r == SY_WS_SEND_OK && n < 1000) {
            r = sy_ws_send(ws, SY_WS_BINARY, big, sizeof(big));
            n++;
        }
        atomic_store(&server_bp_seen, r == SY_WS_SEND_BACKPRESSURE ? n : -r);
        sy_ws_send(ws, SY_WS_TEXT, "bp-done", 7);
    } else if (len == 3 && !memcmp(data, "bp2", 3)) {
        /* Under the drop/close policies: send until the engine refuses. */
        int r = SY_WS_SEND_OK, n = 0;
        while (r != SY_WS_SEND_DROPPED && r >= 0 && n < 1000) {
            r = sy_ws_send(ws, SY_WS_BINARY, big, sizeof(big));
            n++;
        }
        atomic_store(&server_bp_seen, r == SY_WS_SEND_DROPPED ? n : -100 - r);
        sy_ws_close(ws, 1000, "done"); /* no effect when the close policy already closed */
    } else if (len == 5 && !memcmp(data, "close", 5)) {
        sy_ws_close(ws, 4000, "bye now");
    } else if (op == SY_WS_TEXT && len == 3 && !memcmp(data, "bad", 3)) {
        /* invalid UTF-8 in a text send is refused */
        int r = sy_ws_send(ws, SY_WS_TEXT, "\xc0\xaf", 2);
        char out[32];
        int n = snprintf(out, sizeof(out), "bad=%d", r);
        sy_ws_send(ws, SY_WS_TEXT, out, (size_t)n);
    } else {
        sy_ws_send(ws, op, data, len);
    }
}

static void srv_drain(sy_ws *ws, void *ud)
{
    (void)ws;
    (void)ud;
    atomic_fetch_add(&server_drains, 1);
}

static void srv_pong(sy_ws *ws, const void *data, size_t len, void *ud)
{
    (void)ws;
    (void)ud;
    if (len == 2 && !memcmp(data, "hb", 2))
        atomic_fetch_add(&server_pongs, 1);
}

static void srv_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)ws;
    (void)ud;
    atomic_store(&server_close_code, info->code);
    atomic_store(&server_close_cause, info->cause);
}

/* ---- client script ---- */

typedef struct client {
    sy_loop *loop;
    sy_ws *ws;
    int step;
    char got[64][64];
    size_t got_len[64];
    int ngot;
    size_t bp_bytes;
    int close_code;
    int close_cause;
    char close_reason[64];
    int opened;
} client;

static const char *script[] = {"hello", "frag", "zc", "ping", "bad", "bp", "close"};

static void cl_open(sy_ws *ws, void *ud)
{
    client *c = ud;
    c->opened = 1;
    sy_ws_send(ws, SY_WS_TEXT, script[0], strlen(script[0]));
}

static void cl_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    client *c = ud;
    if (op == SY_WS_BINARY && len == sizeof(big)) {
        c->bp_bytes += len; /* part of the backpressure burst */
        return;
    }
    if (c->ngot < 64) {
        size_t n = len < 63 ? len : 63;
        memcpy(c->got[c->ngot], data, n);
        c->got[c->ngot][n] = 0;
        c->got_len[c->ngot] = len;
        c->ngot++;
    }
    /* "ping" answers with "pinged" after the ping; the others with one message each */
    c->step++;
    if (c->step < (int)(sizeof(script) / sizeof(script[0])))
        sy_ws_send(ws, SY_WS_TEXT, script[c->step], strlen(script[c->step]));
}

static void cl_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    client *c = ud;
    (void)ws;
    c->close_code = info->code;
    c->close_cause = info->cause;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", info->reason);
    sy_loop_stop(c->loop);
}

static int g_policy = SY_WS_BP_BUFFER;

static sy_server *start_server(int *port, uint64_t max_message)
{
    sy_server *srv;
    sy_ws_opts *o;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        return NULL;
    sy_ws_cbs cbs = {.on_message = srv_message,
                     .on_close = srv_close,
                     .on_drain = srv_drain,
                     .on_pong = srv_pong};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_ws_opts_set(o, SY_WS_OPT_HIGH_WATER, 512 * 1024);
    sy_ws_opts_set(o, SY_WS_OPT_LOW_WATER, 64 * 1024);
    sy_ws_opts_set(o, SY_WS_OPT_MAX_MESSAGE, max_message);
    sy_ws_opts_set(o, SY_WS_OPT_BACKPRESSURE_POLICY, (uint64_t)g_policy);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        return NULL;
    sy_ws_opts_free(o);
    *port = sy_server_port(srv, 0);
    return srv;
}

/* Start a server (limit max_message), connect a client to path with cbs (ud = c), run the
 * client loop until a callback stops it, then stop everything. Returns 0 or -1. */
static int run_session(client *c, uint64_t max_message, const char *path, const sy_ws_cbs *cbs,
                       const sy_ws_opts *opts)
{
    int port;
    sy_server *srv = start_server(&port, max_message);
    if (!srv || sy_loop_new(&c->loop) != 0)
        return -1;
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d%s", port, path);
    sy_ws_client_cfg cfg = {.url = url, .opts = opts};
    int err = sy_ws_connect(c->loop, &cfg, cbs, c, &c->ws);
    if (!err)
        sy_loop_run(c->loop);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    sy_loop_free(c->loop);
    return err ? -1 : 0;
}

static void run_script(int deflate)
{
    client c = {0};
    sy_ws_opts *o;
    CHECK_EQ(sy_ws_opts_new(&o), 0);
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, (uint64_t)deflate);
    atomic_store(&zc_freed, 0);
    atomic_store(&server_pongs, 0);
    sy_ws_cbs cbs = {.on_open = cl_open, .on_message = cl_message, .on_close = cl_close};
    int err = run_session(&c, 1 << 20, "/t", &cbs, o);
    sy_ws_opts_free(o);
    CHECK_EQ(err, 0);
    CHECK(c.opened);
    CHECK_EQ(c.ngot, 6);
    CHECK(!strcmp(c.got[0], "hello"));
    CHECK(!strcmp(c.got[1], "one-two-three"));
    CHECK(!strcmp(c.got[2], "zero-copy payload"));
    CHECK(!strcmp(c.got[3], "pinged"));
    CHECK_EQ(atomic_load(&server_pongs), 1); /* the client engine answered the ping */
    char want[32];
    snprintf(want, sizeof(want), "bad=%d", SY_EINVAL);
    CHECK(!strcmp(c.got[4], want));
    CHECK(!strcmp(c.got[5], "bp-done"));
    CHECK(atomic_load(&server_bp_seen) > 1); /* several sends OK, then BACKPRESSURE */
    CHECK_EQ(c.bp_bytes, (size_t)atomic_load(&server_bp_seen) * sizeof(big));
    CHECK(atomic_load(&server_drains) >= 1);
    CHECK_EQ(atomic_load(&zc_freed), 1);
    /* the server closed with 4000 "bye now"; the client engine echoed it */
    CHECK_EQ(c.close_code, 4000);
    CHECK_EQ(c.close_cause, SY_WS_CAUSE_PEER);
    CHECK(!strcmp(c.close_reason, "bye now"));
    CHECK_EQ(atomic_load(&server_close_code), 4000);
    CHECK_EQ(atomic_load(&server_close_cause), SY_WS_CAUSE_LOCAL);
}

TEST(script_without_compression)
{
    run_script(0);
}

TEST(script_with_compression)
{
    run_script(1);
}

static void bp2_open(sy_ws *ws, void *ud)
{
    (void)ud;
    sy_ws_send(ws, SY_WS_TEXT, "bp2", 3);
}

static void run_policy(int policy, int want_code, int want_cause)
{
    client c = {0};
    sy_ws_cbs cbs = {.on_open = bp2_open, .on_message = cl_message, .on_close = cl_close};
    atomic_store(&server_bp_seen, 0);
    g_policy = policy;
    int err = run_session(&c, 1 << 20, "/t", &cbs, NULL);
    g_policy = SY_WS_BP_BUFFER;
    CHECK_EQ(err, 0);
    int n = atomic_load(&server_bp_seen);
    CHECK(n > 1);                                        /* some sends OK, then DROPPED */
    CHECK_EQ(c.bp_bytes, (size_t)(n - 1) * sizeof(big)); /* the dropped one never left */
    CHECK_EQ(c.close_code, want_code);
    CHECK_EQ(atomic_load(&server_close_cause), want_cause);
}

TEST(backpressure_drop_policy)
{
    run_policy(SY_WS_BP_DROP, 1000, SY_WS_CAUSE_LOCAL);
}

TEST(backpressure_close_policy_1008)
{
    run_policy(SY_WS_BP_CLOSE, 1008, SY_WS_CAUSE_BACKPRESSURE);
}

/* ---- too big, and sends from another thread ---- */

static void big_open(sy_ws *ws, void *ud)
{
    (void)ud;
    static char payload[5000];
    memset(payload, 'a', sizeof(payload));
    sy_ws_send(ws, SY_WS_TEXT, payload, sizeof(payload));
}

TEST(message_over_limit_closes_1009)
{
    client c = {0};
    sy_ws_cbs cbs = {.on_open = big_open, .on_message = cl_message, .on_close = cl_close};
    CHECK_EQ(run_session(&c, 4096, "/t", &cbs, NULL), 0);
    CHECK_EQ(c.close_code, 1009);
    CHECK_EQ(atomic_load(&server_close_cause), SY_WS_CAUSE_TOO_BIG);
}

typedef struct threaded {
    sy_ws *ws;
    int n;
} threaded;

static void *sender(void *arg)
{
    threaded *t = arg;
    char m[32];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(m, sizeof(m), "async %d", i);
        if (sy_ws_send_async(t->ws, SY_WS_TEXT, m, (size_t)n) != 0)
            abort();
    }
    return NULL;
}

static int async_count;
static void async_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)op;
    (void)ud;
    char want[32];
    int n = snprintf(want, sizeof(want), "async %d", async_count);
    if ((size_t)n == len && !memcmp(want, data, len))
        async_count++;
    if (async_count == 100)
        sy_ws_close(ws, 1000, NULL);
}

static pthread_t async_thread;
static threaded async_t;
static void async_open(sy_ws *ws, void *ud)
{
    (void)ud;
    async_t.ws = ws;
    pthread_create(&async_thread, NULL, sender, &async_t);
}

TEST(sends_from_another_thread_arrive_in_order)
{
    int port;
    sy_server *srv = start_server(&port, 1 << 20);
    CHECK(srv != NULL);
    client c = {0};
    CHECK_EQ(sy_loop_new(&c.loop), 0);
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/t", port);
    sy_ws_client_cfg cfg = {.url = url};
    sy_ws_cbs cbs = {.on_open = async_open, .on_message = async_message, .on_close = cl_close};
    async_count = 0;
    CHECK_EQ(sy_ws_connect(c.loop, &cfg, &cbs, &c, &c.ws), 0);
    sy_loop_run(c.loop);
    pthread_join(async_thread, NULL);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    sy_loop_free(c.loop);
    CHECK_EQ(async_count, 100);
    CHECK_EQ(c.close_code, 1000);
}

static void refused_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    client *c = ud;
    (void)ws;
    c->close_cause = info->cause;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", info->detail ? info->detail : "");
    sy_loop_stop(c->loop);
}

TEST(client_reports_a_refused_handshake)
{
    client c = {0};
    sy_ws_cbs cbs = {.on_close = refused_close};
    CHECK_EQ(run_session(&c, 1 << 20, "/nope", &cbs, NULL), 0);
    CHECK_EQ(c.close_cause, SY_WS_CAUSE_HANDSHAKE);
    CHECK(strstr(c.close_reason, "404") != NULL);
}

int main(void)
{
    sy_set_log(NULL, 0, NULL);
    uint32_t x = 2463534242u; /* incompressible, so deflate cannot hide the backlog */
    for (size_t i = 0; i < sizeof(big); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big[i] = (char)x;
    }
    RUN(script_without_compression);
    RUN(script_with_compression);
    RUN(backpressure_drop_policy);
    RUN(backpressure_close_policy_1008);
    RUN(message_over_limit_closes_1009);
    RUN(sends_from_another_thread_arrive_in_order);
    RUN(client_reports_a_refused_handshake);
    return sy_t_summary();
}
