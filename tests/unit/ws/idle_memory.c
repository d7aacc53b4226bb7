/* What an idle WebSocket costs in heap: a server in this process, N connections upgraded and
 * left idle, and every allocation the library makes counted (allocator hooks, at the size the
 * allocator really hands out plus its header). The cost per connection is the growth between
 * two counts of open connections, so what is paid once (pools, per-thread buffers) cancels
 * out. docs/memory.md accounts for the bytes; this keeps them from creeping back. */
#include "harness.h"
#include "rawws.h"
#include "switchyard.h"

#include <malloc.h>
#include <stdatomic.h>

static atomic_long live; /* bytes the library holds (usable size + an 8-byte header each) */
static atomic_int opened;

static long block_cost(void *p)
{
    return p ? (long)malloc_usable_size(p) + 8 : 0;
}

static void *t_malloc(size_t n)
{
    void *p = malloc(n);
    atomic_fetch_add(&live, block_cost(p));
    return p;
}

static void *t_realloc(void *q, size_t n)
{
    long before = block_cost(q);
    void *p = realloc(q, n);
    if (p)
        atomic_fetch_add(&live, block_cost(p) - before);
    return p;
}

static void t_free(void *p)
{
    atomic_fetch_sub(&live, block_cost(p));
    free(p);
}

static void on_open(sy_ws *ws, void *ud)
{
    (void)ws;
    (void)ud;
    atomic_fetch_add(&opened, 1);
}

static void on_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, op, data, len);
}

/* The count once it has stopped moving (the worker may finish a flush after our read). */
static long settled(void)
{
    long v = atomic_load(&live);
    for (int i = 0; i < 50; i++) {
        usleep(20000);
        long w = atomic_load(&live);
        if (w == v)
            return v;
        v = w;
    }
    return v;
}

#define N1 200
#define N2 456
static raw_conn conns[N2];

/* Open connections up to n; each one echoes one small message (so a connection that has
 * carried traffic is what is measured, not one fresh from its handshake). */
static int open_upto(int from, int n, int port)
{
    for (int i = from; i < n; i++) {
        if (raw_connect(&conns[i], port, "/t", NULL) < 0 || !strstr(conns[i].head, " 101 "))
            return -1;
        uint8_t buf[64];
        size_t len = 0;
        raw_frame(buf, &len, SY_WS_OP_BINARY, 1, 0, "ping-pong", 9);
        raw_result res;
        if (raw_send(&conns[i], buf, len) < 0)
            return -1;
        raw_read_msgs(&conns[i], &res, 1);
        if (res.nmsgs != 1 || res.msgs[0].len != 9)
            return -1;
    }
    return 0;
}

TEST(idle_websocket_heap_per_connection)
{
    sy_set_allocator(t_malloc, t_realloc, t_free);
    sy_server *srv = NULL;
    sy_ws_opts *o = NULL;
    CHECK(sy_server_new(&srv) == 0);
    CHECK(sy_server_listen(srv, "127.0.0.1:0") == 0);
    CHECK(sy_server_set(srv, SY_OPT_WORKERS, 1) == 0);
    CHECK(sy_ws_opts_new(&o) == 0);
    CHECK(sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, 0) == 0);
    sy_ws_cbs cbs = {.on_open = on_open, .on_message = on_message};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    CHECK(r && sy_route_websocket(r, o) == 0);
    sy_ws_opts_free(o);
    CHECK(sy_server_start(srv) == 0);
    int port = sy_server_port(srv, 0);

    int ok = open_upto(0, N1, port) == 0;
    long at1 = settled();
    ok = ok && open_upto(N1, N2, port) == 0;
    long at2 = settled();
    long per_conn = (at2 - at1) / (N2 - N1);
    printf("  heap per idle WebSocket: %ld bytes (%d opened)\n", per_conn, atomic_load(&opened));

    for (int i = 0; i < N2; i++)
        raw_close(&conns[i]);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    sy_set_allocator(NULL, NULL, NULL);
    CHECK(ok);
    CHECK_EQ(atomic_load(&opened), N2);
    /* The connection with the engine in its tail (one 400-byte block), the switch's record
     * (counters and route set: a 32-byte block), one timer-heap slot; nothing per connection
     * beyond them (docs/memory.md accounts for each byte). */
    CHECK(per_conn <= 448);
}

int main(void)
{
    RUN(idle_websocket_heap_per_connection);
    return sy_t_summary();
}
