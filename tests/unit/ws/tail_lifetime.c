/* A server WebSocket lives in its connection's allocation (the tail the server reserves when
 * a route can switch to WebSocket). The handle may outlive the connection: tasks posted from
 * another thread (here: from on_close itself) keep it, and the block must then stay until
 * the last of them let go, then go exactly once. Allocations are counted through the hooks
 * (so a block kept forever, or freed twice, shows), and freed memory is overwritten (so a
 * task that ran on a freed block would misbehave even without ASan; the SAN build checks it
 * directly). */
#include "rawws.h"
#include "switchyard.h"
#include "ws/ws.h"

#include <malloc.h>
#include <stdatomic.h>

static atomic_long live;
static atomic_int opened, in_tail, closed, async_ok;

static void *t_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&live, (long)malloc_usable_size(p));
    return p;
}

static void *t_realloc(void *q, size_t n)
{
    long before = q ? (long)malloc_usable_size(q) : 0;
    void *p = realloc(q, n);
    if (p)
        atomic_fetch_add(&live, (long)malloc_usable_size(p) - before);
    return p;
}

static void t_free(void *p)
{
    if (!p)
        return;
    size_t n = malloc_usable_size(p);
    atomic_fetch_sub(&live, (long)n);
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = 0x5a;
    free(p);
}

static void on_open(sy_ws *ws, void *ud)
{
    (void)ud;
    atomic_fetch_add(&opened, 1);
    if (ws->in_tail)
        atomic_fetch_add(&in_tail, 1);
}

static void on_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)info;
    (void)ud;
    /* Each task holds the handle past this callback and the connection's end. */
    int a = sy_ws_send_async(ws, SY_WS_TEXT, "late", 4);
    int b = sy_ws_close_async(ws, 1000, "late");
    if (a == 0 && b == 0)
        atomic_fetch_add(&async_ok, 1);
    atomic_fetch_add(&closed, 1);
}

#define N 50

TEST(handle_in_the_tail_outlives_its_connection)
{
    sy_set_allocator(t_malloc, t_realloc, t_free);
    sy_server *srv = NULL;
    sy_ws_opts *o = NULL;
    CHECK(sy_server_new(&srv) == 0);
    CHECK(sy_server_listen(srv, "127.0.0.1:0") == 0);
    CHECK(sy_server_set(srv, SY_OPT_WORKERS, 1) == 0);
    CHECK(sy_ws_opts_new(&o) == 0);
    sy_ws_cbs cbs = {.on_open = on_open, .on_close = on_close};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    CHECK(r && sy_route_websocket(r, o) == 0);
    sy_ws_opts_free(o);
    CHECK(sy_server_start(srv) == 0);
    int port = sy_server_port(srv, 0);

    /* One round first, so that what the worker keeps for good (pools, caches) is there. */
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/t", NULL) >= 0);
    raw_close(&rc);
    for (int i = 0; i < 200 && atomic_load(&closed) < 1; i++)
        usleep(10000);
    usleep(50000);
    long base = atomic_load(&live);

    for (int i = 0; i < N; i++) {
        CHECK(raw_connect(&rc, port, "/t", NULL) >= 0 && strstr(rc.head, " 101 "));
        raw_close(&rc); /* no close frame: the connection just ends */
    }
    for (int i = 0; i < 500 && atomic_load(&closed) < N + 1; i++)
        usleep(10000);
    long after = 0;
    for (int i = 0; i < 100; i++) { /* the posted tasks run, then the blocks go */
        usleep(10000);
        if ((after = atomic_load(&live)) <= base)
            break;
    }
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    sy_set_allocator(NULL, NULL, NULL);
    CHECK_EQ(atomic_load(&opened), N + 1);
    CHECK_EQ(atomic_load(&in_tail), N + 1);
    CHECK_EQ(atomic_load(&closed), N + 1);
    CHECK_EQ(atomic_load(&async_ok), N + 1);
    if (after > base)
        printf("  %ld bytes still held after %d connections went\n", after - base, N);
    CHECK(after <= base);
}

int main(void)
{
    RUN(handle_in_the_tail_outlives_its_connection);
    return sy_t_summary();
}
