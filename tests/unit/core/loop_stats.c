/* The loop's own numbers for /metrics: every iteration is counted and its busy time observed;
 * an iteration that runs a due timer observes how late it ran; a callback that blocks the loop
 * shows up in the busy histogram's upper buckets. */
#include "core/loop.h"
#include "harness.h"

#include <time.h>

static sy_loop *g_loop;
static sy_timer t1, t2;
static int fired;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_t2(sy_timer *t)
{
    (void)t;
    fired++;
    sy_loop_stop(g_loop);
}

static void on_t1(sy_timer *t)
{
    (void)t;
    fired++;
    sleep_ms(30); /* a callback that holds the loop */
    sy__timer_start(g_loop, &t2, g_loop->now_ms + 5);
}

TEST(iterations_busy_time_and_timer_lag)
{
    CHECK(sy_loop_new(&g_loop) == 0);
    CHECK(sy__timer_reserve(g_loop, 2) == 0);
    t1.cb = on_t1;
    t2.cb = on_t2;
    sy__timer_start(g_loop, &t1, g_loop->now_ms + 5);
    CHECK(sy_loop_run(g_loop) == 0);
    CHECK_EQ(fired, 2);
    const sy_loop_stats *st = &g_loop->stats;
    uint64_t it = sy__ctr_get(&st->busy.count); /* one per iteration */
    CHECK(it >= 2);
    CHECK(sy__ctr_get(&st->busy.sum_us) >= 30000); /* the 30 ms callback */
    /* That iteration is in a bucket above 25 ms (bounds: ..., 25000, 50000, ...). */
    uint64_t slow = 0;
    for (size_t i = 0; i <= sy__hist_latency.n; i++)
        if (i == sy__hist_latency.n || sy__hist_latency.le_us[i] > 25000)
            slow += sy__ctr_get(&st->busy.bucket[i]);
    CHECK(slow >= 1);
    CHECK_EQ(sy__ctr_get(&st->timer_lag.count), 2); /* two iterations ran due timers */
    sy_loop_free(g_loop);
}

int main(void)
{
    RUN(iterations_busy_time_and_timer_lag);
    return sy_t_summary();
}
