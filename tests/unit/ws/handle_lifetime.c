/* A WebSocket handle may outlive its connection: a pending cross-thread task keeps it alive
 * after on_close, while the connection itself is freed on the loop thread. The functions that
 * may be called then (sy_ws_send_async, sy_ws_close_async, sy_ws_loop, and the calls that
 * answer "closed") must never touch the freed connection. Freed memory is overwritten here,
 * so a read through a dangling connection pointer fails even without ASan. The async calls
 * also check their arguments on the caller's thread, and a sy_ws_connect that returns an
 * error never calls back afterwards. */
#include "harness.h"
#include "switchyard.h"

#include <malloc.h>

static void poison_free(void *p)
{
    /* volatile: a plain memset right before free is a dead store the compiler may drop */
    volatile unsigned char *b = p;
    for (size_t i = 0, n = p ? malloc_usable_size(p) : 0; i < n; i++)
        b[i] = 0x5a;
    free(p);
}

static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, op, data, len);
}

typedef struct client {
    sy_loop *loop;
    sy_ws *ws;
    int in_close_async;
    int in_close_send;
    size_t in_close_buffered;
    int closed;
    int bad_async[4];
} client;

static void cl_open(sy_ws *ws, void *ud)
{
    client *c = ud;
    /* Invalid async calls fail at once: on the loop their result would be lost (and opcode
     * 0 used to run as a close with an uninitialised code). */
    char long_reason[200];
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = 0;
    c->bad_async[0] = sy_ws_send_async(ws, 0, "x", 1);
    c->bad_async[1] = sy_ws_send_async(ws, SY_WS_TEXT, "\xff", 1);
    c->bad_async[2] = sy_ws_close_async(ws, 1006, NULL);
    c->bad_async[3] = sy_ws_close_async(ws, 1000, long_reason);
    sy_ws_close(ws, 1000, NULL);
}

static void cl_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    client *c = ud;
    (void)info;
    c->closed = 1;
    /* The pending task keeps the handle alive past this callback... */
    c->in_close_async = sy_ws_send_async(ws, SY_WS_TEXT, "late", 4);
    c->in_close_send = sy_ws_send(ws, SY_WS_TEXT, "late", 4);
    c->in_close_buffered = sy_ws_buffered(ws);
    /* ...and the loop stops before running it, after the connection is freed. */
    sy_loop_stop(c->loop);
}

static void stop_task(sy_loop *loop, void *ud)
{
    (void)ud;
    sy_loop_stop(loop);
}

TEST(async_calls_after_the_connection_is_freed)
{
    sy_server *srv;
    sy_ws_opts *o;
    sy_set_allocator(malloc, realloc, poison_free);
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_ws_opts_new(&o), 0);
    sy_ws_cbs scbs = {.on_message = srv_message};
    sy_ws_opts_set_cbs(o, &scbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    CHECK(r != NULL);
    CHECK_EQ(sy_route_websocket(r, o), 0);
    sy_ws_opts_free(o);
    CHECK_EQ(sy_server_start(srv), 0);
    client c = {0};
    CHECK_EQ(sy_loop_new(&c.loop), 0);
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/t", sy_server_port(srv, 0));
    sy_ws_client_cfg cfg = {.url = url};
    sy_ws_cbs cbs = {.on_open = cl_open, .on_close = cl_close};
    CHECK_EQ(sy_ws_connect(c.loop, &cfg, &cbs, &c, &c.ws), 0);
    sy_loop_run(c.loop);
    CHECK(c.closed);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(c.bad_async[i], SY_EINVAL);
    CHECK_EQ(c.in_close_async, 0);
    CHECK_EQ(c.in_close_send, SY_ECLOSED);
    CHECK_EQ(c.in_close_buffered, 0);
    /* The connection is gone now; the handle is not (its task has not run). */
    CHECK(sy_ws_loop(c.ws) == c.loop);
    CHECK_EQ(sy_ws_send_async(c.ws, SY_WS_TEXT, "later", 5), 0);
    CHECK_EQ(sy_ws_close_async(c.ws, 1000, NULL), 0);
    /* Run the tasks (they see a dead handle and only drop their references). */
    CHECK_EQ(sy_loop_post(c.loop, stop_task, NULL), 0);
    sy_loop_run(c.loop);
    sy_loop_free(c.loop);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    sy_set_allocator(NULL, NULL, NULL);
}

/* ---- a failed sy_ws_connect owes the caller nothing ---- */

static long alloc_count, fail_at; /* this test's loop runs on this thread only */

static void *t_malloc(size_t n)
{
    return ++alloc_count == fail_at ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return ++alloc_count == fail_at ? NULL : realloc(p, n);
}

static int late_callbacks;

static void late_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)info;
    (void)ud;
    late_callbacks++;
    sy_loop_stop(sy_ws_loop(ws));
}

TEST(failed_connect_calls_nothing_back)
{
    /* Port 9 on loopback: refused (or timed out), so every successful connect ends in one
     * on_close; a failed one must end in none (the caller has no handle, and may already
     * have freed what ud points to). */
    for (long n = 1; n <= 40; n++) {
        sy_loop *loop;
        CHECK_EQ(sy_loop_new(&loop), 0);
        sy_ws *ws = NULL;
        sy_ws_client_cfg cfg = {.url = "ws://127.0.0.1:9/x", .connect_timeout_ms = 50};
        sy_ws_cbs cbs = {.on_close = late_close};
        late_callbacks = 0;
        alloc_count = 0;
        fail_at = n;
        sy_set_allocator(t_malloc, t_realloc, free);
        int err = sy_ws_connect(loop, &cfg, &cbs, NULL, &ws);
        fail_at = 0;
        sy_set_allocator(NULL, NULL, NULL);
        if (err) /* one turn of the loop runs whatever the failed call left behind */
            CHECK_EQ(sy_loop_post(loop, stop_task, NULL), 0);
        sy_loop_run(loop);
        sy_loop_free(loop);
        CHECK_EQ(late_callbacks, err ? 0 : 1);
    }
}

int main(void)
{
    sy_set_log(NULL, 0, NULL);
    RUN(async_calls_after_the_connection_is_freed);
    RUN(failed_connect_calls_nothing_back);
    return sy_t_summary();
}
