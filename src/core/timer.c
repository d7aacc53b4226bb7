/* Public timers (sy_loop_timer_*): an internal heap timer plus the application's callback.
 * Each reserves its heap slot when created, so arming never fails; each is on its loop's
 * list so that freeing the loop first leaves it inert instead of dangling. */
#include "core/loop.h"

static void fire(sy_timer *ht)
{
    sy_loop_timer *t = sy_container_of(ht, sy_loop_timer, t);
    sy_loop *loop = t->loop;
    uint64_t due = ht->deadline;
    t->in_cb = 1;
    t->touched = 0;
    t->fn(t, t->ud);
    t->in_cb = 0;
    if (t->freed) {
        sy_loop_timer_free(t);
        return;
    }
    if (t->repeat_ms && !t->touched && t->loop) {
        /* Keep the beat (no drift from callback time), but skip beats already missed. */
        uint64_t next = due + t->repeat_ms;
        if (next <= loop->now_ms)
            next = loop->now_ms + t->repeat_ms;
        sy__timer_start(loop, &t->t, next);
    }
}

SY_EXPORT int sy_loop_timer_new(sy_loop *loop, sy_loop_timer_fn fn, void *ud, sy_loop_timer **out)
{
    if (!loop || !fn || !out)
        return SY_EINVAL;
    sy_loop_timer *t = sy__calloc(1, sizeof(*t));
    if (!t)
        return SY_ENOMEM;
    if (sy__timer_reserve(loop, 1) < 0) {
        sy__free(t);
        return SY_ENOMEM;
    }
    t->t.cb = fire;
    t->loop = loop;
    t->fn = fn;
    t->ud = ud;
    t->next = loop->user_timers;
    if (t->next)
        t->next->prev = t;
    loop->user_timers = t;
    *out = t;
    return 0;
}

SY_EXPORT void sy_loop_timer_start(sy_loop_timer *t, uint64_t delay_ms, uint64_t repeat_ms)
{
    if (!t->loop || t->freed)
        return;
    t->repeat_ms = repeat_ms;
    t->touched = 1;
    sy__timer_start(t->loop, &t->t, t->loop->now_ms + delay_ms);
}

SY_EXPORT void sy_loop_timer_stop(sy_loop_timer *t)
{
    t->touched = 1;
    if (t->loop)
        sy__timer_stop(t->loop, &t->t);
}

SY_EXPORT int sy_loop_timer_active(const sy_loop_timer *t)
{
    return t->loop && sy__timer_active(&t->t);
}

SY_EXPORT void sy_loop_timer_free(sy_loop_timer *t)
{
    if (!t)
        return;
    sy_loop *loop = t->loop;
    if (loop) {
        sy__timer_stop(loop, &t->t);
        if (t->in_cb) {
            t->freed = 1; /* fire() releases it when the callback returns */
            return;
        }
        sy__timer_release(loop, 1);
        if (t->prev)
            t->prev->next = t->next;
        else
            loop->user_timers = t->next;
        if (t->next)
            t->next->prev = t->prev;
    } else if (t->in_cb) {
        t->freed = 1;
        return;
    }
    sy__free(t);
}

void sy__loop_timers_detach(sy_loop *loop)
{
    for (sy_loop_timer *t = loop->user_timers; t; t = t->next) {
        t->loop = NULL;
        t->t.heap_idx = 0;
    }
    loop->user_timers = NULL;
}
