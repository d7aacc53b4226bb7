/* Unit tests for the public timers (src/core/timer.c): one-shot, repeating, stop and free
 * from inside the callback, the heap reservation each holds, and timers outliving their loop. */
#include "core/loop.h"
#include "harness.h"

static void stop_task(sy_loop *loop, void *ud)
{
    (void)ud;
    sy_loop_stop(loop);
}

typedef struct counter {
    int n;
    int stop_loop_at; /* stop the loop at this count */
    int stop_at;      /* stop the timer itself at this count */
    int free_at;      /* free the timer at this count */
    uint64_t at[16];
} counter;

static void on_tick(sy_loop_timer *t, void *ud)
{
    counter *c = ud;
    sy_loop *loop = t->loop;
    if (c->n < 16)
        c->at[c->n] = sy_loop_now_ms(loop);
    c->n++;
    if (c->n == c->stop_at)
        sy_loop_timer_stop(t);
    if (c->n == c->free_at)
        sy_loop_timer_free(t);
    if (c->n == c->stop_loop_at)
        sy_loop_stop(loop);
}

/* A one-shot timer to end a test's loop run after ms. */
static void guard_cb(sy_loop_timer *t, void *ud)
{
    (void)ud;
    sy_loop_stop(t->loop);
}

TEST(one_shot_fires_once_after_its_delay)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    counter c = {0};
    sy_loop_timer *t, *guard;
    CHECK_EQ(sy_loop_timer_new(loop, on_tick, &c, &t), 0);
    CHECK_EQ(sy_loop_timer_new(loop, guard_cb, NULL, &guard), 0);
    CHECK(!sy_loop_timer_active(t));
    uint64_t t0 = sy_loop_now_ms(loop);
    sy_loop_timer_start(t, 20, 0);
    sy_loop_timer_start(guard, 120, 0);
    CHECK(sy_loop_timer_active(t));
    sy_loop_run(loop);
    CHECK_EQ(c.n, 1);
    CHECK(c.at[0] >= t0 + 20);
    CHECK(!sy_loop_timer_active(t));
    sy_loop_timer_free(t);
    sy_loop_timer_free(guard);
    CHECK_EQ(loop->timer_reserved, 0);
    sy_loop_free(loop);
}

TEST(repeating_timer_keeps_its_beat_until_stopped_in_its_callback)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    counter c = {.stop_at = 5};
    sy_loop_timer *t, *guard;
    CHECK_EQ(sy_loop_timer_new(loop, on_tick, &c, &t), 0);
    CHECK_EQ(sy_loop_timer_new(loop, guard_cb, NULL, &guard), 0);
    uint64_t t0 = sy_loop_now_ms(loop);
    sy_loop_timer_start(t, 5, 10);
    sy_loop_timer_start(guard, 200, 0);
    sy_loop_run(loop);
    CHECK_EQ(c.n, 5); /* stopped from inside its 5th call: no 6th */
    CHECK(!sy_loop_timer_active(t));
    for (int i = 0; i < 5; i++)
        CHECK(c.at[i] >= t0 + 5 + 10 * (uint64_t)i);
    for (int i = 1; i < 5; i++)
        CHECK(c.at[i] > c.at[i - 1]);
    /* Restart after a stop works, and a restart replaces the schedule. */
    c.n = 0;
    c.stop_at = 0;
    c.stop_loop_at = 2;
    sy_loop_timer_start(t, 1000, 0);
    sy_loop_timer_start(t, 1, 5);
    sy_loop_timer_start(guard, 500, 0);
    sy_loop_run(loop);
    CHECK_EQ(c.n, 2);
    CHECK(sy_loop_timer_active(t)); /* still repeating */
    sy_loop_timer_free(t);
    sy_loop_timer_free(guard);
    sy_loop_free(loop);
}

TEST(free_inside_the_callback_ends_a_repeating_timer)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    counter c = {.free_at = 3};
    sy_loop_timer *t, *guard;
    CHECK_EQ(sy_loop_timer_new(loop, on_tick, &c, &t), 0);
    CHECK_EQ(sy_loop_timer_new(loop, guard_cb, NULL, &guard), 0);
    CHECK_EQ(loop->timer_reserved, 2);
    sy_loop_timer_start(t, 1, 3);
    sy_loop_timer_start(guard, 100, 0);
    sy_loop_run(loop);
    CHECK_EQ(c.n, 3);
    CHECK_EQ(loop->timer_reserved, 1); /* its slot went back with it */
    sy_loop_timer_free(guard);
    CHECK_EQ(loop->timer_reserved, 0);
    sy_loop_free(loop);
}

