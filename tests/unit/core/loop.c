/* Unit tests for src/core/loop.c: the timer heap, deferred work, cross-thread tasks. */
#include "core/loop.h"
#include "harness.h"

#include <pthread.h>
#include <time.h>

typedef struct {
    sy_timer t;
    int id;
} tt;

static int fired[1000];
static int nfired;
static uint64_t fired_at[1000];
static sy_loop *g_loop;
static int stop_at; /* stop g_loop when this many timers fired (0: never) */

static void on_timer(sy_timer *t)
{
    tt *x = sy_container_of(t, tt, t);
    fired_at[nfired] = t->deadline;
    fired[nfired++] = x->id;
    if (nfired == stop_at)
        sy_loop_stop(g_loop);
}

static void stop_task(sy_loop *loop, void *ud)
{
    (void)ud;
    sy_loop_stop(loop);
}

TEST(timers_fire_in_deadline_order)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    static tt ts[500];
    nfired = 0;
    CHECK_EQ(sy__timer_reserve(loop, 501), 0); /* the 500 and the stopper */
    uint64_t now = loop->now_ms;
    unsigned seed = 12345;
    for (int i = 0; i < 500; i++) {
        ts[i].id = i;
        ts[i].t.cb = on_timer;
        seed = seed * 1103515245u + 12345u;
        sy__timer_start(loop, &ts[i].t, now + (seed >> 16) % 50);
    }
    /* Stop every third timer and move every fifth: the heap must stay consistent. */
    for (int i = 0; i < 500; i += 3)
        sy__timer_stop(loop, &ts[i].t);
    for (int i = 1; i < 500; i += 5)
        sy__timer_start(loop, &ts[i].t, now + 60);
    static tt stopper;
    stopper.t.cb = on_timer;
    stopper.id = -1;
    sy__timer_start(loop, &stopper.t, now + 70);
    /* Run until the stopper fired. */
    while (nfired == 0 || fired[nfired - 1] != -1) {
        CHECK_EQ(sy_loop_post(loop, stop_task, NULL), 0);
        sy_loop_run(loop);
    }
    int expected = 1; /* the stopper */
    for (int i = 0; i < 500; i++)
        if (i % 3 != 0 || i % 5 == 1) /* stopped ones that were restarted fire too */
            expected++;
    CHECK_EQ(nfired, expected);
    for (int i = 1; i < nfired; i++)
        CHECK(fired_at[i - 1] <= fired_at[i]);
    for (int i = 0; i < 500; i++)
        CHECK(!sy__timer_active(&ts[i].t));
    sy_loop_free(loop);
}

static long allocs_left = -1; /* < 0: unlimited */

static void *t_malloc(size_t n)
{
    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    return realloc(p, n);
}

/* Reserved timers arm and fire with every allocation failing; a reservation that needs memory
 * fails without changing anything. */
TEST(reserved_timers_need_no_memory)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy_set_allocator(t_malloc, t_realloc, free);
    static tt ts[300];
    CHECK_EQ(sy__timer_reserve(loop, 300), 0);
    CHECK(loop->heap_cap >= 300);
    allocs_left = 0;
    size_t cap = loop->heap_cap;
    CHECK_EQ(sy__timer_reserve(loop, cap - 300 + 1), SY_ENOMEM); /* would have to grow */
    CHECK_EQ(loop->timer_reserved, 300);
    CHECK_EQ(sy__timer_reserve(loop, cap - 300), 0); /* fits: no allocation */
    sy__timer_release(loop, cap - 300);
    nfired = 0;
    uint64_t now = loop->now_ms;
    for (int i = 0; i < 300; i++) {
        ts[i].id = i;
        ts[i].t.cb = on_timer;
        sy__timer_start(loop, &ts[i].t, now + (uint64_t)(i % 7));
    }
    CHECK_EQ(loop->heap_len, 300); /* none dropped */
    g_loop = loop;
    stop_at = 300;
    sy_loop_run(loop);
    stop_at = 0;
    CHECK_EQ(nfired, 300);
    allocs_left = -1;
    sy_set_allocator(NULL, NULL, NULL);
    sy__timer_release(loop, 300);
    CHECK_EQ(loop->timer_reserved, 0);
    sy_loop_free(loop);
}

static int deferred_count;
static void on_deferred(sy_deferred *d)
{
    (void)d;
    deferred_count++;
    sy_loop_stop(g_loop);
}

