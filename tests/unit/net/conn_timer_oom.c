/* A connection's timer under allocation failure (hostile-input audit, issue 9). The timer
 * heap once grew when a timer was armed; when that allocation failed the timer was dropped and
 * the connection never timed out. Now creating a connection either fails cleanly (its heap
 * slot is reserved up front) or its timer is armed and fires: allocation N fails, for every N
 * the scenario needs, right at the heap's growth boundary. */
#include "harness.h"
#include "net/conn.h"

#include <fcntl.h>
#include <sys/socket.h>

static long alloc_count;
static long fail_at; /* 0 = never */

static void *t_malloc(size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return realloc(p, n);
}

static int timer_fired;

static ssize_t on_read(sy_bstream *c, uint8_t *data, size_t len)
{
    (void)c;
    (void)data;
    return (ssize_t)len;
}

static void on_timer(sy_bstream *c)
{
    timer_fired = 1;
    sy__bs_close(c, SY_ETIMEDOUT, 0);
    sy_loop_stop(c->loop);
}

static const sy_conn_proto proto = {.name = "test", .on_read = on_read, .on_timer = on_timer};

static void stop_task(sy_loop *loop, void *ud)
{
    (void)ud;
    sy_loop_stop(loop);
}

/* Run one loop iteration's worth of deferred work (closes, frees). */
static void settle(sy_loop *loop)
{
    if (sy_loop_post(loop, stop_task, NULL) == 0)
        sy_loop_run(loop);
}

#define BUSY 64 /* connections whose armed timers fill the heap's first allocation */

TEST(conn_timer_is_armed_or_conn_refused_when_allocation_fails)
{
    sy_set_allocator(t_malloc, t_realloc, free);
    int failures_seen = 0;
    for (long n = 1; n <= 6; n++) {
        sy_loop *loop;
        fail_at = 0;
        CHECK_EQ(sy_loop_new(&loop), 0);
        sy_conn *busy[BUSY];
        int peer[BUSY]; /* kept open: the busy connections must not see EOF and close */
        for (int i = 0; i < BUSY; i++) {
            int sv[2];
            CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
            peer[i] = sv[1];
            busy[i] = sy__conn_new(loop, sv[0], &sy__tcp_transport, &proto, NULL);
            CHECK(busy[i] != NULL);
            sy__conn_set_timeout(busy[i], 600000);
        }
        /* One more connection, with allocation n failing from here on. */
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        alloc_count = 0;
        fail_at = n;
        sy_conn *c = sy__conn_new(loop, sv[0], &sy__tcp_transport, &proto, NULL);
        if (c)
            sy__conn_set_timeout(c, 1);
        fail_at = 0;
        if (!c) {
            /* Refused cleanly: the fd is still the caller's, nothing else changed. */
            failures_seen++;
            CHECK(fcntl(sv[0], F_GETFD) >= 0);
            close(sv[0]);
        } else {
            /* Created: its timer must be in the heap, so the loop wakes for it and fires. */
            CHECK(sy__timer_active(&c->timer));
            timer_fired = 0;
            sy_loop_run(loop);
            CHECK(timer_fired);
        }
        close(sv[1]);
        for (int i = 0; i < BUSY; i++)
            sy__conn_close(busy[i], 0, 0);
        settle(loop);
        for (int i = 0; i < BUSY; i++)
            close(peer[i]);
        CHECK_EQ(loop->heap_len, 0);
        sy_loop_free(loop);
    }
    CHECK(failures_seen >= 1); /* the scenario did reach allocation failures */
    sy_set_allocator(NULL, NULL, NULL);
}

int main(void)
{
    sy_set_log(NULL, 0, NULL);
    RUN(conn_timer_is_armed_or_conn_refused_when_allocation_fails);
    return sy_t_summary();
}
