/* The process-wide deflate memory budget is taken at the handshake: connections that have
 * negotiated permessage-deflate but not yet sent a message count in full, so handshakes
 * beyond the budget get the cheaper settings, then no compression; closing gives the memory
 * back. Reservations never leak: not when the application refuses the handshake, not when
 * the client's offer is declined, not when any allocation fails on the way. */
#include "rawws.h"
#include "switchyard.h"
#include "ws/pmd.h"

#include <stdatomic.h>

static sy_pmd_params pp(uint8_t tx, uint8_t rx)
{
    sy_pmd_params p = {tx, rx, 0, 0};
    return p;
}

static void echo(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, op, data, len);
}

static int refuse(sy_req *req, const char **reason, void *ud)
{
    (void)req;
    (void)ud;
    *reason = "not today";
    return 403;
}

static uint64_t g_drain_ms = 5000;

static sy_server *start(int *port, sy_ws_accept_fn accept)
{
    sy_server *srv;
    sy_ws_opts *o;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) ||
        sy_server_set(srv, SY_OPT_DRAIN_TIMEOUT_MS, g_drain_ms) || sy_ws_opts_new(&o))
        return NULL;
    sy_ws_cbs cbs = {.on_message = echo};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    if (accept)
        sy_ws_opts_set_accept(o, accept);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        return NULL;
    sy_ws_opts_free(o);
    *port = sy_server_port(srv, 0);
    return srv;
}

static void stop(sy_server *srv)
{
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
}

/* The server frees connections on its own thread: wait (bounded) for the counter. */
static uint64_t used_settles_at(uint64_t want)
{
    for (int i = 0; i < 500 && sy_pmd_budget_used() != want; i++)
        usleep(10000);
    return sy_pmd_budget_used();
}

/* Close handshake from the raw client; returns once the server has answered. */
static void raw_bye(raw_conn *rc)
{
    uint8_t buf[32];
    size_t n = 0;
    raw_result res;
    raw_frame(buf, &n, SY_WS_OP_CLOSE, 1, 0, "\x03\xe8", 2);
    raw_send(rc, buf, n);
    raw_read_msgs(rc, &res, 0);
    raw_close(rc);
}

static const char offer[] = "permessage-deflate; client_max_window_bits";

enum { NONE, FULL, CHEAP };