TEST(deferred_runs_once_per_queue)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    g_loop = loop;
    sy_deferred d = {.cb = on_deferred};
    deferred_count = 0;
    sy__defer(loop, &d);
    sy__defer(loop, &d); /* queued twice: runs once */
    sy_loop_run(loop);
    CHECK_EQ(deferred_count, 1);
    sy_loop_free(loop);
}

/* Entries run in the order queued, each once per queueing, also when one queues itself
 * again from its own callback (it then runs after the others). */
static char order[16];
static int norder;
static sy_deferred da, db, dc;
static void on_order(sy_deferred *d)
{
    char c = d == &da ? 'a' : d == &db ? 'b' : 'c';
    order[norder++] = c;
    if (d == &da && norder == 1)
        sy__defer(g_loop, &da);
    if (norder == 4)
        sy_loop_stop(g_loop);
}

TEST(deferred_order_and_requeue)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    g_loop = loop;
    da.cb = db.cb = dc.cb = on_order;
    norder = 0;
    sy__defer(loop, &da);
    sy__defer(loop, &db);
    sy__defer(loop, &dc);
    CHECK(sy__deferred_queued(&da) && sy__deferred_queued(&dc));
    sy_loop_run(loop);
    order[norder] = 0;
    CHECK(strcmp(order, "abca") == 0);
    CHECK(!sy__deferred_queued(&da) && !sy__deferred_queued(&db));
    sy_loop_free(loop);
}

/* The Date line the loop gives matches the wall clock once the loop's time has moved on. */
static int date_is_now(sy_loop *loop)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        time_t before = time(NULL);
        size_t len;
        const char *d = sy__loop_date(loop, &len);
        time_t after = time(NULL);
        if (before != after)
            continue; /* a second boundary passed while we looked: look again */
        char want[64];
        struct tm tm;
        gmtime_r(&before, &tm);
        size_t wl = strftime(want, sizeof(want), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        return len == wl && memcmp(d, want, wl) == 0;
    }
    return 0;
}

TEST(date_follows_the_wall_clock)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy__loop_update_time(loop);
    CHECK(date_is_now(loop));
    for (int i = 0; i < 3; i++) {
        /* Into the next second (and a bit), as a loop turn would see it. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        usleep((useconds_t)((1000000000L - ts.tv_nsec) / 1000 + 20000));
        sy__loop_update_time(loop);
        CHECK(date_is_now(loop));
    }
    sy_loop_free(loop);
}

static int task_sum;
static void add_task(sy_loop *loop, void *ud)
{
    (void)loop;
    task_sum += (int)(intptr_t)ud;
    if (task_sum == 4 * 1000 * 1001 / 2)
        sy_loop_stop(loop);
}

static void *poster(void *arg)
{
    for (int i = 1; i <= 1000; i++)
        if (sy_loop_post(arg, add_task, (void *)(intptr_t)i) != 0)
            abort();
    return NULL;
}

TEST(post_from_other_threads)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    task_sum = 0;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, poster, loop);
    sy_loop_run(loop);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(task_sum, 4 * 1000 * 1001 / 2);
    sy_loop_free(loop);
}

static int signal_flags;
static void on_sig(sy_loop *loop, int flags, void *ud)
{
    (void)ud;
    signal_flags |= flags;
    sy_loop_stop(loop);
}

TEST(signal_flags_reach_the_loop)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    loop->on_signal = on_sig;
    signal_flags = 0;
    sy__loop_signal(loop, 1);
    sy__loop_signal(loop, 4);
    sy_loop_run(loop);
    CHECK_EQ(signal_flags, 5);
    sy_loop_free(loop);
}

TEST(chunk_pool_recycles)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy_chunk *a = sy__chunk_get(loop);
    CHECK(a != NULL);
    sy__chunk_put(loop, a);
    sy_chunk *b = sy__chunk_get(loop);
    CHECK(a == b);
    sy__chunk_put(loop, b);
    size_t dl;
    const char *d = sy__loop_date(loop, &dl);
    CHECK_EQ(dl, strlen("Date: Wed, 25 Nov 2026 01:45:58 GMT\r\n"));
    CHECK(memcmp(d, "Date: ", 6) == 0);
    sy_loop_free(loop);
}

int main(void)
{
    RUN(timers_fire_in_deadline_order);
    RUN(reserved_timers_need_no_memory);
    RUN(deferred_runs_once_per_queue);
    RUN(deferred_order_and_requeue);
    RUN(date_follows_the_wall_clock);
    RUN(post_from_other_threads);
    RUN(signal_flags_reach_the_loop);
    RUN(chunk_pool_recycles);
    return sy_t_summary();
}
