/* The per-connection inflate budget: a peer sending highly compressible messages gets them
 * inflated at SY_WS_OPT_MAX_INFLATE_RATE bytes per second at most (one second's worth at
 * once), by pausing reads, never by closing; heartbeats and the idle timeout do not count our
 * own pause against the peer; the default leaves ordinary traffic alone. Only lower bounds
 * on time are checked where the budget must slow things down (a loaded machine only makes
 * them easier to meet); the one upper bound is 50 times what the work takes. */
#include "harness.h"
#include "switchyard.h"

#include <stdatomic.h>
#include <time.h>

#define MSG_SIZE (1u << 20)
#define NMSGS 4

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static atomic_int srv_msgs, srv_bad, srv_close_code;
static _Atomic uint64_t first_ms, last_ms;

static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    const uint8_t *p = data;
    if (op != SY_WS_BINARY || len != MSG_SIZE || p[0] != 7 || p[len - 1] != 7)
        atomic_fetch_add(&srv_bad, 1);
    uint64_t now = mono_ms();
    if (atomic_fetch_add(&srv_msgs, 1) == 0)
        atomic_store(&first_ms, now);
    atomic_store(&last_ms, now);
    if (atomic_load(&srv_msgs) == NMSGS)
        sy_ws_send(ws, SY_WS_TEXT, "done", 4);
}

static void srv_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)ws;
    (void)ud;
    atomic_store(&srv_close_code, info->code);
}

typedef struct client {
    sy_loop *loop;
    sy_ws *ws;
    int done;
    int close_code;
    char ext[128];
} client;

static uint8_t payload[MSG_SIZE];

static void cl_open(sy_ws *ws, void *ud)
{
    client *c = ud;
    snprintf(c->ext, sizeof(c->ext), "%s", sy_ws_extensions(ws));
    /* All queued at once: a megabyte of one byte deflates to about a kilobyte. */
    for (int i = 0; i < NMSGS; i++)
        sy_ws_send(ws, SY_WS_BINARY, payload, sizeof(payload));
}

static void cl_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    client *c = ud;
    (void)op;
    if (len == 4 && !memcmp(data, "done", 4)) {
        c->done = 1;
        sy_ws_close(ws, 1000, NULL);
    }
}

static void cl_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    client *c = ud;
    (void)ws;
    c->close_code = info->code;
    sy_loop_stop(c->loop);
}

/* Run one session against a server with the given inflate rate (UINT64_MAX = default);
 * returns the time between the server's first and last message, or -1. */
static long session(uint64_t rate, client *c)
{
    sy_server *srv;
    sy_ws_opts *o;
    atomic_store(&srv_msgs, 0);
    atomic_store(&srv_bad, 0);
    atomic_store(&srv_close_code, 0);
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        return -1;
    sy_ws_cbs cbs = {.on_message = srv_message, .on_close = srv_close};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    if (rate != UINT64_MAX && sy_ws_opts_set(o, SY_WS_OPT_MAX_INFLATE_RATE, rate))
        return -1;
    /* Pauses of about a second: idle and ping timers shorter than that must not fire. */
    sy_ws_opts_set(o, SY_WS_OPT_IDLE_TIMEOUT_MS, 500);
    sy_ws_opts_set(o, SY_WS_OPT_PING_INTERVAL_MS, 300);
    sy_ws_opts_set(o, SY_WS_OPT_PONG_TIMEOUT_MS, 200);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        return -1;
    sy_ws_opts_free(o);
    memset(c, 0, sizeof(*c));
    if (sy_loop_new(&c->loop))
        return -1;
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/t", sy_server_port(srv, 0));
    sy_ws_client_cfg cfg = {.url = url};
    sy_ws_cbs ccbs = {.on_open = cl_open, .on_message = cl_message, .on_close = cl_close};
    int err = sy_ws_connect(c->loop, &cfg, &ccbs, c, &c->ws);
    if (!err)
        sy_loop_run(c->loop);
    sy_loop_free(c->loop);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    if (err)
        return -1;
    return (long)(atomic_load(&last_ms) - atomic_load(&first_ms));
}

TEST(inflating_is_paced_not_refused)
{
    client c;
    /* 1 MiB/s: the first message comes out of the first second's budget, each of the
     * three others waits about a second for its own. */
    long elapsed = session(1u << 20, &c);
    CHECK(elapsed >= 0);
    CHECK(!strcmp(c.ext, "permessage-deflate"));
    CHECK_EQ(atomic_load(&srv_msgs), NMSGS);
    CHECK_EQ(atomic_load(&srv_bad), 0);
    CHECK(c.done);
    CHECK_EQ(c.close_code, 1000); /* paused, never closed: no 1008/1009, no idle/ping close */
    CHECK_EQ(atomic_load(&srv_close_code), 1000);
    printf("  %d MiB inflated in %ld ms at 1 MiB/s\n", NMSGS, elapsed);
    CHECK(elapsed >= 1500);
}

TEST(default_budget_leaves_ordinary_traffic_alone)
{
    client c;
    long elapsed = session(UINT64_MAX, &c);
    CHECK(elapsed >= 0);
    CHECK_EQ(atomic_load(&srv_msgs), NMSGS);
    CHECK_EQ(atomic_load(&srv_bad), 0);
    CHECK_EQ(c.close_code, 1000);
    CHECK(elapsed < 1500);
}

TEST(option_range)
{
    sy_ws_opts *o;
    CHECK_EQ(sy_ws_opts_new(&o), 0);
    CHECK_EQ(sy_ws_opts_set(o, SY_WS_OPT_MAX_INFLATE_RATE, 0), 0); /* unlimited */
    CHECK_EQ(sy_ws_opts_set(o, SY_WS_OPT_MAX_INFLATE_RATE, (uint64_t)1 << 40), 0);
    CHECK_EQ(sy_ws_opts_set(o, SY_WS_OPT_MAX_INFLATE_RATE, ((uint64_t)1 << 40) + 1), SY_ERANGE);
    sy_ws_opts_free(o);
}

int main(void)
{
    sy_set_log(NULL, 0, NULL);
    memset(payload, 7, sizeof(payload));
    RUN(inflating_is_paced_not_refused);
    RUN(default_budget_leaves_ordinary_traffic_alone);
    RUN(option_range);
    return sy_t_summary();
}