static int kind(const raw_conn *rc)
{
    if (!strstr(rc->head, "Sec-WebSocket-Extensions:"))
        return NONE;
    if (strstr(rc->head, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        return FULL;
    if (strstr(rc->head, "server_max_window_bits=10") &&
        strstr(rc->head, "client_max_window_bits=10"))
        return CHEAP;
    return -1;
}

#define NCONN 24

TEST(handshakes_reserve_before_any_message)
{
    /* What the defaults (15-bit windows, memLevel 8) and the cheap settings cost. */
    sy_pmd_params f = pp(15, 15), c = pp(10, 10);
    uint64_t full = sy_pmd_cost(&f, 8), cheap = sy_pmd_cost(&c, 4);
    CHECK(cheap < full);
    /* Full settings may fill half the budget, cheap ones the rest: with this budget one
     * connection gets the defaults, the next ones the cheap settings (some 15 of them),
     * and the rest no compression. */
    uint64_t budget = 2 * full + 3 * cheap + cheap / 2;
    int want[NCONN], nfull = 0, ncheap = 0, nnone = 0;
    uint64_t used = 0;
    for (int i = 0; i < NCONN; i++) {
        if (used + full <= budget / 2)
            want[i] = FULL, used += full, nfull++;
        else if (used + cheap <= budget)
            want[i] = CHEAP, used += cheap, ncheap++;
        else
            want[i] = NONE, nnone++;
    }
    CHECK(nfull >= 1 && ncheap >= 1 && nnone >= 1);
    sy_ws_set_deflate_budget(budget);
    int port;
    sy_server *srv = start(&port, NULL);
    CHECK(srv != NULL);
    static raw_conn rc[NCONN + 2];
    for (int i = 0; i < NCONN; i++) {
        CHECK(raw_connect(&rc[i], port, "/t", offer) >= 0);
        CHECK(strstr(rc[i].head, " 101 ") != NULL);
        /* No message has been sent on any of them. */
        CHECK_EQ(kind(&rc[i]), want[i]);
    }
    CHECK_EQ(sy_pmd_budget_used(), used);
    CHECK(used <= budget);

    /* Closing gives the memory back, and the next handshake gets it (the cheap settings:
     * the cheap connections hold more than half the budget by themselves). */
    raw_bye(&rc[0]);
    used -= full;
    CHECK_EQ(used_settles_at(used), used);
    CHECK(used + full > budget / 2 && used + cheap <= budget);
    CHECK(raw_connect(&rc[NCONN], port, "/t", offer) >= 0);
    CHECK_EQ(kind(&rc[NCONN]), CHEAP);
    used += cheap;
    CHECK_EQ(sy_pmd_budget_used(), used);

    /* Traffic changes nothing: the streams were paid for at the handshake. */
    uint8_t buf[256];
    char text[100];
    memset(text, 'a', sizeof(text)); /* above the 64-byte compression threshold */
    size_t n = 0;
    raw_frame(buf, &n, SY_WS_OP_TEXT, 1, 0, text, sizeof(text));
    CHECK_EQ(raw_send(&rc[NCONN], buf, n), 0);
    raw_result res;
    raw_read_msgs(&rc[NCONN], &res, 1); /* the echo, compressed: both streams exist now */
    CHECK_EQ(res.nmsgs, 1);
    CHECK(res.msgs[0].compressed);
    CHECK_EQ(sy_pmd_budget_used(), used);

    for (int i = 1; i <= NCONN; i++)
        raw_bye(&rc[i]);
    CHECK_EQ(used_settles_at(0), 0);

    /* A connection that just drops (no close handshake) releases too. */
    CHECK(raw_connect(&rc[NCONN + 1], port, "/t", offer) >= 0);
    CHECK_EQ(kind(&rc[NCONN + 1]), FULL);
    raw_close(&rc[NCONN + 1]);
    CHECK_EQ(used_settles_at(0), 0);
    stop(srv);
    sy_ws_set_deflate_budget((uint64_t)256 << 20);
}

TEST(refused_handshake_holds_nothing)
{
    int port;
    sy_server *srv = start(&port, refuse);
    CHECK(srv != NULL);
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/t", offer) >= 0);
    CHECK(strstr(rc.head, " 403 ") != NULL);
    CHECK_EQ(kind(&rc), NONE);
    raw_close(&rc);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    stop(srv);
}

/* ---- the client side ---- */

typedef struct client {
    sy_loop *loop;
    sy_ws *ws;
    uint64_t used_at_open;
    char ext[128];
    int close_code;
} client;

static void cl_open(sy_ws *ws, void *ud)
{
    client *c = ud;
    c->used_at_open = sy_pmd_budget_used();
    snprintf(c->ext, sizeof(c->ext), "%s", sy_ws_extensions(ws));
    sy_ws_close(ws, 1000, NULL);
}

static void cl_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    client *c = ud;
    (void)ws;
    c->close_code = info->code;
    sy_loop_stop(c->loop);
}

static int run_client(int port, client *c)
{
    memset(c, 0, sizeof(*c));
    if (sy_loop_new(&c->loop))
        return -1;
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/t", port);
    sy_ws_client_cfg cfg = {.url = url};
    sy_ws_cbs cbs = {.on_open = cl_open, .on_close = cl_close};
    int err = sy_ws_connect(c->loop, &cfg, &cbs, c, &c->ws);
    if (!err)
        sy_loop_run(c->loop);
    sy_loop_free(c->loop);
    return err;
}

TEST(client_reserves_what_it_offers)
{
    int port;
    sy_server *srv = start(&port, NULL);
    CHECK(srv != NULL);
    sy_pmd_params f = pp(15, 15);
    uint64_t full = sy_pmd_cost(&f, 8);
    client c;
    /* Both ends in one process share the budget: server and client each hold one. */
    CHECK_EQ(run_client(port, &c), 0);
    CHECK_EQ(c.close_code, 1000);
    CHECK(!strcmp(c.ext, "permessage-deflate"));
    CHECK_EQ(c.used_at_open, 2 * full);
    CHECK_EQ(used_settles_at(0), 0);

    /* Room for the client's full offer twice: the client takes it (half the budget), the
     * server answers with the cheap settings, and the client gives back what its offer
     * cost beyond what the answer costs (its memLevel stays 8). */
    sy_pmd_config cfg = {15, 8, 0, 0};
    sy_ws_set_deflate_budget(2 * sy_pmd_offer_cost(&cfg));
    CHECK_EQ(run_client(port, &c), 0);
    CHECK_EQ(c.close_code, 1000);
    CHECK(!strcmp(c.ext, "permessage-deflate; server_max_window_bits=10; "
                         "client_max_window_bits=10"));
    sy_pmd_params ten = pp(10, 10);
    CHECK_EQ(c.used_at_open, sy_pmd_cost(&ten, 4) + sy_pmd_cost(&ten, 8));
    CHECK_EQ(used_settles_at(0), 0);

    /* Room for the client's cheap offer only: the server declines, and the client gives
     * back its reservation as soon as the answer says so. */
    sy_pmd_cheap_config(&cfg);
    sy_ws_set_deflate_budget(sy_pmd_offer_cost(&cfg));
    CHECK_EQ(run_client(port, &c), 0);
    CHECK_EQ(c.close_code, 1000);
    CHECK(!strcmp(c.ext, ""));
    CHECK_EQ(c.used_at_open, 0);
    CHECK_EQ(used_settles_at(0), 0);

    /* No room at all: the client offers nothing. */
    sy_ws_set_deflate_budget(1);
    CHECK_EQ(run_client(port, &c), 0);
    CHECK(!strcmp(c.ext, ""));
    CHECK_EQ(c.used_at_open, 0);
    sy_ws_set_deflate_budget((uint64_t)256 << 20);
    stop(srv);
    CHECK_EQ(sy_pmd_budget_used(), 0);
}

/* ---- allocation failures ---- */

static atomic_long alloc_count, fail_at;
static atomic_int counting;

static int fail_now(void)
{
    return atomic_load(&counting) && atomic_fetch_add(&alloc_count, 1) + 1 == atomic_load(&fail_at);
}

static void *t_malloc(size_t n)
{
    return fail_now() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : realloc(p, n);
}

/* A handshake with deflate, one message and a close while allocation n (counted from the
 * first byte the client sends) fails. Returns how many allocations that took. */
static long one_failing(long n)
{
    int port;
    sy_server *srv = start(&port, NULL);
    if (!srv)
        abort();
    raw_conn rc;
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_at, n);
    atomic_store(&counting, 1);
    if (raw_connect(&rc, port, "/t", offer) >= 0 && strstr(rc.head, " 101 ")) {
        uint8_t buf[64];
        size_t len = 0;
        raw_frame(buf, &len, SY_WS_OP_TEXT, 1, 0, "Hello", 5);
        raw_send(&rc, buf, len);
        raw_bye(&rc);
    } else {
        raw_close(&rc);
    }
    atomic_store(&counting, 0);
    long made = atomic_load(&alloc_count);
    stop(srv);
    return made;
}

TEST(no_reservation_leaks_when_allocations_fail)
{
    /* A failed allocation may leave a connection unanswered (that is for the HTTP layer's
     * own tests): wait less for it here. */
    raw_timeout_s = 2;
    g_drain_ms = 500;
    sy_set_allocator(t_malloc, t_realloc, free);
    long total = one_failing(0);
    CHECK(total > 5);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    /* Counts vary a little with timing (threads); go a bit past the total. */
    for (long n = 1; n <= total + 5; n++) {
        one_failing(n);
        if (sy_pmd_budget_used() != 0)
            printf("  allocation %ld failing: %llu bytes stay reserved\n", n,
                   (unsigned long long)sy_pmd_budget_used());
        CHECK_EQ(sy_pmd_budget_used(), 0);
    }
    sy_set_allocator(NULL, NULL, NULL);
    raw_timeout_s = 10;
    g_drain_ms = 5000;
}

int main(void)
{
    sy_set_log(NULL, 0, NULL);
    RUN(handshakes_reserve_before_any_message);
    RUN(refused_handshake_holds_nothing);
    RUN(client_reserves_what_it_offers);
    RUN(no_reservation_leaks_when_allocations_fail);
    return sy_t_summary();
}