static void restart_in_cb(sy_loop_timer *t, void *ud)
{
    counter *c = ud;
    c->n++;
    if (c->n < 3)
        sy_loop_timer_start(t, 2, 0); /* a one-shot that re-arms itself */
    else
        sy_loop_stop(t->loop);
}

TEST(restart_inside_the_callback)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    counter c = {0};
    sy_loop_timer *t;
    CHECK_EQ(sy_loop_timer_new(loop, restart_in_cb, &c, &t), 0);
    sy_loop_timer_start(t, 1, 0);
    sy_loop_run(loop);
    CHECK_EQ(c.n, 3);
    CHECK(!sy_loop_timer_active(t));
    sy_loop_timer_free(t);
    sy_loop_free(loop);
}

TEST(a_timer_outliving_its_loop_is_inert)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    counter c = {0};
    sy_loop_timer *a, *b;
    CHECK_EQ(sy_loop_timer_new(loop, on_tick, &c, &a), 0);
    CHECK_EQ(sy_loop_timer_new(loop, on_tick, &c, &b), 0);
    sy_loop_timer_start(a, 1, 1);
    sy_loop_free(loop);
    CHECK(!sy_loop_timer_active(a));
    sy_loop_timer_start(b, 1, 0); /* no effect, no crash */
    sy_loop_timer_stop(a);
    sy_loop_timer_free(a);
    sy_loop_timer_free(b);
    sy_loop_timer_free(NULL);
    CHECK_EQ(c.n, 0);
}

TEST(many_timers_reserve_and_release_their_slots)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    static sy_loop_timer *ts[3000];
    counter c = {0};
    for (int i = 0; i < 3000; i++) {
        CHECK_EQ(sy_loop_timer_new(loop, on_tick, &c, &ts[i]), 0);
        sy_loop_timer_start(ts[i], (uint64_t)(i % 7), 0);
    }
    CHECK_EQ(loop->timer_reserved, 3000);
    CHECK(loop->heap_cap >= 3000);
    CHECK_EQ(sy_loop_post(loop, stop_task, NULL), 0);
    c.stop_loop_at = 3000;
    sy_loop_run(loop);
    while (c.n < 3000)
        sy_loop_run(loop);
    CHECK_EQ(c.n, 3000);
    for (int i = 0; i < 3000; i++)
        sy_loop_timer_free(ts[i]);
    CHECK_EQ(loop->timer_reserved, 0);
    CHECK_EQ(sy_loop_timer_new(NULL, on_tick, &c, &ts[0]), SY_EINVAL);
    sy_loop_free(loop);
}

static long allocs_left = -1;
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

TEST(creation_fails_cleanly_without_memory)
{
    sy_loop *loop;
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy_loop_timer *t = NULL;
    sy_set_allocator(t_malloc, t_realloc, free);
    allocs_left = 0;
    int e1 = sy_loop_timer_new(loop, on_tick, NULL, &t);
    allocs_left = 1; /* the timer, not the heap */
    int e2 = sy_loop_timer_new(loop, on_tick, NULL, &t);
    allocs_left = -1;
    sy_set_allocator(NULL, NULL, NULL);
    CHECK_EQ(e1, SY_ENOMEM);
    CHECK_EQ(e2, SY_ENOMEM);
    CHECK_EQ(loop->timer_reserved, 0);
    CHECK(loop->user_timers == NULL);
    sy_loop_free(loop);
}

int main(void)
{
    RUN(one_shot_fires_once_after_its_delay);
    RUN(repeating_timer_keeps_its_beat_until_stopped_in_its_callback);
    RUN(free_inside_the_callback_ends_a_repeating_timer);
    RUN(restart_inside_the_callback);
    RUN(a_timer_outliving_its_loop_is_inert);
    RUN(many_timers_reserve_and_release_their_slots);
    RUN(creation_fails_cleanly_without_memory);
    return sy_t_summary();
}
